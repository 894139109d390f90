#!/usr/bin/env bash
# Many containers on one host, side by side with dockerd in one run:
#   1. 100 x `run -d --network none busybox sleep 600`, then one `rm -f` of all 100:
#      berth CLI -> berthd, docker CLI -> berthd, docker CLI -> dockerd (docker.io).
#   2. berthd holding 10, 100 and 500 running containers: `ps` (median of 30),
#      `run --rm --network none busybox true` (median of 30, paced), berthd's RSS and
#      per container the shims' PSS (pages shared by all shims, their binary's, count
#      once) plus berthd's RSS, above the same taken with none running (after the
#      empty host's runs: zygote, standby shim, berthd's code paged in); idle berthd
#      RSS before any container. Plotted to
#      bench/results/scale.svg (drawn here, no plotting package needed).
#      And the docker CLI alone: 100 x `run -d` against bench/instant-engine.py, an
#      engine that answers at once, the floor under any engine.
#   3. Listings at scale: `images` with 5000 images and `ps -a` with 500 containers
#      (berthd; the 5000 images are 5000 tags-less imports of a one-file tar).
# Medians go to bench/results/scale.json and the "scale" section of BENCHMARKS.md.
#
#   bench/scale-bench.sh [--max N (default 500)] [--images N (default 5000)] [--skip-docker] [--no-write]
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
repo=$PWD
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"

max=500 nimages=5000 do_docker=1 write=1
while [ $# -gt 0 ]; do
    case $1 in
        --max) max=$2; shift ;;
        --images) nimages=$2; shift ;;
        --skip-docker) do_docker=0 ;;
        --no-write) write=0 ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done
require_tools hyperfine jq curl dockerd python3
find_docker_cli
bench_work berth-scale

echo "==> busybox rootfs"
busybox_rootfs
build_release
bsock=$work/berth.sock
B="$rel/berth -H unix://$bsock"
DB="env DOCKER_HOST=unix://$bsock $docker_cli"

now_ms() { date +%s%3N; }
rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
# PSS: each page shared by n processes counts 1/n (the shims share one binary's pages)
pss_kib() { awk '/^Pss:/ {print $2}' "/proc/$1/smaps_rollup" 2>/dev/null || echo 0; }
# median_ms COMMAND...: median wall time of 30 runs, 0.1 s apart, in ms (10 runs let one
# quiet or busy second of the host move a median by 20 %)
median_ms() {
    hyperfine --style none --warmup 2 --runs 30 --prepare "sleep 0.1" --export-json "$work/m.json" "$*" >/dev/null
    jq '.results[0].median * 1000 | . * 10 | round / 10' "$work/m.json"
}
# many ENGINE_CLI N: time N `run -d` then one `rm -f` of them all; prints "run_s rm_s"
many() {
    local cli=$1 n=$2 t0 t1 t2
    t0=$(now_ms)
    for i in $(seq "$n"); do $cli run -d --network none --name "many$i" busybox sleep 600 >/dev/null; done
    t1=$(now_ms)
    # shellcheck disable=SC2046
    $cli rm -f $(seq -f 'many%g' "$n") >/dev/null
    t2=$(now_ms)
    echo "$(( t1 - t0 )) $(( t2 - t1 ))"
}

spawn_berthd
wait_ping "$bsock" 20
sleep 1
idle_rss=$(rss_kib "$berthd_pid")
$B import "$rootfs_tar" busybox >/dev/null
$B run --rm --network none busybox true

echo "==> 1. 100 x run -d, rm -f"
read -r berth_run_ms berth_rm_ms < <(many "$B" 100)
read -r dcli_run_ms dcli_rm_ms < <(many "$DB" 100)
echo "berth CLI: run -d x100 ${berth_run_ms} ms, rm -f ${berth_rm_ms} ms; docker CLI: ${dcli_run_ms} / ${dcli_rm_ms} ms"

# The docker CLI alone: the same 100 x run -d against an engine that answers each
# request at once and does nothing (bench/instant-engine.py), the floor under any engine.
echo "==> docker CLI alone: 100 x run -d against an engine that does nothing"
isock=$work/instant.sock
python3 bench/instant-engine.py "$isock" &
instant_pid=$!
for _ in $(seq 50); do [ -S "$isock" ] && break; sleep 0.1; done
IDB="env DOCKER_HOST=unix://$isock $docker_cli"
$IDB run -d --network none busybox true >/dev/null
t0=$(now_ms)
for i in $(seq 100); do $IDB run -d --network none --name "many$i" busybox sleep 600 >/dev/null; done
floor_run_ms=$(( $(now_ms) - t0 ))
kill "$instant_pid"; wait "$instant_pid" 2>/dev/null || true
echo "docker CLI -> instant engine: run -d x100 ${floor_run_ms} ms"

