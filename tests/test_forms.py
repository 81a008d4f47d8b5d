"""Forms: names print right, long values stay in their boxes, templates are checked, applications
are stored, certificate fees computed, and the back linkage delivers exactly once."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from app.audit import Actor
from app.forms.backlink import export, safe_cell
from app.forms.fill import Person
from app.forms.models import Application, Delivery, ExportBatch, FormVersion
from app.forms.render import check_template
from app.forms.service import (
    FormInputError,
    accept,
    active_form,
    form_names,
    list_forms,
    print_form,
    request_certificate,
    submit,
)
from app.linkage.config import OutboundTarget
from app.tenancy.loader import TenantConfigError, load_tenant
from tests.conftest import ROOT, login, make_staff, tenant_session
from tests.forms_support import (
    BUCKET,
    LONG_KATAGAKI,
    TENANT,
    config,
    family,
    pdf_text,
    tenant_files,
)

# --- printing -------------------------------------------------------------------------------------


def test_names_print_exactly_in_the_text_layer(clean: None, tmp_path: Path) -> None:
    _, cfg = config()
    with tenant_session(TENANT) as session:
        _, pdf = print_form(session, cfg, "juumin_idou", family())
    text = pdf_text(pdf, tmp_path)
    assert "𠮷田" in text  # outside the BMP
    assert "髙橋" in text
    assert "﨑子" in text
    assert "葛\U000e0102城" in text  # the IVS sequence survives
    assert "昭和50年 月日不詳" in text
    assert "令和元年5月1日" in text


def test_a_sixty_character_katagaki_stays_inside_its_box(clean: None, tmp_path: Path) -> None:
    _, cfg = config()
    with tenant_session(TENANT) as session:
        _, pdf = print_form(session, cfg, "katagaki_box", family())
    html = pdf_text(pdf, tmp_path, "-bbox")
    points_per_mm = 72 / 25.4
    left, right = 20 * points_per_mm, 80 * points_per_mm  # the box: 20 mm from the edge, 60 mm wide
    words = re.findall(
        r'<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="[\d.]+">([^<]*)</word>', html
    )
    box_words = [
        (float(x0), float(y0), float(x1), w)
        for x0, y0, x1, w in words
        if 40 * points_per_mm < float(y0) < 250 * points_per_mm  # below the heading, above the page footer
    ]
    assert "".join(w for *_, w in box_words) == LONG_KATAGAKI
    assert all(left - 1 <= x0 and x1 <= right + 1 for x0, _, x1, _ in box_words), box_words
    assert len({round(y0) for _, y0, _, _ in box_words}) >= 2  # it wrapped instead of overflowing


def test_template_errors_are_refused_with_their_line(form_tenant: Path, tmp_path: Path) -> None:
    assert next(str(p) for p in check_template("{{ f.name }}\n{% if %}", {"name"})).startswith(
        "2行目: テンプレートの構文エラー"
    )
    assert [str(p) for p in check_template("{{ f.name }}\n<p>{{ f.ghost }}</p>", {"name"})] == [
        "2行目: 項目「ghost」はこの様式にありません"
    ]
    broken = tenant_files(tmp_path)
    template = broken / "forms" / "katagaki_box" / "template.html"
    template.write_text(
        template.read_text(encoding="utf-8").replace("{{ f.katagaki }}", "{{ f.katagaki }}{{ f.address }}"),
        encoding="utf-8",
    )
    with pytest.raises(TenantConfigError) as info:
        load_tenant(broken)
    assert any(
        "katagaki_box/template.html" in str(i) and "項目「address」" in str(i) for i in info.value.issues
    )


def test_the_version_in_force_is_listed_once_per_form(clean: None) -> None:
    """list_forms and form_names (one query each) pick what active_form picks: the approved version
    with the latest effective date on the day, never a draft or a future version."""
    import datetime as dt

    day = dt.date(2026, 11, 20)
    with tenant_session(TENANT) as session:
        base = session.scalars(select(FormVersion).where(FormVersion.form_id == "juumin_idou")).first()
        assert base is not None

        def version(name: str, effective: str, status: str = "approved") -> None:
            definition = {**base.definition, "name": name, "version": name, "effective_from": effective}
            session.add(FormVersion(form_id="juumin_idou", version=name, effective_from=dt.date.fromisoformat(effective),
                                    definition=definition, template=base.template, content_hash=uuid.uuid4().hex,
                                    status=status, origin="admin", created_by="test"))  # fmt: skip

        version("令和8年11月版", "2026-11-01")
        version("令和9年版", "2027-01-01")  # not yet in force
        version("下書き", "2026-11-10", status="draft")
        session.flush()
        listed = [f for f in list_forms(session, day) if f.definition.id == "juumin_idou"]
        assert [f.definition.name for f in listed] == ["令和8年11月版"]
        assert listed[0].row_id == active_form(session, "juumin_idou", day).row_id
        names = form_names(session, day)
        assert names["juumin_idou"] == "令和8年11月版"
        assert set(names) == {f.definition.id for f in list_forms(session, day)}
        assert list(names) == sorted(names)
        session.rollback()


def test_corrections_and_validation_per_field(clean: None) -> None:
    _, cfg = config()
    with tenant_session(TENANT) as session:
        filled, _ = print_form(
            session, cfg, "juumin_idou", family(), {"applicant_kana": "よしだ 2", "phone": "x" * 30}
        )
        assert filled.problems == {
            "applicant_kana": "フリガナはカナで入力してください",
            "phone": "電話番号は20文字以内で入力してください（30文字）",
        }
        with pytest.raises(FormInputError, match="項目「nope」"):
            print_form(session, cfg, "juumin_idou", family(), {"nope": "1"})


def test_computed_fee_field(clean: None, tmp_path: Path) -> None:
    _, cfg = config()
    with tenant_session(TENANT) as session:
        filled, pdf = print_form(
            session,
            cfg,
            "shoumei_seikyu",
            family(),
            {"certificate": "juminhyo", "copies": "3", "purpose": "就職"},
        )
    assert filled.values["total_fee"] == "900"
    assert "900" in pdf_text(pdf, tmp_path)


def test_answer_checkboxes_read_the_guidance_strings() -> None:
    """Answers carried over from the guidance page arrive as "yes"/"no": "no" is not a ticked box."""
    from app.forms.definition import FormDefinition
    from app.forms.fill import fill

    definition = FormDefinition.model_validate({
        "id": "answers", "name": "回答", "version": "1", "effective_from": "2026-04-01",
        "fields": [{"id": "insured", "label": "勤務先の保険", "type": "checkbox", "source": "answer.employer_insurance"}],
    })  # fmt: skip
    subject = family()
    for answer, ticked in (("no", False), ("yes", True), (True, True), (False, False), (None, False)):
        subject.answers = {"employer_insurance": answer}
        assert fill(definition, subject).values["insured"] is ticked, answer


# --- applications and certificate requests --------------------------------------------------


def test_submitted_application_keeps_values_version_and_pdf(clean: None) -> None:
    record, cfg = config()
    with tenant_session(TENANT) as session:
        application = submit(
            session,
            record,
            cfg,
            "juumin_idou",
            family(),
            created_by="7",
            corrections={"phone": "0738-22-0001"},
        )
        session.commit()
        stored = session.get(Application, application.id)
        assert stored is not None
        assert (stored.form_version, stored.status, stored.data["values"]["phone"]) == (
            "2026.1",
            "submitted",
            "0738-22-0001",
        )
        assert stored.data["tables"]["members"][0]["name"] == "𠮷田\u3000太郎"
    body = (
        boto3.client("s3", endpoint_url=os.environ["MADOGUCHI_S3_ENDPOINT_URL"])
        .get_object(
            Bucket=os.environ["MADOGUCHI_DOCUMENTS_BUCKET"], Key=f"{TENANT}/applications/{application.id}.pdf"
        )["Body"]
        .read()
    )
    assert body.startswith(b"%PDF")


def test_submission_with_problems_is_refused(clean: None) -> None:
    record, cfg = config()
    subject = family()
    subject.resident = Person("", None, None)  # no name: a required field is empty
    with tenant_session(TENANT) as session, pytest.raises(FormInputError) as info:
        submit(session, record, cfg, "juumin_idou", subject, created_by="7")
    assert info.value.problems["applicant_name"] == "届出人 氏名を入力してください"


def test_certificate_request_fee_and_rules(clean: None) -> None:
    _, cfg = config()
    with tenant_session(TENANT) as session:
        request = request_certificate(session, cfg, certificate="戸籍全部事項証明書", requester_name="𠮷田 太郎",
                                      requester_relation="本人", purpose="相続", copies=2)  # fmt: skip
        assert (request.unit_fee, request.total_fee) == (450, 900)
        with pytest.raises(FormInputError, match="委任状"):
            request_certificate(session, cfg, certificate="住民票の写し", requester_name="代理 人",
                                requester_relation="代理人", purpose="x", copies=1)  # fmt: skip
        with pytest.raises(FormInputError, match="手数料表にありません"):
            request_certificate(session, cfg, certificate="婚姻届受理証明書", requester_name="a",
                                requester_relation="本人", purpose="x", copies=1)  # fmt: skip


# --- back linkage --------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class OwnStorage:
    """A moto server of the test's own, so the test can take storage down and bring it back."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        moto = Path(sys.executable).parent / "moto_server"
        self.process = subprocess.Popen([str(moto), "-H", "127.0.0.1", "-p", str(self.port)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        for _ in range(100):
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("moto server did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None

    def client(self):  # type: ignore[no-untyped-def]
        return boto3.client("s3", endpoint_url=self.url, region_name="ap-northeast-1")


@pytest.fixture
def storage_server() -> Iterator[OwnStorage]:
    server = OwnStorage()
    yield server
    server.stop()


def accepted_applications(count: int) -> list[int]:
    record, cfg = config()
    ids = []
    with tenant_session(TENANT) as session:
        for i in range(count):
            corrections = {"phone": '=cmd|"/c calc"!A1' if i == 0 else f"0738-22-{i:04d}"}
            application = submit(
                session, record, cfg, "juumin_idou", family(), created_by="7", corrections=corrections
            )
            accept(session, application.id, "7")
            ids.append(application.id)
        session.commit()
    return ids


def test_export_survives_storage_being_down_and_delivers_exactly_once(
    clean: None, storage_server: OwnStorage
) -> None:
    _, cfg = config()
    target = OutboundTarget.model_validate(
        {**cfg.linkage.outbound[0].model_dump(), "endpoint_url": storage_server.url}
    )
    ids = accepted_applications(3)
    with tenant_session(TENANT) as session:
        first = export(session, target, TENANT, {})  # storage is down: nothing delivered, nothing lost
    assert [r.status for r in first] == ["failed"]
    storage_server.start()
    storage_server.client().create_bucket(
        Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "ap-northeast-1"}
    )
    with tenant_session(TENANT) as session:
        second = export(session, target, TENANT, {})
        third = export(session, target, TENANT, {})  # nothing waiting any more
    assert [r.status for r in second] == ["delivered"]
    assert third == []
    objects = storage_server.client().list_objects_v2(Bucket=BUCKET)["Contents"]
    files = sorted(o["Key"] for o in objects)
    assert len(files) == 2  # one CSV and its manifest
    with tenant_session(TENANT) as session:
        deliveries = session.scalars(select(Delivery.application_id).order_by(Delivery.application_id)).all()
        batches = session.scalars(select(ExportBatch)).all()
    assert deliveries == ids
    assert [(b.status, b.attempts) for b in batches] == [("delivered", 2)]
    data = storage_server.client().get_object(Bucket=BUCKET, Key=batches[0].file_key)["Body"].read()
    manifest = json.loads(
        storage_server.client().get_object(Bucket=BUCKET, Key=batches[0].manifest_key)["Body"].read()
    )
    assert manifest["rows"] == 9  # three applications x three members (one row per member for the RPA)
    rows = list(csv.reader(io.StringIO(data.decode("cp932"))))  # opens in the declared encoding
    assert rows[0] == ["申請番号", "行", "届出人", "電話", "氏名", "生年月日", "区分"]
    assert rows[1][3] == '\'=cmd|"/c calc"!A1'  # the formula is escaped
    assert rows[1][4] == "〓田\u3000太郎"  # cp932 cannot hold 𠮷 and this target has no 外字 code for it
    assert rows[2][4] == "髙橋\u3000﨑子"
    assert [r[6] for r in rows[1:]] == ["転入"] * 9
    assert manifest["sha256"] == __import__("hashlib").sha256(data).hexdigest()


def test_build_csv_cells_per_application_and_per_member_row() -> None:
    import datetime as dt

    from app.forms.backlink import build_csv

    columns = [
        {"name": "申請番号", "value": "application.id"},
        {"name": "受理", "value": "application.accepted_at"},
        {"name": "行", "value": "row"},
        {"name": "電話", "value": "field.phone"},
        {"name": "氏名", "value": "member.name"},
        {"name": "区分", "value": "const:=転入"},
    ]
    target = OutboundTarget.model_validate({"name": "t-csv", "bucket": "b-csv", "forms": ["juumin_idou"],
                                            "rows": "members", "member_table": "members", "columns": columns})  # fmt: skip
    accepted = dt.datetime(2026, 11, 21, 1, 2, 3, tzinfo=dt.UTC)
    applications = [
        Application(id=1, accepted_at=accepted, data={"values": {"phone": "+81"}, "tables": {"members": [{"name": "𠮷田"}, {"name": "髙橋"}]}}),
        Application(id=2, accepted_at=None, data={"values": {}, "tables": {"members": []}}),
    ]  # fmt: skip
    data, rows = build_csv(target, applications, {})
    assert rows == 3
    assert list(csv.reader(io.StringIO(data.decode("utf-8")))) == [
        ["申請番号", "受理", "行", "電話", "氏名", "区分"],
        ["1", "2026-11-21 10:02:03", "1", "'+81", "𠮷田", "'=転入"],
        ["1", "2026-11-21 10:02:03", "2", "'+81", "髙橋", "'=転入"],
        ["2", "", "3", "", "", "'=転入"],  # no members: one row, member cells empty
    ]


def test_safe_cell() -> None:
    assert [safe_cell(v) for v in ("=1+1", "+1", "-1", "@x", "\tx", "\rx", "ok", None)] == [
        "'=1+1", "'+1", "'-1", "'@x", "'\tx", "'\rx", "ok", ""
    ]  # fmt: skip
    with pytest.raises(ValueError, match="NUL"):
        safe_cell("a\x00b")


# --- API, CLI, tenancy ------------------------------------------------------------------------------


@pytest.fixture
def client(app: Flask, clean: None) -> FlaskClient:
    login_id = f"clerk{uuid.uuid4().hex[:8]}"
    make_staff(TENANT, login_id, groups=("監督者",))  # files and accepts applications
    test_client = app.test_client()
    login(test_client, TENANT, login_id)
    return test_client


def test_api_forms_fill_submit_accept(client: FlaskClient) -> None:
    forms = {f["id"] for f in client.get(f"/api/v1/{TENANT}/forms").get_json()}
    assert forms == {"juumin_idou", "katagaki_box", "shoumei_seikyu"}
    household = [
        {
            "name": "転入 花子",
            "birth": "1990-01-01",
            "sex": 2,
            "relation": "世帯主",
            "address": "和歌山県御坊市薗350番地",
        }
    ]
    filled = client.post(
        f"/api/v1/{TENANT}/forms/juumin_idou/fill",
        json={"household": household, "values": {"applicant_kana": "abc"}},
    ).get_json()
    assert filled["problems"] == {"applicant_kana": "フリガナはカナで入力してください"}
    refused = client.post(
        f"/api/v1/{TENANT}/applications",
        json={"form_id": "juumin_idou", "household": household, "values": {"applicant_kana": "abc"}},
    )
    assert refused.status_code == 422
    assert refused.get_json()["errors"]["json"]["values.applicant_kana"] == [
        "フリガナはカナで入力してください"
    ]
    created = client.post(
        f"/api/v1/{TENANT}/applications", json={"form_id": "juumin_idou", "household": household}
    )
    assert created.status_code == 201
    application = created.get_json()
    accepted = client.post(f"/api/v1/{TENANT}/applications/{application['id']}/accept").get_json()
    assert accepted["status"] == "accepted"
    pdf = client.get(f"/api/v1/{TENANT}/applications/{application['id']}/pdf")
    assert pdf.data.startswith(b"%PDF")


def test_other_tenants_cannot_reach_forms_or_deliveries(app: Flask, client: FlaskClient) -> None:
    household = [{"name": "転入 花子", "birth": "1990-01-01", "sex": 2, "relation": "世帯主", "address": "x"}]
    application = client.post(
        f"/api/v1/{TENANT}/applications", json={"form_id": "juumin_idou", "household": household}
    ).get_json()
    make_staff("osaka", f"o{uuid.uuid4().hex[:6]}")
    osaka = app.test_client()
    login_id = f"o{uuid.uuid4().hex[:6]}"
    make_staff("osaka", login_id)
    login(osaka, "osaka", login_id)
    for path in (
        f"/api/v1/{TENANT}/forms",
        f"/api/v1/{TENANT}/deliveries",
        f"/api/v1/{TENANT}/applications/{application['id']}",
    ):
        assert osaka.get(path).status_code == 404
    assert osaka.get(f"/api/v1/osaka/applications/{application['id']}").status_code == 404
    with tenant_session("osaka") as session:
        assert session.scalar(select(func.count()).select_from(Application)) == 0


def test_cli_forms_list_and_render(form_tenant: Path, clean: None, tmp_path: Path) -> None:
    from app.linkage.config import STANDARD
    from app.linkage.importer import import_local_file
    from tests.linkage_files import person, write

    record, _ = config()
    outcome = import_local_file(record, write(tmp_path / "p.csv", [person(1, 1, 氏名="𠮷田\u3000一郎")], STANDARD.residents),
                                actor=Actor("cli", "t"), standard_layout=True)  # fmt: skip
    assert outcome.status == "applied"
    with tenant_session(TENANT) as session:
        from app.residents.models import Resident

        resident_id = session.scalars(select(Resident.id)).one()
    env = os.environ.copy()
    listed = subprocess.run([sys.executable, "-m", "app.cli", "forms", "list", TENANT, "--json"], cwd=ROOT, env=env,
                            capture_output=True, text=True, check=True).stdout  # fmt: skip
    assert {f["id"] for f in json.loads(listed)} == {"juumin_idou", "katagaki_box", "shoumei_seikyu"}
    out = tmp_path / "form.pdf"
    done = subprocess.run([sys.executable, "-m", "app.cli", "forms", "render", TENANT, "juumin_idou", "--resident",
                           str(resident_id), "--out", str(out)], cwd=ROOT, env=env, capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "𠮷田" in pdf_text(out.read_bytes(), tmp_path)


def test_acceptance_queues_the_export_and_the_cli_sweeps_the_rest(client: FlaskClient) -> None:
    from app.jobs import queue
    from app.storage import client as s3

    household = [{"name": "転入 花子", "birth": "1990-01-01", "sex": 2, "relation": "世帯主", "address": "x"}]
    created = client.post(
        f"/api/v1/{TENANT}/applications", json={"form_id": "juumin_idou", "household": household,
                                               "values": {"phone": "0738-22-0001"}},
    ).get_json()  # fmt: skip
    queued_before = set(queue().job_ids)
    assert client.post(f"/api/v1/{TENANT}/applications/{created['id']}/accept").status_code == 200
    new_jobs = set(queue().job_ids) - queued_before
    assert any(job.startswith(f"{TENANT}__export__all__") for job in new_jobs), new_jobs

    try:
        s3().create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "ap-northeast-1"})
    except s3().exceptions.BucketAlreadyOwnedByYou:
        pass
    swept = subprocess.run([sys.executable, "-m", "app.cli", "forms", "export", TENANT, "--json"], cwd=ROOT,
                           env=os.environ.copy(), capture_output=True, text=True)  # fmt: skip
    assert swept.returncode == 0, swept.stderr
    results = json.loads(swept.stdout)
    assert [(r["target"], r["status"], r["rows"]) for r in results] == [("juki-rpa", "delivered", 1)]
    again = subprocess.run([sys.executable, "-m", "app.cli", "forms", "export", TENANT, "--json"], cwd=ROOT,
                           env=os.environ.copy(), capture_output=True, text=True)  # fmt: skip
    assert all(r["status"] == "nothing" for r in json.loads(again.stdout))  # delivered once
    refused = subprocess.run([sys.executable, "-m", "app.cli", "forms", "export", TENANT, "--target", "nope"],
                             cwd=ROOT, env=os.environ.copy(), capture_output=True, text=True)  # fmt: skip
    assert refused.returncode == 1
    assert "送付先「nope」" in refused.stderr
