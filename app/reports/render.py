"""The report as files: JSON (for machines), CSV per table (UTF-8 with BOM, for Excel) and an A4
Japanese PDF with charts (WeasyPrint + matplotlib).

Deterministic: the same report gives the same bytes. JSON and CSV hold no generation time; the PDF
carries no creation date (WeasyPrint writes none unless the HTML asks) and the charts are PNGs
without timestamps, so a regenerated month is byte-identical in all three formats.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from app.reports.models import CATEGORIES

TEMPLATES = Path(__file__).with_name("templates")
CHART_FONT = Path("/usr/share/fonts/opentype/ipaexfont-gothic/ipaexg.ttf")
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class ReportFile:
    name: str  # e.g. monthly-report-2026-10-osaka.pdf, csv/kpi.csv
    media_type: str
    data: bytes

    def meta(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "media_type": self.media_type,
            "size": len(self.data),
            "sha256": hashlib.sha256(self.data).hexdigest(),
        }


def json_bytes(report: dict[str, Any]) -> bytes:
    return (json.dumps(report, ensure_ascii=False, indent=2) + "\n").encode("utf-8")


# --- CSV ----------------------------------------------------------------------------------------


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "はい" if value else "いいえ"
    if isinstance(value, str):
        if "\x00" in value:
            value = value.replace("\x00", "")
        if value.startswith(FORMULA_START):
            return "'" + value  # Excel must not read a cell as a formula
    return value


def csv_bytes(header: list[tuple[str, str]], rows: Iterable[dict[str, Any]]) -> bytes:
    """UTF-8 with BOM (Excel opens it as UTF-8), CRLF, Japanese column titles."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([title for _key, title in header])
    for row in rows:
        writer.writerow([_cell(row.get(key)) for key, _title in header])
    return b"\xef\xbb\xbf" + buffer.getvalue().encode("utf-8")


LEVEL_COLUMNS = [
    ("requests", "リクエスト数"), ("server_errors", "サーバーエラー数"), ("error_rate", "エラー率"),
    ("slow_requests", "目標超過の応答数"), ("slow_ratio", "目標超過の割合"), ("open_minutes", "開庁時間（分）"),
    ("downtime_minutes", "停止時間（分）"), ("downtime_rate", "停止率"), ("availability", "稼働率"),
]  # fmt: skip
KPI_COLUMNS = [
    ("cases", "受付件数"), ("cases_closed", "完了件数"), ("procedures_done", "処理済み手続数"),
    ("applications", "申請書作成数"), ("applications_accepted", "申請受理数"), ("certificate_requests", "証明書請求数"),
    ("tickets", "番号札発行数"), ("wait_minutes_avg", "平均待ち時間（分）"), ("handling_minutes_avg", "平均処理時間（分）"),
    ("requests", "リクエスト数"), ("unique_users", "ユニークユーザー数"),
]  # fmt: skip
INQUIRY_COLUMNS = [("id", "番号"), ("tenant", "自治体ID"), ("opened_at", "受付日時"), ("closed_at", "完了日時"),
                   ("channel_ja", "経路"), ("category_ja", "分類"), ("summary", "概要")]  # fmt: skip
INCIDENT_COLUMNS = [("id", "番号"), ("tenant", "自治体ID"), ("alert", "アラート"), ("summary", "概要"),
                    ("detected_at", "検知"), ("acknowledged_at", "初動"), ("resolved_at", "復旧"),
                    ("initial_response_label", "初動対応")]  # fmt: skip
RELEASE_COLUMNS = [("released_at", "リリース日時"), ("kind_ja", "種別"), ("version", "バージョン"),
                   ("approval_ref", "承認番号"), ("description", "内容")]  # fmt: skip
DAILY_COLUMNS = [
    ("day", "日付"),
    ("cases", "受付件数"),
    ("requests", "リクエスト数"),
    ("downtime_minutes", "停止時間（分）"),
]


def _incident_rows(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**i, "initial_response_label": i["initial_response"]["label"]} for i in items]


