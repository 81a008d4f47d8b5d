"""SLA rules for Prometheus, generated from the tenants' calendars (``madoguchi sla rules``).

One rule group, evaluated in order every minute:

1. JST clock facts from ``time()`` alone (minute of day, weekday, day of month, month-day, day
   number) and the national holidays of ``HOLIDAY_YEARS`` (jpholiday, Cabinet Office list);
2. per tenant ``madoguchi:tenant_open{tenant}`` (1/0): the file calendar (``sla.yaml``
   service_hours) in pure PromQL, plus the temporary openings/closures the app publishes ahead of
   time as window bounds, remembered with ``last_over_time(...[3d])`` so that an app outage does
   not erase them (docs/adr/0006-sla-rules.md);
3. SLIs per tenant, aggregated with ``by (tenant)`` (one rule for all tenants):
   - availability (time-based): a minute is unavailable when the tenant is open and the service is
     down (no instance answers its scrape) or ≥ 5 % of the tenant's requests fail with 5xx;
   - errors (event-based): 5xx / all requests;
   - latency (event-based): requests slower than the tenant's target / all requests (p95 target →
     5 % budget);
4. sloth-style multi-window multi-burn-rate alerts (14.4x 5m/1h and 6x 30m/6h page, 3x 2h/1d and
   1x 6h/3d ticket) that fire only while the tenant is open.

The generator is deterministic (tests compare the checked-in files with a fresh generation). Tests
shift the clock with ``clock_offset`` so that promtool's 1970 start lands on the day under test;
production rules have no offset.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import jpholiday
import yaml

from app.dates import JST
from app.tenancy.config import WEEKDAYS, CalendarConfig, CalendarRule, TenantConfig

HOLIDAY_YEARS = range(2026, 2032)  # regenerate before the end of the last year (an alert says so)
JOB = "madoguchi"
WINDOW_LOOKBACK = "3d"  # how long published override windows survive an app outage
ERROR_RATIO_UNAVAILABLE = 0.05  # a minute with >= 5 % server errors counts as unavailable
LATENCY_BUDGET = 0.05  # latency target is a p95: 5 % of requests may be slower
SLOS = ("availability", "errors", "latency")
SLI_WINDOWS = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")


@dataclass(frozen=True)
class BurnWindow:
    factor: float
    short: str
    long: str
    severity: str


# sloth / Google SRE workbook: (budget burn factor, short window, long window).
BURN_WINDOWS = (
    BurnWindow(14.4, "5m", "1h", "page"),
    BurnWindow(6, "30m", "6h", "page"),
    BurnWindow(3, "2h", "1d", "ticket"),
    BurnWindow(1, "6h", "3d", "ticket"),
)

SLO_TEXT = {
    "availability": "可用性（開庁時間内の稼働）",
    "errors": "エラー率（5xx 応答の割合）",
    "latency": "応答時間（目標超過の割合）",
}
SEVERITY_TEXT = {"page": "至急", "ticket": "要対応"}


def alert_annotations(slo: str, severity: str) -> dict[str, str]:
    """Static texts (no $value), so promtool tests can state them exactly."""
    return {
        "summary": f"{{{{ $labels.tenant }}}}: {SLO_TEXT[slo]}の SLO 予算を消費しています（{SEVERITY_TEXT[severity]}）",
        "description": (
            "開庁時間中に SLO の誤差予算が速いペースで減っています。"
            "運用監視マニュアル（docs/manual/運用監視と障害対応.md）に沿って初動対応してください。"
        ),
    }


# --- JST clock facts ----------------------------------------------------------------------------


def _jst(clock_offset: int) -> str:
    return f"time() + {32400 + clock_offset}"


MINUTE = "madoguchi:jst_minute_of_day"
WEEKDAY = "madoguchi:jst_weekday"  # 0 Sunday ... 6 Saturday (PromQL day_of_week)
DOM = "madoguchi:jst_day_of_month"
MONTH_DAY = "madoguchi:jst_month_day"  # month * 100 + day: 1229 is 29 December
DAY = "madoguchi:jst_day_number"  # days since 1970-01-01 in JST
HOLIDAY = "madoguchi:jst_national_holiday"
OPEN = "madoguchi:tenant_open"
EPOCH = dt.date(1970, 1, 1)


def day_number(day: dt.date) -> int:
    return (day - EPOCH).days


def national_holidays(years: Iterable[int] = HOLIDAY_YEARS) -> list[dt.date]:
    years = list(years)
    pairs = jpholiday.between(dt.date(years[0], 1, 1), dt.date(years[-1], 12, 31))
    return sorted(day for day, _name in pairs)


def _ranges(values: Iterable[int]) -> list[tuple[int, int]]:
    """[1, 2, 3, 5] -> [(1, 3), (5, 5)]."""
    out: list[tuple[int, int]] = []
    for v in sorted(set(values)):
        if out and v == out[-1][1] + 1:
            out[-1] = (out[-1][0], v)
        else:
            out.append((v, v))
    return out


def _in(series: str, values: Iterable[int]) -> str:
    """1 if the series' value is one of ``values`` (as a sum of range tests), else 0."""
    terms = []
    for lo, hi in _ranges(values):
        terms.append(
            f"({series} == bool {lo})" if lo == hi else f"({series} >= bool {lo}) * ({series} <= bool {hi})"
        )
    return _any(terms)


