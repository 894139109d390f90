#!/usr/bin/env bash
# Moving files, side by side in one run, both engines driven by the same docker CLI:
#   cp in     `docker cp DIR c:/dst` of a 1 GiB tree (10 000 files of ~105 KiB)
#   cp out    `docker cp c:/dst OUT` of the same tree
#   copy-up   `docker run --rm -v /data IMAGE true`: a fresh anonymous volume filled
#             from the image's 100 MiB /data, then removed with the container
#   stats     `docker stats --no-stream` of 50 running containers
# berthd (release build) against Debian's dockerd (docker.io, its default overlay2
# storage, no bridge). Medians (5 runs; 3 for the 1 GiB copies) go to
# bench/results/cp.json and the "cp" section of BENCHMARKS.md. (`stats --no-stream`
# needs two samples for a CPU rate: dockerd takes them on its collector's 1 s ticks,
# berthd 250 ms apart; the docker CLI then waits for its own 500 ms ticker, so the
# berth CLI's time is measured too.)
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

echo "==> busybox rootfs, a 1 GiB tree and a 100 MiB image"
busybox_rootfs
mkdir -p "$work/ctx/data"
for i in $(seq 100); do head -c 1048576 /dev/urandom >"$work/ctx/data/f$i"; done
printf 'FROM busybox\nCOPY data /data\n' >"$work/ctx/Dockerfile"
# 10 000 files in 100 directories, cut from one random GiB
mkdir -p "$work/tree"
head -c 1073741824 /dev/urandom >"$work/gib"
python3 - "$work/gib" "$work/tree" <<'PY'
import os, sys
src, dst = sys.argv[1], sys.argv[2]
size = (1 << 30) // 10000
with open(src, "rb") as f:
    for i in range(10000):
        d = os.path.join(dst, f"d{i // 100}")
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, f"f{i}"), "wb") as o:
            o.write(f.read(size))
PY
rm -f "$work/gib"
build_release

# measure NAME SOCKET: the four timings against the engine on SOCKET
measure() {
    local name=$1 sock=$2 d
    d="env DOCKER_HOST=unix://$sock $docker_cli"
    $d import "$rootfs_tar" busybox >/dev/null
    $d build -q -t cpbench "$work/ctx" >/dev/null 2>&1
    $d run -d --name cpc --network none cpbench sleep 3600 >/dev/null
    mkdir -p "$work/out-$name"
    hyperfine --style basic --runs 3 --warmup 1 --export-json "$work/$name-cp-in.json" \
        --prepare "$d exec cpc rm -rf /dst" "$d cp $work/tree cpc:/dst"
    hyperfine --style basic --runs 3 --warmup 1 --export-json "$work/$name-cp-out.json" \
        --prepare "rm -rf $work/out-$name/dst" "$d cp cpc:/dst $work/out-$name/dst"
    [ "$(find "$work/out-$name/dst" -type f | wc -l)" = 10000 ] || { echo "cp out of $name lost files" >&2; exit 1; }
    rm -rf "$work/out-$name"
    hyperfine --style basic --runs "$runs" --warmup 1 --export-json "$work/$name-copy-up.json" \
        "$d run --rm --network none -v /data cpbench true"
    $d rm -f cpc >/dev/null
    local names=()
    for i in $(seq 50); do
        $d run -d --name "st$i" --network none busybox sleep 3600 >/dev/null
        names+=("st$i")
    done
    hyperfine --style basic --runs "$runs" --warmup 1 --export-json "$work/$name-stats.json" \
        "$d stats --no-stream ${names[*]}"
    if [ "$name" = berth ]; then
        hyperfine --style basic --runs "$runs" --warmup 1 --export-json "$work/berthcli-stats.json" \
            "$rel/berth -H unix://$sock stats --no-stream ${names[*]}"
    fi
    $d rm -f "${names[@]}" >/dev/null
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
table=$(printf '%s\n' "$(row 'cp into a container (1 GiB, 10 000 files)' cp-in)" "$(row 'cp out of a container (1 GiB, 10 000 files)' cp-out)" \
    "$(row 'run --rm with a fresh volume filled from the image (100 MiB copy-up)' copy-up)" "$(row 'stats --no-stream of 50 containers' stats)" \
    "$(bs=$(med berthcli-stats); ds=$( [ "$do_docker" = 1 ] && med docker-stats || echo n/a); echo "| berth stats --no-stream of 50 containers (vs docker CLI → dockerd) | $bs ms | $ds ms | $( [ "$ds" = n/a ] && echo n/a || awk -v a="$bs" -v c="$ds" 'BEGIN {printf "%.2f", a / c}') |")")
echo "$table"
mkdir -p bench/results
jq -n --argjson bi "$(med berth-cp-in)" --argjson bo "$(med berth-cp-out)" --argjson bc "$(med berth-copy-up)" --argjson bs "$(med berth-stats)" \
    --argjson bcs "$(med berthcli-stats)" \
    '{berthd_ms: {cp_in: $bi, cp_out: $bo, copy_up: $bc, stats: $bs, stats_berth_cli: $bcs}}' >bench/results/cp.json
if [ "$do_docker" = 1 ]; then
    jq --argjson di "$(med docker-cp-in)" --argjson do "$(med docker-cp-out)" --argjson dc "$(med docker-copy-up)" --argjson ds "$(med docker-stats)" \
        '. + {dockerd_ms: {cp_in: $di, cp_out: $do, copy_up: $dc, stats: $ds}}' bench/results/cp.json >"$work/cp.json"
    cp "$work/cp.json" bench/results/cp.json
fi
if [ "$write" = 1 ]; then
    write_section cp "<!-- bench:cp:start -->
## Moving files (bench/cp-bench.sh, $(date -u +%Y-%m-%d))

The docker CLI against each engine, medians of 3 runs for the 1 GiB copies and $runs
for the rest:

| operation | berthd | dockerd 20.10 | ratio |
|---|---|---|---|
$table
<!-- bench:cp:end -->"
fi
