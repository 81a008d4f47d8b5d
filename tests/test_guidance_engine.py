"""The determiner on a small test catalogue: rules, open questions, reasons, broken catalogues."""

from __future__ import annotations

import dataclasses
import datetime as dt
import shutil
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from werkzeug.datastructures import MultiDict

from app.dates.japanese import parse
from app.dates.periods import period_end
from app.guidance.engine import AnswerError, CompiledCatalogue, coerce_answers, compile_catalogue, determine
from app.guidance.facts import MemberInput, member_facts
from app.guidance.formdata import answers_from_form
from app.tenancy.loader import TenantConfigError, load_tenant
from tests.conftest import ROOT, without_forms

DATA = ROOT / "tests" / "data" / "catalogue"
EVENT_DAY = dt.date(2026, 11, 21)


@pytest.fixture
def tenant_dir(tmp_path: Path) -> Path:
    """A copy of Gobo's tenant files with the small test catalogue instead of the real one."""
    root = tmp_path / "tenants"
    shutil.copytree(ROOT / "tenants" / "_defaults", root / "_defaults")
    shutil.copytree(ROOT / "tenants" / "gobo", root / "gobo")
    without_forms(root / "gobo")
    for name in ("guidance.yaml", "procedures.yaml"):
        shutil.copy(DATA / name, root / "gobo" / name)
    (root / "gobo" / "forms").mkdir(exist_ok=True)
    shutil.copy(DATA / "forms" / "catalog.yaml", root / "gobo" / "forms" / "catalog.yaml")
    return root / "gobo"


def compiled(tenant_dir: Path) -> CompiledCatalogue:
    config = load_tenant(tenant_dir).config
    assert config.catalogue is not None
    return compile_catalogue(config.catalogue)


def person(key: str, name: str, birth: str, relation: str, sex: int = 1, **attributes: str) -> MemberInput:
    return MemberInput(key, name, None, parse(birth), sex, relation, {k: [v] for k, v in attributes.items()})


FAMILY = [
    person("m1", "御坊 一郎", "1985-05-01", "世帯主", マイナンバーカード="交付済"),
    person("m2", "御坊 花子", "1987-02-02", "妻", 2),
    person("m3", "御坊 陽", "2023-01-10", "子"),
    person("m4", "御坊 翔", "2016-04-01", "子", マイナンバーカード="交付済"),
    person("m5", "御坊 ふみ", "1950-01-01", "母", 2),
]


def names(entries: list) -> list[tuple[str, str | None]]:  # type: ignore[type-arg]
    return [(e.name, e.member) for e in entries]


def test_reasons_deadlines_and_items(tenant_dir: Path) -> None:
    result = determine(compiled(tenant_dir), "tennyu", EVENT_DAY, FAMILY, {"wants_inkan": True,
                       "employed_insurance": True, "has_dog": False})  # fmt: skip
    by_name = {(e.name, e.member): e for e in result.needed}
    allowance = by_name[("児童手当 認定請求", None)]
    assert allowance.reason == "18歳以下の子 2人（3歳・10歳）"
    assert allowance.deadline == dt.date(2026, 12, 6)
    assert allowance.deadline_text == "令和8年12月6日まで（15日以内）"
    assert by_name[("転入届", None)].bring == ["転出証明書", "マイナンバーカード"]
    assert by_name[("転入届", None)].forms == ["juumin_idou"]
    cards = [e.member for e in result.needed if e.procedure == "my_number_card"]
    assert cards == ["御坊 一郎", "御坊 翔"]
    assert result.confirm == []
    assert result.open_questions == []


def test_unanswered_questions_are_open_and_their_procedures_to_confirm(tenant_dir: Path) -> None:
    result = determine(compiled(tenant_dir), "tennyu", EVENT_DAY, FAMILY, {})
    assert [q.id for q in result.open_questions] == ["wants_inkan", "employed_insurance", "has_dog"]
    confirm = {(e.name, e.member): e.questions for e in result.confirm}
    assert confirm[("印鑑登録", None)] == ["wants_inkan"]
    assert confirm[("国民健康保険 加入", "御坊 一郎")] == ["employed_insurance"]
    # 76 years old: 国保 is decided without the answer (not under 75), so it is not asked for her.
    assert ("国民健康保険 加入", "御坊 ふみ") in names(result.not_needed)
    assert all(e.procedure != "kokuho" or e.member != "御坊 ふみ" for e in result.confirm)


