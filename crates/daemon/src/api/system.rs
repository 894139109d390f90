//! `/_ping`, `/version`, `/info`, `/events`, `/system/df`.

use std::sync::Arc;

use berth_api::models::{SystemInfo, SystemVersion, SystemVersionComponents, SystemVersionPlatform};
use berth_api::version::{MAX_API_VERSION, MIN_API_VERSION};
use http::{HeaderValue, Method};

use crate::http::{bytes, json, json_line, stream, Query, Resp, Result};
use crate::Daemon;

const VERSION: &str = env!("CARGO_PKG_VERSION");

pub fn ping(method: &Method) -> Resp {
    let body: &'static [u8] = if method == Method::HEAD { b"" } else { b"OK" };
    let mut r = bytes(200, Some("text/plain; charset=utf-8"), body);
    let h = r.headers_mut();
    h.insert("Api-Version", HeaderValue::from_static(MAX_API_VERSION));
    h.insert("Ostype", HeaderValue::from_static("linux"));
    h.insert("Docker-Experimental", HeaderValue::from_static("false"));
    h.insert("Cache-Control", HeaderValue::from_static("no-cache, no-store, must-revalidate"));
    h.insert("Pragma", HeaderValue::from_static("no-cache"));
    h.insert("Server", HeaderValue::from_static(concat!("berth/", env!("CARGO_PKG_VERSION"), " (linux)")));
    if method == Method::HEAD {
        h.insert(http::header::CONTENT_LENGTH, HeaderValue::from_static("0"));
    }
    r
}

fn kernel() -> String {
    nix::sys::utsname::uname().map(|u| u.release().to_string_lossy().into_owned()).unwrap_or_default()
}

fn arch() -> &'static str {
    berth_image::config::host_arch()
}

pub fn version(_d: &Arc<Daemon>) -> Resp {
    let v = SystemVersion {
        platform: Some(SystemVersionPlatform { name: "berth".into() }),
        components: Some(vec![SystemVersionComponents {
            name: "Engine".into(),
            version: VERSION.into(),
            details: Some(
                [
                    ("ApiVersion", MAX_API_VERSION.to_owned()),
                    ("MinAPIVersion", MIN_API_VERSION.to_owned()),
                    ("Os", "linux".to_owned()),
                    ("Arch", arch().to_owned()),
                    ("KernelVersion", kernel()),
                    ("GitCommit", option_env!("BERTH_GIT_COMMIT").unwrap_or("unknown").to_owned()),
                    ("GoVersion", format!("rustc {}", option_env!("BERTH_RUSTC_VERSION").unwrap_or("stable"))),
                    ("Experimental", "false".to_owned()),
                ]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect(),
            ),
        }]),
        version: Some(VERSION.into()),
        api_version: Some(MAX_API_VERSION.into()),
        min_api_version: Some(MIN_API_VERSION.into()),
        git_commit: Some(option_env!("BERTH_GIT_COMMIT").unwrap_or("unknown").into()),
        go_version: Some(format!("rustc {}", option_env!("BERTH_RUSTC_VERSION").unwrap_or("stable"))),
        os: Some("linux".into()),
        arch: Some(arch().into()),
        kernel_version: Some(kernel()),
        experimental: Some(false),
        build_time: Some(String::new()),
    };
    json(200, &v)
}

fn mem_total() -> i64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<i64>().ok())
        })
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

