"""The canonical form of an operation-log entry and its hash (version 1).

An entry's hash is ``sha256(canonical bytes)``, lower-case hex. The canonical bytes are the UTF-8
encoding of this JSON object, written with keys sorted by Unicode code point at every level, no
whitespace (``,`` and ``:`` separators), non-ASCII characters as themselves (not ``\\u`` escapes),
and JSON's mandatory escapes only (``"``, ``\\`` and control characters below U+0020: ``\\b \\f \\n
\\r \\t``, others ``\\u00XX``) — exactly ``json.dumps(obj, ensure_ascii=False, sort_keys=True,
separators=(",", ":"), allow_nan=False)``::

    {"action": str, "actor": {"id": str, "name": str|null, "type": str}, "at": TIME,
     "details": {...}, "prev": HASH, "purpose": str|null, "request_id": str|null, "seq": int,
     "subject": {"id": str|null, "type": str|null}, "tenant": "302058", "terminal": str|null, "v": 1}

- ``tenant``: the tenant's 全国地方公共団体コード (6 digits). An entry copied into another tenant's
  log no longer matches its hash there.
- ``seq``: position in the tenant's chain, 1, 2, 3 ... without gaps.
- ``prev``: the hash of entry ``seq - 1`` (64 zeros before the first entry).
- ``at``: when the entry was chained, UTC, ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` (always six fractional
  digits; PostgreSQL keeps microseconds).
- ``details``: JSON objects, arrays, strings, integers, booleans and null only. Floats are refused
  (their text form is not stable across languages and JSONB), and so are non-string keys, NUL and
  unpaired surrogates (PostgreSQL cannot store them).

The same form (plus ``"hash"``) is one line of an archive file; seals and manifests are signed
over the same encoding. Change anything here only with a new ``v``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping
from typing import Any

VERSION = 1
GENESIS = "0" * 64
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
# The same format in PostgreSQL's to_char, for streaming verification (app.db.audit).
PG_TIME_FORMAT = 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'

# One encoder object: json.dumps with options builds a new one on every call.
encode_json = json.JSONEncoder(
    ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False
).encode


class AuditValueError(ValueError):
    """A value the operation log cannot hold canonically (a programming error in the caller)."""


def canonical_bytes(obj: Mapping[str, Any]) -> bytes:
    return encode_json(obj).encode("utf-8")


def digest(obj: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical_bytes(obj)).hexdigest()


def format_time(at: dt.datetime) -> str:
    if at.tzinfo is None:
        raise AuditValueError("audit times must be timezone-aware")
    return at.astimezone(dt.UTC).strftime(TIME_FORMAT)


def entry_object(
    tenant: str,
    seq: int,
    prev: str,
    at: str,
    actor_type: str,
    actor_id: str,
    actor_name: str | None,
    terminal: str | None,
    action: str,
    subject_type: str | None,
    subject_id: str | None,
    purpose: str | None,
    request_id: str | None,
    details: Any,
) -> dict[str, Any]:
    """The object that is hashed (``at`` already formatted with ``format_time``)."""
    return {
        "v": VERSION,
        "tenant": tenant,
        "seq": seq,
        "prev": prev,
        "at": at,
        "actor": {"type": actor_type, "id": actor_id, "name": actor_name},
        "terminal": terminal,
        "action": action,
        "subject": {"type": subject_type, "id": subject_id},
        "purpose": purpose,
        "request_id": request_id,
        "details": details,
    }


# JSON string literal with the mandatory escapes only (what the encoder above writes for a str).
_quote = json.encoder.encode_basestring  # the C implementation where available


def canonical_text(
    tenant: str,
    seq: int,
    prev: str,
    at: str,
    actor_type: str,
    actor_id: str,
    actor_name: str | None,
    terminal: str | None,
    action: str,
    subject_type: str | None,
    subject_id: str | None,
    purpose: str | None,
    request_id: str | None,
    details: Any,
) -> str:
    """``encode_json(entry_object(...))`` written directly: the keys in their sorted order, each
    value through the same string escaping, ``details`` through the sorting encoder. Byte for byte
    the same text (tests/test_audit.py compares them); about twice as fast, for verification. Any
    value of another type than the columns hold (a tampered archive line) takes the general path.
    """
    q = _quote
    try:
        if type(seq) is not int:
            raise TypeError
        return (
            f'{{"action":{q(action)},"actor":{{"id":{q(actor_id)},'
            f'"name":{"null" if actor_name is None else q(actor_name)},"type":{q(actor_type)}}},'
            f'"at":{q(at)},"details":{encode_json(details)},"prev":{q(prev)},'
            f'"purpose":{"null" if purpose is None else q(purpose)},'
            f'"request_id":{"null" if request_id is None else q(request_id)},"seq":{seq},'
            f'"subject":{{"id":{"null" if subject_id is None else q(subject_id)},'
            f'"type":{"null" if subject_type is None else q(subject_type)}}},'
            f'"tenant":{q(tenant)},"terminal":{"null" if terminal is None else q(terminal)},"v":{VERSION}}}'
        )
    except TypeError:
        return encode_json(
            entry_object(tenant, seq, prev, at, actor_type, actor_id, actor_name, terminal, action,
                         subject_type, subject_id, purpose, request_id, details)
        )  # fmt: skip


def checked_text(value: str, path: str) -> str:
    if "\x00" in value:
        raise AuditValueError(f"{path}: NUL characters cannot be stored")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise AuditValueError(f"{path}: not valid Unicode text ({exc.reason})") from None
    return value


def normalized(value: Any, path: str = "details") -> Any:
    """A JSON-native copy of ``value`` (tuples become lists), or ``AuditValueError``."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return int(value)  # IntEnum and friends become plain integers
    if isinstance(value, str):
        return checked_text(value, path)
    if isinstance(value, float):
        raise AuditValueError(f"{path}: floats are not allowed in the audit log (use an integer or text)")
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise AuditValueError(f"{path}: keys must be text, got {type(key).__name__}")
            out[checked_text(key, path)] = normalized(item, f"{path}.{key}")
        return out
    if isinstance(value, list | tuple):
        return [normalized(item, f"{path}[{i}]") for i, item in enumerate(value)]
    raise AuditValueError(f"{path}: {type(value).__name__} is not allowed in the audit log")


