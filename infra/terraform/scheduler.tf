# EventBridge Scheduler invokes the snapshot-request producer every
# snapshot_interval_minutes with the collections as input, e.g.
# {"collections": ["lines", "words"]} (journal/aws_schema.py:
# SNAPSHOT_SCHEDULE_COLLECTIONS_KEY).

resource "aws_scheduler_schedule" "snapshot_requests" {
  name                = "${var.name_prefix}-snapshot-requests"
  description         = "Ask the consumer for a snapshot of every collection"
  schedule_expression = local.snapshot_schedule_expression
  state               = "ENABLED"
  kms_key_arn         = aws_kms_key.main.arn

  flexible_time_window {
    mode = "OFF"
  }

  target {
    arn      = aws_lambda_function.snapshot_requests.arn
    role_arn = aws_iam_role.scheduler.arn
    input    = jsonencode({ collections = var.collections, scheduled_time = "<aws.scheduler.scheduled-time>" })

    retry_policy {
      maximum_event_age_in_seconds = 3600
      maximum_retry_attempts       = 3
    }

    dead_letter_config {
      arn = aws_sqs_queue.snapshot_schedule_failures.arn
    }
  }
}

data "aws_iam_policy_document" "scheduler_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["scheduler.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "scheduler" {
  name               = "${var.name_prefix}-scheduler"
  assume_role_policy = data.aws_iam_policy_document.scheduler_assume.json
}

resource "aws_iam_role_policy" "scheduler" {
  name   = "${var.name_prefix}-scheduler"
  role   = aws_iam_role.scheduler.id
  policy = data.aws_iam_policy_document.scheduler.json
}

data "aws_iam_policy_document" "scheduler" {
  statement {
    sid       = "InvokeTheProducer"
    actions   = ["lambda:InvokeFunction"]
    resources = [aws_lambda_function.snapshot_requests.arn]
  }

  statement {
    sid       = "DeadLetterQueue"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.snapshot_schedule_failures.arn]
  }

  statement {
    sid       = "EncryptedQueueAndSchedule"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.main.arn]
  }
}
