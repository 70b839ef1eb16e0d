#!/usr/bin/env bash
# Stop the local caloray cluster of deploy/local/start.sh: its Ray nodes (both), the MLflow server and
# PostgreSQL. Idempotent, and safe after a partial or failed start: whatever is not running is skipped.
# Data (database, artifacts, logs) stays in the state folder unless --purge is given.
#
#   deploy/local/stop.sh            # stop everything, keep the data
#   deploy/local/stop.sh --purge    # stop, then delete the state folder and the database
#
# Ray is stopped by process id, not with `ray stop`: `ray stop` ends every Ray process of this machine,
# including other clusters and test sessions' local Ray instances. This cluster's processes are the ones
# start.sh tagged (an environment variable every Ray process of its nodes inherits).
set -euo pipefail
# shellcheck source=deploy/local/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

PURGE=0
for arg in "$@"; do
  case "$arg" in
    --purge) PURGE=1 ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    *) die "unknown option $arg (see --help)" ;;
  esac
done
GRACE="${CALORAY_STOP_GRACE:-10}"

# TERM the given pids, wait up to GRACE seconds, then KILL the survivors.
terminate() {
  local what="$1"; shift
  [ "$#" -gt 0 ] || return 0
  log "stopping $what (pids $*)"
  kill -TERM "$@" 2>/dev/null || true
  local deadline=$((SECONDS + GRACE)) alive
  while :; do
    alive=()
    for pid in "$@"; do pid_alive "$pid" && alive+=("$pid"); done
    [ "${#alive[@]}" -gt 0 ] || return 0
    [ "$SECONDS" -lt "$deadline" ] || break
    sleep 0.5
  done
  log "killing $what survivors (pids ${alive[*]})"
  kill -KILL "${alive[@]}" 2>/dev/null || true
}

# 1. Ray: both nodes and everything they spawned (job drivers, workers, agents).
# shellcheck disable=SC2046
terminate "Ray nodes" $(ray_pids)

# 2. MLflow server: its process group (server + workers), then anything else carrying its tag.
if [ -f "$MLFLOW_PID" ]; then
  pid="$(cat "$MLFLOW_PID")"
  if pid_alive "$pid"; then
    log "stopping MLflow server (process group $pid)"
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  fi
  rm -f "$MLFLOW_PID"
fi
# shellcheck disable=SC2046
terminate "MLflow server" $(mlflow_pids)

# 3. PostgreSQL: a fast shutdown (rolls back open transactions, no recovery needed next start).
pgroot="$(pg_dir)"
if [ -n "$pgroot" ] && [ -f "$pgroot/data/postmaster.pid" ]; then
  if bin="$(find_pg_bin)"; then
    log "stopping PostgreSQL ($pgroot/data)"
    as_pg "$bin/pg_ctl" -D "$pgroot/data" -m fast -w -t 60 stop >/dev/null 2>&1 \
      || log "pg_ctl stop failed (already stopped?)"
  else
    log "PostgreSQL binaries not found; cannot stop the server of $pgroot/data"
  fi
fi

rm -f "$CLUSTER_ENV" "$ENV_FILE"
if [ "$PURGE" = 1 ]; then
  # Only ever delete a folder start.sh made (it holds the token or the database pointer it writes first).
  if [ -e "$STATE" ] && [ ! -e "$STATE/ray-auth-token" ] && [ ! -e "$STATE/pgdir" ]; then
    die "--purge: $STATE does not look like a local-cluster state folder; not deleting it"
  fi
  log "purging $STATE ${pgroot:+and $pgroot }${RAY_TMP:+and $RAY_TMP}"
  for dir in "$pgroot" "$RAY_TMP"; do
    if [ -n "$dir" ]; then rm -rf "$dir"; fi
  done
  rm -rf "$STATE"
fi
log "stopped"
