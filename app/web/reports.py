"""The city's own monthly reports under ``/<tenant>/reports``: list and download.

Only reports whose scope is the URL's tenant are listed or served; a month, scope or name of
another city's report gives the same 404 as one that does not exist.
"""

from __future__ import annotations

from flask import g, render_template
from werkzeug.wrappers import Response

from app.dates import JST
from app.identity.permissions import requires
from app.reports.service import control_session, list_reports
from app.reports.web import download
from app.web import tenant_web


@tenant_web.route("/reports")
@requires("reports.view")
def reports() -> str:
    with control_session() as session:
        rows = [
            {
                "month": r.month,
                "files": r.files,
                "generated_at": r.generated_at.astimezone(JST).strftime("%Y-%m-%d %H:%M"),
            }
            for r in list_reports(session, scope=g.tenant.id)
        ]
    return render_template("reports/list.html", rows=rows)


@tenant_web.route("/reports/<month>/<path:name>")
@requires("reports.view")
def report_file(month: str, name: str) -> Response:
    return download(month, g.tenant.id, name)
