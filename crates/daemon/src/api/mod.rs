//! The Docker Engine API router: strips the optional `/vX.Y` prefix, checks the
//! version, and dispatches on method and path. Image names contain `/` and `:`, so
//! image routes match on their suffix.

mod archive;
mod commit;
mod build;
mod containers;
mod exec;
mod images;
mod networks;
mod volumes;
pub(crate) mod system;
mod transfer;
mod ws;

use std::sync::Arc;

use berth_api::version::ApiVersion;
use berth_errdefs::Error;
use http::{Method, Request};
use hyper::body::Incoming;

use crate::http::{error, Query, Resp, Result};
use crate::Daemon;

/// Handle one request.
pub async fn route(d: Arc<Daemon>, req: Request<Incoming>) -> Resp {
    let path = req.uri().path().to_owned();
    let (version, rest) = berth_api::version::split_prefix(&path);
    let error = if berth_api::version::json_errors(version) { error } else { crate::http::error_text };
    if let Some(v) = version {
        if let Err(e) = berth_api::version::check(v) {
            return error(&e);
        }
    }
    let rest = percent_encoding::percent_decode_str(rest).decode_utf8_lossy().into_owned();
    let q = Query::parse(req.uri().query());
    let method = req.method().clone();
    tracing::debug!(%method, path = %rest, "request");
    let peer = req.extensions().get::<crate::http::Peer>().copied();
    let r = dispatch(&d, req, &method, &rest, q, ApiVersion::of(version)).await;
    match r {
        Ok(mut resp) => {
            if let Some(p) = peer {
                p.watch(&mut resp);
            }
            resp
        }
        Err(e) => {
            if e.kind().http_status() >= 500 {
                tracing::warn!(%method, path = %rest, "{e}");
            }
            error(&e)
        }
    }
}

