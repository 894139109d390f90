//! The spec's mount list: moby's default mounts, then /etc files and user mounts.

use std::collections::HashSet;
use std::path::Path;

use berth_errdefs::{Error, Result};
use oci_spec::runtime::Mount;

use crate::{MountKind, MountSpec, NsMode, SpecOptions};

fn mount(dest: &str, typ: &str, source: &str, options: &[&str]) -> Mount {
    let mut m = Mount::default();
    m.set_destination(dest.into());
    m.set_typ(Some(typ.to_string()));
    m.set_source(Some(source.into()));
    m.set_options(Some(options.iter().map(|o| o.to_string()).collect()));
    m
}

/// What the security options change about mounts.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct MountPolicy {
    /// `--privileged`: /sys and /sys/fs/cgroup read-write.
    pub privileged: bool,
    /// `--security-opt writable-cgroups=true`.
    pub writable_cgroups: bool,
}

/// moby's `DefaultLinuxSpec` mounts plus /dev/shm (size from `--shm-size`) and /dev/mqueue,
/// adjusted for the IPC mode.
pub(crate) fn default_mounts(opts: &SpecOptions, shm_size: i64, policy: MountPolicy) -> Vec<Mount> {
    let sys_opts: &[&str] = if policy.privileged {
        &["nosuid", "noexec", "nodev"]
    } else {
        &["nosuid", "noexec", "nodev", "ro"]
    };
    let cg_opts: &[&str] = if policy.privileged || policy.writable_cgroups {
        &["nosuid", "noexec", "nodev"]
    } else {
        &["ro", "nosuid", "noexec", "nodev"]
    };
    let mut v = vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"]),
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        ),
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        ),
        mount("/sys", "sysfs", "sysfs", sys_opts),
        mount("/sys/fs/cgroup", "cgroup", "cgroup", cg_opts),
    ];
    // mqueue is mounted in every case: in the host's IPC namespace it shows the
    // host's queues, as with Docker's `--ipc host`.
    if !opts.ipc_none {
        v.push(mount("/dev/mqueue", "mqueue", "mqueue", &["nosuid", "noexec", "nodev"]));
    }
    match (&opts.ipc, &opts.shm_source) {
        (NsMode::Host, _) => v.push(mount("/dev/shm", "bind", "/dev/shm", &["rbind", "rprivate"])),
        // A shareable /dev/shm (this container's, or the one whose IPC it joins).
        (_, Some(src)) => v.push(mount("/dev/shm", "bind", &src.display().to_string(), &["rbind", "rprivate"])),
        _ if opts.ipc_none => {}
        _ => {
            let size = format!("size={shm_size}");
            v.push(mount("/dev/shm", "tmpfs", "shm", &["nosuid", "noexec", "nodev", "mode=1777", &size]));
        }
    }
    v
}

const PROPAGATIONS: &[&str] = &[
    "private", "rprivate", "shared", "rshared", "slave", "rslave",
];

/// Convert one user mount to its OCI form (moby `WithMounts`).
fn user_mount(m: &MountSpec) -> Result<Mount> {
    if !m.destination.starts_with('/') {
        return Err(Error::invalid(format!(
            "invalid mount config: mount path must be absolute: {}",
            m.destination
        )));
    }
    let mut out = Mount::default();
    out.set_destination(m.destination.clone().into());
    let mut options: Vec<String> = Vec::new();
    match m.kind {
        MountKind::Bind => {
            if !m.source.is_absolute() {
                return Err(Error::invalid(format!(
                    "invalid mount config: bind source path must be absolute: {}",
                    m.source.display()
                )));
            }
            out.set_typ(Some("bind".into()));
            out.set_source(Some(m.source.clone()));
            options.push("rbind".into());
            if m.readonly {
                options.push("ro".into());
            }
            options.extend(
                m.options
                    .iter()
                    .filter(|o| *o != "rbind" && *o != "bind")
                    .cloned(),
            );
            if !options.iter().any(|o| PROPAGATIONS.contains(&o.as_str())) {
                options.push("rprivate".into());
            }
        }
        MountKind::Tmpfs => {
            out.set_typ(Some("tmpfs".into()));
            out.set_source(Some("tmpfs".into()));
            // moby's tmpfs defaults, unless the user's options say otherwise.
            for (def, neg) in [("noexec", "exec"), ("nosuid", "suid"), ("nodev", "dev")] {
                if !m.options.iter().any(|o| o == neg || o == def) {
                    options.push(def.into());
                }
            }
            options.extend(m.options.iter().cloned());
            if m.readonly && !options.iter().any(|o| o == "ro") {
                options.push("ro".into());
            }
        }
    }
    out.set_options(Some(options));
    Ok(out)
}

