# The service on ECS Fargate: web (gunicorn as scripts/run.sh starts it), worker (`madoguchi
# worker`: RQ jobs and the repeating schedules), and a one-off migration task that the release
# pipeline runs before it updates the services (`madoguchi tenants sync`, then `madoguchi releases`).

resource "aws_ecs_cluster" "main" {
  name = local.name
  setting {
    name  = "containerInsights"
    value = "enabled"
  }
}

resource "aws_service_discovery_private_dns_namespace" "main" {
  name = local.service_domain
  vpc  = aws_vpc.main.id
}

resource "aws_service_discovery_service" "internal" {
  for_each = toset(["web", "prometheus"])
  name     = each.key
  dns_config {
    namespace_id   = aws_service_discovery_private_dns_namespace.main.id
    routing_policy = "MULTIVALUE"
    dns_records {
      type = "A"
      ttl  = 10
    }
  }
}

resource "aws_cloudwatch_log_group" "app" {
  for_each          = toset(["web", "worker", "migrate", "monitoring"])
  name              = "/${local.name}/${each.key}"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.logs.arn
}

locals {
  # The container's root file system is read-only; these are the places it may write.
  scratch_volumes = ["tmp", "metrics"]
  scratch_mounts = [
    { sourceVolume = "tmp", containerPath = "/tmp", readOnly = false },
    { sourceVolume = "metrics", containerPath = "/var/run/madoguchi/metrics", readOnly = false },
  ]

  app_container = {
    image                  = var.app_image
    essential              = true
    readonlyRootFilesystem = true
    user                   = "10001:10001"
    linuxParameters        = { initProcessEnabled = true }
    mountPoints            = local.scratch_mounts
  }

  # Each task's output goes to its own log group (the monitoring task's too, monitoring.tf).
  log_configuration = {
    for name, group in aws_cloudwatch_log_group.app : name => {
      logDriver = "awslogs"
      options = {
        awslogs-group         = group.name
        awslogs-region        = var.region
        awslogs-stream-prefix = name
      }
    }
  }

  runtime_environment = merge(local.app_environment, {
    HOME           = "/tmp"
    XDG_CACHE_HOME = "/tmp/cache" # fontconfig's cache (WeasyPrint)
  })

  container_definitions = {
    web = [merge(local.app_container, {
      name = "web"
      # scripts/run.sh: the same config module, worker count and logs, bound for the load balancer.
      command = [
        "gunicorn", "--config", "python:app.observability.gunicorn_conf",
        "--bind", "0.0.0.0:${local.app_port}", "--workers", "2",
        "--access-logfile", "-", "--error-logfile", "-", "app.wsgi:application",
      ]
      portMappings = [{ containerPort = local.app_port, protocol = "tcp" }]
      environment = [for k, v in merge(local.runtime_environment, {
        PROMETHEUS_MULTIPROC_DIR = "/var/run/madoguchi/metrics"
        MADOGUCHI_THREADS        = "4"
      }) : { name = k, value = v }]
      secrets = [for name in local.runtime_secrets : { name = name, valueFrom = aws_secretsmanager_secret.app[name].arn }]
      healthCheck = {
        command     = ["CMD", "python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:${local.app_port}/healthz', timeout=3)"]
        interval    = 15
        timeout     = 5
        retries     = 3
        startPeriod = 30
      }
      logConfiguration = local.log_configuration["web"]
    })]

    worker = [merge(local.app_container, {
      name             = "worker"
      command          = ["madoguchi", "worker"]
      environment      = [for k, v in local.runtime_environment : { name = k, value = v }]
      secrets          = [for name in local.runtime_secrets : { name = name, valueFrom = aws_secretsmanager_secret.app[name].arn }]
      logConfiguration = local.log_configuration["worker"]
    })]

    migrate = [merge(local.app_container, {
      name             = "migrate"
      command          = ["madoguchi", "tenants", "sync"]
      environment      = [for k, v in local.runtime_environment : { name = k, value = v }]
      secrets          = [for name in local.migration_secrets : { name = name, valueFrom = aws_secretsmanager_secret.app[name].arn }]
      logConfiguration = local.log_configuration["migrate"]
    })]
  }

  task_sizes = {
    web     = { cpu = var.web_cpu, memory = var.web_memory }
    worker  = { cpu = var.worker_cpu, memory = var.worker_memory }
    migrate = { cpu = 1024, memory = 2048 }
  }
}

resource "aws_ecs_task_definition" "app" {
  for_each                 = local.container_definitions
  family                   = "${local.name}-${each.key}"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = local.task_sizes[each.key].cpu
  memory                   = local.task_sizes[each.key].memory
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.app.arn
  container_definitions    = jsonencode(each.value)

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "X86_64"
  }

  dynamic "volume" {
    for_each = toset(local.scratch_volumes)
    content {
      name = volume.value
    }
  }
}

resource "aws_ecs_service" "web" {
  name                               = "web"
  cluster                            = aws_ecs_cluster.main.id
  task_definition                    = aws_ecs_task_definition.app["web"].arn
  desired_count                      = var.web_count
  launch_type                        = "FARGATE"
  deployment_minimum_healthy_percent = 100
  deployment_maximum_percent         = 200
  health_check_grace_period_seconds  = 60
  propagate_tags                     = "SERVICE"

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  network_configuration {
    subnets          = aws_subnet.private[*].id
    security_groups  = [aws_security_group.app.id]
    assign_public_ip = false
  }

  load_balancer {
    target_group_arn = aws_lb_target_group.web.arn
    container_name   = "web"
    container_port   = local.app_port
  }

  service_registries {
    registry_arn = aws_service_discovery_service.internal["web"].arn
  }

  depends_on = [aws_lb_listener.https]
}

resource "aws_ecs_service" "worker" {
  name                               = "worker"
  cluster                            = aws_ecs_cluster.main.id
  task_definition                    = aws_ecs_task_definition.app["worker"].arn
  desired_count                      = var.worker_count
  launch_type                        = "FARGATE"
  deployment_minimum_healthy_percent = 100
  deployment_maximum_percent         = 200
  propagate_tags                     = "SERVICE"

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  network_configuration {
    subnets          = aws_subnet.private[*].id
    security_groups  = [aws_security_group.app.id]
    assign_public_ip = false
  }
}
