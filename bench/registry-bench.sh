#!/usr/bin/env bash
# Registry transfer throughput with a 5-layer image (5 × 40 MiB of random data, one COPY each):
#   push and pull against one local Debian `docker-registry` (127.0.0.1, HTTP, temp root) through
#     berthd (berth CLI), Debian's dockerd (docker CLI 28) and `skopeo copy`
#     (docker-archive → registry for push, registry → oci dir for pull);
#   berth's own registry (`berth registry serve`) vs docker-registry serving the same pulls
#     (into berthd, and with skopeo).
# Between push runs the registry's storage is wiped (registry restarted), between pull runs the
# pulling daemon's copy is removed (rmi + image prune -af) so layers really transfer.
# Throughput = compressed image size (config + layers from the manifest) ÷ median time.
# Results go to bench/results/registry.json and the "registry" section of BENCHMARKS.md.
#
#   bench/registry-bench.sh [-n RUNS] [--no-write]
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
repo=$PWD
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"

runs=5 write=1
while [ $# -gt 0 ]; do
    case $1 in
        -n) runs=$2; shift ;;
        --no-write) write=0 ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done

require_tools hyperfine jq curl dockerd skopeo docker-registry python3
find_docker_cli

work=$(mktemp -d /tmp/berth-registry-bench.XXXXXX)
results=$work/results
mkdir -p "$results" "$work/dockercfg" "$work/bin"
export DOCKER_CONFIG=$work/dockercfg
berthd_pid= dockerd_pid= breg_pid=

cleanup() {
    [ -f "$work/dreg.pid" ] && stop_pid "$(cat "$work/dreg.pid")"
    stop_pid "$breg_pid"
    stop_pid "$berthd_pid"
    stop_pid "$dockerd_pid"
    remove_work "$work"
}
trap cleanup EXIT
wait_v2() { # host:port, seconds
    for _ in $(seq $(($2 * 10))); do
        curl -s -o /dev/null --max-time 1 "http://$1/v2/" && return 0
        sleep 0.1
    done
    return 1
}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
hf() { # name, prepare, command
    local name=$1 prep=$2; shift 2
    echo "==> $name: $*"
    hyperfine --style basic --runs "$runs" --prepare "$prep" --export-json "$results/$name.json" \
        --command-name "$name" "$*" || echo "!! $name failed" >&2
}
median() {
    if [ -f "$results/$1.json" ]; then jq -r '.results[0].median' "$results/$1.json"
    elif [ -s "$results/$1.times" ]; then sort -g "$results/$1.times" |
        awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2}'
    fi
}
# Two commands timed in alternation (A, B, A, B, ...), each after its prepare step, so
# both see the same machine: drift (page cache, writeback, other load) hits both alike.
ab() { # name_a, prepare_a, command_a, name_b, prepare_b, command_b
    local na=$1 pa=$2 ca=$3 nb=$4 pb=$5 cb=$6 i t0 t1
    echo "==> $na vs $nb, alternating, $runs runs each"
    : >"$results/$na.times"; : >"$results/$nb.times"
    for i in $(seq "$runs"); do
        for side in a b; do
            if [ $side = a ]; then eval "$pa" >/dev/null 2>&1; t0=$(date +%s.%N); eval "$ca" >/dev/null || echo "!! $na failed" >&2
            else eval "$pb" >/dev/null 2>&1; t0=$(date +%s.%N); eval "$cb" >/dev/null || echo "!! $nb failed" >&2; fi
            t1=$(date +%s.%N)
            awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.4f\n", b - a}' >>"$results/$([ $side = a ] && echo "$na" || echo "$nb").times"
        done
    done
    echo "    $na: $(tr '\n' ' ' <"$results/$na.times")"
    echo "    $nb: $(tr '\n' ' ' <"$results/$nb.times")"
}
fmt_s() { [ -n "$1" ] && awk -v s="$1" 'BEGIN {printf "%.2f", s}' || echo "n/a"; }
mbps() { [ -n "$1" ] && awk -v s="$1" -v b="$size" 'BEGIN {printf "%.1f", b / 1e6 / s}' || echo "n/a"; }
ratio() { [ -n "$1" ] && [ -n "$2" ] && awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}' || echo "n/a"; }

