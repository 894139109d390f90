//! The container's leading mounts, made by its init process before libcontainer's init
//! process takes over.
//!
//! libcontainer mounts each of the spec's mounts through pathrs: for every one it opens
//! the root again, makes the destination with `mkdir_all` and resolves it, each step
//! re-verified through a checked procfs handle (`readlink` of `/proc/thread-self/fd`,
//! `fstatfs`, `statx` of the mount id, ~40 system calls a mount). For the ten mounts of
//! a usual container that was 1.4 ms of the init's 4 ms of CPU (perf, back-to-back
//! runs): work that every container pays, off the start's path when a warm sandbox
//! waits, but not off the CPU that back-to-back runs share.
//!
//! Here the init resolves each destination inside the root filesystem with one
//! `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)` — the kernel keeps every `..` and
//! symlink of the image inside the root, which is what pathrs checks for in user space
//! — makes what is missing with `mkdirat` under a directory resolved the same way, and
//! mounts with the same calls libcontainer makes (`fsopen`/`fsconfig`/`fsmount` or
//! `open_tree`, then `move_mount` onto the resolved directory). The mounts it takes are
//! the spec's leading ones whose type and options it knows (procfs, sysfs, tmpfs,
//! devpts, mqueue and binds with the usual flags: every mount of a container made
//! without `--mount` options beyond these); the first one it does not know, and all
//! after it, stay in the spec for libcontainer, in their order. The checks libcontainer
//! makes on the way are kept: procfs only at `/proc` and sysfs only at `/sys`, each on
//! a directory that is not a symlink; `/dev` never read-only.
//!
//! The mounts are made in the namespaces the container will have: the init unshares
//! its mount namespace (and a new IPC namespace, whose message queues the `mqueue`
//! mount shows) and joins the network namespace (sysfs shows the mounter's network
//! devices) first, and libcontainer is handed a spec that names those namespaces by
//! their `/proc/self/ns` paths, so that it joins them instead of making new ones.
//! There the init also writes the spec's sysctls when it can write them all (the
//! network namespace's and the IPC namespace's; see [`take_sysctls`]).

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use anyhow::{bail, Context, Result};
use berth_userns::{
    MountAttr, MOUNT_ATTR_ATIME_MASK, MOUNT_ATTR_NOATIME, MOUNT_ATTR_NODEV, MOUNT_ATTR_NODIRATIME, MOUNT_ATTR_NOEXEC,
    MOUNT_ATTR_NOSUID, MOUNT_ATTR_RDONLY, MOUNT_ATTR_STRICTATIME,
};
use nix::errno::Errno;
use libcontainer::oci_spec::runtime::{LinuxNamespace, LinuxNamespaceBuilder, LinuxNamespaceType, Mount, Spec};


/// The mounts the init makes itself, and the namespaces it makes them in.
#[derive(Debug)]
pub struct Plan {
    rootfs: PathBuf,
    mounts: Vec<Planned>,
    /// The network namespace to join first (sysfs shows the mounter's devices).
    netns: Option<PathBuf>,
    /// Unshare a new IPC namespace (the `mqueue` mount shows the mounter's queues).
    new_ipc: bool,
    /// The spec's sysctls, written in the container's network and IPC namespaces once
    /// they are joined (see [`take_sysctls`]).
    sysctls: Vec<(String, String)>,
}

#[derive(Debug, PartialEq)]
struct Planned {
    /// The destination, relative to the root filesystem.
    dest: PathBuf,
    kind: Kind,
    /// `MOUNT_ATTR_*` for the new mount.
    attrs: u64,
}

#[derive(Debug, PartialEq)]
enum Kind {
    Fs { fstype: String, source: String, data: Vec<String> },
    Bind { source: PathBuf, recursive: bool },
}

