#!/usr/bin/env bash
# Build time against the number of metadata instructions: `--no-cache` builds of
# FROM busybox + N `ENV` lines + one RUN, for N in 500, 1000, 2000 (both engines) and
# 10000 (berth only: dockerd's classic builder takes minutes there), one build each,
#   berth -> berthd (release build)   vs   docker CLI (classic builder) -> dockerd,
# both daemons side by side. Seconds go to bench/results/env.json and the "env"
# section of BENCHMARKS.md.
#
#   bench/env-bench.sh [--no-write] [--max-docker N]
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
repo=$PWD
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"

write=1 max_docker=2000
while [ $# -gt 0 ]; do
    case $1 in
        --no-write) write=0 ;;
        --max-docker) max_docker=$2; shift ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done
require_tools jq curl dockerd
find_docker_cli
bench_work berth-env-bench

echo "==> busybox rootfs"
busybox_rootfs
build_release
spawn_berthd --bridge none
start_dockerd "$work" --ip-forward=false --userland-proxy=false
wait_ping "$bsock" 20 || { echo "berthd did not start" >&2; tail -n 20 "$work/berthd.log" >&2; exit 1; }
"$rel/berth" -H "unix://$bsock" import "$rootfs_tar" busybox:latest >/dev/null
DOCKER_HOST=unix://$dsock "$docker_cli" import "$rootfs_tar" busybox:latest >/dev/null

# seconds BUILD-COMMAND...: wall time of one build, or "n/a" if it failed.
seconds() {
    local t0 t1
    t0=$(date +%s%N)
    if "$@" >/dev/null 2>&1; then
        t1=$(date +%s%N)
        awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.2f", (b - a) / 1e9}'
    else
        echo "n/a"
    fi
}

rows="" json="{}"
for n in 500 1000 2000 10000; do
    ctx=$work/ctx$n
    mkdir -p "$ctx"
    { echo "FROM busybox"; for i in $(seq 1 "$n"); do echo "ENV V$i=value$i"; done; echo "RUN test \"\$V$n\" = value$n"; } >"$ctx/Dockerfile"
    echo "==> $n ENV lines: berth"
    b=$(seconds "$rel/berth" -H "unix://$bsock" build -q --no-cache --network none "$ctx")
    d="not run"
    if [ "$n" -le "$max_docker" ]; then
        echo "==> $n ENV lines: dockerd (classic)"
        d=$(seconds env DOCKER_BUILDKIT=0 DOCKER_HOST="unix://$dsock" DOCKER_CONFIG="$work/dockercfg" \
            "$docker_cli" build -q --no-cache --network none "$ctx")
    fi
    ratio=$(awk -v a="$b" -v b="$d" 'BEGIN {if (a + 0 > 0 && b + 0 > 0) printf "%.3f", a / b; else print "n/a"}')
    echo "    berth $b s, dockerd $d s, ratio $ratio"
    rows+="| $n | $b | $d | $ratio |"$'\n'
    json=$(jq --arg n "$n" --arg b "$b" --arg d "$d" '. + {($n): {berth: $b, dockerd: $d}}' <<<"$json")
done
echo "$json" >"$repo/bench/results/env.json"
dver=$(DOCKER_HOST=unix://$dsock "$docker_cli" version -f '{{.Server.Version}}' 2>/dev/null || echo "?")
section="<!-- bench:env:start -->
## Build time against Dockerfile length

\`build --no-cache\` of \`FROM busybox\` + N \`ENV\` lines + one \`RUN\`, one build each,
seconds, 2 CPUs, $(date -u +%Y-%m-%d). berth → berthd (release) against the docker CLI with
the classic builder → dockerd $dver, side by side. Produced by \`bench/env-bench.sh\`.
Target: linear in N, 10 000 metadata instructions ≤ 10 s (berth folds long runs of
ENV/LABEL/ARG/EXPOSE, see crates/builder/README.md).

| ENV lines | berth | dockerd classic | ratio |
|---|---|---|---|
${rows}<!-- bench:env:end -->"
echo "$section"
[ "$write" = 1 ] && write_section env "$section"
exit 0
