"""Guidance at the counter (first version): event → questions → procedures → 手続案内書.

The full counter screen (cases, hand-over, queues) arrives with issue 6; this page already gives a
clerk the complete answer for a resident's household, and prints the sheet.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import Response, abort, render_template, request

from app.dates import JST
from app.dates.japanese import DateError, parse_day, user_message
from app.forms.service import form_names
from app.guidance.catalogue import EVENT_NAMES
from app.guidance.formdata import answers_from_form
from app.guidance.rules import SUBJECT_QUESTION
from app.guidance.service import GuidanceInputError, active_catalogue, guide
from app.identity.permissions import requires
from app.tenancy.context import tenant_config, tenant_db
from app.web import tenant_web


def _answers(form: Any, question_ids: list[str]) -> dict[str, Any]:
    return answers_from_form(form, [*question_ids, SUBJECT_QUESTION])


@tenant_web.route("/residents/<int:resident_id>/guidance", methods=["GET", "POST"])
@requires("residents.view", "guidance.use")
def resident_guidance(resident_id: int) -> str | Response:
    db = tenant_db()
    try:
        active = active_catalogue(db, dt.datetime.now(JST).date())
    except GuidanceInputError:
        abort(404)
    catalogue = active.compiled.catalogue
    source = request.form if request.method == "POST" else request.args
    event = source.get("event", "")
    event_date_text = source.get("event_date", "")
    answers = _answers(source, [q.id for q in catalogue.questions])
    result, error, error_field = None, None, None
    if event:
        try:
            event_date = parse_day(event_date_text) if event_date_text.strip() else None
            event_date_text = event_date.isoformat() if event_date else ""  # the date input's form
            result = guide(db, event=event, event_date=event_date, resident_id=resident_id, answers=answers)
            db.commit()
        except DateError as exc:
            error, error_field = user_message(exc), "event_date"
        except ValueError as exc:
            error = str(exc)
            error_field = getattr(exc, "field", "event_date")
    if result is not None and source.get("print") == "1":
        from app.guidance.sheet import render_sheet

        pdf = render_sheet(tenant_config(), result)
        return Response(
            pdf, mimetype="application/pdf", headers={"Content-Disposition": "inline; filename=guidance.pdf"}
        )
    return render_template(
        "guidance/resident.html",
        resident_id=resident_id,
        catalogue=active,
        events=[(e.code, e.name) for e in catalogue.events],
        event=event,
        event_name=EVENT_NAMES.get(event, ""),
        event_date=event_date_text,
        answers=answers,
        result=result.determination if result else None,
        form_names=form_names(db) if result else {},
        form_answers={f"q_{k}": v for k, v in answers.items()},
        error=error,
        error_field=error_field,
    )
