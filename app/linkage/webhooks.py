"""Signed webhooks (Webhook 通知): events for other systems — a 行政CRM, a portal, an RPA controller.

An event is written in the transaction that made it happen (``emit``: one ``WebhookDelivery`` row
per endpoint of the tenant that subscribes to its type, one INSERT), so it is sent if and only if
that transaction committed. After the commit the delivery job is kicked (``kick``: at most one
queued run per tenant at a time) and a repeating run per tenant with endpoints retries what is due,
so nothing waits for a lost trigger.

Each request follows the Standard Webhooks specification (https://www.standardwebhooks.com/):
``webhook-id`` (the event's id, the same on every retry: receivers dedupe on it),
``webhook-timestamp`` (the attempt's Unix time) and ``webhook-signature`` (``v1,`` + base64 of
HMAC-SHA256 over ``id.timestamp.body`` with the endpoint's secret), signed with the
``standardwebhooks`` library, so a receiver can verify with the same library in its own language.
Payloads carry ids only, never personal data: the receiver reads what it needs through the API,
where every read is audited. A delivery that fails is retried with backoff for about a day, then
marked ``failed`` for the city's administrator to see and send again (admin screen).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx
from redis.exceptions import RedisError
from sqlalchemy import delete, event, func, select
from sqlalchemy.orm import Session
from standardwebhooks.webhooks import Webhook

from app.linkage.config import WEBHOOK_EVENTS, WebhookEndpoint
from app.linkage.models import WebhookDelivery
from app.secrets import SecretError, resolve

if TYPE_CHECKING:
    from app.tenancy.config import TenantConfig

log = logging.getLogger(__name__)

# Seconds after the n-th failed attempt (about 24 hours in all): receivers' outages are usually
# short, a maintenance window is a night.
BACKOFF_SECONDS = (30, 120, 600, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600)
MAX_ATTEMPTS = len(BACKOFF_SECONDS) + 1
RETENTION_DAYS = 30  # delivery records; long enough to answer "was it sent?" and to catch up
RUN_SECONDS = 50  # one run of the delivery job; what is left is taken by the next
BATCH = 20  # deliveries claimed, sent and committed together
USER_AGENT = "Madoguchi-Webhooks/1"
_EMITTED = "webhooks_emitted"
TEST_EVENT = "webhook.test"  # sent on request (admin screen), not subscribed to


def _tenant_config(session: Session) -> TenantConfig | None:
    from app.tenancy.service import registry

    binding = session.info.get("binding")
    record = registry.get(binding.key) if binding is not None else None
    return registry.config(record) if record is not None else None


def endpoints_for(config: TenantConfig, event_type: str) -> list[WebhookEndpoint]:
    return [w for w in config.linkage.webhooks if event_type in w.events]


def emit(session: Session, event_type: str, **data: Any) -> str | None:
    """Record an event in the caller's transaction, for every endpoint that subscribes to it.

    ``data`` must be ids and codes only (never names, addresses, birth dates or the My Number).
    Nothing is written when no endpoint of the tenant subscribes to ``event_type``. Returns the
    event's id (``webhook-id``), or None.
    """
    if event_type not in WEBHOOK_EVENTS:
        raise ValueError(f"unknown webhook event {event_type!r}")
    config = _tenant_config(session)
    endpoints = endpoints_for(config, event_type) if config is not None else []
    return _outbox(session, event_type, data, [w.name for w in endpoints]) if endpoints else None


def emit_test(session: Session, endpoint: str) -> str | None:
    """送信テスト: an event of type ``webhook.test`` to one endpoint, whatever it subscribes to, so
    the city and the receiver's vendor can check the URL, the network path and the signing key."""
    config = _tenant_config(session)
    if config is None or endpoint not in {w.name for w in config.linkage.webhooks}:
        return None
    return _outbox(session, TEST_EVENT, {"endpoint": endpoint}, [endpoint])


def _outbox(session: Session, event_type: str, data: dict[str, Any], endpoints: list[str]) -> str:
    event_id = f"msg_{uuid.uuid4().hex}"
    session.add_all(
        WebhookDelivery(event_id=event_id, type=event_type, data=data, endpoint=name) for name in endpoints
    )
    session.info[_EMITTED] = True
    return event_id


