//! Moving images in and out: pull (`POST /images/create?fromImage=`), push, login
//! (`POST /auth`), save (`GET /images/get`) and load (`POST /images/load`).

use std::collections::HashMap;
use std::sync::Arc;

use berth_api::models::EventMessageTypeEnum;
use berth_api::stream::JsonMessage;
use berth_distribution::Credentials;
use berth_errdefs::{Error, Result as BResult};
use berth_image::archive::{self, SaveItem};
use berth_image::Reference;
use http::Request;
use hyper::body::Incoming;
use tokio::sync::mpsc;

use crate::http::{json, stream, Query, Result};
use crate::Daemon;

fn registry_auth(req: &Request<Incoming>) -> BResult<Credentials> {
    Credentials::from_header(
        req.headers()
            .get("x-registry-auth")
            .and_then(|v| v.to_str().ok()),
    )
}

/// A JSON-message channel whose messages become `\r\n`-terminated lines of a response.
fn message_stream() -> (mpsc::Sender<JsonMessage>, crate::http::Resp) {
    let (tx, resp) = stream(200, Some("application/json"));
    let (mtx, mut mrx) = mpsc::channel::<JsonMessage>(64);
    tokio::spawn(async move {
        while let Some(m) = mrx.recv().await {
            if tx.send(m.to_line()).await.is_err() {
                // The client went away; keep draining so the producer finishes.
                while mrx.recv().await.is_some() {}
                break;
            }
        }
    });
    (mtx, resp)
}

fn event(d: &Daemon, action: &str, id: &str, name: Option<String>) {
    let mut attrs = HashMap::new();
    if let Some(n) = name {
        attrs.insert("name".to_owned(), n);
    }
    d.events
        .emit(EventMessageTypeEnum::IMAGE, action, id, attrs);
}

/// `POST /images/create?fromImage=&tag=[&platform=]` (`platform` from API 1.32 on).
pub async fn pull(d: &Arc<Daemon>, req: Request<Incoming>, q: &Query, v: berth_api::version::ApiVersion) -> Result {
    let creds = registry_auth(&req)?;
    let mut r = Reference::parse(q.str("fromImage"))?;
    let tag = q.str("tag");
    if !tag.is_empty() {
        if tag.starts_with("sha256:") {
            r.digest = Some(tag.to_owned());
            r.tag = None;
        } else {
            r = berth_image::reference::from_repo_tag(q.str("fromImage"), tag)?;
        }
    }
    if r.tag.is_none() && r.digest.is_none() {
        r.tag = Some("latest".into());
    }
    let platform = if v.before(32) { "" } else { q.str("platform") };
    let plan = d.resolve_pull(r.clone(), creds, platform).await?;
    let id = plan.image_id().to_string();
    let (tx, resp) = message_stream();
    let d = d.clone();
    tokio::spawn(async move {
        match plan.run(tx.clone()).await {
            Ok(()) => event(&d, "pull", &r.familiar(), Some(r.familiar_name())),
            Err(e) => {
                tracing::warn!(image = %r, %id, "pull failed: {e}");
                let _ = tx.send(JsonMessage::error(e.message(), None)).await;
            }
        }
    });
    Ok(resp)
}

/// `GET /distribution/{name}/json`: the registry's descriptor and platforms of an
/// image, without pulling it (a tag defaults to `latest`).
pub async fn distribution_inspect(d: &Arc<Daemon>, name: &str, req: &Request<Incoming>) -> Result {
    let creds = registry_auth(req)?;
    let mut r = Reference::parse(name)?;
    if r.tag.is_none() && r.digest.is_none() {
        r.tag = Some("latest".into());
    }
    let live = d.live.read().unwrap().clone();
    let out = berth_distribution::inspect(r, creds, &live.insecure_registries, &live.registry_mirrors).await?;
    Ok(json(200, &out))
}

