//! Mount islands: the exec root's `c/` (container root filesystems) and `netns/`
//! (pinned network namespaces) are each a bind mount of themselves, made by berthd at
//! start-up.
//!
//! Every running container adds two mounts under them to the host's mount table, and
//! creating a container costs time per mount in that table: libcontainer's cgroup
//! manager reads `/proc/self/mountinfo` once per v1 controller, and its init process
//! copies the whole table into the container's new mount namespace, then detaches all
//! of it after `pivot_root`. With 300 containers running (624 mounts) a cold `run`
//! took 31 ms instead of 17. So a shim that creates a container first moves to a mount
//! namespace of its own (a slave of the host's: nothing it does there propagates
//! back), clones the mounts its container uses (`open_tree`), detaches each island
//! whole — one `umount` for every other container's mounts — and puts the clones back
//! where they were. An island is a bind of its own directory, so every path below it
//! still names the same files once it is gone; only the other containers' mounts are.
//!
//! The exec root they are in is kept on a tmpfs ([`tmpfs_root`]).

use std::ffi::CString;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// The islands, relative to the exec root.
pub const ISLANDS: [&str; 2] = ["c", "netns"];

/// The mount points of a mountinfo text, in its order.
pub fn mount_points(mountinfo: &str) -> io::Result<Vec<PathBuf>> {
    use procfs_core::FromBufRead;
    let infos = procfs_core::process::MountInfos::from_buf_read(mountinfo.as_bytes())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("mountinfo: {e}")))?;
    Ok(infos.into_iter().map(|m| m.mount_point).collect())
}

fn own_mount_points() -> io::Result<Vec<PathBuf>> {
    mount_points(&std::fs::read_to_string("/proc/self/mountinfo")?)
}

/// What [`make`] found or did for one island.
#[derive(Debug, PartialEq, Eq)]
pub enum Island {
    /// Made now.
    Made,
    /// A mount point already (made by an earlier berthd since the host booted).
    Present,
    /// Not made: this many mounts are below it already (containers of a berthd from
    /// before islands). Made at a start with none.
    Occupied(usize),
}

/// berthd: make each island of `exec_root` a bind mount of itself (see the module's
/// documentation).
pub fn make(exec_root: &Path) -> io::Result<Vec<(PathBuf, Island)>> {
    let points = own_mount_points()?;
    let mut out = Vec::new();
    for name in ISLANDS {
        let dir = exec_root.join(name);
        std::fs::create_dir_all(&dir)?;
        let state = match plan(&points, &dir) {
            Island::Made => {
                bind_self(&dir)?;
                Island::Made
            }
            other => other,
        };
        out.push((dir, state));
    }
    Ok(out)
}

/// What [`tmpfs_root`] found or did with the exec root.
#[derive(Debug, PartialEq, Eq)]
pub enum ExecRoot {
    /// On a tmpfs (or ramfs) already: `/run` on most hosts, or one an earlier berthd
    /// mounted since the host booted.
    Tmpfs,
    /// A tmpfs was mounted there now.
    Mounted,
    /// Left on the filesystem it is on (named): not empty (state of a berthd from before
    /// this, which must stay where its containers find it). Mounted at a start that
    /// finds it empty.
    Kept(String),
}

const TMPFS_MAGIC: i64 = 0x0102_1994;
const RAMFS_MAGIC: i64 = 0x8584_58f6;

