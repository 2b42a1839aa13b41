# Every variable is typed and described; rules that can be checked before
# apply are validations here (cross-variable rules are preconditions on the
# resources that use them).

# --- Placement ---------------------------------------------------------------

variable "aws_region" {
  type        = string
  description = "AWS region for every resource, e.g. eu-west-1."

  validation {
    condition     = can(regex("^[a-z]{2}(-gov)?-[a-z]+-[0-9]$", var.aws_region))
    error_message = "aws_region must look like eu-west-1."
  }
}

variable "name_prefix" {
  type        = string
  description = "Prefix of every resource name (tables, stream, cluster, functions)."
  default     = "chroma-journal"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,28}[a-z0-9]$", var.name_prefix))
    error_message = "name_prefix must be 3-30 lower-case letters, digits or '-', starting with a letter."
  }
}

variable "tags" {
  type        = map(string)
  description = "Tags added to every resource."
  default     = {}
}

variable "vpc_id" {
  type        = string
  description = "VPC that holds the private subnets."

  validation {
    condition     = can(regex("^vpc-[0-9a-f]{8,17}$", var.vpc_id))
    error_message = "vpc_id must look like vpc-0123456789abcdef0."
  }
}

variable "private_subnet_ids" {
  type        = list(string)
  description = <<-EOT
    Private subnets (one per availability zone) for the EFS mount targets, the
    consumer tasks and the Lambdas. They need a route to the AWS APIs used
    (NAT gateway or VPC endpoints for DynamoDB, Kinesis, S3, CloudWatch, Logs,
    ECR, STS, SQS and KMS).
  EOT

  validation {
    condition = (
      length(var.private_subnet_ids) >= 1
      && length(var.private_subnet_ids) == length(distinct(var.private_subnet_ids))
      && alltrue([for s in var.private_subnet_ids : can(regex("^subnet-[0-9a-f]{8,17}$", s))])
    )
    error_message = "private_subnet_ids must be one or more distinct ids like subnet-0123456789abcdef0."
  }
}

# --- Collections and names the code reads ----------------------------------

variable "collections" {
  type        = list(string)
  description = <<-EOT
    Collections this stack serves (e.g. ["lines", "words"]). Scopes the
    consumer's S3 access to <collection>/deltas/ and <collection>/snapshots/,
    the lifecycle rules, the per-collection alarms and the scheduled snapshot
    requests. Adding a collection is a terraform apply.
  EOT
  default     = ["lines", "words"]

  validation {
    condition = (
      length(var.collections) >= 1
      && length(var.collections) == length(distinct(var.collections))
      && alltrue([for c in var.collections : can(regex("^[A-Za-z0-9][A-Za-z0-9_-]{1,61}[A-Za-z0-9]$", c))])
    )
    error_message = "collections must be distinct names of 3-63 letters, digits, '_' or '-', starting and ending with a letter or digit."
  }
}

variable "kcl_application_name" {
  type        = string
  description = "KCL application name; also the name of the KCL lease table and the prefix of its two KCL 3.x tables."
  default     = "chroma-journal-consumer"

  validation {
    # DynamoDB table names are [A-Za-z0-9_.-]{3,255}; leave room for the
    # longest KCL suffix ("-WorkerMetricStats", 18 characters).
    condition     = can(regex("^[A-Za-z0-9_.-]{3,200}$", var.kcl_application_name))
    error_message = "kcl_application_name must be 3-200 letters, digits, '_', '.' or '-'."
  }
}

variable "bucket_name" {
  type        = string
  description = "Name of the S3 bucket for deltas and snapshots (globally unique)."

  validation {
    condition = (
      can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.bucket_name))
      && !can(regex("\\.\\.", var.bucket_name))
    )
    error_message = "bucket_name must be a valid S3 bucket name (3-63 lower-case letters, digits, '.' or '-')."
  }
}

variable "access_log_bucket_name" {
  type        = string
  description = "Existing bucket that receives the server access logs of the objects bucket."

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.access_log_bucket_name))
    error_message = "access_log_bucket_name must be a valid S3 bucket name."
  }
}

