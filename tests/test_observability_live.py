"""A real Prometheus and Alertmanager (Debian, loopback) around the app under gunicorn.

One stack per module, on free loopback ports: gunicorn with two workers in prometheus_client's
multiprocess mode, a Prometheus that scrapes it every second and evaluates the generated SLA rules
every second, and an Alertmanager with the generated configuration whose webhook points at the app.

Real time cannot be moved, so the rules are generated with the JST clock shifted (``clock_offset``)
to make "now" Friday 18:00 JST: Osaka's 17:30-19:00 extension. The same outage on a national
holiday is shown with promtool (tests/test_sla_rules.py), where any instant can be chosen.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import promql_parser
import pytest
from sqlalchemy import delete, select

from app.audit import Actor
from app.config import get_settings
from app.db.engine import admin_engine
from app.db.session import session_scope
from app.linkage.config import STANDARD
from app.linkage.importer import import_local_file
from app.observability import alertmanager, dashboards, slo
from app.observability.incidents import control_session
from app.observability.models import Incident
from app.tenancy.calendar import JST
from app.tenancy.config import code_check_digit
from app.tenancy.loader import load_all, load_tenant
from app.tenancy.provisioning import deprovision, sync
from app.tenancy.service import add_override, registry
from tests.conftest import ROOT, TOTP_SECRETS, make_staff, totp_code
from tests.linkage_files import number, person, write

pytestmark = pytest.mark.slow

TENANT = "livetest"  # a copy of Gobo's configuration (catalogue and forms included) under its own code
TOKEN = "live-webhook-token"
FRIDAY_EVENING = dt.datetime(2028, 2, 4, 18, 0, tzinfo=JST)
PEOPLE = [
    person(51, 510, 氏名="監視　見子", 氏名フリガナ="カンシ ミコ", 生年月日="1970-07-07", 住所="和歌山県御坊市湯川町財部1番地"),
    person(52, 510, 世帯内順="2", 続柄="子", 氏名="監視　聞太", 氏名フリガナ="カンシ キキタ", 生年月日="2012-08-08",
           住所="和歌山県御坊市湯川町財部1番地"),
]  # fmt: skip


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait(what: str, check: Callable[[], Any], seconds: float = 60, step: float = 0.25) -> Any:
    deadline = time.monotonic() + seconds
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
            if last:
                return last
        except (httpx.HTTPError, OSError, ValueError, KeyError):
            pass
        time.sleep(step)
    raise AssertionError(f"{what} did not happen within {seconds}s (last: {last!r})")


def _tenant_files(tmp: Path) -> Path:
    root = tmp / "tenants"
    shutil.copytree(ROOT / "tenants" / "_defaults", root / "_defaults")
    shutil.copytree(ROOT / "tenants" / "gobo", root / TENANT)
    code = "99030" + str(code_check_digit("99030"))
    text_ = (root / TENANT / "tenant.yaml").read_text(encoding="utf-8")
    text_ = text_.replace("id: gobo", f"id: {TENANT}").replace('code: "302058"', f'code: "{code}"')
    (root / TENANT / "tenant.yaml").write_text(text_, encoding="utf-8")
    return root / TENANT


@dataclass
class Stack:
    tmp: Path
    app_port: int
    prom_port: int
    am_port: int
    env: dict[str, str]
    gunicorn: subprocess.Popen[bytes] | None = None
    prometheus: subprocess.Popen[bytes] | None = None
    alertmanager: subprocess.Popen[bytes] | None = None
    files: list[Any] = field(default_factory=list)

    def log(self, name: str) -> Any:
        handle = (self.tmp / name).open("ab")
        self.files.append(handle)
        return handle

    @property
    def app(self) -> str:
        return f"http://127.0.0.1:{self.app_port}"

    def start_app(self) -> None:
        directory = Path(self.env["PROMETHEUS_MULTIPROC_DIR"])
        shutil.rmtree(directory, ignore_errors=True)  # as scripts/run.sh: empty before gunicorn starts
        directory.mkdir()
        log = self.log("gunicorn.log")
        self.gunicorn = subprocess.Popen(
            [
                str(Path(sys.executable).with_name("gunicorn")),
                "--config",
                "python:app.observability.gunicorn_conf",
                "--bind",
                f"127.0.0.1:{self.app_port}",
                "--workers",
                "2",
                "app.wsgi:application",
            ],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=log,
            start_new_session=True,  # its own process group: a stuck stop kills the workers too
        )
        wait("gunicorn", lambda: httpx.get(f"{self.app}/healthz", timeout=2).status_code == 200)

    def stop_app(self) -> None:
        """A graceful stop, as systemd does it; one that outlasts gunicorn's graceful timeout (30 s)
        is a failure, reported with the server's log, and the processes are killed, not leaked."""
        proc, self.gunicorn = self.gunicorn, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=45)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
            tail = (self.tmp / "gunicorn.log").read_text(errors="replace")[-4000:]
            raise AssertionError(f"gunicorn did not stop within 45 s after SIGTERM:\n{tail}") from None

    def query(self, expr: str) -> list[dict[str, Any]]:
        response = httpx.get(
            f"http://127.0.0.1:{self.prom_port}/api/v1/query", params={"query": expr}, timeout=10
        )
        body = response.json()
        assert body["status"] == "success", (expr, body)
        return body["data"]["result"]  # type: ignore[no-any-return]

    def stop(self) -> None:
        try:
            self.stop_app()
        finally:
            for proc in (self.prometheus, self.alertmanager):
                if proc is not None and proc.poll() is None:
                    proc.terminate()
                    try:
                        proc.wait(timeout=30)
                    except subprocess.TimeoutExpired:
                        proc.kill()
                        proc.wait(timeout=30)
            for handle in self.files:
                handle.close()


