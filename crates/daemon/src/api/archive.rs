//! The archive API (`docker cp`): `HEAD`, `GET` and `PUT /containers/{id}/archive`,
//! and API 1.23's `POST /containers/{id}/copy`.

use std::sync::Arc;

use berth_api::models::EventMessageTypeEnum;
use berth_containerfs::{Error as FsError, ExtractOptions};
use berth_errdefs::Error;
use http::HeaderValue;
use hyper::body::Incoming;
use hyper::Request;

use crate::container::{self, fs::View, Container, Record};
use crate::http::{empty, stream, Query, Result};
use crate::Daemon;

const STAT_HEADER: &str = "X-Docker-Container-Path-Stat";

/// The `path` query parameter, required as dockerd requires it (with dockerd's
/// message, missing space included).
fn path_param(q: &Query) -> Result<String> {
    match q.get("path") {
        Some(p) if !p.is_empty() => Ok(p.to_owned()),
        _ => Err(Error::invalid("bad parameter: pathcannot be empty")),
    }
}

/// dockerd's statuses for what can go wrong inside the container's filesystem.
fn fs_error(e: FsError, path: &str, name: &str) -> Error {
    match e {
        FsError::NotFound(_) => Error::not_found(format!("Could not find the file {path} in container {name}")),
        FsError::NotDirectory => Error::invalid("extraction point is not a directory"),
        FsError::Breakout(m) | FsError::Conflict(m) | FsError::Invalid(m) => Error::invalid(m),
        FsError::Io { context, source } => Error::internal(format!("{context}: {}", berth_containerfs::copy::go_error(&source))),
    }
}

/// Is the container running (its filesystem reached through its init)?
fn running(c: &Container) -> bool {
    let rec = c.record();
    rec.state.status.is_live() && rec.state.pid > 0
}

/// Run `f` with the container's filesystem open. A container that is not running
/// is mounted for the call, under its operation lock so that it cannot start
/// (or be removed) meanwhile.
async fn with_view<T: Send + 'static>(
    d: &Arc<Daemon>,
    c: Arc<Container>,
    f: impl FnOnce(&View, &Record) -> Result<T> + Send + 'static,
) -> Result<T> {
    let _guard = if running(&c) { None } else { Some(c.op.lock().await) };
    let (d, c2) = (d.clone(), c.clone());
    crate::http::blocking(move || {
        let rec = c2.record();
        let view = container::fs::open(&d, &rec)?;
        f(&view, &rec)
    })
    .await
}

/// `HEAD /containers/{id}/archive?path=`: the stat of a path in a header.
pub async fn head(d: &Arc<Daemon>, name: &str, q: &Query) -> Result {
    let path = path_param(q)?;
    let c = d.containers.get(name)?;
    let (p, n) = (path.clone(), name.to_owned());
    let stat = with_view(d, c, move |v, _| v.fs.stat(&p).map_err(|e| fs_error(e, &p, &n))).await?;
    let mut r = empty(200);
    r.headers_mut().insert(STAT_HEADER, HeaderValue::from_str(&stat.header_value()).expect("base64 is a valid header"));
    Ok(r)
}

/// `GET /containers/{id}/archive?path=`: a tar of the path, its stat in a header.
pub async fn get(d: &Arc<Daemon>, name: &str, q: &Query) -> Result {
    let path = path_param(q)?;
    let (stat, mut resp) = tar_of(d, name, path, "archive-path").await?;
    resp.headers_mut().insert(STAT_HEADER, HeaderValue::from_str(&stat).expect("base64 is a valid header"));
    Ok(resp)
}

/// `POST /containers/{id}/copy` with `{"Resource": path}`: API 1.23 and older's `cp`
/// (removed in 1.24): the same tar as `GET .../archive`, without the stat header.
pub async fn copy(d: &Arc<Daemon>, name: &str, req: Request<Incoming>) -> Result {
    let raw = crate::http::body_bytes(req.into_body()).await?;
    if raw.iter().all(u8::is_ascii_whitespace) {
        return Err(Error::invalid("got EOF while reading request body"));
    }
    #[derive(serde::Deserialize)]
    struct CopyConfig {
        #[serde(rename = "Resource", default)]
        resource: String,
    }
    let cfg: CopyConfig = berth_api::gojson::from_slice(&raw).map_err(|e| Error::invalid(format!("invalid JSON: {e}")))?;
    if cfg.resource.is_empty() {
        return Err(Error::invalid("Path cannot be empty"));
    }
    Ok(tar_of(d, name, cfg.resource, "copy").await?.1)
}

