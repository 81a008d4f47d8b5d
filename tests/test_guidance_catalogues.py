"""The three cities' procedure catalogues (tenants/<id>/guidance.yaml, procedures.yaml, forms/catalog.yaml).

Scenario tests are written from shared/domain/procedures.md and the seeds: the household, the answers
and exactly the procedures a clerk expects, in guidance-sheet order. Structural tests keep the data
honest: every procedure can be reached, every form and question is used, every department has work,
a 要確認 always comes with its open question, and the same input gives the same output.
"""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import replace
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from app.dates.japanese import parse
from app.guidance.engine import (
    CompiledCatalogue,
    Determination,
    Entry,
    coerce_answers,
    compile_catalogue,
    determine,
)
from app.guidance.facts import MemberInput
from app.tenancy.loader import load_all

TENANTS = Path(__file__).resolve().parent.parent / "tenants"
CITIES = ("osaka", "gobo", "yamaguchi")
DAY = dt.date(2026, 6, 1)  # 令和8年6月1日


@cache
def tenants() -> dict[str, Any]:
    return load_all(TENANTS)


@cache
def compiled(city: str) -> CompiledCatalogue:
    catalogue = tenants()[city].config.catalogue
    assert catalogue is not None, f"{city} has no catalogue"
    return compile_catalogue(catalogue)


def person(name: str, birth: str, sex: str, relation: str, **attributes: str | list[str]) -> dict[str, Any]:
    values = {k: v if isinstance(v, list) else [v] for k, v in attributes.items()}
    return {
        "name": name,
        "birth": birth,
        "sex": 1 if sex == "男" else 2,
        "relation": relation,
        "attrs": values,
    }


def members(*people: dict[str, Any]) -> list[MemberInput]:
    return [
        MemberInput(f"m{i}", p["name"], None, parse(p["birth"]), p["sex"], p["relation"], p["attrs"],
                    subject=p.get("subject"))
        for i, p in enumerate(people, 1)
    ]  # fmt: skip


def subject(p: dict[str, Any]) -> dict[str, Any]:
    """The event's subject: the person who died, the newborn, whoever's surname changes."""
    return {**p, "subject": True}


