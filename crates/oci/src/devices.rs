//! Devices: moby's device-cgroup allow list and, for `--privileged`, the host's devices.

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use berth_errdefs::{Error, Result};
use oci_spec::runtime::{LinuxDevice, LinuxDeviceCgroup, LinuxDeviceType};

use crate::DeviceMapping;

fn rule(
    allow: bool,
    typ: LinuxDeviceType,
    major: Option<i64>,
    minor: Option<i64>,
) -> LinuxDeviceCgroup {
    let mut r = LinuxDeviceCgroup::default();
    r.set_allow(allow);
    r.set_typ(Some(typ));
    r.set_major(major);
    r.set_minor(minor);
    r.set_access(Some("rwm".into()));
    r
}

/// moby `DefaultLinuxSpec` device cgroup rules: deny everything, then allow the standard
/// character devices, and deny /dev/fuse.
/// (libcontainer adds runc's usual extras itself: `c/b *:* m`, /dev/console, /dev/pts/*,
/// /dev/ptmx and /dev/net/tun.)
pub(crate) fn default_device_rules() -> Vec<LinuxDeviceCgroup> {
    use LinuxDeviceType::{A, C};
    vec![
        rule(false, A, None, None),
        rule(true, C, Some(1), Some(5)),     // /dev/zero
        rule(true, C, Some(1), Some(3)),     // /dev/null
        rule(true, C, Some(1), Some(9)),     // /dev/urandom
        rule(true, C, Some(1), Some(8)),     // /dev/random
        rule(true, C, Some(5), Some(0)),     // /dev/tty
        rule(true, C, Some(5), Some(1)),     // /dev/console
        rule(false, C, Some(10), Some(229)), // /dev/fuse
    ]
}

/// `--privileged`: every device is allowed.
pub(crate) fn privileged_device_rules() -> Vec<LinuxDeviceCgroup> {
    vec![rule(true, LinuxDeviceType::A, None, None)]
}

/// Directories under /dev that are not device trees of the host (containerd `HostDevices`).
const SKIP_DIRS: &[&str] = &["pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev"];

/// All character and block devices under the host's /dev, as privileged containers get them.
pub(crate) fn host_devices() -> Vec<LinuxDevice> {
    let mut out = Vec::new();
    collect(Path::new("/dev"), &mut out);
    out
}

fn collect(dir: &Path, out: &mut Vec<LinuxDevice>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let path = e.path();
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        let ft = meta.file_type();
        if ft.is_dir() {
            let name = e.file_name();
            if dir == Path::new("/dev") && SKIP_DIRS.iter().any(|s| name == *s) {
                continue;
            }
            collect(&path, out);
            continue;
        }
        // /dev/console belongs to the container's own terminal setup.
        if path == Path::new("/dev/console") {
            continue;
        }
        out.extend(device_of(&meta, &path.display().to_string()));
    }
}

/// The OCI device for a device node's metadata, at `container_path`; `None` when it
/// is not a character or block device.
fn device_of(meta: &std::fs::Metadata, container_path: &str) -> Option<LinuxDevice> {
    let ft = meta.file_type();
    let typ = if ft.is_char_device() {
        LinuxDeviceType::C
    } else if ft.is_block_device() {
        LinuxDeviceType::B
    } else {
        return None;
    };
    let rdev = meta.rdev();
    let mut d = LinuxDevice::default();
    d.set_path(container_path.into());
    d.set_typ(typ);
    d.set_major(nix::sys::stat::major(rdev) as i64);
    d.set_minor(nix::sys::stat::minor(rdev) as i64);
    d.set_file_mode(Some(meta.mode() & 0o7777));
    d.set_uid(Some(meta.uid()));
    d.set_gid(Some(meta.gid()));
    Some(d)
}

/// A host device node (symlinks followed) as an OCI device at `container_path`.
fn device_at(path: &Path, container_path: &str) -> Option<LinuxDevice> {
    device_of(&std::fs::metadata(path).ok()?, container_path)
}

fn allow(d: &LinuxDevice, access: &str) -> LinuxDeviceCgroup {
    let mut r = rule(true, d.typ(), Some(d.major()), Some(d.minor()));
    r.set_access(Some(access.to_owned()));
    r
}

