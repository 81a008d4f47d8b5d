"""The three cities' forms (tenants/<city>/forms, fees.yaml, linkage.yaml outbound).

Every catalogue form is defined and fills from a household with MJ names (𠮷田, 髙橋, 﨑) and a
60-character 方書 without problems; every form prints (the cities' own layouts as PDFs with every
typed field as long as the form allows — one A4 page, the exact names and 和暦 dates in the text
layer, names in IPAmj明朝, nothing past the page edge, the pen-tablet signature drawn — the generic
ones as HTML plus one PDF per city, since the generic template is shared); fees come from fees.yaml and agree with procedures.yaml; every
back-linkage target builds its CSV in its declared encoding and columns.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import subprocess
import uuid
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageDraw
from sqlalchemy import func, select

from app.dates.japanese import parse
from app.dates.wareki import format_wareki
from app.forms.backlink import build_csv
from app.forms.definition import FormDefinition, FormField
from app.forms.fill import FilledForm, FormSubject, Person, fill
from app.forms.loader import FormSource
from app.forms.models import Application, FormVersion
from app.forms.render import render_html, render_pdf
from app.tenancy.config import TenantConfig
from app.tenancy.loader import load_tenant
from tests.conftest import ROOT, tenant_session

CITIES = ("osaka", "gobo", "yamaguchi")
COUNTS = {"osaka": 45, "gobo": 46, "yamaguchi": 38}  # with the 個別申請 forms (現況届, 亡失届)
OWN_LAYOUTS = {
    "osaka": {"juumin_idou_todoke", "inkan_touroku_shinsei", "shomei_seikyu", "kokuho_idou",
              "jidou_teate_nintei", "kodomo_iryou_shinsei"},
    "gobo": {"juumin_idou_todoke", "inkan_touroku_shinsei", "gobo_shomei_seikyu", "kokuho_idou",
             "jidou_teate_nintei", "gobo_kodomo_iryou"},
    "yamaguchi": {"juumin_idou_todoke", "inkan_touroku_shinsei", "juminhyo_seikyu", "koseki_seikyu",
                  "kokuho_shutoku", "kokuho_soushitsu", "jidou_teate_nintei", "kodomo_iryou_shinsei"},
}  # fmt: skip
# The relations the own layouts print in their child tables (児童手当・子ども医療).
CHILD_RELATIONS = {"子", "長男", "長女", "二男", "二女", "次男", "次女", "三男", "三女", "妻の子", "夫の子", "孫"}  # fmt: skip
KATAGAKI = "御坊グランドハイツロイヤルスイート東棟ウエストウィング第三ブロック二十七階七千八百九十号室"
EVENT = dt.date(2026, 4, 10)
ISSUED = dt.date(2026, 4, 13)
ADDRESSES = {
    "osaka": ("533-0001", "大阪府大阪市東淀川区東中島1丁目2番3号"),
    "gobo": ("644-0001", "和歌山県御坊市御坊100番地"),
    "yamaguchi": ("753-0064", "山口県山口市神田町1番1号"),
}
ANSWERS: dict[str, Any] = {  # as the guidance page passes them on
    "employer_insurance": "no", "single_parent": "yes", "keep_surname": "yes", "deceased_relation": "世帯主",
    "wants_childcare": "yes", "has_dog": "yes", "has_moped": "no", "low_birth_weight": "yes",
}  # fmt: skip
POINTS_PER_MM = 72 / 25.4
A4 = (210 * POINTS_PER_MM, 297 * POINTS_PER_MM)


@cache
def city(tenant: str) -> TenantConfig:
    return load_tenant(ROOT / "tenants" / tenant).config


def household(tenant: str) -> FormSubject:
    postal, address = ADDRESSES[tenant]
    people = [
        Person("𠮷田\u3000太郎", "ヨシダ タロウ", parse("1980-01-02"), 1, "世帯主", postal, address, KATAGAKI, "000000000000017", "000000019"),
        Person("𠮷田\u3000﨑子", "ヨシダ サキコ", parse("1982-07-07"), 2, "妻", postal, address, KATAGAKI, "000000000000025", "000000019"),
        Person("𠮷田\u3000髙志", "ヨシダ タカシ", parse("2019-05-01"), 1, "子", postal, address, KATAGAKI, "000000000000033", "000000019"),
        Person("髙橋\u3000ミツ", "タカハシ ミツ", parse("1950-03-15"), 2, "妻の母", postal, address, KATAGAKI, "000000000000041", "000000019"),
    ]  # fmt: skip
    config = city(tenant)
    office = config.tenant.offices[0]
    return FormSubject(
        config.tenant.name, config.tenant.code, office.name, office.address, resident=people[0], head=people[0],
        members=people, answers=dict(ANSWERS), event_date=EVENT, event_name="転入",
    )  # fmt: skip


def typed_in(spec: FormField) -> Any:
    """What a clerk types into a required input field of this type."""
    if spec.type == "choice":
        assert spec.choices
        return spec.choices[0].value
    return {"date": "2026-04-15", "phone": "0738-22-1234", "number": "1", "kana": "ミホン",
            "postal_code": "644-0001", "checkbox": True}.get(spec.type, "記入例")  # fmt: skip


def longest_typed_in(spec: FormField) -> Any:
    """The worst case a layout must hold: every text as long as the form allows, every count 99."""
    if spec.type in ("text", "multiline"):
        return ("長い記入例" * 80)[: spec.max_length or 20]
    if spec.type == "number":
        return "9" * min(spec.max_length or 2, 2)
    return typed_in(spec)


def filled_form(tenant: str, source: FormSource, **extra: Any) -> FilledForm:
    definition = source.definition
    corrections = {f.id: typed_in(f) for f in definition.fields if f.source == "input" and f.required}
    return fill(definition, household(tenant), corrections | extra)


def signature_png() -> bytes:
    image = Image.new("RGBA", (400, 100), (255, 255, 255, 0))
    ImageDraw.Draw(image).line([(10, 80), (100, 20), (200, 70), (390, 30)], fill=(0, 0, 0, 255), width=4)
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def poppler(tool: str, pdf: Path, *args: str) -> str:
    return subprocess.run([tool, *args, str(pdf), *(["-"] if tool == "pdftotext" else [])],
                          capture_output=True, text=True, check=True).stdout  # fmt: skip


def one_space(text: str) -> str:
    return re.sub(r"\s+", " ", text)


# --- definitions ---------------------------------------------------------------------------------


@pytest.mark.parametrize("tenant", CITIES)
def test_every_catalogue_form_is_defined(tenant: str) -> None:
    config = city(tenant)
    assert config.catalogue is not None
    catalogue = {f.id: f.name for f in config.catalogue.forms}
    forms = {f.definition.id: f for f in config.forms}
    assert len(forms) == COUNTS[tenant] == len(catalogue)
    assert {i: f.definition.name for i, f in forms.items()} == catalogue
    for form_id, source in forms.items():
        definition = source.definition
        assert (definition.version, definition.effective_from) == ("2026.1", config.catalogue.effective_from)
        shown = {i for s in definition.sections for i in s.fields}
        declared = {f.id for f in definition.fields} | {t.id for t in definition.tables}
        assert shown == declared, f"{form_id}: the form screen shows only the fields in sections"
    assert OWN_LAYOUTS[tenant] == {i for i, f in forms.items() if f.template is not None}


@pytest.mark.parametrize("tenant", CITIES)
def test_own_layouts_print_every_field(tenant: str) -> None:
    """What is asked is on the paper: every field appears in the city's layout (certificate rows
    are printed by a loop over copies_*/unit_*; request_summary is for the back linkage only)."""
    for source in city(tenant).forms:
        if source.template is None:
            continue
        used = set(re.findall(r"\b(?:f|labels|fields)\.([a-z0-9_]+)", source.template))
        missing = [
            f.id for f in source.definition.fields
            if f.id not in used and f.id != "request_summary" and not f.id.startswith(("copies_", "unit_"))
        ]  # fmt: skip
        tables = [t.id for t in source.definition.tables if not re.search(rf"\bt\.{t.id}\b", source.template)]
        assert (missing, tables) == ([], []), source.definition.id


# --- filling and printing ------------------------------------------------------------------------


@pytest.mark.parametrize("tenant", CITIES)
def test_every_form_fills_from_the_household_and_prints(tenant: str, tmp_path: Path) -> None:
    config = city(tenant)
    longest = None
    for source in config.forms:
        definition = source.definition
        filled = filled_form(tenant, source)
        assert filled.problems == {}, definition.id
        for spec in definition.fields:
            if spec.source in ("resident.name", "head.name"):
                assert filled.values[spec.id] == "𠮷田\u3000太郎", (definition.id, spec.id)
            if spec.source == "resident.address_extra":
                assert filled.values[spec.id] == KATAGAKI, (definition.id, spec.id)
            if spec.source == "event.date":
                assert filled.values[spec.id] == "令和8年4月10日", (definition.id, spec.id)
        for rows in filled.tables.values():
            assert [r["name"] for r in rows] == [p.name for p in household(tenant).members]
        html = render_html(filled, tenant_name=config.tenant.name, template=source.template, issued=ISSUED)
        assert "令和8年4月13日" in html, definition.id
        assert "𠮷田" in html, definition.id
        if source.template is None and (
            longest is None or len(definition.fields) > len(longest[0].definition.fields)
        ):
            longest = (source, filled)
    # The generic layout is shared by every other form: print the longest one of the city.
    assert longest is not None
    pdf = tmp_path / "generic.pdf"
    pdf.write_bytes(render_pdf(longest[1], tenant_name=config.tenant.name, issued=ISSUED))
    assert "𠮷田 太郎" in one_space(poppler("pdftotext", pdf, "-raw"))


def expected_in_print(source: FormSource, filled: FilledForm) -> set[str]:
    """Names and 和暦 dates the printed sheet must carry exactly."""
    expected = {"令和8年4月13日"}  # the print date
    for spec in source.definition.fields:
        value = filled.values.get(spec.id)
        if value and (spec.type == "date" or spec.source in ("resident.name", "head.name")):
            expected.add(str(value))
    for table in source.definition.tables:
        for row in filled.tables[table.id]:
            if table.id == "children" and row["relation"] not in CHILD_RELATIONS:
                continue  # the child tables print the children only
            expected |= {row["name"], row.get("birth", "")} - {""}
    return {one_space(e) for e in expected}


@pytest.mark.parametrize(("tenant", "form_id"), [(c, f) for c in CITIES for f in sorted(OWN_LAYOUTS[c])])
def test_own_layout_fits_one_page_with_exact_names_and_dates(
    tenant: str, form_id: str, tmp_path: Path
) -> None:
    source = next(f for f in city(tenant).forms if f.definition.id == form_id)
    worst = {f.id: longest_typed_in(f) for f in source.definition.fields
             if f.source == "input" and not f.id.startswith("unit_")}  # fmt: skip
    filled = filled_form(tenant, source, **worst)
    assert filled.ok, filled.problems
    path = tmp_path / f"{uuid.uuid4().hex}.pdf"
    path.write_bytes(render_pdf(filled, tenant_name=city(tenant).tenant.name, template=source.template,
                                signature_png=signature_png(), issued=ISSUED))  # fmt: skip
    assert re.search(r"^Pages:\s+1$", poppler("pdfinfo", path), re.M), "the layout must fit one A4 page"
    text = one_space(poppler("pdftotext", path, "-raw"))
    missing = sorted(e for e in expected_in_print(source, filled) if e not in text)
    assert missing == []
    assert "𠮷田 太郎" in text
    if any(f.source == "resident.address_extra" for f in source.definition.fields):
        assert KATAGAKI in re.sub(r"\s", "", text)  # wrapped inside its box, never cut
    assert "IPAmjMincho" in poppler("pdffonts", path)  # names print in IPAmj明朝 (class mj)
    words = re.findall(r'<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">',
                       poppler("pdftotext", path, "-bbox"))  # fmt: skip
    margin = 5 * POINTS_PER_MM
    assert all(float(x0) >= margin and float(x1) <= A4[0] - margin and float(y1) <= A4[1] - margin
               for x0, _, x1, y1 in words), "text outside the printable area"  # fmt: skip
    assert len(poppler("pdfimages", path, "-list").splitlines()) > 2  # the signature is drawn


@pytest.mark.parametrize(
    ("tenant", "form_id"),
    [(c, f.definition.id) for c in CITIES for f in city(c).forms
     if f.template is not None and any(t.id == "children" for t in f.definition.tables)],
)  # fmt: skip
def test_own_layout_child_tables_fit_one_page_when_full(tenant: str, form_id: str, tmp_path: Path) -> None:
    """A parent with as many children as the table takes, every typed field at its longest."""
    source = next(f for f in city(tenant).forms if f.definition.id == form_id)
    rows = next(t.max_rows for t in source.definition.tables if t.id == "children")
    subject = household(tenant)
    subject.members = subject.members[:1] + [
        Person(f"𠮷田\u3000﨑{i}", "ヨシダ サキ", parse("2015-05-01"), 2, "子") for i in range(rows - 1)
    ]
    worst = {f.id: longest_typed_in(f) for f in source.definition.fields
             if f.source == "input" and not f.id.startswith("unit_")}  # fmt: skip
    filled = fill(source.definition, subject, worst)
    assert filled.ok, filled.problems
    path = tmp_path / "full.pdf"
    path.write_bytes(render_pdf(filled, tenant_name=city(tenant).tenant.name, template=source.template))
    assert re.search(r"^Pages:\s+1$", poppler("pdfinfo", path), re.M)
    text = one_space(poppler("pdftotext", path, "-raw"))
    assert all(f"𠮷田 﨑{i}" in text for i in range(rows - 1))


# --- fees -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("tenant", CITIES)
def test_fee_fields_compute_from_fees_yaml(tenant: str) -> None:
    config = city(tenant)
    fees = config.fees.fees
    charged = 0
    for source in config.forms:
        definition = source.definition
        assert definition.fee_item is None or definition.fee_item in fees, definition.id
        units = {f.id: f.help.removeprefix("手数料表: ") for f in definition.fields
                 if f.help and f.help.startswith("手数料表: ")}  # fmt: skip
        for field_id, item in units.items():
            assert item in fees, (definition.id, item)
            assert definition.field(field_id).default == str(fees[item]), (definition.id, field_id)
        copies = {f.id: "2" for f in definition.fields if f.id.startswith("copies_")}
        if not copies:
            continue
        assert definition.fee_item is not None, definition.id
        filled = filled_form(tenant, source, **copies)
        total = sum(2 * fees[units["unit_" + c.removeprefix("copies_")]] for c in copies)
        assert filled.values["total_fee"] == f"{total:,}", definition.id
        charged += 1
    assert charged >= {"osaka": 3, "gobo": 4, "yamaguchi": 7}[tenant]


@pytest.mark.parametrize("tenant", CITIES)
def test_fees_agree_with_the_procedures(tenant: str) -> None:
    """A certificate procedure's fee is the fee of the fees.yaml item it names (住民票の写しの交付 →
    住民票の写し, 戸籍全部事項証明書（戸籍謄本）の交付 → 戸籍全部事項証明書); 無料 is 0."""
    config = city(tenant)
    assert config.catalogue is not None
    fees = config.fees.fees
    matched = 0
    for procedure in config.catalogue.procedures:
        items = [i for i in fees if re.match(rf"{re.escape(i)}(の交付|（|・)", procedure.name)]
        if not items:
            continue
        item = max(items, key=len)
        if procedure.fee is None:
            assert fees[item] == 0, procedure.id
            assert procedure.fee_text == "無料", procedure.id
        else:
            assert fees[item] == procedure.fee, (procedure.id, item)
        matched += 1
    assert matched >= 9
    if tenant == "gobo":
        inkan = next(p for p in config.catalogue.procedures if p.id == "inkan_touroku")
        assert fees["印鑑登録証の交付"] == inkan.fee


# --- back linkage --------------------------------------------------------------------------------


def application(tenant: str, source: FormSource, number: int) -> Application:
    filled = filled_form(tenant, source)
    return Application(
        id=number, form_id=source.definition.id, form_version=source.definition.version,
        data={"values": filled.values, "tables": filled.tables},
        accepted_at=dt.datetime(2026, 4, 10, 1, 30, tzinfo=dt.UTC), case_ref=None,
    )  # fmt: skip


@pytest.mark.parametrize("tenant", CITIES)
def test_every_outbound_target_builds_its_csv(tenant: str) -> None:
    config = city(tenant)
    forms = {f.definition.id: f for f in config.forms}
    targets = config.linkage.outbound
    assert {f for t in targets for f in t.forms} == {i for i, f in forms.items() if f.definition.export}
    assert any(
        t.rows == "members" and t.forms == ["juumin_idou_todoke"] and t.encoding == "cp932" for t in targets
    )
    gaiji = dict(config.linkage.residents.gaiji)
    from_gaiji = str.maketrans(gaiji)
    for target in targets:
        assert target.bucket == f"{tenant}-core-outbound", target.name
        assert target.prefix, target.name
        apps = [application(tenant, forms[f], n) for n, f in enumerate(target.forms, start=1)]
        data, rows = build_csv(target, apps, gaiji)
        assert data.startswith(b"\xef\xbb\xbf") == (target.encoding == "utf-8-sig"), target.name
        text = data.decode("utf-8-sig" if target.encoding == "utf-8-sig" else target.encoding)
        table = list(csv.reader(io.StringIO(text), delimiter=target.delimiter))
        assert table[0] == [c.name for c in target.columns], target.name
        assert all(len(r) == len(target.columns) for r in table[1:]), target.name
        per_application = 4 if target.rows == "members" else 1  # one row per moving member
        assert rows == len(table) - 1 == per_application * len(apps), target.name
        names = [c.name for c in target.columns]
        name_columns = [
            i for i, c in enumerate(target.columns) if c.value in ("member.name", "field.applicant_name")
        ]
        assert name_columns, target.name
        printed = {row[name_columns[0]].translate(from_gaiji) for row in table[1:]}
        if target.encoding == "cp932" and "𠮷" not in gaiji.values():
            printed = {p.replace("〓", "𠮷") for p in printed}  # no 外字 code: cp932 cannot hold 𠮷
        assert "𠮷田\u3000太郎" in printed, target.name
        if target.rows == "members":
            assert printed == {p.name for p in household(tenant).members}
            date_column = next(i for i, c in enumerate(target.columns) if c.value == "field.move_date")
            assert {row[date_column] for row in table[1:]} == {format_wareki(EVENT)}
        assert names[0] in ("申請番号", "SHINSEI_NO"), target.name
        assert {r[0] for r in table[1:]} == {str(a.id) for a in apps}, target.name


# --- provisioning ---------------------------------------------------------------------------------


def test_synced_cities_hold_every_form_as_an_approved_version(provisioned: object) -> None:
    for tenant in CITIES:
        with tenant_session(tenant) as session:
            count = session.scalar(
                select(func.count(func.distinct(FormVersion.form_id))).where(FormVersion.status == "approved")
            )
        assert count == COUNTS[tenant], tenant


def test_definitions_round_trip_through_the_stored_json() -> None:
    """form_versions stores definition.model_dump(mode="json"); it must load back unchanged."""
    for tenant in CITIES:
        for source in city(tenant).forms:
            stored = source.definition.model_dump(mode="json")
            assert FormDefinition.model_validate(stored) == source.definition
