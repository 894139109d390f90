//! Container endpoints.

use std::sync::Arc;

use berth_api::version::ApiVersion;
use berth_api::models::{ContainerCreateBody, ContainerCreateResponse};
use berth_errdefs::Error;
use berth_shim_proto::Request as ShimRequest;
use http::{HeaderValue, Request, StatusCode};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;

use crate::container::lifecycle::{self, WaitCondition};
use crate::container::{attach as bridge, logs, shim, Paths, PendingAttach};
use crate::http::{body_value, empty, json, json_line, stream, Body, Query, Resp, Result};
use crate::Daemon;

pub fn list(d: &Arc<Daemon>, q: &Query) -> Result {
    let f = q.filters()?;
    let mut out = crate::container::inspect::list(d, q.bool("all"), q.int("limit")?, &f)?;
    if q.bool("size") {
        for s in &mut out {
            if let Some(c) = s.id.as_deref().and_then(|id| d.containers.get(id).ok()) {
                // dockerd's list omits a zero size (`omitempty`; inspect's are pointers).
                let (rw, rootfs) = crate::container::inspect::sizes(d, &c.record());
                s.size_rw = Some(rw).filter(|n| *n != 0);
                s.size_root_fs = Some(rootfs).filter(|n| *n != 0);
            }
        }
    }
    Ok(json(200, &out))
}

pub async fn create(d: &Arc<Daemon>, req: Request<Incoming>, q: &Query, v: ApiVersion) -> Result {
    let mut raw: serde_json::Value = body_value(req.into_body()).await?;
    berth_api::gojson::strslices(&mut raw, &berth_api::gojson::STRSLICE_FIELDS);
    legacy_create_body(&mut raw, v)?;
    let legacy = crate::container::verify::kernel_memory_warnings(&raw["HostConfig"]);
    // API 1.41's `MacAddress` sits in the container config (later APIs put it in the
    // endpoint settings): the create gives it to its network mode's endpoint.
    let mac = raw["MacAddress"].as_str().map(str::to_owned);
    let body: ContainerCreateBody = if raw.is_null() {
        ContainerCreateBody::default()
    } else {
        berth_api::gojson::from_value(raw).map_err(|e| Error::invalid(format!("invalid JSON: {e}")))?
    };
    let platform = if v.before(41) { "" } else { q.str("platform") };
    let (id, mut warnings) = crate::container::create::create(d, q.get("name"), platform, body, mac).await?;
    warnings.splice(0..0, legacy);
    Ok(json(201, &ContainerCreateResponse { id, warnings }))
}

/// The create body as dockerd 20.10 reads it from any client, then from older ones:
/// - host settings at the top level (the pre-1.20 shape, `{"Image":..,"Memory":..}`)
///   are the host config when there is no `HostConfig`, else fill its zero
///   `Memory`, `MemorySwap`, `CpuShares`, `CpusetCpus`, `VolumeDriver`; a top-level
///   `Cpuset` is `CpusetCpus` (runconfig's `ContainerConfigWrapper`);
/// - before 1.19 `CpuShares` is clamped to 2..=262144; before 1.25 `AutoRemove` is off
///   (those clients remove containers themselves); before 1.40 `KernelMemoryTCP` and
///   `BindOptions.NonRecursive` are ignored and the default IPC mode is `shareable`.
///   (Before 1.41 cgroup v1 hosts default to the host cgroup namespace: berthd's
///   default there for every version.)
fn legacy_create_body(raw: &mut serde_json::Value, v: ApiVersion) -> Result<()> {
    use serde_json::Value;
    let Some(obj) = raw.as_object() else { return Ok(()) };
    // Every key but the container config's big ones (no host setting has their names).
    const SKIP: [&str; 8] = ["HostConfig", "NetworkingConfig", "Cmd", "Entrypoint", "Env", "Labels", "Volumes", "Healthcheck"];
    let top: serde_json::Map<String, Value> =
        obj.iter().filter(|(k, _)| !SKIP.contains(&k.as_str())).map(|(k, v)| (k.clone(), v.clone())).collect();
    let top: berth_api::models::HostConfig = berth_api::gojson::from_value(Value::Object(top))
        .map_err(|e| Error::invalid(format!("invalid JSON: {e}")))?;
    let top = serde_json::to_value(top).unwrap_or_default();
    let set = |v: &Value| !(v.is_null() || v == &Value::from(0) || v == &Value::from(""));
    if top.as_object().is_some_and(|t| !t.is_empty()) {
        if raw["HostConfig"].is_null() {
            raw["HostConfig"] = top;
        } else if raw["HostConfig"].is_object() {
            for k in ["Memory", "MemorySwap", "CpuShares", "CpusetCpus", "VolumeDriver"] {
                if set(&top[k]) && !set(&raw["HostConfig"][k]) {
                    raw["HostConfig"][k] = top[k].clone();
                }
            }
        }
    }
    if let Some(cpuset) = raw.get("Cpuset").filter(|c| set(c)).cloned() {
        if raw["HostConfig"].is_null() {
            raw["HostConfig"] = serde_json::json!({});
        }
        if raw["HostConfig"].is_object() && !set(&raw["HostConfig"]["CpusetCpus"]) {
            raw["HostConfig"]["CpusetCpus"] = cpuset;
        }
    }
    let Some(hc) = raw.get_mut("HostConfig").and_then(Value::as_object_mut) else { return Ok(()) };
    if v.before(19) {
        if let Some(shares) = hc.get("CpuShares").and_then(Value::as_i64).filter(|s| *s > 0) {
            hc.insert("CpuShares".into(), shares.clamp(2, 262_144).into());
        }
    }
    if v.before(25) {
        hc.insert("AutoRemove".into(), false.into());
    }
    if v.before(40) {
        hc.remove("KernelMemoryTCP");
        if let Some(mounts) = hc.get_mut("Mounts").and_then(Value::as_array_mut) {
            for m in mounts {
                if let Some(bo) = m.get_mut("BindOptions").and_then(Value::as_object_mut) {
                    bo.remove("NonRecursive");
                }
            }
        }
        if hc.get("IpcMode").and_then(Value::as_str).unwrap_or("").is_empty() {
            hc.insert("IpcMode".into(), "shareable".into());
        }
    }
    Ok(())
}

