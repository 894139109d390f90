# Helpers shared by the bench/*.sh scripts (sourced, not run).

# stop_pid PID: SIGTERM, wait up to 15 s, then SIGKILL.
stop_pid() {
    local pid=$1
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 150); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
}

# remove_work DIR: unmount anything still mounted under DIR (deepest first), then delete it.
remove_work() {
    local dir=$1
    awk -v w="$dir" '$5 ~ "^"w {print $5}' /proc/self/mountinfo | sort -r | while read -r m; do
        umount -l "$m" 2>/dev/null || true
    done
    rm -rf "$dir"
}

# run_dir DIR: DIR, made a tmpfs. The engines' exec roots (berthd's /run/berth,
# dockerd's /var/run/docker and its containerd's /run/containerd, runc's /run/runc) are
# on the /run tmpfs of any systemd host; under $work (ext4 on the bench machine) every
# state file, socket and directory of a container would cost a disk inode instead.
run_dir() {
    mkdir -p "$1"
    mountpoint -q "$1" || mount -t tmpfs -o mode=0711 tmpfs "$1"
}

# wait_ping SOCKET SECONDS: wait until an engine answers /_ping on SOCKET.
wait_ping() {
    local sock=$1 t=$2
    for _ in $(seq $((t * 10))); do
        curl -sf --max-time 1 --unix-socket "$sock" http://localhost/_ping >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    return 1
}

# write_section NAME TEXT: replace the <!-- bench:NAME:start/end --> section of
# BENCHMARKS.md with TEXT (which carries the markers), or append it.
write_section() {
    local name=$1 text=$2 f=BENCHMARKS.md tmp
    tmp=$(mktemp)
    printf '%s\n' "$text" >"$tmp"
    [ -f "$f" ] || printf '# Benchmarks\n' >"$f"
    if grep -q "<!-- bench:$name:start -->" "$f"; then
        awk -v repl="$tmp" -v start="<!-- bench:$name:start -->" -v end="<!-- bench:$name:end -->" '
            $0 == start {while ((getline l < repl) > 0) print l; skip=1; next}
            $0 == end {skip=0; next}
            !skip {print}' "$f" >"$f.new"
        mv "$f.new" "$f"
    else
        printf '\n%s\n' "$text" >>"$f"
    fi
    rm -f "$tmp"
}

# start_dockerd WORK [EXTRA-FLAGS...]: a private dockerd (roots and socket under WORK,
# no bridge, no iptables) in the background; sets dockerd_pid and dsock, waits for it.
start_dockerd() {
    local work=$1
    shift
    dsock=$work/docker.sock
    mkdir -p "$work/docker/data"
    run_dir "$work/docker/exec"
    dockerd --data-root "$work/docker/data" --exec-root "$work/docker/exec" -H "unix://$dsock" \
        --pidfile "$work/docker.pid" --bridge none --iptables=false --ip-masq=false "$@" \
        >"$work/dockerd.log" 2>&1 </dev/null &
    dockerd_pid=$!
    wait_ping "$dsock" 60 || { echo "dockerd did not start" >&2; tail -n 30 "$work/dockerd.log" >&2; return 1; }
}

# require_tools TOOL...: stop with the setup hint when one is missing.
require_tools() {
    local tool
    for tool; do
        command -v "$tool" >/dev/null || { echo "$tool missing: run scripts/setup.sh" >&2; exit 1; }
    done
}

# find_docker_cli: docker_cli is $DOCKER_CLI, else the docker CLI 28 in /usr/local/bin,
# else the one on PATH.
find_docker_cli() {
    docker_cli=${DOCKER_CLI:-/usr/local/bin/docker}
    [ -x "$docker_cli" ] || docker_cli=$(command -v docker)
}

# bench_work PREFIX: work=/tmp/PREFIX.XXXXXX with a private DOCKER_CONFIG; at exit the
# engines started in it (berthd_pid, dockerd_pid) are stopped and it is removed.
bench_work() {
    work=$(mktemp -d "/tmp/$1.XXXXXX")
    export DOCKER_CONFIG=$work/dockercfg
    mkdir -p "$DOCKER_CONFIG"
    berthd_pid= dockerd_pid=
    trap bench_cleanup EXIT
}
bench_cleanup() {
    # berthd leaves its containers running when it stops (so that a restart finds
    # them): remove the bench's own first, or they outlive the bench.
    if [ -n "${bsock:-}" ] && [ -S "$bsock" ] && [ -n "${rel:-}" ]; then
        local ids
        ids=$("$rel/berth" -H "unix://$bsock" ps -aq 2>/dev/null || true)
        [ -z "$ids" ] || "$rel/berth" -H "unix://$bsock" rm -f $ids >/dev/null 2>&1 || true
    fi
    [ -z "${instant_pid:-}" ] || kill "$instant_pid" 2>/dev/null || true
    stop_pid "$berthd_pid"
    stop_pid "$dockerd_pid"
    remove_work "$work"
}

# spawn_berthd [FLAGS...]: the release berthd ($rel) on roots under $work, listening
# on bsock=$work/berth.sock, in the background (berthd_pid); wait with wait_ping.
spawn_berthd() {
    bsock=$work/berth.sock
    mkdir -p "$work/berth/data"
    run_dir "$work/berth/exec"
    PATH=$rel:$PATH "$rel/berthd" --data-root "$work/berth/data" --exec-root "$work/berth/exec" \
        -H "unix://$bsock" "$@" >"$work/berthd.log" 2>&1 </dev/null &
    berthd_pid=$!
}

# busybox_rootfs: the test image's rootfs tar at rootfs_tar=$work/busybox.tar.
busybox_rootfs() {
    rootfs_tar=$work/busybox.tar
    scripts/mkrootfs-busybox.sh "$rootfs_tar"
}

# build_release: the release binaries, in rel=$repo/target/release.
build_release() {
    echo "==> scripts/build.sh --release"
    scripts/build.sh --release
    rel=$repo/target/release
}
