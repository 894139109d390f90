//! Pure parsing of command-line values (sizes, ports, volumes, env files, times,
//! image references) and the `run`/`create` flags → `containers/create` body mapping.

use std::collections::HashMap;

use anyhow::{anyhow, bail, Context, Result};
use bollard::models::{
    ContainerCreateBody, DeviceRequest, EndpointSettings, HealthConfig, HostConfig, HostConfigCgroupnsModeEnum,
    HostConfigIsolationEnum, HostConfigLogConfig, Mount, MountBindOptions, MountBindOptionsPropagationEnum,
    MountTmpfsOptions, MountType, MountVolumeOptions, MountVolumeOptionsDriverConfig, NetworkingConfig, PortBinding,
    ResourcesBlkioWeightDevice, ResourcesUlimits, RestartPolicy, RestartPolicyNameEnum, ThrottleDevice,
};

use crate::cli::ContainerOpts;

/// go-units RAMInBytes: "64m" → 67108864 (binary multiples, optional "b"/"ib").
pub fn parse_ram(s: &str) -> Result<i64> {
    berth_api::query::ram_in_bytes(s).ok_or_else(|| anyhow!("invalid size: '{s}'"))
}

/// Parses an env file like docker: `KEY=VAL` lines kept as is, bare `KEY` taken from
/// the environment (dropped when unset), blank lines and `#` comments skipped.
pub fn parse_env_file(
    content: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for (i, raw) in content.lines().enumerate() {
        let line = raw.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, value) = match line.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (line.trim_end(), None),
        };
        if key.is_empty() {
            bail!("invalid environment variable at line {}: {raw:?}", i + 1);
        }
        if key.contains(char::is_whitespace) {
            bail!("variable '{key}' contains whitespaces");
        }
        match value {
            Some(v) => out.push(format!("{key}={v}")),
            None => {
                if let Some(v) = lookup(key) {
                    out.push(format!("{key}={v}"));
                }
            }
        }
    }
    Ok(out)
}

/// `-e KEY` takes the value from the environment; kept bare when unset (docker's ValidateEnv).
pub fn expand_env(arg: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<String> {
    match arg.split_once('=') {
        Some(("", _)) => bail!("invalid environment variable: {arg}"),
        Some(_) => Ok(arg.to_string()),
        None => Ok(match lookup(arg) {
            Some(v) => format!("{arg}={v}"),
            None => arg.to_string(),
        }),
    }
}

/// One `-p` spec → (container "port/proto", binding). Ranges expand to several entries.
pub fn parse_publish(spec: &str) -> Result<Vec<(String, PortBinding)>> {
    let (rest, proto) = match spec.rsplit_once('/') {
        Some((r, p)) => (r, p.to_ascii_lowercase()),
        None => (spec, "tcp".to_string()),
    };
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        bail!("invalid proto: {proto}");
    }
    // [ip:][hostPort:]containerPort ; ip may be [v6]
    let (ip, host, ctr) = if let Some(stripped) = rest.strip_prefix('[') {
        let (ip, after) = stripped
            .split_once("]:")
            .ok_or_else(|| anyhow!("invalid port spec {spec:?}"))?;
        let (h, c) = after
            .split_once(':')
            .ok_or_else(|| anyhow!("invalid port spec {spec:?}"))?;
        (ip.to_string(), h.to_string(), c.to_string())
    } else {
        let parts: Vec<&str> = rest.split(':').collect();
        match parts.as_slice() {
            [c] => (String::new(), String::new(), c.to_string()),
            [h, c] => (String::new(), h.to_string(), c.to_string()),
            [ip, h, c] => (ip.to_string(), h.to_string(), c.to_string()),
            _ => bail!("invalid port format for --publish: {spec}"),
        }
    };
    let (cs, ce) = parse_range(&ctr).with_context(|| format!("invalid containerPort: {ctr}"))?;
    // Host port 0 (or none): the daemon picks one.
    let host_range = if host.is_empty() || host == "0" {
        None
    } else {
        Some(parse_range(&host).with_context(|| format!("invalid hostPort: {host}"))?)
    };
    let count = ce - cs;
    if let Some((hs, he)) = host_range {
        if he - hs != count && he != hs && count != 0 {
            bail!("invalid ranges specified for container and host Ports: {ctr} and {host}");
        }
    }
    let mut out = Vec::new();
    for i in 0..=count {
        let host_port = match host_range {
            None => String::new(),
            // One container port, a host range: the daemon takes a free port of it.
            Some((hs, he)) if count == 0 && he != hs => format!("{hs}-{he}"),
            Some((hs, he)) if he == hs && count > 0 => format!("{hs}"),
            Some((hs, _)) => format!("{}", hs + i),
        };
        out.push((
            format!("{}/{}", cs + i, proto),
            PortBinding {
                host_ip: Some(ip.clone()),
                host_port: Some(host_port),
            },
        ));
    }
    Ok(out)
}

fn parse_range(s: &str) -> Result<(u32, u32)> {
    let (a, b) = match s.split_once('-') {
        Some((a, b)) => (a.parse::<u32>()?, b.parse::<u32>()?),
        None => {
            let p = s.parse::<u32>()?;
            (p, p)
        }
    };
    if a == 0 || b > 65535 || b < a {
        bail!("invalid port range {s}");
    }
    Ok((a, b))
}

/// `-v`: binds ("src:dst[:opts]") go to HostConfig.Binds; a lone path is an anonymous volume.
pub enum VolumeSpec {
    Bind(String),
    Anonymous(String),
}

pub fn parse_volume(spec: &str) -> Result<VolumeSpec> {
    if spec.is_empty() {
        bail!("invalid empty volume spec");
    }
    let parts: Vec<&str> = spec.split(':').collect();
    match parts.len() {
        1 => {
            if !spec.starts_with('/') {
                bail!("invalid volume specification: '{spec}': mount path must be absolute");
            }
            Ok(VolumeSpec::Anonymous(spec.to_string()))
        }
        2 | 3 => {
            if !parts[1].starts_with('/') {
                bail!("invalid volume specification: '{spec}': mount path must be absolute");
            }
            if parts[0].is_empty() {
                bail!("invalid volume specification: '{spec}'");
            }
            Ok(VolumeSpec::Bind(spec.to_string()))
        }
        _ => bail!("invalid volume specification: '{spec}'"),
    }
}

