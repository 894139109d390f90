#!/usr/bin/env bash
# Container start-to-exit latency: `run --rm --network none busybox true`, timed with
# hyperfine through
#   (a) berthd (release build), driven by the berth CLI and by the docker CLI,
#   (b) Debian's dockerd (docker.io), started here on private roots, via the docker CLI;
#       then berthd again beside it, the two alternated (bench/interleave.py) with the
#       berth CLI and with the docker CLI, for ratios the machine's drift cannot skew,
#   (c) bare `runc run` of an OCI bundle holding the same busybox rootfs,
#   (d) pelagos (a daemonless Rust runtime, `cargo install pelagos`), when installed:
#       the same rootfs loaded as busybox:latest (docker-archive -> skopeo -> oci-archive),
#   (e) the kernel floor: `unshare --fork --pid --net --mount --uts --ipc chroot ROOTFS true`.
# Each path is timed twice: "paced", with a pause of $pause s between runs (hyperfine
# --prepare, not timed) — the latency of one `run` as a user or a script sees it — and
# back to back, where each run also competes with the work the previous one left
# (berthd's next warm sandbox, dockerd's clean-up). berthd is also timed with
# --warm-containers 0: every container created on demand.
# The engines' exec roots (and runc's state root) are tmpfs mounts (bench/lib.sh
# run_dir), as /run is on a host; data roots are on the work directory's disk.
# Medians go to bench/results/run.json and to the "run" section of BENCHMARKS.md.
#
#   bench/run-bench.sh [-n RUNS] [-w WARMUP] [--skip-berth] [--skip-docker] [--skip-runc] [--skip-pelagos] [--no-write]
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
repo=$PWD
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"

runs=30 warmup=3 pause=0.2 do_berth=1 do_docker=1 do_runc=1 do_pelagos=1 write=1
while [ $# -gt 0 ]; do
    case $1 in
        -n) runs=$2; shift ;;
        -w) warmup=$2; shift ;;
        --skip-berth) do_berth=0 ;;
        --skip-docker) do_docker=0 ;;
        --skip-runc) do_runc=0 ;;
        --skip-pelagos) do_pelagos=0 ;;
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
    [ -z "${instant_pid:-}" ] || kill "$instant_pid" 2>/dev/null || true
    stop_pid "$berthd_pid"
    stop_pid "$dockerd_pid"
    remove_work "$work"
}
trap cleanup EXIT

echo "==> busybox rootfs"
busybox_rootfs

hf() { # name, command...  (back to back)
    local name=$1; shift
    echo "==> $name: $*"
    hyperfine --style basic --warmup "$warmup" --runs "$runs" --export-json "$results/$name.json" \
        --command-name "$name" "$*"
}
hf_paced() { # name, command...  (a pause before each run)
    local name=$1; shift
    echo "==> $name (paced, ${pause}s apart): $*"
    hyperfine --style basic --warmup "$warmup" --runs "$runs" --prepare "sleep $pause" \
        --export-json "$results/$name.json" --command-name "$name" "$*"
}
start_berthd() { # extra berthd flags...
    PATH=$rel:$PATH "$rel/berthd" --data-root "$work/berth/data" --exec-root "$work/berth/exec" \
        -H "unix://$bsock" "$@" >>"$work/berthd.log" 2>&1 </dev/null &
    berthd_pid=$!
    wait_ping "$bsock" 20
}

# ---------- (a) berthd ----------
if [ "$do_berth" = 1 ]; then
    build_release
    bsock=$work/berth.sock
    mkdir -p "$work/berth/data"
    run_dir "$work/berth/exec"
    berth_run="$rel/berth -H unix://$bsock run --rm --network none busybox true"
    docker_on_berth="env DOCKER_HOST=unix://$bsock DOCKER_CONFIG=$work/dockercfg $docker_cli run --rm --network none busybox true"
    if start_berthd && "$rel/berth" -H "unix://$bsock" import "$rootfs_tar" busybox >/dev/null \
        && $berth_run; then
        # Each client's runs together: the docker CLI's create bodies make containers
        # of another shape, and a pool adapted to one client is not the other's.
        hf_paced berth-cli-paced "$berth_run"
        hf berth-cli "$berth_run"
        hf_paced docker-cli-on-berthd-paced "$docker_on_berth"
        hf docker-cli-on-berthd "$docker_on_berth"
        # The docker CLI alone: the same runs against an engine that answers at once
        # and does nothing (bench/instant-engine.py), the floor under any engine.
        python3 bench/instant-engine.py "$work/instant.sock" &
        instant_pid=$!
        for _ in $(seq 50); do [ -S "$work/instant.sock" ] && break; sleep 0.1; done
        docker_alone="env DOCKER_HOST=unix://$work/instant.sock DOCKER_CONFIG=$work/dockercfg $docker_cli run --rm --network none busybox true"
        hf_paced docker-cli-alone-paced "$docker_alone"
        hf docker-cli-alone "$docker_alone"
        kill "$instant_pid"; wait "$instant_pid" 2>/dev/null || true
        stop_pid "$berthd_pid"; berthd_pid=
        start_berthd --warm-containers 0
        hf_paced berth-cli-cold-paced "$berth_run"
    else
        echo "!! berthd is not usable yet; skipping (a). Log:" >&2
        tail -n 20 "$work/berthd.log" >&2 || true
    fi
    stop_pid "$berthd_pid"; berthd_pid=
