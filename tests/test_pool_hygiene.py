"""Transaction-local tenant settings never survive a request: 1,000 requests on a pool of one."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask
from sqlalchemy import Engine, create_engine, text

from app.db import engine as engine_module
from app.db import session as session_module
from app.identity.service import create_user
from tests.conftest import PASSWORD, login, tenant_session


@pytest.fixture
def pool_of_one(committed: object) -> Iterator[Engine]:
    """Swap the runtime engine for one with exactly one pooled connection."""
    from app.config import get_settings

    url = get_settings().database_url
    saved_engines = dict(engine_module._engines)
    saved_translated = dict(session_module._translated)
    small = create_engine(url, pool_size=1, max_overflow=0, pool_timeout=5)
    engine_module._engines[url] = small
    session_module._translated.clear()
    try:
        yield small
    finally:
        small.dispose()
        engine_module._engines.clear()
        engine_module._engines.update(saved_engines)
        session_module._translated.clear()
        session_module._translated.update(saved_translated)


def _leftovers(engine: Engine) -> tuple[str, str, str, str]:
    with engine.connect() as conn:
        row = conn.execute(
            text(
                "SELECT current_user, session_user, current_setting('search_path'),"
                " current_setting('statement_timeout')"
            )
        ).one()
        return row[0], row[1], row[2], row[3]


def test_a_thousand_requests_alternating_tenants_leave_no_role_or_search_path(
    pool_of_one: Engine, app: Flask
) -> None:
    tenants = ("osaka", "gobo", "yamaguchi")
    clients = {}
    for tenant in tenants:
        with tenant_session(tenant) as session:
            create_user(session, "clerk", "窓口 花子", PASSWORD, groups=("窓口職員",))
            session.commit()
        clients[tenant] = app.test_client()
        login(clients[tenant], tenant)
    baseline = _leftovers(pool_of_one)
    assert baseline[0] == baseline[1]  # no role set: the login role itself
    paths = ("/{t}/", "/api/v1/{t}/calendar?days=3", "/api/v1/{t}/tenant", "/api/v1/{t}/calendar?days=0")
    bad = []
    for i in range(1000):
        tenant = tenants[i % 3]
        path = paths[i % len(paths)].format(t=tenant)
        response = clients[tenant].get(path)
        assert response.status_code in (200, 422), (path, response.status_code)
        state = _leftovers(pool_of_one)
        if state != baseline:
            bad.append((i, path, state))
    assert pool_of_one.pool.checkedout() == 0
    assert bad == [], bad[:5]


def test_an_error_inside_a_tenant_transaction_leaves_nothing_behind(pool_of_one: Engine) -> None:
    baseline = _leftovers(pool_of_one)
    with tenant_session("gobo") as session:
        with pytest.raises(Exception, match="permission denied"):
            session.execute(text("SELECT * FROM t_271004.audit_log")).all()
        session.rollback()
    assert _leftovers(pool_of_one) == baseline
