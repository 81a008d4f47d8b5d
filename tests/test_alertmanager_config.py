"""dashboards/alertmanager.yml: fresh, accepted by amtool, desk hours that match the calendars."""

from __future__ import annotations

import calendar as cal
import datetime as dt
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from app.config import get_settings
from app.observability import alertmanager
from app.tenancy.calendar import JST, calendars_for
from app.tenancy.config import TenantConfig
from app.tenancy.loader import load_all

ROOT = Path(__file__).resolve().parent.parent
CHECKED_IN = ROOT / "dashboards" / "alertmanager.yml"


@pytest.fixture(scope="module")
def tenants() -> dict[str, TenantConfig]:
    return {k: v.config for k, v in load_all(get_settings().tenants_dir).items()}


def local_copy(tmp_path: Path, port: int = 61080) -> Path:
    """What scripts/services.sh does before starting Alertmanager."""
    token = tmp_path / "token"
    token.write_text("test-token")
    text = CHECKED_IN.read_text().replace("http://127.0.0.1:APP_PORT", f"http://127.0.0.1:{port}")
    path = tmp_path / "alertmanager.yml"
    path.write_text(text.replace(alertmanager.TOKEN_FILE, str(token)))
    return path


def test_checked_in_config_is_fresh(tenants: dict[str, TenantConfig]) -> None:
    assert CHECKED_IN.read_text() == alertmanager.render(tenants), "run `madoguchi sla alertmanager`"


def test_amtool_accepts_it(tmp_path: Path) -> None:
    done = subprocess.run(
        ["amtool", "check-config", str(local_copy(tmp_path))], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_routes_by_tenant(tmp_path: Path) -> None:
    config = str(local_copy(tmp_path))

    def receivers(*labels: str) -> str:
        done = subprocess.run(
            ["amtool", "config", "routes", "test", f"--config.file={config}", *labels],
            capture_output=True,
            text=True,
            check=False,
        )
        return done.stdout.strip()

    # Time decides between the two (active/mute intervals); the label decides the pair.
    assert receivers("tenant=osaka", "alertname=MadoguchiErrorBudgetBurn") == "support-desk-osaka,oncall"
    assert receivers("tenant=gobo") == "support-desk-gobo,oncall"
    assert receivers("alertname=MadoguchiCalendarRulesExpiring") == "oncall"


def _desk_open(intervals: list[dict[str, Any]], moment: dt.datetime) -> bool:
    """Alertmanager's time-interval semantics, for the fields the generator uses."""
    local = moment.astimezone(JST)
    minute = local.hour * 60 + local.minute
    for spec in intervals:
        if str(local.year) not in spec["years"] or cal.month_name[local.month].lower() not in spec["months"]:
            continue
        days = set()
        for part in spec["days_of_month"]:
            lo, _, hi = part.partition(":")
            days.update(range(int(lo), int(hi or lo) + 1))
        if local.day not in days:
            continue
        for t in spec["times"]:
            start = int(t["start_time"][:2]) * 60 + int(t["start_time"][3:])
            end = int(t["end_time"][:2]) * 60 + int(t["end_time"][3:])
            if start <= minute < end:
                return True
    return False


@pytest.mark.parametrize(
    ("tenant", "moment", "staffed"),
    [
        ("osaka", dt.datetime(2028, 2, 4, 19, 15, tzinfo=JST), True),  # Friday extension + 30 min
        ("osaka", dt.datetime(2028, 2, 4, 19, 35, tzinfo=JST), False),
        ("osaka", dt.datetime(2028, 2, 4, 8, 30, tzinfo=JST), True),  # 30 min before opening
        ("osaka", dt.datetime(2028, 2, 11, 10, 0, tzinfo=JST), False),  # 建国記念の日 (Friday)
        ("osaka", dt.datetime(2027, 3, 28, 17, 45, tzinfo=JST), True),  # 4th Sunday + 30 min
        ("gobo", dt.datetime(2028, 2, 4, 19, 59, tzinfo=JST), True),  # service hours 08:00-20:00
        ("gobo", dt.datetime(2028, 2, 4, 7, 59, tzinfo=JST), False),
        ("yamaguchi", dt.datetime(2028, 2, 4, 17, 45, tzinfo=JST), False),  # desk 08:30-17:30
        ("yamaguchi", dt.datetime(2027, 12, 30, 10, 0, tzinfo=JST), False),  # year end
    ],
)
def test_desk_hours(tenant: str, moment: dt.datetime, staffed: bool) -> None:
    config = yaml.safe_load(CHECKED_IN.read_text())
    route = next(r for r in config["route"]["routes"] if r["receiver"] == f"support-desk-{tenant}")
    (name,) = route["active_time_intervals"]
    intervals = next(i["time_intervals"] for i in config["time_intervals"] if i["name"] == name)
    assert _desk_open(intervals, moment) is staffed


def test_desk_intervals_match_the_calendar_every_quarter_hour_for_a_year(
    tenants: dict[str, TenantConfig],
) -> None:
    for tenant, config in tenants.items():
        intervals = alertmanager.desk_intervals(config, range(2027, 2028))
        _service, desk = calendars_for(config.sla)
        moment = dt.datetime(2027, 1, 1, tzinfo=JST)
        while moment.year == 2027:
            assert _desk_open(intervals, moment) == desk.is_open(moment), (tenant, moment)
            moment += dt.timedelta(minutes=15)


def test_tenants_with_the_same_desk_hours_share_one_interval(tenants: dict[str, TenantConfig]) -> None:
    many = dict(tenants)
    for i in range(5):
        many[f"gobo{i}"] = tenants["gobo"]
    config = alertmanager.config(many)
    assert len(config["time_intervals"]) == 3  # osaka, gobo (and its copies), yamaguchi
    assert len(config["receivers"]) == 1 + len(many)
    copies = [r for r in config["route"]["routes"] if r["receiver"] == "support-desk-gobo3"]
    assert copies[0]["active_time_intervals"] == ["desk-hours-gobo"]
