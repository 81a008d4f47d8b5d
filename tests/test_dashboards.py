"""Grafana dashboards: generated (grafana-foundation-sdk), fresh, and every query parses."""

from __future__ import annotations

import json
from pathlib import Path

import promql_parser

from app.observability import dashboards

ROOT = Path(__file__).resolve().parent.parent


def test_checked_in_dashboards_are_fresh() -> None:
    for name, text in dashboards.render().items():
        assert (ROOT / "dashboards" / name).read_text() == text, (
            f"{name} is stale: run `madoguchi sla dashboards`"
        )


def test_every_panel_query_parses_and_names_only_bounded_labels() -> None:
    for name in dashboards.DASHBOARDS:
        board = json.loads((ROOT / "dashboards" / name).read_text())
        queries = list(dashboards.panel_queries(board))
        assert len(queries) >= 12, name
        for title, expr in queries:
            parsed = promql_parser.parse(expr.replace("$__rate_interval", "1m").replace("$tenant", "osaka"))
            assert parsed is not None, title
            # Route histograms are never broken down by tenant (1,741 x buckets x routes).
            assert not ("duration_seconds" in expr and "tenant" in expr), title
        assert board["timezone"] == "Asia/Tokyo"
        assert all(t.get("refId") for p in board["panels"] for t in p.get("targets") or [])
