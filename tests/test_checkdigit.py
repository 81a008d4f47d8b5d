"""Modulus-11 check digits (weights 2..7 from the right)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from app.linkage.checkdigit import check_digit, is_valid, with_check_digit


def test_known_values() -> None:
    # 1234567: weights from the right 2,3,4,5,6,7,2 -> 7*2+6*3+5*4+4*5+3*6+2*7+1*2 = 106; 106 % 11 = 7
    assert check_digit("1234567") == 4
    assert is_valid("12345674")
    assert not is_valid("12345675")


def test_remainder_zero_and_one() -> None:
    zero = next(
        b for b in (f"{i:06d}" for i in range(10_000)) if check_digit(b, "reject") == 0 and sum(map(int, b))
    )
    assert is_valid(zero + "0")
    one = next(b for b in (f"{i:06d}" for i in range(10_000)) if check_digit(b, "reject") is None)
    assert with_check_digit(one, "reject") is None
    assert is_valid(one + "0", "zero")
    assert not is_valid(one + "0", "reject")


@given(st.text(alphabet="0123456789", min_size=1, max_size=14), st.sampled_from(["zero", "reject"]))
def test_generated_numbers_validate(body: str, policy: str) -> None:
    number = with_check_digit(body, policy)  # type: ignore[arg-type]
    if number is not None:
        assert is_valid(number, policy)  # type: ignore[arg-type]
        wrong = number[:-1] + str((int(number[-1]) + 1) % 10)
        assert not is_valid(wrong, policy)  # type: ignore[arg-type]


def test_non_digits_are_invalid() -> None:
    assert not is_valid("12a4")
    assert not is_valid("")
