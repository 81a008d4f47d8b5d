"""Counter API: one call per screen, versions refuse stale writes with 409, tenancy holds."""

from __future__ import annotations

from flask import Flask

from tests.test_counter_web import TENANT, clerk, family  # noqa: F401  (fixture)


def test_a_case_through_the_api(app: Flask, family: int) -> None:  # noqa: F811
    client = clerk(app, groups=("監督者",))
    api = f"/api/v1/{TENANT}"
    ticket = client.post(f"{api}/tickets", json={"counter_id": "shimin"})
    assert ticket.status_code == 201
    assert ticket.get_json()["label"] == "A-001"
    opened = client.post(f"{api}/cases", json={"ticket_id": ticket.get_json()["id"]})
    assert opened.status_code == 201
    screen = opened.get_json()
    case_id, version = screen["case"]["id"], screen["case"]["version"]
    assert screen["ticket"]["label"] == "A-001"

    screen = client.post(
        f"{api}/cases/{case_id}/identify", json={"version": version, "resident_id": family}
    ).get_json()
    assert screen["visitor"]["name"] == "御坊\u3000一郎"
    assert len(screen["household"]) == 3
    stale = client.post(f"{api}/cases/{case_id}/events", json={"version": version, "events": ["tenkyo"]})
    assert stale.status_code == 409
    assert "他の職員が先に更新しました" in stale.get_json()["message"]
    version = screen["case"]["version"]
    screen = client.post(f"{api}/cases/{case_id}/events", json={"version": version, "events": ["tenkyo"],
                                                               "event_date": "2026-11-20"}).get_json()  # fmt: skip
    assert screen["guidance"]["procedures"]
    bad = client.post(
        f"{api}/cases/{case_id}/events", json={"version": screen["case"]["version"], "events": ["x"]}
    )
    assert bad.status_code == 422
    assert "不明なライフイベント" in bad.get_json()["message"]

    screen = client.post(
        f"{api}/cases/{case_id}/hand-over", json={"version": screen["case"]["version"]}
    ).get_json()
    assert screen["case"]["status"] == "handed_over"
    departments = {p["department"] for p in screen["procedures"]}
    for department in departments:
        for item in client.get(f"{api}/queues/{department}").get_json():
            done = client.post(
                f"{api}/procedures/{item['procedure_id']}",
                json={"version": item["version"], "action": "done"},
            )
            assert done.status_code == 200
            again = client.post(
                f"{api}/procedures/{item['procedure_id']}",
                json={"version": item["version"], "action": "done"},
            )
            assert again.status_code == 409
    screen = client.get(f"{api}/cases/{case_id}").get_json()
    assert screen["case"]["status"] == "closed"
    assert {p["status"] for p in screen["procedures"]} == {"done"}
    listed = client.get(f"{api}/cases?status=closed").get_json()
    assert [c["id"] for c in listed] == [case_id]

    osaka = clerk(app, "osaka", groups=("監督者",))
    assert osaka.get(f"{api}/cases/{case_id}").status_code == 404
    assert osaka.get(f"/api/v1/osaka/cases/{case_id}").status_code == 404
    assert osaka.post(f"/api/v1/osaka/procedures/{screen['procedures'][0]['id']}",
                      json={"version": 1, "action": "reopen"}).status_code == 404  # fmt: skip