variable "receipts_table_name" {
  type        = string
  description = "The receipts DynamoDB table whose stream the adapter reads (DYNAMODB_TABLE_NAME)."

  validation {
    condition     = can(regex("^[A-Za-z0-9_.-]{3,255}$", var.receipts_table_name))
    error_message = "receipts_table_name must be a valid DynamoDB table name."
  }
}

variable "receipts_table_stream_arn" {
  type        = string
  description = "ARN of the receipts table's DynamoDB stream (NEW_AND_OLD_IMAGES recommended)."

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:dynamodb:[a-z0-9-]+:[0-9]{12}:table/[A-Za-z0-9_.-]+/stream/.+$", var.receipts_table_stream_arn))
    error_message = "receipts_table_stream_arn must be a DynamoDB stream ARN."
  }
}

variable "receipts_table_kms_key_arn" {
  type        = string
  description = "KMS key of the receipts table, when it is encrypted with a customer managed key; null otherwise."
  default     = null

  validation {
    condition     = var.receipts_table_kms_key_arn == null || can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/.+$", var.receipts_table_kms_key_arn))
    error_message = "receipts_table_kms_key_arn must be a KMS key ARN or null."
  }
}

# --- Consumer (ECS Fargate) --------------------------------------------------

variable "consumer_image" {
  type        = string
  description = "Consumer container image (built from the repository's Dockerfile), pinned by tag or digest."

  validation {
    condition     = can(regex("^[^:@]+(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}|@sha256:[0-9a-f]{64})$", var.consumer_image)) && !endswith(var.consumer_image, ":latest")
    error_message = "consumer_image must carry an explicit tag other than 'latest', or a sha256 digest."
  }
}

variable "consumer_cpu" {
  type        = number
  description = "Fargate task CPU units."
  default     = 2048

  validation {
    condition     = contains([256, 512, 1024, 2048, 4096, 8192, 16384], var.consumer_cpu)
    error_message = "consumer_cpu must be a Fargate CPU size: 256, 512, 1024, 2048, 4096, 8192 or 16384."
  }
}

variable "consumer_memory" {
  type        = number
  description = "Fargate task memory in MiB (must be a valid pairing with consumer_cpu)."
  default     = 8192

  validation {
    condition     = var.consumer_memory >= 512 && var.consumer_memory <= 122880 && floor(var.consumer_memory) == var.consumer_memory
    error_message = "consumer_memory must be a whole number of MiB between 512 and 122880."
  }
}

variable "consumer_desired_count" {
  type        = number
  description = "Number of consumer tasks. KCL spreads shard leases over them; each collection still has one writer at a time."
  default     = 1

  validation {
    condition     = var.consumer_desired_count >= 0 && floor(var.consumer_desired_count) == var.consumer_desired_count
    error_message = "consumer_desired_count must be a whole number >= 0."
  }
}

variable "consumer_ephemeral_storage_gib" {
  type        = number
  description = "Task ephemeral storage in GiB; holds STAGING_ROOT (a warm working copy per collection) and scratch space."
  default     = 100

  validation {
    condition     = var.consumer_ephemeral_storage_gib >= 21 && var.consumer_ephemeral_storage_gib <= 200 && floor(var.consumer_ephemeral_storage_gib) == var.consumer_ephemeral_storage_gib
    error_message = "consumer_ephemeral_storage_gib must be a whole number between 21 and 200."
  }
}

variable "efs_posix_uid" {
  type        = number
  description = "POSIX user id of the EFS access point; equals the USER of the consumer image."
  default     = 10001

  validation {
    condition     = var.efs_posix_uid >= 1 && var.efs_posix_uid <= 4294967294 && floor(var.efs_posix_uid) == var.efs_posix_uid
    error_message = "efs_posix_uid must be a whole number >= 1 (not root)."
  }
}