fi

# ---------- (b) reference dockerd ----------
if [ "$do_docker" = 1 ]; then
    dsock=$work/docker.sock
    mkdir -p "$work/docker/data" "$work/dockercfg"
    run_dir "$work/docker/exec"
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
    on_dockerd="env DOCKER_HOST=unix://$dsock $docker_cli run --rm --network none busybox true"
    hf_paced dockerd-paced "$on_dockerd"
    hf dockerd "$on_dockerd"
    # The ratios to dockerd from runs that alternate between the engines, as for
    # pelagos in (f): dockerd's own median moved 193 -> 274 ms back to back between two
    # runs of this script an hour apart, berth's 7.2 -> 7.3.
    if [ "$do_berth" = 1 ] && [ -n "${berth_run:-}" ] && start_berthd; then
        $berth_run
        python3 bench/interleave.py --runs "$runs" --pause "$pause" --block 10 \
            --out "$results/interleaved-dockerd.json" --a "$berth_run" --b "$on_dockerd"
        python3 bench/interleave.py --runs "$runs" --pause "$pause" --block 10 \
            --out "$results/interleaved-docker-cli.json" --a "$docker_on_berth" --b "$on_dockerd"
        stop_pid "$berthd_pid"; berthd_pid=
    fi
    stop_pid "$dockerd_pid"; dockerd_pid=
fi

# ---------- (c) bare runc ----------
if [ "$do_runc" = 1 ]; then
    bundle=$work/bundle
    mkdir -p "$bundle/rootfs"
    run_dir "$work/runc-root"
    tar -C "$bundle/rootfs" -xf "$rootfs_tar"
    (cd "$bundle" && runc spec)
    # args `true`, no terminal; runc spec's defaults already give a new network namespace
    jq '.process.args = ["true"] | .process.terminal = false
        | (.linux.namespaces |= (if any(.type == "network") then . else . + [{"type": "network"}] end))' \
        "$bundle/config.json" >"$bundle/config.json.new"
    mv "$bundle/config.json.new" "$bundle/config.json"
    runc --root "$work/runc-root" run --bundle "$bundle" bench-probe </dev/null
    hf_paced runc-paced "runc --root $work/runc-root run --bundle $bundle bench-run"
    hf runc "runc --root $work/runc-root run --bundle $bundle bench-run"
fi

# ---------- (d) pelagos, then (e) the kernel floor ----------
pelagos_bin=${PELAGOS:-$(command -v pelagos || echo "$HOME/.cargo/bin/pelagos")}
if [ "$do_pelagos" = 1 ] && [ -x "$pelagos_bin" ] && command -v skopeo >/dev/null; then
    for d in images layers blobs build-cache volumes networks rootfs; do
        install -d -m 2775 "/var/lib/pelagos/$d"
    done
    # The same rootfs as an image: a docker archive made here, then an OCI archive.
    arch=$work/pelagos
    mkdir -p "$arch"
    layer_sha=$(sha256sum "$rootfs_tar" | cut -d' ' -f1)
    cp "$rootfs_tar" "$arch/layer.tar"
    jq -n --arg d "sha256:$layer_sha" '{architecture: "amd64", os: "linux", config: {Cmd: ["sh"]},
        rootfs: {type: "layers", diff_ids: [$d]}, history: [{created_by: "berth bench"}]}' >"$arch/config.json"
    cfg_sha=$(sha256sum "$arch/config.json" | cut -d' ' -f1)
    mv "$arch/config.json" "$arch/$cfg_sha.json"
    jq -n --arg c "$cfg_sha.json" '[{Config: $c, RepoTags: ["busybox:latest"], Layers: ["layer.tar"]}]' >"$arch/manifest.json"
    tar -C "$arch" -cf "$work/busybox-docker.tar" manifest.json "$cfg_sha.json" layer.tar
    skopeo copy -q "docker-archive:$work/busybox-docker.tar" "oci-archive:$work/busybox-oci.tar:busybox:latest"
    "$pelagos_bin" image load -i "$work/busybox-oci.tar" --tag busybox:latest >/dev/null
    pelagos_run="$pelagos_bin run --rm --network none busybox:latest true"
    if $pelagos_run; then
        hf_paced pelagos-paced "$pelagos_run"
        hf pelagos "$pelagos_run"
    else
        echo "!! pelagos could not run the image; skipping (d)" >&2
    fi
