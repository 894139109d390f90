#!/usr/bin/env bash
# Image build time: cold build (--no-cache) and no-change rebuild (warm cache) of
#   (a) a 10-step Dockerfile (ENV, WORKDIR, RUN, COPY, LABEL, CMD) and
#   (b) a two-stage Dockerfile (stage 1 RUNs produce files, stage 2 = busybox + COPY --from),
# through (both daemons running side by side; cold builds round-robin over the four,
# rebuilds timed with hyperfine)
#   berthd (release build) via `berth build` and via the docker CLI 28 (DOCKER_BUILDKIT=0),
#   Debian's dockerd (private roots) via the docker CLI 28 with the classic builder,
#   the same dockerd via BuildKit (Debian's 20.10 CLI /usr/bin/docker, DOCKER_BUILDKIT=1).
# The base image is scripts/mkrootfs-busybox.sh imported as busybox:latest into both engines.
# All builds use --network none (dockerd runs with --bridge none).
# Medians go to bench/results/build.json and the "build" section of BENCHMARKS.md.
#
#   bench/build-bench.sh [-c COLD_RUNS] [-r REBUILD_RUNS] [--no-write]
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
repo=$PWD
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"

cold_runs=9 rebuild_runs=10 write=1
while [ $# -gt 0 ]; do
    case $1 in
        -c) cold_runs=$2; shift ;;
        -r) rebuild_runs=$2; shift ;;
        --no-write) write=0 ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done

require_tools hyperfine jq curl dockerd
find_docker_cli
bk_cli=${BUILDKIT_CLI:-/usr/bin/docker}

bench_work berth-build-bench
results=$work/results
mkdir -p "$results"
hf() { # name, runs, warmup, command
    local name=$1 n=$2 w=$3; shift 3
    echo "==> $name: $*"
    hyperfine --style basic --warmup "$w" --runs "$n" --export-json "$results/$name.json" \
        --command-name "$name" "$*" || echo "!! $name failed" >&2
}
median() {
    if [ -f "$results/$1.json" ]; then jq -r '.results[0].median' "$results/$1.json"
    elif [ -s "$results/$1.times" ]; then sort -g "$results/$1.times" |
        awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2}'
    fi
}
fmt_s() { [ -n "$1" ] && awk -v s="$1" 'BEGIN {printf "%.3f", s}' || echo "n/a"; }
ratio() { [ -n "$1" ] && [ -n "$2" ] && awk -v a="$1" -v b="$2" 'BEGIN {printf "%.3f", a / b}' || echo "n/a"; }

echo "==> busybox rootfs and build contexts"
busybox_rootfs

ctx10=$work/ctx-steps
mkdir -p "$ctx10/sub"
echo alpha >"$ctx10/a.txt"; echo beta >"$ctx10/b.txt"
for i in 1 2 3; do head -c 65536 /dev/urandom | base64 >"$ctx10/sub/data$i.txt"; done
cat >"$ctx10/Dockerfile" <<'DF'
FROM busybox
ENV APP=/app GREETING=hello
WORKDIR /app
RUN echo one >one.txt && echo "$GREETING" >greeting.txt
COPY a.txt b.txt ./
RUN for i in 1 2 3 4 5; do echo $i >f$i; done
COPY sub/ ./sub/
RUN cat a.txt b.txt >ab.txt && ls -l sub >listing.txt
LABEL bench=build stage=single
CMD ["cat", "/app/ab.txt"]
DF
ctxms=$work/ctx-multi
mkdir -p "$ctxms"
cat >"$ctxms/Dockerfile" <<'DF'
FROM busybox AS gen
RUN mkdir -p /out && for i in $(seq 1 100); do echo "file $i" >/out/f$i; done
RUN head -c 1048576 /dev/urandom >/out/blob && md5sum /out/blob >/out/blob.md5
FROM busybox
COPY --from=gen /out /data
CMD ["ls", "/data"]
DF

declare -A status

