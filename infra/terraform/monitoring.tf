# Prometheus and Alertmanager, the same programs and versions the suite tests the rules and the
# routing with, as one ECS task. A loader container copies their configuration from the monitoring
# bucket (storage.tf: the generated files of dashboards/) and writes Alertmanager's bearer token to
# the path dashboards/alertmanager.yml names; both keep their data on an encrypted EFS volume.
# Grafana is the provider's own; dashboards/*.json are imported there.

resource "aws_efs_file_system" "monitoring" {
  encrypted        = true
  kms_key_id       = aws_kms_key.data.arn
  performance_mode = "generalPurpose"
  throughput_mode  = "elastic"
  tags             = { Name = "${local.name}-monitoring" }
}

resource "aws_efs_backup_policy" "monitoring" {
  file_system_id = aws_efs_file_system.monitoring.id
  backup_policy {
    status = "ENABLED"
  }
}

resource "aws_efs_mount_target" "monitoring" {
  count           = local.az_count
  file_system_id  = aws_efs_file_system.monitoring.id
  subnet_id       = aws_subnet.private[count.index].id
  security_groups = [aws_security_group.efs.id]
}

# Both images run as nobody (65534).
resource "aws_efs_access_point" "monitoring" {
  for_each       = toset(["prometheus", "alertmanager"])
  file_system_id = aws_efs_file_system.monitoring.id
  posix_user {
    uid = 65534
    gid = 65534
  }
  root_directory {
    path = "/${each.key}"
    creation_info {
      owner_uid   = 65534
      owner_gid   = 65534
      permissions = "0750"
    }
  }
}

locals {
  monitoring_containers = [
    {
      name      = "config"
      image     = var.config_loader_image
      essential = false
      # root, because the task's scratch volumes are root's; it only copies files and exits.
      # The token file is what dashboards/alertmanager.yml reads (credentials_file).
      entryPoint = ["/bin/sh", "-c"]
      command = [join(" && ", [
        "aws s3 cp --recursive s3://${module.bucket["monitoring"].id}/ /etc/madoguchi/",
        "mkdir -p /etc/madoguchi/secrets",
        "printf %s \"$MADOGUCHI_ALERTMANAGER_WEBHOOK_TOKEN\" > /etc/madoguchi/secrets/alertmanager_webhook",
      ])]
      environment = [{ name = "HOME", value = "/tmp" }]
      secrets = [{
        name      = "MADOGUCHI_ALERTMANAGER_WEBHOOK_TOKEN"
        valueFrom = aws_secretsmanager_secret.app["MADOGUCHI_ALERTMANAGER_WEBHOOK_TOKEN"].arn
      }]
      readonlyRootFilesystem = true
      mountPoints = [
        { sourceVolume = "config", containerPath = "/etc/madoguchi", readOnly = false },
        { sourceVolume = "tmp", containerPath = "/tmp", readOnly = false },
      ]
      logConfiguration = local.log_configuration["monitoring"]
    },
    {
      name      = "prometheus"
      image     = var.prometheus_image
      essential = true
      command = [
        "--config.file=/etc/madoguchi/prometheus/prometheus.yml",
        "--storage.tsdb.path=/prometheus",
        "--storage.tsdb.retention.time=${var.prometheus_retention}",
        "--web.listen-address=0.0.0.0:9090",
      ]
      portMappings           = [{ containerPort = 9090, protocol = "tcp" }]
      dependsOn              = [{ containerName = "config", condition = "SUCCESS" }]
      readonlyRootFilesystem = true
      mountPoints = [
        { sourceVolume = "config", containerPath = "/etc/madoguchi", readOnly = true },
        { sourceVolume = "prometheus", containerPath = "/prometheus", readOnly = false },
      ]
      logConfiguration = local.log_configuration["monitoring"]
    },
    {
      name      = "alertmanager"
      image     = var.alertmanager_image
      essential = true
      command = [
        "--config.file=/etc/madoguchi/alertmanager/alertmanager.yml",
        "--storage.path=/alertmanager",
        "--web.listen-address=0.0.0.0:9093",
        "--cluster.listen-address=",
      ]
      portMappings           = [{ containerPort = 9093, protocol = "tcp" }]
      dependsOn              = [{ containerName = "config", condition = "SUCCESS" }]
      readonlyRootFilesystem = true
      mountPoints = [
        { sourceVolume = "config", containerPath = "/etc/madoguchi", readOnly = true },
        { sourceVolume = "alertmanager", containerPath = "/alertmanager", readOnly = false },
      ]
      logConfiguration = local.log_configuration["monitoring"]
    },
  ]
}

resource "aws_ecs_task_definition" "monitoring" {
  family                   = "${local.name}-monitoring"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = 1024
  memory                   = 4096
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.monitoring.arn
  container_definitions    = jsonencode(local.monitoring_containers)

  volume {
    name = "config"
  }
  volume {
    name = "tmp"
  }

  dynamic "volume" {
    for_each = aws_efs_access_point.monitoring
    content {
      name = volume.key
      efs_volume_configuration {
        file_system_id     = aws_efs_file_system.monitoring.id
        transit_encryption = "ENABLED"
        authorization_config {
          access_point_id = volume.value.id
          iam             = "ENABLED"
        }
      }
    }
  }
}

# One task: Prometheus's storage takes a lock, so a deployment stops the old task first.
resource "aws_ecs_service" "monitoring" {
  name                               = "monitoring"
  cluster                            = aws_ecs_cluster.main.id
  task_definition                    = aws_ecs_task_definition.monitoring.arn
  desired_count                      = 1
  launch_type                        = "FARGATE"
  deployment_minimum_healthy_percent = 0
  deployment_maximum_percent         = 100
  propagate_tags                     = "SERVICE"

  network_configuration {
    subnets          = aws_subnet.private[*].id
    security_groups  = [aws_security_group.monitoring.id]
    assign_public_ip = false
  }

  service_registries {
    registry_arn = aws_service_discovery_service.internal["prometheus"].arn
  }

  depends_on = [aws_efs_mount_target.monitoring]
}