echo "==> 2. berthd with 10, 100, $max running containers"
points=()
empty_run=$(median_ms "$B run --rm --network none busybox true")
# What the host holds for berth with no container running, once berthd has run some
# (its code paged in, its pools, the shim zygote and the standby shim): each point's
# per-container figure is what it holds above this, divided by the containers.
shims_pss() {
    local t=0 p
    for p in $(pgrep -f "berth-shim" || true); do t=$((t + $(pss_kib "$p"))); done
    echo "$t"
}
sleep 2
base_kib=$(( $(rss_kib "$berthd_pid") + $(shims_pss) ))
have=0
for n in 10 100 "$max"; do
    while [ "$have" -lt "$n" ]; do
        have=$((have + 1))
        $B run -d --network none --name "held$have" busybox sleep 3600 >/dev/null
    done
    sleep 2
    ps_ms=$(median_ms "$B ps")
    run_ms=$(median_ms "$B run --rm --network none busybox true")
    d_rss=$(rss_kib "$berthd_pid")
    shims=$(shims_pss)
    per=$(( (shims + d_rss - base_kib) / n ))
    echo "$n containers: ps ${ps_ms} ms, run --rm ${run_ms} ms (empty host ${empty_run}), berthd ${d_rss} KiB RSS, shims ${shims} KiB PSS, ${per} KiB per container"
    points+=("{\"n\":$n,\"ps_ms\":$ps_ms,\"run_ms\":$run_ms,\"berthd_kib\":$d_rss,\"shims_kib\":$shims,\"per_container_kib\":$per}")
done
ps_a_ms=$(median_ms "$B ps -a")
echo "==> removing the held containers"
# shellcheck disable=SC2046
$B rm -f $(seq -f 'held%g' "$have") >/dev/null

echo "==> 3. images with $nimages images"
mkdir -p "$work/one"
echo x >"$work/one/f"
for i in $(seq "$nimages"); do
    echo "$i" >"$work/one/f"
    tar -C "$work/one" -cf "$work/one.tar" f
    curl -sf --unix-socket "$bsock" -X POST -H 'Content-Type: application/x-tar' \
        --data-binary @"$work/one.tar" "http://x/v1.41/images/create?fromSrc=-" >/dev/null
done
images_ms=$(median_ms "$B images -a")
count=$($B images -aq | wc -l)
echo "images -a (${count} images): ${images_ms} ms"
stop_pid "$berthd_pid"; berthd_pid=

docker_run_ms=null docker_rm_ms=null
if [ "$do_docker" = 1 ]; then
    echo "==> dockerd: 100 x run -d, rm -f"
    start_dockerd "$work" --ip-forward=false --userland-proxy=false
    D="env DOCKER_HOST=unix://$dsock $docker_cli"
    $D import "$rootfs_tar" busybox >/dev/null
    $D run --rm --network none busybox true
    read -r docker_run_ms docker_rm_ms < <(many "$D" 100)
    echo "dockerd: run -d x100 ${docker_run_ms} ms, rm -f ${docker_rm_ms} ms"
    stop_pid "$dockerd_pid"; dockerd_pid=
fi

json=$(jq -n --argjson points "[$(IFS=,; echo "${points[*]}")]" \
    --argjson idle "$idle_rss" --argjson base "$base_kib" --argjson empty "$empty_run" --argjson psa "$ps_a_ms" --argjson held "$have" \
    --argjson images "$images_ms" --argjson nimg "$count" \
    --argjson br "$berth_run_ms" --argjson bm "$berth_rm_ms" --argjson dr "$dcli_run_ms" --argjson dm "$dcli_rm_ms" \
    --argjson kr "$docker_run_ms" --argjson km "$docker_rm_ms" --argjson fr "$floor_run_ms" \
    '{idle_berthd_kib: $idle, base_kib: $base, empty_host_run_ms: $empty, points: $points,
      ps_a_ms: $psa, ps_a_containers: $held, images_ms: $images, images: $nimg,
      hundred: {berth_cli: {run_ms: $br, rm_ms: $bm}, docker_cli_on_berthd: {run_ms: $dr, rm_ms: $dm},
                dockerd: {run_ms: $kr, rm_ms: $km}, docker_cli_alone: {run_ms: $fr}}}')
echo "$json" >"$work/scale.json"

