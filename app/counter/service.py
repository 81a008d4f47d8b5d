"""The counter's work: tickets, cases, hand-over (回付), department queues, resume (手続再開), KPIs.

Every change to a case or a procedure names the version the clerk saw; a stale change raises
``Conflict`` (two clerks never silently overwrite each other). Reading a resident through a case is
audit-logged by the services it calls (residents, guidance, forms).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, load_only
from sqlalchemy.orm.exc import StaleDataError

from app.audit import record
from app.counter.models import Case, CaseProcedure, Ticket
from app.dates import JST
from app.forms.fill import FormSubject
from app.forms.service import FormInputError, subject_for_household, subject_for_resident
from app.guidance.catalogue import EVENT_NAMES
from app.guidance.engine import Entry
from app.guidance.rules import SUBJECT_QUESTION
from app.guidance.service import MEMBER_KEYS, GuidanceInputError, GuidanceResult, guide, members_of_resident
from app.linkage.webhooks import emit
from app.residents.models import Resident
from app.tenancy.config import TenantConfig


class CounterError(ValueError):
    """Bad input at the counter; ``field`` names the form field, the message is Japanese."""

    def __init__(self, field: str, message: str):
        self.field = field
        super().__init__(message)


class NotFound(CounterError):
    def __init__(self, what: str):
        super().__init__("id", f"{what}は見つかりません")


class Conflict(CounterError):
    """Someone else saved first; the clerk reloads and redoes their change."""

    def __init__(self, what: str = "この案件"):
        super().__init__(
            "version",
            f"{what}は他の職員が先に更新しました。画面を読み込み直してから、もう一度操作してください",
        )


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def service_day(at: dt.datetime | None = None) -> dt.date:
    return (at or now()).astimezone(JST).date()


def _counter(config: TenantConfig, office_id: str, counter_id: str) -> Any:
    office = next((o for o in config.tenant.offices if o.id == office_id), None)
    if office is None:
        raise CounterError("office_id", f"庁舎「{office_id}」はありません")
    counter = next((c for c in office.counters if c.id == counter_id), None)
    if counter is None:
        raise CounterError("counter_id", f"窓口「{counter_id}」は{office.name}にありません")
    return counter


# --- tickets (番号札) -----------------------------------------------------------------------------


def issue_ticket(session: Session, config: TenantConfig, office_id: str, counter_id: str) -> Ticket:
    """The next number of the day for the counter (concurrent receptions never share a number)."""
    counter = _counter(config, office_id, counter_id)
    day = service_day()
    for _ in range(8):
        number = (
            session.scalar(
                select(func.max(Ticket.number)).where(
                    Ticket.office_id == office_id, Ticket.counter_id == counter_id, Ticket.issued_on == day
                )
            )
            or 0
        ) + 1
        ticket = Ticket(
            office_id=office_id,
            counter_id=counter_id,
            issued_on=day,
            number=number,
            label=f"{counter.ticket_prefix}-{number:03d}",
        )
        try:
            with session.begin_nested():
                session.add(ticket)
                session.flush()
        except IntegrityError:
            continue  # another reception took this number in the meantime
        record(session, "ticket.issued", subject_type="ticket", subject_id=ticket.id,
               details={"counter": counter_id, "label": ticket.label})  # fmt: skip
        return ticket
    raise CounterError("counter_id", "番号札を発行できませんでした。もう一度お試しください")


def waiting_tickets(
    session: Session, office_id: str, counter_id: str | None = None, limit: int | None = None
) -> tuple[list[Ticket], int]:
    """Today's waiting tickets in calling order (the first ``limit`` of them) and how many wait."""
    where = [Ticket.office_id == office_id, Ticket.issued_on == service_day(), Ticket.status == "waiting"]
    if counter_id:
        where.append(Ticket.counter_id == counter_id)
    tickets = list(
        session.scalars(select(Ticket).where(*where).order_by(Ticket.issued_at, Ticket.id).limit(limit))
    )
    if limit is None or len(tickets) < limit:
        return tickets, len(tickets)
    return tickets, session.scalar(select(func.count()).select_from(Ticket).where(*where)) or 0


