//! `GET /containers/{id}/json` and `GET /containers/json`.

use std::collections::HashMap;

use berth_api::models::{
    ContainerInspectResponse, ContainerState, ContainerStateStatusEnum, ContainerSummary, ContainerSummaryHostConfig,
    ContainerSummaryNetworkSettings, ContainerSummaryStateEnum, DriverData, EndpointIpamConfig, EndpointSettings,
    NetworkSettings, PortBinding, PortSummary, PortSummaryTypeEnum,
};
use berth_api::query::Filters;
use berth_errdefs::{Error, Result};

use super::{Container, Paths, Record, Status, ZERO_TIME};
use crate::Daemon;

/// Docker's `units.HumanDuration`.
pub fn human_duration(secs: i64) -> String {
    let s = secs.max(0);
    match s {
        0 => "Less than a second".into(),
        1 => "1 second".into(),
        2..=59 => format!("{s} seconds"),
        60..=119 => "About a minute".into(),
        120..=3599 => format!("{} minutes", s / 60),
        3600..=7199 => "About an hour".into(),
        7200..=172_799 => format!("{} hours", s / 3600),
        172_800..=1_209_599 => format!("{} days", s / 86_400),
        1_209_600..=5_183_999 => format!("{} weeks", s / 604_800),
        5_184_000..=63_071_999 => format!("{} months", s / 2_592_000),
        _ => format!("{} years", s / 31_536_000),
    }
}

fn since(t: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(t).map(|t| (chrono::Utc::now().timestamp() - t.timestamp()).max(0)).unwrap_or(0)
}

/// The `Status` column of `docker ps`.
pub fn status_text(r: &Record) -> String {
    match r.state.status {
        Status::Created => "Created".into(),
        Status::Running => {
            let up = format!("Up {}", human_duration(since(&r.state.started_at)));
            match super::health::status(r) {
                "none" => up,
                super::health::STARTING => format!("{up} (health: starting)"),
                h => format!("{up} ({h})"),
            }
        }
        Status::Paused => format!("Up {} (Paused)", human_duration(since(&r.state.started_at))),
        Status::Restarting => format!("Restarting ({}) {} ago", r.state.exit_code, human_duration(since(&r.state.finished_at))),
        Status::Removing => "Removal In Progress".into(),
        Status::Exited => {
            format!("Exited ({}) {} ago", r.state.exit_code, human_duration(since(&r.state.finished_at)))
        }
        Status::Dead => "Dead".into(),
    }
}

fn state_enum(s: Status) -> ContainerStateStatusEnum {
    match s {
        Status::Created => ContainerStateStatusEnum::CREATED,
        Status::Running => ContainerStateStatusEnum::RUNNING,
        Status::Paused => ContainerStateStatusEnum::PAUSED,
        Status::Restarting => ContainerStateStatusEnum::RESTARTING,
        Status::Removing => ContainerStateStatusEnum::REMOVING,
        Status::Exited => ContainerStateStatusEnum::EXITED,
        Status::Dead => ContainerStateStatusEnum::DEAD,
    }
}

fn summary_state(s: Status) -> ContainerSummaryStateEnum {
    match s {
        Status::Created => ContainerSummaryStateEnum::CREATED,
        Status::Running => ContainerSummaryStateEnum::RUNNING,
        Status::Paused => ContainerSummaryStateEnum::PAUSED,
        Status::Restarting => ContainerSummaryStateEnum::RESTARTING,
        Status::Removing => ContainerSummaryStateEnum::REMOVING,
        Status::Exited => ContainerSummaryStateEnum::EXITED,
        Status::Dead => ContainerSummaryStateEnum::DEAD,
    }
}

fn network_name(r: &Record) -> String {
    super::net::mode(&r.host_config).to_owned()
}

