variable "environment" {
  description = "Deployment name: production or staging. Part of every resource name."
  type        = string
  validation {
    condition     = contains(["production", "staging"], var.environment)
    error_message = "environment must be production or staging."
  }
}

variable "region" {
  description = "Government Cloud region. Tokyo; the audit seals replicate to Osaka."
  type        = string
  default     = "ap-northeast-1"
}

variable "replica_region" {
  description = "Region that keeps a copy of the audit seals and archives."
  type        = string
  default     = "ap-northeast-3"
}

variable "vpc_cidr" {
  description = "Address range of the VPC (three AZs, /20 subnets carved from it)."
  type        = string
  default     = "10.40.0.0/16"
}

variable "availability_zones" {
  description = "Availability zones used, three for Aurora and the load balancer."
  type        = list(string)
  default     = ["ap-northeast-1a", "ap-northeast-1c", "ap-northeast-1d"]
}

variable "app_image" {
  description = "The Madoguchi container image (ECR URI with an immutable digest or tag), built by the release pipeline."
  type        = string
}

variable "app_release" {
  description = "Git commit of the image; shown on /ops and in the monthly report's releases."
  type        = string
}

variable "domain_name" {
  description = "Public host name of the service (e.g. madoguchi.example.lg.jp)."
  type        = string
}

variable "certificate_arn" {
  description = "ACM certificate for domain_name in var.region."
  type        = string
}

variable "web_count" {
  description = "Web tasks (2 gthread workers of 4 threads each, scripts/run.sh); at least 2 across AZs."
  type        = number
  default     = 2
  validation {
    condition     = var.web_count >= 2
    error_message = "web_count must be at least 2 so that one AZ can fail."
  }
}

variable "worker_count" {
  description = "Background-job worker tasks (RQ)."
  type        = number
  default     = 2
}

variable "web_cpu" {
  description = "CPU units of a web task (1024 = 1 vCPU)."
  type        = number
  default     = 2048
}

variable "web_memory" {
  description = "Memory of a web task, MiB. A worker process with every tenant loaded reaches ~1.7 GB (ADR 0009)."
  type        = number
  default     = 4096
}

variable "worker_cpu" {
  description = "CPU units of a worker task."
  type        = number
  default     = 2048
}

variable "worker_memory" {
  description = "Memory of a worker task, MiB (imports stay flat around 230 MB; reports render in 2 processes)."
  type        = number
  default     = 4096
}

variable "db_instance_class" {
  description = "Aurora PostgreSQL instance class."
  type        = string
  default     = "db.r7g.large"
}

variable "db_instances" {
  description = "Aurora instances: one writer and readers in other AZs."
  type        = number
  default     = 2
}

variable "db_engine_version" {
  description = "Aurora PostgreSQL version; the suite runs PostgreSQL 15."
  type        = string
  default     = "15.12"
}

variable "db_name" {
  description = "Database name; also the prefix of the tenant roles (MADOGUCHI_DB_ROLE_PREFIX)."
  type        = string
  default     = "madoguchi"
}

variable "redis_node_type" {
  description = "ElastiCache node type (sessions, rate limits, RQ queues)."
  type        = string
  default     = "cache.r7g.large"
}

variable "backup_retention_days" {
  description = "Aurora point-in-time recovery window."
  type        = number
  default     = 35
}

variable "log_retention_days" {
  description = "CloudWatch Logs retention of application and flow logs (at least a year)."
  type        = number
  default     = 400
}

variable "prometheus_image" {
  description = "Prometheus server image: the version promtool tests the rules with (Debian 12 package)."
  type        = string
  default     = "quay.io/prometheus/prometheus:v2.42.0"
}

variable "alertmanager_image" {
  description = "Alertmanager image: the version the routing is tested with (Debian 12 package)."
  type        = string
  default     = "quay.io/prometheus/alertmanager:v0.25.0"
}

variable "config_loader_image" {
  description = "Image with the AWS CLI that copies the monitoring configuration from S3 at task start."
  type        = string
  default     = "public.ecr.aws/aws-cli/aws-cli:2.22.35"
}

variable "prometheus_retention" {
  description = "How long Prometheus keeps samples: the monthly report reads the previous month."
  type        = string
  default     = "400d"
}

variable "core_system_principals" {
  description = "Per tenant id, the IAM principals (ARNs) of the city's core system that write extracts into and read applications from that tenant's linkage buckets."
  type        = map(list(string))
  default     = {}
}

variable "waf_rate_limit" {
  description = "Requests per 5 minutes from one address before WAF blocks it (the public pre-application page also has its own limit)."
  type        = number
  default     = 3000
}

variable "tenants" {
  description = "Generated by `madoguchi tenants terraform` (tenants.auto.tfvars.json): each tenant's code, schema, linkage buckets and audit retention."
  type = map(object({
    code                  = string
    name                  = string
    schema                = string
    buckets               = list(string)
    audit_retention_years = number
  }))
}

variable "tenant_secret_env" {
  description = "Generated: environment variables named by the tenants' secret references (env:NAME); each becomes a Secrets Manager secret injected into the web and worker containers."
  type        = list(string)
}
