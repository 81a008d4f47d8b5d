"""Cloud usage per municipality: Cost Explorer grouped by the ``municipality`` cost-allocation tag.

Costs tagged with a tenant id are that municipality's own. Untagged costs (shared: the database
cluster, load balancers, monitoring) and tags naming no tenant are apportioned by measured usage:
each municipality's share of the month's requests (Prometheus). Amounts are rounded to the cent
with the largest-remainder method, so the shares add up exactly to the shared total. The method
is written into the report. Cost Explorer's month is the UTC calendar month.
"""

from __future__ import annotations

from decimal import ROUND_DOWN, Decimal
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from app.reports.period import Month
from app.reports.sources import ReportSourceError, Sourced

METRIC = "UnblendedCost"
CENT = Decimal("0.01")


def cost_by_tag(ce: Any, month: Month, tag_key: str) -> Sourced:
    start = f"{month.year:04d}-{month.month:02d}-01"
    end_month = month.end.date()
    request = {
        "TimePeriod": {"Start": start, "End": end_month.isoformat()},
        "Granularity": "MONTHLY",
        "Metrics": [METRIC],
        "GroupBy": [{"Type": "TAG", "Key": tag_key}],
    }
    groups: dict[str, str] = {}
    unit = "USD"
    try:
        token = None
        while True:
            response = ce.get_cost_and_usage(**request, **({"NextPageToken": token} if token else {}))
            for period in response.get("ResultsByTime", []):
                for group in period.get("Groups", []):
                    key = group["Keys"][0]
                    value = key.split("$", 1)[1] if "$" in key else key
                    metric = group["Metrics"][METRIC]
                    unit = metric.get("Unit", unit)
                    groups[value] = str(Decimal(groups.get(value, "0")) + Decimal(metric["Amount"]))
            token = response.get("NextPageToken")
            if not token:
                break
    except (BotoCoreError, ClientError) as exc:
        raise ReportSourceError(f"Cost Explorer の利用料を取得できません: {exc}") from exc
    query = f"GetCostAndUsage {start}..{end_month.isoformat()} MONTHLY {METRIC} GroupBy TAG:{tag_key}"
    return Sourced(
        {"unit": unit, "groups": dict(sorted(groups.items()))},
        [{"id": "aws.ce.cost_by_tag", "source": "AWS Cost Explorer", "query": query}],
    )


def _cents(value: str | Decimal) -> Decimal:
    return Decimal(value).quantize(CENT)


def apportion(
    groups: dict[str, str], usage: dict[str, int], tenants: list[str], unit: str, tag_key: str
) -> dict[str, Any]:
    """Direct costs per tenant plus the shared costs split by ``usage`` (requests)."""
    direct = {t: _cents(groups.get(t, "0")) for t in tenants}
    shared_keys = sorted(k for k in groups if k not in tenants)
    shared = sum((Decimal(groups[k]) for k in shared_keys), Decimal(0)).quantize(CENT)
    weights = {t: max(0, int(usage.get(t, 0))) for t in tenants}
    total_weight = sum(weights.values())
    basis = "requests"
    if total_weight == 0 and tenants:
        weights, total_weight, basis = dict.fromkeys(tenants, 1), len(tenants), "equal"
    shares: dict[str, Decimal] = dict.fromkeys(tenants, Decimal(0))
    if total_weight:
        cents = int(shared / CENT)
        exact = {t: Decimal(cents) * weights[t] / total_weight for t in tenants}
        floors = {t: int(exact[t].to_integral_value(rounding=ROUND_DOWN)) for t in tenants}
        left = cents - sum(floors.values())
        for t in sorted(tenants, key=lambda t: (-(exact[t] - floors[t]), t))[:left]:
            floors[t] += 1
        shares = {t: Decimal(floors[t]) * CENT for t in tenants}
    rows = [
        {
            "tenant": t,
            "direct": str(direct[t]),
            "shared_share": str(shares[t]),
            "total": str(direct[t] + shares[t]),
            "usage_requests": int(usage.get(t, 0)),
        }
        for t in tenants
    ]
    if basis == "requests":
        method = (
            f"タグ {tag_key} の値（自治体ID）で各自治体に直接計上。タグのない費用と自治体以外のタグ値の費用"
            f"（共有費用 {shared} {unit}）は、当月の各自治体のリクエスト数（Prometheus 実測）の比で按分し、"
            "0.01 単位の端数は最大剰余法で配分（按分額の合計は共有費用に一致）。集計期間は Cost Explorer の暦月（UTC）。"
        )
    else:
        method = (
            f"タグ {tag_key} の値で直接計上。当月のリクエスト数が全自治体で 0 のため、共有費用 {shared} {unit} は"
            "均等に按分（端数は最大剰余法）。集計期間は Cost Explorer の暦月（UTC）。"
        )
    return {
        "unit": unit,
        "total": str(sum(direct.values(), Decimal(0)) + shared),
        "direct_total": str(sum(direct.values(), Decimal(0)).quantize(CENT)),
        "shared_total": str(shared),
        "shared_keys": [k or "（タグなし）" for k in shared_keys],
        "basis": basis,
        "method": method,
        "tenants": rows,
    }
