"""Generate, store and find the monthly reports.

``generate(month)`` collects the month from every source once, builds the Digital Agency's report
(scope ``service``) and one report per municipality, renders each as PDF + JSON + CSV, writes them
to object storage (``_provider/reports/<month>/`` and ``<tenant>/reports/<month>/``) and upserts
``control.monthly_reports``. Running it again for the same month and inputs gives byte-identical
files and the same rows (``generations`` counts the runs). Tenant reports render in a few worker
processes (``MADOGUCHI_REPORTS_WORKERS``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import multiprocessing
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from app import storage
from app.config import get_settings
from app.reports import build, render
from app.reports.models import MonthlyReport, ReportCapture
from app.reports.period import Month
from app.reports.sources import (
    ReportSourceError,
    Sourced,
    cloudtrail,
    config_rules,
    costs,
    database,
    iam,
    securityhub,
)
from app.reports.sources.aws import ClientFactory, Clients, default_clients
from app.reports.sources.prometheus import PrometheusSource
from app.tenancy.service import registry

log = logging.getLogger(__name__)
PROVIDER_PREFIX = "_provider"  # tenant ids never start with "_": no clash in the documents bucket
Progress = Callable[[str], None]


class ReportInputError(ValueError):
    """Bad request for a report (unknown tenant, month not usable); Japanese message."""


@dataclass(frozen=True)
class Generated:
    scope: str
    sha256: str
    files: list[dict[str, Any]]


def _quiet(message: str) -> None:
    log.info("%s", message)


def control_session() -> Session:
    from app.db.names import control_binding
    from app.db.session import new_session

    return new_session(control_binding(get_settings().role_prefix))


def stem(month: Month, scope: str) -> str:
    return f"monthly-report-{month}-{scope}"


def key_prefix(month: Month, scope: str) -> str:
    owner = PROVIDER_PREFIX if scope == build.SERVICE else scope
    return storage.tenant_key(owner, "reports", str(month))


# --- collecting ---------------------------------------------------------------------------------


def _captured(
    session: Session,
    month: Month,
    source: str,
    fetch: Callable[[], Sourced],
    refresh: bool,
    c: build.Collected,
) -> Any:
    """Point-in-time sources: the month's stored answer, or a fresh one (kept for next time)."""
    row = session.scalars(
        select(ReportCapture).where(ReportCapture.month == str(month), ReportCapture.source == source)
    ).one_or_none()
    if row is None or refresh:
        sourced = fetch()
        now = dt.datetime.now(dt.UTC)
        stmt = insert(ReportCapture).values(
            month=str(month), source=source, data=sourced.data, captured_at=now
        )
        session.execute(
            stmt.on_conflict_do_update(
                index_elements=["month", "source"], set_={"data": stmt.excluded.data, "captured_at": now}
            )
        )
        session.flush()
        data, captured_at = sourced.data, now
        queries = sourced.queries
    else:
        data, captured_at = row.data, row.captured_at
        queries = fetch_queries(source)
    from app.dates import JST

    # JSONB keeps keys in its own order: fresh and stored answers alike get sorted keys.
    data = json.loads(json.dumps(data, sort_keys=True))
    c.captured_at[source] = captured_at.astimezone(JST).isoformat(timespec="seconds")
    c.add(Sourced(None, queries))
    return data


def fetch_queries(source: str) -> list[dict[str, str]]:
    names = {
        "iam_users": (
            "aws.iam.credential_report",
            "AWS IAM",
            "GenerateCredentialReport; GetCredentialReport",
        ),
        "iam_roles": ("aws.iam.roles", "AWS IAM", "ListRoles; GetRole (RoleLastUsed)"),
        "config_current": ("aws.config.compliance", "AWS Config", "DescribeComplianceByConfigRule"),
        "securityhub_findings": ("aws.securityhub.findings", "AWS Security Hub", "GetFindings"),
    }
    ident, src, query = names[source]
    return [{"id": ident, "source": src, "query": query}]  # as the source names it: same report


