"""Tenancy is enforced by the database, not only by the code: wrong-schema access is denied."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import MetaData, select, text
from sqlalchemy.exc import ProgrammingError

from app.identity.models import StaffUser
from app.tenancy.models import CalendarOverride
from app.tenancy.service import add_override
from tests.conftest import madoguchi, make_staff, tenant_session


def test_rows_written_as_osaka_are_invisible_to_gobo_through_the_orm(db: None) -> None:
    make_staff("osaka", "osaka-clerk")
    with tenant_session("osaka") as osaka:
        assert osaka.scalar(select(StaffUser.login).where(StaffUser.login == "osaka-clerk")) == "osaka-clerk"
    with tenant_session("gobo") as gobo:
        assert gobo.scalar(select(StaffUser).where(StaffUser.login == "osaka-clerk")) is None
        assert gobo.scalar(select(StaffUser.id)) is None


def test_a_query_forced_at_another_schema_fails_with_permission_denied(db: None) -> None:
    make_staff("osaka", "osaka-clerk")
    # The bug simulated: a table hard-wired to Osaka's schema, used inside Gobo's session.
    osaka_users = StaffUser.__table__.to_metadata(MetaData(), schema="t_271004")
    with tenant_session("gobo") as gobo:
        with pytest.raises(ProgrammingError, match="permission denied for schema t_271004"):
            gobo.execute(select(osaka_users)).all()
        gobo.rollback()
        # ... and the same through a connection re-pointed with another translate map.
        conn = gobo.connection().execution_options(schema_translate_map={None: "t_271004"})
        with pytest.raises(ProgrammingError, match="permission denied for schema t_271004"):
            conn.execute(select(StaffUser.__table__)).all()


def test_raw_sql_into_another_schema_fails_with_permission_denied(db: None) -> None:
    with tenant_session("gobo") as gobo, pytest.raises(ProgrammingError, match="permission denied"):
        gobo.execute(text("SELECT count(*) FROM t_271004.audit_log")).scalar()


def test_session_context_is_the_tenant_role_and_schema_only(db: None) -> None:
    with tenant_session("yamaguchi") as session:
        row = session.execute(
            text("SELECT current_user, current_setting('search_path'), current_schemas(false)")
        ).one()
    assert row[0].endswith("_t_352039")
    assert row[1] == "t_352039"
    assert row[2] == ["t_352039"]  # public is never on a tenant's search path


def test_a_table_missing_from_the_tenant_schema_does_not_fall_through_to_public(
    provisioned: object,
) -> None:
    from app.db.engine import admin_engine

    with admin_engine().begin() as conn:
        conn.execute(text("CREATE TABLE IF NOT EXISTS public.probe_leak (secret text)"))
        conn.execute(text("INSERT INTO public.probe_leak VALUES ('public row')"))
    try:
        with tenant_session("gobo") as gobo, pytest.raises(ProgrammingError, match="does not exist"):
            gobo.execute(text("SELECT secret FROM probe_leak")).all()
    finally:
        with admin_engine().begin() as conn:
            conn.execute(text("DROP TABLE public.probe_leak"))


def test_the_runtime_login_role_reads_nothing_without_a_tenant_role(provisioned: object) -> None:
    from app.db.engine import get_engine

    with get_engine().connect() as conn, pytest.raises(ProgrammingError, match="permission denied"):
        conn.execute(text("SELECT count(*) FROM t_302058.staff_users")).scalar()


def test_osaka_data_is_invisible_to_gobo_through_the_api(client_for: object) -> None:
    with tenant_session("osaka") as osaka:
        add_override(
            osaka,
            on_date=dt.date.today() + dt.timedelta(days=3),
            kind="closed",
            hours=None,
            reason="大阪の臨時閉庁",
            entered_by="test",
        )
        osaka.commit()
    gobo = client_for("gobo")  # type: ignore[operator]
    own = gobo.get("/api/v1/gobo/calendar?days=7")
    assert own.status_code == 200
    assert "大阪の臨時閉庁" not in own.get_data(as_text=True)
    other = gobo.get("/api/v1/osaka/calendar?days=7")
    assert other.status_code == 404
    assert "大阪の臨時閉庁" not in other.get_data(as_text=True)


def test_osaka_data_is_invisible_to_gobo_through_themadoguchi(committed: object) -> None:
    day = (dt.date.today() + dt.timedelta(days=2)).isoformat()
    done = madoguchi("calendar", "close", "osaka", day, "--reason", "大阪だけの閉庁")
    assert done.returncode == 0, done.stderr
    osaka = json.loads(madoguchi("calendar", "show", "osaka", "--start", day, "--days", "1", "--json").stdout)
    gobo = json.loads(madoguchi("calendar", "show", "gobo", "--start", day, "--days", "1", "--json").stdout)
    assert osaka[0]["overrides"] == ["大阪だけの閉庁"]
    assert gobo[0]["overrides"] == []
    with tenant_session("gobo") as session:
        assert session.scalar(select(CalendarOverride.id)) is None


def test_cli_rejects_an_unknown_tenant_with_exit_code_1(provisioned: object) -> None:
    done = madoguchi("calendar", "show", "atlantis")
    assert done.returncode == 1
    assert "atlantis" in done.stderr


def test_cli_usage_error_exits_2(provisioned: object) -> None:
    assert madoguchi("calendar", "show").returncode == 2


def test_a_pinned_catalogue_version_cached_for_one_city_never_answers_for_another(db: None) -> None:
    """Catalogue versions are numbered per tenant schema, so the same id names different catalogues
    in two cities; the per-process cache of pinned versions must give each city its own."""
    from app.guidance.models import CatalogueVersion
    from app.guidance.service import active_catalogue

    today = dt.date.today()
    stored = {}
    for city in ("gobo", "osaka", "yamaguchi"):
        with tenant_session(city) as session:
            stored[city] = dict(
                session.execute(select(CatalogueVersion.id, CatalogueVersion.content_hash)).all()
            )
    shared = set(stored["gobo"]) & set(stored["osaka"]) & set(stored["yamaguchi"])
    assert shared, "the cities' catalogue versions should share an id for this test to mean anything"
    version_id = min(shared)
    assert len({stored[city][version_id] for city in stored}) == 3  # three different catalogues
    for _ in range(2):  # the second round is answered from the cache
        for city in ("gobo", "osaka", "yamaguchi"):
            with tenant_session(city) as session:
                active = active_catalogue(session, today, version_id)
            assert active.id == version_id
            assert active.compiled.content_hash == stored[city][version_id]
    # An id one city has and another has not: the other still gets "no such version".
    only_gobo = max(stored["gobo"])
    if only_gobo not in stored["osaka"]:
        from app.guidance.service import GuidanceInputError

        with tenant_session("gobo") as session:
            active_catalogue(session, today, only_gobo)
        with tenant_session("osaka") as session, pytest.raises(GuidanceInputError):
            active_catalogue(session, today, only_gobo)
