//! User namespaces for `--userns-remap`: the remapped user's subordinate id ranges,
//! the id map containers run with, and an idmapped view of the unpacked layers.
//!
//! dockerd's model is kept: one remapped user (`dockremap` for `default`) whose
//! `/etc/subuid` and `/etc/subgid` ranges become every container's id map, container
//! id 0 being the first host id of the first range; the daemon keeps its state for
//! that map in `<data-root>/<uid>.<gid>`. Where dockerd unpacks a chowned copy of
//! every layer for the map, berthd mounts its layer directory once more, idmapped
//! (Linux 5.12+; overlayfs takes idmapped lower layers since 5.19): layers stay as
//! the image has them and no file is copied.

use std::fs;
use std::io::{BufRead, Write};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use berth_errdefs::{Error, Result};

/// The owner the kernel shows for ids outside a user namespace's map.
pub const OVERFLOW_ID: u32 = 65534;

/// dockerd's name for the user `--userns-remap default` creates.
pub const DEFAULT_USER: &str = "dockremap";

/// One line of a `uid_map`/`gid_map`: `size` ids from `container` on map to `host` on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdRange {
    pub container: u32,
    pub host: u32,
    pub size: u32,
}

/// Container ↔ host user and group ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdMap {
    pub uids: Vec<IdRange>,
    pub gids: Vec<IdRange>,
}

fn to_host(ranges: &[IdRange], id: u32) -> Option<u32> {
    ranges
        .iter()
        .find(|r| id >= r.container && id - r.container < r.size)
        .map(|r| r.host + (id - r.container))
}

fn to_container(ranges: &[IdRange], id: u32) -> Option<u32> {
    ranges
        .iter()
        .find(|r| id >= r.host && id - r.host < r.size)
        .map(|r| r.container + (id - r.host))
}

impl IdMap {
    /// The map of subordinate ranges (start, length): container ids count up from 0
    /// across the ranges in order of their start, as dockerd's `createIDMap`.
    pub fn from_ranges(mut uids: Vec<(u32, u32)>, mut gids: Vec<(u32, u32)>) -> Result<IdMap> {
        let build = |ranges: &mut Vec<(u32, u32)>, what: &str| -> Result<Vec<IdRange>> {
            ranges.sort_unstable();
            ranges.dedup();
            if ranges.is_empty() {
                return Err(Error::invalid(format!("no subordinate {what} ranges")));
            }
            let mut out = Vec::new();
            let mut next = 0u32;
            for &(host, size) in ranges.iter() {
                if let Some(prev) = out.last().map(|r: &IdRange| r.host as u64 + r.size as u64) {
                    if (host as u64) < prev {
                        return Err(Error::invalid(format!("overlapping subordinate {what} ranges at {host}")));
                    }
                }
                out.push(IdRange { container: next, host, size });
                next = next
                    .checked_add(size)
                    .ok_or_else(|| Error::invalid(format!("subordinate {what} ranges exceed 2^32 ids")))?;
            }
            Ok(out)
        };
        Ok(IdMap { uids: build(&mut uids, "uid")?, gids: build(&mut gids, "gid")? })
    }

    /// The host ids of the container's root.
    pub fn root(&self) -> (u32, u32) {
        (self.uids[0].host, self.gids[0].host)
    }

    /// Host ids for container ids, or dockerd's error for ids the map lacks.
    pub fn to_host(&self, uid: u32, gid: u32) -> Result<(u32, u32)> {
        let u = to_host(&self.uids, uid)
            .ok_or_else(|| Error::invalid(format!("Container ID {uid} cannot be mapped to a host ID")))?;
        let g = to_host(&self.gids, gid)
            .ok_or_else(|| Error::invalid(format!("Container ID {gid} cannot be mapped to a host ID")))?;
        Ok((u, g))
    }

    /// Container ids for host ids; ids outside the map are the overflow id, as the
    /// container itself sees them.
    pub fn to_container(&self, uid: u32, gid: u32) -> (u32, u32) {
        (
            to_container(&self.uids, uid).unwrap_or(OVERFLOW_ID),
            to_container(&self.gids, gid).unwrap_or(OVERFLOW_ID),
        )
    }