elif [ "$do_pelagos" = 1 ]; then
    echo "!! pelagos or skopeo not installed (cargo install pelagos; apt-get install skopeo): skipping (d)" >&2
fi
# The kernel floor needs nothing but the rootfs.
mkdir -p "$work/floor-rootfs"
tar -C "$work/floor-rootfs" -xf "$rootfs_tar"
floor="unshare --fork --pid --net --mount --uts --ipc chroot $work/floor-rootfs /bin/true"
hf_paced floor-paced "$floor"
hf floor "$floor"

# ---------- (f) berthd and pelagos, interleaved ----------
# The machine's speed drifts over the minutes between (a) and (d): one build's paced
# median was 8.7 ms in one run of this script and 12.0 in the next (pelagos 12.0 and
# 10.3). The ratios to pelagos that the targets name come from runs that alternate
# between the two (bench/interleave.py): paced pairs, and back-to-back blocks of 10.
if [ "$do_berth" = 1 ] && [ -n "${pelagos_run:-}" ] && [ -n "${berth_run:-}" ]; then
    if start_berthd && wait_ping "$bsock" 20; then
        $berth_run
        python3 bench/interleave.py --runs "$runs" --pause "$pause" --block 10 \
            --out "$results/interleaved.json" --a "$berth_run" --b "$pelagos_run"
    fi
    stop_pid "$berthd_pid"; berthd_pid=
fi

# ---------- report ----------
median() { # name → median seconds, or empty
    [ -f "$results/$1.json" ] && jq -r '.results[0].median' "$results/$1.json" || true
}
ms() { [ -n "$1" ] && awk -v s="$1" 'BEGIN {printf "%.1f", s * 1000}' || echo "n/a"; }
ratio() { [ -n "$1" ] && [ -n "$2" ] && awk -v a="$1" -v b="$2" 'BEGIN {printf "%.3f", a / b}' || echo "n/a"; }

m_berth=$(median berth-cli)
m_docker_on_berth=$(median docker-cli-on-berthd)
m_docker_alone=$(median docker-cli-alone)
p_docker_alone=$(median docker-cli-alone-paced)
m_dockerd=$(median dockerd)
m_runc=$(median runc)
p_berth=$(median berth-cli-paced)
p_docker_on_berth=$(median docker-cli-on-berthd-paced)
p_dockerd=$(median dockerd-paced)
p_runc=$(median runc-paced)
p_cold=$(median berth-cli-cold-paced)
m_pelagos=$(median pelagos)
p_pelagos=$(median pelagos-paced)
m_floor=$(median floor)
p_floor=$(median floor-paced)
r_pel_b2b=$(ratio "$m_berth" "$m_pelagos")
r_pel_paced=$(ratio "$p_berth" "$p_pelagos")
# An interleave.py result read with a jq filter, in which r() rounds a ratio and
# ms() a median in seconds; $il_medians is the two commands' medians as text.
il() { # file, filter
    jq -r 'def r(x): x * 1000 | round / 1000; def ms(x): x * 10000 | round / 10; '"$2" "$results/$1"
}
il_medians='"\(ms(.paced_median_seconds[0])) vs \(ms(.paced_median_seconds[1])) ms paced, \(ms(.back_to_back_median_seconds[0])) vs \(ms(.back_to_back_median_seconds[1])) ms back to back"'
il_paced=n/a il_b2b=n/a il_note=""
if [ -f "$results/interleaved.json" ]; then
    il_paced=$(il interleaved.json 'r(.ratio_paced)')
    il_b2b=$(il interleaved.json 'r(.ratio_back_to_back)')
    il_note=$(il interleaved.json "$il_medians")
fi
il_dockerd() { # file → "paced ratio, back-to-back ratio (medians)"
    [ -f "$results/$1" ] || { echo "n/a"; return; }
    il "$1" '"\(r(.ratio_paced)) paced, \(r(.ratio_back_to_back)) back to back (" + '"$il_medians"' + ")"'
}
il_berth_dockerd=$(il_dockerd interleaved-dockerd.json)
il_dcli_dockerd=$(il_dockerd interleaved-docker-cli.json)
r_berth=$(ratio "$p_berth" "$p_dockerd")
r_docker_on_berth=$(ratio "$p_docker_on_berth" "$p_dockerd")
r_b2b=$(ratio "$m_berth" "$m_dockerd")
r_dob_b2b=$(ratio "$m_docker_on_berth" "$m_dockerd")
r_alone_b2b=$(ratio "$m_docker_alone" "$m_dockerd")
r_cold=$(ratio "$p_cold" "$p_dockerd")

