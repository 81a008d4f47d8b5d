"""The My Number (個人番号) never reaches the operation log, its log records, CLI output or API answers."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import logging
from typing import Any

import pytest
from sqlalchemy import select

from app.audit import Actor, actor_var, record
from app.audit.models import AuditEntry
from app.audit.mynumber import (
    MASK,
    MyNumberFilter,
    check_digit,
    contains_my_number,
    is_my_number,
    mask_text,
    mask_value,
)
from app.audit.storage import AuditStore
from app.tenancy.service import TenantRecord
from tests.audit_support import admin, append_aged, resident, run_cli
from tests.conftest import tenant_session

MY_NUMBER = "123456789018"  # the format's textbook example: check digit 8 is right
FORMS = [
    MY_NUMBER,
    "1234 5678 9018",
    "1234-5678-9018",
    "１２３４５６７８９０１８",
    "１２３４－５６７８－９０１８",
]


def test_the_check_digit() -> None:
    assert check_digit("12345678901") == 8
    assert is_my_number(MY_NUMBER)
    assert not is_my_number("123456789017")
    assert not is_my_number("12345678901")
    # remainders 0 and 1 both give 0
    assert [d for d in range(10) if is_my_number(f"00000000000{d}")] == [0]


@pytest.mark.parametrize("form", FORMS)
def test_every_written_form_is_masked(form: str) -> None:
    assert mask_text(f"個人番号は{form}です") == (f"個人番号は{MASK}です", 1)


@pytest.mark.parametrize(
    "text",
    [
        "123456789017",  # wrong check digit
        "1234567890180",  # 13 digits
        "電話 06-1234-5678",
        "宛名番号 0000000019 世帯番号 000000010",
        "2026-11-21T00:30:00.000005Z",
        "12345678 9018",  # groups of four only
    ],
)
def test_other_numbers_are_left_alone(text: str) -> None:
    assert mask_text(text) == (text, 0)


def test_values_are_masked_at_any_depth() -> None:
    value = {"a": [int(MY_NUMBER), {"b": f"x{MY_NUMBER}"}], MY_NUMBER: True, "n": 123456789017}
    masked, found = mask_value(value)
    assert found == 3
    assert masked == {"a": [MASK, {"b": f"x{MASK}"}], MASK: True, "n": 123456789017}


def test_the_log_filter_masks_message_extras_and_traceback() -> None:
    try:
        raise ValueError(f"bad {MY_NUMBER}")
    except ValueError:
        import sys

        exc_info = sys.exc_info()
    rec = logging.LogRecord("x", logging.INFO, __file__, 1, "GET %s %s", (f"/r/{MY_NUMBER}", 404), exc_info)
    rec.path = f"/r/{MY_NUMBER}"
    assert MyNumberFilter().filter(rec)
    line = logging.Formatter("%(message)s %(path)s").format(rec)
    assert line.startswith(f"GET /r/{MASK} 404 /r/{MASK}")
    assert "ValueError: bad [個人番号]" in line
    _scan("formatted", line)


def _scan(label: str, text: str) -> None:
    assert MY_NUMBER not in text, label
    assert not contains_my_number(text), label


def test_a_my_number_fed_through_every_path_never_comes_out(
    committed: dict[str, TenantRecord],
    audit_store: AuditStore,
    client_for: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    old_enough = dt.datetime.now(dt.UTC) - dt.timedelta(days=800)
    append_aged("gobo", [old_enough])  # something for the archive path to carry
    actor_var.set(Actor("staff", MY_NUMBER, f"職員{FORMS[3]}", FORMS[1]))
    caplog.set_level(logging.INFO)
    with tenant_session("gobo") as session:
        person = resident(session, 1, "御坊 一郎")
        for form in FORMS:
            record(
                session,
                f"resident.view.{form}",
                subject_type="resident",
                subject_id=person,
                purpose=f"番号{form}",
                details={"note": f"番号は{form}", "number": int(MY_NUMBER), form: "key", "results": [person]},
            )
        record(session, "resident.lookup", subject_type="mynumber", subject_id=MY_NUMBER)
        session.commit()

    # the table, with the chain still sound
    for row in admin("gobo", "SELECT row_to_json(audit_log)::text FROM audit_log"):
        _scan("audit_log row", row[0])
    # CLI output: verify, seal, archive (and the archive object it wrote)
    for args in (("verify", "gobo", "--json"), ("verify", "gobo"), ("seal", "gobo", "--json")):
        done = run_cli(*args)
        assert done.exit_code == 0, done.output
        _scan(" ".join(args), done.output)
    done = run_cli("archive", "gobo", "--json")
    assert done.exit_code == 0, done.output
    _scan("archive", done.output)
    for key in audit_store.keys(audit_store.root):
        body = audit_store.get(key)
        _scan(key, (gzip.decompress(body) if key.endswith(".gz") else body).decode())
    # API and pages (and a My Number where an id belongs is just "not found", never echoed)
    clerk = client_for("gobo", "auditor", groups=("監査担当",))
    caplog.set_level(logging.INFO)  # the CLI runs above set the configured level again
    for url in (
        f"/api/v1/gobo/audit/subjects/resident/{person}",
        f"/gobo/audit/residents/{person}",
        f"/gobo/audit/residents/{person}.csv",
    ):
        response = clerk.get(url)
        assert response.status_code == 200, url
        _scan(url, response.get_data(as_text=True))
    assert json.loads(clerk.get(f"/api/v1/gobo/audit/subjects/resident/{person}").get_data())["accesses"]
    for url in (f"/api/v1/gobo/audit/subjects/resident/{MY_NUMBER}", f"/gobo/audit/residents/{MY_NUMBER}"):
        response = clerk.get(url)
        assert response.status_code == 404
        _scan(url, response.get_data(as_text=True))
    with tenant_session("gobo") as session:
        subjects = session.scalars(select(AuditEntry.subject_id).where(AuditEntry.subject_type == "mynumber"))
        assert list(subjects) == [MASK]
    # log lines, as the application's handler writes them: the masking warning names the fields,
    # never the value, and the access log of the requests above masks the path
    assert "個人番号と判定される値" in caplog.text
    (handler,) = [h for h in logging.getLogger().handlers if getattr(h, "_madoguchi", False)]
    masked_paths = [r for r in caplog.records if MASK in str(getattr(r, "path", ""))]
    assert len(masked_paths) == 2  # the two 404s above (the filter masks the record in place)
    for rec in caplog.records:
        assert handler.filter(rec)
        _scan("log line", handler.format(rec))
