"""One statement per tenant for the monthly report's database figures (app.reports.sources.database).

Runs in a Session bound to the tenant: unqualified names resolve to its schema and the tenant
role's rights apply, so a report can only ever read the one city it is for. ``:start`` and
``:end`` bound the month in JST, ``[start, end)``. The SQL text is also what the report cites as the
source of each figure.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

MONTH_FIGURES_SQL = """
SELECT
  (SELECT count(*) FROM cases WHERE created_at >= :start AND created_at < :end) AS cases,
  (SELECT count(*) FROM cases WHERE closed_at >= :start AND closed_at < :end AND status = 'closed') AS cases_closed,
  (SELECT count(*) FROM case_procedures WHERE done_at >= :start AND done_at < :end) AS procedures_done,
  (SELECT count(*) FROM applications WHERE created_at >= :start AND created_at < :end) AS applications,
  (SELECT count(*) FROM applications WHERE accepted_at >= :start AND accepted_at < :end) AS applications_accepted,
  (SELECT count(*) FROM certificate_requests WHERE created_at >= :start AND created_at < :end) AS certificate_requests,
  (SELECT count(*) FROM tickets WHERE issued_at >= :start AND issued_at < :end) AS tickets,
  (SELECT round(avg(extract(epoch FROM called_at - issued_at)) / 60, 1) FROM tickets
    WHERE issued_at >= :start AND issued_at < :end AND called_at IS NOT NULL) AS wait_minutes_avg,
  (SELECT round(avg(extract(epoch FROM closed_at - started_at)) / 60, 1) FROM cases
    WHERE closed_at >= :start AND closed_at < :end AND started_at IS NOT NULL) AS handling_minutes_avg,
  (SELECT count(DISTINCT actor_id) FROM audit_log
    WHERE actor_type = 'staff' AND actor_id NOT LIKE 'login:%' AND occurred_at >= :start AND occurred_at < :end)
    AS unique_users,
  (SELECT coalesce(json_object_agg(day, n), '{}') FROM (
     SELECT to_char(created_at AT TIME ZONE 'Asia/Tokyo', 'YYYY-MM-DD') AS day, count(*) AS n
       FROM cases WHERE created_at >= :start AND created_at < :end GROUP BY 1) AS d) AS cases_by_day
"""
_MONTH_FIGURES = text(MONTH_FIGURES_SQL)


def month_figures(session: Session, start: dt.datetime, end: dt.datetime) -> dict[str, Any]:
    row = session.execute(_MONTH_FIGURES, {"start": start, "end": end}).one()
    return dict(row._mapping)
