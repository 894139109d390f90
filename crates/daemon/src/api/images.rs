//! Image endpoints.

use berth_api::version::ApiVersion;
use std::collections::HashMap;
use std::sync::Arc;

use berth_api::models::{
    EventMessageTypeEnum, ImageConfig, ImageHistoryResponseItem, ImageInspect, ImageInspectMetadata, ImageInspectRootFs,
    ImageSummary,
};
use berth_api::stream::JsonMessage;
use berth_errdefs::{Error, Result as BResult};
use berth_image::ImageRecord;
use http::Request;
use hyper::body::Incoming;

use crate::http::{json, stream, Query, Result};
use crate::Daemon;

fn created_unix(cfg_created: Option<&str>) -> i64 {
    cfg_created.and_then(|c| chrono::DateTime::parse_from_rfc3339(c).ok()).map(|t| t.timestamp()).unwrap_or(0)
}

/// What an image listing needs beyond the records, gathered once per listing so that
/// it costs O(images + tags + containers).
pub struct ListingIndex {
    tags: HashMap<String, Vec<String>>,
    containers: HashMap<String, i64>,
}

impl ListingIndex {
    pub fn new(d: &Daemon) -> BResult<ListingIndex> {
        Ok(ListingIndex { tags: d.images.tags_by_image()?, containers: d.containers.count_by_image() })
    }
}

/// `docker images` row.
pub fn summary(d: &Daemon, rec: &ImageRecord, ix: &ListingIndex) -> BResult<ImageSummary> {
    let meta = d.images.meta(rec)?;
    Ok(ImageSummary {
        id: rec.id.clone(),
        parent_id: meta.parent.clone().unwrap_or_default(),
        repo_tags: ix.tags.get(&rec.id).cloned().unwrap_or_default(),
        repo_digests: rec.repo_digests.clone(),
        created: meta.created,
        size: d.images.image_size(rec) as i64,
        shared_size: -1,
        labels: meta.labels.clone(),
        containers: ix.containers.get(&rec.id).copied().unwrap_or(0),
        ..Default::default()
    })
}

/// `GET /images/json`. Before API 1.41 a `filter=` parameter is one more `reference`
/// filter (dockerd 20.10 still reads it from those clients).
pub async fn list(d: &Arc<Daemon>, q: Query, v: ApiVersion) -> Result {
    let mut f = q.filters()?;
    if v.before(41) {
        if let Some(r) = q.get("filter").filter(|r| !r.is_empty()) {
            f.add("reference", r);
        }
    }
    let all = q.bool("all");
    let d = d.clone();
    let rows = crate::http::blocking(move || summaries(&d, all, &f)).await?;
    Ok(json(200, &with_virtual_size(&rows)))
}

/// Image rows with API 1.41's `VirtualSize` (the same as `Size` since layers are
/// shared; newer models dropped it, dockerd 20.10 sends it).
pub fn with_virtual_size(rows: &[ImageSummary]) -> serde_json::Value {
    let mut v = serde_json::to_value(rows).unwrap_or_default();
    for r in v.as_array_mut().into_iter().flatten() {
        if let Some(o) = r.as_object_mut() {
            let size = o.get("Size").cloned().unwrap_or(serde_json::Value::from(0));
            o.insert("VirtualSize".into(), size);
        }
    }
    v
}

