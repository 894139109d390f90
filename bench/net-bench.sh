#!/usr/bin/env bash
# Networking, side by side in one run (both engines up at once), driven by the same docker CLI,
# each with its default bridge on (dockerd: docker0, iptables, its userland proxy):
#   run        `docker run --rm busybox true` (and `berth run`) on the default bridge and with
#              `--network none`, paced 0.2 s apart: the network's share of a start; then on
#              the bridge back to back (no pause: each run also pays for what the one
#              before left behind, e.g. berthd's next warm sandbox with its veth)
#   published  TCP throughput from the host to a container through `-p 127.0.0.1:P:5000`
#   c2c        TCP throughput between two containers on one user network
#   dns        1000 lookups of a container's name from inside a container (its
#              resolv.conf server), median and p99 latency
# The receiving end is busybox `nc -ll -e` running `dd of=/dev/null bs=1M` in the
# container; the sending end and the DNS client are Python on the host (sending from
# inside the client container's network namespace for c2c and dns, via nsenter), the
# same programs against both engines. Traffic stays on loopback and inside the
# namespaces the engines made. berthd is the release build; dockerd is Debian's
# docker.io. Medians go to bench/results/net.json and the "net" section of BENCHMARKS.md.
#
#   bench/net-bench.sh [-n RUNS] [--mib N] [--skip-docker] [--no-write]
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
repo=$PWD
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"

runs=20 mib=1024 do_docker=1 write=1
while [ $# -gt 0 ]; do
    case $1 in
        -n) runs=$2; shift ;;
        --mib) mib=$2; shift ;;
        --skip-docker) do_docker=0 ;;
        --no-write) write=0 ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done
require_tools hyperfine jq curl dockerd nsenter python3 iptables-save iptables-restore
find_docker_cli
bench_work berth-net

echo "==> busybox rootfs"
busybox_rootfs
build_release

cat >"$work/send.py" <<'EOF'
# send.py HOST PORT MIB: MiB/s of sending MIB MiB and seeing the receiver close
import socket, sys, time
host, port, mib = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
buf = b"\0" * (1 << 20)
s = socket.create_connection((host, port), timeout=60)
t = time.perf_counter()
for _ in range(mib):
    s.sendall(buf)
s.shutdown(socket.SHUT_WR)
s.recv(1)
print(f"{mib / (time.perf_counter() - t):.1f}")
EOF
cat >"$work/dns.py" <<'EOF'
# dns.py SERVER NAME N: {"median_us", "p99_us"} of N A queries for NAME (each answered)
import json, random, socket, struct, sys, time
server, name, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
qname = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(2)
lat = []
for _ in range(n):
    tid = random.randrange(65536)
    pkt = struct.pack(">HHHHHH", tid, 0x0100, 1, 0, 0, 0) + qname + struct.pack(">HH", 1, 1)
    t = time.perf_counter()
    s.sendto(pkt, (server, 53))
    while True:
        data, _ = s.recvfrom(1500)
        if struct.unpack(">H", data[:2])[0] == tid:
            break
    lat.append((time.perf_counter() - t) * 1e6)
    assert data[3] & 0xF == 0 and struct.unpack(">H", data[6:8])[0] >= 1, f"no answer for {name}"