/// Take out of `spec` the leading mounts the init can make itself (see the module's
/// doc) and point its mount and new IPC namespaces at `/proc/self/ns`; None, with the
/// spec untouched, when there are none or the spec is outside what this covers.
pub fn take(spec: &mut Spec, rootfs: &Path) -> Option<Plan> {
    let linux = spec.linux().as_ref()?;
    if linux.mount_label().is_some() || linux.rootfs_propagation().is_some() {
        return None;
    }
    let namespaces = linux.namespaces().as_ref()?;
    let find = |t: LinuxNamespaceType| namespaces.iter().find(|n| n.typ() == t);
    // A new mount namespace (pivot_root), a network namespace named by a path or
    // none (the host's), an IPC namespace new or the host's.
    if find(LinuxNamespaceType::Mount).is_none_or(|n| n.path().is_some())
        || find(LinuxNamespaceType::Network).is_some_and(|n| n.path().is_none())
        || find(LinuxNamespaceType::Ipc).is_some_and(|n| n.path().is_some())
        || find(LinuxNamespaceType::User).is_some()
    {
        return None;
    }
    let netns = find(LinuxNamespaceType::Network).and_then(|n| n.path().clone());
    let new_ipc = find(LinuxNamespaceType::Ipc).is_some();
    let all = spec.mounts().clone().unwrap_or_default();
    let mounts: Vec<Planned> = all.iter().map_while(planned).collect();
    if mounts.is_empty() {
        return None;
    }
    let rest = all[mounts.len()..].to_vec();
    let own = |typ: LinuxNamespaceType, name: &str| -> Option<LinuxNamespace> {
        LinuxNamespaceBuilder::default().typ(typ).path(format!("/proc/self/ns/{name}")).build().ok()
    };
    let (mnt, ipc) = (own(LinuxNamespaceType::Mount, "mnt")?, own(LinuxNamespaceType::Ipc, "ipc")?);
    let namespaces: Vec<LinuxNamespace> = namespaces
        .iter()
        .map(|n| match n.typ() {
            LinuxNamespaceType::Mount => mnt.clone(),
            LinuxNamespaceType::Ipc => ipc.clone(),
            _ => n.clone(),
        })
        .collect();
    let mut linux = linux.clone();
    linux.set_namespaces(Some(namespaces));
    let sysctls = take_sysctls(&mut linux, netns.is_some(), new_ipc);
    spec.set_linux(Some(linux));
    spec.set_mounts(Some(rest));
    Some(Plan { rootfs: rootfs.to_owned(), mounts, netns, new_ipc, sysctls })
}

/// The IPC namespace's sysctls (as runc and libcontainer's validator list them).
const IPC_SYSCTLS: [&str; 8] =
    ["kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall", "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced"];

/// Take the spec's sysctls out of `linux` if the init can write every one of them in
/// the namespaces it makes or joins before libcontainer runs: `net.*` in the network
/// namespace it joins, the IPC ones (and `fs.mqueue.*`) in the IPC namespace it makes.
/// libcontainer would write them through a procfs instance of its own, made for the
/// purpose and torn down after (~0.2 ms of the init's CPU, and a grace period at the
/// close). Any other (`kernel.domainname`: the UTS namespace, made later) leaves them
/// all to libcontainer. The spec was validated (libcontainer's validator: namespaced,
/// not in a namespace of the host's) before this.
fn take_sysctls(linux: &mut libcontainer::oci_spec::runtime::Linux, joins_netns: bool, new_ipc: bool) -> Vec<(String, String)> {
    let Some(all) = linux.sysctl().clone().filter(|s| !s.is_empty()) else { return Vec::new() };
    let here = |k: &str| {
        (joins_netns && k.starts_with("net.")) || (new_ipc && (IPC_SYSCTLS.contains(&k) || k.starts_with("fs.mqueue.")))
    };
    if !all.keys().all(|k| here(k)) {
        return Vec::new();
    }
    linux.set_sysctl(None);
    let mut all: Vec<(String, String)> = all.into_iter().collect();
    all.sort();
    all
}

/// The mount as the init makes it, or None if it is not one this covers.
fn planned(m: &Mount) -> Option<Planned> {
    let dest = relative(m.destination())?;
    let opts = m.options().clone().unwrap_or_default();
    let bind = m.typ().as_deref() == Some("bind") || opts.iter().any(|o| o == "bind" || o == "rbind");
    let mut attrs = 0;
    let mut atime = None;
    let mut data = Vec::new();
    for o in &opts {
        match o.as_str() {
            "ro" => attrs |= MOUNT_ATTR_RDONLY,
            "nosuid" => attrs |= MOUNT_ATTR_NOSUID,
            "nodev" => attrs |= MOUNT_ATTR_NODEV,
            "noexec" => attrs |= MOUNT_ATTR_NOEXEC,
            "nodiratime" => attrs |= MOUNT_ATTR_NODIRATIME,
            // What a new mount has anyway (libcontainer clears nothing on a bind either).
            "rw" | "suid" | "dev" | "exec" | "relatime" | "bind" | "rbind" => {}
            "noatime" => atime = Some(atime.unwrap_or(MOUNT_ATTR_NOATIME)),
            "strictatime" => atime = Some(MOUNT_ATTR_STRICTATIME),
            // libcontainer's fd-based mounts leave propagation as the clone has it.
            "rprivate" | "private" if bind => {}
            o if !bind && (o.contains('=') || o == "newinstance") => data.push(o.to_owned()),
            _ => return None,
        }
    }
    attrs |= atime.unwrap_or(0);
    let kind = if bind {
        Kind::Bind { source: PathBuf::from(m.source().as_ref()?), recursive: opts.iter().any(|o| o == "rbind") }
    } else {
        let fstype = m.typ().clone()?;
        // libcontainer's checks for these two: only at their own place (what a
        // procfs over anything else would expose is what its check_proc_mount stops).
        match fstype.as_str() {
            "proc" if dest == Path::new("proc") => {}
            "sysfs" if dest == Path::new("sys") => {}
            "tmpfs" | "devpts" | "mqueue" => {}
            _ => return None,
        }
        let source = m.source().as_ref().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| fstype.clone());
        Kind::Fs { fstype, source, data }
    };
    // /dev stays writable (libcontainer drops `ro` there: devices go in it).
    if dest == Path::new("dev") {
        attrs &= !MOUNT_ATTR_RDONLY;
    }
    Some(Planned { dest, kind, attrs })
}

