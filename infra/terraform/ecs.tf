# The KCL consumer on ECS Fargate. The Java MultiLangDaemon owns shard leases
# and runs the Python record processor (DESIGN section 5).

resource "aws_ecs_cluster" "main" {
  name = var.name_prefix

  setting {
    name  = "containerInsights"
    value = "enabled"
  }
}

resource "aws_cloudwatch_log_group" "consumer" {
  name              = local.consumer_log_group_name
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.main.arn
}

resource "aws_ecs_task_definition" "consumer" {
  family                   = "${var.name_prefix}-consumer"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.consumer_cpu
  memory                   = var.consumer_memory
  execution_role_arn       = aws_iam_role.consumer_execution.arn
  task_role_arn            = aws_iam_role.consumer_task.arn

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "X86_64"
  }

  # STAGING_ROOT and scratch space live here: local disk, because ChromaDB on
  # NFS is slow, and a warm working copy per collection needs room.
  ephemeral_storage {
    size_in_gib = var.consumer_ephemeral_storage_gib
  }

  volume {
    name = "chroma"

    efs_volume_configuration {
      file_system_id     = aws_efs_file_system.chroma.id
      transit_encryption = "ENABLED"

      authorization_config {
        access_point_id = aws_efs_access_point.chroma.id
        iam             = "ENABLED"
      }
    }
  }

  # Task-local bind mounts (backed by ephemeral storage): the root file
  # system is read-only, so everything the task writes goes to one of these.
  volume {
    name = "staging"
  }

  volume {
    name = "scratch"
  }

  container_definitions = jsonencode([
    {
      name                   = "consumer"
      image                  = var.consumer_image
      essential              = true
      readonlyRootFilesystem = true
      user                   = "${var.efs_posix_uid}:${var.efs_posix_gid}"
      # KCL hands leases back and the processor finishes its batch on SIGTERM;
      # 120 s is the Fargate maximum.
      stopTimeout = 120
      environment = [for name in sort(keys(local.consumer_environment)) : { name = name, value = local.consumer_environment[name] }]
      mountPoints = [
        { sourceVolume = "chroma", containerPath = local.chroma_root, readOnly = false },
        { sourceVolume = "staging", containerPath = local.staging_root, readOnly = false },
        { sourceVolume = "scratch", containerPath = local.scratch_root, readOnly = false },
      ]
      healthCheck = {
        # The entry point execs the daemon, so PID 1 is the JVM once the
        # properties are written; if it exits, the task stops anyway.
        command     = ["CMD", "grep", "-qa", "MultiLangDaemon", "/proc/1/cmdline"]
        interval    = 30
        timeout     = 5
        retries     = 3
        startPeriod = 120
      }
      logConfiguration = {
        logDriver = "awslogs"
        options = {
          awslogs-group         = aws_cloudwatch_log_group.consumer.name
          awslogs-region        = var.aws_region
          awslogs-stream-prefix = "consumer"
        }
      }
    }
  ])
}

resource "aws_ecs_service" "consumer" {
  name                    = "${var.name_prefix}-consumer"
  cluster                 = aws_ecs_cluster.main.id
  task_definition         = aws_ecs_task_definition.consumer.arn
  desired_count           = var.consumer_desired_count
  launch_type             = "FARGATE"
  platform_version        = "LATEST"
  propagate_tags          = "SERVICE"
  enable_ecs_managed_tags = true

  # During a deployment old and new tasks overlap; that is safe because KCL
  # shard leases and the per-collection lease (with fencing tokens) decide
  # who writes, never the number of running tasks.
  deployment_minimum_healthy_percent = 100
  deployment_maximum_percent         = 200

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  network_configuration {
    subnets          = var.private_subnet_ids
    security_groups  = [aws_security_group.consumer.id]
    assign_public_ip = false
  }

  # A task must find the mount targets, its permissions and KCL's tables in
  # place: the task definition references none of them, and a first task
  # that fails to start can trip the circuit breaker on the first deploy.
  depends_on = [
    aws_efs_mount_target.chroma,
    aws_efs_file_system_policy.chroma,
    aws_iam_role_policy.consumer_task,
    aws_dynamodb_table.kcl_leases,
    aws_dynamodb_table.kcl_worker_metrics,
    aws_dynamodb_table.kcl_coordinator_state,
  ]
}
