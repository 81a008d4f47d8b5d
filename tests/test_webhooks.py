"""Signed webhooks (app/linkage/webhooks.py): events written with the change that made them, sent
to a real HTTP receiver on loopback, verified with the Standard Webhooks library a receiver would
use, retried with backoff, given up after a day, sent again by the administrator; never across
tenants, never with personal data."""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from flask import Flask
from flask.testing import FlaskClient
from pydantic import ValidationError
from sqlalchemy import func, select, update
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from app.audit import Actor
from app.audit.models import AuditEntry
from app.audit.service import actor_var
from app.counter import service as counter
from app.counter.models import Case
from app.forms import service as forms
from app.forms.models import Application
from app.jobs import queue, run_worker
from app.linkage import webhooks
from app.linkage.config import LinkageConfig, WebhookEndpoint
from app.linkage.importer import import_local_file
from app.linkage.models import WebhookDelivery
from app.tenancy.config import code_check_digit
from app.tenancy.loader import load_tenant
from app.tenancy.provisioning import deprovision, sync
from app.tenancy.service import registry
from tests.conftest import (
    ROOT,
    csrf_token,
    login,
    make_staff,
    tenant_session,
    truncate_tenant_tables,
    without_forms,
)
from tests.linkage_files import person, render

HOOK_A, HOOK_B = "hooka", "hookb"
SECRET_A = "whsec_" + base64.b64encode(b"hooka-secret-0123456789abcdef!!").decode()
SECRET_B = "whsec_" + base64.b64encode(b"hookb-secret-0123456789abcdef!!").decode()


@dataclass
class Receiver:
    """A real HTTP server on loopback: records every request; ``answers[path]`` sets the status
    (or ``"slow"``: no answer within the endpoint's timeout)."""

    server: ThreadingHTTPServer
    requests: list[dict[str, Any]] = field(default_factory=list)
    answers: dict[str, int | str] = field(default_factory=dict)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def to(self, path: str) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["path"] == path]


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    holder: dict[str, Receiver] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            rec = holder["r"]
            rec.requests.append({"path": self.path, "headers": dict(self.headers.items()), "body": body})
            answer = rec.answers.get(self.path, 200)
            if answer == "slow":
                time.sleep(2.5)
                answer = 200
            self.send_response(int(answer))
            if int(answer) in (301, 302):
                self.send_header("location", f"{rec.base}/elsewhere")
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    holder["r"] = Receiver(server)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield holder["r"]
    server.shutdown()
    server.server_close()