variable "efs_posix_gid" {
  type        = number
  description = "POSIX group id of the EFS access point; equals the group of the consumer image's USER."
  default     = 10001

  validation {
    condition     = var.efs_posix_gid >= 1 && var.efs_posix_gid <= 4294967294 && floor(var.efs_posix_gid) == var.efs_posix_gid
    error_message = "efs_posix_gid must be a whole number >= 1 (not root)."
  }
}

# --- Retention ---------------------------------------------------------------

variable "snapshot_keep" {
  type        = number
  description = "Snapshots kept per collection in S3 (SNAPSHOT_KEEP); older ones are deleted, never the one latest points to."
  default     = 5

  validation {
    condition     = var.snapshot_keep >= 1 && floor(var.snapshot_keep) == var.snapshot_keep
    error_message = "snapshot_keep must be a whole number >= 1."
  }
}

variable "versions_keep" {
  type        = number
  description = "Published versions kept per collection on EFS (VERSIONS_KEEP)."
  default     = 5

  validation {
    condition     = var.versions_keep >= 1 && floor(var.versions_keep) == var.versions_keep
    error_message = "versions_keep must be a whole number >= 1."
  }
}

variable "log_retention_days" {
  type        = number
  description = "CloudWatch Logs retention for the consumer and the Lambdas."
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a retention period CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, ..., 365, ..., 3653)."
  }
}

variable "log_level" {
  type        = string
  description = "LOG_LEVEL of the consumer and the Lambdas."
  default     = "INFO"

  validation {
    condition     = contains(["DEBUG", "INFO", "WARNING", "ERROR"], var.log_level)
    error_message = "log_level must be DEBUG, INFO, WARNING or ERROR."
  }
}

variable "kinesis_retention_hours" {
  type        = number
  description = "Kinesis retention. Records older than this are gone from the stream, but not from the journal (gap fill reads the journal)."
  default     = 24

  validation {
    condition     = var.kinesis_retention_hours >= 24 && var.kinesis_retention_hours <= 8760 && floor(var.kinesis_retention_hours) == var.kinesis_retention_hours
    error_message = "kinesis_retention_hours must be a whole number between 24 and 8760."
  }
}

variable "delta_ia_after_days" {
  type        = number
  description = "Days after which deltas move to STANDARD_IA."
  default     = 30

  validation {
    condition     = var.delta_ia_after_days >= 30 && floor(var.delta_ia_after_days) == var.delta_ia_after_days
    error_message = "delta_ia_after_days must be a whole number >= 30 (S3's minimum for STANDARD_IA)."
  }
}

variable "delta_glacier_ir_after_days" {
  type        = number
  description = "Days after which deltas move to GLACIER_IR (still readable in milliseconds, so replay keeps working)."
  default     = 120

  validation {
    condition     = var.delta_glacier_ir_after_days >= 60 && floor(var.delta_glacier_ir_after_days) == var.delta_glacier_ir_after_days
    error_message = "delta_glacier_ir_after_days must be a whole number >= 60."
  }
}

variable "snapshot_ia_after_days" {
  type        = number
  description = "Days after which snapshot files move to STANDARD_IA."
  default     = 30

  validation {
    condition     = var.snapshot_ia_after_days >= 30 && floor(var.snapshot_ia_after_days) == var.snapshot_ia_after_days
    error_message = "snapshot_ia_after_days must be a whole number >= 30 (S3's minimum for STANDARD_IA)."
  }
}

variable "pruned_snapshot_retention_days" {
  type        = number
  description = "Days that noncurrent object versions under <collection>/snapshots/ (pruned snapshots, superseded latest pointers) are kept before S3 removes them."
  default     = 90

  validation {
    condition     = var.pruned_snapshot_retention_days >= 1 && floor(var.pruned_snapshot_retention_days) == var.pruned_snapshot_retention_days
    error_message = "pruned_snapshot_retention_days must be a whole number >= 1."
  }
}

# --- Lambdas -------------------------------------------------------------------

variable "lambda_package_path" {
  type        = string
  description = "Path of the zip holding the project and its runtime dependencies for the Lambdas (see README.md)."

  validation {
    condition     = endswith(var.lambda_package_path, ".zip")
    error_message = "lambda_package_path must name a .zip file."
  }
}