# Placeholders for the values only the database knows when it chains an entry (app.db.audit).
_AT, _PREV, _SEQ = "\x01", "\x02", 0


def entry_template(
    tenant: str,
    actor_type: str,
    actor_id: str,
    actor_name: str | None,
    terminal: str | None,
    action: str,
    subject_type: str | None,
    subject_id: str | None,
    purpose: str | None,
    request_id: str | None,
    details: Any,
) -> tuple[str, str, str, str]:
    """The canonical text split around ``at``, ``prev`` and ``seq``:
    ``c0 + at + c1 + prev + c2 + str(seq) + c3`` is the canonical form once they are known.

    Keys are sorted, so the three sit at fixed places: ``"at"`` follows only ``action`` and
    ``actor`` (first match), ``"prev"`` and ``"seq"`` are followed only by keys that cannot hold
    nested objects of their own choosing (last match).
    """
    text = encode_json(
        entry_object(tenant, _SEQ, _PREV, _AT, actor_type, actor_id, actor_name, terminal, action,
                     subject_type, subject_id, purpose, request_id, details)
    )  # fmt: skip
    at = text.index('"at":"\\u0001"') + len('"at":"')
    prev = text.rindex('"prev":"\\u0002"') + len('"prev":"')
    seq = text.rindex('"seq":0,"subject":') + len('"seq":')
    return text[:at], text[at + 6 : prev], text[prev + 6 : seq], text[seq + 1 :]


def fill_template(parts: tuple[str, str, str, str], at: str, prev: str, seq: int) -> str:
    return f"{parts[0]}{at}{parts[1]}{prev}{parts[2]}{seq}{parts[3]}"
