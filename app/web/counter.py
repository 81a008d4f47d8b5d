"""The counter screens: reception, the clerk's desk, the case, department queues, case search, supervisor.

One case screen carries a visit from identification to hand-over: the card panel polls for the
counter's reader (htmx), the QR field takes a scanner's keystrokes, the search is inline. Every
change posts the case version the clerk saw; a stale one is refused with a conflict message.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import Response, abort, g, redirect, render_template, request, url_for

from app.audit import record
from app.audit.service import actor_var
from app.counter import cards, preapply, service
from app.counter.models import CardRead, Case, Ticket
from app.counter.service import CounterError
from app.dates import JST
from app.dates.japanese import DateError, parse_day, user_message
from app.forms import service as forms
from app.guidance.catalogue import EVENT_NAMES
from app.guidance.formdata import answers_from_form
from app.guidance.service import GuidanceInputError, active_catalogue
from app.identity.permissions import requires
from app.inputs import bounded_int, form_int
from app.residents import service as residents
from app.residents.service import SearchInputError, SearchQuery
from app.tenancy.context import tenant_config, tenant_db
from app.web import tenant_web


def _clerk() -> str:
    actor = actor_var.get()
    return actor.id if actor else "unknown"


def _office(office_id: str | None = None) -> Any:
    offices = tenant_config().tenant.offices
    office = next((o for o in offices if o.id == office_id), None) if office_id else offices[0]
    if office is None:
        abort(404)
    return office


def _redirect_case(case_id: int, **args: Any) -> Response:
    return redirect(url_for("web.case_view", case_id=case_id, **args))  # type: ignore[return-value]


def _version() -> int:
    return form_int(request.form, "version", -1)


# --- reception and the desk -------------------------------------------------------------------------


@tenant_web.route("/reception", methods=["GET", "POST"])
@requires("counter.reception")
def reception() -> str:
    office = _office(request.values.get("office"))
    db = tenant_db()
    issued, error = None, None
    if request.method == "POST":
        try:
            issued = service.issue_ticket(db, tenant_config(), office.id, request.form.get("counter", ""))
            db.commit()
        except CounterError as exc:
            db.rollback()
            error = str(exc)
    figures = {f.counter_id: f for f in service.waiting_figures(db, tenant_config(), office.id)}
    return render_template(
        "counter/reception.html", office=office, figures=figures, issued=issued, error=error
    )


DESK_WAITING_SHOWN = 30  # the desk lists the next visitors; a busy morning's queue is counted


@tenant_web.route("/desk", methods=["GET", "POST"])
@requires("counter.cases")
def desk() -> str | Response:
    office = _office(request.values.get("office"))
    counter_id = request.values.get("counter") or office.counters[0].id
    desk_name = request.values.get("desk", "").strip()[:20] or "1"
    if not any(c.id == counter_id for c in office.counters):
        abort(404)
    db = tenant_db()
    message = None
    if request.method == "POST":
        action = request.form.get("action")
        if action == "call":
            ticket = service.call_next(db, office.id, counter_id, desk_name, _clerk())
            if ticket is None:
                message = "お待ちの方はいません。"
            else:
                case = service.open_case(
                    db, tenant_config(), _clerk(), office_id=office.id, ticket_id=ticket.id
                )
                db.commit()
                return _redirect_case(case.id)
        elif action == "walk_in":
            case = service.open_case(
                db, tenant_config(), _clerk(), office_id=office.id, counter_id=counter_id
            )
            db.commit()
            return _redirect_case(case.id)
        db.commit()
    waiting, waiting_count = service.waiting_tickets(db, office.id, counter_id, limit=DESK_WAITING_SHOWN)
    return render_template(
        "counter/desk.html",
        office=office,
        counter_id=counter_id,
        desk=desk_name,
        waiting=waiting,
        waiting_count=waiting_count,
        message=message,
    )


@tenant_web.route("/display")
@requires("counter.reception")
def display() -> str:
    """The hall's display: the numbers called most recently and the window to go to."""
    office = _office(request.args.get("office"))
    db = tenant_db()
    called = service.recently_called(db, office.id)
    return render_template("counter/display.html", office=office, called=called)


# --- the case -----------------------------------------------------------------------------------------


def _case_or_404(case_id: int) -> Case:
    case = tenant_db().get(Case, case_id)
    if case is None:
        abort(404)
    return case


