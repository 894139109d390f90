#!/usr/bin/env bash
# Moving files, side by side in one run:
#   cp in     `cp DIR c:/dst` of a 1 GiB tree (10 000 files of ~105 KiB)
#   cp out    `cp c:/dst OUT` of the same tree
#   copy-up   `docker run --rm -v /data IMAGE true`: a fresh anonymous volume filled
#             from the image's 100 MiB /data, then removed with the container
#   stats     `docker stats --no-stream` of 50 running containers
# berthd (release build) against Debian's dockerd (docker.io, its default overlay2
# storage, no bridge), both running at once. The 1 GiB copies alternate between the
# engines copy by copy (this VM's disk speed drifts with its writeback: each copy
# starts after a `sync`), with the docker CLI against both and berth's own CLI against
# berthd; medians of RUNS (default 5; 3 for the copies). Results go to
# bench/results/cp.json and the "cp" section of BENCHMARKS.md. (`stats --no-stream`
# needs two samples for a CPU rate: dockerd takes them on its collector's 1 s ticks,
# berthd 250 ms apart; the docker CLI then waits for its own 500 ms ticker, so the
# berth CLI's time is measured too.)
#
#   bench/cp-bench.sh [-n RUNS] [-c COPY_RUNS] [--skip-docker] [--no-write]
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
repo=$PWD
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"

runs=5 copy_runs=3 do_docker=1 write=1
while [ $# -gt 0 ]; do
    case $1 in
        -n) runs=$2; shift ;;
        -c) copy_runs=$2; shift ;;
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
# setup NAME SOCK: the images and the copy target container `cpc`.
setup() {
    local d="env DOCKER_HOST=unix://$2 $docker_cli"
    $d import "$rootfs_tar" busybox >/dev/null
    $d build -q -t cpbench "$work/ctx" >/dev/null 2>&1
    $d run -d --name cpc --network none cpbench sleep 3600 >/dev/null
}

# copy LABEL SOCK CLI...: one cp in and one cp out with CLI (the docker CLI or berth's),
# each after a sync; appends the milliseconds to $work/LABEL-cp-{in,out}.all. Every copy
# goes to a new destination and nothing is deleted until the end: ext4 makes creating
# files slow for ~30 s after files were deleted (its inode allocator skips recently
# deleted inodes, `recently_deleted` in the kernel, one buffer lookup each), and when
# each copy deleted the last one first that, not the engine, set the time (2.9, 5.0,
# 7.0 s for three identical berthd copies in a row; 1.0 s into a fresh filesystem).
copies=0
copy() {
    local label=$1 sock=$2 t0 t1
    shift 2
    copies=$((copies + 1))
    mkdir -p "$work/out"
    sync
    t0=$(date +%s%N)
    "$@" cp "$work/tree" "cpc:/dst$copies"
    t1=$(date +%s%N)
    echo $(((t1 - t0) / 1000000)) >>"$work/$label-cp-in.all"
    sync
    t0=$(date +%s%N)
    "$@" cp "cpc:/dst$copies" "$work/out/$copies"
    t1=$(date +%s%N)
    echo $(((t1 - t0) / 1000000)) >>"$work/$label-cp-out.all"
    [ "$(find "$work/out/$copies" -type f | wc -l)" = 10000 ] || { echo "cp out ($label) lost files" >&2; exit 1; }
}