@pytest.fixture(scope="module")
def stack(provisioned: object, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("live")
    directory = _tenant_files(tmp)
    sync({TENANT: load_tenant(directory).config})
    tenants = {k: v.config for k, v in load_all(get_settings().tenants_dir).items()}
    tenants[TENANT] = load_tenant(directory).config
    s = Stack(tmp, free_port(), free_port(), free_port(), env={})
    s.env = {
        **os.environ,
        "PROMETHEUS_MULTIPROC_DIR": str(tmp / "multiproc"),
        "MADOGUCHI_ALERTMANAGER_WEBHOOK_TOKEN": TOKEN,
        "MADOGUCHI_METRICS_SNAPSHOT_SECONDS": "1",
        "MADOGUCHI_METRICS_COLD_WAIT_SECONDS": "3",  # as in production (the in-process tests wait long)
        "MADOGUCHI_LOG_LEVEL": "WARNING",
    }
    try:
        s.start_app()
        # Alertmanager: the generated configuration, as scripts/services.sh loads it, with short waits.
        token_file = tmp / "token"
        token_file.write_text(TOKEN)
        am_config = (
            alertmanager.render(tenants)
            .replace("http://127.0.0.1:APP_PORT", s.app)
            .replace(alertmanager.TOKEN_FILE, str(token_file))
            .replace("group_wait: 30s", "group_wait: 1s")
            .replace("group_interval: 5m", "group_interval: 2s")
        )
        (tmp / "alertmanager.yml").write_text(am_config)
        s.alertmanager = subprocess.Popen(
            [
                "prometheus-alertmanager",
                f"--config.file={tmp / 'alertmanager.yml'}",
                f"--storage.path={tmp / 'am-data'}",
                f"--web.listen-address=127.0.0.1:{s.am_port}",
                "--cluster.listen-address=",
            ],
            stdout=s.log("alertmanager.log"),
            stderr=subprocess.STDOUT,
        )
        # Prometheus: the generated rules, clock shifted to Friday 18:00 JST, evaluated every second.
        offset = int(FRIDAY_EVENING.timestamp() - time.time())
        (tmp / "rules.yml").write_text(
            slo.render_rules(tenants, clock_offset=offset, interval="1s")["madoguchi-sla.yml"]
        )
        (tmp / "prometheus.yml").write_text(
            json.dumps(
                {
                    "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                    "alerting": {
                        "alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{s.am_port}"]}]}]
                    },
                    "rule_files": [str(tmp / "rules.yml")],
                    "scrape_configs": [
                        {"job_name": slo.JOB, "static_configs": [{"targets": [f"127.0.0.1:{s.app_port}"]}]}
                    ],
                }
            )
        )
        s.prometheus = subprocess.Popen(
            [
                "prometheus",
                f"--config.file={tmp / 'prometheus.yml'}",
                f"--storage.tsdb.path={tmp / 'prom-data'}",
                f"--web.listen-address=127.0.0.1:{s.prom_port}",
            ],
            stdout=s.log("prometheus.log"),
            stderr=subprocess.STDOUT,
        )
        wait(
            "alertmanager",
            lambda: httpx.get(f"http://127.0.0.1:{s.am_port}/-/ready", timeout=2).status_code == 200,
        )
        wait(
            "prometheus",
            lambda: httpx.get(f"http://127.0.0.1:{s.prom_port}/-/ready", timeout=2).status_code == 200,
        )
        yield s
    finally:
        try:
            s.stop()
        finally:
            deprovision([TENANT])
            with admin_engine().begin() as conn:
                conn.execute(delete(Incident))


