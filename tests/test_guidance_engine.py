"""The determiner on a small test catalogue: rules, open questions, reasons, broken catalogues."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.dates.japanese import parse
from app.guidance.engine import AnswerError, CompiledCatalogue, coerce_answers, compile_catalogue, determine
from app.guidance.facts import MemberInput, member_facts
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
