# Two customer-managed keys, rotated yearly: one for data at rest (database, cache, buckets,
# secrets, the monitoring volume) and one for logs (CloudWatch Logs, CloudTrail), whose services
# need rights in the key policy itself.

data "aws_iam_policy_document" "kms_data" {
  #checkov:skip=CKV_AWS_109:A key policy's resource "*" is the key itself; the account root statement is what lets IAM policies grant use of the key.
  #checkov:skip=CKV_AWS_111:As above: key policy, not an identity policy.
  #checkov:skip=CKV_AWS_356:As above: key policy, not an identity policy.
  statement {
    sid       = "AccountAdministers"
    actions   = ["kms:*"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account_id}:root"]
    }
  }
}

resource "aws_kms_key" "data" {
  description             = "${local.name}: data at rest (Aurora, ElastiCache, S3, Secrets Manager, EFS)"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.kms_data.json
}

resource "aws_kms_alias" "data" {
  name          = "alias/${local.name}-data"
  target_key_id = aws_kms_key.data.key_id
}

data "aws_iam_policy_document" "kms_logs" {
  #checkov:skip=CKV_AWS_109:A key policy's resource "*" is the key itself; the account root statement is what lets IAM policies grant use of the key.
  #checkov:skip=CKV_AWS_111:As above: key policy, not an identity policy.
  #checkov:skip=CKV_AWS_356:As above: key policy, not an identity policy.
  source_policy_documents = [data.aws_iam_policy_document.kms_data.json] # the account's statement

  statement {
    sid       = "CloudWatchLogsEncrypts"
    actions   = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["logs.${var.region}.amazonaws.com"]
    }
    condition {
      test     = "ArnLike"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values   = ["arn:${local.partition}:logs:${var.region}:${local.account_id}:log-group:*"]
    }
  }

  statement {
    sid       = "CloudTrailEncrypts"
    actions   = ["kms:GenerateDataKey*", "kms:DescribeKey"]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["cloudtrail.amazonaws.com"]
    }
    condition {
      test     = "StringLike"
      variable = "kms:EncryptionContext:aws:cloudtrail:arn"
      values   = ["arn:${local.partition}:cloudtrail:*:${local.account_id}:trail/*"]
    }
  }
}

resource "aws_kms_key" "logs" {
  description             = "${local.name}: CloudWatch Logs and CloudTrail"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.kms_logs.json
}

resource "aws_kms_alias" "logs" {
  name          = "alias/${local.name}-logs"
  target_key_id = aws_kms_key.logs.key_id
}
