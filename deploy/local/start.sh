#!/usr/bin/env bash
# Start the local caloray cluster on this machine:
#   PostgreSQL (own data folder) → MLflow tracking server (PostgreSQL backend, artifacts proxied into
#   STATE/artifacts) → Ray head node (dashboard + Job API) → one Ray worker node (a second raylet).
# PostgreSQL, MLflow and the Ray dashboard/Job API listen on 127.0.0.1 only. Ray's own gRPC ports (GCS,
# raylets, object managers, workers) have no loopback-only option and listen on all interfaces; the cluster
# runs with Ray token authentication, so they answer only to holders of its token (0600 file in STATE).
# Waits until each is healthy, then prints the variables to export. Idempotent: parts already running are
# kept. Stop with deploy/local/stop.sh; see deploy/local/README.md for every setting.
#
#   deploy/local/start.sh                 # everything
#   deploy/local/start.sh --no-worker     # PostgreSQL, MLflow, Ray head only
#   deploy/local/start.sh --ray-only      # Ray head + worker, no PostgreSQL/MLflow (combine with --no-worker)
#   deploy/local/start.sh --worker-only   # add the worker node to a running head
set -euo pipefail
# shellcheck source=deploy/local/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

WITH_DB=1 WITH_HEAD=1 WITH_WORKER=1
for arg in "$@"; do
  case "$arg" in
    --no-worker) WITH_WORKER=0 ;;
    --ray-only) WITH_DB=0 ;;
    --worker-only) WITH_DB=0 WITH_HEAD=0 WITH_WORKER=1 ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) die "unknown option $arg (see --help)" ;;
  esac
done

HOST=127.0.0.1
TIMEOUT="${CALORAY_CLUSTER_TIMEOUT:-180}"
MLFLOW_PORT="${CALORAY_MLFLOW_PORT:-5000}"
MLFLOW_WORKERS="${CALORAY_MLFLOW_WORKERS:-2}"
RAY_PORT="${CALORAY_RAY_PORT:-6379}"
DASHBOARD_PORT="${CALORAY_RAY_DASHBOARD_PORT:-8265}"
CLIENT_PORT="${CALORAY_RAY_CLIENT_PORT:-10001}"
HEAD_CPUS="${CALORAY_HEAD_CPUS:-1}"
WORKER_CPUS="${CALORAY_WORKER_CPUS:-1}"
OBJECT_STORE_BYTES="${CALORAY_OBJECT_STORE_BYTES:-1000000000}"
# Worker processes' port ranges: head BASE…BASE+499, worker node BASE+500…BASE+999.
WORKER_PORT_BASE="${CALORAY_RAY_WORKER_PORT_BASE:-20100}"

mkdir -p "$STATE" "$LOGS" "$ARTIFACTS"
export PATH="$VENV/bin:$PATH"  # the Ray nodes (and so every job's `python`) use the project's venv
unset RAY_ADDRESS               # `ray start` gets its addresses from the flags below only
# Ray token authentication: the Job API, the dashboard and every Ray gRPC port want this cluster's token,
# a generated 0600 file in the state folder. Clients (ray job submit, ray.init) need RAY_AUTH_MODE=token
# and RAY_AUTH_TOKEN_PATH, printed below and written to STATE/env.sh.
export RAY_AUTH_MODE=token RAY_AUTH_TOKEN_PATH="$RAY_TOKEN_FILE"
unset RAY_AUTH_TOKEN
if [ ! -s "$RAY_TOKEN_FILE" ]; then
  ( umask 077; "$PY" -c 'import secrets; print(secrets.token_hex(32))' > "$RAY_TOKEN_FILE" )
fi
chmod 600 "$RAY_TOKEN_FILE"
if [ "$WITH_WORKER" = 1 ] && [ "$WITH_HEAD" = 0 ]; then
  [ -f "$CLUSTER_ENV" ] || die "no running cluster in $STATE (start the head first)"
  # shellcheck disable=SC1090
  source "$CLUSTER_ENV"
  RAY_PORT="$CALORAY_RAY_PORT" DASHBOARD_PORT="$CALORAY_RAY_DASHBOARD_PORT"
fi

port_busy() { "$PY" - "$1" <<'EOF'
import socket, sys
s = socket.socket()
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(0)
sys.exit(1)
EOF
}