/// berthd, first of all: the exec root is runtime state — container bundles and shim
/// sockets, records of what runs, network namespace pins — that must not outlive the
/// host, so it belongs on a tmpfs, as `/run` is on most hosts. Where it is not (a host
/// whose `/run` is on disk), a tmpfs is mounted on it while it is empty: state in it
/// then survives a daemon crash or restart (the mount stays) but not a reboot, and
/// every container's files there (bundle, state, shim log, pin) are made and removed in
/// memory. On a host like the bench machine (ext4 without a journal, where each inode
/// allocated skips every inode of its group freed in the last one to six minutes) the
/// allocations went from 9.6 to 5.5 % of a back-to-back `run --rm`'s CPU.
pub fn tmpfs_root(exec_root: &Path) -> io::Result<ExecRoot> {
    std::fs::create_dir_all(exec_root)?;
    let p = cpath(exec_root)?;
    // SAFETY: statfs into a zeroed struct we own, with a NUL-terminated path.
    let f_type = unsafe {
        let mut st: libc::statfs = std::mem::zeroed();
        check(libc::statfs(p.as_ptr(), &mut st) as libc::c_long)?;
        st.f_type as i64
    };
    if f_type == TMPFS_MAGIC || f_type == RAMFS_MAGIC {
        return Ok(ExecRoot::Tmpfs);
    }
    if std::fs::read_dir(exec_root)?.next().is_some() {
        return Ok(ExecRoot::Kept(fs_name(f_type)));
    }
    let mode = {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(exec_root)?.permissions().mode() & 0o7777
    };
    let data = CString::new(format!("mode={mode:o}")).expect("no NUL");
    // SAFETY: mount(2) with NUL-terminated strings.
    check(unsafe {
        libc::mount(
            c"tmpfs".as_ptr(),
            p.as_ptr(),
            c"tmpfs".as_ptr(),
            libc::MS_NOSUID | libc::MS_NODEV,
            data.as_ptr().cast(),
        )
    } as libc::c_long)?;
    Ok(ExecRoot::Mounted)
}

/// A filesystem's name for a log line, from its magic number.
fn fs_name(f_type: i64) -> String {
    match f_type {
        0xef53 => "ext4".into(),
        0x5846_5342 => "xfs".into(),
        0x9123_683e => "btrfs".into(),
        0x794c_7630 => "overlay".into(),
        n => format!("filesystem {n:#x}"),
    }
}

/// Whether `dir` can become an island, given the mount points.
fn plan(points: &[PathBuf], dir: &Path) -> Island {
    if points.iter().any(|p| p == dir) {
        return Island::Present;
    }
    match points.iter().filter(|p| p.starts_with(dir)).count() {
        0 => Island::Made,
        n => Island::Occupied(n),
    }
}

fn cpath(p: &Path) -> io::Result<CString> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| io::ErrorKind::InvalidInput.into())
}

fn check(rc: libc::c_long) -> io::Result<libc::c_long> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

fn bind_self(dir: &Path) -> io::Result<()> {
    let p = cpath(dir)?;
    // SAFETY: mount(2) with NUL-terminated paths and no data.
    check(unsafe { libc::mount(p.as_ptr(), p.as_ptr(), std::ptr::null(), libc::MS_BIND, std::ptr::null()) } as libc::c_long)?;
    Ok(())
}

/// Is `p` the root of a mount (`statx`'s `STATX_ATTR_MOUNT_ROOT`; no mountinfo read,
/// which with hundreds of mounts took a shim 3 ms)?
fn mount_root(p: &Path) -> bool {
    let Ok(c) = cpath(p) else { return false };
    // SAFETY: statx into a zeroed struct we own, with a NUL-terminated path.
    unsafe {
        let mut st: libc::statx = std::mem::zeroed();
        libc::statx(libc::AT_FDCWD, c.as_ptr(), libc::AT_SYMLINK_NOFOLLOW, 0, &mut st) == 0
            && st.stx_attributes_mask & libc::STATX_ATTR_MOUNT_ROOT as u64 != 0
            && st.stx_attributes & libc::STATX_ATTR_MOUNT_ROOT as u64 != 0
    }
}

/// The mounts to keep: for each path the container uses that lies in an island, the
/// deepest mount root between it and the island (`is_root` tells mount roots).
fn keep(islands: &[PathBuf], uses: &[PathBuf], is_root: impl Fn(&Path) -> bool) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = Vec::new();
    for u in uses {
        let Some(island) = islands.iter().find(|i| u.starts_with(i) && *i != u) else { continue };
        let holder = u.ancestors().take_while(|a| *a != island.as_path()).find(|a| is_root(a));
        if let Some(h) = holder {
            if !out.iter().any(|o| o == h) {
                out.push(h.to_owned());
            }
        }
    }
    // A mount inside another kept one comes with it (the clones are recursive).
    let all = out.clone();
    out.retain(|p| !all.iter().any(|q| q != p && p.starts_with(q)));
    out.sort();
    out
}

