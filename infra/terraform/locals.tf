locals {
  name       = "madoguchi-${var.environment}"
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition

  # The port gunicorn binds in the web container; the load balancer and Prometheus use it.
  app_port = 8000

  # Longest operation-log retention of any tenant: the default Object Lock period of the audit
  # bucket (each seal also carries its tenant's own retention date, app/audit/storage.py).
  audit_retention_years = max(concat([10], [for t in var.tenants : t.audit_retention_years])...)

  tenant_buckets = merge([
    for tenant_id, t in var.tenants : {
      for bucket in t.buckets : bucket => tenant_id
    }
  ]...)

  # Settings every Madoguchi container shares (app/config.py, MADOGUCHI_*). Secrets are not here:
  # they come from Secrets Manager (secrets.tf) as environment variables at task start.
  app_environment = {
    MADOGUCHI_ENV                    = "production"
    MADOGUCHI_DB_ROLE_PREFIX         = var.db_name
    MADOGUCHI_DOCUMENTS_BUCKET       = module.bucket["documents"].id
    MADOGUCHI_AUDIT_BUCKET           = module.bucket["audit"].id
    MADOGUCHI_AUDIT_REGION           = var.region
    MADOGUCHI_AUDIT_OBJECT_LOCK_MODE = "COMPLIANCE"
    MADOGUCHI_AWS_REGION             = var.region
    MADOGUCHI_AWS_ACCOUNT_ID         = local.account_id
    MADOGUCHI_CLOUDTRAIL_BUCKET      = module.bucket["cloudtrail"].id
    MADOGUCHI_CLOUDTRAIL_PREFIX      = "cloudtrail/"
    MADOGUCHI_CONFIG_BUCKET          = module.bucket["config"].id
    MADOGUCHI_CONFIG_PREFIX          = "config/"
    MADOGUCHI_COST_TAG_KEY           = "municipality"
    MADOGUCHI_PROMETHEUS_URL         = "http://prometheus.${local.service_domain}:9090"
    MADOGUCHI_ALERTMANAGER_URL       = "http://prometheus.${local.service_domain}:9093"
    MADOGUCHI_SESSION_COOKIE_SECURE  = "true"
    MADOGUCHI_PROXY_HOPS             = "1"
    MADOGUCHI_GIT_COMMIT             = var.app_release
    MADOGUCHI_LOG_JSON               = "true"
    AWS_REGION                       = var.region
  }

  service_domain = "${local.name}.internal"
}

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
