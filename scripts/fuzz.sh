#!/usr/bin/env bash
# Run every cargo-fuzz target (fuzz/) for SECONDS_PER_TARGET seconds each (default 60),
# one after another: seed the corpora (fuzz/seed.sh), build all targets once (nightly,
# AddressSanitizer, debug assertions), then run each with libFuzzer's
# -max_total_time, -rss_limit_mb=2048, -timeout=10 in one process.
# Prints executions and coverage per target; exits non-zero if any target found a crash,
# a panic, a timeout or an out-of-memory (the input is left in fuzz/artifacts/<target>/).
# Not part of scripts/test.sh (too slow); see FUZZING.md.
#
# Usage: scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
set -euo pipefail

secs="${1:-60}"
shift || true
repo="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo/fuzz"

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz.sh: cargo-fuzz is missing: cargo install cargo-fuzz" >&2
    exit 2
fi
toolchain=()
if ! rustc --version | grep -q nightly; then
    toolchain=(+nightly)
fi

./seed.sh
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    mapfile -t targets < <(cargo "${toolchain[@]}" fuzz list)
fi
cargo "${toolchain[@]}" fuzz build -a

mkdir -p logs
failed=()
summary=()
for t in "${targets[@]}"; do
    echo "=== $t: ${secs}s"
    log="logs/$t.log"
    rc=0
    cargo "${toolchain[@]}" fuzz run -a "$t" -- \
        -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
        >"$log" 2>&1 || rc=$?
    execs="$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | tail -1 | awk '{print $2}')"
    status="$(grep -E '^#[0-9]+' "$log" | tail -1 || true)"
    cov="$(grep -o 'cov: [0-9]*' <<<"$status" | awk '{print $2}')"
    ft="$(grep -o 'ft: [0-9]*' <<<"$status" | awk '{print $2}')"
    corp="$(grep -o 'corp: [0-9]*' <<<"$status" | awk '{print $2}')"
    if [ "$rc" -ne 0 ]; then
        failed+=("$t")
        result="FAILED (exit $rc; see fuzz/$log and fuzz/artifacts/$t/)"
        grep -E 'panicked at|ERROR: libFuzzer|SUMMARY: |Test unit written to' "$log" | head -5 || true
    else
        result="ok"
    fi
    line="$(printf '%-18s %6ss  execs %-10s cov %-6s ft %-7s corpus %-6s %s' \
        "$t" "$secs" "${execs:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}" "$result")"
    echo "$line"
    summary+=("$line")
done

echo
echo "=== summary"
printf '%s\n' "${summary[@]}"
if [ ${#failed[@]} -ne 0 ]; then
    echo "fuzz.sh: findings in: ${failed[*]}" >&2
    exit 1
fi
