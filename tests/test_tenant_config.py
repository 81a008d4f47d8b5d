"""Tenant files: the committed ones validate; broken ones are rejected with file, key path and line."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from app.tenancy.config import code_check_digit
from app.tenancy.loader import TenantConfigError, load_all
from tests.conftest import ROOT


@pytest.fixture
def tenants_copy(tmp_path: Path) -> Path:
    target = tmp_path / "tenants"
    shutil.copytree(ROOT / "tenants", target)
    return target


def _errors(root: Path) -> list[str]:
    with pytest.raises(TenantConfigError) as info:
        load_all(root)
    return [str(i) for i in info.value.issues]


def test_all_committed_tenant_files_validate() -> None:
    loaded = load_all(ROOT / "tenants")
    assert set(loaded) == {"osaka", "gobo", "yamaguchi"}
    assert {t.config.tenant.code for t in loaded.values()} == {"271004", "302058", "352039"}


def test_city_facts_from_the_specifications() -> None:
    loaded = load_all(ROOT / "tenants")
    osaka, gobo, yamaguchi = (loaded[k].config for k in ("osaka", "gobo", "yamaguchi"))
    assert [o.name for o in osaka.tenant.offices] == ["東淀川区役所", "福島区役所"]
    assert osaka.sla.incident.initial_response_minutes == 30
    assert osaka.sla.support_desk.margin_minutes == 30
    assert gobo.sla.audit.retention_years == 1
    assert yamaguchi.sla.audit.retention_years == 5
    assert yamaguchi.sla.incident.initial_response_minutes == 30
    assert [o.name for o in yamaguchi.tenant.offices] == ["山口市役所 本庁舎"]


def test_unknown_key_names_file_path_and_line(tenants_copy: Path) -> None:
    sla = tenants_copy / "osaka" / "sla.yaml"
    sla.write_text(sla.read_text().replace("  margin_minutes: 30", "  margin_minutes: 30\n  margn: 5"))
    (error,) = _errors(tenants_copy)
    assert error.startswith("tenants/osaka/sla.yaml: support_desk.margn (line ")
    assert error.endswith("unknown key")


def test_wrong_type_names_the_key(tenants_copy: Path) -> None:
    sla = tenants_copy / "gobo" / "sla.yaml"
    sla.write_text(sla.read_text().replace("retention_years: 1", "retention_years: one"))
    (error,) = _errors(tenants_copy)
    assert "tenants/gobo/sla.yaml: audit.retention_years" in error
    assert "integer" in error


def test_bad_time_range_is_rejected(tenants_copy: Path) -> None:
    sla = tenants_copy / "gobo" / "sla.yaml"
    sla.write_text(sla.read_text().replace('"08:00-20:00"', '"20:00-08:00"'))
    (error,) = _errors(tenants_copy)
    assert "tenants/gobo/sla.yaml: service_hours.rules[0].hours[0] (line 6)" in error
    assert "must end after it starts: 20:00-08:00" in error


@pytest.mark.parametrize("bad", ["25:00-26:00", "9-17", "09:60-17:00", "24:30-25:00"])
def test_impossible_times_are_rejected(tenants_copy: Path, bad: str) -> None:
    sla = tenants_copy / "gobo" / "sla.yaml"
    sla.write_text(sla.read_text().replace('"08:00-20:00"', f'"{bad}"'))
    (error,) = _errors(tenants_copy)
    assert "service_hours.rules[0].hours[0]" in error


def test_overlapping_calendar_rules_are_rejected(tenants_copy: Path) -> None:
    sla = tenants_copy / "osaka" / "sla.yaml"
    sla.write_text(sla.read_text().replace('hours: "17:30-19:00"', 'hours: "17:00-19:00"'))
    (error,) = _errors(tenants_copy)
    assert "tenants/osaka/sla.yaml: service_hours" in error
    assert "'平日' (09:00-17:30) and '金曜延長開庁' (17:00-19:00) overlap" in error


def test_adjacent_rules_and_rules_on_different_weeks_do_not_overlap(tenants_copy: Path) -> None:
    # Osaka already has 平日 09:00-17:30 next to 金曜 17:30-19:00; add a 2nd-Sunday rule whose
    # hours overlap the 4th-Sunday rule's but which can never fall on the same day.
    sla = tenants_copy / "osaka" / "sla.yaml"
    fourth_sunday = '      weeks_of_month: [4]\n      hours: "09:00-17:30"\n'
    second_sunday = (
        '    - name: 第2日曜開庁\n      days: [sun]\n      weeks_of_month: [2]\n      hours: "09:00-12:00"\n'
    )
    sla.write_text(sla.read_text().replace(fourth_sunday, fourth_sunday + second_sunday))
    assert load_all(tenants_copy)["osaka"].config.sla.service_hours.rules[-1].name == "第2日曜開庁"


def test_duplicate_yaml_keys_are_rejected(tenants_copy: Path) -> None:
    tenant = tenants_copy / "gobo" / "tenant.yaml"
    tenant.write_text(tenant.read_text().replace("name: 御坊市\n", "name: 御坊市\nname: 御坊市役所\n"))
    (error,) = _errors(tenants_copy)
    assert "tenants/gobo/tenant.yaml" in error
    assert "duplicate key 'name'" in error


def test_folder_and_id_must_agree(tenants_copy: Path) -> None:
    shutil.move(tenants_copy / "gobo", tenants_copy / "gobo-city")
    (error,) = _errors(tenants_copy)
    assert "tenants/gobo-city/tenant.yaml: id (line " in error
    assert "folder name 'gobo-city'" in error


def test_local_government_code_check_digit(tenants_copy: Path) -> None:
    assert [code_check_digit(c) for c in ("27100", "30205", "35203", "11000", "09000")] == [4, 8, 9, 1, 0]
    tenant = tenants_copy / "gobo" / "tenant.yaml"
    tenant.write_text(tenant.read_text().replace('code: "302058"', 'code: "302051"'))
    (error,) = _errors(tenants_copy)
    assert "code" in error
    assert "check digit" in error


def test_errors_in_several_tenants_are_all_reported(tenants_copy: Path) -> None:
    for city in ("gobo", "yamaguchi"):
        sla = tenants_copy / city / "sla.yaml"
        sla.write_text(sla.read_text() + "surprise: true\n")
    errors = _errors(tenants_copy)
    assert len(errors) == 2


def test_cli_validate_rejects_with_exit_code_1(tenants_copy: Path) -> None:
    sla = tenants_copy / "gobo" / "sla.yaml"
    sla.write_text(sla.read_text() + "surprise: true\n")
    env = {**os.environ, "MADOGUCHI_TENANTS_DIR": str(tenants_copy)}
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", "tenants", "validate"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 1
    assert "tenants/gobo/sla.yaml: surprise" in done.stderr
