#!/usr/bin/env bash
# Moving files, side by side in one run, both engines driven by the same docker CLI:
#   cp in     `docker cp DIR c:/dst` of a 64 MiB tree (1000 files of 64 KiB)
#   cp out    `docker cp c:/src OUT` of the same tree
#   copy-up   `docker run --rm -v /data IMAGE true`: a fresh anonymous volume filled
#             from the image's 64 MiB /data, then removed with the container
#   stats     `docker stats --no-stream c` of one running container
# berthd (release build) against Debian's dockerd (docker.io, its default overlay2
# storage, no bridge). Medians of 5 runs go to bench/results/cp.json and the "cp"
# section of BENCHMARKS.md. (`stats --no-stream` waits for a CPU sample a second apart
# on both engines: its time is mostly that second.)
#
#   bench/cp-bench.sh [-n RUNS] [--skip-docker] [--no-write]
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
repo=$PWD
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"

runs=5 do_docker=1 write=1
while [ $# -gt 0 ]; do
    case $1 in
        -n) runs=$2; shift ;;
        --skip-docker) do_docker=0 ;;
        --no-write) write=0 ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done
require_tools hyperfine jq curl dockerd
find_docker_cli
bench_work berth-cp

echo "==> busybox rootfs and a 64 MiB tree"
rootfs_tar=$work/busybox.tar
scripts/mkrootfs-busybox.sh "$rootfs_tar"
mkdir -p "$work/ctx/tree"
for i in $(seq 1000); do head -c 65536 /dev/urandom >"$work/ctx/tree/f$i"; done
printf 'FROM busybox\nCOPY tree /data\n' >"$work/ctx/Dockerfile"
echo "==> cargo build --release"
cargo build --release --bins
rel=$repo/target/release

# measure NAME SOCKET: the four timings against the engine on SOCKET
measure() {
    local name=$1 sock=$2 d
    d="env DOCKER_HOST=unix://$sock $docker_cli"
    $d import "$rootfs_tar" busybox >/dev/null
    $d build -q -t cpbench "$work/ctx" >/dev/null 2>&1
    $d run -d --name cpc --network none cpbench sleep 3600 >/dev/null
    mkdir -p "$work/out-$name"
    hyperfine --style basic --runs "$runs" --warmup 1 --export-json "$work/$name-cp-in.json" \
        --prepare "$d exec cpc rm -rf /dst" "$d cp $work/ctx/tree cpc:/dst"
    hyperfine --style basic --runs "$runs" --warmup 1 --export-json "$work/$name-cp-out.json" \
        --prepare "rm -rf $work/out-$name/data" "$d cp cpc:/data $work/out-$name/data"
    hyperfine --style basic --runs "$runs" --warmup 1 --export-json "$work/$name-copy-up.json" \
        "$d run --rm --network none -v /data cpbench true"
    hyperfine --style basic --runs "$runs" --warmup 1 --export-json "$work/$name-stats.json" \
        "$d stats --no-stream cpc"
    $d rm -f cpc >/dev/null
}
med() { jq '.results[0].median * 1000 | round' "$work/$1.json"; }

spawn_berthd
wait_ping "$bsock" 20
echo "==> berthd"
measure berth "$bsock"
stop_pid "$berthd_pid"; berthd_pid=

if [ "$do_docker" = 1 ]; then
    echo "==> dockerd"
    start_dockerd "$work" --ip-forward=false --userland-proxy=false
    measure docker "$dsock"
    stop_pid "$dockerd_pid"; dockerd_pid=
fi

row() { # label key
    local b d r
    b=$(med "berth-$2")
    if [ "$do_docker" = 1 ]; then d=$(med "docker-$2"); r=$(awk -v a="$b" -v c="$d" 'BEGIN {printf "%.2f", a / c}'); else d=n/a r=n/a; fi
    echo "| $1 | $b ms | $d ms | $r |"
}
table=$(printf '%s\n' "$(row 'cp into a container (64 MiB, 1000 files)' cp-in)" "$(row 'cp out of a container (64 MiB)' cp-out)" \
    "$(row 'run --rm with a fresh volume filled from the image (64 MiB copy-up)' copy-up)" "$(row 'stats --no-stream' stats)")
echo "$table"
mkdir -p bench/results
jq -n --argjson bi "$(med berth-cp-in)" --argjson bo "$(med berth-cp-out)" --argjson bc "$(med berth-copy-up)" --argjson bs "$(med berth-stats)" \
    '{berthd_ms: {cp_in: $bi, cp_out: $bo, copy_up: $bc, stats: $bs}}' >bench/results/cp.json
if [ "$do_docker" = 1 ]; then
    jq --argjson di "$(med docker-cp-in)" --argjson do "$(med docker-cp-out)" --argjson dc "$(med docker-copy-up)" --argjson ds "$(med docker-stats)" \
        '. + {dockerd_ms: {cp_in: $di, cp_out: $do, copy_up: $dc, stats: $ds}}' bench/results/cp.json >"$work/cp.json"
    cp "$work/cp.json" bench/results/cp.json
fi
if [ "$write" = 1 ]; then
    write_section cp "<!-- bench:cp:start -->
## Moving files (bench/cp-bench.sh, $(date -u +%Y-%m-%d))

The docker CLI against each engine, medians of $runs runs:

| operation | berthd | dockerd 20.10 | ratio |
|---|---|---|---|
$table
<!-- bench:cp:end -->"
fi
