"""Shared set-up for the forms tests: a tenant (``formtest``) with the test forms and an outbound target."""

from __future__ import annotations

import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.audit import Actor
from app.audit.service import actor_var
from app.dates.japanese import parse
from app.forms.fill import FormSubject, Person
from app.tenancy.config import code_check_digit
from app.tenancy.loader import load_tenant
from app.tenancy.provisioning import deprovision, sync
from app.tenancy.service import registry
from tests.conftest import ROOT, truncate_tenant_tables, without_forms

TENANT = "formtest"
DATA = ROOT / "tests" / "data" / "forms"
BUCKET = "formtest-outbound"
IVS_NAME = "葛\U000e0102城\u3000花子"
LONG_KATAGAKI = (
    "御坊グランドハイツロイヤルスイート東棟ウエストウィング第三ブロック二十七階七千八百九十号室"  # 60 chars
)

OUTBOUND = f"""
outbound:
  - name: juki-rpa
    bucket: {BUCKET}
    prefix: outbound/
    forms: [juumin_idou]
    rows: members
    member_table: members
    encoding: cp932
    columns:
      - {{name: 申請番号, value: application.id}}
      - {{name: 行, value: row}}
      - {{name: 届出人, value: field.applicant_name}}
      - {{name: 電話, value: field.phone}}
      - {{name: 氏名, value: member.name}}
      - {{name: 生年月日, value: member.birth}}
      - {{name: 区分, value: "const:転入"}}
"""


def tenant_files(tmp: Path) -> Path:
    root = tmp / "tenants"
    shutil.copytree(ROOT / "tenants" / "_defaults", root / "_defaults")
    shutil.copytree(ROOT / "tenants" / "gobo", root / TENANT)
    folder = root / TENANT
    without_forms(folder)
    text = (folder / "tenant.yaml").read_text(encoding="utf-8")
    code = "99020" + str(code_check_digit("99020"))
    (folder / "tenant.yaml").write_text(
        text.replace("id: gobo", f"id: {TENANT}").replace('code: "302058"', f'code: "{code}"'),
        encoding="utf-8",
    )
    for name in ("guidance.yaml", "procedures.yaml"):
        (folder / name).unlink(missing_ok=True)
    shutil.rmtree(folder / "forms", ignore_errors=True)
    shutil.copytree(DATA, folder / "forms")
    (folder / "fees.yaml").write_text(
        "fees: {住民票の写し: 300, 印鑑登録証明書: 300, 戸籍全部事項証明書: 450}\n", encoding="utf-8"
    )
    linkage = folder / "linkage.yaml"
    linkage.write_text(linkage.read_text(encoding="utf-8") + OUTBOUND, encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def form_tenant(tmp_path_factory: pytest.TempPathFactory, provisioned: object) -> Iterator[Path]:
    folder = tenant_files(tmp_path_factory.mktemp("forms"))
    sync({TENANT: load_tenant(folder).config})
    yield folder
    deprovision([TENANT])


@pytest.fixture
def clean(form_tenant: Path) -> Iterator[None]:
    record = registry.get(TENANT)
    assert record is not None
    truncate_tenant_tables({TENANT: record})
    token = actor_var.set(Actor("staff", "7", "窓口 七郎", "counter-7"))
    yield
    actor_var.reset(token)
    truncate_tenant_tables({TENANT: record})


def family() -> FormSubject:
    people = [
        Person("𠮷田\u3000太郎", "ヨシダ タロウ", parse("1980-01-02"), 1, "世帯主", "644-0001", "和歌山県御坊市御坊100番地", LONG_KATAGAKI),
        Person("髙橋\u3000﨑子", "タカハシ サキコ", parse("昭和50年 月日不詳"), 2, "妻"),
        Person(IVS_NAME, None, parse("2019-05-01"), 2, "子"),
    ]  # fmt: skip
    return FormSubject(
        "御坊市", "302058", resident=people[0], head=people[0], members=people, event_name="転入"
    )


def pdf_text(pdf: bytes, tmp_path: Path, *args: str) -> str:
    path = tmp_path / f"{uuid.uuid4().hex}.pdf"
    path.write_bytes(pdf)
    return subprocess.run(
        ["pdftotext", *args, str(path), "-"], capture_output=True, text=True, check=True
    ).stdout


def config():  # type: ignore[no-untyped-def]
    record = registry.get(TENANT)
    assert record is not None
    return record, registry.config(record)


def import_family(tmp_path: Path) -> int:
    """A household of three in the forms tenant, through the real importer; the head's id."""
    from sqlalchemy import select

    from app.linkage.config import STANDARD
    from app.linkage.importer import import_local_file
    from app.residents.models import Resident
    from tests.conftest import tenant_session
    from tests.linkage_files import person, write

    record = registry.get(TENANT)
    assert record is not None
    rows = [
        person(1, 1, 氏名="𠮷田\u3000太郎", 氏名フリガナ="ヨシダ タロウ", 方書=LONG_KATAGAKI),
        person(2, 1, 氏名="𠮷田\u3000﨑子", 氏名フリガナ="ヨシダ サキコ", 続柄="妻", 世帯内順="2", 性別="2",
               生年月日="1982-07-07"),
        person(3, 1, 氏名="𠮷田\u3000髙志", 氏名フリガナ="ヨシダ タカシ", 続柄="子", 世帯内順="3",
               生年月日="2019-05-01"),
    ]  # fmt: skip
    outcome = import_local_file(
        record, write(tmp_path / "family.csv", rows, STANDARD.residents), actor=Actor("cli", "t"),
        standard_layout=True,
    )  # fmt: skip
    assert outcome.status == "applied", outcome
    with tenant_session(TENANT) as session:
        return session.scalars(select(Resident.id).where(Resident.relation == "世帯主")).one()
