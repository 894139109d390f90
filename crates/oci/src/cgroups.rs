//! Host cgroup tuning for container start-up.
//!
//! Moving a process into a cgroup (writing `cgroup.procs`, which the runtime does for
//! a container's init in every v1 hierarchy, or once on v2) takes the kernel's global
//! `cgroup_threadgroup_rwsem` for writing. By default that lock favours readers (fork,
//! exit), so each writer first waits for an RCU grace period: several milliseconds on
//! a VM with a 250 Hz tick, and the largest single wait of a container's creation
//! (measured here: 7.7 ms of a 16 ms creation, 31 → 16 ms for a whole cold `run`).
//! The kernel's `favordynmods` option (`cgroup_favordynmods=` on its command line, or
//! a mount option of any cgroup hierarchy since Linux 6.0) keeps the lock in its
//! writer-friendly mode, at the price of slightly dearer forks and exits; it is global,
//! whichever hierarchy carries it.

use std::ffi::CString;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::PathBuf;

/// What [`favor_dynmods`] found or did.
#[derive(Debug, PartialEq)]
pub enum Favor {
    /// It was on already (the kernel's default, or someone set it).
    AlreadyOn,
    /// Turned on now, by reconfiguring the hierarchy mounted here.
    TurnedOn(PathBuf),
    /// No cgroup hierarchy is mounted.
    NoHierarchy,
}

/// One cgroup mount of `/proc/self/mountinfo`: (v2?, mount point, super options).
fn cgroup_mounts(mountinfo: &str) -> Vec<(bool, String, String)> {
    let mut out = Vec::new();
    for line in mountinfo.lines() {
        let Some((pre, post)) = line.split_once(" - ") else { continue };
        let mut post = post.split(' ');
        let fstype = post.next().unwrap_or("");
        let super_opts = post.nth(1).unwrap_or("");
        let Some(point) = pre.split(' ').nth(4) else { continue };
        if matches!(fstype, "cgroup" | "cgroup2") {
            out.push((fstype == "cgroup2", unescape(point), super_opts.to_owned()));
        }
    }
    out
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c)) {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The hierarchy to reconfigure: the cgroup2 one if any (its options are few and
/// all flags), else the first v1 one; None when `favordynmods` shows on any already.
fn choose(mounts: &[(bool, String, String)]) -> Option<Option<&(bool, String, String)>> {
    if mounts.iter().any(|(_, _, o)| o.split(',').any(|x| x == "favordynmods")) {
        return None;
    }
    Some(mounts.iter().find(|m| m.0).or_else(|| mounts.first()))
}

// linux/mount.h
const FSPICK_CLOEXEC: libc::c_uint = 0x1;
const FSPICK_NO_AUTOMOUNT: libc::c_uint = 0x4;
const FSCONFIG_SET_FLAG: libc::c_uint = 0;
const FSCONFIG_SET_STRING: libc::c_uint = 1;
const FSCONFIG_CMD_RECONFIGURE: libc::c_uint = 7;

fn fsconfig(fd: &OwnedFd, cmd: libc::c_uint, key: Option<&str>, value: Option<&str>) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let key = key.map(|k| CString::new(k).map_err(|_| io::ErrorKind::InvalidInput)).transpose()?;
    let value = value.map(|v| CString::new(v).map_err(|_| io::ErrorKind::InvalidInput)).transpose()?;
    let kp = key.as_ref().map_or(std::ptr::null(), |k| k.as_ptr());
    let vp = value.as_ref().map_or(std::ptr::null(), |v| v.as_ptr());
    // SAFETY: fsconfig with an open fs-context fd and NUL-terminated strings (or nulls)
    // that outlive the call.
    let rc = unsafe { libc::syscall(libc::SYS_fsconfig, fd.as_raw_fd(), cmd, kp, vp, 0) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Turn the kernel's `favordynmods` on (see the module's doc). The hierarchy is
/// reconfigured with its current options plus `favordynmods` (a reconfiguration sets
/// every option anew: leaving one out would clear it, e.g. systemd's `nsdelegate`).
pub fn favor_dynmods() -> io::Result<Favor> {
    let info = std::fs::read_to_string("/proc/self/mountinfo")?;
    let mounts = cgroup_mounts(&info);
    let (point, opts) = match choose(&mounts) {
        None => return Ok(Favor::AlreadyOn),
        Some(None) => return Ok(Favor::NoHierarchy),
        Some(Some((_, p, o))) => (p.clone(), o.clone()),
    };
    let path = CString::new(point.as_str()).map_err(|_| io::ErrorKind::InvalidInput)?;
    // SAFETY: fspick with a NUL-terminated path; the result is a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_fspick, libc::AT_FDCWD, path.as_ptr(), FSPICK_CLOEXEC | FSPICK_NO_AUTOMOUNT) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fspick returned a new descriptor that nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    for o in opts.split(',') {
        match o.split_once('=') {
            // per-mount and read-only state, and a v1 release agent (which a
            // reconfiguration may not change) are not superblock flags to repeat
            _ if matches!(o, "" | "rw" | "ro") => {}
            Some(("release_agent", _)) => {}
            Some((k, v)) => fsconfig(&fd, FSCONFIG_SET_STRING, Some(k), Some(v))?,
            None => fsconfig(&fd, FSCONFIG_SET_FLAG, Some(o), None)?,
        }
    }
    fsconfig(&fd, FSCONFIG_SET_FLAG, Some("favordynmods"), None)?;
    fsconfig(&fd, FSCONFIG_CMD_RECONFIGURE, None, None)?;
    Ok(Favor::TurnedOn(PathBuf::from(point)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
24 31 0:22 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
33 24 0:28 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
35 33 0:30 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:11 - cgroup2 cgroup2 rw,nsdelegate
36 33 0:31 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:12 - cgroup cgroup rw,xattr,name=systemd
40 33 0:35 / /sys/fs/cgroup/cpu\\040x rw,nosuid,nodev,noexec,relatime shared:16 - cgroup cgroup rw,cpu
";

    #[test]
    fn finds_cgroup_mounts_with_their_super_options() {
        let m = cgroup_mounts(HYBRID);
        assert_eq!(m.len(), 3);
        assert_eq!(m[0], (true, "/sys/fs/cgroup/unified".into(), "rw,nsdelegate".into()));
        assert_eq!(m[1], (false, "/sys/fs/cgroup/systemd".into(), "rw,xattr,name=systemd".into()));
        assert_eq!(m[2].1, "/sys/fs/cgroup/cpu x");
    }

    #[test]
    fn prefers_the_v2_hierarchy_and_stops_when_the_option_is_on() {
        let m = cgroup_mounts(HYBRID);
        assert_eq!(choose(&m).unwrap().unwrap().1, "/sys/fs/cgroup/unified");
        let v1_only: Vec<_> = m.iter().filter(|x| !x.0).cloned().collect();
        assert_eq!(choose(&v1_only).unwrap().unwrap().1, "/sys/fs/cgroup/systemd");
        let on = cgroup_mounts(&HYBRID.replace("rw,cpu", "rw,cpu,favordynmods"));
        assert!(choose(&on).is_none());
        assert_eq!(choose(&[]), Some(None));
    }
}
