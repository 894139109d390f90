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
    let Some((mountpoint, fields)) = source_mount(&info, &resolved) else {
        return Err(Error::invalid(format!("Can't find mount point of {}", source.display())));
    };
    use procfs_core::process::MountOptFields::{Master, Shared};
    let shared = fields.iter().any(|f| matches!(f, Shared(_)));
    let slave = fields.iter().any(|f| matches!(f, Master(_)));
    let (ok, what) = match propagation {
        "shared" | "rshared" => (shared, "a shared mount"),
        _ => (shared || slave, "a shared or slave mount"),
    };
    if ok {
        return Ok(());
    }
    Err(Error::invalid(format!(
        "path {} is mounted on {} but it is not {what}",
        source.display(),
        mountpoint.display()
    )))
}

/// In a mountinfo table, the mount `path` is on (the longest mount point above it; of
/// two on one point, the later, which covers the other): its mount point (as mountinfo
/// writes it) and its propagation fields (`shared:N`, `master:N`, …).
fn source_mount(mountinfo: &str, path: &Path) -> Option<(std::path::PathBuf, Vec<procfs_core::process::MountOptFields>)> {
    use procfs_core::FromBufRead;
    use std::os::unix::ffi::OsStrExt;
    // procfs-core keeps mountinfo's escapes in mount points: compare in that form
    let mut escaped = Vec::new();
    for &b in path.as_os_str().as_bytes() {
        match b {
            b' ' | b'\t' | b'\n' | b'\\' => escaped.extend_from_slice(format!("\\{b:03o}").as_bytes()),
            _ => escaped.push(b),
        }
    }
    let path = Path::new(std::ffi::OsStr::from_bytes(&escaped));
    let infos = procfs_core::process::MountInfos::from_buf_read(mountinfo.as_bytes()).ok()?;
    infos
        .into_iter()
        .filter(|m| path.starts_with(&m.mount_point))
        .fold(None, |best: Option<procfs_core::process::MountInfo>, m| match best {
            Some(b) if b.mount_point.as_os_str().len() > m.mount_point.as_os_str().len() => Some(b),
            _ => Some(m),
        })
        .map(|m| (m.mount_point, m.opt_fields))
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
        let at = |p: &str| {
            let (mp, fields) = source_mount(INFO, Path::new(p)).unwrap();
            format!("{} {fields:?}", mp.display())
        };
        assert_eq!(at("/home/x"), "/ [Shared(1)]");
        assert_eq!(at("/srv/data"), "/srv []");
        assert_eq!(at("/srv/with space/a"), "/srv/with\\040space [Master(3)]");
        // a prefix by path components, not by bytes
        assert_eq!(at("/srvx"), "/ [Shared(1)]");
        assert_eq!(at("/srv/with space/é"), "/srv/with\\040space [Master(3)]");
        // the last of two mounts on one point is the one seen
        assert_eq!(at("/run/a"), "/run [Shared(9)]");
    }

    #[test]
    fn shared_propagation_needs_a_shared_source() {
        let dir = std::env::temp_dir();
        let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        use procfs_core::process::MountOptFields::{Master, Shared};
        let (mp, fields) = source_mount(&info, &std::fs::canonicalize(&dir).unwrap()).unwrap();
        let shared = fields.iter().any(|f| matches!(f, Shared(_)));
        let r = check_source_propagation(&dir, "rshared");
        assert_eq!(r.is_ok(), shared, "{r:?}");
        if let Err(e) = r {
            assert_eq!(e.to_string(), format!("path {} is mounted on {} but it is not a shared mount", dir.display(), mp.display()));
        }
        assert_eq!(check_source_propagation(&dir, "rslave").is_ok(), shared || fields.iter().any(|f| matches!(f, Master(_))));
    }
}
