#!/usr/bin/env bash
# User namespaces (--userns-remap default), side by side in one run, both engines
# driven by the same docker CLI:
#   run --rm   `docker run --rm --network none busybox true`, paced, with and without
#              the remap (what the user namespace adds to a container's start)
#   load       `docker load` of a 64 MiB image of 1000 files into the remapped engine
#              (dockerd unpacks a remapped daemon's layers chowned to the host ids;
#              berthd unpacks them as they are and reads them through one idmapped
#              mount)
# berthd (release build) against Debian's dockerd (docker.io, overlay2, no bridge).
# Medians go to bench/results/userns.json and the "userns" section of BENCHMARKS.md.
#
#   bench/userns-bench.sh [-n RUNS] [--skip-docker] [--no-write]
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
repo=$PWD
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"

runs=20 do_docker=1 write=1
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
bench_work berth-userns
chmod 711 "$work"

echo "==> busybox rootfs and a 64 MiB image"
busybox_rootfs
mkdir -p "$work/ctx/tree"
for i in $(seq 1000); do head -c 65536 /dev/urandom >"$work/ctx/tree/f$i"; done
printf 'FROM busybox\nCOPY tree /data\n' >"$work/ctx/Dockerfile"
build_release

# measure NAME SOCKET REMAPPED(0|1): timings against the engine on SOCKET
measure() {
    local name=$1 sock=$2 remapped=$3 d
    d="env DOCKER_HOST=unix://$sock $docker_cli"
    $d import "$rootfs_tar" busybox >/dev/null
    $d run --rm --network none busybox true
    hyperfine --style basic --runs "$runs" --warmup 2 --prepare 'sleep 0.2' --export-json "$work/$name-run.json" \
        "$d run --rm --network none busybox true"
    if [ "$remapped" = 1 ]; then
        # the image is built once and saved; each load goes into an empty image store
        [ -f "$work/image.tar" ] || { $d build -q -t usbench "$work/ctx" >/dev/null && $d save usbench -o "$work/image.tar"; }
        hyperfine --style basic --runs 5 --warmup 1 --export-json "$work/$name-load.json" \
            --prepare "$d rmi -f usbench" "$d load -q -i $work/image.tar"
        # and the loaded image's files are the container root's
        $d run --rm --network none usbench sh -c 'test "$(stat -c %u /data/f1)" = 0 && test "$(id -u)" = 0'
    fi
}
med() { jq '.results[0].median * 1000 * 10 | round / 10' "$work/$1.json"; }

for remap in 0 1; do
    flags=()
    [ "$remap" = 1 ] && flags=(--userns-remap default)
    spawn_berthd "${flags[@]}"
    wait_ping "$bsock" 20
    echo "==> berthd ${flags[*]}"
    measure "berth-$remap" "$bsock" "$remap"
    stop_pid "$berthd_pid"; berthd_pid=
    remove_work "$work/berth"
    if [ "$do_docker" = 1 ]; then
        echo "==> dockerd ${flags[*]}"
        start_dockerd "$work" --ip-forward=false --userland-proxy=false "${flags[@]}"
        measure "docker-$remap" "$dsock" "$remap"
        stop_pid "$dockerd_pid"; dockerd_pid=
        remove_work "$work/docker"
    fi
done

row() { # label key
    local b d r
    b=$(med "berth-$2")
    if [ "$do_docker" = 1 ]; then d=$(med "docker-$2"); r=$(awk -v a="$b" -v c="$d" 'BEGIN {printf "%.3f", a / c}'); else d=n/a r=n/a; fi
    echo "| $1 | $b ms | $d ms | $r |"
}
table=$(printf '%s\n' "$(row 'run --rm, no remap' 0-run)" "$(row 'run --rm, --userns-remap default' 1-run)" \
    "$(row 'load a 64 MiB / 1000-file image, remapped' 1-load)")
echo "$table"
mkdir -p bench/results
jq -n --argjson b0 "$(med berth-0-run)" --argjson b1 "$(med berth-1-run)" --argjson bl "$(med berth-1-load)" \
    '{berthd_ms: {run: $b0, run_remapped: $b1, load_remapped: $bl}}' >bench/results/userns.json
if [ "$do_docker" = 1 ]; then
    jq --argjson d0 "$(med docker-0-run)" --argjson d1 "$(med docker-1-run)" --argjson dl "$(med docker-1-load)" \
        '. + {dockerd_ms: {run: $d0, run_remapped: $d1, load_remapped: $dl}}' bench/results/userns.json >"$work/userns.json"
    cp "$work/userns.json" bench/results/userns.json
fi
if [ "$write" = 1 ]; then
    write_section userns "<!-- bench:userns:start -->
## User namespaces (bench/userns-bench.sh, $(date -u +%Y-%m-%d))

The docker CLI against each engine; \`run --rm\` paced (0.2 s apart), medians of $runs
runs; loads medians of 5, each into an empty image store:

| operation | berthd | dockerd 20.10 | ratio |
|---|---|---|---|
$table
<!-- bench:userns:end -->"
fi