def nobody(people: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Stated: nobody in the household is the event's subject."""
    return [{**p, "subject": False} for p in people]


def guide(
    city: str, event: str, people: list[dict[str, Any]], answers: dict[str, Any], on: dt.date = DAY
) -> Determination:
    catalogue = compiled(city)
    return determine(catalogue, event, on, members(*people), coerce_answers(catalogue, answers))


def needed(result: Determination) -> list[tuple[str, str | None]]:
    return [(e.procedure, e.member) for e in result.needed]


def entry(result: Determination, procedure: str, member: str | None = None) -> Entry:
    everything = [*result.needed, *result.confirm, *result.not_needed]
    return next(e for e in everything if e.procedure == procedure and e.member == member)


# --- scenarios --------------------------------------------------------------------------------------

GOBO_FAMILY = [
    person("御坊一郎", "1986-04-10", "男", "世帯主", マイナンバーカード="交付済"),
    person("御坊花子", "1988-07-20", "女", "妻", マイナンバーカード="交付済"),
    person("御坊陽", "2022-09-01", "男", "子"),  # 3歳
    person("御坊葵", "2015-11-11", "女", "子"),  # 10歳, 小5
    person("御坊トメ", "1950-01-15", "女", "母"),  # 76歳
]
GOBO_FAMILY_ANSWERS = {
    "wants_inkan": "いいえ",
    "employer_insurance": "はい",  # 夫の勤務先の健康保険（妻・子は扶養）
    "care_certified": "いいえ",
    "has_disability_book": "いいえ",
    "special_child_allowance": "いいえ",
    "single_parent": "いいえ",
    "wants_childcare": "はい",
    "has_dog": "はい",
    "has_moped": "いいえ",
}


def test_family_moving_into_gobo_with_two_children_a_parent_of_76_and_a_dog() -> None:
    result = guide("gobo", "tennyu", GOBO_FAMILY, GOBO_FAMILY_ANSWERS)

    assert needed(result) == [
        ("tennyu_todoke", None),
        ("mynumber_keizoku", "御坊一郎"),
        ("mynumber_keizoku", "御坊花子"),
        ("kouki_tennyu", "御坊トメ"),
        ("jidou_teate_nintei", None),
        ("nyuyouji_iryou", None),
        ("kodomo_iryou", None),
        ("hoikusho_moushikomi", None),
        ("boshi_tennyu", None),
        ("tennyugaku", None),
        ("inu_tennyu", None),
    ]
    assert result.confirm == []
    assert result.open_questions == []
    assert entry(result, "jidou_teate_nintei").reason == "18歳以下の子 2人（3歳・10歳）"
    assert entry(result, "nyuyouji_iryou").reason == "小学校入学前の子 1人（3歳）"
    assert entry(result, "kodomo_iryou").reason == "対象の子 1人（10歳）"
    assert entry(result, "tennyugaku").reason == "転入学する子 1人（御坊葵（小5））"
    assert entry(result, "tennyu_todoke").deadline == DAY + dt.timedelta(days=14)
    assert entry(result, "inu_tennyu").deadline == DAY + dt.timedelta(days=30)
    assert entry(result, "kouki_tennyu", "御坊トメ").reason.startswith("御坊トメ（76歳）")
    # 勤務先の健康保険: nobody joins 国保 or needs a 国民年金 届出; the parent of 76 is in 後期高齢.
    assert entry(result, "kokuho_kanyu", "御坊一郎").status == "not_needed"
    assert entry(result, "kokuho_kanyu", "御坊トメ").status == "not_needed"
    assert [d[0] for d in result.by_department()] == [
        "市民課（住民記録・戸籍・証明書）",
        "保険年金課（国保・国民年金・後期高齢者医療）",
        "福祉課（福祉医療・児童手当・障害福祉・保育）",
        "健康福祉課（母子保健・予防接種）",
        "教育委員会 教育総務課（学校校区・就学）",
        "環境衛生課（犬の登録・狂犬病予防）",
    ]


def test_unanswered_questions_are_open_and_their_procedures_wait_never_guessed() -> None:
    result = guide("gobo", "tennyu", GOBO_FAMILY, {})

    assert [q.id for q in result.open_questions] == list(GOBO_FAMILY_ANSWERS)
    # What the records and ages decide is decided; everything an answer decides waits for it.
    assert needed(result) == [
        ("tennyu_todoke", None),
        ("mynumber_keizoku", "御坊一郎"),
        ("mynumber_keizoku", "御坊花子"),
        ("kouki_tennyu", "御坊トメ"),
        ("jidou_teate_nintei", None),
        ("nyuyouji_iryou", None),
        ("kodomo_iryou", None),
        ("boshi_tennyu", None),
        ("tennyugaku", None),
    ]
    waiting = {(e.procedure, e.member): e.questions for e in result.confirm}
    assert waiting[("kokuho_kanyu", "御坊陽")] == ["employer_insurance"]
    assert ("kokuho_kanyu", "御坊トメ") not in waiting  # 76: 後期高齢, whatever the answer
    assert waiting[("inu_tennyu", None)] == ["has_dog"]
    assert waiting[("kaigo_tennyu", "御坊トメ")] == ["care_certified"]
    assert all(e.reason.startswith("要確認") for e in result.confirm)
    decides = {q.id: q.decides for q in result.open_questions}
    assert decides["employer_insurance"] == [
        "国民健康保険 加入（御坊一郎）",
        "国民健康保険 加入（御坊花子）",
        "国民健康保険 加入（御坊陽）",
        "国民健康保険 加入（御坊葵）",
        "国民年金 第1号被保険者の届出（資格取得・種別変更）（御坊一郎）",
        "国民年金 第1号被保険者の届出（資格取得・種別変更）（御坊花子）",
    ]


OSAKA_HEAD_IN_KOKUHO = [
    person("大阪太郎", "1954-03-01", "男", "世帯主",
           国保="加入", 介護保険="被保険者", 印鑑登録="登録", マイナンバーカード="交付済"),  # 72歳
    person("大阪花子", "1956-05-05", "女", "妻", 国保="加入", 介護保険="被保険者"),  # 70歳
]  # fmt: skip


def test_death_of_the_household_head_in_osaka_with_a_surviving_spouse() -> None:
    answers = {"deceased_pensioner": True, "deceased_property": True, "has_dog": False, "has_moped": False}
    head, spouse = OSAKA_HEAD_IN_KOKUHO
    result = guide("osaka", "shibou", [subject(head), spouse], answers)

    assert needed(result) == [
        ("shibou_todoke", None),
        ("kasou_kyoka", None),
        ("kokuho_soushitsu", "大阪太郎"),
        ("kokuho_setainushi_shibou", None),
        ("kokuho_sousaihi", "大阪太郎"),
        ("nenkin_mishikyu", None),
        ("kaigo_soushitsu", "大阪太郎"),
        ("souzokunin_daihyousha", None),
    ]
    assert result.open_questions == []
    # One adult remains: she becomes the head without a 世帯主変更届.
    assert entry(result, "setainushi_henko_shibou").status == "not_needed"
    assert entry(result, "setainushi_henko_shibou").reason.startswith("該当しません")
    # 喪失 and 葬祭費 come from the deceased's 資格 in the records, not from a question; the spouse keeps hers.
    assert (
        entry(result, "kokuho_soushitsu", "大阪太郎").reason
        == "大阪太郎（72歳）: 国保に加入していた方が亡くなりました"
    )
    assert entry(result, "kokuho_soushitsu", "大阪花子").status == "not_needed"
    assert entry(result, "kaigo_soushitsu", "大阪花子").status == "not_needed"
    assert (
        entry(result, "kokuho_sousaihi", "大阪太郎").reason
        == "大阪太郎さんは国保に加入していました（葬儀を行った方に葬祭費5万円）"
    )
    # 戸籍法43条: the day of death counts, so 7日以内 ends on the 7th day counting it.
    assert entry(result, "shibou_todoke").deadline == DAY + dt.timedelta(days=6)
    assert entry(result, "shibou_todoke").deadline_text.startswith(
        "令和8年6月7日まで（死亡の事実を知った日を含めて7日以内"
    )
    assert result.subjects == ["大阪太郎"]
    assert entry(result, "kokuho_setainushi_shibou").reason == "国保に加入している世帯員 1人（大阪花子）"
    counters = {d[0]: d[1] for d in result.by_department()}
    assert counters["市税事務所（固定資産税・軽自動車税）"].startswith("梅田市税事務所")


def test_death_in_osaka_of_a_head_in_late_elderly_care_with_two_adults_remaining() -> None:
    family = [
        subject(person("浪速一郎", "1946-01-10", "男", "世帯主", 後期高齢="加入",
                       介護保険=["被保険者", "要介護2"], 障害者手帳="身体障害者手帳 1級")),  # 80歳
        person("浪速和子", "1949-02-02", "女", "妻", 後期高齢="加入", 介護保険="被保険者"),
        person("浪速健", "1981-03-03", "男", "子"),
    ]  # fmt: skip
    answers = {"deceased_pensioner": True, "deceased_property": False, "has_dog": True, "has_moped": False}
    result = guide("osaka", "shibou", family, answers)

    assert needed(result) == [
        ("setainushi_henko_shibou", None),
        ("shibou_todoke", None),
        ("kasou_kyoka", None),
        ("nenkin_mishikyu", None),
        ("kouki_soushitsu", "浪速一郎"),
        ("kouki_sousaihi", "浪速一郎"),
        ("kaigo_soushitsu", "浪速一郎"),
        ("shougai_techou_henkan", "浪速一郎"),
        ("juudo_iryou_henkan", "浪速一郎"),
        ("inu_shibou", None),
    ]
    assert entry(result, "setainushi_henko_shibou").reason == (
        "残る15歳以上の世帯員 2人（浪速和子・浪速健）から新しい世帯主を届け出ます"
    )


def test_birth_in_yamaguchi_to_parents_in_national_health_insurance() -> None:
    born = dt.date(2026, 5, 28)
    family = [
        person("山口太郎", "1994-04-10", "男", "世帯主", 国保="加入", 国民年金="1号"),
        person("山口花子", "1996-07-20", "女", "妻", 国保="加入", 国民年金="1号"),
        person("山口蓮", born.isoformat(), "男", "子"),
    ]
    result = guide("yamaguchi", "shussei", family, {"single_parent": False}, on=born)

    assert needed(result) == [
        ("shussei_todoke", None),
        ("kokuho_kanyu", "山口蓮"),
        ("shussan_ichijikin", None),
        ("jidou_teate_nintei", None),
        ("kodomo_iryou", None),
    ]
    assert result.open_questions == []
    assert entry(result, "jidou_teate_nintei").reason == "18歳以下の子 1人（0歳）"
    assert entry(result, "jidou_teate_nintei").deadline == born + dt.timedelta(days=15)
    assert entry(result, "shussei_todoke").deadline == dt.date(2026, 6, 10)  # 生まれた日を含めて14日
    assert entry(result, "shussan_ichijikin").reason == "国保に加入している母（山口花子）の出産"
    assert entry(result, "shussei_todoke").forms == []  # 戸籍届: guidance only in Yamaguchi's scope
    assert entry(result, "kokuho_kanyu", "山口太郎").status == "not_needed"  # already in 国保


def test_second_child_born_in_yamaguchi_changes_the_allowance_instead_of_a_new_claim() -> None:
    born = dt.date(2026, 5, 28)
    family = [
        person("山口太郎", "1994-04-10", "男", "世帯主", 児童手当="受給者"),
        person("山口花子", "1996-07-20", "女", "妻"),
        person("山口結", "2021-02-01", "女", "子"),
        person("山口蓮", born.isoformat(), "男", "子"),
    ]
    result = guide("yamaguchi", "shussei", family, {"single_parent": False}, on=born)

    assert needed(result) == [
        ("shussei_todoke", None),
        ("jidou_teate_gakukaitei", None),
        ("kodomo_iryou", None),
    ]
    assert entry(result, "jidou_teate_gakukaitei").reason == "18歳以下の子 2人（5歳・0歳）になります"
    assert entry(result, "kodomo_iryou").reason == "対象の子 2人（5歳・0歳）"


@pytest.mark.parametrize(
    ("city", "chosen", "expected"),
    [
        ("osaka", "juminhyo,koseki_zenbu",
         [("shomei_juminhyo", 300, "1通300円"), ("shomei_koseki_zenbu", 450, "1通450円")]),
        ("gobo", ["inkan", "juminhyo"],
         [("shomei_juminhyo", 300, "1通300円"), ("shomei_inkan", 300, "1通300円")]),
        ("yamaguchi", ["kei_shaken", "koseki_zenbu", "shotoku"],
         [("shomei_koseki_zenbu", 450, "1通450円"), ("shomei_shotoku", 300, "1通300円（1年度分）"),
          ("shomei_kei_shaken", None, "無料")]),
    ],
)  # fmt: skip
def test_certificate_only_visit_lists_the_chosen_certificates_with_their_fees(
    city: str, chosen: str | list[str], expected: list[tuple[str, int | None, str]]
) -> None:
    visitor = [person("証明一郎", "1970-01-01", "男", "世帯主", 印鑑登録="登録")]
    result = guide(city, "shomeisho", visitor, {"certificates": chosen})

    assert [(e.procedure, e.fee, e.fee_text) for e in result.needed] == expected
    assert result.confirm == []
    assert result.open_questions == []
    assert all(e.forms for e in result.needed)


def test_certificate_only_visit_without_a_choice_asks_which_certificates() -> None:
    result = guide("osaka", "shomeisho", [person("証明一郎", "1970-01-01", "男", "世帯主")], {})
    assert result.needed == []
    assert [q.id for q in result.open_questions] == ["certificates"]
    assert len(result.confirm) == len(result.open_questions[0].decides) == 13


def test_moving_within_osaka() -> None:
    family = [
        person(
            "淀川誠",
            "1981-05-05",
            "男",
            "世帯主",
            国保="加入",
            マイナンバーカード="交付済",
            児童手当="受給者",
        ),
        person("淀川恵", "1983-06-06", "女", "妻", 国保="加入", マイナンバーカード="交付済"),
        person("淀川翔", "2015-09-09", "男", "子", 国保="加入", 学校="大阪市立豊里小学校"),
    ]
    result = guide("osaka", "tenkyo", family, {"school_district_changes": True, "has_dog": True})

    assert needed(result) == [
        ("tenkyo_todoke", None),
        ("mynumber_kenmen", "淀川誠"),
        ("mynumber_kenmen", "淀川恵"),
        ("tenko_tenkyo", None),
        ("kokuho_henkou", None),
        ("jidou_teate_henkou", None),
        ("kodomo_iryou_henkou", None),
        ("inu_tenkyo", None),
    ]
    assert entry(result, "tenko_tenkyo").reason == "校区が変わる子 1人（淀川翔（小5））"
    assert entry(result, "kokuho_henkou").reason == "国保に加入している方 3人（淀川誠・淀川恵・淀川翔）"
    assert "転居する方全員のマイナンバーカード" in entry(result, "tenkyo_todoke").bring


def test_moving_out_of_yamaguchi() -> None:
    family = [
        person(
            "山口一",
            "1984-04-10",
            "男",
            "世帯主",
            国保="加入",
            児童手当="受給者",
            マイナンバーカード="交付済",
        ),
        person("山口幸", "1986-07-20", "女", "妻", 国保="加入"),
        person("山口蓮", "2016-05-28", "男", "子", 国保="加入", 学校="山口市立白石小学校"),
        person("山口正", "1944-02-02", "男", "父", 後期高齢="加入", 介護保険=["被保険者", "要介護1"]),
    ]
    result = guide("yamaguchi", "tenshutsu", family, {})

    assert needed(result) == [
        ("tenshutsu_todoke", None),
        ("kokuho_soushitsu", "山口一"),
        ("kokuho_soushitsu", "山口幸"),
        ("kokuho_soushitsu", "山口蓮"),
        ("kouki_soushitsu", "山口正"),
        ("jidou_teate_shoumetsu", None),
        ("kodomo_iryou_henkan", None),
        ("tenko_tenshutsu", None),
        ("kaigo_soushitsu", "山口正"),
    ]
    assert result.open_questions == []
    assert result.confirm == []
    assert any("転入届の特例" in item for item in entry(result, "tenshutsu_todoke").bring)


def test_marriage_in_gobo_of_a_single_mother_who_joins_her_husbands_insurance() -> None:
    family = [
        person("日高健太", "1996-01-01", "男", "世帯主", マイナンバーカード="交付済"),
        subject(person("日高美咲", "1998-02-02", "女", "妻", 国保="加入", マイナンバーカード="交付済",
                       印鑑登録="登録", 児童扶養手当="受給者", 児童手当="受給者")),  # her surname changes
        person("日高陽菜", "2021-03-03", "女", "子", 国保="加入"),
    ]  # fmt: skip
    result = guide("gobo", "konin", family, {"employer_insurance": True})

    assert needed(result) == [
        ("mynumber_kenmen", "日高美咲"),
        ("inkan_saitouroku", None),
        ("konin_todoke", None),
        ("kokuho_soushitsu_konin", "日高美咲"),
        ("kokuho_soushitsu_konin", "日高陽菜"),
        ("jidou_teate_henkou", None),
        ("jidou_fuyou_soushitsu", None),
    ]
    assert result.open_questions == []
    assert entry(result, "mynumber_kenmen", "日高健太").status == "not_needed"  # his name does not change
    assert entry(result, "kokuho_henkou").status == "not_needed"  # she leaves 国保 instead


def test_divorce_in_osaka_leaves_a_single_mother_with_two_children() -> None:
    family = [
        subject(
            person(
                "北村由美",
                "1991-04-04",
                "女",
                "世帯主",
                国民年金="3号",
                マイナンバーカード="交付済",
                印鑑登録="登録",
            )
        ),  # she returns to her former surname
        person("北村大翔", "2018-01-20", "男", "子"),
        person("北村結衣", "2022-03-15", "女", "子"),
    ]
    answers = {"keep_surname": False, "employer_insurance": False, "single_parent": True}
    result = guide("osaka", "rikon", family, answers)

    assert needed(result) == [
        ("mynumber_kenmen", "北村由美"),
        ("inkan_saitouroku", None),
        ("rikon_todoke", None),
        ("kokuho_kanyu", "北村由美"),
        ("kokuho_kanyu", "北村大翔"),
        ("kokuho_kanyu", "北村結衣"),
        ("nenkin_1gou", "北村由美"),
        ("jidou_teate_nintei", None),
        ("hitorioya_iryou", None),
        ("jidou_fuyou", None),
    ]
    assert entry(result, "jidou_teate_nintei").reason == "18歳以下の子 2人（8歳・4歳）"
    assert entry(result, "nenkin_1gou", "北村由美").reason == (
        "北村由美（35歳）: 離婚で第3号被保険者（配偶者の扶養）から外れます"
    )
    assert entry(result, "kokuho_kanyu", "北村結衣").reason == (
        "北村結衣（4歳）: 扶養から外れ、勤務先の健康保険に加入しない75歳未満の方です"
    )
    assert entry(result, "konshi_zokushou").status == "not_needed"
    assert (
        "前の健康保険の資格喪失証明書（離婚で扶養から外れた場合）"
        in entry(result, "kokuho_kanyu", "北村由美").bring
    )


def test_the_same_input_gives_the_same_ordered_output() -> None:
    def run() -> list[list[dict[str, Any]]]:
        catalogue = compile_catalogue(tenants()["gobo"].config.catalogue)  # a fresh compilation too
        result = determine(catalogue, "tennyu", DAY, members(*GOBO_FAMILY), coerce_answers(catalogue, {}))
        return [
            [e.as_dict() for e in part] for part in (result.needed, result.confirm, result.not_needed)
        ] + [[q.__dict__ for q in result.open_questions]]

    assert run() == run()
    first = guide("gobo", "tennyu", GOBO_FAMILY, GOBO_FAMILY_ANSWERS)
    again = guide("gobo", "tennyu", list(GOBO_FAMILY), dict(reversed(list(GOBO_FAMILY_ANSWERS.items()))))
    assert [e.as_dict() for e in first.needed] == [e.as_dict() for e in again.needed]


def test_death_in_osaka_of_one_of_two_adult_children_concerns_only_that_child() -> None:
    """Two members are 子: only the one named as the subject died (a relation alone could not tell)."""
    family = [
        person("淀川父", "1958-03-03", "男", "世帯主", 国保="加入"),
        person("淀川母", "1960-04-04", "女", "妻", 国保="加入"),
        person("淀川一", "1990-05-05", "男", "子", 国保="加入", 国民年金="1号", 障害者手帳="身体障害者手帳 1級"),
        subject(person("淀川二", "1994-06-06", "男", "子", 国保="加入", 国民年金="1号",
                       障害者手帳="身体障害者手帳 1級")),
    ]  # fmt: skip
    answers = {"deceased_pensioner": False, "deceased_property": False, "has_dog": False, "has_moped": False}
    result = guide("osaka", "shibou", family, answers)

    assert needed(result) == [
        ("shibou_todoke", None),
        ("kasou_kyoka", None),
        ("kokuho_soushitsu", "淀川二"),
        ("kokuho_sousaihi", "淀川二"),
        ("nenkin_shibou_ichijikin", None),
        ("shougai_techou_henkan", "淀川二"),
        ("juudo_iryou_henkan", "淀川二"),
    ]
    assert result.confirm == []
    assert result.open_questions == []
    for procedure in ("kokuho_soushitsu", "kokuho_sousaihi", "shougai_techou_henkan", "juudo_iryou_henkan"):
        assert entry(result, procedure, "淀川一").status == "not_needed", procedure
    assert entry(result, "setainushi_henko_shibou").status == "not_needed"  # the head is alive
    assert entry(result, "kokuho_setainushi_shibou").status == "not_needed"


def test_death_in_osaka_without_naming_who_died_asks_it_first() -> None:
    answers = {"deceased_pensioner": False, "deceased_property": False, "has_dog": False, "has_moped": False}
    result = guide("osaka", "shibou", OSAKA_HEAD_IN_KOKUHO, answers)

    assert needed(result) == [("shibou_todoke", None), ("kasou_kyoka", None)]
    question = result.open_questions[0]
    assert question.id == "subject"
    assert question.text == "亡くなった方はどなたですか"
    assert [c["label"] for c in question.choices] == ["大阪太郎（世帯主）", "大阪花子（妻）"]
    assert [q.id for q in result.open_questions] == ["subject"]
    assert {e.procedure for e in result.confirm} >= {"kokuho_soushitsu", "kokuho_sousaihi", "kaigo_soushitsu"}
    assert all(e.questions == ["subject"] for e in result.confirm)


def test_birth_in_yamaguchi_with_an_older_baby_in_the_household() -> None:
    """The newborn is the subject, not every member under one (a sibling born 11 months earlier)."""
    born = dt.date(2026, 5, 28)
    family = [
        person("山口太郎", "1994-04-10", "男", "世帯主", 国保="加入"),
        person("山口花子", "1996-07-20", "女", "妻", 国保="加入"),
        person("山口結", "2025-06-20", "女", "子", 国保="加入"),  # 11 months, already in 国保
        person("山口蓮", born.isoformat(), "男", "子"),
    ]
    result = guide("yamaguchi", "shussei", family, {"single_parent": False}, on=born)

    assert [m for p, m in needed(result) if p == "kokuho_kanyu"] == ["山口蓮"]
    assert result.subjects == ["山口蓮"]
    assert entry(result, "shussei_todoke").deadline_text == "令和8年6月10日まで（生まれた日を含めて14日以内）"


@pytest.mark.parametrize("city", CITIES)
def test_months_deadlines_end_on_the_calendar_day_the_law_says(city: str) -> None:
    """婚氏続称: 3 months from the day of divorce (counted), ending at February's end in a leap year."""
    divorced = dt.date(2027, 11, 30)
    family = [subject(person("離婚由美", "1991-04-04", "女", "世帯主"))]
    result = guide(city, "rikon", family, {"keep_surname": True, "employer_insurance": True,
                                            "single_parent": False}, on=divorced)  # fmt: skip
    konshi = entry(result, "konshi_zokushou")
    assert konshi.deadline == dt.date(2028, 2, 29)
    assert konshi.deadline_text == "令和10年2月29日まで（離婚の日から3か月以内）"
    todoke = entry(result, "rikon_todoke")
    assert todoke.deadline == dt.date(2027, 12, 9)  # 裁判離婚: 10 days counting the day it became final
    assert "令和9年12月9日まで" in (todoke.deadline_text or "")


@pytest.mark.parametrize(
    ("city", "chosen", "rows", "total"),
    [
        ("osaka", {"juminhyo": 2, "koseki_zenbu": 1, "kei_shaken": 1},
         [("shomei_juminhyo", 2, 600, "1通300円 × 2通 = 600円"), ("shomei_koseki_zenbu", 1, 450, "1通450円 × 1通 = 450円"),
          ("shomei_kei_shaken", 1, None, "無料（1通）")], 1050),
        ("gobo", "inkan:3,juminhyo", [("shomei_juminhyo", 1, 300, "1通300円 × 1通 = 300円"),
                                      ("shomei_inkan", 3, 900, "1通300円 × 3通 = 900円")], 1200),
        ("yamaguchi", ["joseki:2", "shotoku"], [("shomei_joseki", 2, 1500, "1通750円 × 2通 = 1,500円"),
                                                ("shomei_shotoku", 1, 300, "1通300円（1年度分） × 1通 = 300円")], 1800),
    ],
)  # fmt: skip
def test_certificate_copies_give_each_fee_and_the_total(
    city: str, chosen: Any, rows: list[tuple[str, int, int | None, str]], total: int
) -> None:
    visitor = [person("証明一郎", "1970-01-01", "男", "世帯主", 印鑑登録="登録")]
    result = guide(city, "shomeisho", visitor, {"certificates": chosen})

    assert [(e.procedure, e.quantity, e.fee_total, e.fee_line) for e in result.needed] == rows
    assert result.fee_total == total


@pytest.mark.parametrize(
    ("city", "expected"),
    [
        ("osaka", [("inkan_touroku", ["inkan_touroku_shinsei"]), ("inkan_boushitsu", ["inkan_haishi_todoke"]),
                   ("mynumber_boushitsu", []), ("kokuho_saikoufu", []), ("jidou_fuyou_genkyou", ["jidou_fuyou_genkyou"]),
                   ("inu_saikoufu", [])]),
        ("gobo", [("inkan_touroku", ["inkan_touroku_shinsei"]), ("inkan_boushitsu", ["inkan_boushitsu_todoke"]),
                  ("mynumber_boushitsu", []), ("kokuho_saikoufu", []), ("jidou_fuyou_genkyou", ["jidou_fuyou_genkyou"])]),
        ("yamaguchi", [("inkan_touroku", ["inkan_touroku_shinsei"]), ("inkan_boushitsu", ["inkan_haishi_todoke"]),
                       ("mynumber_boushitsu", []), ("kokuho_saikoufu", []), ("inu_saikoufu", [])]),
    ],
)  # fmt: skip
def test_individual_applications_outside_life_events(
    city: str, expected: list[tuple[str, list[str]]]
) -> None:
    visitor = [person("個別一郎", "1970-01-01", "男", "世帯主")]
    asked = guide(city, "kobetsu", visitor, {})
    assert [q.id for q in asked.open_questions] == ["applications"]
    assert asked.needed == []
    everything = [c["value"] for c in asked.open_questions[0].choices]
    result = guide(city, "kobetsu", visitor, {"applications": everything})
    assert sorted((e.procedure, e.forms) for e in result.needed) == sorted(expected)
    lost = guide(city, "kobetsu", visitor, {"applications": "inkan_boushitsu"})
    assert [e.name for e in lost.needed] == ["印鑑登録証・登録印の亡失届（印鑑登録の廃止）"]


# --- structure: every city ---------------------------------------------------------------------------

# Households that between them meet every condition of every catalogue: one with every 資格 the front
# linkage knows, the same ages without any, a couple without children, and a single young adult.
RICH = [
    person("全部太郎", "1981-05-05", "男", "世帯主", 国保="加入", 国民年金="1号", 印鑑登録="登録",
           マイナンバーカード="交付済", 児童手当="受給者", 障害者手帳="身体障害者手帳 1級"),
    person("全部花子", "1983-06-06", "女", "妻", 国保="加入", 国民年金="3号", 印鑑登録="登録",
           マイナンバーカード="交付済", 児童扶養手当="受給者"),
    person("全部新", DAY.isoformat(), "男", "子", 国保="加入"),
    person("全部桜", "2022-01-10", "女", "子", 国保="加入"),
    person("全部翔", "2015-09-09", "男", "子", 国保="加入", 学校="市立小学校"),
    person("全部凛", "2012-10-10", "女", "子", 国保="加入", 学校="市立中学校"),
    person("全部健", "2009-12-12", "男", "子", 国保="加入"),
    person("全部正", "1945-03-03", "男", "父", 後期高齢="加入", 介護保険=["被保険者", "要介護2"],
           マイナンバーカード="交付済", 障害者手帳="療育手帳 A"),
    person("全部梅", "1955-04-04", "女", "母", 国保="加入", 介護保険="被保険者"),
]  # fmt: skip
PLAIN = [{**p, "attrs": {}} for p in RICH]
COUPLE = [
    person("二人一郎", "1976-07-07", "男", "世帯主", 国保="加入", 国民年金="1号"),
    person("二人二葉", "1978-08-08", "女", "妻", 国保="加入", 国民年金="1号"),
]
SINGLE = [person("単身一人", "2001-09-09", "男", "世帯主")]
HOUSEHOLDS = {"rich": RICH, "plain": PLAIN, "couple": COUPLE, "single": SINGLE}


def answer_sets(catalogue: CompiledCatalogue, event: str) -> list[dict[str, Any]]:
    """All yes/no answers yes, then all no, crossed with every value of each choice question."""
    asked = [q.spec for q in catalogue.questions.values() if not q.spec.events or event in q.spec.events]
    choices = [q for q in asked if q.type == "choice"]
    sets = []
    for flag, values in itertools.product(
        (True, False), itertools.product(*[q.choices or [] for q in choices])
    ):
        answers: dict[str, Any] = {q.id: flag for q in asked if q.type == "yes_no"}
        answers |= {q.id: [c.value for c in q.choices or []] for q in asked if q.type == "choices"}
        answers |= {q.id: {c.value: 2 for c in q.choices or []} for q in asked if q.type == "counts"}
        answers |= {q.id: c.value for q, c in zip(choices, values, strict=True)}
        sets.append(answers)
    return sets


def subject_choices(event: Any, people: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Each member in turn as the event's subject, and nobody — for events that name a subject."""
    if event.subject is None:
        return [people]
    return [nobody(people)] + [
        [{**p, "subject": i == j} for j, p in enumerate(people)] for i in range(len(people))
    ]


@pytest.mark.parametrize("city", CITIES)
def test_every_procedure_is_reachable_by_some_event_and_reasons_are_filled_in(city: str) -> None:
    catalogue = compiled(city)
    reached: set[str] = set()
    for event in catalogue.catalogue.events:
        for household in HOUSEHOLDS.values():
            for people, answers in itertools.product(subject_choices(event, household),
                                                     answer_sets(catalogue, event.code)):  # fmt: skip
                result = determine(catalogue, event.code, DAY, members(*people), answers)
                assert result.confirm == [], (event.code, [e.procedure for e in result.confirm])
                for e in result.needed:
                    reached.add(e.procedure)
                    assert "None" not in e.reason, (e.procedure, e.reason)
                    assert "未回答" not in e.reason, (e.procedure, e.reason)
                    assert "不明" not in e.reason, (e.procedure, e.reason)
                    assert "{" not in e.reason, (e.procedure, e.reason)
                    assert e.counter
    assert reached == {p.id for p in catalogue.catalogue.procedures}


@pytest.mark.parametrize("city", CITIES)
def test_a_waiting_procedure_always_comes_with_its_open_question(city: str) -> None:
    """With no answers, and with every answer but one, each 要確認 names only questions shown as open."""
    catalogue = compiled(city)
    for event in catalogue.catalogue.events:
        for people in (RICH, PLAIN):
            full = answer_sets(catalogue, event.code)[0]
            partial = [{}] + [{k: v for k, v in full.items() if k != left_out} for left_out in full]
            for answers in partial:
                result = determine(catalogue, event.code, DAY, members(*people), answers)
                open_ids = {q.id for q in result.open_questions}
                for e in result.confirm:
                    assert e.questions, (event.code, e.procedure)
                    assert set(e.questions) <= open_ids, (event.code, e.procedure, e.questions)
                    assert not set(e.questions) & set(answers)
                assert open_ids <= {q for e in result.confirm for q in e.questions}


@pytest.mark.parametrize("city", CITIES)
def test_a_context_of_only_the_names_the_events_rules_read_decides_the_same(city: str) -> None:
    """The contexts hold only the facts the event's rules read (``reads``, ``member_reads``): the same
    determination as with every fact, answered or not, whoever the subject is."""
    catalogue = compiled(city)
    everything = replace(catalogue, reads={}, member_reads={})
    for event in catalogue.catalogue.events:
        for household in (RICH, PLAIN, SINGLE):
            for people in [*subject_choices(event, household)[:3], household]:  # and unnamed
                for answers in ({}, answer_sets(catalogue, event.code)[0]):
                    on = members(*people)
                    assert determine(catalogue, event.code, DAY, on, answers) == determine(
                        everything, event.code, DAY, on, answers
                    ), (event.code, answers)


@pytest.mark.parametrize("city", CITIES)
def test_every_form_question_and_department_is_used(city: str) -> None:
    catalogue = compiled(city)
    spec = catalogue.catalogue
    named = {f for p in spec.procedures for f in p.forms}
    assert named == {f.id for f in spec.forms}, "forms/catalog.yaml lists exactly the forms procedures name"
    assert {p.department for p in spec.procedures} == {d.id for d in spec.departments}
    read = set()
    for proc in catalogue.procedures:
        read |= proc.when.questions
        read |= {q for rule in proc.values.values() for q in rule.questions}
    assert read == set(catalogue.questions), "every question decides some procedure"
    for proc in catalogue.procedures:  # a procedure only waits for questions asked at its events
        for question in proc.when.questions:
            events = catalogue.questions[question].spec.events
            assert events is None or set(events) & set(proc.spec.events), (proc.spec.id, question)
    assert {e.code for e in spec.events} == {
        "tennyu", "tenkyo", "tenshutsu", "shussei", "shibou", "konin", "rikon", "setai_henko", "shomeisho",
        "kobetsu",  # 個別申請: the extension of SPEC's codes
    }  # fmt: skip
    assert {e.code: e.subject for e in spec.events if e.subject} == {
        "shussei": "生まれた子", "shibou": "亡くなった方", "konin": "氏が変わる方", "rikon": "氏が変わる方"
    }  # fmt: skip


def test_catalogue_sizes_follow_the_seeds() -> None:
    sizes = {city: len(compiled(city).catalogue.procedures) for city in CITIES}
    assert sizes["osaka"] >= 60  # seed 000 §8(3)イ: 60 手続き程度 for the model wards
    assert len(compiled("yamaguchi").catalogue.forms) >= 30  # seed 004: 50 様式程度 in year 1
    assert all(size > 50 for size in sizes.values())


def test_gobo_marks_its_ten_city_specific_forms() -> None:
    """Seed 002 §4-6(2): up to 10 city-specific forms; the catalogue marks which (ids prefixed gobo_)."""
    text = (TENANTS / "gobo" / "forms" / "catalog.yaml").read_text(encoding="utf-8")
    marked = [
        line.split("id: ")[1].split(",")[0]
        for line in text.splitlines()
        if "市独自様式" in line and "id:" in line
    ]
    assert len(marked) == 10
    assert all(m.startswith("gobo_") for m in marked)
    assert {f.id for f in compiled("gobo").catalogue.forms if f.id.startswith("gobo_")} == set(marked)


def test_yamaguchi_departments_all_sit_at_the_one_stop_counters() -> None:
    office = tenants()["yamaguchi"].config.tenant.offices[0]
    counters = {c.name for c in office.counters}
    for department in compiled("yamaguchi").catalogue.departments:
        assert department.office == office.id
        assert any(name in department.counter for name in counters), department.counter


def test_osaka_names_the_tax_office_that_is_not_the_ward_office() -> None:
    departments = {d.id: d for d in compiled("osaka").catalogue.departments}
    assert "区役所ではありません" in departments["shizei"].counter
    assert {"juumin", "hoken_nenkin", "kosodate", "fukushi"} <= set(departments)
