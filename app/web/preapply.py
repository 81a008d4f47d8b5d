"""事前申請 for residents (no login, phones first): choose the event, answer, get a QR code.

Public pages: no resident data is shown or read, and nothing here reveals whether a person is in the
records. Each address is rate limited (a form that writes to the database must not be floodable).
"""

from __future__ import annotations

import datetime as dt

from flask import abort, render_template, request

from app.counter import preapply
from app.dates import JST
from app.guidance.catalogue import EVENT_NAMES
from app.guidance.formdata import answers_from_form
from app.guidance.service import ActiveCatalogue, GuidanceInputError, active_catalogue
from app.ratelimit import limit_per_address
from app.tenancy.context import public_endpoint, tenant_config, tenant_db
from app.web import tenant_web


def _catalogue() -> ActiveCatalogue:
    try:
        return active_catalogue(tenant_db(), dt.datetime.now(JST).date())
    except GuidanceInputError:
        abort(404)


@tenant_web.route("/pre")
@public_endpoint
def pre_start() -> str:
    catalogue = _catalogue()
    return render_template(
        "public/pre_start.html",
        config=tenant_config(),
        events=[(e.code, e.name) for e in catalogue.compiled.catalogue.events],
    )


@tenant_web.route("/pre/<event>", methods=["GET", "POST"])
@public_endpoint
def pre_form(event: str) -> str:
    catalogue = _catalogue()
    if event not in EVENT_NAMES or event not in {e.code for e in catalogue.compiled.catalogue.events}:
        abort(404)
    questions = [q.spec for q in catalogue.compiled.questions.values()
                 if not q.spec.events or event in q.spec.events]  # fmt: skip
    problems: dict[str, str] = {}
    values = request.form
    if request.method == "POST":
        limit_per_address("preapply", per_minute=5, per_hour=30)
        answers = answers_from_form(request.form, [q.id for q in questions])
        data = preapply.PreApplicationInput(
            event=event,
            event_date=values.get("event_date", ""),
            answers=answers,
            name=values.get("name", ""),
            kana=values.get("kana", ""),
            birth=values.get("birth", ""),
            address=values.get("address", ""),
            phone=values.get("phone", ""),
            certificate=values.get("certificate", ""),
            copies=values.get("copies", ""),
            purpose=values.get("purpose", ""),
        )
        try:
            pre, text = preapply.create(tenant_db(), tenant_config(), catalogue, data)
        except preapply.PreApplicationError as exc:
            tenant_db().rollback()
            problems = exc.problems
        else:
            tenant_db().commit()
            return render_template(
                "public/pre_done.html",
                config=tenant_config(),
                event_name=EVENT_NAMES[event],
                qr=preapply.qr_svg(text),
                code=text,
                expires=pre.expires_at.astimezone(JST),
            )
    return render_template(
        "public/pre_form.html",
        config=tenant_config(),
        event=event,
        event_name=EVENT_NAMES[event],
        questions=questions,
        values=values,
        problems=problems,
        certificates=list(tenant_config().fees.fees) if event == "shomeisho" else [],
    )