def _any(terms: Sequence[str]) -> str:
    if not terms:
        return "(0 * madoguchi:jst_day_number)"
    if len(terms) == 1:
        return terms[0]
    return "clamp_max(" + " + ".join(terms) + ", 1)"


def clock_rules(clock_offset: int = 0) -> list[dict[str, Any]]:
    j = _jst(clock_offset)
    holidays = [day_number(d) for d in national_holidays()]
    last = dt.datetime(HOLIDAY_YEARS[-1], 10, 1, tzinfo=JST)
    return [
        {"record": MINUTE, "expr": f"floor(vector(({j}) % 86400 / 60))"},
        {"record": WEEKDAY, "expr": f"day_of_week(vector({j}))"},
        {"record": DOM, "expr": f"day_of_month(vector({j}))"},
        {"record": MONTH_DAY, "expr": f"month(vector({j})) * 100 + day_of_month(vector({j}))"},
        {"record": DAY, "expr": f"floor(vector(({j}) / 86400))"},
        {"record": HOLIDAY, "expr": _in(DAY, holidays)},
        # When the holiday table above needs regenerating (alert MadoguchiCalendarRulesExpiring).
        {"record": "madoguchi:calendar_rules_refresh_by_seconds", "expr": f"vector({int(last.timestamp())})"},
    ]


# --- the file calendar in PromQL ----------------------------------------------------------------


def _closed_day(calendar: CalendarConfig) -> str:
    closed = calendar.closed
    terms = []
    if closed.national_holidays:
        terms.append(HOLIDAY)
    if closed.year_end is not None:
        s = closed.year_end.start.month * 100 + closed.year_end.start.day
        e = closed.year_end.end.month * 100 + closed.year_end.end.day
        if s > e:
            terms.append(f"({MONTH_DAY} >= bool {s})")
            terms.append(f"({MONTH_DAY} <= bool {e})")
        else:
            terms.append(f"({MONTH_DAY} >= bool {s}) * ({MONTH_DAY} <= bool {e})")
    if closed.dates:
        terms.append(_in(DAY, [day_number(d) for d in closed.dates]))
    return _any(terms)


def _rule(rule: CalendarRule, closed_day: str) -> str:
    days = [(WEEKDAYS.index(d) + 1) % 7 for d in rule.days]  # mon=1 ... sun=0
    factors = [] if len(days) == 7 else [_in(WEEKDAY, days)]
    if rule.weeks_of_month is not None:
        factors.append(
            _in(DOM, itertools.chain.from_iterable(range(7 * w - 6, 7 * w + 1) for w in rule.weeks_of_month))
        )
    if rule.valid_from is not None:
        factors.append(f"({DAY} >= bool {day_number(rule.valid_from)})")
    if rule.valid_until is not None:
        factors.append(f"({DAY} <= bool {day_number(rule.valid_until)})")
    if not rule.on_closed_days and closed_day:
        factors.append(f"(1 - {closed_day})")
    factors.append(_any([f"({MINUTE} >= bool {h.start}) * ({MINUTE} < bool {h.end})" for h in rule.hours]))
    return " * ".join(factors)


