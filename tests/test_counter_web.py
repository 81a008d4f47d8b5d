"""The counter in the staff UI (Flask client): tickets, a case from call to hand-over, department work,
conflicts between two clerks, card reads, QR pre-applications, resume, and tenancy."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from app.audit import Actor
from app.audit.models import AuditEntry
from app.audit.service import actor_var
from app.counter import cards, preapply
from app.counter.models import Case, CaseProcedure, Ticket
from app.guidance.service import active_catalogue
from app.linkage.config import STANDARD
from app.linkage.importer import import_local_file
from app.residents.models import Resident
from app.tenancy.service import registry
from tests.conftest import csrf_token, login, make_staff, tenant_session
from tests.linkage_files import person, write

TENANT = "gobo"


def clerk(app: Flask, tenant: str = TENANT, groups: tuple[str, ...] = ("窓口職員",)) -> FlaskClient:
    login_id = f"c{uuid.uuid4().hex[:8]}"
    make_staff(tenant, login_id, groups=groups)
    client = app.test_client()
    login(client, tenant, login_id)
    return client


@pytest.fixture
def family(committed: object, tmp_path: Path) -> int:
    record = registry.get(TENANT)
    assert record is not None
    rows = [
        person(1, 1, 氏名="御坊\u3000一郎", 氏名フリガナ="ゴボウ イチロウ", 生年月日="1980-04-02", 住所="和歌山県御坊市薗350番地"),
        person(2, 1, 氏名="御坊\u3000花子", 氏名フリガナ="ゴボウ ハナコ", 続柄="妻", 世帯内順="2", 性別="2",
               生年月日="1982-07-07", 住所="和歌山県御坊市薗350番地"),
        person(3, 1, 氏名="御坊\u3000陽", 氏名フリガナ="ゴボウ ヒナタ", 続柄="子", 世帯内順="3", 生年月日="2021-05-01",
               住所="和歌山県御坊市薗350番地"),
    ]  # fmt: skip
    outcome = import_local_file(record, write(tmp_path / "f.csv", rows, STANDARD.residents), actor=Actor("cli", "t"),
                                standard_layout=True)  # fmt: skip
    assert outcome.status == "applied"
    with tenant_session(TENANT) as session:
        return session.scalars(select(Resident.id).where(Resident.relation == "世帯主")).one()


def post(client: FlaskClient, path: str, page: str, **data: str | list[str]) -> str:
    """Post a form the way the browser does (CSRF token from the page it is on); the page after."""
    response = client.post(path, data={"csrf_token": csrf_token(client, page), **data}, follow_redirects=True)
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    return response.get_data(as_text=True)


def case_version(case_id: int) -> str:
    with tenant_session(TENANT) as session:
        case = session.get(Case, case_id)
        assert case is not None
        return str(case.version)


def open_case_from_ticket(client: FlaskClient) -> int:
    post(client, f"/{TENANT}/reception", f"/{TENANT}/reception", counter="shimin")
    response = client.post(
        f"/{TENANT}/desk",
        data={
            "csrf_token": csrf_token(client, f"/{TENANT}/desk"),
            "action": "call",
            "counter": "shimin",
            "desk": "3",
        },
    )
    assert response.status_code == 302
    match = re.search(r"/cases/(\d+)", response.headers["Location"])
    assert match
    return int(match.group(1))


def test_reception_numbers_tickets_per_counter_and_day(app: Flask, committed: object) -> None:
    client = clerk(app)
    first = post(client, f"/{TENANT}/reception", f"/{TENANT}/reception", counter="shimin")
    assert "A-001" in first
    assert "A-002" in post(client, f"/{TENANT}/reception", f"/{TENANT}/reception", counter="shimin")
    assert "B-001" in post(client, f"/{TENANT}/reception", f"/{TENANT}/reception", counter="hoken-nenkin")
    desk = client.get(f"/{TENANT}/desk?counter=shimin").get_data(as_text=True)
    assert "次の方を呼ぶ（2人お待ち）" in desk
    refused = post(client, f"/{TENANT}/reception", f"/{TENANT}/reception", counter="nowhere")
    assert "窓口「nowhere」は御坊市役所にありません" in refused


def test_a_visit_from_ticket_to_department_completion(app: Flask, family: int) -> None:
    client = clerk(app)
    case_id = open_case_from_ticket(client)
    page = client.get(f"/{TENANT}/cases/{case_id}").get_data(as_text=True)
    assert "A-001" in page
    assert "A-001" in client.get(f"/{TENANT}/display").get_data(as_text=True)

    found = client.get(f"/{TENANT}/cases/{case_id}?kana=ゴボウ イチ").get_data(as_text=True)
    assert "御坊\u3000一郎" in found
    case_page = f"/{TENANT}/cases/{case_id}"
    page = post(client, f"{case_page}/identify", case_page, by="search", resident_id=str(family),
                version=case_version(case_id))  # fmt: skip
    assert "御坊\u3000花子" in page  # the household is shown

    page = post(client, f"{case_page}/events", case_page, events="tenkyo", event_date="2026-11-20",
                version=case_version(case_id))  # fmt: skip
    assert "必要な手続き" in page
    with tenant_session(TENANT) as session:
        case = session.get(Case, case_id)
        assert case is not None
        assert (
            case.catalogue_version_id == active_catalogue(session, case.created_at.date()).id
        )  # the case keeps it
    assert "市民課" in page

    page = post(client, f"{case_page}/hand-over", case_page, version=case_version(case_id),
                procedure=re.findall(r'name="procedure" value="([^"]+)"', page))  # fmt: skip
    with tenant_session(TENANT) as session:
        procedures = list(session.scalars(select(CaseProcedure).where(CaseProcedure.case_id == case_id)))
    assert procedures
    assert {p.status for p in procedures} == {"handed_over"}
    departments = {p.department for p in procedures}
    assert "回付済み（待ち）" in page

    department_clerk = clerk(app, groups=("担当課職員",))
    overview = department_clerk.get(f"/{TENANT}/queues").get_data(as_text=True)
    assert all(d in overview for d in departments)
    for procedure in procedures:
        queue = f"/{TENANT}/queues/{procedure.department}"
        post(department_clerk, queue, queue, procedure_id=str(procedure.id), version=str(procedure.version),
             action="done")  # fmt: skip
    with tenant_session(TENANT) as session:
        case = session.get(Case, case_id)
        assert case is not None
        assert case.status == "closed"  # every procedure done: the case closes itself
        ticket = session.get(Ticket, case.ticket_id)
        assert ticket is not None
        assert ticket.status == "done"
    assert client.get(f"/{TENANT}/supervisor").status_code == 403  # a counter clerk does not supervise
    supervisor = clerk(app, groups=("監督者",)).get(f"/{TENANT}/supervisor").get_data(as_text=True)
    assert "本日の平均待ち時間" in supervisor


def test_every_look_at_the_case_screen_is_in_the_operation_log(app: Flask, family: int) -> None:
    """Opening the case shows the household and the guidance, and both reads are logged for the resident."""
    client = clerk(app)
    case_id = open_case_from_ticket(client)
    case_page = f"/{TENANT}/cases/{case_id}"
    post(client, f"{case_page}/identify", case_page, by="search", resident_id=str(family),
         version=case_version(case_id))  # fmt: skip
    post(client, f"{case_page}/events", case_page, events="tenkyo", event_date="2026-11-20",
         version=case_version(case_id))  # fmt: skip
    with tenant_session(TENANT) as session:
        before = session.scalar(select(func.max(AuditEntry.seq))) or 0
    page = client.get(case_page).get_data(as_text=True)
    assert "御坊\u3000花子" in page  # the household
    assert "必要な手続き" in page  # the guidance
    assert 'name="procedure"' in page
    with tenant_session(TENANT) as session:
        logged = session.execute(
            select(AuditEntry.action, AuditEntry.subject_type, AuditEntry.subject_id, AuditEntry.purpose)
            .where(AuditEntry.seq > before)
            .order_by(AuditEntry.seq)
        ).all()
    assert [tuple(row) for row in logged] == [
        ("resident.view", "resident", str(family), f"案件{case_id}"),
        ("guidance.determined", "resident", str(family), None),
    ]


def test_two_clerks_on_one_case_never_overwrite_each_other(app: Flask, family: int) -> None:
    first, second = clerk(app), clerk(app)
    case_id = open_case_from_ticket(first)
    case_page = f"/{TENANT}/cases/{case_id}"
    seen = case_version(case_id)  # both screens show this version
    post(first, f"{case_page}/events", case_page, events="tenkyo", version=seen)
    page = post(second, f"{case_page}/events", case_page, events="shibou", version=seen)
    assert "他の職員が先に更新しました" in page
    with tenant_session(TENANT) as session:
        case = session.get(Case, case_id)
        assert case is not None
        assert case.events == ["tenkyo"]  # the first save stands


def test_card_read_identifies_the_visitor(app: Flask, family: int) -> None:
    client = clerk(app)
    case_id = open_case_from_ticket(client)
    token = actor_var.set(Actor("staff", "1", "管理", None))
    with tenant_session(TENANT) as session:
        record = registry.get(TENANT)
        assert record is not None
        reader, _ = cards.register_reader(session, registry.config(record), name="市民課 3番",
                                          office_id="shiyakusho", counter_id="shimin", created_by="1")  # fmt: skip
        cards.receive_read(session, reader, cards.parse_card_face(
            {"name": "御坊 一郎", "address": "和歌山県御坊市薗350番地", "birth": "1980-04-02", "sex": "1"}))  # fmt: skip
        session.commit()
    actor_var.reset(token)
    fragment = client.get(f"/{TENANT}/cases/{case_id}/card").get_data(as_text=True)
    assert "マイナンバーカードを読み取りました" in fragment
    assert "一致" in fragment
    read_id = re.search(r'name="read_id" value="(\d+)"', fragment)
    assert read_id
    case_page = f"/{TENANT}/cases/{case_id}"
    page = post(client, f"{case_page}/identify", case_page, by="card", resident_id=str(family),
                read_id=read_id.group(1), version=case_version(case_id))  # fmt: skip
    assert "マイナンバーカード" in page
    assert "御坊\u3000花子" in page
    assert "読み取りました" not in client.get(f"/{TENANT}/cases/{case_id}/card").get_data(as_text=True)


def test_qr_pre_application_fills_the_case_and_is_used_once(app: Flask, family: int) -> None:
    client = clerk(app)
    record = registry.get(TENANT)
    assert record is not None
    with tenant_session(TENANT) as session:
        catalogue = active_catalogue(session, __import__("datetime").date.today())
        pre, text = preapply.create(session, registry.config(record), catalogue, preapply.PreApplicationInput(
            event="tenkyo", event_date="2026-11-20", answers={}, name="御坊 一郎", kana="ゴボウ イチロウ",
            birth="1980-04-02", address="和歌山県御坊市薗350番地", phone="0738-22-0000"))  # fmt: skip
        session.commit()
    case_id = open_case_from_ticket(client)
    case_page = f"/{TENANT}/cases/{case_id}"
    page = post(client, f"{case_page}/qr", case_page, qr=text, version=case_version(case_id))
    assert "必要な手続き" in page
    with tenant_session(TENANT) as session:
        case = session.get(Case, case_id)
        assert case is not None
        assert case.events == ["tenkyo"]
        assert case.pre_application_id == pre.id
    other = open_case_from_ticket(client)
    page = post(
        client,
        f"/{TENANT}/cases/{other}/qr",
        f"/{TENANT}/cases/{other}",
        qr=text,
        version=case_version(other),
    )
    assert "別の案件で使われています" in page
    page = post(client, f"/{TENANT}/cases/{other}/qr", f"/{TENANT}/cases/{other}", qr=text[:-2] + "xx",
                version=case_version(other))  # fmt: skip
    assert "読み取れないか" in page


def _pre_application(tenant: str, name: str) -> tuple[int, str]:
    record = registry.get(tenant)
    assert record is not None
    with tenant_session(tenant) as session:
        catalogue = active_catalogue(session, __import__("datetime").date.today())
        pre, text = preapply.create(session, registry.config(record), catalogue, preapply.PreApplicationInput(
            event="tenkyo", event_date="", answers={}, name=name, kana="", birth="1980-04-02",
            address="", phone="090-0000-0000"))  # fmt: skip
        session.commit()
        return pre.id, text


def test_expired_pre_applications_are_deleted_by_their_citys_job_only(app: Flask, family: int) -> None:
    """What residents typed at home is kept while their QR code can be used, then deleted by a daily
    job per city (scheduled when the worker starts); the deletion is counted in the city's log."""
    import datetime as dt

    from app.counter.jobs import purge_pre_applications, schedule_counter_jobs
    from app.counter.models import PreApplication
    from app.jobs import queue

    client = clerk(app)
    used, used_text = _pre_application(TENANT, "御坊 一郎")
    case_id = open_case_from_ticket(client)
    post(client, f"/{TENANT}/cases/{case_id}/qr", f"/{TENANT}/cases/{case_id}", qr=used_text,
         version=case_version(case_id))  # fmt: skip
    unused, _ = _pre_application(TENANT, "御坊 二郎")
    fresh, fresh_text = _pre_application(TENANT, "御坊 三郎")
    osaka, _ = _pre_application("osaka", "大阪 太郎")
    past = __import__("app.counter.service", fromlist=["now"]).now() - dt.timedelta(days=1)
    for tenant, ids in ((TENANT, (used, unused)), ("osaka", (osaka,))):
        with tenant_session(tenant) as session:
            for pre_id in ids:
                row = session.get(PreApplication, pre_id)
                assert row is not None
                row.expires_at = past
            session.commit()

    assert purge_pre_applications(TENANT) == {"tenant": TENANT, "deleted": 2}
    assert purge_pre_applications(TENANT) == {"tenant": TENANT, "deleted": 0}  # a second run: nothing
    with tenant_session(TENANT) as session:
        assert set(session.scalars(select(PreApplication.id))) == {fresh}
        purged = session.scalars(select(AuditEntry).where(AuditEntry.action == "preapplication.purged")).all()
        assert [e.details["deleted"] for e in purged] == [2]
        assert session.get(Case, case_id).events == ["tenkyo"]  # type: ignore[union-attr]  # the case kept them
    with tenant_session("osaka") as session:  # Gobo's job never touches Osaka's schema
        assert list(session.scalars(select(PreApplication.id))) == [osaka]
    other = open_case_from_ticket(client)
    post(client, f"/{TENANT}/cases/{other}/qr", f"/{TENANT}/cases/{other}", qr=fresh_text,
         version=case_version(other))  # fmt: skip
    with tenant_session(TENANT) as session:  # an unexpired code still works after the purge
        assert session.get(Case, other).pre_application_id == fresh  # type: ignore[union-attr]

    scheduled = schedule_counter_jobs()
    assert {s.job_id for s in scheduled} == {f"{t}__preapply_purge" for t in ("osaka", "gobo", "yamaguchi")}
    assert {s.action for s in schedule_counter_jobs()} == {"kept"}
    assert {s.job_id for s in scheduled} <= set(queue().scheduled_job_registry.get_job_ids())


