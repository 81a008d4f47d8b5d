"""Front-linkage import: complete or nothing, row-by-row reports in Japanese, each city's layout."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from app.audit import Actor
from app.dates.japanese import parse
from app.linkage.config import STANDARD
from app.linkage.importer import ImportOutcome, import_local_file
from app.linkage.models import ImportBatch, ImportRejection
from app.residents.models import Household, Resident
from app.residents.service import summary
from app.tenancy.service import registry
from tests.conftest import ROOT, madoguchi, tenant_session
from tests.linkage_files import number, person, render, write

ACTOR = Actor("cli", "test")


def run(tenant: str, path: Path, **kwargs: object) -> ImportOutcome:
    record = registry.get(tenant)
    assert record is not None
    return import_local_file(record, path, actor=ACTOR, **kwargs)  # type: ignore[arg-type]


def layout(tenant: str):  # type: ignore[no-untyped-def]
    record = registry.get(tenant)
    assert record is not None
    return registry.config(record).linkage.residents


def residents(tenant: str) -> dict[str, Resident]:
    with tenant_session(tenant) as session:
        return {r.atena_no: r for r in session.scalars(select(Resident))}


def family(start: int = 1, household: int = 900) -> list[dict[str, str]]:
    return [
        person(start, household, 氏名="御坊　一郎", 氏名フリガナ="ゴボウ イチロウ", 生年月日="1975-06-01"),
        person(start + 1, household, 世帯内順="2", 氏名="御坊　花子", 氏名フリガナ="ゴボウ ハナコ", 性別="2",
               続柄="妻", 生年月日="1978-09-15"),
        person(start + 2, household, 世帯内順="3", 氏名="御坊　翔", 氏名フリガナ="ゴボウ ショウ", 続柄="子",
               生年月日="2016-04-01"),
    ]  # fmt: skip


def full(tmp_path: Path, tenant: str, rows: list[dict[str, str]], name: str | None = None) -> Path:
    names = {"osaka": "JUKI_FULL_20261121.csv", "gobo": "GOBO_JUKI_ZEN_20261121.csv", "yamaguchi": "full.tsv"}
    return write(tmp_path / (name or names[tenant]), rows, layout(tenant))


# --- encodings and shapes ---------------------------------------------------------------------


@pytest.mark.parametrize("bom", [True, False])
def test_utf8_with_and_without_bom(committed: object, tmp_path: Path, bom: bool) -> None:
    body = render(family(), STANDARD.residents)
    path = tmp_path / "standard.csv"
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + body)
    outcome = run("gobo", path, standard_layout=True)
    assert outcome.status == "applied", outcome.rejections
    assert outcome.counts["inserted"] == 3
    assert {r.name for r in residents("gobo").values()} == {"御坊　一郎", "御坊　花子", "御坊　翔"}


def test_cp932_with_nec_and_ibm_extension_characters(committed: object, tmp_path: Path) -> None:
    # Osaka's variant: cp932, era-code dates, renamed columns, check digits. ① is an NEC special
    # character, 髙 and 﨑 are IBM extensions: shift_jis cannot decode them, cp932 must.
    rows = [
        person(1, 50, 氏名="髙橋　①子", 氏名フリガナ="タカハシ マルコ", 住所="大阪市東淀川区豊新2丁目1番4号"),
        person(2, 51, 氏名="山﨑　一", 氏名フリガナ="ヤマサキ ハジメ", 住所="大阪市福島区大開1丁目8番1号"),
    ]
    path = full(tmp_path, "osaka", rows)
    # Write 髙 as the IBM extension code (FB FC) rather than Python's NEC-selected one (EE E0).
    path.write_bytes(path.read_bytes().replace(b"\xee\xe0", b"\xfb\xfc"))
    assert b"\xfb\xfc" in path.read_bytes()
    assert b"\x87\x40" in path.read_bytes()
    outcome = run("osaka", path)
    assert outcome.status == "applied", outcome.rejections
    stored = residents("osaka")
    assert stored[number(1)].name == "髙橋　①子"
    assert stored[number(1)].name_search == "高橋1子"  # variant folding and NFKC for search only
    assert stored[number(2)].address_search == "福島区大開1-8-1"
    assert stored[number(1)].birth["text"] == "S550402"


def test_crlf_and_a_multiline_katagaki_with_comma(committed: object, tmp_path: Path) -> None:
    rows = family()
    rows[0]["方書"] = "コーポ御坊, 2階\n201号室"
    path = full(tmp_path, "gobo", rows)
    assert b"\r\n" in path.read_bytes()
    outcome = run("gobo", path)
    assert outcome.status == "applied", outcome.rejections
    assert residents("gobo")[number(1)].address_extra == "コーポ御坊, 2階\n201号室"


def test_yamaguchi_tab_separated_layout(committed: object, tmp_path: Path) -> None:
    outcome = run("yamaguchi", full(tmp_path, "yamaguchi", family()))
    assert outcome.status == "applied", outcome.rejections
    assert outcome.mode == "full"


# --- rejections: file, line, column, value, reason --------------------------------------------


def rejection(outcome: ImportOutcome, code: str):  # type: ignore[no-untyped-def]
    found = [r for r in outcome.rejections if r.code == code]
    assert found, [r.__dict__ for r in outcome.rejections]
    return found[0]


def test_unmapped_private_use_character_is_rejected_with_its_column(
    committed: object, tmp_path: Path
) -> None:
    rows = family()
    rows[1]["氏名"] = "御坊　\ue123子"
    # Osaka maps U+E000 to 𠮷; U+E123 is not in its table.
    rows[0]["氏名"] = "\ue000田　太郎"
    outcome = run("osaka", full(tmp_path, "osaka", [{**r, "住所": "大阪市東淀川区豊新1丁目"} for r in rows]))
    assert outcome.status == "rejected"
    r = rejection(outcome, "gaiji")
    assert (r.line, r.column, r.value) == (3, "氏名", "御坊　\ue123子")
    assert "U+E123" in r.reason
    assert residents("osaka") == {}  # nothing applied: Osaka rejects the whole file


def test_mapped_private_use_character_becomes_mj_plus(committed: object, tmp_path: Path) -> None:
    rows = [person(1, 50, 氏名="\ue000田　太郎", 住所="大阪市東淀川区豊新1丁目")]
    outcome = run("osaka", full(tmp_path, "osaka", rows))
    assert outcome.status == "applied", outcome.rejections
    assert residents("osaka")[number(1)].name == "𠮷田　太郎"


def test_nul_byte_is_reported_with_its_line(committed: object, tmp_path: Path) -> None:
    data = render(family(), layout("yamaguchi")).replace("御坊　花子".encode(), "御坊\x00花子".encode())
    path = tmp_path / "full.tsv"
    path.write_bytes(data)
    outcome = run("yamaguchi", path)
    assert outcome.status == "rejected"
    assert rejection(outcome, "nul").line == 3


def test_short_and_long_rows(committed: object, tmp_path: Path) -> None:
    text = render(family(), STANDARD.residents).decode()
    lines = text.split("\r\n")
    lines[1] = lines[1].rsplit(",", 1)[0]  # one column short
    lines[2] = lines[2] + ",extra"  # one column long
    path = tmp_path / "standard.csv"
    path.write_text("\r\n".join(lines), encoding="utf-8")
    outcome = run("yamaguchi", path, standard_layout=True)
    assert outcome.status == "rejected"
    counts = sorted((r.line, r.reason) for r in outcome.rejections if r.code == "column_count")
    assert counts == [(2, "列の数が19個です（見出しは20列）"), (3, "列の数が21個です（見出しは20列）")]


def test_bad_check_digit(committed: object, tmp_path: Path) -> None:
    rows = family()
    good = rows[2]["宛名番号"]
    rows[2]["宛名番号"] = good[:-1] + str((int(good[-1]) + 1) % 10)
    outcome = run("yamaguchi", full(tmp_path, "yamaguchi", rows))
    r = rejection(outcome, "check_digit")
    assert (r.line, r.column, r.value) == (4, "宛名番号", rows[2]["宛名番号"])
    assert r.reason == "宛名番号の検査数字が合いません"


def test_unknown_relation(committed: object, tmp_path: Path) -> None:
    rows = family()
    rows[1]["続柄"] = "内縁"
    outcome = run("yamaguchi", full(tmp_path, "yamaguchi", rows))
    r = rejection(outcome, "relation")
    assert (r.column, r.value, r.reason) == ("続柄", "内縁", "続柄が決められた値ではありません")


def test_relation_chains_are_accepted(committed: object, tmp_path: Path) -> None:
    rows = family()
    rows[1]["続柄"], rows[2]["続柄"] = "子の妻", "子の子"
    assert run("yamaguchi", full(tmp_path, "yamaguchi", rows)).status == "applied"


def test_wareki_edge_dates(committed: object, tmp_path: Path) -> None:
    # Gobo delivers 和暦 text: 2/29 of a non-leap year is kept, 月日不詳 kept as is, 令和0年 refused.
    rows = family()
    rows[0]["生年月日"] = "平成3年2月29日"
    rows[1]["生年月日"] = "昭和50年 月日不詳"
    rows[2]["生年月日"] = "令和0年5月1日"
    outcome = run("gobo", full(tmp_path, "gobo", rows))
    assert outcome.status == "applied"  # Gobo's policy: valid rows in, the rest held back
    r = rejection(outcome, "date")
    assert (r.line, r.column, r.value) == (4, "生年月日", "令和0年5月1日")
    assert "令和0年は存在しません" in r.reason
    stored = residents("gobo")
    assert stored[number(1)].birth == {"text": "平成3年2月29日", "era": "平成", "year": 3, "month": 2, "day": 29,
                                        "qualifier": None, "date": None}  # fmt: skip
    assert stored[number(1)].birth_date is None
    assert stored[number(2)].birth["qualifier"] == "月日不詳"
    assert number(3) not in stored


@pytest.mark.parametrize(
    ("tenant", "texts"),
    [
        ("osaka", ["S500000", "S500600", "H030229", "R010501", "T150101"]),
        (
            "gobo",
            [
                "昭和50年 月日不詳",
                "昭和50年5月 日不詳",
                "推定昭和50年5月1日",
                "昭和50年頃",
                "令和元年５月１日",
            ],
        ),
        ("yamaguchi", ["1975-06-01", "1989-01-07", "2000-02-29"]),
    ],
)
def test_structured_dates_read_back_exactly_as_imported(
    committed: object, tmp_path: Path, tenant: str, texts: list[str]
) -> None:
    # Stored as the delivered text (t0011), every date still reads as the structure the import
    # parsed from it, and shows the same 和暦 to the clerk, 不詳 and off-calendar days included.
    rows = [
        person(
            10 + i, 700 + i, 氏名=f"日付　{i}", 氏名フリガナ="ヒヅケ", 生年月日=t, 住民となった日=t, 住定日=t
        )
        for i, t in enumerate(texts)
    ]
    outcome = run(tenant, full(tmp_path, tenant, rows))
    assert outcome.status == "applied", outcome.rejections
    style = layout(tenant).date_style
    stored = residents(tenant)
    for i, t in enumerate(texts):
        expected = parse(t, style)
        r = stored[number(10 + i)]
        assert r.birth == r.became_resident == r.address_set == expected.to_json()
        assert summary(r)["birth_wareki"] == expected.wareki()
        assert r.birth_date == expected.gregorian
    assert summary(stored[number(10)])["birth_wareki"] == {
        "osaka": "昭和50年 月日不詳", "gobo": "昭和50年 月日不詳", "yamaguchi": "昭和50年6月1日"
    }[tenant]  # fmt: skip


def test_duplicate_atena_no_in_one_file(committed: object, tmp_path: Path) -> None:
    rows = [*family(), {**family()[0], "氏名": "別人　一郎"}]
    outcome = run("yamaguchi", full(tmp_path, "yamaguchi", rows))
    assert outcome.status == "rejected"
    lines = sorted(r.line for r in outcome.rejections if r.code == "duplicate")
    assert lines == [2, 5]


def test_empty_file(committed: object, tmp_path: Path) -> None:
    path = tmp_path / "full.tsv"
    path.write_bytes(b"")
    outcome = run("yamaguchi", path)
    assert outcome.status == "rejected"
    assert rejection(outcome, "empty").reason.startswith("ファイルが空です")


def test_header_only_full_file_is_refused_but_changes_file_is_a_no_op(
    committed: object, tmp_path: Path
) -> None:
    path = full(tmp_path, "yamaguchi", [])
    outcome = run("yamaguchi", path)
    assert outcome.status == "rejected"
    assert rejection(outcome, "no_rows")
    changes = write(tmp_path / "changes.tsv", [], layout("yamaguchi"))
    outcome = run("yamaguchi", changes)
    assert (outcome.status, outcome.mode, outcome.rows_read) == ("applied", "changes", 0)


def test_header_with_missing_and_unknown_columns(committed: object, tmp_path: Path) -> None:
    path = tmp_path / "GOBO_JUKI_ZEN_20261121.csv"
    data = render(family(), layout("gobo")).replace(b"SHIMEI_KANA", b"SHIMEI_KANA2")
    path.write_bytes(data)
    outcome = run("gobo", path)
    assert outcome.status == "rejected"
    r = rejection(outcome, "header_missing")
    assert "「SHIMEI_KANA」（標準の「氏名フリガナ」）" in r.reason


def test_the_same_file_twice_is_a_no_op(committed: object, tmp_path: Path) -> None:
    path = full(tmp_path, "yamaguchi", family())
    first = run("yamaguchi", path)
    second = run("yamaguchi", path)
    assert first.status == "applied"
    assert (second.status, second.duplicate_of) == ("duplicate", first.batch_id)
    with tenant_session("yamaguchi") as session:
        assert session.scalar(select(func.count()).select_from(Resident)) == 3


def test_a_rejected_file_changes_nothing(committed: object, tmp_path: Path) -> None:
    assert run("yamaguchi", full(tmp_path, "yamaguchi", family())).status == "applied"
    before = {k: (v.name, v.address) for k, v in residents("yamaguchi").items()}
    rows = [{**r, "住所": "山口県山口市亀山町2番1号"} for r in family()]
    rows[2]["性別"] = "3"
    outcome = run("yamaguchi", full(tmp_path, "yamaguchi", rows, name="full2.tsv"))
    assert outcome.status == "rejected"
    assert {k: (v.name, v.address) for k, v in residents("yamaguchi").items()} == before


def resident_indexes(tenant: str) -> list[str]:
    with tenant_session(tenant) as session:
        rows = session.execute(
            text(
                "SELECT indexdef FROM pg_indexes WHERE schemaname = current_schema() AND tablename = 'residents'"
            )
        )
        return sorted(r[0] for r in rows)


def test_a_first_load_rebuilds_the_search_indexes_and_a_rejected_one_keeps_them(
    committed: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.db import imports

    dropped: list[int] = []
    begin = imports.begin_direct_load
    monkeypatch.setattr(imports, "begin_direct_load", lambda s: dropped.append(begin(s)) or dropped[-1])
    before = resident_indexes("yamaguchi")
    assert any("kana_search" in d for d in before)
    rows = family()
    rows[2]["性別"] = "3"  # rejected after the rows went straight into the empty table
    assert run("yamaguchi", full(tmp_path, "yamaguchi", rows)).status == "rejected"
    assert resident_indexes("yamaguchi") == before
    assert run("yamaguchi", full(tmp_path, "yamaguchi", family(), name="full2.tsv")).status == "applied"
    assert resident_indexes("yamaguchi") == before
    assert dropped == [5, 5]  # both loads went straight into the empty table, without its 5 indexes
    with tenant_session("yamaguchi") as session:
        found = session.scalars(select(Resident).where(Resident.kana_search.like("ゴボウ%"))).all()
        assert len(found) == 3


# --- changes files, households, statuses --------------------------------------------------------


def test_changes_file_moves_a_family_between_households(committed: object, tmp_path: Path) -> None:
    start = [*family(1, 900), person(10, 901, 氏名="別世帯\u3000太郎", 氏名フリガナ="ベツセタイ タロウ")]
    assert run("gobo", full(tmp_path, "gobo", start)).status == "applied"
    with tenant_session("gobo") as session:
        assert {h.household_no: h.member_count for h in session.scalars(select(Household))} == {
            number(900): 3,
            number(901): 1,
        }
    # The wife and child move into household 901 (世帯変更), the order in the file is reversed
    # but 異動日 decides.
    moves = [
        person(2, 901, 世帯内順="2", 続柄="妻", 氏名="御坊　花子", 性別="2", 異動事由="世帯変更", 異動日="2026-11-20"),
        person(3, 901, 世帯内順="3", 続柄="子", 氏名="御坊　翔", 異動事由="世帯変更", 異動日="2026-11-20"),
        person(2, 900, 世帯内順="2", 続柄="妻", 氏名="御坊　花子", 性別="2", 異動事由="転居", 異動日="2026-11-01"),
    ]  # fmt: skip
    outcome = run("gobo", write(tmp_path / "GOBO_JUKI_IDO_20261121.csv", moves, layout("gobo")))
    assert (outcome.status, outcome.mode) == ("applied", "changes"), outcome.rejections
    stored = residents("gobo")
    assert stored[number(2)].household_no == number(901)
    assert stored[number(3)].household_no == number(901)
    with tenant_session("gobo") as session:
        households = {h.household_no: h for h in session.scalars(select(Household))}
    assert households[number(900)].member_count == 1
    assert households[number(901)].member_count == 3
    assert households[number(901)].head_atena_no == number(10)


def test_a_household_everyone_left_goes_and_the_others_keep_their_record(
    committed: object, tmp_path: Path
) -> None:
    start = [*family(1, 900), person(10, 901, 氏名="別世帯\u3000太郎", 氏名フリガナ="ベツセタイ タロウ")]
    assert run("gobo", full(tmp_path, "gobo", start)).status == "applied"
    with tenant_session("gobo") as session:
        before = {h.household_no: h.id for h in session.scalars(select(Household))}
    joins = [person(10, 900, 世帯内順="4", 続柄="同居人", 氏名="別世帯\u3000太郎", 氏名フリガナ="ベツセタイ タロウ",
                    異動事由="世帯変更", 異動日="2026-11-20")]  # fmt: skip
    outcome = run("gobo", write(tmp_path / "GOBO_JUKI_IDO_20261121.csv", joins, layout("gobo")))
    assert outcome.status == "applied", outcome.rejections
    with tenant_session("gobo") as session:
        after = {h.household_no: (h.id, h.member_count) for h in session.scalars(select(Household))}
    assert after == {number(900): (before[number(900)], 4)}  # 901 is gone; 900 is the same record


def test_a_heads_new_address_reaches_the_household_and_a_new_katagaki_touches_none(
    committed: object, tmp_path: Path
) -> None:
    rows = [*family(1, 900), *family(4, 901)]
    assert run("yamaguchi", full(tmp_path, "yamaguchi", rows)).status == "applied"
    with tenant_session("yamaguchi") as session:
        before = {h.household_no: (h.address, h.updated_at) for h in session.scalars(select(Household))}
    rows[0]["住所"] = "山口県山口市亀山町2番1号"  # the head of 900 moves
    rows[4]["方書"] = "亀山ハイツ 101"  # someone in 901 gets a new 方書
    outcome = run("yamaguchi", full(tmp_path, "yamaguchi", rows, name="full-2.tsv"))
    assert outcome.counts["updated"] == 2, outcome.rejections
    with tenant_session("yamaguchi") as session:
        after = {h.household_no: (h.address, h.updated_at) for h in session.scalars(select(Household))}
    assert after[number(900)][0] == "山口県山口市亀山町2番1号"
    assert after[number(901)] == before[number(901)]  # not rewritten


def test_people_who_leave_stay_with_their_status(committed: object, tmp_path: Path) -> None:
    assert run("gobo", full(tmp_path, "gobo", family())).status == "applied"
    left = [person(1, 900, 氏名="御坊　一郎", 住民状態="転出", 異動事由="転出", 異動日="2026-11-20")]
    assert (
        run("gobo", write(tmp_path / "GOBO_JUKI_IDO_20261122.csv", left, layout("gobo"))).status == "applied"
    )
    stored = residents("gobo")
    assert stored[number(1)].status == "転出"
    with tenant_session("gobo") as session:
        household = session.scalars(select(Household)).one()
    assert household.member_count == 2
    assert household.head_atena_no == number(2)


def test_full_extract_reimport_updates_only_changed_rows(committed: object, tmp_path: Path) -> None:
    rows = family() + [person(4 + i, 910 + i, 氏名=f"住民　{i}") for i in range(20)]
    assert run("yamaguchi", full(tmp_path, "yamaguchi", rows)).status == "applied"
    rows[5]["住所"] = "山口県山口市亀山町2番1号"
    dropped = rows.pop(7)
    outcome = run("yamaguchi", full(tmp_path, "yamaguchi", rows, name="full-2.tsv"))
    assert outcome.status == "applied", outcome.rejections
    assert outcome.counts == {"inserted": 0, "updated": 1, "unchanged": 21, "missing": 1}
    assert residents("yamaguchi")[dropped["宛名番号"]].status == "住民"  # kept, reported as missing


def test_duplicates_are_found_among_unchanged_rows(committed: object, tmp_path: Path) -> None:
    rows = family()
    assert run("yamaguchi", full(tmp_path, "yamaguchi", rows)).status == "applied"
    outcome = run("yamaguchi", full(tmp_path, "yamaguchi", [*rows, rows[0]], name="full-2.tsv"))
    assert outcome.status == "rejected"
    assert sorted(r.line for r in outcome.rejections if r.code == "duplicate") == [2, 5]


def test_a_full_extract_settles_duplicates_and_missing_over_skipped_read_and_rejected_rows(
    committed: object, tmp_path: Path
) -> None:
    """Gobo accepts the valid rows and quarantines the rest. Unchanged rows are skipped unread, yet
    a person given twice is caught whichever way each copy went (skipped, staged, rejected), and
    the residents the extract does not mention are counted (people who left are not: the one given
    here unchanged is skipped, and counts for nobody)."""
    people = family(1, 900) + family(4, 901)
    departed = person(7, 902, 氏名="御坊　去", 住民状態="転出", 異動事由="転出", 異動日="2026-10-01")
    assert run("gobo", full(tmp_path, "gobo", [*people, departed])).status == "applied"
    renamed = {**people[1], "氏名": "御坊　華子"}
    invalid = {**people[2], "性別": "5"}
    moved = {**people[4], "住所": "和歌山県御坊市薗200番地"}
    newcomer = person(8, 903, 氏名="新田　来", 氏名フリガナ="ニッタ キタル")
    rows = [people[0], people[1], renamed, invalid, people[3], people[3], moved, newcomer, departed]
    outcome = run("gobo", full(tmp_path, "gobo", rows, name="GOBO_JUKI_ZEN_20261122.csv"))
    assert outcome.status == "applied", outcome.rejections
    duplicates = sorted(r.line for r in outcome.rejections if r.code == "duplicate")
    assert duplicates == [3, 4, 6, 7]  # 花子 unchanged + renamed; 一郎 (901) twice, both unchanged
    assert [(r.line, r.column) for r in outcome.rejections if r.code != "duplicate"] == [(5, "性別")]
    # 翔 of 901 is missing (翔 of 900 is named by the rejected row); unchanged: 一郎 of 900 and the
    # one who left, not the skipped copies of the duplicates
    assert outcome.counts == {"inserted": 1, "updated": 1, "unchanged": 2, "missing": 1}
    stored = residents("gobo")
    assert stored[number(2)].name == "御坊　花子"  # neither copy of a duplicate is applied
    assert stored[number(5)].address == "和歌山県御坊市薗200番地"
    assert stored[number(8)].status == "住民"
    assert stored[number(6)].status == stored[number(3)].status == "住民"  # kept


# --- batch records, CLI ------------------------------------------------------------------------


def test_batch_and_rejections_are_recorded(committed: object, tmp_path: Path) -> None:
    rows = family()
    rows[1]["性別"] = "5"
    outcome = run("gobo", full(tmp_path, "gobo", rows))
    with tenant_session("gobo") as session:
        batch = session.get(ImportBatch, outcome.batch_id)
        assert batch is not None
        assert (batch.status, batch.rows_read, batch.rows_rejected, batch.rows_inserted) == (
            "applied",
            3,
            1,
            2,
        )
        assert batch.layout == "gobo-cokas-r-v1"
        assert batch.policy == "quarantine"
        assert batch.bytes_read == batch.size_bytes
        (stored,) = session.scalars(select(ImportRejection).where(ImportRejection.batch_id == batch.id))
    assert (stored.line, stored.column, stored.value) == (3, "性別", "5")


def test_cli_import_reports_and_exits_1_on_rejection(committed: object, tmp_path: Path) -> None:
    rows = family()
    rows[0]["続柄"] = "内縁"
    path = full(tmp_path, "yamaguchi", rows)
    done = madoguchi("linkage", "import", "yamaguchi", str(path), "--json")
    assert done.returncode == 1
    report = json.loads(done.stdout)
    assert report["status"] == "rejected"
    assert report["rejections"][0]["column"] == "続柄"
    assert report["rejections"][0]["line"] == 2


def test_cli_layout_standard_reads_a_standard_file_for_any_tenant(committed: object, tmp_path: Path) -> None:
    path = tmp_path / "standard.csv"
    path.write_bytes(render(family(), STANDARD.residents))
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "app.cli",
            "linkage",
            "import",
            "osaka",
            str(path),
            "--layout",
            "standard",
            "--json",
        ],
        cwd=ROOT,
        env=os.environ.copy(),
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["counts"]["inserted"] == 3


def test_background_import_job_records_progress_and_result(committed: object, tmp_path: Path) -> None:
    from rq import Worker

    from app.jobs import queue
    from app.kv import get_redis
    from app.linkage.jobs import start_import

    path = full(tmp_path, "gobo", family())
    with tenant_session("gobo") as session:
        batch = start_import(session, "gobo", str(path), "cli:test")
        assert batch.status == "queued"
        assert batch.job_id == f"gobo__import__{batch.id}"
    Worker([queue()], connection=get_redis()).work(burst=True, with_scheduler=False)
    with tenant_session("gobo") as session:
        done = session.get(ImportBatch, batch.id)
        assert done is not None
        assert (done.status, done.rows_inserted, done.file_name) == ("applied", 3, path.name)
        assert done.bytes_read == done.size_bytes == path.stat().st_size
    with tenant_session("osaka") as session:
        assert session.scalar(select(func.count()).select_from(ImportBatch)) == 0


# --- attributes (資格・受給) -------------------------------------------------------------------


def attribute_file(tmp_path: Path, name: str, rows: list[dict[str, str]], tenant: str = "yamaguchi") -> Path:
    from app.linkage.config import ATTRIBUTE_COLUMNS

    record = registry.get(tenant)
    assert record is not None
    layout_ = registry.config(record).linkage.attributes
    return write(tmp_path / name, rows, layout_, ATTRIBUTE_COLUMNS)


def facts(tenant: str) -> set[tuple[str, str, str]]:
    from app.residents.models import ResidentAttribute

    with tenant_session(tenant) as session:
        return {(a.atena_no, a.item, a.value) for a in session.scalars(select(ResidentAttribute))}


def test_attributes_full_then_changes(committed: object, tmp_path: Path) -> None:
    assert run("yamaguchi", full(tmp_path, "yamaguchi", family())).status == "applied"
    one, two = number(1), number(2)
    rows = [
        {"宛名番号": one, "項目": "国保", "値": "加入", "開始日": "2020-04-01", "終了日": ""},
        {"宛名番号": two, "項目": "国保", "値": "加入", "開始日": "2020-04-01", "終了日": ""},
        {"宛名番号": one, "項目": "印鑑登録", "値": "登録", "開始日": "", "終了日": ""},
    ]
    outcome = run(
        "yamaguchi", attribute_file(tmp_path, "shikaku_full.tsv", rows), kind="attributes", mode="full"
    )
    assert (outcome.status, outcome.kind) == ("applied", "attributes"), outcome.rejections
    assert facts("yamaguchi") == {(one, "国保", "加入"), (two, "国保", "加入"), (one, "印鑑登録", "登録")}
    # A changes file replaces the facts of the people it names, and only theirs.
    change = [{"宛名番号": one, "項目": "国民年金", "値": "1号", "開始日": "2026-11-01", "終了日": ""}]
    outcome = run(
        "yamaguchi", attribute_file(tmp_path, "shikaku_diff.tsv", change), kind="attributes", mode="changes"
    )
    assert outcome.status == "applied"
    assert facts("yamaguchi") == {(one, "国民年金", "1号"), (two, "国保", "加入")}


def test_attribute_rows_are_validated(committed: object, tmp_path: Path) -> None:
    rows = [
        {"宛名番号": number(1), "項目": "国保", "値": "加入", "開始日": "2026-04-01", "終了日": "2026-03-31"},
        {"宛名番号": number(2), "項目": "", "値": "x", "開始日": "", "終了日": ""},
        {
            "宛名番号": number(3),
            "項目": "障害者手帳",
            "値": "身体2級",
            "開始日": "昭和50年 月日不詳",
            "終了日": "",
        },
    ]
    outcome = run("yamaguchi", attribute_file(tmp_path, "a.tsv", rows), kind="attributes", mode="full")
    assert outcome.status == "rejected"
    found = {(r.line, r.column, r.code) for r in outcome.rejections}
    assert found == {(2, "終了日", "date_order"), (3, "項目", "required"), (4, "開始日", "date")}


def test_attributes_kind_is_detected_from_the_header(committed: object, tmp_path: Path) -> None:
    rows = [{"宛名番号": number(1), "項目": "国保", "値": "加入", "開始日": "", "終了日": ""}]
    outcome = run("yamaguchi", attribute_file(tmp_path, "whatever.tsv", rows))
    assert outcome.kind == "attributes"