@tenant_web.route("/cases/<int:case_id>")
@requires("counter.cases")
def case_view(case_id: int) -> str:
    db, config = tenant_db(), tenant_config()
    case = _case_or_404(case_id)
    error = request.args.get("error")
    ticket = db.get(Ticket, case.ticket_id) if case.ticket_id else None
    applications = forms.applications_of_case(db, str(case.id))
    form_names = forms.form_names(db)
    procedures = service.procedures_of(db, case.id)
    # The reads that are audited come last and flush their entries together at the commit: appending
    # to the audit chain takes the tenant's lock until the commit, so it is not held across the
    # page's other queries while every other audited request of the city waits.
    with db.no_autoflush:
        visitor, members, shown = None, [], None
        if case.resident_id is not None:
            # First: the guidance below finds the resident already loaded (one round trip fewer).
            shown = residents.view(db, case.resident_id, purpose=f"案件{case.id}", details=False)
            if shown is not None:
                visitor = residents.summary(shown.resident)
                members = [residents.summary(m) for m in shown.members]
        guidance, guidance_error = None, None
        try:
            guidance = service.guidance_for(db, case, household=shown.members if shown is not None else None)
        except CounterError as exc:
            guidance_error = str(exc)
        try:
            catalogue = (
                guidance.results[0].catalogue  # the version the guidance just used (no second lookup)
                if guidance is not None and guidance.results
                else active_catalogue(db, dt.datetime.now(JST).date(), case.catalogue_version_id)
            )
        except GuidanceInputError:
            catalogue = None
        search = None
        query = SearchQuery(kana=request.args.get("kana", ""), name=request.args.get("name", ""),
                            birth=request.args.get("birth", ""))  # fmt: skip
        search_error = None
        if query.criteria():
            try:
                result = residents.search(db, config, query, purpose=f"案件{case.id}の本人確認")
                search = [residents.summary(r) for r in result.residents]
            except SearchInputError as exc:
                search_error = str(exc)
        prefill = _prefill_from_read(db, case, request.args.get("from_read", type=bounded_int))
    db.commit()
    return render_template(
        "counter/case.html",
        case=case,
        ticket=ticket,
        visitor=visitor,
        members=members,
        guidance=guidance,
        guidance_error=guidance_error,
        catalogue=catalogue,
        events=[(e.code, e.name) for e in catalogue.compiled.catalogue.events] if catalogue else [],
        event_names=EVENT_NAMES,
        procedures=procedures,
        applications=applications,
        form_names=form_names,
        query=query,
        prefill=prefill,
        search=search,
        search_error=search_error,
        error=error,
        status_labels=STATUS_LABELS,
        procedure_labels=PROCEDURE_LABELS,
    )


STATUS_LABELS = {"open": "対応中", "handed_over": "回付済み", "paused": "中断（後日再開）", "closed": "終了"}
PROCEDURE_LABELS = {"pending": "未回付", "handed_over": "回付済み（待ち）", "in_progress": "処理中", "done": "完了",
                    "cancelled": "取消"}  # fmt: skip


@tenant_web.route("/cases/<int:case_id>/card")
@requires("counter.cases")
def case_card(case_id: int) -> str:
    """htmx fragment: the newest card read at this case's counter, with the residents it matches."""
    db, config = tenant_db(), tenant_config()
    case = _case_or_404(case_id)
    read = cards.latest_read(db, case.office_id, case.counter_id, case.created_at)
    matches = cards.match(db, config, read) if read is not None else []
    if read is not None:
        record(db, "card.shown", subject_type="case", subject_id=case.id, details={"read": read.id,
               "results": [m.resident.id for m in matches]})  # fmt: skip
    db.commit()
    return render_template("counter/_card.html", case=case, read=read, matches=matches)


@tenant_web.route("/cases/<int:case_id>/identify", methods=["POST"])
@requires("counter.cases")
def case_identify(case_id: int) -> Response:
    db = tenant_db()
    _case_or_404(case_id)
    by = request.form.get("by", "search")
    try:
        if request.form.get("household_rows"):
            household = _household_from_form(request.form)
            read_id = request.form.get("read_id", type=bounded_int)
            service.identify(db, case_id, _version(), _clerk(), by="card" if read_id else "manual",
                             household=household)  # fmt: skip
            if read_id:
                cards.claim(db, read_id, case_id)
        else:
            resident_id = form_int(request.form, "resident_id", 0)
            service.identify(db, case_id, _version(), _clerk(), by=by, resident_id=resident_id)
            if by == "card" and request.form.get("read_id"):
                cards.claim(db, form_int(request.form, "read_id", 0), case_id)
    except (CounterError, ValueError) as exc:
        db.rollback()
        return _redirect_case(case_id, error=str(exc))
    db.commit()
    return _redirect_case(case_id)


