# Shared settings of deploy/local/{start,stop,status}.sh (sourced, not run). See deploy/local/README.md.
#
# Every setting is an environment variable with a default; the state folder holds everything the cluster
# writes (database, artifacts, logs, pid files, the generated database password) plus cluster.env, the
# addresses of the running cluster, which stop.sh and status.sh read.

LOCAL_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$LOCAL_DIR/../.." && pwd)"
VENV="${CALORAY_VENV:-$REPO/.venv}"
if [ -x "$VENV/bin/python" ]; then PY="$VENV/bin/python"; else PY="$(command -v python3)"; fi
UTIL="$LOCAL_DIR/cluster_util.py"

STATE="$(realpath -m "${CALORAY_CLUSTER_STATE:-$REPO/outputs/local-cluster}")"
LOGS="$STATE/logs"
CLUSTER_ENV="$STATE/cluster.env"
ENV_FILE="$STATE/env.sh"
RAY_TOKEN_FILE="$STATE/ray-auth-token"
MLFLOW_PID="$STATE/mlflow.pid"
PASSWORD_FILE="$STATE/postgres.password"
PGPASS_FILE="$STATE/pgpass"
ARTIFACTS="$STATE/artifacts"
PG_DB="${CALORAY_PG_DB:-mlflow}"
PG_ROLE="${CALORAY_PG_ROLE:-mlflow}"
# Unique per state folder (tags this cluster's processes, see RAY_MARKER below).
STATE_ID="$(printf '%s' "$STATE" | cksum | cut -d' ' -f1)"
# Ray's temp dir: short (Unix socket paths are limited to 107 bytes) and apart from /tmp/ray, so that this
# cluster never becomes the one a plain `ray.init()` auto-connects to. start.sh makes it with `mktemp -d`
# (fresh, 0700, unguessable name) and records it here; empty until then.
RAY_TMP_RECORD="$STATE/raytmp"
RAY_TMP="$(cat "$RAY_TMP_RECORD" 2>/dev/null || true)"

log() { printf '[local-cluster] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# PostgreSQL binaries: PATH, CALORAY_PG_BIN, or Debian's /usr/lib/postgresql/<version>/bin (not on PATH).
find_pg_bin() {
  if [ -n "${CALORAY_PG_BIN:-}" ]; then printf '%s\n' "$CALORAY_PG_BIN"; return 0; fi
  local initdb
  if initdb="$(command -v initdb 2>/dev/null)"; then dirname "$(readlink -f "$initdb")"; return 0; fi
  local dir
  dir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
  if [ -n "$dir" ] && [ -x "$dir/initdb" ]; then printf '%s\n' "$dir"; return 0; fi
  return 1
}

# PostgreSQL refuses to run as root: as root, its commands run as CALORAY_PG_OS_USER (default postgres).
PG_OS_USER="${CALORAY_PG_OS_USER:-postgres}"
as_pg() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u "$PG_OS_USER" -- "$@"
  else
    "$@"
  fi
}

# Where the database lives: STATE/postgres, unless (as root) the PostgreSQL user cannot reach STATE (e.g.
# a state folder under a 0700 directory); then a folder of its own that start.sh makes under TMPDIR with
# `mktemp -d`. Whichever is used is recorded in STATE/pgdir. Prints nothing while there is none yet.
pg_dir() {
  if [ -n "${CALORAY_PG_DIR:-}" ]; then printf '%s\n' "$CALORAY_PG_DIR"; return; fi
  if [ -f "$STATE/pgdir" ]; then cat "$STATE/pgdir"; return; fi
  if [ "$(id -u)" -ne 0 ] || runuser -u "$PG_OS_USER" -- test -x "$STATE" 2>/dev/null; then
    printf '%s\n' "$STATE/postgres"
  fi
}

# usable_tmp DIR UID...: a temp folder recorded by an earlier start is reused (status 0) only while it is a
# real directory (no symlink) owned by one of the UIDs; a missing one (status 1) is made anew by the caller;
# anything else at that path is refused.
usable_tmp() {
  local dir="$1"; shift
  [ -n "$dir" ] && { [ -e "$dir" ] || [ -L "$dir" ]; } || return 1
  if [ ! -L "$dir" ] && [ -d "$dir" ]; then
    local owner uid
    owner="$(stat -c %u "$dir")"
    for uid in "$@"; do [ "$owner" = "$uid" ] && return 0; done
  fi
  die "$dir is not a directory owned by uid $* (or is a symlink): refusing to use it"
}

# Every process of this cluster's Ray nodes carries this variable (set by start.sh, inherited by whatever
# the nodes spawn: agents, workers, job drivers); stop.sh ends exactly those processes.
RAY_MARKER="CALORAY_LOCAL_RAY=$STATE_ID"
MLFLOW_MARKER="CALORAY_LOCAL_MLFLOW=$STATE_ID"
ray_pids() { "$PY" "$UTIL" pids "$RAY_MARKER"; }
mlflow_pids() { "$PY" "$UTIL" pids "$MLFLOW_MARKER"; }

pid_alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }

# Ray's temp dir: the one recorded by an earlier start of this cluster (still ours), else a new one —
# `mktemp -d` under TMPDIR, or CALORAY_RAY_TMPDIR, which must not exist yet (an existing folder is refused).
make_ray_tmp() {
  if usable_tmp "$RAY_TMP" "$(id -u)"; then return; fi
  if [ -n "${CALORAY_RAY_TMPDIR:-}" ]; then
    [ ! -e "$CALORAY_RAY_TMPDIR" ] && [ ! -L "$CALORAY_RAY_TMPDIR" ] \
      || die "CALORAY_RAY_TMPDIR=$CALORAY_RAY_TMPDIR exists: refusing a folder this cluster did not create"
    mkdir -m 700 "$CALORAY_RAY_TMPDIR" || die "cannot create CALORAY_RAY_TMPDIR=$CALORAY_RAY_TMPDIR"
    RAY_TMP="$CALORAY_RAY_TMPDIR"
  else
    RAY_TMP="$(mktemp -d "${TMPDIR:-/tmp}/caloray-ray-XXXXXXXX")"
  fi
  printf '%s\n' "$RAY_TMP" > "$RAY_TMP_RECORD"
}
