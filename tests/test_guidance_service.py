"""Guidance through the service, API, CLI and the printed sheet, on a tenant with the test catalogue."""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from app.audit import Actor
from app.audit.models import AuditEntry
from app.guidance.models import CatalogueVersion
from app.linkage.config import STANDARD
from app.linkage.importer import import_local_file
from app.tenancy.config import code_check_digit
from app.tenancy.loader import load_tenant
from app.tenancy.provisioning import deprovision, sync
from app.tenancy.service import registry
from tests.conftest import (
    ROOT,
    STAFF_TABLES,
    login,
    madoguchi,
    make_staff,
    tenant_session,
    truncate_tenant_tables,
    without_forms,
)
from tests.linkage_files import person, write

TENANT = "guidetest"
DATA = ROOT / "tests" / "data" / "catalogue"


def _tenant_files(tmp: Path) -> Path:
    root = tmp / "tenants"
    shutil.copytree(ROOT / "tenants" / "_defaults", root / "_defaults")
    shutil.copytree(ROOT / "tenants" / "gobo", root / TENANT)
    without_forms(root / TENANT)
    text = (root / TENANT / "tenant.yaml").read_text(encoding="utf-8")
    code = "99010" + str(code_check_digit("99010"))
    text = text.replace("id: gobo", f"id: {TENANT}").replace('code: "302058"', f'code: "{code}"')
    (root / TENANT / "tenant.yaml").write_text(text, encoding="utf-8")
    for name in ("guidance.yaml", "procedures.yaml"):
        shutil.copy(DATA / name, root / TENANT / name)
    (root / TENANT / "forms").mkdir(exist_ok=True)
    shutil.copy(DATA / "forms" / "catalog.yaml", root / TENANT / "forms" / "catalog.yaml")
    return root / TENANT


@pytest.fixture(scope="module")
def guide_tenant(tmp_path_factory: pytest.TempPathFactory, provisioned: object) -> Iterator[Path]:
    directory = _tenant_files(tmp_path_factory.mktemp("guide"))
    sync({TENANT: load_tenant(directory).config})
    yield directory
    deprovision([TENANT])


@pytest.fixture
def client(app: Flask, guide_tenant: Path) -> FlaskClient:
    """A logged-in clerk of the test tenant (a fresh account each test: the tenant is module-wide)."""
    login_id = f"clerk{uuid.uuid4().hex[:8]}"
    make_staff(TENANT, login_id)
    test_client = app.test_client()
    login(test_client, TENANT, login_id)
    return test_client


@pytest.fixture
def family(guide_tenant: Path, tmp_path: Path) -> Iterator[int]:
    record = registry.get(TENANT)
    assert record is not None
    truncate_tenant_tables({TENANT: record}, keep=STAFF_TABLES)  # the test's clerk stays signed in
    rows = [
        person(1, 10, 氏名="案内　一郎", 生年月日="1985-05-01"),
        person(2, 10, 世帯内順="2", 続柄="妻", 性別="2", 氏名="案内　花子", 生年月日="1987-02-02"),
        person(3, 10, 世帯内順="3", 続柄="子", 氏名="案内　陽", 生年月日="2023-01-10"),
    ]
    outcome = import_local_file(record, write(tmp_path / "s.csv", rows, STANDARD.residents),
                                actor=Actor("cli", "t"), standard_layout=True)  # fmt: skip
    assert outcome.status == "applied"
    with tenant_session(TENANT) as session:
        from app.residents.models import Resident

        yield session.scalars(select(Resident.id).order_by(Resident.id)).first()  # type: ignore[misc]
    truncate_tenant_tables({TENANT: record}, keep=STAFF_TABLES)  # the test's clerk stays signed in


def test_sync_stores_the_catalogue_version_once(guide_tenant: Path) -> None:
    sync({TENANT: load_tenant(guide_tenant).config})
    with tenant_session(TENANT) as session:
        versions = session.scalars(select(CatalogueVersion.version)).all()
    assert versions == ["2026.1"]


