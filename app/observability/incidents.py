"""Incidents: opened and resolved by Alertmanager's webhook, acknowledged and written up by people.

- Detection time is the alert's ``startsAt``; a notification repeated by Alertmanager (or one that
  arrives late, after an outage of the app itself) updates the same incident, keyed by the alert's
  fingerprint and start.
- Initial response (初動) is the first human acknowledgement, compared with the tenant's target
  (``sla.yaml`` incident.initial_response_minutes: Osaka and Yamaguchi 30 minutes). Gobo's contract
  says "as soon as possible" (速やかに) with no number: its incidents show the time taken and
  「速やかに（数値目標なし）」, never a pass or fail.
- The written report (cause, recovery, prevention, log excerpts) renders as an A4 PDF in Japanese.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from app.config import get_settings
from app.dates import JST
from app.db.names import control_binding
from app.db.session import new_session
from app.observability.models import Incident
from app.tenancy.service import registry

TEMPLATES = Path(__file__).with_name("templates")
MAX_TEXT = 20_000
MAX_LOG_LINES = 200


class IncidentInputError(ValueError):
    """Bad input for an incident; Japanese message."""


class IncidentNotFound(LookupError):
    pass


def control_session() -> Session:
    return new_session(control_binding(get_settings().role_prefix))


def _parse_time(value: Any) -> dt.datetime | None:
    if not isinstance(value, str) or not value or value.startswith("0001-01-01"):
        return None
    text = re.sub(r"(\.\d{6})\d+", r"\1", value.replace("Z", "+00:00"))
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _target_minutes(tenant_id: str | None) -> int | None:
    if tenant_id is None:
        return None
    record = registry.get(tenant_id)
    if record is None:
        return None
    return registry.config(record).sla.incident.initial_response_minutes


def receive_alertmanager(session: Session, payload: Any) -> list[Incident]:
    """Apply one Alertmanager webhook notification (version 4); returns the incidents touched."""
    if not isinstance(payload, dict) or not isinstance(payload.get("alerts"), list):
        raise IncidentInputError("Alertmanager の通知として読めません（alerts がありません）")
    receiver = str(payload.get("receiver") or "")
    touched = []
    for alert in payload["alerts"]:
        if not isinstance(alert, dict):
            continue
        labels = {str(k): str(v) for k, v in (alert.get("labels") or {}).items()}
        annotations = alert.get("annotations") or {}
        starts = _parse_time(alert.get("startsAt"))
        fingerprint = str(alert.get("fingerprint") or "")
        if starts is None or not fingerprint:
            continue
        tenant = labels.get("tenant") or None
        if tenant is not None and registry.get(tenant) is None:
            tenant = None  # a label that names no tenant is kept in labels, not trusted as one
        values = {
            "tenant_id": tenant,
            "alert_name": labels.get("alertname", "unknown"),
            "fingerprint": fingerprint,
            "severity": labels.get("severity"),
            "slo": labels.get("slo"),
            "summary": str(annotations.get("summary") or "")[:1000],
            "labels": labels,
            "detected_at": starts,
            "response_target_minutes": _target_minutes(tenant),
            "receivers": [receiver] if receiver else [],
        }
        session.execute(
            insert(Incident)
            .values(**values)
            .on_conflict_do_nothing(index_elements=["fingerprint", "detected_at"])
        )
        incident = session.scalars(
            select(Incident)
            .where(Incident.fingerprint == fingerprint, Incident.detected_at == starts)
            .with_for_update()
        ).one()
        if receiver and receiver not in incident.receivers:
            incident.receivers = [*incident.receivers, receiver]
        ends = _parse_time(alert.get("endsAt"))
        if alert.get("status") == "resolved" and incident.resolved_at is None:
            incident.resolved_at = ends or dt.datetime.now(dt.UTC)
            incident.resolved_by = "alertmanager"
            incident.status = "resolved"
        incident.updated_at = dt.datetime.now(dt.UTC)
        touched.append(incident)
    session.flush()
    return touched


def get(session: Session, incident_id: int) -> Incident:
    incident = session.get(Incident, incident_id)
    if incident is None:
        raise IncidentNotFound(f"障害 #{incident_id} は見つかりません")
    return incident


def list_incidents(
    session: Session, tenant: str | None = None, status: str | None = None, limit: int = 200
) -> list[Incident]:
    stmt = select(Incident).order_by(Incident.detected_at.desc(), Incident.id.desc()).limit(limit)
    if tenant:
        stmt = stmt.where(Incident.tenant_id == tenant)
    if status:
        if status == "unresolved":
            stmt = stmt.where(Incident.status != "resolved")
        else:
            stmt = stmt.where(Incident.status == status)
    return list(session.scalars(stmt))


def acknowledge(session: Session, incident_id: int, by: str, at: dt.datetime | None = None) -> Incident:
    """The first acknowledgement counts as the initial response; later ones change nothing."""
    incident = session.get(Incident, incident_id, with_for_update=True)
    if incident is None:
        raise IncidentNotFound(f"障害 #{incident_id} は見つかりません")
    if not by.strip():
        raise IncidentInputError("対応者を入力してください")
    if incident.acknowledged_at is None:
        incident.acknowledged_at = at or dt.datetime.now(dt.UTC)
        incident.acknowledged_by = by.strip()[:200]
        if incident.status == "open":
            incident.status = "acknowledged"
        incident.updated_at = dt.datetime.now(dt.UTC)
    session.flush()
    return incident


def resolve(session: Session, incident_id: int, by: str, at: dt.datetime | None = None) -> Incident:
    incident = get(session, incident_id)
    if incident.resolved_at is not None:
        raise IncidentInputError(f"障害 #{incident_id} は復旧済みです")
    moment = at or dt.datetime.now(dt.UTC)
    if moment < incident.detected_at:
        raise IncidentInputError("復旧時刻が検知時刻より前です")
    incident.resolved_at = moment
    incident.resolved_by = by.strip()[:200] or "unknown"
    incident.status = "resolved"
    incident.updated_at = dt.datetime.now(dt.UTC)
    session.flush()
    return incident


def write_report(
    session: Session,
    incident_id: int,
    by: str,
    *,
    cause: str | None = None,
    recovery: str | None = None,
    prevention: str | None = None,
    log_excerpts: str | None = None,
) -> Incident:
    incident = get(session, incident_id)
    for name, value in (
        ("cause", cause),
        ("recovery", recovery),
        ("prevention", prevention),
        ("log_excerpts", log_excerpts),
    ):
        if value is None:
            continue
        if len(value) > MAX_TEXT:
            raise IncidentInputError(f"{FIELD_NAMES[name]}が長すぎます（{MAX_TEXT:,}文字まで）")
        setattr(incident, name, value.strip() or None)
    incident.report_updated_at = dt.datetime.now(dt.UTC)
    incident.report_updated_by = by.strip()[:200] or "unknown"
    incident.updated_at = dt.datetime.now(dt.UTC)
    session.flush()
    return incident


FIELD_NAMES = {
    "cause": "原因",
    "recovery": "復旧内容",
    "prevention": "再発防止策",
    "log_excerpts": "ログ抜粋",
}


# --- initial response compliance ---------------------------------------------------------------


@dataclass(frozen=True)
class Compliance:
    state: str  # met | missed | pending | overdue | no_target
    label: str  # Japanese, for pages and the report
    target_minutes: int | None
    minutes: float | None  # detection to acknowledgement (or to now while pending)


def compliance(incident: Incident, now: dt.datetime | None = None) -> Compliance:
    now = now or dt.datetime.now(dt.UTC)
    target = incident.response_target_minutes
    end = incident.acknowledged_at or now
    minutes = max(0.0, (end - incident.detected_at).total_seconds() / 60)
    if target is None:
        if incident.acknowledged_at is None:
            return Compliance(
                "no_target", f"速やかに（数値目標なし）・未対応 {minutes:.0f}分経過", None, minutes
            )
        return Compliance("no_target", f"速やかに（数値目標なし）・{minutes:.0f}分で初動", None, minutes)
    if incident.acknowledged_at is None:
        if minutes > target:
            return Compliance(
                "overdue", f"目標{target}分を超過（未対応 {minutes:.0f}分経過）", target, minutes
            )
        return Compliance(
            "pending", f"対応待ち（目標{target}分まで残り{target - minutes:.0f}分）", target, minutes
        )
    if minutes <= target:
        return Compliance("met", f"達成（{minutes:.0f}分／目標{target}分以内）", target, minutes)
    return Compliance("missed", f"未達（{minutes:.0f}分／目標{target}分以内）", target, minutes)


def as_dict(incident: Incident, now: dt.datetime | None = None) -> dict[str, Any]:
    c = compliance(incident, now)
    return {
        "id": incident.id,
        "tenant": incident.tenant_id,
        "alert": incident.alert_name,
        "severity": incident.severity,
        "slo": incident.slo,
        "summary": incident.summary,
        "labels": incident.labels,
        "receivers": incident.receivers,
        "status": incident.status,
        "detected_at": incident.detected_at.isoformat(),
        "acknowledged_at": incident.acknowledged_at.isoformat() if incident.acknowledged_at else None,
        "acknowledged_by": incident.acknowledged_by,
        "resolved_at": incident.resolved_at.isoformat() if incident.resolved_at else None,
        "resolved_by": incident.resolved_by,
        "initial_response": {
            "state": c.state,
            "label": c.label,
            "target_minutes": c.target_minutes,
            "minutes": None if c.minutes is None else round(c.minutes, 1),
        },
        "report": {
            "cause": incident.cause,
            "recovery": incident.recovery,
            "prevention": incident.prevention,
            "log_excerpts": incident.log_excerpts,
            "updated_at": incident.report_updated_at.isoformat() if incident.report_updated_at else None,
            "updated_by": incident.report_updated_by,
        },
    }


# --- log excerpts -------------------------------------------------------------------------------


def log_excerpts(lines: Iterable[str], incident: Incident, margin_minutes: int = 10) -> str:
    """JSON log lines (app.logs) within the incident's time, of its tenant or of no tenant.

    The access log never holds query strings or personal data (app/__init__.py), so excerpts from
    it are safe to put into a report; other loggers' messages are kept as written.
    """
    start = incident.detected_at - dt.timedelta(minutes=margin_minutes)
    end = (incident.resolved_at or dt.datetime.now(dt.UTC)) + dt.timedelta(minutes=margin_minutes)
    picked: list[str] = []
    for line in _json_lines(lines):
        moment = _log_time(line.get("time"))
        if moment is None or not start <= moment <= end:
            continue
        if line.get("tenant") not in (None, incident.tenant_id):
            continue
        if line.get("level") not in ("WARNING", "ERROR", "CRITICAL") and not str(
            line.get("status", "")
        ).startswith("5"):
            continue
        picked.append(
            f"{moment.astimezone(JST):%Y-%m-%d %H:%M:%S} {line.get('level', '')} {line.get('logger', '')}: "
            f"{line.get('message', '')}"
        )
        if len(picked) >= MAX_LOG_LINES:
            break
    return "\n".join(picked)


def _json_lines(lines: Iterable[str]) -> Iterator[dict[str, Any]]:
    for raw in lines:
        raw = raw.strip()
        if not raw.startswith("{"):
            continue
        try:
            data = json.loads(raw)
        except ValueError:
            continue
        if isinstance(data, dict):
            yield data


def _log_time(value: Any) -> dt.datetime | None:
    if not isinstance(value, str):
        return None
    # logging's asctime is the writing process's local time, without an offset.
    local = dt.timezone(dt.timedelta(seconds=time.localtime().tm_gmtoff))
    try:
        moment = dt.datetime.strptime(value.split(",")[0], "%Y-%m-%d %H:%M:%S").replace(tzinfo=local)
    except ValueError:
        return _parse_time(value)
    return moment


# --- the written report -------------------------------------------------------------------------


def render_report(incident: Incident, now: dt.datetime | None = None) -> bytes:
    from app.dates.wareki import format_wareki
    from app.pdf import render_template_pdf

    now = now or dt.datetime.now(dt.UTC)
    tenant_name = "（サービス全体）"
    policy_text = "—"
    if incident.tenant_id:
        record = registry.get(incident.tenant_id)
        if record is not None:
            tenant_name = record.name
            policy = registry.config(record).sla.incident
            policy_text = (
                f"異常検知から{policy.initial_response_minutes}分以内に初動対応"
                if policy.initial_response_minutes
                else "速やかに初動対応（数値目標なし）"
            )

    def jst(moment: dt.datetime | None) -> str:
        if moment is None:
            return "—"
        local = moment.astimezone(JST)
        return f"{format_wareki(local.date())} {local:%H:%M}"

    duration = None
    if incident.resolved_at is not None:
        minutes = (incident.resolved_at - incident.detected_at).total_seconds() / 60
        duration = f"{int(minutes // 60)}時間{int(minutes % 60)}分" if minutes >= 60 else f"{minutes:.0f}分"
    return render_template_pdf(
        TEMPLATES,
        "incident_report.html",
        incident=incident,
        tenant_name=tenant_name,
        policy_text=policy_text,
        compliance=compliance(incident, now),
        detected=jst(incident.detected_at),
        acknowledged=jst(incident.acknowledged_at),
        resolved=jst(incident.resolved_at),
        duration=duration,
        issued=format_wareki(now.astimezone(JST).date()),
        receivers="、".join(RECEIVER_NAMES.get(r.split("-")[0], r) for r in incident.receivers) or "—",
    )


RECEIVER_NAMES = {"support": "問い合わせ窓口（サポートデスク）", "oncall": "当番（時間外）"}