def call_next(session: Session, office_id: str, counter_id: str, desk: str, clerk: str) -> Ticket | None:
    """呼出: the oldest waiting ticket of the counter; two clerks calling at once get different ones."""
    ticket = session.scalars(
        select(Ticket)
        .where(
            Ticket.office_id == office_id,
            Ticket.counter_id == counter_id,
            Ticket.issued_on == service_day(),
            Ticket.status == "waiting",
        )
        .order_by(Ticket.issued_at, Ticket.id)
        .limit(1)
        .with_for_update(skip_locked=True)
    ).first()
    if ticket is None:
        return None
    ticket.status, ticket.called_at, ticket.called_by, ticket.desk = "called", now(), clerk, desk
    record(session, "ticket.called", subject_type="ticket", subject_id=ticket.id,
           details={"label": ticket.label, "desk": desk})  # fmt: skip
    return ticket


def mark_no_show(session: Session, ticket_id: int) -> Ticket:
    ticket = session.get(Ticket, ticket_id)
    if ticket is None:
        raise NotFound("番号札")
    if ticket.status not in ("waiting", "called"):
        raise CounterError("ticket_id", f"番号札 {ticket.label} は対応中または終了しています")
    ticket.status, ticket.finished_at = "no_show", now()
    return ticket


# --- cases (案件) ----------------------------------------------------------------------------------


def open_case(
    session: Session,
    config: TenantConfig,
    clerk: str,
    *,
    office_id: str,
    counter_id: str | None = None,
    ticket_id: int | None = None,
) -> Case:
    """Begin with a visitor (with their ticket when they have one)."""
    ticket = None
    if ticket_id is not None:
        ticket = session.get(Ticket, ticket_id, with_for_update=True)
        if ticket is None:
            raise NotFound("番号札")
        if ticket.case_id is not None:
            existing = session.get(Case, ticket.case_id)
            if existing is not None:
                return existing
        office_id, counter_id = ticket.office_id, ticket.counter_id
    if counter_id is not None:
        _counter(config, office_id, counter_id)
    case = Case(
        office_id=office_id,
        counter_id=counter_id,
        ticket_id=ticket_id,
        created_by=clerk,
        updated_by=clerk,
        started_at=now(),
        events=[],
        answers={},
    )
    session.add(case)
    session.flush()
    if ticket is not None:
        ticket.case_id, ticket.status = case.id, "serving"
        if ticket.called_at is None:
            ticket.called_at, ticket.called_by = case.started_at, clerk
    record(session, "case.opened", subject_type="case", subject_id=case.id)
    return case


def get_case(session: Session, case_id: int) -> Case:
    case = session.get(Case, case_id)
    if case is None:
        raise NotFound("案件")
    return case


def _editable(session: Session, case_id: int, expected_version: int, clerk: str) -> Case:
    case = get_case(session, case_id)
    if case.version != expected_version:
        raise Conflict()
    if case.status == "closed":
        raise CounterError("status", "終了した案件は変更できません。再開してから操作してください")
    case.updated_by, case.updated_at = clerk, now()
    return case


def _flush(session: Session, what: str = "この案件") -> None:
    try:
        session.flush()
    except StaleDataError as exc:  # a concurrent save between our read and our write
        raise Conflict(what) from exc


