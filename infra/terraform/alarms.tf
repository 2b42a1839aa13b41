# Alarms. Custom metric names must equal journal/aws_schema.py
# (METRICS_NAMESPACE, METRIC_CONSUMER_LAG, METRIC_PARKED_EVENTS,
# METRIC_DIMENSION_COLLECTION); tests/infra checks them.

locals {
  retention_ms           = var.kinesis_retention_hours * 3600 * 1000
  iterator_age_threshold = floor(local.retention_ms * var.iterator_age_alarm_fraction)
}

# The consumer falls behind the stream. KCL reads by polling
# (GetRecords.IteratorAgeMilliseconds) or by enhanced fan-out, where the
# consumer is registered under the application name
# (SubscribeToShardEvent.MillisBehindLatest); the alarm takes the larger.
# Past the retention, records leave the stream: nothing is lost (the
# consumer fills gaps from the journal) but catching up gets slower.
resource "aws_cloudwatch_metric_alarm" "iterator_age" {
  alarm_name          = "${var.name_prefix}-kinesis-iterator-age"
  alarm_description   = "Oldest unread record on ${local.stream_name} is older than ${var.iterator_age_alarm_fraction * 100}% of the stream retention."
  comparison_operator = "GreaterThanThreshold"
  threshold           = local.iterator_age_threshold
  evaluation_periods  = 5
  datapoints_to_alarm = 5
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions

  metric_query {
    id          = "behind"
    expression  = "MAX([polling, fanout])"
    label       = "Milliseconds behind"
    return_data = true
  }

  metric_query {
    id = "polling"

    metric {
      namespace   = "AWS/Kinesis"
      metric_name = "GetRecords.IteratorAgeMilliseconds"
      period      = 60
      stat        = "Maximum"
      dimensions = {
        StreamName = aws_kinesis_stream.events.name
      }
    }
  }

  metric_query {
    id = "fanout"

    metric {
      namespace   = "AWS/Kinesis"
      metric_name = "SubscribeToShardEvent.MillisBehindLatest"
      period      = 60
      stat        = "Maximum"
      dimensions = {
        StreamName   = aws_kinesis_stream.events.name
        ConsumerName = var.kcl_application_name
      }
    }
  }
}

# Journal head minus applied seq, per collection, published by the consumer.
resource "aws_cloudwatch_metric_alarm" "consumer_lag" {
  for_each = toset(var.collections)

  alarm_name          = "${var.name_prefix}-${each.value}-consumer-lag"
  alarm_description   = "Collection ${each.value} is more than ${var.consumer_lag_alarm_events} events behind its journal head."
  namespace           = local.metrics_namespace
  metric_name         = "ConsumerLag"
  dimensions          = { Collection = each.value }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = var.consumer_lag_alarm_minutes
  datapoints_to_alarm = var.consumer_lag_alarm_minutes
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.consumer_lag_alarm_events
  # A silent consumer is caught by the running-tasks alarm below.
  treat_missing_data = "notBreaching"
  alarm_actions      = var.alarm_actions
  ok_actions         = var.alarm_actions
}

# A parked event stops its collection until an operator resumes or skips it
# (DESIGN section 8); any parked event is worth a page.
resource "aws_cloudwatch_metric_alarm" "parked_events" {
  for_each = toset(var.collections)

  alarm_name          = "${var.name_prefix}-${each.value}-parked-events"
  alarm_description   = "Collection ${each.value} has a parked event and has stopped advancing; see `chroma-journal status`."
  namespace           = local.metrics_namespace
  metric_name         = "ParkedEvents"
  dimensions          = { Collection = each.value }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions
}

resource "aws_cloudwatch_metric_alarm" "consumer_running_tasks" {
  alarm_name          = "${var.name_prefix}-consumer-running-tasks"
  alarm_description   = "Fewer consumer tasks are running than desired."
  namespace           = "ECS/ContainerInsights"
  metric_name         = "RunningTaskCount"
  dimensions          = { ClusterName = aws_ecs_cluster.main.name, ServiceName = aws_ecs_service.consumer.name }
  statistic           = "Minimum"
  period              = 60
  evaluation_periods  = 5
  datapoints_to_alarm = 5
  comparison_operator = "LessThanThreshold"
  threshold           = var.consumer_desired_count
  treat_missing_data  = "breaching"
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions
}

resource "aws_cloudwatch_metric_alarm" "stream_adapter_errors" {
  alarm_name          = "${var.name_prefix}-stream-adapter-errors"
  alarm_description   = "The receipts stream adapter raised; its batch is being bisected and retried."
  namespace           = "AWS/Lambda"
  metric_name         = "Errors"
  dimensions          = { FunctionName = aws_lambda_function.stream_adapter.function_name }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions
}

resource "aws_cloudwatch_metric_alarm" "snapshot_requests_errors" {
  alarm_name          = "${var.name_prefix}-snapshot-requests-errors"
  alarm_description   = "The scheduled snapshot-request producer raised."
  namespace           = "AWS/Lambda"
  metric_name         = "Errors"
  dimensions          = { FunctionName = aws_lambda_function.snapshot_requests.function_name }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions
}

# Anything on a failure queue is a receipt change or a snapshot request that
# never reached the journal.
resource "aws_cloudwatch_metric_alarm" "failure_queue_depth" {
  for_each = {
    stream-adapter    = aws_sqs_queue.stream_adapter_failures.name
    snapshot-schedule = aws_sqs_queue.snapshot_schedule_failures.name
  }

  alarm_name          = "${var.name_prefix}-${each.key}-failures-queued"
  alarm_description   = "Messages are waiting on ${each.value}; inspect and redrive them."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = each.value }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions
}