def _login(client: httpx.Client, tenant: str, login_id: str) -> None:
    import re

    page = client.get(f"/{tenant}/login").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    response = client.post(
        f"/{tenant}/login", data={"login": login_id, "password": "correct horse battery", "csrf_token": token}
    )
    assert response.status_code == 302, response.text
    if response.headers["Location"].endswith("/login/totp"):  # an administrator enrols TOTP first
        page = client.get(f"/{tenant}/login/totp").text
        secret = re.search(r'<code class="secret">([A-Z2-7]{16,})</code>', page)
        assert secret is not None
        TOTP_SECRETS[(tenant, login_id)] = html.unescape(secret.group(1))
        token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
        code = totp_code((tenant, login_id))
        response = client.post(f"/{tenant}/login/totp", data={"code": code, "csrf_token": token})
        assert response.status_code == 302, response.text


def test_prometheus_scrapes_the_app_and_every_panel_has_data(stack: Stack, tmp_path: Path) -> None:
    record = registry.get(TENANT)
    assert record is not None
    outcome = import_local_file(
        record,
        write(tmp_path / "p.csv", PEOPLE, STANDARD.residents),
        actor=Actor("cli", "t"),
        standard_layout=True,
    )
    assert outcome.status == "applied", outcome.rejections
    with session_scope(record.binding) as session:
        add_override(
            session,
            on_date=dt.datetime.now(JST).date() + dt.timedelta(days=2),
            kind="open",
            hours="09:00-12:00",
            reason="休日臨時窓口",
            entered_by="test",
        )
    make_staff(TENANT, "watcher")
    with httpx.Client(base_url=stack.app, timeout=10) as client:
        _login(client, TENANT, "watcher")  # GET 200 + POST 302
        for _ in range(5):
            assert client.get(f"/{TENANT}/").status_code == 200
        household = [{"name": "転入 太郎", "birth": "1985-05-01", "sex": 1, "relation": "世帯主"}]
        guidance = client.post(
            f"/api/v1/{TENANT}/guidance",
            json={"event": "tennyu", "household": household, "event_date": "2026-11-21"},
        )
        assert guidance.status_code == 200, guidance.text
        exposition = client.get("/metrics").text
    # Two workers, one total: multiprocess mode adds up every worker's counters.
    wait(
        "requests counted across both workers",
        lambda: (
            {
                r["metric"]["status_class"]: float(r["value"][1])
                for r in stack.query(
                    f'sum by (status_class) (madoguchi_http_requests_total{{tenant="{TENANT}"}})'
                )
            }
            == {"2xx": 7.0, "3xx": 1.0}
        ),
        seconds=30,
    )
    for word in (
        "監視",
        "見子",
        "聞太",
        "カンシ",
        "1970-07-07",
        "2012-08-08",
        number(51),
        number(52),
        "湯川町",
    ):
        assert word not in exposition, word
    wait("open series", lambda: stack.query('madoguchi:tenant_open{tenant="osaka"} == 1'), seconds=30)
    wait("a rate over two scrapes", lambda: stack.query("madoguchi:sli_error:ratio_rate5m"), seconds=30)

    empty = []
    checked = 0
    for name in dashboards.DASHBOARDS:
        board = json.loads((ROOT / "dashboards" / name).read_text())
        for title, expr in dashboards.panel_queries(board):
            query = expr.replace("$__rate_interval", "1m").replace("$tenant", TENANT)
            promql_parser.parse(query)  # a query Grafana would send, syntactically valid
            checked += 1
            if dashboards.AUDIT_SEAL_METRIC in query:
                continue  # the audit branch exports it; until then the panel is empty by design
            if not _has_data(stack, query):
                empty.append(title)
    assert checked >= 25
    assert empty == []


