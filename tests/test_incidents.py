"""Incidents: opened and resolved by Alertmanager's webhook, acknowledged and reported by people."""

from __future__ import annotations

import datetime as dt
import re
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient

from app.cli import main
from app.observability import incidents as svc
from tests.conftest import provider_client

TOKEN = "webhook-test-token"
STARTS = "2027-03-26T09:12:30.123456789Z"  # Friday 18:12:30 JST


@pytest.fixture
def webhook(app: Flask, db: None, monkeypatch: pytest.MonkeyPatch) -> FlaskClient:
    """Alertmanager's posts and a provider staff member's pages, in one signed-in client."""
    monkeypatch.setenv("MADOGUCHI_ALERTMANAGER_WEBHOOK_TOKEN", TOKEN)
    client, _ = provider_client(app, login_id=f"ops-{uuid.uuid4().hex[:6]}")
    return client


def test_incident_pages_and_api_need_provider_staff(app: Flask, db: None, client_for: Any) -> None:
    anonymous = app.test_client()
    page = anonymous.get("/ops/incidents")
    assert page.status_code == 302
    assert "/ops/login" in page.headers["Location"]
    assert anonymous.get("/api/ops/incidents").status_code == 401
    city_clerk = client_for("osaka")
    assert "/ops/login" in city_clerk.get("/ops/incidents").headers["Location"]
    assert city_clerk.get("/api/ops/incidents").status_code == 401


def notification(
    status: str = "firing",
    tenant: str = "osaka",
    receiver: str = "support-desk-osaka",
    ends: str = "0001-01-01T00:00:00Z",
) -> dict[str, Any]:
    return {
        "version": "4",
        "status": status,
        "receiver": receiver,
        "groupLabels": {"alertname": "MadoguchiErrorBudgetBurn", "tenant": tenant},
        "alerts": [
            {
                "status": status,
                "labels": {
                    "alertname": "MadoguchiErrorBudgetBurn",
                    "tenant": tenant,
                    "slo": "availability",
                    "severity": "page",
                },
                "annotations": {
                    "summary": f"{tenant}: 可用性（開庁時間内の稼働）の SLO 予算を消費しています（至急）"
                },
                "startsAt": STARTS,
                "endsAt": ends,
                "fingerprint": f"fp-{tenant}",
            }
        ],
    }


def post(client: FlaskClient, payload: dict[str, Any], token: str | None = TOKEN) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return client.post("/ops/alertmanager/webhook", json=payload, headers=headers)


def test_webhook_needs_the_bearer_token(webhook: FlaskClient, monkeypatch: pytest.MonkeyPatch) -> None:
    assert post(webhook, notification(), token=None).status_code == 401
    assert post(webhook, notification(), token="wrong").status_code == 401
    monkeypatch.delenv("MADOGUCHI_ALERTMANAGER_WEBHOOK_TOKEN")
    assert post(webhook, notification()).status_code == 503  # no secret: refuse, never accept all


def test_firing_opens_once_and_resolved_closes(webhook: FlaskClient) -> None:
    first = post(webhook, notification())
    assert first.status_code == 200, first.get_data(as_text=True)
    again = post(webhook, notification(receiver="oncall"))  # repeated by Alertmanager
    assert again.get_json()["incidents"] == first.get_json()["incidents"]
    (incident_id,) = first.get_json()["incidents"]
    data = webhook.get(f"/api/ops/incidents/{incident_id}").get_json()
    assert data["tenant"] == "osaka"
    assert data["detected_at"] == "2027-03-26T09:12:30.123456+00:00"  # the alert's start, not arrival
    assert data["receivers"] == ["support-desk-osaka", "oncall"]
    assert data["initial_response"]["target_minutes"] == 30
    assert data["status"] == "open"
    post(webhook, notification(status="resolved", ends="2027-03-26T09:40:00Z"))
    data = webhook.get(f"/api/ops/incidents/{incident_id}").get_json()
    assert data["status"] == "resolved"
    assert data["resolved_at"] == "2027-03-26T09:40:00+00:00"
    assert data["resolved_by"] == "alertmanager"


def test_initial_response_against_the_target(webhook: FlaskClient) -> None:
    (osaka,) = post(webhook, notification()).get_json()["incidents"]
    (gobo,) = post(webhook, notification(tenant="gobo", receiver="oncall")).get_json()["incidents"]
    detected = dt.datetime.fromisoformat("2027-03-26T09:12:30+00:00")
    with svc.control_session() as session:
        svc.acknowledge(session, osaka, "運用 一郎", at=detected + dt.timedelta(minutes=42))
        svc.acknowledge(session, osaka, "二番目", at=detected + dt.timedelta(minutes=50))  # not the first
        svc.acknowledge(session, gobo, "運用 一郎", at=detected + dt.timedelta(minutes=12))
        session.commit()
    osaka_data = webhook.get(f"/api/ops/incidents/{osaka}").get_json()
    assert osaka_data["acknowledged_by"] == "運用 一郎"
    assert osaka_data["initial_response"]["state"] == "missed"
    assert osaka_data["initial_response"]["label"].startswith("未達（42分")
    gobo_data = webhook.get(f"/api/ops/incidents/{gobo}").get_json()
    assert gobo_data["initial_response"]["state"] == "no_target"  # 速やかに: shown, never judged
    assert "速やかに" in gobo_data["initial_response"]["label"]
    met = svc.compliance(
        svc.Incident(
            detected_at=detected,
            acknowledged_at=detected + dt.timedelta(minutes=29),
            response_target_minutes=30,
        )
    )
    assert met.state == "met"


