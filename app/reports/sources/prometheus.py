"""KPIs and service level from Prometheus (HTTP API), inside each tenant's service hours.

The SLA rules (docs/adr/0006-sla-rules.md) record per tenant and minute whether it is open
(``madoguchi:tenant_open``) and whether it is open *and* unavailable
(``madoguchi:tenant_unavailable``). Downtime and open time are counts of those 1-minute samples
over the month, so closed minutes (nights, weekends, holidays, the year-end) never count, whatever
happened in them. Requests, server errors and requests slower than the tenant's target come from the
app's counters (``increase`` over the month; Prometheus 2.x selects both ends of a range, so the
month ``[start, end]`` is counted from the sample at its first instant to the one at its last).

All queries aggregate ``by (tenant)``: one HTTP call answers for every municipality at once.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx

from app.reports.period import Month
from app.reports.sources import ReportSourceError, Sourced

RULE_INTERVAL_SECONDS = 60  # dashboards/rules evaluation interval: one sample per minute
REQUESTS = 'madoguchi_http_requests_total{tenant!=""}'
ERRORS = 'madoguchi_http_requests_total{tenant!="",status_class="5xx"}'
SLOW = 'madoguchi_http_slow_requests_total{tenant!=""}'
DURATION = "madoguchi_http_request_duration_seconds_bucket"


def _month_queries(seconds: int) -> dict[str, tuple[str, str]]:
    """figure -> (PromQL, when: "end" or "end-1s")."""
    r, r1 = f"{seconds}s", f"{seconds - 1}s"
    return {
        "requests": (f"round(sum by (tenant) (increase({REQUESTS}[{r}])))", "end"),
        "errors": (f"round(sum by (tenant) (increase({ERRORS}[{r}])))", "end"),
        "slow": (f"round(sum by (tenant) (increase({SLOW}[{r}])))", "end"),
        "open_samples": (f"sum by (tenant) (sum_over_time(madoguchi:tenant_open[{r1}]))", "end-1s"),
        "down_samples": (f"sum by (tenant) (sum_over_time(madoguchi:tenant_unavailable[{r1}]))", "end-1s"),
    }


DAILY = {
    "requests": (f"round(sum by (tenant) (increase({REQUESTS}[1d])))", 0),
    "down_samples": ("sum by (tenant) (sum_over_time(madoguchi:tenant_unavailable[86399s]))", -1),
}


class PrometheusSource:
    def __init__(self, base_url: str, timeout: float = 60.0, client: httpx.Client | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.client = client or httpx.Client(timeout=timeout)

    def close(self) -> None:
        self.client.close()

    def _get(self, path: str, params: dict[str, str]) -> Any:
        try:
            response = self.client.get(f"{self.base_url}{path}", params=params)
            body = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise ReportSourceError(
                f"Prometheus に接続できません（{self.base_url}）: {type(exc).__name__}"
            ) from exc
        if response.status_code != 200 or body.get("status") != "success":
            raise ReportSourceError(
                f"Prometheus のクエリが失敗しました: {body.get('error', response.status_code)}"
            )
        return body["data"]

    def query(self, expr: str, at: dt.datetime) -> dict[str, float]:
        data = self._get("/api/v1/query", {"query": expr, "time": f"{at.timestamp():.3f}"})
        out: dict[str, float] = {}
        for item in data.get("result", []):
            tenant = item.get("metric", {}).get("tenant", "")
            out[tenant] = float(item["value"][1])
        return out

    def query_range(self, expr: str, start: dt.datetime, end: dt.datetime, step: int) -> dict[str, list[Any]]:
        data = self._get(
            "/api/v1/query_range",
            {
                "query": expr,
                "start": f"{start.timestamp():.3f}",
                "end": f"{end.timestamp():.3f}",
                "step": f"{step}s",
            },
        )
        return {item.get("metric", {}).get("tenant", ""): item["values"] for item in data.get("result", [])}

    def service_levels(self, month: Month) -> Sourced:
        """Per tenant: requests, errors, slow, open and down minutes, and daily series; plus p95."""
        seconds = int((month.end - month.start).total_seconds())
        queries: list[dict[str, str]] = []
        figures: dict[str, dict[str, Any]] = {}
        minute_factor = RULE_INTERVAL_SECONDS / 60
        for name, (expr, when) in _month_queries(seconds).items():
            at = month.end if when == "end" else month.end - dt.timedelta(seconds=1)
            queries.append(
                {"id": f"prometheus.{name}", "source": "Prometheus", "query": f"{expr} @ {at.isoformat()}"}
            )
            for tenant, value in self.query(expr, at).items():
                row = figures.setdefault(tenant, {})
                if name.endswith("_samples"):
                    row["open_minutes" if name == "open_samples" else "downtime_minutes"] = round(
                        value * minute_factor
                    )
                else:
                    row[name] = round(value)
        first_day_end = month.start + dt.timedelta(days=1)
        days = [d.isoformat() for d in month.days]
        for name, (expr, shift) in DAILY.items():
            start = first_day_end + dt.timedelta(seconds=shift)
            end = month.end + dt.timedelta(seconds=shift)
            queries.append(
                {
                    "id": f"prometheus.daily_{name}",
                    "source": "Prometheus",
                    "query": f"{expr} range {start.isoformat()}..{end.isoformat()} step 1d",
                }
            )
            for tenant, values in self.query_range(expr, start, end, 86400).items():
                series = dict.fromkeys(days, 0)
                for stamp, value in values:
                    moment = dt.datetime.fromtimestamp(float(stamp) - shift, dt.UTC) - dt.timedelta(days=1)
                    day = moment.astimezone(month.start.tzinfo).date().isoformat()
                    if day in series:
                        factor = minute_factor if name == "down_samples" else 1
                        series[day] = round(float(value) * factor)
                key = "daily_downtime_minutes" if name == "down_samples" else "daily_requests"
                figures.setdefault(tenant, {})[key] = series
        p95_expr = f"histogram_quantile(0.95, sum by (le) (increase({DURATION}[{seconds}s])))"
        queries.append(
            {
                "id": "prometheus.latency_p95",
                "source": "Prometheus",
                "query": f"{p95_expr} @ {month.end.isoformat()}",
            }
        )
        p95 = self.query(p95_expr, month.end).get("")
        latency_p95_ms = None if p95 is None or p95 != p95 else round(p95 * 1000)
        figures.pop("", None)
        return Sourced({"tenants": figures, "latency_p95_ms": latency_p95_ms}, queries)