/// `NetworkSettings.Networks`: one entry per network the container is on (`host` or
/// `none` for those modes), with its addresses while it runs.
fn networks(r: &Record) -> HashMap<String, EndpointSettings> {
    let mut m = HashMap::new();
    if r.endpoints.is_empty() {
        let mode = network_name(r);
        // The mode's network without an endpoint: host or none, or a network a created
        // container gets at its first start; once started, a container without
        // endpoints was disconnected from them all, and dockerd lists none.
        let listed = !super::net::network_disabled(r)
            && (matches!(mode.as_str(), "host" | "none") || (r.state.started_at.is_empty() && !r.mode_network_left));
        if listed && !mode.starts_with("container:") {
            // every key dockerd writes, zero (clients index them: docker-py's
            // `['IPAddress']`)
            let zero = EndpointSettings {
                network_id: Some(String::new()),
                endpoint_id: Some(String::new()),
                gateway: Some(String::new()),
                ip_address: Some(String::new()),
                ip_prefix_len: Some(0),
                ipv6_gateway: Some(String::new()),
                global_ipv6_address: Some(String::new()),
                global_ipv6_prefix_len: Some(0),
                mac_address: Some(String::new()),
                ..Default::default()
            };
            m.insert(mode, zero);
        }
        return m;
    }
    let started = !r.state.started_at.is_empty();
    for (i, ep) in r.endpoints.iter().enumerate() {
        let ip = |v: Option<std::net::IpAddr>| v.map(|a| a.to_string()).unwrap_or_default();
        // Docker adds the short id and the hostname as aliases on user-defined
        // networks when it connects the container there, at its first start (compose
        // 1.29 reconnects a created container's networks, with their link-local
        // addresses, when the short id is missing).
        let aliases = if (ep.network != "bridge" || i > 0) && started {
            super::net::connected_aliases(r, ep)
        } else {
            ep.aliases.clone()
        };
        let ipam = (ep.want_ipv4.is_some() || ep.want_ipv6.is_some() || !ep.link_local.is_empty()).then(|| EndpointIpamConfig {
            ipv4_address: ep.want_ipv4.map(|a| a.to_string()),
            ipv6_address: ep.want_ipv6.map(|a| a.to_string()),
            link_local_ips: (!ep.link_local.is_empty()).then(|| ep.link_local.iter().map(|a| a.to_string()).collect()),
        });
        m.insert(
            ep.network.clone(),
            EndpointSettings {
                ipam_config: ipam,
                links: (!ep.links.is_empty()).then(|| ep.links.clone()),
                // none asked for and not started yet: null, as Go writes a nil slice
                aliases: (ep.network != "bridge" && !aliases.is_empty()).then_some(aliases),
                network_id: Some(ep.network_id.clone()),
                endpoint_id: Some(ep.endpoint_id.clone()),
                gateway: Some(ip(ep.gateway4)),
                ip_address: Some(ip(ep.ipv4)),
                ip_prefix_len: Some(ep.prefix4 as i64),
                ipv6_gateway: Some(ip(ep.gateway6)),
                global_ipv6_address: Some(ip(ep.ipv6)),
                global_ipv6_prefix_len: Some(ep.prefix6 as i64),
                // What the client asked for until the start assigns it (dockerd shows
                // the requested address of a container not running).
                mac_address: Some(if ep.mac.is_empty() { ep.want_mac.clone().unwrap_or_default() } else { ep.mac.clone() }),
                driver_opts: None,
                ..Default::default()
            },
        );
    }
    m
}

/// `NetworkSettings.Ports`: each exposed or published port, with its host bindings
/// while the container runs (`null` for one exposed only).
fn port_map(r: &Record) -> HashMap<String, Option<Vec<PortBinding>>> {
    let mut m: HashMap<String, Option<Vec<PortBinding>>> = HashMap::new();
    if !r.state.status.is_live() {
        return m;
    }
    for k in r.config.exposed_ports.iter().flatten() {
        let k = if k.contains('/') { k.clone() } else { format!("{k}/tcp") };
        m.entry(k).or_insert(None);
    }
    for b in &r.ports {
        let k = format!("{}/{}", b.container_port, b.proto.as_str());
        let host_ip = b.host_ip.map(|i| i.to_string()).unwrap_or_else(|| "0.0.0.0".into());
        m.entry(k)
            .or_insert(None)
            .get_or_insert_with(Vec::new)
            .push(PortBinding { host_ip: Some(host_ip), host_port: Some(b.host_port.to_string()) });
    }
    m
}

