# Roles of the ECS tasks. The execution role lets ECS pull the image, write logs and read the
# secrets it injects; the task roles are what the code itself may do.

data "aws_iam_policy_document" "ecs_tasks_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "execution" {
  name               = "${local.name}-ecs-execution"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
}

resource "aws_iam_role_policy_attachment" "execution" {
  role       = aws_iam_role.execution.name
  policy_arn = "arn:${local.partition}:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
}

data "aws_iam_policy_document" "execution_secrets" {
  statement {
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [for s in aws_secretsmanager_secret.app : s.arn]
  }
  statement {
    actions   = ["kms:Decrypt"]
    resources = [aws_kms_key.data.arn]
  }
}

resource "aws_iam_role_policy" "execution_secrets" {
  role   = aws_iam_role.execution.id
  policy = data.aws_iam_policy_document.execution_secrets.json
}

# --- The app (web, worker, migrations) ------------------------------------------------------

resource "aws_iam_role" "app" {
  name               = "${local.name}-app"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
}

data "aws_iam_policy_document" "app" {
  #checkov:skip=CKV_AWS_356:The credential report, Config compliance and Cost Explorer reads accept no resource but "*" (statement ReportAccountReads); every other statement names its resources.
  statement {
    sid     = "DocumentsAndLinkage"
    actions = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:ListBucket", "s3:GetBucketLocation"]
    resources = flatten([
      for arn in concat([module.bucket["documents"].arn], [for b in module.linkage_bucket : b.arn]) : [arn, "${arn}/*"]
    ])
  }

  # Seals and archives: written with a retention date, never deleted (Object Lock COMPLIANCE).
  statement {
    sid     = "AuditSeals"
    actions = ["s3:GetObject", "s3:PutObject", "s3:PutObjectRetention", "s3:GetObjectRetention", "s3:ListBucket", "s3:GetBucketLocation"]
    resources = [
      module.bucket["audit"].arn,
      "${module.bucket["audit"].arn}/*",
    ]
  }

  # The monthly report (ADR 0008): CloudTrail and Config archives, IAM, Security Hub, Cost Explorer.
  statement {
    sid     = "ReportArchives"
    actions = ["s3:GetObject", "s3:ListBucket"]
    resources = flatten([
      for key in ["cloudtrail", "config"] : [module.bucket[key].arn, "${module.bucket[key].arn}/*"]
    ])
  }
  statement {
    sid       = "ReportRoles"
    actions   = ["iam:ListRoles", "iam:GetRole"]
    resources = ["arn:${local.partition}:iam::${local.account_id}:role/*"]
  }
  statement {
    sid       = "ReportFindings"
    actions   = ["securityhub:GetFindings"]
    resources = ["arn:${local.partition}:securityhub:${var.region}:${local.account_id}:hub/default"]
  }
  # These calls take no resource-level permissions: "*" is the only resource IAM accepts for them.
  statement {
    sid = "ReportAccountReads"
    actions = [
      "iam:GenerateCredentialReport", "iam:GetCredentialReport",
      "config:DescribeComplianceByConfigRule", "ce:GetCostAndUsage",
    ]
    resources = ["*"]
  }

  statement {
    sid       = "Keys"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.data.arn, aws_kms_key.logs.arn]
  }
}

resource "aws_iam_role_policy" "app" {
  role   = aws_iam_role.app.id
  policy = data.aws_iam_policy_document.app.json
}

# --- Monitoring (reads its configuration) ------------------------------------------------------

resource "aws_iam_role" "monitoring" {
  name               = "${local.name}-monitoring"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
}

data "aws_iam_policy_document" "monitoring" {
  statement {
    actions   = ["s3:GetObject", "s3:ListBucket"]
    resources = [module.bucket["monitoring"].arn, "${module.bucket["monitoring"].arn}/*"]
  }
  statement {
    actions   = ["kms:Decrypt"]
    resources = [aws_kms_key.data.arn]
  }
  statement {
    actions   = ["elasticfilesystem:ClientMount", "elasticfilesystem:ClientWrite"]
    resources = [aws_efs_file_system.monitoring.arn]
  }
}

resource "aws_iam_role_policy" "monitoring" {
  role   = aws_iam_role.monitoring.id
  policy = data.aws_iam_policy_document.monitoring.json
}

# --- Roles AWS services assume (flow logs, CloudTrail, Config, Backup, RDS monitoring, S3 replication)

data "aws_iam_policy_document" "service_assume" {
  for_each = toset([
    "vpc-flow-logs.amazonaws.com", "cloudtrail.amazonaws.com", "config.amazonaws.com",
    "backup.amazonaws.com", "monitoring.rds.amazonaws.com", "s3.amazonaws.com",
  ])
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = [each.key]
    }
  }
}

# --- VPC flow logs ----------------------------------------------------------------------------

resource "aws_iam_role" "flow_logs" {
  name               = "${local.name}-flow-logs"
  assume_role_policy = data.aws_iam_policy_document.service_assume["vpc-flow-logs.amazonaws.com"].json
}

data "aws_iam_policy_document" "flow_logs" {
  statement {
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"]
    resources = ["${aws_cloudwatch_log_group.flow.arn}:*"]
  }
}

resource "aws_iam_role_policy" "flow_logs" {
  role   = aws_iam_role.flow_logs.id
  policy = data.aws_iam_policy_document.flow_logs.json
}