/// The /etc/{resolv.conf,hostname,hosts} binds, read-only when the rootfs is.
fn etc_mounts(opts: &SpecOptions) -> Vec<MountSpec> {
    let Some(files) = &opts.etc_files else {
        return Vec::new();
    };
    [
        (&files.resolv_conf, "/etc/resolv.conf"),
        (&files.hostname, "/etc/hostname"),
        (&files.hosts, "/etc/hosts"),
    ]
    .into_iter()
    .map(|(src, dest)| MountSpec {
        kind: MountKind::Bind,
        source: src.clone(),
        destination: dest.to_string(),
        readonly: opts.readonly_rootfs,
        options: Vec::new(),
    })
    .collect()
}

/// Number of path components, the key moby sorts mounts by (parents before children).
fn depth(dest: &str) -> usize {
    let clean = Path::new(dest);
    clean.components().count()
}

/// The complete, ordered mount list and the rootfs propagation the user mounts need.
pub(crate) fn all_mounts(
    opts: &SpecOptions,
    shm_size: i64,
    policy: MountPolicy,
) -> Result<(Vec<Mount>, Option<String>)> {
    // /etc files unless the user mounts something there; user mounts after them.
    let user_dests: HashSet<String> = opts
        .mounts
        .iter()
        .map(|m| normalize_dest(&m.destination))
        .collect();
    let mut extra: Vec<MountSpec> = etc_mounts(opts)
        .into_iter()
        .filter(|m| !user_dests.contains(&m.destination))
        .collect();
    extra.extend(opts.mounts.iter().cloned());
    if let Some(init) = &opts.init {
        extra.push(MountSpec {
            kind: MountKind::Bind,
            source: init.clone(),
            destination: crate::INIT_PATH.to_string(),
            readonly: true,
            options: Vec::new(),
        });
    }
    // Stable sort by depth, as moby sorts mounts before handing them to the runtime.
    extra.sort_by_key(|m| depth(&m.destination));

    let all_dests: HashSet<String> = extra
        .iter()
        .map(|m| normalize_dest(&m.destination))
        .collect();
    let mount_dev = all_dests.contains("/dev");
    let mut out: Vec<Mount> = default_mounts(opts, shm_size, policy)
        .into_iter()
        .filter(|m| {
            let d = m.destination().to_string_lossy().into_owned();
            let shadowed = all_dests.contains(&d) || (mount_dev && d.starts_with("/dev/"));
            !shadowed
        })
        .collect();

    let mut propagation: Option<String> = None;
    for m in &extra {
        let om = user_mount(m)?;
        for o in om.options().iter().flatten() {
            match o.as_str() {
                "shared" | "rshared" => propagation = Some("shared".into()),
                "slave" | "rslave" if propagation.is_none() => propagation = Some("slave".into()),
                _ => {}
            }
        }
        out.push(om);
    }
    Ok((out, propagation))
}

/// Check, against the host's mount table, that each bind mount asking for shared or
/// slave propagation can have it (see [`check_source_propagation`]).
pub fn check_bind_propagation(mounts: &[MountSpec]) -> Result<()> {
    for m in mounts.iter().filter(|m| m.kind == MountKind::Bind) {
        for o in &m.options {
            if matches!(o.as_str(), "shared" | "rshared" | "slave" | "rslave") {
                check_source_propagation(&m.source, o)?;
            }
        }
    }
    Ok(())
}