/// `ps` rows' `Ports`.
fn port_summaries(r: &Record) -> Vec<PortSummary> {
    let typ = |p: &str| match p {
        "udp" => PortSummaryTypeEnum::UDP,
        "sctp" => PortSummaryTypeEnum::SCTP,
        _ => PortSummaryTypeEnum::TCP,
    };
    let mut out = Vec::new();
    if !r.state.status.is_live() {
        return out;
    }
    for b in &r.ports {
        out.push(PortSummary {
            ip: Some(b.host_ip.map(|i| i.to_string()).unwrap_or_else(|| "0.0.0.0".into())),
            private_port: b.container_port,
            public_port: Some(b.host_port),
            typ: Some(typ(b.proto.as_str())),
        });
    }
    for k in r.config.exposed_ports.iter().flatten() {
        let (p, proto) = k.split_once('/').unwrap_or((k, "tcp"));
        let Ok(p) = p.parse::<u16>() else { continue };
        if !r.ports.iter().any(|b| b.container_port == p && b.proto.as_str() == proto) {
            out.push(PortSummary { ip: None, private_port: p, public_port: None, typ: Some(typ(proto)) });
        }
    }
    out
}

/// The inspect document as JSON, with API 1.41's top-level network fields (the
/// default bridge endpoint's, as dockerd fills them) that newer API types dropped.
pub fn inspect_json(d: &Daemon, c: &Container) -> serde_json::Value {
    let r = c.record();
    let mut v = serde_json::to_value(inspect(d, c)).unwrap_or_default();
    let ep = r.endpoints.iter().find(|e| e.network == "bridge" && e.is_active());
    let ip = |v: Option<std::net::IpAddr>| v.map(|a| a.to_string()).unwrap_or_default();
    if let Some(ns) = v.get_mut("NetworkSettings").and_then(|n| n.as_object_mut()) {
        let set = |ns: &mut serde_json::Map<String, serde_json::Value>, k: &str, val: serde_json::Value| {
            ns.insert(k.to_owned(), val);
        };
        set(ns, "Bridge", "".into());
        set(ns, "HairpinMode", false.into());
        set(ns, "LinkLocalIPv6Address", "".into());
        set(ns, "LinkLocalIPv6PrefixLen", 0.into());
        set(ns, "SecondaryIPAddresses", serde_json::Value::Null);
        set(ns, "SecondaryIPv6Addresses", serde_json::Value::Null);
        set(ns, "EndpointID", ep.map(|e| e.endpoint_id.clone()).unwrap_or_default().into());
        set(ns, "Gateway", ip(ep.and_then(|e| e.gateway4)).into());
        set(ns, "GlobalIPv6Address", ip(ep.and_then(|e| e.ipv6)).into());
        set(ns, "GlobalIPv6PrefixLen", ep.map(|e| e.prefix6).unwrap_or(0).into());
        set(ns, "IPAddress", ip(ep.and_then(|e| e.ipv4)).into());
        set(ns, "IPPrefixLen", ep.map(|e| e.prefix4).unwrap_or(0).into());
        set(ns, "IPv6Gateway", ip(ep.and_then(|e| e.gateway6)).into());
        set(ns, "MacAddress", ep.map(|e| e.mac.clone()).unwrap_or_default().into());
    }
    // API 1.41's MAC address in the container config, shown there as given.
    if let Some(mac) = r.config_mac.clone() {
        if let Some(cfg) = v.get_mut("Config").and_then(|c| c.as_object_mut()) {
            cfg.insert("MacAddress".into(), mac.into());
        }
    }
    fill_zero_fields(&mut v);
    v
}

