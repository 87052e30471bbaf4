#!/usr/bin/env bash
# Run a command against a throw-away MLflow tracking server backed by PostgreSQL.
#
#   tools/pg_mlflow.sh COMMAND [ARGS...]
#   tools/pg_mlflow.sh .venv/bin/python -m pytest -q tests/test_registry_server.py
#
# Creates a temporary PostgreSQL cluster (initdb in a mktemp folder; as the `postgres` system user
# when run as root, since postgres refuses to run as root), starts it on a free loopback port
# (unix socket inside the temporary folder), creates a role and a database, starts
# `mlflow server --backend-store-uri postgresql://...` serving artifacts itself (clients need no
# shared disk), waits until it answers, then runs COMMAND with
#   BRAINLIKE_TEST_TRACKING_URI=http://127.0.0.1:<port>     the MLflow server
#   BRAINLIKE_TEST_PG_DSN=postgresql://...@127.0.0.1:<port>/mlflow   its backend database
# exported. MLflow and PostgreSQL are always stopped and the folder removed; the exit status is
# COMMAND's. Needs PostgreSQL's server binaries (Debian: `apt-get install -y postgresql`); set
# PG_BINDIR to choose them, PYTHON / MLFLOW to choose the interpreter and the mlflow command,
# MLFLOW_WORKERS for the server's worker processes (default 2).
#
# PG_MLFLOW_AUTH=1 starts the server with MLflow's authentication instead
# (`mlflow server --app-name basic-auth`, needs `mlflow[auth]`): users and permissions in a second
# database (`mlflow_auth`) of the same cluster, `default_permission = NO_PERMISSIONS`, an admin
# whose name and password are drawn at random for this run. The configuration file (mode 600, in
# the temporary folder) holds the users' database URI but no admin credential: the admin's name and
# password and the CSRF secret reach the server through its environment only, and no password is
# printed (MLflow's log names the admin user it creates). COMMAND then gets
#   BRAINLIKE_TEST_AUTH_TRACKING_URI=http://127.0.0.1:<port>       the authenticated server
#   BRAINLIKE_TEST_ADMIN_USERNAME / BRAINLIKE_TEST_ADMIN_PASSWORD  its admin (to create users)
#   BRAINLIKE_TEST_SERVER_LOG=<folder>/mlflow.log                   the server's log
#   BRAINLIKE_TEST_PG_DSN                                           as above
# and no BRAINLIKE_TEST_TRACKING_URI (the anonymous tests would only be refused).
set -euo pipefail

if [ "$#" -eq 0 ]; then
  sed -n '2,4p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
fi

repo=$(cd "$(dirname "$0")/.." && pwd)
t_start=$(date +%s.%N)
say() { printf 'pg_mlflow: %s\n' "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }
elapsed() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }

# --- tools -----------------------------------------------------------------------------------
py=${PYTHON:-}
if [ -z "$py" ]; then
  if [ -x "$repo/.venv/bin/python" ]; then py=$repo/.venv/bin/python; else py=$(command -v python3 || true); fi
fi
[ -n "$py" ] && [ -x "$py" ] || die "no Python interpreter (set PYTHON)"
mlflow=${MLFLOW:-$(dirname "$py")/mlflow}
[ -x "$mlflow" ] || mlflow=$(command -v mlflow || true)
[ -n "$mlflow" ] || die "no mlflow command next to $py nor on PATH (set MLFLOW)"

bindir=${PG_BINDIR:-}
if [ -z "$bindir" ] && command -v initdb >/dev/null 2>&1; then
  bindir=$(dirname "$(readlink -f "$(command -v initdb)")")
fi
if [ -z "$bindir" ]; then  # Debian keeps server binaries off PATH, one folder per major version
  bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
fi
for b in initdb pg_ctl postgres psql; do
  [ -n "$bindir" ] && [ -x "$bindir/$b" ] \
    || die "PostgreSQL's $b not found (PG_BINDIR=${bindir:-unset}); install it: apt-get install -y postgresql"
done

