//! The rest of the container's root filesystem, made by the init itself: the steps
//! libcontainer's init process takes only for a new container.
//!
//! When the init has made every one of the spec's mounts ([`crate::mounts`]), what
//! libcontainer's init process still does to the root filesystem is fixed: the default
//! `/dev` links and device nodes, `pivot_root`, the standard streams pointed at the
//! container's `/dev/null`, the read-only root, and the read-only and masked paths. It
//! does them through pathrs and re-reads `/proc/self/mountinfo` to find the root's
//! parent mount: ~0.5 ms of the init's ~2 ms of CPU (perf and a system-call trace of
//! back-to-back runs), CPU that back-to-back runs share with the next start and that a
//! container made without a warm sandbox waits for.
//!
//! Here the init does them itself, in libcontainer's order and with its checks, then
//! hands the rest to libcontainer's init process as a process joining a container that
//! exists (`ContainerType::TenantContainer`): it sets the process's session, UTS
//! namespace and hostname, user, capabilities and seccomp, waits for the start signal
//! and runs the executor, exactly as before. Only specs whose mounts the init made
//! (all of them), with no terminal (libcontainer mounts the pty on `/dev/console`
//! itself), no sysctl left for libcontainer and device types it can make are taken; any
//! other keeps libcontainer's own steps.
//!
//! Paths inside the root before `pivot_root` are resolved as in [`crate::mounts`]:
//! `openat2(RESOLVE_IN_ROOT)`, so no link of the image leads out of it. After it, the
//! root is the container's own and paths are plain, as in libcontainer.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use libcontainer::oci_spec::runtime::{LinuxDeviceType, LinuxNamespaceType, Spec};
use nix::errno::Errno;
use nix::mount::{MntFlags, MsFlags};

use crate::mounts::{attach, dir_in, open_dir, relative, split};

/// What the init does to the root filesystem after its mounts (see the module's doc).
#[derive(Debug)]
pub struct Finish {
    nodes: Vec<Node>,
    readonly_root: bool,
    readonly_paths: Vec<PathBuf>,
    masked_paths: Vec<PathBuf>,
}

/// A device node to make under the root's `/dev`.
#[derive(Debug, PartialEq)]
struct Node {
    /// Relative to the root, below `dev`.
    rel: PathBuf,
    /// `S_IFCHR`, `S_IFBLK` or `S_IFIFO`, with the permission bits.
    mode: libc::mode_t,
    rdev: libc::dev_t,
    uid: Option<u32>,
    gid: Option<u32>,
}

/// libcontainer's default devices (`rootfs::utils::default_devices`): `/dev/null`,
/// `zero`, `full`, `tty`, `urandom`, `random`, character devices mode 0666, owned by
/// whoever makes them.
const DEFAULT_DEVICES: [(&str, u32, u32); 6] =
    [("null", 1, 3), ("zero", 1, 5), ("full", 1, 7), ("tty", 5, 0), ("urandom", 1, 9), ("random", 1, 8)];

/// libcontainer's `makedev` (glibc's encoding).
fn makedev(major: i64, minor: i64) -> libc::dev_t {
    ((minor & 0xff) | ((major & 0xfff) << 8) | ((minor & !0xff) << 12) | ((major & !0xfff) << 32)) as libc::dev_t
}

