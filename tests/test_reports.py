"""Monthly reports on a simulated month with known truth (tests/reports_world.py).

Sources are real: a Prometheus started on backfilled blocks (``promtool tsdb create-blocks-from
openmetrics``), the test database, CloudTrail and Config archive files in the local S3 endpoint,
IAM users and roles, Security Hub findings and seeded Cost Explorer results in the moto server;
AWS Config's DescribeComplianceByConfigRule, which moto lacks, through botocore's Stubber with a
recorded response the service model validates. Every number in the JSON is compared with the
truth; pdftotext shows the key figures; page 1 of each PDF goes to var/test-artifacts/.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from botocore.stub import Stubber
from click.testing import CliRunner
from flask import Flask
from sqlalchemy import delete, text, update

from app.audit.canonical import GENESIS, digest, entry_object, format_time
from app.config import get_settings
from app.counter.models import Case, Ticket
from app.db.engine import admin_engine
from app.db.session import session_scope
from app.forms.models import Application, CertificateRequest
from app.observability.models import Incident
from app.pdf import page_images
from app.reports import service
from app.reports.models import MonthlyReport, Release, ReportCapture, SupportInquiry
from app.reports.period import Month
from app.reports.records import add_inquiry, record_release
from app.tenancy.models import Tenant
from app.tenancy.service import TenantRecord, registry
from tests import audit_support
from tests import reports_world as w
from tests.conftest import ROOT, csrf_token, login, make_staff, provider_client, truncate_tenant_tables

pytestmark = pytest.mark.slow
ARTIFACTS = ROOT / "var" / "test-artifacts"
BUCKETS = {
    "MADOGUCHI_CLOUDTRAIL_BUCKET": "madoguchi-test-cloudtrail",
    "MADOGUCHI_CONFIG_BUCKET": "madoguchi-test-config",
}
RECORDED = ROOT / "tests" / "data" / "reports" / "config_describe_compliance_by_config_rule.json"
CITIES = ("osaka", "gobo", "yamaguchi")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- the world --------------------------------------------------------------------------------------


def _prometheus(tmp: Path, truth_out: dict[str, Any], logs: list[Any]) -> subprocess.Popen[bytes]:
    calendars = {t: registry.config(registry.get(t)).sla.service_hours for t in CITIES}  # type: ignore[arg-type]
    truth_out["metrics"] = w.metrics(calendars, tmp / "openmetrics")
    data = tmp / "prom-data"

    def backfill(path: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["promtool", "tsdb", "create-blocks-from", "openmetrics", "-q", str(path), str(data)],
            capture_output=True, text=True, check=False,
        )  # fmt: skip

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(backfill, sorted((tmp / "openmetrics").glob("*.om"))))
    assert all(r.returncode == 0 for r in results), [r.stderr for r in results if r.returncode][:1]
    port = free_port()
    (tmp / "prometheus.yml").write_text("global: {}\n")
    log_file = (tmp / "prometheus.log").open("wb")
    logs.append(log_file)
    proc = subprocess.Popen(
        [
            "prometheus", f"--config.file={tmp / 'prometheus.yml'}", f"--storage.tsdb.path={data}",
            "--storage.tsdb.retention.time=100y", f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log_file, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/-/ready", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    else:
        raise AssertionError("prometheus did not start")
    os.environ["MADOGUCHI_PROMETHEUS_URL"] = url
    return proc


def _aws() -> dict[str, Any]:
    """Archive files in S3, IAM users and roles, Security Hub findings, Cost Explorer results."""
    endpoint = os.environ["MADOGUCHI_AWS_ENDPOINT_URL"]
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="ap-northeast-1")
    for bucket, files in (
        (BUCKETS["MADOGUCHI_CLOUDTRAIL_BUCKET"], w.cloudtrail_files(w.cloudtrail_events())),
        (BUCKETS["MADOGUCHI_CONFIG_BUCKET"], w.config_files(w.config_items())),
    ):
        try:
            s3.create_bucket(
                Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "ap-northeast-1"}
            )
        except s3.exceptions.ClientError:
            for obj in s3.list_objects_v2(Bucket=bucket).get("Contents", []):
                s3.delete_object(Bucket=bucket, Key=obj["Key"])
        for key, body in files.items():
            s3.put_object(Bucket=bucket, Key=key, Body=body)
    iam = boto3.client("iam", endpoint_url=endpoint, region_name="us-east-1")
    for user in iam.list_users()["Users"]:  # the moto server lives as long as the services: start clean
        name = user["UserName"]
        for key in iam.list_access_keys(UserName=name)["AccessKeyMetadata"]:
            iam.delete_access_key(UserName=name, AccessKeyId=key["AccessKeyId"])
        with contextlib.suppress(iam.exceptions.NoSuchEntityException):
            iam.delete_login_profile(UserName=name)
        iam.delete_user(UserName=name)
    for role in iam.list_roles()["Roles"]:
        iam.delete_role(RoleName=role["RoleName"])
    iam.create_user(UserName="ops-admin")
    iam.create_login_profile(UserName="ops-admin", Password="Long-enough-pass-1")
    iam.create_user(UserName="deploy-bot")
    iam.create_access_key(UserName="deploy-bot")
    trust = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "ecs-tasks.amazonaws.com"},
                    "Action": "sts:AssumeRole",
                }
            ],
        }
    )
    for role in ("madoguchi-app", "madoguchi-deploy"):
        iam.create_role(RoleName=role, AssumeRolePolicyDocument=trust)
    hub = boto3.client("securityhub", endpoint_url=endpoint, region_name="ap-northeast-1")
    base = {
        "SchemaVersion": "2018-10-08", "ProductArn": f"arn:aws:securityhub:ap-northeast-1:{w.ACCOUNT}:product/{w.ACCOUNT}/default",
        "GeneratorId": "madoguchi-test", "AwsAccountId": w.ACCOUNT, "Types": ["Software and Configuration Checks"],
        "Description": "test", "UpdatedAt": "2026-05-31T00:00:00Z",
    }  # fmt: skip
    findings = [
        {**base, "Id": "finding-critical", "Title": "S3 バケットの公開設定", "CreatedAt": "2026-05-12T01:00:00Z",
         "FirstObservedAt": "2026-05-12T01:00:00Z", "Severity": {"Label": "CRITICAL"}, "Compliance": {"Status": "FAILED"},
         "Resources": [{"Type": "AwsS3Bucket", "Id": "arn:aws:s3:::madoguchi-exports"}], "RecordState": "ACTIVE"},
        {**base, "Id": "finding-medium", "Title": "古いアクセスキー", "CreatedAt": "2026-04-20T01:00:00Z",
         "Severity": {"Label": "MEDIUM"}, "Resources": [{"Type": "AwsIamUser", "Id": "deploy-bot"}], "RecordState": "ACTIVE"},
        {**base, "Id": "finding-archived", "Title": "解消済み", "CreatedAt": "2026-05-03T01:00:00Z",
         "Severity": {"Label": "HIGH"}, "Resources": [{"Type": "Other", "Id": "x"}], "RecordState": "ARCHIVED"},
    ]  # fmt: skip
    hub.batch_import_findings(Findings=findings)
    # Cost Explorer: moto answers only what is seeded through its own API; the seed is checked
    # against the service model as a real answer would be.
    ce = boto3.client("ce", endpoint_url=endpoint, region_name="us-east-1")
    from botocore.validate import validate_parameters

    validate_parameters(
        w.cost_response(), ce.meta.service_model.operation_model("GetCostAndUsage").output_shape
    )
    seeded = httpx.post(
        f"{endpoint}/moto-api/static/ce/cost-and-usage-results", json={"results": [w.cost_response()]}
    )
    assert seeded.status_code < 300, seeded.text
    return {"iam_users": [u["UserName"] for u in iam.list_users()["Users"]]}


def stubbed_config() -> tuple[Any, Stubber]:
    """AWS Config through botocore's Stubber: the recorded pages, validated by the service model."""
    client = boto3.client(
        "config", endpoint_url=os.environ["MADOGUCHI_AWS_ENDPOINT_URL"], region_name="ap-northeast-1"
    )
    stubber = Stubber(client)
    pages = json.loads(RECORDED.read_text())["pages"]
    for i, page in enumerate(pages):
        stubber.add_response(
            "describe_compliance_by_config_rule",
            page,
            {} if i == 0 else {"NextToken": pages[i - 1]["NextToken"]},
        )
    stubber.activate()
    return client, stubber