/// `docker images` rows, newest first: as Docker, an untagged image with child images
/// (a build's intermediate step) is shown only with `all`. Filters as dockerd 20.10
/// takes them (`dangling`, `label`, `before`, `since`, `reference`).
pub fn summaries(d: &Daemon, all: bool, f: &berth_api::query::Filters) -> BResult<Vec<ImageSummary>> {
    f.validate(&["dangling", "label", "before", "since", "reference"])?;
    let dangling = f.bool_value("dangling")?;
    for r in f.get("reference") {
        berth_api::query::path_match(r, "")?;
    }
    let created_of = |name: &str| -> BResult<i64> { Ok(d.images.meta(&d.images.resolve(name)?)?.created) };
    let before = f.get("before").last().map(|v| created_of(v)).transpose()?;
    let since = f.get("since").last().map(|v| created_of(v)).transpose()?;
    let children = d.images.children()?;
    let ix = ListingIndex::new(d)?;
    let mut out = Vec::new();
    let refs = f.get("reference");
    for rec in d.images.list()? {
        let mut s = summary(d, &rec, &ix)?;
        if !refs.is_empty() {
            // as dockerd: only the references that match are listed (patterns OR-ed),
            // and an image none of whose references match is left out
            s.repo_tags.retain(|t| refs.iter().any(|r| reference_matches(r, t)));
            s.repo_digests.retain(|t| refs.iter().any(|r| reference_matches(r, t.split('@').next().unwrap_or(t))));
            if s.repo_tags.is_empty() && s.repo_digests.is_empty() {
                continue;
            }
        }
        let untagged = s.repo_tags.is_empty() && s.repo_digests.is_empty();
        if untagged && !all && children.contains_key(&rec.id) {
            continue;
        }
        if dangling.is_some_and(|want| want != (s.repo_tags.is_empty() && !children.contains_key(&rec.id))) {
            continue;
        }
        if before.is_some_and(|b| s.created >= b) || since.is_some_and(|t| s.created <= t) {
            continue;
        }
        if !f.match_labels(|k| s.labels.get(k).map(String::as_str)) {
            continue;
        }
        out.push(s);
    }
    out.sort_by_key(|s| std::cmp::Reverse(s.created));
    Ok(out)
}

/// `reference` filter: Go's `path.Match` against `name:tag`, then against `name`
/// (distribution's `FamiliarMatch`); patterns were checked before.
fn reference_matches(pattern: &str, tag: &str) -> bool {
    let (repo, _) = tag.rsplit_once(':').filter(|(_, t)| !t.contains('/')).unwrap_or((tag, ""));
    berth_api::query::path_match(pattern, tag).unwrap_or(false) || berth_api::query::path_match(pattern, repo).unwrap_or(false)
}

pub fn inspect(d: &Arc<Daemon>, name: &str) -> Result {
    let rec = d.images.resolve(name)?;
    let cfg = d.images.config(&rec)?;
    let size = d.images.image_size(&rec);
    let ii = ImageInspect {
        id: Some(rec.id.clone()),
        repo_tags: Some(d.images.tags_of(&rec.id)?),
        repo_digests: Some(rec.repo_digests.clone()),
        comment: Some(cfg.comment.clone().unwrap_or_default()),
        author: Some(cfg.author.clone().unwrap_or_default()),
        config: Some(cfg.config.clone()),
        architecture: Some(cfg.architecture.clone()),
        variant: cfg.variant.clone(),
        os: Some(cfg.os.clone()),
        size: Some(size as i64),
        root_fs: Some(ImageInspectRootFs {
            typ: "layers".into(),
            layers: Some(rec.layers.iter().map(|l| l.to_string()).collect()),
        }),
        metadata: Some(ImageInspectMetadata {
            last_tag_time: rec
                .last_tag_time
                .as_deref()
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                .map(|t| t.with_timezone(&chrono::Utc)),
        }),
        ..Default::default()
    };
    // API 1.41 fields that newer models dropped.
    let mut v = serde_json::to_value(&ii).map_err(|e| Error::internal(e.to_string()))?;
    if let Some(o) = v.as_object_mut() {
        o.insert("Parent".into(), serde_json::json!(cfg.parent.clone().unwrap_or_default()));
        o.insert("Created".into(), serde_json::json!(cfg.created.clone().unwrap_or_default()));
        o.insert("DockerVersion".into(), serde_json::json!(cfg.docker_version.clone().unwrap_or_default()));
        o.insert("Container".into(), serde_json::json!(cfg.container.clone().unwrap_or_default()));
        o.insert("ContainerConfig".into(), cfg.container_config.clone().unwrap_or_else(|| serde_json::json!({})));
        for k in ["Config", "ContainerConfig"] {
            if o.get(k).is_none_or(|c| c.is_null()) {
                o.insert(k.into(), serde_json::json!({}));
            }
            if let Some(c) = o.get_mut(k).and_then(|c| c.as_object_mut()) {
                crate::container::inspect::fill_config_zero_fields(c);
            }
        }
        o.insert("VirtualSize".into(), serde_json::json!(size));
        o.insert("GraphDriver".into(), serde_json::json!({"Name": "overlay2", "Data": null}));
    }
    Ok(json(200, &v))
}