def test_api_guidance_for_a_resident(client: FlaskClient, family: int) -> None:
    response = client.post(f"/api/v1/{TENANT}/guidance", json={"event": "tennyu", "resident_id": family,
                           "event_date": "2026-11-21", "answers": {"wants_inkan": "yes"}})  # fmt: skip
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    needed = {p["name"]: p for p in body["procedures"]}
    assert needed["児童手当 認定請求"]["reason"] == "18歳以下の子 1人（3歳）"
    assert needed["児童手当 認定請求"]["department"] == "kodomo"
    assert [q["id"] for q in body["open_questions"]] == ["employed_insurance", "has_dog"]
    assert {p["name"] for p in body["to_confirm"]} == {"国民健康保険 加入", "犬の登録 所在地変更"}
    with tenant_session(TENANT) as session:
        entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "guidance.determined")).one()
    assert entry.subject_id == str(family)


def test_api_guidance_for_a_described_household(client: FlaskClient) -> None:
    household = [
        {"name": "転入 太郎", "birth": "昭和60年5月1日", "sex": 1, "relation": "世帯主"},
        {"name": "転入 次郎", "birth": "2016-04-01", "sex": 1, "relation": "子"},
    ]
    body = client.post(f"/api/v1/{TENANT}/guidance", json={"event": "tennyu", "household": household,
                       "event_date": "2026-11-21"}).get_json()  # fmt: skip
    assert any(p["reason"] == "18歳以下の子 1人（10歳）" for p in body["procedures"])


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"event": "tennyu"}, "resident_id"),
        ({"event": "tennyu", "household": [{"name": "x", "birth": "令和0年1月1日", "relation": "世帯主"}]}, "household[0].birth"),
        ({"event": "tennyu", "household": [{"name": "x", "birth": "2000-01-01", "relation": "内縁"}]}, "household[0].relation"),
        ({"event": "tennyu", "household": [{"name": "x", "birth": "2000-01-01", "relation": "世帯主"}],
          "answers": {"wants_inkan": "maybe"}}, "answers.wants_inkan"),
        ({"event": "rikon", "household": [{"name": "x", "birth": "2000-01-01", "relation": "世帯主"}]}, "event"),  # not in this catalogue
    ],
)  # fmt: skip
def test_api_guidance_input_errors_name_the_field(
    client: FlaskClient,
    payload: dict,  # type: ignore[type-arg]
    field: str,
) -> None:
    response = client.post(f"/api/v1/{TENANT}/guidance", json=payload)
    assert response.status_code == 422
    assert field in response.get_json()["errors"]["json"]


