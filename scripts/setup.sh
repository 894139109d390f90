#!/usr/bin/env bash
# Quick start, step 1 (as root on Debian 12; safe to run again):
# installs the system packages, builds berth in release mode, installs the binaries
# to /usr/local/bin, starts berthd, imports a busybox image and runs a container.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"

if [ "$(id -u)" -ne 0 ]; then
    echo "setup.sh must run as root (it installs packages and starts berthd)" >&2
    exit 1
fi
command -v cargo >/dev/null || { echo "cargo not found: install a Rust toolchain (rustup) first" >&2; exit 1; }

echo "==> system packages"
berth_install_deps
berth_install_py_deps
# docker.io must not run its own engine next to berthd.
berth_disable_system_docker

echo "==> scripts/build.sh --release"
scripts/build.sh --release
for b in berth berthd berth-shim; do
    install -m 0755 "target/release/$b" "/usr/local/bin/$b"
done

sock=/run/berth/berth.sock
export BERTH_HOST="unix://$sock"
ping() { curl -sf --max-time 2 --unix-socket "$sock" http://localhost/_ping >/dev/null 2>&1; }

if ping; then
    echo "==> berthd already running on $sock"
else
    echo "==> starting berthd (log: /var/log/berthd.log)"
    mkdir -p /var/lib/berth /run/berth /var/log
    nohup /usr/local/bin/berthd --data-root /var/lib/berth --exec-root /run/berth \
        -H "unix://$sock" >>/var/log/berthd.log 2>&1 </dev/null &
    for _ in $(seq 200); do ping && break; sleep 0.1; done
    if ! ping; then
        echo "berthd did not come up; last log lines:" >&2
        tail -n 30 /var/log/berthd.log >&2
        exit 1
    fi
fi

if curl -sf --unix-socket "$sock" http://localhost/v1.41/images/busybox:latest/json >/dev/null; then
    echo "==> busybox image present"
else
    echo "==> importing busybox image"
    tarball=$(mktemp /tmp/berth-busybox.XXXXXX.tar)
    scripts/mkrootfs-busybox.sh "$tarball"
    berth import "$tarball" busybox
    rm -f "$tarball"
fi

echo "==> berth run --rm busybox echo hello from berth"
berth run --rm busybox echo hello from berth
echo
echo "berthd is running on $sock. Try: berth run -it --rm busybox sh"
echo "The docker CLI works too: DOCKER_HOST=unix://$sock docker ps"
