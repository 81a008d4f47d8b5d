# Buckets. Names carry the account id: S3 names are global and a second deployment must not collide.
#
#   logs        load balancer and S3 server access logs (SSE-S3: ALB access logs accept nothing else)
#   documents   generated PDFs and CSV exports, one prefix per tenant (app/storage.py)
#   audit       operation-log seals and archives, Object Lock COMPLIANCE (ADR 0005), replicated
#   cloudtrail  the account's CloudTrail archive, read by the monthly report (ADR 0008)
#   config      AWS Config snapshots and history, read by the monthly report
#   monitoring  Prometheus and Alertmanager configuration, generated in dashboards/
# plus each city's linkage buckets, named in its linkage.yaml and tagged with its tenant id.

locals {
  bucket_prefix = "${local.name}-${local.account_id}"
  buckets = {
    documents  = { lock_years = null, expire_days = null }
    audit      = { lock_years = local.audit_retention_years, expire_days = null }
    cloudtrail = { lock_years = null, expire_days = null }
    config     = { lock_years = null, expire_days = null }
    monitoring = { lock_years = null, expire_days = null }
  }
  bucket_service_statements = {
    # Tokyo predates the log-delivery service principal: its load balancers write as the
    # region's Elastic Load Balancing account; newer regions use the principal. Both are allowed.
    logs = [{
      Sid       = "LoadBalancerAccessLogsRegionAccount"
      Effect    = "Allow"
      Principal = { AWS = data.aws_elb_service_account.main.arn }
      Action    = "s3:PutObject"
      Resource  = "arn:${local.partition}:s3:::${local.bucket_prefix}-logs/alb/AWSLogs/${local.account_id}/*"
      }, {
      Sid       = "LoadBalancerAccessLogs"
      Effect    = "Allow"
      Principal = { Service = "logdelivery.elasticloadbalancing.amazonaws.com" }
      Action    = "s3:PutObject"
      Resource  = "arn:${local.partition}:s3:::${local.bucket_prefix}-logs/alb/AWSLogs/${local.account_id}/*"
      }, {
      Sid       = "S3ServerAccessLogs"
      Effect    = "Allow"
      Principal = { Service = "logging.s3.amazonaws.com" }
      Action    = "s3:PutObject"
      Resource  = "arn:${local.partition}:s3:::${local.bucket_prefix}-logs/s3/*"
      Condition = { StringEquals = { "aws:SourceAccount" = local.account_id } }
    }]
    cloudtrail = [{
      Sid       = "CloudTrailAclCheck"
      Effect    = "Allow"
      Principal = { Service = "cloudtrail.amazonaws.com" }
      Action    = "s3:GetBucketAcl"
      Resource  = "arn:${local.partition}:s3:::${local.bucket_prefix}-cloudtrail"
      }, {
      Sid       = "CloudTrailWrite"
      Effect    = "Allow"
      Principal = { Service = "cloudtrail.amazonaws.com" }
      Action    = "s3:PutObject"
      Resource  = "arn:${local.partition}:s3:::${local.bucket_prefix}-cloudtrail/cloudtrail/AWSLogs/${local.account_id}/*"
      Condition = { StringEquals = { "s3:x-amz-acl" = "bucket-owner-full-control", "aws:SourceAccount" = local.account_id } }
    }]
    config = [{
      Sid       = "ConfigAclCheck"
      Effect    = "Allow"
      Principal = { Service = "config.amazonaws.com" }
      Action    = ["s3:GetBucketAcl", "s3:ListBucket"]
      Resource  = "arn:${local.partition}:s3:::${local.bucket_prefix}-config"
      Condition = { StringEquals = { "aws:SourceAccount" = local.account_id } }
      }, {
      Sid       = "ConfigWrite"
      Effect    = "Allow"
      Principal = { Service = "config.amazonaws.com" }
      Action    = "s3:PutObject"
      Resource  = "arn:${local.partition}:s3:::${local.bucket_prefix}-config/config/AWSLogs/${local.account_id}/*"
      Condition = { StringEquals = { "s3:x-amz-acl" = "bucket-owner-full-control", "aws:SourceAccount" = local.account_id } }
    }]
  }
}

data "aws_elb_service_account" "main" {}

module "log_bucket" {
  source = "./modules/bucket"

  name              = "${local.bucket_prefix}-logs"
  expire_days       = var.log_retention_days
  policy_statements = local.bucket_service_statements.logs
}

module "bucket" {
  source   = "./modules/bucket"
  for_each = local.buckets

  name              = "${local.bucket_prefix}-${each.key}"
  kms_key_arn       = aws_kms_key.data.arn
  access_log_bucket = module.log_bucket.id
  object_lock_years = each.value.lock_years
  expire_days       = each.value.expire_days
  policy_statements = try(local.bucket_service_statements[each.key], [])
}

