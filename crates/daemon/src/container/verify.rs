//! Checking a container's settings before it exists, as dockerd does at create (and
//! at `update`): resource limits against what the host's cgroups provide (moby
//! `verifyPlatformContainerResources`, with its warnings and messages), and every
//! other `HostConfig` field either honoured or refused — never silently ignored.

use std::path::Path;
use std::sync::OnceLock;

use berth_api::models::{ContainerConfig, HostConfig, RestartPolicyNameEnum};
use berth_errdefs::{Error, Result};

/// What the host's cgroups can limit (moby `sysinfo.SysInfo`), probed once.
#[derive(Debug, Clone, Default)]
pub struct SysInfo {
    pub cgroup_v2: bool,
    pub memory_limit: bool,
    pub swap_limit: bool,
    pub memory_reservation: bool,
    pub memory_swappiness: bool,
    pub oom_kill_disable: bool,
    pub pids_limit: bool,
    pub cpu_shares: bool,
    pub cpu_cfs: bool,
    pub cpu_realtime: bool,
    pub cpuset: bool,
    pub cpus: String,
    pub mems: String,
    pub blkio_weight: bool,
    pub blkio_weight_device: bool,
    pub blkio_read_bps: bool,
    pub blkio_write_bps: bool,
    pub blkio_read_iops: bool,
    pub blkio_write_iops: bool,
    pub ncpu: usize,
}

fn read_trim(p: impl AsRef<Path>) -> String {
    std::fs::read_to_string(p).map(|s| s.trim().to_owned()).unwrap_or_default()
}

impl SysInfo {
    /// Probe the cgroup mounts under `root` (normally `/sys/fs/cgroup`).
    pub fn probe(root: &Path) -> SysInfo {
        let ncpu = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        let controllers = root.join("cgroup.controllers");
        if controllers.exists() {
            let have = read_trim(&controllers);
            let has = |c: &str| have.split_whitespace().any(|x| x == c);
            let mem = has("memory");
            let io = has("io");
            return SysInfo {
                cgroup_v2: true,
                memory_limit: mem,
                swap_limit: mem,
                memory_reservation: mem,
                memory_swappiness: false,
                oom_kill_disable: false,
                pids_limit: has("pids"),
                cpu_shares: has("cpu"),
                cpu_cfs: has("cpu"),
                cpu_realtime: false,
                cpuset: has("cpuset"),
                cpus: read_trim(root.join("cpuset.cpus.effective")),
                mems: read_trim(root.join("cpuset.mems.effective")),
                blkio_weight: io,
                blkio_weight_device: io,
                blkio_read_bps: io,
                blkio_write_bps: io,
                blkio_read_iops: io,
                blkio_write_iops: io,
                ncpu,
            };
        }
        let f = |ctrl: &str, file: &str| root.join(ctrl).join(file).exists();
        SysInfo {
            cgroup_v2: false,
            memory_limit: f("memory", "memory.limit_in_bytes"),
            swap_limit: f("memory", "memory.memsw.limit_in_bytes"),
            memory_reservation: f("memory", "memory.soft_limit_in_bytes"),
            memory_swappiness: f("memory", "memory.swappiness"),
            oom_kill_disable: f("memory", "memory.oom_control"),
            pids_limit: root.join("pids").is_dir(),
            cpu_shares: f("cpu", "cpu.shares"),
            cpu_cfs: f("cpu", "cpu.cfs_quota_us"),
            cpu_realtime: f("cpu", "cpu.rt_runtime_us"),
            cpuset: f("cpuset", "cpuset.cpus"),
            cpus: read_trim(root.join("cpuset").join("cpuset.cpus")),
            mems: read_trim(root.join("cpuset").join("cpuset.mems")),
            blkio_weight: f("blkio", "blkio.weight"),
            blkio_weight_device: f("blkio", "blkio.weight_device"),
            blkio_read_bps: f("blkio", "blkio.throttle.read_bps_device"),
            blkio_write_bps: f("blkio", "blkio.throttle.write_bps_device"),
            blkio_read_iops: f("blkio", "blkio.throttle.read_iops_device"),
            blkio_write_iops: f("blkio", "blkio.throttle.write_iops_device"),
            ncpu,
        }
    }
}

/// The host's [`SysInfo`].
pub fn sysinfo() -> &'static SysInfo {
    static S: OnceLock<SysInfo> = OnceLock::new();
    S.get_or_init(|| SysInfo::probe(Path::new("/sys/fs/cgroup")))
}

const MIN_MEMORY: i64 = 6 * 1024 * 1024;

/// A cpuset list (`0-3,5`) as the set of numbers it names.
fn parse_cpuset(s: &str) -> Option<Vec<u32>> {
    let mut out = Vec::new();
    for part in s.split(',').filter(|p| !p.is_empty()) {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        let (a, b): (u32, u32) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
        if a > b {
            return None;
        }
        out.extend(a..=b);
    }
    Some(out)
}

fn cpuset_available(requested: &str, available: &str, what: &str) -> Result<()> {
    if requested.is_empty() {
        return Ok(());
    }
    let Some(req) = parse_cpuset(requested) else {
        return Err(Error::invalid(format!("Invalid value {requested} for cpuset {what}: invalid format: {requested}")));
    };
    let avail = parse_cpuset(available).unwrap_or_default();
    if !avail.is_empty() && req.iter().any(|c| !avail.contains(c)) {
        let label = if what == "cpus" { "CPUs" } else { "memory nodes" };
        return Err(Error::invalid(format!(
            "Requested {label} are not available - requested {requested}, available: {available}"
        )));
    }
    Ok(())
}

