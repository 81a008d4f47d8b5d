"""Synthetic households (世帯) and people, streamed one household at a time.

Why it is built this way:

- **Constant memory.** ``generate_households`` is a generator; nothing about earlier households is
  kept except counters, so Osaka's 2.8 million residents stream straight into the files.
- **Deterministic.** One ``random.Random(seed)`` drives everything, in a fixed order; the extract
  date (``as_of``) is an input, never "today". Same seed and date → the same households, byte for
  byte once written.
- **Exact city counts.** Each household's size is drawn from the national size table tilted to the
  mean that is *still needed* (remaining residents / remaining households), so the run ends on the
  city's resident and household counts exactly while the sizes follow the table.
- **Plausible people.** Ages come from the 2020 census pyramid restricted to what a role allows
  (a child is 18 to 45 years younger than its younger parent, a parent of the head 20 to 45 years older,
  spouses about two years apart), 続柄 only from the standard's closed set.
- **Names** are Faker ja_JP's name/kana *pairs* (``last_name_pairs``, ``first_name_male_pairs``,
  ``first_name_female_pairs``, surnames weighted by Faker's frequency), drawn with our own seeded RNG:
  calling the provider per person costs ~7 µs against ~1 µs, i.e. 20 s of a city-scale Osaka run.
- **People who left stay** (除票): some members with 住民状態 転出 or 死亡 (a widow's late husband, a
  child who moved away, the odd whole household that left). The city counts are of living
  residents (住民) and the households they live in; those rows come on top (about 5 %).
- **Edge cases every run** at fixed early households (see ``EDGE_CASES``): 𠮷 (outside the BMP),
  髙, 﨑 (U+FA11), an IVS sequence (葛 + U+E0100), an unconfirmed kana, birth dates only known in
  和暦 (``大正15年頃`` ...), 方書 with a comma and with a line break. Such a birth date cannot be
  written in an ISO file: there ``app.linkage.writer`` puts the first day of its span (1926-01-01),
  while 和暦 and era-code files keep it as the core system holds it.
"""

from __future__ import annotations

import datetime as dt
import random
from bisect import bisect
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import accumulate
from typing import TYPE_CHECKING, TypeVar

from app.dates.japanese import JapaneseDate, age_on, parse
from app.linkage.checkdigit import with_check_digit
from app.residents.synthetic import tables
from app.residents.synthetic.places import Town, towns_for
from app.residents.synthetic.tables import CityProfile

if TYPE_CHECKING:
    from app.linkage.writer import Value

T = TypeVar("T")
_SIZES = tuple(range(1, 8))
JST = dt.timezone(dt.timedelta(hours=9), "JST")
MALE, FEMALE = 1, 2
# 更新日時 is never older than the day every record got its individual number (マイナンバー施行).
RECORDS_TOUCHED = dt.date(2015, 10, 5)
FULL_WIDTH_SPACE = "\u3000"

# Surnames, given names and birth dates of the deliberate edge cases (see the module docstring).
IVS_KATSURAGI = "葛\U000e0100城"  # 葛 with its Adobe-Japan1 IVS, then 城
EDGE_SURNAMES: dict[int, tuple[str, str]] = {
    2: ("𠮷田", "ヨシダ"),  # 𠮷 U+20BB7, outside the BMP: four bytes in UTF-8, a surrogate pair in UTF-16
    4: ("髙橋", "タカハシ"),  # 髙 U+9AD9 (はしごだか)
    6: ("山﨑", "ヤマザキ"),  # 﨑 U+FA11 (たつさき), a CJK compatibility ideograph
    8: (IVS_KATSURAGI, "カツラギ"),
}
EDGE_UNCONFIRMED_KANA = 10
EDGE_UNCERTAIN_BIRTHS: dict[int, tuple[str, dt.date]] = {
    # household index: (birth as held in 和暦, a calendar day inside the span for age calculations)
    12: ("大正15年頃", dt.date(1926, 7, 1)),
    14: ("昭和2年 月日不詳", dt.date(1927, 7, 1)),
    16: ("大正13年5月 日不詳", dt.date(1924, 5, 15)),
    18: ("推定大正14年3月1日", dt.date(1925, 3, 1)),
}
EDGE_KATAGAKI: dict[int, str] = {
    20: "ハイツ朝日,別館 203号室",
    22: "グランドメゾン白鷺\n2階 201号室",
}
EDGE_CASES = sorted({*EDGE_SURNAMES, EDGE_UNCONFIRMED_KANA, *EDGE_UNCERTAIN_BIRTHS, *EDGE_KATAGAKI})


