//! `POST /build` (the classic builder, `version=1`) and `POST /build/prune`.

use berth_api::version::ApiVersion;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use berth_builder::{BuildOptions, Context, Failure, Msg, SecretBytes};
use berth_errdefs::Error;
use http::Request;
use hyper::body::Incoming;

use crate::http::{json, json_line, stream, Query, Result};
use crate::Daemon;

fn json_param<T: serde::de::DeserializeOwned + Default>(q: &Query, k: &str) -> Result<T> {
    match q.get(k) {
        None | Some("") | Some("null") => Ok(T::default()),
        Some(v) => serde_json::from_str(v).map_err(|e| Error::invalid(format!("invalid {k}: {e}"))),
    }
}

/// The build options from the query string, as dockerd 20.10 reads them from a client
/// of API `v`: `pull` from 1.16 on, `platform` from 1.32, `outputs` from 1.40.
pub fn options(q: &Query, v: ApiVersion) -> Result<BuildOptions> {
    let tags: Vec<String> = q
        .all("t")
        .iter()
        .filter(|t| !t.is_empty())
        .cloned()
        .collect();
    for t in &tags {
        berth_image::Reference::parse_tagged(t)
            .map_err(|e| Error::invalid(e.message().to_owned()))?;
    }
    if q.str("version") == "2" {
        return Err(Error::invalid(
            "BuildKit (version=2) is not supported by berthd; use the classic builder",
        ));
    }
    // What dockerd's classic builder refuses (berthd has no experimental mode).
    if q.bool("squash") {
        return Err(Error::invalid("squash is only supported with experimental mode"));
    }
    if q.all("securityopt").iter().any(|o| !o.is_empty()) {
        return Err(Error::invalid(
            "The daemon on this platform does not support setting security options on build",
        ));
    }
    if let Some(i) = q.get("isolation").filter(|i| !i.is_empty() && !i.eq_ignore_ascii_case("default")) {
        return Err(Error::invalid(format!("Unsupported isolation: {i:?}")));
    }
    let outputs = if v.before(40) { "" } else { q.str("outputs") };
    if !outputs.is_empty() && outputs != "[]" && outputs != "null" {
        return Err(Error::invalid("build outputs (--output) need BuildKit, which berthd does not have"));
    }
    if let Some(p) = q.get("platform").filter(|p| !p.is_empty() && !v.before(32)) {
        berth_builder::plan::check_platform(p)?;
    }
    let build_args: HashMap<String, Option<String>> = json_param(q, "buildargs")?;
    let labels: BTreeMap<String, String> = json_param(q, "labels")?;
    let cache_from: Vec<String> = json_param(q, "cachefrom")?;
    Ok(BuildOptions {
        dockerfile: match q.str("dockerfile") {
            "" => "Dockerfile".into(),
            f => f.to_owned(),
        },
        tags,
        build_args,
        labels,
        no_cache: q.bool("nocache"),
        target: q.get("target").filter(|t| !t.is_empty()).map(str::to_owned),
        quiet: q.bool("q"),
        rm: q.bool_or("rm", true),
        force_rm: q.bool("forcerm"),
        network_mode: q.str("networkmode").to_owned(),
        cache_from,
        pull: !v.before(16) && q.bool("pull"),
        secrets: BTreeMap::new(),
    })
}

/// The resource limits `docker build` gives every RUN step (`--memory`,
/// `--memory-swap`, `--cpu-shares`, `--cpuset-cpus`, `--cpuset-mems`, `--cpu-period`,
/// `--cpu-quota`, `--shm-size`, `--ulimit`), as the classic builder applies them.
pub fn limits(q: &Query) -> Result<berth_api::models::HostConfig> {
    let num = |k: &str| -> Result<Option<i64>> {
        match q.get(k) {
            None | Some("") => Ok(None),
            Some(v) => v
                .parse::<i64>()
                .map(|n| (n != 0).then_some(n))
                .map_err(|_| Error::invalid(format!("invalid {k}: {v:?} is not a number"))),
        }
    };
    let text = |k: &str| q.get(k).filter(|v| !v.is_empty()).map(str::to_owned);
    let ulimits: Vec<berth_api::models::ResourcesUlimits> = json_param(q, "ulimits")?;
    let memory = num("memory")?;
    if memory.is_some_and(|m| m < 6 * 1024 * 1024) {
        return Err(Error::invalid("Minimum memory limit allowed is 6MB"));
    }
    Ok(berth_api::models::HostConfig {
        memory,
        memory_swap: num("memswap")?,
        cpu_shares: num("cpushares")?,
        cpuset_cpus: text("cpusetcpus"),
        cpuset_mems: text("cpusetmems"),
        cpu_period: num("cpuperiod")?,
        cpu_quota: num("cpuquota")?,
        shm_size: num("shmsize")?,
        ulimits: (!ulimits.is_empty()).then_some(ulimits),
        cgroup_parent: text("cgroupparent"),
        // `--add-host`: every RUN step's /etc/hosts has them.
        extra_hosts: Some(q.all("extrahosts").iter().filter(|h| !h.is_empty()).cloned().collect::<Vec<_>>())
            .filter(|h| !h.is_empty()),
        ..Default::default()
    })
}