/// `GET /info`. Clients before API 1.25 get dockerd's old shape: `ExecutionDriver`
/// and `SecurityOptions` as bare names (`seccomp`, not `name=seccomp,profile=...`).
pub fn info(d: &Arc<Daemon>, v: berth_api::version::ApiVersion) -> Resp {
    let all = d.containers.all();
    let count = |f: &dyn Fn(crate::container::Status) -> bool| all.iter().filter(|c| f(c.status())).count() as i64;
    use crate::container::Status;
    let v2 = berth_oci::cgroup_v2_unified();
    let live = d.live.read().unwrap().clone();
    let info = SystemInfo {
        labels: Some(live.labels.clone()),
        registry_config: Some(registry_config(&live)),
        id: Some(host_id(d)),
        cdi_spec_dirs: Some(d.cfg.cdi_spec_dirs.iter().map(|p| p.display().to_string()).collect()),
        // RFC 3339 with nanoseconds and the local offset, as Go's time.Now() prints.
        system_time: Some(chrono::Local::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)),
        containers: Some(all.len() as i64),
        containers_running: Some(count(&|s| s == Status::Running)),
        containers_paused: Some(count(&|s| s == Status::Paused)),
        containers_stopped: Some(count(&|s| !s.is_live())),
        images: Some(d.images.list().map(|l| l.len() as i64).unwrap_or(0)),
        driver: Some("overlay2".into()),
        driver_status: Some(vec![vec!["Backing Filesystem".into(), "extfs".into()]]),
        docker_root_dir: Some(d.cfg.data_root.display().to_string()),
        memory_limit: Some(true),
        swap_limit: Some(true),
        cpu_cfs_period: Some(true),
        cpu_cfs_quota: Some(true),
        cpu_shares: Some(true),
        cpu_set: Some(true),
        pids_limit: Some(true),
        ipv4_forwarding: Some(true),
        cgroup_driver: Some(berth_api::models::SystemInfoCgroupDriverEnum::CGROUPFS),
        cgroup_version: Some(if v2 {
            berth_api::models::SystemInfoCgroupVersionEnum::_2
        } else {
            berth_api::models::SystemInfoCgroupVersionEnum::_1
        }),
        n_events_listener: Some(0),
        kernel_version: Some(kernel()),
        operating_system: Some(os_name()),
        os_type: Some("linux".into()),
        architecture: Some(std::env::consts::ARCH.into()),
        ncpu: Some(std::thread::available_parallelism().map(|n| n.get() as i64).unwrap_or(1)),
        mem_total: Some(mem_total()),
        name: Some(nix::unistd::gethostname().map(|h| h.to_string_lossy().into_owned()).unwrap_or_default()),
        server_version: Some(VERSION.into()),
        default_runtime: Some("runc".into()),
        runtimes: Some(std::collections::HashMap::from([(
            "runc".to_owned(),
            berth_api::models::Runtime { path: Some("berth-shim".into()), ..Default::default() },
        )])),
        debug: Some(live.debug),
        experimental_build: Some(false),
        live_restore_enabled: Some(true),
        security_options: Some({
            let mut o = vec!["name=seccomp,profile=builtin".to_owned()];
            if d.userns.is_some() {
                o.push("name=userns".into());
            }
            if d.cfg.no_new_privileges {
                o.push("name=no-new-privileges".into());
            }
            if berth_oci::apparmor_enabled() {
                o.insert(0, "name=apparmor".into());
            }
            o
        }),
        warnings: Some(Vec::new()),
        logging_driver: Some(d.cfg.log.as_ref().map_or("json-file", |(driver, _)| driver.as_str()).to_owned()),
        plugins: Some(berth_api::models::PluginsInfo {
            volume: Some(vec!["local".into()]),
            // The drivers berthd has, named as dockerd names them.
            network: Some(vec!["bridge".into(), "host".into(), "null".into()]),
            authorization: None,
            log: Some(vec!["json-file".into(), "local".into()]),
        }),
        swarm: Some(berth_api::models::SwarmInfo {
            local_node_state: Some(berth_api::models::LocalNodeState::INACTIVE),
            node_id: Some(String::new()),
            node_addr: Some(String::new()),
            control_available: Some(false),
            ..Default::default()
        }),
        ..Default::default()
    };
    let mut full = serde_json::to_value(&info).unwrap_or_default();
    dockerd_info_fields(&mut full);
    if v.before(25) {
        let mut old = full;
        old["ExecutionDriver"] = "<not supported>".into();
        let names: Vec<String> = info
            .security_options
            .iter()
            .flatten()
            .map(|o| security_option_name(o).to_owned())
            .collect();
        old["SecurityOptions"] = names.into();
        return json(200, &old);
    }
    json(200, &full)
}