pub fn history(d: &Arc<Daemon>, name: &str) -> Result {
    let rec = d.images.resolve(name)?;
    let cfg = d.images.config(&rec)?;
    let tags = d.images.tags_of(&rec.id)?;
    let mut layer_sizes = rec.layers.iter().map(|l| d.images.layer_size(l) as i64);
    let mut items: Vec<ImageHistoryResponseItem> = cfg
        .history
        .iter()
        .map(|h| ImageHistoryResponseItem {
            id: "<missing>".into(),
            created: created_unix(h.created.as_deref()),
            created_by: h.created_by.clone().unwrap_or_default(),
            tags: Vec::new(),
            size: if h.empty_layer { 0 } else { layer_sizes.next().unwrap_or(0) },
            comment: h.comment.clone().unwrap_or_default(),
        })
        .collect();
    // Images of the parent chain (local builds) name the entry that made them: the
    // last of their own history, as dockerd fills in ids and tags.
    if let Some(top) = items.last_mut() {
        top.id = rec.id.clone();
        top.tags = tags;
    }
    let mut parent = cfg.parent.clone();
    let mut seen = 0;
    while let Some(pid) = parent.take().filter(|p| !p.is_empty()) {
        seen += 1;
        let Some(prec) = d.images.get(&pid)?.filter(|_| seen <= items.len()) else { break };
        let pcfg = d.images.config(&prec)?;
        if let Some(item) = pcfg.history.len().checked_sub(1).and_then(|i| items.get_mut(i)) {
            item.id = prec.id.clone();
            item.tags = d.images.tags_of(&prec.id)?;
        }
        parent = pcfg.parent.clone();
    }
    items.reverse();
    Ok(json(200, &items))
}

pub fn tag(d: &Arc<Daemon>, name: &str, q: &Query) -> Result {
    let rec = d.images.resolve(name)?;
    if q.str("tag").contains(':') {
        return Err(Error::invalid(format!("invalid tag format: {}", q.str("tag"))));
    }
    let r = berth_image::reference::from_repo_tag(q.str("repo"), q.str("tag"))?;
    if r.digest.is_some() {
        return Err(Error::invalid("refusing to create a tag with a digest reference"));
    }
    d.images.tag(&rec.id, &r)?;
    let mut attrs = std::collections::HashMap::new();
    attrs.insert("name".to_owned(), r.familiar());
    d.events.emit(EventMessageTypeEnum::IMAGE, "tag", &rec.id, attrs);
    Ok(crate::http::empty(201))
}

/// Warm sandboxes hold an image's layers mounted: they go before the image, and
/// before the untagged parents a removal may prune with it.
async fn evict_chain(d: &Arc<Daemon>, id: &str) {
    let mut cur = d.images.get(id).ok().flatten();
    while let Some(rec) = cur {
        crate::container::warm::evict_image(d, &rec.id).await;
        cur = match d.images.parent_of(&rec) {
            Ok(Some(p)) if d.images.tags_of(&p).is_ok_and(|t| t.is_empty()) => d.images.get(&p).ok().flatten(),
            _ => None,
        };
    }
}

fn emit_removal(d: &Daemon, items: &[berth_api::models::ImageDeleteResponseItem]) {
    for item in items {
        let mut attrs = std::collections::HashMap::new();
        if let Some(t) = &item.untagged {
            attrs.insert("name".to_owned(), t.clone());
            d.events.emit(EventMessageTypeEnum::IMAGE, "untag", t, attrs);
        } else if let Some(id) = &item.deleted {
            d.events.emit(EventMessageTypeEnum::IMAGE, "delete", id, attrs);
        }
    }
}

/// `DELETE /images/{name}` (`force`, `noprune`).
pub async fn remove(d: &Arc<Daemon>, name: &str, q: &Query) -> Result {
    if let Ok(img) = d.images.resolve(name) {
        evict_chain(d, &img.id).await;
    }
    let in_use = |id: &str| d.containers.using_image(id);
    let out = d.images.remove(name, q.bool("force"), !q.bool("noprune"), &in_use)?;
    emit_removal(d, &out.items);
    Ok(json(200, &out.items))
}

