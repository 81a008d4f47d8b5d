"""Authorization matrix: every tenant route and API operation × every role → allowed or denied.

The routes come from ``app.url_map`` (as in test_route_enumeration.py): a new route without a row
in ``EXPECTED`` fails ``test_the_matrix_names_every_route``, and a view without a permission
declaration fails ``test_every_tenant_view_declares_its_permissions`` and is refused at run time.
``EXPECTED`` is written by hand: it is the specification the declarations are checked against.
"""

from __future__ import annotations

import re

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.routing import Rule

from app.identity.permissions import BREAKGLASS_PERMISSIONS, SCOPES, declared, requires
from app.tenancy.context import is_public
from tests.conftest import csrf_token, login, make_staff

ROLES = ("窓口職員", "担当課職員", "受付担当", "署名タブレット", "監督者", "管理者", "監査担当")
CLERKS = {"窓口職員", "担当課職員", "監督者"}
EVERYONE = set(ROLES)
STAFF = EVERYONE - {"署名タブレット"}  # the tablet opens only the signing screens
RECEPTION = {"窓口職員", "受付担当", "監督者"}
DEPARTMENTS = {"担当課職員", "監督者"}
SIGNING = {"署名タブレット"}
FORM_ADMINS = {"管理者"}

# endpoint -> roles allowed (every method of the rule)
EXPECTED: dict[str, set[str]] = {
    # web
    "web.home": EVERYONE,
    "web.logout": EVERYONE,
    "web.password_change": EVERYONE,
    # counter (issue 6/8)
    "web.reception": RECEPTION,
    "web.display": RECEPTION,
    "web.desk": CLERKS,
    "web.case_view": CLERKS,
    "web.case_card": CLERKS,
    "web.case_identify": CLERKS,
    "web.case_qr": CLERKS,
    "web.case_events": CLERKS,
    "web.case_hand_over": CLERKS,
    "web.case_status": CLERKS,
    "web.case_sheet": CLERKS,
    "web.case_form": CLERKS,
    "web.case_search": CLERKS,
    "web.queues": DEPARTMENTS,
    "web.queue": DEPARTMENTS,
    "web.supervisor": {"監督者"},
    # forms (issue 4/8)
    "web.resident_forms": CLERKS,
    "web.resident_form": CLERKS,
    "web.applications": CLERKS,
    "web.application_detail": CLERKS,
    "web.application_pdf": CLERKS,
    "web.application_accept": DEPARTMENTS,
    "web.tablet": SIGNING,
    "web.application_sign": SIGNING,
    "web.admin_forms": FORM_ADMINS,
    "web.admin_form_new": FORM_ADMINS,
    "web.admin_form_edit": FORM_ADMINS,
    "web.admin_form_preview": FORM_ADMINS,
    "web.admin_form_version": FORM_ADMINS,
    "web.admin_card_readers": {"管理者"},
    "web.admin_webhooks": {"管理者"},
    "web.admin_webhook_resend": {"管理者"},
    "web.admin_webhook_test": {"管理者"},
    "web.resident_accesses": {"管理者", "監査担当"},
    "web.resident_accesses_csv": {"管理者", "監査担当"},
    "web.residents_search": CLERKS,
    "web.resident_detail": CLERKS,
    "web.resident_guidance": CLERKS,
    "web.linkage_batches": {"監督者", "管理者", "監査担当"},
    "web.linkage_batch": {"監督者"},  # rejected rows hold names and addresses
    "web.admin_home": {"管理者"},
    "web.admin_users": {"管理者"},
    "web.admin_user": {"管理者"},
    "web.admin_groups": {"管理者"},
    "web.admin_group": {"管理者"},
    "web.admin_breakglass": {"管理者"},
    "web.admin_breakglass_grant": {"管理者", "監査担当"},
    # monthly reports (issue 9/8): the city's own usage report
    "web.reports": {"管理者", "監査担当"},
    "web.report_file": {"管理者", "監査担当"},
    # API
    "tenant_api.tenant_info": STAFF,
    "tenant_api.calendar": STAFF,
    "tenant_api.list_forms": CLERKS,
    "tenant_api.fill_form": CLERKS,
    "tenant_api.preview_form": CLERKS,
    "tenant_api.submit_application": CLERKS,
    "tenant_api.get_application": CLERKS,
    "tenant_api.accept_application": DEPARTMENTS,
    "tenant_api.application_pdf": CLERKS,
    "tenant_api.sign_application": SIGNING,
    "tenant_api.certificate_request": CLERKS,
    "tenant_api.list_deliveries": CLERKS,
    "tenant_api.issue_ticket": RECEPTION,
    "tenant_api.open_case": CLERKS,
    "tenant_api.list_cases": CLERKS,
    "tenant_api.get_case": CLERKS,
    "tenant_api.identify": CLERKS,
    "tenant_api.set_events": CLERKS,
    "tenant_api.hand_over": CLERKS,
    "tenant_api.case_status": CLERKS,
    "tenant_api.department_queue": DEPARTMENTS,
    "tenant_api.procedure_action": DEPARTMENTS,
    "tenant_api.resident_accesses": {"管理者", "監査担当"},
    "tenant_api.search_residents": CLERKS,
    "tenant_api.get_resident": CLERKS,
    "tenant_api.determine_guidance": CLERKS,
    "tenant_api.guidance_sheet": CLERKS,
    "tenant_api.current_catalogue": CLERKS,
    "tenant_api.list_batches": {"監督者", "管理者", "監査担当"},
    "tenant_api.list_webhook_events": {"管理者"},
    "tenant_api.get_batch": {"監督者"},
}

