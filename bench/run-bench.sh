#!/usr/bin/env bash
# Container start-to-exit latency: `run --rm --network none busybox true`, timed with
# hyperfine through
#   (a) berthd (release build), driven by the berth CLI and by the docker CLI,
#   (b) Debian's dockerd (docker.io), started here on private roots, via the docker CLI,
#   (c) bare `runc run` of an OCI bundle holding the same busybox rootfs.
# Medians go to bench/results/run.json and to the "run" section of BENCHMARKS.md.
#
#   bench/run-bench.sh [-n RUNS] [-w WARMUP] [--skip-berth] [--skip-docker] [--skip-runc] [--no-write]
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
repo=$PWD
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"

runs=30 warmup=3 do_berth=1 do_docker=1 do_runc=1 write=1
while [ $# -gt 0 ]; do
    case $1 in
        -n) runs=$2; shift ;;
        -w) warmup=$2; shift ;;
        --skip-berth) do_berth=0 ;;
        --skip-docker) do_docker=0 ;;
        --skip-runc) do_runc=0 ;;
        --no-write) write=0 ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done

for tool in hyperfine jq curl runc dockerd; do
    command -v "$tool" >/dev/null || { echo "$tool missing: run scripts/setup.sh (or apt-get install per scripts/deps.sh)" >&2; exit 1; }
done
docker_cli=${DOCKER_CLI:-/usr/local/bin/docker}
[ -x "$docker_cli" ] || docker_cli=$(command -v docker)

work=$(mktemp -d /tmp/berth-bench.XXXXXX)
results=$work/results
mkdir -p "$results"
berthd_pid= dockerd_pid=

cleanup() {
    stop_pid "$berthd_pid"
    stop_pid "$dockerd_pid"
    remove_work "$work"
}
trap cleanup EXIT

echo "==> busybox rootfs"
rootfs_tar=$work/busybox.tar
scripts/mkrootfs-busybox.sh "$rootfs_tar"

hf() { # name, command...
    local name=$1; shift
    echo "==> $name: $*"
    hyperfine --style basic --warmup "$warmup" --runs "$runs" --export-json "$results/$name.json" \
        --command-name "$name" "$*"
}

# ---------- (a) berthd ----------
if [ "$do_berth" = 1 ]; then
    echo "==> cargo build --release"
    cargo build --release --bins
    rel=$repo/target/release
    bsock=$work/berth.sock
    mkdir -p "$work/berth/data" "$work/berth/exec"
    PATH=$rel:$PATH "$rel/berthd" --data-root "$work/berth/data" --exec-root "$work/berth/exec" \
        -H "unix://$bsock" >"$work/berthd.log" 2>&1 </dev/null &
    berthd_pid=$!
    if wait_ping "$bsock" 20 && "$rel/berth" -H "unix://$bsock" import "$rootfs_tar" busybox >/dev/null \
        && "$rel/berth" -H "unix://$bsock" run --rm --network none busybox true; then
        hf berth-cli "$rel/berth -H unix://$bsock run --rm --network none busybox true"
        hf docker-cli-on-berthd "env DOCKER_HOST=unix://$bsock DOCKER_CONFIG=$work/dockercfg $docker_cli run --rm --network none busybox true"
    else
        echo "!! berthd is not usable yet; skipping (a). Log:" >&2
        tail -n 20 "$work/berthd.log" >&2 || true
    fi
    stop_pid "$berthd_pid"; berthd_pid=
fi

# ---------- (b) reference dockerd ----------
if [ "$do_docker" = 1 ]; then
    dsock=$work/docker.sock
    mkdir -p "$work/docker/data" "$work/docker/exec" "$work/dockercfg"
    # its own managed containerd (under --exec-root), no bridge, no iptables changes
    dockerd --data-root "$work/docker/data" --exec-root "$work/docker/exec" -H "unix://$dsock" \
        --pidfile "$work/docker.pid" --bridge none --iptables=false --ip-masq=false \
        --ip-forward=false --userland-proxy=false >"$work/dockerd.log" 2>&1 </dev/null &
    dockerd_pid=$!
    if ! wait_ping "$dsock" 60; then
        echo "dockerd did not start; log:" >&2
        tail -n 30 "$work/dockerd.log" >&2
        exit 1
    fi
    export DOCKER_CONFIG=$work/dockercfg
    DOCKER_HOST=unix://$dsock "$docker_cli" import "$rootfs_tar" busybox >/dev/null
    DOCKER_HOST=unix://$dsock "$docker_cli" run --rm --network none busybox true
    hf dockerd "env DOCKER_HOST=unix://$dsock $docker_cli run --rm --network none busybox true"
    stop_pid "$dockerd_pid"; dockerd_pid=
