"""Load a tenant's catalogue files with errors naming file, key path and line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from app.guidance.catalogue import Catalogue, FormsIndex, GuidanceFile, ProceduresFile, reference_problems
from app.guidance.engine import CatalogueError, compile_catalogue

FILES: dict[str, type[BaseModel]] = {
    "guidance.yaml": GuidanceFile,
    "procedures.yaml": ProceduresFile,
    "forms/catalog.yaml": FormsIndex,
}


def load_catalogue(directory: Path, read: Any, issue: Any) -> Catalogue | None:
    """The tenant's catalogue, or None when it has none (no guidance.yaml).

    ``read(path) -> source`` and ``issue(source_or_display, path, message, line_path)`` come from the
    tenancy loader, so catalogue errors look like every other tenant-file error.
    """
    if not (directory / "guidance.yaml").is_file():
        return None
    parts: dict[str, BaseModel] = {}
    sources: dict[str, Any] = {}
    failed = False
    for name, model in FILES.items():
        path = directory / name
        if not path.is_file():
            if name == "forms/catalog.yaml":
                parts[name] = FormsIndex()
                continue
            issue(None, path, "", "file is missing")
            failed = True
            continue
        source = read(path)
        sources[name] = source
        try:
            parts[name] = model.model_validate(source.data or {})
        except ValidationError as exc:
            for err in exc.errors():
                loc = tuple(p for p in err["loc"] if isinstance(p, str | int))
                message = (
                    "unknown key"
                    if err["type"] == "extra_forbidden"
                    else err["msg"].removeprefix("Value error, ")
                )
                issue(source, path, loc, message)
            failed = True
    if failed:
        return None
    guidance, procedures, forms = (
        parts["guidance.yaml"],
        parts["procedures.yaml"],
        parts["forms/catalog.yaml"],
    )
    assert isinstance(guidance, GuidanceFile)
    assert isinstance(procedures, ProceduresFile)
    assert isinstance(forms, FormsIndex)
    catalogue = Catalogue.combine(guidance, procedures, forms)
    problems = reference_problems(catalogue)
    if not problems:
        try:
            compile_catalogue(catalogue)
        except CatalogueError as exc:
            problems = exc.problems
    for file, loc, message in problems:
        issue(sources.get(file), directory / file, loc, message)
    return None if problems else catalogue