def identify(
    session: Session,
    case_id: int,
    expected_version: int,
    clerk: str,
    *,
    by: str,
    resident_id: int | None = None,
    household: list[dict[str, Any]] | None = None,
    visitor_name: str | None = None,
) -> Case:
    """Who the visitor is: a resident of the records, or a household described by hand."""
    if by not in ("card", "qr", "search", "manual"):
        raise CounterError("identified_by", "本人確認の方法が正しくありません")
    case = _editable(session, case_id, expected_version, clerk)
    if resident_id is not None:
        resident = session.get(Resident, resident_id)
        if resident is None:
            raise CounterError("resident_id", f"住民 {resident_id} は見つかりません")
        case.resident_id, case.household_no, case.visitor_name = (
            resident.id,
            resident.household_no,
            resident.name,
        )
        case.household = None
    elif household:
        case.resident_id, case.household_no = None, None
        case.household = household
        case.visitor_name = visitor_name or str(household[0].get("name", ""))
    else:
        raise CounterError("resident_id", "住民を選ぶか、世帯の内容を入力してください")
    if SUBJECT_QUESTION in (case.answers or {}):  # who died etc. was chosen among another household
        case.answers = {k: v for k, v in case.answers.items() if k != SUBJECT_QUESTION}
    case.identified_by = by
    _flush(session)
    record(
        session,
        "case.identified",
        subject_type="resident" if case.resident_id else "case",
        subject_id=case.resident_id or case.id,
        details={"case": case.id, "by": by},
    )
    return case


def set_events(
    session: Session,
    case_id: int,
    expected_version: int,
    clerk: str,
    *,
    events: list[str],
    event_date: dt.date | None,
    answers: dict[str, Any],
) -> Case:
    unknown = [e for e in events if e not in EVENT_NAMES]
    if unknown or not events:
        raise CounterError(
            "events",
            "ライフイベントを選んでください" if not events else f"不明なライフイベント: {unknown[0]}",
        )
    case = _editable(session, case_id, expected_version, clerk)
    case.events, case.event_date, case.answers = list(dict.fromkeys(events)), event_date, dict(answers)
    _flush(session)
    return case


@dataclass
class CaseGuidance:
    """The guidance for every event of a case, merged (a procedure appears once per person)."""

    results: list[GuidanceResult]
    needed: list[Entry]
    confirm: list[Entry]
    open_questions: list[Any]
    catalogue_version_id: int | None


def guidance_for(
    session: Session, case: Case, purpose: str | None = None, household: list[Resident] | None = None
) -> CaseGuidance | None:
    """The guidance for the case's events (each determination audited).

    ``household``: the living members of the identified resident's household, when the caller has
    just read them in this session (the case screen shows them); the household and its attributes
    are then read once for all the case's events, not once per event.
    """
    if not case.events or (case.resident_id is None and not case.household):
        return None
    members = None
    results = []
    for event in case.events:
        try:
            if case.resident_id is not None and members is None:
                members = members_of_resident(
                    session, case.resident_id, case.event_date or dt.datetime.now(JST).date(), household
                )
            results.append(
                guide(
                    session,
                    event=event,
                    event_date=case.event_date,
                    resident_id=case.resident_id,
                    household=None
                    if case.resident_id is not None
                    else [{k: v for k, v in m.items() if k in MEMBER_KEYS} for m in case.household or []],
                    answers=case.answers,
                    catalogue_version=case.catalogue_version_id,
                    purpose=purpose,
                    members=members,
                )
            )
        except GuidanceInputError as exc:
            raise CounterError(exc.field, str(exc)) from exc
    seen: set[tuple[str, str]] = set()
    needed: list[Entry] = []
    confirm: list[Entry] = []
    questions: dict[str, Any] = {}
    for result in results:
        d = result.determination
        for entry in d.needed + d.confirm:
            key = (entry.procedure, entry.member_key or "")
            if key in seen:
                continue
            seen.add(key)
            (needed if entry.status == "needed" else confirm).append(entry)
        for q in d.open_questions:
            questions.setdefault(q.id, q)
    if case.catalogue_version_id is None and results:
        case.catalogue_version_id = results[0].catalogue.id  # a running case keeps its version
    return CaseGuidance(
        results, needed, confirm, list(questions.values()), results[0].catalogue.id if results else None
    )