    /// `/proc/<pid>/uid_map` and `gid_map` text.
    pub fn proc_maps(&self) -> (String, String) {
        let text = |rs: &[IdRange]| rs.iter().map(|r| format!("{} {} {}\n", r.container, r.host, r.size)).collect();
        (text(&self.uids), text(&self.gids))
    }

    /// The name of the daemon's state directory under the data root for this map
    /// (dockerd: `<uid>.<gid>` of the remapped root).
    pub fn root_dir_name(&self) -> String {
        let (u, g) = self.root();
        format!("{u}.{g}")
    }
}

/// Ranges (start, length) for `name` (or its numeric id) in a subuid/subgid file's
/// text, as shadow's tools read it.
pub fn parse_subid(text: &str, name: &str, id: Option<u32>) -> Vec<(u32, u32)> {
    let id = id.map(|i| i.to_string());
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| {
            let mut f = l.trim().splitn(3, ':');
            let (who, start, len) = (f.next()?, f.next()?, f.next()?);
            if who != name && Some(who) != id.as_deref() {
                return None;
            }
            Some((start.trim().parse().ok()?, len.trim().parse().ok()?))
        })
        .filter(|&(_, len)| len > 0)
        .collect()
}

/// Every range in a subuid/subgid file's text.
fn all_subids(text: &str) -> Vec<(u32, u32)> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.trim().splitn(3, ':');
            f.next()?;
            Some((f.next()?.trim().parse().ok()?, f.next()?.trim().parse().ok()?))
        })
        .collect()
}

const RANGE_START: u32 = 100_000;
const RANGE_LEN: u32 = 65_536;

/// The first free start for a 65536-id range at or above 100000 (dockerd's
/// `findNextRangeStart`).
pub fn next_free_range(used: &[(u32, u32)]) -> u32 {
    let mut used = used.to_vec();
    used.sort_unstable();
    let mut start = RANGE_START as u64;
    for (s, l) in used {
        let (s, e) = (s as u64, s as u64 + l as u64);
        if start < e && start + RANGE_LEN as u64 > s {
            start = e;
        }
    }
    start as u32
}

/// The remapped user and group `--userns-remap` names, and its id map.
#[derive(Debug, Clone)]
pub struct Remap {
    pub user: String,
    pub group: String,
    pub map: IdMap,
}

impl Remap {
    /// `user:group`, as `info` and dockerd's log show the option once resolved.
    pub fn spec(&self) -> String {
        format!("{}:{}", self.user, self.group)
    }
}

/// Where the password, group and subordinate id files are (tests point elsewhere).
#[derive(Debug, Clone)]
pub struct Files {
    pub subuid: PathBuf,
    pub subgid: PathBuf,
}

impl Default for Files {
    fn default() -> Self {
        Files { subuid: "/etc/subuid".into(), subgid: "/etc/subgid".into() }
    }
}

fn lookup_user(name: &str) -> Option<nix::unistd::User> {
    nix::unistd::User::from_name(name).ok().flatten()
}

fn lookup_group(name: &str) -> Option<nix::unistd::Group> {
    nix::unistd::Group::from_name(name).ok().flatten()
}