/// An absolute destination, normalized and made relative to the root; None for one
/// that is not absolute or climbs out (`..`).
pub(crate) fn relative(dest: &Path) -> Option<PathBuf> {
    if !dest.is_absolute() {
        return None;
    }
    let mut out = PathBuf::new();
    for c in dest.components() {
        match c {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(n) => out.push(n),
            Component::ParentDir | Component::Prefix(_) => return None,
        }
    }
    (!out.as_os_str().is_empty()).then_some(out)
}

impl Plan {
    /// Make the mounts (in the init process, before libcontainer's init process).
    pub fn apply(&self) -> Result<()> {
        if let Some(ns) = &self.netns {
            let f = std::fs::File::open(ns).with_context(|| format!("open {}", ns.display()))?;
            nix::sched::setns(f, nix::sched::CloneFlags::CLONE_NEWNET).context("join the network namespace")?;
        }
        let mut flags = nix::sched::CloneFlags::CLONE_NEWNS;
        if self.new_ipc {
            flags |= nix::sched::CloneFlags::CLONE_NEWIPC;
        }
        nix::sched::unshare(flags).context("unshare the mount and IPC namespaces")?;
        // As libcontainer: nothing mounted here propagates back to the host.
        nix::mount::mount(None::<&str>, "/", None::<&str>, nix::mount::MsFlags::MS_REC | nix::mount::MsFlags::MS_SLAVE, None::<&str>)
            .context("make / a slave mount")?;
        write_sysctls(&self.sysctls)?;
        let root = open_dir(&self.rootfs)
            .with_context(|| format!("open the root filesystem {}", self.rootfs.display()))?;
        for m in &self.mounts {
            m.mount(&root).with_context(|| format!("mount /{}", m.dest.display()))?;
        }
        Ok(())
    }
}

impl Planned {
    fn mount(&self, root: &OwnedFd) -> Result<()> {
        let source_is_dir = match &self.kind {
            Kind::Bind { source, .. } => std::fs::metadata(source).with_context(|| format!("bind source {}", source.display()))?.is_dir(),
            Kind::Fs { .. } => true,
        };
        let dest = if source_is_dir { dir_in(root, &self.dest, self.special())? } else { file_in(root, &self.dest)? };
        let mnt = match &self.kind {
            Kind::Fs { fstype, source, data } => new_fs(fstype, source, data, self.attrs)?,
            Kind::Bind { source, recursive } => clone_tree(source, *recursive, self.attrs)?,
        };
        attach(&mnt, &dest, c"")
    }

    /// procfs and sysfs: a directory that is not a symlink, as libcontainer requires.
    fn special(&self) -> Option<&str> {
        match &self.kind {
            Kind::Fs { fstype, .. } if fstype == "proc" || fstype == "sysfs" => Some(fstype),
            _ => None,
        }
    }
}

/// `move_mount` of the detached mount `mnt` onto `name` in the directory `dir` (a
/// final link not followed), or onto `dir` itself when `name` is empty.
pub(crate) fn attach(mnt: &OwnedFd, dir: &OwnedFd, name: &CStr) -> Result<()> {
    let mut flags = libc::MOVE_MOUNT_F_EMPTY_PATH;
    if name.is_empty() {
        flags |= libc::MOVE_MOUNT_T_EMPTY_PATH;
    }
    // SAFETY: two open descriptors and NUL-terminated paths, valid for the call.
    let r = unsafe { libc::syscall(libc::SYS_move_mount, mnt.as_raw_fd(), c"".as_ptr(), dir.as_raw_fd(), name.as_ptr(), flags) };
    Errno::result(r).context("move_mount")?;
    Ok(())
}

