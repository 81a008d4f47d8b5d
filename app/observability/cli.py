"""``madoguchi sla ...`` (generated monitoring files) and ``madoguchi incidents ...``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from app.cliutil import RECORD_ID, InputRejected, cli_actor, emit, write_generated
from app.config import PROJECT_ROOT, get_settings
from app.tenancy.config import TenantConfig
from app.tenancy.loader import TenantConfigError, load_all

DASHBOARDS = PROJECT_ROOT / "dashboards"


def _tenant_configs() -> dict[str, TenantConfig]:
    try:
        return {k: v.config for k, v in load_all(get_settings().tenants_dir).items()}
    except TenantConfigError as exc:
        raise InputRejected("テナント設定に誤りがあります:\n" + str(exc)) from exc


@click.group()
def sla() -> None:
    """SLA monitoring files generated from tenants/ (Prometheus rules, Alertmanager, Grafana)."""


def _command(
    name: str, help_text: str, build: Callable[[dict[str, TenantConfig], Path], dict[Path, str]]
) -> None:
    @sla.command(name, help=help_text)
    @click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path), default=DASHBOARDS)
    @click.option("--check", is_flag=True, help="only check that the checked-in files are current")
    def run(out: Path, check: bool) -> None:
        write_generated(build(_tenant_configs(), out), check)


def _rules(tenants: dict[str, TenantConfig], out: Path) -> dict[Path, str]:
    from app.observability.slo import render_rules

    return {out / "rules" / name: text for name, text in render_rules(tenants).items()}


def _alertmanager(tenants: dict[str, TenantConfig], out: Path) -> dict[Path, str]:
    from app.observability.alertmanager import render

    return {out / "alertmanager.yml": render(tenants)}


def _dashboards(tenants: dict[str, TenantConfig], out: Path) -> dict[Path, str]:
    from app.observability.dashboards import render

    return {out / name: text for name, text in render().items()}


_command("rules", "Prometheus recording and alerting rules: dashboards/rules/*.yml", _rules)
_command(
    "alertmanager", "Alertmanager routing and time intervals: dashboards/alertmanager.yml", _alertmanager
)
_command("dashboards", "Grafana dashboards (grafana-foundation-sdk): dashboards/*.json", _dashboards)


# --- incidents ----------------------------------------------------------------------------------


@click.group()
def incidents() -> None:
    """Incidents (障害): list, acknowledge (初動), resolve, write and print the report."""


def _line(row: dict[str, Any]) -> str:
    return (
        f"#{row['id']:<5} {row['tenant'] or '全体':<10} {row['status']:<12} 検知 {row['detected_at'][:16]}  "
        f"{row['initial_response']['label']}  {row['summary'] or row['alert']}"
    )


@incidents.command("list")
@click.option("--tenant", help="only this tenant")
@click.option("--status", type=click.Choice(["open", "acknowledged", "resolved", "unresolved"]))
@click.option("--json", "as_json", is_flag=True)
def incidents_list(tenant: str | None, status: str | None, as_json: bool) -> None:
    from app.observability import incidents as svc

    with svc.control_session() as session:
        rows = [svc.as_dict(i) for i in svc.list_incidents(session, tenant=tenant, status=status)]
    emit(rows, as_json, _line)


def _actor(by: str | None) -> str:
    return by or cli_actor().id


@incidents.command("ack")
@click.argument("incident_id", type=RECORD_ID)
@click.option("--by", help="who responded (default: the CLI user)")
def incidents_ack(incident_id: int, by: str | None) -> None:
    """Record the first human acknowledgement (初動対応)."""
    from app.observability import incidents as svc

    with svc.control_session() as session:
        try:
            incident = svc.acknowledge(session, incident_id, _actor(by))
            session.commit()
        except (svc.IncidentNotFound, svc.IncidentInputError) as exc:
            raise InputRejected(str(exc)) from exc
        click.echo(f"#{incident.id}: {svc.compliance(incident).label}")


@incidents.command("resolve")
@click.argument("incident_id", type=RECORD_ID)
@click.option("--by", help="who recovered it (default: the CLI user)")
@click.option("--at", "at", help="recovery time, ISO 8601 with offset (default: now)")
def incidents_resolve(incident_id: int, by: str | None, at: str | None) -> None:
    """Record the recovery (usually Alertmanager does, when the alert ends)."""
    import datetime as dt

    from app.observability import incidents as svc

    try:
        moment = dt.datetime.fromisoformat(at) if at else None
    except ValueError as exc:
        raise InputRejected(
            f"時刻「{at}」は ISO 8601（例: 2027-03-29T09:30+09:00）で指定してください"
        ) from exc
    if moment is not None and moment.tzinfo is None:
        raise InputRejected("時刻にはタイムゾーン（+09:00 など）を付けてください")
    with svc.control_session() as session:
        try:
            svc.resolve(session, incident_id, _actor(by), moment)
            session.commit()
        except (svc.IncidentNotFound, svc.IncidentInputError) as exc:
            raise InputRejected(str(exc)) from exc
    click.echo(f"#{incident_id}: 復旧を記録しました")


@incidents.command("report")
@click.argument("incident_id", type=RECORD_ID)
@click.option("--cause", help="原因")
@click.option("--recovery", help="復旧の内容")
@click.option("--prevention", help="再発防止策")
@click.option(
    "--logs",
    "log_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="JSON log file: warnings, errors and 5xx lines of the incident's time become the log excerpts",
)
@click.option("--by", help="author (default: the CLI user)")
@click.option(
    "--pdf", "pdf", type=click.Path(dir_okay=False, path_type=Path), help="write the A4 report here"
)
def incidents_report(
    incident_id: int,
    cause: str | None,
    recovery: str | None,
    prevention: str | None,
    log_file: Path | None,
    by: str | None,
    pdf: Path | None,
) -> None:
    """Write the incident report (障害報告書) and/or print it as a PDF."""
    from app.observability import incidents as svc

    with svc.control_session() as session:
        try:
            incident = svc.get(session, incident_id)
            excerpts = None
            if log_file is not None:
                with log_file.open(encoding="utf-8", errors="replace") as fh:
                    excerpts = svc.log_excerpts(fh, incident)
            if any(v is not None for v in (cause, recovery, prevention, excerpts)):
                incident = svc.write_report(
                    session,
                    incident_id,
                    _actor(by),
                    cause=cause,
                    recovery=recovery,
                    prevention=prevention,
                    log_excerpts=excerpts,
                )
                session.commit()
                click.echo(f"#{incident_id}: 報告書を保存しました")
            if pdf is not None:
                pdf.write_bytes(svc.render_report(incident))
                click.echo(f"#{incident_id}: {pdf} に書き出しました")
        except (svc.IncidentNotFound, svc.IncidentInputError) as exc:
            raise InputRejected(str(exc)) from exc