def test_not_needed_procedures_say_why(tenant_dir: Path) -> None:
    single = [person("m1", "独身 太郎", "1990-01-01", "世帯主")]
    result = determine(compiled(tenant_dir), "tennyu", EVENT_DAY, single, {"wants_inkan": False,
                       "employed_insurance": True, "has_dog": False})  # fmt: skip
    reasons = {e.name: e.reason for e in result.not_needed}
    assert reasons["児童手当 認定請求"] == "該当しません: 18歳以下の子がいる"
    assert reasons["印鑑登録"] == "該当しません: 印鑑登録を希望する"


def test_determination_is_deterministic_and_grouped(tenant_dir: Path) -> None:
    cat = compiled(tenant_dir)
    first = determine(cat, "tennyu", EVENT_DAY, FAMILY, {"wants_inkan": True})
    second = determine(cat, "tennyu", EVENT_DAY, FAMILY, {"wants_inkan": True})
    assert [e.as_dict() for e in first.needed] == [e.as_dict() for e in second.needed]
    assert [g[0] for g in first.by_department()] == ["市民課", "こども課"]  # guidance.yaml order


def test_answers_are_typed_and_checked(tenant_dir: Path) -> None:
    cat = compiled(tenant_dir)
    assert coerce_answers(cat, {"wants_inkan": "はい", "has_dog": "no"}) == {
        "wants_inkan": True,
        "has_dog": False,
    }
    with pytest.raises(AnswerError, match="はい／いいえ"):
        coerce_answers(cat, {"wants_inkan": "たぶん"})
    with pytest.raises(AnswerError, match="カタログにありません"):
        coerce_answers(cat, {"no_such_question": "yes"})


def test_unknown_birth_date_is_not_guessed(tenant_dir: Path) -> None:
    unknown = MemberInput("m1", "不詳 太郎", None, parse("年月日不詳"), 1, "世帯主")
    facts = member_facts(unknown, EVENT_DAY)
    assert facts["age_known"] is False
    assert "age" not in facts
    result = determine(compiled(tenant_dir), "tennyu", EVENT_DAY, [unknown], {"employed_insurance": False})
    kokuho = next(e for e in result.confirm if e.procedure == "kokuho")
    assert "生年月日が不詳" in kokuho.reason


# --- broken catalogues: rejected with file, key path and line ---------------------------------


def broken(tenant_dir: Path, file: str, old: str, new: str) -> str:
    path = tenant_dir / file
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    with pytest.raises(TenantConfigError) as info:
        load_tenant(tenant_dir)
    return "\n".join(str(i) for i in info.value.issues)


def test_invalid_cel_is_rejected_with_its_place(tenant_dir: Path) -> None:
    error = broken(tenant_dir, "procedures.yaml", 'when: "children.size() > 0"', 'when: "children.size( > 0"')
    assert "procedures.yaml: procedures[1].when (line " in error
    assert "CEL の構文エラー" in error


def test_reference_to_an_unknown_question_is_rejected(tenant_dir: Path) -> None:
    error = broken(tenant_dir, "procedures.yaml", 'when: "has_dog"', 'when: "has_cat"')
    assert "procedures[5].when" in error
    assert "has_cat" in error


def test_member_fact_outside_member_scope_is_rejected(tenant_dir: Path) -> None:
    error = broken(tenant_dir, "procedures.yaml", 'when: "has_dog"', 'when: "member.age > 3"')
    assert "scope: member" in error


def test_unknown_department_and_form_are_rejected(tenant_dir: Path) -> None:
    error = broken(tenant_dir, "procedures.yaml", "department: kodomo", "department: kyouiku")
    assert "procedures[1].department" in error
    assert "担当課「kyouiku」" in error
    error = broken(tenant_dir, "procedures.yaml", "forms: [juumin_idou]", "forms: [juumin_idou, ghost_form]")
    assert "procedures[0].forms[1]" in error
    assert "様式「ghost_form」" in error


