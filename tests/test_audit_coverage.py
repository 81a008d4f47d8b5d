"""Every screen, API answer, print and export that shows a resident writes an operation-log entry.

Generated from the route table, so a screen added tomorrow is held to it tomorrow: each GET route
of the city is requested on a world where one resident, 御坊 一郎, has been identified on a case,
with the search parameters that would find him, and his case handed over to the departments. Whenever an answer shows him (his name or kana in
the page, JSON or CSV) or is a print (PDF), the operation log must have grown during that request.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

from flask import Flask

from app.audit.pia import ACTION_JA
from app.counter.service import PROCEDURE_ACTIONS
from tests.audit_support import admin
from tests.counter_world import counter_world
from tests.test_authorization_matrix import methods
from tests.test_counter_web import TENANT, family  # noqa: F401  (fixture)
from tests.test_hostile_input import _url

ROOT = Path(__file__).resolve().parents[1]
SHOWS_HIM = ("御坊\u3000一郎", "御坊 一郎", "ゴボウ イチロウ", "ごぼう いちろう")
SEARCH = {"kana": "ゴボウ", "name": "御坊", "birth": "1980-04-02", "address": "薗", "status": "", "q": "御坊",
          "event": "tenkyo", "event_date": "2026-11-20"}  # fmt: skip


def _entries() -> int:
    return int(admin(TENANT, "SELECT count(*) FROM audit_log")[0][0])


def test_every_answer_that_shows_a_resident_is_in_the_operation_log(app: Flask, family: int) -> None:  # noqa: F811
    staff, world = counter_world(app, family)

    checked: list[str] = []
    missing: list[str] = []
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if "tenant" not in rule.arguments or "GET" not in methods(rule):
            continue
        url = _url(rule, world)
        before = _entries()
        response = staff.get(url, query_string=SEARCH)
        if response.status_code != 200:
            continue
        kind = response.mimetype
        body: Any = response.get_data(as_text=kind != "application/pdf") if kind != "application/pdf" else ""
        shows = kind == "application/pdf" or any(name in body for name in SHOWS_HIM)
        if not shows:
            continue
        checked.append(rule.endpoint)
        if _entries() == before:
            missing.append(f"{url} ({rule.endpoint}, {kind})")

    # the screens that must have been reached: searches, resident, case, queues, guidance and prints
    assert {"web.residents_search", "web.resident_detail", "web.case_view", "web.case_search", "web.queue",
            "web.resident_guidance", "tenant_api.get_resident", "tenant_api.get_case", "tenant_api.list_cases",
            "tenant_api.search_residents", "tenant_api.department_queue", "web.applications",
            "web.application_detail", "web.application_pdf", "tenant_api.get_application",
            "tenant_api.application_pdf", "web.resident_form"} <= set(checked), checked  # fmt: skip
    assert not missing, "shown without an operation-log entry:\n" + "\n".join(missing)


def _recorded_actions() -> dict[str, str]:
    """Every action ``record()`` is called with in app/ (the literal, each branch of a conditional,
    an f-string expanded over the values it takes, a module-level table's values), with the file."""
    actions: dict[str, str] = {}
    for path in sorted((ROOT / "app").rglob("*.py")):
        module = ast.parse(path.read_text(encoding="utf-8"))
        tables = {  # module-level dicts an action is looked up in, e.g. _GRANT_DECISIONS[action]
            t.id: node.value
            for node in module.body
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Dict)
            for t in node.targets
            if isinstance(t, ast.Name)
        }
        for node in ast.walk(module):
            if not (isinstance(node, ast.Call) and len(node.args) >= 2):
                continue
            name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
            if name == "audit" and isinstance(node.args[0], ast.Constant):  # the sign-in flow's wrapper
                actions[str(node.args[0].value)] = str(path)
                continue
            if name != "record":
                continue
            argument = node.args[1]
            if isinstance(argument, ast.Name) and argument.id == "action":
                continue  # a wrapper passing its caller's action on (its callers are read above)
            if isinstance(argument, ast.JoinedStr):
                prefix = ast.unparse(argument)
                assert prefix == "f'procedure.{action}'", f"{path}: an action built at run time: {prefix}"
                actions.update({f"procedure.{a}": str(path) for a in PROCEDURE_ACTIONS})
                continue
            if isinstance(argument, ast.Subscript) and isinstance(argument.value, ast.Name):
                table = tables[argument.value.id]  # the actions are the table's values
                argument = ast.List(elts=list(table.values), ctx=ast.Load())
            found = [
                c.value
                for c in ast.walk(argument)
                if isinstance(c, ast.Constant) and isinstance(c.value, str)
            ]
            assert found, f"{path}:{node.lineno}: an action that is not written in the code"
            actions.update(dict.fromkeys(found, str(path)))
    return actions


def test_every_recorded_action_is_named_in_japanese_for_the_city() -> None:
    actions = _recorded_actions()
    assert {"resident.view", "case.queue", "procedure.done", "audit.resident_accesses_exported"} <= set(
        actions
    )
    unnamed = sorted(f"{a} ({where})" for a, where in actions.items() if a not in ACTION_JA)
    assert not unnamed, "actions the access history would show as codes:\n" + "\n".join(unnamed)
    assert not set(ACTION_JA) - set(actions), "labels for actions nothing records"