def collect(
    month: Month,
    *,
    only: str | None = None,
    refresh: bool = False,
    aws_clients: ClientFactory | None = None,
    progress: Progress = _quiet,
) -> build.Collected:
    settings = get_settings()
    registry.invalidate()
    with control_session() as session:
        munis, inquiries, incidents, releases = build.collect_control(session, month)
        c = build.Collected(month, [], {}, {}, [], [], [], None)
        c.municipalities = c.add(munis)
        if only is not None and only not in {m["id"] for m in c.municipalities}:
            raise ReportInputError(
                f"自治体 {only} は {month} に利用していません（未登録か、利用開始が月末より後です）"
            )
        c.inquiries = c.add(inquiries)
        c.incidents = c.add(incidents)
        c.releases = c.add(releases)
        progress(
            f"{month}: 利用団体 {len(c.municipalities)}、問い合わせ {len(c.inquiries)}、障害 {len(c.incidents)}、リリース {len(c.releases)}"
        )
        if not settings.prometheus_url:
            raise ReportSourceError("Prometheus の URL が設定されていません（MADOGUCHI_PROMETHEUS_URL）")
        prometheus = PrometheusSource(settings.prometheus_url)
        try:
            c.metrics = c.add(prometheus.service_levels(month))
        finally:
            prometheus.close()
        progress(f"{month}: Prometheus から {len(c.metrics['tenants'])} 団体のサービスレベルを取得")
        if settings.reports_aws_enabled:
            c.aws = _collect_aws(session, month, Clients(aws_clients or default_clients), refresh, c)
            progress(f"{month}: AWS（IAM・CloudTrail・Config・Security Hub・Cost Explorer）を取得")
        session.commit()
    records = {r.id: r for r in registry.all()}
    wanted = [m["id"] for m in c.municipalities if only is None or m["id"] == only]
    for i, tenant in enumerate(wanted, 1):
        record = records.get(tenant)
        if record is None:
            continue
        c.tenant_figures[tenant] = database.tenant_figures(record, month)
        if i % 200 == 0 or i == len(wanted):
            progress(f"{month}: データベース集計 {i}/{len(wanted)} 団体")
    c.add(Sourced(None, [database.TENANT_QUERY]))
    return c


def _collect_aws(
    session: Session, month: Month, clients: Clients, refresh: bool, c: build.Collected
) -> dict[str, Any]:
    settings = get_settings()
    if not settings.cloudtrail_bucket or not settings.config_bucket:
        raise ReportSourceError(
            "CloudTrail と AWS Config の保管バケットが設定されていません（MADOGUCHI_CLOUDTRAIL_BUCKET, MADOGUCHI_CONFIG_BUCKET）"
        )
    account = settings.aws_account_id
    return {
        "iam_users": _captured(
            session, month, "iam_users", lambda: iam.credential_report(clients("iam")), refresh, c
        ),
        "iam_roles": _captured(session, month, "iam_roles", lambda: iam.roles(clients("iam")), refresh, c),
        "config_current": _captured(
            session,
            month,
            "config_current",
            lambda: config_rules.current_compliance(clients("config")),
            refresh,
            c,
        ),
        "securityhub_findings": _captured(
            session,
            month,
            "securityhub_findings",
            lambda: securityhub.findings(clients("securityhub")),
            refresh,
            c,
        ),
        "cloudtrail": c.add(
            cloudtrail.audit_events(
                clients("s3"), settings.cloudtrail_bucket, settings.cloudtrail_prefix, account, month
            )
        ),
        "config_history": c.add(
            config_rules.history(
                clients("s3"), settings.config_bucket, settings.config_prefix, account, month
            )
        ),
        "costs": c.add(costs.cost_by_tag(clients("ce"), month, settings.cost_tag_key)),
    }


# --- rendering and storing ----------------------------------------------------------------------


def _render_one(job: tuple[str, str, dict[str, Any], str | None]) -> Generated:
    """Render one report's files, write them to storage (and ``out``); runs in a worker process."""
    month_text, scope, report, out = job
    month = Month.parse(month_text)
    files = (render.service_files if scope == build.SERVICE else render.tenant_files)(
        report, stem(month, scope)
    )
    prefix = key_prefix(month, scope)
    metas = []
    for f in files:
        storage.put(f"{prefix}/{f.name}", f.data, f.media_type)
        if out is not None:
            path = Path(out) / month_text / scope / f.name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(f.data)
        metas.append({**f.meta(), "key": f"{prefix}/{f.name}"})
    json_file = next(f for f in files if f.name.endswith(".json"))
    return Generated(scope, hashlib.sha256(json_file.data).hexdigest(), metas)


