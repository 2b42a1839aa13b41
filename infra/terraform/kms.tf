# One customer managed key for the stack's data at rest: the stream, the
# tables, the bucket, the file system, the queues, the log groups, the
# schedule and the Lambdas' environment. Principals get use of it through
# their IAM policies (the first statement delegates to IAM); only CloudWatch
# Logs, which encrypts as a service, is named in the key policy.

resource "aws_kms_key" "main" {
  description             = "${var.name_prefix}: journal, stream, snapshots, shared store, logs"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.kms.json
}

resource "aws_kms_alias" "main" {
  name          = "alias/${var.name_prefix}"
  target_key_id = aws_kms_key.main.key_id
}

data "aws_iam_policy_document" "kms" {
  #checkov:skip=CKV_AWS_109:Key policies must name the key itself as "*"; this statement is the standard delegation of key administration to the account's IAM policies.
  #checkov:skip=CKV_AWS_111:Key policies must name the key itself as "*"; this statement is the standard delegation of key use to the account's IAM policies.
  #checkov:skip=CKV_AWS_356:In a key policy "*" means this key only; the statement is the standard delegation to the account's IAM policies.
  statement {
    sid       = "DelegateToAccountIam"
    effect    = "Allow"
    actions   = ["kms:*"]
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account_id}:root"]
    }
  }

  statement {
    sid    = "CloudWatchLogsEncryptsThisStacksLogGroups"
    effect = "Allow"
    actions = [
      "kms:Encrypt",
      "kms:Decrypt",
      "kms:ReEncrypt*",
      "kms:GenerateDataKey*",
      "kms:Describe*",
    ]
    resources = ["*"]

    principals {
      type        = "Service"
      identifiers = ["logs.${var.aws_region}.amazonaws.com"]
    }

    condition {
      test     = "ArnLike"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values = [
        "arn:${local.partition}:logs:${var.aws_region}:${local.account_id}:log-group:/ecs/${var.name_prefix}-*",
        "arn:${local.partition}:logs:${var.aws_region}:${local.account_id}:log-group:/aws/lambda/${var.name_prefix}-*",
      ]
    }
  }
}