DUMMY = {"int": "999999999", "default": "x", "string": "x", "path": "x/y"}


def tenant_rules(app: Flask) -> list[Rule]:
    return [r for r in app.url_map.iter_rules() if "tenant" in r.arguments]


def url_for_rule(rule: Rule, tenant: str) -> str:
    def value(match: re.Match[str]) -> str:
        converter, name = match.group(1) or "default", match.group(2)
        return tenant if name == "tenant" else DUMMY.get(converter, "x")

    return re.sub(r"<(?:(\w+)(?:\([^)]*\))?:)?(\w+)>", value, rule.rule)


def methods(rule: Rule) -> list[str]:
    return sorted((rule.methods or set()) - {"HEAD", "OPTIONS"})


def undeclared(app: Flask) -> list[str]:
    """Endpoints of tenant and ops routes that are neither public nor declare permissions."""
    out = []
    for rule in app.url_map.iter_rules():
        if "tenant" not in rule.arguments and not rule.rule.startswith("/ops"):
            continue
        view = app.view_functions[rule.endpoint]
        if not is_public(view) and declared(view) is None:
            out.append(rule.endpoint)
    return sorted(out)


def test_every_tenant_view_declares_its_permissions(app: Flask) -> None:
    assert undeclared(app) == []


def test_the_matrix_names_every_route(app: Flask) -> None:
    routed = {r.endpoint for r in tenant_rules(app) if not is_public(app.view_functions[r.endpoint])}
    assert routed - set(EXPECTED) == set(), "new route: add its row to EXPECTED"
    assert set(EXPECTED) - routed == set(), "EXPECTED names a route that no longer exists"


@pytest.fixture
def role_clients(app: Flask, db: None) -> dict[str, FlaskClient]:
    clients = {}
    for i, role in enumerate(ROLES):
        login_id = f"role{i}"
        make_staff("osaka", login_id, name=f"{role} テスト", groups=(role,))
        client = app.test_client()
        login(client, "osaka", login_id)
        clients[role] = client
    return clients


def test_every_route_and_operation_for_every_role(app: Flask, role_clients: dict[str, FlaskClient]) -> None:
    mismatches = []
    checked = 0
    for rule in tenant_rules(app):
        if is_public(app.view_functions[rule.endpoint]):
            continue
        url = url_for_rule(rule, "osaka")
        for method in methods(rule):
            if rule.endpoint == "web.logout":
                continue  # would end the session the rest of the matrix needs; covered below
            for role, client in role_clients.items():
                token = csrf_token(client, "/osaka/login")
                response = client.open(
                    url, method=method, headers={"Accept": "application/json", "X-CSRFToken": token}
                )
                allowed = role in EXPECTED[rule.endpoint]
                location = response.headers.get("Location", "")
                if response.status_code == 302 and "/login" in location:
                    mismatches.append((role, method, url, "sent to login"))
                elif allowed and (response.status_code in (401, 403) or response.status_code >= 500):
                    mismatches.append((role, method, url, response.status_code, "should be allowed"))
                elif not allowed and response.status_code != 403:
                    mismatches.append((role, method, url, response.status_code, "should be 403"))
                checked += 1
    assert mismatches == []
    assert checked >= len(ROLES) * (len(EXPECTED) - 1)