/// The directory `rel` inside `root` (made, with its parents, 0755 where missing), as an
/// `O_PATH` descriptor. `special`: the filesystem type that must not land on a symlink.
pub(crate) fn dir_in(root: &OwnedFd, rel: &Path, special: Option<&str>) -> Result<OwnedFd> {
    if let Some(fstype) = special {
        match resolve(root, rel, libc::O_PATH | libc::O_NOFOLLOW | libc::O_CLOEXEC) {
            Ok(fd) => {
                let st = nix::sys::stat::fstat(fd.as_raw_fd()).context("fstat")?;
                if st.st_mode & libc::S_IFMT != libc::S_IFDIR {
                    bail!("filesystem {fstype} must be mounted on ordinary directory");
                }
                return Ok(fd);
            }
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
            Err(e) => return Err(e).with_context(|| format!("resolve /{}", rel.display())),
        }
    }
    match resolve(root, rel, libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC) {
        Ok(fd) => return Ok(fd),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
        Err(e) => return Err(e).with_context(|| format!("resolve /{}", rel.display())),
    }
    let (parent, name) = split(rel)?;
    let parent = match parent {
        Some(p) => dir_in(root, p, None)?,
        None => root.try_clone().context("dup the root")?,
    };
    // SAFETY: an open directory descriptor and a NUL-terminated name.
    let r = unsafe { libc::mkdirat(parent.as_raw_fd(), name.as_ptr(), 0o755) };
    if r != 0 && io::Error::last_os_error().raw_os_error() != Some(libc::EEXIST) {
        return Err(io::Error::last_os_error()).with_context(|| format!("mkdir /{}", rel.display()));
    }
    resolve(root, rel, libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC).with_context(|| format!("resolve /{}", rel.display()))
}

/// The file `rel` inside `root` (made empty, 0644, where missing; its parents 0755), as
/// an `O_PATH` descriptor.
fn file_in(root: &OwnedFd, rel: &Path) -> Result<OwnedFd> {
    if let Ok(fd) = resolve(root, rel, libc::O_PATH | libc::O_CLOEXEC) {
        return Ok(fd);
    }
    let (parent, name) = split(rel)?;
    let parent = match parent {
        Some(p) => dir_in(root, p, None)?,
        None => root.try_clone().context("dup the root")?,
    };
    // O_EXCL: an existing entry (a dangling link included) is left as it is, never followed.
    // SAFETY: an open directory descriptor and a NUL-terminated name.
    let fd = unsafe {
        libc::openat(parent.as_raw_fd(), name.as_ptr(), libc::O_RDONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC, 0o644)
    };
    if fd >= 0 {
        // SAFETY: openat returned a new descriptor this function owns.
        drop(unsafe { OwnedFd::from_raw_fd(fd) });
    } else if io::Error::last_os_error().raw_os_error() != Some(libc::EEXIST) {
        return Err(io::Error::last_os_error()).with_context(|| format!("create /{}", rel.display()));
    }
    resolve(root, rel, libc::O_PATH | libc::O_CLOEXEC).with_context(|| format!("resolve /{}", rel.display()))
}

pub(crate) fn split(rel: &Path) -> Result<(Option<&Path>, CString)> {
    let name = rel.file_name().context("a destination without a name")?;
    let parent = rel.parent().filter(|p| !p.as_os_str().is_empty());
    Ok((parent, CString::new(name.as_bytes()).context("a NUL in the destination")?))
}

/// `struct open_how` (linux/openat2.h); libc's is `#[non_exhaustive]`, which leaves
/// no way to build one but zeroed memory.
#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

/// `rel` resolved inside `root` (symlinks and `..` never leave it; no magic links).
fn resolve(root: &OwnedFd, rel: &Path, flags: libc::c_int) -> io::Result<OwnedFd> {
    openat2(root, rel, flags, libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS)
}

