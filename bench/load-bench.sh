#!/usr/bin/env bash
# The daemon under load, side by side in one run (berthd, release build, and Debian's
# dockerd, each alone while measured):
#   clients   200 concurrent API clients for 60 s: list containers, inspect one,
#             version, and an events stream held open by every tenth client
#   logs      a container writing 1 GiB to stdout while `docker logs -f` follows it:
#             every byte arrives
#   execs     50 `docker exec` at once
# For each: errors, throughput, and the daemon's peak RSS (sampled every 100 ms while
# it runs). Results go to bench/results/load.json and the "load" section of
# BENCHMARKS.md.
#
#   bench/load-bench.sh [--seconds N] [--clients N] [--skip-docker] [--no-write]
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
repo=$PWD
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"

seconds=60 clients=200 do_docker=1 write=1
while [ $# -gt 0 ]; do
    case $1 in
        --seconds) seconds=$2; shift ;;
        --clients) clients=$2; shift ;;
        --skip-docker) do_docker=0 ;;
        --no-write) write=0 ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done
require_tools jq curl dockerd python3
find_docker_cli
bench_work berth-load

echo "==> busybox rootfs"
busybox_rootfs
build_release

cat >"$work/clients.py" <<'EOF'
# clients.py SOCKET SECONDS N CONTAINER: N threads hammering the API for SECONDS
import http.client, json, socket, sys, threading, time
sock, seconds, n, cid = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), sys.argv[4]

class Conn(http.client.HTTPConnection):
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(30)
        self.sock.connect(sock)

done, errors, events = [0] * n, [0] * n, [0] * n
deadline = time.monotonic() + seconds

def worker(i):
    c = Conn("localhost")
    paths = ["/v1.41/containers/json?all=1", f"/v1.41/containers/{cid}/json", "/v1.41/version"]
    k = 0
    while time.monotonic() < deadline:
        try:
            c.request("GET", paths[k % 3])
            r = c.getresponse()
            body = r.read()
            if r.status != 200:
                errors[i] += 1
            else:
                json.loads(body)
                done[i] += 1
        except Exception:
            errors[i] += 1
            c = Conn("localhost")
        k += 1

def watcher(i):
    # a raw socket: the stream stays open and mostly quiet; what arrives is read
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(sock)
    s.sendall(b"GET /v1.41/events HTTP/1.1\r\nHost: localhost\r\n\r\n")
    s.settimeout(0.5)
    head = b""
    while time.monotonic() < deadline:
        try:
            data = s.recv(65536)
        except (socket.timeout, TimeoutError):
            continue
        if not data:
            errors[i] += 1  # the daemon closed the stream
            return
        if not head:
            head = data
            if not head.startswith(b"HTTP/1.1 200"):
                errors[i] += 1
                return
        events[i] += 1
    s.close()