/// moby `verifyPlatformContainerResources`: errors for impossible values, warnings
/// (and the setting dropped) for what this host's cgroups cannot do.
pub fn verify_resources(hc: &mut HostConfig, si: &SysInfo, update: bool) -> Result<Vec<String>> {
    let mut w = Vec::new();
    let memory = hc.memory.unwrap_or(0);
    if memory != 0 && memory < MIN_MEMORY {
        return Err(Error::invalid("Minimum memory limit allowed is 6MB"));
    }
    if memory > 0 && !si.memory_limit {
        w.push("Your kernel does not support memory limit capabilities or the cgroup is not mounted. Limitation discarded.".into());
        hc.memory = Some(0);
        hc.memory_swap = Some(-1);
    }
    let memory = hc.memory.unwrap_or(0);
    let swap = hc.memory_swap.unwrap_or(0);
    if memory > 0 && swap != -1 && swap != 0 && !si.swap_limit {
        w.push("Your kernel does not support swap limit capabilities or the cgroup is not mounted. Memory limited without swap.".into());
        hc.memory_swap = Some(-1);
    }
    let swap = hc.memory_swap.unwrap_or(0);
    if memory > 0 && swap > 0 && swap < memory {
        return Err(Error::invalid("Minimum memoryswap limit should be larger than memory limit, see usage"));
    }
    if memory == 0 && swap > 0 && !update {
        return Err(Error::invalid("You should always set the Memory limit when using Memoryswap limit, see usage"));
    }
    // -1 (the CLI's default) means "not set".
    if hc.memory_swappiness == Some(-1) {
        hc.memory_swappiness = None;
    }
    if let Some(sw) = hc.memory_swappiness {
        if !si.memory_swappiness {
            w.push("Your kernel does not support memory swappiness capabilities or the cgroup is not mounted. Memory swappiness discarded.".into());
            hc.memory_swappiness = None;
        } else if !(0..=100).contains(&sw) {
            return Err(Error::invalid(format!("Invalid value: {sw}, valid memory swappiness range is 0-100")));
        }
    }
    let reservation = hc.memory_reservation.unwrap_or(0);
    if reservation > 0 && !si.memory_reservation {
        w.push("Your kernel does not support memory soft limit capabilities or the cgroup is not mounted. Limitation discarded.".into());
        hc.memory_reservation = Some(0);
    }
    let reservation = hc.memory_reservation.unwrap_or(0);
    if reservation > 0 && reservation < MIN_MEMORY {
        return Err(Error::invalid("Minimum memory reservation allowed is 6MB"));
    }
    if memory > 0 && reservation > 0 && memory < reservation {
        return Err(Error::invalid("Minimum memory limit can not be less than memory reservation limit, see usage"));
    }
    if hc.oom_kill_disable.is_some() && !si.oom_kill_disable {
        if hc.oom_kill_disable == Some(true) {
            w.push("Your kernel does not support OomKillDisable. OomKillDisable discarded.".into());
        }
        hc.oom_kill_disable = None;
    }
    if hc.oom_kill_disable == Some(true) && hc.memory.unwrap_or(0) == 0 {
        w.push("OOM killer is disabled for the container, but no memory limit is set, this can result in the system running out of resources.".into());
    }
    if hc.pids_limit.is_some() && !si.pids_limit {
        if hc.pids_limit.unwrap_or(0) > 0 {
            w.push("Your kernel does not support PIDs limit capabilities or the cgroup is not mounted. PIDs limit discarded.".into());
        }
        hc.pids_limit = None;
    }

    let nano = hc.nano_cpus.unwrap_or(0);
    if nano > 0 && hc.cpu_period.unwrap_or(0) > 0 {
        return Err(Error::invalid("Conflicting options: Nano CPUs and CPU Period cannot both be set"));
    }
    if nano > 0 && hc.cpu_quota.unwrap_or(0) > 0 {
        return Err(Error::invalid("Conflicting options: Nano CPUs and CPU Quota cannot both be set"));
    }
    if nano > 0 && !si.cpu_cfs {
        return Err(Error::invalid(
            "NanoCPUs can not be set, as your kernel does not support CPU CFS scheduler or the cgroup is not mounted",
        ));
    }
    if nano < 0 || nano > si.ncpu as i64 * 1_000_000_000 {
        return Err(Error::invalid(format!(
            "Range of CPUs is from 0.01 to {n}.00, as there are only {n} CPUs available",
            n = si.ncpu
        )));
    }
    if hc.cpu_shares.unwrap_or(0) > 0 && !si.cpu_shares {
        w.push("Your kernel does not support CPU shares or the cgroup is not mounted. Shares discarded.".into());
        hc.cpu_shares = Some(0);
    }
    if (hc.cpu_period.unwrap_or(0) != 0 || hc.cpu_quota.unwrap_or(0) != 0) && !si.cpu_cfs {
        w.push("Your kernel does not support CPU CFS scheduler. CPU period/quota discarded.".into());
        hc.cpu_period = Some(0);
        hc.cpu_quota = Some(0);
    }
    let period = hc.cpu_period.unwrap_or(0);
    if period != 0 && !(1000..=1_000_000).contains(&period) {
        return Err(Error::invalid("CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)"));
    }
    let quota = hc.cpu_quota.unwrap_or(0);
    if quota > 0 && quota < 1000 {
        return Err(Error::invalid("CPU cfs quota can not be less than 1ms (i.e. 1000)"));
    }
    if hc.cpu_percent.unwrap_or(0) > 0 {
        w.push("linux does not support CPU percent. Percent discarded.".into());
        hc.cpu_percent = Some(0);
    }
    // dockerd 20.10 keeps a CPU count (inspect shows it) and applies nothing, without
    // a word; berthd keeps it the same and says so.
    if hc.cpu_count.unwrap_or(0) > 0 {
        w.push("linux does not support CPU count. Count kept but not applied.".into());
    }
    let rt = hc.cpu_realtime_period.unwrap_or(0) > 0 || hc.cpu_realtime_runtime.unwrap_or(0) > 0;
    if rt && !si.cpu_realtime {
        return Err(Error::invalid("Your kernel does not support CPU real-time scheduler"));
    }
    if rt {
        return Err(Error::invalid(
            "berthd does not set a real-time CPU budget for containers (dockerd needs --cpu-rt-runtime for this too)",
        ));
    }
    let cpus = hc.cpuset_cpus.clone().unwrap_or_default();
    let mems = hc.cpuset_mems.clone().unwrap_or_default();
    if (!cpus.is_empty() || !mems.is_empty()) && !si.cpuset {
        w.push("Your kernel does not support cpuset or the cgroup is not mounted. Cpuset discarded.".into());
        hc.cpuset_cpus = Some(String::new());
        hc.cpuset_mems = Some(String::new());
    } else {
        cpuset_available(&cpus, &si.cpus, "cpus")?;
        cpuset_available(&mems, &si.mems, "mems")?;
    }

    if hc.blkio_weight.unwrap_or(0) > 0 && !si.blkio_weight {
        w.push("Your kernel does not support Block I/O weight or the cgroup is not mounted. Weight discarded.".into());
        hc.blkio_weight = Some(0);
    }
    let bw = hc.blkio_weight.unwrap_or(0);
    if bw > 0 && !(10..=1000).contains(&bw) {
        return Err(Error::invalid("Range of blkio weight is from 10 to 1000"));
    }
    if hc.io_maximum_bandwidth.unwrap_or(0) != 0 || hc.io_maximum_iops.unwrap_or(0) != 0 {
        return Err(Error::invalid(
            "Invalid QoS settings: linux does not support Maximum IO Bandwidth or Maximum IO IOps",
        ));
    }
    macro_rules! drop_list {
        ($field:ident, $ok:expr, $msg:expr) => {
            if hc.$field.as_ref().is_some_and(|v| !v.is_empty()) && !$ok {
                w.push($msg.into());
                hc.$field = Some(Vec::new());
            }
        };
    }
    drop_list!(
        blkio_weight_device,
        si.blkio_weight_device,
        "Your kernel does not support Block I/O weight_device or the cgroup is not mounted. Weight-device discarded."
    );
    drop_list!(
        blkio_device_read_bps,
        si.blkio_read_bps,
        "Your kernel does not support BPS Block I/O read limit or the cgroup is not mounted. Block I/O BPS read limit discarded."
    );
    drop_list!(
        blkio_device_write_bps,
        si.blkio_write_bps,
        "Your kernel does not support BPS Block I/O write limit or the cgroup is not mounted. Block I/O BPS write limit discarded."
    );
    drop_list!(
        blkio_device_read_iops,
        si.blkio_read_iops,
        "Your kernel does not support IOPS Block read limit or the cgroup is not mounted. Block I/O IOPS read limit discarded."
    );
    drop_list!(
        blkio_device_write_iops,
        si.blkio_write_iops,
        "Your kernel does not support IOPS Block write limit or the cgroup is not mounted. Block I/O IOPS write limit discarded."
    );
    Ok(w)
}

