#!/usr/bin/env bash
# Start the local services on loopback, data under var/, and write var/services.env.
# Idempotent: a service that is already running and healthy is reused.
#   scripts/services.sh          start (or reuse) everything
#   scripts/services.sh stop     stop everything this checkout started
. "$(dirname "$0")/lib.sh"

PGBIN="${MADOGUCHI_PGBIN:-/usr/lib/postgresql/15/bin}"
PGDATA="$VAR/pg/data"
PGRUN="$VAR/pg/run"
SECRETS="$VAR/secrets"
DATABASES=(madoguchi madoguchi_test madoguchi_bench)  # development, tests, benchmarks

mkdir -p "$VAR" "$SECRETS"
chmod 700 "$SECRETS"

secret() { # secret NAME -> a stable random value kept in var/secrets
  local f="$SECRETS/$1"
  [ -s "$f" ] || (umask 077; head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$f")
  cat "$f"
}

pid_alive() { [ -f "$1" ] && kill -0 "$(head -n1 "$1")" 2>/dev/null; }

port_taken_by_other() { # port_taken_by_other PORT NAME: a service there that is not ours
  die "port $1 is already taken (a $2 or something else that this checkout did not start, or one left behind by a deleted checkout); stop it or set MADOGUCHI_PORT_BASE to another base (now $PORT_BASE)"
}

port_open() { # port_open PORT: something accepts connections on 127.0.0.1:PORT
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

wait_for() { # wait_for SECONDS DESCRIPTION CMD...
  local secs=$1 what=$2; shift 2
  for _ in $(seq 1 $((secs * 4))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.25; done
  die "$what did not become healthy within ${secs}s"
}

# --- PostgreSQL --------------------------------------------------------------------------------
# initdb refuses root, so the cluster belongs to the postgres user; every directory above var/
# must let that user through (a mktemp folder is 0700), so add search permission where missing.
pg_make_traversable() {
  local d="$VAR"
  while [ "$d" != "/" ]; do
    if ! runuser -u postgres -- test -x "$d" 2>/dev/null; then
      log "granting search permission on $d so the postgres user can reach var/pg"
      chmod o+x "$d"
    fi
    d=$(dirname "$d")
  done
}

pg_psql() { # as the cluster superuser over the private socket
  runuser -u postgres -- "$PGBIN/psql" -h "$PGRUN" -p "$PG_PORT" -U postgres -X -q -v ON_ERROR_STOP=1 "$@"
}

pg_healthy() { "$PGBIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT"; }

start_postgres() {
  [ -x "$PGBIN/postgres" ] || die "PostgreSQL 15 binaries not found in $PGBIN (run make setup)"
  id postgres >/dev/null 2>&1 || die "the postgres system user is missing (run make setup)"
  pg_make_traversable
  mkdir -p "$VAR/pg"
  chown postgres:postgres "$VAR/pg"
  install -d -o postgres -g postgres "$PGRUN"
  if [ ! -f "$PGDATA/PG_VERSION" ]; then
    log "initialising PostgreSQL cluster in $PGDATA"
    install -d -o postgres -g postgres -m 700 "$PGDATA"
    runuser -u postgres -- "$PGBIN/initdb" -D "$PGDATA" -U postgres -E UTF8 --locale=C.UTF-8 \
      --auth-local=peer --auth-host=scram-sha-256 >/dev/null
  fi
  # Settings we rely on (see docs/benchmarks.md): 1,741 tenant schemas need more lock slots for
  # pg_dump and schema-wide DDL; bulk imports want a larger WAL budget.
  cat > "$VAR/pg/madoguchi.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$PGRUN'
max_connections = 200
max_locks_per_transaction = 512
shared_buffers = 512MB
work_mem = 16MB
maintenance_work_mem = 512MB
max_wal_size = 8GB
checkpoint_timeout = 15min
log_min_duration_statement = 2000
log_line_prefix = '%m [%p] %q%u@%d '
timezone = 'UTC'
CONF
  chown postgres:postgres "$VAR/pg/madoguchi.conf"
  grep -q "^include_if_exists = '$VAR/pg/madoguchi.conf'" "$PGDATA/postgresql.conf" \
    || echo "include_if_exists = '$VAR/pg/madoguchi.conf'" >> "$PGDATA/postgresql.conf"

  if pg_healthy && pid_alive "$PGDATA/postmaster.pid"; then
    log "PostgreSQL already running on 127.0.0.1:$PG_PORT"
  elif port_open "$PG_PORT"; then
    port_taken_by_other "$PG_PORT" PostgreSQL
  else
    log "starting PostgreSQL on 127.0.0.1:$PG_PORT"
    runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PGDATA" -l "$VAR/pg/postgres.log" -w -t 60 start >/dev/null \
      || { tail -n 20 "$VAR/pg/postgres.log" >&2; die "PostgreSQL failed to start"; }
    wait_for 30 PostgreSQL pg_healthy
  fi

  # One admin (migrations, provisioning) and one runtime login role per database. The runtime role
  # is NOINHERIT: it has no rights of its own and must SET ROLE to a tenant role to read anything.
  local db admin app
  for db in "${DATABASES[@]}"; do
    admin="${db}_admin"; app="${db}_app"
    pg_psql -d postgres -v admin="$admin" -v app="$app" -v db="$db" \
      -v admin_pw="$(secret "pg_$admin")" -v app_pw="$(secret "pg_$app")" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN CREATEROLE', :'admin')
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'admin') \gexec
SELECT format('CREATE ROLE %I LOGIN NOINHERIT', :'app')
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'app') \gexec
ALTER ROLE :"admin" PASSWORD :'admin_pw';
ALTER ROLE :"app" PASSWORD :'app_pw';
ALTER ROLE :"app" NOINHERIT;
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'admin')
 WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'db') \gexec