write_json() {
mkdir -p bench/results
jq -n --arg date "$(date -u +%Y-%m-%dT%H:%M:%SZ)" --argjson runs "$runs" \
    --arg pause "$pause" --arg berth "$m_berth" --arg docker_on_berth "$m_docker_on_berth" --arg dockerd "$m_dockerd" \
    --arg runc "$m_runc" --arg pberth "$p_berth" --arg pdob "$p_docker_on_berth" --arg pdockerd "$p_dockerd" \
    --arg prunc "$p_runc" --arg pcold "$p_cold" --arg pel "$m_pelagos" --arg ppel "$p_pelagos" \
    --arg floor "$m_floor" --arg pfloor "$p_floor" --arg alone "$m_docker_alone" --arg palone "$p_docker_alone" \
    'def num: if . == "" then null else tonumber end;
     {date: $date, runs: $runs, pause_seconds: ($pause | num),
      paced_median_seconds: {berth_cli: ($pberth | num), docker_cli_on_berthd: ($pdob | num),
        berth_cli_no_warm_containers: ($pcold | num), dockerd: ($pdockerd | num), runc: ($prunc | num),
        pelagos: ($ppel | num), kernel_floor: ($pfloor | num), docker_cli_alone: ($palone | num)},
      back_to_back_median_seconds: {berth_cli: ($berth | num),
      docker_cli_on_berthd: ($docker_on_berth | num), dockerd: ($dockerd | num), runc: ($runc | num),
      pelagos: ($pel | num), kernel_floor: ($floor | num), docker_cli_alone: ($alone | num)}}' \
    >bench/results/run.json
for pair in interleaved.json:interleaved_berth_cli_and_pelagos interleaved-dockerd.json:interleaved_berth_cli_and_dockerd \
    interleaved-docker-cli.json:interleaved_docker_cli_on_berthd_and_dockerd; do
    file=${pair%%:*} key=${pair#*:}
    [ -f "$results/$file" ] || continue
    jq --slurpfile il "$results/$file" --arg key "$key" '. + {($key): ($il[0] | {paced_median_seconds, back_to_back_median_seconds, ratio_paced, ratio_back_to_back})}' \
        bench/results/run.json >"$work/run.json" && cp "$work/run.json" bench/results/run.json
done
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
*Paced*: ${pause} s pause before each run (\`--prepare\`, not timed): one \`run\` as a user or a
script sees it. *Back to back*: each run also pays for what the one before left running
(berthd: creating the next warm sandbox; dockerd: its clean-up). berthd keeps one container
of the last-run shape created ahead of time (\`--warm-containers\`, see ARCHITECTURE.md);
the last row turns that off.

| path | paced (ms) | back to back (ms) |
|---|---|---|
| berth CLI → berthd | $(ms "$p_berth") | $(ms "$m_berth") |
| docker CLI → berthd | $(ms "$p_docker_on_berth") | $(ms "$m_docker_on_berth") |
| docker CLI → an engine that answers at once (\`bench/instant-engine.py\`): the docker CLI alone | $(ms "$p_docker_alone") | $(ms "$m_docker_alone") |
| docker CLI → dockerd $(dockerd --version 2>/dev/null | awk '{print $3}' | tr -d ,) | $(ms "$p_dockerd") | $(ms "$m_dockerd") |
| bare \`runc run\` $(runc --version 2>/dev/null | awk 'NR==1 {print $3}') | $(ms "$p_runc") | $(ms "$m_runc") |
| berth CLI → berthd --warm-containers 0 | $(ms "$p_cold") | |
| pelagos $("$pelagos_bin" --version 2>/dev/null | awk '{print $2}') (daemonless) | $(ms "$p_pelagos") | $(ms "$m_pelagos") |
| kernel floor (\`unshare … chroot ROOTFS true\`) | $(ms "$p_floor") | $(ms "$m_floor") |

berth/docker ratio, paced (berth CLI ÷ dockerd): **$r_berth** (docker CLI on berthd: $r_docker_on_berth;
back to back: $r_b2b; without warm containers: $r_cold); target ≤ 0.05: $verdict.
Back to back, the docker CLI on berthd ÷ dockerd: $r_dob_b2b; the docker CLI alone ÷ dockerd: $r_alone_b2b.
Interleaved with dockerd in the same minutes (\`bench/interleave.py\`, as for pelagos below; each
back-to-back block of 10 starts after a 1 s pause, so one engine's tail does not land on the other's runs): the
berth CLI ÷ dockerd $il_berth_dockerd; the docker CLI on berthd ÷ dockerd $il_dcli_dockerd.
berth CLI ÷ pelagos, the two interleaved ($il_note): paced **$il_paced**,
back to back **$il_b2b** (targets ≤ 0.8 and ≤ 1.0); from the table's separate runs: $r_pel_paced and $r_pel_b2b.
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
