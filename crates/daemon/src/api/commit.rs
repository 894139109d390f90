//! `POST /commit`, `GET /containers/{id}/changes` and `GET /containers/{id}/export`.

use std::collections::HashMap;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use berth_api::models::{EventMessageTypeEnum, ImageConfig};
use berth_errdefs::{Error, Result as BResult};
use berth_image::config::{self, History};
use hyper::body::Incoming;

use crate::http::{json, stream, Query, Result};
use crate::Daemon;

/// `POST /commit?container=&repo=&tag=&comment=&author=&changes=…` (`pause` is ignored:
/// the diff is read from the upper dir as it is).
pub async fn commit(d: &Arc<Daemon>, body: Incoming, q: &Query) -> Result {
    // the body (the config) first: an error sent while the client still writes it
    // would break its pipe
    let override_cfg: Option<ImageConfig> = {
        let raw = crate::http::body_bytes(body).await?;
        if raw.iter().all(|b| b.is_ascii_whitespace()) || &raw[..] == b"null" {
            None
        } else {
            let mut v: serde_json::Value =
                serde_json::from_slice(&raw).map_err(|e| Error::invalid(format!("invalid JSON: {e}")))?;
            berth_api::gojson::strslices(&mut v, &berth_api::gojson::STRSLICE_FIELDS);
            Some(berth_api::gojson::from_value(v).map_err(|e| Error::invalid(format!("invalid JSON: {e}")))?)
        }
    };
    let c = d.containers.get(q.str("container"))?;
    let rec = c.record();
    let reference = match q.str("repo") {
        "" => None,
        repo => Some(berth_image::reference::from_repo_tag(repo, q.str("tag"))?),
    };
    let changes = q.all("changes").to_vec();
    let comment = q
        .get("comment")
        .filter(|s| !s.is_empty())
        .map(str::to_owned);
    let author = q.get("author").filter(|s| !s.is_empty()).map(str::to_owned);
    let d2 = d.clone();
    let r2 = reference.clone();
    let id = tokio::task::spawn_blocking(move || -> BResult<String> {
        let img = d2
            .images
            .get_for_container(&rec.image_id)?
            .ok_or_else(|| Error::not_found(format!("No such image: {}", rec.image_id)))?;
        let mut cfg = d2.images.config(&img)?;
        let upper = d2.snap.upper_dir(&rec.id);
        let tmp = d2.cfg.data_root.join("tmp");
        std::fs::create_dir_all(&tmp)?;
        let spool = tmp.join(format!("commit-{:016x}.tar", rand::random::<u64>()));
        let res = (|| {
            let f = std::fs::File::create(&spool)?;
            let mut w = std::io::BufWriter::new(f);
            berth_snapshot::write_diff(&upper, &mut w, d2.snap.idmap())?;
            std::io::Write::flush(&mut w)?;
            drop(w);
            d2.images.add_layer(std::fs::File::open(&spool)?)
        })();
        let _ = std::fs::remove_file(&spool);
        let (diff_id, _) = res?;
        // The container's config becomes the image's (Docker: container config, then changes).
        let mut image_cfg: ImageConfig = serde_json::to_value(&rec.config)
            .and_then(serde_json::from_value)
            .map_err(|e| Error::internal(format!("convert config: {e}")))?;
        if let Some(o) = override_cfg {
            image_cfg = o;
        }
        for ch in &changes {
            berth_image::changes::apply_change(&mut image_cfg, ch)?;
        }
        let now = config::now_rfc3339();
        cfg.config = image_cfg;
        cfg.created = Some(now.clone());
        cfg.author = author.clone();
        cfg.comment = comment.clone();
        cfg.parent = Some(img.id.clone());
        cfg.rootfs.diff_ids.push(diff_id);
        let mut created_by = rec.path.clone();
        for a in &rec.args {
            created_by.push(' ');
            created_by.push_str(a);
        }
        cfg.history.push(History {
            created: Some(now),
            created_by: Some(created_by),
            author,
            comment,
            empty_layer: false,
        });
        let new = d2.images.create_image(&cfg)?;
        if let Some(r) = &r2 {
            d2.images.tag(&new.id, r)?;
        }
        Ok(new.id)
    })
    .await
    .map_err(|e| Error::internal(e.to_string()))??;
    let mut attrs = HashMap::new();
    attrs.insert("comment".to_owned(), q.str("comment").to_owned());
    if let Some(r) = &reference {
        attrs.insert("imageRef".to_owned(), r.familiar());
    }
    d.events.emit(
        EventMessageTypeEnum::CONTAINER,
        "commit",
        &c.record().id,
        attrs,
    );
    Ok(json(201, &serde_json::json!({ "Id": id })))
}

