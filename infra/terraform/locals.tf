locals {
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition

  # Table names. The KCL tables are named by KCL itself from the application
  # name (journal/aws_schema.py: kcl_table_names); creating them here lets
  # them be encrypted with our key and lets IAM name them exactly.
  journal_table_name           = "${var.name_prefix}-journal"
  lease_table_name             = "${var.name_prefix}-leases"
  status_table_name            = "${var.name_prefix}-status"
  kcl_lease_table_name         = var.kcl_application_name
  kcl_worker_metrics_table     = "${var.kcl_application_name}-WorkerMetricStats"
  kcl_coordinator_state_table  = "${var.kcl_application_name}-CoordinatorState"
  stream_name                  = "${var.name_prefix}-events"
  consumer_log_group_name      = "/ecs/${var.name_prefix}-consumer"
  stream_adapter_function_name = "${var.name_prefix}-stream-adapter"
  snapshot_function_name       = "${var.name_prefix}-snapshot-requests"

  # Paths inside the consumer container. CHROMA_ROOT is the EFS access point;
  # STAGING_ROOT is task-local ephemeral storage, because ChromaDB over NFS
  # takes seconds per call (DESIGN section 6).
  chroma_root  = "/mnt/chroma"
  staging_root = "/var/lib/chroma-journal/staging"
  scratch_root = "/tmp"

  # Custom metrics namespace (journal/aws_schema.py: METRICS_NAMESPACE).
  metrics_namespace = "ChromaJournal"

  # Every environment variable below must be a field of
  # chroma_journal.settings.Settings (upper-cased); tests/infra checks it.
  consumer_environment = {
    JOURNAL_URL          = "dynamodb://${aws_dynamodb_table.journal.name}"
    OBJECT_STORE_URL     = "s3://${aws_s3_bucket.objects.bucket}"
    LEASE_URL            = "dynamodb://${aws_dynamodb_table.leases.name}"
    STATUS_URL           = "dynamodb://${aws_dynamodb_table.status.name}"
    CHROMA_ROOT          = local.chroma_root
    STAGING_ROOT         = local.staging_root
    AWS_REGION           = var.aws_region
    KINESIS_STREAM_NAME  = aws_kinesis_stream.events.name
    KCL_APPLICATION_NAME = var.kcl_application_name
    LOG_FORMAT           = "json"
    LOG_LEVEL            = var.log_level
    SNAPSHOT_KEEP        = tostring(var.snapshot_keep)
    VERSIONS_KEEP        = tostring(var.versions_keep)
  }

  # AWS_REGION is reserved in Lambda (the runtime sets it), so it is not
  # passed to the functions.
  stream_adapter_environment = {
    JOURNAL_URL         = "dynamodb://${aws_dynamodb_table.journal.name}"
    KINESIS_STREAM_NAME = aws_kinesis_stream.events.name
    DYNAMODB_TABLE_NAME = var.receipts_table_name
    LOG_FORMAT          = "json"
    LOG_LEVEL           = var.log_level
  }

  snapshot_schedule_environment = {
    JOURNAL_URL         = "dynamodb://${aws_dynamodb_table.journal.name}"
    KINESIS_STREAM_NAME = aws_kinesis_stream.events.name
    LOG_FORMAT          = "json"
    LOG_LEVEL           = var.log_level
  }

  # EventBridge Scheduler wants "rate(1 minute)" but "rate(5 minutes)".
  snapshot_schedule_expression = (
    var.snapshot_interval_minutes == 1
    ? "rate(1 minute)"
    : "rate(${var.snapshot_interval_minutes} minutes)"
  )

  # Object store prefixes the consumer may touch, per collection
  # (journal/aws_schema.py: DELTAS_PREFIX, SNAPSHOTS_PREFIX).
  delta_object_arns    = [for c in var.collections : "${aws_s3_bucket.objects.arn}/${c}/deltas/*"]
  snapshot_object_arns = [for c in var.collections : "${aws_s3_bucket.objects.arn}/${c}/snapshots/*"]
  collection_prefixes  = flatten([for c in var.collections : ["${c}/deltas/*", "${c}/snapshots/*"]])
}