/// Take the root filesystem's steps from libcontainer for a spec whose mounts the init
/// made (`mounts::take` left none): drop from `spec` the namespaces the init entered
/// before them (mount, network, IPC), which a process joining a container would enter
/// again. None, with the spec untouched, for a spec outside what this covers.
pub fn take(spec: &mut Spec, console: bool) -> Option<Finish> {
    if console || spec.mounts().as_ref().is_some_and(|m| !m.is_empty()) {
        return None;
    }
    let linux = spec.linux().as_ref()?;
    if linux.sysctl().as_ref().is_some_and(|s| !s.is_empty()) || linux.mount_label().is_some() || linux.rootfs_propagation().is_some() {
        return None;
    }
    let entered = [LinuxNamespaceType::Mount, LinuxNamespaceType::Network, LinuxNamespaceType::Ipc];
    let namespaces: Vec<_> = linux.namespaces().clone()?.into_iter().filter(|n| !entered.contains(&n.typ())).collect();
    // What is left is made new by libcontainer (a path would name a file the container
    // no longer sees).
    if namespaces.iter().any(|n| n.path().is_some() || n.typ() == LinuxNamespaceType::User) {
        return None;
    }
    let mut nodes = Vec::new();
    for d in linux.devices().iter().flatten() {
        let rel = relative(d.path())?;
        if !rel.starts_with("dev") || rel == Path::new("dev") {
            return None;
        }
        let kind = match d.typ() {
            LinuxDeviceType::C | LinuxDeviceType::U => libc::S_IFCHR,
            LinuxDeviceType::B => libc::S_IFBLK,
            LinuxDeviceType::P => libc::S_IFIFO,
            LinuxDeviceType::A => return None,
        };
        let perm = d.file_mode().unwrap_or(0o666) & 0o7777;
        nodes.push(Node { rel, mode: kind | perm, rdev: makedev(d.major(), d.minor()), uid: d.uid(), gid: d.gid() });
    }
    for (name, major, minor) in DEFAULT_DEVICES {
        let rel = Path::new("dev").join(name);
        if !nodes.iter().any(|n| n.rel == rel) {
            nodes.push(Node { rel, mode: libc::S_IFCHR | 0o666, rdev: makedev(major.into(), minor.into()), uid: None, gid: None });
        }
    }
    let paths = |p: &Option<Vec<String>>| p.iter().flatten().map(PathBuf::from).collect::<Vec<_>>();
    let finish = Finish {
        nodes,
        readonly_root: spec.root().as_ref().and_then(|r| r.readonly()).unwrap_or(false),
        readonly_paths: paths(linux.readonly_paths()),
        masked_paths: paths(linux.masked_paths()),
    };
    let mut linux = linux.clone();
    linux.set_namespaces(Some(namespaces));
    spec.set_linux(Some(linux));
    Some(finish)
}

impl Finish {
    /// In the init, after its mounts: the links and nodes of `/dev`, `pivot_root` into
    /// `rootfs`, then what libcontainer does inside the new root.
    pub fn apply(&self, rootfs: &Path) -> Result<()> {
        let mut root = open_dir(rootfs).with_context(|| format!("open the root filesystem {}", rootfs.display()))?;
        if !mount_root(&root)? {
            // pivot_root needs a mount; libcontainer binds the root onto itself always.
            nix::mount::mount(Some(rootfs), rootfs, None::<&str>, MsFlags::MS_BIND | MsFlags::MS_REC, None::<&str>)
                .context("bind mount the root filesystem")?;
            root = open_dir(rootfs).context("open the root filesystem")?;
        }
        let dev = dir_in(&root, Path::new("dev"), None)?;
        self.links_and_nodes(&root, &dev)?;
        drop((dev, root));
        pivot_root(rootfs)?;
        reopen_dev_null()?;
        if self.readonly_root {
            let attr = berth_userns::MountAttr { attr_set: berth_userns::MOUNT_ATTR_RDONLY, attr_clr: 0, propagation: 0, userns_fd: 0 };
            berth_userns::mount_setattr(libc::AT_FDCWD, c"/", 0, &attr).context("remount / read-only")?;
        }
        for p in &self.readonly_paths {
            readonly_path(p).with_context(|| format!("make {} read-only", p.display()))?;
        }
        if !self.masked_paths.is_empty() {
            mask(&self.masked_paths)?;
        }
        Ok(())
    }

    /// libcontainer's `prepare_rootfs` after the mounts: `/dev/kcore` (if the host has
    /// `/proc/kcore`), `/dev/fd` and the standard streams' links, the device nodes
    /// (umask 0), and `/dev/ptmx` as a link into the devpts instance.
    fn links_and_nodes(&self, root: &OwnedFd, dev: &OwnedFd) -> Result<()> {
        if Path::new("/proc/kcore").exists() {
            symlink_at("/proc/kcore", dev, "kcore")?;
        }
        for (target, name) in [("/proc/self/fd", "fd"), ("/proc/self/fd/0", "stdin"), ("/proc/self/fd/1", "stdout"), ("/proc/self/fd/2", "stderr")] {
            symlink_at(target, dev, name)?;
        }
        // SAFETY: umask only swaps the process's mask.
        let old = unsafe { libc::umask(0) };
        let made = self.nodes.iter().try_for_each(|n| make_node(root, n));
        // SAFETY: as above.
        unsafe { libc::umask(old) };
        made?;
        // SAFETY: an open directory descriptor and a NUL-terminated name.
        if unsafe { libc::unlinkat(dev.as_raw_fd(), c"ptmx".as_ptr(), 0) } != 0 && Errno::last() != Errno::ENOENT {
            return Err(io::Error::last_os_error()).context("could not delete /dev/ptmx");
        }
        symlink_at("pts/ptmx", dev, "ptmx")
    }
}

