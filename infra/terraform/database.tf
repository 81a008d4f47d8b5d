# Aurora PostgreSQL 15: one database, one schema per tenant (ADR 0001). The master password is
# managed by RDS in Secrets Manager and never passes through Terraform. The two login roles the
# service uses (<db>_admin for migrations, <db>_app at run time) are created once by the operator
# with the master user (docs/manual/運用監視と障害対応.md, "AWS への配置"); their connection URLs
# live in the secrets of secrets.tf.

resource "aws_db_subnet_group" "main" {
  name       = local.name
  subnet_ids = aws_subnet.data[*].id
}

resource "aws_rds_cluster_parameter_group" "main" {
  name   = "${local.name}-aurora-pg15"
  family = "aurora-postgresql15"

  parameter {
    name  = "rds.force_ssl"
    value = "1"
  }
  # Statements slower than a second are logged, but never with their parameters: those are
  # residents' names, addresses and the My Number's keyed hash.
  parameter {
    name  = "log_min_duration_statement"
    value = "1000"
  }
  parameter {
    name  = "log_parameter_max_length"
    value = "0"
  }
  parameter {
    name  = "log_parameter_max_length_on_error"
    value = "0"
  }
  parameter {
    name  = "log_statement"
    value = "ddl"
  }
  parameter {
    name  = "log_connections"
    value = "1"
  }
  parameter {
    name  = "log_disconnections"
    value = "1"
  }
  parameter {
    name         = "shared_preload_libraries"
    value        = "pg_stat_statements"
    apply_method = "pending-reboot"
  }
  parameter {
    name  = "timezone"
    value = "UTC"
  }
}

resource "aws_rds_cluster" "main" {
  cluster_identifier                  = local.name
  engine                              = "aurora-postgresql"
  engine_version                      = var.db_engine_version
  database_name                       = var.db_name
  master_username                     = "madoguchi_master"
  manage_master_user_password         = true
  master_user_secret_kms_key_id       = aws_kms_key.data.arn
  db_subnet_group_name                = aws_db_subnet_group.main.name
  vpc_security_group_ids              = [aws_security_group.database.id]
  db_cluster_parameter_group_name     = aws_rds_cluster_parameter_group.main.name
  storage_encrypted                   = true
  kms_key_id                          = aws_kms_key.data.arn
  backup_retention_period             = var.backup_retention_days
  preferred_backup_window             = "17:00-18:00" # 02:00-03:00 JST, after the nightly imports start
  preferred_maintenance_window        = "sat:18:00-sat:19:00"
  copy_tags_to_snapshot               = true
  deletion_protection                 = true
  iam_database_authentication_enabled = true
  enabled_cloudwatch_logs_exports     = ["postgresql"]
  final_snapshot_identifier           = "${local.name}-final"
  skip_final_snapshot                 = false
}

resource "aws_rds_cluster_instance" "main" {
  count                           = var.db_instances
  identifier                      = "${local.name}-${count.index}"
  cluster_identifier              = aws_rds_cluster.main.id
  instance_class                  = var.db_instance_class
  engine                          = aws_rds_cluster.main.engine
  engine_version                  = aws_rds_cluster.main.engine_version
  availability_zone               = var.availability_zones[count.index % local.az_count]
  db_subnet_group_name            = aws_db_subnet_group.main.name
  publicly_accessible             = false
  auto_minor_version_upgrade      = true
  monitoring_interval             = 30
  monitoring_role_arn             = aws_iam_role.rds_monitoring.arn
  performance_insights_enabled    = true
  performance_insights_kms_key_id = aws_kms_key.data.arn
  copy_tags_to_snapshot           = true
}

resource "aws_iam_role" "rds_monitoring" {
  name               = "${local.name}-rds-monitoring"
  assume_role_policy = data.aws_iam_policy_document.service_assume["monitoring.rds.amazonaws.com"].json
}

resource "aws_iam_role_policy_attachment" "rds_monitoring" {
  role       = aws_iam_role.rds_monitoring.name
  policy_arn = "arn:${local.partition}:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole"
}
