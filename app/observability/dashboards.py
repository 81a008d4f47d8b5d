"""Grafana dashboards, built in Python with grafana-foundation-sdk and checked in as JSON.

- ``madoguchi-overview.json``: the whole service (every municipality);
- ``madoguchi-municipality.json``: one municipality, chosen with the ``tenant`` variable.

Every panel query is parsed with promql-parser and run against a real Prometheus that scraped the
app in ``tests/test_observability_live.py``. The audit-sealing panel reads
``madoguchi_audit_seal_age_seconds{tenant}``, the series name agreed with the audit-log work; it
stays empty until that work exports it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import prometheus, stat, table, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import DataSourceRef, VariableRefresh
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

DATASOURCE = DataSourceRef(type_val="prometheus", uid="${datasource}")
AUDIT_SEAL_METRIC = "madoguchi_audit_seal_age_seconds"  # placeholder agreed with the audit branch


def _query(expr: str, legend: str = "", instant: bool = False, ref: str = "A") -> prometheus.Dataquery:
    q = prometheus.Dataquery().expr(expr).datasource(DATASOURCE).ref_id(ref)
    if legend:
        q = q.legend_format(legend)
    return q.instant() if instant else q.range()


def _ts(
    title: str, unit: str, *queries: tuple[str, str], description: str = "", height: int = 8
) -> timeseries.Panel:
    panel = timeseries.Panel().title(title).unit(unit).height(height).span(12).datasource(DATASOURCE)
    if description:
        panel = panel.description(description)
    for i, (expr, legend) in enumerate(queries):
        panel = panel.with_target(_query(expr, legend, ref="ABCDEFGH"[i]))
    return panel


def _stat(title: str, unit: str, expr: str, legend: str = "", description: str = "") -> stat.Panel:
    panel = stat.Panel().title(title).unit(unit).height(5).span(6).datasource(DATASOURCE)
    if description:
        panel = panel.description(description)
    return panel.with_target(_query(expr, legend, instant=True))


def _table(title: str, expr: str, description: str = "") -> table.Panel:
    panel = table.Panel().title(title).height(7).span(12).datasource(DATASOURCE)
    if description:
        panel = panel.description(description)
    return panel.with_target(_query(expr, instant=True).format(PromQueryFormat.TABLE))


def _base(title: str, uid: str, tags: list[str]) -> db.Dashboard:
    return (
        db.Dashboard(title)
        .uid(uid)
        .tags(tags)
        .timezone("Asia/Tokyo")
        .time("now-24h", "now")
        .refresh("1m")
        .with_variable(db.DatasourceVariable("datasource").label("データソース").type("prometheus"))
    )


def overview() -> db.Dashboard:
    d = _base("窓口支援システム 全体", "madoguchi-overview", ["madoguchi", "sla"])
    d = d.with_row(db.Row("リクエスト・エラー・応答時間"))
    d = d.with_panel(
        _ts(
            "リクエスト数（応答区分別）",
            "reqps",
            (
                "sum by (status_class) (rate(madoguchi_http_requests_total[$__rate_interval]))",
                "{{status_class}}",
            ),
        )
    )
    d = d.with_panel(
        _ts(
            "5xx エラー率（自治体別, 5分）",
            "percentunit",
            ('madoguchi:sli_error:ratio_rate5m{slo="errors"}', "{{tenant}}"),
        )
    )
    d = d.with_panel(
        _ts(
            "応答時間 p95（URL ルール別）",
            "s",
            (
                "histogram_quantile(0.95, sum by (le, route) (rate(madoguchi_http_request_duration_seconds_bucket[$__rate_interval])))",
                "{{route}}",
            ),
        )
    )
    d = d.with_panel(
        _ts(
            "目標超過リクエストの割合（自治体別, 5分）",
            "percentunit",
            ('madoguchi:sli_error:ratio_rate5m{slo="latency"}', "{{tenant}}"),
        )
    )
    d = d.with_row(db.Row("開庁時間内の稼働（SLA）"))
    d = d.with_panel(
        _stat("サービス稼働", "none", "madoguchi:service_up", description="1 = いずれかのインスタンスが応答")
    )
    d = d.with_panel(_stat("開庁中の自治体数", "none", "sum(madoguchi:tenant_open)"))
    d = d.with_panel(
        _stat("臨時開庁・閉庁中の自治体数", "none", "sum by (kind) (madoguchi_calendar_override)", "{{kind}}")
    )
    d = d.with_panel(
        _stat(
            "DB 集計の経過秒数",
            "s",
            "madoguchi_metrics_snapshot_age_seconds",
            description="/metrics の DB 由来の数値の古さ",
        )
    )
    d = d.with_panel(
        _table(
            "稼働率（開庁時間内, 1日）",
            '1 - madoguchi:sli_error:ratio_rate1d{slo="availability"}',
            description="開庁時間内で利用できた時間の割合。閉庁だけの期間は値なし（NaN）。",
        )
    )
    d = d.with_panel(
        _table("停止時間（開庁時間内, 直近1日, 評価回数）", "sum_over_time(madoguchi:tenant_unavailable[1d])")
    )
    d = d.with_row(db.Row("業務"))
    d = d.with_panel(
        _ts(
            "窓口業務（1時間あたり）",
            "short",
            (
                "sum by (event, outcome) (increase(madoguchi_business_events_total[1h]))",
                "{{event}} {{outcome}}",
            ),
        )
    )
    d = d.with_panel(
        _ts("利用職員数（当日・当月）", "short", ("sum by (window) (madoguchi_unique_users)", "{{window}}"))
    )
    d = d.with_row(db.Row("前方連携・ジョブ・操作ログ"))
    d = d.with_panel(
        _ts(
            "取込バッチ（状態別, 1日）",
            "short",
            ("sum by (status) (increase(madoguchi_import_batches_total[1d]))", "{{status}}"),
        )
    )
    d = d.with_panel(
        _ts(
            "バックグラウンドジョブ",
            "short",
            ("sum by (state) (madoguchi_queue_jobs)", "{{state}}"),
            ("sum(madoguchi_queue_workers)", "workers"),
        )
    )
    d = d.with_panel(
        _ts(
            "操作ログ封印の経過時間（最大）",
            "s",
            (f"max by (tenant) ({AUDIT_SEAL_METRIC})", "{{tenant}}"),
            description="監査ログ（issue 5）が出力するまで値なし",
        )
    )
    d = d.with_panel(_table("構成（設定ハッシュ・カタログ版）", "madoguchi_tenant_config_info"))
    return d


def municipality() -> db.Dashboard:
    t = '{tenant="$tenant"}'
    d = _base("窓口支援システム 自治体別", "madoguchi-municipality", ["madoguchi", "sla", "tenant"])
    d = d.with_variable(
        db.QueryVariable("tenant")
        .label("自治体")
        .datasource(DATASOURCE)
        .query("label_values(madoguchi:tenant_open, tenant)")
        .refresh(VariableRefresh.ON_DASHBOARD_LOAD)
    )
    d = d.with_row(db.Row("開庁時間内の稼働（SLA）"))
    d = d.with_panel(
        _stat(
            "開庁中", "none", f"madoguchi:tenant_open{t}", description="1 = 開庁時間（臨時開庁・閉庁を含む）"
        )
    )
    d = d.with_panel(
        _stat(
            "稼働率（開庁時間内, 1日）",
            "percentunit",
            '1 - madoguchi:sli_error:ratio_rate1d{tenant="$tenant", slo="availability"}',
        )
    )
    d = d.with_panel(
        _stat(
            "稼働率（開庁時間内, 3日）",
            "percentunit",
            '1 - madoguchi:sli_error:ratio_rate3d{tenant="$tenant", slo="availability"}',
        )
    )
    d = d.with_panel(_stat("臨時開庁・閉庁", "none", f"madoguchi_calendar_override{t}", "{{kind}}"))
    d = d.with_panel(
        _ts(
            "停止（開庁時間内）",
            "none",
            (f"madoguchi:tenant_unavailable{t}", "停止"),
            (f"madoguchi:tenant_open{t}", "開庁"),
        )
    )
    d = d.with_panel(
        _ts(
            "誤差予算の消費速度（1時間）",
            "none",
            (
                f"madoguchi:sli_error:ratio_rate1h{t} / on(tenant, slo) madoguchi:slo_error_budget{t}",
                "{{slo}}",
            ),
            description="1 = 予算をちょうど使い切るペース。14.4 以上（5分・1時間とも）で至急の通知。",
        )
    )
    d = d.with_row(db.Row("リクエスト"))
    d = d.with_panel(
        _ts(
            "リクエスト数（応答区分別）",
            "reqps",
            (
                f"sum by (status_class) (rate(madoguchi_http_requests_total{t}[$__rate_interval]))",
                "{{status_class}}",
            ),
        )
    )
    d = d.with_panel(
        _ts(
            "エラー率・目標超過の割合（5分）",
            "percentunit",
            ('madoguchi:sli_error:ratio_rate5m{tenant="$tenant", slo="errors"}', "5xx"),
            ('madoguchi:sli_error:ratio_rate5m{tenant="$tenant", slo="latency"}', "目標超過"),
        )
    )
    d = d.with_row(db.Row("業務・前方連携"))
    d = d.with_panel(
        _ts(
            "窓口業務（1時間あたり）",
            "short",
            (
                f"sum by (event, outcome) (increase(madoguchi_business_events_total{t}[1h]))",
                "{{event}} {{outcome}}",
            ),
        )
    )
    d = d.with_panel(_ts("利用職員数", "short", (f"madoguchi_unique_users{t}", "{{window}}")))
    d = d.with_panel(
        _ts(
            "取込バッチ（1日）",
            "short",
            (
                f"sum by (kind, status) (increase(madoguchi_import_batches_total{t}[1d]))",
                "{{kind}} {{status}}",
            ),
        )
    )
    d = d.with_panel(
        _ts(
            "取込行数（1日）",
            "short",
            (f"sum by (result) (increase(madoguchi_import_rows_total{t}[1d]))", "{{result}}"),
        )
    )
    d = d.with_panel(
        _ts(
            "操作ログ封印の経過時間",
            "s",
            (f"{AUDIT_SEAL_METRIC}{t}", "封印からの経過"),
            description="監査ログ（issue 5）が出力するまで値なし",
        )
    )
    d = d.with_panel(_table("構成（設定ハッシュ・カタログ版）", f"madoguchi_tenant_config_info{t}"))
    return d


DASHBOARDS = {"madoguchi-overview.json": overview, "madoguchi-municipality.json": municipality}


def render() -> dict[str, str]:
    return {
        name: json.dumps(build().build(), cls=JSONEncoder, indent=2, ensure_ascii=False, sort_keys=True)
        + "\n"
        for name, build in DASHBOARDS.items()
    }


def panel_queries(dashboard: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(panel title, PromQL) for every query of every panel, rows included."""
    for panel in dashboard.get("panels", []):
        for inner in [panel, *panel.get("panels", [])]:
            for target in inner.get("targets") or []:
                if target.get("expr"):
                    yield inner.get("title", ""), target["expr"]