/// `POST /images/prune`: filters `dangling` (false: every unused image), `until`,
/// `label` and `label!`.
pub async fn prune(d: &Arc<Daemon>, q: &Query) -> Result {
    let f = q.filters()?;
    f.validate(&["dangling", "until", "label", "label!"])?;
    let all = f.bool_value("dangling")? == Some(false);
    let now = chrono::Utc::now().timestamp();
    let until = f.get("until").iter().map(|u| berth_api::query::timestamp(u, now)).collect::<BResult<Vec<i64>>>()?;
    let mut keep_ids = std::collections::HashSet::new();
    for rec in d.images.list()? {
        let cfg = d.images.config(&rec)?;
        let labels = cfg.config.labels.clone().unwrap_or_default();
        let label_ok = f.match_labels(|k| labels.get(k).map(String::as_str))
            && f.get("label!").iter().all(|l| match l.split_once('=') {
                Some((k, v)) => labels.get(k).map(String::as_str) != Some(v),
                None => !labels.contains_key(l),
            });
        if !label_ok || until.iter().any(|u| rec.created >= *u) {
            keep_ids.insert(rec.id.clone());
        } else if all || d.images.tags_of(&rec.id)?.is_empty() {
            crate::container::warm::evict_image(d, &rec.id).await;
        }
    }
    let in_use = |id: &str| d.containers.using_image(id);
    let out = d.images.prune(all, &|r| keep_ids.contains(&r.id), &in_use)?;
    emit_removal(d, &out.items);
    let deleted = (!out.items.is_empty()).then_some(&out.items);
    Ok(json(200, &serde_json::json!({"ImagesDeleted": deleted, "SpaceReclaimed": out.reclaimed})))
}

/// `POST /images/create`: `fromSrc` imports a rootfs tar; `fromImage` pulls.
/// `platform` is read from API 1.32 on (as dockerd: older clients' is ignored).
pub async fn create(d: &Arc<Daemon>, req: Request<Incoming>, q: &Query, v: ApiVersion) -> Result {
    if q.get("fromImage").is_some() {
        return super::transfer::pull(d, req, q, v).await;
    }
    let src = q.str("fromSrc");
    if src != "-" {
        return Err(Error::invalid(format!("importing from a URL is not supported: {src}")));
    }
    let reference = match q.str("repo") {
        "" => None,
        repo => Some(berth_image::reference::from_repo_tag(repo, q.str("tag"))?),
    };
    let changes: Vec<String> = q.all("changes").to_vec();
    let message = q.get("message").map(str::to_owned);
    // Validate the changes before reading the body.
    let mut scratch = ImageConfig::default();
    for c in &changes {
        berth_image::changes::apply_change(&mut scratch, c)?;
    }
    // Spool the body to a temp file, then import on the blocking pool.
    let spool = crate::http::spool_body(&d.cfg.data_root, req.into_body(), "import").await?;
    let d2 = d.clone();
    let spool2 = spool.clone();
    let r2 = reference.clone();
    let result = tokio::task::spawn_blocking(move || -> BResult<ImageRecord> {
        let f = std::fs::File::open(&spool2)?;
        d2.images.import(f, &changes, message.as_deref(), r2.as_ref())
    })
    .await
    .map_err(|e| Error::internal(e.to_string()))?;
    let _ = std::fs::remove_file(&spool);
    let rec = result?;
    let mut attrs = std::collections::HashMap::new();
    if let Some(r) = &reference {
        attrs.insert("name".to_owned(), r.familiar());
    }
    d.events.emit(EventMessageTypeEnum::IMAGE, "import", &rec.id, attrs);
    let (tx, resp) = stream(200, Some("application/json"));
    let _ = tx.try_send(JsonMessage::status(rec.id.clone()).to_line());
    Ok(resp)
}



#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_filter_globs() {
        assert!(reference_matches("busybox", "busybox:latest"));
        assert!(reference_matches("busy*", "busybox:latest"));
        assert!(reference_matches("busybox:lat*", "busybox:latest"));
        assert!(!reference_matches("alpine", "busybox:latest"));
    }
}
