"""Hostile input on every route: nothing a user, a file or another system can send gets a 500.

The routes come from ``app.url_map`` (a route added tomorrow is covered tomorrow). What is sent:
the query parameters and JSON properties the OpenAPI document declares, and the form fields the
staff UI's templates post, each filled with values a form or a misbehaving client can produce
(NUL, lone surrogates, overlong text, impossible dates, wrong JSON types, NaN, deep nesting, bodies
that are not JSON or not UTF-8). Tenant routes are called by one signed-in user holding every staff
role, on a real resident and a real case, so the requests reach the views' own parsing, not only
the permission check; provider routes by provider staff; the rest anonymously.

Every answer must be below 500, and an API answer that refuses the request must be JSON with a
message for the caller.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import text
from werkzeug.routing import Rule

from app.db.engine import admin_engine
from app.inputs import MAX_BODY_BYTES
from app.tenancy.context import is_public
from tests.conftest import csrf_token, provider_client
from tests.test_authorization_matrix import methods
from tests.test_card_reads_api import register as register_device
from tests.test_counter_web import TENANT, clerk, family  # noqa: F401  (fixture)

TEMPLATES = Path(__file__).resolve().parents[1] / "app" / "web" / "templates"

# Credentials and request headers that are not what they claim to be.
HOSTILE_HEADERS: tuple[dict[str, str], ...] = (
    {"Authorization": "Bearer " + "x" * 5000, "X-Request-ID": "x" * 5000},
    {"Authorization": "Basic !!!not-base64!!!", "Accept": "application/json;q=x"},
    {"Authorization": "Basic " + "Zm9vOmJhcjpiYXo6" * 300, "Cookie": "session=garbage.garbage.garbage"},
    {"Authorization": "Bearer mdr_" + "0" * 64, "Content-Type": "application/json; charset=x-unknown"},
)

# Stands for bytes that are not UTF-8 (a lone surrogate's encoding, 0xFF): sent percent-encoded.
INVALID_UTF8 = "<invalid UTF-8>"

# Values a browser form, a scanner or a script can put in any text field.
HOSTILE_TEXT = (
    "\x00",
    "-1",
    "9" * 40,
    "2026-02-30",
    "令和0年1月1日",
    "１２３",
    "x" * 5000,
    "<script>alert(1)</script>",
    "' OR 1=1 --",
    INVALID_UTF8,
    " ",
)

# JSON values of every type, for every declared property.
HOSTILE_JSON: tuple[Any, ...] = (
    None,
    -1,
    10**30,
    1.5,
    True,
    "x" * 5000,
    "\x00",
    [],
    {},
    "2026-02-30",
    [{"a": []}],
)

# Request bodies that are not what a JSON API expects.
HOSTILE_BODIES: tuple[bytes, ...] = (
    b"{",
    b"[]",
    b'"x"',
    b"null",
    b"\xff\xfe\x00",
    b'{"version": NaN, "limit": Infinity}',
    b"[" * 5000 + b"]" * 5000,
)

# What Python's own exceptions say: a user is told what was wrong in Japanese, never these.
PYTHON_ERRORS = re.compile(
    r"invalid literal for|Invalid isoformat|does not match format|unconverted data|object has no attribute"
    r"|NoneType|Traceback|Expecting value|index out of range|could not convert|codec can't"
    r"|is not a valid|unsupported operand|not subscriptable|takes \d+ positional"
)

# Path values: the world's real objects where the name says which, else an id nobody has.
SIGNED_OUT = {"web.logout", "ops.logout"}


def _form_fields() -> list[str]:
    names: set[str] = set()
    for page in TEMPLATES.rglob("*.html"):
        names.update(re.findall(r'name="([A-Za-z_][\w\-\[\].]*)"', page.read_text(encoding="utf-8")))
    return sorted(names - {"csrf_token"})


def _resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if ref:
        target: Any = spec
        for part in ref.lstrip("#/").split("/"):
            target = target[part]
        return _resolve(spec, target)
    return schema


def _api_inputs(spec: dict[str, Any]) -> tuple[set[str], set[str]]:
    """Every query parameter and JSON property name the OpenAPI document declares."""
    params: set[str] = set()
    properties: set[str] = set()
    for operations in spec["paths"].values():
        for operation in operations.values():
            if not isinstance(operation, dict):
                continue
            params.update(p["name"] for p in operation.get("parameters", []) if p.get("in") == "query")
            content = operation.get("requestBody", {}).get("content", {})
            for media in content.values():
                properties.update(_resolve(spec, media.get("schema", {})).get("properties", {}))
    return params, properties


def _url(rule: Rule, values: dict[str, str], number: str = "999999999") -> str:
    def value(match: re.Match[str]) -> str:
        converter, name = match.group(1) or "default", match.group(2)
        if name in values and (name == "tenant" or number == "999999999"):
            return values[name]
        return number if converter == "int" else "x"

    return re.sub(r"<(?:(\w+)(?:\([^)]*\))?:)?(\w+)>", value, rule.rule)


def _encoded(fields: dict[str, str]) -> str:
    """``application/x-www-form-urlencoded`` text, as a browser or a script can send it."""
    return "&".join(
        f"{quote(name)}={'%ED%B2%80%FF' if value == INVALID_UTF8 else quote(value)}"
        for name, value in fields.items()
    )


class Calls:
    """Sends the requests and keeps every answer that breaks the rule, to report them together."""

    def __init__(self) -> None:
        self.failures: list[str] = []
        self.sent = 0

    def send(self, client: FlaskClient, method: str, url: str, what: str, **kwargs: Any) -> None:
        self.sent += 1
        try:
            response = client.open(url, method=method, **kwargs)
        except Exception as exc:  # the test app propagates what would have been a 500
            self.failures.append(f"{method} {url} [{what}]: {type(exc).__name__}: {str(exc)[:200]}")
            return
        if response.status_code >= 500:
            self.failures.append(f"{method} {url} [{what}]: {response.status_code}")
            return
        shown = unquote(response.headers.get("Location", "")) + response.get_data(as_text=True)
        leaked = PYTHON_ERRORS.search(shown)
        if leaked:
            self.failures.append(f"{method} {url} [{what}]: shows Python's message {leaked.group(0)!r}")
        if url.startswith("/api/") and response.status_code >= 400 and response.status_code != 405:
            body = response.get_json(silent=True)
            # {"message": ...} from our API; {"error": ...} from the OAuth token endpoint (RFC 6749)
            if not (isinstance(body, dict) and (body.get("message") or body.get("error"))):
                self.failures.append(
                    f"{method} {url} [{what}]: {response.status_code} without a JSON message"
                )


def _attack(
    calls: Calls,
    client: FlaskClient,
    rule: Rule,
    url: str,
    token: str,
    fields: dict[str, list[str]],
    auth: dict[str, str],
) -> None:
    for method in methods(rule):
        if method == "GET":
            for value in HOSTILE_TEXT:
                calls.send(client, method, url, f"query {value[:12]!r}",
                           query_string=_encoded(dict.fromkeys(fields["query"], value)))  # fmt: skip
            continue
        headers = {"X-CSRFToken": token, **auth}
        if url.startswith("/api/"):
            for body in HOSTILE_BODIES:
                calls.send(client, method, url, f"body {body[:12]!r}", data=body, headers=headers,
                           content_type="application/json")  # fmt: skip
            for value in HOSTILE_JSON:
                payload = dict.fromkeys(fields["json"], value)
                calls.send(
                    client, method, url, f"json {json.dumps(value)[:12]}", json=payload, headers=headers
                )
            continue
        for value in HOSTILE_TEXT:
            data = _encoded(dict.fromkeys(fields["form"], value) | {"csrf_token": token})
            calls.send(client, method, url, f"form {value[:12]!r}", data=data, headers=headers,
                       content_type="application/x-www-form-urlencoded")  # fmt: skip
        calls.send(client, method, url, "form without fields", data={"csrf_token": token}, headers=headers)


PROVIDER_LOGIN = "ops-hostile"


@pytest.fixture
def world(app: Flask, family: int) -> Iterator[dict[str, str]]:  # noqa: F811
    """A resident with a household, and a case at the counter for them, in Gobo."""
    staff = clerk(app, groups=("監督者",))
    api = f"/api/v1/{TENANT}"
    ticket = staff.post(f"{api}/tickets", json={"counter_id": "shimin"}).get_json()
    case = staff.post(f"{api}/cases", json={"ticket_id": ticket["id"]}).get_json()["case"]
    _forget_provider()
    try:
        yield {
            "tenant": TENANT,
            "resident_id": str(family),
            "case_id": str(case["id"]),
            "ticket_id": str(ticket["id"]),
        }
    finally:
        _forget_provider()


def _forget_provider() -> None:
    """The control schema is not emptied between tests like the tenants' are."""
    with admin_engine().begin() as conn:
        conn.execute(
            text("DELETE FROM control.provider_staff WHERE login = :login"), {"login": PROVIDER_LOGIN}
        )


