"""Typed settings from the environment (``MADOGUCHI_*``).

Local values come from ``var/services.env`` (written by ``scripts/services.sh``); production sets the
same variables from its secret store. Nothing here reads files from the tenant folders.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MADOGUCHI_", extra="ignore", frozen=True)

    env: Literal["development", "test", "production"] = "development"
    database_url: str = Field(description="runtime login role (NOINHERIT, member of tenant roles)")
    admin_database_url: str | None = Field(
        default=None, description="migration/provisioning role; needed only by `tenants sync`"
    )
    db_role_prefix: str | None = Field(
        default=None, description="prefix of tenant role names; defaults to the database name"
    )
    db_pool_size: int = 10
    db_max_overflow: int = 10
    # Connections that touched many tenant schemas grow their catalog cache (~41 MB at 1,741
    # schemas, see docs/benchmarks.md); recycling bounds that.
    db_pool_recycle_seconds: int = 1800
    db_statement_timeout_ms: int = 30_000
    # An import's COPY is one statement that lasts as long as the file is read (minutes at Osaka
    # scale); it gets its own limit.
    import_statement_timeout_ms: int = 3 * 3600 * 1000
    redis_url: str = "redis://127.0.0.1:55379/0"
    s3_endpoint_url: str | None = None
    documents_bucket: str = "madoguchi-documents"
    secret_key: SecretStr = SecretStr("")
    tenants_dir: Path = PROJECT_ROOT / "tenants"
    tenant_cache_seconds: float = 10.0
    # Proxies in front of the service that append to X-Forwarded-For (the load balancer: 1). The
    # client's address — the key of every per-address rate limit (sign-in, the public
    # pre-application) and the terminal in the operation log — is read that many hops from the
    # right. 0 (serving directly, as in development): the header is ignored, so nobody can choose
    # their address by sending it.
    proxy_hops: int = Field(default=0, ge=0, le=4)
    # Parsed tenant configurations (~0.1 MB each) and compiled catalogues (~1-1.5 MB each, shared
    # by tenants with the same one) a process keeps; the least recently used go first.
    tenant_cache_size: int = Field(default=256, ge=1)
    session_lifetime_minutes: int = 480  # provider staff (/ops/); city staff follow security.yaml
    ops_idle_minutes: int = 15
    # argon2id parameters (app/identity/passwords.py, ADR 0004); the test suite lowers them for speed.
    argon2_time_cost: int = Field(default=2, ge=1)
    argon2_memory_kib: int = Field(default=65536, ge=8192)
    argon2_parallelism: int = Field(default=1, ge=1)
    api_token_minutes: int = Field(default=60, ge=5, le=1440)
    session_cookie_secure: bool = False
    log_level: str = "INFO"
    log_json: bool = True
    prometheus_url: str | None = None
    alertmanager_url: str | None = None
    # Observability (issue 7): /metrics, the database-derived snapshot behind it, the incident webhook.
    metrics_enabled: bool = True
    metrics_snapshot_seconds: float = Field(
        default=60.0, description="how old the database-derived figures on /metrics may get"
    )
    metrics_cold_wait_seconds: float = Field(
        default=3.0,
        ge=0,
        description="how long a scrape waits for the first snapshot before answering without it",
    )
    git_commit: str | None = Field(default=None, description="set by the build; else read from git once")
    alertmanager_webhook_token_ref: str = Field(
        default="env:MADOGUCHI_ALERTMANAGER_WEBHOOK_TOKEN",
        description="secret reference (app.secrets) of the bearer token Alertmanager sends",
    )
    # Monthly reports (issue 9): the AWS account the service runs in and where its audit trail is kept.
    # aws_endpoint_url points every AWS client at a local stand-in (moto) in development and tests.
    aws_endpoint_url: str | None = None
    aws_region: str = "ap-northeast-1"
    aws_account_id: str = "123456789012"
    cloudtrail_bucket: str | None = Field(default=None, description="CloudTrail archive bucket")
    cloudtrail_prefix: str = ""
    config_bucket: str | None = Field(default=None, description="AWS Config delivery bucket")
    config_prefix: str = ""
    reports_aws_enabled: bool = Field(
        default=True, description="read IAM, CloudTrail, Config, Security Hub and Cost Explorer for reports"
    )
    cost_tag_key: str = "municipality"
    reports_workers: int = Field(default=2, ge=1, le=16, description="processes rendering tenant reports")
    # Operation log (docs/adr/0005-audit-chain.md): seals and archives go to one bucket per
    # deployment, one prefix per tenant schema under ``audit_prefix``.
    audit_bucket: str = "madoguchi-audit"
    audit_prefix: str = "audit/"
    audit_region: str = "ap-northeast-1"
    # Object Lock retention mode of every seal and archive object. Production runs COMPLIANCE
    # (nobody, root included, can delete before the date); development and tests GOVERNANCE.
    audit_object_lock_mode: Literal["GOVERNANCE", "COMPLIANCE"] = "GOVERNANCE"
    audit_seal_key_ref: str = Field(
        default="env:MADOGUCHI_AUDIT_SEAL_KEY", description="secret reference of the Ed25519 seal key"
    )
    audit_seal_public_keys: str = Field(
        default="", description="older public keys (base64, comma-separated) that verify old seals"
    )
    # Contract end (ADR 0013): who signs the deletion certificate, and how long database backups
    # keep a deleted city's data (infra/terraform/backup.tf keeps recovery points this long).
    provider_name: str = "窓口支援システム Madoguchi 提供事業者"
    backup_retention_days: int = Field(default=365, ge=1)
    # Writers release the chain lock before their commit is flushed and wait for the flush after
    # it (see app.audit.service); off = plain synchronous commit under the lock.
    audit_early_lock_release: bool = True

    @property
    def role_prefix(self) -> str:
        if self.db_role_prefix:
            return self.db_role_prefix
        database = make_url(self.database_url).database
        if not database:
            raise ValueError("MADOGUCHI_DATABASE_URL names no database")
        return database


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()  # values come from the environment
