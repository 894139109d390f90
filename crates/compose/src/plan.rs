//! From a loaded project to Docker Engine API requests, as Docker Compose v2 makes
//! them: resource names and `com.docker.compose.*` labels (so that berth compose,
//! Compose v2 and docker-compose 1.29 see each other's projects), the order services
//! start in, the config hash that decides what is recreated, and the create bodies of
//! networks, volumes and containers. Pure functions over the normalized project JSON
//! (`Project::to_json`); the CLI sends the requests.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

pub const LABEL_PROJECT: &str = "com.docker.compose.project";
pub const LABEL_SERVICE: &str = "com.docker.compose.service";
pub const LABEL_NUMBER: &str = "com.docker.compose.container-number";
pub const LABEL_ONEOFF: &str = "com.docker.compose.oneoff";
pub const LABEL_HASH: &str = "com.docker.compose.config-hash";
pub const LABEL_FILES: &str = "com.docker.compose.project.config_files";
pub const LABEL_WORKDIR: &str = "com.docker.compose.project.working_dir";
pub const LABEL_DEPENDS: &str = "com.docker.compose.depends_on";
pub const LABEL_IMAGE: &str = "com.docker.compose.image";
pub const LABEL_VERSION: &str = "com.docker.compose.version";
pub const LABEL_NETWORK: &str = "com.docker.compose.network";
pub const LABEL_VOLUME: &str = "com.docker.compose.volume";
/// The Compose version berth compose presents itself as in labels.
pub const COMPOSE_VERSION: &str = "2.40.3";

/// What a plan needs besides the project JSON.
#[derive(Debug, Clone)]
pub struct Context {
    pub project: String,
    pub working_dir: String,
    pub config_files: Vec<String>,
}

/// A plan error: what is wrong, naming the service or resource.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct PlanError(pub String);

type Result<T> = std::result::Result<T, PlanError>;

fn err<T>(m: impl Into<String>) -> Result<T> {
    Err(PlanError(m.into()))
}

pub fn services(p: &Value) -> Vec<String> {
    p["services"].as_object().map(|m| m.keys().cloned().collect()).unwrap_or_default()
}

/// The services a command acts on: the named ones (all when none), plus what they
/// depend on unless `no_deps`, in start order: each inner list can start together
/// once the ones before it are up.
pub fn start_order(p: &Value, selected: &[String], no_deps: bool) -> Result<Vec<Vec<String>>> {
    let all = services(p);
    for s in selected {
        if !all.contains(s) {
            return err(format!("no such service: {s}"));
        }
    }
    let mut wanted: BTreeSet<String> = if selected.is_empty() { all.iter().cloned().collect() } else { selected.iter().cloned().collect() };
    if !no_deps {
        let mut stack: Vec<String> = wanted.iter().cloned().collect();
        while let Some(s) = stack.pop() {
            for d in depends_on(p, &s).keys() {
                if !all.contains(d) {
                    return err(format!("service {s:?} depends on undefined service {d:?}"));
                }
                if wanted.insert(d.clone()) {
                    stack.push(d.clone());
                }
            }
        }
    }
    let mut levels = Vec::new();
    let mut done: BTreeSet<String> = BTreeSet::new();
    while done.len() < wanted.len() {
        let level: Vec<String> = wanted
            .iter()
            .filter(|s| !done.contains(*s))
            .filter(|s| depends_on(p, s).keys().all(|d| done.contains(d) || !wanted.contains(d)))
            .cloned()
            .collect();
        if level.is_empty() {
            return err("dependency cycle detected between services");
        }
        done.extend(level.iter().cloned());
        levels.push(level);
    }
    Ok(levels)
}