def test_paused_case_is_found_and_resumed(app: Flask, family: int) -> None:
    client = clerk(app)
    case_id = open_case_from_ticket(client)
    case_page = f"/{TENANT}/cases/{case_id}"
    post(
        client,
        f"{case_page}/identify",
        case_page,
        by="search",
        resident_id=str(family),
        version=case_version(case_id),
    )
    post(
        client,
        f"{case_page}/status",
        case_page,
        action="pause",
        note="印鑑を持参",
        version=case_version(case_id),
    )
    found = client.get(f"/{TENANT}/cases?status=paused&name=御坊").get_data(as_text=True)
    assert f"/cases/{case_id}" in found
    page = post(client, f"{case_page}/status", case_page, action="resume", version=case_version(case_id))
    assert "対応中" in page


def test_the_desk_lists_the_next_visitors_and_counts_the_rest(app: Flask, committed: object) -> None:
    import datetime as dt

    from app.counter.service import now, service_day
    from app.web.counter import DESK_WAITING_SHOWN

    waiting = DESK_WAITING_SHOWN + 3
    with tenant_session(TENANT) as session:
        for n in range(1, waiting + 1):
            session.add(Ticket(office_id="shiyakusho", counter_id="shimin", issued_on=service_day(), number=n,
                               label=f"A-{n:03d}", issued_at=now() - dt.timedelta(minutes=90 - n)))  # fmt: skip
        session.commit()
    page = clerk(app).get(f"/{TENANT}/desk?counter=shimin").get_data(as_text=True)
    assert f"次の方を呼ぶ（{waiting}人お待ち）" in page
    assert "A-001" in page  # the next to be called first
    assert f"A-{DESK_WAITING_SHOWN:03d}" in page
    assert f"A-{DESK_WAITING_SHOWN + 1:03d}" not in page
    assert "ほか3人がお待ちです" in page