/// The fields of a container config (a container's or an image's `Config` and
/// `ContainerConfig`) that dockerd 20.10 always writes, with their zero values.
pub fn fill_config_zero_fields(o: &mut serde_json::Map<String, serde_json::Value>) {
    use serde_json::{json, Value};
    let null = Value::Null;
    let config = [
        ("Hostname", json!("")),
        ("Domainname", json!("")),
        ("User", json!("")),
        ("AttachStdin", json!(false)),
        ("AttachStdout", json!(false)),
        ("AttachStderr", json!(false)),
        ("Tty", json!(false)),
        ("OpenStdin", json!(false)),
        ("StdinOnce", json!(false)),
        ("Env", null.clone()),
        ("Cmd", null.clone()),
        ("Image", json!("")),
        ("Volumes", null.clone()),
        ("WorkingDir", json!("")),
        ("Entrypoint", null.clone()),
        ("OnBuild", null.clone()),
        ("Labels", null.clone()),
    ];
    for (k, zero) in &config {
        o.entry(*k).or_insert_with(|| zero.clone());
    }
}

/// dockerd 20.10 writes every field of a container's `Config` and `HostConfig` that
/// Go's JSON does not omit when empty, with its zero value (`null` for an unset list
/// or map); berth's records keep what the client sent. Clients that index the
/// document (docker-py's `attrs["HostConfig"]["CapAdd"]`) find every key, as with dockerd.
fn fill_zero_fields(v: &mut serde_json::Value) {
    use serde_json::{json, Value};
    let null = Value::Null;
    let host_config = [
        ("Binds", null.clone()),
        ("ContainerIDFile", json!("")),
        ("PortBindings", null.clone()),
        ("AutoRemove", json!(false)),
        ("VolumeDriver", json!("")),
        ("VolumesFrom", null.clone()),
        ("CapAdd", null.clone()),
        ("CapDrop", null.clone()),
        ("Dns", null.clone()),
        ("DnsOptions", null.clone()),
        ("DnsSearch", null.clone()),
        ("ExtraHosts", null.clone()),
        ("GroupAdd", null.clone()),
        ("Cgroup", json!("")),
        ("Links", null.clone()),
        ("OomScoreAdj", json!(0)),
        ("PidMode", json!("")),
        ("Privileged", json!(false)),
        ("PublishAllPorts", json!(false)),
        ("ReadonlyRootfs", json!(false)),
        ("SecurityOpt", null.clone()),
        ("UTSMode", json!("")),
        ("UsernsMode", json!("")),
        ("ConsoleSize", json!([0, 0])),
        ("Isolation", json!("")),
        ("CpuShares", json!(0)),
        ("Memory", json!(0)),
        ("NanoCpus", json!(0)),
        ("CgroupParent", json!("")),
        ("BlkioWeight", json!(0)),
        ("BlkioWeightDevice", null.clone()),
        ("BlkioDeviceReadBps", null.clone()),
        ("BlkioDeviceWriteBps", null.clone()),
        ("BlkioDeviceReadIOps", null.clone()),
        ("BlkioDeviceWriteIOps", null.clone()),
        ("CpuPeriod", json!(0)),
        ("CpuQuota", json!(0)),
        ("CpuRealtimePeriod", json!(0)),
        ("CpuRealtimeRuntime", json!(0)),
        ("CpusetCpus", json!("")),
        ("CpusetMems", json!("")),
        ("Devices", null.clone()),
        ("DeviceCgroupRules", null.clone()),
        ("DeviceRequests", null.clone()),
        ("KernelMemory", json!(0)),
        ("KernelMemoryTCP", json!(0)),
        ("MemoryReservation", json!(0)),
        ("MemorySwap", json!(0)),
        ("MemorySwappiness", null.clone()),
        ("OomKillDisable", json!(false)),
        ("PidsLimit", null.clone()),
        ("Ulimits", null.clone()),
        ("CpuCount", json!(0)),
        ("CpuPercent", json!(0)),
        ("IOMaximumIOps", json!(0)),
        ("IOMaximumBandwidth", json!(0)),
        ("MaskedPaths", null.clone()),
        ("ReadonlyPaths", null.clone()),
    ];
    if let Some(o) = v.get_mut("Config").and_then(Value::as_object_mut) {
        fill_config_zero_fields(o);
    }
    if let Some(o) = v.get_mut("HostConfig").and_then(Value::as_object_mut) {
        for (k, zero) in &host_config {
            o.entry(*k).or_insert_with(|| zero.clone());
        }
    }
    if let Some(o) = v.as_object_mut() {
        o.entry("ExecIDs").or_insert(Value::Null);
    }
    // Each network's settings with every key dockerd writes (null when unset).
    if let Some(nets) = v.pointer_mut("/NetworkSettings/Networks").and_then(Value::as_object_mut) {
        for ep in nets.values_mut().filter_map(Value::as_object_mut) {
            for k in ["IPAMConfig", "Links", "Aliases", "DriverOpts"] {
                ep.entry(k).or_insert(Value::Null);
            }
        }
    }
}

