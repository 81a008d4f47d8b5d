"""Synthetic residents (app.residents.synthetic) and the layout writer (app.linkage.writer).

Small scale only: the three cities' ``small`` extracts (a few hundred to 2,000 people) and one
sample of 4,000 people at Japan's mean household size for the statistical checks, whose bounds are
loose enough that a correct generator never fails them by chance.
"""

from __future__ import annotations

import collections
import csv
import datetime as dt
import io
import itertools
import re
from pathlib import Path
from typing import Any

import pytest

from app.config import get_settings
from app.dates.japanese import parse, school_age
from app.linkage.checkdigit import is_valid
from app.linkage.config import ATTRIBUTE_COLUMNS, RESIDENT_COLUMNS, LinkageConfig
from app.linkage.writer import written_date_style
from app.residents.synthetic import (
    ATTRIBUTE_VOCABULARY,
    ExtractResult,
    Household,
    generate_households,
    household_attributes,
    profile,
    upload_extract,
    variant_file_name,
    write_extracts,
)
from app.residents.synthetic.attributes import child_allowance_until
from app.residents.synthetic.people import IVS_KATSURAGI, add_years
from app.residents.synthetic.tables import AGE_PYRAMID_2020, FOREIGN_NAMES, household_size_weights
from app.tenancy.loader import load_all

AS_OF = dt.date(2026, 5, 1)
CITIES = ("osaka", "gobo", "yamaguchi")
DATE_COLUMNS = {"生年月日", "住民となった日", "住定日", "異動日"}
# 続柄: the closed set of the 住民記録システム標準仕様書, plus chains with の up to four generations.
_TERM = "(?:子|父|母|夫|妻|兄|姉|弟|妹)"
RELATION = re.compile(
    rf"^(?:世帯主|夫（未届）|妻（未届）|子（子の夫）|子（子の妻）|縁故者|同居人|{_TERM}(?:の{_TERM}){{0,3}})$"
)


def linkage_configs() -> dict[str, LinkageConfig]:
    loaded = load_all(get_settings().tenants_dir)
    return {tid: loaded[tid].config.linkage for tid in CITIES}


@pytest.fixture(scope="module")
def linkages() -> dict[str, LinkageConfig]:
    return linkage_configs()


@pytest.fixture(scope="module")
def extracts(
    tmp_path_factory: pytest.TempPathFactory, linkages: dict[str, LinkageConfig]
) -> dict[str, ExtractResult]:
    base = tmp_path_factory.mktemp("extracts")
    return {
        tid: write_extracts(tid, linkages[tid], base / tid, scale="small", seed=11, as_of=AS_OF)
        for tid in CITIES
    }


@pytest.fixture(scope="module")
def sample() -> list[Household]:
    """4,000 residents at Japan's mean household size (2.21): the tables apply untilted."""
    return list(
        generate_households(
            profile("yamaguchi"), 4000, 1810, seed=3, as_of=AS_OF, attributes=household_attributes
        )
    )


def read_table(path: Path, encoding: str, delimiter: str) -> list[list[str]]:
    raw = path.read_bytes()
    if encoding == "utf-8-sig":
        assert raw.startswith(b"\xef\xbb\xbf")
    else:
        assert not raw.startswith(b"\xef\xbb\xbf")
    text = raw.decode(encoding)  # strict: every byte decodes in the declared encoding
    return list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))


def standard_rows(result: ExtractResult) -> list[dict[str, str]]:
    table = read_table(result.standard["residents"].path, "utf-8", ",")
    return [dict(zip(table[0], row, strict=True)) for row in table[1:]]


# --- determinism and scale -----------------------------------------------------------------


def test_same_seed_same_bytes_other_seed_other_people(
    tmp_path: Path, linkages: dict[str, LinkageConfig]
) -> None:
    def run(name: str, seed: int) -> dict[str, bytes]:
        result = write_extracts("gobo", linkages["gobo"], tmp_path / name, seed=seed, as_of=AS_OF)
        files = [*result.standard.values(), *result.variant.values()]
        return {s.path.name: s.path.read_bytes() for s in files}

    first, again, other = run("a", 5), run("b", 5), run("c", 6)
    assert first == again
    assert first.keys() == other.keys()
    assert all(first[name] != other[name] for name in first)