def test_sheet_pdf_lists_every_determined_procedure(client: FlaskClient, family: int, tmp_path: Path) -> None:
    payload = {"event": "tennyu", "resident_id": family, "event_date": "2026-11-21",
               "answers": {"wants_inkan": "yes", "employed_insurance": "no", "has_dog": "no"}}  # fmt: skip
    body = client.post(f"/api/v1/{TENANT}/guidance", json=payload).get_json()
    pdf = client.post(f"/api/v1/{TENANT}/guidance/sheet", json=payload)
    assert pdf.status_code == 200
    assert pdf.content_type == "application/pdf"
    path = tmp_path / "sheet.pdf"
    path.write_bytes(pdf.get_data())
    text = subprocess.run(
        ["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True
    ).stdout
    assert "手続案内書" in text
    assert "御坊市" in text
    for procedure in body["procedures"]:
        assert procedure["name"] in text, procedure["name"]
    assert "令和8年11月21日" in text  # the event date in 和暦


def test_cli_guidance_with_household_file(guide_tenant: Path, tmp_path: Path) -> None:
    household = tmp_path / "family.json"
    household.write_text(json.dumps([
        {"name": "転入 花子", "kana": "テンニュウ ハナコ", "birth": "1990-01-01", "sex": 2, "relation": "世帯主",
         "attributes": {"マイナンバーカード": "交付済"}},
        {"name": "転入 陽", "birth": "2022-06-01", "sex": 1, "relation": "子"},
    ], ensure_ascii=False), encoding="utf-8")  # fmt: skip
    pdf = tmp_path / "sheet.pdf"
    done = madoguchi("guidance", TENANT, "--household", str(household), "--event", "tennyu",
         "--date", "2026-11-21", "--answer", "wants_inkan=no", "--json", "--pdf", str(pdf))  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    names = [(p["name"], p["department"], p["reason"]) for p in result["procedures"]]
    assert ("児童手当 認定請求", "kodomo", "18歳以下の子 1人（4歳）") in names
    assert any(
        p["name"].startswith("マイナンバーカード") and p["member"] == "転入 花子"
        for p in result["procedures"]
    )
    assert pdf.read_bytes().startswith(b"%PDF")


def test_cli_guidance_rejects_bad_answers_with_exit_1(guide_tenant: Path, tmp_path: Path) -> None:
    household = tmp_path / "h.json"
    household.write_text('[{"name": "a", "birth": "2000-01-01", "relation": "世帯主"}]', encoding="utf-8")
    done = madoguchi("guidance", TENANT, "--household", str(household), "--event", "tennyu",
         "--answer", "no_such=yes")  # fmt: skip
    assert done.returncode == 1
    assert "no_such" in done.stderr


# --- the event's subject, copies and fees, individual applications -------------------------------


def _ids(family: int) -> list[int]:
    from app.residents.models import Resident

    with tenant_session(TENANT) as session:
        return list(session.scalars(select(Resident.id).order_by(Resident.id)))


def test_api_death_asks_who_died_and_never_assumes_the_resident(client: FlaskClient, family: int) -> None:
    """The resident looked up is the visitor (届出人): not taken as the person who died."""
    head, wife, child = _ids(family)
    payload = {
        "event": "shibou",
        "resident_id": wife,
        "event_date": "2026-11-21",
        "answers": {"has_moped": "no"},
    }
    body = client.post(f"/api/v1/{TENANT}/guidance", json=payload).get_json()
    assert body["subjects"] is None
    assert body["subject_label"] == "亡くなった方"
    subject = body["open_questions"][0]
    assert subject["id"] == "subject"
    assert [c["value"] for c in subject["choices"]] == [str(head), str(wife), str(child)]
    assert {p["procedure"] for p in body["to_confirm"]} == {"setainushi_henko"}
    assert body["to_confirm"][0]["questions"] == ["subject"]

    named = client.post(f"/api/v1/{TENANT}/guidance", json={**payload, "subjects": [head]}).get_json()
    assert named["subjects"] == ["案内\u3000一郎"]
    assert named["open_questions"] == []
    assert named["to_confirm"] == []
    assert [m["is_subject"] for m in named["members"]] == [True, False, False]
    # The open question answered like any other (the counter records it so) does the same.
    answered = client.post(f"/api/v1/{TENANT}/guidance", json={**payload, "answers": {"has_moped": "no",
                           "subject": str(head)}}).get_json()  # fmt: skip
    assert answered["subjects"] == named["subjects"]
    with tenant_session(TENANT) as session:
        entries = session.scalars(select(AuditEntry).where(AuditEntry.action == "guidance.determined")
                                  .order_by(AuditEntry.id)).all()  # fmt: skip
    assert entries[-1].details["subjects"] == [head]


def test_api_subject_of_a_described_household_and_a_bad_subject(client: FlaskClient) -> None:
    household = [
        {"name": "届出 太郎", "birth": "1950-01-01", "sex": 1, "relation": "世帯主", "subject": True,
         "attributes": {"国保": "加入"}},
        {"name": "届出 花子", "birth": "1952-02-02", "sex": 2, "relation": "妻", "attributes": {"国保": "加入"}},
    ]  # fmt: skip
    payload = {
        "event": "shibou",
        "household": household,
        "event_date": "2026-11-21",
        "answers": {"has_moped": "no"},
    }
    body = client.post(f"/api/v1/{TENANT}/guidance", json=payload).get_json()
    assert [(p["procedure"], p["member"]) for p in body["procedures"]] == [
        ("shibou_todoke", None), ("kokuho_soushitsu", "届出 太郎"), ("kasou", None)]  # fmt: skip
    assert body["procedures"][0]["deadline"] == "2026-11-27"  # 7 days counting the day of death
    bad = client.post(f"/api/v1/{TENANT}/guidance", json={**payload, "subjects": ["m9"]})
    assert bad.status_code == 422
    assert "subjects" in bad.get_json()["errors"]["json"]
    wrong_type = client.post(f"/api/v1/{TENANT}/guidance", json={**payload, "household": [
        {**household[0], "subject": "perhaps"}]})  # fmt: skip
    assert wrong_type.status_code == 422


def test_api_certificate_copies_and_total_fee_on_the_sheet(client: FlaskClient, tmp_path: Path) -> None:
    payload = {"event": "shomeisho", "household": [{"name": "証明 一郎", "birth": "1970-01-01", "relation": "世帯主"}],
               "answers": {"certificates": {"juminhyo": 2, "koseki": 1}}}  # fmt: skip
    body = client.post(f"/api/v1/{TENANT}/guidance", json=payload).get_json()
    assert [(p["procedure"], p["quantity"], p["fee"], p["fee_total"]) for p in body["procedures"]] == [
        ("shomei_juminhyo", 2, 300, 600), ("shomei_koseki", 1, 450, 450)]  # fmt: skip
    assert body["fee_total"] == 1050
    pdf = client.post(f"/api/v1/{TENANT}/guidance/sheet", json=payload)
    path = tmp_path / "sheet.pdf"
    path.write_bytes(pdf.get_data())
    text = subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True,
                          check=True).stdout  # fmt: skip
    assert "1通300円 × 2通 = 600円" in text
    assert "手数料の合計: 1,050円" in text


