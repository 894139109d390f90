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

fn normalize_dest(d: &str) -> String {
    let trimmed = d.trim_end_matches('/');
    if trimmed.is_empty() {
        "/".into()
    } else {
        trimmed.into()
    }
}