/// A response streaming a tar of `path` in the container, and the path's stat (for
/// the header); emits the container event `action`.
async fn tar_of(d: &Arc<Daemon>, name: &str, path: String, action: &str) -> Result<(String, crate::http::Resp)> {
    let c = d.containers.get(name)?;
    let rec = c.record();
    // The stat goes in the header, before the body: a task opens the view, sends the
    // stat back and keeps the view (and, for a stopped container, its lock) until
    // the archive is written.
    let (stat_tx, stat_rx) = tokio::sync::oneshot::channel::<Result<String>>();
    let (tx, resp) = stream(200, Some("application/x-tar"));
    let (d2, n) = (d.clone(), name.to_owned());
    tokio::spawn(async move {
        let _guard = if running(&c) { None } else { Some(c.op.lock().await) };
        let c2 = c.clone();
        let p = path.clone();
        let opened = crate::http::blocking(move || {
            let view = container::fs::open(&d2, &c2.record())?;
            let source = view.fs.source(&p).map_err(|e| fs_error(e, &p, &n))?.with_ids(d2.remap().cloned());
            Ok((view, source))
        })
        .await;
        let (view, source) = match opened {
            Ok(x) => x,
            Err(e) => {
                let _ = stat_tx.send(Err(e));
                return;
            }
        };
        if stat_tx.send(Ok(source.stat.header_value())).is_err() {
            return;
        }
        let _ = tokio::task::spawn_blocking(move || {
            let w = std::io::BufWriter::with_capacity(256 * 1024, crate::http::ChanWriter(tx));
            match source.write_tar(w) {
                Ok(mut w) => {
                    let _ = std::io::Write::flush(&mut w);
                }
                Err(e) => tracing::warn!(path = %path, "archive: {e}"),
            }
            drop(view);
        })
        .await;
    });
    let header = stat_rx.await.map_err(|_| Error::internal("archive task failed"))??;
    let mut attrs = container::event_attrs(&rec);
    attrs.insert("name".into(), rec.name.trim_start_matches('/').to_owned());
    d.events.emit(EventMessageTypeEnum::CONTAINER, action, &rec.id, attrs);
    Ok((header, resp))
}

/// `PUT /containers/{id}/archive?path=&noOverwriteDirNonDir=&copyUIDGID=`: extract
/// a tar (plain, gzip or zstd) into a directory of the container.
pub async fn put(d: &Arc<Daemon>, name: &str, req: Request<Incoming>, q: &Query) -> Result {
    let path = match path_param(q) {
        Ok(p) => p,
        Err(e) => {
            crate::http::drain_body(req.into_body()).await;
            return Err(e);
        }
    };
    let c = match d.containers.get(name) {
        Ok(c) => c,
        Err(e) => {
            crate::http::drain_body(req.into_body()).await;
            return Err(e);
        }
    };
    // A container on a warm sandbox has its process worked out ahead of its start:
    // a write to its rootfs may change the user's home.
    d.warm.forget_launch(&c.id);
    let no_overwrite = q.bool("noOverwriteDirNonDir");
    let copy_uid_gid = q.bool("copyUIDGID");
    let mut body = crate::http::BodyReader::new(req.into_body());
    let n = name.to_owned();
    let d3 = d.clone();
    let rec = with_view(d, c, move |v, rec| {
        // A refusal before the archive is read still reads (part of) it, as Go's
        // server does: a client still sending would otherwise see a broken pipe
        // instead of the answer.
        let refuse = |body: &mut crate::http::BodyReader, e: Error| {
            use std::io::Read;
            let _ = std::io::copy(&mut body.by_ref().take(crate::http::MAX_DISCARD as u64), &mut std::io::sink());
            Err(e)
        };
        let dest = match v.fs.dest(&path) {
            Ok(d) => d,
            Err(e) => return refuse(&mut body, fs_error(e, &path, &n)),
        };
        let (on_rootfs, read_only) = match dest.mount() {
            Ok(m) => m,
            Err(e) => return refuse(&mut body, fs_error(e, &path, &n)),
        };
        if on_rootfs && rec.host_config.readonly_rootfs == Some(true) {
            return refuse(&mut body, Error::forbidden("container rootfs is marked read-only"));
        }
        if read_only {
            return refuse(&mut body, Error::forbidden("mounted volume is marked read-only"));
        }
        let ids = d3.remap().cloned();
        let mut opts = ExtractOptions { no_overwrite_dir_non_dir: no_overwrite, ids: ids.clone(), ..Default::default() };
        if copy_uid_gid {
            let user = rec.config.user.clone().unwrap_or_default();
            let u = berth_oci::resolve_user(v.root(), &user, &[])
                .map_err(|e| Error::invalid(e.to_string()))?;
            opts.chown = Some(match &ids {
                Some(m) => m.to_host(u.uid, u.gid)?,
                None => (u.uid, u.gid),
            });
        }
        dest.extract(&mut body, &opts).map_err(|e| fs_error(e, &path, &n))?;
        // The extractor stops at the archive's end marker; what the client still sends
        // after it (the rest of the last record) is read too, as Go's server reads an
        // unread body before answering: closing on it would break the client's pipe.
        {
            use std::io::Read;
            let _ = std::io::copy(&mut body.by_ref().take(crate::http::MAX_DISCARD as u64), &mut std::io::sink());
        }
        Ok(rec.clone())
    })
    .await?;
    let mut attrs = container::event_attrs(&rec);
    attrs.insert("name".into(), rec.name.trim_start_matches('/').to_owned());
    d.events.emit(EventMessageTypeEnum::CONTAINER, "extract-to-dir", &rec.id, attrs);
    Ok(empty(200))
}