def test_question_loop_is_rejected(tenant_dir: Path) -> None:
    guidance = tenant_dir / "guidance.yaml"
    text = guidance.read_text(encoding="utf-8")
    text = text.replace(
        "{id: wants_inkan, text: 印鑑登録をしますか, type: yes_no}",
        '{id: wants_inkan, text: 印鑑登録をしますか, type: yes_no, ask_when: "has_dog"}',
    ).replace('ask_when: "household.size > 0"', 'ask_when: "wants_inkan"')
    guidance.write_text(text, encoding="utf-8")
    with pytest.raises(TenantConfigError) as info:
        load_tenant(tenant_dir)
    error = "\n".join(str(i) for i in info.value.issues)
    assert "質問の条件が循環しています" in error
    assert "guidance.yaml: questions[" in error


def test_reason_placeholder_without_value_is_rejected(tenant_dir: Path) -> None:
    error = broken(
        tenant_dir, "procedures.yaml", 'reason: "18歳以下の子 {n}人（{ages}）"', 'reason: "子 {count}人"'
    )
    assert "procedures[1]" in error
    assert "count" in error


# --- facts --------------------------------------------------------------------------------------


@given(st.dates(min_value=dt.date(1950, 1, 1), max_value=dt.date(2025, 12, 31)), st.integers(1, 80))
def test_age_fact_changes_on_the_eve_of_the_birthday(birth: dt.date, years: int) -> None:
    try:
        birthday = birth.replace(year=birth.year + years)
    except ValueError:
        birthday = dt.date(birth.year + years, 3, 1)
    member = MemberInput("m", "x", None, parse(birth.isoformat()), 1, "世帯主")
    eve = birthday - dt.timedelta(days=1)
    assert member_facts(member, eve)["age"] == years
    assert member_facts(member, eve - dt.timedelta(days=1))["age"] == years - 1


@given(st.integers(2000, 2030))
def test_school_year_boundary_between_april_first_and_second(year: int) -> None:
    first = MemberInput("a", "a", None, parse(f"{year}-04-01"), 1, "子")
    second = MemberInput("b", "b", None, parse(f"{year}-04-02"), 1, "子")
    entry = dt.date(year + 6, 4, 10)  # early in the school year the 1 April child starts school
    assert member_facts(first, entry)["grade"] == 1
    assert member_facts(second, entry)["grade"] == 0
    assert member_facts(second, entry.replace(year=year + 7))["grade"] == 1


def test_a_rule_reading_a_missing_attribute_is_to_confirm_not_a_crash(tenant_dir: Path) -> None:
    path = tenant_dir / "procedures.yaml"
    text = path.read_text(encoding="utf-8")
    old = "when: \"'マイナンバーカード' in member.attributes\""
    assert old in text
    path.write_text(
        text.replace(old, "when: \"member.attributes['マイナンバーカード'][0] == '交付済'\""),
        encoding="utf-8",
    )
    result = determine(compiled(tenant_dir), "tennyu", EVENT_DAY, FAMILY, {"has_dog": False, "wants_inkan": False,
                                                                           "employed_insurance": True})  # fmt: skip
    card = [e for e in result.needed + result.confirm if e.member in ("御坊 花子",) and "カード" in e.name]
    assert card
    assert card[0].status == "confirm"
    assert "カタログの管理者に連絡してください" in card[0].reason


# --- the event's subject: who died, who is born, whose surname changes ---------------------------

BEREAVED = [
    person("m1", "御坊 一郎", "1950-05-01", "世帯主", 国保="加入"),
    person("m2", "御坊 花子", "1952-02-02", "妻", 2, 国保="加入"),
    person("m3", "御坊 健", "1980-04-04", "子"),
]


def flagged(people: list[MemberInput], *keys: str) -> list[MemberInput]:
    return [dataclasses.replace(m, subject=m.key in keys) for m in people]