/// berth's extension for build secrets (the classic API has none): the header
/// `X-Berth-Build-Secrets` is base64 of a JSON object `{id: base64(content)}`.
pub const SECRETS_HEADER: &str = "X-Berth-Build-Secrets";

/// Decode the secrets header (absent: none).
pub fn secrets(v: Option<&[u8]>) -> Result<BTreeMap<String, SecretBytes>> {
    use base64::Engine;
    let Some(v) = v else {
        return Ok(BTreeMap::new());
    };
    let b64 = base64::engine::general_purpose::STANDARD;
    let bad = || Error::invalid(format!("invalid {SECRETS_HEADER} header"));
    let json = b64.decode(v.trim_ascii()).map_err(|_| bad())?;
    let m: BTreeMap<String, String> = serde_json::from_slice(&json).map_err(|_| bad())?;
    m.into_iter()
        .map(|(k, v)| Ok((k, SecretBytes(b64.decode(v).map_err(|_| bad())?))))
        .collect()
}

/// The context of `remote=<url>`: the download is a tar (plain or gzip) or, like
/// Docker, otherwise taken as the Dockerfile itself (named `dockerfile`).
fn remote_context(url: &str, dockerfile: &str) -> berth_errdefs::Result<Context> {
    let got = berth_builder::remote::fetch(url, "", false)
        .map_err(|e| Error::invalid(format!("unable to prepare context: {}", e.message())))?;
    let data = got.data;
    if berth_builder::context::looks_like_tar(&data) {
        return Context::from_tar(&data[..]);
    }
    let mut ctx = Context::default();
    ctx.insert(dockerfile.to_owned(), berth_builder::context::Entry::file(0o644, data));
    Ok(ctx)
}

/// The options of a build request, checked before its body is read.
/// The parts of a build request besides its body.
struct BuildRequest {
    opts: BuildOptions,
    limits: berth_api::models::HostConfig,
    remote: String,
    auths: HashMap<String, berth_distribution::Credentials>,
}

fn request_options(req: &Request<Incoming>, q: &Query, v: ApiVersion) -> Result<BuildRequest> {
    let mut opts = options(q, v)?;
    let limits = limits(q)?;
    opts.secrets = secrets(req.headers().get(SECRETS_HEADER).map(|v| v.as_bytes()))?;
    let auths = berth_distribution::Credentials::from_registry_config(
        req.headers().get("x-registry-config").and_then(|v| v.to_str().ok()),
    )?;
    let remote = q.str("remote").to_owned();
    if berth_builder::remote::is_git(&remote) {
        return Err(Error::invalid(format!(
            "remote git contexts are not supported by berthd (it runs no git): clone {remote} and build the directory, as docker build and berth build do"
        )));
    }
    if !remote.is_empty() && !berth_builder::remote::is_url(&remote) {
        return Err(Error::invalid(format!(
            "unable to prepare context: remote {remote:?} is not an http(s) URL"
        )));
    }
    Ok(BuildRequest { opts, limits, remote, auths })
}