# rest NAME SOCK: copy-up and stats, measured with hyperfine against one engine.
rest() {
    local name=$1 sock=$2 d
    d="env DOCKER_HOST=unix://$sock $docker_cli"
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
median() { sort -n "$work/$1.all" | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
med() { jq '.results[0].median * 1000 | round' "$work/$1.json"; }

spawn_berthd
wait_ping "$bsock" 20
setup berth "$bsock"
if [ "$do_docker" = 1 ]; then
    start_dockerd "$work" --ip-forward=false --userland-proxy=false
    setup docker "$dsock"
fi
echo "==> 1 GiB copies, alternating"
for i in $(seq "$copy_runs"); do
    copy berth "$bsock" env DOCKER_HOST="unix://$bsock" "$docker_cli"
    copy berthcli "$bsock" "$rel/berth" -H "unix://$bsock"
    [ "$do_docker" = 1 ] && copy docker "$dsock" env DOCKER_HOST="unix://$dsock" "$docker_cli"
done
echo "==> berthd"
rest berth "$bsock"
stop_pid "$berthd_pid"; berthd_pid=
if [ "$do_docker" = 1 ]; then
    echo "==> dockerd"
    rest docker "$dsock"
    stop_pid "$dockerd_pid"; dockerd_pid=
fi

# val KEY: the median of a measurement (alternated copies or hyperfine's).
val() { if [ -f "$work/$1.all" ]; then median "$1"; else med "$1"; fi; }
ratio() { if [ "$2" = n/a ]; then echo n/a; else awk -v a="$1" -v c="$2" 'BEGIN {printf "%.2f", a / c}'; fi; }
row() { # label berth-key docker-key
    local b d
    b=$(val "$2")
    d=n/a
    [ "$do_docker" = 1 ] && d=$(val "$3")
    echo "| $1 | $b ms | $d ms | $(ratio "$b" "$d") |"
}
table=$(printf '%s\n' \
    "$(row 'cp into a container (1 GiB, 10 000 files), docker CLI' berth-cp-in docker-cp-in)" \
    "$(row 'cp into a container, berth CLI (vs docker CLI → dockerd)' berthcli-cp-in docker-cp-in)" \
    "$(row 'cp out of a container (1 GiB, 10 000 files), docker CLI' berth-cp-out docker-cp-out)" \
    "$(row 'cp out of a container, berth CLI (vs docker CLI → dockerd)' berthcli-cp-out docker-cp-out)" \
    "$(row 'run --rm with a fresh volume filled from the image (100 MiB copy-up)' berth-copy-up docker-copy-up)" \
    "$(row 'stats --no-stream of 50 containers, docker CLI' berth-stats docker-stats)" \
    "$(row 'stats --no-stream of 50 containers, berth CLI (vs docker CLI → dockerd)' berthcli-stats docker-stats)")
echo "$table"
mkdir -p bench/results
jq -n --argjson bi "$(val berth-cp-in)" --argjson bo "$(val berth-cp-out)" --argjson bci "$(val berthcli-cp-in)" \
    --argjson bco "$(val berthcli-cp-out)" --argjson bc "$(val berth-copy-up)" --argjson bs "$(val berth-stats)" \
    --argjson bcs "$(val berthcli-stats)" \
    '{berthd_ms: {cp_in: $bi, cp_out: $bo, cp_in_berth_cli: $bci, cp_out_berth_cli: $bco, copy_up: $bc, stats: $bs, stats_berth_cli: $bcs}}' \
    >bench/results/cp.json
if [ "$do_docker" = 1 ]; then
    jq --argjson di "$(val docker-cp-in)" --argjson do "$(val docker-cp-out)" --argjson dc "$(val docker-copy-up)" --argjson ds "$(val docker-stats)" \
        '. + {dockerd_ms: {cp_in: $di, cp_out: $do, copy_up: $dc, stats: $ds}}' bench/results/cp.json >"$work/cp.json"
    cp "$work/cp.json" bench/results/cp.json
fi
if [ "$write" = 1 ]; then
    write_section cp "<!-- bench:cp:start -->
## Moving files (bench/cp-bench.sh, $(date -u +%Y-%m-%d))

Both engines running at once; the 1 GiB copies alternate between them copy by copy
(each after a \`sync\`), medians of $copy_runs; the rest medians of $runs. The docker CLI
against each engine, and berth's own CLI against berthd:

| operation | berthd | dockerd 20.10 | ratio |
|---|---|---|---|
$table
<!-- bench:cp:end -->"
fi