def test_without_a_named_subject_the_procedures_about_them_wait_for_the_subject_question(
    tenant_dir: Path,
) -> None:
    result = determine(compiled(tenant_dir), "shibou", EVENT_DAY, BEREAVED, {"has_moped": False})
    assert [e.procedure for e in result.needed] == ["shibou_todoke", "kasou"]
    waiting = {(e.procedure, e.member): e for e in result.confirm}
    assert set(waiting) == {("kokuho_soushitsu", "御坊 一郎"), ("kokuho_soushitsu", "御坊 花子"),
                            ("setainushi_henko", None)}  # fmt: skip
    assert all(e.questions == ["subject"] for e in waiting.values())
    assert waiting[("setainushi_henko", None)].reason.endswith("（亡くなった方を選んでください）")
    # 健 has no 国保: decided without knowing who died.
    assert ("国民健康保険 資格喪失", "御坊 健") in names(result.not_needed)
    (question,) = result.open_questions
    assert question.id == "subject"
    assert question.text == "亡くなった方はどなたですか"
    assert question.type == "choices"
    assert question.choices == [{"value": "m1", "label": "御坊 一郎（世帯主）"},
                                {"value": "m2", "label": "御坊 花子（妻）"},
                                {"value": "m3", "label": "御坊 健（子）"}]  # fmt: skip
    assert result.subject_label == "亡くなった方"
    assert result.subjects is None


def test_a_named_subject_decides_who_the_procedures_are_for(tenant_dir: Path) -> None:
    cat = compiled(tenant_dir)
    head = determine(cat, "shibou", EVENT_DAY, flagged(BEREAVED, "m1"), {"has_moped": False})
    assert [(e.procedure, e.member) for e in head.needed] == [
        ("shibou_todoke", None),
        ("kokuho_soushitsu", "御坊 一郎"),
        ("setainushi_henko", None),
        ("kasou", None),
    ]
    assert head.confirm == []
    assert head.open_questions == []
    assert next(e for e in head.needed if e.procedure == "setainushi_henko").reason == (
        "残る15歳以上の方 2人（御坊 花子・御坊 健）から新しい世帯主を届け出ます"
    )
    assert head.subjects == ["御坊 一郎"]
    assert [m["is_subject"] for m in head.members] == [True, False, False]
    wife = determine(cat, "shibou", EVENT_DAY, flagged(BEREAVED, "m2"), {"has_moped": False})
    assert [(e.procedure, e.member) for e in wife.needed] == [
        ("shibou_todoke", None),
        ("kokuho_soushitsu", "御坊 花子"),
        ("kasou", None),
    ]


def test_events_without_a_subject_make_everyone_the_subject(tenant_dir: Path) -> None:
    """転入: the household described is the people who move; a stray flag changes nothing."""
    cat = compiled(tenant_dir)
    plain = determine(cat, "tennyu", EVENT_DAY, FAMILY, {"wants_inkan": False})
    stray = determine(cat, "tennyu", EVENT_DAY, flagged(FAMILY, "m1"), {"wants_inkan": False})
    assert [m["is_subject"] for m in plain.members] == [True] * len(FAMILY)
    assert [e.as_dict() for e in plain.needed] == [e.as_dict() for e in stray.needed]
    assert plain.subject_label is None


def test_birth_takes_the_youngest_member_under_one_as_the_subject(tenant_dir: Path) -> None:
    born = dt.date(2026, 11, 18)
    family = [
        person("m1", "出生 一郎", "1990-01-01", "世帯主", 国保="加入"),
        person("m2", "出生 陽", "2025-12-20", "子"),  # 10 months: an older sibling, not the newborn
        person("m3", "出生 新", born.isoformat(), "子"),
    ]
    result = determine(compiled(tenant_dir), "shussei", EVENT_DAY, family, {})
    assert [(e.procedure, e.member) for e in result.needed] == [("shussei_todoke", None),
                                                                ("kokuho_shussei", "出生 新")]  # fmt: skip
    assert result.needed[0].reason == "出生 新の出生届"
    assert result.subjects == ["出生 新"]
    # Twins: both are the subject. A household without anyone under one: the clerk is asked.
    twins = determine(compiled(tenant_dir), "shussei", EVENT_DAY,
                      [*family, person("m4", "出生 双", born.isoformat(), "子")], {})  # fmt: skip
    assert twins.subjects == ["出生 新", "出生 双"]
    nobody = determine(compiled(tenant_dir), "shussei", EVENT_DAY, family[:1], {})
    assert [q.id for q in nobody.open_questions] == ["subject"]