/// Whether `dir` is the root of a mount.
fn mount_root(dir: &OwnedFd) -> Result<bool> {
    // SAFETY: an all-zero statx is a valid value for the kernel to fill in.
    let mut st: libc::statx = unsafe { std::mem::zeroed() };
    // SAFETY: an open descriptor, an empty NUL-terminated path and a statx to fill.
    let r = unsafe { libc::statx(dir.as_raw_fd(), c"".as_ptr(), libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW, 0, &mut st) };
    Errno::result(r).context("statx the root filesystem")?;
    let bit = libc::STATX_ATTR_MOUNT_ROOT as u64;
    Ok(st.stx_attributes_mask & bit != 0 && st.stx_attributes & bit != 0)
}

fn symlink_at(target: &str, dir: &OwnedFd, name: &str) -> Result<()> {
    let (t, n) = (CString::new(target)?, CString::new(name)?);
    // SAFETY: NUL-terminated strings and an open directory descriptor.
    Errno::result(unsafe { libc::symlinkat(t.as_ptr(), dir.as_raw_fd(), n.as_ptr()) }).with_context(|| format!("symlink /dev/{name}"))?;
    Ok(())
}

/// `mknod` and (when the spec names an owner) `chown`, as libcontainer's `mknod_dev`.
fn make_node(root: &OwnedFd, n: &Node) -> Result<()> {
    let (parent, name) = split(&n.rel)?;
    let parent = dir_in(root, parent.unwrap_or(Path::new("dev")), None)?;
    // SAFETY: an open directory descriptor and a NUL-terminated name.
    Errno::result(unsafe { libc::mknodat(parent.as_raw_fd(), name.as_ptr(), n.mode, n.rdev) })
        .with_context(|| format!("mknod /{}", n.rel.display()))?;
    if n.uid.is_some() || n.gid.is_some() {
        let id = |v: Option<u32>| v.unwrap_or(u32::MAX);
        // SAFETY: as above; -1 (u32::MAX) leaves that id as it is.
        Errno::result(unsafe { libc::fchownat(parent.as_raw_fd(), name.as_ptr(), id(n.uid), id(n.gid), libc::AT_SYMLINK_NOFOLLOW) })
            .with_context(|| format!("chown /{}", n.rel.display()))?;
    }
    Ok(())
}

/// libcontainer's (and runc's) `pivot_root(".", ".")`: the old root, stacked on the
/// new one, made a slave (nothing of its unmount reaches the host) and detached.
fn pivot_root(rootfs: &Path) -> Result<()> {
    let old = open_dir(Path::new("/")).context("open the old root")?;
    let new = open_dir(rootfs).context("open the new root")?;
    nix::unistd::fchdir(new.as_raw_fd()).context("fchdir to the new root")?;
    nix::unistd::pivot_root(".", ".").context("pivot_root")?;
    nix::unistd::fchdir(old.as_raw_fd()).context("fchdir to the old root")?;
    nix::mount::mount(None::<&str>, ".", None::<&str>, MsFlags::MS_SLAVE | MsFlags::MS_REC, None::<&str>).context("make the old root a slave")?;
    nix::mount::umount2(".", MntFlags::MNT_DETACH).context("unmount the old root")?;
    nix::unistd::chdir("/").context("chdir to the new root")?;
    Ok(())
}

/// The character device 1:3, or an error naming what `fd` is instead.
fn verify_dev_null(fd: RawFd) -> Result<()> {
    let st = nix::sys::stat::fstat(fd).context("fstat /dev/null")?;
    if st.st_mode & libc::S_IFMT != libc::S_IFCHR {
        bail!("/dev/null is not a character device");
    }
    let (major, minor) = (libc::major(st.st_rdev), libc::minor(st.st_rdev));
    if (major, minor) != (1, 3) {
        bail!("/dev/null is device {major}:{minor}, not 1:3");
    }
    Ok(())
}