/// `POST /images/{name}/push?tag=`.
pub async fn push(d: &Arc<Daemon>, name: &str, req: Request<Incoming>, q: &Query) -> Result {
    let creds = registry_auth(&req)?;
    let base = Reference::parse(name)?;
    let tag = q.str("tag");
    let mut targets = Vec::new();
    if !tag.is_empty() || base.tag.is_some() {
        let r = if tag.is_empty() {
            base.clone()
        } else {
            berth_image::reference::from_repo_tag(name, tag)?
        };
        let rec = d.images.resolve(&r.familiar()).map_err(|_| {
            Error::not_found(format!(
                "An image does not exist locally with the tag: {}",
                r.familiar_name()
            ))
        })?;
        targets.push((r, rec));
    } else {
        for (t, id) in d.images.tags()? {
            let Ok(r) = Reference::parse(&t) else {
                continue;
            };
            if r.familiar_name() == base.familiar_name() && r.tag.is_some() {
                if let Some(rec) = d.images.get(&id)? {
                    targets.push((r, rec));
                }
            }
        }
        if targets.is_empty() {
            return Err(Error::not_found(format!(
                "An image does not exist locally with the tag: {}",
                base.familiar_name()
            )));
        }
    }
    let (tx, resp) = message_stream();
    let d = d.clone();
    let insecure = d.live.read().unwrap().insecure_registries.clone();
    tokio::spawn(async move {
        let _ = tx
            .send(JsonMessage::status(format!(
                "The push refers to repository [{}]",
                base.full_name()
            )))
            .await;
        for (r, rec) in targets {
            match berth_distribution::push(
                d.images.clone(),
                &rec,
                &r,
                creds.clone(),
                &insecure,
                d.cfg.max_concurrent_uploads,
                &tx,
            )
            .await
            {
                Ok(_) => event(&d, "push", &r.familiar(), Some(r.familiar_name())),
                Err(e) => {
                    let _ = tx.send(JsonMessage::error(e.message(), None)).await;
                    return;
                }
            }
        }
    });
    Ok(resp)
}

/// `POST /auth`.
pub async fn auth(d: &Arc<Daemon>, req: Request<Incoming>) -> Result {
    let raw = crate::http::body_bytes(req.into_body()).await?;
    // A credentials object, checked before any registry is contacted.
    let v: serde_json::Value =
        serde_json::from_slice(&raw).map_err(|e| Error::invalid(format!("invalid JSON: {e}")))?;
    if !v.is_object() {
        return Err(Error::invalid("invalid JSON: the body must be an AuthConfig object"));
    }
    let creds: Credentials =
        berth_api::gojson::from_value(v).map_err(|e| Error::invalid(format!("invalid JSON: {e}")))?;
    if creds.username.is_empty() && creds.identitytoken.is_empty() && creds.registrytoken.is_empty() {
        return Err(Error::invalid("invalid credentials: a username or an identity token is required"));
    }
    let server = creds.serveraddress.clone();
    let insecure = d.live.read().unwrap().insecure_registries.clone();
    berth_distribution::login(&server, creds, &insecure).await?;
    Ok(json(
        200,
        &serde_json::json!({"IdentityToken": "", "Status": "Login Succeeded"}),
    ))
}


/// `GET /images/get?names=…` and `GET /images/{name}/get`.
pub fn save(d: &Arc<Daemon>, names: &[String]) -> Result {
    if names.is_empty() {
        return Err(Error::invalid("no images to save"));
    }
    let mut items: Vec<SaveItem> = Vec::new();
    for n in names {
        let rec = d.images.resolve(n)?;
        let tag = Reference::parse_tagged(n).ok().filter(|r| {
            r.digest.is_none()
                && d.images
                    .tags_of(&rec.id)
                    .map(|t| t.contains(&r.familiar()))
                    .unwrap_or(false)
        });
        match items.iter_mut().find(|i| i.record.id == rec.id) {
            Some(i) => i.tags.extend(tag),
            None => items.push(SaveItem {
                record: rec,
                tags: tag.into_iter().collect(),
            }),
        }
    }
    let (tx, resp) = stream(200, Some("application/x-tar"));
    let d = d.clone();
    tokio::task::spawn_blocking(move || {
        let w = std::io::BufWriter::with_capacity(256 * 1024, crate::http::ChanWriter(tx));
        if let Err(e) = archive::save(&d.images, &items, w) {
            tracing::warn!("save: {e}");
        }
        for i in &items {
            event(&d, "save", &i.record.id, None);
        }
    });
    Ok(resp)
}

/// `POST /images/load[?quiet=]`.
pub async fn load(d: &Arc<Daemon>, req: Request<Incoming>, q: &Query) -> Result {
    let quiet = q.bool("quiet");
    let spool = crate::http::spool_body(&d.cfg.data_root, req.into_body(), "load").await?;
    let (tx, resp) = message_stream();
    let d = d.clone();
    tokio::task::spawn_blocking(move || {
        let work = spool.with_extension("d");
        let res = std::fs::File::open(&spool)
            .map_err(Error::from)
            .and_then(|f| {
                archive::load(&d.images, f, &work, &mut |diff_id, size| {
                    if !quiet {
                        let _ = tx.blocking_send(berth_distribution::progress::layer_progress(
                            "Loading layer",
                            diff_id.short(),
                            size,
                            size,
                        ));
                    }
                })
            });
        let _ = std::fs::remove_file(&spool);
        match res {
            Ok(loaded) => {
                for l in loaded {
                    event(&d, "load", &l.id, l.tag.as_ref().map(|t| t.familiar()));
                    let _ = tx.blocking_send(JsonMessage::stream(l.message()));
                }
            }
            Err(e) => {
                let _ = tx.blocking_send(JsonMessage::error(e.message(), None));
            }
        }
    });
    Ok(resp)
}
