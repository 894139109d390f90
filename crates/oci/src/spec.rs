//! `build_spec`: moby's `oci.DefaultSpec` + `createSpec` for Linux, for youki's libcontainer.

use std::path::{Path, PathBuf};

use berth_errdefs::{Error, Result, ResultExt};
use oci_spec::runtime::{
    Linux, LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxNamespace, LinuxNamespaceType, LinuxPids,
    LinuxResources, LinuxSeccomp, LinuxThrottleDevice, LinuxThrottleDeviceBuilder, LinuxWeightDeviceBuilder, PosixRlimit, PosixRlimitBuilder,
    PosixRlimitType, Process, Root, Spec, User,
};

use crate::mounts::{all_mounts, MountPolicy};
use crate::{caps, devices, seccomp, user, NsMode, Resources, SpecOptions};

/// PATH added when the environment has none (moby `oci.DefaultPathEnv` on Linux).
pub const DEFAULT_PATH_ENV: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Where `--init` puts the init binary in the container (as Docker does).
pub const INIT_PATH: &str = "/sbin/docker-init";

/// Docker's default /dev/shm size: 64 MiB.
pub const DEFAULT_SHM_SIZE: i64 = 64 * 1024 * 1024;

/// RLIMIT_NOFILE (soft, hard) wanted when the user sets none. Docker leaves rlimits out of the
/// spec and containers inherit containerd's, which under the dockerd 20.10 systemd units
/// (`LimitNOFILE=infinity`) is 1048576:1048576. See [`default_nofile`].
pub const DEFAULT_NOFILE: (u64, u64) = (1_048_576, 1_048_576);

/// The RLIMIT_NOFILE written when the user sets none: [`DEFAULT_NOFILE`], capped at this
/// process's hard limit, because raising a hard limit needs CAP_SYS_RESOURCE (which berth may
/// not hold) and would otherwise make every container fail to start.
pub fn default_nofile() -> (u64, u64) {
    let hard = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .map(|(_, h)| h)
        .unwrap_or(DEFAULT_NOFILE.1);
    let v = DEFAULT_NOFILE.1.min(hard);
    (DEFAULT_NOFILE.0.min(v), v)
}

/// moby's default masked paths.
pub const DEFAULT_MASKED_PATHS: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// moby's default read-only paths.
pub const DEFAULT_READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// True when /sys/fs/cgroup is a pure cgroup v2 hierarchy (not v1 or hybrid). Probed
/// once: a host does not change its cgroup layout under a running daemon, and every
/// `create` asks.
pub fn cgroup_v2_unified() -> bool {
    static UNIFIED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *UNIFIED.get_or_init(|| Path::new("/sys/fs/cgroup/cgroup.controllers").exists())
}

#[derive(Debug, Default)]
enum SeccompChoice {
    #[default]
    Default,
    Unconfined,
    Profile(String),
}

#[derive(Debug, Default)]
struct SecurityPolicy {
    seccomp: SeccompChoice,
    /// `apparmor=PROFILE`: applied where the host has AppArmor.
    apparmor: Option<String>,
    no_new_privileges: bool,
    unconfined_paths: bool,
    writable_cgroups: bool,
}

/// Does this host enforce AppArmor (the kernel module is loaded and enabled)?
pub fn apparmor_enabled() -> bool {
    std::fs::read_to_string("/sys/module/apparmor/parameters/enabled").is_ok_and(|v| v.starts_with('Y'))
}

