# The shared store (CHROMA_ROOT): immutable versions plus one symlink per
# collection. Elastic throughput bills per GB read and written, which is why
# publish hard-links unchanged files and copies only changed ones.

# No AWS Backup plan: the shared store is a cache of (snapshot in S3 + the
# journal), and replay rebuilds any version, so a backup would pay to copy
# data that is already durable elsewhere.
resource "aws_efs_file_system" "chroma" {
  creation_token   = "${var.name_prefix}-chroma"
  encrypted        = true
  kms_key_id       = aws_kms_key.main.arn
  performance_mode = "generalPurpose"
  throughput_mode  = "elastic"

  tags = {
    Name = "${var.name_prefix}-chroma"
  }
}

resource "aws_efs_mount_target" "chroma" {
  for_each = toset(var.private_subnet_ids)

  file_system_id  = aws_efs_file_system.chroma.id
  subnet_id       = each.value
  security_groups = [aws_security_group.efs.id]
}

# Every client enters through /chroma as one fixed non-root user, so files
# written by any task are readable by every other and nobody writes as root.
resource "aws_efs_access_point" "chroma" {
  file_system_id = aws_efs_file_system.chroma.id

  posix_user {
    uid = var.efs_posix_uid
    gid = var.efs_posix_gid
  }

  root_directory {
    path = "/chroma"

    creation_info {
      owner_uid   = var.efs_posix_uid
      owner_gid   = var.efs_posix_gid
      permissions = "0750"
    }
  }

  tags = {
    Name = "${var.name_prefix}-chroma"
  }
}

# Only TLS, only through the access point, only the consumer's task role.
resource "aws_efs_file_system_policy" "chroma" {
  file_system_id = aws_efs_file_system.chroma.id
  policy         = data.aws_iam_policy_document.efs.json
}

data "aws_iam_policy_document" "efs" {
  statement {
    sid       = "DenyWithoutTls"
    effect    = "Deny"
    actions   = ["*"]
    resources = [aws_efs_file_system.chroma.arn]

    principals {
      type        = "AWS"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }

  statement {
    sid       = "ConsumerMountsThroughAccessPoint"
    effect    = "Allow"
    actions   = ["elasticfilesystem:ClientMount", "elasticfilesystem:ClientWrite"]
    resources = [aws_efs_file_system.chroma.arn]

    principals {
      type        = "AWS"
      identifiers = [aws_iam_role.consumer_task.arn]
    }

    condition {
      test     = "StringEquals"
      variable = "elasticfilesystem:AccessPointArn"
      values   = [aws_efs_access_point.chroma.arn]
    }
  }
}