fi

# ---------- (c) bare runc ----------
if [ "$do_runc" = 1 ]; then
    bundle=$work/bundle
    mkdir -p "$bundle/rootfs" "$work/runc-root"
    tar -C "$bundle/rootfs" -xf "$rootfs_tar"
    (cd "$bundle" && runc spec)
    # args `true`, no terminal; runc spec's defaults already give a new network namespace
    jq '.process.args = ["true"] | .process.terminal = false
        | (.linux.namespaces |= (if any(.type == "network") then . else . + [{"type": "network"}] end))' \
        "$bundle/config.json" >"$bundle/config.json.new"
    mv "$bundle/config.json.new" "$bundle/config.json"
    runc --root "$work/runc-root" run --bundle "$bundle" bench-probe </dev/null
    hf runc "runc --root $work/runc-root run --bundle $bundle bench-run"
fi

# ---------- report ----------
median() { # name → median seconds, or empty
    [ -f "$results/$1.json" ] && jq -r '.results[0].median' "$results/$1.json" || true
}
ms() { [ -n "$1" ] && awk -v s="$1" 'BEGIN {printf "%.1f", s * 1000}' || echo "n/a"; }
ratio() { [ -n "$1" ] && [ -n "$2" ] && awk -v a="$1" -v b="$2" 'BEGIN {printf "%.3f", a / b}' || echo "n/a"; }

m_berth=$(median berth-cli)
m_docker_on_berth=$(median docker-cli-on-berthd)
m_dockerd=$(median dockerd)
m_runc=$(median runc)
r_berth=$(ratio "$m_berth" "$m_dockerd")
r_docker_on_berth=$(ratio "$m_docker_on_berth" "$m_dockerd")

write_json() {
mkdir -p bench/results
jq -n --arg date "$(date -u +%Y-%m-%dT%H:%M:%SZ)" --argjson runs "$runs" \
    --arg berth "$m_berth" --arg docker_on_berth "$m_docker_on_berth" --arg dockerd "$m_dockerd" --arg runc "$m_runc" \
    'def num: if . == "" then null else tonumber end;
     {date: $date, runs: $runs, median_seconds: {berth_cli: ($berth | num),
      docker_cli_on_berthd: ($docker_on_berth | num), dockerd: ($dockerd | num), runc: ($runc | num)}}' \
    >bench/results/run.json
}

verdict="n/a"
if [ "$r_berth" != n/a ]; then
    verdict=$(awk -v r="$r_berth" 'BEGIN {print (r <= 0.05) ? "met" : "not met"}')
fi

section=$(cat <<MD
<!-- bench:run:start -->
## Container run latency

\`run --rm --network none busybox true\`, median of $runs runs after $warmup warm-ups
(hyperfine), $(nproc) CPUs, $(date -u +%Y-%m-%d). Produced by \`bench/run-bench.sh\`.

| path | median (ms) |
|---|---|
| berth CLI → berthd | $(ms "$m_berth") |
| docker CLI → berthd | $(ms "$m_docker_on_berth") |
| docker CLI → dockerd $(dockerd --version 2>/dev/null | awk '{print $3}' | tr -d ,) | $(ms "$m_dockerd") |
| bare \`runc run\` $(runc --version 2>/dev/null | awk 'NR==1 {print $3}') | $(ms "$m_runc") |

berth/docker ratio (berth CLI median ÷ dockerd median): **$r_berth** (docker CLI on berthd: $r_docker_on_berth);
target ≤ 0.05: $verdict.
<!-- bench:run:end -->
MD
)
echo
echo "$section"

if [ "$write" = 1 ]; then
    write_json
    write_section run "$section"
    echo "==> updated BENCHMARKS.md and bench/results/run.json"
fi