# ---------- both daemons, side by side ----------
build_release
spawn_berthd
dsock=$work/docker.sock
mkdir -p "$work/docker/data"
run_dir "$work/docker/exec"
dockerd --data-root "$work/docker/data" --exec-root "$work/docker/exec" -H "unix://$dsock" \
    --pidfile "$work/docker.pid" --bridge none --iptables=false --ip-masq=false \
    --ip-forward=false --userland-proxy=false >"$work/dockerd.log" 2>&1 </dev/null &
dockerd_pid=$!
wait_ping "$bsock" 20 || { echo "berthd did not start; log:" >&2; tail -n 20 "$work/berthd.log" >&2; exit 1; }
wait_ping "$dsock" 60 || { echo "dockerd did not start; log:" >&2; tail -n 30 "$work/dockerd.log" >&2; exit 1; }
"$rel/berth" -H "unix://$bsock" import "$rootfs_tar" busybox:latest >/dev/null
DOCKER_HOST=unix://$dsock "$docker_cli" import "$rootfs_tar" busybox:latest >/dev/null

engines=(berth docker-on-berthd classic buildkit)
declare -A CMD=(
    [berth]="$rel/berth -H unix://$bsock build -q --network none"
    [docker-on-berthd]="env DOCKER_BUILDKIT=0 DOCKER_HOST=unix://$bsock DOCKER_CONFIG=$work/dockercfg $docker_cli build -q --network none"
    [classic]="env DOCKER_BUILDKIT=0 DOCKER_HOST=unix://$dsock DOCKER_CONFIG=$work/dockercfg $docker_cli build -q --network none"
    # BuildKit may try to resolve busybox:latest on Docker Hub (no internet here): bound each try.
    [buildkit]="env DOCKER_BUILDKIT=1 DOCKER_HOST=unix://$dsock DOCKER_CONFIG=$work/dockercfg timeout 120 $bk_cli build -q --network none"
)
ctx_of() { [ "$1" = multi ] && echo "$ctxms" || echo "$ctx10"; }

# Probes (and warm-up): every engine builds both Dockerfiles once.
declare -A ok
for p in "${engines[@]}"; do
    for name in steps multi; do
        if ${CMD[$p]} -t "bench-$name" "$(ctx_of $name)" >"$work/$p-$name.probe.log" 2>&1; then
            ok[$p-$name]=1
        else
            echo "!! $p $name build failed:" >&2; tail -n 15 "$work/$p-$name.probe.log" >&2
            status[$p-$name]="build failed: $(grep -v '^\s*$' "$work/$p-$name.probe.log" | tail -n 1 | cut -c1-160)"
        fi
    done
done

# Cold builds: round-robin over the engines, so all of them see the same machine
# (page cache, writeback, background load) in every round.
for name in steps multi; do
    for p in "${engines[@]}"; do : >"$results/$p-$name-cold.times"; done
    echo "==> cold builds of $name, $cold_runs rounds over ${engines[*]}"
    for _ in $(seq "$cold_runs"); do
        for p in "${engines[@]}"; do
            [ -n "${ok[$p-$name]:-}" ] || continue
            t0=$(date +%s.%N)
            ${CMD[$p]} --no-cache -t "bench-$name" "$(ctx_of $name)" >/dev/null 2>&1 ||
                { echo "!! $p $name cold build failed" >&2; continue; }
            t1=$(date +%s.%N)
            awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.4f\n", b - a}' >>"$results/$p-$name-cold.times"
        done
    done
done

# No-change rebuilds: hyperfine per engine (each after putting the cached chain back).
for p in "${engines[@]}"; do
    for name in steps multi; do
        [ -n "${ok[$p-$name]:-}" ] || continue
        ${CMD[$p]} -t "bench-$name" "$(ctx_of $name)" >/dev/null 2>&1 || true
        hf "$p-$name-rebuild" "$rebuild_runs" 1 "${CMD[$p]} -t bench-$name $(ctx_of $name)"
    done
done
stop_pid "$berthd_pid"; berthd_pid=
stop_pid "$dockerd_pid"; dockerd_pid=