/// moby's `ensureShared` / `ensureSharedOrSlave`: a bind asking for shared propagation
/// needs a source on a shared mount, and for slave propagation one on a shared or
/// slave mount — else nothing would propagate between host and container, and the
/// option would be a silent no-op.
fn check_source_propagation(source: &Path, propagation: &str) -> Result<()> {
    let resolved = std::fs::canonicalize(source).unwrap_or_else(|_| source.to_path_buf());
    let info = std::fs::read_to_string("/proc/self/mountinfo").map_err(|e| Error::internal(format!("read mountinfo: {e}")))?;
    let Some((mountpoint, optional)) = source_mount(&info, &resolved) else {
        return Err(Error::invalid(format!("Can't find mount point of {}", source.display())));
    };
    let shared = optional.split_whitespace().any(|f| f.starts_with("shared:"));
    let slave = optional.split_whitespace().any(|f| f.starts_with("master:"));
    let (ok, what) = match propagation {
        "shared" | "rshared" => (shared, "a shared mount"),
        _ => (shared || slave, "a shared or slave mount"),
    };
    if ok {
        return Ok(());
    }
    Err(Error::invalid(format!("path {} is mounted on {mountpoint} but it is not {what}", source.display())))
}

/// In a mountinfo table, the mount `path` is on (the longest mount point above it):
/// its mount point and its optional fields (`shared:N`, `master:N`, …).
fn source_mount(mountinfo: &str, path: &Path) -> Option<(String, String)> {
    let mut best: Option<(String, String)> = None;
    for line in mountinfo.lines() {
        let Some((pre, _)) = line.split_once(" - ") else { continue };
        let fields: Vec<&str> = pre.split(' ').collect();
        if fields.len() < 6 {
            continue;
        }
        let mountpoint = unescape_octal(fields[4]);
        if !path.starts_with(&mountpoint) {
            continue;
        }
        // A later mount on the same point covers an earlier one: `>=` keeps the last.
        if best.as_ref().is_none_or(|(b, _)| mountpoint.len() >= b.len()) {
            best = Some((mountpoint, fields[6..].join(" ")));
        }
    }
    best
}

/// mountinfo's escapes (`\040` for a space, …).
fn unescape_octal(s: &str) -> String {
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

fn normalize_dest(d: &str) -> String {
    let trimmed = d.trim_end_matches('/');
    if trimmed.is_empty() {
        "/".into()
    } else {
        trimmed.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INFO: &str = "\
27 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
30 27 0:5 / /srv rw,relatime - tmpfs tmpfs rw
31 30 0:6 / /srv/with\\040space rw master:3 - tmpfs tmpfs rw
32 27 0:7 / /run rw - tmpfs tmpfs rw
33 27 0:8 / /run rw shared:9 - tmpfs tmpfs rw
";

    #[test]
    fn a_path_is_on_the_longest_mount_above_it() {
        let at = |p: &str| source_mount(INFO, Path::new(p)).unwrap();
        assert_eq!(at("/home/x"), ("/".to_string(), "shared:1".to_string()));
        assert_eq!(at("/srv/data"), ("/srv".to_string(), String::new()));
        assert_eq!(at("/srv/with space/a"), ("/srv/with space".to_string(), "master:3".to_string()));
        // a prefix by path components, not by bytes
        assert_eq!(at("/srvx").0, "/");
        // the last of two mounts on one point is the one seen
        assert_eq!(at("/run/a").1, "shared:9");
    }

    #[test]
    fn shared_propagation_needs_a_shared_source() {
        let dir = std::env::temp_dir();
        let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        let (mp, optional) = source_mount(&info, &std::fs::canonicalize(&dir).unwrap()).unwrap();
        let shared = optional.contains("shared:");
        let r = check_source_propagation(&dir, "rshared");
        assert_eq!(r.is_ok(), shared, "{r:?}");
        if let Err(e) = r {
            assert_eq!(e.to_string(), format!("path {} is mounted on {mp} but it is not a shared mount", dir.display()));
        }
        assert_eq!(check_source_propagation(&dir, "rslave").is_ok(), shared || optional.contains("master:"));
    }
}