def test_small_scale_hits_the_city_counts_exactly(extracts: dict[str, ExtractResult]) -> None:
    for tid, result in extracts.items():
        expected = profile(tid).counts("small")
        assert (result.residents, result.households) == expected
        # people who left (除票) come on top, a few percent
        assert expected[0] < result.person_rows < expected[0] * 1.1
        assert result.seconds < 10


def test_city_scale_counts() -> None:
    assert profile("osaka").counts("city") == (2_800_000, 1_500_000)
    assert profile("gobo").counts("city") == (20_543, 10_635)
    assert profile("yamaguchi").counts("city")[0] == 190_000
    assert [code for code, _ in profile("osaka").wards] == [
        str(c) for c in range(27102, 27129) if c not in (27105, 27110, 27112)
    ]


# --- people ----------------------------------------------------------------------------------


def test_household_sizes_follow_the_table(sample: list[Household]) -> None:
    sizes = collections.Counter(min(h.residents, 7) for h in sample if h.residents)
    total = sum(sizes.values())
    cumulative = household_size_weights(round(4000 / 1810, 2))
    expected = [cumulative[0], *(b - a for a, b in itertools.pairwise(cumulative))]
    for size in range(1, 6):
        assert abs(sizes[size] / total - expected[size - 1]) < 0.05, (size, sizes)
    # and the untilted national table (38/28/16/13/5 %)
    national = {1: 0.38, 2: 0.28, 3: 0.16, 4: 0.13}
    for size, share in national.items():
        assert abs(sizes[size] / total - share) < 0.05, (size, sizes)


def test_ages_follow_the_2020_pyramid(sample: list[Household]) -> None:
    ages = [p.age(AS_OF) for h in sample for p in h.members if p.is_resident]
    census_total = sum(c for _, c in AGE_PYRAMID_2020)

    def census(lo: int, hi: int) -> float:
        return sum(c for band, c in AGE_PYRAMID_2020 if lo <= band <= hi) / census_total

    def ours(lo: int, hi: int) -> float:
        return sum(1 for a in ages if lo <= a <= hi) / len(ages)

    for lo, hi in ((0, 14), (15, 64), (65, 200), (75, 200)):
        assert abs(ours(lo, hi) - census(lo, hi)) < 0.04, (lo, hi, ours(lo, hi), census(lo, hi))
    for band, _ in AGE_PYRAMID_2020:
        assert abs(ours(band, band + 4 if band < 100 else 200) - census(band, band)) < 0.025, band
    assert max(ages) >= 95


def test_relations_and_ages_are_plausible(sample: list[Household]) -> None:
    for household in sample:
        members = household.members
        head = members[0]
        assert head.relation == "世帯主"
        assert [p.order for p in members] == list(range(1, len(members) + 1))
        assert len({p.household_no for p in members}) == 1
        assert len({p.address for p in members}) == 1
        by_relation = collections.defaultdict(list)
        for person in members:
            assert RELATION.match(person.relation), person.relation
            by_relation[person.relation].append(person)
            assert person.birth_day <= person.became_resident <= person.address_set <= person.change_date
            assert person.change_date <= AS_OF
            assert person.sex in (1, 2)
        head_age = head.age(AS_OF)
        assert head_age >= 18 or not head.is_resident
        for child in by_relation["子"]:
            assert child.age(AS_OF) <= head_age - 18
        for parent in by_relation["父"] + by_relation["母"]:
            assert parent.age(AS_OF) >= head_age + 18
        for grandchild in by_relation["子の子"]:
            parents = [p for p in by_relation["子"] if p.is_resident]  # not a sibling who moved out
            assert all(grandchild.age(AS_OF) <= p.age(AS_OF) - 18 for p in parents)
        for spouse in by_relation["妻"] + by_relation["夫"]:
            assert spouse.sex != head.sex
            assert spouse.age(AS_OF) >= 18