# ---------- docker-registry (loopback only, temp root), restartable from hyperfine --prepare ----------
dport=$(free_port)
dreg=127.0.0.1:$dport
cat >"$work/dreg.yml" <<YML
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: $work/dreg-root
  delete:
    enabled: true
http:
  addr: $dreg
YML
cat >"$work/bin/dreg-reset" <<SH
#!/bin/sh
# stop docker-registry, wipe its storage, start it again
if [ -f $work/dreg.pid ]; then kill \$(cat $work/dreg.pid) 2>/dev/null
    while kill -0 \$(cat $work/dreg.pid) 2>/dev/null; do sleep 0.05; done; fi
rm -rf $work/dreg-root; mkdir -p $work/dreg-root
setsid docker-registry serve $work/dreg.yml >>$work/dreg.log 2>&1 </dev/null &
echo \$! >$work/dreg.pid
for i in \$(seq 100); do curl -s -o /dev/null --max-time 1 http://$dreg/v2/ && exit 0; sleep 0.1; done
exit 1
SH
chmod +x "$work/bin/dreg-reset"
"$work/bin/dreg-reset" || { echo "docker-registry did not start:" >&2; tail "$work/dreg.log" >&2; exit 1; }

# ---------- daemons ----------
build_release
berth="$rel/berth -H unix://$work/berth.sock"
mkdir -p "$work/berth/data"
run_dir "$work/berth/exec"
PATH=$rel:$PATH "$rel/berthd" --data-root "$work/berth/data" --exec-root "$work/berth/exec" \
    -H "unix://$work/berth.sock" >"$work/berthd.log" 2>&1 </dev/null &
berthd_pid=$!
mkdir -p "$work/docker/data"
run_dir "$work/docker/exec"
dockerd --data-root "$work/docker/data" --exec-root "$work/docker/exec" -H "unix://$work/docker.sock" \
    --pidfile "$work/docker.pid" --bridge none --iptables=false --ip-masq=false \
    --ip-forward=false --userland-proxy=false >"$work/dockerd.log" 2>&1 </dev/null &
dockerd_pid=$!
docker="env DOCKER_HOST=unix://$work/docker.sock DOCKER_CONFIG=$work/dockercfg $docker_cli"
wait_ping "$work/berth.sock" 20 || { echo "berthd did not start:" >&2; tail "$work/berthd.log" >&2; exit 1; }
wait_ping "$work/docker.sock" 60 || { echo "dockerd did not start:" >&2; tail "$work/dockerd.log" >&2; exit 1; }

# ---------- the test image: 5 layers × 40 MiB random ----------
echo "==> building the 5-layer image in both engines"
busybox_rootfs
ctx=$work/ctx
mkdir -p "$ctx"
{ echo "FROM scratch"; } >"$ctx/Dockerfile"
for i in 1 2 3 4 5; do
    head -c 40M /dev/urandom >"$ctx/layer$i.bin"
    echo "COPY layer$i.bin /data/layer$i.bin" >>"$ctx/Dockerfile"
done
echo 'CMD ["/data"]' >>"$ctx/Dockerfile"
$berth build -q -t "$dreg/berth/big:latest" "$ctx" >/dev/null
DOCKER_BUILDKIT=0 $docker build -q -t "$dreg/docker/big:latest" "$ctx" >/dev/null
$docker save -o "$work/big.tar" "$dreg/docker/big:latest"

declare -A status

