"""Contract-end hand-over: ``madoguchi tenants export`` writes a city's complete data (ADR 0013)."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from app import storage
from app.audit import Actor
from app.audit.models import AuditEntry
from app.audit.service import actor_var
from app.identity.models import StaffUser
from app.residents.models import Resident
from app.tenancy.export import EXCLUDED_COLUMNS, EXCLUDED_TABLES, ExportError, export_tenant, exported_tables
from app.tenancy.service import registry
from tests.conftest import madoguchi, tenant_session


def _resident(atena: str, name: str) -> Resident:
    return Resident(
        atena_no=atena, household_no="H" + atena, household_order=1, name=name, name_search=name,
        kana="テスト タロウ", kana_search="テストタロウ", kana_confirmed=True,
        birth={"text": "昭和50年 月日不詳", "iso": None}, birth_date=None, sex=1, relation="世帯主",
        address="和歌山県御坊市薗350番地", address_search="薗350", status="住民", kind="日本人",
        row_hash=0, last_batch_id=0,
    )  # fmt: skip


@pytest.fixture
def cities(db: None) -> Any:
    token = actor_var.set(Actor("staff", "1", "管理 一郎", "admin-pc"))
    with tenant_session("gobo") as s:
        s.add_all([_resident("9100000001", "御坊 一郎"), _resident("9100000002", "御坊 花子")])
        s.commit()
    with tenant_session("osaka") as s:
        s.add(_resident("9200000001", "大阪 次郎"))
        s.commit()
    storage.put(storage.tenant_key("gobo", "forms", "1.pdf"), b"%PDF-gobo", "application/pdf")
    storage.put(storage.tenant_key("osaka", "forms", "1.pdf"), b"%PDF-osaka", "application/pdf")
    yield
    actor_var.reset(token)


def _record(tenant: str) -> Any:
    record = registry.get(tenant)
    assert record is not None
    return record


def _csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def test_export_holds_every_table_of_one_city_and_nothing_of_another(cities: None, tmp_path: Path) -> None:
    out = tmp_path / "gobo-export"
    result = export_tenant(_record("gobo"), out)

    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["tenant"] == {"id": "gobo", "code": "302058", "name": "御坊市", "schema": "t_302058"}
    assert {t["table"] for t in manifest["tables"]} == {t.name for t in exported_tables()}
    assert not {t["table"] for t in manifest["tables"]} & set(EXCLUDED_TABLES)

    residents = _csv(out / "tables" / "residents.csv")
    atena = {r["atena_no"] for r in residents}
    assert {"9100000001", "9100000002"} <= atena
    assert "9200000001" not in atena  # Osaka's resident never appears in Gobo's hand-over
    with tenant_session("gobo") as s:
        assert len(residents) == s.scalar(select(func.count()).select_from(Resident))
    # A 和暦 date with unknown month and day is handed over as stored.
    first = next(r for r in residents if r["atena_no"] == "9100000001")
    assert first["birth"] == "昭和50年 月日不詳"
    assert first["birth_date"] == ""  # NULL: an empty unquoted field

    # Every file is what the manifest says: rows, bytes and SHA-256.
    for entry in manifest["tables"]:
        path = out / entry["file"]
        assert hashlib.sha256(path.read_bytes()).hexdigest() == entry["sha256"]
        assert len(_csv(path)) == entry["rows"], entry["table"]
        header = next(csv.reader(io.StringIO(path.read_text(encoding="utf-8"))))
        assert header == [c["name"] for c in entry["columns"]]
    assert result.rows == sum(t["rows"] for t in manifest["tables"])

    # Documents: Gobo's printed form only.
    documents = [o for o in manifest["objects"] if o["source"] == "documents"]
    assert "documents/forms/1.pdf" in [o["file"] for o in documents]
    assert all(o["key"].startswith("gobo/") for o in documents)
    assert (out / "documents" / "forms" / "1.pdf").read_bytes() == b"%PDF-gobo"
    assert b"%PDF-osaka" not in b"".join(
        p.read_bytes() for p in (out / "documents").rglob("*") if p.is_file()
    )

    assert manifest["audit_verification"]["ok"] is True
    readme = (out / "README.txt").read_text(encoding="utf-8")
    assert "御坊市（地方公共団体コード 302058）" in readme
    assert "password_hash" in readme


def test_credentials_are_left_out(cities: None, tmp_path: Path) -> None:
    with tenant_session("gobo") as s:
        assert s.scalar(select(func.count()).select_from(StaffUser)) is not None
    out = tmp_path / "export"
    export_tenant(_record("gobo"), out)
    header = (out / "tables" / "staff_users.csv").read_text(encoding="utf-8").splitlines()[0].split(",")
    assert "login" in header
    for table, column in EXCLUDED_COLUMNS:
        first_line = (out / "tables" / f"{table}.csv").read_text(encoding="utf-8").splitlines()[0]
        assert column not in first_line.split(","), (table, column)
    assert not (out / "tables" / "api_tokens.csv").exists()


def test_the_export_is_written_to_the_city_s_own_operation_log(cities: None, tmp_path: Path) -> None:
    result = export_tenant(_record("gobo"), tmp_path / "export")
    with tenant_session("gobo") as s:
        entry = s.scalars(
            select(AuditEntry).where(AuditEntry.action == "tenant.exported").order_by(AuditEntry.seq.desc())
        ).first()
        assert entry is not None
        assert entry.details["rows"] == result.rows
        assert entry.details["manifest_sha256"] == result.manifest_sha256
        assert entry.purpose == "契約終了時のデータ引き渡し"
    with tenant_session("osaka") as s:
        assert (
            s.scalar(
                select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "tenant.exported")
            )
            == 0
        )


def test_an_export_never_overwrites_a_folder(cities: None, tmp_path: Path) -> None:
    out = tmp_path / "used"
    out.mkdir()
    (out / "keep.txt").write_text("earlier hand-over")
    with pytest.raises(ExportError, match=f"出力先 {out} は空のフォルダーではありません"):
        export_tenant(_record("gobo"), out)
    assert (out / "keep.txt").read_text() == "earlier hand-over"


def test_cli_exports_and_refuses_an_unknown_city_and_a_used_folder(tmp_path: Path, committed: Any) -> None:
    out = tmp_path / "cli-export"
    done = madoguchi("tenants", "export", "yamaguchi", "--out", str(out), "--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["tenant"] == "yamaguchi"
    assert summary["tables"] == len(exported_tables())
    assert (out / "manifest.json").is_file()

    unknown = madoguchi("tenants", "export", "nowhere", "--out", str(tmp_path / "x"))
    assert unknown.returncode == 1
    assert "テナント 'nowhere' は登録されていません" in unknown.stderr

    again = madoguchi("tenants", "export", "yamaguchi", "--out", str(out))
    assert again.returncode == 1
    assert "空のフォルダーではありません" in again.stderr
