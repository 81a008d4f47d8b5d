# Who may talk to whom. Only the load balancer is reachable from the internet (HTTPS, and HTTP
# that it answers with a redirect); everything else admits its known callers only.

resource "aws_security_group" "alb" {
  #checkov:skip=CKV_AWS_260:Port 80 only answers with a redirect to HTTPS (loadbalancer.tf), for clerks who type the host name without https://.
  name        = "${local.name}-alb"
  description = "Load balancer: HTTPS from anywhere, to the web tasks"
  vpc_id      = aws_vpc.main.id

  ingress {
    description = "HTTPS from clerks' PCs, residents' phones and API clients"
    from_port   = 443
    to_port     = 443
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }

  ingress {
    description = "HTTP, answered with a redirect to HTTPS"
    from_port   = 80
    to_port     = 80
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }

  egress {
    description = "To the web tasks"
    from_port   = local.app_port
    to_port     = local.app_port
    protocol    = "tcp"
    cidr_blocks = [local.tier_cidr.private]
  }
}

# The app's rules are separate resources: the monitoring group refers to this one and this one to
# it, which inline rules cannot express without a dependency cycle.
resource "aws_security_group" "app" {
  name        = "${local.name}-app"
  description = "Madoguchi web and worker tasks"
  vpc_id      = aws_vpc.main.id
}

resource "aws_vpc_security_group_ingress_rule" "app_from_alb" {
  security_group_id            = aws_security_group.app.id
  description                  = "From the load balancer"
  ip_protocol                  = "tcp"
  from_port                    = local.app_port
  to_port                      = local.app_port
  referenced_security_group_id = aws_security_group.alb.id
}

resource "aws_vpc_security_group_ingress_rule" "app_from_monitoring" {
  security_group_id            = aws_security_group.app.id
  description                  = "Prometheus scrapes /metrics; Alertmanager posts to the incident webhook"
  ip_protocol                  = "tcp"
  from_port                    = local.app_port
  to_port                      = local.app_port
  referenced_security_group_id = aws_security_group.monitoring.id
}

resource "aws_vpc_security_group_egress_rule" "app" {
  for_each = {
    postgresql = { port = 5432, to = 5432, cidr = local.tier_cidr.data, what = "PostgreSQL" }
    redis      = { port = 6379, to = 6379, cidr = local.tier_cidr.data, what = "Redis" }
    monitoring = { port = 9090, to = 9093, cidr = local.tier_cidr.private, what = "Prometheus and Alertmanager APIs (operations pages, monthly reports)" }
    https      = { port = 443, to = 443, cidr = "0.0.0.0/0", what = "HTTPS: AWS endpoints, the cities' webhook receivers and core-system APIs" }
  }
  security_group_id = aws_security_group.app.id
  description       = each.value.what
  ip_protocol       = "tcp"
  from_port         = each.value.port
  to_port           = each.value.to
  cidr_ipv4         = each.value.cidr
}

resource "aws_security_group" "monitoring" {
  name        = "${local.name}-monitoring"
  description = "Prometheus and Alertmanager"
  vpc_id      = aws_vpc.main.id

  ingress {
    description     = "Prometheus and Alertmanager APIs from the app"
    from_port       = 9090
    to_port         = 9093
    protocol        = "tcp"
    security_groups = [aws_security_group.app.id]
  }

  egress {
    description = "Scrapes and incident webhook to the web tasks"
    from_port   = local.app_port
    to_port     = local.app_port
    protocol    = "tcp"
    cidr_blocks = [local.tier_cidr.private]
  }

  egress {
    description = "NFS to the monitoring volume"
    from_port   = 2049
    to_port     = 2049
    protocol    = "tcp"
    cidr_blocks = [local.tier_cidr.private]
  }

  egress {
    description = "HTTPS: AWS endpoints and the image registry"
    from_port   = 443
    to_port     = 443
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }
}

resource "aws_security_group" "database" {
  name        = "${local.name}-database"
  description = "Aurora PostgreSQL: from the Madoguchi tasks only"
  vpc_id      = aws_vpc.main.id

  ingress {
    description     = "PostgreSQL from web, worker and migration tasks"
    from_port       = 5432
    to_port         = 5432
    protocol        = "tcp"
    security_groups = [aws_security_group.app.id]
  }
}

resource "aws_security_group" "redis" {
  name        = "${local.name}-redis"
  description = "ElastiCache Redis: from the Madoguchi tasks only"
  vpc_id      = aws_vpc.main.id

  ingress {
    description     = "Redis from web and worker tasks"
    from_port       = 6379
    to_port         = 6379
    protocol        = "tcp"
    security_groups = [aws_security_group.app.id]
  }
}

resource "aws_security_group" "efs" {
  name        = "${local.name}-efs"
  description = "Monitoring volume: NFS from Prometheus and Alertmanager"
  vpc_id      = aws_vpc.main.id

  ingress {
    description     = "NFS from the monitoring task"
    from_port       = 2049
    to_port         = 2049
    protocol        = "tcp"
    security_groups = [aws_security_group.monitoring.id]
  }
}
