"""Facts the rules read: each member's legal age and school-year age on the event date, their
relation, sex and attributes from the front linkage, and the household's collections.

- Age follows the Japanese legal rule (年齢計算ニ関スル法律): a year of age is reached on the day
  before the birthday (``app.dates.japanese.age_on``).
- The school-year age (``app.dates.japanese.school_age``) places a child in a school year: 6 in
  小1, 14 in 中3; born on 1 April: in the year above those born on 2 April.
- An uncertain birth date (頃, 月日不詳) uses the middle of the span it denotes and is flagged
  ``age_estimated``; 年月日不詳 gives no age at all: the age facts are absent, a rule that reads
  them for that person ends as 要確認 (never guessed), and the household collections leave the
  person out.
- The event's subjects (``is_subject``, ``subjects``, ``others``): who the event is about — who died,
  who is born, whose surname changes. At an event whose catalogue entry names no subject, everyone
  is a subject; otherwise the clerk names them (``MemberInput.subject``); at 出生, unless named,
  the youngest members under one year old (twins share the date): the household of a birth includes
  the newborn, so this is the newborn, not a guess. Otherwise they stay unknown and the rules that
  need them are 要確認.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from app.dates.japanese import JapaneseDate, age_on, school_age

HEAD = "世帯主"
SEX = {1: "男", 2: "女", 9: "適用不能"}


@dataclass(frozen=True)
class MemberInput:
    """One person of the household the guidance is for (from the records or described by hand)."""

    key: str  # resident id, or "m1", "m2" ... for a described household
    name: str
    kana: str | None
    birth: JapaneseDate | None
    sex: int
    relation: str
    attributes: dict[str, list[str]] = field(default_factory=dict)  # 項目 -> 値 (active ones)
    resident_id: int | None = None
    # The event's subject (亡くなった方, 生まれた子, 氏が変わる方): True / False when stated, None when
    # not. Once any member of the household is stated, the members left None are not subjects.
    subject: bool | None = None


def _assumed_birthday(birth: JapaneseDate) -> tuple[dt.date | None, bool]:
    """(a birth date to compute ages with, whether it is an estimate)."""
    if birth.gregorian is not None:
        return birth.gregorian, birth.qualifier == "推定"
    year = birth.gregorian_year
    if year is None:
        return None, True
    if birth.month is None:
        return dt.date(year, 7, 1), True
    return dt.date(year, birth.month, 15), True


def member_facts(member: MemberInput, event_date: dt.date) -> dict[str, Any]:
    born, estimated = _assumed_birthday(member.birth) if member.birth else (None, True)
    facts: dict[str, Any] = {
        "key": member.key,
        "name": member.name,
        "kana": member.kana or "",
        "age_known": born is not None,
        "age_estimated": estimated and born is not None,
        "sex": SEX.get(member.sex, "適用不能"),
        "relation": member.relation,
        "is_head": member.relation == HEAD,
        "attributes": {k: list(v) for k, v in member.attributes.items()},
        "has": sorted(member.attributes),
    }
    if born is not None:
        year_age = school_age(born, event_date)
        facts["age"] = age_on(born, event_date)
        facts["school_age"] = year_age
        facts["grade"] = year_age - 5 if 6 <= year_age <= 14 else 0  # 1-6 小学校, 7-9 中学校 (中1 = 7)
    return facts


def subject_keys(
    members: list[MemberInput], event: str, event_date: dt.date, *, named_by_event: bool
) -> frozenset[str] | None:
    """The keys of the event's subjects, or None while they are unknown (see the module text).

    ``named_by_event``: the catalogue's event names a subject (死亡: 亡くなった方); without one, the
    whole household is the subject whatever the members say (a case with 死亡 and 転居 names the
    person who died for the death only).
    """
    if not named_by_event:
        return frozenset(m.key for m in members)
    if any(m.subject is not None for m in members):
        return frozenset(m.key for m in members if m.subject)
    if event == "shussei":
        born = [
            (m.birth.gregorian, m.key)
            for m in members
            if m.birth is not None
            and m.birth.gregorian is not None
            and m.birth.gregorian <= event_date
            and age_on(m.birth.gregorian, event_date) == 0
        ]
        if born:
            latest = max(day for day, _ in born)
            return frozenset(key for day, key in born if day == latest)
    return None


def household_facts(members: list[dict[str, Any]], event: str, event_date: dt.date) -> dict[str, Any]:
    def pick(test: Any) -> list[dict[str, Any]]:
        return [m for m in members if m["age_known"] and test(m)]  # 年月日不詳: in no age collection

    head = next((m for m in members if m["is_head"]), members[0] if members else None)
    subjects: dict[str, Any] = {}
    if members and all("is_subject" in m for m in members):  # absent while the subjects are unknown
        subjects = {
            "subjects": [m for m in members if m["is_subject"]],
            "others": [m for m in members if not m["is_subject"]],
        }
    return {
        **subjects,
        "event": event,
        "event_date": event_date.isoformat(),
        "household": {"size": len(members), "head": head["name"] if head else ""},
        "members": members,
        "children": pick(lambda m: m["school_age"] <= 17),
        "infants": pick(lambda m: m["school_age"] <= 5),
        "elementary": pick(lambda m: 6 <= m["school_age"] <= 11),
        "junior_high": pick(lambda m: 12 <= m["school_age"] <= 14),
        "school_children": pick(lambda m: 6 <= m["school_age"] <= 14),
        "adults": pick(lambda m: m["age"] >= 18),
        "pension_age": pick(lambda m: 20 <= m["age"] <= 59),
        "elderly65": pick(lambda m: m["age"] >= 65),
        "elderly75": pick(lambda m: m["age"] >= 75),
    }