def test_form_previews_print_in_limited_children_under_gunicorn(stack: Stack) -> None:
    """The editor's trial prints (app.forms.trial) fork from a fork server the gunicorn worker
    starts: a good template prints, a 10 GB one is refused by the child's memory ceiling, and the
    worker goes on serving."""
    import re

    make_staff(TENANT, "formadmin", groups=("管理者",))
    with httpx.Client(base_url=stack.app, timeout=60) as client:
        _login(client, TENANT, "formadmin")
        editor = client.get(f"/{TENANT}/admin/forms/juumin_idou").text
        token = re.search(r'name="csrf_token" value="([^"]+)"', editor).group(1)  # type: ignore[union-attr]
        definition = re.search(r'<textarea id="definition"[^>]*>(.*?)</textarea>', editor, re.S)
        assert definition is not None
        text = html.unescape(definition.group(1))

        def preview(template: str) -> dict[str, Any]:
            response = client.post(f"/{TENANT}/admin/forms/juumin_idou/preview",
                                   data={"definition": text, "template": template, "csrf_token": token})  # fmt: skip
            assert response.status_code == 200, response.text[:300]
            return response.json()  # type: ignore[no-any-return]

        good = preview("<p class='mj'>{{ f.applicant_name }}</p>")
        assert good["ok"], good
        assert good["png"].startswith("data:image/png;base64,")
        huge = preview("{{ 'x' * 99999 * 99999 }}")
        assert not huge["ok"]
        assert "メモリが上限を超えました" in huge["problems"][0]
        assert client.get("/healthz").status_code == 200
        assert preview("<p>{{ f.applicant_name }}</p><p>2</p>")["ok"]


def test_outage_in_osakas_friday_extension_fires_opens_an_incident_and_counts_as_downtime(
    stack: Stack,
) -> None:
    wait(
        "osaka open at Friday 18:00 JST (shifted clock)",
        lambda: stack.query('madoguchi:tenant_open{tenant="osaka"} == 1'),
    )
    outage_start = dt.datetime.now(dt.UTC)
    stack.stop_app()
    wait(
        "the burn-rate page alert",
        lambda: stack.query(
            'ALERTS{alertname="MadoguchiErrorBudgetBurn", tenant="osaka", severity="page", alertstate="firing"}'
        ),
        seconds=60,
    )
    # Alertmanager cannot deliver while the app is down; it retries, and delivers once it is back.
    stack.start_app()
    incident = wait("an incident from the webhook", _osaka_incident, seconds=90, step=0.5)
    assert incident.slo == "availability"
    assert incident.severity == "page"
    assert incident.receivers  # support desk or on-call, depending on the real time of day
    assert incident.response_target_minutes == 30
    # Detection time is the alert's start: during the outage, before the webhook could arrive.
    assert outage_start - dt.timedelta(seconds=5) <= incident.detected_at <= dt.datetime.now(dt.UTC)
    assert incident.created_at > incident.detected_at
    downtime = stack.query('sum_over_time(madoguchi:tenant_unavailable{tenant="osaka"}[10m])')
    assert float(downtime[0]["value"][1]) >= 2  # seconds-long evaluations while down and open


def _has_data(stack: Stack, query: str, seconds: float = 20) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if stack.query(query):
            return True
        time.sleep(0.5)
    return False


def _osaka_incident() -> Incident | None:
    with control_session() as session:
        return session.scalars(
            select(Incident).where(
                Incident.tenant_id == "osaka",
                Incident.alert_name == "MadoguchiErrorBudgetBurn",
                Incident.severity == "page",
            )
        ).first()
