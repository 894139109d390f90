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
//! whichever hierarchy carries it. A mounted cgroup2 hierarchy can take it at any time;
//! a v1 hierarchy only when it is mounted.
//!
//! On cgroup v1, a new cpuset cgroup starts with no CPUs and no memory nodes; the
//! runtime copies its parent's into it before the container's init can join, and each
//! such write makes the kernel validate the change against every sibling and rebuild
//! the scheduler's domains: a cost that grows with the containers running (with 300,
//! a third of libcontainer's intermediate process). With `cgroup.clone_children` set
//! on the containers' parent the kernel copies them at `mkdir` instead, and the
//! runtime finds nothing to write ([`clone_cpusets`]).

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
    /// No cgroup2 hierarchy is mounted: a v1 hierarchy refuses to change the option
    /// after it was mounted, so only the boot option (`cgroup_favordynmods=true`) can.
    NoV2Hierarchy,
}

/// Make new cpuset cgroups under `parent` (e.g. `berth`, relative to the hierarchy's
/// root) start with their parent's CPUs and memory nodes (see the module's doc): the
/// cgroup is made if missing, with its own CPUs and nodes filled in from above where
/// empty, and its `cgroup.clone_children` set. None: no v1 cpuset hierarchy is
/// mounted (v2 children inherit by design).
pub fn clone_cpusets(parent: &str) -> io::Result<Option<PathBuf>> {
    let info = std::fs::read_to_string("/proc/self/mountinfo")?;
    let Some(mount) = cgroup_mounts(&info)?
        .into_iter()
        .find(|(v2, _, opts)| !v2 && opts.iter().any(|(k, _)| k == "cpuset"))
        .map(|(_, p, _)| p)
    else {
        return Ok(None);
    };
    let mut dir = mount.clone();
    for part in parent.split('/').filter(|c| !c.is_empty() && *c != "." && *c != "..") {
        let above = dir.clone();
        dir.push(part);
        match std::fs::create_dir(&dir) {
            Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(e),
            _ => {}
        }
        for file in ["cpuset.cpus", "cpuset.mems"] {
            if std::fs::read_to_string(dir.join(file))?.trim().is_empty() {
                std::fs::write(dir.join(file), std::fs::read_to_string(above.join(file))?.trim())?;
            }
        }
    }
    if dir != mount {
        std::fs::write(dir.join("cgroup.clone_children"), "1")?;
    }
    Ok(Some(dir))
}

/// A cgroup hierarchy's mount: (v2?, mount point, super options: flags, key=value).
type CgroupMount = (bool, PathBuf, Vec<(String, Option<String>)>);

/// The cgroup and cgroup2 entries of a `/proc/self/mountinfo`.
pub(crate) fn cgroup_mount_infos(mountinfo: &str) -> io::Result<Vec<procfs_core::process::MountInfo>> {
    use procfs_core::FromBufRead;
    let infos = procfs_core::process::MountInfos::from_buf_read(mountinfo.as_bytes())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("mountinfo: {e}")))?;
    Ok(infos.into_iter().filter(|m| matches!(m.fs_type.as_str(), "cgroup" | "cgroup2")).collect())
}

/// The cgroup mounts of a `/proc/self/mountinfo`.
fn cgroup_mounts(mountinfo: &str) -> io::Result<Vec<CgroupMount>> {
    Ok(cgroup_mount_infos(mountinfo)?
        .into_iter()
        .map(|m| {
            let mut opts: Vec<_> = m.super_options.into_iter().collect();
            opts.sort();
            (m.fs_type == "cgroup2", m.mount_point, opts)
        })
        .collect())
}