def test_waiting_figures_per_counter_count_todays_tickets_only(app: Flask, committed: object) -> None:
    import datetime as dt

    from app.counter.service import now, service_day, waiting_figures

    at, day = now(), service_day()
    minutes = dt.timedelta(minutes=1)
    with tenant_session(TENANT) as session:
        for number, (counter, status, issued, called) in enumerate([
            ("shimin", "waiting", at - 25 * minutes, None),  # the longest waiting now: 25 minutes
            ("shimin", "waiting", at - 3 * minutes, None),
            ("shimin", "done", at - 90 * minutes, at - 84 * minutes),  # waited 6 minutes
            ("shimin", "serving", at - 40 * minutes, at - 31 * minutes),  # waited 9 minutes
            ("zeimu", "called", at - 5 * minutes, at - 4 * minutes),  # waited 1 minute
        ], start=1):  # fmt: skip
            session.add(Ticket(office_id="shiyakusho", counter_id=counter, issued_on=day, number=number,
                               label=f"X-{number}", status=status, issued_at=issued, called_at=called))  # fmt: skip
        session.add(Ticket(office_id="shiyakusho", counter_id="shimin", issued_on=day - dt.timedelta(days=1),
                           number=1, label="A-001", status="waiting", issued_at=at - 1440 * minutes))  # fmt: skip
        session.commit()
        figures = {
            f.counter_id: f
            for f in waiting_figures(session, registry.config(registry.get(TENANT)), "shiyakusho")
        }  # type: ignore[arg-type]
    assert list(figures) == ["shimin", "hoken-nenkin", "fukushi", "zeimu"]  # every counter, in order
    shimin = figures["shimin"]
    assert (shimin.waiting_now, shimin.called_today, shimin.average_wait_minutes) == (2, 2, 7.5)
    assert shimin.longest_wait_now_minutes == 25  # yesterday's forgotten ticket is not counted
    assert (figures["zeimu"].waiting_now, figures["zeimu"].average_wait_minutes) == (0, 1.0)
    assert figures["zeimu"].longest_wait_now_minutes is None
    empty = figures["fukushi"]
    assert (empty.waiting_now, empty.called_today, empty.average_wait_minutes) == (0, 0, None)


