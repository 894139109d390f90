//! OCI runtime spec with Docker's defaults: capabilities, masked paths, seccomp.
//!
//! [`build_spec`] turns a container's settings ([`SpecOptions`]) into an
//! `oci_spec::runtime::Spec` that matches what moby's `oci.DefaultSpec` + `createSpec` produce
//! on Linux, in the form youki's libcontainer 0.7 accepts.

mod caps;
mod cgroup_pool;
mod cgroups;
mod devices;
mod mounts;
mod seccomp;
mod spec;
mod user;

use std::collections::HashMap;
use std::path::PathBuf;

pub use cgroup_pool::{CgroupPool, POOL_PREFIX};
pub use cgroups::{clone_cpusets, favor_dynmods, Favor};
pub use caps::{all_capabilities, check_capabilities, default_capabilities, effective_capabilities};
pub use seccomp::{
    default_seccomp, default_seccomp_for_caps, load_seccomp_profile, load_seccomp_profile_for_caps,
    native_go_arch,
};
pub use devices::parse_cgroup_rule;
pub use mounts::check_bind_propagation;
pub use spec::{
    apparmor_enabled, build_spec, cgroup_v2_unified, daemon_env, default_nofile, process_of, resources as linux_resources, DEFAULT_MASKED_PATHS, DEFAULT_NOFILE, DEFAULT_PATH_ENV,
    DEFAULT_READONLY_PATHS, DEFAULT_SHM_SIZE, INIT_PATH,
};
pub use user::{resolve_user, ResolvedUser};

/// Namespace choice for network/pid/ipc/uts.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum NsMode {
    /// A new namespace for the container.
    #[default]
    Private,
    /// The host's namespace (no namespace entry in the spec).
    Host,
    /// Join an existing namespace, e.g. `/proc/<pid>/ns/net` (`--network container:x`).
    Path(PathBuf),
}

/// Host files bind-mounted to /etc/hosts, /etc/hostname and /etc/resolv.conf.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcFiles {
    pub hosts: PathBuf,
    pub hostname: PathBuf,
    pub resolv_conf: PathBuf,
}

/// Cgroup resource limits (Docker `HostConfig` resources).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resources {
    pub memory: Option<i64>,
    pub memory_swap: Option<i64>,
    pub memory_reservation: Option<i64>,
    pub nano_cpus: Option<i64>,
    pub cpu_shares: Option<u64>,
    pub cpu_period: Option<u64>,
    pub cpu_quota: Option<i64>,
    pub cpuset_cpus: Option<String>,
    pub cpuset_mems: Option<String>,
    pub pids_limit: Option<i64>,
    pub blkio_weight: Option<u16>,
    /// 0–100; `None` keeps the kernel's.
    pub memory_swappiness: Option<u64>,
    pub oom_kill_disable: bool,
    /// `--blkio-weight-device PATH:WEIGHT`.
    pub blkio_weight_device: Vec<(PathBuf, u16)>,
    /// `--device-read-bps`, `--device-write-bps`, `--device-read-iops`,
    /// `--device-write-iops`: (device path, rate).
    pub device_read_bps: Vec<(PathBuf, u64)>,
    pub device_write_bps: Vec<(PathBuf, u64)>,
    pub device_read_iops: Vec<(PathBuf, u64)>,
    pub device_write_iops: Vec<(PathBuf, u64)>,
}

/// `--device HOST[:CONTAINER[:PERMISSIONS]]`: a device node (or every device under a
/// directory) made in the container and allowed by the device cgroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceMapping {
    pub host: PathBuf,
    pub container: String,
    /// Some of `rwm`.
    pub permissions: String,
}

/// Kind of a user mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MountKind {
    Bind,
    Tmpfs,
}

/// A user mount (bind or tmpfs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountSpec {
    pub kind: MountKind,
    pub source: PathBuf,
    pub destination: String,
    pub readonly: bool,
    /// Extra options, e.g. tmpfs `size=...`/`mode=...`, bind propagation `rshared`.
    pub options: Vec<String>,
}

/// Everything needed to build a container's OCI spec.
#[derive(Debug, Clone, Default)]
pub struct SpecOptions {
    /// The mounted overlay (merged) dir; absolute.
    pub rootfs: PathBuf,
    pub readonly_rootfs: bool,
    /// Final argv (entrypoint + cmd already combined).
    pub args: Vec<String>,
    /// Image env merged with user env ("K=V").
    pub env: Vec<String>,
    /// Working directory; "" means "/".
    pub cwd: String,
    /// Docker `-u` syntax.
    pub user: String,
    pub group_add: Vec<String>,
    pub hostname: String,
    pub domainname: String,
    pub terminal: bool,
    pub network: NsMode,
    pub pid: NsMode,
    pub ipc: NsMode,
    /// `--ipc none`: a private IPC namespace without /dev/shm.
    pub ipc_none: bool,
    /// A host tmpfs bound at /dev/shm: `--ipc shareable` (the container's own) and
    /// `--ipc container:<x>` (x's), as Docker shares /dev/shm.
    pub shm_source: Option<PathBuf>,
    pub uts: NsMode,
    /// A cgroup namespace of its own (`--cgroupns private`; dockerd's default on
    /// cgroup v2, `host` on v1).
    pub cgroupns_private: bool,
    pub etc_files: Option<EtcFiles>,
    pub mounts: Vec<MountSpec>,
    /// e.g. "/berth/<container id>" (cgroupfs driver).
    pub cgroups_path: String,
    pub resources: Resources,
    pub privileged: bool,
    /// Docker syntax: "NET_ADMIN", "CAP_NET_ADMIN", "ALL".
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    /// "seccomp=unconfined", "seccomp=<profile JSON or path>", "no-new-privileges[:=]bool",
    /// "apparmor=...", "label=...", "systempaths=unconfined".
    pub security_opt: Vec<String>,
    /// /dev/shm size in bytes; default 64 MiB like Docker.
    pub shm_size: Option<i64>,
    pub sysctls: HashMap<String, String>,
    /// (name like "nofile", soft, hard).
    pub ulimits: Vec<(String, u64, u64)>,
    pub oom_score_adj: Option<i32>,
    pub devices: Vec<DeviceMapping>,
    /// `--device-cgroup-rule 'c 1:3 rwm'`.
    pub device_cgroup_rules: Vec<String>,
    /// `HostConfig.MaskedPaths` / `ReadonlyPaths`: `None` takes Docker's defaults.
    pub masked_paths: Option<Vec<String>>,
    pub readonly_paths: Option<Vec<String>>,
    /// `--init`: this static init binary is bind-mounted at `/sbin/docker-init` and
    /// runs the process (`docker-init -- ARGS`), reaping zombies and forwarding signals.
    pub init: Option<PathBuf>,
    /// OCI hooks (CDI devices bring them).
    pub hooks: Vec<HookSpec>,
    /// `--userns-remap`: the user namespace (pinned at this path) the container joins.
    pub userns: Option<PathBuf>,
}

/// One OCI hook: the stage (`createRuntime`, `createContainer`, `startContainer`,
/// `poststart`, `poststop`, `prestart`) and the program run on the host.
#[derive(Debug, Clone, Default)]
pub struct HookSpec {
    pub stage: String,
    pub path: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub timeout: Option<i64>,
}