def test_no_route_answers_hostile_input_with_a_server_error(app: Flask, world: dict[str, str]) -> None:
    spec = app.test_client().get("/api/openapi.json").get_json()
    query, properties = _api_inputs(spec)
    form = _form_fields()
    common = ["q", "page", "status", "month", "date", "from", "to", "next", "format", "department", "counter"]
    fields = {"query": sorted(query | set(common) | set(form)), "json": sorted(properties), "form": form}
    assert {"kana", "limit", "birth"} <= set(fields["query"])
    assert {"version", "events"} <= set(fields["json"])
    assert {"login", "password", "code"} <= set(form)

    staff = clerk(app, groups=("窓口職員", "担当課職員", "受付担当", "監督者", "管理者", "監査担当"))
    tablet = clerk(app, groups=("署名タブレット",))
    provider, _ = provider_client(app, login_id=PROVIDER_LOGIN)
    anonymous = app.test_client()
    tokens = {
        "staff": csrf_token(staff, f"/{TENANT}/login"),
        "tablet": csrf_token(tablet, f"/{TENANT}/login"),
        "provider": csrf_token(provider, "/ops/login"),
        "anonymous": csrf_token(anonymous, f"/{TENANT}/login"),
    }
    device = register_device(staff)
    calls = Calls()
    signing = {"web.tablet", "web.application_sign", "tenant_api.sign_application"}
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if rule.endpoint in SIGNED_OUT or rule.endpoint == "static":
            continue
        public = is_public(app.view_functions[rule.endpoint])
        if public:
            who = "anonymous"
        elif rule.endpoint in signing:
            who = "tablet"
        elif "tenant" in rule.arguments:
            who = "staff"
        else:
            who = "provider"
        client = {"staff": staff, "tablet": tablet, "provider": provider, "anonymous": anonymous}[who]
        # the card reader agent's endpoint takes a device token, not a signed-in user
        auth = {"Authorization": f"Bearer {device}"} if rule.endpoint == "tenant_api.post_card_read" else {}
        _attack(calls, client, rule, _url(rule, world), tokens[who], fields, auth)
        named = [a for a in rule.arguments if a != "tenant" and f"int:{a}" not in rule.rule]
        for text_value in ("%00", "%ED%B2%80", "x" * 300) if named else ():  # a name in the path
            odd = _url(rule, dict.fromkeys(named, text_value) | {"tenant": TENANT})
            for method in methods(rule):
                status = client.open(odd, method=method, headers={"X-CSRFToken": tokens[who]}).status_code
                if status >= 500:
                    calls.failures.append(f"{method} {odd[:120]}: {status}")
        if "int:" in rule.rule:  # an id beyond bigint is no id: not found, like any unknown one
            huge = _url(rule, world, "9" * 30)
            for method in methods(rule):
                status = client.open(huge, method=method, headers={"X-CSRFToken": tokens[who]}).status_code
                if status != 404:
                    calls.failures.append(f"{method} {huge}: {status}, not 404")

        for headers in HOSTILE_HEADERS:  # what a proxy, a script or a stale browser sends
            for method in methods(rule):
                calls.send(
                    app.test_client(), method, _url(rule, world), f"headers {list(headers)}", headers=headers
                )

    assert calls.sent > 1000
    assert not calls.failures, f"{len(calls.failures)} of {calls.sent} requests:\n" + "\n".join(
        calls.failures
    )
    # The staff user is still signed in: the requests above reached the views, not the login page.
    assert staff.get(f"/api/v1/{TENANT}/cases/{world['case_id']}").status_code == 200


