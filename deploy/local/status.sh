#!/usr/bin/env bash
# Status of the local caloray cluster of deploy/local/start.sh: PostgreSQL, MLflow server, Ray nodes.
# Exit code 0 when every part is up, 1 otherwise.
#
#   deploy/local/status.sh
set -euo pipefail
# shellcheck source=deploy/local/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

HOST=127.0.0.1
if [ ! -f "$CLUSTER_ENV" ]; then
  echo "no local cluster running from $STATE (start it with deploy/local/start.sh)"
  exit 1
fi
# shellcheck disable=SC1090
source "$CLUSTER_ENV"
# shellcheck disable=SC1090
source "$ENV_FILE"
ok=0
echo "state:      $STATE"

if [ -n "${CALORAY_PG_PORT:-}" ]; then
  bin="$(find_pg_bin || true)"
  if { [ -n "$bin" ] && "$bin/pg_isready" -q -h "$HOST" -p "$CALORAY_PG_PORT"; } \
      || pg_isready -q -h "$HOST" -p "$CALORAY_PG_PORT" 2>/dev/null; then
    echo "postgres:   up    $HOST:$CALORAY_PG_PORT (database $PG_DB, data $(pg_dir)/data)"
  else
    echo "postgres:   DOWN  $HOST:$CALORAY_PG_PORT"; ok=1
  fi
fi

if [ -n "${CALORAY_MLFLOW_PORT:-}" ]; then
  if "$PY" "$UTIL" wait-http "http://$HOST:$CALORAY_MLFLOW_PORT/health" 0 OK; then
    echo "mlflow:     up    $MLFLOW_TRACKING_URI (pid $(cat "$MLFLOW_PID" 2>/dev/null || echo ?), artifacts $ARTIFACTS)"
  else
    echo "mlflow:     DOWN  http://$HOST:$CALORAY_MLFLOW_PORT"; ok=1
  fi
fi

dashboard="http://$HOST:$CALORAY_RAY_DASHBOARD_PORT"
if nodes="$("$PY" "$UTIL" alive-nodes "$dashboard" 2>/dev/null)"; then
  echo "ray:        up    $nodes node(s) alive, GCS $HOST:$CALORAY_RAY_PORT, dashboard/Job API $dashboard"
  [ "$nodes" -ge 1 ] || ok=1
else
  echo "ray:        DOWN  dashboard $dashboard"; ok=1
fi
echo
grep '^export ' "$ENV_FILE"
exit "$ok"
