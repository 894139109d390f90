//! Container endpoints.

use std::sync::Arc;

use berth_api::models::{ContainerCreateBody, ContainerCreateResponse, ContainerWaitResponse};
use berth_errdefs::Error;
use berth_shim_proto::Request as ShimRequest;
use http::{HeaderValue, Request, StatusCode};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;

use crate::container::lifecycle::{self, WaitCondition};
use crate::container::{attach as bridge, logs, shim, Paths, PendingAttach};
use crate::http::{body_json, empty, json, json_line, stream, Body, Query, Resp, Result};
use crate::Daemon;

pub fn list(d: &Arc<Daemon>, q: &Query) -> Result {
    let f = q.filters()?;
    let mut out = crate::container::inspect::list(d, q.bool("all"), q.int("limit")?, &f)?;
    if q.bool("size") {
        for s in &mut out {
            if let Some(c) = s.id.as_deref().and_then(|id| d.containers.get(id).ok()) {
                let (rw, rootfs) = crate::container::inspect::sizes(d, &c.record());
                s.size_rw = Some(rw);
                s.size_root_fs = Some(rootfs);
            }
        }
    }
    Ok(json(200, &out))
}

pub async fn create(d: &Arc<Daemon>, req: Request<Incoming>, q: &Query) -> Result {
    let raw: serde_json::Value = body_json(req.into_body()).await?;
    let legacy = crate::container::verify::kernel_memory_warnings(&raw["HostConfig"]);
    // API 1.41's `MacAddress` sits in the container config; later APIs put it in the
    // endpoint settings, where berthd reads it.
    let mac = raw["MacAddress"].as_str().filter(|m| !m.is_empty()).map(str::to_owned);
    let mut body: ContainerCreateBody = if raw.is_null() {
        ContainerCreateBody::default()
    } else {
        serde_json::from_value(raw).map_err(|e| Error::invalid(format!("invalid JSON: {e}")))?
    };
    if let Some(mac) = mac {
        let hc = body.host_config.get_or_insert_with(Default::default);
        let mode = crate::container::net::mode(hc).to_owned();
        let nc = body.networking_config.get_or_insert_with(Default::default);
        let eps = nc.endpoints_config.get_or_insert_with(Default::default);
        let key = if eps.contains_key("default") && !eps.contains_key(&mode) { "default".to_owned() } else { mode };
        let ep = eps.entry(key).or_default();
        if ep.mac_address.as_deref().unwrap_or("").is_empty() {
            ep.mac_address = Some(mac);
        }
    }
    let (id, mut warnings) = crate::container::create::create(d, q.get("name"), q.str("platform"), body).await?;
    warnings.splice(0..0, legacy);
    Ok(json(201, &ContainerCreateResponse { id, warnings }))
}

pub fn inspect(d: &Arc<Daemon>, id: &str, q: &Query) -> Result {
    let c = d.containers.get(id)?;
    let mut v = crate::container::inspect::inspect_json(d, &c);
    if q.bool("size") {
        let (rw, rootfs) = crate::container::inspect::sizes(d, &c.record());
        v["SizeRw"] = rw.into();
        v["SizeRootFs"] = rootfs.into();
    }
    Ok(json(200, &v))
}

pub async fn start(d: &Arc<Daemon>, id: &str) -> Result {
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

pub async fn kill(d: &Arc<Daemon>, id: &str, q: &Query) -> Result {
    let c = d.containers.get(id)?;
    let sig = lifecycle::parse_signal(q.str("signal"))?;
    lifecycle::kill(d, &c, sig).await?;
    // As dockerd: a SIGKILL is answered once the container is dead, so an inspect or
    // a plain rm right after sees it stopped.
    if sig == libc::SIGKILL {
        lifecycle::wait_stopped(&c, Some(std::time::Duration::from_secs(10))).await;
    }
    Ok(empty(204))
}

/// `POST /containers/{id}/update`.
pub async fn update(d: &Arc<Daemon>, id: &str, req: Request<Incoming>) -> Result {
    // the body first: answering 404 while the client still sends it breaks its pipe
    let body: serde_json::Value = crate::http::body_json(req.into_body()).await?;
    let c = d.containers.get(id)?;
    let warnings = crate::container::update::update(d, &c, body).await?;
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
pub fn wait(d: &Arc<Daemon>, id: &str, q: &Query) -> Result {
    let c = d.containers.get(id)?;
    let cond = WaitCondition::parse(q.str("condition"))?;
    let (tx, resp) = stream(200, Some("application/json"));
    tokio::spawn(async move {
        tokio::select! {
            code = lifecycle::wait(&c, cond) => {
                let r = ContainerWaitResponse { status_code: code, error: None };
                let _ = tx.send(json_line(&r, false)).await;
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
    let mut r = http::Response::new(Body::Channel(rx));
    r.headers_mut().insert(http::header::CONTENT_TYPE, HeaderValue::from_static(ct));
    r
}

/// `POST /containers/{id}/attach`: with `logs`, the log so far first; with `stream`,
/// then the live output (waiting for a start if the container is not running).
pub fn attach(d: &Arc<Daemon>, id: &str, req: Request<Incoming>, q: &Query) -> Result {
    let c = d.containers.get(id)?;
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
    // Register before answering, so a `start` sent after the 101 cannot miss us.
    let pending = if !live || c.status().is_live() {
        None
    } else {
        let (tx, rx) = tokio::sync::oneshot::channel();
        c.pending.lock().unwrap().push(PendingAttach { stdin, stdout, stderr, tx });
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
        since: logs::parse_time(q.str("since")).filter(|s| *s > 0),
        until: logs::parse_time(q.str("until")).filter(|s| *s > 0),
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
pub fn stats(d: &Arc<Daemon>, id: &str, q: &Query) -> Result {
    use crate::container::stats::sample;
    let c = d.containers.get(id)?;
    let streaming = q.bool_or("stream", true);
    let one_shot = q.bool("one-shot");
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