/// `Mounts` as dockerd shows them (inspect and `ps`): binds, volumes and `--mount`
/// tmpfs; not `--tmpfs` (`HostConfig.Tmpfs`), which dockerd keeps out of its mount
/// points.
pub fn mounts(d: &Daemon, r: &Record) -> Vec<berth_api::models::MountPoint> {
    use berth_volume::Kind;
    let points = match &r.mount_points {
        Some(p) => p.clone(),
        None => super::start::mount_points(&r.host_config).unwrap_or_default(),
    };
    let legacy_tmpfs = |m: &berth_volume::MountPoint| {
        m.kind == Kind::Tmpfs && r.host_config.tmpfs.as_ref().is_some_and(|t| t.contains_key(&m.destination))
    };
    points
        .iter()
        .filter(|m| !legacy_tmpfs(m))
        .map(|m| berth_api::models::MountPoint {
            typ: Some(m.kind.as_str().to_owned()),
            name: (m.kind == Kind::Volume).then(|| m.name.clone()),
            source: Some(match m.kind {
                Kind::Bind => m.source.clone(),
                Kind::Volume => d.volumes.path(&m.name).display().to_string(),
                Kind::Tmpfs => String::new(),
            }),
            destination: Some(m.destination.clone()),
            driver: (m.kind == Kind::Volume).then(|| "local".to_owned()),
            mode: Some(m.mode.clone()),
            rw: Some(m.rw),
            propagation: Some(if m.kind == Kind::Bind { m.propagation.clone() } else { String::new() }),
        })
        .collect()
}

fn or_zero(t: &str) -> String {
    if t.is_empty() {
        ZERO_TIME.into()
    } else {
        t.to_owned()
    }
}

