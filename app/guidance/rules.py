"""CEL rules for guidance, compiled once per catalogue version (common-expression-language, Rust).

Names a rule may use:
- household facts: ``event``, ``event_date`` (ISO text), ``household`` (size, head ...), ``members``
  and the collections in ``FACT_COLLECTIONS`` (``children``, ``infants``, ``elderly75`` ...);
- the event's subjects: ``subjects`` and ``others`` (the members who are / are not the subject:
  亡くなった方, 生まれた子, 氏が変わる方; at events without a subject everyone is one) and
  ``member.is_subject``; while the clerk has not named them they are absent, so a rule that needs
  them is 要確認 like one waiting for an answer;
- ``member`` in member-scope procedures;
- every question's answer, by question id, as a top-level name.

An unanswered question is simply absent from the evaluation context. CEL's ``&&`` and ``||``
absorb an error when the other side decides the result, so ``elderly75.size() > 0 || wants_x``
is true without the answer; when the answer matters, evaluation fails with an undefined name and
the procedure is reported as 要確認 (to confirm) with the open question, never guessed.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

import cel

FACT_COLLECTIONS = (
    "members",
    "children",  # school-year age ≤ 17: until the end of the school year they turn 18 (児童手当)
    "infants",  # before school (未就学, school-year age ≤ 5)
    "elementary",  # 小学生 (school-year age 6-11)
    "junior_high",  # 中学生 (12-14)
    "school_children",  # 小中学生 (6-14)
    "adults",  # 18+
    "pension_age",  # 20-59 (国民年金 被保険者の年齢)
    "elderly65",
    "elderly75",
)
SUBJECT_COLLECTIONS = ("subjects", "others")  # the event's subjects and the other members
HOUSEHOLD_NAMES = frozenset({"event", "event_date", "household", *FACT_COLLECTIONS, *SUBJECT_COLLECTIONS})
MEMBER_NAMES = HOUSEHOLD_NAMES | {"member"}
SUBJECT_QUESTION = "subject"  # the open question that asks who the subjects are
RESERVED_NAMES = MEMBER_NAMES | {SUBJECT_QUESTION}  # no question may be called so
# Names bound by comprehension macros (children.exists(c, ...)): local, not context variables.
_MACRO_BINDING = re.compile(r"\.\s*(?:all|exists|exists_one|map|filter)\s*\(\s*([A-Za-z_][A-Za-z0-9_]*)\s*,")
_UNDEFINED = re.compile(r"Undefined variable or function: '([^']+)'")


class RuleError(ValueError):
    """A rule that cannot be compiled, or that uses a name nothing defines."""


@dataclass(frozen=True)
class Rule:
    source: str
    program: cel.Program
    questions: frozenset[str]  # question ids the rule reads
    names: frozenset[str] = frozenset()  # every top-level name it reads (facts, questions, member)


def compile_rule(source: str, *, member_scope: bool, question_ids: frozenset[str]) -> Rule:
    try:
        program = cel.compile(source)
    except ValueError as exc:
        first = str(exc).split("\n", 1)[0]
        raise RuleError(f"CEL の構文エラー: {first}") from exc
    bound = set(_MACRO_BINDING.findall(source))
    allowed = (MEMBER_NAMES if member_scope else HOUSEHOLD_NAMES) | question_ids | bound
    unknown = sorted(set(program.variables()) - allowed)
    if unknown:
        hint = (
            ""
            if member_scope or "member" not in unknown
            else "（member は scope: member の手続でだけ使えます）"
        )
        raise RuleError(
            f"知らない名前 {unknown} を参照しています（質問IDか事実の名前を確認してください）{hint}"
        )
    names = frozenset(program.variables())
    return Rule(source, program, names & question_ids, names)


@dataclass(frozen=True)
class Outcome:
    value: Any
    missing: frozenset[str]  # unanswered questions that decide it (value is None then)


log = logging.getLogger(__name__)
AGE_FACTS = frozenset({"age", "school_age", "grade"})
UNKNOWN_BIRTH = "__birth_date__"  # a member whose birth date is 年月日不詳 has no age facts
UNKNOWN_SUBJECT = "__subject__"  # the event's subjects are not named yet (who died, who is born ...)
# A rule indexing a map key the household does not have (``m.attributes["国保"]`` for someone without
# 国保): a catalogue defect, shown as 要確認 so the counter keeps working, and logged for the author.
MISSING_KEY = "__missing_key__"


def evaluate(rule: Rule, context: cel.Context) -> Outcome:
    try:
        return Outcome(rule.program.execute(context), frozenset())
    except KeyError as exc:
        if exc.args and exc.args[0] in AGE_FACTS:
            return Outcome(None, frozenset({UNKNOWN_BIRTH}))
        if exc.args and exc.args[0] == "is_subject":
            return Outcome(None, frozenset({UNKNOWN_SUBJECT}))
        log.warning(
            "catalogue rule reads a missing key %r: %s (write 'key' in map first)", exc.args[:1], rule.source
        )
        return Outcome(None, frozenset({MISSING_KEY}))
    except RuntimeError as exc:
        found = _UNDEFINED.search(str(exc))
        if found and found.group(1) in SUBJECT_COLLECTIONS:
            return Outcome(None, frozenset({UNKNOWN_SUBJECT}))
        if found and found.group(1) in rule.questions:
            # One undefined answer surfaces at a time; report every question the rule reads
            # that is still unanswered, so the clerk sees them all at once.
            answered = set(context.variables)
            return Outcome(None, frozenset(q for q in rule.questions if q not in answered))
        raise


def context(values: dict[str, Any]) -> cel.Context:
    return cel.Context(values)