# ------------------------------------------------------------------ PostgreSQL
start_postgres() {
  local bin pgroot pgdata password
  bin="$(find_pg_bin)" || die "PostgreSQL binaries not found: install PostgreSQL (Debian: apt-get install postgresql) or set CALORAY_PG_BIN"
  if [ "$(id -u)" -eq 0 ]; then
    id "$PG_OS_USER" >/dev/null 2>&1 || die "running as root: PostgreSQL needs a non-root OS user, $PG_OS_USER does not exist (set CALORAY_PG_OS_USER)"
  fi
  pgroot="$(pg_dir)"
  if [ -n "$pgroot" ] && [ -z "${CALORAY_PG_DIR:-}" ] && [ "$pgroot" != "$STATE/postgres" ]; then
    # A temp folder recorded by an earlier start: reused only while it is still ours.
    usable_tmp "$pgroot" "$(id -u)" "$(id -u "$PG_OS_USER")" || pgroot=""
  fi
  if [ -z "$pgroot" ]; then
    # A fresh folder (0700, unguessable name) for the PostgreSQL user: never one that already exists.
    pgroot="$(mktemp -d "${TMPDIR:-/tmp}/caloray-pg-XXXXXXXX")"
  fi
  printf '%s\n' "$pgroot" > "$STATE/pgdir"
  pgdata="$pgroot/data"
  PG_PORT="${CALORAY_PG_PORT:-}"
  if [ -f "$pgdata/postmaster.pid" ] && as_pg "$bin/pg_ctl" -D "$pgdata" status >/dev/null 2>&1; then
    PG_PORT="$(sed -n 4p "$pgdata/postmaster.pid")"
    log "PostgreSQL already running on $HOST:$PG_PORT ($pgdata)"
    return
  fi
  [ -n "$PG_PORT" ] || PG_PORT="$("$PY" "$UTIL" free-ports 1)"

  # The password: CALORAY_PG_PASSWORD, else the one generated on first start (0600 file in STATE).
  umask 077
  if [ -n "${CALORAY_PG_PASSWORD:-}" ]; then
    password="$CALORAY_PG_PASSWORD"
  elif [ -s "$PASSWORD_FILE" ]; then
    password="$(cat "$PASSWORD_FILE")"
  else
    password="$("$PY" -c 'import secrets; print(secrets.token_hex(24))')"
    printf '%s\n' "$password" > "$PASSWORD_FILE"
  fi
  chmod 600 "$PASSWORD_FILE" 2>/dev/null || true
  # libpq reads the password from here (PGPASSFILE), so it is in no command line, URI or environment.
  printf '%s:%s:*:%s:%s\n' "$HOST" "$PG_PORT" "$PG_ROLE" "$password" > "$PGPASS_FILE"
  chmod 600 "$PGPASS_FILE"
  umask 022

  mkdir -p "$pgroot"
  if [ "$(id -u)" -eq 0 ]; then chown "$PG_OS_USER" "$pgroot"; fi
  chmod 700 "$pgroot"
  if [ ! -f "$pgdata/PG_VERSION" ]; then
    log "initdb $pgdata (role $PG_ROLE, scram-sha-256)"
    local pwfile="$pgroot/.pwfile"
    ( umask 077; printf '%s\n' "$password" > "$pwfile" )
    if [ "$(id -u)" -eq 0 ]; then chown "$PG_OS_USER" "$pwfile"; fi
    if ! as_pg "$bin/initdb" -D "$pgdata" -U "$PG_ROLE" --pwfile="$pwfile" --auth=scram-sha-256 \
        -E UTF8 --no-locale >"$LOGS/initdb.log" 2>&1; then
      rm -f "$pwfile"
      cat "$LOGS/initdb.log" >&2
      die "initdb failed"
    fi
    rm -f "$pwfile"
  fi
  log "starting PostgreSQL on $HOST:$PG_PORT"
  # TCP on 127.0.0.1 only; no Unix socket (nothing to clash with a system PostgreSQL).
  if ! as_pg "$bin/pg_ctl" -D "$pgdata" -l "$pgroot/postgres.log" -w -t "$TIMEOUT" \
      -o "-c listen_addresses=$HOST -p $PG_PORT -c unix_socket_directories=''" start >"$LOGS/pg_ctl.log" 2>&1; then
    tail -n 30 "$pgroot/postgres.log" >&2 || true
    die "PostgreSQL did not start (log: $pgroot/postgres.log)"
  fi
  local deadline=$((SECONDS + TIMEOUT))
  until pg_isready -q -h "$HOST" -p "$PG_PORT" 2>/dev/null || "$bin/pg_isready" -q -h "$HOST" -p "$PG_PORT"; do
    [ "$SECONDS" -lt "$deadline" ] || die "PostgreSQL not ready on $HOST:$PG_PORT"
    sleep 1
  done
  local psql="$bin/psql"
  [ -x "$psql" ] || psql="$(command -v psql)"
  if ! PGPASSFILE="$PGPASS_FILE" "$psql" -h "$HOST" -p "$PG_PORT" -U "$PG_ROLE" -d postgres -tAc \
      "SELECT 1 FROM pg_database WHERE datname = '$PG_DB'" | grep -q 1; then
    log "creating database $PG_DB"
    PGPASSFILE="$PGPASS_FILE" "$psql" -h "$HOST" -p "$PG_PORT" -U "$PG_ROLE" -d postgres -qc \
      "CREATE DATABASE \"$PG_DB\" OWNER \"$PG_ROLE\"" >/dev/null
  fi
}