/// Full inspect document of a container.
pub fn inspect(d: &Daemon, c: &Container) -> ContainerInspectResponse {
    let r = c.record();
    let paths = Paths::new(d, &r.id);
    let etc = paths.etc_files(r.ephemeral());
    let s = r.state.status;
    let created = chrono::DateTime::parse_from_rfc3339(&r.created).ok().map(|t| t.with_timezone(&chrono::Utc));
    let mut graph = HashMap::new();
    graph.insert("UpperDir".to_owned(), d.snap.upper_dir(&r.id).display().to_string());
    graph.insert("MergedDir".to_owned(), paths.rootfs().display().to_string());
    ContainerInspectResponse {
        id: Some(r.id.clone()),
        created,
        path: Some(r.path.clone()),
        args: Some(r.args.clone()),
        state: Some(ContainerState {
            status: Some(state_enum(s)),
            running: Some(s.is_live() || s == Status::Restarting),
            paused: Some(s == Status::Paused),
            restarting: Some(s == Status::Restarting),
            oom_killed: Some(r.state.oom_killed),
            dead: Some(s == Status::Dead),
            pid: Some(r.state.pid as i64),
            exit_code: Some(r.state.exit_code),
            error: Some(r.state.error.clone()),
            started_at: Some(or_zero(&r.state.started_at)),
            finished_at: Some(or_zero(&r.state.finished_at)),
            health: r.state.health.as_ref().filter(|_| super::health::status(&r) != "none").map(super::health::to_api),
        }),
        image: Some(r.image_id.clone()),
        resolv_conf_path: Some(etc.resolv_conf.display().to_string()),
        hostname_path: Some(etc.hostname.display().to_string()),
        hosts_path: Some(etc.hosts.display().to_string()),
        log_path: Some(paths.log(&r.id).display().to_string()),
        name: Some(format!("/{}", r.name)),
        restart_count: Some(r.restart_count),
        driver: Some("overlay2".into()),
        platform: Some("linux".into()),
        mount_label: Some(String::new()),
        process_label: Some(String::new()),
        // as dockerd records it: the container's `apparmor=` option
        app_armor_profile: Some(
            r.host_config
                .security_opt
                .iter()
                .flatten()
                .find_map(|o| o.strip_prefix("apparmor=").or_else(|| o.strip_prefix("apparmor:")))
                .unwrap_or_default()
                .to_owned(),
        ),
        exec_ids: {
            let ids = d.execs.of_container(&r.id);
            if ids.is_empty() {
                None
            } else {
                Some(ids)
            }
        },
        host_config: Some(r.host_config.clone()),
        graph_driver: Some(DriverData { name: "overlay2".into(), data: graph }),
        mounts: Some(mounts(d, &r)),
        config: Some(r.config.clone()),
        network_settings: Some(NetworkSettings {
            sandbox_id: Some(String::new()),
            sandbox_key: Some(if s.is_live() { Paths::netns(d, &r.id).display().to_string() } else { String::new() }),
            ports: Some(port_map(&r)),
            networks: Some(networks(&r)),
        }),
        ..Default::default()
    }
}

/// The list's `Command` as dockerd writes it: the path, then each argument, one that
/// holds a space in single quotes.
fn command_line(r: &Record) -> String {
    let mut parts = vec![r.path.clone()];
    parts.extend(r.args.iter().map(|a| if a.contains(' ') { format!("'{a}'") } else { a.clone() }));
    parts.join(" ")
}

/// The `docker ps` row of a container.
pub fn summary(d: &Daemon, r: &Record) -> ContainerSummary {
    let created = chrono::DateTime::parse_from_rfc3339(&r.created).map(|t| t.timestamp()).unwrap_or(0);
    ContainerSummary {
        id: Some(r.id.clone()),
        names: Some(vec![format!("/{}", r.name)]),
        image: Some(r.image.clone()),
        image_id: Some(r.image_id.clone()),
        command: Some(command_line(r)),
        created: Some(created),
        ports: Some(port_summaries(r)),
        labels: Some(r.config.labels.clone().unwrap_or_default()),
        state: Some(summary_state(r.state.status)),
        status: Some(status_text(r)),
        host_config: Some(ContainerSummaryHostConfig {
            network_mode: Some(r.host_config.network_mode.clone().unwrap_or_else(|| "default".into())),
            annotations: None,
        }),
        network_settings: Some(ContainerSummaryNetworkSettings { networks: Some(networks(r)) }),
        mounts: Some(mounts(d, r)),
        ..Default::default()
    }
}

/// The `docker ps` filters, checked and resolved once per listing (moby's
/// `foldFilter`): bad values are a 400 before any container is looked at.
struct ListFilter<'a> {
    f: &'a Filters,
    exited: Vec<i64>,
    /// `ancestor`: the named images and every image built on them.
    ancestors: Option<std::collections::HashSet<String>>,
    before: Option<String>,
    since: Option<String>,
    is_task: Option<bool>,
    publish: Vec<(u16, u16, String)>,
    expose: Vec<(u16, u16, String)>,
}

const STATES: [&str; 7] = ["created", "running", "paused", "restarting", "removing", "exited", "dead"];
const HEALTH: [&str; 4] = ["starting", "healthy", "unhealthy", "none"];