# Each city's linkage buckets (linkage.yaml: adapters' and outbound targets' buckets). Only the
# city's own core-system principals get in besides Madoguchi's tasks, and the bucket carries the
# city's tenant id as the cost-allocation tag the monthly report groups Cost Explorer by.
module "linkage_bucket" {
  source   = "./modules/bucket"
  for_each = local.tenant_buckets

  name              = each.key
  kms_key_arn       = aws_kms_key.data.arn
  access_log_bucket = module.log_bucket.id
  tags              = { municipality = each.value }
  policy_statements = length(lookup(var.core_system_principals, each.value, [])) == 0 ? [] : [{
    Sid       = "CoreSystemOfThisCity"
    Effect    = "Allow"
    Principal = { AWS = var.core_system_principals[each.value] }
    Action    = ["s3:PutObject", "s3:GetObject", "s3:ListBucket"]
    Resource  = ["arn:${local.partition}:s3:::${each.key}", "arn:${local.partition}:s3:::${each.key}/*"]
  }]
}

# --- The audit bucket's replica in the second region -----------------------------------------

resource "aws_kms_key" "replica" {
  provider                = aws.replica
  description             = "${local.name}: replica of the audit seals"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.kms_data.json
}

module "audit_replica" {
  source    = "./modules/bucket"
  providers = { aws = aws.replica }

  name              = "${local.bucket_prefix}-audit-replica"
  kms_key_arn       = aws_kms_key.replica.arn
  object_lock_years = local.audit_retention_years
}

resource "aws_iam_role" "replication" {
  name               = "${local.name}-audit-replication"
  assume_role_policy = data.aws_iam_policy_document.service_assume["s3.amazonaws.com"].json
}

data "aws_iam_policy_document" "replication" {
  statement {
    actions   = ["s3:GetReplicationConfiguration", "s3:ListBucket"]
    resources = [module.bucket["audit"].arn]
  }
  statement {
    actions = [
      "s3:GetObjectVersionForReplication", "s3:GetObjectVersionAcl", "s3:GetObjectVersionTagging",
      "s3:GetObjectRetention", "s3:GetObjectLegalHold",
    ]
    resources = ["${module.bucket["audit"].arn}/*"]
  }
  statement {
    actions   = ["s3:ReplicateObject", "s3:ReplicateDelete", "s3:ReplicateTags", "s3:ObjectOwnerOverrideToBucketOwner"]
    resources = ["${module.audit_replica.arn}/*"]
  }
  statement {
    actions   = ["kms:Decrypt"]
    resources = [aws_kms_key.data.arn]
  }
  statement {
    actions   = ["kms:Encrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.replica.arn]
  }
}

resource "aws_iam_role_policy" "replication" {
  role   = aws_iam_role.replication.id
  policy = data.aws_iam_policy_document.replication.json
}

resource "aws_s3_bucket_replication_configuration" "audit" {
  bucket = module.bucket["audit"].id
  role   = aws_iam_role.replication.arn

  rule {
    id     = "seals-and-archives"
    status = "Enabled"
    filter {}
    delete_marker_replication {
      status = "Disabled"
    }
    source_selection_criteria {
      sse_kms_encrypted_objects {
        status = "Enabled"
      }
    }
    destination {
      bucket        = module.audit_replica.arn
      storage_class = "STANDARD_IA"
      encryption_configuration {
        replica_kms_key_id = aws_kms_key.replica.arn
      }
    }
  }
}

# --- Monitoring configuration, from the generated files in dashboards/ -----------------------

resource "aws_s3_object" "prometheus_rules" {
  for_each     = fileset("${path.module}/../../dashboards/rules", "*.yml")
  bucket       = module.bucket["monitoring"].id
  key          = "prometheus/rules/${each.value}"
  content      = file("${path.module}/../../dashboards/rules/${each.value}")
  content_type = "application/yaml"
}

resource "aws_s3_object" "prometheus_config" {
  bucket       = module.bucket["monitoring"].id
  key          = "prometheus/prometheus.yml"
  content      = templatefile("${path.module}/templates/prometheus.yml.tftpl", { service_domain = local.service_domain, app_port = local.app_port })
  content_type = "application/yaml"
}

# dashboards/alertmanager.yml names the local receiver (APP_PORT on loopback, scripts/services.sh);
# here every receiver posts to the web tasks through Cloud Map.
resource "aws_s3_object" "alertmanager_config" {
  bucket       = module.bucket["monitoring"].id
  key          = "alertmanager/alertmanager.yml"
  content      = replace(file("${path.module}/../../dashboards/alertmanager.yml"), "http://127.0.0.1:APP_PORT", "http://web.${local.service_domain}:${local.app_port}")
  content_type = "application/yaml"
}