/// moby `DevicesFromPath`: the device at `m.host`, or every device below it when it is
/// a directory (mapped under `m.container`), with a cgroup rule allowing each.
pub(crate) fn devices_from_path(m: &DeviceMapping) -> Result<(Vec<LinuxDevice>, Vec<LinuxDeviceCgroup>)> {
    if m.permissions.is_empty() || !m.permissions.chars().all(|c| matches!(c, 'r' | 'w' | 'm')) {
        return Err(Error::invalid(format!("invalid device cgroup permissions: {}", m.permissions)));
    }
    let resolved = std::fs::canonicalize(&m.host)
        .map_err(|e| {
            Error::invalid(format!(
                "error gathering device information while adding custom device \"{}\": {}",
                m.host.display(),
                berth_errdefs::go_error(&e)
            ))
        })?;
    if let Some(d) = device_at(&resolved, &m.container) {
        let r = allow(&d, &m.permissions);
        return Ok((vec![d], vec![r]));
    }
    if resolved.is_dir() {
        let mut found = Vec::new();
        collect(&resolved, &mut found);
        let mut devs = Vec::new();
        let mut rules = Vec::new();
        for d in found {
            let rel = d.path().strip_prefix(&resolved).unwrap_or(d.path()).to_path_buf();
            let target = Path::new(&m.container).join(rel).display().to_string();
            if let Some(nd) = device_at(d.path(), &target) {
                rules.push(allow(&nd, &m.permissions));
                devs.push(nd);
            }
        }
        return Ok((devs, rules));
    }
    Err(Error::invalid(format!(
        "error gathering device information while adding custom device \"{}\": not a device node",
        m.host.display()
    )))
}

/// `--device-cgroup-rule`: `TYPE MAJOR:MINOR ACCESS` (`c 1:3 rwm`, `a *:* rwm`).
pub fn parse_cgroup_rule(rule_text: &str) -> Result<LinuxDeviceCgroup> {
    let bad = || Error::invalid(format!("invalid device cgroup rule format: '{rule_text}'"));
    let parts: Vec<&str> = rule_text.split_whitespace().collect();
    let [t, mm, access] = parts.as_slice() else { return Err(bad()) };
    let typ = match *t {
        "a" => LinuxDeviceType::A,
        "b" => LinuxDeviceType::B,
        "c" => LinuxDeviceType::C,
        _ => return Err(bad()),
    };
    let (ma, mi) = mm.split_once(':').ok_or_else(bad)?;
    let num = |v: &str| -> Result<Option<i64>> {
        if v == "*" {
            Ok(None)
        } else {
            v.parse::<i64>().map(Some).map_err(|_| bad())
        }
    };
    if access.is_empty() || access.len() > 3 || !access.chars().all(|c| matches!(c, 'r' | 'w' | 'm')) {
        return Err(bad());
    }
    let mut r = rule(true, typ, num(ma)?, num(mi)?);
    r.set_access(Some(access.to_string()));
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_rules_start_with_deny_all() {
        let r = default_device_rules();
        assert!(!r[0].allow());
        assert_eq!(r[0].to_string(), "a *:* rwm");
        assert!(r.iter().any(|d| d.allow() && d.to_string() == "c 1:3 rwm"));
        assert!(r
            .iter()
            .any(|d| !d.allow() && d.to_string() == "c 10:229 rwm"));
    }

    #[test]
    fn device_mappings_and_rules() {
        let m = DeviceMapping { host: "/dev/null".into(), container: "/dev/mynull".into(), permissions: "rw".into() };
        let (d, r) = devices_from_path(&m).unwrap();
        assert_eq!(d[0].path(), Path::new("/dev/mynull"));
        assert_eq!(r[0].to_string(), "c 1:3 rw");
        let bad = DeviceMapping { permissions: "rwx".into(), ..m.clone() };
        assert!(devices_from_path(&bad).is_err());
        let file = DeviceMapping { host: "/etc/hostname".into(), ..m };
        assert!(devices_from_path(&file).is_err());
        assert_eq!(parse_cgroup_rule("c 1:3 rwm").unwrap().to_string(), "c 1:3 rwm");
        assert_eq!(parse_cgroup_rule("a *:* r").unwrap().to_string(), "a *:* r");
        assert!(parse_cgroup_rule("x 1:3 rwm").is_err());
        assert!(parse_cgroup_rule("c 1 rwm").is_err());
    }

    #[test]
    fn host_devices_include_null() {
        let devs = host_devices();
        let null = devs
            .iter()
            .find(|d| d.path() == Path::new("/dev/null"))
            .expect("/dev/null");
        assert_eq!((null.major(), null.minor()), (1, 3));
        assert!(!devs.iter().any(|d| d.path().starts_with("/dev/pts")));
    }
}
