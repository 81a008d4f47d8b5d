"""Answers from an HTML form (counter, guidance page, pre-application): ``q_<id>`` fields.

A ``counts`` question (証明書と通数) posts a checkbox per choice (``q_certificates=juminhyo``) and a
number per choice (``q_certificates:juminhyo=2``); they come back as ``["juminhyo:2", ...]``, the
text form ``coerce_answers`` reads (a ticked choice without a number is one copy).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def answers_from_form(form: Any, question_ids: Iterable[str] | None = None) -> dict[str, Any]:
    """``{question id: value or list of values}`` for the ``q_`` fields that carry something."""
    wanted = None if question_ids is None else set(question_ids)
    answers: dict[str, Any] = {}
    counts: dict[str, dict[str, str]] = {}
    for key in form:
        if not key.startswith("q_"):
            continue
        qid, sep, choice = key[2:].partition(":")
        if wanted is not None and qid not in wanted:
            continue
        if sep:
            number = str(form.get(key, "")).strip()
            if number:
                counts.setdefault(qid, {})[choice] = number
            continue
        values = [v for v in form.getlist(key) if v != ""]
        if values:
            answers[qid] = values if len(values) > 1 else values[0]
    for qid, numbers in counts.items():
        chosen = answers.get(qid, [])
        merged = {value: "1" for value in ([chosen] if isinstance(chosen, str) else chosen)}
        merged.update(numbers)
        answers[qid] = [f"{value}:{number}" for value, number in merged.items()]
    return answers