def _prefill_from_read(db: Any, case: Case, read_id: int | None) -> dict[str, Any] | None:
    """The card's 4情報 as the first row of a household not in the records (a family moving in)."""
    if read_id is None:
        return None
    read = db.get(CardRead, read_id)
    if read is None or read.claimed_case_id not in (None, case.id):
        return None
    record(
        db, "card.shown", subject_type="case", subject_id=case.id, details={"read": read.id, "prefill": True}
    )
    return {"read_id": read.id, "name": read.name, "birth": read.birth.isoformat() if read.birth else "",
            "sex": read.sex}  # fmt: skip


# The household form's rows (case.html shows 6); a posted count above it is not a form's.
MAX_HOUSEHOLD_ROWS = 20


def _household_from_form(form: Any) -> list[dict[str, Any]]:
    members: list[dict[str, Any]] = []
    for i in range(min(form_int(form, "household_rows", 0), MAX_HOUSEHOLD_ROWS)):
        name = form.get(f"m{i}_name", "").strip()
        if not name:
            continue
        members.append({
            "name": name, "kana": form.get(f"m{i}_kana", "").strip() or None,
            "birth": form.get(f"m{i}_birth", "").strip(), "sex": form_int(form, f"m{i}_sex", 9),
            "relation": form.get(f"m{i}_relation", "").strip() or ("世帯主" if not members else ""),
        })  # fmt: skip
    if not members:
        raise CounterError("household", "世帯員を1人以上入力してください")
    address = form.get("h_address", "").strip()[:200]
    for member in members:  # one household, one new address
        member["address"] = address
        member["address_extra"] = form.get("h_address_extra", "").strip()[:120] or None
        member["postal_code"] = form.get("h_postal", "").strip()[:8] or None
    for i, member in enumerate(members):
        if not member["birth"]:
            raise CounterError("household", f"{i + 1}人目（{member['name']}）の生年月日を入力してください")
    return members


@tenant_web.route("/cases/<int:case_id>/qr", methods=["POST"])
@requires("counter.cases")
def case_qr(case_id: int) -> Response:
    """A QR code scanned at the counter (the scanner types it into the field)."""
    db = tenant_db()
    case = _case_or_404(case_id)
    try:
        pre = preapply.resolve(db, g.tenant.id, request.form.get("qr", ""))
        version = _version()
        if pre.events:
            service.set_events(db, case_id, version, _clerk(), events=pre.events, event_date=pre.event_date,
                               answers=pre.answers)  # fmt: skip
            version = case.version
        case.pre_application_id = pre.id
        preapply.use(db, pre, case.id)
        if case.resident_id is None and case.household is None:
            match = preapply.matching_resident(db, tenant_config(), pre)
            if match is not None:  # exactly one resident with the same name, birth date and address
                service.identify(db, case_id, case.version, _clerk(), by="qr", resident_id=match.id)
            elif case.visitor_name is None:
                case.visitor_name = pre.applicant.get("name")
    except CounterError as exc:
        db.rollback()
        return _redirect_case(case_id, error=str(exc))
    db.commit()
    return _redirect_case(case_id)


@tenant_web.route("/cases/<int:case_id>/events", methods=["POST"])
@requires("counter.cases")
def case_events(case_id: int) -> Response:
    db = tenant_db()
    case = _case_or_404(case_id)
    answers = {**case.answers, **answers_from_form(request.form)}  # q_subject: who the event is about
    text = request.form.get("event_date", "")
    try:
        event_date = parse_day(text) if text.strip() else None
        service.set_events(db, case_id, _version(), _clerk(), events=request.form.getlist("events"),
                           event_date=event_date, answers=answers)  # fmt: skip
        service.guidance_for(db, case)  # checks the answers now, so a bad one is reported at once
    except DateError as exc:
        db.rollback()
        return _redirect_case(case_id, error=user_message(exc))
    except ValueError as exc:
        db.rollback()
        return _redirect_case(
            case_id, error=str(exc) if isinstance(exc, CounterError) else "日付が正しくありません"
        )
    db.commit()
    return _redirect_case(case_id, _anchor="guidance")


@tenant_web.route("/cases/<int:case_id>/hand-over", methods=["POST"])
@requires("counter.cases")
def case_hand_over(case_id: int) -> Response:
    db = tenant_db()
    _case_or_404(case_id)
    selected = [tuple(v.split("|", 1)) for v in request.form.getlist("procedure") if "|" in v]
    try:
        service.hand_over(db, case_id, _version(), _clerk(), selected=selected)  # type: ignore[arg-type]
    except CounterError as exc:
        db.rollback()
        return _redirect_case(case_id, error=str(exc))
    db.commit()
    return _redirect_case(case_id, _anchor="procedures")