def _tenant_folder(tmp: Path, tenant: str, code5: str, webhooks_yaml: str) -> Path:
    root = tmp / "tenants"
    if not (root / "_defaults").exists():
        shutil.copytree(ROOT / "tenants" / "_defaults", root / "_defaults")
    folder = root / tenant
    shutil.copytree(ROOT / "tenants" / "gobo", folder)
    without_forms(folder)
    for name in ("guidance.yaml", "procedures.yaml"):
        (folder / name).unlink(missing_ok=True)
    text = (folder / "tenant.yaml").read_text(encoding="utf-8")
    code = code5 + str(code_check_digit(code5))
    (folder / "tenant.yaml").write_text(
        text.replace("id: gobo", f"id: {tenant}").replace('code: "302058"', f'code: "{code}"'),
        encoding="utf-8",
    )
    linkage = folder / "linkage.yaml"
    linkage.write_text(linkage.read_text(encoding="utf-8") + webhooks_yaml, encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def hook_tenants(
    tmp_path_factory: pytest.TempPathFactory, provisioned: object, receiver: Receiver
) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("webhooks")
    os.environ["HOOKA_WEBHOOK_SECRET"], os.environ["HOOKB_WEBHOOK_SECRET"] = SECRET_A, SECRET_B
    a = _tenant_folder(tmp, HOOK_A, "99030", f"""
webhooks:
  - name: crm
    url: {receiver.base}/a/crm
    secret_ref: env:HOOKA_WEBHOOK_SECRET
    events: [application.accepted, case.closed, import.finished, case.handed_over, procedure.done]
    timeout_seconds: 1
  - name: portal
    url: {receiver.base}/a/portal
    secret_ref: env:HOOKA_WEBHOOK_SECRET
    events: [case.closed]
    timeout_seconds: 1
""")  # fmt: skip
    b = _tenant_folder(tmp, HOOK_B, "99040", f"""
webhooks:
  - name: crm
    url: {receiver.base}/b/crm
    secret_ref: env:HOOKB_WEBHOOK_SECRET
    events: [case.closed]
""")  # fmt: skip
    sync({HOOK_A: load_tenant(a).config, HOOK_B: load_tenant(b).config})
    yield {HOOK_A: a, HOOK_B: b}
    deprovision([HOOK_A, HOOK_B])
    for key in ("HOOKA_WEBHOOK_SECRET", "HOOKB_WEBHOOK_SECRET"):
        os.environ.pop(key, None)


@pytest.fixture
def hooks(hook_tenants: dict[str, Any], receiver: Receiver) -> Iterator[Receiver]:
    records = {t: registry.get(t) for t in (HOOK_A, HOOK_B)}
    truncate_tenant_tables(records)  # type: ignore[arg-type]
    receiver.requests.clear()
    receiver.answers.clear()
    token = actor_var.set(Actor("staff", "7", "窓口 七郎", "counter-7"))
    yield receiver
    actor_var.reset(token)
    truncate_tenant_tables(records)  # type: ignore[arg-type]


def _close_case(tenant: str, commit: bool = True) -> int:
    """A counter case closed by the clerk: the change that emits ``case.closed`` (committed, or
    rolled back)."""
    with tenant_session(tenant) as session:
        case = Case(office_id="shiyakusho", created_by="7", updated_by="7")
        session.add(case)
        session.flush()
        counter.close(session, case.id, case.version, "7")
        session.commit() if commit else session.rollback()
        return case.id


def _deliver(tenant: str, client: httpx.Client | None = None) -> webhooks.RunReport:
    record = registry.get(tenant)
    assert record is not None
    with httpx.Client(follow_redirects=False, trust_env=False) as own, tenant_session(tenant) as session:
        return webhooks.deliver_due(session, registry.config(record), tenant, client or own)


def _deliveries(tenant: str) -> list[WebhookDelivery]:
    with tenant_session(tenant) as session:
        return list(session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id)))


def _make_due(tenant: str) -> None:
    with tenant_session(tenant) as session:
        session.execute(update(WebhookDelivery).values(next_attempt_at=func.now() - dt.timedelta(seconds=1)))
        session.commit()


def _verified(request: dict[str, Any], secret: str) -> Any:
    return Webhook(secret).verify(request["body"], request["headers"])


