#!/usr/bin/env bash
# Checks the library (rsky-metrics-naming, -derive, -runtime) as its users meet it, beyond the
# workspace's own build and tests:
#
# 1. examples/consumer: a crate outside the workspace, as a user writes it (its own Cargo.lock,
#    `prometheus = "0.14"` with default features, so `protobuf` on): fmt, clippy, its tests, all
#    `--locked`, in target/consumer.
# 2. The three crates' tests with prometheus' `protobuf` feature on (the workspace builds
#    prometheus without it), in target/protobuf so the main build is not invalidated; the
#    trybuild UI tests aside (see with_protobuf).
# 3. Every feature of the three crates alone, without dev-dependencies (cargo-hack
#    `--each-feature --no-dev-deps`: features that only build because a dev-dependency or another
#    feature turned something on are caught). cargo-hack is installed from crates.io into
#    target/tools when missing. Features added later are covered: cargo-hack reads them.
# 4. Rustdoc of the three crates with `-D warnings` (broken or private links, bad code blocks).
# 5. `cargo package` of the three crates in publishing order (naming, derive, runtime; cargo
#    packages workspace crates with unpublished local dependencies together), each package built
#    from its own files, and each holding its README.md and LICENSE.
#
# Every step runs, so one run reports every failure; the exit status says whether any failed.
# test-all.sh runs this script; alone: `./scripts/check-library.sh`. Measured on the project's
# 2-core machine: 1.5 min once built; from a clean target/ about 10 min more (the consumer's
# build 2.5 min, the protobuf build 4 min, installing cargo-hack 3 min).
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n== %s\n' "$*"; }

target="$(realpath -m "${CARGO_TARGET_DIR:-target}")"
crates=(rsky-metrics-naming rsky-metrics-derive rsky-metrics-runtime)
packages=()
for crate in "${crates[@]}"; do packages+=(-p "$crate"); done

failed=()
step() {
    local name=$1
    shift
    log "$name"
    local start=$SECONDS
    if "$@"; then
        echo "-- $name: ok in $((SECONDS - start)) s"
    else
        echo "-- $name: FAILED after $((SECONDS - start)) s" >&2
        failed+=("$name")
    fi
}

consumer() (
    manifest=examples/consumer/Cargo.toml
    export CARGO_TARGET_DIR="$target/consumer"
    if ! cargo metadata --locked --format-version 1 --manifest-path "$manifest" >/dev/null; then
        echo "examples/consumer/Cargo.lock does not match the library's dependencies any more;" \
            "add what is missing with \`cargo check --manifest-path $manifest\` (without --locked)" \
            "and commit the lockfile" >&2
        return 1
    fi
    # The README's dependency block is what the consumer builds with: its tokio and prometheus
    # lines as they are (the runtime's own line differs only in its path).
    local line lines
    mapfile -t lines < <(sed -n '/^```toml$/,/^```$/p' rsky-metrics-runtime/README.md |
        grep -E '^(tokio|prometheus) = ')
    if [ ${#lines[@]} -ne 2 ]; then
        echo "rsky-metrics-runtime/README.md: no toml block with a tokio and a prometheus line" >&2
        return 1
    fi
    for line in "${lines[@]}"; do
        if ! grep -qxF -- "$line" "$manifest"; then
            echo "the runtime README's dependency line \`$line\` is not in $manifest:" \
                "the consumer crate no longer builds what the README tells users to write" >&2
            return 1
        fi
    done
    cargo fmt --manifest-path "$manifest" -- --check &&
        cargo clippy --locked --manifest-path "$manifest" --all-targets -- -D warnings &&
        cargo test --locked --manifest-path "$manifest"
)

# The trybuild UI tests are left out here: trybuild compiles its cases in a project of its own
# whose prometheus comes from the runtime's dev-dependencies (the workspace's, without
# `protobuf`), so they would repeat the main run's UI tests (7 minutes) and test nothing new.
with_protobuf() {
    CARGO_TARGET_DIR="$target/protobuf" cargo test "${packages[@]}" --features prometheus/protobuf \
        -- --exact --skip counted_ui --skip typed_labels_ui --skip naming_rules_are_compile_errors
}

# The checksums of every manifest and the lockfile.
manifest_sums() { git ls-files -z -- '*Cargo.toml' Cargo.lock | xargs -0 sha256sum; }

each_feature() {
    if ! command -v cargo-hack >/dev/null 2>&1; then
        log "installing cargo-hack from crates.io into $target/tools (missing)"
        cargo install --quiet --locked --root "$target/tools" cargo-hack || return 1
    fi
    local before status=0
    before=$(manifest_sums)
    cargo hack check --each-feature --no-dev-deps "${packages[@]}" || status=1
    # --no-dev-deps edits the manifests while it runs and puts them back; say so if it did not.
    if [ "$(manifest_sums)" != "$before" ]; then
        echo "cargo hack left a manifest or Cargo.lock changed: see git diff" >&2
        status=1
    fi
    return $status
}

rustdoc() {
    RUSTDOCFLAGS="-D warnings" cargo doc --no-deps "${packages[@]}"
}

package() {
    # --allow-dirty: this runs before a change is committed (test-all.sh); what is checked is
    # that the packages hold what they need and build from it, not the state of git.
    cargo package --allow-dirty "${packages[@]}" || return 1
    local crate files
    for crate in "${crates[@]}"; do
        files=$(cargo package --allow-dirty --list -p "$crate") || return 1
        for file in README.md LICENSE Cargo.toml; do
            if ! grep -qx "$file" <<<"$files"; then
                echo "the package of $crate does not hold $file" >&2
                return 1
            fi
        done
    done
}

export PATH="$target/tools/bin:$PATH"
step "consumer crate outside the workspace (--locked, prometheus with protobuf)" consumer
step "library tests with prometheus/protobuf" with_protobuf
step "every feature alone (cargo hack --each-feature --no-dev-deps check)" each_feature
step "rustdoc -D warnings" rustdoc
step "cargo package (naming, derive, runtime)" package

if [ ${#failed[@]} -gt 0 ]; then
    log "check-library FAILED: ${failed[*]}"
    exit 1
fi
log "check-library: every check passed"