# The plot: berthd RSS, shims per container and ps time against the container count.
python3 - "$work/scale.json" "$work/scale.svg" <<'PY'
import json, sys
d = json.load(open(sys.argv[1])); pts = d["points"]
W, H, L, B = 640, 360, 60, 40
series = [("berthd RSS (MiB)", "#1f77b4", [p["berthd_kib"] / 1024 for p in pts]),
          ("per container, shim + daemon share (MiB)", "#d62728", [p["per_container_kib"] / 1024 for p in pts]),
          ("ps (ms)", "#2ca02c", [p["ps_ms"] for p in pts]),
          ("run --rm (ms)", "#9467bd", [p["run_ms"] for p in pts])]
ns = [p["n"] for p in pts]; xmax = max(ns); ymax = max(max(v) for _, _, v in series) * 1.15 or 1
x = lambda n: L + (W - L - 20) * n / xmax
y = lambda v: H - B - (H - B - 20) * v / ymax
out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="11">',
       f'<rect width="{W}" height="{H}" fill="white"/>',
       f'<line x1="{L}" y1="{H-B}" x2="{W-20}" y2="{H-B}" stroke="black"/>',
       f'<line x1="{L}" y1="20" x2="{L}" y2="{H-B}" stroke="black"/>',
       f'<text x="{W/2}" y="{H-8}" text-anchor="middle">running containers</text>']
for n in ns:
    out.append(f'<text x="{x(n):.0f}" y="{H-B+14}" text-anchor="middle">{n}</text>')
for i in range(5):
    v = ymax * i / 4
    out.append(f'<text x="{L-6}" y="{y(v)+4:.0f}" text-anchor="end">{v:.0f}</text>')
for k, (name, color, vals) in enumerate(series):
    path = " ".join(f"{x(n):.1f},{y(v):.1f}" for n, v in zip(ns, vals))
    out.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"/>')
    out.append(f'<text x="{L+10}" y="{30+14*k}" fill="{color}">{name}</text>')
out.append("</svg>")
open(sys.argv[2], "w").write("\n".join(out))
PY

mkdir -p bench/results
cp "$work/scale.json" bench/results/scale.json
cp "$work/scale.svg" bench/results/scale.svg
echo "$json"

if [ "$write" = 1 ]; then
    ratio() { [ "$2" = null ] && echo "n/a" || awk -v a="$1" -v b="$2" 'BEGIN {printf "%.3f", a / b}'; }
    last=${points[-1]}
    table=$(jq -r '.points[] | "| \(.n) | \(.ps_ms) ms | \(.run_ms) ms | \(.berthd_kib / 1024 | . * 10 | round / 10) MiB | \(.per_container_kib / 1024 | . * 100 | round / 100) MiB |"' "$work/scale.json")
    write_section scale "<!-- bench:scale:start -->
## Many containers (bench/scale-bench.sh, $(date -u +%Y-%m-%d))

100 x \`run -d --network none busybox sleep 600\`, then one \`rm -f\` of all 100:

| path | run -d x100 | rm -f x100 | run ratio to dockerd | rm ratio to dockerd |
|---|---|---|---|---|
| berth CLI -> berthd | ${berth_run_ms} ms | ${berth_rm_ms} ms | $(ratio "$berth_run_ms" "$docker_run_ms") | $(ratio "$berth_rm_ms" "$docker_rm_ms") |
| docker CLI -> berthd | ${dcli_run_ms} ms | ${dcli_rm_ms} ms | $(ratio "$dcli_run_ms" "$docker_run_ms") | $(ratio "$dcli_rm_ms" "$docker_rm_ms") |
| docker CLI -> dockerd 20.10 | ${docker_run_ms} ms | ${docker_rm_ms} ms | 1 | 1 |
| docker CLI -> an engine that answers at once and does nothing (bench/instant-engine.py): the docker CLI alone | ${floor_run_ms} ms | | $(ratio "$floor_run_ms" "$docker_run_ms") | |

berthd holding running containers (idle berthd before any: $((idle_rss / 1024)) MiB RSS; \`run --rm\` on the empty host: ${empty_run} ms;
with none running after those runs, berthd's RSS and the shim zygote's and standby shim's PSS: $((base_kib / 1024)) MiB):

| running | ps | run --rm | berthd RSS | per container (shims' PSS and berthd's RSS above the host with none running) |
|---|---|---|---|---|
${table}

\`ps -a\` with ${have} containers: ${ps_a_ms} ms; \`images -a\` with ${count} images: ${images_ms} ms.
Plot: [bench/results/scale.svg](bench/results/scale.svg).
<!-- bench:scale:end -->"
fi
