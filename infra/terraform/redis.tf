# ElastiCache Redis 7: sessions, rate limits, RQ queues, the metrics snapshot. Encrypted at rest
# and in transit with an AUTH token; the app reaches it with a rediss:// URL held in Secrets Manager.

resource "aws_elasticache_subnet_group" "main" {
  name       = local.name
  subnet_ids = aws_subnet.data[*].id
}

resource "random_password" "redis" {
  length  = 48
  special = false
}

resource "aws_elasticache_replication_group" "main" {
  replication_group_id       = local.name
  description                = "Madoguchi sessions, rate limits and job queues"
  engine                     = "redis"
  engine_version             = "7.1"
  node_type                  = var.redis_node_type
  num_cache_clusters         = 2
  automatic_failover_enabled = true
  multi_az_enabled           = true
  port                       = 6379
  subnet_group_name          = aws_elasticache_subnet_group.main.name
  security_group_ids         = [aws_security_group.redis.id]
  at_rest_encryption_enabled = true
  kms_key_id                 = aws_kms_key.data.arn
  transit_encryption_enabled = true
  auth_token                 = random_password.redis.result
  snapshot_retention_limit   = 7
  auto_minor_version_upgrade = true
  maintenance_window         = "sat:19:00-sat:20:00"
  snapshot_window            = "16:00-17:00"
}
