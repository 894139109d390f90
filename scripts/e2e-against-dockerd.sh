#!/usr/bin/env bash
# Run the e2e suite against Debian's reference dockerd instead of berthd, to check
# that the tests assert Docker's real behaviour. `berthd` is replaced by a wrapper
# that starts dockerd on the same private roots/socket (with its own containerd,
# no bridge, no iptables), and `berth` by the docker CLI.
#   scripts/e2e-against-dockerd.sh [cargo test args...]   e.g. --tests --no-fail-fast
# Known differences from berthd's targets: dockerd 20.10 answers undecodable create
# bodies with 500 (current Docker: 400), and restart.rs cannot pass because a
# kill -9'd dockerd leaves its managed containerd behind and cannot start again.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v dockerd >/dev/null || { echo "dockerd not found (apt-get install docker.io)" >&2; exit 1; }
fake=$(mktemp -d /tmp/berth-fakebin.XXXXXX)
trap 'rm -rf "$fake"' EXIT

cat >"$fake/berthd" <<'WRAP'
#!/usr/bin/env bash
# berthd flags → dockerd flags (the same names), plus isolation from the host's docker.
exec_root=
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
    [ "${args[$i]}" = --exec-root ] && exec_root=${args[$((i + 1))]}
done
exec dockerd "$@" --pidfile "$exec_root/dockerd.pid" --bridge none --iptables=false \
    --ip-masq=false --ip-forward=false --userland-proxy=false --storage-driver vfs
WRAP
cat >"$fake/berth" <<WRAP
#!/bin/sh
exec ${DOCKER_CLI:-/usr/local/bin/docker} "\$@"
WRAP
chmod +x "$fake/berthd" "$fake/berth"
touch "$fake/berth-shim"

cargo build -p berth-e2e --tests
BERTH_BIN_DIR=$fake cargo test -p berth-e2e "$@"
