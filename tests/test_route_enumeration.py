"""Every tenant-scoped URL rule answers 404 to another tenant's credentials.

The list of rules comes from the app itself, so a new route is covered the day it is added.
"""

from __future__ import annotations

from flask import Flask
from werkzeug.routing import Rule

from app.tenancy.context import is_public
from tests.conftest import csrf_token

DUMMY = {
    "int": "1",
    "default": "x",
    "string": "x",
    "path": "x/y",
    "uuid": "00000000-0000-0000-0000-000000000000",
}


def _tenant_rules(app: Flask) -> list[Rule]:
    return [r for r in app.url_map.iter_rules() if "tenant" in r.arguments]


def _url(rule: Rule, tenant: str) -> str:
    values = {}
    for arg in rule.arguments:
        converter = type(rule._converters[arg]).__name__.replace("Converter", "").lower()  # type: ignore[attr-defined]
        values[arg] = tenant if arg == "tenant" else DUMMY.get(converter, "x")
    path = rule.rule
    for key, value in values.items():
        for pattern in (f"<{key}>", *[f"<{c}:{key}>" for c in ("int", "string", "path", "uuid", "default")]):
            path = path.replace(pattern, value)
    return path


def test_every_tenant_route_is_404_with_another_tenants_credentials(app: Flask, client_for: object) -> None:
    gobo = client_for("gobo")  # type: ignore[operator]
    # A logged-in Gobo clerk holds a valid CSRF token; send it so writes reach the tenant check.
    token = csrf_token(gobo, "/gobo/login")
    rules = _tenant_rules(app)
    assert len(rules) >= 5  # web and API rules, public ones included
    checked = 0
    for rule in rules:
        view = app.view_functions[rule.endpoint]
        if is_public(view):
            continue
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            url = _url(rule, "osaka")
            headers = {"Accept": "application/json", "X-CSRFToken": token}
            response = gobo.open(url, method=method, headers=headers)
            assert response.status_code == 404, (method, url, response.status_code)
            checked += 1
    assert checked >= 4  # at least the routes of issue 1: home, logout, tenant, calendar


def test_public_tenant_routes_are_only_the_declared_ones(app: Flask) -> None:
    public = sorted(r.endpoint for r in _tenant_rules(app) if is_public(app.view_functions[r.endpoint]))
    # Adding a public (no-login) page is a security decision: extend this list deliberately.
    assert (
        public
        == [
            "tenant_api.issue_token",
            "tenant_api.post_card_read",  # the reader agent: checks its own device token, rate limited  # OAuth2 token endpoint: the client authenticates with its secret
            "web.login",
            "web.login_totp",  # second step: needs the pending login cookie from the first
            "web.oidc_callback",  # the city's IdP sends the browser back; state, PKCE and nonce checked
            "web.oidc_start",
            "web.pre_form",  # 事前申請 by residents at home: writes only its own row, rate limited per address
            "web.pre_start",
        ]
    )


def test_wrong_tenant_and_unknown_tenant_answers_are_indistinguishable(
    app: Flask, client_for: object
) -> None:
    gobo = client_for("gobo")  # type: ignore[operator]
    for template in ("/{t}/", "/api/v1/{t}/tenant"):
        wrong = gobo.get(template.format(t="osaka"))
        unknown = gobo.get(template.format(t="atlantis"))
        assert wrong.status_code == unknown.status_code == 404
        assert wrong.get_data() == unknown.get_data()
        assert wrong.content_type == unknown.content_type


def test_own_tenant_routes_work(client_for: object) -> None:
    gobo = client_for("gobo")  # type: ignore[operator]
    assert gobo.get("/gobo/").status_code == 200
    info = gobo.get("/api/v1/gobo/tenant").get_json()
    assert info["code"] == "302058"
    assert info["name"] == "御坊市"
