"""Every form of the staff UI, posted as the browser would with one field at a time made hostile.

``test_hostile_input`` fills every field at once, so a view that checks its first field stops
there. Here each page a clerk can open on a counter day (tests.counter_world) is rendered, its
forms read back from the HTML (fields with the values the page put in them, the submit button
pressed), and each form posted again once per field and value, the other fields left as the page
had them: the request reaches the code behind the first check. Every answer must be below 500 and
show no Python exception's text.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urljoin

from flask import Flask
from flask.testing import FlaskClient
from werkzeug.datastructures import MultiDict

from tests.conftest import CITIES, csrf_token, provider_client
from tests.counter_world import counter_world
from tests.test_authorization_matrix import methods
from tests.test_counter_web import TENANT, clerk, family  # noqa: F401  (fixture)
from tests.test_hostile_input import PROVIDER_LOGIN, PYTHON_ERRORS, _forget_provider, _url

FIELD_VALUES = ("-1", "9" * 40, "2026-02-30", "x" * 3000, "", "１２３", "令和0年1月1日")
# Buttons that only render a PDF from what the other buttons of the form also read (a second each).
RENDERS_ONLY = {("action", "preview"), ("format", "pdf")}
# Forms that end the session or leave the page's account unusable for the rest of the walk.
NOT_POSTED = ("/logout", "/password")


class _Forms(HTMLParser):
    """The POST forms of a page: action, fields with their current values, submit buttons."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, Any]] = []
        self._form: dict[str, Any] | None = None
        self._select: str | None = None
        self._textarea: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self._form = {"action": a.get("action", ""), "method": a.get("method", "get").lower(), "fields": [],
                          "buttons": []}  # fmt: skip
            self.forms.append(self._form)
            return
        form = self._form
        if form is None or not a.get("name"):
            return
        name = a["name"]
        if tag == "input":
            kind = a.get("type", "text").lower()
            if kind in ("submit", "image"):
                form["buttons"].append((name, a.get("value", "")))
            elif kind == "checkbox":  # every box ticked: each one's value is then sent, and varied
                form["fields"].append((name, a.get("value", "on")))
            elif kind == "radio":
                if "checked" in a or all(n != name for n, _ in form["fields"]):
                    form["fields"] = [(n, v) for n, v in form["fields"] if n != name]
                    form["fields"].append((name, a.get("value", "on")))
            elif kind != "file":
                form["fields"].append((name, a.get("value", "")))
        elif tag == "button" and a.get("type", "submit").lower() == "submit":
            form["buttons"].append((name, a.get("value", "")))
        elif tag == "select":
            self._select = name
            form["fields"].append((name, None))  # the first option's value, unless one is selected
        elif tag == "option" and self._select is not None:
            fields = form["fields"]
            index = max(i for i, (n, _) in enumerate(fields) if n == self._select)
            if fields[index][1] is None or "selected" in a:
                fields[index] = (self._select, a.get("value", ""))
        elif tag == "textarea":
            self._textarea = name
            form["fields"].append((name, ""))

    def handle_data(self, data: str) -> None:
        if self._form is not None and self._textarea is not None:
            fields = self._form["fields"]
            fields[-1] = (self._textarea, fields[-1][1] + data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._form = None
        elif tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None


def _plausible(name: str) -> str:
    """A value for a field the page left empty, so that the form gets past its first check."""
    if "password" in name:
        return "Kanri-Pass-2026-long"
    if "date" in name or "birth" in name:
        return "2026-11-20"
    if name in ("login", "login_id"):
        return "fuzz01"
    return "テスト"


def _page_forms(client: FlaskClient, url: str) -> list[dict[str, Any]]:
    response = client.get(url)
    if response.status_code != 200 or response.mimetype != "text/html":
        return []
    parser = _Forms()
    parser.feed(response.get_data(as_text=True))
    forms = [f for f in parser.forms if f["method"] == "post"]
    for form in forms:
        form["action"] = urljoin(url, form["action"] or url)
        form["fields"] = [(n, v or _plausible(n)) for n, v in form["fields"]]
    return forms


def test_every_form_with_one_hostile_field_at_a_time(app: Flask, family: int) -> None:  # noqa: F811
    staff, world = counter_world(app, family)
    _forget_provider()
    provider, _ = provider_client(app, login_id=PROVIDER_LOGIN)
    try:
        forms = _forms_of(app, staff, world, lambda rule: "tenant" in rule.arguments)
        forms += _forms_of(app, provider, world, lambda rule: rule.rule.startswith("/ops"))
        assert len(forms) >= 20, sorted(f["action"] for f in forms)
        _post_each_field(forms)
    finally:
        _forget_provider()
    # still signed in: the posts reached the views, not the login page
    assert staff.get(f"/{TENANT}/cases/{world['case_id']}").status_code == 200


def test_public_and_tablet_forms_with_one_hostile_field_at_a_time(app: Flask, family: int) -> None:  # noqa: F811
    """The pages nobody signs in to — a resident's pre-application (事前申請) on a phone, every event
    of every city — and the signing tablet's, which the walk above does not open with real values."""
    _, world = counter_world(app, family)
    forms: list[dict[str, Any]] = []
    for city in CITIES:
        resident = app.test_client()
        start = resident.get(f"/{city}/pre")
        assert start.status_code == 200, city
        events = sorted(set(re.findall(rf'href="(/{city}/pre/\w+)"', start.get_data(as_text=True))))
        assert len(events) >= 3, (city, events)
        for url in events:
            forms += [{**form, "button": None, "client": resident} for form in _page_forms(resident, url)]
    tablet = clerk(app, groups=("署名タブレット",))
    signing = _page_forms(tablet, f"/{TENANT}/applications/{world['application_id']}/sign")
    assert signing, "the signing page has its form"
    forms += [{**form, "button": None, "client": tablet} for form in signing]
    _post_each_field(forms)
    # the resident's forms were read, not refused before the view: a valid one still makes a QR code
    resident = app.test_client()
    done = resident.post(f"/{TENANT}/pre/tenkyo", data={
        "csrf_token": csrf_token(resident, f"/{TENANT}/pre/tenkyo"), "name": "御坊 花子",
        "kana": "ゴボウ ハナコ", "birth": "1990-04-01", "address": "御坊市薗1", "phone": "0738-00-0000"})  # fmt: skip
    assert "事前申請ができました" in done.get_data(as_text=True)


def _forms_of(app: Flask, client: FlaskClient, world: dict[str, str], wanted: Any) -> list[dict[str, Any]]:
    """The POST forms on the pages of the routes ``wanted`` picks, once per form and button."""
    forms: dict[tuple[Any, ...], dict[str, Any]] = {}
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if not wanted(rule) or "GET" not in methods(rule) or rule.endpoint.endswith("logout"):
            continue
        for form in _page_forms(client, _url(rule, world)):
            if form["action"].endswith(NOT_POSTED):
                continue
            for button in form["buttons"] or [None]:
                key = (form["action"], button, tuple(n for n, _ in form["fields"]))
                forms.setdefault(key, {**form, "button": button, "client": client})
    return list(forms.values())


def _post_each_field(forms: list[dict[str, Any]]) -> None:
    failures: list[str] = []
    sent = 0
    for form in forms:
        base = [*form["fields"], *([form["button"]] if form["button"] else [])]
        for index, (name, _) in enumerate(base):
            if name == "csrf_token" or (form["button"] and index == len(base) - 1):
                continue
            for value in FIELD_VALUES if form["button"] not in RENDERS_ONLY else FIELD_VALUES[3:4]:
                # a new login each time: an account made by an earlier post would refuse it first
                data = [(n, value if i == index else v.replace("fuzz01", f"fuzz{sent:05d}"))
                        for i, (n, v) in enumerate(base)]  # fmt: skip
                # each post from its own address: the public forms are rate limited per address
                address = f"10.{sent // 65536 % 256}.{sent // 256 % 256}.{sent % 256}"
                response = form["client"].post(form["action"], data=MultiDict(data),
                                               environ_base={"REMOTE_ADDR": address})  # fmt: skip
                sent += 1
                what = f"{form['action']} {name}={value[:12]!r} ({form['button']})"
                if response.status_code >= 500:
                    failures.append(f"{what}: {response.status_code}")
                    continue
                text = response.mimetype.startswith("text/") or response.mimetype.endswith("json")
                shown = response.headers.get("Location", "") + (
                    response.get_data(as_text=True) if text else ""
                )
                if leaked := PYTHON_ERRORS.search(shown):
                    failures.append(f"{what}: shows Python's message {leaked.group(0)!r}")
    assert sent > 500
    assert not failures, f"{len(failures)} of {sent} posts:\n" + "\n".join(failures)
