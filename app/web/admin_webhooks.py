"""Webhook 通知: the city's administrator sees where events go, what was sent and what failed, and
sends a failed delivery again once the receiver is fixed. Deliveries carry ids only (no personal
data), so viewing them is not a read of resident data; sending one again is logged."""

from __future__ import annotations

from flask import abort, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from app.audit import record
from app.identity.permissions import requires
from app.inputs import form_int
from app.linkage import webhooks
from app.linkage.config import WEBHOOK_EVENTS
from app.linkage.models import WEBHOOK_DELIVERY_STATUSES
from app.tenancy.context import tenant_config, tenant_db
from app.web import tenant_web

STATUS_JA = {"pending": "送信待ち・再送待ち", "delivered": "送信済み", "failed": "送信できず（再送停止）"}


@tenant_web.route("/admin/webhooks")
@requires("admin.webhooks")
def admin_webhooks() -> str:
    db, config = tenant_db(), tenant_config()
    status = request.args.get("status") or None
    if status not in (None, *WEBHOOK_DELIVERY_STATUSES):
        status = None
    endpoint = request.args.get("to") or None  # not "endpoint": url_for takes that name itself
    return render_template(
        "admin/webhooks.html",
        summaries=webhooks.summaries(db, config),
        deliveries=webhooks.recent(db, status=status, endpoint=endpoint, limit=100),
        status=status,
        endpoint=endpoint,
        status_ja=STATUS_JA,
        event_ja=WEBHOOK_EVENTS,
        resent=request.args.get("resent"),
        tested=request.args.get("tested"),
    )


@tenant_web.route("/admin/webhooks/resend", methods=["POST"])
@requires("admin.webhooks")
def admin_webhook_resend() -> Response:
    db = tenant_db()
    delivery_id = form_int(request.form, "delivery_id", 0)
    delivery = webhooks.resend(db, delivery_id)
    if delivery is None:
        abort(404)
    if delivery.status != "pending":  # delivered, or already being retried
        db.rollback()
        return redirect(url_for("web.admin_webhooks"))
    record(db, "webhook.resent", subject_type="webhook_delivery", subject_id=delivery.id,
           details={"endpoint": delivery.endpoint})  # fmt: skip
    db.commit()  # the commit kicks the delivery run (app.linkage.webhooks.after_commit)
    return redirect(url_for("web.admin_webhooks", resent=delivery.id))


@tenant_web.route("/admin/webhooks/test", methods=["POST"])
@requires("admin.webhooks")
def admin_webhook_test() -> Response:
    """送信テスト: one ``webhook.test`` event to the endpoint chosen; its result shows in the list."""
    db = tenant_db()
    event_id = webhooks.emit_test(db, request.form.get("endpoint", ""))
    if event_id is None:
        abort(404)
    record(db, "webhook.tested", subject_type="webhook_event", subject_id=event_id,
           details={"endpoint": request.form.get("endpoint", "")})  # fmt: skip
    db.commit()
    return redirect(url_for("web.admin_webhooks", tested=request.form.get("endpoint", "")))
