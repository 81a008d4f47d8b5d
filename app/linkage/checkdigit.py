"""Check digits of 宛名番号 and 世帯番号: modulus 11 with weights 2..7 repeating from the right.

check = 11 - (weighted sum mod 11); remainder 0 gives 0; remainder 1 gives 10, which a tenant either
writes as 0 (``zero``) or never issues (``reject``).
"""

from __future__ import annotations

from typing import Literal

RemainderOne = Literal["zero", "reject"]


def _remainder(body: str) -> int:
    total = 0
    weight = 2
    for ch in reversed(body):
        total += (ord(ch) - 48) * weight
        weight = 2 if weight == 7 else weight + 1
    return total % 11


def check_digit(body: str, remainder_one: RemainderOne = "reject") -> int | None:
    """The check digit for ``body`` (digits without the check digit); None if never issued."""
    if not body.isdigit():
        raise ValueError(f"not digits: {body!r}")
    remainder = _remainder(body)
    if remainder == 0:
        return 0
    if remainder == 1:
        return 0 if remainder_one == "zero" else None
    return 11 - remainder


def is_valid(number: str, remainder_one: RemainderOne = "reject") -> bool:
    if len(number) < 2 or not number.isdigit():
        return False
    expected = check_digit(number[:-1], remainder_one)
    return expected is not None and expected == ord(number[-1]) - 48


def with_check_digit(body: str, remainder_one: RemainderOne = "reject") -> str | None:
    digit = check_digit(body, remainder_one)
    return None if digit is None else body + str(digit)
