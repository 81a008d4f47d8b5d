"""Contract end: delete a city's data after its hand-over, with a deletion certificate (ADR 0013).

A throwaway city (``endaa``, code 99060x) is provisioned for each test: the real ones stay intact,
which is itself checked (Gobo's documents survive the other city's deletion).
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, select

from app import storage
from app.audit import Actor
from app.audit import service as audit_service
from app.audit.sealing import seal
from app.audit.service import actor_var
from app.audit.storage import AuditStore
from app.db import provision
from app.db.engine import admin_engine
from app.residents.models import Resident
from app.tenancy.config import code_check_digit
from app.tenancy.decommission import DecommissionRefused, decommission
from app.tenancy.export import export_tenant
from app.tenancy.loader import load_tenant
from app.tenancy.models import TenantDecommission
from app.tenancy.provisioning import TenantSyncError, deprovision, sync
from app.tenancy.service import registry
from tests.conftest import ROOT, madoguchi, tenant_session, without_forms

CITY = "endaa"
CODE = "99060" + str(code_check_digit("99060"))
LINKAGE_BUCKET = "endaa-madoguchi-linkage"


def _folder(tmp: Path) -> Path:
    root = tmp / "tenants"
    shutil.copytree(ROOT / "tenants" / "_defaults", root / "_defaults")
    folder = root / CITY
    shutil.copytree(ROOT / "tenants" / "gobo", folder)
    without_forms(folder)
    for name in ("guidance.yaml", "procedures.yaml"):
        (folder / name).unlink(missing_ok=True)
    tenant_yaml = folder / "tenant.yaml"
    tenant_yaml.write_text(
        tenant_yaml.read_text(encoding="utf-8")
        .replace("id: gobo", f"id: {CITY}")
        .replace('code: "302058"', f'code: "{CODE}"')
        .replace("name: 御坊市", "name: 試験市"),
        encoding="utf-8",
    )
    linkage = folder / "linkage.yaml"
    linkage.write_text(linkage.read_text(encoding="utf-8").replace("gobo-", "endaa-"), encoding="utf-8")
    return folder


def _resident(atena: str) -> Resident:
    return Resident(
        atena_no=atena, household_no="H" + atena, household_order=1, name="試験 太郎", name_search="試験太郎",
        kana="シケン タロウ", kana_search="シケンタロウ", kana_confirmed=True,
        birth={"text": "1980-01-02", "iso": "1980-01-02"}, birth_date=None, sex=1, relation="世帯主",
        address="試験市1番地", address_search="1番地", status="住民", kind="日本人", row_hash=0, last_batch_id=0,
    )  # fmt: skip


def _empty(s3: Any, bucket: str, prefix: str = "") -> None:
    """Remove what an earlier test left (locally the audit lock is GOVERNANCE, which a test may bypass)."""
    listed = s3.list_object_versions(Bucket=bucket, Prefix=prefix)
    for item in [*listed.get("Versions", []), *listed.get("DeleteMarkers", [])]:
        s3.delete_object(
            Bucket=bucket, Key=item["Key"], VersionId=item["VersionId"], BypassGovernanceRetention=True
        )


def _forget_decommission() -> None:
    with admin_engine().begin() as conn:
        conn.execute(delete(TenantDecommission).where(TenantDecommission.id == CITY))


@pytest.fixture
def city(tmp_path: Path, committed: Any) -> Iterator[Path]:
    deprovision([CITY])  # whatever a run stopped half-way left
    _forget_decommission()
    audit = AuditStore.from_settings()
    audit.ensure_bucket()
    _empty(audit.client, audit.bucket, audit.tenant_prefix("t_" + CODE))
    folder = _folder(tmp_path)
    sync({CITY: load_tenant(folder).config})
    token = actor_var.set(Actor("staff", "1", "管理 一郎", "admin-pc"))
    with tenant_session(CITY) as s:
        s.add(_resident("9900000001"))
        s.commit()
    record = registry.get(CITY)
    assert record is not None
    with tenant_session(CITY) as s:
        audit_service.record(s, "resident.search", purpose="住民検索", details={"kana": "シケン"})
        s.commit()
    with tenant_session(CITY) as s:
        assert seal(record, s).action == "sealed"  # a seal under Object Lock in the audit bucket
        s.commit()
    storage.put(storage.tenant_key(CITY, "forms", "1.pdf"), b"%PDF-endaa", "application/pdf")
    storage.put(storage.tenant_key("gobo", "forms", "keep.pdf"), b"%PDF-gobo", "application/pdf")
    s3 = storage.client()
    with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
        s3.create_bucket(
            Bucket=LINKAGE_BUCKET, CreateBucketConfiguration={"LocationConstraint": "ap-northeast-1"}
        )
    _empty(s3, LINKAGE_BUCKET)  # what an earlier test left
    s3.put_bucket_versioning(Bucket=LINKAGE_BUCKET, VersioningConfiguration={"Status": "Enabled"})
    for body in (b"v1", b"v2"):  # two versions: the old one must go too
        s3.put_object(Bucket=LINKAGE_BUCKET, Key="juki/GOBO_JUKI_ZEN_20261101.csv", Body=body)
    yield folder
    actor_var.reset(token)
    deprovision([CITY])
    _forget_decommission()


def _record() -> Any:
    record = registry.get(CITY)
    assert record is not None
    return record


def _schema_exists(record: Any) -> bool:
    with admin_engine().connect() as conn:
        return provision.schema_and_role_exist(conn, record.binding)[0]


def test_nothing_is_deleted_without_the_code_an_intact_export_and_a_quiet_city(
    city: Path, tmp_path: Path
) -> None:
    record = _record()
    out = tmp_path / "handover"
    export_tenant(record, out)

    with pytest.raises(DecommissionRefused, match="地方公共団体コード"):
        decommission(record, out, "302058", "cli:test")

    residents_csv = out / "tables" / "residents.csv"
    original = residents_csv.read_bytes()
    residents_csv.write_bytes(original.replace(b"9900000001", b"9900000009"))
    with pytest.raises(DecommissionRefused, match=f"{residents_csv} が書き出したときと異なります"):
        decommission(record, out, CODE, "cli:test")
    residents_csv.write_bytes(original)

    with tenant_session(CITY) as s:  # the city is still at work after the export
        s.add(_resident("9900000002"))
        s.commit()
    with pytest.raises(DecommissionRefused, match="residents: 書き出し 1 行、現在 2 行"):
        decommission(record, out, CODE, "cli:test")

    with pytest.raises(DecommissionRefused, match="を読めません"):
        decommission(record, tmp_path / "nowhere", CODE, "cli:test")

    assert _schema_exists(record)
    assert storage.get(storage.tenant_key(CITY, "forms", "1.pdf")) == b"%PDF-endaa"
    assert registry.get(CITY) is not None


def test_contract_end_deletes_everywhere_and_certifies_it(city: Path, tmp_path: Path) -> None:
    record = _record()
    out = tmp_path / "handover"
    export_tenant(record, out)
    certificate_pdf = tmp_path / "certificate.pdf"

    done = madoguchi(
        "tenants", "decommission", CITY, "--export", str(out), "--confirm", CODE,
        "--certificate", str(certificate_pdf), "--json",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    certificate = json.loads(done.stdout)

    # The database: schema, role and registry row gone; the record of it kept.
    registry.invalidate()
    assert registry.get(CITY) is None
    with admin_engine().connect() as conn:
        assert provision.schema_and_role_exist(conn, record.binding) == (False, False)
        kept = conn.execute(select(TenantDecommission).where(TenantDecommission.id == CITY)).one()
    assert kept.code == CODE
    assert kept.certificate["database"]["rows"] >= 1

    # Objects: every version of the city's files is gone, another city's stay.
    s3 = storage.client()
    assert s3.list_objects_v2(Bucket=storage.bucket(), Prefix=f"{CITY}/").get("KeyCount") == 0
    assert storage.get(storage.tenant_key("gobo", "forms", "keep.pdf")) == b"%PDF-gobo"
    versions = s3.list_object_versions(Bucket=LINKAGE_BUCKET, Prefix="juki/")
    assert versions.get("Versions", []) == []
    assert versions.get("DeleteMarkers", []) == []
    by_label = {o["label"]: o for o in certificate["objects"]}
    assert by_label["帳票・出力ファイル"]["deleted"] == 1
    assert by_label["連携ファイル（cokas-juki）"]["deleted"] == 2
    # The seal is under Object Lock: kept, with the date it may go.
    sealed = by_label["操作ログの封印・退避"]
    assert sealed["retained"] >= 1
    assert sealed["retained_until"] is not None

    # The certificate: A4 PDF in Japanese with 和暦 dates.
    text = subprocess.run(
        ["pdftotext", "-layout", str(certificate_pdf), "-"], capture_output=True, text=True, check=True
    ).stdout
    flat = "".join(text.split())
    assert "データ消去証明書" in flat
    assert "試験市長様" in flat
    assert "令和" in flat
    assert certificate["handover"]["manifest_sha256"] in flat
    assert text.count("\f") == 1  # one A4 page

    # The id cannot come back by accident.
    with pytest.raises(
        TenantSyncError, match=f"契約終了でデータを消去したテナントは作成し直しません: {CITY}"
    ):
        sync({CITY: load_tenant(city).config})