def test_an_event_may_have_nobody_as_its_subject(tenant_dir: Path) -> None:
    couple = [person("m1", "婚姻 太郎", "1990-01-01", "世帯主", 印鑑登録="登録"),
              person("m2", "婚姻 花子", "1992-02-02", "妻", 2, 印鑑登録="登録")]  # fmt: skip
    cat = compiled(tenant_dir)
    asked = determine(cat, "konin", EVENT_DAY, couple, {})
    assert asked.open_questions[0].choices[-1] == {"value": "none", "label": "氏の変わる方はいない"}
    nobody = determine(cat, "konin", EVENT_DAY, [dataclasses.replace(m, subject=False) for m in couple], {})
    assert [e.procedure for e in nobody.needed] == ["konin_todoke"]
    assert nobody.subjects == []
    wife = determine(cat, "konin", EVENT_DAY, flagged(couple, "m2"), {})
    assert [e.procedure for e in wife.needed] == ["konin_todoke", "inkan_saitouroku"]


# --- 要確認 names only questions the clerk is shown ------------------------------------------------


def test_a_question_the_event_does_not_ask_is_never_named(tenant_dir: Path) -> None:
    """A procedure of 転入 and 死亡 reads a question asked only at 転入: at 死亡 nobody asks it."""
    guidance = tenant_dir / "guidance.yaml"
    guidance.write_text(guidance.read_text(encoding="utf-8").replace(
        "{id: wants_inkan, text: 印鑑登録をしますか, type: yes_no}",
        "{id: wants_inkan, text: 印鑑登録をしますか, type: yes_no, events: [tennyu]}"), encoding="utf-8")  # fmt: skip
    procedures = tenant_dir / "procedures.yaml"
    procedures.write_text(procedures.read_text(encoding="utf-8").replace(
        "    when: \"wants_inkan && adults.size() > 0\"", "    events: [tennyu, shibou]\n"
        "    when: \"wants_inkan && adults.size() > 0\"").replace(
        "  - id: inkan\n    name: 印鑑登録\n    department: shimin\n    events: [tennyu]\n",
        "  - id: inkan\n    name: 印鑑登録\n    department: shimin\n"), encoding="utf-8")  # fmt: skip
    cat = compiled(tenant_dir)
    at_death = determine(cat, "shibou", EVENT_DAY, flagged(BEREAVED, "m1"), {"has_moped": False})
    inkan = next(e for e in at_death.confirm if e.procedure == "inkan")
    assert inkan.questions == []
    assert "カタログの管理者に連絡してください" in inkan.reason
    assert [q.id for q in at_death.open_questions] == []
    at_arrival = determine(cat, "tennyu", EVENT_DAY, FAMILY, {})
    assert next(e for e in at_arrival.confirm if e.procedure == "inkan").questions == ["wants_inkan"]


def test_a_question_not_asked_in_this_household_is_never_named(tenant_dir: Path) -> None:
    guidance = tenant_dir / "guidance.yaml"
    guidance.write_text(guidance.read_text(encoding="utf-8").replace(
        'ask_when: "household.size > 0"', 'ask_when: "household.size > 3"'), encoding="utf-8")  # fmt: skip
    cat = compiled(tenant_dir)
    small = determine(
        cat, "tennyu", EVENT_DAY, FAMILY[:2], {"wants_inkan": False, "employed_insurance": True}
    )
    dog = next(e for e in small.confirm if e.procedure == "dog")
    assert dog.questions == []
    assert small.open_questions == []
    large = determine(cat, "tennyu", EVENT_DAY, FAMILY, {"wants_inkan": False, "employed_insurance": True})
    assert [q.id for q in large.open_questions] == ["has_dog"]


def test_a_rule_reading_a_question_none_of_its_events_asks_is_rejected(tenant_dir: Path) -> None:
    extra = ("  - id: moped_reason\n    name: x\n    department: shimin\n    events: [tennyu, shussei]\n"
             "    when_text: x\n    reason: '{m}'\n    values: {m: \"has_moped ? 'a' : 'b'\"}\n")  # fmt: skip
    procedures = tenant_dir / "procedures.yaml"
    procedures.write_text(procedures.read_text(encoding="utf-8") + extra, encoding="utf-8")
    with pytest.raises(TenantConfigError) as info:
        load_tenant(tenant_dir)
    error = "\n".join(str(i) for i in info.value.issues)
    assert "procedures.yaml: procedures[20].values.m (line " in error
    assert "質問「has_moped」は 死亡 でだけ質問されるため、転入・出生 では答えが得られません" in error


