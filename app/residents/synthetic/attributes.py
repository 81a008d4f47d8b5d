"""資格・受給 facts for the synthetic people, consistent with their ages, households and status.

One row per fact in the attributes layout (``宛名番号, 項目, 値, 開始日, 終了日``). The vocabulary
below is the contract the guidance rules (a later issue) rely on: a 項目 and the 値 it may take.

- 国保: 加入 — every member under 75 of about 25 % of households;
- 後期高齢: 加入 — everyone 75+, from the 75th birthday itself (the others count ages by the legal
  rule, from the day before the birthday);
- 介護保険: 被保険者 — everyone 65+; 要支援1-2 / 要介護1-5 — the 要介護認定 level, a row of its own,
  for about 18 % of them (more with age);
- 国民年金: 1号 / 2号 / 3号 — ages 20-59; everyone in a 国保 household is 1号, 3号 only the spouse
  of a 2号 世帯主;
- 児童手当: 受給者 — one parent (世帯主 or spouse; for 子の子 the 子 or 子の妻) of children up to
  the end of the school year they turn 18;
- 児童扶養手当: 受給者 — half of the single parents with such children;
- 障害者手帳: 身体障害者手帳 1級-6級 / 療育手帳 A, B / 精神障害者保健福祉手帳 1級-3級 — about 5 %;
- 印鑑登録: 登録 — about 60 % of adults (18+);
- マイナンバーカード: 交付済 — about 75 %;
- 学校: the 在籍校's name (free text, e.g. 大阪市立梅田小学校) — school-age children, 小学校 and
  中学校, from the 1 April they entered.

Dates: 開始日 is when the fact began (never before the person became a resident); 終了日 is empty
while it holds and is the 異動日 for people who left (転出・死亡: 資格喪失). Ages follow the legal rule
(``age_on``), school years start on 1 April.
"""

from __future__ import annotations

import datetime as dt
import random
from itertools import accumulate

from app.dates.japanese import school_age, school_year_start
from app.residents.synthetic.people import Attribute, Household, Person, add_years, below, pick

NATIONAL_HEALTH = "国保"
LATE_ELDERLY = "後期高齢"
LONG_TERM_CARE = "介護保険"
PENSION = "国民年金"
CHILD_ALLOWANCE = "児童手当"
SINGLE_PARENT_ALLOWANCE = "児童扶養手当"
DISABILITY = "障害者手帳"
SEAL = "印鑑登録"
MY_NUMBER_CARD = "マイナンバーカード"
SCHOOL = "学校"

CARE_LEVELS = ("要支援1", "要支援2", "要介護1", "要介護2", "要介護3", "要介護4", "要介護5")
# Shares of certified people by level (介護保険事業状況報告, roughly).
_CARE_LEVEL_WEIGHTS = tuple(accumulate((14, 14, 21, 17, 13, 12, 9)))
DISABILITY_BOOKS = (
    *(f"身体障害者手帳 {g}級" for g in range(1, 7)),
    "療育手帳 A",
    "療育手帳 B",
    *(f"精神障害者保健福祉手帳 {g}級" for g in range(1, 4)),
)
_DISABILITY_WEIGHTS = tuple(accumulate((14, 9, 12, 14, 5, 6, 6, 9, 5, 12, 8)))

# 項目 → the values it takes (None: free text). The one table the guidance rules read.
ATTRIBUTE_VOCABULARY: dict[str, tuple[str, ...] | None] = {
    NATIONAL_HEALTH: ("加入",),
    LATE_ELDERLY: ("加入",),
    LONG_TERM_CARE: ("被保険者", *CARE_LEVELS),
    PENSION: ("1号", "2号", "3号"),
    CHILD_ALLOWANCE: ("受給者",),
    SINGLE_PARENT_ALLOWANCE: ("受給者",),
    DISABILITY: DISABILITY_BOOKS,
    SEAL: ("登録",),
    MY_NUMBER_CARD: ("交付済",),
    SCHOOL: None,
}

SPOUSES = frozenset({"妻", "夫", "妻（未届）", "夫（未届）"})
MY_NUMBER_CARDS_FROM = dt.date(2016, 1, 1)


def child_allowance_until(birth: dt.date) -> dt.date:
    """The first 31 March on or after the day the child reaches 18 (18歳に達する日以後の最初の3月31日)."""
    reached = add_years(birth, 18) - dt.timedelta(days=1)
    end = dt.date(reached.year, 3, 31)
    return end if end >= reached else dt.date(reached.year + 1, 3, 31)


