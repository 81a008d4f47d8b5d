terraform {
  required_version = ">= 1.10"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 6.0"
    }
    random = {
      source  = "hashicorp/random"
      version = "~> 3.6"
    }
  }

  # State in S3 with native locking (Terraform >= 1.10). Bucket, key and region are given at
  # `terraform init -backend-config=...` so one configuration serves staging and production.
  backend "s3" {
    use_lockfile = true
    encrypt      = true
  }
}

provider "aws" {
  region = var.region

  default_tags {
    tags = {
      Project     = "madoguchi"
      Environment = var.environment
      ManagedBy   = "terraform"
    }
  }
}

# The region that keeps the replica of the audit seals and archives.
provider "aws" {
  alias  = "replica"
  region = var.replica_region

  default_tags {
    tags = {
      Project     = "madoguchi"
      Environment = var.environment
      ManagedBy   = "terraform"
    }
  }
}