def service_csvs(r: dict[str, Any]) -> dict[str, bytes]:
    out = {
        "municipalities.csv": csv_bytes(
            [("code", "団体コード"), ("id", "自治体ID"), ("name", "名称"), ("status", "状態"), ("service_start", "利用開始日"),
             ("days_in_service", "当月の利用日数"), ("new_this_month", "当月開始")],
            r["municipalities"]["items"],
        ),
        "kpi.csv": csv_bytes([("tenant", "自治体ID"), ("name", "名称"), *KPI_COLUMNS], r["kpi"]["by_municipality"]),
        "daily.csv": csv_bytes(DAILY_COLUMNS, r["kpi"]["daily"]),
        "service_level.csv": csv_bytes([("tenant", "自治体ID"), ("name", "名称"), *LEVEL_COLUMNS], r["service_level"]["by_municipality"]),
        "releases.csv": csv_bytes(RELEASE_COLUMNS, r["releases"]["items"]),
        "inquiries.csv": csv_bytes(INQUIRY_COLUMNS, r["inquiries"]["items"]),
        "incidents.csv": csv_bytes(INCIDENT_COLUMNS, _incident_rows(r["incidents"]["items"])),
        "stable_operation.csv": csv_bytes([("date", "日付"), ("kind", "作業"), ("detail", "内容")], r["stable_operation"]),
    }  # fmt: skip
    if r["iam_users"].get("status") != "disabled":
        sc = r["security_compliance"]
        out |= {
            "config_rules.csv": csv_bytes([("rule", "ルール"), ("compliance", "準拠状況"), ("noncompliant_resources", "不適合リソース数")], sc["config_rules"]),
            "config_history.csv": csv_bytes(
                [("rule", "ルール"), ("evaluations", "評価の記録数"), ("noncompliant_evaluations", "不適合の記録数"),
                 ("noncompliant_resources_in_month", "月内の不適合リソース数"), ("noncompliant_at_month_end", "月末時点の不適合リソース数")],
                sc["config_history"],
            ),
            "security_hub.csv": csv_bytes([("severity", "重要度"), ("title", "検出結果"), ("resource", "リソース")], sc["security_hub"]["critical_and_high"]),
            "iam_users.csv": csv_bytes(
                [("user", "ユーザー"), ("created", "作成日時"), ("console_password", "コンソールパスワード"), ("password_last_used", "パスワード最終使用"),
                 ("mfa_active", "MFA"), ("access_keys_active", "有効なアクセスキー数"), ("access_key_last_used", "アクセスキー最終使用")],
                r["iam_users"]["items"],
            ),
            "iam_roles.csv": csv_bytes(
                [("role", "ロール"), ("created", "作成日時"), ("last_used", "最終使用"), ("last_used_region", "最終使用リージョン")],
                r["iam_roles"]["items"],
            ),
            "iam_changes.csv": csv_bytes(
                [("time", "日時"), ("kind", "対象"), ("event", "操作"), ("target", "名前"), ("by", "実行者"), ("result", "結果")],
                [{**x, "kind": "ユーザー"} for x in r["iam_users"]["changes"]] + [{**x, "kind": "ロール"} for x in r["iam_roles"]["changes"]],
            ),
            "console_logins.csv": csv_bytes(
                [("time", "日時"), ("user", "ユーザー"), ("source_ip", "接続元"), ("result", "結果"), ("mfa", "MFA")], r["console_logins"]["items"]
            ),
            "resources_created.csv": csv_bytes(
                [("time", "日時"), ("service", "サービス"), ("event", "操作"), ("resource", "リソース"), ("region", "リージョン"), ("by", "実行者")],
                r["resources_created"]["items"],
            ),
            "cloud_usage.csv": csv_bytes(
                [("tenant", "自治体ID"), ("name", "名称"), ("direct", "直接費用"), ("shared_share", "共有費用の按分額"), ("total", "合計"),
                 ("usage_requests", "按分の基準（リクエスト数）")],
                r["cloud_usage"]["tenants"],
            ),
        }  # fmt: skip
    return out


def tenant_csvs(r: dict[str, Any]) -> dict[str, bytes]:
    out = {
        "kpi.csv": csv_bytes(KPI_COLUMNS, [r["kpi"]]),
        "service_level.csv": csv_bytes(LEVEL_COLUMNS, [r["service_level"]]),
        "daily.csv": csv_bytes(DAILY_COLUMNS, r["daily"]),
        "inquiries.csv": csv_bytes(INQUIRY_COLUMNS, r["inquiries"]["items"]),
        "incidents.csv": csv_bytes(INCIDENT_COLUMNS, _incident_rows(r["incidents"]["items"])),
        "releases.csv": csv_bytes(RELEASE_COLUMNS, r["releases"]["items"]),
    }
    if r["cloud_usage"] is not None:
        out["cloud_usage.csv"] = csv_bytes(
            [
                ("direct", "直接費用"),
                ("shared_share", "共有費用の按分額"),
                ("total", "合計"),
                ("usage_requests", "リクエスト数"),
                ("unit", "通貨"),
            ],
            [r["cloud_usage"]],
        )
    return out


# --- charts -------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import font_manager
    from matplotlib import pyplot as plt

    if CHART_FONT.exists():
        font_manager.fontManager.addfont(str(CHART_FONT))
        matplotlib.rcParams["font.family"] = font_manager.FontProperties(fname=str(CHART_FONT)).get_name()
    matplotlib.rcParams["svg.hashsalt"] = "madoguchi"
    matplotlib.rcParams["axes.unicode_minus"] = False
    return plt