/// `KernelMemory`/`KernelMemoryTCP` (gone from the API types after 1.41, so read from
/// the raw body): deprecated since kernel 5.4 and absent on cgroup v2, accepted and
/// dropped with dockerd's warnings.
pub fn kernel_memory_warnings(raw_host_config: &serde_json::Value) -> Vec<String> {
    let mut w = Vec::new();
    if raw_host_config["KernelMemory"].as_i64().unwrap_or(0) > 0 {
        w.push("Specifying a kernel memory limit is deprecated and will be removed in a future release.".into());
        w.push("Your kernel does not support kernel memory limit capabilities or the cgroup is not mounted. Limitation discarded.".into());
    }
    if raw_host_config["KernelMemoryTCP"].as_i64().unwrap_or(0) > 0 {
        w.push("Your kernel does not support kernel memory TCP limit capabilities or the cgroup is not mounted. Limitation discarded.".into());
    }
    w
}

/// Log drivers berthd implements. Every one stores nothing (`none`) or Docker's
/// json-file format (`local` is read back the same way through the API).
pub const LOG_DRIVERS: [&str; 3] = ["json-file", "local", "none"];
/// dockerd's other drivers: known names, refused with a clear reason.
const OTHER_LOG_DRIVERS: [&str; 9] =
    ["syslog", "journald", "gelf", "fluentd", "awslogs", "splunk", "etwlogs", "gcplogs", "logentries"];
/// The options each driver takes (dockerd's `ValidateLogOpt`s): rotation for both,
/// and for json-file the attributes written with every line ([`LOG_ATTR_OPTS`]).
fn log_opts_of(driver: &str) -> &'static [&'static str] {
    match driver {
        "json-file" => &["max-size", "max-file", "compress", "labels", "labels-regex", "env", "env-regex", "tag"],
        "local" => &["max-size", "max-file", "compress"],
        _ => &[],
    }
}

/// json-file's options that add attributes to every entry (`attrs`, shown by
/// `docker logs --details`): the container's labels and environment variables named
/// or matched, and a tag made from a template.
pub const LOG_ATTR_OPTS: [&str; 5] = ["labels", "labels-regex", "env", "env-regex", "tag"];

/// The fields a log tag template may name (dockerd's `logger.Info` methods).
const TAG_FIELDS: [&str; 9] =
    ["ID", "FullID", "Name", "ImageID", "ImageFullID", "ImageName", "Command", "Hostname", "DaemonName"];

/// What a container's log tag and attributes are made from.
pub struct LogInfo<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub image_id: &'a str,
    pub image_name: &'a str,
    pub command: String,
    pub labels: &'a std::collections::HashMap<String, String>,
    pub env: &'a [String],
}