def test_an_ask_when_reading_a_question_of_other_events_is_rejected(tenant_dir: Path) -> None:
    error = broken(
        tenant_dir, "guidance.yaml", "events: [kobetsu]", 'events: [kobetsu]\n    ask_when: "has_moped"'
    )
    assert "guidance.yaml: questions[5].ask_when (line " in error
    assert "質問「has_moped」" in error


def test_a_question_may_not_take_a_reserved_name(tenant_dir: Path) -> None:
    error = broken(tenant_dir, "guidance.yaml", "{id: has_moped,", "{id: subjects,")
    assert "質問ID「subjects」は条件の名前として予約されています" in error


def test_a_value_waiting_for_an_answer_reads_unanswered_not_none(tenant_dir: Path) -> None:
    cat = compiled(tenant_dir)
    waiting = determine(cat, "shibou", EVENT_DAY, flagged(BEREAVED, "m1"), {})
    kasou = next(e for e in waiting.needed if e.procedure == "kasou")
    assert kasou.reason == "火葬許可（原付の名義変更: 未回答）"
    answered = determine(cat, "shibou", EVENT_DAY, flagged(BEREAVED, "m1"), {"has_moped": True})
    assert (
        next(e for e in answered.needed if e.procedure == "kasou").reason
        == "火葬許可（原付の名義変更: 必要）"
    )


# --- deadlines as the law counts ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event", "kwargs", "end"),
    [
        ("2026-05-28", {"days": 14, "count_first_day": True}, "2026-06-10"),  # 出生届: the birthday is day 1
        ("2026-05-28", {"days": 7, "count_first_day": True}, "2026-06-03"),  # 死亡届
        ("2026-05-28", {"days": 14}, "2026-06-11"),  # 民法140条: from the next day
        ("2026-01-15", {"months": 3, "count_first_day": True}, "2026-04-14"),
        ("2026-01-15", {"months": 3}, "2026-04-15"),
        ("2026-01-31", {"months": 1, "count_first_day": True}, "2026-02-28"),  # no 31 February: month end
        ("2026-01-30", {"months": 1}, "2026-02-28"),  # counting from 31 January
        ("2026-01-31", {"months": 1}, "2026-02-28"),  # from 1 February: ends on the 28th
        ("2027-11-30", {"months": 3, "count_first_day": True}, "2028-02-29"),  # leap year
        ("2027-11-29", {"months": 3, "count_first_day": True}, "2028-02-28"),
        ("2023-11-30", {"months": 3}, "2024-02-29"),  # from 1 December: to the end of February
        ("2026-10-31", {"months": 4, "count_first_day": True}, "2027-02-28"),  # across the year end
        ("2026-06-01", {"months": 24}, "2028-06-01"),  # 2年: from 2 June to 1 June, 2 years on
        ("2028-02-29", {"months": 12, "count_first_day": True}, "2029-02-28"),
    ],
)
def test_periods_count_days_and_months_as_the_law_does(event: str, kwargs: dict, end: str) -> None:  # type: ignore[type-arg]
    assert period_end(dt.date.fromisoformat(event), **kwargs) == dt.date.fromisoformat(end)


@given(st.dates(min_value=dt.date(1990, 1, 1), max_value=dt.date(2090, 12, 31)), st.integers(1, 36),
       st.booleans())  # fmt: skip
def test_a_period_of_months_ends_within_its_last_month(day: dt.date, months: int, first: bool) -> None:
    end = period_end(day, months=months, count_first_day=first)
    start = day if first else day + dt.timedelta(days=1)
    target = (start.year * 12 + start.month - 1) + months
    assert (end.year * 12 + end.month - 1) in (target - 1, target)  # the day before, or the month's end
    assert end >= day
    assert end == period_end(day, days=(end - day).days + (1 if first else 0), count_first_day=first)


def test_deadlines_in_wareki_with_the_first_day_counted(tenant_dir: Path) -> None:
    cat = compiled(tenant_dir)
    death = determine(cat, "shibou", dt.date(2026, 5, 28), flagged(BEREAVED, "m1"), {"has_moped": False})
    todoke = next(e for e in death.needed if e.procedure == "shibou_todoke")
    assert todoke.deadline == dt.date(2026, 6, 3)
    assert todoke.deadline_text == "令和8年6月3日まで（死亡の事実を知った日を含めて7日以内）"
    marriage = determine(cat, "konin", dt.date(2026, 11, 30), FAMILY[:2], {})
    konin = next(e for e in marriage.needed if e.procedure == "konin_todoke")
    assert konin.deadline == dt.date(2027, 2, 28)
    assert konin.deadline_text == "令和9年2月28日まで（当日を含めて3か月以内）"


