//! Devices: moby's device-cgroup allow list and, for `--privileged`, the host's devices.

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use oci_spec::runtime::{LinuxDevice, LinuxDeviceCgroup, LinuxDeviceType};

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
        let typ = if ft.is_char_device() {
            LinuxDeviceType::C
        } else if ft.is_block_device() {
            LinuxDeviceType::B
        } else {
            continue;
        };
        let rdev = meta.rdev();
        let mut d = LinuxDevice::default();
        d.set_path(path);
        d.set_typ(typ);
        d.set_major(nix::sys::stat::major(rdev) as i64);
        d.set_minor(nix::sys::stat::minor(rdev) as i64);
        d.set_file_mode(Some(meta.mode() & 0o7777));
        d.set_uid(Some(meta.uid()));
        d.set_gid(Some(meta.gid()));
        out.push(d);
    }
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
