# Security groups. The consumer reaches AWS APIs over HTTPS and the file
# system over NFS; the file system accepts NFS from the consumer only.

resource "aws_security_group" "consumer" {
  name        = "${var.name_prefix}-consumer"
  description = "chroma-journal KCL consumer tasks"
  vpc_id      = var.vpc_id
}

resource "aws_vpc_security_group_egress_rule" "consumer_https" {
  security_group_id = aws_security_group.consumer.id
  description       = "AWS APIs (Kinesis, DynamoDB, S3, CloudWatch, ECR) over TLS"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = "0.0.0.0/0"
}

resource "aws_vpc_security_group_egress_rule" "consumer_nfs" {
  security_group_id            = aws_security_group.consumer.id
  description                  = "NFS to the shared store"
  ip_protocol                  = "tcp"
  from_port                    = 2049
  to_port                      = 2049
  referenced_security_group_id = aws_security_group.efs.id
}

resource "aws_security_group" "efs" {
  name        = "${var.name_prefix}-efs"
  description = "chroma-journal shared store: NFS from the consumer only"
  vpc_id      = var.vpc_id
}

resource "aws_vpc_security_group_ingress_rule" "efs_from_consumer" {
  security_group_id            = aws_security_group.efs.id
  description                  = "NFS from the consumer tasks"
  ip_protocol                  = "tcp"
  from_port                    = 2049
  to_port                      = 2049
  referenced_security_group_id = aws_security_group.consumer.id
}

resource "aws_security_group" "lambda" {
  name        = "${var.name_prefix}-lambda"
  description = "chroma-journal Lambdas: HTTPS to AWS APIs only"
  vpc_id      = var.vpc_id
}

resource "aws_vpc_security_group_egress_rule" "lambda_https" {
  security_group_id = aws_security_group.lambda.id
  description       = "AWS APIs (DynamoDB, Kinesis, SQS, Logs) over TLS"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = "0.0.0.0/0"
}