REVOKE ALL ON DATABASE :"db" FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE :"db" TO :"app";
SQL
    # The benchmark reads per-connection memory (catalog cache growth across tenant schemas).
    [ "$db" = madoguchi_bench ] && pg_psql -d postgres -c "GRANT pg_read_all_stats TO \"$admin\"" >/dev/null 2>&1
    # Tenant search paths never include public; nobody but the owner may use it.
    pg_psql -d "$db" -c 'REVOKE ALL ON SCHEMA public FROM PUBLIC'
  done
}

# --- Redis -------------------------------------------------------------------------------------
redis_healthy() { redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG; }

start_redis() {
  mkdir -p "$VAR/redis"
  if redis_healthy && pid_alive "$VAR/redis/redis.pid"; then
    log "Redis already running on 127.0.0.1:$REDIS_PORT"
    return
  fi
  port_open "$REDIS_PORT" && port_taken_by_other "$REDIS_PORT" Redis
  cat > "$VAR/redis/redis.conf" <<CONF
bind 127.0.0.1
port $REDIS_PORT
daemonize yes
pidfile $VAR/redis/redis.pid
logfile $VAR/redis/redis.log
dir $VAR/redis
save 300 100
appendonly no
CONF
  log "starting Redis on 127.0.0.1:$REDIS_PORT"
  redis-server "$VAR/redis/redis.conf"
  wait_for 20 Redis redis_healthy
}

# --- S3-compatible endpoint (moto server: the development stand-in for AWS S3) -----------------
# The dashboard page, not data.json: data.json answers 500 for a while after buckets holding keys are
# deleted (moto re-reads each deleted key's bucket once), which made a running server look dead.
s3_healthy() { curl -sf -o /dev/null "http://127.0.0.1:$S3_PORT/moto-api/"; }

start_s3() {
  mkdir -p "$VAR/s3"
  if s3_healthy && pid_alive "$VAR/s3/moto.pid"; then
    log "S3 endpoint (moto) already running on 127.0.0.1:$S3_PORT"
    return
  fi
  port_open "$S3_PORT" && port_taken_by_other "$S3_PORT" "S3 endpoint"
  [ -x "$VENV/bin/moto_server" ] || die "moto_server missing from $VENV (run make setup)"
  log "starting S3 endpoint (moto server) on 127.0.0.1:$S3_PORT"
  setsid nohup "$VENV/bin/moto_server" -H 127.0.0.1 -p "$S3_PORT" >"$VAR/s3/moto.log" 2>&1 < /dev/null &
  echo $! > "$VAR/s3/moto.pid"
  wait_for 30 "S3 endpoint" s3_healthy
}

# --- Prometheus and Alertmanager --------------------------------------------------------------
prom_healthy() { curl -sf -o /dev/null "http://127.0.0.1:$PROM_PORT/-/ready"; }
am_healthy() { curl -sf -o /dev/null "http://127.0.0.1:$AM_PORT/-/ready"; }

start_prometheus() {
  mkdir -p "$VAR/prometheus/data"
  cat > "$VAR/prometheus/prometheus.yml" <<CONF
# Generated by scripts/services.sh for local development; production config lives in dashboards/.
global:
  scrape_interval: 15s
  evaluation_interval: 15s
alerting:
  alertmanagers:
    - static_configs:
        - targets: ['127.0.0.1:$AM_PORT']
rule_files:
  - '$ROOT/dashboards/rules/*.yml'
scrape_configs:
  - job_name: madoguchi
    static_configs:
      - targets: ['127.0.0.1:$APP_PORT']
CONF
  port_open "$PROM_PORT" && ! pid_alive "$VAR/prometheus/prometheus.pid" && port_taken_by_other "$PROM_PORT" Prometheus
  if prom_healthy; then
    log "Prometheus already running on 127.0.0.1:$PROM_PORT (reloading config)"
    curl -sf -X POST "http://127.0.0.1:$PROM_PORT/-/reload" >/dev/null || true
    return
  fi
  log "starting Prometheus on 127.0.0.1:$PROM_PORT"
  setsid nohup prometheus --config.file="$VAR/prometheus/prometheus.yml" \
    --storage.tsdb.path="$VAR/prometheus/data" --web.listen-address="127.0.0.1:$PROM_PORT" \
    --web.enable-lifecycle --web.enable-admin-api >"$VAR/prometheus/prometheus.log" 2>&1 < /dev/null &
  echo $! > "$VAR/prometheus/prometheus.pid"
  wait_for 60 Prometheus prom_healthy
}