@dataclass(slots=True)
class Person:
    """One row of the residents file (standard column names in ``row()``)."""

    atena_no: str  # 宛名番号
    household_no: str  # 世帯番号
    order: int  # 世帯内順
    name: str  # 氏名
    kana: str  # 氏名フリガナ ("" when not confirmed)
    kana_confirmed: bool
    former_surname: str | None  # 旧氏
    birth: dt.date | JapaneseDate  # 生年月日 as the core system holds it
    birth_day: dt.date  # a calendar day for age calculations (inside the span of a 不詳日)
    sex: int  # ISO 5218
    relation: str  # 続柄
    postal_code: str
    address: str
    address_extra: str | None  # 方書
    became_resident: dt.date  # 住民となった日
    address_set: dt.date  # 住定日
    status: str  # 住民 / 転出 / 死亡 / 職権消除
    kind: str  # 日本人 / 外国人
    change_reason: str  # 異動事由
    change_date: dt.date  # 異動日
    updated_at: dt.datetime  # 更新日時

    @property
    def is_resident(self) -> bool:
        return self.status == "住民"

    @property
    def left_on(self) -> dt.date | None:
        """The day a person who left stopped being a resident (their 異動日)."""
        return None if self.is_resident else self.change_date

    def age(self, on: dt.date) -> int:
        return age_on(self.birth_day, on)

    def row(self) -> dict[str, Value]:
        return {
            "宛名番号": self.atena_no,
            "世帯番号": self.household_no,
            "世帯内順": self.order,
            "氏名": self.name,
            "氏名フリガナ": self.kana,
            "フリガナ確認": 1 if self.kana_confirmed else 0,
            "旧氏": self.former_surname,
            "生年月日": self.birth,
            "性別": self.sex,
            "続柄": self.relation,
            "郵便番号": self.postal_code,
            "住所": self.address,
            "方書": self.address_extra,
            "住民となった日": self.became_resident,
            "住定日": self.address_set,
            "住民状態": self.status,
            "住民種別": self.kind,
            "異動事由": self.change_reason,
            "異動日": self.change_date,
            "更新日時": self.updated_at,
        }


@dataclass(slots=True)
class Attribute:
    """One fact of the attributes file (資格・受給): ``宛名番号, 項目, 値, 開始日, 終了日``."""

    atena_no: str
    item: str
    value: str
    start: dt.date | None
    end: dt.date | None = None

    def row(self) -> dict[str, Value]:
        return {
            "宛名番号": self.atena_no,
            "項目": self.item,
            "値": self.value,
            "開始日": self.start,
            "終了日": self.end,
        }


@dataclass(slots=True)
class Household:
    household_no: str
    members: list[Person]
    town: Town
    attributes: list[Attribute] = field(default_factory=list)
    national_health: bool = False  # 国保 household (all members under 75 insured)

    @property
    def residents(self) -> int:
        return sum(1 for p in self.members if p.is_resident)


@dataclass(slots=True)
class _Spec:
    """A member before names and dates: role, sex, age in years, and how they left if they did."""

    relation: str
    sex: int
    age: int
    status: str = "住民"
    own_surname: bool = False  # 同居人: not the household's surname
    birth: JapaneseDate | None = None  # an uncertain birth date (edge case)
    birth_day: dt.date | None = None


def below(rng: random.Random, n: int) -> int:
    """0 <= k < n. ``int(random() * n)``: a third of ``randrange``'s cost, in the hot loop."""
    return int(rng.random() * n)


def pick(rng: random.Random, population: Sequence[T], cum_weights: Sequence[float]) -> T:
    """``rng.choices(population, cum_weights=...)[0]`` without building a list."""
    return population[min(bisect(cum_weights, rng.random() * cum_weights[-1]), len(population) - 1)]


def one_of(rng: random.Random, population: Sequence[T]) -> T:
    return population[int(rng.random() * len(population))]


def add_years(day: dt.date, years: int) -> dt.date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February in a non-leap year
        return day.replace(year=day.year + years, day=28)