def test_a_deadline_needs_one_period_and_only_the_date_placeholder(tenant_dir: Path) -> None:
    error = broken(tenant_dir, "procedures.yaml", "deadline: {months: 3, count_first_day: true}",
                   "deadline: {days: 3, months: 3}")  # fmt: skip
    assert "deadline needs either days or months" in error
    error = broken(tenant_dir, "procedures.yaml", "deadline: {days: 3, months: 3}",
                   'deadline: {months: 3, text: "{day}まで"}')  # fmt: skip
    assert "deadline text may use only {date}" in error


# --- certificates with copies, and their total fee ---------------------------------------------------


def test_certificate_copies_give_each_fee_and_the_total(tenant_dir: Path) -> None:
    cat = compiled(tenant_dir)
    answers = coerce_answers(cat, {"certificates": {"juminhyo": 2, "koseki": 1, "kei": "1"}})
    assert answers == {"certificates": {"juminhyo": 2, "koseki": 1, "kei": 1}}
    result = determine(cat, "shomeisho", EVENT_DAY, FAMILY[:1], answers)
    rows = [(e.procedure, e.fee, e.quantity, e.fee_total, e.fee_line) for e in result.needed]
    assert rows == [
        ("shomei_juminhyo", 300, 2, 600, "1通300円 × 2通 = 600円"),
        ("shomei_koseki", 450, 1, 450, "450円 × 1通 = 450円"),
        ("shomei_kei", None, 1, None, "無料（1通）"),
    ]
    assert result.fee_total == 1050


@pytest.mark.parametrize(
    ("raw", "typed"),
    [
        ("juminhyo:2,koseki", {"juminhyo": 2, "koseki": 1}),  # CLI --answer certificates=juminhyo:2,koseki
        (["juminhyo:3", "kei"], {"juminhyo": 3, "kei": 1}),  # the counter's form
        ({"juminhyo": 0, "koseki": 2}, {"koseki": 2}),
        ("juminhyo", {"juminhyo": 1}),
    ],
)
def test_counts_answers_are_typed(tenant_dir: Path, raw: object, typed: dict) -> None:  # type: ignore[type-arg]
    assert coerce_answers(compiled(tenant_dir), {"certificates": raw}) == {"certificates": typed}


@pytest.mark.parametrize(
    "raw", ["juminhyo:x", "juminhyo:100", "ghost:1", "juminhyo,juminhyo:2", {"juminhyo": -1}]
)
def test_bad_counts_answers_are_refused(tenant_dir: Path, raw: object) -> None:
    with pytest.raises(AnswerError):
        coerce_answers(compiled(tenant_dir), {"certificates": raw})


def test_answers_from_a_form_carry_the_copies() -> None:
    form = MultiDict([("q_certificates", "juminhyo"), ("q_certificates", "kei"), ("q_certificates:juminhyo", "2"),
                      ("q_certificates:koseki", "1"), ("q_certificates:kei", ""), ("q_has_dog", "no"),
                      ("q_subject", "12"), ("q_subject", "13"), ("other", "x")])  # fmt: skip
    assert answers_from_form(form) == {
        "certificates": ["juminhyo:2", "kei:1", "koseki:1"],
        "has_dog": "no",
        "subject": ["12", "13"],
    }
    assert answers_from_form(form, ["has_dog"]) == {"has_dog": "no"}


# --- applications outside life events (個別申請) ---------------------------------------------------


def test_individual_applications_are_an_event_of_their_own(tenant_dir: Path) -> None:
    cat = compiled(tenant_dir)
    asked = determine(cat, "kobetsu", EVENT_DAY, FAMILY[:1], {})
    assert [q.id for q in asked.open_questions] == ["applications"]
    assert asked.event_name == "個別申請"
    chosen = determine(
        cat, "kobetsu", EVENT_DAY, FAMILY[:1], coerce_answers(cat, {"applications": "inkan_boushitsu"})
    )
    assert [(e.procedure, e.forms) for e in chosen.needed] == [("inkan_boushitsu", ["juumin_idou"])]
