#!/usr/bin/env bash
# Quick start, step 2, and the CI entry point: the whole test suite
# (unit tests of every crate plus the end-to-end tests in tests/e2e).
#   scripts/test.sh [extra cargo test args]
# BERTH_SKIP_DEPS=1 skips the apt-get step.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"

if [ -z "${BERTH_SKIP_DEPS:-}" ]; then
    if [ "$(id -u)" -eq 0 ] || command -v sudo >/dev/null; then
        berth_install_deps
        berth_install_py_deps
    else
        echo "warning: not root; skipping package installation" >&2
    fi
fi

echo "==> scripts/build.sh"
scripts/build.sh

log=$(mktemp /tmp/berth-test.XXXXXX.log)
trap 'rm -f "$log"' EXIT
echo "==> cargo test --workspace"
set +e
cargo test --workspace --no-fail-fast "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e

echo
echo "==> Dockerfile parser conformance (shared/conformance/dockerfile/run-parser.sh)"
conf=${BERTH_CONFORMANCE_DIR:-$PWD/../shared/conformance}
if [ -x "$conf/dockerfile/run-parser.sh" ] || [ -f "$conf/dockerfile/run-parser.sh" ]; then
    parser_out=$(bash "$conf/dockerfile/run-parser.sh" "$PWD/target/debug/berth debug parse-dockerfile" 2>&1)
    echo "$parser_out"
    grep -q ' 0 failed' <<<"$(tail -n 1 <<<"$parser_out")" || status=1
else
    echo "conformance data not found at $conf" >&2
    status=1
fi

echo
echo "==> summary"
# "Running <binary>" followed by its "test result:" line
awk '/^ *Running /{n=split($NF,a,"/"); b=a[n]; sub(/-[0-9a-f]+\)$/,"",b); bin=b " (" $2 ")"} /^ *Doc-tests /{bin="doc-tests " $2}
     /^test result:/{printf "%-60s %s\n", bin, $0}' "$log"
results=$(grep -E '^test result:' "$log" || true)
passed=$(grep -Eo '[0-9]+ passed' <<<"$results" | awk '{s+=$1} END {print s+0}')
failed=$(grep -Eo '[0-9]+ failed' <<<"$results" | awk '{s+=$1} END {print s+0}')
echo "total: $passed passed, $failed failed"
exit "$status"
