# The event stream. Producers (the journal's publisher) put each envelope with
# the collection as partition key, so one collection's records stay in order
# on one shard; the journal, not the stream, is authoritative.

resource "aws_kinesis_stream" "events" {
  name             = local.stream_name
  retention_period = var.kinesis_retention_hours
  encryption_type  = "KMS"
  kms_key_id       = aws_kms_key.main.arn

  stream_mode_details {
    stream_mode = "ON_DEMAND"
  }

  shard_level_metrics = ["IncomingRecords", "IteratorAgeMilliseconds"]
}