def aws_factory(config_client: Any) -> Any:
    from app.reports.sources.aws import default_clients

    def make(service_name: str) -> Any:
        return config_client if service_name == "config" else default_clients(service_name)

    return make


def _audit_entries_at(tenant: str, entries: list[tuple[dt.datetime, str, str]]) -> None:
    """Staff entries in the operation log at the given times, chained after its head (as the schema
    owner: the runtime role can only append with the database clock)."""
    code = audit_support.schema(tenant)[2:]
    head = audit_support.admin(tenant, "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
    seq, prev = (head[0].seq, head[0].hash) if head else (0, GENESIS)
    values = []
    for at, actor_id, action in entries:
        seq += 1
        obj = entry_object(code, seq, prev, format_time(at), "staff", actor_id, None, None, action,
                           None, None, None, None, {})  # fmt: skip
        prev = digest(obj)
        values.append(
            {"seq": seq, "prev": obj["prev"], "hash": prev, "at": at, "actor": actor_id, "action": action}
        )
    audit_support.admin(
        tenant,
        "INSERT INTO audit_log (seq, prev_hash, hash, occurred_at, actor_type, actor_id, action)"
        " VALUES (:seq, :prev, :hash, :at, 'staff', :actor, :action)",
        values,
    )


def _database(tenants: dict[str, TenantRecord]) -> dict[str, dict[str, Any]]:
    """Rows in each city's schema and in control; returns the per-city truth."""
    J = w.jst
    plan = {
        "osaka": {"cases": [J(2026, 5, 1, 9, 5), J(2026, 5, 7, 10, 0), J(2026, 5, 20, 11, 0), J(2026, 5, 29, 16, 0)],
                  "closed": [(J(2026, 5, 7, 10, 5), J(2026, 5, 7, 10, 15)), (J(2026, 5, 20, 11, 0), J(2026, 5, 20, 11, 20))],
                  "applications": 3, "accepted": 1, "certificates": 2, "waits": [5, 10, 15, 20, 25],
                  "users": ["staff:1", "staff:2"]},
        "gobo": {"cases": [J(2026, 5, 12, 9, 0), J(2026, 5, 13, 9, 0)], "closed": [(J(2026, 5, 13, 9, 0), J(2026, 5, 13, 9, 30))],
                 "applications": 1, "accepted": 0, "certificates": 0, "waits": [3, 7], "users": ["staff:7"]},
        "yamaguchi": {"cases": [J(2026, 5, 18, 8, 30)], "closed": [], "applications": 0, "accepted": 0, "certificates": 1,
                      "waits": [], "users": ["staff:3", "staff:4", "staff:5"]},
    }  # fmt: skip
    truth = {}
    for tenant, p in plan.items():
        with session_scope(tenants[tenant].binding) as s:
            for i, created in enumerate([*p["cases"], J(2026, 4, 30, 16, 0)]):  # one in April: not counted
                case = Case(office_id="main", created_by="staff:1", updated_by="staff:1", created_at=created)
                if i < len(p["closed"]):
                    case.started_at, case.closed_at = p["closed"][i]
                    case.status = "closed"
                s.add(case)
            for i in range(p["applications"]):
                s.add(Application(form_id="f", form_version_id=1, form_version="1", data={}, created_by="staff:1",
                                  created_at=J(2026, 5, 10 + i, 10, 0),
                                  accepted_at=J(2026, 5, 10 + i, 11, 0) if i < p["accepted"] else None,
                                  status="accepted" if i < p["accepted"] else "submitted"))  # fmt: skip
            for i in range(p["certificates"]):
                s.add(CertificateRequest(certificate="住民票の写し", requester_name="本人", requester_relation="本人",
                                         purpose="就職", copies=1, unit_fee=300, total_fee=300, created_at=J(2026, 5, 21, 10, i)))  # fmt: skip
            for i, minutes in enumerate(p["waits"]):
                issued = J(2026, 5, 21, 9, i)
                s.add(Ticket(office_id="main", counter_id="c1", issued_on=issued.date(), number=i + 1, label=f"A-{i + 1:03d}",
                             issued_at=issued, called_at=issued + dt.timedelta(minutes=minutes), status="done"))  # fmt: skip
        # The operation log is chained by the database clock: May's entries are chained as if written then.
        entries = [
            *((J(2026, 5, 14, 9, 0), user, "login") for user in p["users"]),
            *((J(2026, 5, 15, 9, 0), user, "x") for user in p["users"]),
            (J(2026, 5, 14, 9, 0), "login:typo", "login.failed"),  # a failed sign-in is nobody
            (J(2026, 4, 14, 9, 0), "staff:99", "x"),  # April: not counted
        ]
        _audit_entries_at(tenant, sorted(entries))
        closed = [(b - a).total_seconds() / 60 for a, b in p["closed"]]
        truth[tenant] = {
            "cases": len(p["cases"]),
            "cases_closed": len(p["closed"]),
            "applications": p["applications"],
            "applications_accepted": p["accepted"],
            "certificate_requests": p["certificates"],
            "tickets": len(p["waits"]),
            "wait_minutes_avg": round(sum(p["waits"]) / len(p["waits"]), 1) if p["waits"] else None,
            "handling_minutes_avg": round(sum(closed) / len(closed), 1) if closed else None,
            "unique_users": len(p["users"]),
            "cases_first_day": sum(1 for c in p["cases"] if c.date() == dt.date(2026, 5, 1)),
        }
    with service.control_session() as s:
        by = "テスト 運用"
        add_inquiry(
            s,
            tenant_id="osaka",
            channel="phone",
            category="operation",
            summary="番号札の再発行の手順",
            opened_at=J(2026, 5, 7, 9, 0),
            closed_at=J(2026, 5, 7, 9, 20),
            by=by,
        )
        add_inquiry(
            s,
            tenant_id="osaka",
            channel="email",
            category="operation",
            summary="様式の印刷位置がずれる",
            opened_at=J(2026, 5, 8, 9, 0),
            by=by,
        )
        add_inquiry(
            s,
            tenant_id="osaka",
            channel="web",
            category="linkage",
            summary="取込ファイルの文字コード",
            opened_at=J(2026, 5, 9, 9, 0),
            closed_at=J(2026, 5, 9, 12, 0),
            by=by,
        )
        add_inquiry(
            s,
            tenant_id="gobo",
            channel="phone",
            category="failure",
            summary="画面が開かない（5/12 障害）",
            opened_at=J(2026, 5, 12, 10, 5),
            closed_at=J(2026, 5, 12, 10, 40),
            by=by,
        )
        add_inquiry(
            s,
            tenant_id=None,
            channel="visit",
            category="request",
            summary="帳票の追加要望",
            opened_at=J(2026, 5, 27, 14, 0),
            by=by,
        )
        add_inquiry(
            s,
            tenant_id="gobo",
            channel="phone",
            category="other",
            summary="4月の問い合わせ",
            opened_at=J(2026, 4, 27, 14, 0),
            by=by,
        )
        record_release(
            s,
            kind="application",
            version="v1.4.0",
            released_at=J(2026, 5, 13, 10, 0),
            approval_ref="CAB-2026-051",
            description="月次報告",
            by=by,
        )
        record_release(
            s,
            kind="application",
            version="v1.3.9",
            released_at=J(2026, 4, 30, 10, 0),
            approval_ref="CAB-2026-049",
            by=by,
        )
        s.add(
            Incident(
                tenant_id="gobo",
                alert_name="MadoguchiErrorBudgetBurn",
                fingerprint="fp-gobo",
                summary="gobo: 可用性",
                detected_at=J(2026, 5, 12, 10, 0),
                response_target_minutes=None,
                acknowledged_at=J(2026, 5, 12, 10, 20),
                acknowledged_by="当番",
                resolved_at=J(2026, 5, 12, 10, 30),
                resolved_by="alertmanager",
                status="resolved",
                recovery="再起動",
            )
        )
        s.add(Incident(tenant_id="osaka", alert_name="MadoguchiErrorBudgetBurn", fingerprint="fp-osaka", summary="osaka: 可用性", detected_at=J(2026, 5, 20, 14, 0),
                       response_target_minutes=30, acknowledged_at=J(2026, 5, 20, 14, 40), acknowledged_by="当番", resolved_at=J(2026, 5, 20, 14, 45),
                       resolved_by="alertmanager", status="resolved"))  # fmt: skip
        s.commit()
    return truth


def _clean_control() -> None:
    with admin_engine().begin() as conn:
        for model in (MonthlyReport, ReportCapture, SupportInquiry, Release, Incident):
            conn.execute(delete(model))


@pytest.fixture(scope="module")
def world(
    provisioned: dict[str, TenantRecord], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("reports")
    saved = {
        k: os.environ.get(k) for k in (*BUCKETS, "MADOGUCHI_PROMETHEUS_URL", "MADOGUCHI_REPORTS_WORKERS")
    }
    os.environ.update(BUCKETS)
    os.environ["MADOGUCHI_REPORTS_WORKERS"] = "2"
    with admin_engine().begin() as conn:
        original = dict(conn.execute(text("SELECT id, created_at FROM control.tenants")).all())
        for tenant, moment in w.ONBOARDED.items():
            conn.execute(update(Tenant).where(Tenant.id == tenant).values(created_at=moment))
    truncate_tenant_tables(provisioned)
    _clean_control()
    truth: dict[str, Any] = {}
    prometheus = None
    logs: list[Any] = []
    try:
        prometheus = _prometheus(tmp, truth, logs)
        get_settings.cache_clear()
        truth["aws"] = _aws()
        truth["db"] = _database(provisioned)
        config_client, stubber = stubbed_config()
        generated = service.generate(
            w.MONTH, out=tmp / "out", aws_clients=aws_factory(config_client), by="test"
        )
        stubber.assert_no_pending_responses()
        yield {
            "truth": truth,
            "generated": generated,
            "out": tmp / "out",
            "tmp": tmp,
            "config_client": config_client,
        }
    finally:
        if prometheus is not None:
            prometheus.send_signal(signal.SIGTERM)
            prometheus.wait(timeout=30)
        for handle in logs:
            handle.close()
        shutil.rmtree(tmp, ignore_errors=True)  # the backfilled blocks are large
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        get_settings.cache_clear()
        truncate_tenant_tables(provisioned)
        _clean_control()
        with admin_engine().begin() as conn:
            for tenant, moment in original.items():
                conn.execute(update(Tenant).where(Tenant.id == tenant).values(created_at=moment))


def report(world: dict[str, Any], scope: str) -> dict[str, Any]:
    path = world["out"] / "2026-05" / scope / f"monthly-report-2026-05-{scope}.json"
    return json.loads(path.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def pdftext(world: dict[str, Any], scope: str) -> str:
    path = world["out"] / "2026-05" / scope / f"monthly-report-2026-05-{scope}.pdf"
    return subprocess.run(
        ["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True
    ).stdout


# --- every number equals the truth ------------------------------------------------------------------


def test_kpi_and_service_level_per_city_equal_the_truth(world: dict[str, Any]) -> None:
    m, db = world["truth"]["metrics"], world["truth"]["db"]
    for tenant in CITIES:
        r = report(world, tenant)
        kpi, level = r["kpi"], r["service_level"]
        for key in ("cases", "cases_closed", "applications", "applications_accepted", "certificate_requests", "tickets",
                    "wait_minutes_avg", "handling_minutes_avg", "unique_users"):  # fmt: skip
            assert kpi[key] == db[tenant][key], (tenant, key)
        assert kpi["requests"] == level["requests"] == m.requests[tenant]
        assert level["server_errors"] == m.errors[tenant]
        assert level["slow_requests"] == m.slow[tenant]
        assert level["open_minutes"] == m.open_minutes[tenant]
        assert level["downtime_minutes"] == m.downtime[tenant]
        assert level["error_rate"] == round(m.errors[tenant] / m.requests[tenant], 6)
        rate = m.downtime[tenant] / m.open_minutes[tenant]
        assert level["downtime_rate"] == round(rate, 6)
        assert level["availability"] == round(1 - round(rate, 6), 6)
        daily = {d["day"]: d for d in r["daily"]}
        assert {k: v["requests"] for k, v in daily.items()} == m.daily_requests[tenant]
        assert {k: v["downtime_minutes"] for k, v in daily.items()} == m.daily_downtime[tenant]
        assert daily["2026-05-01"]["cases"] == db[tenant]["cases_first_day"]
    # The figures the scenario is about, stated plainly:
    assert m.downtime == {"osaka": 45, "gobo": 30, "yamaguchi": 0}


def test_an_outage_on_a_holiday_is_not_downtime(world: dict[str, Any]) -> None:
    gobo = report(world, "gobo")
    holiday = next(d for d in gobo["daily"] if d["day"] == "2026-05-04")  # みどりの日
    assert holiday["downtime_minutes"] == 0
    assert holiday["requests"] == 120 * w.ERRORS_PER_OUTAGE_MINUTE  # the errors still happened (event-based)
    assert gobo["service_level"]["downtime_minutes"] == 30  # only 12 May 10:00-10:30 counts


def test_a_city_onboarded_mid_month(world: dict[str, Any]) -> None:
    s = report(world, "service")
    munis = {m["id"]: m for m in s["municipalities"]["items"]}
    assert s["municipalities"]["count"] == 3
    assert s["municipalities"]["new_this_month"] == 1
    assert munis["yamaguchi"]["service_start"] == "2026-05-15"
    assert munis["yamaguchi"]["new_this_month"] is True
    assert munis["yamaguchi"]["days_in_service"] == 17
    assert munis["osaka"]["days_in_service"] == 31
    assert munis["osaka"]["new_this_month"] is False
    y = report(world, "yamaguchi")
    assert y["service_level"]["open_minutes"] == world["truth"]["metrics"].open_minutes["yamaguchi"]
    assert all(d["requests"] == 0 for d in y["daily"] if d["day"] < "2026-05-15")
    # Before its start the city has no report for the month.
    with pytest.raises(service.ReportInputError, match="利用していません"):
        service.collect(Month(2026, 4), only="yamaguchi")


def test_service_report_totals_and_audit_items(world: dict[str, Any]) -> None:
    s = report(world, "service")
    m, db = world["truth"]["metrics"], world["truth"]["db"]
    assert s["kpi"]["total"]["requests"] == sum(m.requests.values())
    assert s["kpi"]["total"]["cases"] == sum(d["cases"] for d in db.values())
    assert s["kpi"]["total"]["unique_users"] == sum(d["unique_users"] for d in db.values())
    level = s["service_level"]["total"]
    assert level["downtime_minutes"] == 75
    assert level["open_minutes"] == sum(m.open_minutes.values())
    assert level["latency_p95_ms"] == 100
    assert level["error_rate"] == round(sum(m.errors.values()) / sum(m.requests.values()), 6)
    # 4 releases/IAM/console/resources/config/security hub
    assert s["releases"]["count"] == 1
    assert s["releases"]["items"][0]["approval_ref"] == "CAB-2026-051"
    users = s["iam_users"]
    assert sorted(u["user"] for u in users["items"] if u["user"] != "ルートユーザー") == sorted(
        world["truth"]["aws"]["iam_users"]
    )
    assert users["without_mfa"] == 1  # ops-admin: console password, no MFA
    assert next(u for u in users["items"] if u["user"] == "deploy-bot")["access_keys_active"] == 1
    assert [c["event"] for c in users["changes"]] == ["CreateUser"]  # delivered twice, counted once
    roles = s["iam_roles"]
    assert [r["role"] for r in roles["items"]] == ["madoguchi-app", "madoguchi-deploy"]
    assert [(c["event"], c["target"]) for c in roles["changes"]] == [
        ("AttachRolePolicy", "madoguchi-app"),
        ("UpdateAssumeRolePolicy", "madoguchi-deploy"),
    ]
    logins = s["console_logins"]
    assert [x["event_id"] for x in logins["items"]] == [
        "ev-login-1",
        "ev-login-2",
        "ev-login-3",
        "ev-login-4",
    ]
    assert (logins["count"], logins["failures"], logins["without_mfa"]) == (4, 1, 1)
    assert logins["items"][3]["user"] == "ルートユーザー"
    created = s["resources_created"]
    assert [(x["event"], x["resource"]) for x in created["items"]] == [
        ("CreateUser", "auditor"), ("CreateBucket", "madoguchi-exports"),
        ("RunInstances", f"arn:aws:ec2:ap-northeast-1:{w.ACCOUNT}:instance/i-0abc"),
    ]  # fmt: skip
    assert created["config_discovered"] == 2
    sc = s["security_compliance"]
    assert [(r["rule"], r["compliance"]) for r in sc["config_rules"]] == [
        ("cloudtrail-enabled", "COMPLIANT"), ("iam-user-mfa-enabled", "NON_COMPLIANT"),
        ("rds-storage-encrypted", "COMPLIANT"), ("s3-bucket-public-read-prohibited", "COMPLIANT"),
    ]  # fmt: skip
    assert sc["config_rules_noncompliant"] == 1
    history = {h["rule"]: h for h in sc["config_history"]}
    assert history["iam-user-mfa-enabled"]["noncompliant_at_month_end"] == 1
    assert history["s3-bucket-public-read-prohibited"]["noncompliant_resources_in_month"] == 1
    assert history["s3-bucket-public-read-prohibited"]["noncompliant_at_month_end"] == 0
    hub = sc["security_hub"]
    assert hub["active"] == 2
    assert hub["active_by_severity"]["CRITICAL"] == 1
    assert hub["active_by_severity"]["MEDIUM"] == 1
    assert hub["failed_controls"] == 1
    assert hub["new_in_month"] == 2
    assert [f["title"] for f in hub["critical_and_high"]] == ["S3 バケットの公開設定"]
    # inquiries, incidents, stable operation
    q = s["inquiries"]
    assert q["count"] == 5
    assert q["closed"] == 3
    assert q["open_at_month_end"] == 2
    assert [(t["category"], t["count"]) for t in q["main_topics"]] == [
        ("operation", 2),
        ("failure", 1),
        ("linkage", 1),
    ]
    inc = s["incidents"]
    assert inc["count"] == 2
    assert inc["initial_response"]["missed"] == 1
    assert inc["initial_response"]["no_target"] == 1
    kinds = [x["kind"] for x in s["stable_operation"]]
    assert kinds.count("障害の復旧") == 2
    assert "設定の是正" in kinds
    assert "リリース（アプリケーション）" in kinds
    assert {q["id"] for q in s["sources"]} >= {"prometheus.requests", "prometheus.down_samples", "db.tenant_month",
                                              "aws.cloudtrail.archive", "aws.config.compliance", "aws.ce.cost_by_tag"}  # fmt: skip


def test_cloud_usage_apportions_shared_costs_by_measured_requests(world: dict[str, Any]) -> None:
    s = report(world, "service")
    usage = s["cloud_usage"]
    requests = world["truth"]["metrics"].requests
    shares = w.apportioned(requests)
    assert usage["shared_total"] == "100.01"
    assert usage["unit"] == "USD"
    assert usage["total"] == "260.76"
    assert sum(Decimal(r["shared_share"]) for r in usage["tenants"]) == Decimal("100.01")
    for row in usage["tenants"]:
        assert Decimal(row["shared_share"]) == shares[row["tenant"]]
        assert Decimal(row["direct"]) == Decimal(w.COST_GROUPS[row["tenant"]])
        assert row["usage_requests"] == requests[row["tenant"]]
    assert "リクエスト数" in usage["method"]
    assert "最大剰余法" in usage["method"]
    gobo = report(world, "gobo")["cloud_usage"]
    assert Decimal(gobo["total"]) == Decimal("30.25") + shares["gobo"]


def test_pdf_shows_the_key_figures_and_page_one_is_an_artifact(world: dict[str, Any]) -> None:
    m = world["truth"]["metrics"]
    service_text = pdftext(world, "service")
    for needle in ("窓口DXSaaS 月次報告（令和8年5月）", "利用地方公共団体数", f"{sum(m.requests.values()):,}", "75 分",
                   "100 ms", "CAB-2026-051", "S3 バケットの公開設定", "ops-admin", "最大剰余法", "御坊市", "山口市"):  # fmt: skip
        assert needle in service_text, needle
    gobo_text = pdftext(world, "gobo")
    for needle in ("御坊市", f"{m.requests['gobo']:,}", "30 分", f"{m.open_minutes['gobo']:,} 分"):
        assert needle in gobo_text, needle
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for scope in ("service", "gobo"):
        pdf = (world["out"] / "2026-05" / scope / f"monthly-report-2026-05-{scope}.pdf").read_bytes()
        info = subprocess.run(["pdfinfo", "-"], input=pdf, capture_output=True, check=True).stdout
        assert b"(A4)" in info, info
        png = page_images(pdf, dpi=80, first=1, last=1)[0]
        (ARTIFACTS / f"monthly-report-2026-05-{scope}-page1.png").write_bytes(png)
        assert png.startswith(b"\x89PNG")


def test_csv_is_utf8_with_bom_for_excel(world: dict[str, Any]) -> None:
    raw = (world["out"] / "2026-05" / "service" / "csv" / "kpi.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    lines = raw[3:].decode("utf-8").split("\r\n")
    assert lines[0].startswith("自治体ID,名称,受付件数")
    assert any(line.startswith("gobo,御坊市,2,") for line in lines)


# --- cross-tenant: a city's report holds only the city ---------------------------------------------


def test_a_city_report_holds_no_other_city(world: dict[str, Any]) -> None:
    files = {p.name: p for p in (world["out"] / "2026-05" / "gobo").rglob("*") if p.is_file()}
    assert "monthly-report-2026-05-gobo.pdf" in files
    assert "kpi.csv" in files
    text_json = (world["out"] / "2026-05" / "gobo" / "monthly-report-2026-05-gobo.json").read_text(
        encoding="utf-8"
    )
    for other in ("osaka", "大阪", "yamaguchi", "山口", "番号札の再発行", "帳票の追加要望"):
        assert other not in text_json, other
    for path in files.values():
        if path.suffix == ".csv":
            assert "osaka" not in path.read_text(encoding="utf-8-sig")
    gobo_pdf = pdftext(world, "gobo")
    assert "大阪" not in gobo_pdf
    assert "山口" not in gobo_pdf
    g = report(world, "gobo")
    assert [i["tenant"] for i in g["inquiries"]["items"]] == ["gobo"]
    assert [i["tenant"] for i in g["incidents"]["items"]] == ["gobo"]


def test_tenant_download_paths_are_scoped(world: dict[str, Any], app: Flask) -> None:
    make_staff("gobo", "report-admin", groups=("管理者",))
    make_staff("gobo", "report-clerk")
    client = app.test_client()
    login(client, "gobo", "report-admin")
    page = client.get("/gobo/reports")
    assert page.status_code == 200
    assert "2026-05" in page.get_data(as_text=True)
    own = client.get("/gobo/reports/2026-05/monthly-report-2026-05-gobo.pdf")
    assert own.status_code == 200
    assert own.data.startswith(b"%PDF")
    assert client.get("/gobo/reports/2026-05/csv/kpi.csv").data.startswith(b"\xef\xbb\xbf")
    for path in ("/gobo/reports/2026-05/monthly-report-2026-05-osaka.pdf", "/gobo/reports/2026-05/monthly-report-2026-05-service.json",
                 "/gobo/reports/2026-05/../osaka/monthly-report-2026-05-osaka.pdf", "/gobo/reports/2099-99/x.pdf",
                 "/gobo/reports/2026-05/%00.pdf"):  # fmt: skip
        assert client.get(path).status_code == 404, path
    assert (
        client.get("/osaka/reports/2026-05/monthly-report-2026-05-osaka.pdf").status_code == 404
    )  # another city: 404
    other_list = client.get("/osaka/reports")
    assert other_list.status_code == 404
    assert "2026-05" not in other_list.get_data(as_text=True)
    from app import storage

    storage.client().delete_object(Bucket=storage.bucket(), Key="gobo/reports/2026-05/csv/releases.csv")
    assert (
        client.get("/gobo/reports/2026-05/csv/releases.csv").status_code == 404
    )  # listed, gone: 404, not 500
    clerk = app.test_client()
    login(clerk, "gobo", "report-clerk")
    assert clerk.get("/gobo/reports").status_code == 403


def test_ops_page_lists_reports_with_download_links(world: dict[str, Any], app: Flask) -> None:
    anonymous = app.test_client().get("/ops/reports")
    assert anonymous.status_code == 302
    assert "/ops/login" in anonymous.headers["Location"]
    from app.identity.models import ProviderStaff

    with admin_engine().begin() as conn:
        conn.execute(delete(ProviderStaff).where(ProviderStaff.login == "ops-reports"))
    client, _ = provider_client(app, "ops-reports")
    page = client.get("/ops/reports").get_data(as_text=True)
    assert "デジタル庁向け" in page
    assert "御坊市" in page
    assert "/ops/reports/2026-05/service/monthly-report-2026-05-service.pdf" in page
    pdf = client.get("/ops/reports/2026-05/service/monthly-report-2026-05-service.pdf")
    assert pdf.status_code == 200
    assert pdf.data.startswith(b"%PDF")
    assert client.get("/ops/reports/2026-05/service/../../etc/passwd").status_code == 404
    assert client.get("/ops/reports/2026-13/service/x.pdf").status_code == 404
    inquiries = client.get("/ops/inquiries")
    assert inquiries.status_code == 200
    assert "様式の印刷位置がずれる" in inquiries.get_data(as_text=True)
    assert client.get("/ops/releases").status_code == 200


# --- idempotent -------------------------------------------------------------------------------------


def test_regenerating_the_month_gives_byte_identical_files(world: dict[str, Any]) -> None:
    first = {g.scope: {f["name"]: f["sha256"] for f in g.files} for g in world["generated"]}
    client, stubber = stubbed_config()  # not called: the captured answer is reused
    again = service.generate(
        w.MONTH, out=world["tmp"] / "again", aws_clients=aws_factory(client), by="test", workers=1
    )
    second = {g.scope: {f["name"]: f["sha256"] for f in g.files} for g in again}
    differing = sorted(
        (scope, name)
        for scope in first
        for name in first[scope]
        if first[scope][name] != second[scope].get(name)
    )
    assert differing == []
    assert second == first
    with service.control_session() as s:
        rows = service.list_reports(s)
        assert {r.scope for r in rows} == {"service", *CITIES}
        assert all(r.generations == 2 for r in rows)
    one = service.generate(
        w.MONTH, tenant="gobo", out=world["tmp"] / "one", aws_clients=aws_factory(client), by="test"
    )
    assert [g.scope for g in one] == ["gobo"]
    assert one[0].files == next(g.files for g in again if g.scope == "gobo")
    assert len(stubber._queue) == 2


# --- command line -----------------------------------------------------------------------------------


def test_cli_exit_codes_and_release_records(world: dict[str, Any], tmp_path: Path) -> None:
    from app.cli import main

    runner = CliRunner()
    bad = runner.invoke(main, ["reports", "monthly", "--month", "2026-13", "--out", str(tmp_path)])
    assert bad.exit_code == 1
    assert "YYYY-MM" in bad.output
    assert runner.invoke(main, ["reports", "monthly", "--out", str(tmp_path)]).exit_code == 2
    unknown = runner.invoke(
        main, ["reports", "monthly", "--month", "2026-05", "--tenant", "nowhere", "--out", str(tmp_path)]
    )
    assert unknown.exit_code == 1
    assert "利用していません" in unknown.output
    future = runner.invoke(main, ["reports", "monthly", "--month", "2999-01", "--out", str(tmp_path)])
    assert future.exit_code == 1
    assert "始まっていません" in future.output
    args = ["releases", "record", "--kind", "infrastructure", "--version", "v2026.06.1", "--at", "2026-06-02T10:00",
            "--approval", "CAB-2026-060", "--json"]  # fmt: skip
    first = runner.invoke(main, args)
    assert first.exit_code == 0, first.output
    assert json.loads(first.output)[0]["created"] is True
    assert json.loads(runner.invoke(main, args).output)[0]["created"] is False  # a pipeline retry
    assert (
        runner.invoke(
            main, ["releases", "record", "--kind", "infrastructure", "--version", "x", "--approval", " "]
        ).exit_code
        == 1
    )
    added = runner.invoke(main, ["inquiries", "add", "--tenant", "gobo", "--channel", "phone", "--category", "operation",
                                 "--summary", "テスト", "--opened-at", "2026-06-03T09:00", "--json"])  # fmt: skip
    assert added.exit_code == 0, added.output
    assert runner.invoke(main, ["inquiries", "add", "--tenant", "nowhere", "--channel", "phone", "--category", "operation",
                                "--summary", "x"]).exit_code == 1  # fmt: skip


def test_monthly_job_runs_on_the_first_at_six_jst() -> None:
    from app.reports.jobs import job_id, next_run

    assert next_run(w.jst(2026, 5, 31, 23, 0)) == w.jst(2026, 6, 1, 6, 0)
    assert next_run(w.jst(2026, 6, 1, 6, 0)) == w.jst(2026, 7, 1, 6, 0)
    assert next_run(w.jst(2026, 12, 15, 6, 0)) == w.jst(2027, 1, 1, 6, 0)
    assert next_run(dt.datetime(2026, 5, 31, 20, 0, tzinfo=dt.UTC)) == w.jst(
        2026, 6, 1, 6, 0
    )  # 1 June 05:00 JST
    assert job_id(w.jst(2026, 6, 1, 6, 0)) == "reports__monthly__2026-06"
    assert Month.previous(w.jst(2026, 6, 1, 6, 0)) == Month(2026, 5)
    assert Month.previous(w.jst(2027, 1, 1, 6, 0)) == Month(2026, 12)


def test_ops_inquiry_form_records_and_rejects_in_japanese(app: Flask) -> None:
    from app.identity.models import ProviderStaff

    with admin_engine().begin() as conn:
        conn.execute(delete(ProviderStaff).where(ProviderStaff.login == "ops-desk"))
    client, _ = provider_client(app, "ops-desk", "窓口 受付")
    token = csrf_token(client, "/ops/inquiries")
    bad = [
        {"channel": "fax", "category": "operation", "summary": "x"},
        {"channel": "phone", "category": "nope", "summary": "x"},
        {"channel": "phone", "category": "operation", "summary": "   "},
        {"channel": "phone", "category": "operation", "summary": "x", "opened_at": "昨日"},
        {"channel": "phone", "category": "operation", "summary": "x", "tenant": "nowhere"},
        {"channel": "phone", "category": "operation", "summary": "x", "opened_at": "2026-05-02T10:00", "closed_at": "2026-05-01T10:00"},
    ]  # fmt: skip
    for form in bad:
        response = client.post("/ops/inquiries", data={**form, "csrf_token": token})
        assert response.status_code == 422, form
        assert 'role="alert"' in response.get_data(as_text=True)
    ok = client.post(
        "/ops/inquiries",
        data={
            "tenant": "gobo",
            "channel": "email",
            "category": "forms",
            "summary": "様式の余白",
            "opened_at": "2026-05-02T10:00",
            "csrf_token": token,
        },
    )
    assert ok.status_code == 302
    with service.control_session() as s:
        row = s.query(SupportInquiry).filter_by(summary="様式の余白").one()
        assert (row.tenant_id, row.recorded_by, row.opened_at) == (
            "gobo",
            "窓口 受付",
            w.jst(2026, 5, 2, 10, 0),
        )
        ident = row.id
    closed = client.post(
        f"/ops/inquiries/{ident}/close", data={"closed_at": "2026-05-02T11:00", "csrf_token": token}
    )
    assert closed.status_code == 302
    assert (
        client.post("/ops/inquiries/999999999/close", data={"csrf_token": token}).status_code == 302
    )  # flashed, no 500
    assert (
        client.post(
            "/ops/inquiries", data={"channel": "phone", "category": "operation", "summary": "x"}
        ).status_code
        == 400
    )  # no CSRF token
    with admin_engine().begin() as conn:  # only its own: the world's inquiries stay for later tests
        conn.execute(delete(SupportInquiry).where(SupportInquiry.id == ident))


def test_monthly_job_is_scheduled_once() -> None:
    from rq.registry import ScheduledJobRegistry

    from app.jobs import queue
    from app.reports.jobs import run_monthly, schedule_next

    now = w.jst(2026, 5, 31, 23, 0)
    first = schedule_next(now)
    again = schedule_next(now)
    assert first.id == again.id == "reports__monthly__2026-06"
    assert first.func == run_monthly
    assert first.args == (None,)
    registry_ = ScheduledJobRegistry(queue=queue())
    assert registry_.get_job_ids() == ["reports__monthly__2026-06"]
    scheduled = registry_.get_scheduled_time("reports__monthly__2026-06")
    assert scheduled.replace(tzinfo=dt.UTC) == w.jst(2026, 6, 1, 6, 0)


def test_cli_generates_one_city_with_progress(world: dict[str, Any], tmp_path: Path) -> None:
    """The command line, end to end: the captured AWS answers are reused, the rest asked again."""
    from app.cli import main

    result = CliRunner().invoke(
        main,
        ["reports", "monthly", "--month", "2026-05", "--tenant", "gobo", "--out", str(tmp_path), "--json"],
    )
    assert result.exit_code == 0, result.output
    assert "Prometheus から" in result.stderr
    assert "作成 1/1（gobo）" in result.stderr
    rows = json.loads(result.stdout)
    assert [r["scope"] for r in rows] == ["gobo"]
    written = tmp_path / "2026-05" / "gobo" / "monthly-report-2026-05-gobo.json"
    assert (
        written.read_bytes()
        == (world["out"] / "2026-05" / "gobo" / "monthly-report-2026-05-gobo.json").read_bytes()
    )