/// `GET /containers/{id}/json`, in API 1.20's shape for 1.20 clients (no
/// `NetworkSettings.Networks`, `Config` with `MacAddress`, `NetworkDisabled`,
/// `ExposedPorts` and `VolumeDriver` always present) and in 1.19's before that
/// (`Volumes` and `VolumesRW` maps instead of `Mounts`; `Config` also with `Memory`,
/// `MemorySwap`, `CpuShares` and `Cpuset` from the host config), as dockerd 20.10's
/// `containerInspect120`/`containerInspectPre120`.
pub fn inspect(d: &Arc<Daemon>, id: &str, q: &Query, api: ApiVersion) -> Result {
    let c = d.containers.get(id)?;
    let mut v = crate::container::inspect::inspect_json(d, &c);
    if q.bool("size") {
        let (rw, rootfs) = crate::container::inspect::sizes(d, &c.record());
        v["SizeRw"] = rw.into();
        v["SizeRootFs"] = rootfs.into();
    }
    if api.before(21) {
        legacy_inspect(&mut v, api);
    }
    Ok(json(200, &v))
}

fn legacy_inspect(v: &mut serde_json::Value, api: ApiVersion) {
    use serde_json::Value;
    if let Some(ns) = v["NetworkSettings"].as_object_mut() {
        ns.remove("Networks");
    }
    let hc = v["HostConfig"].clone();
    let or = |x: &Value, d: Value| if x.is_null() { d } else { x.clone() };
    if let Some(cfg) = v["Config"].as_object_mut() {
        for (k, zero) in [("MacAddress", Value::from("")), ("NetworkDisabled", Value::from(false))] {
            let cur = cfg.get(k).unwrap_or(&Value::Null);
            let val = or(cur, zero);
            cfg.insert(k.into(), val);
        }
        cfg.entry("ExposedPorts").or_insert(Value::Null);
        cfg.insert("VolumeDriver".into(), or(&hc["VolumeDriver"], "".into()));
        if api.before(20) {
            cfg.insert("Memory".into(), or(&hc["Memory"], 0.into()));
            cfg.insert("MemorySwap".into(), or(&hc["MemorySwap"], 0.into()));
            cfg.insert("CpuShares".into(), or(&hc["CpuShares"], 0.into()));
            cfg.insert("Cpuset".into(), or(&hc["CpusetCpus"], "".into()));
        }
    }
    if api.before(20) {
        let mounts = v.as_object_mut().and_then(|o| o.remove("Mounts")).unwrap_or_default();
        let (mut vols, mut rw) = (serde_json::Map::new(), serde_json::Map::new());
        for m in mounts.as_array().into_iter().flatten() {
            let Some(dest) = m["Destination"].as_str() else { continue };
            vols.insert(dest.to_owned(), m["Source"].clone());
            rw.insert(dest.to_owned(), m["RW"].clone());
        }
        v["Volumes"] = Value::Object(vols);
        v["VolumesRW"] = Value::Object(rw);
    }
}