/// Write each `(name, value)` to `/proc/sys/<name with dots as slashes>` (as
/// libcontainer names the file), in this process's namespaces. The `/proc` here is the
/// host's, in the shim's mount namespace (the container's root is not involved); a
/// name is resolved beneath `/proc/sys`, with no symlink and no other mount on the way.
fn write_sysctls(sysctls: &[(String, String)]) -> Result<()> {
    if sysctls.is_empty() {
        return Ok(());
    }
    let dir = open_dir(Path::new("/proc/sys")).context("open /proc/sys")?;
    let fs = nix::sys::statfs::fstatfs(&dir).context("statfs /proc/sys")?;
    if fs.filesystem_type() != nix::sys::statfs::PROC_SUPER_MAGIC {
        bail!("/proc/sys is not on procfs");
    }
    for (k, v) in sysctls {
        let rel = PathBuf::from(k.replace('.', "/"));
        let how = libc::RESOLVE_BENEATH | libc::RESOLVE_NO_SYMLINKS | libc::RESOLVE_NO_XDEV;
        let f = openat2(&dir, &rel, libc::O_WRONLY | libc::O_CLOEXEC, how).with_context(|| format!("failed to set sysctl {k}={v}"))?;
        use std::io::Write;
        std::fs::File::from(f).write_all(v.as_bytes()).with_context(|| format!("failed to set sysctl {k}={v}"))?;
    }
    Ok(())
}

/// `openat2(dir, rel, flags)` with the `RESOLVE_*` flags `resolve`.
fn openat2(dir: &OwnedFd, rel: &Path, flags: libc::c_int, resolve: u64) -> io::Result<OwnedFd> {
    let path = CString::new(rel.as_os_str().as_bytes()).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    let how = OpenHow { flags: flags as u64, mode: 0, resolve };
    // SAFETY: an open descriptor, a NUL-terminated path and an open_how of the size given.
    let fd = unsafe { libc::syscall(libc::SYS_openat2, dir.as_raw_fd(), path.as_ptr(), &how as *const OpenHow, std::mem::size_of::<OpenHow>()) };
    Errno::result(fd).map_err(io::Error::from).map(|fd| {
        // SAFETY: openat2 returned a new descriptor this function owns.
        unsafe { OwnedFd::from_raw_fd(fd as RawFd) }
    })
}

/// A directory as an `O_PATH` descriptor (std adds `O_CLOEXEC`).
pub(crate) fn open_dir(path: &Path) -> io::Result<OwnedFd> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new().read(true).custom_flags(libc::O_PATH | libc::O_DIRECTORY).open(path).map(OwnedFd::from)
}

const FSOPEN_CLOEXEC: libc::c_uint = 1;
const FSMOUNT_CLOEXEC: libc::c_uint = 1;
const FSCONFIG_SET_FLAG: libc::c_uint = 0;
const FSCONFIG_SET_STRING: libc::c_uint = 1;
const FSCONFIG_CMD_CREATE: libc::c_uint = 6;

/// A new, detached filesystem mount (`fsopen`, `fsconfig`, `fsmount` with `attrs`).
fn new_fs(fstype: &str, source: &str, data: &[String], attrs: u64) -> Result<OwnedFd> {
    let cstr = |s: &str| CString::new(s).with_context(|| format!("a NUL in {s:?}"));
    let t = cstr(fstype)?;
    // SAFETY: a NUL-terminated name.
    let fs = Errno::result(unsafe { libc::syscall(libc::SYS_fsopen, t.as_ptr(), FSOPEN_CLOEXEC) }).with_context(|| format!("fsopen {fstype}"))?;
    // SAFETY: fsopen returned a new descriptor this function owns.
    let fs = unsafe { OwnedFd::from_raw_fd(fs as RawFd) };
    let config = |cmd: libc::c_uint, key: Option<&CStr>, value: Option<&CStr>| -> io::Result<()> {
        let p = |s: Option<&CStr>| s.map_or(std::ptr::null(), CStr::as_ptr);
        // SAFETY: an open filesystem context, NUL-terminated key and value or null.
        Errno::result(unsafe { libc::syscall(libc::SYS_fsconfig, fs.as_raw_fd(), cmd, p(key), p(value), 0) }).map(|_| ()).map_err(io::Error::from)
    };
    config(FSCONFIG_SET_STRING, Some(c"source"), Some(&cstr(source)?)).context("fsconfig source")?;
    for d in data {
        match d.split_once('=') {
            Some((k, v)) => config(FSCONFIG_SET_STRING, Some(&cstr(k)?), Some(&cstr(v)?)),
            None => config(FSCONFIG_SET_FLAG, Some(&cstr(d)?), None),
        }
        .with_context(|| format!("fsconfig {d}"))?;
    }
    config(FSCONFIG_CMD_CREATE, None, None).with_context(|| format!("create the {fstype} filesystem"))?;
    // SAFETY: an open, created filesystem context.
    let m = Errno::result(unsafe { libc::syscall(libc::SYS_fsmount, fs.as_raw_fd(), FSMOUNT_CLOEXEC, attrs) }).context("fsmount")?;
    // SAFETY: fsmount returned a new descriptor this function owns.
    Ok(unsafe { OwnedFd::from_raw_fd(m as RawFd) })
}

