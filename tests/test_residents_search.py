"""Finding a visitor: any form of kana, old/new character forms, 和暦 birth dates, addresses."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from app.audit.models import AuditEntry
from app.audit.service import Actor, actor_var
from app.linkage.config import STANDARD
from app.linkage.importer import import_local_file
from app.residents.models import Resident
from app.residents.service import SearchInputError, SearchQuery, search, summary, view
from app.tenancy.service import registry
from tests.conftest import login, madoguchi, make_staff, tenant_session
from tests.linkage_files import number, person, write

PEOPLE = [
    person(1, 100, 氏名="髙橋　一郎", 氏名フリガナ="タカハシ イチロウ", 生年月日="1975-06-01",
           住所="大阪市東淀川区豊新2丁目1番4号"),
    person(2, 100, 世帯内順="2", 続柄="妻", 性別="2", 氏名="髙橋　花子", 氏名フリガナ="タカハシ ハナコ",
           生年月日="1978-09-15", 住所="大阪市東淀川区豊新2丁目1番4号"),
    person(3, 101, 氏名="山﨑　葛\U000e0100子", 氏名フリガナ="ヤマサキ クズコ", 生年月日="1950-01-02",
           住所="大阪市福島区大開1丁目8番1号"),
    person(4, 102, 氏名="𠮷田　太郎", 氏名フリガナ="", フリガナ確認="0", 生年月日="1990-03-03",
           住所="大阪市福島区福島5丁目"),
    person(5, 103, 氏名="転出　済子", 氏名フリガナ="テンシュツ スミコ", 住民状態="転出", 住所="大阪市福島区海老江1丁目"),
]  # fmt: skip


@pytest.fixture
def osaka_people(committed: object, tmp_path: Path) -> None:
    record = registry.get("osaka")
    assert record is not None
    outcome = import_local_file(
        record,
        write(tmp_path / "s.csv", PEOPLE, STANDARD.residents),
        actor=Actor("cli", "t"),
        standard_layout=True,
    )
    assert outcome.status == "applied", outcome.rejections


def find(**kwargs: Any) -> list[str]:
    record = registry.get("osaka")
    assert record is not None
    token = actor_var.set(Actor("staff", "1", "窓口 太郎", "counter-1"))
    try:
        with tenant_session("osaka") as session:
            result = search(session, registry.config(record), SearchQuery(**kwargs))
            session.commit()
            return [r.name for r in result.residents]
    finally:
        actor_var.reset(token)


@pytest.mark.parametrize(
    "kana", ["タカハシ", "たかはし", "ﾀｶﾊｼ", "タカハシイチロウ", "タカハシ　イチロウ", "たかはし いちろう"]
)
def test_kana_in_any_form(osaka_people: None, kana: str) -> None:
    assert "髙橋　一郎" in find(kana=kana)


@pytest.mark.parametrize("name", ["高橋", "髙橋", "高橋一郎", "高橋 一郎"])
def test_name_with_old_and_new_forms(osaka_people: None, name: str) -> None:
    assert "髙橋　一郎" in find(name=name)


def test_names_outside_the_bmp_and_with_ivs(osaka_people: None) -> None:
    assert find(name="𠮷田") == ["𠮷田　太郎"]
    assert find(name="山崎葛子") == ["山﨑　葛\U000e0100子"]  # 﨑 folded, the IVS selector ignored


@pytest.mark.parametrize("birth", ["1975-06-01", "昭和50年6月1日", "S500601", "昭和５０年６月１日"])
def test_birth_date_in_any_accepted_form(osaka_people: None, birth: str) -> None:
    assert find(birth=birth) == ["髙橋　一郎"]


def test_birth_date_search_lists_in_kana_order_and_says_when_there_is_more(
    committed: object, tmp_path: Path
) -> None:
    born = "1980-02-29"  # a leap day, several people born on it, delivered out of kana order
    kana = ["ワダ ハナ", "アベ ケン", "ナカモト ユイ", "イトウ ジュン", "カトウ アイ"]
    rows = [
        person(10 + i, 200 + i, 氏名=f"住民　{i}", 氏名フリガナ=k, 生年月日=born, 住所="大阪市北区梅田1丁目")
        for i, k in enumerate(kana)
    ]
    rows.append(
        person(
            20,
            300,
            氏名="別日　生子",
            氏名フリガナ="アイウ エオ",
            生年月日="1980-03-01",
            住所="大阪市北区梅田1丁目",
        )
    )
    record = registry.get("osaka")
    assert record is not None
    outcome = import_local_file(record, write(tmp_path / "b.csv", rows, STANDARD.residents),
                                actor=Actor("cli", "t"), standard_layout=True)  # fmt: skip
    assert outcome.status == "applied", outcome.rejections
    token = actor_var.set(Actor("staff", "1", "窓口 太郎", "counter-1"))
    try:
        with tenant_session("osaka") as session:
            config = registry.config(record)
            first = search(session, config, SearchQuery(birth="昭和55年2月29日", limit=3))
            every = search(session, config, SearchQuery(birth="S550229"))
            session.commit()
    finally:
        actor_var.reset(token)
    assert [r.kana for r in every.residents] == sorted(kana, key=lambda k: k.replace(" ", ""))
    assert [r.kana for r in first.residents] == ["アベ ケン", "イトウ ジュン", "カトウ アイ"]
    assert first.more
    assert not every.more


def test_a_result_row_shows_what_the_person_view_shows(osaka_people: None) -> None:
    record = registry.get("osaka")
    assert record is not None
    token = actor_var.set(Actor("staff", "1", "窓口 太郎", "counter-1"))
    try:
        with tenant_session("osaka") as session:
            found = search(session, registry.config(record), SearchQuery(kana="ヤマサキ"))
            listed = [summary(r) for r in found.residents]
            shown = view(session, listed[0]["id"])
            session.commit()
    finally:
        actor_var.reset(token)
    assert shown is not None
    assert listed == [summary(shown.resident)]
    assert listed[0]["birth_wareki"] == "昭和25年1月2日"


def test_address_without_the_city_and_with_dashes(osaka_people: None) -> None:
    assert sorted(find(address="東淀川区豊新2-1")) == ["髙橋　一郎", "髙橋　花子"]
    assert find(address="大阪市福島区大開１丁目") == ["山﨑　葛\U000e0100子"]


def test_criteria_combine(osaka_people: None) -> None:
    assert find(kana="タカハシ", birth="1978-09-15") == ["髙橋　花子"]


def test_people_who_left_are_found_only_when_asked(osaka_people: None) -> None:
    assert find(kana="テンシュツ") == []
    assert find(kana="テンシュツ", include_left=True) == ["転出　済子"]


def test_like_wildcards_are_literal(osaka_people: None) -> None:
    assert find(name="%") == []
    assert find(kana="_") == []


@pytest.mark.parametrize(
    ("query", "field", "message"),
    [
        ({}, "kana", "いずれかを入力"),
        ({"birth": "昭和50年"}, "birth", "生年月日"),
        ({"birth": "令和0年1月1日"}, "birth", "令和0年は存在しません"),
        ({"birth": "昭和50年 月日不詳"}, "birth", "年月日まで"),
    ],
)
def test_search_input_errors_name_the_field(
    osaka_people: None, query: dict[str, str], field: str, message: str
) -> None:
    with pytest.raises(SearchInputError) as info:
        find(**query)
    assert info.value.field == field
    assert message in str(info.value)


def test_every_search_and_view_is_audited(osaka_people: None) -> None:
    find(kana="タカハシ")
    with tenant_session("osaka") as session:
        (entry,) = session.scalars(select(AuditEntry).where(AuditEntry.action == "resident.search")).all()
        assert entry.details["criteria"] == {"kana": "タカハシ"}
        assert entry.terminal == "counter-1"
        assert entry.actor_name == "窓口 太郎"
        resident_id = entry.details["results"][0]
        token = actor_var.set(Actor("staff", "1", "窓口 太郎", "counter-1"))
        try:
            shown = view(session, resident_id, purpose="住民記録")
            session.commit()
        finally:
            actor_var.reset(token)
        assert shown is not None
        assert [m.name for m in shown.members] == ["髙橋　一郎", "髙橋　花子"]
        viewed = session.scalars(select(AuditEntry).where(AuditEntry.action == "resident.view")).one()
        assert (viewed.subject_id, viewed.purpose) == (str(resident_id), "住民記録")


def test_api_search_and_household(app: Flask, osaka_people: None) -> None:
    make_staff("osaka", "clerk")
    client = app.test_client()
    login(client, "osaka", "clerk")
    found = client.get("/api/v1/osaka/residents?kana=たかはし&purpose=住民記録").get_json()
    assert [r["name"] for r in found["residents"]] == ["髙橋　一郎", "髙橋　花子"]
    assert found["residents"][0]["birth_wareki"] == "昭和50年6月1日"
    detail = client.get(f"/api/v1/osaka/residents/{found['residents'][0]['id']}").get_json()
    assert detail["household"]["member_count"] == 2
    assert [m["relation"] for m in detail["household"]["members"]] == ["世帯主", "妻"]
    bad = client.get("/api/v1/osaka/residents?birth=昭和50年")
    assert bad.status_code == 422
    assert "生年月日" in bad.get_json()["message"]
    assert bad.get_json()["errors"]["query"]["birth"]


def test_api_unknown_resident_is_404(app: Flask, osaka_people: None) -> None:
    make_staff("osaka", "clerk")
    client = app.test_client()
    login(client, "osaka", "clerk")
    assert client.get("/api/v1/osaka/residents/999999").status_code == 404


def test_gobo_staff_cannot_reach_osaka_residents(app: Flask, osaka_people: None) -> None:
    make_staff("gobo", "clerk")
    client = app.test_client()
    login(client, "gobo", "clerk")
    assert client.get("/api/v1/osaka/residents?kana=タカハシ").status_code == 404
    # Gobo's own search never returns Osaka's people, and an Osaka id is simply not found.
    assert client.get("/api/v1/gobo/residents?kana=タカハシ").get_json()["residents"] == []
    with tenant_session("osaka") as session:
        osaka_resident = session.scalars(select(Resident.id)).first()
    assert client.get(f"/api/v1/gobo/residents/{osaka_resident}").status_code == 404


def test_web_search_page(app: Flask, osaka_people: None) -> None:
    make_staff("osaka", "clerk")
    client = app.test_client()
    login(client, "osaka", "clerk")
    page = client.get("/osaka/residents?kana=ﾀｶﾊｼ").get_data(as_text=True)
    assert "髙橋　一郎" in page
    assert "昭和50年6月1日" in page
    error = client.get("/osaka/residents?birth=きのう").get_data(as_text=True)
    assert 'aria-invalid="true"' in error
    assert "生年月日" in error


def test_cli_residents_find(osaka_people: None) -> None:
    done = madoguchi("residents", "find", "osaka", "--kana", "たかはし", "--json", timeout=60)
    assert done.returncode == 0, done.stderr
    assert [r["atena_no"] for r in json.loads(done.stdout)] == [number(1), number(2)]
    bad = madoguchi("residents", "find", "osaka", timeout=60)
    assert bad.returncode == 1
    assert "いずれかを入力" in bad.stderr


def test_cli_reorder_keeps_every_resident_and_every_search_answer(osaka_people: None) -> None:
    queries = [{"kana": "タカハシ"}, {"name": "山崎"}, {"birth": "S500601"}]
    before = [find(**q) for q in queries]
    done = madoguchi("residents", "reorder", "osaka")
    assert done.returncode == 0, done.stderr
    assert "住民5人をフリガナ順に並べ替えました" in done.stdout
    assert [find(**q) for q in queries] == before
    with tenant_session("gobo") as session:  # another tenant's residents are not touched
        assert session.scalars(select(Resident.id)).first() is None