/// The shim, before it creates its container (see the module's documentation):
/// `uses` are the paths the container's spec names (root, namespace paths, mount
/// sources). Returns how many islands were left out of this process's namespace (0:
/// the exec root has none; nothing done). Must run while the process has one thread.
/// Done whatever the number of mounts: with a handful of containers it costs no more
/// than it saves (cold `run` A/B within noise, 16.4–17.1 ms both ways).
pub fn prune(exec_root: &Path, uses: &[PathBuf]) -> io::Result<usize> {
    let islands: Vec<PathBuf> = ISLANDS.iter().map(|i| exec_root.join(i)).filter(|i| mount_root(i)).collect();
    if islands.is_empty() {
        return Ok(0);
    }
    let kept = keep(&islands, uses, mount_root);
    // SAFETY: unshare and mount with constant arguments; single-threaded caller.
    check(unsafe { libc::unshare(libc::CLONE_NEWNS) } as libc::c_long)?;
    let root = c"/";
    // SAFETY: as above; a slave tree: the host's later mounts still come in, none of
    // ours goes out.
    check(unsafe {
        libc::mount(std::ptr::null(), root.as_ptr(), std::ptr::null(), libc::MS_REC | libc::MS_SLAVE, std::ptr::null())
    } as libc::c_long)?;
    let mut clones = Vec::new();
    for k in &kept {
        let p = cpath(k)?;
        let flags = OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint | AT_RECURSIVE;
        // SAFETY: open_tree with a NUL-terminated path; returns a new fd or -1.
        let fd = check(unsafe { libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, p.as_ptr(), flags) })?;
        // SAFETY: a new descriptor nothing else owns.
        clones.push((p, unsafe { OwnedFd::from_raw_fd(fd as i32) }));
    }
    for i in &islands {
        let p = cpath(i)?;
        // SAFETY: umount2 with a NUL-terminated path.
        check(unsafe { libc::umount2(p.as_ptr(), libc::MNT_DETACH) } as libc::c_long)?;
    }
    for (p, fd) in &clones {
        use std::os::fd::AsRawFd;
        // SAFETY: move_mount of a detached tree (its fd, empty path) onto a path.
        check(unsafe {
            libc::syscall(libc::SYS_move_mount, fd.as_raw_fd(), c"".as_ptr(), libc::AT_FDCWD, p.as_ptr(), MOVE_MOUNT_F_EMPTY_PATH)
        })?;
    }
    Ok(islands.len())
}

// linux/mount.h, linux/fcntl.h
const OPEN_TREE_CLONE: libc::c_uint = 1;
const AT_RECURSIVE: libc::c_uint = 0x8000;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 4;

#[cfg(test)]
mod tests {
    use super::*;

    fn pts(v: &[&str]) -> Vec<PathBuf> {
        v.iter().map(PathBuf::from).collect()
    }

    #[test]
    fn an_island_is_made_only_where_nothing_is_mounted_yet() {
        let dir = Path::new("/run/berth/c");
        assert_eq!(plan(&pts(&["/", "/run"]), dir), Island::Made);
        assert_eq!(plan(&pts(&["/", "/run", "/run/berth/c"]), dir), Island::Present);
        assert_eq!(plan(&pts(&["/", "/run", "/run/berth/c/a/rootfs", "/run/berth/c/b/rootfs"]), dir), Island::Occupied(2));
        // a sibling with a common prefix is not below it
        assert_eq!(plan(&pts(&["/", "/run/berth/cc/x"]), dir), Island::Made);
    }

    #[test]
    fn the_mounts_a_container_uses_are_kept_and_nothing_else() {
        let islands = pts(&["/x/c", "/x/netns"]);
        let points = pts(&["/", "/x/c", "/x/netns", "/x/c/a/rootfs", "/x/c/b/rootfs", "/x/netns/a", "/x/netns/b", "/x/c/a/rootfs/data"]);
        let is_root = |p: &Path| points.iter().any(|q| q == p);
        let uses = pts(&["/x/c/a/rootfs", "/x/netns/a", "/home/u/src", "/x/c/a/config.json", "/x/c/a/rootfs/data/f", "/x/c"]);
        // its rootfs (with what is mounted inside it: the clones are recursive), its
        // namespace; a plain file under an island needs no mount; the other
        // container's mounts go
        assert_eq!(keep(&islands, &uses, is_root), pts(&["/x/c/a/rootfs", "/x/netns/a"]));
    }
}