/// `POST /containers/{id}/start`. A body (a host config) was deprecated in API 1.22
/// and removed in 1.24: dockerd refuses a non-empty one from 1.24 on with the message
/// below. Older clients' host configs are refused too (dockerd replaced the
/// container's host config with it; berthd settles a container's mounts, network
/// endpoints and devices at create and does not redo them at start) — an empty
/// body or `{}`/`null` starts the container.
pub async fn start(d: &Arc<Daemon>, id: &str, req: Request<Incoming>, v: ApiVersion) -> Result {
    // A non-nil JSON object is at least 7 bytes (dockerd's test); a chunked body has
    // no exact length.
    if hyper::body::Body::size_hint(req.body()).exact().is_none_or(|n| n > 7) {
        if !v.before(24) {
            return Err(Error::invalid(
                "starting container with non-empty request body was deprecated since API v1.22 and removed in v1.24",
            ));
        }
        let body: serde_json::Value = body_value(req.into_body()).await?;
        if body.as_object().is_some_and(|o| o.values().any(|x| !x.is_null())) {
            return Err(Error::invalid(format!(
                "a host configuration given at start (API {v}) is not supported by berthd: give it to create (`HostConfig` in POST /containers/create)"
            )));
        }
    }
    let c = d.containers.get(id)?;
    crate::container::start::start(d, &c).await?;
    Ok(empty(204))
}

pub async fn stop(d: &Arc<Daemon>, id: &str, q: &Query) -> Result {
    let c = d.containers.get(id)?;
    lifecycle::stop(d, &c, q.int("t")?, q.get("signal")).await?;
    Ok(empty(204))
}

pub async fn restart(d: &Arc<Daemon>, id: &str, q: &Query) -> Result {
    let c = d.containers.get(id)?;
    lifecycle::restart(d, &c, q.int("t")?, q.get("signal")).await?;
    Ok(empty(204))
}

/// `POST /containers/{id}/kill`. Before API 1.20 killing a container that is not
/// running is not an error (dockerd keeps that for those clients).
pub async fn kill(d: &Arc<Daemon>, id: &str, q: &Query, v: ApiVersion) -> Result {
    let c = d.containers.get(id)?;
    let sig = lifecycle::parse_signal(q.str("signal"))?;
    match lifecycle::kill(d, &c, sig).await {
        Err(e) if v.before(20) && e.kind() == berth_errdefs::Kind::Conflict => return Ok(empty(204)),
        r => r?,
    }
    // As dockerd: a SIGKILL is answered once the container is dead, so an inspect or
    // a plain rm right after sees it stopped.
    if sig == libc::SIGKILL {
        lifecycle::wait_stopped(&c, Some(std::time::Duration::from_secs(10))).await;
    }
    Ok(empty(204))
}

/// `POST /containers/{id}/update` (`PidsLimit` from API 1.40 on, as dockerd).
pub async fn update(d: &Arc<Daemon>, id: &str, req: Request<Incoming>, v: ApiVersion) -> Result {
    // the body first: answering 404 while the client still sends it breaks its pipe
    let mut body: serde_json::Value = crate::http::body_value(req.into_body()).await?;
    if v.before(40) {
        if let Some(o) = body.as_object_mut() {
            o.remove("PidsLimit");
        }
    }
    let c = d.containers.get(id)?;
    let warnings = crate::container::update::update(d, &c, body).await?;
    // dockerd's nil slice: null when there is none.
    let warnings = (!warnings.is_empty()).then_some(warnings);
    Ok(json(200, &serde_json::json!({ "Warnings": warnings })))
}

pub async fn pause(d: &Arc<Daemon>, id: &str, on: bool) -> Result {
    let c = d.containers.get(id)?;
    lifecycle::set_paused(d, &c, on).await?;
    Ok(empty(204))
}

pub fn rename(d: &Arc<Daemon>, id: &str, q: &Query) -> Result {
    let c = d.containers.get(id)?;
    lifecycle::rename(d, &c, q.str("name"))?;
    Ok(empty(204))
}

pub async fn resize(d: &Arc<Daemon>, id: &str, q: &Query) -> Result {
    let c = d.containers.get(id)?;
    let h = q.int("h")?.unwrap_or(0).clamp(0, u16::MAX as i64) as u16;
    let w = q.int("w")?.unwrap_or(0).clamp(0, u16::MAX as i64) as u16;
    lifecycle::resize(d, &c, h, w).await?;
    Ok(empty(200))
}