def test_names_kana_status_and_kinds(sample: list[Household]) -> None:
    people = [p for h in sample for p in h.members]
    japanese = [p for p in people if p.kind == "日本人" and p.kana_confirmed]
    assert all(p.name.count("\u3000") == 1 for p in japanese)
    assert all(re.fullmatch(r"[ァ-ヴー]+ [ァ-ヴー]+", p.kana) for p in japanese)
    statuses = collections.Counter(p.status for p in people)
    assert statuses["住民"] == 4000
    assert 0.005 < statuses["転出"] / len(people) < 0.06
    assert 0.002 < statuses["死亡"] / len(people) < 0.04
    for person in people:
        reason = {"住民": ("転入", "転居", "出生", "世帯変更"), "転出": ("転出",), "死亡": ("死亡",)}
        assert person.change_reason in reason.get(person.status, ("職権消除",))
    foreign = sum(1 for p in people if p.kind == "外国人") / len(people)
    assert 0.001 < foreign < 0.05
    assert all(re.fullmatch(r"[A-Z ]+", p.name) for p in people if p.kind == "外国人")
    for person in (p for p in people if p.kind == "外国人"):
        group = next(g for g in FOREIGN_NAMES if any(person.name.startswith(n + " ") for n, _ in g.surnames))
        assert person.name.split(" ", 1)[1] in {n for n, _ in group.male + group.female}
    # siblings do not share a given name
    repeated = sum(1 for h in sample if len({p.name for p in h.members}) < len(h.members))
    assert repeated < len(sample) * 0.01


def test_numbers_have_valid_check_digits(sample: list[Household]) -> None:
    people = [p for h in sample for p in h.members]
    assert all(is_valid(p.atena_no, "reject") and is_valid(p.atena_no, "zero") for p in people)
    assert all(is_valid(h.household_no, "reject") for h in sample)
    assert len({p.atena_no for p in people}) == len(people)
    assert len({h.household_no for h in sample}) == len(sample)


def test_addresses_are_real_towns_of_the_city(extracts: dict[str, ExtractResult]) -> None:
    osaka = standard_rows(extracts["osaka"])
    wards = {re.match(r"大阪府大阪市(.+?区)", r["住所"]).group(1) for r in osaka}  # type: ignore[union-attr]
    assert len(wards) == 24
    assert {"東淀川区", "福島区", "北区", "平野区"} <= wards
    assert all(re.fullmatch(r"\d{7}", r["郵便番号"]) for r in osaka)
    assert any(re.search(r"\d+丁目\d+番\d+号$", r["住所"]) for r in osaka)
    gobo = standard_rows(extracts["gobo"])
    assert all(r["住所"].startswith("和歌山県御坊市") and r["郵便番号"][:3] in ("644", "649") for r in gobo)
    assert any(re.search(r"\d+番地\d*$", r["住所"]) for r in gobo)
    yamaguchi = standard_rows(extracts["yamaguchi"])
    assert all(r["住所"].startswith("山口県山口市") for r in yamaguchi)
    assert sum(1 for r in osaka if r["方書"]) > len(osaka) * 0.3


# --- attributes ------------------------------------------------------------------------------


def test_attributes_are_consistent_with_the_people(sample: list[Household]) -> None:
    facts_of: dict[str, list[tuple[str, str]]] = collections.defaultdict(list)
    for household in sample:
        for fact in household.attributes:
            facts_of[fact.atena_no].append((fact.item, fact.value))
            allowed = ATTRIBUTE_VOCABULARY[fact.item]
            assert allowed is None or fact.value in allowed, (fact.item, fact.value)
    residents = [p for h in sample for p in h.members if p.is_resident]
    for person in residents:
        age = person.age(AS_OF)
        facts = facts_of[person.atena_no]
        items = collections.Counter(item for item, _ in facts)
        # 後期高齢 from the 75th birthday itself; 介護保険 and the rest by the legal age
        assert (("後期高齢", "加入") in facts) == (add_years(person.birth_day, 75) <= AS_OF), (age, facts)
        assert age >= 75 or ("後期高齢", "加入") not in facts
        assert (("介護保険", "被保険者") in facts) == (age >= 65), (age, facts)
        assert items["介護保険"] <= 2
        assert items["国民年金"] == (1 if 20 <= age <= 59 else 0), (age, facts)
        assert items["学校"] == (1 if 6 <= school_age(person.birth_day, AS_OF) <= 14 else 0)
        if age < 18:
            assert ("印鑑登録", "登録") not in facts
    for household in sample:
        under_75 = [p for p in household.members if p.is_resident and p.age(AS_OF) < 75]
        insured = [p for p in under_75 if ("国保", "加入") in facts_of[p.atena_no]]
        assert insured == (under_75 if household.national_health else [])
        pensions = {
            p.relation: v for p in household.members for i, v in facts_of[p.atena_no] if i == "国民年金"
        }
        for person in household.members:
            for item, value in facts_of[person.atena_no]:
                if (item, value) == ("国民年金", "3号"):
                    assert person.relation in ("妻", "夫", "妻（未届）", "夫（未届）")
                    assert pensions["世帯主"] == "2号"
                    assert not household.national_health


