# Two Lambdas from the same code (one zip, see README.md):
# - the stream adapter turns receipts-table stream records into journal
#   events, keyed by the stream record's event id so a retry appends nothing
#   twice;
# - the snapshot-request producer appends a snapshot_request per collection
#   on a schedule (scheduler.tf).

resource "aws_cloudwatch_log_group" "stream_adapter" {
  name              = "/aws/lambda/${local.stream_adapter_function_name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.main.arn
}

resource "aws_cloudwatch_log_group" "snapshot_requests" {
  name              = "/aws/lambda/${local.snapshot_function_name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.main.arn
}

resource "aws_lambda_function" "stream_adapter" {
  #checkov:skip=CKV_AWS_116:Invoked synchronously by the event source mapping, never asynchronously; failed records go to the mapping's on-failure queue (aws_sqs_queue.stream_adapter_failures), where a function DLQ would never receive anything.
  #checkov:skip=CKV_AWS_272:Code signing needs an AWS Signer signing pipeline for the zip, which this project does not run; the package is pinned by source_code_hash.
  function_name                  = local.stream_adapter_function_name
  description                    = "Receipts table stream -> chroma-journal events"
  role                           = aws_iam_role.stream_adapter.arn
  runtime                        = "python3.11"
  handler                        = "journal.stream_adapter.handler"
  filename                       = var.lambda_package_path
  source_code_hash               = filebase64sha256(var.lambda_package_path)
  memory_size                    = 512
  timeout                        = 60
  reserved_concurrent_executions = var.lambda_reserved_concurrency
  kms_key_arn                    = aws_kms_key.main.arn

  environment {
    variables = local.stream_adapter_environment
  }

  tracing_config {
    mode = "Active"
  }

  vpc_config {
    subnet_ids         = var.private_subnet_ids
    security_group_ids = [aws_security_group.lambda.id]
  }

  logging_config {
    log_format = "Text"
    log_group  = aws_cloudwatch_log_group.stream_adapter.name
  }

  depends_on = [aws_iam_role_policy.stream_adapter]
}

# Partial batch responses: the handler returns the ids of the records it
# could not append, Lambda retries from the first of them; a batch that
# raises is halved (bisect) to isolate the bad record; after the bounded
# retries or age the record's position goes to the failure queue.
resource "aws_lambda_event_source_mapping" "receipts_stream" {
  event_source_arn                   = var.receipts_table_stream_arn
  function_name                      = aws_lambda_function.stream_adapter.arn
  starting_position                  = "TRIM_HORIZON"
  batch_size                         = var.stream_adapter_batch_size
  maximum_batching_window_in_seconds = 1
  parallelization_factor             = 1
  function_response_types            = ["ReportBatchItemFailures"]
  bisect_batch_on_function_error     = true
  maximum_retry_attempts             = var.stream_adapter_max_retries
  maximum_record_age_in_seconds      = var.stream_adapter_max_record_age_seconds

  destination_config {
    on_failure {
      destination_arn = aws_sqs_queue.stream_adapter_failures.arn
    }
  }
}

resource "aws_lambda_function" "snapshot_requests" {
  #checkov:skip=CKV_AWS_272:Code signing needs an AWS Signer signing pipeline for the zip, which this project does not run; the package is pinned by source_code_hash.
  function_name                  = local.snapshot_function_name
  description                    = "Scheduled snapshot_request events for each collection"
  role                           = aws_iam_role.snapshot_requests.arn
  runtime                        = "python3.11"
  handler                        = "journal.scheduled.handler"
  filename                       = var.lambda_package_path
  source_code_hash               = filebase64sha256(var.lambda_package_path)
  memory_size                    = 256
  timeout                        = 60
  reserved_concurrent_executions = var.lambda_reserved_concurrency
  kms_key_arn                    = aws_kms_key.main.arn

  environment {
    variables = local.snapshot_schedule_environment
  }

  dead_letter_config {
    target_arn = aws_sqs_queue.snapshot_schedule_failures.arn
  }

  tracing_config {
    mode = "Active"
  }

  vpc_config {
    subnet_ids         = var.private_subnet_ids
    security_group_ids = [aws_security_group.lambda.id]
  }

  logging_config {
    log_format = "Text"
    log_group  = aws_cloudwatch_log_group.snapshot_requests.name
  }

  depends_on = [aws_iam_role_policy.snapshot_requests]
}

# Failure destinations. Messages hold the failed record's stream position
# (adapter) or the failed scheduled event (producer); 14 days (the maximum)
# gives an operator time to replay them.
resource "aws_sqs_queue" "stream_adapter_failures" {
  name                      = "${var.name_prefix}-stream-adapter-failures"
  message_retention_seconds = 1209600
  kms_master_key_id         = aws_kms_key.main.arn
}

resource "aws_sqs_queue" "snapshot_schedule_failures" {
  name                      = "${var.name_prefix}-snapshot-schedule-failures"
  message_retention_seconds = 1209600
  kms_master_key_id         = aws_kms_key.main.arn
}