/// Go's `strconv.ParseBool`.
fn parse_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// moby `parseSecurityOpt` (plus the `systempaths` and `writable-cgroups` options).
fn parse_security_opts(list: &[String]) -> Result<SecurityPolicy> {
    let mut p = SecurityPolicy::default();
    for opt in list {
        if opt == "no-new-privileges" {
            p.no_new_privileges = true;
            continue;
        }
        if opt == "disable" {
            continue; // SELinux label option; no SELinux support.
        }
        let kv = if opt.contains('=') {
            opt.split_once('=')
        } else {
            opt.split_once(':')
        };
        let Some((k, v)) = kv else {
            return Err(Error::invalid(format!("invalid --security-opt 1: {opt:?}")));
        };
        let bad = || Error::invalid(format!("invalid --security-opt 2: {opt:?}"));
        match k {
            // recorded in the container's HostConfig; SELinux labels need SELinux,
            // which berthd does not label for (`label=disable` is what it does)
            "label" => {}
            "apparmor" => p.apparmor = Some(v.to_owned()),
            "seccomp" => {
                p.seccomp = match v {
                    "unconfined" => SeccompChoice::Unconfined,
                    "" | "builtin" => SeccompChoice::Default,
                    other => SeccompChoice::Profile(other.to_string()),
                }
            }
            "no-new-privileges" => p.no_new_privileges = parse_bool(v).ok_or_else(bad)?,
            "systempaths" if v == "unconfined" => p.unconfined_paths = true,
            "writable-cgroups" => p.writable_cgroups = parse_bool(v).ok_or_else(bad)?,
            _ => return Err(bad()),
        }
    }
    Ok(p)
}

/// Docker's `--security-opt seccomp=...` value is the profile JSON (the CLI reads the file);
/// a path is accepted too.
fn seccomp_profile_json(v: &str) -> Result<String> {
    if v.trim_start().starts_with('{') {
        return Ok(v.to_string());
    }
    std::fs::read_to_string(v)
        .map_err(|e| Error::invalid(format!("opening seccomp profile ({v}) failed: {e}")))
}

/// The environment dockerd gives a container's or an exec's process before `HOME`:
/// moby's `CreateDaemonEnvironment` (`PATH`, `HOSTNAME`, `TERM=xterm` for a terminal)
/// with `env` over it by `ReplaceOrAppendEnvValues` (a later `KEY=VALUE` replaces the
/// key in its place, a bare `KEY` removes it).
pub fn daemon_env(hostname: &str, terminal: bool, env: &[String]) -> Vec<String> {
    let mut out: Vec<String> = vec![format!("PATH={DEFAULT_PATH_ENV}"), format!("HOSTNAME={hostname}")];
    if terminal {
        out.push("TERM=xterm".into());
    }
    for kv in env {
        let (key, has_value) = match kv.split_once('=') {
            Some((k, _)) => (k, true),
            None => (kv.as_str(), false),
        };
        let pos = out.iter().position(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) == key);
        match (pos, has_value) {
            (Some(i), true) => out[i] = kv.clone(),
            (None, true) => out.push(kv.clone()),
            (Some(i), false) => {
                out.remove(i);
            }
            (None, false) => {}
        }
    }
    out
}

/// [`daemon_env`], then `HOME` (the user's, as the runtime adds it) unless set.
fn build_env(opts: &SpecOptions, home: &str) -> Vec<String> {
    let mut env = daemon_env(&opts.hostname, opts.terminal, &opts.env);
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(format!("HOME={home}"));
    }
    env
}

fn rlimit_type(name: &str) -> Result<PosixRlimitType> {
    use PosixRlimitType::*;
    Ok(match name {
        "as" => RlimitAs,
        "core" => RlimitCore,
        "cpu" => RlimitCpu,
        "data" => RlimitData,
        "fsize" => RlimitFsize,
        "locks" => RlimitLocks,
        "memlock" => RlimitMemlock,
        "msgqueue" => RlimitMsgqueue,
        "nice" => RlimitNice,
        "nofile" => RlimitNofile,
        "nproc" => RlimitNproc,
        "rss" => RlimitRss,
        "rtprio" => RlimitRtprio,
        "rttime" => RlimitRttime,
        "sigpending" => RlimitSigpending,
        "stack" => RlimitStack,
        _ => return Err(Error::invalid(format!("invalid ulimit type: {name}"))),
    })
}