# ---------- push: berthd vs dockerd vs skopeo, into a wiped docker-registry each run ----------
# The first push of an image is timed on its own (an engine may keep the compressed layers
# it made then and reuse them on later pushes); hyperfine then times the repeat pushes.
# After each series the registry is checked to hold every blob of the pushed manifest.
first_push() { # name, command
    local name=$1; shift
    "$work/bin/dreg-reset"
    local t0 t1; t0=$(date +%s.%N)
    $* >/dev/null || { echo "!! first $name failed" >&2; return 0; }
    t1=$(date +%s.%N)
    awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f\n", b - a}' >"$results/$name-first.txt"
    echo "==> first $name: $(cat "$results/$name-first.txt") s"
}
verify_pushed() { # name, repo: every blob of the manifest is in docker-registry with its size
    local name=$1 r=$2 m d ok=1
    m=$(curl -sf -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
        -H 'Accept: application/vnd.oci.image.manifest.v1+json' "http://$dreg/v2/$r/manifests/latest") || ok=0
    if [ $ok = 1 ]; then
        for d in $(jq -r '.config.digest, .layers[].digest' <<<"$m"); do
            curl -sf -o /dev/null -I "http://$dreg/v2/$r/blobs/$d" || { ok=0; echo "!! $name: blob $d missing" >&2; }
        done
        [ "$(jq '.layers | length' <<<"$m")" = 5 ] || ok=0
    fi
    [ $ok = 1 ] && echo "==> $name: registry holds the manifest and all $(jq '.layers | length' <<<"$m") layers ($(du -sm "$work/dreg-root" | cut -f1) MiB stored)" \
        || status[$name]="push incomplete: manifest or blobs missing in the registry"
}
first_push push-berth "$berth push -q $dreg/berth/big:latest"
hf push-berth "$work/bin/dreg-reset" "$berth push -q $dreg/berth/big:latest"
verify_pushed push-berth berth/big
first_push push-dockerd "$docker push -q $dreg/docker/big:latest"
hf push-dockerd "$work/bin/dreg-reset" "$docker push -q $dreg/docker/big:latest"
verify_pushed push-dockerd docker/big
first_push push-skopeo skopeo copy -q --dest-tls-verify=false "docker-archive:$work/big.tar" "docker://$dreg/skopeo/big:latest"
hf push-skopeo "$work/bin/dreg-reset" \
    "skopeo copy -q --dest-tls-verify=false docker-archive:$work/big.tar docker://$dreg/skopeo/big:latest"
verify_pushed push-skopeo skopeo/big

# ---------- populate both registries with the same image ----------
"$work/bin/dreg-reset"
bport=$(free_port)
breg=127.0.0.1:$bport
mkdir -p "$work/breg-root"
"$rel/berth" registry serve --addr "$breg" --root "$work/breg-root" >"$work/breg.log" 2>&1 </dev/null &
breg_pid=$!
wait_v2 "$breg" 20 || { echo "berth registry did not start:" >&2; tail "$work/breg.log" >&2; exit 1; }
for r in "$dreg" "$breg"; do
    skopeo copy -q --dest-tls-verify=false "docker-archive:$work/big.tar" "docker://$r/bench/big:latest"
done
manifest() { curl -sf -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
    -H 'Accept: application/vnd.oci.image.manifest.v1+json' "http://$1/v2/bench/big/manifests/latest"; }
size=$(manifest "$dreg" | jq '[.config.size] + [.layers[].size] | add')
bsize=$(manifest "$breg" | jq '[.config.size] + [.layers[].size] | add' || echo "?")
echo "==> image: $size bytes on docker-registry, $bsize on berth registry"

cat >"$work/bin/berth-clear" <<SH
#!/bin/sh
$berth rmi -f $dreg/bench/big:latest $breg/bench/big:latest >/dev/null 2>&1
$berth image prune -af >/dev/null 2>&1
sync
exit 0
SH
cat >"$work/bin/docker-clear" <<SH
#!/bin/sh
$docker rmi -f $dreg/bench/big:latest $breg/bench/big:latest >/dev/null 2>&1
$docker image prune -af >/dev/null 2>&1
sync
exit 0
SH
chmod +x "$work/bin/berth-clear" "$work/bin/docker-clear"

# the clear step really empties the store: data-root size before/after one pull
"$work/bin/berth-clear"; "$work/bin/docker-clear"
b0=$(du -sm "$work/berth/data" | cut -f1); d0=$(du -sm "$work/docker/data" | cut -f1)
$berth pull -q "$dreg/bench/big:latest" >/dev/null; $docker pull -q "$dreg/bench/big:latest" >/dev/null
b1=$(du -sm "$work/berth/data" | cut -f1); d1=$(du -sm "$work/docker/data" | cut -f1)
"$work/bin/berth-clear"; "$work/bin/docker-clear"
b2=$(du -sm "$work/berth/data" | cut -f1); d2=$(du -sm "$work/docker/data" | cut -f1)
echo "==> data-root MiB cleared/pulled/cleared: berthd $b0/$b1/$b2, dockerd $d0/$d1/$d2"
[ $((b1 - b0)) -ge 190 ] && [ $((b1 - b2)) -ge 190 ] || status[pull-berth]="clear/pull check: berthd data-root $b0/$b1/$b2 MiB"
[ $((d1 - d0)) -ge 190 ] && [ $((d1 - d2)) -ge 190 ] || status[pull-dockerd]="clear/pull check: dockerd data-root $d0/$d1/$d2 MiB"