def payload(event: WebhookDelivery, tenant_id: str) -> bytes:
    """The request body of a recorded event."""
    return body_for(event.type, event.occurred_at, event.data, tenant_id)


def body_for(event_type: str, occurred_at: dt.datetime, data: dict[str, Any], tenant_id: str) -> bytes:
    """A request body: ``type``, ``timestamp`` (when it happened, UTC) and ``data`` (with the tenant)."""
    body = {
        "type": event_type,
        "timestamp": occurred_at.astimezone(dt.UTC).isoformat().replace("+00:00", "Z"),
        "data": {"tenant": tenant_id, **data},
    }
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode()


class DeliveryError(Exception):
    """One attempt failed; the message is Japanese and shown to the city's administrator."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def signed_headers(endpoint: WebhookEndpoint, event_id: str, body: bytes, at: dt.datetime) -> dict[str, str]:
    try:
        secret = resolve(endpoint.secret_ref)
        signer = Webhook(secret)
    except SecretError as exc:
        raise DeliveryError(str(exc)) from exc
    except Exception as exc:  # the library raises binascii.Error, EmptyWebhookSecretError or RuntimeError
        raise DeliveryError(
            f"送信先「{endpoint.name}」の署名鍵（参照 {endpoint.secret_ref}）の形式が正しくありません"
            "（whsec_ で始まる base64 の値にしてください）"
        ) from exc
    return {
        "content-type": "application/json; charset=utf-8",
        "user-agent": USER_AGENT,
        "webhook-id": event_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signer.sign(event_id, at, body.decode()),
    }


def send(client: httpx.Client, endpoint: WebhookEndpoint, event_id: str, body: bytes) -> int:
    """POST one event; the response status when it is 2xx, else ``DeliveryError``."""
    headers = signed_headers(endpoint, event_id, body, dt.datetime.now(dt.UTC))
    try:
        response = client.post(endpoint.url, content=body, headers=headers, timeout=endpoint.timeout_seconds)
    except httpx.TimeoutException as exc:
        raise DeliveryError(f"{endpoint.timeout_seconds:g}秒以内に応答がありませんでした") from exc
    except httpx.HTTPError as exc:
        raise DeliveryError(f"接続できませんでした（{type(exc).__name__}）") from exc
    if 200 <= response.status_code < 300:
        return response.status_code
    if 300 <= response.status_code < 400:
        raise DeliveryError(
            f"転送の応答（{response.status_code}）でした。転送先には送りません（設定の URL を確認してください）",
            response.status_code,
        )
    raise DeliveryError(f"受信側がエラー（{response.status_code}）を返しました", response.status_code)


def check_endpoint(
    endpoint: WebhookEndpoint, tenant_id: str, client: httpx.Client
) -> list[tuple[str, bool, str]]:
    """``madoguchi linkage check``: the signing key, then one signed ``webhook.test`` sent now (not
    through the outbox: nothing is recorded) — (check, ok, Japanese message) each."""
    at = dt.datetime.now(dt.UTC)
    body = body_for(TEST_EVENT, at, {"endpoint": endpoint.name}, tenant_id)
    try:
        signed_headers(endpoint, "msg_check", body, at)
    except DeliveryError as exc:
        return [("secret", False, str(exc))]
    checks = [("secret", True, f"署名鍵を読み込めました（参照 {endpoint.secret_ref}）")]
    started = time.perf_counter()
    try:
        status = send(client, endpoint, f"msg_check_{uuid.uuid4().hex}", body)
    except DeliveryError as exc:
        return [*checks, ("endpoint", False, f"{endpoint.url}: {exc}")]
    took = time.perf_counter() - started
    return [
        *checks,
        ("endpoint", True, f"{endpoint.url} が送信テストに {status} を返しました（{took:.2f}秒）"),
    ]


@dataclass
class RunReport:
    delivered: int = 0
    retried: int = 0
    failed: int = 0
    purged: int = 0
    more: bool = False  # stopped at the time limit with deliveries still due


def _due(session: Session, skip: Iterable[str], limit: int) -> list[WebhookDelivery]:
    query = (
        select(WebhookDelivery)
        .where(WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= func.now())
        .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    skipped = list(skip)
    if skipped:
        query = query.where(WebhookDelivery.endpoint.not_in(skipped))
    return list(session.scalars(query))


def _attempt(
    delivery: WebhookDelivery, endpoint: WebhookEndpoint | None, tenant_id: str, client: httpx.Client
) -> bool:
    """One attempt, recorded on the row; True when delivered."""
    now = dt.datetime.now(dt.UTC)
    delivery.attempts += 1
    delivery.last_attempt_at = now
    try:
        if endpoint is None:
            delivery.attempts = MAX_ATTEMPTS  # nothing to retry against
            raise DeliveryError(f"送信先「{delivery.endpoint}」は設定（linkage.yaml）にありません")
        if delivery.type not in endpoint.events and delivery.type != TEST_EVENT:
            delivery.attempts = MAX_ATTEMPTS
            raise DeliveryError(f"送信先「{endpoint.name}」はこのイベントを受け取る設定ではなくなりました")
        delivery.last_status = send(client, endpoint, delivery.event_id, payload(delivery, tenant_id))
        delivery.status, delivery.delivered_at, delivery.last_error = "delivered", now, None
        return True
    except DeliveryError as exc:
        delivery.last_status, delivery.last_error = exc.status, str(exc)
        if delivery.attempts >= MAX_ATTEMPTS:
            delivery.status = "failed"
            log.warning("webhook %s to %s failed for good: %s", delivery.event_id, delivery.endpoint, exc)
        else:
            delivery.next_attempt_at = now + dt.timedelta(seconds=BACKOFF_SECONDS[delivery.attempts - 1])
        return False


def deliver_due(
    session: Session,
    config: TenantConfig,
    tenant_id: str,
    client: httpx.Client,
    run_seconds: float = RUN_SECONDS,
) -> RunReport:
    """Send what is due, oldest first, in batches of up to ``BATCH`` committed together.

    A batch's rows are locked (``SKIP LOCKED``) while they are sent, so two runs never send one
    delivery at once. Committing a batch rather than each delivery saves a transaction and a WAL
    flush per delivery; if the process dies in between, the batch's deliveries are sent again
    (at least once: receivers dedupe on ``webhook-id``). An endpoint that fails is left alone for
    the rest of the run (its other deliveries stay due for the next run), so one receiver that is
    down does not hold the others up.
    """
    endpoints = {w.name: w for w in config.linkage.webhooks}
    report = RunReport()
    down: set[str] = set()
    deadline = time.monotonic() + run_seconds
    while True:
        if time.monotonic() >= deadline:
            report.more = bool(_due(session, down, 1))
            session.rollback()
            break
        batch = _due(session, down, BATCH)
        if not batch:
            session.rollback()
            break
        for delivery in batch:
            if delivery.endpoint in down or time.monotonic() >= deadline:
                continue  # untouched: due for the next batch or run
            if _attempt(delivery, endpoints.get(delivery.endpoint), tenant_id, client):
                report.delivered += 1
            else:
                down.add(delivery.endpoint)
                report.failed += delivery.status == "failed"
                report.retried += delivery.status == "pending"
        session.commit()
    report.purged = purge_old(session)
    session.commit()
    return report


def purge_old(session: Session, days: int = RETENTION_DAYS) -> int:
    """Delete deliveries older than the retention that have nothing left to send."""
    result = session.execute(
        delete(WebhookDelivery).where(
            WebhookDelivery.occurred_at < func.now() - dt.timedelta(days=days),
            WebhookDelivery.status != "pending",
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)


def resend(session: Session, delivery_id: int) -> WebhookDelivery | None:
    """An administrator sends a failed delivery again (from the first attempt)."""
    delivery = session.get(WebhookDelivery, delivery_id, with_for_update=True)
    if delivery is None or delivery.status != "failed":
        return delivery
    delivery.status, delivery.attempts, delivery.next_attempt_at = "pending", 0, dt.datetime.now(dt.UTC)
    session.info[_EMITTED] = True
    return delivery


@dataclass(frozen=True)
class EndpointSummary:
    endpoint: WebhookEndpoint | None
    name: str
    pending: int
    delivered: int
    failed: int
    last_delivered_at: dt.datetime | None


def summaries(session: Session, config: TenantConfig) -> list[EndpointSummary]:
    rows = session.execute(
        select(
            WebhookDelivery.endpoint,
            func.count().filter(WebhookDelivery.status == "pending"),
            func.count().filter(WebhookDelivery.status == "delivered"),
            func.count().filter(WebhookDelivery.status == "failed"),
            func.max(WebhookDelivery.delivered_at),
        ).group_by(WebhookDelivery.endpoint)
    ).all()
    counts = {r[0]: r[1:] for r in rows}
    names = [w.name for w in config.linkage.webhooks] + sorted(
        set(counts) - {w.name for w in config.linkage.webhooks}
    )
    configured = {w.name: w for w in config.linkage.webhooks}
    return [EndpointSummary(configured.get(n), n, *counts.get(n, (0, 0, 0, None))) for n in names]


def recent(
    session: Session, *, status: str | None = None, endpoint: str | None = None, limit: int = 100
) -> list[WebhookDelivery]:
    query = select(WebhookDelivery).order_by(WebhookDelivery.id.desc()).limit(limit)
    if status is not None:
        query = query.where(WebhookDelivery.status == status)
    if endpoint is not None:
        query = query.where(WebhookDelivery.endpoint == endpoint)
    return list(session.scalars(query))


def events_after(
    session: Session, tenant_id: str, after: int, limit: int, event_type: str | None = None
) -> list[dict[str, Any]]:
    """The events kept (30 days), oldest first after the cursor ``after`` (an event's ``seq``):
    for a receiver catching up after an outage, the same body as the webhook plus ``id`` (the
    ``webhook-id``) and ``seq``. An event sent to two endpoints is listed once."""
    seq = func.min(WebhookDelivery.id).label("seq")
    query = (
        select(
            seq,
            WebhookDelivery.event_id,
            WebhookDelivery.type,
            WebhookDelivery.occurred_at,
            WebhookDelivery.data,
        )
        .group_by(
            WebhookDelivery.event_id, WebhookDelivery.type, WebhookDelivery.occurred_at, WebhookDelivery.data
        )
        .having(seq > after)
        .order_by(seq)
        .limit(limit)
    )
    if event_type is not None:
        query = query.where(WebhookDelivery.type == event_type)
    return [
        {
            "seq": row.seq,
            "id": row.event_id,
            "type": row.type,
            "timestamp": row.occurred_at,
            "data": {"tenant": tenant_id, **row.data},
        }
        for row in session.execute(query)
    ]


# --- triggering the delivery job after a commit ----------------------------------------------------


KICK_KEY = "madoguchi:webhooks:kick:{tenant}"
KICK_SECONDS = 60  # a kicked run that never ran (worker gone) is covered by the repeating run


def kick(tenant_id: str) -> bool:
    """After a commit that emitted: queue a delivery run unless one is already queued and not yet
    started (one Redis round trip in a busy minute, instead of an RQ enqueue per event). The run
    clears the mark before it looks for due deliveries, so an event committed after that kicks
    again. If Redis is unreachable, the repeating run sends it within a minute."""
    from app.kv import get_redis
    from app.linkage.jobs import enqueue_webhook_delivery

    try:
        if get_redis().set(KICK_KEY.format(tenant=tenant_id), "1", nx=True, ex=KICK_SECONDS):
            enqueue_webhook_delivery(tenant_id)
    except RedisError:
        log.warning(
            "webhook delivery for %s not queued (Redis unreachable); the repeating run sends it", tenant_id
        )
        return False
    return True


def kicked_run_started(tenant_id: str) -> None:
    from app.kv import get_redis

    with contextlib.suppress(RedisError):
        get_redis().delete(KICK_KEY.format(tenant=tenant_id))


def after_commit(session: Session) -> None:
    if session.info.pop(_EMITTED, False):
        binding = session.info.get("binding")
        if binding is not None:
            kick(binding.key)


def after_rollback(session: Session) -> None:
    session.info.pop(_EMITTED, None)


event.listen(Session, "after_commit", after_commit)
event.listen(Session, "after_rollback", after_rollback)