fn rlimits(ulimits: &[(String, u64, u64)]) -> Result<Vec<PosixRlimit>> {
    let mut out: Vec<PosixRlimit> = Vec::new();
    let mut push = |typ: PosixRlimitType, soft: u64, hard: u64| {
        let r = PosixRlimitBuilder::default()
            .typ(typ)
            .soft(soft)
            .hard(hard)
            .build()
            .expect("all rlimit fields set");
        match out.iter_mut().find(|x| x.typ() == typ) {
            Some(slot) => *slot = r,
            None => out.push(r),
        }
    };
    let (soft, hard) = default_nofile();
    push(PosixRlimitType::RlimitNofile, soft, hard);
    for (name, soft, hard) in ulimits {
        if soft > hard {
            return Err(Error::invalid(format!(
                "ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}"
            )));
        }
        push(rlimit_type(name)?, *soft, *hard);
    }
    Ok(out)
}

fn namespaces(opts: &SpecOptions) -> Vec<LinuxNamespace> {
    let ns = |typ: LinuxNamespaceType, path: Option<PathBuf>| {
        let mut n = LinuxNamespace::default();
        n.set_typ(typ);
        n.set_path(path);
        n
    };
    let mut out = vec![ns(LinuxNamespaceType::Mount, None)];
    for (typ, mode) in [
        (LinuxNamespaceType::Network, &opts.network),
        (LinuxNamespaceType::Uts, &opts.uts),
        (LinuxNamespaceType::Pid, &opts.pid),
        (LinuxNamespaceType::Ipc, &opts.ipc),
    ] {
        match mode {
            NsMode::Private => out.push(ns(typ, None)),
            NsMode::Path(p) => out.push(ns(typ, Some(p.clone()))),
            NsMode::Host => {}
        }
    }
    if opts.cgroupns_private {
        out.push(ns(LinuxNamespaceType::Cgroup, None));
    }
    if let Some(p) = &opts.userns {
        out.push(ns(LinuxNamespaceType::User, Some(p.clone())));
    }
    out
}