# ---------- pulls: each client from docker-registry and from berth's registry ----------
# Each client's pulls from the two registries alternate (see `ab`); the registries' files
# were written just before, so everything is flushed to disk first.
sync
ab pull-berth "$work/bin/berth-clear" "$berth pull -q $dreg/bench/big:latest" \
    pull-berth-from-berthreg "$work/bin/berth-clear" "$berth pull -q $breg/bench/big:latest"
ab pull-dockerd "$work/bin/docker-clear" "$docker pull -q $dreg/bench/big:latest" \
    pull-dockerd-from-berthreg "$work/bin/docker-clear" "$docker pull -q $breg/bench/big:latest"
ab pull-skopeo "rm -rf $work/skopeo-out; sync" \
    "skopeo copy -q --src-tls-verify=false docker://$dreg/bench/big:latest oci:$work/skopeo-out:latest" \
    pull-skopeo-from-berthreg "rm -rf $work/skopeo-out; sync" \
    "skopeo copy -q --src-tls-verify=false docker://$breg/bench/big:latest oci:$work/skopeo-out:latest"
# The registries alone: the five layer blobs fetched at once with curl (no client-side
# unpacking, so the registry is the bottleneck).
blobs=$(manifest "$dreg" | jq -r '.layers[].digest')
fetch_all() { # (waits for its own curls only: the daemons are children of this shell too)
    local pids=() b
    for b in $blobs; do curl -sf -o /dev/null "http://$1/v2/bench/big/blobs/$b" & pids+=($!); done
    wait "${pids[@]}"
}
ab serve-dreg true "fetch_all $dreg" serve-breg true "fetch_all $breg"

# ---------- report ----------
declare -A M
for k in push-berth push-dockerd push-skopeo pull-berth pull-dockerd pull-skopeo \
    pull-berth-from-berthreg pull-skopeo-from-berthreg pull-dockerd-from-berthreg serve-dreg serve-breg; do
    M[$k]=$(median "$k")
    [ -n "${M[$k]}" ] || status[$k]="failed (see the script's output)"
done
verdict() { [ "$1" = n/a ] && { echo n/a; return; }; awk -v r="$1" -v t="$2" 'BEGIN {print (r >= t) ? "met" : "not met"}'; }
r_push=$(ratio "${M[push-dockerd]}" "${M[push-berth]}")    # throughput ratio = inverse time ratio
r_pull=$(ratio "${M[pull-dockerd]}" "${M[pull-berth]}")
r_reg_berth=$(ratio "${M[pull-berth]}" "${M[pull-berth-from-berthreg]}")
r_reg_skopeo=$(ratio "${M[pull-skopeo]}" "${M[pull-skopeo-from-berthreg]}")
r_reg_docker=$(ratio "${M[pull-dockerd]}" "${M[pull-dockerd-from-berthreg]}")
r_serve=$(ratio "${M[serve-dreg]}" "${M[serve-breg]}")
row() { echo "| $1 | $(fmt_s "${M[$2]}") | $(mbps "${M[$2]}") |"; }
first() { [ -f "$results/$1-first.txt" ] && cat "$results/$1-first.txt" || true; }
prow() { local f; f=$(first "$2"); echo "| $1 | $(fmt_s "$f") | $(mbps "$f") | $(fmt_s "${M[$2]}") | $(mbps "${M[$2]}") |"; }
r_push_first=$(ratio "$(first push-dockerd)" "$(first push-berth)")
notes=
for key in "${!status[@]}"; do notes+="- $key: ${status[$key]}"$'\n'; done

