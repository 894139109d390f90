//! Exec endpoints.

use std::sync::Arc;

use berth_api::models::{ExecConfig, ExecStartConfig};
use http::Request;
use hyper::body::Incoming;

use crate::container::exec;
use crate::http::{body_bytes, empty, json, Query, Result};
use crate::Daemon;

pub async fn create(d: &Arc<Daemon>, id: &str, req: Request<Incoming>) -> Result {
    // the body first: answering 404 while the client still sends it breaks its pipe
    let cfg: ExecConfig = crate::http::body_json(req.into_body()).await?;
    let c = d.containers.get(id)?;
    let eid = exec::create(d, &c, id, cfg)?;
    Ok(json(201, &serde_json::json!({ "Id": eid })))
}

pub async fn start(d: &Arc<Daemon>, id: &str, mut req: Request<Incoming>) -> Result {
    let e = d.execs.get(id)?;
    // Take the upgrade handle before the body is consumed.
    let on_upgrade = hyper::upgrade::on(&mut req);
    let (parts, body) = req.into_parts();
    let raw = body_bytes(body).await?;
    let cfg: ExecStartConfig = if raw.iter().all(|b| b.is_ascii_whitespace()) {
        ExecStartConfig::default()
    } else {
        berth_api::gojson::from_slice(&raw).map_err(|e| berth_errdefs::Error::invalid(format!("invalid JSON: {e}")))?
    };
    let started = exec::start(d, &e).await;
    // dockerd frames the output by the start request's Tty (the process got a
    // terminal or not from the create's).
    let tty = cfg.tty.unwrap_or(false);
    let upgrade = parts
        .headers
        .get(http::header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("tcp"));
    let conn = match started {
        Ok(conn) => conn,
        Err(err) if cfg.detach.unwrap_or(false) => return Err(err),
        // Attached, dockerd answers why the exec could not start on the stream it
        // opened for it (the docker CLI prints it and ends with the exec's 126).
        Err(err) => return Ok(failed_on_stream(on_upgrade, upgrade, tty, err.message())),
    };
    let stdin = e.config.attach_stdin.unwrap_or(false);
    let detach = berth_api::query::detach_keys(e.config.detach_keys.as_deref().unwrap_or(""))?;
    let e2 = e.clone();
    let d2 = d.clone();
    // Recorded before the client's stream closes (see `bridge_then`).
    let done = move |st: Option<&berth_shim_proto::ExitStatus>| exec::finished(&d2, &e2, st.map(|s| s.code as i64));
    use crate::container::attach::{body_pipe, bridge_then};
    if cfg.detach.unwrap_or(false) {
        tokio::spawn(async move {
            let (sink, _rx) = body_pipe();
            bridge_then(sink, conn, tty, false, None, done).await;
        });
        return Ok(empty(200));
    }
    if upgrade {
        tokio::spawn(async move {
            match on_upgrade.await {
                Ok(up) => {
                    bridge_then(hyper_util::rt::TokioIo::new(up), conn, tty, stdin, Some(detach), done).await;
                }
                Err(_) => done(None),
            }
        });
        return Ok(super::containers::upgraded_response(tty));
    }
    let (pipe, rx) = body_pipe();
    tokio::spawn(async move {
        bridge_then(pipe, conn, tty, false, None, done).await;
    });
    Ok(http::Response::new(crate::http::Body::Channel(rx, None)))
}

/// The stream of an attached exec that could not start: the reason, as stdout (framed
/// unless a terminal was asked for), and its end.
fn failed_on_stream(on_upgrade: hyper::upgrade::OnUpgrade, upgrade: bool, tty: bool, why: &str) -> crate::http::Resp {
    let text = format!("{why}\r\n");
    let bytes = if tty { bytes::Bytes::from(text) } else { berth_api::stream::frame(berth_api::stream::STDOUT, text.as_bytes()) };
    if upgrade {
        tokio::spawn(async move {
            if let Ok(up) = on_upgrade.await {
                let mut io = hyper_util::rt::TokioIo::new(up);
                let _ = tokio::io::AsyncWriteExt::write_all(&mut io, &bytes).await;
                let _ = tokio::io::AsyncWriteExt::shutdown(&mut io).await;
            }
        });
        return super::containers::upgraded_response(tty);
    }
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    let _ = tx.try_send(bytes);
    http::Response::new(crate::http::Body::Channel(rx, None))
}

pub async fn resize(d: &Arc<Daemon>, id: &str, q: &Query) -> Result {
    let e = d.execs.get(id)?;
    let h = q.int("h")?.unwrap_or(0).clamp(0, u16::MAX as i64) as u16;
    let w = q.int("w")?.unwrap_or(0).clamp(0, u16::MAX as i64) as u16;
    exec::resize(d, &e, h, w).await?;
    Ok(empty(200))
}

pub fn inspect(d: &Arc<Daemon>, id: &str) -> Result {
    let e = d.execs.get(id)?;
    // dockerd writes `ExitCode: null` until the process has exited
    let mut v = serde_json::to_value(exec::inspect(&e)).map_err(|e| berth_errdefs::Error::internal(e.to_string()))?;
    if let Some(o) = v.as_object_mut() {
        o.entry("ExitCode").or_insert(serde_json::Value::Null);
    }
    Ok(json(200, &v))
}