/// Is `rel` in the layers below the container's own: its image's or the init layer
/// (dockerd reports changes against the init layer too).
fn in_lower(d: &Daemon, layers: &[berth_content::Digest], rel: &Path) -> bool {
    std::fs::symlink_metadata(d.snap.init_layer_dir().join(rel)).is_ok()
        || layers
            .iter()
            .any(|l| std::fs::symlink_metadata(d.snap.layer_dir(l).join(rel)).is_ok())
}

fn is_whiteout(m: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    m.file_type().is_char_device() && m.rdev() == 0
}

/// `GET /containers/{id}/changes`: Kind 0 modified, 1 added, 2 deleted.
pub async fn changes(d: &Arc<Daemon>, id: &str) -> Result {
    let rec = d.containers.get(id)?.record();
    let layers = d
        .images
        .get_for_container(&rec.image_id)?
        .map(|i| i.layers)
        .unwrap_or_default();
    let d2 = d.clone();
    let out = tokio::task::spawn_blocking(move || -> BResult<Vec<serde_json::Value>> {
        let upper = d2.snap.upper_dir(&rec.id);
        let mut out = Vec::new();
        let mut stack: Vec<PathBuf> = vec![PathBuf::new()];
        while let Some(rel) = stack.pop() {
            let dir = upper.join(&rel);
            let Ok(rd) = std::fs::read_dir(&dir) else {
                continue;
            };
            for e in rd.flatten() {
                let r = rel.join(e.file_name());
                let Ok(m) = std::fs::symlink_metadata(e.path()) else {
                    continue;
                };
                let kind = if is_whiteout(&m) {
                    2
                } else if in_lower(&d2, &layers, &r) {
                    0
                } else {
                    1
                };
                out.push(serde_json::json!({"Path": format!("/{}", r.display()), "Kind": kind}));
                if m.is_dir() {
                    stack.push(r);
                }
            }
        }
        out.sort_by(|a, b| a["Path"].as_str().cmp(&b["Path"].as_str()));
        Ok(out)
    })
    .await
    .map_err(|e| Error::internal(e.to_string()))??;
    Ok(json(200, &out))
}


/// `GET /containers/{id}/export`: the merged rootfs as a tar.
pub async fn export(d: &Arc<Daemon>, id: &str) -> Result {
    let rec = d.containers.get(id)?.record();
    let layers = d
        .images
        .get_for_container(&rec.image_id)?
        .map(|i| i.layers)
        .unwrap_or_default();
    let running = crate::container::Paths::new(d, &rec.id).rootfs();
    let (root, temp) = if berth_snapshot::is_mountpoint(&running) {
        (running, false)
    } else {
        let t = d
            .cfg
            .exec_root
            .join(format!("export-{:016x}", rand::random::<u64>()));
        d.snap.mount(&rec.id, &layers, &t)?;
        // Read-only from here on: nothing may change the container while it is read.
        let _ = nix::mount::mount(
            None::<&str>,
            &t,
            None::<&str>,
            nix::mount::MsFlags::MS_REMOUNT | nix::mount::MsFlags::MS_RDONLY,
            None::<&str>,
        );
        (t, true)
    };
    let (tx, resp) = stream(200, Some("application/x-tar"));
    d.events.emit(
        EventMessageTypeEnum::CONTAINER,
        "export",
        &rec.id,
        HashMap::new(),
    );
    let ids = d.snap.idmap().cloned();
    tokio::task::spawn_blocking(move || {
        let w = std::io::BufWriter::with_capacity(256 * 1024, crate::http::ChanWriter(tx));
        if let Err(e) = berth_snapshot::write_diff(&root, w, ids.as_ref()) {
            tracing::warn!("export: {e}");
        }
        if temp {
            let _ = berth_snapshot::unmount(&root);
            let _ = std::fs::remove_dir(&root);
        }
    });
    Ok(resp)
}
