"""axe-core on every staff and resident screen, in Chromium, with real data on them."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from app.audit import Actor
from app.audit.service import actor_var
from app.counter import cards, service
from app.counter.models import Case
from app.forms.models import Application
from app.tenancy.service import registry
from tests.browser_flows import check_screen, sign_in
from tests.browser_support import LiveServer
from tests.conftest import tenant_session
from tests.test_counter_web import family  # noqa: F401  (fixture)

TENANT = "gobo"


@pytest.fixture
def visit(family: int) -> dict[str, Any]:  # noqa: F811
    """A case from ticket to hand-over, a card reader and a read, through the services."""
    token = actor_var.set(Actor("staff", "1", "窓口 一郎", "pc-1"))
    record = registry.get(TENANT)
    assert record is not None
    config = registry.config(record)
    with tenant_session(TENANT) as session:
        ticket = service.issue_ticket(session, config, "shiyakusho", "shimin")
        service.call_next(session, "shiyakusho", "shimin", "3", "1")
        case = service.open_case(session, config, "1", office_id="shiyakusho", ticket_id=ticket.id)
        service.identify(session, case.id, case.version, "1", by="search", resident_id=family)
        service.set_events(
            session,
            case.id,
            case.version,
            "1",
            events=["tenkyo"],
            event_date=dt.date(2026, 11, 20),
            answers={},
        )
        service.hand_over(session, case.id, case.version, "1")
        reader, _ = cards.register_reader(session, config, name="市民課 3番", office_id="shiyakusho",
                                          counter_id="shimin", created_by="1")  # fmt: skip
        session.commit()
        case_id = case.id
    actor_var.reset(token)
    return {"case": case_id, "resident": family, "reader": reader.id}


def test_every_screen_passes_axe(
    live_server: LiveServer, page: Any, visit: dict[str, Any], tmp_path: Path
) -> None:
    base = f"{live_server.url}/{TENANT}"
    violations: dict[str, list[dict[str, Any]]] = {}

    page.goto(f"{base}/pre")  # a resident at home, no sign-in
    check_screen(page, "resident-pre-start", violations)
    page.goto(f"{base}/pre/tenkyo")
    check_screen(page, "resident-pre-form", violations)
    page.get_by_role("button", name="QR コードを作る").click()
    check_screen(page, "resident-pre-problems", violations)

    page.goto(f"{base}/login")
    check_screen(page, "login", violations)
    sign_in(page, live_server, TENANT, ("監督者", "管理者"), name="監督 花子")
    case = visit["case"]
    screens = {
        "home": "/",
        "reception": "/reception",
        "desk": "/desk",
        "display": "/display",
        "case": f"/cases/{case}",
        "case-search": f"/cases/{case}?kana=ゴボウ",
        "cases": "/cases?status=handed_over",
        "queues": "/queues",
        "supervisor": "/supervisor",
        "residents-search": "/residents?kana=ゴボウ",
        "resident": f"/residents/{visit['resident']}",
        "guidance": f"/residents/{visit['resident']}/guidance?event=tenkyo",
        "resident-forms": f"/residents/{visit['resident']}/forms",
        "form-fill": f"/residents/{visit['resident']}/forms/juumin_idou_todoke",
        "applications": "/applications",
        "admin": "/admin/",
        "admin-users": "/admin/users",
        "admin-groups": "/admin/groups",
        "admin-forms": "/admin/forms",
        "admin-form-edit": "/admin/forms/juumin_idou_todoke",
        "admin-card-readers": "/admin/card-readers",
        "admin-breakglass": "/admin/breakglass",
        "admin-webhooks": "/admin/webhooks",
        "linkage-batches": "/linkage/batches",
    }
    for name, path in screens.items():
        page.goto(base + path)
        assert page.title(), name
        check_screen(page, f"staff-{name}", violations)

    # a department's queue, and an application filed from the case
    page.goto(f"{base}/queues")
    page.get_by_role("link").filter(has_text=re.compile("課")).first.click()
    check_screen(page, "staff-queue", violations)
    page.goto(f"{base}/cases/{case}/forms/juumin_idou_todoke")  # filled from the case: event, date, household
    check_screen(page, "staff-case-form", violations)
    page.get_by_role("button", name=re.compile("申請を登録")).click()
    page.wait_for_url(re.compile(r"/applications/\d+$"))
    check_screen(page, "staff-application", violations)
    with tenant_session(TENANT) as session:
        application_id = session.scalars(select(Application.id)).one()
        assert session.get(Case, case) is not None

    tablet_page = page.context.browser.new_context(viewport={"width": 1280, "height": 800}, locale="ja-JP",
                                                   bypass_csp=True).new_page()  # fmt: skip
    sign_in(tablet_page, live_server, TENANT, ("署名タブレット",), name="署名 端末")
    tablet_page.goto(f"{base}/tablet")
    check_screen(tablet_page, "tablet", violations)
    tablet_page.goto(f"{base}/applications/{application_id}/sign")
    check_screen(tablet_page, "tablet-sign", violations)
    tablet_page.context.close()

    # provider operations: sign-in (TOTP always) and the incident list
    ops = page.context.browser.new_context(viewport={"width": 1366, "height": 768}, locale="ja-JP",
                                           bypass_csp=True).new_page()  # fmt: skip
    ops.goto(f"{live_server.url}/ops/login")
    check_screen(ops, "ops-login", violations)
    ops.context.close()

    assert violations == {}, violations