/// `POST /build`: the body is the context tar; the answer a JSON-message stream.
/// `POST /build`. Clients before API 1.30 get no `aux` messages (the image ids),
/// as from dockerd.
pub async fn build(d: &Arc<Daemon>, req: Request<Incoming>, q: &Query, v: ApiVersion) -> Result {
    let BuildRequest { opts, limits, remote, auths } = match request_options(&req, q, v) {
        Ok(v) => v,
        Err(e) => {
            // Read the context the client is still sending (as Go's server does), so
            // that it gets this answer rather than a broken pipe.
            crate::http::drain_body(req.into_body()).await;
            return Err(e);
        }
    };
    let t0 = std::time::Instant::now();
    // Contexts up to 8 MiB stay in memory; larger ones go to disk as they arrive.
    let body = crate::http::body_upload(&d.cfg.data_root, req.into_body(), "context", 8 << 20).await?;
    let t_body = t0.elapsed();
    let dockerfile = opts.dockerfile.clone();
    let ctx = tokio::task::spawn_blocking(move || {
        let r = if !remote.is_empty() {
            remote_context(&remote, &dockerfile)
        } else if body.is_empty() {
            Ok(Context::default())
        } else {
            body.reader().map_err(Error::from).and_then(Context::from_tar)
        };
        body.discard();
        r
    })
    .await
    .map_err(|e| Error::internal(e.to_string()))??;
    let t_ctx = t0.elapsed();
    let (tx, resp) = stream(200, Some("application/json"));
    let d = d.clone();
    let rt = tokio::runtime::Handle::current();
    // The builder calls back from inside `block_on`, so it must never block on the
    // response channel: an unbounded queue feeds it.
    let (utx, mut urx) = tokio::sync::mpsc::unbounded_channel::<bytes::Bytes>();
    let gone = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let gone2 = gone.clone();
    tokio::spawn(async move {
        while let Some(b) = urx.recv().await {
            if tx.send(b).await.is_err() {
                gone2.store(true, std::sync::atomic::Ordering::Relaxed);
                break;
            }
        }
    });
    // Until the first line goes out, a failure is answered with an HTTP status (as
    // dockerd answers a parse error or an empty Dockerfile): `first` says which.
    let (first_tx, first_rx) = tokio::sync::oneshot::channel::<Option<Failure>>();
    let first_tx = std::sync::Mutex::new(Some(first_tx));
    tokio::task::spawn_blocking(move || {
        let send = |m: &Msg| {
            if let Some(f) = first_tx.lock().unwrap_or_else(|e| e.into_inner()).take() {
                let _ = f.send(None);
            }
            let _ = utx.send(json_line(&m.to_json(), true));
        };
        // A quiet build's output is kept aside, as dockerd keeps it (aux and pull
        // progress too): sent only if the build fails.
        let mut buffered: Vec<Msg> = Vec::new();
        let quiet = opts.quiet;
        let want_aux = !v.before(30);
        let mut out = |m: Msg| match m {
            Msg::Aux(_) if !want_aux => {}
            Msg::Error { .. } => send(&m),
            m if quiet => buffered.push(m),
            m => send(&m),
        };
        let result = match crate::build::DaemonBackend::new(d, rt, gone, limits, auths) {
            Ok(mut be) => {
                let built = berth_builder::build(&mut be, ctx, &opts, &mut out);
                let settled = be.settle();
                built.and_then(|id| settled.map(|()| id).map_err(Into::into))
            }
            Err(e) => Err(e.into()),
        };
        tracing::debug!(
            "build: context received {t_body:?}, unpacked {t_ctx:?}, built {:?}",
            t0.elapsed()
        );
        match result {
            Ok(id) => {
                if quiet {
                    send(&Msg::Stream(format!("{id}\n")));
                }
            }
            Err(f) => {
                for m in buffered.drain(..) {
                    send(&m);
                }
                let early = first_tx.lock().unwrap_or_else(|e| e.into_inner()).take();
                match early {
                    Some(early) => {
                        let _ = early.send(Some(f));
                    }
                    None => send(&Msg::Error {
                        code: f.code,
                        message: f.message,
                    }),
                }
            }
        }
    });
    match first_rx.await {
        Ok(Some(f)) => Err(Error::new(f.kind, f.message)),
        _ => Ok(resp),
    }
}

/// `POST /build/prune` (`docker builder prune`): the build cache records not in
/// use (filters `until` / `unused-for`, `label`, `keep-storage` bytes), with the space
/// freed.
pub async fn prune(d: &Arc<Daemon>, q: &Query) -> Result {
    let f = q.filters()?;
    // `label`/`label!` as `docker system prune --filter label=...` sends them to every
    // prune: cache records carry no labels, so `label` keeps them all.
    f.validate(&["until", "unused-for", "label", "label!"])?;
    if !f.get("label").is_empty() {
        return Ok(json(200, &serde_json::json!({"CachesDeleted": null, "SpaceReclaimed": 0})));
    }
    let now = chrono::Utc::now().timestamp();
    let mut until = None;
    for v in f.get("until").iter().chain(f.get("unused-for")) {
        let t = berth_api::query::timestamp(v, now)?;
        until = Some(until.map_or(t, |u: i64| u.min(t)));
    }
    let opts = crate::build::usage::PruneOptions {
        until,
        keep_storage: q.int("keep-storage")?.unwrap_or(0).max(0) as u64,
    };
    let d = d.clone();
    let (ids, freed) = tokio::task::spawn_blocking(move || crate::build::usage::prune(&d, &opts))
        .await
        .map_err(|e| Error::internal(e.to_string()))??;
    Ok(json(
        200,
        &serde_json::json!({
            "CachesDeleted": if ids.is_empty() { None } else { Some(ids) },
            "SpaceReclaimed": freed
        }),
    ))
}
