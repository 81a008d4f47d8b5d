output "load_balancer_dns_name" {
  description = "Point domain_name (CNAME or alias) here."
  value       = aws_lb.main.dns_name
}

output "database_endpoint" {
  description = "Aurora writer endpoint, for the database URLs the operator puts into Secrets Manager."
  value       = aws_rds_cluster.main.endpoint
}

output "database_master_secret_arn" {
  description = "Secret of the master user (managed by RDS), for the one-time role set-up."
  value       = aws_rds_cluster.main.master_user_secret[0].secret_arn
}

output "operator_secrets" {
  description = "Secrets an operator must put a value into before the first deployment."
  value       = { for name in local.operator_secrets : name => aws_secretsmanager_secret.app[name].arn }
}

output "migration_task_definition" {
  description = "Run once per release before the services are updated (madoguchi tenants sync)."
  value       = aws_ecs_task_definition.app["migrate"].arn
}

output "buckets" {
  description = "Bucket names by role."
  value = merge(
    { for key, b in module.bucket : key => b.id },
    { logs = module.log_bucket.id, audit_replica = module.audit_replica.id },
    { for name, b in module.linkage_bucket : "linkage:${name}" => b.id },
  )
}