def test_child_allowance_goes_to_a_parent_of_eligible_children(sample: list[Household]) -> None:
    recipients = 0
    for household in sample:
        living = [p for p in household.members if p.is_resident]
        paid = [f for f in household.attributes if f.item == "児童手当"]
        eligible = {
            relation: [
                p for p in living if p.relation == relation and child_allowance_until(p.birth_day) >= AS_OF
            ]
            for relation in ("子", "子の子")
        }
        expected = sum(1 for kids in eligible.values() if kids)
        assert len(paid) == expected, (eligible, paid)
        for fact in paid:
            recipients += 1
            parent = next(p for p in living if p.atena_no == fact.atena_no)
            if parent.relation in ("子", "子の妻"):
                assert eligible["子の子"]
            else:
                assert parent.relation in ("世帯主", "妻", "夫", "妻（未届）", "夫（未届）")
                assert eligible["子"]
    assert recipients > 100


def test_child_allowance_runs_to_the_end_of_the_school_year_of_18() -> None:
    assert child_allowance_until(dt.date(2008, 4, 2)) == dt.date(2027, 3, 31)  # reaches 18 on 2026-04-01
    assert child_allowance_until(dt.date(2008, 4, 1)) == dt.date(2026, 3, 31)  # reaches 18 on 2026-03-31
    assert school_age(dt.date(2019, 4, 1), dt.date(2025, 4, 1)) == 6  # 早生まれ: 小学校1年 in 2025
    assert school_age(dt.date(2019, 4, 2), dt.date(2025, 4, 1)) == 5


def test_attribute_shares(sample: list[Household]) -> None:
    facts = [f for h in sample for f in h.attributes if f.end is None]
    residents = [p for h in sample for p in h.members if p.is_resident]
    adults = sum(1 for p in residents if p.age(AS_OF) >= 18)
    old = sum(1 for p in residents if p.age(AS_OF) >= 65)

    def count(item: str, value: str | None = None) -> int:
        return sum(1 for f in facts if f.item == item and (value is None or f.value == value))

    under_75_households = [h for h in sample if any(p.is_resident and p.age(AS_OF) < 75 for p in h.members)]
    national_health = sum(1 for h in under_75_households if h.national_health) / len(under_75_households)
    assert 0.17 < national_health < 0.33
    assert 0.50 < count("印鑑登録") / adults < 0.70
    assert 0.68 < count("マイナンバーカード") / len(residents) < 0.82
    assert 0.03 < count("障害者手帳") / len(residents) < 0.08
    certified = count("介護保険") - count("介護保険", "被保険者")
    assert 0.10 < certified / old < 0.27


def test_attribute_dates(sample: list[Household]) -> None:
    people = {p.atena_no: p for h in sample for p in h.members}
    for household in sample:
        for fact in household.attributes:
            person = people[fact.atena_no]
            assert fact.start is not None
            assert person.became_resident <= fact.start <= AS_OF
            assert fact.end == person.left_on


# --- files -----------------------------------------------------------------------------------