def test_api_individual_application(client: FlaskClient) -> None:
    payload = {"event": "kobetsu", "household": [{"name": "個別 一郎", "birth": "1970-01-01", "relation": "世帯主"}],
               "answers": {"applications": ["genkyou"]}}  # fmt: skip
    body = client.post(f"/api/v1/{TENANT}/guidance", json=payload).get_json()
    assert body["event_name"] == "個別申請"
    assert [p["name"] for p in body["procedures"]] == ["児童扶養手当 現況届"]
    catalogue = client.get(f"/api/v1/{TENANT}/guidance/catalogue").get_json()
    assert "kobetsu" in [e["code"] for e in catalogue["events"]]


def test_cli_guidance_names_the_subject(guide_tenant: Path, tmp_path: Path) -> None:
    household = tmp_path / "bereaved.json"
    household.write_text(json.dumps([
        {"name": "死亡 一郎", "birth": "1950-01-01", "sex": 1, "relation": "世帯主", "attributes": {"国保": "加入"}},
        {"name": "死亡 花子", "birth": "1952-02-02", "sex": 2, "relation": "妻", "attributes": {"国保": "加入"}},
    ], ensure_ascii=False), encoding="utf-8")  # fmt: skip
    done = madoguchi("guidance", TENANT, "--household", str(household), "--event", "shibou",
         "--date", "2026-05-28", "--subject", "m2", "--answer", "has_moped=no")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "亡くなった方: 死亡 花子" in done.stdout
    assert "国民健康保険 資格喪失（死亡 花子）" in done.stdout
    assert "期限 令和8年6月3日まで（死亡の事実を知った日を含めて7日以内）" in done.stdout
    unknown = madoguchi("guidance", TENANT, "--household", str(household), "--event", "shibou",
         "--subject", "m7")  # fmt: skip
    assert unknown.returncode == 1
    assert "subjects" in unknown.stderr
    assert "m7" in unknown.stderr