pub fn parse_restart(s: &str) -> Result<RestartPolicy> {
    let (name, count) = match s.split_once(':') {
        Some((n, c)) => (
            n,
            Some(c.parse::<i64>().map_err(|_| {
                anyhow!("invalid restart policy format: maximum retry count must be an integer")
            })?),
        ),
        None => (s, None),
    };
    let name = match name {
        "" | "no" => RestartPolicyNameEnum::NO,
        "always" => RestartPolicyNameEnum::ALWAYS,
        "unless-stopped" => RestartPolicyNameEnum::UNLESS_STOPPED,
        "on-failure" => RestartPolicyNameEnum::ON_FAILURE,
        other => bail!("invalid restart policy: unknown policy '{other}'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'"),
    };
    if count.is_some() && name != RestartPolicyNameEnum::ON_FAILURE {
        bail!("invalid restart policy: maximum retry count can only be used with 'on-failure'");
    }
    Ok(RestartPolicy {
        name: Some(name),
        maximum_retry_count: Some(count.unwrap_or(0)),
    })
}

pub fn parse_ulimit(s: &str) -> Result<ResourcesUlimits> {
    let (name, vals) = s
        .split_once('=')
        .ok_or_else(|| anyhow!("invalid ulimit argument: {s}"))?;
    let (soft, hard) = match vals.split_once(':') {
        Some((a, b)) => (a.parse::<i64>()?, b.parse::<i64>()?),
        None => {
            let v = vals.parse::<i64>()?;
            (v, v)
        }
    };
    if soft > hard && hard != -1 {
        bail!("ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}");
    }
    Ok(ResourcesUlimits {
        name: Some(name.to_string()),
        soft: Some(soft),
        hard: Some(hard),
    })
}

/// `--mount type=bind,source=/a,target=/b,readonly,...` (docker's `opts.MountOpt`).
pub fn parse_mount(spec: &str) -> Result<Mount> {
    let mut m = Mount::default();
    let mut typ = None;
    let mut bind = MountBindOptions::default();
    let mut vol = MountVolumeOptions::default();
    let mut tmpfs = MountTmpfsOptions::default();
    let (mut has_bind, mut has_vol, mut has_tmpfs) = (false, false, false);
    let bool_of = |k: &str, v: Option<&str>| -> Result<bool> {
        match v.map(|x| x.to_ascii_lowercase()).as_deref() {
            None | Some("1") | Some("true") => Ok(true),
            Some("0") | Some("false") => Ok(false),
            Some(other) => bail!("invalid value for {k}: {other}"),
        }
    };
    for field in spec.split(',') {
        let (k, v) = match field.split_once('=') {
            Some((k, v)) => (k.trim().to_ascii_lowercase(), Some(v)),
            None => (field.trim().to_ascii_lowercase(), None),
        };
        fn need<'a>(v: Option<&'a str>, field: &str) -> Result<&'a str> {
            v.ok_or_else(|| anyhow!("invalid field '{field}' must be a key=value pair"))
        }
        match k.as_str() {
            "type" => {
                typ = Some(match need(v, field)? {
                    "bind" => MountType::BIND,
                    "volume" => MountType::VOLUME,
                    "tmpfs" => MountType::TMPFS,
                    "npipe" => MountType::NPIPE,
                    other => bail!("invalid mount type: {other}"),
                })
            }
            "source" | "src" => m.source = Some(need(v, field)?.to_owned()),
            "target" | "dst" | "destination" => m.target = Some(need(v, field)?.to_owned()),
            "readonly" | "ro" => m.read_only = Some(bool_of(&k, v)?),
            "consistency" => m.consistency = Some(need(v, field)?.to_owned()),
            "bind-propagation" => {
                has_bind = true;
                bind.propagation = Some(match need(v, field)? {
                    "private" => MountBindOptionsPropagationEnum::PRIVATE,
                    "rprivate" => MountBindOptionsPropagationEnum::RPRIVATE,
                    "shared" => MountBindOptionsPropagationEnum::SHARED,
                    "rshared" => MountBindOptionsPropagationEnum::RSHARED,
                    "slave" => MountBindOptionsPropagationEnum::SLAVE,
                    "rslave" => MountBindOptionsPropagationEnum::RSLAVE,
                    other => bail!("invalid bind propagation: {other}"),
                });
            }
            "bind-nonrecursive" => {
                has_bind = true;
                bind.non_recursive = Some(bool_of(&k, v)?);
            }
            "bind-create-mountpoint" => {
                has_bind = true;
                bind.create_mountpoint = Some(bool_of(&k, v)?);
            }
            "volume-nocopy" => {
                has_vol = true;
                vol.no_copy = Some(bool_of(&k, v)?);
            }
            "volume-label" => {
                has_vol = true;
                let (a, b) = need(v, field)?.split_once('=').unwrap_or((need(v, field)?, ""));
                vol.labels.get_or_insert_with(HashMap::new).insert(a.to_owned(), b.to_owned());
            }
            "volume-driver" => {
                has_vol = true;
                vol.driver_config.get_or_insert_with(MountVolumeOptionsDriverConfig::default).name = Some(need(v, field)?.to_owned());
            }
            "volume-opt" => {
                has_vol = true;
                let (a, b) = need(v, field)?.split_once('=').unwrap_or((need(v, field)?, ""));
                vol.driver_config
                    .get_or_insert_with(MountVolumeOptionsDriverConfig::default)
                    .options
                    .get_or_insert_with(HashMap::new)
                    .insert(a.to_owned(), b.to_owned());
            }
            "volume-subpath" => {
                has_vol = true;
                vol.subpath = Some(need(v, field)?.to_owned());
            }
            "tmpfs-size" => {
                has_tmpfs = true;
                tmpfs.size_bytes = Some(parse_ram(need(v, field)?)?);
            }
            "tmpfs-mode" => {
                has_tmpfs = true;
                tmpfs.mode = Some(i64::from_str_radix(need(v, field)?, 8).map_err(|_| anyhow!("invalid value for tmpfs-mode: {field}"))?);
            }
            _ => bail!("unexpected key '{k}' in '{field}'"),
        }
    }
    let typ = typ.ok_or_else(|| anyhow!("type is required"))?;
    if m.target.as_deref().unwrap_or("").is_empty() {
        bail!("target is required");
    }
    if has_bind && typ != MountType::BIND {
        bail!("cannot mix 'bind-*' options with mount type '{typ}'");
    }
    if has_vol && typ != MountType::VOLUME {
        bail!("cannot mix 'volume-*' options with mount type '{typ}'");
    }
    if has_tmpfs && typ != MountType::TMPFS {
        bail!("cannot mix 'tmpfs-*' options with mount type '{typ}'");
    }
    m.typ = Some(typ);
    m.bind_options = has_bind.then_some(bind);
    m.volume_options = has_vol.then_some(vol);
    m.tmpfs_options = has_tmpfs.then_some(tmpfs);
    Ok(m)
}