/// A `publish`/`expose` value: `port[-port][/proto]`.
fn port_filter(key: &str, v: &str) -> Result<(u16, u16, String)> {
    if v.contains(':') {
        return Err(Error::invalid(format!("filter for '{key}' should not contain ':': {v}")));
    }
    let (ports, proto) = v.split_once('/').unwrap_or((v, "tcp"));
    let bad = || Error::invalid(format!("error while looking up for {key} {v}: invalid port range"));
    let (a, b) = ports.split_once('-').unwrap_or((ports, ports));
    let (a, b): (u16, u16) = (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?);
    if a > b {
        return Err(bad());
    }
    Ok((a, b, proto.to_ascii_lowercase()))
}

/// A container named in `before`/`since`, by id, name or id prefix.
fn container_ref(d: &Daemon, v: &str) -> Result<String> {
    d.containers.get(v).map(|c| c.id.clone())
}

impl<'a> ListFilter<'a> {
    fn new(d: &Daemon, f: &'a Filters) -> Result<ListFilter<'a>> {
        f.validate(&[
            "status", "name", "id", "label", "label!", "exited", "ancestor", "before", "since", "network", "volume",
            "health", "is-task", "publish", "expose", "isolation",
        ])?;
        f.validate_values("status", &STATES)?;
        for h in f.get("health") {
            if !HEALTH.contains(&h.as_str()) {
                return Err(Error::invalid(format!("Unrecognised filter value for health: {h}")));
            }
        }
        let exited = f
            .get("exited")
            .iter()
            .map(|e| e.parse::<i64>().map_err(|_| berth_api::query::invalid_filter("exited", e)))
            .collect::<Result<Vec<_>>>()?;
        let ancestors = if f.get("ancestor").is_empty() {
            None
        } else {
            let children = d.images.children()?;
            let mut set = std::collections::HashSet::new();
            for a in f.get("ancestor") {
                let Ok(img) = d.images.resolve(a) else { continue };
                let mut todo = vec![img.id];
                while let Some(id) = todo.pop() {
                    if let Some(kids) = children.get(&id) {
                        todo.extend(kids.iter().cloned());
                    }
                    set.insert(id);
                }
            }
            Some(set)
        };
        let one = |k: &str| f.get(k).last().map(|v| container_ref(d, v)).transpose();
        let ports = |k: &str| f.get(k).iter().map(|v| port_filter(k, v)).collect::<Result<Vec<_>>>();
        Ok(ListFilter {
            f,
            exited,
            ancestors,
            before: one("before")?,
            since: one("since")?,
            is_task: f.bool_value("is-task")?,
            publish: ports("publish")?,
            expose: ports("expose")?,
        })
    }

    fn matches(&self, r: &Record) -> bool {
        let f = self.f;
        let any = |k: &str, p: &dyn Fn(&String) -> bool| f.get(k).is_empty() || f.get(k).iter().any(p);
        let labels = r.config.labels.as_ref();
        let label = |k: &str| labels.and_then(|l| l.get(k)).map(String::as_str);
        let ports_match = |want: &[(u16, u16, String)], have: &[(u16, String)]| {
            want.is_empty() || want.iter().any(|(a, b, proto)| have.iter().any(|(p, pr)| a <= p && p <= b && pr == proto))
        };
        any("status", &|s| s == r.state.status.as_str())
            && any("name", &|n| r.name.contains(n.trim_start_matches('/')))
            && any("id", &|i| r.id.starts_with(i.as_str()))
            && f.match_labels(label)
            && f.match_labels_not(label)
            && (self.exited.is_empty()
                || (!r.state.status.is_live()
                    && !r.state.started_at.is_empty()
                    && self.exited.contains(&r.state.exit_code)))
            && self.ancestors.as_ref().is_none_or(|a| a.contains(&r.image_id))
            && self.is_task != Some(true)
            && any("health", &|h| h == super::health::status(r))
            && any("isolation", &|i| i == "default" || i.is_empty())
            && any("network", &|n| networks(r).contains_key(n))
            && any("volume", &|v| mount_points(r).iter().any(|(src, dst)| src == v || dst == v))
            && ports_match(&self.publish, &published_ports(r))
            && ports_match(&self.expose, &exposed_ports(r))
    }
}

/// (volume name or source, destination) of a container's mounts, for the `volume`
/// filter.
fn mount_points(r: &Record) -> Vec<(String, String)> {
    let points = match &r.mount_points {
        Some(p) => p.clone(),
        None => super::start::mount_points(&r.host_config).unwrap_or_default(),
    };
    points
        .into_iter()
        .map(|m| (if m.kind == berth_volume::Kind::Volume { m.name } else { m.source }, m.destination))
        .collect()
}

fn port_keys<'k>(keys: impl Iterator<Item = &'k String>) -> Vec<(u16, String)> {
    keys.filter_map(|k| {
        let (p, proto) = k.split_once('/').unwrap_or((k.as_str(), "tcp"));
        Some((p.parse().ok()?, proto.to_owned()))
    })
    .collect()
}