start_alertmanager() {
  mkdir -p "$VAR/alertmanager/data"
  secret alertmanager_webhook >/dev/null  # the bearer token Alertmanager sends to the webhook
  if [ -f "$ROOT/dashboards/alertmanager.yml" ]; then
    sed -e "s#http://127.0.0.1:APP_PORT#http://127.0.0.1:$APP_PORT#g" \
      -e "s#/etc/madoguchi/secrets/alertmanager_webhook#$SECRETS/alertmanager_webhook#g" \
      "$ROOT/dashboards/alertmanager.yml" > "$VAR/alertmanager/alertmanager.yml"
  else
    cat > "$VAR/alertmanager/alertmanager.yml" <<CONF
route:
  receiver: madoguchi
receivers:
  - name: madoguchi
    webhook_configs:
      - url: 'http://127.0.0.1:$APP_PORT/ops/alertmanager/webhook'
CONF
  fi
  port_open "$AM_PORT" && ! pid_alive "$VAR/alertmanager/alertmanager.pid" && port_taken_by_other "$AM_PORT" Alertmanager
  if am_healthy; then
    log "Alertmanager already running on 127.0.0.1:$AM_PORT (reloading config)"
    curl -sf -X POST "http://127.0.0.1:$AM_PORT/-/reload" >/dev/null || true
    return
  fi
  log "starting Alertmanager on 127.0.0.1:$AM_PORT"
  setsid nohup prometheus-alertmanager --config.file="$VAR/alertmanager/alertmanager.yml" \
    --storage.path="$VAR/alertmanager/data" --web.listen-address="127.0.0.1:$AM_PORT" \
    --cluster.listen-address= >"$VAR/alertmanager/alertmanager.log" 2>&1 < /dev/null &
  echo $! > "$VAR/alertmanager/alertmanager.pid"
  wait_for 60 Alertmanager am_healthy
}

write_env() {
  local f="$VAR/services.env" db url
  {
    echo "# Written by scripts/services.sh; source it to reach the local services."
    for db in "${DATABASES[@]}"; do
      local upper=""
      [ "$db" = madoguchi ] || upper="$(echo "${db#madoguchi_}" | tr '[:lower:]' '[:upper:]')_"
      echo "export MADOGUCHI_${upper}DATABASE_URL='postgresql+psycopg://${db}_app:$(secret "pg_${db}_app")@127.0.0.1:$PG_PORT/$db'"
      echo "export MADOGUCHI_${upper}ADMIN_DATABASE_URL='postgresql+psycopg://${db}_admin:$(secret "pg_${db}_admin")@127.0.0.1:$PG_PORT/$db'"
    done
    echo "export MADOGUCHI_REDIS_URL='redis://127.0.0.1:$REDIS_PORT/0'"
    echo "export MADOGUCHI_TEST_REDIS_URL='redis://127.0.0.1:$REDIS_PORT/1'"
    echo "export MADOGUCHI_S3_ENDPOINT_URL='http://127.0.0.1:$S3_PORT'"
    echo "export AWS_ACCESS_KEY_ID='testing' AWS_SECRET_ACCESS_KEY='testing' AWS_DEFAULT_REGION='ap-northeast-1'"
    echo "export MADOGUCHI_PROMETHEUS_URL='http://127.0.0.1:$PROM_PORT'"
    echo "export MADOGUCHI_ALERTMANAGER_URL='http://127.0.0.1:$AM_PORT'"
    echo "export MADOGUCHI_APP_PORT='$APP_PORT'"
    echo "export MADOGUCHI_PG_SOCKET_DIR='$PGRUN' MADOGUCHI_PG_PORT='$PG_PORT'"
    echo "export MADOGUCHI_SECRET_KEY='$(secret flask_secret_key)'"
    echo "export MADOGUCHI_ALERTMANAGER_WEBHOOK_TOKEN='$(secret alertmanager_webhook)'"
    echo "export MADOGUCHI_AUDIT_SEAL_KEY='$(secret audit_seal_key)'"
  } > "$f.tmp"
  chmod 600 "$f.tmp"
  mv "$f.tmp" "$f"
  log "wrote $f"
}

stop_all() {
  local p
  if [ -f "$PGDATA/PG_VERSION" ] && pg_healthy; then
    runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PGDATA" -m fast -w stop >/dev/null || true
  fi
  redis-cli -h 127.0.0.1 -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
  for p in "$VAR/s3/moto.pid" "$VAR/prometheus/prometheus.pid" "$VAR/alertmanager/alertmanager.pid"; do
    pid_alive "$p" && kill "$(cat "$p")" && rm -f "$p"
  done
  log "services stopped"
}

case "${1:-start}" in
  start)
    start_postgres
    start_redis
    start_s3
    start_prometheus
    start_alertmanager
    write_env
    ;;
  stop) stop_all ;;
  *) die "usage: $0 [start|stop]" ;;
esac