def hand_over(
    session: Session,
    case_id: int,
    expected_version: int,
    clerk: str,
    *,
    selected: list[tuple[str, str]] | None = None,
) -> list[CaseProcedure]:
    """回付: the needed procedures (or those the clerk selected) go to their departments' queues.

    Procedures already handed over stay as they are; a re-run adds only what is new.
    """
    case = _editable(session, case_id, expected_version, clerk)
    guidance = guidance_for(session, case)
    if guidance is None:
        raise CounterError("events", "本人確認とライフイベントの選択を先に行ってください")
    entries = guidance.needed + guidance.confirm
    if selected is not None:
        chosen = set(selected)
        entries = [e for e in entries if (e.procedure, e.member_key or "") in chosen]
    if not entries:
        raise CounterError("procedures", "回付する手続きを選んでください")
    existing = {
        (p.procedure_id, p.member_key)
        for p in session.scalars(select(CaseProcedure).where(CaseProcedure.case_id == case.id))
    }
    at = now()
    created = []
    for entry in entries:
        key = (entry.procedure, entry.member_key or "")
        if key in existing:
            continue
        procedure = CaseProcedure(
            case_id=case.id,
            procedure_id=entry.procedure,
            name=entry.name,
            department=entry.department_name or entry.department,
            counter=entry.counter,
            member_key=entry.member_key or "",
            member_name=entry.member,
            reason=entry.reason,
            confirm=entry.status == "confirm",
            status="handed_over",
            handed_over_at=at,
        )
        session.add(procedure)
        created.append(procedure)
    case.status = "handed_over"
    _flush(session)
    record(session, "case.handed_over", subject_type="case", subject_id=case.id,
           details={"procedures": [p.procedure_id for p in created]})  # fmt: skip
    if created:
        emit(session, "case.handed_over", case_id=case.id,
             procedures=[{"id": p.id, "procedure": p.procedure_id, "department": p.department} for p in created])  # fmt: skip
    return created


def procedures_of(session: Session, case_id: int) -> list[CaseProcedure]:
    return list(
        session.scalars(
            select(CaseProcedure).where(CaseProcedure.case_id == case_id).order_by(CaseProcedure.id)
        )
    )


@dataclass
class QueueItem:
    procedure: CaseProcedure
    case: Case  # only the columns of _QUEUE_CASE_COLUMNS are loaded
    waiting_minutes: int


# What a queue row shows of its case (the queue pages are reloaded all day by every department
# clerk): not the events, answers and household (JSONB) a case row also carries.
_QUEUE_CASE_COLUMNS = load_only(Case.id, Case.visitor_name, Case.resident_id, Case.created_at)


