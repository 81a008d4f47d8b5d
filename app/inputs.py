"""What any request may carry, checked once for every route before a view sees it.

Views validate their own fields; these are the limits no field has a use for, where a value that
passes them would otherwise fail deep down (PostgreSQL refuses NUL in text and integers beyond
bigint, the JSON decoder recurses once per nesting level) and answer 500 instead of saying what
was wrong. Every refusal here is a 400 naming the field, in Japanese.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Flask, request
from werkzeug.exceptions import BadRequest, NotFound
from werkzeug.routing import IntegerConverter

# Every id in the schema is a bigint (app.db.base.TYPE_MAP).
BIGINT_MAX = 2**63 - 1
# Deeper than any body the API takes (a form's tables are three levels down).
MAX_JSON_DEPTH = 32
# The largest body anything sends is a signature (a PNG of at most 512 KB, base64 in JSON or a
# form field: ~700 KB). Without a ceiling every route — the public ones too, before any sign-in —
# read a body of any size into memory (the JSON check below decodes it). Werkzeug answers 413.
MAX_BODY_BYTES = 4 * 1024 * 1024


class InputRefused(BadRequest):
    """400 with a message for the user; ``app._http_error`` renders it as HTML or JSON."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.data = {"message": message}


class IdConverter(IntegerConverter):
    """``<int:...>`` in URLs: a number beyond bigint is no id of ours, so the URL does not match
    (404), as for any id that does not exist."""

    def __init__(self, map: Any, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max", BIGINT_MAX)
        super().__init__(map, *args, **kwargs)


def limit_bodies(app: Flask) -> None:
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES


def bounded_int(value: str) -> int:
    """``int()`` for request values, refusing what no bigint column holds (``ValueError``, as for
    text that is not a number: ``request.args.get(name, type=bounded_int)`` then gives None)."""
    number = int(value)
    if not -BIGINT_MAX <= number <= BIGINT_MAX:
        raise ValueError(f"{value[:20]}… is out of range")
    return number


def form_int(form: Any, name: str, default: int) -> int:
    """A whole number from a form or query field, or ``default`` when it is missing or not one."""
    try:
        return bounded_int(form.get(name, "") or str(default))
    except ValueError:
        return default


def check_request() -> None:
    """``before_request``: refuse NUL in any query or form field, and JSON bodies nested deeper than
    ``MAX_JSON_DEPTH`` or holding NUL in a key or a string. A URL whose path holds NUL names
    nothing of ours: 404."""
    if any(isinstance(v, str) and "\x00" in v for v in (request.view_args or {}).values()):
        raise NotFound()
    for where, values in (("URL", request.args), ("フォーム", request.form)):
        for name, value in values.items(multi=True):
            if "\x00" in name or "\x00" in value:
                shown = name.replace("\x00", "")
                raise InputRefused(f"{where}の項目「{shown}」に使えない文字（NUL）が含まれています。")
    if request.is_json and request.content_length != 0:
        raw = request.get_data(cache=True)
        if raw:
            _check_json(raw)


def _check_json(raw: bytes) -> None:
    try:
        document = json.loads(raw)
    except RecursionError:
        raise InputRefused(f"JSONの入れ子が深すぎます（{MAX_JSON_DEPTH}段まで）。") from None
    except ValueError:
        return  # not JSON at all: the view's own parsing says so
    stack: list[tuple[Any, str, int]] = [(document, "", 0)]
    while stack:
        value, path, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            raise InputRefused(f"JSONの入れ子が深すぎます（{MAX_JSON_DEPTH}段まで）。")
        if isinstance(value, str):
            if "\x00" in value:
                raise InputRefused(f"JSONの「{path or '（本体）'}」に使えない文字（NUL）が含まれています。")
        elif isinstance(value, dict):
            for key, item in value.items():
                child = f"{path}.{key}" if path else str(key)
                if "\x00" in key:
                    raise InputRefused(
                        f"JSONの項目名「{child.replace(chr(0), '')}」に使えない文字（NUL）が含まれています。"
                    )
                stack.append((item, child, depth + 1))
        elif isinstance(value, list):
            stack.extend((item, f"{path}[{i}]", depth + 1) for i, item in enumerate(value))


def use_id_converter(app: Flask) -> None:
    """Before any route is added: rules pick their converters when they are added."""
    app.url_map.converters["int"] = IdConverter