/// Standard streams on the null device are moved to the container's `/dev/null`
/// (libcontainer's `reopen_dev_null`; opened read-write, as runc does, so that a
/// stream written to stays writable).
fn reopen_dev_null() -> Result<()> {
    let null = std::fs::OpenOptions::new().read(true).write(true).open("/dev/null").context("open /dev/null inside the container")?;
    verify_dev_null(null.as_raw_fd()).context("inside the container")?;
    let rdev = nix::sys::stat::fstat(null.as_raw_fd())?.st_rdev;
    for fd in 0..3 {
        let st = nix::sys::stat::fstat(fd).with_context(|| format!("fstat stdio fd {fd}"))?;
        if st.st_mode & libc::S_IFMT == libc::S_IFCHR && st.st_rdev == rdev {
            nix::unistd::dup2(null.as_raw_fd(), fd).with_context(|| format!("dup2 /dev/null to fd {fd}"))?;
        }
    }
    Ok(())
}

/// libcontainer's `readonly_path`: a recursive bind of the path onto itself (skipped
/// if it does not exist), remounted read-only, nosuid, nodev, noexec.
fn readonly_path(p: &Path) -> Result<()> {
    match nix::mount::mount(Some(p), p, None::<&str>, MsFlags::MS_BIND | MsFlags::MS_REC, None::<&str>) {
        Err(Errno::ENOENT) => return Ok(()),
        r => r.context("bind")?,
    }
    let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC | MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY;
    nix::mount::mount(Some(p), p, None::<&str>, flags, None::<&str>).context("remount read-only")?;
    Ok(())
}

/// libcontainer's `masked_paths`: a directory gets a read-only tmpfs over it, anything
/// else a bind of the container's `/dev/null` (opened once and checked to be the null
/// device: a link swapped in for it fails the container, never masks with its target).
fn mask(paths: &[PathBuf]) -> Result<()> {
    let null = open_dir_or_file("/dev/null").context("open /dev/null")?;
    verify_dev_null(null.as_raw_fd()).context("invalid /dev/null device")?;
    for p in paths {
        let Ok(meta) = std::fs::metadata(p) else { continue };
        if meta.is_dir() {
            nix::mount::mount(Some("tmpfs"), p, Some("tmpfs"), MsFlags::MS_RDONLY, Some(""))
                .with_context(|| format!("failed to mount {} as masked using tmpfs", p.display()))?;
        } else {
            bind_fd(&null, p).with_context(|| format!("failed to mount {} as masked using /dev/null", p.display()))?;
        }
    }
    Ok(())
}

/// An `O_PATH` descriptor of `path` (links followed, as libcontainer's `open_device_fd`).
fn open_dir_or_file(path: &str) -> io::Result<OwnedFd> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new().read(true).custom_flags(libc::O_PATH).open(path).map(OwnedFd::from)
}