def household_attributes(household: Household, rng: random.Random, as_of: dt.date) -> list[Attribute]:
    """Every fact of one household; draws from ``rng`` in a fixed order (deterministic)."""
    members = household.members
    facts: list[Attribute] = []

    def between(first: dt.date, last: dt.date) -> dt.date:
        return first if last <= first else first + dt.timedelta(days=below(rng, (last - first).days + 1))

    def add(person: Person, item: str, value: str, start: dt.date) -> None:
        facts.append(
            Attribute(person.atena_no, item, value, max(start, person.became_resident), person.left_on)
        )

    head = members[0]
    national_health = any(p.age(p.left_on or as_of) < 75 for p in members) and rng.random() < 0.25
    household.national_health = national_health
    insured_since = between(head.became_resident, as_of)
    head_pension: str | None = None

    for person in members:
        on = person.left_on or as_of
        age = person.age(on)
        birth = person.birth_day
        if national_health and age < 75:
            start = insured_since if insured_since <= on else person.became_resident
            add(person, NATIONAL_HEALTH, "加入", max(start, birth))
        late_elderly = add_years(birth, 75)  # from the 75th birthday itself, not the legal age
        if on >= late_elderly:
            add(person, LATE_ELDERLY, "加入", late_elderly)
        if age >= 65:
            insured = add_years(birth, 65) - dt.timedelta(days=1)
            add(person, LONG_TERM_CARE, "被保険者", insured)
            chance = 0.04 if age < 75 else 0.18 if age < 85 else 0.55
            if rng.random() < chance:
                level = pick(rng, CARE_LEVELS, _CARE_LEVEL_WEIGHTS)
                add(person, LONG_TERM_CARE, level, between(max(insured, person.became_resident), on))
        if 20 <= age <= 59:
            kind = _pension(person, head_pension, national_health, age, rng)
            if person is head:
                head_pension = kind
            add(person, PENSION, kind, add_years(birth, 20) - dt.timedelta(days=1))
        chance = 0.02 if age < 18 else 0.04 if age < 65 else 0.1
        if rng.random() < chance:
            book = pick(rng, DISABILITY_BOOKS, _DISABILITY_WEIGHTS)
            add(person, DISABILITY, book, between(max(birth, person.became_resident), on))
        if age >= 18 and rng.random() < 0.6:
            adult = add_years(birth, 18) - dt.timedelta(days=1)
            add(person, SEAL, "登録", between(max(adult, person.became_resident), on))
        if rng.random() < 0.75:
            add(
                person,
                MY_NUMBER_CARD,
                "交付済",
                between(max(MY_NUMBER_CARDS_FROM, birth, person.became_resident), on),
            )
        if person.is_resident:
            years = school_age(birth, as_of)
            if 6 <= years <= 14:
                town = household.town
                elementary = years <= 11
                school = town.elementary_school if elementary else town.junior_high_school
                entered = school_year_start(as_of).year - (years - 6 if elementary else years - 12)
                add(person, SCHOOL, school, dt.date(entered, 4, 1))

    facts.extend(_child_allowances(household, as_of, rng))
    return facts


def _pension(
    person: Person, head_pension: str | None, national_health: bool, age: int, rng: random.Random
) -> str:
    """国民年金 種別: 1号 self-employed, students, 国保; 2号 employees; 3号 their dependent spouses."""
    if national_health:
        return "1号"
    if person.relation == "世帯主":
        return "2号" if rng.random() < 0.85 else "1号"
    if person.relation in SPOUSES and head_pension == "2号" and rng.random() < 0.5:
        return "3号"
    if age <= 22 and rng.random() < 0.6:
        return "1号"  # students
    return "2号" if rng.random() < 0.8 else "1号"


def _child_allowances(household: Household, as_of: dt.date, rng: random.Random) -> list[Attribute]:
    """児童手当 on one parent of the eligible children; 児童扶養手当 for some single parents."""
    members = [p for p in household.members if p.is_resident]
    if not members:
        return []
    facts = []
    head = household.members[0]
    for child_relation, parent_relations in (("子", ("世帯主", *SPOUSES)), ("子の子", ("子", "子の妻"))):
        eligible = [
            p for p in members if p.relation == child_relation and as_of <= child_allowance_until(p.birth_day)
        ]
        # In order of preference: the 世帯主 before a spouse, the 子 before 子の妻.
        parents = sorted(
            (p for p in members if p.relation in parent_relations),
            key=lambda p: parent_relations.index(p.relation),
        )
        if not eligible or not parents:
            continue
        recipient = parents[0] if len(parents) == 1 or rng.random() < 0.8 else parents[1]
        # 認定: from the eldest eligible child's birth or the recipient's arrival, whichever is later
        start = max(min(p.birth_day for p in eligible), recipient.became_resident)
        facts.append(Attribute(recipient.atena_no, CHILD_ALLOWANCE, "受給者", start))
        single = (
            child_relation == "子" and head.is_resident and not any(p.relation in SPOUSES for p in members)
        )
        if single and rng.random() < 0.5:
            facts.append(Attribute(head.atena_no, SINGLE_PARENT_ALLOWANCE, "受給者", start))
    return facts