/// `v`: the request's API version, for the routes where dockerd 20.10 answers older
/// clients in older shapes.
async fn dispatch(d: &Arc<Daemon>, req: Request<Incoming>, method: &Method, path: &str, q: Query, v: ApiVersion) -> Result {
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match (method, segs.as_slice()) {
        (&Method::GET | &Method::HEAD, ["_ping"]) => Ok(system::ping(method)),
        (&Method::GET, ["version"]) => Ok(system::version(d)),
        // BuildKit's session endpoint: the classic builder needs none.
        (&Method::POST, ["session"]) => Err(berth_errdefs::Error::new(
            berth_errdefs::Kind::NotImplemented,
            "build sessions are BuildKit's: berthd has the classic builder only (build without BuildKit, e.g. DOCKER_BUILDKIT=0)",
        )),
        (&Method::GET, ["info"]) => off(d, move |d| Ok(system::info(d, v))).await,
        (&Method::GET, ["events"]) => system::events(d, &q),
        (&Method::GET, ["system", "df"]) => off(d, system::df).await,

        (&Method::GET, ["containers", "json"]) => off(d, move |d| containers::list(d, &q)).await,
        (&Method::POST, ["containers", "create"]) => containers::create(d, req, &q, v).await,
        (&Method::POST, ["containers", "prune"]) => containers::prune(d, &q).await,
        (&Method::GET, ["containers", id, "json"]) => {
            let id = id.to_string();
            off(d, move |d| containers::inspect(d, &id, &q, v)).await
        }
        (&Method::POST, ["containers", id, "start"]) => containers::start(d, id, req, v).await,
        (&Method::POST, ["containers", id, "stop"]) => containers::stop(d, id, &q).await,
        (&Method::POST, ["containers", id, "restart"]) => containers::restart(d, id, &q).await,
        (&Method::POST, ["containers", id, "kill"]) => containers::kill(d, id, &q, v).await,
        (&Method::POST, ["containers", id, "wait"]) => containers::wait(d, id, &q, v).await,
        (&Method::POST, ["containers", id, "attach"]) => containers::attach(d, id, req, &q, false),
        (&Method::GET, ["containers", id, "attach", "ws"]) => containers::attach(d, id, req, &q, true),
        (&Method::POST, ["containers", id, "resize"]) => containers::resize(d, id, &q).await,
        (&Method::POST, ["containers", id, "pause"]) => containers::pause(d, id, true).await,
        (&Method::POST, ["containers", id, "unpause"]) => containers::pause(d, id, false).await,
        (&Method::POST, ["containers", id, "rename"]) => {
            let id = id.to_string();
            off(d, move |d| containers::rename(d, &id, &q)).await
        }
        (&Method::GET, ["containers", id, "logs"]) => containers::logs(d, id, &q),
        (&Method::GET, ["containers", id, "top"]) => containers::top(d, id, &q).await,
        (&Method::GET, ["containers", id, "stats"]) => containers::stats(d, id, &q, v),
        (&Method::POST, ["containers", id, "exec"]) => exec::create(d, id, req).await,
        (&Method::DELETE, ["containers", id]) => containers::remove(d, id, &q).await,
        // A legacy link's name is `/parent/alias`.
        (&Method::DELETE, ["containers", ..]) if q.bool("link") => {
            containers::remove(d, &path["/containers/".len()..], &q).await
        }

        (&Method::POST, ["exec", id, "start"]) => exec::start(d, id, req).await,
        (&Method::POST, ["exec", id, "resize"]) => exec::resize(d, id, &q).await,
        (&Method::GET, ["exec", id, "json"]) => {
            let id = id.to_string();
            off(d, move |d| exec::inspect(d, &id)).await
        }

        (&Method::GET, ["images", "json"]) => images::list(d, q, v).await,
        (&Method::GET, ["images", "get"]) => transfer::save(d, q.all("names")),
        (&Method::POST, ["images", "load"]) => transfer::load(d, req, &q).await,
        (&Method::GET, ["images", .., "get"]) => transfer::save(d, &[strip_suffix(path, "/images/", "/get").to_owned()]),
        (&Method::POST, ["images", .., "push"]) => transfer::push(d, strip_suffix(path, "/images/", "/push"), req, &q).await,
        (&Method::POST, ["auth"]) => transfer::auth(d, req).await,
        (&Method::GET, ["distribution", .., "json"]) => {
            transfer::distribution_inspect(d, strip_suffix(path, "/distribution/", "/json"), &req).await
        }
        (&Method::POST, ["commit"]) => commit::commit(d, req.into_body(), &q).await,
        (&Method::GET, ["containers", id, "changes"]) => commit::changes(d, id).await,
        (&Method::GET, ["containers", id, "export"]) => commit::export(d, id).await,
        (&Method::POST, ["containers", id, "update"]) => containers::update(d, id, req, v).await,
        (&Method::HEAD, ["containers", id, "archive"]) => archive::head(d, id, &q).await,
        (&Method::GET, ["containers", id, "archive"]) => archive::get(d, id, &q).await,
        // Removed in API 1.24 (dockerd answers a bare 404 from then on).
        (&Method::POST, ["containers", id, "copy"]) if v.before(24) => archive::copy(d, id, req).await,
        (&Method::PUT, ["containers", id, "archive"]) => archive::put(d, id, req, &q).await,
        (&Method::POST, ["images", "create"]) => images::create(d, req, &q, v).await,
        (&Method::POST, ["images", "prune"]) => images::prune(d, &q).await,
        (&Method::DELETE, ["images", ..]) => images::remove(d, &path["/images/".len()..], &q).await,
        (&Method::GET, ["images", .., "json"]) => {
            let name = strip_suffix(path, "/images/", "/json").to_owned();
            off(d, move |d| images::inspect(d, &name)).await
        }
        (&Method::GET, ["images", .., "history"]) => {
            let name = strip_suffix(path, "/images/", "/history").to_owned();
            off(d, move |d| images::history(d, &name)).await
        }
        (&Method::POST, ["images", .., "tag"]) => {
            let name = strip_suffix(path, "/images/", "/tag").to_owned();
            off(d, move |d| images::tag(d, &name, &q)).await
        }

        (&Method::GET, ["networks"]) => off(d, move |d| networks::list(d, &q, v)).await,
        (&Method::POST, ["networks", "create"]) => networks::create(d, req).await,
        (&Method::POST, ["networks", "prune"]) => networks::prune(d, &q).await,
        (&Method::GET, ["networks", id]) => {
            let id = id.to_string();
            off(d, move |d| networks::inspect(d, &id, &q)).await
        }
        (&Method::DELETE, ["networks", id]) => networks::remove(d, id).await,
        (&Method::POST, ["networks", id, "connect"]) => networks::connect(d, id, req).await,
        (&Method::POST, ["networks", id, "disconnect"]) => networks::disconnect(d, id, req).await,

        (&Method::GET, ["volumes"]) => off(d, move |d| volumes::list(d, &q)).await,
        (&Method::POST, ["volumes", "create"]) => volumes::create(d, req).await,
        (&Method::POST, ["volumes", "prune"]) => volumes::prune(d, &q).await,
        (&Method::GET, ["volumes", name]) => {
            let name = name.to_string();
            off(d, move |d| volumes::inspect(d, &name)).await
        }
        (&Method::DELETE, ["volumes", name]) => volumes::remove(d, name, &q).await,

        (&Method::POST, ["build"]) => build::build(d, req, &q, v).await,
        (&Method::POST, ["build", "prune"]) => build::prune(d, &q).await,

        // berthd is never in a swarm: it answers as dockerd does on a node outside
        // one, and refuses to make or join one.
        // The refusals read the request's body first: answered while the client still
        // sends it, they would break its pipe (the docker CLI then shows that instead).
        (&Method::POST, ["swarm", "init" | "join"]) => refuse(req, Error::not_implemented(
            "berthd does not implement swarm mode: it runs containers on this host only",
        ))
        .await,
        (&Method::POST, ["swarm", "leave"]) => refuse(req, Error::unavailable("This node is not part of a swarm")).await,
        (_, ["swarm" | "nodes" | "services" | "tasks" | "secrets" | "configs", ..]) => refuse(req, Error::unavailable(
            "This node is not a swarm manager. Use \"docker swarm init\" or \"docker swarm join\" to connect this node to swarm and try again.",
        ))
        .await,
        // Engine plugins: none is installed, and berthd installs none.
        (&Method::GET, ["plugins"]) => {
            q.filters()?.validate(&["capability", "enable"])?;
            Ok(crate::http::json(200, &serde_json::json!([])))
        }
        (_, ["plugins", "pull" | "create" | "privileges"]) => {
            refuse(req, Error::not_implemented("berthd does not support engine plugins")).await
        }
        (&Method::DELETE, ["plugins", _, ..]) => Err(plugin_not_found(&path["/plugins/".len()..])),
        (_, ["plugins", .., "json" | "enable" | "disable" | "push" | "set" | "upgrade"]) => {
            let name = path["/plugins/".len()..].rsplit_once('/').map_or("", |(n, _)| n);
            refuse(req, plugin_not_found(name)).await
        }
        _ => refuse(req, Error::not_found(format!("page not found: {method} {path}"))).await,
    }
}

/// Answer `e` once the request's body has been read (or refused as too large).
async fn refuse(req: Request<Incoming>, e: Error) -> Result {
    let _ = crate::http::body_bytes(req.into_body()).await;
    Err(e)
}

fn plugin_not_found(name: &str) -> Error {
    Error::not_found(format!("plugin \"{name}\" not found"))
}

/// A synchronous handler, run on the blocking pool (see [`crate::http::blocking`]).
async fn off(d: &Arc<Daemon>, f: impl FnOnce(&Arc<Daemon>) -> Result + Send + 'static) -> Result {
    let d = d.clone();
    crate::http::blocking(move || f(&d)).await
}

fn strip_suffix<'a>(path: &'a str, prefix: &str, suffix: &str) -> &'a str {
    path.strip_prefix(prefix).and_then(|p| p.strip_suffix(suffix)).unwrap_or("")
}