# ---------- report ----------
declare -A M
for p in berth docker-on-berthd classic buildkit; do
    for n in steps multi; do
        for k in cold rebuild; do M[$p-$n-$k]=$(median "$p-$n-$k"); done
    done
done
verdict() { # ratio target
    [ "$1" = n/a ] && { echo n/a; return; }
    awk -v r="$1" -v t="$2" 'BEGIN {print (r <= t) ? "met" : "not met"}'
}
rows= ratios= jsonrows=
for n in steps multi; do
    label="10-step Dockerfile"; [ $n = multi ] && label="multi-stage (COPY --from)"
    for k in cold rebuild; do
        kl="cold (--no-cache)"; [ $k = rebuild ] && kl="no-change rebuild"
        target=0.5; [ $k = rebuild ] && target=0.1
        b=${M[berth-$n-$k]} c=${M[classic-$n-$k]} bk=${M[buildkit-$n-$k]} dob=${M[docker-on-berthd-$n-$k]}
        rc=$(ratio "$b" "$c") rb=$(ratio "$b" "$bk")
        rows+="| $label | $kl | $(fmt_s "$b") | $(fmt_s "$dob") | $(fmt_s "$c") | $(fmt_s "$bk") | $rc ($(verdict "$rc" $target)) | $rb ($(verdict "$rb" $target)) |"$'\n'
    done
done
notes=
for key in "${!status[@]}"; do notes+="- $key: ${status[$key]}"$'\n'; done

section=$(cat <<MD
<!-- bench:build:start -->
## Image build

Cold build (\`--no-cache\`, median of $cold_runs runs; both daemons run side by side and the
cold builds go round-robin over the four columns, so each round sees the same machine) and
no-change rebuild (warm cache, median of $rebuild_runs runs after 1 warm-up, hyperfine),
seconds, $(nproc) CPUs, $(date -u +%Y-%m-%d).
Base image: the busybox rootfs of \`scripts/mkrootfs-busybox.sh\` imported as busybox:latest;
every build uses \`--network none\`. Produced by \`bench/build-bench.sh\`.
Columns: berth CLI → berthd; docker CLI $("$docker_cli" --version | awk '{print $3}' | tr -d ,) (DOCKER_BUILDKIT=0) → berthd;
the same CLI → dockerd $(dockerd --version 2>/dev/null | awk '{print $3}' | tr -d ,) classic builder; Debian's CLI
$("$bk_cli" --version | awk '{print $3}' | tr -d ,) with DOCKER_BUILDKIT=1 → the same dockerd (BuildKit).
Targets: rebuild ≤ 0.1× docker's, cold ≤ 0.5×.

| Dockerfile | case | berth | docker CLI → berthd | dockerd classic | dockerd BuildKit | berth ÷ classic | berth ÷ BuildKit |
|---|---|---|---|---|---|---|---|
${rows%$'\n'}
${notes:+
Failures:
${notes%$'\n'}}
<!-- bench:build:end -->
MD
)
echo
echo "$section"

if [ "$write" = 1 ]; then
    mkdir -p bench/results
    {
        for key in "${!M[@]}"; do printf '%s\t%s\n' "$key" "${M[$key]}"; done
    } | jq -R -s --arg date "$(date -u +%Y-%m-%dT%H:%M:%SZ)" --argjson cold "$cold_runs" --argjson reb "$rebuild_runs" \
        --argjson notes "$(for key in "${!status[@]}"; do printf '%s\t%s\n' "$key" "${status[$key]}"; done | jq -R -s 'split("\n") | map(select(length > 0) | split("\t") | {(.[0]): .[1]}) | add // {}')" \
        'split("\n") | map(select(length > 0) | split("\t") | {(.[0]): (if .[1] == "" then null else (.[1] | tonumber) end)}) | add
         | {date: $date, cold_runs: $cold, rebuild_runs: $reb, median_seconds: ., failures: $notes}' \
        >bench/results/build.json
    write_section build "$section"
    echo "==> updated BENCHMARKS.md and bench/results/build.json"
fi