def test_variant_files_follow_their_layout(
    extracts: dict[str, ExtractResult], linkages: dict[str, LinkageConfig]
) -> None:
    for tid, result in extracts.items():
        for kind, columns in (("residents", RESIDENT_COLUMNS), ("attributes", ATTRIBUTE_COLUMNS)):
            layout = linkages[tid].layout(kind)  # type: ignore[arg-type]
            stats = result.variant[kind]  # type: ignore[index]
            table = read_table(stats.path, layout.encoding, layout.delimiter)
            assert table[0] == [layout.header_for(c) for c in columns]
            assert len(table) == stats.rows + 1
            style = written_date_style(layout)
            for row in table[1:]:
                assert len(row) == len(columns)
                values = dict(zip(columns, row, strict=True))
                for column in (*DATE_COLUMNS, "開始日", "終了日"):
                    if values.get(column):
                        parsed = parse(values[column], style)
                        assert parsed.era is None if style == "iso" else parsed.era is not None
                if values.get("更新日時"):
                    assert dt.datetime.fromisoformat(values["更新日時"]).utcoffset() == dt.timedelta(hours=9)


def test_standard_files_are_the_standard_layout(extracts: dict[str, ExtractResult]) -> None:
    for result in extracts.values():
        raw = result.standard["residents"].path.read_bytes()
        assert raw.startswith("宛名番号,世帯番号,世帯内順,氏名,".encode())
        rows = standard_rows(result)
        assert all(parse(r["生年月日"], "iso").gregorian for r in rows)
        table = read_table(result.standard["attributes"].path, "utf-8", ",")
        assert table[0] == list(ATTRIBUTE_COLUMNS)


def test_edge_cases_every_run(extracts: dict[str, ExtractResult]) -> None:
    for tid, result in extracts.items():
        raw = result.standard["residents"].path.read_bytes()
        for text in ("𠮷田", "髙橋", "山\ufa11", IVS_KATSURAGI):
            assert text.encode() in raw, (tid, text)
        assert "\U00020bb7".encode() == b"\xf0\xa0\xae\xb7"
        assert b"\xf0\xa0\xae\xb7" in raw
        assert b"\xe8\x91\x9b\xf3\xa0\x84\x80" in raw
        rows = standard_rows(result)
        unconfirmed = [r for r in rows if r["フリガナ確認"] == "0"]
        assert unconfirmed
        assert all(r["氏名フリガナ"] == "" for r in unconfirmed)
        katagaki = {r["方書"] for r in rows}
        assert "ハイツ朝日,別館 203号室" in katagaki
        assert "グランドメゾン白鷺\n2階 201号室" in katagaki
        # an ISO file cannot say 頃 or 不詳: the first day of the span stands in
        births = {r["生年月日"] for r in rows}
        assert {"1926-01-01", "1927-01-01", "1924-05-01", "1925-03-01"} <= births


def test_uncertain_birth_dates_in_wareki_and_era_code(extracts: dict[str, ExtractResult]) -> None:
    gobo = extracts["gobo"].variant["residents"].path.read_bytes().decode("utf-8-sig")
    for text in ("大正15年頃", "昭和2年 月日不詳", "大正13年5月 日不詳", "推定大正14年3月1日"):
        assert f",{text}," in gobo
        assert parse(text, "wareki").qualifier is not None
    osaka = extracts["osaka"].variant["residents"].path.read_bytes().decode("cp932")
    for code in ("T150000", "S020000", "T130500", "T140301"):
        assert f",{code}," in osaka


def test_cp932_variant_carries_gaiji_codes(
    extracts: dict[str, ExtractResult], linkages: dict[str, LinkageConfig]
) -> None:
    result = extracts["osaka"]
    layout = linkages["osaka"].residents
    stats = result.variant["residents"]
    raw = stats.path.read_bytes()
    assert "\ue000".encode("cp932") == b"\xf0\x40"
    assert b"\xf0\x40" in raw  # 𠮷 as the ward system's 外字 U+E000
    assert stats.replaced == 0
    assert stats.selectors_dropped == 0
    assert stats.gaiji > 0
    table = read_table(stats.path, "cp932", ",")
    names = []
    for row in table[1:]:
        name = row[3]
        for code, target in layout.gaiji.items():
            name = name.replace(code, target)
        names.append(name)
    assert names == [r["氏名"] for r in standard_rows(result)]
    assert any(name.startswith("𠮷田") for name in names)
    assert any(name.startswith(IVS_KATSURAGI) for name in names)