/// Resolve `--userns-remap` (dockerd's `parseRemappedRoot` + `NewIdentityMapping`):
/// `default` (the `dockremap` user, created with ranges when missing), a user name or
/// uid, optionally `:group` or `:gid`. `Ok(None)`: remapping root to itself, which
/// dockerd takes as "user namespaces are off".
pub fn resolve(value: &str, files: &Files) -> Result<Option<Remap>> {
    let parts: Vec<&str> = value.split(':').collect();
    if parts.len() > 2 || parts[0].is_empty() {
        return Err(Error::invalid(format!("Invalid user/group specification in --userns-remap: {value:?}")));
    }
    let (user, mut group) = if let Ok(uid) = parts[0].parse::<u32>() {
        let u = nix::unistd::User::from_uid(uid.into())
            .ok()
            .flatten()
            .ok_or_else(|| Error::invalid(format!("Uid {uid} has no entry in /etc/passwd")))?;
        let g = if parts.len() == 1 {
            let g = nix::unistd::Group::from_gid(uid.into())
                .ok()
                .flatten()
                .ok_or_else(|| Error::invalid(format!("Gid {uid} has no entry in /etc/group")))?;
            Some(g.name)
        } else {
            None
        };
        (u.name, g)
    } else if parts[0] == "default" {
        if lookup_user(DEFAULT_USER).is_none() {
            add_user(DEFAULT_USER)
                .map_err(|e| Error::internal(format!("Error during {DEFAULT_USER:?} user creation: {}", e.message())))?;
        }
        add_ranges(DEFAULT_USER, files)
            .map_err(|e| Error::internal(format!("Error during {DEFAULT_USER:?} user creation: {}", e.message())))?;
        (DEFAULT_USER.to_owned(), Some(DEFAULT_USER.to_owned()))
    } else {
        let u = lookup_user(parts[0])
            .ok_or_else(|| Error::invalid(format!("Error during uid lookup for {:?}: no such user", parts[0])))?;
        let g = if parts.len() == 1 {
            let g = lookup_group(parts[0]).ok_or_else(|| {
                Error::invalid(format!("Error during gid lookup for {:?}: no such group", parts[0]))
            })?;
            Some(g.name)
        } else {
            None
        };
        (u.name, g)
    };
    if parts.len() == 2 {
        group = Some(if let Ok(gid) = parts[1].parse::<u32>() {
            nix::unistd::Group::from_gid(gid.into())
                .ok()
                .flatten()
                .ok_or_else(|| Error::invalid(format!("Gid {gid} has no entry in /etc/passwd")))?
                .name
        } else {
            lookup_group(parts[1])
                .ok_or_else(|| Error::invalid(format!("Error during groupname lookup for {:?}", parts[1])))?;
            parts[1].to_owned()
        });
    }
    let group = group.expect("set on every path");
    if user == "root" {
        tracing::warn!("User namespaces: root cannot be remapped with itself; user namespaces are OFF");
        return Ok(None);
    }
    let uid = lookup_user(&user).map(|u| u.uid.as_raw());
    let gid = lookup_group(&group).map(|g| g.gid.as_raw());
    let read = |p: &Path| fs::read_to_string(p).unwrap_or_default();
    let uids = parse_subid(&read(&files.subuid), &user, uid);
    let gids = parse_subid(&read(&files.subgid), &group, gid);
    if uids.is_empty() {
        return Err(Error::invalid(format!(
            "Can't create ID mappings: no subuid ranges found for user {user:?} in {}",
            files.subuid.display()
        )));
    }
    if gids.is_empty() {
        return Err(Error::invalid(format!(
            "Can't create ID mappings: no subgid ranges found for group {group:?} in {}",
            files.subgid.display()
        )));
    }
    let map = IdMap::from_ranges(uids, gids).map_err(|e| Error::invalid(format!("Can't create ID mappings: {}", e.message())))?;
    tracing::info!(user = %user, "User namespaces: ID ranges will be mapped to subuid/subgid ranges of: {user}");
    Ok(Some(Remap { user, group, map }))
}