/// `--blkio-weight-device /dev/sda:300`.
pub fn parse_weight_device(s: &str) -> Result<ResourcesBlkioWeightDevice> {
    let (path, w) = s.split_once(':').ok_or_else(|| anyhow!("bad format: {s}"))?;
    if !path.starts_with("/dev/") {
        bail!("bad format for device path: {s}");
    }
    let weight: u16 = w.parse().map_err(|_| anyhow!("invalid weight for device: {s}"))?;
    if weight > 0 && !(10..=1000).contains(&weight) {
        bail!("invalid weight for device: {s}");
    }
    Ok(ResourcesBlkioWeightDevice { path: Some(path.to_owned()), weight: Some(weight as usize) })
}

/// `--device-read-bps /dev/sda:1mb` (`bytes`: sizes) or `--device-read-iops /dev/sda:1000`.
pub fn parse_throttle(s: &str, bytes: bool) -> Result<ThrottleDevice> {
    let (path, r) = s.split_once(':').ok_or_else(|| anyhow!("bad format: {s}"))?;
    if !path.starts_with("/dev/") {
        bail!("bad format for device path: {s}");
    }
    let rate = if bytes {
        parse_ram(r).map_err(|_| anyhow!("invalid rate for device: {s}. The correct format is <device-path>:<number>[<unit>]. Number must be a positive integer. Unit is optional and can be kb, mb, or gb"))?
    } else {
        r.parse::<i64>().map_err(|_| anyhow!("invalid rate for device: {s}. The correct format is <device-path>:<number>. Number must be a positive integer"))?
    };
    if rate < 0 {
        bail!("invalid rate for device: {s}");
    }
    Ok(ThrottleDevice { path: Some(path.to_owned()), rate: Some(rate) })
}

/// `--gpus all|N|device=0,1|capabilities=..,driver=..` (docker's `opts.GpuOpts`).
/// A fully-qualified CDI device name (`vendor.com/class=name`), not a device path.
pub fn is_cdi_name(d: &str) -> bool {
    !d.starts_with('/') && d.split_once('=').is_some_and(|(kind, name)| kind.contains('/') && !name.is_empty())
}

pub fn parse_gpus(s: &str) -> Result<DeviceRequest> {
    let mut r = DeviceRequest { count: None, capabilities: Some(vec![vec!["gpu".into()]]), ..Default::default() };
    // "device=0,1" may be quoted and contain commas.
    let s = s.trim_matches('"');
    if let Some(ids) = s.strip_prefix("device=") {
        r.device_ids = Some(ids.split(',').map(str::to_owned).collect());
        return Ok(r);
    }
    for field in s.split(',') {
        match field.split_once('=') {
            None if field == "all" => r.count = Some(-1),
            None => r.count = Some(field.parse().map_err(|_| anyhow!("invalid count ({field}) for gpus"))?),
            Some(("count", v)) => r.count = Some(if v == "all" { -1 } else { v.parse()? }),
            Some(("driver", v)) => r.driver = Some(v.to_owned()),
            Some(("capabilities", v)) => r.capabilities = Some(vec![v.split(',').map(str::to_owned).collect()]),
            Some(("options", v)) => {
                let (a, b) = v.split_once('=').unwrap_or((v, ""));
                r.options.get_or_insert_with(HashMap::new).insert(a.to_owned(), b.to_owned());
            }
            Some((k, _)) => bail!("unexpected key '{k}' in '{field}'"),
        }
    }
    Ok(r)
}

/// A Go duration flag (`30s`, `1m30s`) in nanoseconds.
fn duration_ns(flag: &str, v: &Option<String>) -> Result<Option<i64>> {
    v.as_deref()
        .map(|d| {
            berth_api::query::go_duration_secs(d)
                .map(|s| (s * 1e9) as i64)
                .ok_or_else(|| anyhow!("invalid argument {d:?} for \"--{flag}\" flag: time: invalid duration {d:?}"))
        })
        .transpose()
}

/// `--sysctl`: the names the docker CLI accepts (its `ValidateSysctl`): the IPC
/// namespace's, `net.*` and `fs.mqueue.*`. Others (the UTS namespace's, say) go
/// through the API only, as with docker.
fn validate_sysctl(v: &str) -> Result<()> {
    const IPC: [&str; 8] =
        ["kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall", "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced"];
    let name = v.split_once('=').map(|(k, _)| k);
    match name {
        Some(k) if IPC.contains(&k) || k.starts_with("net.") || k.starts_with("fs.mqueue.") => Ok(()),
        _ => bail!("invalid argument {v:?} for \"--sysctl\" flag: sysctl '{v}' is not allowed"),
    }
}

