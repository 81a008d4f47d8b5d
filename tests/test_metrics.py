"""/metrics: bounded labels, database-derived figures, calendar windows, and no personal data."""

from __future__ import annotations

import datetime as dt
import threading
import time
from pathlib import Path

import pytest
from flask import Flask
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

from app.audit.service import Actor
from app.config import get_settings
from app.db.session import session_scope
from app.kv import get_redis
from app.linkage.config import STANDARD
from app.linkage.importer import import_local_file
from app.observability import snapshot
from app.observability.metrics import record_business
from app.residents.models import Resident
from app.tenancy.calendar import JST, Override
from app.tenancy.service import add_override, registry, revoke_override
from tests.conftest import login, make_staff
from tests.linkage_files import number, person, write


def samples(app: Flask) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    snapshot.forget_local()
    get_redis().delete(snapshot.REDIS_KEY)
    body = app.test_client().get("/metrics")
    assert body.status_code == 200
    assert body.content_type.startswith("text/plain")
    out = {}
    for family in text_string_to_metric_families(body.get_data(as_text=True)):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(found: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


def test_requests_are_counted_by_tenant_and_status_class_routes_without_tenant(
    app: Flask, client_for: object
) -> None:
    before = samples(app)
    gobo = client_for("gobo")  # type: ignore[operator]
    assert gobo.get("/gobo/").status_code == 200
    assert gobo.get("/gobo/residents/999999").status_code == 404
    app.test_client().get("/atlantis/")  # unknown tenant: no tenant label, no new series
    after = samples(app)
    assert (
        value(after, "madoguchi_http_requests_total", tenant="gobo", status_class="2xx")
        >= value(before, "madoguchi_http_requests_total", tenant="gobo", status_class="2xx") + 2
    )  # login page and home
    assert value(after, "madoguchi_http_requests_total", tenant="gobo", status_class="4xx") >= 1
    tenants = {dict(labels).get("tenant") for name, labels in after if name.startswith("madoguchi_http")}
    assert "atlantis" not in tenants
    routes = {
        dict(labels)["route"]
        for name, labels in after
        if name == "madoguchi_http_request_duration_seconds_count"
    }
    assert "/<tenant>/residents/<int:resident_id>" in routes
    assert not any("999999" in r or r.startswith("/gobo") for r in routes)
    assert all("tenant" not in dict(labels) for name, labels in after if "duration" in name)


def test_build_and_tenant_config_info(app: Flask, db: None) -> None:
    found = samples(app)
    build = [dict(labels) for name, labels in found if name == "madoguchi_build_info"]
    assert build
    assert build[0]["version"]
    assert build[0]["commit"]
    config = {
        dict(labels)["tenant"]: dict(labels)
        for name, labels in found
        if name == "madoguchi_tenant_config_info"
    }
    osaka = registry.get("osaka")
    assert osaka is not None
    assert config["osaka"]["config_hash"] == osaka.config_hash[:12]
    assert set(config) >= {"osaka", "gobo", "yamaguchi"}
    assert value(found, "madoguchi_queue_jobs", queue="madoguchi", state="failed") == 0
    assert value(found, "madoguchi_tenants", status="active") >= 3


def test_unique_users_come_from_the_database(app: Flask, db: None) -> None:
    before = samples(app)  # other tests may have left today's sign-ins in this city's log
    day = value(before, "madoguchi_unique_users", tenant="yamaguchi", window="day")
    month = value(before, "madoguchi_unique_users", tenant="yamaguchi", window="month")
    make_staff("yamaguchi", "user1")
    make_staff("yamaguchi", "user2")
    for login_id in ("user1", "user2", "user1"):
        login(app.test_client(), "yamaguchi", login_id)
    get_redis().flushdb()  # the figures are cached for a minute
    found = samples(app)
    assert value(found, "madoguchi_unique_users", tenant="yamaguchi", window="day") == day + 2
    assert value(found, "madoguchi_unique_users", tenant="yamaguchi", window="month") == month + 2


def test_a_cold_scrape_answers_at_once_and_the_figures_follow(
    app: Flask, db: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With ~1,700 tenants the first snapshot outlasts Prometheus's scrape timeout: don't wait for it."""
    computed = snapshot.compute()
    release = threading.Event()

    def slow_compute(now: dt.datetime | None = None) -> snapshot.Snapshot:
        release.wait(30)
        return computed

    monkeypatch.setattr(snapshot, "compute", slow_compute)
    monkeypatch.setenv("MADOGUCHI_METRICS_COLD_WAIT_SECONDS", "0.05")
    get_settings.cache_clear()
    try:
        cold = samples(app)
        assert value(cold, "madoguchi_metrics_snapshot_ready") == 0
        assert value(cold, "madoguchi_database_up") == 1
        assert not any(name == "madoguchi_unique_users" for name, _ in cold)
        release.set()
        for _ in range(300):  # the background refresh shares its result through Redis
            if get_redis().get(snapshot.REDIS_KEY) is not None:
                break
            time.sleep(0.01)
        warm = {}
        for family in text_string_to_metric_families(
            app.test_client().get("/metrics").get_data(as_text=True)
        ):
            for s in family.samples:
                warm[(s.name, tuple(sorted(s.labels.items())))] = s.value
        assert value(warm, "madoguchi_metrics_snapshot_ready") == 1
        assert ("madoguchi_unique_users", (("tenant", "gobo"), ("window", "day"))) in warm
    finally:
        release.set()
        get_settings.cache_clear()


def test_a_cold_scrape_takes_over_a_refresh_whose_process_stopped(
    app: Flask, db: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker stopped mid-refresh leaves its Redis lock behind and never stores a snapshot: the
    waiting scrape computes it once the lock expires instead of waiting out its whole cold wait."""
    snapshot.forget_local()
    get_redis().delete(snapshot.REDIS_KEY)
    get_redis().set(snapshot.LOCK_KEY, "1", px=400)  # the stopped worker's lock
    monkeypatch.setenv("MADOGUCHI_METRICS_COLD_WAIT_SECONDS", "20")
    get_settings.cache_clear()
    try:
        found = samples(app)  # before the fix: no snapshot after the whole cold wait
        assert value(found, "madoguchi_metrics_snapshot_ready") == 1
        assert ("madoguchi_unique_users", (("tenant", "gobo"), ("window", "day"))) in found
    finally:
        get_settings.cache_clear()


def test_business_helper_refuses_unknown_events() -> None:
    with pytest.raises(ValueError, match="BUSINESS_EVENTS"):
        record_business("osaka", "guidance_determination", "free text")
    with pytest.raises(ValueError, match="no_such_event"):
        record_business("osaka", "no_such_event")


def test_import_batches_and_rows_from_the_database(app: Flask, committed: object, tmp_path: Path) -> None:
    record = registry.get("gobo")
    assert record is not None
    rows = [person(1, 10), person(2, 10, 世帯内順="2", 続柄="妻", 氏名="山田　花子")]
    outcome = import_local_file(
        record,
        write(tmp_path / "a.csv", rows, STANDARD.residents),
        actor=Actor("cli", "t"),
        standard_layout=True,
    )
    assert outcome.status == "applied"
    found = samples(app)
    assert (
        value(found, "madoguchi_import_batches_total", tenant="gobo", kind="residents", status="applied") == 1
    )
    assert value(found, "madoguchi_import_rows_total", tenant="gobo", result="inserted") == 2


def test_override_windows_count_from_entry_until_revocation() -> None:
    entered = dt.datetime(2027, 3, 20, 10, 0, tzinfo=JST)
    sunday = dt.date(2027, 3, 28)
    saturday = dt.date(2027, 3, 27)
    now = dt.datetime(2027, 3, 25, 12, 0, tzinfo=JST)
    overrides = [
        ("7", Override(saturday, "open", (9 * 60, 12 * 60), entered)),
        ("8", Override(sunday, "closed", None, entered)),
        ("9", Override(dt.date(2027, 5, 1), "open", (540, 600), entered)),  # beyond the horizon
        ("10", Override(dt.date(2027, 3, 25), "closed", (9 * 60, 17 * 60), now)),  # entered at noon
    ]
    windows = snapshot.override_windows(overrides, now)
    assert [(w.kind, w.id, w.start.isoformat(), w.end.isoformat()) for w in windows] == [
        ("closed", "10", "2027-03-25T12:00:00+09:00", "2027-03-25T17:00:00+09:00"),
        ("open", "7", "2027-03-27T09:00:00+09:00", "2027-03-27T12:00:00+09:00"),
        ("closed", "8", "2027-03-28T00:00:00+09:00", "2027-03-29T00:00:00+09:00"),
    ]
    # Revoked before the day: still published, ending before it starts, so the rules ignore it.
    revoked = [("8", Override(sunday, "closed", None, entered, revoked_at=entered + dt.timedelta(hours=1)))]
    (window,) = snapshot.override_windows(revoked, now)
    assert window.end < window.start


def test_override_windows_are_exported_ahead(app: Flask, db: None) -> None:
    record = registry.get("gobo")
    assert record is not None
    tomorrow = dt.datetime.now(JST).date() + dt.timedelta(days=1)
    while tomorrow.weekday() < 5:  # a weekend day: Gobo is closed by the rules
        tomorrow += dt.timedelta(days=1)
    with session_scope(record.binding) as session:
        row = add_override(
            session, on_date=tomorrow, kind="open", hours="09:00-12:00", reason="休日臨時窓口", entered_by="t"
        )
    found = samples(app)
    label = str(row.id)
    start = value(found, "madoguchi_calendar_window_start_seconds", tenant="gobo", kind="open", window=label)
    end = value(found, "madoguchi_calendar_window_end_seconds", tenant="gobo", kind="open", window=label)
    assert start == dt.datetime.combine(tomorrow, dt.time(9), JST).timestamp()
    assert end - start == 3 * 3600
    assert value(found, "madoguchi_calendar_override", tenant="gobo", kind="open") == 0  # not yet
    with session_scope(record.binding) as session:
        revoke_override(session, row.id, "t")
    found = samples(app)
    # Revoked: published on, ending where it was revoked (before it began): the rules ignore it.
    start = value(found, "madoguchi_calendar_window_start_seconds", tenant="gobo", kind="open", window=label)
    end = value(found, "madoguchi_calendar_window_end_seconds", tenant="gobo", kind="open", window=label)
    assert start > 0
    assert end < start


SECRET_PEOPLE = [
    person(41, 410, 氏名="観測　秘匿子", 氏名フリガナ="カンソク ヒトクコ", 生年月日="1961-02-03",
           住所="和歌山県御坊市薗350番地"),
    person(42, 410, 世帯内順="2", 続柄="夫", 性別="1", 氏名="観測　守男", 氏名フリガナ="カンソク モリオ",
           生年月日="1959-12-24", 住所="和歌山県御坊市薗350番地"),
]  # fmt: skip


def test_metrics_never_carry_personal_data(app: Flask, committed: object, tmp_path: Path) -> None:
    record = registry.get("gobo")
    assert record is not None
    outcome = import_local_file(
        record,
        write(tmp_path / "p.csv", SECRET_PEOPLE, STANDARD.residents),
        actor=Actor("cli", "t"),
        standard_layout=True,
    )
    assert outcome.status == "applied", outcome.rejections
    make_staff("gobo", "clerk")
    client = app.test_client()
    login(client, "gobo")
    with session_scope(record.binding) as session:
        ids = list(session.scalars(select(Resident.id)))
    for query in ("kana=カンソク", "name=観測", "birth=1961-02-03", "address=薗350"):
        assert client.get(f"/gobo/residents?{query}").status_code == 200
    for resident_id in ids:
        assert client.get(f"/gobo/residents/{resident_id}").status_code == 200
    client.post(
        "/api/v1/gobo/guidance",
        json={"event": "tennyu", "resident_id": ids[0]},
        headers={"Accept": "application/json"},
    )
    exposition = app.test_client().get("/metrics").get_data(as_text=True)
    forbidden = [
        "観測",
        "秘匿子",
        "守男",
        "カンソク",
        "ヒトクコ",
        "1961-02-03",
        "1959-12-24",
        "薗350",
        "1961",
        "S36",
    ]
    forbidden += [number(41), number(42), number(410)]
    forbidden += [f"residents/{i}" for i in ids]
    # Text can only travel in names and label values; a number could also be a sample's value.
    # (Matching the raw exposition also hit timing sums such as 0.0019612.)
    words: list[str] = []
    values: set[float] = set()
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            words += [sample.name, *sample.labels.keys(), *sample.labels.values()]
            values.add(sample.value)
    text = "\n".join(words)
    leaks = [word for word in forbidden if word in text]
    leaks += [word for word in forbidden if word.isdigit() and float(word) in values]
    assert leaks == [], f"personal data on /metrics: {leaks}"