def _init_worker() -> None:
    storage._client.cache_clear()  # boto3 clients are not shared across fork


def _store_rows(
    month: Month, reports: dict[str, dict[str, Any]], generated: list[Generated], by: str
) -> None:
    now = dt.datetime.now(dt.UTC)
    with control_session() as session:
        for g in generated:
            values = {
                "month": str(month),
                "scope": g.scope,
                "content": reports[g.scope],
                "content_sha256": g.sha256,
                "files": g.files,
                "generated_at": now,
                "generated_by": by,
            }
            stmt = insert(MonthlyReport).values(**values)
            session.execute(
                stmt.on_conflict_do_update(
                    index_elements=["month", "scope"],
                    set_={
                        "content": stmt.excluded.content,
                        "content_sha256": stmt.excluded.content_sha256,
                        "files": stmt.excluded.files,
                        "generated_at": now,
                        "generated_by": by,
                        "generations": MonthlyReport.generations + 1,
                    },
                )
            )
        session.commit()


def generate(
    month: Month,
    *,
    tenant: str | None = None,
    out: Path | None = None,
    refresh: bool = False,
    by: str = "system",
    aws_clients: ClientFactory | None = None,
    progress: Progress = _quiet,
    workers: int | None = None,
) -> list[Generated]:
    """Generate the month's reports: the service's and every municipality's, or one city's only."""
    if month.start >= dt.datetime.now(dt.UTC):
        raise ReportInputError(f"{month} はまだ始まっていません")
    c = collect(month, only=tenant, refresh=refresh, aws_clients=aws_clients, progress=progress)
    cloud = build._costs(c)
    reports: dict[str, dict[str, Any]] = {}
    if tenant is None:
        reports[build.SERVICE] = build.service_report(c)
        cloud = reports[build.SERVICE]["cloud_usage"] if c.aws is not None else None
    for m in c.municipalities:
        if (tenant is None or m["id"] == tenant) and m["id"] in c.tenant_figures:
            reports[m["id"]] = build.tenant_report(c, m["id"], cloud)
    jobs = [(str(month), scope, report, str(out) if out else None) for scope, report in reports.items()]
    storage.ensure_bucket()
    generated: list[Generated] = []
    count = workers if workers is not None else get_settings().reports_workers
    if count > 1 and len(jobs) > 4:
        from app.db.engine import dispose_all

        dispose_all()  # no pooled connection crosses the fork
        context = multiprocessing.get_context("fork")
        with context.Pool(count, initializer=_init_worker) as pool:
            for i, g in enumerate(pool.imap(_render_one, jobs, chunksize=4), 1):
                generated.append(g)
                _tick(progress, month, i, len(jobs), g.scope)
    else:
        for i, job in enumerate(jobs, 1):
            generated.append(_render_one(job))
            _tick(progress, month, i, len(jobs), job[1])
    _store_rows(month, reports, generated, by)
    progress(f"{month}: {len(generated)} 件の報告を保存しました")
    return generated


def _tick(progress: Progress, month: Month, i: int, total: int, scope: str) -> None:
    if total <= 20 or i % 100 == 0 or i == total:
        progress(f"{month}: 作成 {i}/{total}（{scope}）")


# --- reading ------------------------------------------------------------------------------------


def list_reports(session: Session, scope: str | None = None, limit: int = 500) -> list[MonthlyReport]:
    stmt = select(MonthlyReport).order_by(MonthlyReport.month.desc(), MonthlyReport.scope).limit(limit)
    if scope is not None:
        stmt = stmt.where(MonthlyReport.scope == scope)
    return list(session.scalars(stmt))


def find_file(session: Session, month: str, scope: str, name: str) -> tuple[dict[str, Any], bytes] | None:
    """A stored file of one report, only if the report lists it under that exact name."""
    row = session.scalars(
        select(MonthlyReport).where(MonthlyReport.month == month, MonthlyReport.scope == scope)
    ).one_or_none()
    if row is None:
        return None
    meta = next((f for f in row.files if f["name"] == name), None)
    if meta is None:
        return None
    expected = f"{key_prefix(Month.parse(month), scope)}/{name}"
    if meta["key"] != expected:
        return None
    return meta, storage.get(expected)