def test_refusals_name_the_field_in_japanese(app: Flask, world: dict[str, str]) -> None:
    staff = clerk(app, groups=("監督者",))
    token = csrf_token(staff, f"/{TENANT}/residents")

    page = staff.get(f"/{TENANT}/residents", query_string="kana=%E3%81%82%00")
    assert page.status_code == 400
    assert "URLの項目「kana」に使えない文字（NUL）が含まれています。" in page.get_data(as_text=True)

    posted = staff.post(f"/{TENANT}/reception", data={"csrf_token": token, "counter": "shimin\x00"})
    assert posted.status_code == 400
    assert "フォームの項目「counter」に使えない文字（NUL）" in posted.get_data(as_text=True)

    api = f"/api/v1/{TENANT}/cases/{world['case_id']}/events"
    nul = staff.post(api, json={"version": 1, "events": ["tenkyo", "a\x00"]})
    assert nul.status_code == 400
    assert nul.get_json()["message"] == "JSONの「events[1]」に使えない文字（NUL）が含まれています。"
    deep = staff.post(api, data=b"[" * 100 + b"]" * 100, content_type="application/json")
    assert deep.status_code == 400
    assert "入れ子が深すぎます" in deep.get_json()["message"]

    # Nothing above changed the case: the events were never set.
    case = staff.get(f"/api/v1/{TENANT}/cases/{world['case_id']}").get_json()
    assert case["case"]["events"] == []
    assert staff.get(f"/{TENANT}/cases/{'9' * 25}").status_code == 404