# ------------------------------------------------------------------ MLflow
start_mlflow() {
  if pid_alive "$(cat "$MLFLOW_PID" 2>/dev/null)"; then
    log "MLflow server already running (pid $(cat "$MLFLOW_PID"))"
  else
    port_busy "$MLFLOW_PORT" && die "port $MLFLOW_PORT is in use (set CALORAY_MLFLOW_PORT)"
    log "starting MLflow server on $HOST:$MLFLOW_PORT (backend postgresql+psycopg2://$PG_ROLE@$HOST:$PG_PORT/$PG_DB)"
    # setsid: its own process group, so stop.sh ends the server and its worker processes together.
    env "$MLFLOW_MARKER" PGPASSFILE="$PGPASS_FILE" setsid "$VENV/bin/mlflow" server \
      --backend-store-uri "postgresql+psycopg2://$PG_ROLE@$HOST:$PG_PORT/$PG_DB" \
      --serve-artifacts --artifacts-destination "$ARTIFACTS" \
      --host "$HOST" --port "$MLFLOW_PORT" --workers "$MLFLOW_WORKERS" \
      >"$LOGS/mlflow.log" 2>&1 < /dev/null &
    echo $! > "$MLFLOW_PID"
  fi
  if ! "$PY" "$UTIL" wait-http "http://$HOST:$MLFLOW_PORT/health" "$TIMEOUT" OK "$(cat "$MLFLOW_PID")"; then
    tail -n 40 "$LOGS/mlflow.log" >&2 || true
    die "MLflow server not healthy on $HOST:$MLFLOW_PORT (log: $LOGS/mlflow.log)"
  fi
}

# ------------------------------------------------------------------ Ray
# Ports of one raylet: node manager, object manager, dashboard agent (HTTP, gRPC), runtime-env agent, metrics.
node_ports() {
  local p
  read -r -a p <<< "$("$PY" "$UTIL" free-ports 6)"
  printf -- '--node-manager-port=%s --object-manager-port=%s --dashboard-agent-listen-port=%s ' "${p[0]}" "${p[1]}" "${p[2]}"
  printf -- '--dashboard-agent-grpc-port=%s --runtime-env-agent-port=%s --metrics-export-port=%s' "${p[3]}" "${p[4]}" "${p[5]}"
}

start_head() {
  if [ -n "$(ray_pids)" ] && "$PY" "$UTIL" wait-dashboard "http://$HOST:$DASHBOARD_PORT" 5; then
    log "Ray head already running (dashboard $HOST:$DASHBOARD_PORT)"
    return
  fi
  for port in "$RAY_PORT" "$DASHBOARD_PORT" "$CLIENT_PORT"; do
    port_busy "$port" && die "port $port is in use (set CALORAY_RAY_PORT / CALORAY_RAY_DASHBOARD_PORT / CALORAY_RAY_CLIENT_PORT)"
  done
  make_ray_tmp
  log "starting Ray head: GCS $HOST:$RAY_PORT, dashboard $HOST:$DASHBOARD_PORT, $HEAD_CPUS CPU(s), temp dir $RAY_TMP"
  # shellcheck disable=SC2046
  if ! env "$RAY_MARKER" ray start --head --node-ip-address="$HOST" --port="$RAY_PORT" \
      --dashboard-host="$HOST" --dashboard-port="$DASHBOARD_PORT" --ray-client-server-port="$CLIENT_PORT" \
      $(node_ports) --min-worker-port="$WORKER_PORT_BASE" --max-worker-port="$((WORKER_PORT_BASE + 499))" \
      --num-cpus="$HEAD_CPUS" --num-gpus=0 --object-store-memory="$OBJECT_STORE_BYTES" \
      --temp-dir="$RAY_TMP" --disable-usage-stats --include-dashboard=true \
      >"$LOGS/ray-head.log" 2>&1; then
    tail -n 40 "$LOGS/ray-head.log" >&2 || true
    die "ray start --head failed (log: $LOGS/ray-head.log)"
  fi
  "$PY" "$UTIL" wait-dashboard "http://$HOST:$DASHBOARD_PORT" "$TIMEOUT" \
    || die "Ray dashboard not answering on $HOST:$DASHBOARD_PORT (logs: $RAY_TMP/session_latest/logs)"
  "$PY" "$UTIL" wait-nodes "http://$HOST:$DASHBOARD_PORT" 1 "$TIMEOUT" || die "Ray head node not alive"
}