/// The `/info` fields of API 1.41 that berth's model leaves unset, as dockerd 20.10
/// fills them on this kind of host: the bridge netfilter switches, proxies from the
/// environment, the daemon's open descriptors and threads (dockerd: goroutines), the
/// kernel memory and OOM-kill switches of cgroup v1, the OS version, and the commit
/// records of components berth does not have (empty, as dockerd's for `docker-init`).
fn dockerd_info_fields(v: &mut serde_json::Value) {
    use serde_json::json;
    let Some(o) = v.as_object_mut() else { return };
    let sysctl_on = |p: &str| std::fs::read_to_string(p).is_ok_and(|s| s.trim() == "1");
    let env = |k: &str| std::env::var(k).or_else(|_| std::env::var(k.to_lowercase())).unwrap_or_default();
    let count = |dir: &str| std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0);
    let v1 = !berth_oci::cgroup_v2_unified();
    let os_version = std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|s| s.lines().find_map(|l| l.strip_prefix("VERSION_ID=").map(|v| v.trim_matches('"').to_owned())))
        .unwrap_or_default();
    let fields = [
        ("BridgeNfIptables", json!(sysctl_on("/proc/sys/net/bridge/bridge-nf-call-iptables"))),
        ("BridgeNfIp6tables", json!(sysctl_on("/proc/sys/net/bridge/bridge-nf-call-ip6tables"))),
        ("HttpProxy", json!(env("HTTP_PROXY"))),
        ("HttpsProxy", json!(env("HTTPS_PROXY"))),
        ("NoProxy", json!(env("NO_PROXY"))),
        ("IndexServerAddress", json!("https://index.docker.io/v1/")),
        ("InitBinary", json!("docker-init")),
        ("Isolation", json!("")),
        ("GenericResources", json!(null)),
        ("KernelMemory", json!(v1 && std::path::Path::new("/sys/fs/cgroup/memory/memory.kmem.limit_in_bytes").exists())),
        ("KernelMemoryTCP", json!(v1 && std::path::Path::new("/sys/fs/cgroup/memory/memory.kmem.tcp.limit_in_bytes").exists())),
        ("OomKillDisable", json!(v1)),
        ("NFd", json!(count("/proc/self/fd"))),
        ("NGoroutines", json!(count("/proc/self/task"))),
        ("OSVersion", json!(os_version)),
        ("ContainerdCommit", json!({"ID": "", "Expected": ""})),
        ("RuncCommit", json!({"ID": "", "Expected": ""})),
        ("InitCommit", json!({"ID": "", "Expected": ""})),
    ];
    for (k, val) in fields {
        o.entry(k).or_insert(val);
    }
}

/// The name in a `name=seccomp,profile=builtin` security option (dockerd's
/// `DecodeSecurityOptions`).
fn security_option_name(o: &str) -> &str {
    o.split(',').find_map(|kv| kv.strip_prefix("name=")).unwrap_or(o)
}

/// `RegistryConfig` as dockerd reports it: loopback and CIDR insecure registries,
/// Docker Hub with its mirrors (with dockerd's trailing slash), and one index per
/// insecure registry host.
fn registry_config(live: &crate::settings::Live) -> berth_api::models::RegistryServiceConfig {
    use berth_api::models::IndexInfo;
    let mirrors: Vec<String> = live.registry_mirrors.iter().map(|m| format!("{m}/")).collect();
    let mut cidrs = vec!["127.0.0.0/8".to_owned()];
    let mut indexes = std::collections::HashMap::from([(
        "docker.io".to_owned(),
        IndexInfo { name: Some("docker.io".into()), mirrors: Some(mirrors.clone()), secure: Some(true), official: Some(true) },
    )]);
    for r in &live.insecure_registries {
        if r.contains('/') {
            cidrs.push(r.clone());
        } else {
            indexes.insert(r.clone(), IndexInfo { name: Some(r.clone()), mirrors: Some(Vec::new()), secure: Some(false), official: Some(false) });
        }
    }
    berth_api::models::RegistryServiceConfig {
        insecure_registry_cidrs: Some(cidrs),
        index_configs: Some(indexes),
        mirrors: Some(mirrors),
    }
}