/// `depends_on` of a service: name → (condition, restart, required).
pub fn depends_on(p: &Value, service: &str) -> BTreeMap<String, (String, bool, bool)> {
    p["services"][service]["depends_on"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    let cond = v["condition"].as_str().unwrap_or("service_started").to_owned();
                    (k.clone(), (cond, v["restart"].as_bool().unwrap_or(false), v["required"].as_bool().unwrap_or(true)))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// How many containers a service runs (`scale`, `deploy.replicas`, default 1).
pub fn replicas(svc: &Value) -> usize {
    svc["scale"].as_u64().or_else(|| svc["deploy"]["replicas"].as_u64()).unwrap_or(1) as usize
}

/// The image a service runs: its `image`, or `<project>-<service>` for one that is
/// built without a name.
pub fn image_name(ctx: &Context, service: &str, svc: &Value) -> String {
    match svc["image"].as_str() {
        Some(i) if !i.is_empty() => i.to_owned(),
        _ => format!("{}-{service}", ctx.project),
    }
}

/// `<project>-<service>-<n>`, or the service's `container_name`.
pub fn container_name(ctx: &Context, service: &str, svc: &Value, number: usize) -> String {
    match svc["container_name"].as_str() {
        Some(n) if !n.is_empty() => n.to_owned(),
        _ => format!("{}-{service}-{number}", ctx.project),
    }
}

/// The config hash recorded on each container: a service whose hash changed is
/// recreated by `up`. What does not change the container (build, scale, replicas,
/// pull policy, profiles, dependencies' start conditions) is left out.
pub fn config_hash(svc: &Value) -> String {
    let mut s = svc.clone();
    if let Some(o) = s.as_object_mut() {
        for k in ["build", "pull_policy", "scale", "profiles", "develop", "depends_on"] {
            o.remove(k);
        }
        if let Some(d) = o.get_mut("deploy").and_then(Value::as_object_mut) {
            d.remove("replicas");
        }
    }
    hex(&Sha256::digest(canonical(&s).as_bytes()))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// JSON with object keys sorted (serde_json's maps are ordered by key already).
fn canonical(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

/// The labels Compose puts on a project's containers.
pub fn container_labels(ctx: &Context, service: &str, svc: &Value, number: usize, oneoff: bool) -> Map<String, Value> {
    let mut l = Map::new();
    if let Some(user) = svc["labels"].as_object() {
        l.extend(user.clone());
    }
    let deps: Vec<String> = depends_on_of(svc)
        .into_iter()
        .map(|(k, (cond, restart, _))| format!("{k}:{cond}:{restart}"))
        .collect();
    for (k, v) in [
        (LABEL_PROJECT, ctx.project.clone()),
        (LABEL_SERVICE, service.to_owned()),
        (LABEL_NUMBER, number.to_string()),
        (LABEL_ONEOFF, if oneoff { "True" } else { "False" }.to_owned()),
        (LABEL_HASH, config_hash(svc)),
        (LABEL_FILES, ctx.config_files.join(",")),
        (LABEL_WORKDIR, ctx.working_dir.clone()),
        (LABEL_DEPENDS, deps.join(",")),
        (LABEL_IMAGE, image_name(ctx, service, svc)),
        (LABEL_VERSION, COMPOSE_VERSION.to_owned()),
    ] {
        l.insert(k.to_owned(), Value::String(v));
    }
    l
}

fn depends_on_of(svc: &Value) -> BTreeMap<String, (String, bool, bool)> {
    let p = json!({"services": {"s": svc}});
    depends_on(&p, "s")
}

/// A network's Docker name, or `None` for the modes that are not networks.
pub fn network_name(p: &Value, key: &str) -> String {
    p["networks"][key]["name"].as_str().map(str::to_owned).unwrap_or_else(|| key.to_owned())
}

pub fn is_external(res: &Value) -> bool {
    res["external"].as_bool().unwrap_or(false)
}

/// `POST /networks/create` for a project network.
pub fn network_body(ctx: &Context, p: &Value, key: &str) -> Value {
    let n = &p["networks"][key];
    let mut labels = n["labels"].as_object().cloned().unwrap_or_default();
    labels.insert(LABEL_PROJECT.into(), json!(ctx.project));
    labels.insert(LABEL_NETWORK.into(), json!(key));
    labels.insert(LABEL_VERSION.into(), json!(COMPOSE_VERSION));
    let mut body = json!({
        "Name": network_name(p, key),
        "Driver": n["driver"].as_str().unwrap_or("bridge"),
        "Options": n["driver_opts"].clone(),
        "Internal": n["internal"].as_bool().unwrap_or(false),
        "Attachable": n["attachable"].as_bool().unwrap_or(false),
        "EnableIPv6": n["enable_ipv6"].as_bool().unwrap_or(false),
        "Labels": labels,
        "CheckDuplicate": true,
    });
    if let Some(ipam) = n["ipam"].as_object().filter(|m| !m.is_empty()) {
        let configs: Vec<Value> = ipam
            .get("config")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|c| {
                json!({
                    "Subnet": c["subnet"],
                    "IPRange": c["ip_range"],
                    "Gateway": c["gateway"],
                    "AuxiliaryAddresses": c["aux_addresses"],
                })
            })
            .collect();
        body["IPAM"] = json!({
            "Driver": ipam.get("driver").cloned().unwrap_or(json!("default")),
            "Config": configs,
            "Options": ipam.get("options").cloned().unwrap_or(Value::Null),
        });
    }
    strip_nulls(&mut body);
    body
}

/// `POST /volumes/create` for a project volume.
pub fn volume_body(ctx: &Context, p: &Value, key: &str) -> Value {
    let v = &p["volumes"][key];
    let mut labels = v["labels"].as_object().cloned().unwrap_or_default();
    labels.insert(LABEL_PROJECT.into(), json!(ctx.project));
    labels.insert(LABEL_VOLUME.into(), json!(key));
    labels.insert(LABEL_VERSION.into(), json!(COMPOSE_VERSION));
    let mut body = json!({
        "Name": volume_name(p, key),
        "Driver": v["driver"].as_str().unwrap_or("local"),
        "DriverOpts": v["driver_opts"].clone(),
        "Labels": labels,
    });
    strip_nulls(&mut body);
    body
}

pub fn volume_name(p: &Value, key: &str) -> String {
    p["volumes"][key]["name"].as_str().map(str::to_owned).unwrap_or_else(|| key.to_owned())
}

fn strip_nulls(v: &mut Value) {
    if let Some(o) = v.as_object_mut() {
        o.retain(|_, x| !x.is_null());
        for x in o.values_mut() {
            strip_nulls(x);
        }
    }
}

/// The service's networks in the order Compose connects them (priority, then name),
/// as (compose key, config).
pub fn service_networks(svc: &Value) -> Vec<(String, Value)> {
    let mut v: Vec<(String, Value)> = svc["networks"]
        .as_object()
        .map(|m| m.iter().map(|(k, c)| (k.clone(), c.clone())).collect())
        .unwrap_or_default();
    v.sort_by(|a, b| {
        let pa = a.1["priority"].as_i64().unwrap_or(0);
        let pb = b.1["priority"].as_i64().unwrap_or(0);
        pb.cmp(&pa).then_with(|| a.0.cmp(&b.0))
    });
    v
}

/// An endpoint's settings on a network: aliases (the service name first), static
/// addresses, MAC.
pub fn endpoint_config(service: &str, cfg: &Value, container: &str) -> Value {
    let mut aliases = vec![json!(container), json!(service)];
    for a in cfg["aliases"].as_array().into_iter().flatten() {
        if !aliases.contains(a) {
            aliases.push(a.clone());
        }
    }
    let mut ep = json!({ "Aliases": aliases });
    let v4 = cfg["ipv4_address"].as_str();
    let v6 = cfg["ipv6_address"].as_str();
    if v4.is_some() || v6.is_some() {
        ep["IPAMConfig"] = json!({ "IPv4Address": v4, "IPv6Address": v6 });
    }
    if let Some(m) = cfg["mac_address"].as_str() {
        ep["MacAddress"] = json!(m);
    }
    if let Some(l) = cfg["link_local_ips"].as_array() {
        ep["IPAMConfig"]["LinkLocalIPs"] = json!(l);
    }
    strip_nulls(&mut ep);
    ep
}

fn duration_ns(v: &Value) -> Option<i64> {
    // Normalized durations are Go duration strings ("1m30s") or nanoseconds.
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => go_duration_ns(s),
        _ => None,
    }
}

/// A Go duration string in nanoseconds.
pub fn go_duration_ns(s: &str) -> Option<i64> {
    let mut rest = s.trim();
    if rest.is_empty() {
        return None;
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let n = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let v: f64 = rest[..n].parse().ok()?;
        rest = &rest[n..];
        let u = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let mult = match &rest[..u] {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        total += v * mult;
        rest = &rest[u..];
    }
    Some(total as i64)
}

fn bytes(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => ram_bytes(s),
        _ => None,
    }
}

fn ram_bytes(s: &str) -> Option<i64> {
    let s = s.trim().to_ascii_lowercase();
    let split = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(s.len());
    let n: f64 = s[..split].parse().ok()?;
    let mult: f64 = match s[split..].trim_end_matches('b').trim_end_matches('i') {
        "" => 1.0,
        "k" => 1024.0,
        "m" => 1024.0 * 1024.0,
        "g" => 1024.0 * 1024.0 * 1024.0,
        "t" => 1024f64.powi(4),
        _ => return None,
    };
    Some((n * mult) as i64)
}

fn strings(v: &Value) -> Option<Vec<String>> {
    match v {
        Value::Array(a) => Some(a.iter().map(|x| x.as_str().map(str::to_owned).unwrap_or_else(|| x.to_string())).collect()),
        Value::String(s) => Some(vec![s.clone()]),
        _ => None,
    }
}

/// `environment` as `K=V` (a key without a value is left out, as Compose does when
/// the environment has no such variable).
pub fn env_list(svc: &Value) -> Vec<String> {
    svc["environment"]
        .as_object()
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| match v {
                    Value::Null => None,
                    Value::String(s) => Some(format!("{k}={s}")),
                    other => Some(format!("{k}={other}")),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// A container to create: its name, the create body, and the networks to connect
/// it to once created (name, endpoint settings).
pub type ContainerPlan = (String, Value, Vec<(String, Value)>);

/// Options for one container.
#[derive(Debug, Clone, Default)]
pub struct ContainerOptions {
    pub number: usize,
    pub oneoff: bool,
    /// `run`: replace the command and entrypoint, add environment and labels.
    pub command: Option<Vec<String>>,
    pub entrypoint: Option<Vec<String>>,
    pub extra_env: Vec<String>,
    /// `run` without `--service-ports`: no published ports.
    pub no_ports: bool,
    pub tty: Option<bool>,
    pub stdin_open: Option<bool>,
    pub user: Option<String>,
    pub workdir: Option<String>,
    pub extra_volumes: Vec<String>,
    pub name: Option<String>,
    pub auto_remove: bool,
}

/// A file Compose puts into a container before it starts: a secret or config whose
/// content is inline (`content:`) or comes from the environment (`environment:`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InjectedFile {
    /// Absolute path in the container.
    pub target: String,
    pub content: Vec<u8>,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
}

/// A service's secrets and configs as Compose (without swarm) provides them:
/// file-based ones as read-only bind mounts, the others as files copied in after
/// create. Targets default to `/run/secrets/<name>` and `/<name>`; a relative
/// secret target is under `/run/secrets`. `env`: the project's environment.
pub fn secrets_and_configs(p: &Value, service: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<(Vec<Value>, Vec<InjectedFile>)> {
    let svc = &p["services"][service];
    let (mut mounts, mut files) = (Vec::new(), Vec::new());
    for (kind, top, base) in [("secret", "secrets", "/run/secrets/"), ("config", "configs", "/")] {
        for r in svc[top].as_array().into_iter().flatten() {
            let (source, r) = match r {
                Value::String(s) => (s.clone(), json!({})),
                other => (other["source"].as_str().unwrap_or_default().to_owned(), other.clone()),
            };
            let def = &p[top][&source];
            if def.is_null() {
                return err(format!("service {service} refers to undefined {kind} {source}: invalid compose project"));
            }
            if def["external"].as_bool() == Some(true) {
                return err(format!("service {service}: external {kind} {source} needs a swarm, which berth compose does not use"));
            }
            let target = match r["target"].as_str().filter(|t| !t.is_empty()) {
                Some(t) if t.starts_with('/') => t.to_owned(),
                Some(t) => format!("{base}{t}"),
                None => format!("{base}{source}"),
            };
            let content = if let Some(f) = def["file"].as_str() {
                mounts.push(json!({"Type": "bind", "Source": f, "Target": target, "ReadOnly": true}));
                continue;
            } else if let Some(c) = def["content"].as_str() {
                c.as_bytes().to_vec()
            } else if let Some(var) = def["environment"].as_str() {
                env(var)
                    .ok_or_else(|| PlanError(format!("{kind} {source}: environment variable {var} is not set")))?
                    .into_bytes()
            } else {
                return err(format!("{kind} {source}: one of file, content or environment is needed"));
            };
            let num = |k: &str| r[k].as_str().and_then(|s| s.parse::<u64>().ok()).or_else(|| r[k].as_u64());
            files.push(InjectedFile {
                target,
                content,
                // Compose writes file modes as octal strings ("0400").
                mode: match &r["mode"] {
                    Value::String(m) => u32::from_str_radix(m.trim_start_matches("0o"), 8)
                        .map_err(|_| PlanError(format!("{kind} {source}: invalid mode {m:?}")))?,
                    m => m.as_u64().map_or(0o444, |m| m as u32),
                },
                uid: num("uid").unwrap_or(0),
                gid: num("gid").unwrap_or(0),
            });
        }
    }
    Ok((mounts, files))
}

/// The body of `POST /containers/create` for a service's container, and the other
/// networks to connect it to once created (name → endpoint settings).
pub fn container_body(ctx: &Context, p: &Value, service: &str, o: &ContainerOptions) -> Result<ContainerPlan> {
    let svc = &p["services"][service];
    if svc.is_null() {
        return err(format!("no such service: {service}"));
    }
    let name = o.name.clone().unwrap_or_else(|| {
        if o.oneoff {
            format!("{}-{service}-run-{}", ctx.project, &hex(&Sha256::digest(rand_bytes()))[..12])
        } else {
            container_name(ctx, service, svc, o.number)
        }
    });
    let mut cfg = Map::new();
    let mut hc = Map::new();
    let put = |m: &mut Map<String, Value>, k: &str, v: Value| {
        if !v.is_null() {
            m.insert(k.to_owned(), v);
        }
    };
    put(&mut cfg, "Image", json!(image_name(ctx, service, svc)));
    put(&mut cfg, "Hostname", svc["hostname"].clone());
    put(&mut cfg, "Domainname", svc["domainname"].clone());
    put(&mut cfg, "User", o.user.clone().map(Value::String).unwrap_or_else(|| svc["user"].clone()));
    put(&mut cfg, "WorkingDir", o.workdir.clone().map(Value::String).unwrap_or_else(|| svc["working_dir"].clone()));
    let mut env = env_list(svc);
    env.extend(o.extra_env.iter().cloned());
    put(&mut cfg, "Env", json!(env));
    let cmd = match &o.command {
        Some(c) => json!(c),
        None => svc["command"].clone(),
    };
    put(&mut cfg, "Cmd", cmd);
    let ep = match &o.entrypoint {
        Some(e) => json!(e),
        None => svc["entrypoint"].clone(),
    };
    put(&mut cfg, "Entrypoint", ep);
    put(&mut cfg, "Tty", json!(o.tty.unwrap_or(svc["tty"].as_bool().unwrap_or(false))));
    let stdin = o.stdin_open.unwrap_or(svc["stdin_open"].as_bool().unwrap_or(false));
    put(&mut cfg, "OpenStdin", json!(stdin));
    put(&mut cfg, "AttachStdin", json!(stdin && o.oneoff));
    put(&mut cfg, "AttachStdout", json!(o.oneoff));
    put(&mut cfg, "AttachStderr", json!(o.oneoff));
    put(&mut cfg, "StdinOnce", json!(stdin && o.oneoff));
    put(&mut cfg, "StopSignal", svc["stop_signal"].clone());
    if let Some(ns) = duration_ns(&svc["stop_grace_period"]) {
        put(&mut cfg, "StopTimeout", json!(ns / 1_000_000_000));
    }
    put(&mut cfg, "MacAddress", svc["mac_address"].clone());
    let mut labels = container_labels(ctx, service, svc, o.number, o.oneoff);
    if o.oneoff {
        labels.insert("com.docker.compose.slug".into(), json!(name.rsplit('-').next().unwrap_or("")));
    }
    put(&mut cfg, "Labels", Value::Object(labels));
    let mut exposed = Map::new();
    for e in svc["expose"].as_array().into_iter().flatten() {
        let e = e.as_str().map(str::to_owned).unwrap_or_else(|| e.to_string());
        let key = if e.contains('/') { e } else { format!("{e}/tcp") };
        exposed.insert(key, json!({}));
    }
    let mut bindings = Map::new();
    if !o.no_ports {
        for port in svc["ports"].as_array().into_iter().flatten() {
            let key = format!("{}/{}", port["target"], port["protocol"].as_str().unwrap_or("tcp"));
            exposed.insert(key.clone(), json!({}));
            let entry = bindings.entry(key).or_insert_with(|| json!([]));
            entry.as_array_mut().expect("array").push(json!({
                "HostIp": port["host_ip"].as_str().unwrap_or(""),
                "HostPort": port["published"].as_str().map(str::to_owned).unwrap_or_else(|| port["published"].as_u64().map(|n| n.to_string()).unwrap_or_default()),
            }));
        }
    }
    if !exposed.is_empty() {
        put(&mut cfg, "ExposedPorts", Value::Object(exposed));
    }
    if let Some(h) = svc["healthcheck"].as_object() {
        let mut hcheck = Map::new();
        if h.get("disable").and_then(Value::as_bool) == Some(true) {
            hcheck.insert("Test".into(), json!(["NONE"]));
        } else {
            match h.get("test") {
                Some(Value::Array(t)) => {
                    hcheck.insert("Test".into(), json!(t));
                }
                Some(Value::String(s)) => {
                    hcheck.insert("Test".into(), json!(["CMD-SHELL", s]));
                }
                _ => {}
            }
            for (k, key) in [("interval", "Interval"), ("timeout", "Timeout"), ("start_period", "StartPeriod"), ("start_interval", "StartInterval")] {
                if let Some(ns) = h.get(k).and_then(duration_ns) {
                    hcheck.insert(key.into(), json!(ns));
                }
            }
            if let Some(r) = h.get("retries").and_then(Value::as_i64) {
                hcheck.insert("Retries".into(), json!(r));
            }
        }
        put(&mut cfg, "Healthcheck", Value::Object(hcheck));
    }

    // Host config.
    if !bindings.is_empty() {
        put(&mut hc, "PortBindings", Value::Object(bindings));
    }
    let restart = svc["restart"].as_str().unwrap_or("no");
    let (rname, rmax) = match restart.split_once(':') {
        Some((n, m)) => (n, m.parse::<i64>().unwrap_or(0)),
        None => (restart, 0),
    };
    if !o.oneoff {
        put(&mut hc, "RestartPolicy", json!({"Name": rname, "MaximumRetryCount": rmax}));
    }
    put(&mut hc, "AutoRemove", json!(o.auto_remove));
    let mut binds: Vec<String> = Vec::new();
    let mut mounts: Vec<Value> = Vec::new();
    for v in svc["volumes"].as_array().into_iter().flatten() {
        let target = v["target"].as_str().unwrap_or_default();
        let ro = v["read_only"].as_bool().unwrap_or(false);
        match v["type"].as_str().unwrap_or("volume") {
            "bind" => {
                let src = v["source"].as_str().unwrap_or_default();
                let create = v["bind"]["create_host_path"].as_bool().unwrap_or(false);
                if create {
                    // -v semantics: dockerd makes a missing source directory.
                    let mut mode: Vec<&str> = Vec::new();
                    if ro {
                        mode.push("ro");
                    }
                    if let Some(s) = v["bind"]["selinux"].as_str() {
                        mode.push(s);
                    }
                    if let Some(pr) = v["bind"]["propagation"].as_str() {
                        mode.push(pr);
                    }
                    binds.push(if mode.is_empty() { format!("{src}:{target}") } else { format!("{src}:{target}:{}", mode.join(",")) });
                } else {
                    let mut m = json!({"Type": "bind", "Source": src, "Target": target, "ReadOnly": ro});
                    if let Some(pr) = v["bind"]["propagation"].as_str() {
                        m["BindOptions"] = json!({"Propagation": pr});
                    }
                    mounts.push(m);
                }
            }
            "volume" => {
                let mut m = json!({"Type": "volume", "Target": target, "ReadOnly": ro});
                if let Some(src) = v["source"].as_str().filter(|s| !s.is_empty()) {
                    let real = if p["volumes"].get(src).is_some() { volume_name(p, src) } else { src.to_owned() };
                    m["Source"] = json!(real);
                }
                if v["volume"]["nocopy"].as_bool() == Some(true) {
                    m["VolumeOptions"] = json!({"NoCopy": true});
                }
                mounts.push(m);
            }
            "tmpfs" => {
                let mut m = json!({"Type": "tmpfs", "Target": target, "ReadOnly": ro});
                let mut t = Map::new();
                if let Some(sz) = bytes(&v["tmpfs"]["size"]) {
                    t.insert("SizeBytes".into(), json!(sz));
                }
                if let Some(mode) = v["tmpfs"]["mode"].as_u64() {
                    t.insert("Mode".into(), json!(mode));
                }
                if !t.is_empty() {
                    m["TmpfsOptions"] = Value::Object(t);
                }
                mounts.push(m);
            }
            other => return err(format!("service {service}: volume type {other:?} is not supported by berth compose")),
        }
    }
    for v in &o.extra_volumes {
        binds.push(v.clone());
    }
    // File-based secrets and configs are bind mounts (the others are copied in).
    let (secret_mounts, _) = secrets_and_configs(p, service, &|_| Some(String::new()))?;
    mounts.extend(secret_mounts);
    if !binds.is_empty() {
        put(&mut hc, "Binds", json!(binds));
    }
    if !mounts.is_empty() {
        put(&mut hc, "Mounts", json!(mounts));
    }
    if let Some(t) = strings(&svc["tmpfs"]) {
        let m: Map<String, Value> = t
            .iter()
            .map(|e| match e.split_once(':') {
                Some((p, o)) => (p.to_owned(), json!(o)),
                None => (e.clone(), json!("")),
            })
            .collect();
        put(&mut hc, "Tmpfs", Value::Object(m));
    }
    for (k, key) in [
        ("privileged", "Privileged"),
        ("read_only", "ReadonlyRootfs"),
        ("init", "Init"),
        ("oom_kill_disable", "OomKillDisable"),
    ] {
        if let Some(b) = svc[k].as_bool() {
            put(&mut hc, key, json!(b));
        }
    }
    for (k, key) in [
        ("cap_add", "CapAdd"),
        ("cap_drop", "CapDrop"),
        ("dns", "Dns"),
        ("dns_search", "DnsSearch"),
        ("dns_opt", "DnsOptions"),
        ("security_opt", "SecurityOpt"),
        ("group_add", "GroupAdd"),
        ("volumes_from", "VolumesFrom"),
        ("links", "Links"),
        ("device_cgroup_rules", "DeviceCgroupRules"),
    ] {
        if let Some(v) = strings(&svc[k]) {
            put(&mut hc, key, json!(v));
        }
    }
    if let Some(h) = svc["extra_hosts"].as_object() {
        let list: Vec<String> = h
            .iter()
            .flat_map(|(host, ips)| {
                strings(ips).unwrap_or_default().into_iter().map(move |ip| format!("{host}:{ip}"))
            })
            .collect();
        put(&mut hc, "ExtraHosts", json!(list));
    } else if let Some(v) = strings(&svc["extra_hosts"]) {
        put(&mut hc, "ExtraHosts", json!(v));
    }
    for (k, key) in [
        ("pid", "PidMode"),
        ("ipc", "IpcMode"),
        ("uts", "UTSMode"),
        ("userns_mode", "UsernsMode"),
        ("cgroup_parent", "CgroupParent"),
        ("cgroup", "CgroupnsMode"),
        ("isolation", "Isolation"),
        ("runtime", "Runtime"),
    ] {
        put(&mut hc, key, svc[k].clone());
    }
    put(&mut hc, "Sysctls", svc["sysctls"].clone());
    put(&mut hc, "StorageOpt", svc["storage_opt"].clone());
    if let Some(sz) = bytes(&svc["shm_size"]) {
        put(&mut hc, "ShmSize", json!(sz));
    }
    if let Some(u) = svc["ulimits"].as_object() {
        let list: Vec<Value> = u
            .iter()
            .map(|(name, v)| match v.as_i64() {
                Some(n) => json!({"Name": name, "Soft": n, "Hard": n}),
                None => json!({"Name": name, "Soft": v["soft"], "Hard": v["hard"]}),
            })
            .collect();
        put(&mut hc, "Ulimits", json!(list));
    }
    if let Some(devs) = svc["devices"].as_array() {
        let list: Vec<Value> = devs
            .iter()
            .map(|d| {
                let src = d["source"].as_str().unwrap_or_default();
                json!({
                    "PathOnHost": src,
                    "PathInContainer": d["target"].as_str().unwrap_or(src),
                    "CgroupPermissions": d["permissions"].as_str().unwrap_or("rwm"),
                })
            })
            .collect();
        put(&mut hc, "Devices", json!(list));
    }
    if let Some(l) = svc["logging"].as_object() {
        put(&mut hc, "LogConfig", json!({"Type": l.get("driver").cloned().unwrap_or(json!("json-file")), "Config": l.get("options").cloned().unwrap_or(json!({}))}));
    }
    // Resources: the service keys, then deploy.resources (limits win, as Compose).
    let limits = &svc["deploy"]["resources"]["limits"];
    let reservations = &svc["deploy"]["resources"]["reservations"];
    if let Some(m) = bytes(&svc["mem_limit"]).or_else(|| bytes(&limits["memory"])) {
        put(&mut hc, "Memory", json!(m));
    }
    if let Some(m) = bytes(&svc["mem_reservation"]).or_else(|| bytes(&reservations["memory"])) {
        put(&mut hc, "MemoryReservation", json!(m));
    }
    if let Some(m) = bytes(&svc["memswap_limit"]) {
        put(&mut hc, "MemorySwap", json!(m));
    }
    if let Some(s) = svc["mem_swappiness"].as_i64() {
        put(&mut hc, "MemorySwappiness", json!(s));
    }
    let cpus = svc["cpus"].as_f64().or_else(|| svc["cpus"].as_str().and_then(|s| s.parse().ok()));
    let cpus = cpus.or_else(|| limits["cpus"].as_f64()).or_else(|| limits["cpus"].as_str().and_then(|s| s.parse().ok()));
    if let Some(c) = cpus.filter(|c| *c > 0.0) {
        put(&mut hc, "NanoCpus", json!((c * 1e9) as i64));
    }
    for (k, key) in [
        ("cpu_shares", "CpuShares"),
        ("cpu_quota", "CpuQuota"),
        ("cpu_period", "CpuPeriod"),
        ("cpu_rt_runtime", "CpuRealtimeRuntime"),
        ("cpu_rt_period", "CpuRealtimePeriod"),
        ("oom_score_adj", "OomScoreAdj"),
        ("blkio_config_weight", "BlkioWeight"),
    ] {
        if let Some(n) = svc[k].as_i64() {
            put(&mut hc, key, json!(n));
        }
    }
    if let Some(s) = svc["cpuset"].as_str() {
        put(&mut hc, "CpusetCpus", json!(s));
    }
    if let Some(pl) = svc["pids_limit"].as_i64().or_else(|| limits["pids"].as_i64()) {
        put(&mut hc, "PidsLimit", json!(pl));
    }
    if let Some(w) = svc["blkio_config"]["weight"].as_i64() {
        put(&mut hc, "BlkioWeight", json!(w));
    }
    if let Some(devs) = reservations["devices"].as_array() {
        let reqs: Vec<Value> = devs
            .iter()
            .map(|d| {
                json!({
                    "Driver": d["driver"].as_str().unwrap_or(""),
                    "Count": d["count"].as_i64().unwrap_or(if d["device_ids"].is_array() { 0 } else { -1 }),
                    "DeviceIDs": d["device_ids"],
                    "Capabilities": [d["capabilities"].clone()],
                    "Options": d["options"],
                })
            })
            .collect();
        put(&mut hc, "DeviceRequests", json!(reqs));
    }

    // Networks: the mode, or the first network at create and the others after.
    let mut networking = Map::new();
    let mut others = Vec::new();
    if let Some(mode) = svc["network_mode"].as_str() {
        let mode = match mode.strip_prefix("service:") {
            Some(s) => format!("container:{}", container_name(ctx, s, &p["services"][s], 1)),
            None => mode.to_owned(),
        };
        put(&mut hc, "NetworkMode", json!(mode));
    } else {
        let nets = service_networks(svc);
        for (i, (key, ncfg)) in nets.iter().enumerate() {
            let real = network_name(p, key);
            let ep = endpoint_config(service, ncfg, &name);
            if i == 0 {
                put(&mut hc, "NetworkMode", json!(real));
                let mut eps = Map::new();
                eps.insert(real.clone(), ep);
                networking.insert("EndpointsConfig".into(), Value::Object(eps));
            } else {
                others.push((real, ep));
            }
        }
    }
    let mut body = Value::Object(cfg);
    body["HostConfig"] = Value::Object(hc);
    if !networking.is_empty() {
        body["NetworkingConfig"] = Value::Object(networking);
    }
    Ok((name, body, others))
}

fn rand_bytes() -> [u8; 16] {
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let mut b = [0u8; 16];
    b.copy_from_slice(&t.to_le_bytes());
    b[0] ^= std::process::id() as u8;
    b
}

#[cfg(test)]
mod secret_tests {
    use super::*;

    #[test]
    fn secrets_and_configs_become_binds_and_injected_files() {
        let p = json!({
            "services": {"app": {
                "secrets": ["pw", {"source": "tok", "mode": "0400", "uid": "1000", "target": "token"}],
                "configs": [{"source": "c1", "target": "/etc/app.conf"}, "c1"]
            }},
            "secrets": {"pw": {"file": "/abs/pw.txt"}, "tok": {"environment": "TOKEN"}},
            "configs": {"c1": {"content": "hello"}}
        });
        let env = |k: &str| (k == "TOKEN").then(|| "t0k".to_owned());
        let (mounts, files) = secrets_and_configs(&p, "app", &env).unwrap();
        assert_eq!(mounts, vec![json!({"Type": "bind", "Source": "/abs/pw.txt", "Target": "/run/secrets/pw", "ReadOnly": true})]);
        assert_eq!(files[0], InjectedFile { target: "/run/secrets/token".into(), content: b"t0k".to_vec(), mode: 0o400, uid: 1000, gid: 0 });
        assert_eq!((files[1].target.as_str(), files[1].mode), ("/etc/app.conf", 0o444));
        assert_eq!(files[2].target, "/c1");
        assert!(secrets_and_configs(&p, "app", &|_| None).unwrap_err().0.contains("TOKEN is not set"));
        let bad = json!({"services": {"a": {"secrets": ["nope"]}}});
        assert!(secrets_and_configs(&bad, "a", &env).unwrap_err().0.contains("undefined secret nope"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project() -> Value {
        json!({
            "name": "app",
            "services": {
                "web": {
                    "build": {"context": "/x"},
                    "ports": [{"target": 80, "published": "8080", "host_ip": "127.0.0.1", "protocol": "tcp"}],
                    "environment": {"A": "1", "UNSET": null},
                    "networks": {"back": {"aliases": ["w"]}, "front": {"priority": 10}},
                    "volumes": [{"type": "volume", "source": "data", "target": "/data"}, {"type": "bind", "source": "/h", "target": "/b", "read_only": true, "bind": {"create_host_path": true}}],
                    "healthcheck": {"test": ["CMD", "true"], "interval": "1m30s", "retries": 2},
                    "restart": "on-failure:3",
                    "deploy": {"resources": {"limits": {"memory": "64m", "cpus": "0.5"}}},
                },
                "worker": {"image": "busybox", "depends_on": {"web": {"condition": "service_healthy", "required": true}}, "networks": {"back": null}},
                "job": {"image": "busybox", "network_mode": "none"},
            },
            "networks": {"back": {"name": "app_back"}, "front": {"name": "app_front"}},
            "volumes": {"data": {"name": "app_data"}},
        })
    }

    fn ctx() -> Context {
        Context { project: "app".into(), working_dir: "/w".into(), config_files: vec!["/w/compose.yaml".into()] }
    }

    #[test]
    fn start_order_follows_depends_on() {
        let p = project();
        assert_eq!(start_order(&p, &[], false).unwrap(), vec![vec!["job".to_owned(), "web".into()], vec!["worker".into()]]);
        assert_eq!(start_order(&p, &["worker".into()], false).unwrap(), vec![vec!["web".to_owned()], vec!["worker".into()]]);
        assert_eq!(start_order(&p, &["worker".into()], true).unwrap(), vec![vec!["worker".to_owned()]]);
        assert!(start_order(&p, &["nope".into()], false).is_err());
        let mut cyc = p.clone();
        cyc["services"]["web"]["depends_on"] = json!({"worker": {}});
        assert!(start_order(&cyc, &[], false).unwrap_err().0.contains("cycle"));
    }

    #[test]
    fn container_body_as_compose_sends_it() {
        let p = project();
        let (name, b, others) = container_body(&ctx(), &p, "web", &ContainerOptions { number: 2, ..Default::default() }).unwrap();
        assert_eq!(name, "app-web-2");
        assert_eq!(b["Image"], "app-web");
        assert_eq!(b["Env"], json!(["A=1"]));
        assert_eq!(b["Labels"][LABEL_SERVICE], "web");
        assert_eq!(b["Labels"][LABEL_NUMBER], "2");
        assert_eq!(b["Labels"][LABEL_ONEOFF], "False");
        assert_eq!(b["HostConfig"]["PortBindings"]["80/tcp"][0]["HostPort"], "8080");
        assert_eq!(b["HostConfig"]["RestartPolicy"], json!({"Name": "on-failure", "MaximumRetryCount": 3}));
        assert_eq!(b["HostConfig"]["Memory"], 64 * 1024 * 1024);
        assert_eq!(b["HostConfig"]["NanoCpus"], 500_000_000);
        assert_eq!(b["HostConfig"]["Binds"], json!(["/h:/b:ro"]));
        assert_eq!(b["HostConfig"]["Mounts"][0], json!({"Type": "volume", "Source": "app_data", "Target": "/data", "ReadOnly": false}));
        assert_eq!(b["Healthcheck"], json!({"Test": ["CMD", "true"], "Interval": 90_000_000_000i64, "Retries": 2}));
        // front has the higher priority: it is the create network.
        assert_eq!(b["HostConfig"]["NetworkMode"], "app_front");
        assert_eq!(b["NetworkingConfig"]["EndpointsConfig"]["app_front"]["Aliases"], json!(["app-web-2", "web"]));
        assert_eq!(others[0].0, "app_back");
        assert_eq!(others[0].1["Aliases"], json!(["app-web-2", "web", "w"]));
        let (_, j, _) = container_body(&ctx(), &p, "job", &ContainerOptions { number: 1, ..Default::default() }).unwrap();
        assert_eq!(j["HostConfig"]["NetworkMode"], "none");
    }

    #[test]
    fn config_hash_ignores_what_does_not_change_the_container() {
        let p = project();
        let web = &p["services"]["web"];
        let mut scaled = web.clone();
        scaled["scale"] = json!(3);
        scaled["build"] = json!({"context": "/elsewhere"});
        assert_eq!(config_hash(web), config_hash(&scaled));
        let mut changed = web.clone();
        changed["environment"]["A"] = json!("2");
        assert_ne!(config_hash(web), config_hash(&changed));
    }

    #[test]
    fn network_and_volume_bodies_carry_the_labels() {
        let p = project();
        let n = network_body(&ctx(), &p, "back");
        assert_eq!((n["Name"].as_str(), n["Labels"][LABEL_NETWORK].as_str()), (Some("app_back"), Some("back")));
        let v = volume_body(&ctx(), &p, "data");
        assert_eq!((v["Name"].as_str(), v["Labels"][LABEL_VOLUME].as_str()), (Some("app_data"), Some("data")));
    }

    #[test]
    fn durations_and_sizes() {
        assert_eq!(go_duration_ns("1m30s"), Some(90_000_000_000));
        assert_eq!(go_duration_ns("500ms"), Some(500_000_000));
        assert_eq!(ram_bytes("1g"), Some(1 << 30));
        assert_eq!(ram_bytes("512k"), Some(512 * 1024));
    }
}