/// moby `getMemoryResources`/`getCPUResources`/`getPidsLimit`/`getBlkioWeight`.
pub fn resources(r: &Resources, privileged: bool) -> Result<LinuxResources> {
    let mut res = LinuxResources::default();
    res.set_devices(Some(if privileged {
        devices::privileged_device_rules()
    } else {
        devices::default_device_rules()
    }));

    let mut m = LinuxMemory::default();
    m.set_limit(r.memory.filter(|v| *v != 0));
    m.set_swap(r.memory_swap.filter(|v| *v != 0));
    m.set_reservation(r.memory_reservation.filter(|v| *v != 0));
    m.set_swappiness(r.memory_swappiness);
    m.set_disable_oom_killer(r.oom_kill_disable.then_some(true));
    if m != LinuxMemory::default() {
        res.set_memory(Some(m));
    }

    let nano = r.nano_cpus.filter(|v| *v != 0);
    if nano.is_some() && r.cpu_period.is_some_and(|p| p != 0) {
        return Err(Error::invalid(
            "Conflicting options: Nano CPUs and CPU Period cannot both be set",
        ));
    }
    if nano.is_some() && r.cpu_quota.is_some_and(|q| q != 0) {
        return Err(Error::invalid(
            "Conflicting options: Nano CPUs and CPU Quota cannot both be set",
        ));
    }
    let mut cpu = LinuxCpu::default();
    let mut any_cpu = false;
    if let Some(n) = nano {
        if n < 0 {
            return Err(Error::invalid(
                "Range of CPUs is from 0.01 to the number of CPUs available",
            ));
        }
        let period: u64 = 100_000; // 100ms in µs
        cpu.set_period(Some(period));
        cpu.set_quota(Some(n * period as i64 / 1_000_000_000));
        any_cpu = true;
    }
    if let Some(p) = r.cpu_period.filter(|v| *v != 0) {
        cpu.set_period(Some(p));
        any_cpu = true;
    }
    if let Some(q) = r.cpu_quota.filter(|v| *v != 0) {
        cpu.set_quota(Some(q));
        any_cpu = true;
    }
    if let Some(s) = r.cpu_shares.filter(|v| *v != 0) {
        cpu.set_shares(Some(s));
        any_cpu = true;
    }
    if let Some(c) = r.cpuset_cpus.as_ref().filter(|s| !s.is_empty()) {
        cpu.set_cpus(Some(c.clone()));
        any_cpu = true;
    }
    if let Some(m) = r.cpuset_mems.as_ref().filter(|s| !s.is_empty()) {
        cpu.set_mems(Some(m.clone()));
        any_cpu = true;
    }
    if any_cpu {
        res.set_cpu(Some(cpu));
    }

    if let Some(limit) = r.pids_limit {
        let mut p = LinuxPids::default();
        // The API allows 0 and negative values to mean "unlimited".
        p.set_limit(if limit <= 0 { -1 } else { limit });
        res.set_pids(Some(p));
    }
    let mut b = LinuxBlockIo::default();
    b.set_weight(r.blkio_weight.filter(|w| *w != 0));
    if !r.blkio_weight_device.is_empty() {
        let mut v = Vec::new();
        for (path, w) in &r.blkio_weight_device {
            let (major, minor) = block_device(path)?;
            let d = LinuxWeightDeviceBuilder::default().major(major).minor(minor).weight(*w).build();
            v.push(d.map_err(|e| Error::internal(e.to_string()))?);
        }
        b.set_weight_device(Some(v));
    }
    let throttle = |list: &[(PathBuf, u64)]| -> Result<Option<Vec<LinuxThrottleDevice>>> {
        if list.is_empty() {
            return Ok(None);
        }
        list.iter()
            .map(|(path, rate)| {
                let (major, minor) = block_device(path)?;
                LinuxThrottleDeviceBuilder::default()
                    .major(major)
                    .minor(minor)
                    .rate(*rate)
                    .build()
                    .map_err(|e| Error::internal(e.to_string()))
            })
            .collect::<Result<Vec<_>>>()
            .map(Some)
    };
    b.set_throttle_read_bps_device(throttle(&r.device_read_bps)?);
    b.set_throttle_write_bps_device(throttle(&r.device_write_bps)?);
    b.set_throttle_read_iops_device(throttle(&r.device_read_iops)?);
    b.set_throttle_write_iops_device(throttle(&r.device_write_iops)?);
    if b != LinuxBlockIo::default() {
        res.set_block_io(Some(b));
    }
    Ok(res)
}

/// (major, minor) of a block device path, for blkio settings (moby
/// `getBlkioWeightDevices`/`getBlkioThrottleDevices`).
fn block_device(path: &Path) -> Result<(i64, i64)> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let md = std::fs::metadata(path).map_err(|e| Error::invalid(format!("{}: {e}", path.display())))?;
    if !md.file_type().is_block_device() {
        return Err(Error::invalid(format!("{} is not a block device", path.display())));
    }
    Ok((nix::sys::stat::major(md.rdev()) as i64, nix::sys::stat::minor(md.rdev()) as i64))
}

fn choose_seccomp(
    policy: &SecurityPolicy,
    privileged: bool,
    caps: &[String],
) -> Result<Option<LinuxSeccomp>> {
    if privileged {
        return Ok(None);
    }
    match &policy.seccomp {
        SeccompChoice::Unconfined => Ok(None),
        SeccompChoice::Default => Ok(Some(seccomp::default_seccomp_for_caps(caps))),
        SeccompChoice::Profile(v) => {
            let json = seccomp_profile_json(v)?;
            seccomp::load_seccomp_profile_for_caps(&json, caps).map(Some)
        }
    }
}

