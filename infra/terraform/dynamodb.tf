# Tables. Key names and types must equal journal/aws_schema.py (checked by
# tests/infra/test_contract.py). All on-demand: load follows the producers.

# The journal: one item per event, gapless seq per collection (DESIGN 4).
# It is the source of truth, so it gets point-in-time recovery and deletion
# protection; losing it loses the ability to rebuild anything.
resource "aws_dynamodb_table" "journal" {
  name                        = local.journal_table_name
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = "collection"
  range_key                   = "seq"
  deletion_protection_enabled = true

  attribute {
    name = "collection"
    type = "S"
  }

  attribute {
    name = "seq"
    type = "N"
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = aws_kms_key.main.arn
  }
}

# Collection leases: one item per collection. TTL only sweeps long-dead
# items; ownership is decided by comparing expires_at_epoch with the clock,
# because DynamoDB may apply TTL days late.
resource "aws_dynamodb_table" "leases" {
  name                        = local.lease_table_name
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = "collection"
  deletion_protection_enabled = true

  attribute {
    name = "collection"
    type = "S"
  }

  ttl {
    attribute_name = "expires_at_epoch"
    enabled        = true
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = aws_kms_key.main.arn
  }
}

# Status mirror: applied seq and blocked state per collection, for `status`
# and dashboards. Rebuildable from the live manifests.
resource "aws_dynamodb_table" "status" {
  name                        = local.status_table_name
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = "collection"
  deletion_protection_enabled = true

  attribute {
    name = "collection"
    type = "S"
  }

  ttl {
    attribute_name = "expires_at_epoch"
    enabled        = true
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = aws_kms_key.main.arn
  }
}

# KCL's lease table, created here rather than by KCL so that it is encrypted
# with our key and IAM can name it. The schema is KCL 3.x's: hash key
# leaseKey plus the leaseOwner index KCL would otherwise add with UpdateTable
# (and which terraform would then try to remove as drift).
resource "aws_dynamodb_table" "kcl_leases" {
  name                        = local.kcl_lease_table_name
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = "leaseKey"
  deletion_protection_enabled = true

  attribute {
    name = "leaseKey"
    type = "S"
  }

  attribute {
    name = "leaseOwner"
    type = "S"
  }

  global_secondary_index {
    name            = "LeaseOwnerToLeaseKeyIndex"
    hash_key        = "leaseOwner"
    range_key       = "leaseKey"
    projection_type = "KEYS_ONLY"
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = aws_kms_key.main.arn
  }
}

# KCL 3.x worker metrics (CPU per worker, used for lease assignment).
resource "aws_dynamodb_table" "kcl_worker_metrics" {
  name                        = local.kcl_worker_metrics_table
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = "wid"
  deletion_protection_enabled = true

  attribute {
    name = "wid"
    type = "S"
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = aws_kms_key.main.arn
  }
}

# KCL 3.x coordinator state (leader election, 2.x-to-3.x migration state).
resource "aws_dynamodb_table" "kcl_coordinator_state" {
  name                        = local.kcl_coordinator_state_table
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = "key"
  deletion_protection_enabled = true

  attribute {
    name = "key"
    type = "S"
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = aws_kms_key.main.arn
  }
}
