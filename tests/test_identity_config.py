"""roles.yaml and security.yaml: validated, merged over the defaults, unknown names rejected."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from app.tenancy.loader import TenantConfigError, load_tenant
from tests.conftest import ROOT

ALL_ROLES = {"窓口職員", "担当課職員", "受付担当", "署名タブレット", "監督者", "管理者", "監査担当"}


def _city(tmp_path: Path, **files: str) -> Path:
    shutil.copytree(ROOT / "tenants" / "_defaults", tmp_path / "_defaults")
    shutil.copytree(ROOT / "tenants" / "gobo", tmp_path / "gobo")
    for name, text in files.items():
        (tmp_path / "gobo" / name.replace("_", ".")).write_text(text, encoding="utf-8")
    return tmp_path / "gobo"


def test_the_three_cities_load_with_their_choices() -> None:
    configs = {t: load_tenant(ROOT / "tenants" / t).config for t in ("osaka", "gobo", "yamaguchi")}
    assert configs["yamaguchi"].security.totp.required_for == "all"
    assert configs["gobo"].security.totp.required_for == "privileged"
    assert configs["osaka"].security.oidc is None
    for config in configs.values():
        assert config.roles is not None
        assert set(config.roles.active()) == ALL_ROLES


def test_a_city_overrides_removes_and_adds_roles(tmp_path: Path) -> None:
    directory = _city(
        tmp_path,
        roles_yaml="roles:\n  監査担当: null\n  窓口職員:\n    permissions: [calendar.view, residents.search]\n"
        "  証明書発行係:\n    permissions: [calendar.view, residents.search, residents.view]\n",
    )
    roles = load_tenant(directory).config.roles
    assert roles is not None
    active = roles.active()
    assert "監査担当" not in active
    assert active["窓口職員"].permissions == ["calendar.view", "residents.search"]
    assert "証明書発行係" in active
    assert "admin.users" in active["管理者"].permissions  # untouched defaults stay


def test_unknown_permission_names_the_file_and_line(tmp_path: Path) -> None:
    directory = _city(tmp_path, roles_yaml="roles:\n  窓口職員:\n    permissions: [residents.everything]\n")
    with pytest.raises(TenantConfigError) as info:
        load_tenant(directory)
    message = str(info.value)
    assert "gobo/roles.yaml" in message
    assert "residents.everything" in message
    assert "line 3" in message


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("totp:\n  required_for: sometimes\n", "required_for"),
        ("rate_limits:\n  per_address: lots\n", "not a rate limit"),
        ("lockout:\n  max_failures: 1\n", "max_failures"),
        ("oidc:\n  issuer: idp.example\n  client_id: x\n  client_secret: env:X\n", "issuer"),
        (
            "oidc:\n  issuer: https://idp.example\n  client_id: x\n  client_secret: plain-secret\n",
            "client_secret",
        ),
        ("sessions:\n  idle_minutes: 30\n  forever: true\n", "unknown key"),
    ],
)
def test_security_yaml_is_validated(tmp_path: Path, text: str, needle: str) -> None:
    with pytest.raises(TenantConfigError) as info:
        load_tenant(_city(tmp_path, security_yaml=text))
    assert needle in str(info.value)