class _NameBook:
    """Faker ja_JP's name/kana pair tables with cumulative weights for ``random.choices``."""

    def __init__(self) -> None:
        from faker import Faker

        person = Faker("ja_JP").provider("faker.providers.person")
        assert person is not None
        surnames = person.last_name_pairs  # OrderedDict: (name, kana, romaji) -> frequency
        self.surnames: list[tuple[str, str]] = [(n, k) for n, k, _ in surnames]
        self.surname_weights = list(accumulate(float(w) for w in surnames.values()))
        self.male: list[tuple[str, str]] = [(n, k) for n, k, _ in person.first_name_male_pairs]
        self.female: list[tuple[str, str]] = [(n, k) for n, k, _ in person.first_name_female_pairs]


class _Generator:
    def __init__(self, profile: CityProfile, seed: int, as_of: dt.date):
        self.profile = profile
        self.as_of = as_of
        # The tenant is part of the seed: the same --seed gives each city its own people.
        self.rng = random.Random(f"{profile.tenant_id}:{seed}")  # noqa: S311 - synthetic data, not secrets
        self.names = _NameBook()
        towns = towns_for(profile)
        self.ward_codes = [code for code, _ in profile.wards]
        self.ward_weights = list(accumulate(float(w) for _, w in profile.wards))
        self.towns = towns
        self.atena_seq = 100_000_000
        self.household_seq: dict[str, int] = {}

    # --- random helpers -------------------------------------------------------------------
    def age(self, lo: int, hi: int) -> int:
        ages, weights = tables.age_cum_weights(lo, hi)
        return pick(self.rng, ages, weights)

    def between(self, first: dt.date, last: dt.date) -> dt.date:
        if last <= first:
            return first
        return first + dt.timedelta(days=below(self.rng, (last - first).days + 1))

    def birth_for(self, age: int) -> dt.date:
        latest = add_years(self.as_of, -age)
        return latest - dt.timedelta(days=below(self.rng, 365))

    # --- numbers ----------------------------------------------------------------------------
    def next_atena(self) -> str:
        while True:
            self.atena_seq += 1
            number = with_check_digit(str(self.atena_seq))
            if number is not None:
                return number

    def next_household_no(self, ward: str) -> str:
        # Osaka: the ward's digits lead (a move between wards gives a new 世帯番号), elsewhere 50.
        prefix = ward[3:5] if len(self.ward_codes) > 1 else "50"
        seq = self.household_seq.get(prefix, 0)
        while True:
            seq += 1
            number = with_check_digit(f"{prefix}{seq:07d}")
            if number is not None:
                self.household_seq[prefix] = seq
                return number

    # --- composition ----------------------------------------------------------------------
    def household_size(self, residents_left: int, households_left: int) -> int:
        if households_left <= 1:
            return residents_left
        mean = residents_left / households_left
        weights = tables.household_size_weights(round(mean, 2))
        size = pick(self.rng, _SIZES, weights)
        return max(1, min(size, residents_left - (households_left - 1)))

    def couple(self, head_lo: int, head_hi: int) -> tuple[_Spec, _Spec]:
        rng = self.rng
        head_age = self.age(head_lo, head_hi)
        head_male = rng.random() < 0.9
        gap = round(rng.gauss(2, 3))
        spouse_age = min(max(head_age - gap if head_male else head_age + gap, 18), tables.MAX_AGE)
        unregistered = "（未届）" if rng.random() < 0.01 else ""
        head = _Spec("世帯主", MALE if head_male else FEMALE, head_age)
        spouse = _Spec(
            ("妻" if head_male else "夫") + unregistered, FEMALE if head_male else MALE, spouse_age
        )
        return head, spouse

    def children(self, count: int, parent_age: int, relation: str = "子") -> list[_Spec]:
        """``count`` children of parents whose younger one is ``parent_age``, eldest first."""
        hi = parent_age - 18
        lo = max(0, parent_age - 45)
        kids = [
            _Spec(relation, MALE if self.rng.random() < 0.51 else FEMALE, self.age(lo, hi))
            for _ in range(count)
        ]
        return sorted(kids, key=lambda s: -s.age)

    def family(self, kids: int, young: bool | None = None) -> list[_Spec]:
        """A couple and their children: young families mostly, some older parents with adult children."""
        young = self.rng.random() < 0.6 if young is None else young
        head, spouse = self.couple(24, 52) if young else self.couple(50, 88)
        return [head, spouse, *self.children(kids, min(head.age, spouse.age))]

    def single_parent(self, kids: int, young: bool | None = None) -> list[_Spec]:
        female = self.rng.random() < 0.85
        young = self.rng.random() < 0.5 if young is None else young
        age = self.age(22, 52) if young else self.age(50, 85)
        return [_Spec("世帯主", FEMALE if female else MALE, age), *self.children(kids, age)]

    def parents_of(self, head: _Spec, count: int) -> list[_Spec]:
        lo, hi = head.age + 20, min(head.age + 45, tables.MAX_AGE)
        first = self.age(lo, hi)
        if count == 1:
            female = self.rng.random() < 0.72  # widowed mothers outnumber fathers
            return [_Spec("母" if female else "父", FEMALE if female else MALE, first)]
        second = min(max(first - round(self.rng.gauss(2, 3)), lo), tables.MAX_AGE)
        return [_Spec("父", MALE, first), _Spec("母", FEMALE, second)]

    def compose(self, size: int) -> list[_Spec]:
        rng = self.rng
        r = rng.random()
        if size == 1:  # 単独世帯: young adults and, as often, old people living alone
            age = self.age(65, tables.MAX_AGE) if r < 0.45 else self.age(18, 64)
            female = rng.random() < (0.62 if age >= 65 else 0.45)
            return [_Spec("世帯主", FEMALE if female else MALE, age)]
        if size == 2:
            if r < 0.58:  # 夫婦のみ: mostly older couples
                return list(self.couple(60, 100) if rng.random() < 0.65 else self.couple(20, 59))
            if r < 0.80:
                return self.single_parent(1)
            if r < 0.92:
                head = _Spec("世帯主", MALE if rng.random() < 0.5 else FEMALE, self.age(40, 70))
                return [head, *self.parents_of(head, 1)]
            if r < 0.97:
                return self.siblings()
            head = _Spec("世帯主", MALE if rng.random() < 0.5 else FEMALE, self.age(20, 80))
            lodger_sex = MALE if rng.random() < 0.5 else FEMALE
            return [head, _Spec("同居人", lodger_sex, self.age(20, 80), own_surname=True)]
        if size == 3:
            if r < 0.68:
                return self.family(1)
            if r < 0.82:
                return self.single_parent(2)
            if r < 0.94:
                head, spouse = self.couple(30, 65)
                return [head, spouse, *self.parents_of(head, 1)]
            parent, child = self.single_parent(1, young=True)
            return [parent, child, *self.parents_of(parent, 1)]
        if size == 4:
            if r < 0.80:
                return self.family(2)
            if r < 0.94:
                members = self.family(1, young=True)
                return [*members, *self.parents_of(members[0], 1)]
            return self.single_parent(3)
        if r < 0.45:
            return self.family(size - 2)
        if r < 0.80:
            parents = 1 if size == 5 else 2
            head, spouse = self.couple(28, 50)
            return [
                head,
                spouse,
                *self.children(size - 2 - parents, min(head.age, spouse.age)),
                *self.parents_of(head, parents),
            ]
        return self.three_generations(size)

    def siblings(self) -> list[_Spec]:
        head_age = self.age(20, 85)
        other_age = min(max(head_age + one_of(self.rng, (-1, 1)) * (1 + below(self.rng, 10)), 18), 100)
        female = self.rng.random() < 0.5
        older = other_age > head_age
        relation = ("姉" if older else "妹") if female else ("兄" if older else "弟")
        head = _Spec("世帯主", MALE if self.rng.random() < 0.5 else FEMALE, head_age)
        return [head, _Spec(relation, FEMALE if female else MALE, other_age)]

    def three_generations(self, size: int) -> list[_Spec]:
        """世帯主 and 妻, their son (子) with his wife (子の妻) and grandchildren (子の子)."""
        head = _Spec("世帯主", MALE, self.age(55, 85))
        wife_age = min(max(head.age - round(self.rng.gauss(2, 3)), 40), tables.MAX_AGE)
        wife = _Spec("妻", FEMALE, wife_age)
        younger = min(head.age, wife_age)
        son = _Spec("子", MALE, self.age(max(younger - 40, 22), max(younger - 20, 22)))
        daughter_in_law = _Spec("子の妻", FEMALE, min(max(son.age - round(self.rng.gauss(2, 3)), 20), 70))
        grandchildren = self.children(size - 4, min(son.age, daughter_in_law.age), relation="子の子")
        return [head, wife, son, daughter_in_law, *grandchildren]

    def departed(self, members: list[_Spec]) -> list[_Spec]:
        """Members who left (除票) and stay in the extract with their status."""
        rng = self.rng
        head = members[0]
        extra: list[_Spec] = []
        has_spouse = any(m.relation in ("妻", "夫") for m in members)
        if len(members) == 1 and head.age >= 65 and rng.random() < 0.12:
            sex = MALE if head.sex == FEMALE else FEMALE
            extra.append(_Spec("夫" if sex == MALE else "妻", sex, min(head.age + 2, 105), status="死亡"))
        elif has_spouse and 45 <= head.age <= 80 and rng.random() < 0.04:
            late_parent = self.parents_of(head, 1)[0]
            late_parent.status = "死亡"
            extra.append(late_parent)
        if 45 <= head.age <= 75 and rng.random() < 0.08:
            kid_age = self.age(18, min(35, head.age - 18))
            extra.append(_Spec("子", MALE if rng.random() < 0.5 else FEMALE, kid_age, status="転出"))
        return extra

    # --- people -------------------------------------------------------------------------
    def build(self, specs: list[_Spec], *, edge: int | None, moved_out: str | None = None) -> Household:
        """Names, numbers, address and dates for ``specs``; ``edge`` is the living-household index
        that decides the edge cases (None for a household that moved out)."""
        rng, as_of, profile = self.rng, self.as_of, self.profile
        ward = pick(rng, self.ward_codes, self.ward_weights)
        town = one_of(rng, self.towns[ward])
        address = self.address(town)
        extra = EDGE_KATAGAKI.get(edge) if edge is not None else None
        if extra is None and rng.random() < profile.apartment_share:
            extra = self.katagaki(town)
        foreign = rng.random() < profile.foreign_share and edge not in EDGE_CASES
        group = pick(rng, tables.FOREIGN_NAMES, tables.FOREIGN_WEIGHTS) if foreign else None
        surname, surname_kana = self.surname(group)
        if edge in EDGE_SURNAMES:
            surname, surname_kana = EDGE_SURNAMES[edge]
        household_no = self.next_household_no(ward)

        births: list[dt.date] = []
        for spec in specs:
            births.append(spec.birth_day or self.birth_for(spec.age))
        head_birth = births[0]
        native = not foreign and rng.random() < 0.3
        earliest = max(add_years(head_birth, 18), add_years(as_of, -15 if foreign else -60))
        settled = add_years(head_birth, 20) if native else self.between(earliest, as_of)
        settled = min(settled, as_of)
        moved_within = rng.random() < 0.35
        moved_on = self.between(settled, as_of) if moved_within else None
        reorganised = self.between(moved_on or settled, as_of) if rng.random() < 0.03 else None

        members: list[Person] = []
        given_names: set[str] = set()
        for order, (spec, birth_day) in enumerate(zip(specs, births, strict=True), start=1):
            # A native 世帯主 was born here; everyone else arrived with the household or was born later.
            became = birth_day if (order == 1 and native) or birth_day >= settled else settled
            address_set = max(moved_on, became) if moved_on else became
            reason = "転居" if address_set > became else ("出生" if became == birth_day else "転入")
            change = address_set
            if reorganised is not None and reorganised > change:
                reason, change = "世帯変更", reorganised
            status = moved_out or spec.status
            if status != "住民":
                change = self.between(max(address_set, as_of - dt.timedelta(days=730)), as_of)
                reason = {"転出": "転出", "死亡": "死亡", "職権消除": "職権消除"}[status]
            given, given_kana = self.given_name(spec.sex, group)
            for _ in range(4):  # siblings do not share a given name (Faker's lists are short)
                if given not in given_names:
                    break
                given, given_kana = self.given_name(spec.sex, group)
            given_names.add(given)
            own_surname, own_kana = self.surname(group) if spec.own_surname else (surname, surname_kana)
            sep = " " if foreign else FULL_WIDTH_SPACE
            kana = f"{own_kana} {given_kana}"
            confirmed = True
            if order == 1 and edge == EDGE_UNCONFIRMED_KANA:
                kana, confirmed = "", False
            former = None
            if spec.relation == "妻" and not foreign and rng.random() < 0.02:
                former = self.surname(None)[0]
            minutes = 8 * 60 + 30 + below(rng, 9 * 60)
            touched = max(change, RECORDS_TOUCHED)
            updated = dt.datetime(
                touched.year,
                touched.month,
                touched.day,
                minutes // 60,
                minutes % 60,
                below(rng, 60),
                tzinfo=JST,
            )
            members.append(
                Person(
                    atena_no=self.next_atena(),
                    household_no=household_no,
                    order=order,
                    name=f"{own_surname}{sep}{given}",
                    kana=kana,
                    kana_confirmed=confirmed,
                    former_surname=former,
                    birth=spec.birth or birth_day,
                    birth_day=birth_day,
                    sex=spec.sex,
                    relation=spec.relation,
                    postal_code=town.postal_code,
                    address=address,
                    address_extra=extra,
                    became_resident=became,
                    address_set=address_set,
                    status=status,
                    kind="外国人" if foreign else "日本人",
                    change_reason=reason,
                    change_date=change,
                    updated_at=updated,
                )
            )
        return Household(household_no, members, town=town)

    def surname(self, group: tables.ForeignNames | None) -> tuple[str, str]:
        if group is not None:
            return one_of(self.rng, group.surnames)
        return pick(self.rng, self.names.surnames, self.names.surname_weights)

    def given_name(self, sex: int, group: tables.ForeignNames | None) -> tuple[str, str]:
        if group is not None:
            return one_of(self.rng, group.male if sex == MALE else group.female)
        return one_of(self.rng, self.names.male if sex == MALE else self.names.female)

    def address(self, town: Town) -> str:
        """住所 up to 番地: 2丁目5番12号 (住居表示) or 123番地4 (地番, rural towns)."""
        rng = self.rng
        base = f"{town.prefecture}{town.city}{town.name}"
        if town.chome:
            return f"{base}{1 + below(rng, town.chome_count)}丁目{1 + below(rng, 30)}番{1 + below(rng, 25)}号"
        if self.profile.urban:
            return f"{base}{1 + below(rng, 30)}番{1 + below(rng, 25)}号"
        number = f"{base}{1 + below(rng, 2500)}番地"
        return number + (str(1 + below(rng, 12)) if rng.random() < 0.5 else "")

    def katagaki(self, town: Town) -> str:
        rng = self.rng
        word = town.name if rng.random() < 0.5 else one_of(rng, tables.BUILDING_WORDS)
        building = f"{one_of(rng, tables.BUILDING_PREFIXES)}{word}"
        floor, room = 1 + below(rng, 12), 1 + below(rng, 12)
        return (
            f"{building} {floor}{room:02d}号室" if rng.random() < 0.85 else f"{building} {floor}-{room:02d}"
        )