pub fn parse_kv_list(items: &[String]) -> HashMap<String, String> {
    items
        .iter()
        .map(|l| match l.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (l.to_string(), String::new()),
        })
        .collect()
}


/// `--since`/`--until` value → unix seconds string (docker's GetTimestamp): durations
/// are relative to now, RFC3339 (and date-only) forms are absolute, numbers pass through.
pub fn parse_timestamp(value: &str, now: i64) -> Result<String> {
    if value.chars().all(|c| c.is_ascii_digit() || c == '.') && !value.is_empty() {
        return Ok(value.to_string());
    }
    berth_api::query::timestamp(value, now)
        .map(|t| t.to_string())
        .map_err(|e| anyhow!("{}", e.message()))
}

/// A parsed image reference in docker's normalised form.
#[derive(Debug, Clone, PartialEq)]
pub struct Reference {
    /// registry host, "docker.io" when none was given
    pub domain: String,
    /// path within the registry ("library/busybox" for official images)
    pub path: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

impl Reference {
    pub fn parse(s: &str) -> Result<Reference> {
        if s.is_empty() {
            bail!("invalid reference format");
        }
        let (name, digest) = match s.split_once('@') {
            Some((n, d)) => (n, Some(d.to_string())),
            None => (s, None),
        };
        let (name, tag) = match name.rfind(':') {
            Some(i) if !name[i + 1..].contains('/') => {
                (&name[..i], Some(name[i + 1..].to_string()))
            }
            _ => (name, None),
        };
        let (domain, path) = match name.split_once('/') {
            Some((first, rest))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (first.to_string(), rest.to_string())
            }
            _ => ("docker.io".to_string(), name.to_string()),
        };
        let domain = if domain == "index.docker.io" {
            "docker.io".to_string()
        } else {
            domain
        };
        let path = if domain == "docker.io" && !path.contains('/') {
            format!("library/{path}")
        } else {
            path
        };
        if path.is_empty() || path.ends_with('/') {
            bail!("invalid reference format");
        }
        if path.chars().any(|c| c.is_ascii_uppercase()) {
            bail!("invalid reference format: repository name ({path}) must be lowercase");
        }
        Ok(Reference {
            domain,
            path,
            tag,
            digest,
        })
    }