fn published_ports(r: &Record) -> Vec<(u16, String)> {
    let mut out = Vec::new();
    for (k, binds) in r.host_config.port_bindings.iter().flatten() {
        let proto = k.split_once('/').map(|(_, p)| p).unwrap_or("tcp");
        for b in binds.iter().flatten() {
            if let Some(p) = b.host_port.as_deref().and_then(|p| p.parse().ok()) {
                out.push((p, proto.to_owned()));
            }
        }
    }
    out
}

fn exposed_ports(r: &Record) -> Vec<(u16, String)> {
    port_keys(r.config.exposed_ports.iter().flatten())
}

/// `GET /containers/json`: newest first; `before`/`since` cut the list at a container
/// as dockerd does.
/// `SizeRw` (what the container wrote: the bytes in its upper dir) and `SizeRootFs`
/// (that plus its image), as `?size=1` reports them.
pub fn sizes(d: &Daemon, r: &Record) -> (i64, i64) {
    let rw = berth_snapshot::dir_size(&d.snap.upper_dir(&r.id)) as i64;
    let image = d.images.get_for_container(&r.image_id).ok().flatten().map_or(0, |i| d.images.image_size(&i) as i64);
    (rw, rw + image)
}

pub fn list(d: &Daemon, all: bool, limit: Option<i64>, f: &Filters) -> Result<Vec<ContainerSummary>> {
    let lf = ListFilter::new(d, f)?;
    let mut cs = d.containers.all();
    let created: HashMap<String, String> = cs.iter().map(|c| (c.id.clone(), c.created())).collect();
    cs.sort_by(|a, b| created[&b.id].cmp(&created[&a.id]).then_with(|| b.id.cmp(&a.id)));
    let show_all = all || !f.get("status").is_empty() || limit.is_some_and(|l| l > 0);
    let mut before = lf.before.clone();
    let mut out = Vec::new();
    for c in cs {
        if let Some(b) = &before {
            if *b == c.id {
                before = None;
            }
            continue;
        }
        if lf.since.as_deref() == Some(c.id.as_str()) {
            break;
        }
        let s = c.summary_if(d, |r| (show_all || r.state.status.is_live()) && lf.matches(r));
        if let Some(s) = s {
            out.push(s);
            if limit.is_some_and(|l| l > 0 && out.len() as i64 >= l) {
                break;
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_durations_match_docker() {
        assert_eq!(human_duration(0), "Less than a second");
        assert_eq!(human_duration(1), "1 second");
        assert_eq!(human_duration(4), "4 seconds");
        assert_eq!(human_duration(90), "About a minute");
        assert_eq!(human_duration(600), "10 minutes");
        assert_eq!(human_duration(4000), "About an hour");
        assert_eq!(human_duration(3 * 3600), "3 hours");
        assert_eq!(human_duration(3 * 86400), "3 days");
    }
}
