# AWS Backup of the database (and the monitoring volume) on top of Aurora's own point-in-time recovery: daily recovery points
# kept for a year in a locked vault, each copied to the replica region, so a lost region or a
# deleted cluster still leaves the residents' data and the operation log.

resource "aws_backup_vault" "main" {
  name        = local.name
  kms_key_arn = aws_kms_key.data.arn
}

resource "aws_backup_vault" "replica" {
  provider    = aws.replica
  name        = "${local.name}-replica"
  kms_key_arn = aws_kms_key.replica.arn
}

resource "aws_backup_vault_lock_configuration" "main" {
  backup_vault_name  = aws_backup_vault.main.name
  min_retention_days = 30
  max_retention_days = 400
}

resource "aws_backup_plan" "database" {
  name = "${local.name}-database"

  rule {
    rule_name         = "daily"
    target_vault_name = aws_backup_vault.main.name
    schedule          = "cron(0 18 * * ? *)" # 03:00 JST
    lifecycle {
      delete_after = 365
    }
    copy_action {
      destination_vault_arn = aws_backup_vault.replica.arn
      lifecycle {
        delete_after = 365
      }
    }
  }
}

resource "aws_iam_role" "backup" {
  name               = "${local.name}-backup"
  assume_role_policy = data.aws_iam_policy_document.service_assume["backup.amazonaws.com"].json
}

resource "aws_iam_role_policy_attachment" "backup" {
  role       = aws_iam_role.backup.name
  policy_arn = "arn:${local.partition}:iam::aws:policy/service-role/AWSBackupServiceRolePolicyForBackup"
}

resource "aws_backup_selection" "database" {
  name         = "${local.name}-database"
  plan_id      = aws_backup_plan.database.id
  iam_role_arn = aws_iam_role.backup.arn
  resources    = [aws_rds_cluster.main.arn, aws_efs_file_system.monitoring.arn]
}
