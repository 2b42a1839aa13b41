output "kinesis_stream_name" {
  description = "KINESIS_STREAM_NAME of the producers and the consumer."
  value       = aws_kinesis_stream.events.name
}

output "journal_url" {
  description = "JOURNAL_URL for producers and operators' CLI."
  value       = "dynamodb://${aws_dynamodb_table.journal.name}"
}

output "lease_url" {
  description = "LEASE_URL for the consumer and operators' replay --promote / gc."
  value       = "dynamodb://${aws_dynamodb_table.leases.name}"
}

output "status_url" {
  description = "STATUS_URL for `chroma-journal status`."
  value       = "dynamodb://${aws_dynamodb_table.status.name}"
}

output "object_store_url" {
  description = "OBJECT_STORE_URL (deltas and snapshots)."
  value       = "s3://${aws_s3_bucket.objects.bucket}"
}

output "kcl_tables" {
  description = "The KCL lease table and its two KCL 3.x tables."
  value = [
    aws_dynamodb_table.kcl_leases.name,
    aws_dynamodb_table.kcl_worker_metrics.name,
    aws_dynamodb_table.kcl_coordinator_state.name,
  ]
}

output "efs_file_system_id" {
  description = "The shared store (CHROMA_ROOT)."
  value       = aws_efs_file_system.chroma.id
}

output "efs_access_point_id" {
  description = "Access point every client mounts through."
  value       = aws_efs_access_point.chroma.id
}

output "ecs_cluster_name" {
  description = "Cluster of the consumer service."
  value       = aws_ecs_cluster.main.name
}

output "consumer_service_name" {
  description = "The consumer's ECS service."
  value       = aws_ecs_service.consumer.name
}

output "consumer_security_group_id" {
  description = "Security group of the consumer; the only one allowed NFS to the shared store."
  value       = aws_security_group.consumer.id
}

output "stream_adapter_function_name" {
  description = "The receipts stream adapter Lambda."
  value       = aws_lambda_function.stream_adapter.function_name
}

output "snapshot_requests_function_name" {
  description = "The scheduled snapshot-request Lambda."
  value       = aws_lambda_function.snapshot_requests.function_name
}

output "failure_queue_urls" {
  description = "Failure queues of the stream adapter and of the snapshot schedule."
  value = {
    stream_adapter    = aws_sqs_queue.stream_adapter_failures.url
    snapshot_schedule = aws_sqs_queue.snapshot_schedule_failures.url
  }
}

output "kms_key_arn" {
  description = "The stack's key; readers of the bucket or tables outside this stack need kms:Decrypt on it."
  value       = aws_kms_key.main.arn
}