def test_file_names_match_the_adapters(linkages: dict[str, LinkageConfig]) -> None:
    assert variant_file_name("osaka", linkages["osaka"], "residents", AS_OF) == "JUKI_FULL_20260501.csv"
    assert variant_file_name("osaka", linkages["osaka"], "attributes", AS_OF) == "SHIKAKU_FULL_20260501.csv"
    assert variant_file_name("gobo", linkages["gobo"], "residents", AS_OF) == "GOBO_JUKI_ZEN_20260501.csv"
    assert variant_file_name("yamaguchi", linkages["yamaguchi"], "attributes", AS_OF).endswith(".tsv")
    for tid, linkage in linkages.items():
        for kind in ("residents", "attributes"):
            name = variant_file_name(tid, linkage, kind, AS_OF)  # type: ignore[arg-type]
            assert linkage.layout(kind).mode_for(name) == "full"  # type: ignore[arg-type]
            assert all(re.search(a.pattern, name) for a in linkage.adapters if a.purpose == kind)
    changed = linkages["gobo"].model_copy(
        update={"adapters": [a.model_copy(update={"pattern": "^NOPE$"}) for a in linkages["gobo"].adapters]}
    )
    with pytest.raises(ValueError, match="does not match adapter"):
        variant_file_name("gobo", changed, "residents", AS_OF)


def test_manifest(extracts: dict[str, ExtractResult]) -> None:
    import hashlib
    import json

    result = extracts["gobo"]
    manifest = json.loads(result.manifest.read_text())
    assert manifest["residents"] == result.residents
    assert manifest["seed"] == 11
    entry = manifest["variant"]["residents"]
    assert entry["layout"] == "gobo-cokas-r-v1"
    path = result.manifest.parent / entry["path"]
    assert hashlib.sha256(path.read_bytes()).hexdigest() == entry["sha256"]


# --- upload (the moto server from scripts/services.sh) --------------------------------------


def _s3(linkage: LinkageConfig) -> Any:
    from app.linkage.config import S3Adapter
    from app.residents.synthetic.upload import s3_client

    adapter = next(a for a in linkage.adapters if isinstance(a, S3Adapter))
    return s3_client(adapter)


def test_upload_puts_the_variant_files_into_the_bucket(
    extracts: dict[str, ExtractResult], linkages: dict[str, LinkageConfig]
) -> None:
    assert get_settings().s3_endpoint_url, "run make services: the tests use the local moto server"
    gobo = extracts["gobo"]
    uploaded = upload_extract(linkages["gobo"], {k: s.path for k, s in gobo.variant.items()})
    assert {u.uri for u in uploaded} == {
        "s3://gobo-madoguchi-linkage/juki/GOBO_JUKI_ZEN_20260501.csv",
        "s3://gobo-madoguchi-linkage/shikaku/GOBO_SHIKAKU_20260501.csv",
    }
    client = _s3(linkages["gobo"])
    body = client.get_object(Bucket="gobo-madoguchi-linkage", Key="juki/GOBO_JUKI_ZEN_20260501.csv")["Body"]
    assert body.read() == gobo.variant["residents"].path.read_bytes()
    # Yamaguchi's residents come over HTTP: only the attributes file goes to its bucket.
    yamaguchi = extracts["yamaguchi"]
    uploaded = upload_extract(linkages["yamaguchi"], {k: s.path for k, s in yamaguchi.variant.items()})
    assert [u.key for u in uploaded] == ["shikaku/yamaguchi_attributes_full_20260501.tsv"]


def test_demo_seed_command(committed: object, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from app.cli import main

    result = CliRunner().invoke(
        main,
        ["demo", "seed", "--tenant", "gobo", "--out", str(tmp_path), "--date", "2026-05-01", "--seed", "2"],
    )
    assert result.exit_code == 0, result.output
    assert "demo 職員を作成しました" in result.output
    assert (tmp_path / "gobo" / "variant" / "GOBO_JUKI_ZEN_20260501.csv").is_file()
    assert (tmp_path / "gobo" / "standard" / "residents_full_20260501.csv").is_file()
    assert "s3://gobo-madoguchi-linkage/juki/GOBO_JUKI_ZEN_20260501.csv" in result.output
    again = CliRunner().invoke(
        main, ["demo", "seed", "--tenant", "gobo", "--out", str(tmp_path), "--no-upload"]
    )
    assert again.exit_code == 0
    assert "作成済み" in again.output
    assert "アップロード" not in again.output