/// The hierarchy to reconfigure: a cgroup2 one (a v1 hierarchy refuses any change
/// of its flags once mounted: EINVAL); None when `favordynmods` shows on any already.
fn choose(mounts: &[CgroupMount]) -> Option<Option<&CgroupMount>> {
    if mounts.iter().any(|(_, _, o)| o.iter().any(|(k, _)| k == "favordynmods")) {
        return None;
    }
    Some(mounts.iter().find(|m| m.0))
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

/// Turn the kernel's `favordynmods` on (see the module's doc). The cgroup2 hierarchy
/// (pure v2, or the `unified` one of a hybrid host) is reconfigured with its current
/// options plus `favordynmods` (a reconfiguration sets every option anew: leaving one
/// out would clear it, e.g. systemd's `nsdelegate`).
pub fn favor_dynmods() -> io::Result<Favor> {
    let info = std::fs::read_to_string("/proc/self/mountinfo")?;
    let mounts = cgroup_mounts(&info)?;
    let (point, opts) = match choose(&mounts) {
        None => return Ok(Favor::AlreadyOn),
        Some(None) => return Ok(Favor::NoV2Hierarchy),
        Some(Some((_, p, o))) => (p.clone(), o.clone()),
    };
    let path = CString::new(point.as_os_str().as_encoded_bytes()).map_err(|_| io::ErrorKind::InvalidInput)?;
    // SAFETY: fspick with a NUL-terminated path; the result is a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_fspick, libc::AT_FDCWD, path.as_ptr(), FSPICK_CLOEXEC | FSPICK_NO_AUTOMOUNT) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fspick returned a new descriptor that nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    for (k, v) in &opts {
        match v {
            // read-only state is the mount's, not an option of the hierarchy
            _ if matches!(k.as_str(), "rw" | "ro") => {}
            Some(v) => fsconfig(&fd, FSCONFIG_SET_STRING, Some(k), Some(v))?,
            None => fsconfig(&fd, FSCONFIG_SET_FLAG, Some(k), None)?,
        }
    }
    fsconfig(&fd, FSCONFIG_SET_FLAG, Some("favordynmods"), None)?;
    fsconfig(&fd, FSCONFIG_CMD_RECONFIGURE, None, None)?;
    Ok(Favor::TurnedOn(point))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
24 31 0:22 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
33 24 0:28 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
35 33 0:30 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:11 - cgroup2 cgroup2 rw,nsdelegate
36 33 0:31 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:12 - cgroup cgroup rw,xattr,name=systemd
40 33 0:35 / /sys/fs/cgroup/cpu rw,nosuid,nodev,noexec,relatime shared:16 - cgroup cgroup rw,cpu
";

    fn opts(list: &[(&str, Option<&str>)]) -> Vec<(String, Option<String>)> {
        list.iter().map(|(k, v)| (k.to_string(), v.map(str::to_owned))).collect()
    }

    #[test]
    fn finds_cgroup_mounts_with_their_super_options() {
        let m = cgroup_mounts(HYBRID).unwrap();
        assert_eq!(m.len(), 3);
        assert_eq!(m[0], (true, "/sys/fs/cgroup/unified".into(), opts(&[("nsdelegate", None), ("rw", None)])));
        assert_eq!(
            m[1],
            (false, "/sys/fs/cgroup/systemd".into(), opts(&[("name", Some("systemd")), ("rw", None), ("xattr", None)]))
        );
        assert_eq!(m[2].1, PathBuf::from("/sys/fs/cgroup/cpu"));
    }

    #[test]
    fn prefers_the_v2_hierarchy_and_stops_when_the_option_is_on() {
        let m = cgroup_mounts(HYBRID).unwrap();
        assert_eq!(choose(&m).unwrap().unwrap().1, PathBuf::from("/sys/fs/cgroup/unified"));
        let v1_only: Vec<_> = m.iter().filter(|x| !x.0).cloned().collect();
        assert_eq!(choose(&v1_only), Some(None));
        let on = cgroup_mounts(&HYBRID.replace("rw,cpu", "rw,cpu,favordynmods")).unwrap();
        assert!(choose(&on).is_none());
        assert_eq!(choose(&[]), Some(None));
    }
}