def generate_households(
    profile: CityProfile,
    residents: int,
    households: int,
    *,
    seed: int,
    as_of: dt.date,
    attributes: Callable[[Household, random.Random, dt.date], list[Attribute]] | None = None,
) -> Iterator[Household]:
    """Households until exactly ``residents`` living people in ``households`` living households.

    Households whose members all left (転出) come on top. ``attributes``, when given, fills each
    household's 資格・受給 facts from the same random stream (so they are deterministic too).
    """
    if households < 1 or residents < households:
        raise ValueError(f"need at least one resident per household ({residents} in {households})")
    gen = _Generator(profile, seed, as_of)
    rng = gen.rng
    residents_left, households_left = residents, households
    index = 0
    while households_left > 0:
        if index in EDGE_UNCERTAIN_BIRTHS and households_left > 1:
            text, day = EDGE_UNCERTAIN_BIRTHS[index]
            specs = [_Spec("世帯主", FEMALE, age_on(day, as_of), birth=parse(text, "wareki"), birth_day=day)]
        else:
            specs = gen.compose(gen.household_size(residents_left, households_left))
        size = len(specs)
        specs.extend(gen.departed(specs))
        household = gen.build(specs, edge=index)
        if attributes is not None:
            household.attributes = attributes(household, rng, as_of)
        residents_left -= size
        households_left -= 1
        index += 1
        yield household
        if rng.random() < 0.012:
            status = "転出" if rng.random() < 0.9 else "職権消除"
            left = gen.build(gen.compose(one_of(rng, (1, 1, 2, 3))), edge=None, moved_out=status)
            if attributes is not None:
                left.attributes = attributes(left, rng, as_of)
            yield left