/// The container's argv: its command, behind the init with `--init`.
fn process_args(opts: &SpecOptions) -> Vec<String> {
    match &opts.init {
        Some(_) => [INIT_PATH.to_string(), "--".to_string()].into_iter().chain(opts.args.iter().cloned()).collect(),
        None => opts.args.clone(),
    }
}

/// The argv and environment of the process [`build_spec`] would give the container,
/// without building the rest of the spec: what a warm sandbox, made from a spec of
/// the same shape, is told to run.
pub fn process_of(opts: &SpecOptions) -> Result<(Vec<String>, Vec<String>)> {
    if opts.args.is_empty() {
        return Err(Error::invalid("no command specified"));
    }
    let usr = user::resolve_user(&opts.rootfs, &opts.user, &opts.group_add)?;
    Ok((process_args(opts), build_env(opts, &usr.home)))
}

/// Build the container's OCI runtime spec with Docker's defaults.
pub fn build_spec(opts: &SpecOptions) -> Result<Spec> {
    if opts.args.is_empty() {
        return Err(Error::invalid("no command specified"));
    }
    if !opts.rootfs.is_absolute() {
        return Err(Error::invalid(format!(
            "rootfs must be an absolute path: {}",
            opts.rootfs.display()
        )));
    }
    let cwd = if opts.cwd.is_empty() {
        "/"
    } else {
        opts.cwd.as_str()
    };
    if !cwd.starts_with('/') {
        return Err(Error::invalid(format!(
            "the working directory '{cwd}' is invalid, it needs to be an absolute path"
        )));
    }
    let policy = parse_security_opts(&opts.security_opt)?;
    let cap_list = caps::effective_capabilities(&opts.cap_add, &opts.cap_drop, opts.privileged)?;
    let usr = user::resolve_user(&opts.rootfs, &opts.user, &opts.group_add)?;

    // process
    let mut process = Process::default();
    process.set_terminal(Some(opts.terminal));
    process.set_console_size(None);
    let mut u = User::default();
    u.set_uid(usr.uid);
    u.set_gid(usr.gid);
    u.set_additional_gids(Some(usr.additional_gids.clone()));
    process.set_user(u);
    process.set_args(Some(process_args(opts)));
    process.set_env(Some(build_env(opts, &usr.home)));
    process.set_cwd(PathBuf::from(cwd));
    process.set_capabilities(Some(caps::linux_capabilities(&cap_list)?));
    process.set_rlimits(Some(rlimits(&opts.ulimits)?));
    // libcontainer 0.7 loads seccomp before dropping capabilities only when this is absent
    // (it tests `is_none()`), so "false" must be written as no field at all.
    process.set_no_new_privileges(policy.no_new_privileges.then_some(true));
    process.set_apparmor_profile(
        policy.apparmor.clone().filter(|p| p != "unconfined" && !p.is_empty() && !opts.privileged && apparmor_enabled()),
    );
    process.set_oom_score_adj(opts.oom_score_adj);
    process.set_selinux_label(None);

    let mut root = Root::default();
    root.set_path(opts.rootfs.clone());
    root.set_readonly(Some(opts.readonly_rootfs));

    // mounts
    let shm_size = match opts.shm_size {
        None | Some(0) => DEFAULT_SHM_SIZE,
        Some(s) if s < 0 => return Err(Error::invalid("SHM size can not be less than 0")),
        Some(s) => s,
    };
    let mount_policy = MountPolicy {
        privileged: opts.privileged,
        writable_cgroups: policy.writable_cgroups,
    };
    let (mounts, propagation) = all_mounts(opts, shm_size, mount_policy).ctx("invalid mount")?;

    // linux
    let mut linux = Linux::default();
    // a joined user namespace has its maps already
    linux.set_uid_mappings(None);
    linux.set_gid_mappings(None);
    linux.set_namespaces(Some(namespaces(opts)));
    linux.set_cgroups_path(
        (!opts.cgroups_path.is_empty()).then(|| PathBuf::from(&opts.cgroups_path)),
    );
    linux.set_resources(Some(resources(&opts.resources, opts.privileged)?));
    let mut devs = if opts.privileged { devices::host_devices() } else { Vec::new() };
    let mut dev_rules = Vec::new();
    for m in &opts.devices {
        if opts.privileged && m.host.display().to_string() == m.container {
            continue; // already there with every host device
        }
        let (d, r) = devices::devices_from_path(m)?;
        devs.extend(d);
        dev_rules.extend(r);
    }
    if !opts.privileged {
        for r in &opts.device_cgroup_rules {
            dev_rules.push(devices::parse_cgroup_rule(r)?);
        }
        if let Some(res) = linux.resources_mut().as_mut() {
            let mut all = res.devices().clone().unwrap_or_default();
            all.extend(dev_rules);
            res.set_devices(Some(all));
        }
    }
    linux.set_devices(Some(devs));
    linux.set_seccomp(choose_seccomp(&policy, opts.privileged, &cap_list)?);
    linux.set_rootfs_propagation(propagation);
    let confined_paths = !opts.privileged && !policy.unconfined_paths;
    let defaults = |d: &[&str]| d.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    linux.set_masked_paths(
        confined_paths.then(|| opts.masked_paths.clone().unwrap_or_else(|| defaults(DEFAULT_MASKED_PATHS))),
    );
    linux.set_readonly_paths(
        confined_paths.then(|| opts.readonly_paths.clone().unwrap_or_else(|| defaults(DEFAULT_READONLY_PATHS))),
    );
    linux.set_sysctl((!opts.sysctls.is_empty()).then(|| opts.sysctls.clone()));
    linux.set_mount_label(None);
    linux.set_intel_rdt(None);

    let mut spec = Spec::default();
    spec.set_version("1.0.2-dev".to_string());
    spec.set_process(Some(process));
    spec.set_root(Some(root));
    let private_uts = matches!(opts.uts, NsMode::Private);
    spec.set_hostname((private_uts && !opts.hostname.is_empty()).then(|| opts.hostname.clone()));
    spec.set_domainname(
        (private_uts && !opts.domainname.is_empty()).then(|| opts.domainname.clone()),
    );
    spec.set_mounts(Some(mounts));
    spec.set_annotations(None);
    spec.set_hooks(hooks(&opts.hooks)?);
    spec.set_linux(Some(linux));
    Ok(spec)
}

