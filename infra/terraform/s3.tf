# Deltas and snapshots:
#   s3://BUCKET/<collection>/deltas/<id>/...
#   s3://BUCKET/<collection>/snapshots/<version-id>/...  and  .../latest.json

resource "aws_s3_bucket" "objects" {
  #checkov:skip=CKV_AWS_144:Cross-region replication doubles storage cost and is a disaster-recovery choice for the operator; versioning and the PITR-protected journal cover accidental loss, and snapshots are rebuildable from deltas plus the journal.
  #checkov:skip=CKV2_AWS_62:Nothing reacts to object events; the journal, not the bucket, announces new deltas and snapshots.
  bucket = var.bucket_name
}

resource "aws_s3_bucket_ownership_controls" "objects" {
  bucket = aws_s3_bucket.objects.id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "objects" {
  bucket                  = aws_s3_bucket.objects.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

# Versioning turns an overwrite or delete into a recoverable old version; the
# latest.json pointer relies on conditional writes (If-Match), not on this.
resource "aws_s3_bucket_versioning" "objects" {
  bucket = aws_s3_bucket.objects.id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "objects" {
  bucket = aws_s3_bucket.objects.id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.main.arn
    }
    # One data key per bucket instead of a KMS call per object: snapshot
    # uploads write many files.
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_logging" "objects" {
  bucket        = aws_s3_bucket.objects.id
  target_bucket = var.access_log_bucket_name
  target_prefix = "s3/${var.bucket_name}/"
}

resource "aws_s3_bucket_policy" "objects" {
  bucket = aws_s3_bucket.objects.id
  policy = data.aws_iam_policy_document.objects_bucket.json

  # The public access block must exist first, or a policy could be public
  # for a moment.
  depends_on = [aws_s3_bucket_public_access_block.objects]
}

data "aws_iam_policy_document" "objects_bucket" {
  statement {
    sid       = "DenyRequestsWithoutTls"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.objects.arn, "${aws_s3_bucket.objects.arn}/*"]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

# Lifecycle: move old objects to cheaper classes, expire nothing that replay
# may read. A rebuild starts from any retained snapshot (or from empty) and
# applies the journal after it; the delta_merge events it replays name their
# deltas, so every delta must stay readable for as long as the journal may
# be replayed, i.e. forever. Current snapshots are pruned by the consumer
# (SNAPSHOT_KEEP, never the one latest points to), not by S3. Only
# *noncurrent* versions under snapshots/ expire: those are snapshots already
# pruned and superseded latest.json pointers, which no replay reads.
# Storage classes are limited to ones readable in milliseconds (STANDARD_IA,
# GLACIER_IR): a restore must not wait hours for an archive retrieval.
resource "aws_s3_bucket_lifecycle_configuration" "objects" {
  bucket = aws_s3_bucket.objects.id

  rule {
    id     = "abort-incomplete-multipart-uploads"
    status = "Enabled"

    filter {}

    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }

  dynamic "rule" {
    for_each = toset(var.collections)

    content {
      id     = "${rule.value}-deltas-to-cheaper-storage"
      status = "Enabled"

      # Objects under 128 KiB are billed as 128 KiB in STANDARD_IA and
      # GLACIER_IR, so small files (manifests, pointers) stay in STANDARD.
      filter {
        and {
          prefix                   = "${rule.value}/deltas/"
          object_size_greater_than = 131072
        }
      }

      transition {
        days          = var.delta_ia_after_days
        storage_class = "STANDARD_IA"
      }

      transition {
        days          = var.delta_glacier_ir_after_days
        storage_class = "GLACIER_IR"
      }

      noncurrent_version_transition {
        noncurrent_days = 30
        storage_class   = "GLACIER_IR"
      }

      abort_incomplete_multipart_upload {
        days_after_initiation = 7
      }
    }
  }

  dynamic "rule" {
    for_each = toset(var.collections)

    content {
      id     = "${rule.value}-snapshots-to-cheaper-storage"
      status = "Enabled"

      # Objects under 128 KiB are billed as 128 KiB in STANDARD_IA and
      # GLACIER_IR, so small files (manifests, pointers) stay in STANDARD.
      filter {
        and {
          prefix                   = "${rule.value}/snapshots/"
          object_size_greater_than = 131072
        }
      }

      transition {
        days          = var.snapshot_ia_after_days
        storage_class = "STANDARD_IA"
      }

      noncurrent_version_expiration {
        noncurrent_days = var.pruned_snapshot_retention_days
      }

      abort_incomplete_multipart_upload {
        days_after_initiation = 7
      }
    }
  }

  # A lifecycle configuration on a versioned bucket must be applied after
  # versioning is enabled.
  depends_on = [aws_s3_bucket_versioning.objects]

  lifecycle {
    precondition {
      condition     = var.delta_glacier_ir_after_days >= var.delta_ia_after_days + 30
      error_message = "delta_glacier_ir_after_days must be at least 30 days after delta_ia_after_days (STANDARD_IA minimum storage)."
    }
  }
}
