# The account's own audit trail, which the monthly report reads (ADR 0008): CloudTrail into its
# bucket (validated log files, all regions), AWS Config recording every resource with its history
# in the config bucket, Security Hub with the AWS Foundational Security Best Practices standard.

resource "aws_cloudtrail" "main" {
  #checkov:skip=CKV_AWS_252:Nothing consumes a notice per log file; alerts come from CloudWatch Logs, Security Hub and the monthly report.
  name                          = local.name
  s3_bucket_name                = module.bucket["cloudtrail"].id
  s3_key_prefix                 = "cloudtrail"
  is_multi_region_trail         = true
  include_global_service_events = true
  enable_log_file_validation    = true
  kms_key_id                    = aws_kms_key.logs.arn
  cloud_watch_logs_group_arn    = "${aws_cloudwatch_log_group.cloudtrail.arn}:*"
  cloud_watch_logs_role_arn     = aws_iam_role.cloudtrail.arn

  event_selector {
    read_write_type           = "All"
    include_management_events = true
    # Object-level events of the audit bucket: who read or tried to change a seal.
    data_resource {
      type   = "AWS::S3::Object"
      values = ["${module.bucket["audit"].arn}/"]
    }
  }
}

resource "aws_cloudwatch_log_group" "cloudtrail" {
  name              = "/${local.name}/cloudtrail"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.logs.arn
}

resource "aws_iam_role" "cloudtrail" {
  name               = "${local.name}-cloudtrail"
  assume_role_policy = data.aws_iam_policy_document.service_assume["cloudtrail.amazonaws.com"].json
}

data "aws_iam_policy_document" "cloudtrail_logs" {
  statement {
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.cloudtrail.arn}:*"]
  }
}

resource "aws_iam_role_policy" "cloudtrail" {
  role   = aws_iam_role.cloudtrail.id
  policy = data.aws_iam_policy_document.cloudtrail_logs.json
}

# --- AWS Config ---------------------------------------------------------------------------------

resource "aws_iam_role" "config" {
  name               = "${local.name}-config"
  assume_role_policy = data.aws_iam_policy_document.service_assume["config.amazonaws.com"].json
}

resource "aws_iam_role_policy_attachment" "config" {
  role       = aws_iam_role.config.name
  policy_arn = "arn:${local.partition}:iam::aws:policy/service-role/AWS_ConfigRole"
}

# AWS_ConfigRole lets Config read the resources; delivering to the bucket is granted here.
data "aws_iam_policy_document" "config_delivery" {
  statement {
    actions   = ["s3:PutObject", "s3:PutObjectAcl"]
    resources = ["${module.bucket["config"].arn}/config/AWSLogs/${local.account_id}/*"]
  }
  statement {
    actions   = ["s3:GetBucketAcl"]
    resources = [module.bucket["config"].arn]
  }
  statement {
    actions   = ["kms:GenerateDataKey", "kms:Decrypt"]
    resources = [aws_kms_key.data.arn]
  }
}

resource "aws_iam_role_policy" "config_delivery" {
  role   = aws_iam_role.config.id
  policy = data.aws_iam_policy_document.config_delivery.json
}

resource "aws_config_configuration_recorder" "main" {
  name     = local.name
  role_arn = aws_iam_role.config.arn
  recording_group {
    all_supported                 = true
    include_global_resource_types = true
  }
}

resource "aws_config_delivery_channel" "main" {
  name           = local.name
  s3_bucket_name = module.bucket["config"].id
  s3_key_prefix  = "config"
  s3_kms_key_arn = aws_kms_key.data.arn
  depends_on     = [aws_config_configuration_recorder.main]
}

resource "aws_config_configuration_recorder_status" "main" {
  name       = aws_config_configuration_recorder.main.name
  is_enabled = true
  depends_on = [aws_config_delivery_channel.main]
}

# --- Security Hub -------------------------------------------------------------------------------

resource "aws_securityhub_account" "main" {
  enable_default_standards = false
}

resource "aws_securityhub_standards_subscription" "fsbp" {
  standards_arn = "arn:${local.partition}:securityhub:${var.region}::standards/aws-foundational-security-best-practices/v/1.0.0"
  depends_on    = [aws_securityhub_account.main]
}
