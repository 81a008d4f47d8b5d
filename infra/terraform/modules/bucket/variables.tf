variable "name" {
  description = "Bucket name."
  type        = string
}

variable "kms_key_arn" {
  description = "KMS key for default encryption; null means SSE-S3 (the only kind ALB access logs accept)."
  type        = string
  default     = null
}

variable "access_log_bucket" {
  description = "Bucket that receives this bucket's server access logs; null for the log bucket itself."
  type        = string
  default     = null
}

variable "object_lock_years" {
  description = "Object Lock in COMPLIANCE mode with this default retention; null for no Object Lock."
  type        = number
  default     = null
}

variable "expire_days" {
  description = "Current objects expire after this many days; null keeps them."
  type        = number
  default     = null
}

variable "noncurrent_days" {
  description = "Days an overwritten or deleted version is kept."
  type        = number
  default     = 90
}

variable "policy_statements" {
  description = "Extra bucket policy statements, a list of objects as in a policy document (shapes differ, hence `any`); TLS-only access is always added."
  type        = any
  default     = []
}

variable "tags" {
  description = "Tags of the bucket (e.g. municipality, which Cost Explorer groups the monthly report by)."
  type        = map(string)
  default     = {}
}