@tenant_web.route("/cases/<int:case_id>/status", methods=["POST"])
@requires("counter.cases")
def case_status(case_id: int) -> Response:
    db = tenant_db()
    _case_or_404(case_id)
    action = request.form.get("action")
    try:
        if action == "pause":
            service.pause(db, case_id, _version(), _clerk(), note=request.form.get("note"))
        elif action == "close":
            service.close(db, case_id, _version(), _clerk())
        elif action == "resume":
            service.resume(db, tenant_config(), case_id, _clerk())
        else:
            abort(400)
    except CounterError as exc:
        db.rollback()
        return _redirect_case(case_id, error=str(exc))
    db.commit()
    return _redirect_case(case_id)


@tenant_web.route("/cases/<int:case_id>/sheet")
@requires("counter.cases")
def case_sheet(case_id: int) -> Response:
    """手続案内書 for the case (every event), A4 PDF."""
    from app.guidance.sheet import render_sheet

    db = tenant_db()
    case = _case_or_404(case_id)
    guidance = service.guidance_for(db, case, purpose="手続案内書の印刷")
    if guidance is None or not guidance.results:
        abort(404)
    pdf = (
        render_sheet(tenant_config(), guidance.results[0])
        if len(guidance.results) == 1
        else _sheets(guidance)
    )
    db.commit()
    return Response(
        pdf, mimetype="application/pdf", headers={"Content-Disposition": "inline; filename=guidance.pdf"}
    )


def _sheets(guidance: service.CaseGuidance) -> bytes:
    from app.guidance.sheet import render_sheets

    return render_sheets(tenant_config(), guidance.results)


@tenant_web.route("/cases/<int:case_id>/forms/<form_id>", methods=["GET", "POST"])
@requires("counter.cases", "forms.use")
def case_form(case_id: int, form_id: str) -> str | Response:
    """A form filled from the case: the resident, or the household described for a family moving in."""
    db, config = tenant_db(), tenant_config()
    case = _case_or_404(case_id)
    try:
        subject = service.form_subject(db, config, case)
        form = forms.active_form(db, form_id)
    except (CounterError, forms.FormInputError):
        abort(404)
    from app.web.forms import fill_page

    return fill_page(form, subject, resident_id=case.resident_id, case_ref=str(case.id),
                     back=url_for("web.case_view", case_id=case.id, _anchor="forms"))  # fmt: skip


# --- department queues, case search, supervisor -------------------------------------------------------


@tenant_web.route("/queues")
@requires("counter.queue")
def queues() -> str:
    db = tenant_db()
    return render_template("counter/queues.html", figures=service.handling_figures(db))


@tenant_web.route("/queues/<department>", methods=["GET", "POST"])
@requires("counter.queue")
def queue(department: str) -> str | Response:
    db = tenant_db()
    error = None
    if request.method == "POST":
        try:
            procedure_id = form_int(request.form, "procedure_id", 0)
            service.update_procedure(db, procedure_id, _version(), _clerk(), action=request.form.get("action", ""),
                                     note=request.form.get("note"))  # fmt: skip
        except (CounterError, ValueError) as exc:
            db.rollback()
            error = str(exc)
        else:
            db.commit()
            return redirect(url_for("web.queue", department=department))  # type: ignore[return-value]
    all_done = request.args.get("done") == "all"
    done, done_count = service.finished_today(db, department, limit=None if all_done else QUEUE_DONE_SHOWN)
    items = sorted(service.department_queue(db, department) + done,
                   key=lambda i: (i.procedure.handed_over_at or i.case.created_at, i.procedure.id))  # fmt: skip
    names = service.visitor_names(db, [i.case for i in items])
    service.record_queue_view(db, department, items)
    db.commit()
    return render_template("counter/queue.html", department=department, items=items, names=names, error=error,
                           procedure_labels=PROCEDURE_LABELS, done_shown=len(done), done_count=done_count)  # fmt: skip


QUEUE_DONE_SHOWN = 20  # finished today, newest first; ?done=all shows every one


@tenant_web.route("/cases")
@requires("counter.cases")
def case_search() -> str:
    db = tenant_db()
    status = request.args.get("status", "")
    name = request.args.get("name", "").strip()
    day = None
    if request.args.get("day"):
        try:
            day = dt.date.fromisoformat(request.args["day"])
        except ValueError:
            day = None
    rows = service.find_cases(db, status=status or None, name=name or None, day=day)
    db.commit()  # the search's operation-log entry
    return render_template("counter/cases.html", rows=rows, status=status, name=name,
                           day=request.args.get("day", ""), status_labels=STATUS_LABELS, event_names=EVENT_NAMES)  # fmt: skip


@tenant_web.route("/supervisor")
@requires("counter.supervise")
def supervisor() -> str:
    office = _office(request.args.get("office"))
    db = tenant_db()
    return render_template(
        "counter/supervisor.html",
        office=office,
        waiting=service.waiting_figures(db, tenant_config(), office.id),
        handling=service.handling_figures(db),
    )