def test_logout_is_open_to_every_role(role_clients: dict[str, FlaskClient]) -> None:
    for client in role_clients.values():
        token = csrf_token(client, "/osaka/")
        assert client.post("/osaka/logout", data={"csrf_token": token}).status_code == 302
        assert client.get("/osaka/").status_code == 302  # signed out


def test_anonymous_gets_login_or_401_on_every_route(app: Flask, db: None) -> None:
    client = app.test_client()
    token = csrf_token(client, "/osaka/login")
    for rule in tenant_rules(app):
        if is_public(app.view_functions[rule.endpoint]):
            continue
        for method in methods(rule):
            url = url_for_rule(rule, "osaka")
            response = client.open(url, method=method, headers={"X-CSRFToken": token})
            if rule.endpoint.startswith("tenant_api."):
                assert response.status_code == 401, (method, url)
                assert response.headers["WWW-Authenticate"].startswith("Bearer")
            else:
                assert response.status_code == 302, (method, url)
                assert "/osaka/login" in response.headers["Location"]


def test_a_view_without_a_declaration_is_refused(app: Flask, db: None) -> None:
    def forgotten() -> str:
        return "personal data"

    app.add_url_rule("/<tenant>/forgotten", endpoint="web.forgotten", view_func=forgotten)
    assert undeclared(app) == ["web.forgotten"]  # the declaration test would fail
    make_staff("osaka", "boss", groups=ROLES)  # every role at once: still refused
    client = app.test_client()
    login(client, "osaka", "boss")
    response = client.get("/osaka/forgotten")
    assert response.status_code == 403
    assert "personal data" not in response.get_data(as_text=True)


def test_declarations_reject_unknown_permissions() -> None:
    with pytest.raises(ValueError, match="unknown"):
        requires("residents.everything")


def test_api_scopes_map_to_permissions_on_every_operation(app: Flask, db: None) -> None:
    """A token reaches an operation iff its scopes give every permission the operation declares."""
    from click.testing import CliRunner

    from app.cli import main

    runner = CliRunner()
    tokens = {}
    for scope in SCOPES:
        out = runner.invoke(main, ["clients", "add", "osaka", f"matrix {scope}", "--scope", scope])
        assert out.exit_code == 0, out.output
        client_id = out.output.split("client_id: ")[1].split()[0]
        secret = out.output.split("client_secret: ")[1].split()[0]
        issued = app.test_client().post(
            "/api/v1/osaka/oauth/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret)
        )
        assert issued.status_code == 200, issued.get_json()
        tokens[scope] = issued.get_json()["access_token"]
    client = app.test_client()
    for rule in tenant_rules(app):
        view = app.view_functions[rule.endpoint]
        if not rule.endpoint.startswith("tenant_api.") or is_public(view):
            continue
        needed = declared(view)
        assert needed is not None
        for method in methods(rule):
            for scope, token in tokens.items():
                response = client.open(
                    url_for_rule(rule, "osaka"), method=method, headers={"Authorization": f"Bearer {token}"}
                )
                if needed <= set(SCOPES[scope]):
                    assert response.status_code not in (401, 403), (scope, method, rule.rule)
                else:
                    assert response.status_code == 403, (scope, method, rule.rule, response.status_code)


def test_breakglass_permissions_are_reads_only() -> None:
    assert not any(
        p.startswith(("admin.", "audit.")) or p.endswith(".import") for p in BREAKGLASS_PERMISSIONS
    )


def test_ops_routes_refuse_every_city_role(app: Flask, role_clients: dict[str, FlaskClient]) -> None:
    """Provider screens: no city staff member gets past the ops guard, whatever their role."""
    ops_rules = [r for r in app.url_map.iter_rules() if r.rule.startswith("/ops")]
    assert len(ops_rules) >= 4
    for rule in ops_rules:
        if is_public(app.view_functions[rule.endpoint]):
            continue
        for method in methods(rule):
            for role, client in role_clients.items():
                token = csrf_token(client, "/osaka/login")
                response = client.open(
                    url_for_rule(rule, "osaka"), method=method, headers={"X-CSRFToken": token}
                )
                assert response.status_code == 302, (role, method, rule.rule)
                assert response.headers["Location"].startswith("/ops/login"), (role, rule.rule)