section=$(cat <<MD
<!-- bench:registry:start -->
## Registry push and pull

Image: 5 layers of 40 MiB random data (one COPY each, FROM scratch), $(awk -v b="$size" 'BEGIN {printf "%.1f", b / 1e6}') MB
compressed (config + layers per the manifest); throughput = that size ÷ median time of $runs runs
(hyperfine), $(nproc) CPUs, $(date -u +%Y-%m-%d). Registries on 127.0.0.1 over HTTP; push runs start
from an empty docker-registry (wiped and restarted), pull runs from an empty daemon image store
(rmi + image prune -af). Produced by \`bench/registry-bench.sh\`. dockerd $(dockerd --version | awk '{print $3}' | tr -d ,),
docker CLI $("$docker_cli" --version | awk '{print $3}' | tr -d ,), $(skopeo --version), docker-registry $(docker-registry --version 2>/dev/null | awk '{print $3}').

| push to docker-registry | first push (s) | MB/s | repeat push, median (s) | MB/s |
|---|---|---|---|---|
$(prow "berth CLI → berthd" push-berth)
$(prow "docker CLI → dockerd" push-dockerd)
$(prow "skopeo (docker-archive →)" push-skopeo)

| pull from docker-registry | median (s) | MB/s |
|---|---|---|
$(row "berth CLI → berthd" pull-berth)
$(row "docker CLI → dockerd" pull-dockerd)
$(row "skopeo (→ oci dir)" pull-skopeo)

| pull served by \`berth registry serve\` | median (s) | MB/s | throughput ÷ docker-registry's |
|---|---|---|---|
$(row "berth CLI → berthd" pull-berth-from-berthreg) $r_reg_berth |
$(row "skopeo (→ oci dir)" pull-skopeo-from-berthreg) $r_reg_skopeo |
$(row "docker CLI → dockerd" pull-dockerd-from-berthreg) $r_reg_docker |
| the 5 layer blobs at once (curl), berth registry | $(fmt_s "${M[serve-breg]}") | $(mbps "${M[serve-breg]}") | $r_serve |
| the 5 layer blobs at once (curl), docker-registry | $(fmt_s "${M[serve-dreg]}") | $(mbps "${M[serve-dreg]}") | 1 |

Each client's pulls from docker-registry and from berth's registry alternate run by run
(the same prepare step before each), after everything written so far was synced to disk.

berth ÷ dockerd throughput: repeat push **$r_push**, first push **$r_push_first**, pull **$r_pull**
(target ≥ 1.5: repeat push $(verdict "$r_push" 1.5), first push $(verdict "$r_push_first" 1.5), pull $(verdict "$r_pull" 1.5)).
berth registry ÷ docker-registry, serving the layers alone: **$r_serve** (target ≥ 1.0: $(verdict "$r_serve" 1.0)).
Pulled through a client, whose own decompressing, hashing and unpacking takes most of the
time (the serving alone is $(fmt_s "${M[serve-breg]}") s of a $(fmt_s "${M[pull-berth-from-berthreg]}") s berthd pull): berthd **$r_reg_berth**, skopeo **$r_reg_skopeo**,
dockerd **$r_reg_docker**.
${notes:+
Failures:
${notes%$'\n'}}
<!-- bench:registry:end -->
MD
)
echo
echo "$section"

if [ "$write" = 1 ]; then
    mkdir -p bench/results
    for key in "${!M[@]}"; do printf '%s\t%s\n' "$key" "${M[$key]}"; done |
        jq -R -s --arg date "$(date -u +%Y-%m-%dT%H:%M:%SZ)" --argjson runs "$runs" --argjson size "$size" \
        --arg rpush "$r_push" --arg rpushf "$r_push_first" --arg fb "$(first push-berth)" --arg fd "$(first push-dockerd)" --arg fs "$(first push-skopeo)" --arg rpull "$r_pull" --arg rreg "$r_reg_berth" --arg rserve "$r_serve" \
        'def num: if . == "" or . == "n/a" then null else tonumber end;
         split("\n") | map(select(length > 0) | split("\t") | {(.[0]): (.[1] | num)}) | add
         | {date: $date, runs: $runs, image_bytes: $size, median_seconds: .,
            mb_per_s: (with_entries(.value |= (if . == null then null else ($size / 1e6 / .) end))),
            first_push_seconds: {push_berth: ($fb | num), push_dockerd: ($fd | num), push_skopeo: ($fs | num)},
            ratios: {push_berth_over_dockerd: ($rpush | num), first_push_berth_over_dockerd: ($rpushf | num), pull_berth_over_dockerd: ($rpull | num),
                     berth_registry_over_docker_registry: ($rreg | num), berth_registry_serving_over_docker_registry: ($rserve | num)}}' \
        >bench/results/registry.json
    write_section registry "$section"
    echo "==> updated BENCHMARKS.md and bench/results/registry.json"
fi