def test_queue_shows_waiting_work_and_only_todays_finished_work(app: Flask, committed: object) -> None:
    import datetime as dt

    from app.counter.service import handling_figures, service_day
    from app.dates import JST

    midnight = dt.datetime.combine(service_day(), dt.time(), JST)
    with tenant_session(TENANT) as session:
        case = Case(office_id="shiyakusho", created_by="t", updated_by="t", events=[], answers={},
                    status="handed_over", visitor_name="御坊\u3000一郎")  # fmt: skip
        session.add(case)
        session.flush()
        for procedure_id, name, status, done_at in [
            ("a", "昨日済んだ手続き", "done", midnight - dt.timedelta(minutes=1)),
            ("b", "今日済んだ手続き", "done", midnight + dt.timedelta(seconds=1)),
            ("c", "待っている手続き", "handed_over", None),
        ]:
            session.add(CaseProcedure(case_id=case.id, procedure_id=procedure_id, name=name, department="市民課",
                                      status=status, handed_over_at=midnight - dt.timedelta(hours=2),
                                      done_at=done_at))  # fmt: skip
        session.commit()
        figures = {f.department: f for f in handling_figures(session)}
        assert (figures["市民課"].waiting, figures["市民課"].done_today) == (1, 1)
    page = clerk(app, groups=("担当課職員",)).get(f"/{TENANT}/queues/市民課").get_data(as_text=True)
    assert "待っている手続き" in page
    assert "今日済んだ手続き" in page
    assert "昨日済んだ手続き" not in page
    assert "すべて表示する" not in page


