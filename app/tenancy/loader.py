"""Load ``tenants/`` into validated ``TenantConfig`` objects.

Errors name the file, the key path and the line, e.g.
``tenants/osaka/sla.yaml: service_hours.rules[1].hours[0] (line 12): time range must end after it starts``.
Duplicate YAML keys are errors too (PyYAML would silently keep the last one).
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from app.forms.loader import FeeTable, check_outbound, load_forms
from app.guidance.loader import load_catalogue
from app.identity.config import RolesConfig, SecurityConfig
from app.linkage.config import LinkageConfig, ResidentsConfig
from app.tenancy.config import SlaConfig, TenantConfig, TenantIdentity

DEFAULTS_DIR = "_defaults"
# file -> (model, field of TenantConfig); all but tenant.yaml may be absent (defaults apply)
FILES: dict[str, tuple[type[BaseModel], str]] = {
    "tenant.yaml": (TenantIdentity, "tenant"),
    "sla.yaml": (SlaConfig, "sla"),
    "linkage.yaml": (LinkageConfig, "linkage"),
    "residents.yaml": (ResidentsConfig, "residents"),
    "fees.yaml": (FeeTable, "fees"),
    "roles.yaml": (RolesConfig, "roles"),
    "security.yaml": (SecurityConfig, "security"),
}


@dataclass(frozen=True)
class ConfigIssue:
    file: str
    path: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = f" (line {self.line})" if self.line else ""
        key = f" {self.path}" if self.path else ""
        return f"{self.file}:{key}{where}: {self.message}"


class TenantConfigError(Exception):
    def __init__(self, issues: list[ConfigIssue]):
        self.issues = issues
        super().__init__("\n".join(str(i) for i in issues))


@dataclass
class LoadedTenant:
    config: TenantConfig
    directory: Path
    files: list[Path] = field(default_factory=list)

    @property
    def config_hash(self) -> str:
        return config_hash(self.config)


def config_hash(config: TenantConfig) -> str:
    return dumped_config_hash(config.model_dump(mode="json"))


def dumped_config_hash(dumped: dict[str, Any]) -> str:
    """``config_hash`` of a configuration already dumped with ``model_dump(mode="json")``."""
    canonical = json.dumps(dumped, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


class _UniqueKeyLoader(yaml.SafeLoader):
    pass


def _construct_mapping(
    loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False
) -> dict[Any, Any]:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r} (first on line {seen[key] + 1})", key_node.start_mark
            )
        seen[key] = key_node.start_mark.line
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
# Dates stay strings until pydantic parses them, so error messages show what was written.
_UniqueKeyLoader.add_constructor(
    "tag:yaml.org,2002:timestamp",
    lambda loader, node: loader.construct_scalar(node),  # type: ignore[arg-type]
)


@dataclass
class _Source:
    path: Path
    display: str
    data: Any
    node: yaml.Node | None


def _read_yaml(path: Path, display: str) -> _Source:
    return read_yaml_text(path.read_text(encoding="utf-8"), display, path)


def read_yaml_text(text: str, display: str, path: Path | None = None) -> _Source:
    """Parse YAML as tenant files are parsed (duplicate keys refused, dates kept as written)."""
    try:
        node = yaml.compose(text, Loader=_UniqueKeyLoader)
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise TenantConfigError([ConfigIssue(display, "", f"invalid YAML: {exc}", line)]) from exc
    return _Source(path or Path(display), display, {} if data is None else data, node)


def line_of(node: yaml.Node | None, path: tuple[str | int, ...]) -> int | None:
    line = None
    for part in path:
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                if key_node.value == part:
                    line = key_node.start_mark.line + 1
                    node = value_node
                    break
            else:
                return line
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            return line
    return line


def _has_path(data: Any, path: tuple[str | int, ...]) -> bool:
    for part in path:
        in_mapping = isinstance(data, dict) and part in data
        in_list = isinstance(data, list) and isinstance(part, int) and part < len(data)
        if not (in_mapping or in_list):
            return False
        data = data[part]
    return True


def _format_path(path: tuple[str | int, ...]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def deep_merge(base: Any, override: Any) -> Any:
    """Mappings merge key by key; anything else (lists included) is replaced by the override."""
    if isinstance(base, dict) and isinstance(override, dict):
        merged = copy.deepcopy(base)
        for key, value in override.items():
            merged[key] = deep_merge(base[key], value) if key in base else copy.deepcopy(value)
        return merged
    return copy.deepcopy(override)


def _issues_from(exc: ValidationError, sources: list[_Source]) -> list[ConfigIssue]:
    """Attribute each pydantic error to the most specific file that contains its key path."""
    issues = []
    for err in exc.errors():
        loc = tuple(p for p in err["loc"] if isinstance(p, str | int))
        # pydantic reports errors of a model validator at the model's own location; drop the
        # internal '[str]'-style discriminators some validators add.
        src = next((s for s in reversed(sources) if _has_path(s.data, loc)), sources[-1])
        probe = loc
        while probe and not _has_path(src.data, probe):
            probe = probe[:-1]
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            message = "unknown key"
        issues.append(ConfigIssue(src.display, _format_path(loc), message, line_of(src.node, probe)))
    return issues


def _display(path: Path, root: Path) -> str:
    base = root.parent
    return str(path.relative_to(base)) if path.is_relative_to(base) else str(path)


def load_tenant(directory: Path, root: Path | None = None) -> LoadedTenant:
    root = root or directory.parent
    issues: list[ConfigIssue] = []
    parts: dict[str, Any] = {}
    own_sources: dict[str, _Source] = {}
    for name, (model, _) in FILES.items():
        sources: list[_Source] = []
        default_path = root / DEFAULTS_DIR / name
        if default_path.is_file():
            sources.append(_read_yaml(default_path, _display(default_path, root)))
        own = directory / name
        if own.is_file():
            own_sources[name] = _read_yaml(own, _display(own, root))
            sources.append(own_sources[name])
        elif name == "tenant.yaml":
            issues.append(ConfigIssue(_display(own, root), "", "file is missing"))
            continue
        bad = [s for s in sources if not isinstance(s.data, dict)]
        issues.extend(ConfigIssue(s.display, "", "top level must be a mapping", 1) for s in bad)
        if bad:
            continue
        merged: dict[str, Any] = {}
        for s in sources:
            merged = deep_merge(merged, s.data)
        try:
            parts[name] = model.model_validate(merged)
        except ValidationError as exc:
            issues.extend(_issues_from(exc, sources))
    if issues:
        raise TenantConfigError(issues)
    identity = parts["tenant.yaml"]
    assert isinstance(identity, TenantIdentity)
    if identity.id != directory.name:
        src = own_sources["tenant.yaml"]
        raise TenantConfigError(
            [
                ConfigIssue(
                    src.display,
                    "id",
                    f"must equal the folder name {directory.name!r}",
                    line_of(src.node, ("id",)),
                )
            ]
        )
    catalogue_issues: list[ConfigIssue] = []

    def catalogue_issue(source: _Source | None, path: Path, loc: tuple[str | int, ...], message: str) -> None:
        line = None
        if source is not None:
            probe = loc
            while probe and not _has_path(source.data, probe):
                probe = probe[:-1]
            line = line_of(source.node, probe)
        catalogue_issues.append(ConfigIssue(_display(path, root), _format_path(loc), message, line))

    def read(path: Path) -> _Source:
        return _read_yaml(path, _display(path, root))

    catalogue = load_catalogue(directory, read, catalogue_issue)
    forms = load_forms(directory, read, catalogue_issue, [f.id for f in catalogue.forms] if catalogue else [])
    linkage = parts.get("linkage.yaml")
    if isinstance(linkage, LinkageConfig) and linkage.outbound:
        check_outbound(forms, linkage.outbound, directory / "linkage.yaml", catalogue_issue)
    if catalogue_issues:
        raise TenantConfigError(catalogue_issues)
    config = TenantConfig(
        **{field: parts[name] for name, (_, field) in FILES.items()}, catalogue=catalogue, forms=forms
    )
    return LoadedTenant(config=config, directory=directory, files=[s.path for s in own_sources.values()])


def tenant_directories(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(("_", ".")))


def load_all(root: Path) -> dict[str, LoadedTenant]:
    """Load and validate every tenant; collect all problems before failing."""
    loaded: dict[str, LoadedTenant] = {}
    issues: list[ConfigIssue] = []
    codes: dict[str, str] = {}
    for directory in tenant_directories(root):
        try:
            tenant = load_tenant(directory, root)
        except TenantConfigError as exc:
            issues.extend(exc.issues)
            continue
        code = tenant.config.tenant.code
        if code in codes:
            issues.append(
                ConfigIssue(
                    _display(directory / "tenant.yaml", root),
                    "code",
                    f"{code} is also used by {codes[code]!r}",
                )
            )
        codes[code] = tenant.config.tenant.id
        loaded[tenant.config.tenant.id] = tenant
    if issues:
        raise TenantConfigError(issues)
    return loaded
