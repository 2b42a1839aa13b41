# Versions and the provider. There is no terraform binary where this was
# written; see README.md for what was and was not checked.

terraform {
  required_version = ">= 1.5.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.0"
    }
  }
}

provider "aws" {
  region = var.aws_region

  default_tags {
    tags = merge(var.tags, { "chroma-journal:stack" = var.name_prefix })
  }
}

data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}
