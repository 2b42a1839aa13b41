# Execution roles of the two Lambdas, each limited to what its handler does.

data "aws_iam_policy_document" "lambda_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

# --- Stream adapter -----------------------------------------------------------

resource "aws_iam_role" "stream_adapter" {
  name               = "${var.name_prefix}-stream-adapter"
  assume_role_policy = data.aws_iam_policy_document.lambda_assume.json
}

resource "aws_iam_role_policy" "stream_adapter" {
  name   = "${var.name_prefix}-stream-adapter"
  role   = aws_iam_role.stream_adapter.id
  policy = data.aws_iam_policy_document.stream_adapter.json
}

# Network interfaces for running in the VPC (the managed policy is the
# documented minimum; its EC2 actions cannot be scoped to resources).
resource "aws_iam_role_policy_attachment" "stream_adapter_vpc" {
  role       = aws_iam_role.stream_adapter.name
  policy_arn = "arn:${local.partition}:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole"
}

data "aws_iam_policy_document" "stream_adapter" {
  statement {
    sid = "ReadTheReceiptsStream"
    actions = [
      "dynamodb:DescribeStream",
      "dynamodb:GetRecords",
      "dynamodb:GetShardIterator",
    ]
    resources = [var.receipts_table_stream_arn]
  }

  # ListStreams supports no resource-level scoping (IAM service
  # authorization reference); it only lists stream ARNs.
  statement {
    sid       = "ListStreams"
    actions   = ["dynamodb:ListStreams"]
    resources = ["*"]
  }

  # Append events; an idempotency key is a second item in the same
  # transaction, so a retried record appends nothing twice.
  statement {
    sid = "AppendToTheJournal"
    actions = [
      "dynamodb:ConditionCheckItem",
      "dynamodb:GetItem",
      "dynamodb:PutItem",
      "dynamodb:Query",
    ]
    resources = [aws_dynamodb_table.journal.arn]
  }

  statement {
    sid       = "PublishAppendedEvents"
    actions   = ["kinesis:PutRecord", "kinesis:PutRecords"]
    resources = [aws_kinesis_stream.events.arn]
  }

  statement {
    sid       = "OnFailureDestination"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.stream_adapter_failures.arn]
  }

  statement {
    sid       = "UseTheKeys"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = compact([aws_kms_key.main.arn, var.receipts_table_kms_key_arn])
  }

  statement {
    sid       = "WriteOwnLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.stream_adapter.arn}:*"]
  }

  statement {
    sid       = "Tracing"
    actions   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
    resources = ["*"]
  }

  statement {
    sid       = "PublishOwnMetrics"
    actions   = ["cloudwatch:PutMetricData"]
    resources = ["*"]

    condition {
      test     = "StringEquals"
      variable = "cloudwatch:namespace"
      values   = [local.metrics_namespace]
    }
  }
}

# --- Snapshot-request producer ---------------------------------------------

resource "aws_iam_role" "snapshot_requests" {
  name               = "${var.name_prefix}-snapshot-requests"
  assume_role_policy = data.aws_iam_policy_document.lambda_assume.json
}

resource "aws_iam_role_policy" "snapshot_requests" {
  name   = "${var.name_prefix}-snapshot-requests"
  role   = aws_iam_role.snapshot_requests.id
  policy = data.aws_iam_policy_document.snapshot_requests.json
}

resource "aws_iam_role_policy_attachment" "snapshot_requests_vpc" {
  role       = aws_iam_role.snapshot_requests.name
  policy_arn = "arn:${local.partition}:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole"
}

data "aws_iam_policy_document" "snapshot_requests" {
  statement {
    sid = "AppendToTheJournal"
    actions = [
      "dynamodb:ConditionCheckItem",
      "dynamodb:GetItem",
      "dynamodb:PutItem",
      "dynamodb:Query",
    ]
    resources = [aws_dynamodb_table.journal.arn]
  }

  statement {
    sid       = "PublishAppendedEvents"
    actions   = ["kinesis:PutRecord", "kinesis:PutRecords"]
    resources = [aws_kinesis_stream.events.arn]
  }

  statement {
    sid       = "AsyncDeadLetterQueue"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.snapshot_schedule_failures.arn]
  }

  statement {
    sid       = "UseTheStackKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.main.arn]
  }

  statement {
    sid       = "WriteOwnLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.snapshot_requests.arn}:*"]
  }

  statement {
    sid       = "Tracing"
    actions   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
    resources = ["*"]
  }
}