/// The OCI hooks of `list`, by stage.
fn hooks(list: &[crate::HookSpec]) -> Result<Option<oci_spec::runtime::Hooks>> {
    if list.is_empty() {
        return Ok(None);
    }
    let mut by_stage: std::collections::BTreeMap<&str, Vec<oci_spec::runtime::Hook>> = Default::default();
    for h in list {
        let mut hook = oci_spec::runtime::Hook::default();
        hook.set_path(h.path.clone());
        // OCI (and CDI): args[0] is the program's name; none given, its path
        hook.set_args(Some(if h.args.is_empty() { vec![h.path.display().to_string()] } else { h.args.clone() }));
        hook.set_env((!h.env.is_empty()).then(|| h.env.clone()));
        hook.set_timeout(h.timeout);
        by_stage.entry(h.stage.as_str()).or_default().push(hook);
    }
    let mut hooks = oci_spec::runtime::Hooks::default();
    for (stage, list) in by_stage {
        match stage {
            "prestart" => hooks.set_prestart(Some(list)),
            "createRuntime" => hooks.set_create_runtime(Some(list)),
            "createContainer" => hooks.set_create_container(Some(list)),
            "startContainer" => hooks.set_start_container(Some(list)),
            "poststart" => hooks.set_poststart(Some(list)),
            "poststop" => hooks.set_poststop(Some(list)),
            other => return Err(Error::invalid(format!("unknown OCI hook stage {other:?}"))),
        };
    }
    Ok(Some(hooks))
}

#[cfg(test)]
mod tests;
