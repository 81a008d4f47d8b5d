"""Access history of one resident (特定個人情報保護評価): service, API, CSV for Excel, page."""

from __future__ import annotations

import csv
import io
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit import Actor, actor_var, record
from app.audit.models import AuditEntry
from app.audit.pia import resident_accesses, safe_cell
from tests.audit_support import resident
from tests.conftest import tenant_session

CLERK = Actor("staff", "11", "窓口 一郎", "counter-2")
AUDITOR = Actor("staff", "99", "監査 花子", "audit-pc")


def accesses_fixture(session: Session) -> tuple[int, int]:
    """A and B, and every way the log can mention them."""
    a, b = resident(session, 1, "御坊 一郎"), resident(session, 2, "御坊 花子")
    record(session, "resident.view", subject_type="resident", subject_id=a, purpose="住民記録", actor=CLERK)
    record(session, "resident.search", subject_type="resident", details={"results": [a, b]}, actor=CLERK)
    record(session, "resident.view", subject_type="resident", subject_id=b, details={"members_shown": [b, a]},
           actor=CLERK)  # fmt: skip
    record(session, "guidance.determined", subject_type="resident", subject_id=b, details={"members": [b, a]},
           purpose="転入", actor=CLERK)  # fmt: skip
    record(session, "resident.search", subject_type="resident", details={"results": [b]}, actor=CLERK)
    record(session, "resident.view", subject_type="resident", subject_id=str(a * 10), actor=CLERK)
    session.flush()
    return a, b


def test_every_way_a_resident_is_shown_is_listed_newest_first(db: None) -> None:
    with tenant_session("gobo") as session:
        a, _ = accesses_fixture(session)
        actor_var.set(AUDITOR)  # conftest resets it after the test
        history = resident_accesses(session, a, purpose="監査")
        assert [(x.action, x.relation) for x in history.accesses] == [
            ("guidance.determined", "手続案内の対象"),
            ("resident.view", "世帯員として表示"),
            ("resident.search", "検索結果に表示"),
            ("resident.view", "本人が対象"),
        ]
        assert history.accesses[-1].purpose == "住民記録"
        assert history.accesses[-1].actor_name == "窓口 一郎"
        read = session.scalars(select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(1)).one()
        assert (read.action, read.subject_id, read.purpose, read.actor_name) == (
            "audit.resident_accesses_viewed", str(a), "監査", "監査 花子",
        )  # fmt: skip
        again = resident_accesses(session, a, limit=2)
        assert [x.action for x in again.accesses] == ["audit.resident_accesses_viewed", "guidance.determined"]
        assert again.more
        rest = resident_accesses(session, a, before_seq=again.accesses[-1].seq)
        assert len(rest.accesses) == 3
        assert not rest.more


def test_the_api_lists_accesses_and_logs_the_read(client_for: Any) -> None:
    gobo = client_for("gobo", "auditor", groups=("監査担当",))
    with tenant_session("gobo") as session:
        a, _ = accesses_fixture(session)
        session.commit()
    response = gobo.get(f"/api/v1/gobo/audit/subjects/resident/{a}?purpose=監査&limit=3")
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert body["resident_id"] == a
    assert body["more"] is True
    first = body["accesses"][0]
    assert (first["action"], first["action_ja"], first["relation"]) == (
        "guidance.determined",
        "手続案内の判定",
        "手続案内の対象",
    )
    assert first["actor"] == {"type": "staff", "id": "11", "name": "窓口 一郎"}
    assert first["details"] == {"members": [body["accesses"][1]["details"]["members_shown"][0], a]}
    with tenant_session("gobo") as session:
        read = session.scalars(select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(1)).one()
    assert (read.action, read.subject_id, read.purpose, read.actor_name) == (
        "audit.resident_accesses_viewed", str(a), "監査", "窓口 太郎",
    )  # fmt: skip
    assert gobo.get("/api/v1/gobo/audit/subjects/resident/987654").status_code == 404


def test_the_csv_opens_in_excel_as_text(client_for: Any) -> None:
    gobo = client_for("gobo", "auditor", groups=("監査担当",))
    with tenant_session("gobo") as session:
        a = resident(session, 1, "御坊 一郎")
        for name in ('=HYPERLINK("http://x")', "+1", "-2", "@SUM(A1)", "\tタブ", "\r改行", "普通"):
            record(session, "resident.view", subject_type="resident", subject_id=a,
                   actor=Actor("staff", "1", name, "t"))  # fmt: skip
        session.commit()
    response = gobo.get(f"/gobo/audit/residents/{a}.csv?purpose=監査")
    assert response.status_code == 200
    assert response.content_type == "text/csv; charset=utf-8"
    assert f"access-history-gobo-{a}.csv" in response.headers["Content-Disposition"]
    raw = response.get_data()
    assert raw.startswith("\ufeff".encode())
    table = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"), newline="")))
    assert table[0][:5] == ["連番", "日時（日本時間）", "操作", "操作コード", "関係"]
    names = [row[7] for row in table[1:]]
    assert names == ["普通", "'\r改行", "'\tタブ", "'@SUM(A1)", "'-2", "'+1", '\'=HYPERLINK("http://x")']
    assert b"\r\n" in raw
    with tenant_session("gobo") as session:
        last = session.scalars(select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(1)).one()
    assert last.action == "audit.resident_accesses_exported"
    assert safe_cell("a\x00b") == "a\ufffdb"


def test_the_page_shows_the_history_and_is_logged(client_for: Any) -> None:
    gobo = client_for("gobo", "auditor", groups=("監査担当",))
    with tenant_session("gobo") as session:
        a, _ = accesses_fixture(session)
        session.commit()
    page = gobo.get(f"/gobo/audit/residents/{a}?purpose=監査")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "アクセス履歴" in html
    assert "御坊 一郎" in html
    assert html.count("<tr><td>") == 4
    assert "手続案内の判定" in html
    assert "窓口 一郎" in html
    assert f"/gobo/audit/residents/{a}.csv?purpose=" in html
    assert gobo.get("/gobo/audit/residents/987654").status_code == 404
    with tenant_session("gobo") as session:
        actions = session.scalars(select(AuditEntry.action).order_by(AuditEntry.seq)).all()
    assert actions[-1] == "audit.resident_accesses_viewed"
