"""What the AWS deployment needs to know about the tenants (``infra/terraform``).

``madoguchi tenants terraform`` writes ``infra/terraform/tenants.auto.tfvars.json`` from the validated
tenant folders, the way ``madoguchi sla rules`` writes the Prometheus rules: checked in, and a test
fails while it is stale. Terraform then creates each city's linkage buckets (tagged with the tenant
id, the cost-allocation tag the monthly report groups by) and one Secrets Manager secret per
environment variable a tenant's ``env:`` references name, injected into the containers.

Only buckets in this deployment's AWS account are listed: an adapter or outbound target with its own
``endpoint_url`` is the city's storage, not ours.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from app.config import PROJECT_ROOT
from app.db.names import schema_for_code
from app.tenancy.config import TenantConfig
from app.tenancy.loader import LoadedTenant

TFVARS_PATH = PROJECT_ROOT / "infra" / "terraform" / "tenants.auto.tfvars.json"
_ENV_PREFIX = "env:"


def secret_env_names(config: TenantConfig) -> set[str]:
    """Environment variables named by the tenant's ``env:`` secret references, wherever they are."""
    names: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, str):
            if value.startswith(_ENV_PREFIX):
                names.add(value[len(_ENV_PREFIX) :])
        elif isinstance(value, Mapping):
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(config.model_dump(mode="json", exclude={"catalogue", "forms", "fees"}))
    return names


def linkage_buckets(config: TenantConfig) -> set[str]:
    """Buckets of the tenant's S3 adapters and outbound targets that live in our AWS account."""
    targets: Iterable[Any] = [*config.linkage.adapters, *config.linkage.outbound]
    return {
        t.bucket
        for t in targets
        if getattr(t, "kind", None) == "s3" and getattr(t, "endpoint_url", None) is None
    }


class BucketClaimedTwice(ValueError):
    """Two tenants name the same bucket: the bucket policy and the cost tag would have two owners."""


def terraform_inputs(loaded: Mapping[str, LoadedTenant]) -> dict[str, Any]:
    tenants: dict[str, Any] = {}
    owner: dict[str, str] = {}
    secrets: set[str] = set()
    for tenant_id in sorted(loaded):
        config = loaded[tenant_id].config
        buckets = sorted(linkage_buckets(config))
        for bucket in buckets:
            if bucket in owner:
                raise BucketClaimedTwice(
                    f"バケット {bucket} をテナント {owner[bucket]} と {tenant_id} の両方が使っています"
                    "（連携用バケットは自治体ごとに分けてください）"
                )
            owner[bucket] = tenant_id
        tenants[tenant_id] = {
            "code": config.tenant.code,
            "name": config.tenant.name,
            "schema": schema_for_code(config.tenant.code),
            "buckets": buckets,
            "audit_retention_years": config.sla.audit.retention_years,
        }
        secrets |= secret_env_names(config)
    return {"tenants": tenants, "tenant_secret_env": sorted(secrets)}


def render(inputs: Mapping[str, Any]) -> str:
    # No comment key: Terraform would warn about a value for an undeclared variable. The variables'
    # descriptions (variables.tf) say the file is generated.
    return json.dumps(dict(inputs), ensure_ascii=False, indent=2) + "\n"


def write(loaded: Mapping[str, LoadedTenant], path: Path = TFVARS_PATH) -> Path:
    path.write_text(render(terraform_inputs(loaded)), encoding="utf-8")
    return path