def test_pages_acknowledge_and_write_the_report_then_print_it(webhook: FlaskClient, tmp_path: Path) -> None:
    (incident_id,) = post(webhook, notification()).get_json()["incidents"]
    listing = webhook.get("/ops/incidents?status=unresolved").get_data(as_text=True)
    assert f"/ops/incidents/{incident_id}" in listing
    page = webhook.get(f"/ops/incidents/{incident_id}").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    assert (
        webhook.post(f"/ops/incidents/{incident_id}/ack", data={"by": "運用 花子"}).status_code == 400
    )  # no CSRF
    response = webhook.post(
        f"/ops/incidents/{incident_id}/ack", data={"by": "運用 花子", "csrf_token": token}
    )
    assert response.status_code == 302
    report = {
        "by": "運用 花子",
        "cause": "データベース接続数の上限に達し、新しい接続が拒否された。",
        "recovery": "接続プールの設定を見直し、アプリケーションを再起動した。",
        "prevention": "接続数の監視とアラートを追加する。",
        "log_excerpts": "2027-03-26 18:12:31 ERROR madoguchi.error: unhandled error",
        "csrf_token": token,
    }
    written = webhook.post(f"/ops/incidents/{incident_id}/report", data=report)
    assert written.status_code == 302
    assert "error" not in written.headers["Location"], written.headers["Location"]
    page = webhook.get(f"/ops/incidents/{incident_id}").get_data(as_text=True)
    assert "接続プールの設定を見直し" in page
    assert "運用 花子" in page
    pdf = webhook.get(f"/ops/incidents/{incident_id}/report.pdf")
    assert pdf.status_code == 200
    assert pdf.content_type == "application/pdf"
    path = tmp_path / "report.pdf"
    path.write_bytes(pdf.get_data())
    text = subprocess.run(
        ["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True
    ).stdout
    for expected in (
        "障害報告書",
        "大阪市",
        "データベース接続数の上限",
        "再発防止策",
        "目標30分",
        "問い合わせ窓口",
    ):
        assert expected in text, expected
    pages = subprocess.run(["pdfinfo", str(path)], capture_output=True, text=True, check=True).stdout
    assert "A4" in pages


def test_json_api_writes_need_json(webhook: FlaskClient) -> None:
    (incident_id,) = post(webhook, notification()).get_json()["incidents"]
    assert webhook.post(f"/api/ops/incidents/{incident_id}/ack", data={"by": "x"}).status_code == 415
    ok = webhook.post(f"/api/ops/incidents/{incident_id}/ack", json={"by": "運用 次郎"})
    assert ok.status_code == 200
    assert ok.get_json()["status"] == "acknowledged"
    bad = webhook.post(
        f"/api/ops/incidents/{incident_id}/resolve", json={"by": "x", "at": "2020-01-01T00:00:00+00:00"}
    )
    assert bad.status_code == 422  # before detection
    report = webhook.put(
        f"/api/ops/incidents/{incident_id}/report", json={"by": "運用 次郎", "cause": "原因の記述"}
    )
    assert report.get_json()["report"]["cause"] == "原因の記述"
    assert webhook.get("/api/ops/incidents/999999").status_code == 404


def test_cli_list_ack_resolve_report(webhook: FlaskClient, tmp_path: Path) -> None:
    (incident_id,) = post(webhook, notification(tenant="yamaguchi", receiver="oncall")).get_json()[
        "incidents"
    ]
    runner = CliRunner()
    listed = runner.invoke(main, ["incidents", "list", "--status", "unresolved"])
    assert listed.exit_code == 0, listed.output
    assert f"#{incident_id}" in listed.output
    acked = runner.invoke(main, ["incidents", "ack", str(incident_id), "--by", "当番 三郎"])
    assert acked.exit_code == 0, acked.output
    logs = tmp_path / "app.log"
    logs.write_text(
        '{"time": "2027-03-26T09:13:00+00:00", "level": "ERROR", "logger": "madoguchi.error", "message": "unhandled error", "tenant": "yamaguchi"}\n'
        '{"time": "2027-03-26T09:13:01+00:00", "level": "INFO", "logger": "madoguchi.access", "message": "GET / 200", "tenant": "yamaguchi"}\n'
        '{"time": "2027-03-26T09:13:02+00:00", "level": "ERROR", "logger": "madoguchi.error", "message": "other city", "tenant": "osaka"}\n'
        '{"time": "2027-03-25T09:13:00+00:00", "level": "ERROR", "logger": "madoguchi.error", "message": "the day before"}\n'
    )
    resolved = runner.invoke(
        main,
        ["incidents", "resolve", str(incident_id), "--by", "当番 三郎", "--at", "2027-03-26T18:40:00+09:00"],
    )
    assert resolved.exit_code == 0, resolved.output
    pdf = tmp_path / "r.pdf"
    reported = runner.invoke(
        main,
        [
            "incidents",
            "report",
            str(incident_id),
            "--cause",
            "ディスク容量不足",
            "--logs",
            str(logs),
            "--pdf",
            str(pdf),
        ],
    )
    assert reported.exit_code == 0, reported.output
    assert pdf.read_bytes().startswith(b"%PDF")
    data = runner.invoke(main, ["incidents", "list", "--tenant", "yamaguchi", "--json"])
    (row,) = [r for r in __import__("json").loads(data.output) if r["id"] == incident_id]
    assert row["report"]["log_excerpts"].count("\n") == 0  # only the tenant's error of that time
    assert "unhandled error" in row["report"]["log_excerpts"]
    assert row["resolved_at"] == "2027-03-26T09:40:00+00:00"
    missing = runner.invoke(main, ["incidents", "ack", "999999"])
    assert missing.exit_code == 1