def test_an_event_date_is_read_as_typed_or_refused_in_japanese(app: Flask, world: dict[str, str]) -> None:
    staff = clerk(app, groups=("監督者",))
    page = f"/{TENANT}/residents/{world['resident_id']}/guidance"

    wrong = staff.get(page, query_string={"event": "tenkyo", "event_date": "2026-02-30"}).get_data(
        as_text=True
    )
    assert "日付「2026-02-30」: 存在しない日付です" in wrong
    vague = staff.get(page, query_string={"event": "tenkyo", "event_date": "令和8年11月"}).get_data(
        as_text=True
    )
    assert "日付「令和8年11月」: " in vague
    wareki = staff.get(page, query_string={"event": "tenkyo", "event_date": "令和8年11月20日"}).get_data(
        as_text=True
    )
    assert 'class="error" role="alert"' not in wareki
    assert 'value="2026-11-20"' in wareki  # shown back in the date input's own form

    case = world["case_id"]
    version = staff.get(f"/api/v1/{TENANT}/cases/{case}").get_json()["case"]["version"]
    token = csrf_token(staff, f"/{TENANT}/cases/{case}")
    refused = staff.post(
        f"/{TENANT}/cases/{case}/events",
        data={"csrf_token": token, "version": str(version), "events": "tenkyo", "event_date": "R08.13.01"},
    )
    assert "日付「R08.13.01」" in unquote(refused.headers["Location"])
    assert staff.get(f"/api/v1/{TENANT}/cases/{case}").get_json()["case"]["events"] == []


def test_bodies_beyond_the_ceiling_are_refused_before_they_are_read(
    app: Flask, world: dict[str, str]
) -> None:
    """Anyone can send a body to any address, signed in or not: a body past the ceiling is refused
    (413, in Japanese) before it is read into memory, on the public routes as on the others."""
    anonymous = app.test_client()
    staff = clerk(app, groups=("監督者",))
    huge_json = b'{"reader_id": "' + b"x" * MAX_BODY_BYTES + b'"}'
    for client, url in (
        (anonymous, f"/api/v1/{TENANT}/card-reads"),
        (anonymous, f"/api/v1/{TENANT}/oauth/token"),
        (staff, f"/api/v1/{TENANT}/cases/{world['case_id']}/events"),
    ):
        response = client.post(url, data=huge_json, content_type="application/json")
        assert response.status_code == 413, url
        assert "4 MB" in response.get_json()["message"]

    long_form = {
        "name": "x" * MAX_BODY_BYTES,
        "csrf_token": csrf_token(anonymous, f"/{TENANT}/pre/tenkyo"),
    }
    page = anonymous.post(f"/{TENANT}/pre/tenkyo", data=long_form)
    assert page.status_code == 413
    assert "送信内容が大きすぎます" in page.get_data(as_text=True)
    # below the ceiling the view reads it and says what is wrong with the field itself
    long_name = anonymous.post(f"/{TENANT}/pre/tenkyo", data={**long_form, "name": "x" * 5000})
    assert long_name.status_code == 200