# --- configuration -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "events", "message"),
    [
        ("http://crm.example.lg.jp/hook", ["case.closed"], "https"),
        ("ftp://crm.example.lg.jp/hook", ["case.closed"], "https"),
        ("https://user:pw@crm.example.lg.jp/hook", ["case.closed"], "credentials"),
        ("/hook", ["case.closed"], "absolute"),
        ("https://crm.example.lg.jp/hook", ["resident.viewed"], "unknown webhook events"),
        ("https://crm.example.lg.jp/hook", ["case.closed", "case.closed"], "twice"),
        ("https://crm.example.lg.jp/hook", [], "at least 1"),
    ],
)
def test_endpoint_settings_are_checked(url: str, events: list[str], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        WebhookEndpoint(name="crm", url=url, secret_ref="env:X", events=events)


def test_endpoint_secret_is_a_reference_and_names_are_unique() -> None:
    with pytest.raises(ValidationError, match="secret_ref"):
        WebhookEndpoint(
            name="crm", url="https://a.example/h", secret_ref="whsec_plainvalue", events=["case.closed"]
        )
    hook = {"name": "rpa-1", "url": "https://a.example/h", "secret_ref": "env:X", "events": ["case.closed"]}
    with pytest.raises(ValidationError, match="unique"):
        LinkageConfig.model_validate({"webhooks": [hook, hook]})
    assert WebhookEndpoint(
        name="dev", url="http://127.0.0.1:8080/h", secret_ref="env:X", events=["case.closed"]
    )


# --- emitting and sending --------------------------------------------------------------------------


def test_a_committed_change_is_sent_signed_with_ids_only(hooks: Receiver) -> None:
    case_id = _close_case(HOOK_A)
    report = _deliver(HOOK_A)
    assert (report.delivered, report.retried, report.failed) == (2, 0, 0)  # crm and portal subscribe
    crm, portal = hooks.to("/a/crm"), hooks.to("/a/portal")
    assert len(crm) == len(portal) == 1
    body = _verified(crm[0], SECRET_A)  # what a receiver does with the Standard Webhooks library
    assert body["type"] == "case.closed"
    assert body["data"] == {"tenant": HOOK_A, "case_id": case_id, "by": "counter"}
    assert body["timestamp"].endswith("Z")
    assert crm[0]["headers"]["webhook-id"] == portal[0]["headers"]["webhook-id"]  # one event, one id
    assert {k.lower(): v for k, v in crm[0]["headers"].items()}[
        "content-type"
    ] == "application/json; charset=utf-8"
    with pytest.raises(WebhookVerificationError):
        _verified(crm[0], SECRET_B)  # another city's key does not verify it
    tampered = {**crm[0], "body": crm[0]["body"].replace(str(case_id).encode(), b"999999")}
    with pytest.raises(WebhookVerificationError):
        _verified(tampered, SECRET_A)
    assert [d.status for d in _deliveries(HOOK_A)] == ["delivered", "delivered"]
    assert _deliver(HOOK_A).delivered == 0  # sent once


def test_a_rolled_back_change_sends_nothing_and_unsubscribed_events_write_nothing(hooks: Receiver) -> None:
    _close_case(HOOK_A, commit=False)
    with tenant_session(HOOK_B) as session:  # hookb's endpoint takes case.closed only
        assert webhooks.emit(session, "application.accepted", application_id=1) is None
        session.commit()
    assert _deliver(HOOK_A).delivered == 0
    assert _deliver(HOOK_B).delivered == 0
    assert hooks.requests == []
    with tenant_session(HOOK_A) as session:
        assert session.scalar(select(func.count()).select_from(WebhookDelivery)) == 0
    with pytest.raises(ValueError, match="unknown webhook event"), tenant_session(HOOK_A) as session:
        webhooks.emit(session, "resident.viewed", resident_id=1)


def test_a_receiver_that_fails_is_retried_with_backoff_and_gets_the_same_id(hooks: Receiver) -> None:
    hooks.answers["/a/crm"] = 503
    _close_case(HOOK_A)
    _close_case(HOOK_A)
    report = _deliver(HOOK_A)
    # crm failed once and was left alone for the rest of the run; portal took both events.
    assert (report.delivered, report.retried) == (2, 1)
    assert len(hooks.to("/a/crm")) == 1
    assert len(hooks.to("/a/portal")) == 2
    crm = [d for d in _deliveries(HOOK_A) if d.endpoint == "crm"]
    tried = next(d for d in crm if d.attempts == 1)
    assert tried.status == "pending"
    assert tried.last_status == 503
    assert tried.last_error == "受信側がエラー（503）を返しました"
    assert tried.last_attempt_at is not None
    wait = (tried.next_attempt_at - tried.last_attempt_at).total_seconds()
    assert wait == pytest.approx(webhooks.BACKOFF_SECONDS[0], abs=1)
    assert _deliver(HOOK_A).delivered == 0  # not due yet: nothing is sent before the backoff

    hooks.answers["/a/crm"] = 200
    _make_due(HOOK_A)
    assert _deliver(HOOK_A).delivered == 2
    first, *later = hooks.to("/a/crm")
    assert first["headers"]["webhook-id"] in {r["headers"]["webhook-id"] for r in later}  # a retry: same id
    assert {d.status for d in _deliveries(HOOK_A)} == {"delivered"}


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ("slow", "1秒以内に応答がありませんでした"),
        (302, "転送の応答（302）でした"),
        (404, "受信側がエラー（404）を返しました"),
    ],
)
def test_each_kind_of_failure_is_told_in_japanese(hooks: Receiver, answer: int | str, message: str) -> None:
    hooks.answers["/a/crm"] = answer
    _close_case(HOOK_A)
    _deliver(HOOK_A)
    crm = next(d for d in _deliveries(HOOK_A) if d.endpoint == "crm")
    assert crm.status == "pending"
    assert crm.last_error is not None
    assert crm.last_error.startswith(message)
    assert hooks.to("/elsewhere") == []  # a redirect is never followed