start_worker() {
  local before
  [ -n "$RAY_TMP" ] || die "no Ray temp dir recorded in $STATE (start the head first)"
  before="$("$PY" "$UTIL" alive-nodes "http://$HOST:$DASHBOARD_PORT" 2>/dev/null || echo 1)"
  if [ "$before" -ge 2 ]; then
    log "Ray worker node already running ($before nodes alive)"
    return
  fi
  log "starting Ray worker node: $WORKER_CPUS CPU(s), joining $HOST:$RAY_PORT"
  # shellcheck disable=SC2046
  if ! env "$RAY_MARKER" ray start --address="$HOST:$RAY_PORT" --node-ip-address="$HOST" \
      $(node_ports) --min-worker-port="$((WORKER_PORT_BASE + 500))" --max-worker-port="$((WORKER_PORT_BASE + 999))" \
      --num-cpus="$WORKER_CPUS" --num-gpus=0 --object-store-memory="$OBJECT_STORE_BYTES" \
      --temp-dir="$RAY_TMP" --disable-usage-stats \
      >"$LOGS/ray-worker.log" 2>&1; then
    tail -n 40 "$LOGS/ray-worker.log" >&2 || true
    die "ray start (worker) failed (log: $LOGS/ray-worker.log)"
  fi
  "$PY" "$UTIL" wait-nodes "http://$HOST:$DASHBOARD_PORT" 2 "$TIMEOUT" || die "Ray worker node did not join"
}

write_env() {
  if [ -z "${MLFLOW_PORT_USED:-}" ] && [ -f "$CLUSTER_ENV" ] && pid_alive "$(cat "$MLFLOW_PID" 2>/dev/null)"; then
    # --ray-only on a cluster whose MLflow server (and database) keep running: keep their addresses.
    MLFLOW_PORT_USED="$(sed -n 's/^CALORAY_MLFLOW_PORT=//p' "$CLUSTER_ENV")"
    PG_PORT="$(sed -n 's/^CALORAY_PG_PORT=//p' "$CLUSTER_ENV")"
  fi
  {
    echo "# Written by deploy/local/start.sh: the running local cluster (read by status.sh and stop.sh)."
    echo "CALORAY_RAY_PORT=$RAY_PORT"
    echo "CALORAY_RAY_DASHBOARD_PORT=$DASHBOARD_PORT"
    echo "CALORAY_RAY_CLIENT_PORT=$CLIENT_PORT"
    echo "CALORAY_MLFLOW_PORT=${MLFLOW_PORT_USED:-}"
    echo "CALORAY_PG_PORT=${PG_PORT:-}"
  } > "$CLUSTER_ENV"
  {
    echo "# source this file to use the local cluster (deploy/local/start.sh)"
    echo "export RAY_ADDRESS=http://$HOST:$DASHBOARD_PORT"
    echo "export RAY_AUTH_MODE=token"
    echo "export RAY_AUTH_TOKEN_PATH=$RAY_TOKEN_FILE"
    if [ -n "${MLFLOW_PORT_USED:-}" ]; then echo "export MLFLOW_TRACKING_URI=http://$HOST:$MLFLOW_PORT_USED"; fi
  } > "$ENV_FILE"
}

# Fail before starting anything when a port this start needs is taken (parts already running keep theirs).
if [ "$WITH_DB" = 1 ] && ! pid_alive "$(cat "$MLFLOW_PID" 2>/dev/null)" && port_busy "$MLFLOW_PORT"; then
  die "port $MLFLOW_PORT is in use (set CALORAY_MLFLOW_PORT)"
fi
if [ "$WITH_HEAD" = 1 ] && [ -z "$(ray_pids)" ]; then
  for port in "$RAY_PORT" "$DASHBOARD_PORT" "$CLIENT_PORT"; do
    port_busy "$port" && die "port $port is in use (set CALORAY_RAY_PORT / CALORAY_RAY_DASHBOARD_PORT / CALORAY_RAY_CLIENT_PORT)"
  done
fi

MLFLOW_PORT_USED=""
if [ "$WITH_DB" = 1 ]; then
  start_postgres
  start_mlflow
  MLFLOW_PORT_USED="$MLFLOW_PORT"
fi
if [ "$WITH_HEAD" = 1 ]; then
  start_head
  write_env
fi
if [ "$WITH_WORKER" = 1 ]; then
  start_worker
fi

log "cluster is up (state $STATE); to use it: source $ENV_FILE, or export:"
grep '^export ' "$ENV_FILE"
log "Ray drivers on this machine: ray.init(address=\"$HOST:$RAY_PORT\") (with the RAY_AUTH_* variables above)"