def static_open(calendar: CalendarConfig) -> str:
    """1 while the file rules say open (no overrides), as PromQL over the JST clock facts."""
    closed = _closed_day(calendar)
    return _any([_rule(rule, closed) for rule in calendar.rules])


def _window(tenant: str, kind: str) -> str:
    sel = f'{{tenant="{tenant}",kind="{kind}"}}'
    return (
        f"(max((last_over_time(madoguchi_calendar_window_start_seconds{sel}[{WINDOW_LOOKBACK}]) <= bool time())"
        f" * (last_over_time(madoguchi_calendar_window_end_seconds{sel}[{WINDOW_LOOKBACK}]) > bool time()))"
        " or on() vector(0))"
    )


def tenant_open_rule(tenant: str, config: TenantConfig) -> dict[str, Any]:
    static = static_open(config.sla.service_hours)
    return {
        "record": OPEN,
        "expr": f"clamp(\n  {static}\n  - {_window(tenant, 'closed')}\n  + {_window(tenant, 'open')},\n  0, 1\n)",
        "labels": {"tenant": tenant},
    }


# --- SLIs and alerts ----------------------------------------------------------------------------


def _fmt(value: float) -> str:
    return f"{round(value, 6):g}"


def budget_rules(tenants: Mapping[str, TenantConfig]) -> list[dict[str, Any]]:
    """``madoguchi:slo_error_budget{tenant, slo}``: one rule per distinct budget, not per tenant."""
    by_budget: dict[tuple[str, str], list[str]] = {}
    for tenant, config in sorted(tenants.items()):
        availability = 1 - config.sla.targets.availability
        for slo, budget in (
            ("availability", availability),
            ("errors", availability),
            ("latency", LATENCY_BUDGET),
        ):
            by_budget.setdefault((slo, _fmt(budget)), []).append(tenant)
    rules = []
    for (slo, text), names in sorted(by_budget.items()):
        rules.append(
            {
                "record": "madoguchi:slo_error_budget",
                "expr": f'0 * {OPEN}{{tenant=~"{"|".join(names)}"}} + {text}',
                "labels": {"slo": slo},
            }
        )
    return rules


def sli_rules() -> list[dict[str, Any]]:
    requests = 'madoguchi_http_requests_total{tenant!=""}'
    errors = 'madoguchi_http_requests_total{tenant!="",status_class="5xx"}'
    slow = 'madoguchi_http_slow_requests_total{tenant!=""}'

    def ratio(bad: str, window: str) -> str:
        total = f"sum by (tenant) (rate({requests}[{window}]))"
        return f"(sum by (tenant) (rate({bad}[{window}])) or 0 * {total})\n/ {total}"

    rules: list[dict[str, Any]] = [
        # Down when no instance answers its scrape, and also when every target has vanished (service
        # discovery lost them) after being seen in the last day. Before Prometheus has ever scraped
        # the app (a fresh start) there is no sample: unknown, neither up nor down.
        {
            "record": "madoguchi:service_up",
            "expr": f'max(up{{job="{JOB}"}}) or on() (0 * count(last_over_time(up{{job="{JOB}"}}[1d])))',
        },
        {
            "record": "madoguchi:sli_error:ratio_rate5m",
            "expr": ratio(errors, "5m"),
            "labels": {"slo": "errors"},
        },
        {
            "record": "madoguchi:tenant_unavailable",
            "expr": (
                f"{OPEN} * on(tenant) clamp_max(\n"
                f"  ({OPEN} * 0 + on() group_left() (1 - madoguchi:service_up))\n"
                f'  + on(tenant) (max by (tenant) (madoguchi:sli_error:ratio_rate5m{{slo="errors"}} > bool {ERROR_RATIO_UNAVAILABLE}))\n'
                f"  or ({OPEN} * 0 + on() group_left() (1 - madoguchi:service_up)),\n"
                "  1\n)"
            ),
        },
    ]
    for window in SLI_WINDOWS:
        rules.append(
            {
                "record": f"madoguchi:sli_error:ratio_rate{window}",
                "expr": f"sum_over_time(madoguchi:tenant_unavailable[{window}])\n/ sum_over_time({OPEN}[{window}])",
                "labels": {"slo": "availability"},
            }
        )
        if window != "5m":
            rules.append(
                {
                    "record": f"madoguchi:sli_error:ratio_rate{window}",
                    "expr": ratio(errors, window),
                    "labels": {"slo": "errors"},
                }
            )
        rules.append(
            {
                "record": f"madoguchi:sli_error:ratio_rate{window}",
                "expr": ratio(slow, window),
                "labels": {"slo": "latency"},
            }
        )
    return rules


