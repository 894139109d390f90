#!/usr/bin/env bash
# Compose: `up -d --wait` and `down` of a 10-service project (busybox services on two
# networks, one named volume each), and `config` of the whole conformance corpus,
#   berth compose -> berthd (release build)   vs   Docker Compose v2 -> dockerd,
# both daemons running side by side (dockerd on its own address pool, no iptables).
# Medians go to bench/results/compose.json and the "compose" section of BENCHMARKS.md.
#
#   bench/compose-bench.sh [-r RUNS] [--no-write]
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
repo=$PWD
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"

runs=7 write=1
while [ $# -gt 0 ]; do
    case $1 in
        -r) runs=$2; shift ;;
        --no-write) write=0 ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done
require_tools hyperfine jq curl dockerd
find_docker_cli
"$docker_cli" compose version >/dev/null 2>&1 || { echo "docker compose (v2 plugin) missing: run scripts/setup.sh" >&2; exit 1; }
corpus=${BERTH_CONFORMANCE_DIR:-$repo/../shared/conformance}/compose/corpus

bench_work berth-compose-bench
results=$work/results
mkdir -p "$results"

# The project: ten services, two networks, a volume each.
proj=$work/proj
mkdir -p "$proj"
{
    echo "services:"
    for i in $(seq 1 10); do
        net=front; [ $((i % 2)) = 0 ] && net=back
        cat <<EOF
  s$i:
    image: busybox
    command: ["sleep", "3600"]
    stop_grace_period: 1s
    init: true
    networks: [$net]
    volumes: ["v$i:/data"]
EOF
    done
    printf 'networks:\n  front: {}\n  back: {}\nvolumes:\n'
    for i in $(seq 1 10); do echo "  v$i: {}"; done
} >"$proj/compose.yaml"

echo "==> busybox rootfs"
busybox_rootfs

build_release
spawn_berthd --bridge "bcb$$"
start_dockerd "$work" --default-address-pool base=10.213.0.0/16,size=24
wait_ping "$bsock" 20 || { echo "berthd did not start" >&2; tail -n 20 "$work/berthd.log" >&2; exit 1; }
"$rel/berth" -H "unix://$bsock" import "$rootfs_tar" busybox:latest >/dev/null
DOCKER_HOST=unix://$dsock "$docker_cli" import "$rootfs_tar" busybox:latest >/dev/null

B="env BERTH_HOST=unix://$bsock COMPOSE_PROJECT_NAME=bench $rel/berth compose -f $proj/compose.yaml"
D="env DOCKER_HOST=unix://$dsock COMPOSE_PROJECT_NAME=bench $docker_cli compose -f $proj/compose.yaml"

# up and down alternate: each timed run starts from the state the other leaves.
hf_pair() { # name, up-cmd, down-cmd
    local name=$1 up=$2 dn=$3
    echo "==> $name up: $up"
    hyperfine --style basic --runs "$runs" --warmup 1 --prepare "$dn >/dev/null 2>&1 || true" \
        --export-json "$results/$name-up.json" --command-name "$name-up" "$up -d --wait" || echo "!! $name up failed" >&2
    echo "==> $name down: $dn"
    hyperfine --style basic --runs "$runs" --warmup 1 --prepare "$up -d --wait >/dev/null 2>&1" \
        --export-json "$results/$name-down.json" --command-name "$name-down" "$dn" || echo "!! $name down failed" >&2
    $dn >/dev/null 2>&1 || true
}
hf_pair berth "$B up" "$B down -v -t 1"
hf_pair compose "$D up" "$D down -v -t 1"

# config of every corpus file (the ones both accept), one process per file.
list=$work/corpus.txt
(cd "$corpus" && find e2e v1 composego -type f \( -name '*.yml' -o -name '*.yaml' \) | sort) >"$list"
cat >"$work/config-all.sh" <<EOF
#!/usr/bin/env bash
# \$1: the command prefix; runs it on every corpus file from its folder.
while IFS= read -r f; do
    (cd "$corpus/\$(dirname "\$f")" && env -i PATH=/usr/bin:/bin:/usr/local/bin HOME=/nonexistent COMPOSE_PROJECT_NAME=conformance \
        \$1 -f "\$(basename "\$f")" config --format json >/dev/null 2>&1 || true)
done <"$list"
EOF
chmod +x "$work/config-all.sh"
nfiles=$(wc -l <"$list")
echo "==> config of $nfiles corpus files"
hyperfine --style basic --runs 3 --warmup 1 --export-json "$results/berth-config.json" --command-name berth-config \
    "$work/config-all.sh '$rel/berth compose'"
hyperfine --style basic --runs 3 --warmup 1 --export-json "$results/compose-config.json" --command-name compose-config \
    "$work/config-all.sh '$docker_cli compose'"

median() { [ -f "$results/$1.json" ] && jq -r '.results[0].median' "$results/$1.json"; }
fmt_s() { [ -n "$1" ] && awk -v s="$1" 'BEGIN {printf "%.3f", s}' || echo "n/a"; }
ratio() { [ -n "$1" ] && [ -n "$2" ] && awk -v a="$1" -v b="$2" 'BEGIN {printf "%.3f", a / b}' || echo "n/a"; }
bu=$(median berth-up) cu=$(median compose-up) bd=$(median berth-down) cd=$(median compose-down)
bc=$(median berth-config) cc=$(median compose-config)
verdict() { awk -v r="$1" -v t="$2" 'BEGIN {print (r != "n/a" && r <= t) ? "met" : "not met"}'; }
ru=$(ratio "$bu" "$cu") rd=$(ratio "$bd" "$cd") rc=$(ratio "$bc" "$cc")
jq -n --arg bu "$bu" --arg cu "$cu" --arg bd "$bd" --arg cd "$cd" --arg bc "$bc" --arg cc "$cc" \
    '{up: {berth: $bu, compose: $cu}, down: {berth: $bd, compose: $cd}, config: {berth: $bc, compose: $cc}}' \
    >"$repo/bench/results/compose.json"
dver=$(DOCKER_HOST=unix://$dsock "$docker_cli" version -f '{{.Server.Version}}' 2>/dev/null || echo "?")
cver=$("$docker_cli" compose version --short 2>/dev/null || echo "?")
section="<!-- bench:compose:start -->
## Compose

A 10-service project (busybox \`sleep\` services with \`init\`, on two networks, a named
volume each): \`up -d --wait\` from nothing and \`down -v -t 1\` back to nothing, median of
$runs runs (hyperfine, each run prepared by the other command), and \`config --format json\`
of all $nfiles files of the conformance corpus (one process per file, median of 3), seconds,
2 CPUs, $(date -u +%Y-%m-%d). berth compose → berthd (release) against Docker Compose
v$cver → dockerd $dver, side by side in one run. Produced by \`bench/compose-bench.sh\`.
Targets: up and down ≤ 0.1× Compose's time, config ≤ 0.2×.

| operation | berth compose | Docker Compose v2 | ratio |
|---|---|---|---|
| up -d --wait | $(fmt_s "$bu") | $(fmt_s "$cu") | $ru ($(verdict "$ru" 0.1)) |
| down -v | $(fmt_s "$bd") | $(fmt_s "$cd") | $rd ($(verdict "$rd" 0.1)) |
| config × $nfiles files | $(fmt_s "$bc") | $(fmt_s "$cc") | $rc ($(verdict "$rc" 0.2)) |
<!-- bench:compose:end -->"
echo "$section"
[ "$write" = 1 ] && write_section compose "$section"
exit 0