    /// "docker.io/library/busybox" or "127.0.0.1:5000/myapp"
    pub fn full_name(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    /// Short form as docker shows it ("busybox", "myrepo/bb", "127.0.0.1:5000/myapp").
    pub fn familiar_name(&self) -> String {
        if self.domain == "docker.io" {
            // only official images lose `library/` (`library/a/b` is not `a/b`)
            match self.path.strip_prefix("library/") {
                Some(name) if !name.contains('/') => name.to_string(),
                // `docker.io/localhost/x` is not `localhost/x`
                _ if self.path.split_once('/').is_some_and(|(first, _)| {
                    first.contains('.') || first.contains(':') || first == "localhost"
                }) =>
                {
                    self.full_name()
                }
                _ => self.path.clone(),
            }
        } else {
            self.full_name()
        }
    }

    /// The name with ":latest" added when neither tag nor digest was given.
    pub fn with_default_tag(&self) -> String {
        match (&self.tag, &self.digest) {
            (_, Some(d)) => format!("{}@{d}", self.familiar_name()),
            (Some(t), None) => format!("{}:{t}", self.familiar_name()),
            (None, None) => format!("{}:latest", self.familiar_name()),
        }
    }

    /// The key under which credentials are stored in config.json.
    pub fn auth_key(&self) -> String {
        if self.domain == "docker.io" {
            "https://index.docker.io/v1/".to_string()
        } else {
            self.domain.clone()
        }
    }
}

fn os_env(k: &str) -> Option<String> {
    std::env::var(k).ok()
}

/// Maps `run`/`create` flags onto the `containers/create` body like docker CLI 28.
/// `console` is the terminal size (rows, cols) used with `-t`.
pub fn create_body(
    o: &ContainerOpts,
    detach: bool,
    console: Option<(u16, u16)>,
) -> Result<(ContainerCreateBody, Option<String>)> {
    let image = o
        .args
        .first()
        .cloned()
        .ok_or_else(|| anyhow!("requires at least 1 argument"))?;
    // The image operand takes hyphen values so that the command after it can; a
    // flag before it that clap did not know lands here (docker: "unknown flag").
    if image.starts_with('-') && image.len() > 1 {
        bail!("unknown flag: {}", image.split('=').next().unwrap_or(&image));
    }
    let cmd: Vec<String> = o.args[1..].to_vec();

    let mut env = Vec::new();
    for f in &o.env_file {
        let content = std::fs::read_to_string(f).with_context(|| format!("open {f}"))?;
        env.extend(parse_env_file(&content, os_env)?);
    }
    for e in &o.env {
        env.push(expand_env(e, os_env)?);
    }

    let mut exposed: Vec<String> = Vec::new();
    let mut bindings: HashMap<String, Option<Vec<PortBinding>>> = HashMap::new();
    for p in &o.publish {
        for (port, b) in parse_publish(p)? {
            if !exposed.contains(&port) {
                exposed.push(port.clone());
            }
            bindings
                .entry(port)
                .or_insert_with(|| Some(Vec::new()))
                .get_or_insert_with(Vec::new)
                .push(b);
        }
    }
    for e in &o.expose {
        let (p, proto) = e.split_once('/').unwrap_or((e, "tcp"));
        let (s, end) =
            parse_range(p).with_context(|| format!("invalid range format for --expose: {e}"))?;
        for i in s..=end {
            let k = format!("{i}/{proto}");
            if !exposed.contains(&k) {
                exposed.push(k);
            }
        }
    }

    let mut binds = Vec::new();
    let mut volumes = Vec::new();
    for v in &o.volume {
        match parse_volume(v)? {
            VolumeSpec::Bind(b) => binds.push(b),
            VolumeSpec::Anonymous(p) => volumes.push(p),
        }
    }

    let mut tmpfs = HashMap::new();
    for t in &o.tmpfs {
        let (path, opts) = t.split_once(':').unwrap_or((t, ""));
        tmpfs.insert(path.to_string(), opts.to_string());
    }

    let ulimits = o
        .ulimit
        .iter()
        .map(|u| parse_ulimit(u))
        .collect::<Result<Vec<_>>>()?;
    let labels = parse_kv_list(&o.label);
    for v in &o.sysctl {
        validate_sysctl(v)?;
    }
    let sysctls = parse_kv_list(&o.sysctl);
    let log_opts = parse_kv_list(&o.log_opt);

    let entrypoint = o.entrypoint.as_ref().map(|e| vec![e.clone()]);

    let network_mode = o.network.clone().unwrap_or_else(|| "default".into());
    let mut endpoints = HashMap::new();
    endpoints.insert(
        network_mode.clone(),
        EndpointSettings {
            aliases: if o.network_alias.is_empty() {
                None
            } else {
                Some(o.network_alias.clone())
            },
            ipam_config: (o.ip.is_some() || o.ip6.is_some() || !o.link_local_ip.is_empty()).then(|| {
                bollard::models::EndpointIpamConfig {
                    ipv4_address: o.ip.clone(),
                    ipv6_address: o.ip6.clone(),
                    link_local_ips: (!o.link_local_ip.is_empty()).then(|| o.link_local_ip.clone()),
                }
            }),
            mac_address: o.mac_address.clone(),
            ..Default::default()
        },
    );

    let attach: Vec<String> = o.attach.iter().map(|a| a.to_ascii_lowercase()).collect();
    let (attach_stdin, attach_stdout, attach_stderr) = if detach {
        (false, false, false)
    } else if attach.is_empty() {
        (o.interactive, true, true)
    } else {
        for a in &attach {
            if !matches!(a.as_str(), "stdin" | "stdout" | "stderr") {
                bail!("invalid argument {a:?} for \"-a, --attach\" flag: valid streams are STDIN, STDOUT and STDERR");
            }
        }
        (
            attach.iter().any(|a| a == "stdin"),
            attach.iter().any(|a| a == "stdout"),
            attach.iter().any(|a| a == "stderr"),
        )
    };

    let mounts = o.mount.iter().map(|m| parse_mount(m).with_context(|| format!("invalid argument {m:?} for \"--mount\" flag"))).collect::<Result<Vec<_>>>()?;
    let nonempty = |v: Vec<String>| if v.is_empty() { None } else { Some(v) };
    let healthcheck = if o.no_healthcheck {
        if o.health_cmd.is_some() || o.health_interval.is_some() || o.health_timeout.is_some() || o.health_retries.is_some() {
            bail!("--no-healthcheck conflicts with --health-* options");
        }
        Some(HealthConfig { test: Some(vec!["NONE".into()]), ..Default::default() })
    } else {
        let h = HealthConfig {
            test: o.health_cmd.as_ref().map(|c| vec!["CMD-SHELL".into(), c.clone()]),
            interval: duration_ns("health-interval", &o.health_interval)?,
            timeout: duration_ns("health-timeout", &o.health_timeout)?,
            start_period: duration_ns("health-start-period", &o.health_start_period)?,
            retries: o.health_retries,
            ..Default::default()
        };
        if h.interval.is_some_and(|v| v < 0) || h.timeout.is_some_and(|v| v < 0) || h.start_period.is_some_and(|v| v < 0) {
            bail!("--health-interval, --health-timeout and --health-start-period cannot be negative");
        }
        if h.retries.is_some_and(|r| r < 0) {
            bail!("--health-retries cannot be negative");
        }
        (h != HealthConfig::default()).then_some(h)
    };
    let memory = o.memory.as_deref().map(parse_ram).transpose()?;
    let memory_swap = match o.memory_swap.as_deref() {
        Some("-1") => Some(-1),
        Some(s) => Some(parse_ram(s)?),
        None => None,
    };
    let host_config = HostConfig {
        binds: if binds.is_empty() { None } else { Some(binds) },
        port_bindings: if bindings.is_empty() {
            None
        } else {
            Some(bindings)
        },
        publish_all_ports: Some(o.publish_all),
        restart_policy: Some(parse_restart(&o.restart)?),
        auto_remove: Some(o.rm),
        network_mode: Some(network_mode.clone()),
        memory,
        memory_swap,
        memory_swappiness: Some(o.memory_swappiness),
        memory_reservation: o.memory_reservation.as_deref().map(parse_ram).transpose()?,
        oom_kill_disable: o.oom_kill_disable.then_some(true),
        oom_score_adj: o.oom_score_adj,
        cpu_period: o.cpu_period,
        cpu_quota: o.cpu_quota,
        cpu_realtime_period: o.cpu_rt_period,
        cpu_realtime_runtime: o.cpu_rt_runtime,
        cpuset_cpus: o.cpuset_cpus.clone(),
        cpuset_mems: o.cpuset_mems.clone(),
        blkio_weight: o.blkio_weight,
        blkio_weight_device: Some(o.blkio_weight_device.iter().map(|w| parse_weight_device(w)).collect::<Result<_>>()?),
        blkio_device_read_bps: Some(o.device_read_bps.iter().map(|w| parse_throttle(w, true)).collect::<Result<_>>()?),
        blkio_device_write_bps: Some(o.device_write_bps.iter().map(|w| parse_throttle(w, true)).collect::<Result<_>>()?),
        blkio_device_read_iops: Some(o.device_read_iops.iter().map(|w| parse_throttle(w, false)).collect::<Result<_>>()?),
        blkio_device_write_iops: Some(o.device_write_iops.iter().map(|w| parse_throttle(w, false)).collect::<Result<_>>()?),
        device_cgroup_rules: nonempty(o.device_cgroup_rule.clone()),
        device_requests: {
            // `--gpus`, and `--device vendor.com/class=name` (a CDI device: a `cdi`
            // device request, as the docker CLI sends it)
            let mut reqs: Vec<DeviceRequest> = o.gpus.as_deref().map(parse_gpus).transpose()?.into_iter().collect();
            let cdi: Vec<String> = o.device.iter().filter(|d| is_cdi_name(d)).cloned().collect();
            if !cdi.is_empty() {
                reqs.push(DeviceRequest { driver: Some("cdi".into()), device_ids: Some(cdi), ..Default::default() });
            }
            (!reqs.is_empty()).then_some(reqs)
        },
        mounts: if mounts.is_empty() { None } else { Some(mounts) },
        cgroupns_mode: match o.cgroupns.as_deref() {
            None | Some("") => None,
            Some("host") => Some(HostConfigCgroupnsModeEnum::HOST),
            Some("private") => Some(HostConfigCgroupnsModeEnum::PRIVATE),
            Some(other) => bail!("--cgroupns: invalid CGROUP mode {other:?}"),
        },
        userns_mode: o.userns.clone(),
        isolation: match o.isolation.as_deref() {
            None | Some("") => None,
            Some("default") => Some(HostConfigIsolationEnum::DEFAULT),
            Some("process") => Some(HostConfigIsolationEnum::PROCESS),
            Some("hyperv") => Some(HostConfigIsolationEnum::HYPERV),
            Some(other) => bail!("invalid isolation: {other}"),
        },
        storage_opt: if o.storage_opt.is_empty() { None } else { Some(parse_kv_list(&o.storage_opt)) },
        nano_cpus: o.cpus.map(|c| (c * 1e9) as i64),
        cpu_shares: o.cpu_shares,
        pids_limit: o.pids_limit,
        privileged: Some(o.privileged),
        cap_add: if o.cap_add.is_empty() {
            None
        } else {
            Some(o.cap_add.clone())
        },
        cap_drop: if o.cap_drop.is_empty() {
            None
        } else {
            Some(o.cap_drop.clone())
        },
        security_opt: if o.security_opt.is_empty() {
            None
        } else {
            Some(o.security_opt.clone())
        },
        readonly_rootfs: Some(o.read_only),
        init: if o.init { Some(true) } else { None },
        shm_size: o.shm_size.as_deref().map(parse_ram).transpose()?,
        tmpfs: if tmpfs.is_empty() { None } else { Some(tmpfs) },
        ulimits: Some(ulimits),
        extra_hosts: if o.add_host.is_empty() {
            None
        } else {
            Some(o.add_host.clone())
        },
        dns: Some(o.dns.clone()),
        dns_options: Some(o.dns_option.clone()),
        dns_search: Some(o.dns_search.clone()),
        sysctls: if sysctls.is_empty() {
            None
        } else {
            Some(sysctls)
        },
        group_add: if o.group_add.is_empty() {
            None
        } else {
            Some(o.group_add.clone())
        },
        volumes_from: if o.volumes_from.is_empty() {
            None
        } else {
            Some(o.volumes_from.clone())
        },
        links: if o.link.is_empty() { None } else { Some(o.link.clone()) },
        pid_mode: o.pid.clone(),
        ipc_mode: o.ipc.clone(),
        uts_mode: o.uts.clone(),
        runtime: o.runtime.clone(),
        cgroup_parent: o.cgroup_parent.clone(),
        log_config: Some(HostConfigLogConfig {
            typ: Some(o.log_driver.clone().unwrap_or_default()),
            config: Some(log_opts),
        }),
        console_size: Some(match (o.tty, console) {
            (true, Some((rows, cols))) => vec![rows as usize, cols as usize],
            _ => vec![0, 0],
        }),
        devices: if o.device.iter().all(|d| is_cdi_name(d)) {
            None
        } else {
            Some(
                o.device
                    .iter()
                    .filter(|d| !is_cdi_name(d))
                    .map(|d| {
                        let parts: Vec<&str> = d.split(':').collect();
                        bollard::models::DeviceMapping {
                            path_on_host: Some(parts[0].to_string()),
                            path_in_container: Some(parts.get(1).unwrap_or(&parts[0]).to_string()),
                            cgroup_permissions: Some(parts.get(2).unwrap_or(&"rwm").to_string()),
                        }
                    })
                    .collect(),
            )
        },
        ..Default::default()
    };

    let body = ContainerCreateBody {
        hostname: Some(o.hostname.clone().unwrap_or_default()),
        domainname: Some(o.domainname.clone().unwrap_or_default()),
        user: Some(o.user.clone().unwrap_or_default()),
        attach_stdin: Some(attach_stdin),
        attach_stdout: Some(attach_stdout),
        attach_stderr: Some(attach_stderr),
        exposed_ports: if exposed.is_empty() {
            None
        } else {
            Some(exposed)
        },
        tty: Some(o.tty),
        open_stdin: Some(o.interactive),
        stdin_once: Some(o.interactive && !detach),
        env: if env.is_empty() { None } else { Some(env) },
        cmd: if cmd.is_empty() { None } else { Some(cmd) },
        healthcheck,
        image: Some(image),
        volumes: if volumes.is_empty() {
            None
        } else {
            Some(volumes)
        },
        working_dir: Some(o.workdir.clone().unwrap_or_default()),
        entrypoint,
        labels: Some(labels),
        stop_signal: o.stop_signal.clone(),
        stop_timeout: o.stop_timeout,
        host_config: Some(host_config),
        networking_config: Some(NetworkingConfig {
            endpoints_config: Some(endpoints),
        }),
        ..Default::default()
    };
    Ok((body, o.name.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Cmd};
    use clap::Parser;

    #[test]
    fn sysctls_as_the_docker_cli_accepts_them() {
        for ok in ["net.ipv4.ip_forward=1", "kernel.shmmax=4096", "fs.mqueue.msg_max=20", "net.core.somaxconn="] {
            assert!(validate_sysctl(ok).is_ok(), "{ok}");
        }
        for bad in ["kernel.domainname=x", "vm.swappiness=1", "net.ipv4.ip_forward", "kernel.shmmaxx=1"] {
            let e = validate_sysctl(bad).unwrap_err().to_string();
            assert_eq!(e, format!("invalid argument \"{bad}\" for \"--sysctl\" flag: sysctl '{bad}' is not allowed"));
        }
    }

    #[test]
    fn familiar_names_keep_library_when_nested() {
        // the image crate's fuzzing finding, in the CLI's copy of the rules
        let r = Reference::parse("library/a/b").unwrap();
        assert_eq!(r.familiar_name(), "library/a/b");
        assert_eq!(Reference::parse("library/busybox").unwrap().familiar_name(), "busybox");
        let r = Reference::parse("docker.io/localhost/x").unwrap();
        assert_eq!(r.familiar_name(), "docker.io/localhost/x");
    }

    #[test]
    fn ram_sizes() {
        assert_eq!(parse_ram("64m").unwrap(), 67108864);
        assert_eq!(parse_ram("64M").unwrap(), 67108864);
        assert_eq!(parse_ram("1g").unwrap(), 1 << 30);
        assert_eq!(parse_ram("512k").unwrap(), 512 * 1024);
        assert_eq!(parse_ram("100").unwrap(), 100);
        assert_eq!(parse_ram("1.5g").unwrap(), 1610612736);
        assert_eq!(parse_ram("64mb").unwrap(), 67108864);
        assert_eq!(parse_ram("64MiB").unwrap(), 67108864);
        assert!(parse_ram("abc").is_err());
        assert!(parse_ram("12x").is_err());
    }

    #[test]
    fn env_files() {
        let content = "# comment\n\nA=1\n  B=two words\nC\nD\nE=\n";
        let got = parse_env_file(content, |k| (k == "C").then(|| "fromenv".to_string())).unwrap();
        assert_eq!(got, vec!["A=1", "B=two words", "C=fromenv", "E="]);
        assert!(parse_env_file("BAD KEY=1\n", |_| None).is_err());
        assert!(parse_env_file("=1\n", |_| None).is_err());
        assert_eq!(expand_env("X", |_| Some("v".into())).unwrap(), "X=v");
        assert_eq!(expand_env("X", |_| None).unwrap(), "X");
        assert_eq!(expand_env("X=1=2", |_| None).unwrap(), "X=1=2");
    }

    #[test]
    fn publish_specs() {
        let p = parse_publish("8080:80").unwrap();
        assert_eq!(p[0].0, "80/tcp");
        assert_eq!(p[0].1.host_port.as_deref(), Some("8080"));
        assert_eq!(p[0].1.host_ip.as_deref(), Some(""));
        let p = parse_publish("127.0.0.1:53:53/udp").unwrap();
        assert_eq!(p[0].0, "53/udp");
        assert_eq!(p[0].1.host_ip.as_deref(), Some("127.0.0.1"));
        let p = parse_publish("80").unwrap();
        assert_eq!(p[0].1.host_port.as_deref(), Some(""));
        let p = parse_publish("8000-8001:80-81").unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(p[1].0, "81/tcp");
        assert_eq!(p[1].1.host_port.as_deref(), Some("8001"));
        let p = parse_publish("[::1]:8080:80").unwrap();
        assert_eq!(p[0].1.host_ip.as_deref(), Some("::1"));
        assert!(parse_publish("a:b").is_err());
        assert!(parse_publish("80/xyz").is_err());
    }

    #[test]
    fn volume_specs() {
        assert!(
            matches!(parse_volume("vol1:/data").unwrap(), VolumeSpec::Bind(b) if b == "vol1:/data")
        );
        assert!(matches!(
            parse_volume("/host:/data:ro").unwrap(),
            VolumeSpec::Bind(_)
        ));
        assert!(matches!(parse_volume("/data").unwrap(), VolumeSpec::Anonymous(p) if p == "/data"));
        assert!(parse_volume("data").is_err());
        assert!(parse_volume("a:b").is_err());
    }

    #[test]
    fn restart_and_ulimit() {
        let r = parse_restart("on-failure:3").unwrap();
        assert_eq!(r.name, Some(RestartPolicyNameEnum::ON_FAILURE));
        assert_eq!(r.maximum_retry_count, Some(3));
        assert!(parse_restart("always:3").is_err());
        assert!(parse_restart("sometimes").is_err());
        let u = parse_ulimit("nofile=1024:2048").unwrap();
        assert_eq!((u.soft, u.hard), (Some(1024), Some(2048)));
        assert!(parse_ulimit("nofile=10:5").is_err());
    }

    #[test]
    fn durations_and_timestamps() {
        use berth_api::query::go_duration_secs as parse_go_duration;
        assert_eq!(parse_go_duration("10m"), Some(600.0));
        assert_eq!(parse_go_duration("1h30m"), Some(5400.0));
        assert_eq!(parse_go_duration("1.5s"), Some(1.5));
        assert_eq!(parse_go_duration("x"), None);
        assert_eq!(parse_timestamp("10m", 1000).unwrap(), "400");
        assert_eq!(parse_timestamp("1795451608", 0).unwrap(), "1795451608");
        assert_eq!(
            parse_timestamp("2013-01-02T13:23:37Z", 0).unwrap(),
            "1357133017"
        );
        assert_eq!(parse_timestamp("2013-01-02", 0).unwrap(), "1357084800");
        assert!(parse_timestamp("yesterday", 0).is_err());
    }

    #[test]
    fn references() {
        let r = Reference::parse("busybox").unwrap();
        assert_eq!(r.full_name(), "docker.io/library/busybox");
        assert_eq!(r.with_default_tag(), "busybox:latest");
        assert_eq!(r.auth_key(), "https://index.docker.io/v1/");
        let r = Reference::parse("127.0.0.1:5000/myapp:1.0").unwrap();
        assert_eq!(r.full_name(), "127.0.0.1:5000/myapp");
        assert_eq!(r.tag.as_deref(), Some("1.0"));
        assert_eq!(r.auth_key(), "127.0.0.1:5000");
        let r = Reference::parse("localhost:5000/a/b").unwrap();
        assert_eq!(
            (r.domain.as_str(), r.path.as_str(), r.tag.as_deref()),
            ("localhost:5000", "a/b", None)
        );
        let r = Reference::parse("myrepo/bb:v1").unwrap();
        assert_eq!(r.full_name(), "docker.io/myrepo/bb");
        assert_eq!(r.familiar_name(), "myrepo/bb");
        let r = Reference::parse("busybox@sha256:abcd").unwrap();
        assert_eq!(r.digest.as_deref(), Some("sha256:abcd"));
        assert!(Reference::parse("BusyBox").is_err());
    }

    #[test]
    fn an_unknown_flag_before_the_image_is_refused_not_taken_for_the_image() {
        let parse = |args: &[&str]| match Cli::try_parse_from([&["berth", "run"], args].concat()).unwrap().cmd {
            Cmd::Run(r) => create_body(&r.opts, r.detach, None),
            _ => unreachable!(),
        };
        let e = parse(&["--bogus=1", "busybox"]).unwrap_err();
        assert_eq!(e.to_string(), "unknown flag: --bogus");
        // after the image, hyphenated words are the command's
        let (b, _) = parse(&["busybox", "ls", "-la", "--color"]).unwrap();
        assert_eq!(b.cmd.unwrap(), ["ls", "-la", "--color"]);
    }

    fn body_for(args: &[&str]) -> (ContainerCreateBody, Option<String>) {
        let mut v = vec!["berth", "run"];
        v.extend_from_slice(args);
        match Cli::try_parse_from(v).unwrap().cmd {
            Cmd::Run(r) => create_body(&r.opts, r.detach, Some((30, 100))).unwrap(),
            _ => unreachable!(),
        }
    }

    #[test]
    fn create_body_matches_docker() {
        let (b, name) = body_for(&[
            "-d",
            "--name",
            "web",
            "-p",
            "8080:80",
            "-e",
            "A=1",
            "-v",
            "vol1:/data",
            "-m",
            "64m",
            "--cpus",
            "0.5",
            "--restart",
            "on-failure",
            "busybox",
            "sleep",
            "1000",
        ]);
        assert_eq!(name.as_deref(), Some("web"));
        let v = serde_json::to_value(&b).unwrap();
        assert_eq!(v["ExposedPorts"], serde_json::json!({"80/tcp": {}}));
        assert_eq!(v["Env"], serde_json::json!(["A=1"]));
        assert_eq!(v["Cmd"], serde_json::json!(["sleep", "1000"]));
        assert_eq!(v["Image"], "busybox");
        assert_eq!(v["AttachStdout"], false);
        let hc = &v["HostConfig"];
        assert_eq!(hc["Binds"], serde_json::json!(["vol1:/data"]));
        assert_eq!(
            hc["PortBindings"],
            serde_json::json!({"80/tcp": [{"HostIp": "", "HostPort": "8080"}]})
        );
        assert_eq!(
            hc["RestartPolicy"],
            serde_json::json!({"Name": "on-failure", "MaximumRetryCount": 0})
        );
        assert_eq!(hc["Memory"], 67108864);
        assert_eq!(hc["NanoCpus"], 500000000);
        assert_eq!(hc["NetworkMode"], "default");
        assert_eq!(hc["MemorySwappiness"], -1);
        assert_eq!(hc["ConsoleSize"], serde_json::json!([0, 0]));
        assert!(v["NetworkingConfig"]["EndpointsConfig"]["default"].is_object());
    }

    #[test]
    fn create_body_interactive_tty() {
        let (b, _) = body_for(&[
            "-it",
            "--rm",
            "--network",
            "n1",
            "--network-alias",
            "web-alias",
            "--entrypoint",
            "/bin/sh",
            "-u",
            "1000:1000",
            "-w",
            "/tmp",
            "-l",
            "a=b",
            "--tmpfs",
            "/run:size=1m",
            "--ulimit",
            "nofile=10:20",
            "--read-only",
            "--cap-add",
            "NET_ADMIN",
            "-v",
            "/anon",
            "busybox",
        ]);
        let v = serde_json::to_value(&b).unwrap();
        assert_eq!(v["Tty"], true);
        assert_eq!(v["OpenStdin"], true);
        assert_eq!(v["StdinOnce"], true);
        assert_eq!(v["AttachStdin"], true);
        assert_eq!(v["Entrypoint"], serde_json::json!(["/bin/sh"]));
        assert!(v.get("Cmd").is_none() || v["Cmd"].is_null());
        assert_eq!(v["User"], "1000:1000");
        assert_eq!(v["WorkingDir"], "/tmp");
        assert_eq!(v["Labels"], serde_json::json!({"a": "b"}));
        assert_eq!(v["Volumes"], serde_json::json!({"/anon": {}}));
        let hc = &v["HostConfig"];
        assert_eq!(hc["AutoRemove"], true);
        assert_eq!(hc["NetworkMode"], "n1");
        assert_eq!(hc["ConsoleSize"], serde_json::json!([30, 100]));
        assert_eq!(hc["Tmpfs"], serde_json::json!({"/run": "size=1m"}));
        assert_eq!(
            hc["Ulimits"],
            serde_json::json!([{"Name": "nofile", "Soft": 10, "Hard": 20}])
        );
        assert_eq!(hc["ReadonlyRootfs"], true);
        assert_eq!(hc["CapAdd"], serde_json::json!(["NET_ADMIN"]));
        assert_eq!(
            v["NetworkingConfig"]["EndpointsConfig"]["n1"]["Aliases"],
            serde_json::json!(["web-alias"])
        );
    }
}