def test_queue_shows_the_latest_finished_work_and_all_on_request(app: Flask, committed: object) -> None:
    import datetime as dt

    from app.counter.service import now
    from app.web.counter import QUEUE_DONE_SHOWN

    with tenant_session(TENANT) as session:
        case = Case(office_id="shiyakusho", created_by="t", updated_by="t", events=[], answers={},
                    status="handed_over", visitor_name="御坊\u3000一郎")  # fmt: skip
        session.add(case)
        session.flush()
        finished = QUEUE_DONE_SHOWN + 3
        for i in range(finished):
            session.add(CaseProcedure(case_id=case.id, procedure_id=f"p{i}", name=f"済{i:02d}番", department="税務課",
                                      status="done", handed_over_at=now() - dt.timedelta(hours=1),
                                      done_at=now() - dt.timedelta(seconds=finished - i)))  # fmt: skip
        session.add(CaseProcedure(case_id=case.id, procedure_id="open", name="待っている手続き", department="税務課",
                                  status="handed_over", handed_over_at=now() - dt.timedelta(hours=2)))  # fmt: skip
        session.commit()
    department = clerk(app, groups=("担当課職員",))
    page = department.get(f"/{TENANT}/queues/税務課").get_data(as_text=True)
    assert "待っている手続き" in page
    shown = sorted(int(n) for n in re.findall(r"済(\d\d)番", page))
    assert shown == list(range(3, finished))  # the newest ones
    assert f"本日完了した{finished}件のうち、新しい{QUEUE_DONE_SHOWN}件を表示しています" in page
    page = department.get(f"/{TENANT}/queues/税務課?done=all").get_data(as_text=True)
    assert len(re.findall(r"済(\d\d)番", page)) == finished
    assert "すべて表示する" not in page