def test_an_unreachable_receiver_and_a_missing_secret(
    hooks: Receiver, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    _close_case(HOOK_A)
    closed_port = httpx.Client(transport=httpx.HTTPTransport(retries=0))
    request.addfinalizer(closed_port.close)
    monkeypatch.delenv("HOOKA_WEBHOOK_SECRET")
    _deliver(HOOK_A, closed_port)
    errors = {d.endpoint: d.last_error or "" for d in _deliveries(HOOK_A)}
    assert (
        errors["crm"] == "環境変数 HOOKA_WEBHOOK_SECRET が設定されていません（参照 env:HOOKA_WEBHOOK_SECRET）"
    )
    assert SECRET_A not in errors["crm"]
    assert hooks.requests == []  # nothing unsigned ever leaves

    monkeypatch.setenv("HOOKA_WEBHOOK_SECRET", SECRET_A)
    record = registry.get(HOOK_A)
    assert record is not None
    endpoint = (
        registry.config(record).linkage.webhooks[0].model_copy(update={"url": "http://127.0.0.1:9/hook"})
    )
    with pytest.raises(webhooks.DeliveryError, match="接続できませんでした"):
        webhooks.send(closed_port, endpoint, "msg_x", b"{}")


def test_after_a_day_of_failures_it_stops_and_the_administrator_sends_it_again(
    hooks: Receiver, app: Flask
) -> None:
    hooks.answers["/a/crm"] = 500
    _close_case(HOOK_A)
    for _ in range(webhooks.MAX_ATTEMPTS):
        _make_due(HOOK_A)
        _deliver(HOOK_A)
    assert len(hooks.to("/a/crm")) == webhooks.MAX_ATTEMPTS
    crm = next(d for d in _deliveries(HOOK_A) if d.endpoint == "crm")
    assert (crm.status, crm.attempts) == ("failed", webhooks.MAX_ATTEMPTS)
    _make_due(HOOK_A)
    _deliver(HOOK_A)
    assert len(hooks.to("/a/crm")) == webhooks.MAX_ATTEMPTS  # given up: no more attempts

    admin = _admin(app, HOOK_A)
    page = admin.get(f"/{HOOK_A}/admin/webhooks?status=failed").get_data(as_text=True)
    assert "送信できず（再送停止）" in page
    assert "受信側がエラー（500）を返しました" in page
    assert "再送する" in page
    hooks.answers["/a/crm"] = 204
    token = csrf_token(admin, f"/{HOOK_A}/admin/webhooks")
    sent = admin.post(f"/{HOOK_A}/admin/webhooks/resend", data={"delivery_id": crm.id, "csrf_token": token})
    assert sent.status_code == 302
    assert f"resent={crm.id}" in sent.headers["Location"]
    assert _deliver(HOOK_A).delivered == 1
    again = next(d for d in _deliveries(HOOK_A) if d.endpoint == "crm")
    assert (again.status, again.last_status, again.attempts) == ("delivered", 204, 1)
    with tenant_session(HOOK_A) as session:
        logged = session.scalars(select(AuditEntry).where(AuditEntry.action == "webhook.resent")).all()
    assert [(e.subject_type, e.subject_id) for e in logged] == [("webhook_delivery", str(crm.id))]


def _admin(app: Flask, tenant: str) -> FlaskClient:
    login_id = f"hookadmin{time.monotonic_ns() % 10**8}"
    make_staff(tenant, login_id, groups=("管理者",))
    client = app.test_client()
    login(client, tenant, login_id)
    return client


def test_old_deliveries_are_purged_unless_still_being_retried(hooks: Receiver) -> None:
    _close_case(HOOK_A)
    _deliver(HOOK_A)  # both delivered
    hooks.answers["/a/crm"] = 500
    _close_case(HOOK_A)
    _deliver(HOOK_A)  # crm pending, portal delivered
    with tenant_session(HOOK_A) as session:
        session.execute(update(WebhookDelivery).values(occurred_at=func.now() - dt.timedelta(days=31)))
        session.commit()
    _make_due(HOOK_A)
    _deliver(HOOK_A)
    left = [(d.endpoint, d.status, d.attempts) for d in _deliveries(HOOK_A)]
    assert left == [("crm", "pending", 2)]  # 30 days kept; what is still being retried stays


# --- the domain's events -----------------------------------------------------------------------------


def test_the_domain_emits_its_events(hooks: Receiver, tmp_path: Path) -> None:
    record = registry.get(HOOK_A)
    assert record is not None
    with tenant_session(HOOK_A) as session:
        application = Application(
            form_id="juumin_idou",
            form_version_id=1,
            form_version="1",
            data={},
            created_by="7",
            case_ref="C-1",
        )
        session.add(application)
        session.flush()
        forms.accept(session, application.id, "7")
        session.commit()
    path = tmp_path / "juki.csv"
    path.write_bytes(render([person(1, 1), person(2, 1, 続柄="妻")], LinkageConfig().residents))
    outcome = import_local_file(
        record, path, actor=Actor("cli", "cli:test", None, "test"), standard_layout=True
    )
    assert outcome.status == "applied", outcome.message
    _deliver(HOOK_A)
    bodies = [_verified(r, SECRET_A) for r in hooks.to("/a/crm")]
    by_type = {b["type"]: b["data"] for b in bodies}
    assert by_type["application.accepted"] == {
        "tenant": HOOK_A, "application_id": application.id, "form_id": "juumin_idou", "form_version": "1",
        "case_ref": "C-1",
    }  # fmt: skip
    assert by_type["import.finished"]["status"] == "applied"
    assert by_type["import.finished"]["rows_read"] == 2
    text = b"".join(r["body"] for r in hooks.requests).decode()
    for personal in ("御坊", "ゴボウ", "妻", person(1, 1)["氏名"], person(1, 1)["宛名番号"]):
        assert personal not in text  # ids and codes only


def test_after_commit_a_worker_sends_it(hooks: Receiver) -> None:
    queue().empty()
    _close_case(HOOK_A)
    _close_case(HOOK_A)  # while a run is queued and not started, no second one is queued
    assert queue().get_job_ids() == [f"{HOOK_A}__webhooks__now"]
    run_worker(burst=True, with_scheduler=False)
    assert len(hooks.to("/a/crm")) == 2  # the one run took both
    assert len(hooks.to("/a/portal")) == 2
    _close_case(HOOK_A)  # the run cleared its mark when it started: the next commit kicks again
    assert queue().get_job_ids() == [f"{HOOK_A}__webhooks__now"]
    run_worker(burst=True, with_scheduler=False)
    assert len(hooks.to("/a/crm")) == 3


# --- tenancy -------------------------------------------------------------------------------------------


def test_one_citys_events_never_reach_another_citys_receivers_or_screens(hooks: Receiver, app: Flask) -> None:
    _close_case(HOOK_A)
    _deliver(HOOK_A)
    _deliver(HOOK_B)
    assert hooks.to("/b/crm") == []  # hookb subscribes to case.closed too, but nothing happened there
    _close_case(HOOK_B)
    _deliver(HOOK_B)
    assert len(hooks.to("/b/crm")) == 1
    _verified(hooks.to("/b/crm")[0], SECRET_B)
    assert _verified(hooks.to("/b/crm")[0], SECRET_B)["data"]["tenant"] == HOOK_B

    a_delivery = max(_deliveries(HOOK_A), key=lambda d: d.id)  # ids are per schema: take one hookb lacks
    assert a_delivery.id not in {d.id for d in _deliveries(HOOK_B)}
    b_admin = _admin(app, HOOK_B)
    page = b_admin.get(f"/{HOOK_B}/admin/webhooks").get_data(as_text=True)
    assert "/b/crm" in page
    assert "/a/crm" not in page
    assert "/a/portal" not in page
    with tenant_session(HOOK_A) as session:
        session.execute(update(WebhookDelivery).values(status="failed"))
        session.commit()
    token = csrf_token(b_admin, f"/{HOOK_B}/admin/webhooks")
    missing = b_admin.post(
        f"/{HOOK_B}/admin/webhooks/resend", data={"delivery_id": 987654321, "csrf_token": token}
    )
    other = b_admin.post(
        f"/{HOOK_B}/admin/webhooks/resend", data={"delivery_id": a_delivery.id, "csrf_token": token}
    )
    assert other.status_code == missing.status_code == 404
    assert other.get_data() == missing.get_data()  # indistinguishable from "not found"
    assert {d.status for d in _deliveries(HOOK_A)} == {"failed"}  # hookb's admin changed nothing in hooka
    cross = b_admin.get(f"/{HOOK_A}/admin/webhooks")
    assert cross.status_code == 404
    assert "/a/crm" not in cross.get_data(as_text=True)


def test_webhook_bodies_are_json_a_receiver_can_parse(hooks: Receiver) -> None:
    _close_case(HOOK_A)
    _deliver(HOOK_A)
    raw = hooks.to("/a/crm")[0]["body"]
    assert json.loads(raw.decode("utf-8"))["type"] == "case.closed"


def test_metrics_count_deliveries_per_city_and_endpoint(hooks: Receiver, app: Flask) -> None:
    from tests.test_metrics import samples

    hooks.answers["/a/portal"] = 500
    _close_case(HOOK_A)
    _deliver(HOOK_A)
    figures = {
        (dict(labels)["tenant"], dict(labels)["endpoint"], dict(labels)["status"]): value
        for (name, labels), value in samples(app).items()
        if name == "madoguchi_webhook_deliveries" and dict(labels)["tenant"] in (HOOK_A, HOOK_B)
    }
    assert figures == {
        (HOOK_A, "crm", "delivered"): 1,
        (HOOK_A, "crm", "pending"): 0,
        (HOOK_A, "crm", "failed"): 0,
        (HOOK_A, "portal", "delivered"): 0,
        (HOOK_A, "portal", "pending"): 1,
        (HOOK_A, "portal", "failed"): 0,
    }  # fmt: skip  (every status from the first delivery on: the failure alert needs the 0 before a 1)


def test_the_administrator_sends_a_test_to_one_endpoint(hooks: Receiver, app: Flask) -> None:
    admin = _admin(app, HOOK_A)
    page = f"/{HOOK_A}/admin/webhooks"
    sent = admin.post(f"{page}/test", data={"endpoint": "portal", "csrf_token": csrf_token(admin, page)})
    assert sent.status_code == 302
    assert "送信先「portal」へ送信テストの通知を送ります" in admin.get(sent.headers["Location"]).get_data(
        as_text=True
    )
    unknown = admin.post(f"{page}/test", data={"endpoint": "nowhere", "csrf_token": csrf_token(admin, page)})
    assert unknown.status_code == 404
    _deliver(HOOK_A)
    assert hooks.to("/a/crm") == []  # only the endpoint chosen
    body = _verified(hooks.to("/a/portal")[0], SECRET_A)
    assert body["type"] == "webhook.test"
    assert body["data"] == {"tenant": HOOK_A, "endpoint": "portal"}
    assert "送信テスト" in admin.get(page).get_data(as_text=True)
    with tenant_session(HOOK_A) as session:
        logged = session.scalars(select(AuditEntry.action).where(AuditEntry.action.like("webhook.%"))).all()
    assert logged == ["webhook.tested"]
    b_admin = _admin(app, HOOK_B)
    other = b_admin.post(
        f"/{HOOK_B}/admin/webhooks/test",
        data={"endpoint": "portal", "csrf_token": csrf_token(b_admin, f"/{HOOK_B}/admin/webhooks")},
    )
    assert other.status_code == 404  # hooka's endpoint is not hookb's


def test_a_receiver_catches_up_through_the_api_after_an_outage(hooks: Receiver, app: Flask) -> None:
    from tests.test_api_clients import _add_client, _token

    hooks.answers["/a/crm"] = hooks.answers["/a/portal"] = 503
    closed = [_close_case(HOOK_A) for _ in range(3)]
    _deliver(HOOK_A)
    client_id, secret = _add_client(HOOK_A, "webhooks")
    bearer = {"Authorization": f"Bearer {_token(app, HOOK_A, client_id, secret)['access_token']}"}
    api = app.test_client()
    first = api.get(f"/api/v1/{HOOK_A}/webhooks/events?limit=2", headers=bearer)
    assert first.status_code == 200
    page = first.get_json()
    assert [e["data"]["case_id"] for e in page] == closed[:2]  # once each, though sent to two endpoints
    assert page[0]["type"] == "case.closed"
    rest = api.get(f"/api/v1/{HOOK_A}/webhooks/events?after={page[-1]['seq']}", headers=bearer).get_json()
    assert [e["data"]["case_id"] for e in rest] == closed[2:]
    listed = {e["id"] for e in page + rest}
    assert listed == {d.event_id for d in _deliveries(HOOK_A)}
    assert {r["headers"]["webhook-id"] for r in hooks.requests} <= listed  # the ids the webhooks carried
    assert api.get(f"/api/v1/{HOOK_A}/webhooks/events?type=import.finished", headers=bearer).get_json() == []
    bad = api.get(f"/api/v1/{HOOK_A}/webhooks/events?type=resident.viewed", headers=bearer)
    assert bad.status_code == 422
    # another city's URL with this token: 404, as for a tenant that does not exist
    assert api.get(f"/api/v1/{HOOK_B}/webhooks/events", headers=bearer).status_code == 404
    assert api.get("/api/v1/nosuchcity/webhooks/events", headers=bearer).status_code == 404
    other_id, other_secret = _add_client(HOOK_A, "tenant.read")
    narrow = {"Authorization": f"Bearer {_token(app, HOOK_A, other_id, other_secret)['access_token']}"}
    assert api.get(f"/api/v1/{HOOK_A}/webhooks/events", headers=narrow).status_code == 403


def test_linkage_check_signs_a_test_to_each_endpoint(
    hooks: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.conftest import madoguchi

    done = madoguchi("linkage", "check", HOOK_A, "--adapter", "crm", "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    rows = json.loads(done.stdout)
    assert [(r["adapter"], r["kind"], r["check"], r["ok"]) for r in rows] == [
        ("crm", "webhook", "secret", True),
        ("crm", "webhook", "endpoint", True),
    ]
    assert "が送信テストに 200 を返しました" in rows[1]["message"]
    (request,) = hooks.to("/a/crm")
    assert _verified(request, SECRET_A)["type"] == "webhook.test"
    assert hooks.to("/a/portal") == []
    with tenant_session(HOOK_A) as session:  # a check is not an event: nothing recorded
        assert session.scalar(select(func.count()).select_from(WebhookDelivery)) == 0

    hooks.answers["/a/crm"] = 500
    failed = madoguchi("linkage", "check", HOOK_A, "--adapter", "crm")
    assert failed.returncode == 1
    assert "NG  crm" in failed.stdout
    assert "受信側がエラー（500）を返しました" in failed.stdout
    monkeypatch.delenv("HOOKA_WEBHOOK_SECRET")
    no_key = madoguchi("linkage", "check", HOOK_A, "--adapter", "portal")
    assert no_key.returncode == 1
    assert "環境変数 HOOKA_WEBHOOK_SECRET が設定されていません" in no_key.stdout
    assert len(hooks.to("/a/portal")) == 0  # nothing unsigned leaves
    unknown = madoguchi("linkage", "check", HOOK_A, "--adapter", "nowhere")
    assert unknown.returncode == 1
    assert "crm" in unknown.stderr + unknown.stdout  # the names it has
