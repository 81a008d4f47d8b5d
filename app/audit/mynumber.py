"""Finding and masking the My Number (個人番号) before anything is written to the operation log.

A My Number is 12 digits whose last digit is a check digit (番号法施行令第8条): for the first 11
digits P(n), n = 1 .. 11 counted from the right, Q(n) = n + 1 for n <= 6 and n - 5 for n >= 7;
r = sum(P(n) * Q(n)) mod 11; the check digit is 0 when r <= 1, else 11 - r.

The scanner looks for 12 digits standing alone — in text (full-width digits and one space or hyphen
between groups of four included) and as integers — and masks those whose check digit is right.
About one random 12-digit number in eleven also passes, so an unrelated 12-digit value is
sometimes masked too; that costs a detail, never the number.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from typing import Any

MASK = "[個人番号]"
_WEIGHTS = (6, 5, 4, 3, 2, 7, 6, 5, 4, 3, 2)  # Q(n) for the 11 digits, left to right
_FULLWIDTH = str.maketrans("０１２３４５６７８９－‐ー　", "0123456789--- ")
# 12 digits not touching other digits; one separator allowed between the groups of four.
_CANDIDATE = re.compile(r"(?<![0-9])[0-9]{4}([ -]?)[0-9]{4}\1[0-9]{4}(?![0-9])")


def check_digit(first11: str) -> int:
    total = sum(int(d) * w for d, w in zip(first11, _WEIGHTS, strict=True))
    remainder = total % 11
    return 0 if remainder <= 1 else 11 - remainder


def is_my_number(value: str) -> bool:
    """``value`` is exactly 12 digits with a valid check digit."""
    return (
        len(value) == 12 and value.isascii() and value.isdigit() and check_digit(value[:11]) == int(value[11])
    )


def mask_text(text: str) -> tuple[str, int]:
    """``text`` with every valid My Number replaced by ``MASK``, and how many were replaced."""
    if len(text) < 12:
        return text, 0
    view = text.translate(_FULLWIDTH)  # same length, so match positions carry over to ``text``
    out: list[str] = []
    last = found = 0
    for match in _CANDIDATE.finditer(view):
        if is_my_number(match.group(0).replace(" ", "").replace("-", "")):
            out += (text[last : match.start()], MASK)
            last = match.end()
            found += 1
    if not found:
        return text, 0
    out.append(text[last:])
    return "".join(out), found


def mask_value(value: Any) -> tuple[Any, int]:
    """A copy of a JSON-native value with My Numbers masked in strings, keys and integers."""
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, bool) or value is None:
        return value, 0
    if isinstance(value, int):
        if 10**11 <= value < 10**12 and is_my_number(str(value)):
            return MASK, 1
        return value, 0
    if isinstance(value, dict):
        total = 0
        out = {}
        for key, item in value.items():
            new_key, n_key = mask_text(key)
            new_item, n_item = mask_value(item)
            out[new_key] = new_item
            total += n_key + n_item
        return (out, total) if total else (value, 0)
    if isinstance(value, list):
        total = 0
        items = []
        for item in value:
            new_item, n = mask_value(item)
            items.append(new_item)
            total += n
        return (items, total) if total else (value, 0)
    return value, 0


def contains_my_number(text: str) -> bool:
    """For tests and output scanners: does ``text`` (NFKC-normalised) hold a valid My Number?"""
    return mask_text(unicodedata.normalize("NFKC", text))[1] > 0


class MyNumberFilter(logging.Filter):
    """Masks My Numbers in a log record — message, text extras (e.g. a request path) and traceback —
    before a handler formats it. ``app.logs.configure_logging`` puts it on the application's handler."""

    _formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        message, found = mask_text(record.getMessage())
        if found:
            record.msg, record.args = message, None
        for key, value in list(vars(record).items()):
            if isinstance(value, str) and key != "msg":
                masked, found = mask_text(value)
                if found:
                    setattr(record, key, masked)
        if record.exc_info and not record.exc_text:
            record.exc_text = mask_text(self._formatter.formatException(record.exc_info))[0]
        return True