/// Create a system user (and its group) with no login, as dockerd does for
/// `dockremap`. Another process creating it at the same moment is not an error.
fn add_user(name: &str) -> Result<()> {
    let which = |b: &str| {
        std::env::var("PATH")
            .unwrap_or_else(|_| "/usr/sbin:/usr/bin:/sbin:/bin".into())
            .split(':')
            .chain(["/usr/sbin", "/sbin"])
            .map(|d| Path::new(d).join(b))
            .find(|p| p.is_file())
    };
    let (cmd, args): (PathBuf, Vec<&str>) = if let Some(p) = which("useradd") {
        (p, vec!["-r", "-U", "-s", "/bin/false", name])
    } else if let Some(p) = which("adduser") {
        (
            p,
            vec!["--system", "--shell", "/bin/false", "--no-create-home", "--disabled-login", "--disabled-password", "--group", name],
        )
    } else {
        return Err(Error::internal("cannot add user; no useradd/adduser binary found"));
    };
    let out = std::process::Command::new(&cmd)
        .args(&args)
        .output()
        .map_err(|e| Error::internal(format!("run {}: {e}", cmd.display())))?;
    if !out.status.success() && lookup_user(name).is_none() {
        return Err(Error::internal(format!(
            "Error adding user {name:?}: failed to add user with error: {}; output: {:?}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

/// Give `name` a 65536-id range in the subuid and subgid files unless it has one,
/// at the first free start from 100000 (dockerd's `createSubordinateRanges`). The
/// files are locked while read and appended, so two daemons starting at once do not
/// hand out the same range twice.
fn add_ranges(name: &str, files: &Files) -> Result<()> {
    let id_u = lookup_user(name).map(|u| u.uid.as_raw());
    let id_g = lookup_group(name).map(|g| g.gid.as_raw());
    for (path, id) in [(&files.subuid, id_u), (&files.subgid, id_g)] {
        let mut f = fs::OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)
            .map_err(|e| Error::internal(format!("open {}: {e}", path.display())))?;
        // SAFETY: flock on a descriptor we own; released when `f` closes.
        if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(Error::internal(format!("lock {}: {}", path.display(), std::io::Error::last_os_error())));
        }
        let text = fs::read_to_string(path).unwrap_or_default();
        if !parse_subid(&text, name, id).is_empty() {
            continue;
        }
        let start = next_free_range(&all_subids(&text));
        let sep = if text.is_empty() || text.ends_with('\n') { "" } else { "\n" };
        writeln!(f, "{sep}{name}:{start}:{RANGE_LEN}")
            .and_then(|_| f.sync_all())
            .map_err(|e| Error::internal(format!("Unable to add subordinate range to user {name:?} in {}: {e}", path.display())))?;
    }
    Ok(())
}

/// The child side of [`Holder`] (`berth-shim userns-hold [--join PATH]`): enter a
/// new user namespace — or join the one pinned at PATH and make a new network
/// namespace in it — say so on stdout, and stay until stdin closes, so that berthd
/// can write maps and pin what was made. Must run before the process starts a thread.
pub fn hold(args: &[String]) -> std::io::Result<()> {
    use nix::sched::{setns, unshare, CloneFlags};
    match args {
        [] => unshare(CloneFlags::CLONE_NEWUSER)?,
        [flag, path] if flag == "--join" => {
            let ns = fs::File::open(path)?;
            setns(&ns, CloneFlags::CLONE_NEWUSER)?;
            unshare(CloneFlags::CLONE_NEWNET)?;
        }
        _ => return Err(std::io::Error::other("usage: userns-hold [--join USERNS]")),
    }
    let mut out = std::io::stdout().lock();
    out.write_all(b"ready\n")?;
    out.flush()?;
    let mut sink = Vec::new();
    let _ = std::io::Read::read_to_end(&mut std::io::stdin().lock(), &mut sink);
    Ok(())
}

/// A helper process holding namespaces made for berthd (see [`hold`]).
struct Holder {
    child: std::process::Child,
}

impl Holder {
    fn spawn(helper: &Path, join: Option<&Path>) -> Result<Holder> {
        use std::process::{Command, Stdio};
        let mut cmd = Command::new(helper);
        cmd.arg("userns-hold");
        if let Some(p) = join {
            cmd.arg("--join").arg(p);
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| Error::internal(format!("start {} userns-hold: {e}", helper.display())))?;
        let mut line = String::new();
        let _ = std::io::BufReader::new(child.stdout.as_mut().expect("piped")).read_line(&mut line);
        let h = Holder { child };
        if line.trim() != "ready" {
            return Err(Error::internal("the helper could not make the namespaces (see berthd's log)"));
        }
        Ok(h)
    }

    fn ns(&self, kind: &str) -> PathBuf {
        PathBuf::from(format!("/proc/{}/ns/{kind}", self.child.id()))
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

/// Bind-mount namespace file `ns` at `pin` (a file, made if missing), replacing
/// what a previous daemon pinned there (its users keep theirs).
fn pin(ns: &Path, pin: &Path) -> std::io::Result<()> {
    use nix::mount::{mount, umount2, MntFlags, MsFlags};
    if let Some(dir) = pin.parent() {
        fs::create_dir_all(dir)?;
    }
    while is_mountpoint(pin) {
        if umount2(pin, MntFlags::MNT_DETACH).is_err() {
            break;
        }
    }
    fs::OpenOptions::new().create(true).truncate(false).write(true).open(pin)?;
    mount(Some(ns), pin, None::<&str>, MsFlags::MS_BIND, None::<&str>)?;
    Ok(())
}

/// The user namespace with `map` pinned at `at`: the one a previous daemon pinned there
/// if it has this map (containers from before a restart and new ones then share it, so
/// they may join each other's namespaces), else a new one. Every remapped container
/// joins it (so the network namespaces berthd makes in it are theirs to configure), and
/// the layers' idmapped view is attached to it. Returns it opened.
pub fn make_userns(helper: &Path, map: &IdMap, at: &Path) -> Result<OwnedFd> {
    if is_mountpoint(at) && pinned_map(helper, at).as_ref() == Some(&map.proc_maps()) {
        return fs::File::open(at)
            .map(OwnedFd::from)
            .map_err(|e| Error::internal(format!("open the user namespace at {}: {e}", at.display())));
    }
    let h = Holder::spawn(helper, None)?;
    let pid = h.child.id();
    let (u, g) = map.proc_maps();
    (|| {
        fs::write(format!("/proc/{pid}/uid_map"), u)?;
        fs::write(format!("/proc/{pid}/gid_map"), g)?;
        pin(&h.ns("user"), at)?;
        Ok(OwnedFd::from(fs::File::open(at)?))
    })()
    .map_err(|e: std::io::Error| Error::internal(format!("make a user namespace for the id map: {e}")))
}

/// The uid and gid maps of the user namespace pinned at `at` (read from a helper that
/// joins it), in [`IdMap::proc_maps`]' form.
fn pinned_map(helper: &Path, at: &Path) -> Option<(String, String)> {
    let h = Holder::spawn(helper, Some(at)).ok()?;
    let read = |f: &str| -> Option<String> {
        let text = fs::read_to_string(format!("/proc/{}/{f}", h.child.id())).ok()?;
        Some(text.lines().map(|l| format!("{}\n", l.split_whitespace().collect::<Vec<_>>().join(" "))).collect())
    };
    Some((read("uid_map")?, read("gid_map")?))
}

/// Make a network namespace owned by the user namespace pinned at `userns`, and pin it
/// at `at`. Its loopback is down.
pub fn make_netns(helper: &Path, userns: &Path, at: &Path) -> Result<()> {
    let h = Holder::spawn(helper, Some(userns))?;
    pin(&h.ns("net"), at).map_err(|e| Error::internal(format!("pin network namespace at {}: {e}", at.display())))
}

/// `struct mount_attr` of mount_setattr(2) (the libc crate has neither).
#[repr(C)]
pub struct MountAttr {
    pub attr_set: u64,
    pub attr_clr: u64,
    pub propagation: u64,
    pub userns_fd: u64,
}

pub const MOUNT_ATTR_RDONLY: u64 = 0x1;
pub const MOUNT_ATTR_NOSUID: u64 = 0x2;
pub const MOUNT_ATTR_NODEV: u64 = 0x4;
pub const MOUNT_ATTR_NOEXEC: u64 = 0x8;
pub const MOUNT_ATTR_NOATIME: u64 = 0x10;
pub const MOUNT_ATTR_STRICTATIME: u64 = 0x20;
/// The access-time bits (`MOUNT_ATTR__ATIME`): set in `attr_clr` when one of them is set.
pub const MOUNT_ATTR_ATIME_MASK: u64 = 0x70;
pub const MOUNT_ATTR_NODIRATIME: u64 = 0x80;

/// mount_setattr(2): change the attributes of the mount at `path` relative to `dirfd`
/// (with `AT_RECURSIVE` in `flags`, of every mount below it too).
pub fn mount_setattr(dirfd: std::os::fd::RawFd, path: &std::ffi::CStr, flags: libc::c_uint, attr: &MountAttr) -> std::io::Result<()> {
    // SAFETY: a NUL-terminated path and a mount_attr of the size passed, both alive
    // for the call; the kernel reads them only.
    let r = unsafe {
        libc::syscall(libc::SYS_mount_setattr, dirfd, path.as_ptr(), flags, attr as *const MountAttr, std::mem::size_of::<MountAttr>())
    };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;

fn cstr(p: &Path) -> std::io::Result<std::ffi::CString> {
    use std::os::unix::ffi::OsStrExt;
    std::ffi::CString::new(p.as_os_str().as_bytes()).map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))
}

/// open_tree(2) with `OPEN_TREE_CLONE`: a detached copy of the mount at `path` (with
/// `recursive`, of every mount below it too), close-on-exec, named by its descriptor
/// for `mount_setattr` and `move_mount`.
pub fn clone_mount(path: &Path, recursive: bool) -> std::io::Result<OwnedFd> {
    let flags = if recursive { libc::AT_RECURSIVE as libc::c_uint } else { 0 };
    open_tree_clone(libc::AT_FDCWD, &cstr(path)?, flags)
}

/// Like [`clone_mount`] for the mount of an open file (one mount, not the tree below):
/// what the descriptor names, with no path resolved again.
pub fn clone_mount_fd(fd: BorrowedFd<'_>) -> std::io::Result<OwnedFd> {
    open_tree_clone(fd.as_raw_fd(), c"", libc::AT_EMPTY_PATH as libc::c_uint)
}

/// open_tree(2) with `OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC` and the extra `flags`.
fn open_tree_clone(dirfd: std::os::fd::RawFd, path: &std::ffi::CStr, flags: libc::c_uint) -> std::io::Result<OwnedFd> {
    let flags = flags | (libc::OPEN_TREE_CLONE | libc::OPEN_TREE_CLOEXEC) as libc::c_uint;
    // SAFETY: open_tree with a NUL-terminated path; the result is a new descriptor we own.
    let fd = unsafe { libc::syscall(libc::SYS_open_tree, dirfd, path.as_ptr(), flags) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: fd was just returned to us by open_tree.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Bind-mount `src` at `dst` with its owners shown through `userns`'s map: a file
/// owned by id N on disk appears owned by the host id N maps to.
pub fn idmapped_bind(src: &Path, dst: &Path, userns: BorrowedFd<'_>) -> std::io::Result<()> {
    let d = cstr(dst)?;
    let tree = clone_mount(src, false)?;
    let attr = MountAttr { attr_set: MOUNT_ATTR_IDMAP, attr_clr: 0, propagation: 0, userns_fd: userns.as_raw_fd() as u64 };
    // A detached tree we own, named by its descriptor.
    mount_setattr(tree.as_raw_fd(), c"", libc::AT_EMPTY_PATH as libc::c_uint, &attr)?;
    // SAFETY: moves the detached tree onto the existing directory `dst`.
    let r = unsafe {
        libc::syscall(libc::SYS_move_mount, tree.as_raw_fd(), c"".as_ptr(), libc::AT_FDCWD, d.as_ptr(), MOVE_MOUNT_F_EMPTY_PATH)
    };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// The layers seen through the id map, mounted once per daemon at `view`.
#[derive(Debug, Clone)]
pub struct IdmappedView {
    pub path: PathBuf,
}

impl IdmappedView {
    /// Mount `layers` at `view` idmapped through `userns` (replacing what a previous
    /// daemon left there: running containers keep the mounts they hold).
    pub fn mount(userns: BorrowedFd<'_>, layers: &Path, view: &Path) -> Result<IdmappedView> {
        fs::create_dir_all(view).map_err(|e| Error::internal(format!("create {}: {e}", view.display())))?;
        while is_mountpoint(view) {
            if nix::mount::umount2(view, nix::mount::MntFlags::MNT_DETACH).is_err() {
                break;
            }
        }
        idmapped_bind(layers, view, userns).map_err(|e| {
            Error::internal(format!(
                "userns-remap needs an idmapped mount of {} (Linux 5.19 or later, a filesystem that supports idmapped mounts): {e}",
                layers.display()
            ))
        })?;
        Ok(IdmappedView { path: view.to_owned() })
    }
}

fn is_mountpoint(p: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let (Ok(a), Some(parent)) = (fs::symlink_metadata(p), p.parent()) else { return false };
    let Ok(b) = fs::symlink_metadata(parent) else { return false };
    if a.dev() != b.dev() {
        return true;
    }
    // A bind mount of the same filesystem keeps the device: ask mountinfo.
    let target = p.display().to_string();
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .any(|l| l.split(' ').nth(4) == Some(target.as_str()))
}

/// `chown` for paths berthd creates for a remapped container (its upper dir, its
/// /etc files, a volume's data directory): to the container's root, or unchanged
/// without a map.
pub fn chown_to_root(path: &Path, map: Option<&IdMap>) -> Result<()> {
    let Some(m) = map else { return Ok(()) };
    let (u, g) = m.root();
    std::os::unix::fs::lchown(path, Some(u), Some(g))
        .map_err(|e| Error::internal(format!("chown {} to {u}:{g}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subid_lines_by_name_or_id() {
        let text = "# comment\nalice:100000:65536\n1001:300000:10\nbob:200000:65536\nalice:500000:0\n";
        assert_eq!(parse_subid(text, "alice", Some(1000)), vec![(100000, 65536)]);
        assert_eq!(parse_subid(text, "carol", Some(1001)), vec![(300000, 10)]);
        assert!(parse_subid(text, "dave", None).is_empty());
    }

    #[test]
    fn ranges_count_container_ids_up_across_ranges() {
        let m = IdMap::from_ranges(vec![(300000, 10), (100000, 65536)], vec![(100000, 65536), (100000, 65536)]).unwrap();
        assert_eq!(m.uids[0], IdRange { container: 0, host: 100000, size: 65536 });
        assert_eq!(m.uids[1], IdRange { container: 65536, host: 300000, size: 10 });
        assert_eq!(m.gids.len(), 1, "a repeated line is one range");
        assert_eq!(m.root(), (100000, 100000));
        assert_eq!(m.root_dir_name(), "100000.100000");
        assert_eq!(m.to_host(0, 0).unwrap(), (100000, 100000));
        assert_eq!(m.to_host(65537, 5).unwrap(), (300001, 100005));
        let e = m.to_host(0, 70000).unwrap_err();
        assert_eq!(e.message(), "Container ID 70000 cannot be mapped to a host ID");
        assert_eq!(m.to_container(100000, 165535), (0, 65535));
        assert_eq!(m.to_container(300009, 0), (65545, OVERFLOW_ID));
        assert_eq!(m.proc_maps().0, "0 100000 65536\n65536 300000 10\n");
        assert!(IdMap::from_ranges(vec![(100000, 10), (100005, 10)], vec![(1, 1)]).is_err());
        assert!(IdMap::from_ranges(vec![], vec![(1, 1)]).is_err());
    }

    #[test]
    fn next_range_skips_used_ones() {
        assert_eq!(next_free_range(&[]), 100000);
        assert_eq!(next_free_range(&[(100000, 65536)]), 165536);
        assert_eq!(next_free_range(&[(165536, 65536), (100000, 65536)]), 231072);
        assert_eq!(next_free_range(&[(500000, 10)]), 100000);
        assert_eq!(next_free_range(&[(150000, 10)]), 150010);
    }

    #[test]
    fn bad_specs_are_refused_with_dockerd_words() {
        let f = Files::default();
        let e = resolve("a:b:c", &f).unwrap_err();
        assert_eq!(e.message(), "Invalid user/group specification in --userns-remap: \"a:b:c\"");
        let e = resolve("no-such-user-berth", &f).unwrap_err();
        assert!(e.message().starts_with("Error during uid lookup for \"no-such-user-berth\""), "{e}");
        assert!(resolve("root", &f).unwrap().is_none(), "root remapped to itself is off");
        assert!(resolve("0", &f).unwrap().is_none());
    }

    #[test]
    fn ranges_come_from_the_files() {
        let dir = tempfile::tempdir().unwrap();
        let files = Files { subuid: dir.path().join("subuid"), subgid: dir.path().join("subgid") };
        // `daemon` exists on every Debian system (uid and group 1).
        fs::write(&files.subuid, "daemon:200000:1000\n").unwrap();
        fs::write(&files.subgid, "1:300000:1000\n").unwrap();
        let r = resolve("daemon", &files).unwrap().unwrap();
        assert_eq!(r.spec(), "daemon:daemon");
        assert_eq!(r.map.root(), (200000, 300000));
        fs::write(&files.subgid, "").unwrap();
        let e = resolve("daemon", &files).unwrap_err();
        assert!(e.message().contains("no subgid ranges found for group \"daemon\""), "{e}");
    }

    #[test]
    fn added_ranges_are_appended_once() {
        let dir = tempfile::tempdir().unwrap();
        let files = Files { subuid: dir.path().join("subuid"), subgid: dir.path().join("subgid") };
        fs::write(&files.subuid, "other:100000:65536").unwrap();
        add_ranges("daemon", &files).unwrap();
        add_ranges("daemon", &files).unwrap();
        assert_eq!(fs::read_to_string(&files.subuid).unwrap(), "other:100000:65536\ndaemon:165536:65536\n");
        assert_eq!(fs::read_to_string(&files.subgid).unwrap(), "daemon:100000:65536\n");
    }
}