/// dockerd's event filters (moby `daemon/events/filter.go`): `type`, `scope` and
/// `image` match exactly (an image by id, by name, or by name without its tag; a
/// container event by the image it runs), `container`, `volume`, `network` and
/// `daemon` by a prefix of the actor's id or name, `event` exactly (or by prefix for
/// `health_status`, `exec_create` and `exec_start`), `label` on the attributes.
fn event_matches(f: &berth_api::query::Filters, e: &berth_api::models::EventMessage) -> bool {
    let typ = e.typ.map(|t| t.to_string()).unwrap_or_default();
    let actor = e.actor.clone().unwrap_or_default();
    let attrs = actor.attributes.unwrap_or_default();
    let id = actor.id.unwrap_or_default();
    let action = e.action.clone().unwrap_or_default();
    let exact = |key: &str, v: &str| f.get(key).is_empty() || f.get(key).iter().any(|x| x == v);
    let fuzzy = |key: &str, v: &str| f.get(key).is_empty() || f.get(key).iter().any(|x| v.starts_with(x.as_str()));
    let by_name = |key: &str| {
        f.get(key).is_empty() || fuzzy(key, &id) || attrs.get("name").is_some_and(|n| fuzzy(key, n))
    };
    let event_ok = if f.get("event").iter().any(|x| matches!(x.as_str(), "health_status" | "exec_create" | "exec_start")) {
        fuzzy("event", &action)
    } else {
        exact("event", &action)
    };
    let image_ok = f.get("image").is_empty() || {
        let name = attrs.get(if typ == "image" { "name" } else { "image" }).cloned().unwrap_or_default();
        [id.as_str(), name.as_str(), strip_tag(&id), strip_tag(&name)].iter().any(|v| exact("image", v))
    };
    event_ok
        && exact("type", &typ)
        && exact("scope", e.scope.map(|s| s.to_string()).as_deref().unwrap_or("local"))
        && by_name("container")
        && by_name("volume")
        && by_name("network")
        && by_name("daemon")
        && image_ok
        && f.match_labels(|k| attrs.get(k).map(String::as_str))
}

/// An image reference without its tag (`busybox:1` → `busybox`; digests kept).
fn strip_tag(r: &str) -> &str {
    if r.contains('@') {
        return r;
    }
    match (r.rfind(':'), r.rfind('/')) {
        (Some(c), Some(s)) if c > s => &r[..c],
        (Some(c), None) => &r[..c],
        _ => r,
    }
}

fn os_name() -> String {
    std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("PRETTY_NAME=").map(|v| v.trim_matches('"').to_owned()))
        })
        .unwrap_or_else(|| "Linux".into())
}

/// A stable daemon id, kept in the data root.
pub(crate) fn host_id(d: &Daemon) -> String {
    let p = d.cfg.data_root.join("engine-id");
    if let Ok(s) = std::fs::read_to_string(&p) {
        return s.trim().to_owned();
    }
    let id = hex::encode(rand::random::<[u8; 16]>());
    let _ = std::fs::write(&p, &id);
    id
}