/// A detached clone of the mount (tree) at `source`, with `attrs` set on its top.
fn clone_tree(source: &Path, recursive: bool, attrs: u64) -> Result<OwnedFd> {
    let fd = berth_userns::clone_mount(source, recursive).with_context(|| format!("open_tree {}", source.display()))?;
    if attrs != 0 {
        let clr = if attrs & MOUNT_ATTR_ATIME_MASK != 0 { MOUNT_ATTR_ATIME_MASK } else { 0 };
        let attr = MountAttr { attr_set: attrs, attr_clr: clr, propagation: 0, userns_fd: 0 };
        berth_userns::mount_setattr(fd.as_raw_fd(), c"", libc::AT_EMPTY_PATH as libc::c_uint, &attr).context("mount_setattr")?;
    }
    Ok(fd)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(mounts: serde_json::Value, namespaces: serde_json::Value) -> Spec {
        serde_json::from_value(serde_json::json!({
            "ociVersion": "1.0.2",
            "root": {"path": "rootfs"},
            "mounts": mounts,
            "linux": {"namespaces": namespaces}
        }))
        .unwrap()
    }

    fn usual() -> serde_json::Value {
        serde_json::json!([
            {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/etc/hosts", "type": "bind", "source": "/run/x/hosts", "options": ["rbind", "rprivate"]},
            {"destination": "/data", "type": "bind", "source": "/srv/data", "options": ["rbind", "rshared"]},
            {"destination": "/etc/hostname", "type": "bind", "source": "/run/x/hostname", "options": ["rbind", "rprivate"]}
        ])
    }

    fn ns() -> serde_json::Value {
        serde_json::json!([{"type": "mount"}, {"type": "network", "path": "/run/netns/x"}, {"type": "uts"}, {"type": "pid"}, {"type": "ipc"}])
    }

    #[test]
    fn the_leading_known_mounts_are_taken_and_the_rest_stay_in_order() {
        let mut s = spec(usual(), ns());
        let plan = take(&mut s, Path::new("/r")).unwrap();
        let dests: Vec<_> = plan.mounts.iter().map(|m| m.dest.to_str().unwrap()).collect();
        assert_eq!(dests, ["proc", "dev", "dev/pts", "sys", "dev/mqueue", "etc/hosts"]);
        // A propagation it does not make (rshared) stops the prefix: it and what follows
        // are libcontainer's.
        let left: Vec<_> = s.mounts().as_ref().unwrap().iter().map(|m| m.destination().to_str().unwrap().to_owned()).collect();
        assert_eq!(left, ["/data", "/etc/hostname"]);
        assert_eq!(plan.netns.as_deref(), Some(Path::new("/run/netns/x")));
        assert!(plan.new_ipc);
        let paths: Vec<_> = s.linux().as_ref().unwrap().namespaces().as_ref().unwrap().iter().map(|n| (n.typ(), n.path().clone())).collect();
        assert!(paths.contains(&(LinuxNamespaceType::Mount, Some(PathBuf::from("/proc/self/ns/mnt")))));
        assert!(paths.contains(&(LinuxNamespaceType::Ipc, Some(PathBuf::from("/proc/self/ns/ipc")))));
        assert!(paths.contains(&(LinuxNamespaceType::Uts, None)));
        assert!(paths.contains(&(LinuxNamespaceType::Pid, None)));

        let devpts = &plan.mounts[2];
        assert_eq!(devpts.attrs, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC);
        assert_eq!(
            devpts.kind,
            Kind::Fs {
                fstype: "devpts".into(),
                source: "devpts".into(),
                data: vec!["newinstance".into(), "ptmxmode=0666".into(), "mode=0620".into(), "gid=5".into()]
            }
        );
        assert_eq!(plan.mounts[1].attrs, MOUNT_ATTR_NOSUID | MOUNT_ATTR_STRICTATIME);
        assert_eq!(plan.mounts[3].attrs, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC | MOUNT_ATTR_NODEV | MOUNT_ATTR_RDONLY);
        assert_eq!(plan.mounts[5].kind, Kind::Bind { source: "/run/x/hosts".into(), recursive: true });
    }

    #[test]
    fn what_it_does_not_cover_stays_with_libcontainer() {
        let one = |m: serde_json::Value| {
            let mut s = spec(serde_json::json!([m]), ns());
            take(&mut s, Path::new("/r")).is_some()
        };
        // procfs or sysfs anywhere else, unknown types and options, relative or climbing
        // destinations, recursive attributes.
        assert!(!one(serde_json::json!({"destination": "/x/proc", "type": "proc", "source": "proc"})));
        assert!(!one(serde_json::json!({"destination": "/proc/x", "type": "sysfs", "source": "sysfs"})));
        assert!(!one(serde_json::json!({"destination": "/c", "type": "cgroup", "source": "cgroup"})));
        assert!(!one(serde_json::json!({"destination": "/t", "type": "tmpfs", "source": "tmpfs", "options": ["tmpcopyup"]})));
        assert!(!one(serde_json::json!({"destination": "/v", "type": "bind", "source": "/s", "options": ["rbind", "rro"]})));
        assert!(!one(serde_json::json!({"destination": "/v", "type": "bind", "source": "/s", "options": ["rbind", "mode=755"]})));
        assert!(!one(serde_json::json!({"destination": "v", "type": "bind", "source": "/s", "options": ["rbind"]})));
        assert!(!one(serde_json::json!({"destination": "/a/../../v", "type": "bind", "source": "/s", "options": ["rbind"]})));
        assert!(one(serde_json::json!({"destination": "/v", "type": "bind", "source": "/s", "options": ["rbind", "ro", "rprivate"]})));
        assert!(one(serde_json::json!({"destination": "/t", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m", "noatime"]})));

        // /dev is never read-only.
        let mut s = spec(serde_json::json!([{"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["ro", "nosuid"]}]), ns());
        assert_eq!(take(&mut s, Path::new("/r")).unwrap().mounts[0].attrs, MOUNT_ATTR_NOSUID);

        // Namespaces it does not make: a user namespace, a mount or IPC namespace to
        // join, a new network namespace, a label or a propagation of the root.
        for n in [
            serde_json::json!([{"type": "mount"}, {"type": "user"}]),
            serde_json::json!([{"type": "mount", "path": "/proc/1/ns/mnt"}]),
            serde_json::json!([{"type": "mount"}, {"type": "ipc", "path": "/proc/1/ns/ipc"}]),
            serde_json::json!([{"type": "mount"}, {"type": "network"}]),
            serde_json::json!([{"type": "pid"}]),
        ] {
            let mut s = spec(usual(), n.clone());
            assert!(take(&mut s, Path::new("/r")).is_none(), "{n}");
            assert_eq!(s.mounts().as_ref().unwrap().len(), 8, "untouched: {n}");
        }
        let mut s = spec(usual(), serde_json::json!([{"type": "mount"}]));
        let plan = take(&mut s, Path::new("/r")).unwrap();
        assert!(plan.netns.is_none() && !plan.new_ipc);
        let mut linux = s.linux().clone().unwrap();
        linux.set_rootfs_propagation(Some("shared".into()));
        s.set_linux(Some(linux));
        assert!(take(&mut s, Path::new("/r")).is_none());
    }

    #[test]
    fn destinations_resolve_inside_the_root_and_are_made_where_missing() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        std::fs::create_dir_all(r.join("etc")).unwrap();
        std::fs::create_dir_all(r.join("proc")).unwrap();
        // An image's links that point out of the root stay inside it.
        std::os::unix::fs::symlink("/", r.join("sys")).unwrap();
        std::os::unix::fs::symlink("../../../../../tmp/escape", r.join("etc/hosts")).unwrap();
        std::os::unix::fs::symlink("/outside", r.join("data")).unwrap();
        std::fs::create_dir(r.join("outside")).unwrap();
        let root = open_dir(r).unwrap();
        let path_of = |fd: &OwnedFd| std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())).unwrap();

        assert_eq!(path_of(&dir_in(&root, Path::new("proc"), Some("proc")).unwrap()), r.join("proc"));
        let e = dir_in(&root, Path::new("sys"), Some("sysfs")).unwrap_err();
        assert!(format!("{e:#}").contains("must be mounted on ordinary directory"), "{e:#}");
        assert_eq!(path_of(&dir_in(&root, Path::new("a/b/c"), None).unwrap()), r.join("a/b/c"));
        // The link to /outside makes /outside inside the root.
        assert_eq!(path_of(&dir_in(&root, Path::new("data/x"), None).unwrap()), r.join("outside/x"));
        assert!(r.join("outside/x").is_dir());
        // A link at a file destination is followed inside the root; a dangling one is
        // an error (as libcontainer's), never a file made through it.
        assert!(file_in(&root, Path::new("etc/hosts")).is_err());
        assert!(!Path::new("/tmp/escape").exists() && !r.join("tmp/escape").exists());
        std::fs::create_dir(r.join("tmp")).unwrap();
        std::fs::write(r.join("tmp/escape"), "").unwrap();
        assert_eq!(path_of(&file_in(&root, Path::new("etc/hosts")).unwrap()), r.join("tmp/escape"));
        let f = file_in(&root, Path::new("etc/new/hostname")).unwrap();
        assert_eq!(path_of(&f), r.join("etc/new/hostname"));
    }

    fn with_sysctls(namespaces: serde_json::Value, sysctls: serde_json::Value) -> Spec {
        let mut s = spec(usual(), namespaces);
        let mut v = serde_json::to_value(&s).unwrap();
        v["linux"]["sysctl"] = sysctls;
        s = serde_json::from_value(v).unwrap();
        s
    }

    #[test]
    fn sysctls_of_the_namespaces_the_init_makes_or_joins_are_taken() {
        let net_and_ipc = serde_json::json!({"net.ipv4.ip_forward": "1", "kernel.shmmax": "4096", "fs.mqueue.msg_max": "20"});
        let mut s = with_sysctls(ns(), net_and_ipc);
        let plan = take(&mut s, Path::new("/r")).unwrap();
        assert_eq!(
            plan.sysctls,
            [("fs.mqueue.msg_max".into(), "20".into()), ("kernel.shmmax".into(), "4096".into()), ("net.ipv4.ip_forward".into(), "1".into())]
        );
        assert!(s.linux().as_ref().unwrap().sysctl().is_none());
        // One the init cannot write (UTS, made later): all stay with libcontainer.
        let mut s = with_sysctls(ns(), serde_json::json!({"net.ipv4.ip_forward": "1", "kernel.domainname": "example"}));
        let plan = take(&mut s, Path::new("/r")).unwrap();
        assert!(plan.sysctls.is_empty());
        assert_eq!(s.linux().as_ref().unwrap().sysctl().as_ref().unwrap().len(), 2);
        // The host's IPC namespace: the IPC ones are not the init's to write.
        let host_ipc = serde_json::json!([{"type": "mount"}, {"type": "network", "path": "/run/netns/x"}, {"type": "pid"}]);
        let mut s = with_sysctls(host_ipc, serde_json::json!({"kernel.shmmax": "4096"}));
        let plan = take(&mut s, Path::new("/r")).unwrap();
        assert!(plan.sysctls.is_empty());
        assert!(s.linux().as_ref().unwrap().sysctl().is_some());
    }

    #[test]
    fn sysctls_are_written_in_the_callers_namespaces_and_beneath_proc_sys_only() {
        if !nix::unistd::geteuid().is_root() {
            return;
        }
        let host = std::fs::read_to_string("/proc/sys/kernel/shmmni").unwrap();
        let host_ports = std::fs::read_to_string("/proc/sys/net/ipv4/ip_unprivileged_port_start").unwrap();
        std::thread::spawn(move || {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET | nix::sched::CloneFlags::CLONE_NEWIPC).unwrap();
            write_sysctls(&[("net.ipv4.ip_unprivileged_port_start".into(), "0".into()), ("kernel.shmmni".into(), "77".into())]).unwrap();
            assert_eq!(std::fs::read_to_string("/proc/sys/net/ipv4/ip_unprivileged_port_start").unwrap().trim(), "0");
            assert_eq!(std::fs::read_to_string("/proc/sys/kernel/shmmni").unwrap().trim(), "77");
            // Names never climb out of /proc/sys (dots become slashes, as libcontainer's).
            let e = write_sysctls(&[("net/../../self/comm".into(), "x".into())]).unwrap_err();
            assert!(format!("{e:#}").contains("failed to set sysctl"), "{e:#}");
            assert!(write_sysctls(&[("net.ipv4.no_such_thing".into(), "1".into())]).is_err());
        })
        .join()
        .unwrap();
        assert_eq!(std::fs::read_to_string("/proc/sys/kernel/shmmni").unwrap(), host);
        assert_eq!(std::fs::read_to_string("/proc/sys/net/ipv4/ip_unprivileged_port_start").unwrap(), host_ports);
    }
}
