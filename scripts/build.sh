#!/usr/bin/env bash
# Builds berth's three programs: berthd and berth-shim as any cargo build does, and
# the `berth` CLI linked statically (glibc's libc.a, non-PIE). A CLI call is a new
# process every time, and a static executable skips the dynamic loader: no shared
# libraries to map and no symbols to bind at each start (BENCHMARKS.md, sixteenth
# pass; crates/cli/build.rs). Cargo has no per-package rustflags on stable, so the CLI
# is its own `cargo rustc`: the flags reach only its crate, and its dependencies are
# built as for any `cargo build -p berth` (the same artifacts where the features
# match the workspace build's). glibc's libc.a comes with libc6-dev, which
# build-essential brings (scripts/deps.sh).
#   scripts/build.sh [--release]
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"

profile=()
case "${1:-}" in
    --release) profile=(--release) ;;
    "") ;;
    *) echo "usage: scripts/build.sh [--release]" >&2; exit 2 ;;
esac
cargo build "${profile[@]}" --workspace --bins --exclude berth
cargo rustc "${profile[@]}" -p berth --bin berth -- -C target-feature=+crt-static -C relocation-model=static