/// A clone of the mount of `source` (a descriptor), moved onto `target`.
fn bind_fd(source: &OwnedFd, target: &Path) -> Result<()> {
    let parent = open_dir(target.parent().context("a target without a parent")?)?;
    let name = CString::new(target.file_name().context("a target without a name")?.as_bytes())?;
    let tree = berth_userns::clone_mount_fd(source.as_fd()).context("open_tree")?;
    attach(&tree, &parent, &name)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A spec as `mounts::take` leaves it for a usual container: no mounts left, the
    /// mount and IPC namespaces named by `/proc/self/ns`, the network one by its path.
    fn spec(extra: serde_json::Value) -> Spec {
        let mut v = serde_json::json!({
            "ociVersion": "1.0.2",
            "root": {"path": "rootfs"},
            "process": {"args": ["true"], "cwd": "/", "user": {"uid": 0, "gid": 0}},
            "mounts": [],
            "linux": {
                "namespaces": [
                    {"type": "mount", "path": "/proc/self/ns/mnt"}, {"type": "network", "path": "/run/netns/x"},
                    {"type": "uts"}, {"type": "pid"}, {"type": "ipc", "path": "/proc/self/ns/ipc"}
                ],
                "maskedPaths": ["/proc/kcore", "/proc/acpi"],
                "readonlyPaths": ["/proc/sys"]
            }
        });
        crate::direct::tests::merge(&mut v, extra);
        serde_json::from_value(v).unwrap()
    }

    fn namespaces(s: &Spec) -> Vec<LinuxNamespaceType> {
        s.linux().as_ref().unwrap().namespaces().as_ref().unwrap().iter().map(|n| n.typ()).collect()
    }

    #[test]
    fn a_usual_container_leaves_libcontainer_the_namespaces_it_makes_new() {
        let mut s = spec(serde_json::json!({}));
        let f = take(&mut s, false).expect("taken");
        assert_eq!(namespaces(&s), [LinuxNamespaceType::Uts, LinuxNamespaceType::Pid]);
        assert_eq!(f.masked_paths, [PathBuf::from("/proc/kcore"), PathBuf::from("/proc/acpi")]);
        assert_eq!(f.readonly_paths, [PathBuf::from("/proc/sys")]);
        assert!(!f.readonly_root);
        let names: Vec<_> = f.nodes.iter().map(|n| n.rel.to_str().unwrap()).collect();
        assert_eq!(names, ["dev/null", "dev/zero", "dev/full", "dev/tty", "dev/urandom", "dev/random"]);
        assert!(f.nodes.iter().all(|n| n.mode == libc::S_IFCHR | 0o666 && n.uid.is_none() && n.gid.is_none()));
        assert_eq!(f.nodes[3].rdev, libc::makedev(5, 0));
    }

    #[test]
    fn the_specs_devices_come_first_and_replace_a_default_of_the_same_path() {
        let mut s = spec(serde_json::json!({"root": {"readonly": true}, "linux": {"devices": [
            {"path": "/dev/null", "type": "c", "major": 1, "minor": 3, "fileMode": 0o600, "uid": 1000, "gid": 1000},
            {"path": "/dev/net/tun", "type": "c", "major": 10, "minor": 200},
            {"path": "/dev/sda", "type": "b", "major": 8, "minor": 0, "fileMode": 0o660},
            {"path": "/dev/fifo", "type": "p", "major": 0, "minor": 0}
        ]}}));
        let f = take(&mut s, false).expect("taken");
        assert!(f.readonly_root);
        let nodes: Vec<_> = f.nodes.iter().map(|n| (n.rel.to_str().unwrap(), n.mode, n.uid)).collect();
        assert_eq!(&nodes[..4], [
            ("dev/null", libc::S_IFCHR | 0o600, Some(1000)),
            ("dev/net/tun", libc::S_IFCHR | 0o666, None),
            ("dev/sda", libc::S_IFBLK | 0o660, None),
            ("dev/fifo", libc::S_IFIFO | 0o666, None),
        ]);
        assert_eq!(nodes.len(), 9, "null is not made twice: {nodes:?}");
        assert_eq!(f.nodes[1].rdev, libc::makedev(10, 200));
        // Large numbers are encoded as glibc does.
        assert_eq!(makedev(300, 70000), libc::makedev(300, 70000));
    }

    #[test]
    fn anything_else_stays_with_libcontainer_and_the_spec_untouched() {
        let cases = [
            serde_json::json!({"mounts": [{"destination": "/data", "type": "bind", "source": "/srv", "options": ["rbind", "rshared"]}]}),
            serde_json::json!({"linux": {"sysctl": {"kernel.domainname": "x"}}}),
            serde_json::json!({"linux": {"rootfsPropagation": "shared"}}),
            serde_json::json!({"linux": {"mountLabel": "system_u:object_r:container_file_t:s0"}}),
            serde_json::json!({"linux": {"devices": [{"path": "/dev/all", "type": "a", "major": 0, "minor": 0}]}}),
            serde_json::json!({"linux": {"devices": [{"path": "/etc/null", "type": "c", "major": 1, "minor": 3}]}}),
            serde_json::json!({"linux": {"devices": [{"path": "/dev/../etc/x", "type": "c", "major": 1, "minor": 3}]}}),
            serde_json::json!({"linux": {"namespaces": [{"type": "mount"}, {"type": "pid"}, {"type": "uts", "path": "/proc/9/ns/uts"}]}}),
            serde_json::json!({"linux": {"namespaces": [{"type": "mount"}, {"type": "pid"}, {"type": "user"}]}}),
        ];
        for extra in cases {
            let mut s = spec(extra.clone());
            let before = s.clone();
            assert!(take(&mut s, false).is_none(), "{extra}");
            assert_eq!(s, before, "{extra}");
        }
        let mut s = spec(serde_json::json!({}));
        assert!(take(&mut s, true).is_none(), "a terminal");
    }
}