pub async fn remove(d: &Arc<Daemon>, id: &str, q: &Query) -> Result {
    if q.bool("link") {
        remove_link(d, id)?;
        return Ok(empty(204));
    }
    let c = d.containers.get(id)?;
    lifecycle::remove(d, &c, q.bool("force"), q.bool("v")).await?;
    d.execs.forget_container(&c.id);
    Ok(empty(204))
}

/// `DELETE /containers/{/parent/alias}?link=1`: drop a legacy link from its parent
/// (dockerd's rmLink; the parent's /etc/hosts loses it at its next start).
fn remove_link(d: &Arc<Daemon>, name: &str) -> Result<()> {
    let name = if name.starts_with('/') { name.to_owned() } else { format!("/{name}") };
    let (parent, alias) = name.rsplit_once('/').unwrap_or(("", &name));
    if parent.is_empty() {
        return Err(Error::internal("Conflict, cannot remove the default link name of the container"));
    }
    let p = d
        .containers
        .get(parent.trim_start_matches('/'))
        .map_err(|_| Error::internal(format!("Cannot get parent {parent} for link name {name}")))?;
    p.update(d, |r| {
        if let Some(links) = &mut r.host_config.links {
            links.retain(|l| crate::container::net::parse_link(l).1 != alias);
        }
    })?;
    Ok(())
}

/// `POST /containers/{id}/wait`: headers at once, the body when the condition holds.
/// Before API 1.30 (dockerd's legacy behaviour) there is no `condition` (the container
/// not running) and the whole answer comes when it holds.
pub async fn wait(d: &Arc<Daemon>, id: &str, q: &Query, v: ApiVersion) -> Result {
    let c = d.containers.get(id)?;
    // dockerd 20.10's body: `{"Error":null,"StatusCode":N}` (its `Error` is not
    // omitted when empty; bollard's type would leave it out).
    let body = |code: i64| serde_json::json!({"Error": null, "StatusCode": code});
    if v.before(30) {
        let code = lifecycle::wait(&c, WaitCondition::parse("")?).await;
        return Ok(json(200, &body(code)));
    }
    let cond = WaitCondition::parse(q.str("condition"))?;
    let (tx, resp) = stream(200, Some("application/json"));
    tokio::spawn(async move {
        tokio::select! {
            code = lifecycle::wait(&c, cond) => {
                let _ = tx.send(json_line(&body(code), false)).await;
            }
            _ = tx.closed() => {}
        }
    });
    Ok(resp)
}

fn is_upgrade(req: &Request<Incoming>) -> bool {
    req.headers()
        .get(http::header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("tcp"))
}