def daily_chart(daily: list[dict[str, Any]], title: str) -> bytes:
    """Bars: requests per day; line (right axis): downtime minutes inside service hours."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.2, 2.6), dpi=110)
    try:
        days = [int(d["day"][8:]) for d in daily]
        ax.bar(days, [d["requests"] for d in daily], color="#4a7ab7", label="リクエスト数")
        ax.set_xlim(0.3, len(days) + 0.7)
        ax.set_xticks(days[::2] if len(days) > 16 else days)
        ax.set_xlabel("日")
        ax.set_ylabel("リクエスト数")
        ax.set_title(title, fontsize=10)
        ax2 = ax.twinx()
        ax2.plot(
            days,
            [d["downtime_minutes"] for d in daily],
            color="#c0392b",
            marker="o",
            markersize=3,
            label="停止時間（分）",
        )
        ax2.set_ylabel("停止時間（分・開庁時間内）")
        ax2.set_ylim(bottom=0, top=max(5, *(d["downtime_minutes"] for d in daily)) * 1.2)
        handles = ax.get_legend_handles_labels()[0] + ax2.get_legend_handles_labels()[0]
        ax.legend(handles, ["リクエスト数", "停止時間（分）"], loc="upper left", fontsize=7, frameon=False)
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", metadata={"Software": None})
        return buffer.getvalue()
    finally:
        plt.close(fig)


def bar_chart(labels: list[str], values: list[float], title: str, unit: str) -> bytes:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.2, 2.4), dpi=110)
    try:
        ax.barh(list(range(len(labels)))[::-1], values, color="#5b8f5b")
        ax.set_yticks(list(range(len(labels)))[::-1], labels, fontsize=7)
        ax.set_xlabel(unit)
        ax.set_title(title, fontsize=10)
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", metadata={"Software": None})
        return buffer.getvalue()
    finally:
        plt.close(fig)


def _data_uri(png: bytes) -> str:
    import base64

    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


# --- PDF ----------------------------------------------------------------------------------------

REPORT_CSS = """
@page { @top-left { content: string(title); font: 7.5pt "IPAexGothic"; color: #555; } }
h1 { font-size: 15pt; margin-bottom: 2mm; string-set: title content(); }
h2 { font-size: 11.5pt; margin: 5mm 0 1.5mm; border-bottom: 1pt solid #335; padding-bottom: 0.5mm; }
h3 { font-size: 10pt; margin: 3mm 0 1mm; }
table { font-size: 8pt; margin-bottom: 2mm; }
td.num, th.num { text-align: right; }
.figures td { font-size: 9.5pt; }
.note { font-size: 7.5pt; color: #444; margin: 1mm 0; }
.chart { width: 100%; margin: 1mm 0; }
.meta { font-size: 8.5pt; margin-bottom: 3mm; }
"""


def _fmt_rate(value: float | None, digits: int = 3) -> str:
    return "—" if value is None else f"{value * 100:.{digits}f}%"


def _fmt_int(value: int | float | None) -> str:
    return "—" if value is None else f"{value:,}"


def pdf_bytes(template: str, report: dict[str, Any], charts: dict[str, bytes]) -> bytes:
    from app.pdf import render_template_html, renderer

    html = render_template_html(
        TEMPLATES,
        template,
        r=report,
        charts={k: _data_uri(v) for k, v in charts.items()},
        rate=_fmt_rate,
        n=_fmt_int,
        categories=CATEGORIES,
    )
    return renderer().render(html, extra_css=REPORT_CSS)


def service_files(report: dict[str, Any], stem: str) -> list[ReportFile]:
    charts = {"daily": daily_chart(report["kpi"]["daily"], "日別リクエスト数と停止時間（全自治体）")}
    usage = report.get("cloud_usage") or {}
    if usage.get("tenants"):
        top = sorted(usage["tenants"], key=lambda t: (-float(t["total"]), t["tenant"]))[:10]
        charts["cost"] = bar_chart(
            [t["name"] for t in top],
            [float(t["total"]) for t in top],
            "自治体別の利用料（上位10）",
            usage["unit"],
        )
    return _files(report, stem, "service_report.html", charts, service_csvs(report))


def tenant_files(report: dict[str, Any], stem: str) -> list[ReportFile]:
    charts = {"daily": daily_chart(report["daily"], "日別リクエスト数と停止時間")}
    return _files(report, stem, "tenant_report.html", charts, tenant_csvs(report))


def _files(
    report: dict[str, Any], stem: str, template: str, charts: dict[str, bytes], csvs: dict[str, bytes]
) -> list[ReportFile]:
    files = [
        ReportFile(f"{stem}.pdf", "application/pdf", pdf_bytes(template, report, charts)),
        ReportFile(f"{stem}.json", "application/json", json_bytes(report)),
    ]
    files += [
        ReportFile(f"csv/{name}", "text/csv; charset=utf-8", data) for name, data in sorted(csvs.items())
    ]
    return files


Renderer = Callable[[dict[str, Any], str], list[ReportFile]]