def test_other_tenants_cannot_reach_cases_queues_or_tickets(app: Flask, family: int) -> None:
    client = clerk(app)
    case_id = open_case_from_ticket(client)
    osaka = clerk(app, "osaka", groups=("監督者",))
    for path in (f"/{TENANT}/cases/{case_id}", f"/{TENANT}/cases/{case_id}/card", f"/{TENANT}/desk",
                 f"/{TENANT}/queues", f"/{TENANT}/reception", f"/{TENANT}/supervisor", f"/{TENANT}/display"):  # fmt: skip
        assert osaka.get(path).status_code == 404, path
    assert osaka.get(f"/osaka/cases/{case_id}").status_code == 404
    assert osaka.get(f"/osaka/cases/{case_id}/card").status_code == 404


def test_residents_pre_apply_on_a_phone_and_the_counter_scans_it(app: Flask, family: int) -> None:
    resident = app.test_client()  # no login: a resident at home
    start = resident.get(f"/{TENANT}/pre").get_data(as_text=True)
    assert "転居" in start
    form = resident.get(f"/{TENANT}/pre/tenkyo").get_data(as_text=True)
    assert "確認させてください" in form or "お名前" in form
    token = csrf_token(resident, f"/{TENANT}/pre/tenkyo")
    bad = resident.post(
        f"/{TENANT}/pre/tenkyo", data={"csrf_token": token, "name": "御坊 一郎", "birth": "昭和99年1月1日"}
    )
    assert bad.status_code == 200
    assert "生年月日" in bad.get_data(as_text=True)
    assert 'aria-invalid="true"' in bad.get_data(as_text=True)
    done = resident.post(f"/{TENANT}/pre/tenkyo", data={
        "csrf_token": token, "name": "御坊 一郎", "kana": "ゴボウ イチロウ", "birth": "1980-04-02",
        "address": "和歌山県御坊市薗350番地", "phone": "0738-22-0000", "event_date": "2026-11-20"}).get_data(as_text=True)  # fmt: skip
    assert "<svg" in done
    code = re.search(r'<code class="code-text">([^<]+)</code>', done)
    assert code

    clerk_client = clerk(app)
    case_id = open_case_from_ticket(clerk_client)
    case_page = f"/{TENANT}/cases/{case_id}"
    page = post(clerk_client, f"{case_page}/qr", case_page, qr=code.group(1), version=case_version(case_id))
    assert "事前申請QR" in page  # identified: name, birth date and address match one resident
    assert "御坊\u3000花子" in page
    assert "必要な手続き" in page
    assert "gobo" not in resident.get("/osaka/pre").get_data(as_text=True)


def test_pre_application_posts_are_rate_limited(app: Flask, committed: object) -> None:
    resident = app.test_client()
    token = csrf_token(resident, f"/{TENANT}/pre/tenkyo")
    codes = [
        resident.post(f"/{TENANT}/pre/tenkyo", data={"csrf_token": token, "name": ""}).status_code
        for _ in range(7)
    ]
    assert codes[:5] == [200] * 5
    assert codes[5:] == [429, 429]


def test_pre_application_fields_have_limits_named_in_japanese(app: Flask, committed: object) -> None:
    record = registry.get("yamaguchi")
    assert record is not None
    config = registry.config(record)
    with tenant_session("yamaguchi") as session:
        catalogue = active_catalogue(session, __import__("datetime").date.today())
        with pytest.raises(preapply.PreApplicationError) as refused:
            preapply.create(session, config, catalogue, preapply.PreApplicationInput(
                event="shomeisho", event_date="", answers={}, name="山口 花子", kana="ヤ" * 61, birth="",
                address="", phone="0" * 21, certificate=next(iter(config.fees.fees)), copies="1",
                purpose="勤" * 101))  # fmt: skip
    assert refused.value.problems == {
        "kana": "フリガナは60文字までです",
        "phone": "電話番号は20文字までです",
        "purpose": "使用目的は100文字までです",
    }