free_port() {
  "$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# --- the temporary folder and the user postgres runs as ---------------------------------------
tmp=$(mktemp -d "${TMPDIR:-/tmp}/brainlike-pg.XXXXXX")
chmod 755 "$tmp"  # the postgres user must reach its data folder inside
pg_user=""
if [ "$(id -u)" -eq 0 ]; then
  pg_user=${PG_OS_USER:-postgres}
  if ! id -u "$pg_user" >/dev/null 2>&1; then
    say "no '$pg_user' system user; running PostgreSQL as 'nobody'"
    pg_user=nobody
  fi
fi
as_pg() {  # run a PostgreSQL binary as pg_user (root only), from a folder that user can read
  if [ -z "$pg_user" ]; then
    (cd "$tmp" && "$@")
  elif command -v runuser >/dev/null 2>&1; then
    (cd "$tmp" && runuser -u "$pg_user" -- "$@")
  else
    (cd "$tmp" && su -s /bin/sh "$pg_user" -c "$(printf '%q ' "$@")")
  fi
}

mlflow_pid=""
pg_started=0
cleanup() {
  local rc=$? t0
  set +e
  t0=$(date +%s.%N)
  if [ -n "$mlflow_pid" ] && kill -0 "$mlflow_pid" 2>/dev/null; then
    kill -TERM -- "-$mlflow_pid" 2>/dev/null || kill -TERM "$mlflow_pid"
    for _ in $(seq 1 50); do kill -0 "$mlflow_pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL -- "-$mlflow_pid" 2>/dev/null
    wait "$mlflow_pid" 2>/dev/null
  fi
  if [ "$rc" -ne 0 ]; then
    [ -f "$tmp/mlflow.log" ] && { say "last lines of the MLflow server log (successful requests left out):"; grep -v 'HTTP/1.1" 2[0-9][0-9]' "$tmp/mlflow.log" | tail -n 40 >&2; }
    [ -f "$tmp/pg/postgres.log" ] && { say "last lines of the PostgreSQL log:"; tail -n 20 "$tmp/pg/postgres.log" >&2; }
  fi
  if [ "$pg_started" -eq 1 ]; then
    as_pg "$bindir/pg_ctl" -D "$tmp/pg/data" -m fast -w -t 60 stop >/dev/null \
      || say "pg_ctl stop failed; postgres may still be running from $tmp/pg/data"
  fi
  rm -rf "$tmp"
  say "stopped MLflow and PostgreSQL, removed $tmp ($(elapsed "$t0") s); exit $rc after $(elapsed "$t_start") s"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- PostgreSQL --------------------------------------------------------------------------------
mkdir -p "$tmp/pg" "$tmp/artifacts"
[ -z "$pg_user" ] || chown "$pg_user" "$tmp/pg"
as_pg "$bindir/initdb" -D "$tmp/pg/data" -U postgres -E UTF8 --no-locale --no-sync \
  --auth-local=trust --auth-host=scram-sha-256 >"$tmp/initdb.log" 2>&1 \
  || { cat "$tmp/initdb.log" >&2; die "initdb failed"; }
for attempt in 1 2 3; do  # a port picked free can be taken before postgres binds it
  pg_port=$(free_port)
  if as_pg "$bindir/pg_ctl" -D "$tmp/pg/data" -l "$tmp/pg/postgres.log" -w -t 60 \
       -o "-c listen_addresses=127.0.0.1 -c port=$pg_port -c unix_socket_directories=$tmp/pg -c fsync=off -c max_connections=200" \
       start >/dev/null; then
    pg_started=1
    break
  fi
  say "postgres did not start on port $pg_port (attempt $attempt)"
done
[ "$pg_started" -eq 1 ] || die "PostgreSQL did not start; see the log above"

pw=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
as_pg "$bindir/psql" -h "$tmp/pg" -p "$pg_port" -U postgres -d postgres -q -v ON_ERROR_STOP=1 \
  -c "CREATE ROLE brainlike LOGIN CREATEDB PASSWORD '$pw'" \
  -c "CREATE DATABASE mlflow OWNER brainlike" >/dev/null
auth=${PG_MLFLOW_AUTH:-0}
case "$auth" in 0|1) ;; *) die "PG_MLFLOW_AUTH must be 0 or 1 (got '$auth')";; esac
if [ "$auth" = 1 ]; then
  as_pg "$bindir/psql" -h "$tmp/pg" -p "$pg_port" -U postgres -d postgres -q -v ON_ERROR_STOP=1 \
    -c "CREATE DATABASE mlflow_auth OWNER brainlike" >/dev/null