def department_queue(session: Session, department: str) -> list[QueueItem]:
    """A department's open work: procedures handed to it and not finished, oldest first."""
    rows = session.execute(
        select(CaseProcedure, Case)
        .join(Case, Case.id == CaseProcedure.case_id)
        .options(_QUEUE_CASE_COLUMNS)
        .where(
            CaseProcedure.department == department, CaseProcedure.status.in_(("handed_over", "in_progress"))
        )
        .order_by(CaseProcedure.handed_over_at, CaseProcedure.id)
    ).all()
    at = now()
    out = []
    for procedure, case in rows:
        since = procedure.handed_over_at or case.created_at
        out.append(QueueItem(procedure, case, int((at - since).total_seconds() // 60)))
    return out


def record_queue_view(session: Session, department: str, items: list[QueueItem]) -> None:
    """A queue lists visitors' names: each view is an operation-log entry (the residents shown under
    "results", so each one's access history lists it). The caller commits."""
    record(
        session,
        "case.queue",
        subject_type="department",
        subject_id=department,
        details={
            "cases": sorted({i.case.id for i in items}),
            "results": sorted({i.case.resident_id for i in items if i.case.resident_id is not None}),
        },
    )


def finished_today(
    session: Session, department: str, limit: int | None = None
) -> tuple[list[QueueItem], int]:
    """What the department finished today, newest first (at most ``limit``), and how many in all.

    The queue page shows the latest few: by evening a busy department has finished hundreds, and the
    page is reloaded all day (every 30 seconds on each clerk's screen).
    """
    start = dt.datetime.combine(service_day(), dt.time(), JST)
    query = (
        select(CaseProcedure, Case, func.count().over())
        .join(Case, Case.id == CaseProcedure.case_id)
        .options(_QUEUE_CASE_COLUMNS)
        .where(
            CaseProcedure.department == department,
            CaseProcedure.status == "done",
            CaseProcedure.done_at >= start,
        )
        .order_by(CaseProcedure.done_at.desc(), CaseProcedure.id.desc())
    )
    if limit is not None:
        query = query.limit(limit)
    rows = session.execute(query).all()
    at = now()
    items = [
        QueueItem(p, c, int((at - (p.handed_over_at or c.created_at)).total_seconds() // 60))
        for p, c, _ in rows
    ]
    return items, rows[0][2] if rows else 0


def departments(session: Session) -> list[str]:
    return list(
        session.scalars(select(CaseProcedure.department).distinct().order_by(CaseProcedure.department))
    )


# What a department clerk can do to a procedure, and from which statuses (recorded as procedure.<action>).
PROCEDURE_ACTIONS: dict[str, tuple[str, ...]] = {
    "start": ("handed_over",),
    "done": ("handed_over", "in_progress"),
    "cancel": ("pending", "handed_over", "in_progress"),
    "reopen": ("done", "cancelled"),
}


def update_procedure(
    session: Session,
    procedure_id: int,
    expected_version: int,
    clerk: str,
    *,
    action: str,
    note: str | None = None,
) -> CaseProcedure:
    """着手 (start), 完了 (done), 取消 (cancel) or 差戻し (reopen) one procedure."""
    procedure = session.get(CaseProcedure, procedure_id)
    if procedure is None:
        raise NotFound("手続き")
    if procedure.version != expected_version:
        raise Conflict("この手続き")
    at = now()
    allowed = PROCEDURE_ACTIONS
    if action not in allowed:
        raise CounterError("action", "操作が正しくありません")
    if procedure.status not in allowed[action]:
        raise CounterError("action", f"「{procedure.name}」はこの操作ができる状態ではありません")
    if action == "start":
        procedure.status, procedure.started_at, procedure.started_by = "in_progress", at, clerk
    elif action == "done":
        procedure.status, procedure.done_at, procedure.done_by = "done", at, clerk
        procedure.started_at = procedure.started_at or at
        procedure.started_by = procedure.started_by or clerk
    elif action == "cancel":
        procedure.status = "cancelled"
    else:
        procedure.status, procedure.done_at, procedure.done_by = "handed_over", None, None
    if note is not None:
        procedure.note = note.strip()[:500] or None
    _flush(session, "この手続き")
    _close_when_finished(session, procedure.case_id)
    record(session, f"procedure.{action}", subject_type="case", subject_id=procedure.case_id,
           details={"procedure": procedure.procedure_id, "department": procedure.department})  # fmt: skip
    if action == "done":
        emit(session, "procedure.done", case_id=procedure.case_id, case_procedure_id=procedure.id,
             procedure=procedure.procedure_id, department=procedure.department)  # fmt: skip
    return procedure


def _close_when_finished(session: Session, case_id: int) -> None:
    """A handed-over case closes itself when every procedure is done or cancelled."""
    case = session.get(Case, case_id)
    if case is None or case.status != "handed_over":
        return
    open_count = session.scalar(
        select(func.count())
        .select_from(CaseProcedure)
        .where(
            CaseProcedure.case_id == case_id,
            CaseProcedure.status.in_(("pending", "handed_over", "in_progress")),
        )
    )
    if open_count == 0:
        # Not through the ORM: the clerk's copy of the case stays valid (its version is untouched by
        # a department finishing its part).
        session.execute(
            update(Case).where(Case.id == case_id).values(status="closed", closed_at=now())
            .execution_options(synchronize_session=False)
        )  # fmt: skip
        _finish_ticket(session, case.ticket_id)
        emit(session, "case.closed", case_id=case_id, by="departments")


def _finish_ticket(session: Session, ticket_id: int | None) -> None:
    if ticket_id is None:
        return
    ticket = session.get(Ticket, ticket_id)
    if ticket is not None and ticket.status in ("called", "serving"):
        ticket.status, ticket.finished_at = "done", now()


def pause(session: Session, case_id: int, expected_version: int, clerk: str, note: str | None = None) -> Case:
    """中断: the visitor comes back another day (a missing document); the case waits to be resumed."""
    case = _editable(session, case_id, expected_version, clerk)
    case.status = "paused"
    if note:
        case.note = note.strip()[:500]
    _flush(session)
    _finish_ticket(session, case.ticket_id)
    record(session, "case.paused", subject_type="case", subject_id=case.id)
    return case


def resume(
    session: Session, config: TenantConfig, case_id: int, clerk: str, ticket_id: int | None = None
) -> Case:
    """手続再開: a paused or closed case is taken up again (with today's ticket, when there is one)."""
    case = get_case(session, case_id)
    if case.status not in ("paused", "closed"):
        return case
    case.status = "open" if not procedures_of(session, case.id) else "handed_over"
    case.closed_at = None
    case.updated_by, case.updated_at = clerk, now()
    if ticket_id is not None:
        ticket = session.get(Ticket, ticket_id)
        if ticket is None:
            raise NotFound("番号札")
        ticket.case_id, ticket.status = case.id, "serving"
        case.ticket_id = ticket.id
    _flush(session)
    record(session, "case.resumed", subject_type="case", subject_id=case.id)
    return case


def close(session: Session, case_id: int, expected_version: int, clerk: str) -> Case:
    case = _editable(session, case_id, expected_version, clerk)
    case.status, case.closed_at = "closed", now()
    _flush(session)
    _finish_ticket(session, case.ticket_id)
    record(session, "case.closed", subject_type="case", subject_id=case.id)
    emit(session, "case.closed", case_id=case.id, by="counter")
    return case


def find_cases(
    session: Session,
    *,
    status: str | None = None,
    resident_id: int | None = None,
    name: str | None = None,
    day: dt.date | None = None,
    limit: int = 100,
) -> list[Case]:
    """案件の検索 (to resume one): by status, resident, visitor name or the day it was opened."""
    query = select(Case).order_by(Case.updated_at.desc()).limit(limit)
    if status:
        query = query.where(Case.status == status)
    if resident_id is not None:
        query = query.where(Case.resident_id == resident_id)
    if name:
        query = query.where(Case.visitor_name.contains(name.replace(" ", "\u3000").strip(), autoescape=True))
    if day is not None:
        start = dt.datetime.combine(day, dt.time(), JST)
        query = query.where(Case.created_at >= start, Case.created_at < start + dt.timedelta(days=1))
    cases = list(session.scalars(query))
    # The list shows visitors' names: a read of personal data like a resident search. Identified
    # visitors are listed under "results", so each one's access history shows this search.
    criteria = {
        "status": status,
        "resident_id": resident_id,
        "name": name,
        "day": day.isoformat() if day else None,
    }
    record(
        session,
        "case.search",
        subject_type="case",
        details={
            "criteria": {k: v for k, v in criteria.items() if v is not None},
            "cases": [c.id for c in cases],
            "results": sorted({c.resident_id for c in cases if c.resident_id is not None}),
        },
    )
    return cases


# --- KPIs (待ち時間・処理時間) ------------------------------------------------------------------------


@dataclass
class WaitingFigures:
    counter_id: str
    waiting_now: int
    called_today: int
    average_wait_minutes: float | None
    longest_wait_now_minutes: int | None


def waiting_figures(session: Session, config: TenantConfig, office_id: str) -> list[WaitingFigures]:
    """Per counter: who waits now, how long the longest has waited, today's average wait.

    Counted in the database, one row per counter: a busy office issues a thousand tickets a day
    and the reception screen asks on every load."""
    day, at = service_day(), now()
    office = next((o for o in config.tenant.offices if o.id == office_id), None)
    if office is None:
        raise CounterError("office_id", f"庁舎「{office_id}」はありません")
    waiting = Ticket.status == "waiting"
    rows = session.execute(
        select(
            Ticket.counter_id,
            func.count().filter(waiting),
            func.min(Ticket.issued_at).filter(waiting),
            func.count(Ticket.called_at),
            func.avg(func.extract("epoch", Ticket.called_at - Ticket.issued_at)),
        )
        .where(Ticket.office_id == office_id, Ticket.issued_on == day)
        .group_by(Ticket.counter_id)
    ).all()
    by_counter = {row[0]: row for row in rows}
    out = []
    for counter in office.counters:
        _, waiting_now, oldest, called, wait_seconds = by_counter.get(counter.id, (None, 0, None, 0, None))
        out.append(
            WaitingFigures(
                counter_id=counter.id,
                waiting_now=waiting_now,
                called_today=called,
                average_wait_minutes=None if wait_seconds is None else round(float(wait_seconds) / 60, 1),
                longest_wait_now_minutes=None if oldest is None else int((at - oldest).total_seconds() // 60),
            )
        )
    return out


@dataclass
class HandlingFigures:
    department: str
    waiting: int
    in_progress: int
    done_today: int
    average_handling_minutes: float | None


def handling_figures(session: Session) -> list[HandlingFigures]:
    """Per department: procedures handed over and waiting, in progress, done today, and today's
    average handling time; counted in the database (a backlog may run to thousands)."""
    start = dt.datetime.combine(service_day(), dt.time(), JST)
    done_today = (
        (CaseProcedure.status == "done")
        & (CaseProcedure.done_at >= start)
        & (CaseProcedure.done_at < start + dt.timedelta(days=1))
    )
    rows = session.execute(
        select(
            CaseProcedure.department,
            func.count().filter(CaseProcedure.status == "handed_over"),
            func.count().filter(CaseProcedure.status == "in_progress"),
            func.count().filter(done_today),
            func.avg(func.extract("epoch", CaseProcedure.done_at - CaseProcedure.started_at)).filter(
                done_today
            ),
        )
        .where(
            CaseProcedure.status.in_(("handed_over", "in_progress"))
            | ((CaseProcedure.status == "done") & (CaseProcedure.done_at >= start))
        )
        .group_by(CaseProcedure.department)
    ).all()
    return [
        HandlingFigures(
            department=department,
            waiting=waiting,
            in_progress=in_progress,
            done_today=done,
            average_handling_minutes=None if seconds is None else round(float(seconds) / 60, 1),
        )
        for department, waiting, in_progress, done, seconds in sorted(rows, key=lambda r: r[0])
    ]


def recently_called(session: Session, office_id: str, limit: int = 8) -> list[Ticket]:
    """What the hall display shows: today's most recent calls, newest first."""
    return list(
        session.scalars(
            select(Ticket)
            .where(
                Ticket.office_id == office_id,
                Ticket.issued_on == service_day(),
                Ticket.called_at.is_not(None),
            )
            .order_by(Ticket.called_at.desc())
            .limit(limit)
        )
    )


def visitor_names(session: Session, cases: list[Case]) -> dict[int, str]:
    """Case id → the visitor's name, for queue lists (one query, not one per row)."""
    return {c.id: c.visitor_name or "（未確認）" for c in cases}


def form_subject(session: Session, config: TenantConfig, case: Case) -> FormSubject:
    """What the case's forms are filled from: the resident's household or the one described by hand."""
    extra: dict[str, Any] = {
        "answers": case.answers,
        "event_date": case.event_date,
        "event_name": "・".join(EVENT_NAMES.get(e, e) for e in case.events),
    }
    try:
        if case.resident_id is not None:
            return subject_for_resident(session, config, case.resident_id, **extra)
        if case.household:
            return subject_for_household(config, case.household, **extra)
    except FormInputError as exc:
        raise CounterError(exc.field, str(exc)) from exc
    raise CounterError("resident_id", "本人確認を先に行ってください")