/// Expand a log tag template: the `{{.Field}}` of [`TAG_FIELDS`] and literal text.
/// Anything else of Go's template language is refused by name, at create.
pub fn log_tag(template: &str, info: Option<&LogInfo<'_>>) -> std::result::Result<String, String> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(open) = rest.find("{{") {
        out.push_str(&rest[..open]);
        let after = &rest[open + 2..];
        let close = after.find("}}").ok_or_else(|| format!("template: log-tag: unclosed action in {template:?}"))?;
        let field = after[..close].trim();
        let name = field.strip_prefix('.').filter(|f| TAG_FIELDS.contains(f)).ok_or_else(|| {
            format!(
                "log tag {template:?}: berthd's tag templates take the fields {} ({field:?} is not one)",
                TAG_FIELDS.map(|f| format!("{{{{.{f}}}}}")).join(", ")
            )
        })?;
        if let Some(i) = info {
            let short = |id: &str| {
                let bare = id.split_once(':').map_or(id, |(_, h)| h);
                bare[..bare.len().min(12)].to_owned()
            };
            out.push_str(&match name {
                "ID" => short(i.id),
                "FullID" => i.id.to_owned(),
                "Name" => i.name.trim_start_matches('/').to_owned(),
                "ImageID" => short(i.image_id),
                "ImageFullID" => i.image_id.to_owned(),
                "ImageName" => i.image_name.to_owned(),
                "Command" => i.command.clone(),
                "Hostname" => nix::unistd::gethostname().map(|h| h.to_string_lossy().into_owned()).unwrap_or_default(),
                _ => "docker".to_owned(),
            });
        }
        rest = &after[close + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The attributes json-file writes with every entry (dockerd's `ExtraAttributes`, then
/// `tag` when one is asked for); empty when the options ask for none.
pub fn log_attrs(
    opts: &std::collections::HashMap<String, String>,
    info: &LogInfo<'_>,
) -> std::result::Result<std::collections::BTreeMap<String, String>, String> {
    let mut extra = std::collections::BTreeMap::new();
    let nonempty = |k: &str| opts.get(k).filter(|v| !v.is_empty());
    // `labels`/`labels-regex` over the labels, then `env`/`env-regex` over the
    // environment (a variable wins over a label of its name, as in dockerd).
    let labels: std::collections::HashMap<&str, &str> = info.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let env: std::collections::HashMap<&str, &str> = info.env.iter().filter_map(|e| e.split_once('=')).collect();
    for (key, vars) in [("labels", &labels), ("env", &env)] {
        if let Some(names) = nonempty(key) {
            for n in names.split(',') {
                if let Some(v) = vars.get(n) {
                    extra.insert(n.to_owned(), (*v).to_owned());
                }
            }
        }
        let regex_key = format!("{key}-regex");
        if let Some(re) = nonempty(&regex_key) {
            let re = regex::Regex::new(re).map_err(|e| format!("{regex_key}: {e}"))?;
            for (k, v) in vars {
                if re.is_match(k) {
                    extra.insert((*k).to_owned(), (*v).to_owned());
                }
            }
        }
    }
    if let Some(t) = nonempty("tag") {
        let tag = log_tag(t, Some(info))?;
        if !tag.is_empty() {
            extra.insert("tag".into(), tag);
        }
    }
    Ok(extra)
}


/// How a container's log file is rotated: what the shim is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogRotation {
    /// Bytes a file may hold before a new one is started (`None`: no limit).
    pub max_size: Option<u64>,
    /// Files kept, the current one included.
    pub max_file: u32,
    pub compress: bool,
}

/// Go's `strconv.ParseBool`.
fn go_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// The rotation a `json-file` or `local` driver's options ask for, read as dockerd's
/// drivers read them, with their errors' words. Sizes are go-units' `FromHumanSize`
/// (powers of 1000). `local` rotates by default (20 MiB, 5 files, compressed);
/// `json-file` only when told.
pub fn log_rotation(driver: &str, opts: &std::collections::HashMap<String, String>) -> std::result::Result<LogRotation, String> {
    let size = |v: &str| berth_api::query::from_human_size(v).ok_or_else(|| format!("invalid size: '{v}'"));
    let count = |v: &str| v.parse::<i64>().map_err(|_| format!("strconv.Atoi: parsing {v:?}: invalid syntax"));
    let flag = |v: &str| go_bool(v).ok_or_else(|| format!("strconv.ParseBool: parsing {v:?}: invalid syntax"));
    if driver == "local" {
        let max_size = match opts.get("max-size") {
            Some(v) => size(v).map_err(|e| format!("invalid value for max-size: {v}: {e}"))?,
            None => 20 << 20,
        };
        let max_file = match opts.get("max-file") {
            Some(v) => count(v).map_err(|e| format!("invalid value for max-file: {v}: {e}"))?,
            None => 5,
        };
        let compress = match opts.get("compress") {
            Some(v) => flag(v).map_err(|e| format!("error reading compress log option: {e}"))?,
            None => true,
        };
        if max_size < 0 {
            return Err("max size should be a positive number".into());
        }
        if max_file < 0 {
            return Err("max file count cannot be less than 0".into());
        }
        if compress && max_file <= 1 {
            return Err("compression cannot be enabled when max file count is 1".into());
        }
        if max_size == 0 {
            // dockerd takes it and starts a new file at every line.
            return Err("max-size=0 (a new log file at every line) is not supported by berthd: give a positive size".into());
        }
        return Ok(LogRotation { max_size: Some(max_size as u64), max_file: max_file.max(1) as u32, compress });
    }
    let max_size = match opts.get("max-size") {
        Some(v) => match size(v)? {
            n if n <= 0 => return Err("max-size must be a positive number".into()),
            n => Some(n as u64),
        },
        None => None,
    };
    let max_file = match opts.get("max-file") {
        Some(v) => match count(v)? {
            n if n < 1 => return Err("max-file cannot be less than 1".into()),
            n => u32::try_from(n).map_err(|_| format!("max-file {n} is too large"))?,
        },
        None => 1,
    };
    let compress = match opts.get("compress") {
        Some(v) => flag(v)?,
        None => false,
    };
    if compress && (max_file == 1 || max_size.is_none()) {
        return Err("compress cannot be true when max-file is less than 2 or max-size is not set".into());
    }
    Ok(LogRotation { max_size, max_file, compress })
}

/// The daemon's `--log-driver`/`--log-opt` (or daemon.json's) for a container that
/// names no driver, and its options under the container's own when the driver is the
/// same (dockerd's merge).
pub fn default_log_config(hc: &mut HostConfig, default: Option<&(String, std::collections::HashMap<String, String>)>) {
    let Some((driver, opts)) = default else { return };
    let lc = hc.log_config.get_or_insert_with(Default::default);
    if lc.typ.as_deref().unwrap_or("").is_empty() {
        lc.typ = Some(driver.clone());
    }
    if lc.typ.as_deref() == Some(driver.as_str()) {
        let c = lc.config.get_or_insert_with(Default::default);
        for (k, v) in opts {
            c.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
}

/// Check the daemon's default log configuration as a container's would be checked.
pub fn check_default_log_config(default: &(String, std::collections::HashMap<String, String>)) -> Result<()> {
    let mut hc = HostConfig::default();
    default_log_config(&mut hc, Some(default));
    verify_log_config(&mut hc).map_err(|e| Error::invalid(format!("invalid default log configuration: {}", e.message())))
}

/// Default and check the log configuration (`--log-driver`, `--log-opt`).
fn verify_log_config(hc: &mut HostConfig) -> Result<()> {
    let lc = hc.log_config.get_or_insert_with(Default::default);
    let typ = lc.typ.clone().filter(|t| !t.is_empty()).unwrap_or_else(|| "json-file".into());
    if OTHER_LOG_DRIVERS.contains(&typ.as_str()) {
        return Err(Error::invalid(format!(
            "berthd does not support the \"{typ}\" logging driver (supported: json-file, local, none)"
        )));
    }
    if !LOG_DRIVERS.contains(&typ.as_str()) {
        return Err(Error::invalid(format!("logger: no log driver named '{typ}' is registered")));
    }
    let opts = lc.config.get_or_insert_with(Default::default);
    if let Some(k) = opts.keys().find(|k| !log_opts_of(&typ).contains(&k.as_str())) {
        // (each of dockerd's drivers words it its own way)
        return Err(Error::invalid(match typ.as_str() {
            "local" => format!("unknown log opt '{k}' for log driver local"),
            _ => format!("unknown log opt '{k}' for {typ} log driver"),
        }));
    }
    // The attributes' templates and patterns, checked now (their values come at start).
    if let Some(t) = opts.get("tag") {
        log_tag(t, None).map_err(|e| Error::invalid(format!("failed to initialize logging driver: {e}")))?;
    }
    for k in ["labels-regex", "env-regex"] {
        if let Some(re) = opts.get(k).filter(|v| !v.is_empty()) {
            regex::Regex::new(re).map_err(|e| Error::invalid(format!("failed to initialize logging driver: {k}: {e}")))?;
        }
    }
    if typ != "none" {
        // dockerd checks the values when the driver starts, with this prefix; berthd
        // at create already, with the same words.
        log_rotation(&typ, opts).map_err(|e| Error::invalid(format!("failed to initialize logging driver: {e}")))?;
    }
    lc.typ = Some(typ);
    Ok(())
}

/// A namespace mode that joins another container (`container:<name|id>`).
pub fn container_ref(mode: &str) -> Option<&str> {
    mode.strip_prefix("container:").filter(|r| !r.is_empty())
}

/// Check a whole host config at create: resources (with warnings), then every field
/// berthd either honours or refuses. Returns the warnings for the create response.
/// dockerd's `adaptContainerSettings`: the defaults a created container is recorded
/// (and inspected) with.
fn adapt_settings(hc: &mut HostConfig) {
    let memory = hc.memory.unwrap_or(0);
    if memory > 0 && hc.memory_swap.unwrap_or(0) == 0 {
        // Swap defaults to as much again as the memory limit.
        hc.memory_swap = Some(memory * 2);
    }
    if hc.shm_size.unwrap_or(0) == 0 {
        hc.shm_size = Some(berth_oci::DEFAULT_SHM_SIZE);
    }
    if hc.cgroupns_mode.is_none_or(|m| m.to_string().is_empty()) {
        let mode = if berth_oci::cgroup_v2_unified() { "private" } else { "host" };
        hc.cgroupns_mode = mode.parse().ok();
    }
    if hc.pids_limit.is_some_and(|p| p <= 0) {
        hc.pids_limit = None;
    }
}

/// dockerd's checks of a container's (or an image's) healthcheck timings.
pub fn verify_healthcheck(h: Option<&berth_api::models::HealthConfig>) -> Result<()> {
    const MIN: i64 = 1_000_000; // 1ms, dockerd's MinimumDuration
    let Some(h) = h else { return Ok(()) };
    for (name, v) in [("Interval", h.interval), ("Timeout", h.timeout)] {
        if v.is_some_and(|v| v != 0 && v < MIN) {
            return Err(Error::invalid(format!("{name} in Healthcheck cannot be less than 1ms")));
        }
    }
    if h.retries.is_some_and(|r| r < 0) {
        return Err(Error::invalid("Retries in Healthcheck cannot be negative"));
    }
    if h.start_period.is_some_and(|v| v != 0 && v < MIN) {
        return Err(Error::invalid("StartPeriod in Healthcheck cannot be less than 1ms"));
    }
    Ok(())
}

/// dockerd's `validatePortBindings`: each binding's container port is a port number
/// and each host port one or a range (the protocol after a `/` is not looked at here).
fn verify_port_bindings(hc: &HostConfig) -> Result<()> {
    // Go's `strconv.ParseUint(s, 10, 16)`: digits only, no sign.
    let port = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && s.parse::<u16>().is_ok();
    // nat.SplitProtoPort's port part
    let port_of = |raw: &str| raw.split('/').next().unwrap_or("").to_owned();
    let bad = |s: &str| Error::invalid(format!("invalid port specification: {s:?}"));
    for (key, binds) in hc.port_bindings.iter().flatten() {
        let p = port_of(key);
        if !(p.is_empty() || port(&p)) {
            return Err(bad(&p));
        }
        for b in binds.iter().flatten() {
            let raw = b.host_port.as_deref().unwrap_or("");
            let p = port_of(raw);
            let ok = p.is_empty()
                || match p.split_once('-') {
                    None => port(&p),
                    Some((lo, rest)) => {
                        let hi = rest.split('-').next().unwrap_or("");
                        port(lo) && port(hi) && lo.parse::<u16>().ok() <= hi.parse::<u16>().ok()
                    }
                };
            if !ok {
                return Err(bad(raw));
            }
        }
    }
    Ok(())
}

/// Check a create request's host config as dockerd does, with what it needs of the
/// request's own config (its environment, hostname and stop signal); returns warnings.
pub fn verify_host_config(hc: &mut HostConfig, config: &ContainerConfig) -> Result<Vec<String>> {
    adapt_settings(hc);
    let mut warnings = verify_resources(hc, sysinfo(), false)?;
    if let Some(rp) = &hc.restart_policy {
        let name = rp.name.unwrap_or(RestartPolicyNameEnum::EMPTY);
        let max = rp.maximum_retry_count.unwrap_or(0);
        if hc.auto_remove.unwrap_or(false) && !matches!(name, RestartPolicyNameEnum::EMPTY | RestartPolicyNameEnum::NO) {
            return Err(Error::invalid("can't create 'AutoRemove' container with restart policy"));
        }
        if max < 0 {
            return Err(Error::invalid("invalid restart policy: maximum retry count can't be negative"));
        }
        if max > 0 && name != RestartPolicyNameEnum::ON_FAILURE {
            return Err(Error::invalid("invalid restart policy: maximum retry count can only be used with 'on-failure'".to_string()));
        }
    }
    if hc.shm_size.unwrap_or(0) < 0 {
        return Err(Error::invalid("SHM size can not be less than 0"));
    }
    let oom = hc.oom_score_adj.unwrap_or(0);
    if !(-1000..=1000).contains(&oom) {
        return Err(Error::invalid(format!("Invalid value {oom}, range for oom score adj is [-1000, 1000]")));
    }
    verify_log_config(hc)?;
    // The one runtime (berth-shim over libcontainer) goes by the name clients know
    // dockerd's default by; inspect shows it as dockerd does.
    match hc.runtime.as_deref().unwrap_or("") {
        "" | "runc" => hc.runtime = Some("runc".into()),
        other => return Err(Error::invalid(format!("Unknown runtime specified {other}"))),
    }
    match hc.isolation.map(|i| i.to_string()).unwrap_or_default().as_str() {
        "" | "default" => {}
        other => return Err(Error::invalid(format!("Invalid isolation: {other:?} - linux only supports 'default'"))),
    }
    if hc.storage_opt.as_ref().is_some_and(|s| !s.is_empty()) {
        return Err(Error::invalid("--storage-opt is supported only for overlay over xfs with 'pquota' mount option"));
    }
    match hc.userns_mode.as_deref().unwrap_or("") {
        "" | "host" => {}
        other => return Err(Error::invalid(format!("invalid USER mode: {other}"))),
    }
    match hc.cgroupns_mode.map(|m| m.to_string()).unwrap_or_default().as_str() {
        "" | "host" | "private" => {}
        other => return Err(Error::invalid(format!("invalid cgroup namespace mode: {other}"))),
    }
    let cgroup = hc.cgroup.clone().unwrap_or_default();
    if !cgroup.is_empty() {
        return Err(Error::invalid(format!(
            "--cgroup={cgroup}: joining another container's cgroup is not supported by berthd"
        )));
    }
    match hc.uts_mode.as_deref().unwrap_or("") {
        "" => {}
        "host" if config.hostname.as_deref().is_some_and(|h| !h.is_empty()) => {
            return Err(Error::invalid("conflicting options: hostname and the UTS mode"));
        }
        "host" => {}
        other => return Err(Error::invalid(format!("invalid UTS mode: {other}"))),
    }
    if let Some(sig) = config.stop_signal.as_deref().filter(|s| !s.is_empty()) {
        crate::container::lifecycle::parse_signal(sig)?;
    }
    let pid = hc.pid_mode.clone().unwrap_or_default();
    if !(pid.is_empty() || pid == "host" || container_ref(&pid).is_some()) {
        return Err(Error::invalid(format!("invalid PID mode: {pid}")));
    }
    let ipc = hc.ipc_mode.clone().unwrap_or_default();
    if !(matches!(ipc.as_str(), "" | "private" | "shareable" | "host" | "none") || container_ref(&ipc).is_some()) {
        return Err(Error::invalid(format!("invalid IPC mode: {ipc}")));
    }
    berth_oci::check_capabilities(hc.cap_add.as_deref().unwrap_or_default(), hc.cap_drop.as_deref().unwrap_or_default())?;
    verify_port_bindings(hc)?;
    let net = hc.network_mode.as_deref().unwrap_or("");
    if net == "host" && hc.port_bindings.as_ref().is_some_and(|p| !p.is_empty()) {
        warnings.push("Published ports are discarded when using host network mode".into());
    }
    for e in config.env.iter().flatten() {
        if e.is_empty() || e.starts_with('=') {
            return Err(Error::invalid(format!("invalid environment variable: {e}")));
        }
    }
    Ok(warnings)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v1_all() -> SysInfo {
        SysInfo {
            memory_limit: true,
            swap_limit: true,
            memory_reservation: true,
            memory_swappiness: true,
            oom_kill_disable: true,
            pids_limit: true,
            cpu_shares: true,
            cpu_cfs: true,
            cpuset: true,
            cpus: "0-1".into(),
            mems: "0".into(),
            blkio_weight: true,
            ncpu: 2,
            ..Default::default()
        }
    }

    #[test]
    fn log_attributes_and_tags_as_dockerds_json_file_makes_them() {
        let labels: std::collections::HashMap<String, String> =
            [("a", "1"), ("com.x.y", "2"), ("b", "3")].map(|(k, v)| (k.to_owned(), v.to_owned())).into();
        let env = vec!["PATH=/bin".to_owned(), "FOO=bar".to_owned(), "EMPTY=".to_owned(), "NOVALUE".to_owned()];
        let info = LogInfo {
            id: "0123456789abcdef0123",
            name: "/web",
            image_id: "sha256:fedcba9876543210",
            image_name: "busybox:1",
            command: "sh -c true".into(),
            labels: &labels,
            env: &env,
        };
        let opts = |kv: &[(&str, &str)]| kv.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<std::collections::HashMap<_, _>>();
        let attrs = log_attrs(&opts(&[("labels", "a,missing"), ("labels-regex", "^com\\."), ("env", "FOO,EMPTY,NOVALUE")]), &info).unwrap();
        let want: Vec<(&str, &str)> = vec![("EMPTY", ""), ("FOO", "bar"), ("a", "1"), ("com.x.y", "2")];
        assert_eq!(attrs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect::<Vec<_>>(), want);
        let tag = |t: &str| log_tag(t, Some(&info));
        assert_eq!(tag("{{.ID}} {{ .Name }} {{.FullID}}").unwrap(), "0123456789ab web 0123456789abcdef0123");
        assert_eq!(tag("{{.ImageID}}/{{.ImageFullID}}/{{.ImageName}}/{{.Command}}/{{.DaemonName}}").unwrap(), "fedcba987654/sha256:fedcba9876543210/busybox:1/sh -c true/docker");
        assert!(tag("{{.Nope}}").unwrap_err().contains("\".Nope\" is not one"));
        assert!(tag("{{.Name").is_err());
        // an empty tag adds nothing
        assert!(log_attrs(&opts(&[("tag", "")]), &info).unwrap().is_empty());
        assert!(log_attrs(&opts(&[("env-regex", "(")]), &info).is_err());
    }

    #[test]
    fn conflicting_uts_and_bad_stop_signals_are_refused() {
        let check = |uts: Option<&str>, hostname: Option<&str>, sig: Option<&str>| {
            let mut hc = HostConfig { uts_mode: uts.map(str::to_owned), ..Default::default() };
            let cfg = ContainerConfig {
                hostname: hostname.map(str::to_owned),
                stop_signal: sig.map(str::to_owned),
                ..Default::default()
            };
            verify_host_config(&mut hc, &cfg).map(|_| ()).map_err(|e| e.to_string())
        };
        assert_eq!(check(Some("host"), Some("x"), None), Err("conflicting options: hostname and the UTS mode".into()));
        assert_eq!(check(Some("host"), Some(""), None), Ok(()));
        assert_eq!(check(None, Some("x"), None), Ok(()));
        assert_eq!(check(None, None, Some("NOPE")), Err("Invalid signal: NOPE".into()));
        assert_eq!(check(None, None, Some("SIGRTMIN+3")), Ok(()));
    }

    #[test]
    fn resources_as_dockerd_checks_them() {
        let si = v1_all();
        let mut hc = HostConfig { memory: Some(1024), ..Default::default() };
        assert_eq!(verify_resources(&mut hc, &si, false).unwrap_err().message(), "Minimum memory limit allowed is 6MB");
        let mut hc = HostConfig { nano_cpus: Some(3_000_000_000), ..Default::default() };
        assert_eq!(
            verify_resources(&mut hc, &si, false).unwrap_err().message(),
            "Range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs available"
        );
        let mut hc = HostConfig { cpuset_cpus: Some("0-3".into()), ..Default::default() };
        assert!(verify_resources(&mut hc, &si, false).unwrap_err().message().starts_with("Requested CPUs are not available"));
        let mut hc = HostConfig { memory_swap: Some(64 << 20), ..Default::default() };
        assert!(verify_resources(&mut hc, &si, false).is_err());
        assert!(verify_resources(&mut hc, &si, true).is_ok());
        let mut hc = HostConfig { blkio_weight: Some(5), ..Default::default() };
        assert_eq!(verify_resources(&mut hc, &si, false).unwrap_err().message(), "Range of blkio weight is from 10 to 1000");
    }

    #[test]
    fn missing_controllers_warn_and_drop() {
        let si = SysInfo { ncpu: 2, ..Default::default() };
        let mut hc = HostConfig {
            blkio_weight: Some(300),
            oom_kill_disable: Some(true),
            memory_swappiness: Some(10),
            pids_limit: Some(20),
            ..Default::default()
        };
        let w = verify_resources(&mut hc, &si, false).unwrap();
        assert!(w.iter().any(|w| w.contains("Block I/O weight")), "{w:?}");
        assert!(w.iter().any(|w| w.contains("OomKillDisable")), "{w:?}");
        assert_eq!((hc.blkio_weight, hc.oom_kill_disable, hc.memory_swappiness, hc.pids_limit), (Some(0), None, None, None));
    }

    #[test]
    fn log_config_is_defaulted_and_checked() {
        let mut hc = HostConfig::default();
        verify_log_config(&mut hc).unwrap();
        assert_eq!(hc.log_config.as_ref().unwrap().typ.as_deref(), Some("json-file"));
        let lc = |t: &str, opts: &[(&str, &str)]| HostConfig {
            log_config: Some(berth_api::models::HostConfigLogConfig {
                typ: Some(t.into()),
                config: Some(opts.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()),
            }),
            ..Default::default()
        };
        assert!(verify_log_config(&mut lc("bogus", &[])).unwrap_err().message().contains("no log driver named 'bogus'"));
        assert!(verify_log_config(&mut lc("syslog", &[])).unwrap_err().message().contains("does not support"));
        assert!(verify_log_config(&mut lc("json-file", &[("max-size", "1k"), ("max-file", "2")])).is_ok());
        assert!(verify_log_config(&mut lc("json-file", &[("labels", "a"), ("tag", "{{.Name}}")])).is_ok());
        assert!(verify_log_config(&mut lc("json-file", &[("bogus", "a")])).is_err());
        assert!(verify_log_config(&mut lc("local", &[("labels", "a")])).is_err());
        assert!(verify_log_config(&mut lc("json-file", &[("max-size", "huge")])).is_err());
        assert!(verify_log_config(&mut lc("none", &[("max-size", "1k")])).is_err());
        assert_eq!(berth_api::query::ram_in_bytes("1k"), Some(1024));
        assert_eq!(berth_api::query::ram_in_bytes("10MB"), Some(10 << 20));
    }

    /// Each case as dockerd 20.10 answered `docker run --log-driver D --log-opt …`
    /// (the error after "failed to initialize logging driver: ", or none).
    #[test]
    fn log_options_are_read_as_dockerd_s_drivers_read_them() {
        let check = |driver: &str, opts: &str| {
            let m = opts.split(',').filter(|x| !x.is_empty()).map(|kv| {
                let (k, v) = kv.split_once('=').unwrap();
                (k.to_owned(), v.to_owned())
            });
            log_rotation(driver, &m.collect())
        };
        let err = |driver: &str, opts: &str| check(driver, opts).unwrap_err();
        let rot = |max_size, max_file, compress| Ok(LogRotation { max_size, max_file, compress });
        assert_eq!(check("json-file", ""), rot(None, 1, false));
        assert_eq!(check("json-file", "max-file=100"), rot(None, 100, false));
        assert_eq!(check("json-file", "max-size=10m,max-file=3,compress=true"), rot(Some(10_000_000), 3, true));
        assert_eq!(check("json-file", "max-size=1.5k"), rot(Some(1500), 1, false));
        let compress = "compress cannot be true when max-file is less than 2 or max-size is not set";
        assert_eq!(err("json-file", "compress=true"), compress);
        assert_eq!(err("json-file", "max-file=3,compress=true"), compress);
        assert_eq!(err("json-file", "max-size=1k,max-file=1,compress=true"), compress);
        assert_eq!(err("json-file", "max-file=0"), "max-file cannot be less than 1");
        assert_eq!(err("json-file", "max-file=-1"), "max-file cannot be less than 1");
        assert_eq!(err("json-file", "max-size=0"), "max-size must be a positive number");
        assert_eq!(err("json-file", "max-size=-1"), "invalid size: '-1'");
        assert_eq!(err("json-file", "max-size=abc"), "invalid size: 'abc'");
        assert_eq!(err("json-file", "max-file=abc"), "strconv.Atoi: parsing \"abc\": invalid syntax");
        assert_eq!(err("json-file", "compress=maybe"), "strconv.ParseBool: parsing \"maybe\": invalid syntax");
        assert_eq!(check("local", ""), rot(Some(20 << 20), 5, true));
        assert_eq!(check("local", "max-file=100"), rot(Some(20 << 20), 100, true));
        assert_eq!(check("local", "compress=false,max-file=0"), rot(Some(20 << 20), 1, false));
        let one = "compression cannot be enabled when max file count is 1";
        assert_eq!(err("local", "max-size=1k,max-file=1"), one);
        assert_eq!(err("local", "max-file=0"), one);
        assert_eq!(err("local", "compress=false,max-file=-1"), "max file count cannot be less than 0");
        assert_eq!(err("local", "max-size=-1"), "invalid value for max-size: -1: invalid size: '-1'");
        assert_eq!(err("local", "max-file=abc"), "invalid value for max-file: abc: strconv.Atoi: parsing \"abc\": invalid syntax");
        assert_eq!(
            err("local", "compress=maybe"),
            "error reading compress log option: strconv.ParseBool: parsing \"maybe\": invalid syntax"
        );
        // dockerd takes it (and starts a new file at every line); berthd says why not.
        assert!(err("local", "max-size=0").contains("not supported"));
    }

    #[test]
    fn port_bindings_are_checked_as_dockerd_checks_them() {
        let with = |key: &str, host: &str| HostConfig {
            port_bindings: Some(
                [(key.to_owned(), Some(vec![berth_api::models::PortBinding { host_ip: None, host_port: Some(host.to_owned()) }]))]
                    .into(),
            ),
            ..Default::default()
        };
        for (k, h) in [("80/tcp", "8080"), ("80/tcp", ""), ("80", "8000-8010"), ("53/udp", "53/udp"), ("0/tcp", "0")] {
            assert!(verify_port_bindings(&with(k, h)).is_ok(), "{k} {h}");
        }
        for (k, h, bad) in [
            ("abc/tcp", "80", "abc"),
            ("65536/tcp", "80", "65536"),
            ("80/tcp", "abc", "abc"),
            ("80/tcp", "70000", "70000"),
            ("80/tcp", "+80", "+80"),
            ("80/tcp", "90-80", "90-80"),
        ] {
            let e = verify_port_bindings(&with(k, h)).unwrap_err();
            assert_eq!(e.message(), format!("invalid port specification: \"{bad}\""), "{k} {h}");
        }
        let none = HostConfig { port_bindings: Some([("80/tcp".to_owned(), None)].into()), ..Default::default() };
        assert!(verify_port_bindings(&none).is_ok());
    }

    #[test]
    fn probes_this_host() {
        let si = sysinfo();
        assert!(si.ncpu >= 1);
    }
}
