# Secrets, injected into the containers as environment variables at task start (ECS `secrets`),
# which is how `env:NAME` references (app/secrets.py) resolve in production.
#
# Terraform generates and keeps only what nobody outside this deployment needs to know: the Flask
# session key, Alertmanager's bearer token and the Redis URL with its AUTH token. The rest is put
# by an operator (`aws secretsmanager put-secret-value`), so it never passes through Terraform's
# state: the two database URLs (roles created by hand, see database.tf), the operation-log seal
# key (whoever holds it can sign seals) and each city's credentials named in its tenant files.

locals {
  generated_secrets = ["MADOGUCHI_SECRET_KEY", "MADOGUCHI_ALERTMANAGER_WEBHOOK_TOKEN", "MADOGUCHI_REDIS_URL"]
  operator_secrets = concat(
    ["MADOGUCHI_DATABASE_URL", "MADOGUCHI_ADMIN_DATABASE_URL", "MADOGUCHI_AUDIT_SEAL_KEY"],
    var.tenant_secret_env,
  )
  # What the web and worker containers receive; the admin URL goes to the migration task only.
  runtime_secrets   = [for name in concat(local.generated_secrets, local.operator_secrets) : name if name != "MADOGUCHI_ADMIN_DATABASE_URL"]
  migration_secrets = ["MADOGUCHI_DATABASE_URL", "MADOGUCHI_ADMIN_DATABASE_URL", "MADOGUCHI_SECRET_KEY", "MADOGUCHI_REDIS_URL"]
}

resource "aws_secretsmanager_secret" "app" {
  #checkov:skip=CKV2_AWS_57:Rotation is an operator procedure here: the database roles' passwords and the cities' credentials change with their owners, and a rotated seal key must keep its predecessor's public key (MADOGUCHI_AUDIT_SEAL_PUBLIC_KEYS).
  for_each                = toset(concat(local.generated_secrets, local.operator_secrets))
  name                    = "${local.name}/${each.key}"
  description             = "Madoguchi ${var.environment}: environment variable ${each.key}"
  kms_key_id              = aws_kms_key.data.arn
  recovery_window_in_days = 30
}

resource "random_password" "secret_key" {
  length  = 64
  special = false
}

resource "random_password" "alertmanager_token" {
  length  = 48
  special = false
}

resource "aws_secretsmanager_secret_version" "generated" {
  for_each = {
    MADOGUCHI_SECRET_KEY                 = random_password.secret_key.result
    MADOGUCHI_ALERTMANAGER_WEBHOOK_TOKEN = random_password.alertmanager_token.result
    MADOGUCHI_REDIS_URL                  = "rediss://:${random_password.redis.result}@${aws_elasticache_replication_group.main.primary_endpoint_address}:6379/0"
  }
  secret_id     = aws_secretsmanager_secret.app[each.key].id
  secret_string = each.value
}