fi
dsn="postgresql://brainlike:$pw@127.0.0.1:$pg_port/mlflow"  # libpq form (psql, psycopg2.connect)
# SQLAlchemy 2.1 maps a bare postgresql:// to psycopg 3; the project ships psycopg2.
backend="postgresql+psycopg2://brainlike:$pw@127.0.0.1:$pg_port/mlflow"
pg_version=$("$bindir/postgres" --version)

# --- MLflow server -------------------------------------------------------------------------------
# Own session (setsid): its workers are stopped as one process group.
mlflow_port=$(free_port)
uri="http://127.0.0.1:$mlflow_port"
server_args=(--backend-store-uri "$backend" --artifacts-destination "$tmp/artifacts"
             --host 127.0.0.1 --port "$mlflow_port" --workers "${MLFLOW_WORKERS:-2}")
if [ "$auth" = 1 ]; then
  "$py" -c 'import flask_wtf' 2>/dev/null \
    || die "PG_MLFLOW_AUTH=1 needs MLflow's auth extra next to $py: pip install 'mlflow[auth]'"
  # Secrets drawn for this run; only the server's environment and COMMAND's carry them (bash's
  # `export` in a subshell, so no command line ever shows them).
  admin_user="admin-$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')"
  admin_pw=$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')
  csrf_key=$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')
  mkdir -m 700 "$tmp/auth"
  # auth_cache_ttl_seconds: each worker checks a user's password hash (scrypt, seconds on a busy
  # machine) once a minute instead of on every request.
  (umask 077 && cat >"$tmp/auth/basic_auth.ini" <<INI
[mlflow]
default_permission = NO_PERMISSIONS
database_uri = postgresql+psycopg2://brainlike:$pw@127.0.0.1:$pg_port/mlflow_auth
authorization_function = mlflow.server.auth:authenticate_request_basic_auth
auth_cache_ttl_seconds = 60
INI
  )
  (
    export MLFLOW_AUTH_CONFIG_PATH="$tmp/auth/basic_auth.ini" MLFLOW_FLASK_SERVER_SECRET_KEY="$csrf_key" \
      MLFLOW_AUTH_ADMIN_USERNAME="$admin_user" MLFLOW_AUTH_ADMIN_PASSWORD="$admin_pw"
    exec setsid "$mlflow" server --app-name basic-auth "${server_args[@]}" >"$tmp/mlflow.log" 2>&1
  ) &
else
  setsid "$mlflow" server "${server_args[@]}" >"$tmp/mlflow.log" 2>&1 &
fi
mlflow_pid=$!
if ! "$py" - "$uri" "$mlflow_pid" <<'EOF'
import os, sys, time, urllib.request
uri, pid = sys.argv[1], int(sys.argv[2])
deadline = time.monotonic() + 180  # a fresh database is migrated to MLflow's schema first
while time.monotonic() < deadline:
    try:
        os.kill(pid, 0)
    except OSError:
        sys.exit("the MLflow server exited")
    try:
        with urllib.request.urlopen(uri + "/health", timeout=2) as r:
            if r.status == 200:
                sys.exit(0)
    except OSError:
        pass
    time.sleep(0.3)
sys.exit("the MLflow server did not answer /health within 180 s")
EOF
then
  die "MLflow server at $uri did not start"
fi

say "$pg_version; $("$mlflow" --version 2>/dev/null)"
say "MLflow tracking server $uri (backend postgresql+psycopg2://brainlike:***@127.0.0.1:$pg_port/mlflow," \
    "artifacts served from $tmp/artifacts); ready after $(elapsed "$t_start") s"
export BRAINLIKE_TEST_PG_DSN=$dsn
if [ "$auth" = 1 ]; then
  say "authentication on (--app-name basic-auth): users in postgresql+psycopg2://brainlike:***@127.0.0.1:$pg_port/mlflow_auth," \
      "default_permission NO_PERMISSIONS, a random admin (credentials passed to COMMAND, not shown)"
  export BRAINLIKE_TEST_AUTH_TRACKING_URI=$uri BRAINLIKE_TEST_SERVER_LOG=$tmp/mlflow.log \
    BRAINLIKE_TEST_ADMIN_USERNAME=$admin_user BRAINLIKE_TEST_ADMIN_PASSWORD=$admin_pw
else
  export BRAINLIKE_TEST_TRACKING_URI=$uri
fi

# --- the command -----------------------------------------------------------------------------------
t_cmd=$(date +%s.%N)
set +e
"$@"
rc=$?
set -e
say "command exited $rc after $(elapsed "$t_cmd") s"
exit "$rc"