variable "stream_adapter_batch_size" {
  type        = number
  description = "Records per invocation of the stream adapter."
  default     = 100

  validation {
    condition     = var.stream_adapter_batch_size >= 1 && var.stream_adapter_batch_size <= 10000 && floor(var.stream_adapter_batch_size) == var.stream_adapter_batch_size
    error_message = "stream_adapter_batch_size must be a whole number between 1 and 10000."
  }
}

variable "stream_adapter_max_retries" {
  type        = number
  description = "Retries of a failing batch (after bisection) before its records go to the failure queue."
  default     = 5

  validation {
    condition     = var.stream_adapter_max_retries >= 0 && var.stream_adapter_max_retries <= 10000 && floor(var.stream_adapter_max_retries) == var.stream_adapter_max_retries
    error_message = "stream_adapter_max_retries must be a whole number between 0 and 10000 (bounded: -1, infinite, is not allowed)."
  }
}

variable "stream_adapter_max_record_age_seconds" {
  type        = number
  description = "Records older than this go to the failure queue instead of being retried."
  default     = 21600

  validation {
    condition     = var.stream_adapter_max_record_age_seconds >= 60 && var.stream_adapter_max_record_age_seconds <= 604800 && floor(var.stream_adapter_max_record_age_seconds) == var.stream_adapter_max_record_age_seconds
    error_message = "stream_adapter_max_record_age_seconds must be a whole number between 60 and 604800 (bounded: -1, infinite, is not allowed)."
  }
}

variable "lambda_reserved_concurrency" {
  type        = number
  description = "Reserved concurrency of each Lambda (caps load on the journal table)."
  default     = 10

  validation {
    condition     = var.lambda_reserved_concurrency >= 1 && floor(var.lambda_reserved_concurrency) == var.lambda_reserved_concurrency
    error_message = "lambda_reserved_concurrency must be a whole number >= 1."
  }
}

variable "snapshot_interval_minutes" {
  type        = number
  description = "How often the scheduler asks for a snapshot of every collection (a request when nothing changed produces none)."
  default     = 60

  validation {
    condition     = var.snapshot_interval_minutes >= 1 && floor(var.snapshot_interval_minutes) == var.snapshot_interval_minutes
    error_message = "snapshot_interval_minutes must be a whole number >= 1."
  }
}

# --- Alarms ------------------------------------------------------------------

variable "alarm_actions" {
  type        = list(string)
  description = "ARNs notified when an alarm fires or clears (e.g. an SNS topic)."
  default     = []

  validation {
    condition     = alltrue([for a in var.alarm_actions : can(regex("^arn:aws[a-z-]*:", a))])
    error_message = "alarm_actions must be ARNs."
  }
}

variable "iterator_age_alarm_fraction" {
  type        = number
  description = "Alarm when the consumer's oldest unread record is older than this fraction of the Kinesis retention."
  default     = 0.5

  validation {
    condition     = var.iterator_age_alarm_fraction > 0 && var.iterator_age_alarm_fraction < 1
    error_message = "iterator_age_alarm_fraction must be between 0 and 1 (exclusive)."
  }
}

variable "consumer_lag_alarm_events" {
  type        = number
  description = "Alarm when a collection's lag (journal head minus applied seq) stays above this many events."
  default     = 10000

  validation {
    condition     = var.consumer_lag_alarm_events >= 1 && floor(var.consumer_lag_alarm_events) == var.consumer_lag_alarm_events
    error_message = "consumer_lag_alarm_events must be a whole number >= 1."
  }
}

variable "consumer_lag_alarm_minutes" {
  type        = number
  description = "How many consecutive minutes the lag must stay above the threshold before the alarm fires."
  default     = 15

  validation {
    condition     = var.consumer_lag_alarm_minutes >= 1 && var.consumer_lag_alarm_minutes <= 1440 && floor(var.consumer_lag_alarm_minutes) == var.consumer_lag_alarm_minutes
    error_message = "consumer_lag_alarm_minutes must be a whole number between 1 and 1440."
  }
}