pub fn events(d: &Arc<Daemon>, q: &Query) -> Result {
    let f = q.filters()?;
    let now = chrono::Utc::now().timestamp();
    let since = q.get("since").filter(|s| !s.is_empty()).map(|s| berth_api::query::timestamp(s, now)).transpose()?;
    let until = q.get("until").filter(|s| !s.is_empty()).map(|s| berth_api::query::timestamp(s, now)).transpose()?;
    if let (Some(s), Some(u)) = (since, until) {
        if s > u {
            return Err(berth_errdefs::Error::invalid(format!("`since` time ({}) cannot be after `until` time ({})", q.str("since"), q.str("until"))));
        }
    }
    let (past, mut rx) = d.events.subscribe(since);
    let (tx, resp) = stream(200, Some("application/json"));
    let keep = move |e: &berth_api::models::EventMessage| event_matches(&f, e);
    tokio::spawn(async move {
        for e in past.iter().filter(|e| keep(e)) {
            if until.is_some_and(|u| e.time.unwrap_or(0) > u) {
                return;
            }
            if tx.send(json_line(&crate::events::Events::wire(e), false)).await.is_err() {
                return;
            }
        }
        loop {
            let deadline = async {
                match until {
                    Some(u) => {
                        let wait = (u - chrono::Utc::now().timestamp()).max(0) as u64;
                        tokio::time::sleep(std::time::Duration::from_secs(wait)).await
                    }
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                ev = rx.recv() => match ev {
                    Ok(e) => {
                        if keep(&e) && tx.send(json_line(&crate::events::Events::wire(&e), false)).await.is_err() {
                            return;
                        }
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(_) => return,
                },
                _ = tx.closed() => return,
                _ = deadline => return,
            }
        }
    });
    Ok(resp)
}

pub fn df(d: &Arc<Daemon>) -> Result {
    let mut images = super::images::summaries(d, false, &berth_api::query::Filters::default())?;
    let records = d.images.list()?;
    // Each layer once, however many images share it.
    let mut layers = std::collections::HashMap::new();
    for rec in &records {
        for l in &rec.layers {
            if !layers.contains_key(l) {
                layers.insert(l.clone(), d.images.layer_size(l));
            }
        }
    }
    let stacks: std::collections::HashMap<&str, Vec<(String, u64)>> = records
        .iter()
        .map(|r| (r.id.as_str(), r.layers.iter().map(|l| (l.to_string(), layers.get(l).copied().unwrap_or(0))).collect()))
        .collect();
    shared_sizes(&mut images, &stacks);
    let ctrs: Vec<_> = d
        .containers
        .all()
        .iter()
        .map(|c| {
            let r = c.record();
            let mut s = crate::container::inspect::summary(d, &r);
            let (rw, rootfs) = crate::container::inspect::sizes(d, &r);
            (s.size_rw, s.size_root_fs) = (Some(rw), Some(rootfs));
            s
        })
        .collect();
    let cache = crate::build::usage::records(d)?;
    let builder_size = crate::build::usage::builder_size(&cache);
    let cache: Vec<_> = cache.into_iter().map(|r| r.info).collect();
    Ok(json(
        200,
        &serde_json::json!({
            "LayersSize": layers.values().sum::<u64>(),
            "Images": super::images::with_virtual_size(&images),
            "Containers": ctrs,
            "Volumes": super::volumes::usage(d),
            "BuildCache": cache,
            "BuilderSize": builder_size,
        }),
    ))
}

/// Each listed image's `SharedSize`, as dockerd's disk usage gives it: the size of its
/// layers that another listed image has too, at the same place in its stack (the same
/// chain: the layer and all below it). `stacks` holds each image's layers, bottom
/// first, with their sizes.
fn shared_sizes(images: &mut [berth_api::models::ImageSummary], stacks: &std::collections::HashMap<&str, Vec<(String, u64)>>) {
    let chains = |id: &str| {
        let mut chain = String::new();
        stacks.get(id).into_iter().flatten().map(move |(l, size)| {
            chain.push_str(l);
            chain.push('/');
            (chain.clone(), *size)
        })
    };
    let mut refs: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for img in images.iter() {
        for (chain, _) in chains(&img.id) {
            *refs.entry(chain).or_default() += 1;
        }
    }
    for img in images.iter_mut() {
        let shared: u64 = chains(&img.id).filter(|(c, _)| refs.get(c).is_some_and(|n| *n > 1)).map(|(_, s)| s).sum();
        img.shared_size = shared as i64;
    }
}

#[cfg(test)]
mod df_tests {
    use super::shared_sizes;
    use berth_api::models::ImageSummary;
    use std::collections::HashMap;

    fn img(id: &str) -> ImageSummary {
        ImageSummary { id: id.into(), shared_size: -1, ..Default::default() }
    }

    #[test]
    fn shared_size_counts_the_chains_another_listed_image_has() {
        let l = |n: &str, s: u64| (n.to_owned(), s);
        let stacks: HashMap<&str, Vec<(String, u64)>> = HashMap::from([
            ("base", vec![l("a", 100)]),
            ("app", vec![l("a", 100), l("b", 10)]),
            ("app2", vec![l("a", 100), l("b", 10), l("c", 1)]),
            // the same diff as app's second layer, but on another base: not shared
            ("other", vec![l("x", 50), l("b", 10)]),
            ("alone", vec![l("y", 7)]),
        ]);
        let mut images: Vec<_> = ["base", "app", "app2", "other", "alone"].into_iter().map(img).collect();
        shared_sizes(&mut images, &stacks);
        let got: Vec<i64> = images.iter().map(|i| i.shared_size).collect();
        assert_eq!(got, vec![100, 110, 110, 0, 0]);
    }
}
