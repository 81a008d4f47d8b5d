"""A Gobo counter day in miniature, for tests that walk every route: one resident (御坊 一郎, from
``tests.test_counter_web.family``) identified on a case, the case's guidance determined and handed
over to the departments, and an application filed for him."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient

from tests.test_counter_web import TENANT, clerk

# Every staff role but the signing tablet's (which opens only the signing screens).
ALL_STAFF_ROLES = ("窓口職員", "担当課職員", "受付担当", "監督者", "管理者", "監査担当")
FORM_ID = "juumin_idou_todoke"


def counter_world(app: Flask, resident_id: int) -> tuple[FlaskClient, dict[str, str]]:
    """A client signed in with every staff role, and the values for the routes' URL variables."""
    staff = clerk(app, groups=ALL_STAFF_ROLES)
    api = f"/api/v1/{TENANT}"
    ticket = staff.post(f"{api}/tickets", json={"counter_id": "shimin"}).get_json()
    case = staff.post(f"{api}/cases", json={"ticket_id": ticket["id"]}).get_json()["case"]
    identified = staff.post(
        f"{api}/cases/{case['id']}/identify", json={"version": case["version"], "resident_id": resident_id}
    )
    assert identified.status_code == 200
    version = identified.get_json()["case"]["version"]
    guided = staff.post(f"{api}/cases/{case['id']}/events",
                        json={"version": version, "events": ["tenkyo"], "event_date": "2026-11-20"})  # fmt: skip
    assert guided.status_code == 200
    handed = staff.post(
        f"{api}/cases/{case['id']}/hand-over", json={"version": guided.get_json()["case"]["version"]}
    )
    assert handed.status_code == 200
    submitted = staff.post(f"{api}/applications", json={"form_id": FORM_ID, "resident_id": resident_id,
                                                        "event_date": "2026-11-20", "event_name": "転居"})  # fmt: skip
    assert submitted.status_code == 201, submitted.get_json()
    department = sorted(p["department"] for p in handed.get_json()["procedures"])[0]
    return staff, {
        "tenant": TENANT,
        "resident_id": str(resident_id),
        "case_id": str(case["id"]),
        "department": department,
        "application_id": str(submitted.get_json()["id"]),
        "form_id": FORM_ID,
    }