lat.sort()
print(json.dumps({"median_us": round(lat[n // 2], 1), "p99_us": round(lat[int(n * 0.99)], 1)}))
EOF

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
med() { jq '.results[0].median * 1000 * 10 | round / 10' "$work/$1.json"; }
paced() { # NAME COMMAND: a paced hyperfine series
    hyperfine --style basic --runs "$runs" --warmup 3 --prepare 'sleep 0.2' --export-json "$work/$1.json" "$2"
}
b2b() { # NAME COMMAND: the same, back to back
    hyperfine --style basic --runs "$runs" --warmup 3 --export-json "$work/$1.json" "$2"
}

# setup NAME SOCKET PORT: busybox, the run-latency series, then a sink container
# (published on 127.0.0.1:PORT) and a client container on a user network
setup() {
    local name=$1 sock=$2 port=$3 d
    d="env DOCKER_HOST=unix://$sock $docker_cli"
    $d import "$rootfs_tar" busybox >/dev/null
    $d run --rm busybox true
    paced "$name-none" "$d run --rm --network none busybox true"
    paced "$name-bridge" "$d run --rm busybox true"
    b2b "$name-bridge-b2b" "$d run --rm busybox true"
    if [ "$name" = berth ]; then
        paced berthcli-none "$rel/berth -H unix://$sock run --rm --network none busybox true"
        paced berthcli-bridge "$rel/berth -H unix://$sock run --rm busybox true"
        b2b berthcli-bridge-b2b "$rel/berth -H unix://$sock run --rm busybox true"
    fi
    $d network create netbench >/dev/null
    $d run -d --name sink --network netbench -p "127.0.0.1:$port:5000" busybox sh -c \
        'printf "#!/bin/sh\nexec dd of=/dev/null bs=1M 2>/dev/null\n" >/sink && chmod +x /sink && exec nc -ll -p 5000 -e /sink' >/dev/null
    $d run -d --name client --network netbench busybox sleep 3600 >/dev/null
}

# facts SOCKET: the client's pid, the sink's address and the client's DNS server
facts() {
    local d="env DOCKER_HOST=unix://$1 $docker_cli"
    echo "$($d inspect -f '{{.State.Pid}}' client)" \
        "$($d inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' sink)" \
        "$($d exec client awk '/^nameserver/ {print $2; exit}' /etc/resolv.conf)"
}

# round NAME PORT PID IP SERVER: one transfer each way in and 1000 lookups
round() {
    local name=$1 port=$2 pid=$3 ip=$4 server=$5
    python3 "$work/send.py" 127.0.0.1 "$port" "$mib" >>"$work/$name-published.all"
    nsenter --net="/proc/$pid/ns/net" python3 "$work/send.py" "$ip" 5000 "$mib" >>"$work/$name-c2c.all"
    nsenter --net="/proc/$pid/ns/net" python3 "$work/dns.py" "$server" sink 1000 >>"$work/$name-dns.all"
}

# Both engines run at once (their bridges and subnets differ), so that transfers and
# lookups alternate between them round by round: this VM's speed drifts more over a
# minute than the engines differ.
spawn_berthd
wait_ping "$bsock" 20
if [ "$do_docker" = 1 ]; then
    iptables-save >"$work/iptables.before"
    dsock=$work/docker.sock
    mkdir -p "$work/docker/data"
    run_dir "$work/docker/exec"
    dockerd --data-root "$work/docker/data" --exec-root "$work/docker/exec" -H "unix://$dsock" \
        --pidfile "$work/docker.pid" --bip 172.31.250.1/24 >"$work/dockerd.log" 2>&1 </dev/null &
    dockerd_pid=$!
    restore_host() {
        stop_pid "$dockerd_pid"
        ip link del docker0 2>/dev/null || true
        for t in nat filter; do iptables -t $t -F; iptables -t $t -X; done
        iptables-restore <"$work/iptables.before"
        bench_cleanup
    }
    trap restore_host EXIT
    wait_ping "$dsock" 60 || { tail -n 30 "$work/dockerd.log" >&2; exit 1; }
fi
echo "==> berthd"
setup berth "$bsock" 18080
engines=(berth)
if [ "$do_docker" = 1 ]; then
    echo "==> dockerd (docker0, iptables, userland proxy)"
    setup docker "$dsock" 18081
    engines+=(docker)
fi
sleep 1
read -r bpid bip bdns <<<"$(facts "$bsock")"
[ "$do_docker" = 1 ] && read -r dpid dip ddns <<<"$(facts "$dsock")"
echo "==> transfers and lookups, alternating"
for _ in 1 2 3 4 5; do
    round berth 18080 "$bpid" "$bip" "$bdns"
    [ "$do_docker" = 1 ] && round docker 18081 "$dpid" "$dip" "$ddns"
done
for e in "${engines[@]}"; do
    median <"$work/$e-published.all" >"$work/$e-published.txt"
    median <"$work/$e-c2c.all" >"$work/$e-c2c.txt"
    jq -s '{median_us: (map(.median_us) | sort | .[length / 2 | floor]), p99_us: (map(.p99_us) | sort | .[length / 2 | floor])}' \
        "$work/$e-dns.all" >"$work/$e-dns.json"
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (b == "n/a") print "n/a"; else printf "%.3f", a / b}'; }
bn=$(med berth-none) bb=$(med berth-bridge) cn=$(med berthcli-none) cb=$(med berthcli-bridge)
bbb=$(med berth-bridge-b2b) cbb=$(med berthcli-bridge-b2b)
bp=$(cat "$work/berth-published.txt") bc=$(cat "$work/berth-c2c.txt")
bdm=$(jq .median_us "$work/berth-dns.json") bdp=$(jq .p99_us "$work/berth-dns.json")
if [ "$do_docker" = 1 ]; then
    dn=$(med docker-none) db=$(med docker-bridge) dbb=$(med docker-bridge-b2b)
    dp=$(cat "$work/docker-published.txt") dc=$(cat "$work/docker-c2c.txt")
    ddm=$(jq .median_us "$work/docker-dns.json") ddp=$(jq .p99_us "$work/docker-dns.json")
    dadd=$(awk -v a="$db" -v b="$dn" 'BEGIN {printf "%.1f", a - b}')
else
    dn=n/a db=n/a dbb=n/a dp=n/a dc=n/a ddm=n/a ddp=n/a dadd=n/a
fi
badd=$(awk -v a="$bb" -v b="$bn" 'BEGIN {printf "%.1f", a - b}')
cadd=$(awk -v a="$cb" -v b="$cn" 'BEGIN {printf "%.1f", a - b}')
table="| docker CLI: run --rm, --network none | $bn ms | $dn ms | $(ratio "$bn" "$dn") |
| docker CLI: run --rm, default bridge | $bb ms | $db ms | $(ratio "$bb" "$db") |
| docker CLI: what the bridge adds to run | $badd ms | $dadd ms | |
| berth CLI: run --rm, --network none | $cn ms | | |
| berth CLI: run --rm, default bridge (vs docker CLI → dockerd) | $cb ms | $db ms | $(ratio "$cb" "$db") |
| berth CLI: what the bridge adds to run | $cadd ms | | |
| docker CLI: run --rm, default bridge, back to back | $bbb ms | $dbb ms | $(ratio "$bbb" "$dbb") |
| berth CLI: run --rm, default bridge, back to back (vs docker CLI → dockerd) | $cbb ms | $dbb ms | $(ratio "$cbb" "$dbb") |
| TCP host → 127.0.0.1 published port ($mib MiB) | $bp MiB/s | $dp MiB/s | $(ratio "$bp" "$dp") |
| TCP container → container, one network ($mib MiB) | $bc MiB/s | $dc MiB/s | $(ratio "$bc" "$dc") |
| DNS lookup of a container name, median | $bdm µs | $ddm µs | $(ratio "$bdm" "$ddm") |
| DNS lookup of a container name, p99 | $bdp µs | $ddp µs | $(ratio "$bdp" "$ddp") |"
echo "$table"
mkdir -p bench/results
jq -n --argjson bn "$bn" --argjson bb "$bb" --argjson cn "$cn" --argjson cb "$cb" \
    --argjson bbb "$bbb" --argjson cbb "$cbb" --argjson bp "$bp" --argjson bc "$bc" \
    --argjson bdm "$bdm" --argjson bdp "$bdp" \
    '{berthd: {run_none_ms: $bn, run_bridge_ms: $bb, berth_cli_run_none_ms: $cn, berth_cli_run_bridge_ms: $cb,
      run_bridge_b2b_ms: $bbb, berth_cli_run_bridge_b2b_ms: $cbb,
      published_mib_s: $bp, c2c_mib_s: $bc, dns_median_us: $bdm, dns_p99_us: $bdp}}' >bench/results/net.json
if [ "$do_docker" = 1 ]; then
    jq --argjson dn "$dn" --argjson db "$db" --argjson dbb "$dbb" --argjson dp "$dp" --argjson dc "$dc" --argjson ddm "$ddm" --argjson ddp "$ddp" \
        '. + {dockerd: {run_none_ms: $dn, run_bridge_ms: $db, run_bridge_b2b_ms: $dbb, published_mib_s: $dp, c2c_mib_s: $dc, dns_median_us: $ddm, dns_p99_us: $ddp}}' \
        bench/results/net.json >"$work/net.json"
    cp "$work/net.json" bench/results/net.json
fi
if [ "$write" = 1 ]; then
    write_section net "<!-- bench:net:start -->
## Networking (bench/net-bench.sh, $(date -u +%Y-%m-%d))

Each engine with its default bridge (dockerd 20.10: docker0, iptables, its userland
proxy for 127.0.0.1), both running at once. Runs paced 0.2 s apart (and, where marked,
back to back), medians of $runs.
Then five rounds alternating between the engines, each a transfer to the published
port, one between two containers on a user network (Python sender, busybox \`dd\`
receiver) and 1000 DNS queries for a container's name from inside a container:
medians of the five. Ratio: berthd / dockerd (for throughput, higher is better).

| measurement | berthd | dockerd 20.10 | ratio |
|---|---|---|---|
$table
<!-- bench:net:end -->"
fi