def alert_rules() -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = []
    for slo in SLOS:
        for severity in ("page", "ticket"):
            parts = []
            for w in (b for b in BURN_WINDOWS if b.severity == severity):
                budget = f'({_fmt(w.factor)} * madoguchi:slo_error_budget{{slo="{slo}"}})'
                parts.append(
                    f'(madoguchi:sli_error:ratio_rate{w.short}{{slo="{slo}"}} > on(tenant, slo) {budget}'
                    f'\n   and on(tenant, slo) madoguchi:sli_error:ratio_rate{w.long}{{slo="{slo}"}} > on(tenant, slo) {budget})'
                )
            rules.append(
                {
                    "alert": "MadoguchiErrorBudgetBurn",
                    "expr": "(\n  " + "\n  or\n  ".join(parts) + f"\n)\nand on(tenant) ({OPEN} == 1)",
                    "labels": {"severity": severity, "slo": slo},
                    "annotations": alert_annotations(slo, severity),
                }
            )
    rules.append(
        {
            "alert": "MadoguchiCalendarRulesExpiring",
            "expr": "time() > madoguchi:calendar_rules_refresh_by_seconds",
            "labels": {"severity": "ticket"},
            "annotations": {
                "summary": "SLA ルールの祝日表の期限が近づいています",
                "description": "madoguchi sla rules で翌年以降の祝日を含めて再生成し、デプロイしてください。",
            },
        }
    )
    rules.append(
        {
            "alert": "MadoguchiMetricsSnapshotStale",
            # Also when no snapshot has come at all for 15 minutes (age is absent then).
            "expr": "madoguchi_metrics_snapshot_age_seconds > 900"
            " or max_over_time(madoguchi_metrics_snapshot_ready[15m]) == 0",
            "for": "5m",
            "labels": {"severity": "ticket"},
            "annotations": {
                "summary": "/metrics のデータベース集計が15分以上更新されていません",
                "description": "臨時開庁・閉庁の反映、利用者数、取込件数が古いままです。アプリのログを確認してください。",
            },
        }
    )
    rules.append(
        {
            "alert": "MadoguchiWebhookDeliveriesFailed",
            # A delivery gives up after about a day of retries (app/linkage/webhooks.py); the count
            # only falls when the city sends it again or after 30 days, so a rise is news.
            "expr": 'delta(madoguchi_webhook_deliveries{status="failed"}[1h]) > 0',
            "labels": {"severity": "ticket"},
            "annotations": {
                "summary": "{{ $labels.tenant }}: Webhook 通知が送信先「{{ $labels.endpoint }}」に届かず、再送を止めました",
                "description": "受信側が約24時間応答しませんでした。自治体の管理画面「Webhook 通知」で理由を確認し、"
                "受信側の復旧後に再送するよう自治体の管理者に連絡してください。",
            },
        }
    )
    return rules


def rule_groups(
    tenants: Mapping[str, TenantConfig], clock_offset: int = 0, interval: str = "1m"
) -> dict[str, Any]:
    rules = clock_rules(clock_offset)
    rules += [tenant_open_rule(t, c) for t, c in sorted(tenants.items())]
    rules += budget_rules(tenants)
    rules += sli_rules()
    rules += alert_rules()
    return {"groups": [{"name": "madoguchi-sla", "interval": interval, "rules": rules}]}


class _Dumper(yaml.SafeDumper):
    pass


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def dump(data: Any, header: str) -> str:
    body = yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=200)
    return header + body


HEADER = (
    "# Generated by `madoguchi sla rules` from tenants/*/sla.yaml: do not edit by hand.\n"
    "# tests/test_sla_rules.py fails when this file is stale. See docs/adr/0006-sla-rules.md.\n"
)


def render_rules(
    tenants: Mapping[str, TenantConfig], clock_offset: int = 0, interval: str = "1m"
) -> dict[str, str]:
    """File name -> content for ``dashboards/rules/``."""
    return {"madoguchi-sla.yml": dump(rule_groups(tenants, clock_offset, interval), HEADER)}


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:12]
