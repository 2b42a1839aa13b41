# Roles of the consumer task. The execution role pulls the image and writes
# logs; the task role is what the code runs as, scoped to this stack only.

data "aws_iam_policy_document" "ecs_tasks_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "consumer_execution" {
  name               = "${var.name_prefix}-consumer-execution"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
}

resource "aws_iam_role_policy_attachment" "consumer_execution" {
  role       = aws_iam_role.consumer_execution.name
  policy_arn = "arn:${local.partition}:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
}

resource "aws_iam_role" "consumer_task" {
  name               = "${var.name_prefix}-consumer-task"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
}

resource "aws_iam_role_policy" "consumer_task" {
  name   = "${var.name_prefix}-consumer"
  role   = aws_iam_role.consumer_task.id
  policy = data.aws_iam_policy_document.consumer_task.json
}

data "aws_iam_policy_document" "consumer_task" {
  # KCL reads the stream (polling or enhanced fan-out); the journal's
  # publisher puts the bookkeeping events the consumer appends.
  statement {
    sid = "ReadAndPublishTheEventStream"
    actions = [
      "kinesis:DescribeStream",
      "kinesis:DescribeStreamSummary",
      "kinesis:GetRecords",
      "kinesis:GetShardIterator",
      "kinesis:ListShards",
      "kinesis:PutRecord",
      "kinesis:PutRecords",
      "kinesis:RegisterStreamConsumer",
    ]
    resources = [aws_kinesis_stream.events.arn]
  }

  statement {
    sid       = "EnhancedFanOutConsumer"
    actions   = ["kinesis:DescribeStreamConsumer", "kinesis:SubscribeToShard"]
    resources = ["${aws_kinesis_stream.events.arn}/consumer/*"]
  }

  # Read ranges and append bookkeeping events (snapshot_recorded,
  # latest_moved, event_parked); TransactWriteItems is authorised per item
  # as PutItem and ConditionCheckItem.
  statement {
    sid = "JournalReadAndAppend"
    actions = [
      "dynamodb:ConditionCheckItem",
      "dynamodb:DescribeTable",
      "dynamodb:GetItem",
      "dynamodb:PutItem",
      "dynamodb:Query",
    ]
    resources = [aws_dynamodb_table.journal.arn]
  }

  statement {
    sid = "CollectionLeasesAndStatus"
    actions = [
      "dynamodb:ConditionCheckItem",
      "dynamodb:DeleteItem",
      "dynamodb:DescribeTable",
      "dynamodb:GetItem",
      "dynamodb:PutItem",
      "dynamodb:Query",
      "dynamodb:Scan",
      "dynamodb:UpdateItem",
    ]
    resources = [aws_dynamodb_table.leases.arn, aws_dynamodb_table.status.arn]
  }

  # KCL's own tables. They are created by terraform with KCL's schema, so
  # KCL needs no CreateTable or UpdateTable (it only describes them).
  statement {
    sid = "KclLeaseAndCoordinationTables"
    actions = [
      "dynamodb:DeleteItem",
      "dynamodb:DescribeTable",
      "dynamodb:GetItem",
      "dynamodb:PutItem",
      "dynamodb:Query",
      "dynamodb:Scan",
      "dynamodb:UpdateItem",
    ]
    resources = [
      aws_dynamodb_table.kcl_leases.arn,
      aws_dynamodb_table.kcl_worker_metrics.arn,
      aws_dynamodb_table.kcl_coordinator_state.arn,
    ]
  }

  statement {
    sid       = "KclLeaseOwnerIndex"
    actions   = ["dynamodb:Query"]
    resources = ["${aws_dynamodb_table.kcl_leases.arn}/index/*"]
  }

  # Deltas are written by producers and only read here; snapshots are
  # written, read (restore) and pruned (SNAPSHOT_KEEP) here.
  statement {
    sid       = "ReadDeltas"
    actions   = ["s3:GetObject"]
    resources = local.delta_object_arns
  }

  statement {
    sid       = "WriteReadPruneSnapshots"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]
    resources = local.snapshot_object_arns
  }

  statement {
    sid       = "ListOwnPrefixes"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.objects.arn]

    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = local.collection_prefixes
    }
  }

  statement {
    sid       = "MountTheSharedStoreThroughItsAccessPoint"
    actions   = ["elasticfilesystem:ClientMount", "elasticfilesystem:ClientWrite"]
    resources = [aws_efs_file_system.chroma.arn]

    condition {
      test     = "StringEquals"
      variable = "elasticfilesystem:AccessPointArn"
      values   = [aws_efs_access_point.chroma.arn]
    }
  }

  statement {
    sid = "UseTheStackKey"
    actions = [
      "kms:Decrypt",
      "kms:DescribeKey",
      "kms:GenerateDataKey",
    ]
    resources = [aws_kms_key.main.arn]
  }

  # PutMetricData has no resource to scope; the namespace condition limits it
  # to our metrics and KCL's (KCL publishes under the application name).
  statement {
    sid       = "PublishOwnMetrics"
    actions   = ["cloudwatch:PutMetricData"]
    resources = ["*"]

    condition {
      test     = "StringEquals"
      variable = "cloudwatch:namespace"
      values   = [local.metrics_namespace, var.kcl_application_name]
    }
  }
}