/// The 101 response of a hijacked stream.
pub fn upgraded_response(tty: bool) -> Resp {
    let mut r = empty(101);
    *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = r.headers_mut();
    let ct = if tty { "application/vnd.docker.raw-stream" } else { "application/vnd.docker.multiplexed-stream" };
    h.insert(http::header::CONTENT_TYPE, HeaderValue::from_static(ct));
    h.insert(http::header::CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(http::header::UPGRADE, HeaderValue::from_static("tcp"));
    r
}

/// Serve a stream either on the hijacked connection or as a plain response body:
/// first what `prelude` yields (a replay of the logs), then, unless `shim_conn`
/// gives nothing, the live stream.
pub fn serve_stream<F>(
    mut req: Request<Incoming>,
    tty: bool,
    stdin: Option<Vec<u8>>,
    prelude: Option<tokio::sync::mpsc::Receiver<bytes::Bytes>>,
    shim_conn: F,
    done: impl FnOnce(Option<berth_shim_proto::ExitStatus>) + Send + 'static,
) -> Resp
where
    F: std::future::Future<Output = Option<tokio::net::UnixStream>> + Send + 'static,
{
    async fn replay<W: tokio::io::AsyncWrite + Unpin>(w: &mut W, prelude: Option<tokio::sync::mpsc::Receiver<bytes::Bytes>>) -> bool {
        use tokio::io::AsyncWriteExt;
        let Some(mut rx) = prelude else { return true };
        while let Some(b) = rx.recv().await {
            if w.write_all(&b).await.is_err() {
                return false;
            }
        }
        w.flush().await.is_ok()
    }
    async fn finish<W: tokio::io::AsyncWrite + Unpin>(mut w: W) {
        use tokio::io::AsyncWriteExt;
        let _ = w.shutdown().await;
    }
    if is_upgrade(&req) {
        let on_upgrade = hyper::upgrade::on(&mut req);
        tokio::spawn(async move {
            let mut up = match on_upgrade.await {
                Ok(up) => TokioIo::new(up),
                Err(e) => {
                    tracing::debug!("upgrade failed: {e}");
                    return done(None);
                }
            };
            if prelude.is_some() {
                // Clients such as docker-py read the 101's headers through a buffered
                // reader and then take the raw socket: bytes that arrived with the
                // headers would be lost in that buffer. dockerd's log replay starts
                // later than its 101 goes out; so does ours.
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            if !replay(&mut up, prelude).await {
                return done(None);
            }
            match shim_conn.await {
                Some(s) => done(bridge::bridge(up, s, tty, stdin.is_some(), stdin).await),
                None => {
                    finish(up).await;
                    done(None)
                }
            }
        });
        return upgraded_response(tty);
    }
    let (mut pipe, rx) = bridge::body_pipe();
    tokio::spawn(async move {
        if !replay(&mut pipe, prelude).await {
            return done(None);
        }
        match shim_conn.await {
            Some(s) => done(bridge::bridge(pipe, s, tty, false, None).await),
            None => {
                finish(pipe).await;
                done(None)
            }
        }
    });
    let ct = if tty { "application/vnd.docker.raw-stream" } else { "application/vnd.docker.multiplexed-stream" };
    let mut r = http::Response::new(Body::Channel(rx, None));
    r.headers_mut().insert(http::header::CONTENT_TYPE, HeaderValue::from_static(ct));
    r
}

/// `POST /containers/{id}/attach` (hijacked) and `GET …/attach/ws` (`ws`: over a
/// websocket, see [`super::ws`]): with `logs`, the log so far first; with `stream`,
/// then the live output (waiting for a start if the container is not running).
pub fn attach(d: &Arc<Daemon>, id: &str, mut req: Request<Incoming>, q: &Query, ws: bool) -> Result {
    let c = d.containers.get(id)?;
    let ws_accept = if ws { Some(super::ws::accept_key(&req)?) } else { None };
    let (live, logs) = (q.bool("stream"), q.bool("logs"));
    if !live && !logs {
        return Err(Error::invalid("Bad parameters: you must choose at least one stream"));
    }
    let (stdin, stdout, stderr) = (q.bool("stdin"), q.bool("stdout"), q.bool("stderr"));
    let stdin = stdin && c.record().config.open_stdin.unwrap_or(false);
    let tty = c.tty();
    let detach = berth_api::query::detach_keys(q.str("detachKeys"))?;
    let state = Paths::new(d, &c.id).state;
    let prelude = (logs && (stdout || stderr)).then(|| {
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        let o = logs::LogOptions {
            stdout,
            stderr,
            follow: false,
            timestamps: false,
            since: None,
            until: None,
            tail: None,
            details: false,
        };
        tokio::spawn(logs::stream(d.clone(), c.clone(), o, tx));
        rx
    });
    d.events.emit(
        berth_api::models::EventMessageTypeEnum::CONTAINER,
        "attach",
        &c.id,
        crate::container::event_attrs(&c.record()),
    );
    // Register before answering, so a `start` sent after the 101 cannot miss us.
    let pending = if !live || c.status().is_live() {
        None
    } else {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let waiting = PendingAttach::Waiting { stdin, stdout, stderr, tx };
        let entry = if d.warm.claimed_pid(&c.id).is_some() {
            // On a warm sandbox the shim is up: connect now rather than on the start's
            // path; the start waits for this before the process runs.
            let state = state.clone();
            PendingAttach::Connecting(tokio::spawn(async move { waiting.connect(&state).await }))
        } else {
            waiting
        };
        c.pending.lock().unwrap().push(entry);
        Some(rx)
    };
    let conn = async move {
        if !live {
            return None;
        }
        match pending {
            Some(rx) => rx.await.ok(),
            None => {
                let req = ShimRequest::Attach { stdin, stdout, stderr };
                shim::open_stream(&state, &req).await.ok().map(|(s, _)| s)
            }
        }
    };
    if let Some(accept) = ws_accept {
        let on_upgrade = hyper::upgrade::on(&mut req);
        tokio::spawn(async move {
            let Ok(up) = on_upgrade.await else { return };
            let mut pipe = super::ws::pipe(up);
            if let Some(rx) = prelude {
                if !super::ws::replay_raw(&mut pipe, rx, !tty).await {
                    return;
                }
            }
            match conn.await {
                // Raw output either way; the detach keys, as for a hijacked attach,
                // only with a terminal.
                Some(s) => {
                    bridge::bridge(pipe, s, true, stdin, (stdin && tty).then_some(detach)).await;
                }
                None => {
                    use tokio::io::AsyncWriteExt;
                    let _ = pipe.shutdown().await;
                }
            }
        });
        return Ok(super::ws::switching(&accept));
    }
    Ok(serve_stream(req, tty, stdin.then_some(detach), prelude, conn, |_| {}))
}

/// `GET /containers/{id}/logs`.
pub fn logs(d: &Arc<Daemon>, id: &str, q: &Query) -> Result {
    let c = d.containers.get(id)?;
    let (stdout, stderr) = (q.bool("stdout"), q.bool("stderr"));
    if !stdout && !stderr {
        return Err(Error::invalid("Bad parameters: you must choose at least one stream"));
    }
    let driver = c.record().host_config.log_config.and_then(|l| l.typ).unwrap_or_default();
    if driver == "none" {
        return Err(Error::not_implemented("configured logging driver does not support reading"));
    }
    // A negative tail means all of it, as dockerd reads it.
    let tail = match q.str("tail") {
        "" | "all" => None,
        t => Some(t.parse::<i64>().map_err(|_| Error::invalid(format!("invalid tail value {t}")))?)
            .filter(|n| *n >= 0)
            .map(|n| n as usize),
    };
    let o = logs::LogOptions {
        stdout,
        stderr,
        follow: q.bool("follow"),
        timestamps: q.bool("timestamps"),
        since: logs::parse_time(q.str("since")).map_err(Error::invalid)?.filter(|s| *s > 0),
        until: logs::parse_time(q.str("until")).map_err(Error::invalid)?.filter(|s| *s > 0),
        tail,
        details: q.bool("details"),
    };
    let (tx, mut resp) = stream(200, None);
    resp.headers_mut().remove(http::header::CONTENT_TYPE);
    tokio::spawn(logs::stream(d.clone(), c, o, tx));
    Ok(resp)
}

/// `GET /containers/{id}/top`: `ps` of the container's processes (from its cgroup).
pub async fn top(d: &Arc<Daemon>, id: &str, q: &Query) -> Result {
    let c = d.containers.get(id)?;
    if !c.status().is_live() {
        return Err(Error::conflict(format!("Container {} is not running", c.id)));
    }
    let pids = cgroup_pids(&c.record().cgroup_path());
    let args = if q.str("ps_args").is_empty() { "-ef".to_owned() } else { q.str("ps_args").to_owned() };
    let out = tokio::process::Command::new("ps")
        .args(args.split_whitespace())
        .output()
        .await
        .map_err(|e| Error::internal(format!("ps: {e}")))?;
    if !out.status.success() {
        return Err(Error::internal(format!("ps: {}", String::from_utf8_lossy(&out.stderr).trim())));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or("");
    let titles: Vec<String> = header.split_whitespace().map(str::to_owned).collect();
    let pid_col = titles.iter().position(|t| t == "PID").unwrap_or(1);
    let mut procs = Vec::new();
    for l in lines {
        let fields: Vec<&str> = l.split_whitespace().collect();
        if fields.len() < titles.len() {
            continue;
        }
        let Ok(pid) = fields[pid_col].parse::<i32>() else { continue };
        if !pids.contains(&pid) {
            continue;
        }
        let mut row: Vec<String> = fields[..titles.len() - 1].iter().map(|s| s.to_string()).collect();
        row.push(fields[titles.len() - 1..].join(" "));
        procs.push(row);
    }
    Ok(json(200, &serde_json::json!({"Titles": titles, "Processes": procs})))
}

/// Pids in a container's cgroup (v2 unified or v1 pids/memory hierarchy).
/// The processes in a container's cgroup (`cg`: its cgroup path).
pub fn cgroup_pids(cg: &str) -> Vec<i32> {
    let candidates = [
        format!("/sys/fs/cgroup{cg}/cgroup.procs"),
        format!("/sys/fs/cgroup/pids{cg}/cgroup.procs"),
        format!("/sys/fs/cgroup/memory{cg}/cgroup.procs"),
        format!("/sys/fs/cgroup/cpu{cg}/cgroup.procs"),
    ];
    for p in candidates {
        if let Ok(s) = std::fs::read_to_string(&p) {
            return s.lines().filter_map(|l| l.trim().parse().ok()).collect();
        }
    }
    Vec::new()
}

/// `POST /containers/prune`.
/// `POST /containers/prune`: every stopped container, filtered by `until`, `label`
/// and `label!`; `SpaceReclaimed` is what their writable layers held.
pub async fn prune(d: &Arc<Daemon>, q: &Query) -> Result {
    let f = q.filters()?;
    f.validate(&["until", "label", "label!"])?;
    let now = chrono::Utc::now().timestamp();
    let until = f.get("until").iter().map(|u| berth_api::query::timestamp(u, now)).collect::<Result<Vec<i64>>>()?;
    let mut deleted = Vec::new();
    let mut reclaimed = 0u64;
    for c in d.containers.all() {
        let r = c.record();
        if r.state.status.is_live() {
            continue;
        }
        let labels = r.config.labels.clone().unwrap_or_default();
        let label = |k: &str| labels.get(k).map(String::as_str);
        if !f.match_labels(label) || !f.match_labels_not(label) {
            continue;
        }
        let created = chrono::DateTime::parse_from_rfc3339(&r.created).map(|t| t.timestamp()).unwrap_or(0);
        if until.iter().any(|u| created > *u) {
            continue;
        }
        let upper = d.snap.upper_dir(&r.id);
        let size = tokio::task::spawn_blocking(move || berth_snapshot::dir_size(&upper)).await.unwrap_or(0);
        if lifecycle::remove(d, &c, false, false).await.is_ok() {
            reclaimed += size;
            deleted.push(r.id);
        }
    }
    Ok(json(
        200,
        &serde_json::json!({"ContainersDeleted": if deleted.is_empty() { None } else { Some(deleted) }, "SpaceReclaimed": reclaimed}),
    ))
}

/// How long before a `stream=0` sample its priming one is taken.
const PRIME: std::time::Duration = std::time::Duration::from_millis(250);

/// `GET /containers/{id}/stats`: one sample (`stream=0`: primed by a first one
/// [`PRIME`] earlier, so that `precpu_stats` give a CPU rate, unless `one-shot`) or one
/// per second until the client goes away or the container stops.
/// Before API 1.21 a sample has one `network` (the sum over the interfaces) instead
/// of `networks`; `one-shot` is read from 1.41 on (dockerd 20.10).
pub fn stats(d: &Arc<Daemon>, id: &str, q: &Query, v: ApiVersion) -> Result {
    use crate::container::stats::sample;
    let c = d.containers.get(id)?;
    let streaming = q.bool_or("stream", true);
    let one_shot = !v.before(41) && q.bool("one-shot");
    let legacy_network = v.before(21);
    let (tx, mut resp) = stream(200, Some("application/json"));
    if streaming {
        resp.headers_mut().remove(http::header::CONTENT_TYPE);
    }
    tokio::spawn(async move {
        let mut prev: Option<serde_json::Value> = None;
        loop {
            let r = c.record();
            let pre = prev.as_ref().map(|p| (&p["cpu_stats"], p["read"].as_str().unwrap_or("")));
            let s = if r.state.status.is_live() {
                sample(&r.id, &r.cgroup_path(), &r.name, r.state.pid, pre)
            } else {
                serde_json::json!({"read": crate::container::ZERO_TIME, "preread": crate::container::ZERO_TIME, "id": r.id, "name": format!("/{}", r.name)})
            };
            let first = prev.is_none();
            prev = Some(s.clone());
            let s = if legacy_network { network_pre121(s) } else { s };
            if (streaming || !first || one_shot || !r.state.status.is_live())
                && (tx.send(json_line(&s, false)).await.is_err() || !streaming || !r.state.status.is_live()) {
                    return;
                }
            // dockerd answers `stream=0` after its collector's second 1 s tick: the CPU
            // rate needs two samples, not a second between them (the cgroup's usage is
            // in ns, the host's in 10 ms ticks: 250 ms keep the rate within ~2 %)
            let wait = if streaming { std::time::Duration::from_secs(1) } else { PRIME };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = tx.closed() => return,
            }
        }
    });
    Ok(resp)
}

/// A stats sample as API 1.20 clients read it: `networks` summed into one `network`.
fn network_pre121(mut s: serde_json::Value) -> serde_json::Value {
    let Some(o) = s.as_object_mut() else { return s };
    let Some(nets) = o.remove("networks") else { return s };
    let mut sum = serde_json::Map::new();
    for k in ["rx_bytes", "rx_packets", "rx_errors", "rx_dropped", "tx_bytes", "tx_packets", "tx_errors", "tx_dropped"] {
        let total: u64 = nets.as_object().into_iter().flatten().filter_map(|(_, n)| n[k].as_u64()).sum();
        sum.insert(k.into(), total.into());
    }
    o.insert("network".into(), serde_json::Value::Object(sum));
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn top_level_host_settings_are_the_host_config() {
        let mut b = json!({"Image": "busybox", "Memory": 33554432, "CpuShares": 512, "Binds": ["/a:/b"], "Cpuset": "0"});
        legacy_create_body(&mut b, ApiVersion(1, 19)).unwrap();
        assert_eq!(b["HostConfig"]["Memory"], 33554432);
        assert_eq!(b["HostConfig"]["Binds"], json!(["/a:/b"]));
        assert_eq!(b["HostConfig"]["CpusetCpus"], "0");
        // ... and fill only the zero fields of a HostConfig that is there.
        let mut b = json!({"Image": "busybox", "Memory": 1, "CpuShares": 512, "Binds": ["/a:/b"], "HostConfig": {"Memory": 2}});
        legacy_create_body(&mut b, ApiVersion::NEWEST).unwrap();
        assert_eq!(b["HostConfig"]["Memory"], 2);
        assert_eq!(b["HostConfig"]["CpuShares"], 512);
        assert!(b["HostConfig"]["Binds"].is_null());
        // A body of the current shape is left alone.
        let mut b = json!({"Image": "busybox", "Cmd": ["true"], "HostConfig": {"AutoRemove": true}});
        let before = b.clone();
        legacy_create_body(&mut b, ApiVersion::NEWEST).unwrap();
        assert_eq!(b, before);
    }

    #[test]
    fn older_clients_get_older_create_defaults() {
        let body = json!({"Image": "busybox", "HostConfig": {"AutoRemove": true, "CpuShares": 1, "KernelMemoryTCP": 5,
            "Mounts": [{"Type": "bind", "Source": "/a", "Target": "/b", "BindOptions": {"NonRecursive": true}}]}});
        let mut b = body.clone();
        legacy_create_body(&mut b, ApiVersion(1, 18)).unwrap();
        let hc = &b["HostConfig"];
        assert_eq!(hc["CpuShares"], 2);
        assert_eq!(hc["AutoRemove"], false);
        assert!(hc["KernelMemoryTCP"].is_null());
        assert!(hc["Mounts"][0]["BindOptions"]["NonRecursive"].is_null());
        assert_eq!(hc["IpcMode"], "shareable");
        let mut b = body.clone();
        legacy_create_body(&mut b, ApiVersion(1, 40)).unwrap();
        assert_eq!(b, body);
    }

    #[test]
    fn old_inspect_shapes() {
        let current = json!({
            "Id": "x",
            "Config": {"Image": "busybox"},
            "HostConfig": {"Memory": 5, "CpuShares": 7, "CpusetCpus": "0", "VolumeDriver": "", "MemorySwap": 10},
            "Mounts": [{"Type": "volume", "Source": "/v/_data", "Destination": "/data", "RW": true}],
            "NetworkSettings": {"IPAddress": "", "Networks": {"bridge": {}}}
        });
        let mut v = current.clone();
        legacy_inspect(&mut v, ApiVersion(1, 20));
        assert!(v["NetworkSettings"].get("Networks").is_none());
        assert_eq!(v["Mounts"], current["Mounts"]);
        assert_eq!(v["Config"]["VolumeDriver"], "");
        assert_eq!(v["Config"]["NetworkDisabled"], false);
        assert!(v["Config"].get("Memory").is_none());
        let mut v = current.clone();
        legacy_inspect(&mut v, ApiVersion(1, 19));
        assert!(v.get("Mounts").is_none());
        assert_eq!(v["Volumes"], json!({"/data": "/v/_data"}));
        assert_eq!(v["VolumesRW"], json!({"/data": true}));
        assert_eq!(v["Config"]["Memory"], 5);
        assert_eq!(v["Config"]["CpuShares"], 7);
        assert_eq!(v["Config"]["Cpuset"], "0");
    }

    #[test]
    fn stats_before_1_21_sum_the_networks() {
        let s = json!({"read": "t", "networks": {"eth0": {"rx_bytes": 10, "tx_bytes": 1}, "eth1": {"rx_bytes": 5, "tx_bytes": 2}}});
        let old = network_pre121(s);
        assert!(old.get("networks").is_none());
        assert_eq!(old["network"]["rx_bytes"], 15);
        assert_eq!(old["network"]["tx_bytes"], 3);
        assert_eq!(old["network"]["rx_dropped"], 0);
    }
}
