#!/usr/bin/env bash
# Build a minimal busybox root filesystem tar from Debian's busybox-static.
#   scripts/mkrootfs-busybox.sh OUT.tar
# Contents: /bin/busybox plus one symlink per applet, /etc/passwd and /etc/group
# (root, nobody 65534, app 1000:1000), /tmp (1777), /root, /home/app (owned by app).
# Used by setup.sh, the e2e tests and the benchmark, so all of them run the same image.
set -euo pipefail

out=${1:?usage: mkrootfs-busybox.sh OUT.tar}
busybox=${BUSYBOX:-/bin/busybox}
if [ ! -x "$busybox" ]; then
    echo "mkrootfs-busybox: $busybox not found (apt-get install busybox-static)" >&2
    exit 1
fi
# A dynamically linked busybox would not run inside the image.
if command -v file >/dev/null 2>&1 && file -L "$busybox" | grep -q 'dynamically linked'; then
    echo "mkrootfs-busybox: $busybox is dynamically linked; need busybox-static" >&2
    exit 1
fi

stage=$(mktemp -d "${TMPDIR:-/tmp}/berth-rootfs.XXXXXX")
trap 'rm -rf "$stage"' EXIT

mkdir -p "$stage"/{bin,etc,dev,proc,sys,root,home/app,tmp,var,usr/bin,usr/sbin,sbin}
cp "$busybox" "$stage/bin/busybox"
chmod 755 "$stage/bin/busybox"
for applet in $("$busybox" --list); do
    [ "$applet" = busybox ] && continue
    ln -s busybox "$stage/bin/$applet"
done

cat >"$stage/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/bin/sh
app:x:1000:1000:app:/home/app:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
PASSWD
cat >"$stage/etc/group" <<'GROUP'
root:x:0:
app:x:1000:
nogroup:x:65534:
GROUP
: >"$stage/etc/hostname"
: >"$stage/etc/hosts"
: >"$stage/etc/resolv.conf"

chmod 755 "$stage" "$stage"/{bin,etc,dev,proc,sys,home,var,usr,usr/bin,usr/sbin,sbin}
chmod 700 "$stage/root"
chmod 1777 "$stage/tmp"
chmod 755 "$stage/home/app"
chmod 644 "$stage"/etc/{passwd,group,hostname,hosts,resolv.conf}

# Ownership and timestamps are set in the archive itself so that the tar is the
# same whoever builds it; ./-prefixed names, like `docker export` makes.
tmp_out="$out.tmp.$$"
tar -C "$stage" --numeric-owner --owner=0 --group=0 --mtime='2024-01-01 00:00:00Z' \
    --sort=name --exclude=./home/app -cf "$tmp_out" .
tar -C "$stage" --numeric-owner --owner=1000 --group=1000 --mtime='2024-01-01 00:00:00Z' \
    --sort=name -rf "$tmp_out" ./home/app
mv -f "$tmp_out" "$out"