threads = [threading.Thread(target=watcher if i % 10 == 0 else worker, args=(i,)) for i in range(n)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(json.dumps({"requests": sum(done), "errors": sum(errors), "per_s": round(sum(done) / seconds, 1)}))
EOF

# peak RSS (KiB) of PID while COMMAND... runs, sampled every 100 ms
peak_rss() {
    local pid=$1 peak=0 r
    shift
    "$@" &
    local job=$!
    while kill -0 "$job" 2>/dev/null; do
        r=$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
        [ "${r:-0}" -gt "$peak" ] && peak=$r
        sleep 0.1
    done
    wait "$job"
    echo "$peak" >"$work/peak"
}

# measure NAME SOCKET PID: the three loads against the engine on SOCKET
measure() {
    local name=$1 sock=$2 pid=$3 d t0 t1 bytes
    d="env DOCKER_HOST=unix://$sock $docker_cli"
    $d import "$rootfs_tar" busybox >/dev/null
    for i in $(seq 20); do $d run -d --name "idle$i" --network none busybox sleep 3600 >/dev/null; done
    echo "==> $name: $clients clients for ${seconds}s"
    peak_rss "$pid" sh -c "python3 $work/clients.py $sock $seconds $clients idle1 >$work/$name-clients.json"
    jq --argjson rss "$(cat "$work/peak")" '. + {peak_rss_kib: $rss}' "$work/$name-clients.json" >"$work/$name-clients2.json"
    cat "$work/$name-clients2.json"

    echo "==> $name: 1 GiB through logs -f"
    $d run -d --name talker --network none busybox sh -c \
        'sleep 1; l=$(head -c 1023 /dev/zero | tr "\0" a); yes "$l" | head -c 1073741824' >/dev/null
    t0=$(date +%s.%N)
    peak_rss "$pid" sh -c "$d logs -f talker | wc -c >$work/$name-logbytes"
    t1=$(date +%s.%N)
    bytes=$(cat "$work/$name-logbytes")
    jq -n --argjson b "$bytes" --argjson rss "$(cat "$work/peak")" --argjson s "$(awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}')" \
        '{bytes: $b, complete: ($b == 1073741824), seconds: $s, peak_rss_kib: $rss}' >"$work/$name-logs.json"
    cat "$work/$name-logs.json"
    $d rm -f talker >/dev/null

    echo "==> $name: 50 execs at once"
    t0=$(date +%s.%N)
    peak_rss "$pid" sh -c "for i in \$(seq 50); do $d exec idle1 sh -c 'echo ok' & done >$work/$name-execs.out; wait"
    t1=$(date +%s.%N)
    jq -n --argjson ok "$(grep -c '^ok$' "$work/$name-execs.out")" --argjson rss "$(cat "$work/peak")" --argjson s "$(awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}')" \
        '{succeeded: $ok, seconds: $s, peak_rss_kib: $rss}' >"$work/$name-execs.json"
    cat "$work/$name-execs.json"
    for i in $(seq 20); do $d rm -f "idle$i" >/dev/null; done
}

spawn_berthd --bridge none
wait_ping "$bsock" 20
measure berth "$bsock" "$berthd_pid"
stop_pid "$berthd_pid"; berthd_pid=

if [ "$do_docker" = 1 ]; then
    start_dockerd "$work" --ip-forward=false --userland-proxy=false
    measure docker "$dsock" "$dockerd_pid"
    stop_pid "$dockerd_pid"; dockerd_pid=
fi

row() { # label engine-file jq-expression unit
    local b d
    b=$(jq -r "$3" "$work/berth-$2.json")
    if [ "$do_docker" = 1 ]; then d=$(jq -r "$3" "$work/docker-$2.json"); else d=n/a; fi
    echo "| $1 | $b$4 | $d$4 |"
}
table=$(printf '%s\n' \
    "$(row "API requests/s, $clients clients (errors)" clients2 '"\(.per_s) (\(.errors))"' '')" \
    "$(row 'peak RSS under the API load' clients2 '.peak_rss_kib / 1024 | floor' ' MiB')" \
    "$(row '1 GiB through logs -f: complete, seconds' logs '"\(.complete), \(.seconds * 10 | round / 10)"' ' s')" \
    "$(row 'peak RSS while following 1 GiB of logs' logs '.peak_rss_kib / 1024 | floor' ' MiB')" \
    "$(row '50 execs at once: succeeded, seconds' execs '"\(.succeeded), \(.seconds * 100 | round / 100)"' ' s')" \
    "$(row 'peak RSS during the execs' execs '.peak_rss_kib / 1024 | floor' ' MiB')")
echo "$table"
mkdir -p bench/results
jq -n --slurpfile c "$work/berth-clients2.json" --slurpfile l "$work/berth-logs.json" --slurpfile e "$work/berth-execs.json" \
    '{berthd: {clients: $c[0], logs: $l[0], execs: $e[0]}}' >bench/results/load.json
if [ "$do_docker" = 1 ]; then
    jq --slurpfile c "$work/docker-clients2.json" --slurpfile l "$work/docker-logs.json" --slurpfile e "$work/docker-execs.json" \
        '. + {dockerd: {clients: $c[0], logs: $l[0], execs: $e[0]}}' bench/results/load.json >"$work/load.json"
    cp "$work/load.json" bench/results/load.json
fi
if [ "$write" = 1 ]; then
    write_section load "<!-- bench:load:start -->
## The daemon under load (bench/load-bench.sh, $(date -u +%Y-%m-%d))

The docker CLI and a Python client against each engine, one engine at a time, 20 idle
containers present. Target (issue 9): no error, the log complete, the daemon's RSS
under 50 MB.

| measurement | berthd | dockerd 20.10 |
|---|---|---|
$table
<!-- bench:load:end -->"
fi
