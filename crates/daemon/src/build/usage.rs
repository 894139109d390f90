//! What the build cache holds, for `GET /system/df` (`BuildCache`), and
//! `POST /build/prune`.
//!
//! berth's classic builder keeps two kinds of cache: the step images its cache
//! entries name (untagged images, one per Dockerfile step, as Docker's classic
//! builder leaves them) and the directories of `RUN --mount=type=cache`. A step
//! image is a `regular` record sized by the layer that step added; it is `Shared`
//! when a tagged image or a container's image also has that layer (pruning it would
//! free nothing). A cache mount is an `exec.cachemount` record, in use while a build
//! holds it.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::time::SystemTime;

use berth_api::models::{BuildCache, BuildCacheTypeEnum};
use berth_errdefs::Result;
use chrono::{DateTime, Utc};

use super::mounts::cache_mounts_dir;
use crate::Daemon;

/// One build cache record and how to remove it.
pub struct Record {
    pub info: BuildCache,
    what: What,
}

enum What {
    /// A step image (image id), named by these cache keys; `own`: only the cache
    /// keeps it (not tagged, no container, not an ancestor of either).
    Step { id: String, keys: Vec<String>, own: bool },
    /// A cache mount directory.
    Mount(std::path::PathBuf),
}

fn time(t: SystemTime) -> DateTime<Utc> {
    DateTime::<Utc>::from(t)
}

/// Images that must stay: tagged, used by a container, and all their ancestors.
fn kept_images(d: &Daemon) -> Result<HashSet<String>> {
    let mut keep = HashSet::new();
    let mut todo: Vec<String> = d.images.tags()?.into_iter().map(|(_, id)| id).collect();
    todo.extend(d.containers.all().iter().map(|c| c.record().image_id));
    while let Some(id) = todo.pop() {
        if !keep.insert(id.clone()) {
            continue;
        }
        if let Some(rec) = d.images.get(&id)? {
            if let Some(p) = d.images.parent_of(&rec)? {
                todo.push(p);
            }
        }
    }
    Ok(keep)
}

/// Every build cache record, step images first, then cache mounts.
pub fn records(d: &Daemon) -> Result<Vec<Record>> {
    let cache = super::cache(d)?;
    let keep = kept_images(d)?;
    // Layers of the images that stay: a step's layer among them is shared.
    let mut kept_layers = HashSet::new();
    for id in &keep {
        if let Some(rec) = d.images.get(id)? {
            kept_layers.extend(rec.layers.iter().cloned());
        }
    }
    let mut steps: HashMap<String, (Vec<String>, SystemTime)> = HashMap::new();
    for (key, ids, used) in cache.entries()? {
        for id in ids {
            let e = steps.entry(id).or_insert_with(|| (Vec::new(), used));
            e.0.push(key.clone());
            e.1 = e.1.max(used);
        }
    }
    let mut out = Vec::new();
    let mut counted = HashSet::new();
    for (id, (keys, used)) in steps {
        let Some(rec) = d.images.get(&id)? else { continue };
        let own = !keep.contains(&id);
        let cfg = d.images.config(&rec)?;
        let last = cfg.history.last();
        let own_layer = last
            .filter(|h| !h.empty_layer)
            .and_then(|_| rec.layers.last().cloned());
        let shared = !own || own_layer.as_ref().is_some_and(|l| kept_layers.contains(l));
        let size = match &own_layer {
            Some(l) if counted.insert(l.clone()) => d.images.layer_size(l),
            _ => 0,
        };
        let in_use = d.containers.using_image(&id).is_some();
        out.push(Record {
            info: BuildCache {
                id: Some(id.trim_start_matches("sha256:").to_owned()),
                parents: d.images.parent_of(&rec)?.map(|p| vec![p.trim_start_matches("sha256:").to_owned()]),
                typ: Some(BuildCacheTypeEnum::REGULAR),
                description: last.and_then(|h| h.created_by.clone()),
                in_use: Some(in_use),
                shared: Some(shared),
                size: Some(size as i64),
                created_at: cfg.created.as_deref().and_then(|c| c.parse().ok()),
                last_used_at: Some(time(used)),
                usage_count: Some(keys.len() as i64),
            },
            what: What::Step { id, keys, own },
        });
    }
    out.sort_by_key(|r| r.info.created_at);
    let dir = cache_mounts_dir(d);
    if let Ok(rd) = std::fs::read_dir(&dir) {
        for e in rd.flatten() {
            let p = e.path();
            if !p.is_dir() {
                continue;
            }
            let name = e.file_name().to_string_lossy().into_owned();
            let lock = p.with_extension("lock");
            let in_use = File::options()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&lock)
                .is_ok_and(|l| l.try_lock().is_err());
            let info: serde_json::Value = std::fs::read(p.with_extension("info"))
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok())
                .unwrap_or_default();
            let description = match (info["target"].as_str(), info["id"].as_str()) {
                (Some(t), Some(id)) if id != t => format!("cached mount {t} (id {id})"),
                (Some(t), _) => format!("cached mount {t}"),
                _ => "cached mount".to_owned(),
            };
            let md = e.metadata().ok();
            let used = std::fs::metadata(&lock).and_then(|m| m.modified()).ok();
            out.push(Record {
                info: BuildCache {
                    id: Some(name),
                    typ: Some(BuildCacheTypeEnum::EXEC_CACHEMOUNT),
                    description: Some(description),
                    in_use: Some(in_use),
                    shared: Some(false),
                    size: Some(berth_snapshot::dir_size(&p) as i64),
                    created_at: md.as_ref().and_then(|m| m.created().or_else(|_| m.modified()).ok()).map(time),
                    last_used_at: used.map(time),
                    ..Default::default()
                },
                what: What::Mount(p),
            });
        }
    }
    Ok(out)
}

/// `BuilderSize`: what the records hold that nothing else does.
pub fn builder_size(records: &[Record]) -> i64 {
    records
        .iter()
        .filter(|r| !r.info.shared.unwrap_or(false))
        .map(|r| r.info.size.unwrap_or(0))
        .sum()
}

/// Which records a prune takes.
#[derive(Debug, Default)]
pub struct PruneOptions {
    /// Only records last used before this (unix seconds).
    pub until: Option<i64>,
    /// Keep the most recently used records up to this many bytes.
    pub keep_storage: u64,
}

/// Remove the records `opts` select that are not in use: cache entries, the step
/// images only the cache keeps (children before parents), idle cache mounts.
/// Returns the ids removed and the bytes freed.
pub fn prune(d: &Daemon, opts: &PruneOptions) -> Result<(Vec<String>, u64)> {
    let cache = super::cache(d)?;
    let mut recs = records(d)?;
    // Newest first: `keep_storage` keeps those.
    recs.sort_by_key(|r| std::cmp::Reverse(r.info.last_used_at));
    let mut kept_bytes = 0u64;
    let mut chosen = Vec::new();
    for r in recs {
        if r.info.in_use.unwrap_or(false) {
            continue;
        }
        let used = r.info.last_used_at.map(|t| t.timestamp()).unwrap_or(0);
        if opts.until.is_some_and(|u| used >= u) {
            continue;
        }
        let size = r.info.size.unwrap_or(0) as u64;
        if opts.keep_storage > 0 && kept_bytes + size <= opts.keep_storage {
            kept_bytes += size;
            continue;
        }
        chosen.push(r);
    }
    let mut ids = Vec::new();
    let mut freed = 0u64;
    // Step images: deepest first, so a child always goes before its parent.
    let depth = |id: &str| -> usize {
        let mut n = 0;
        let mut cur = d.images.get(id).ok().flatten();
        while let Some(rec) = cur {
            n += 1;
            cur = d.images.parent_of(&rec).ok().flatten().and_then(|p| d.images.get(&p).ok().flatten());
        }
        n
    };
    let mut steps: Vec<(usize, &Record)> = chosen
        .iter()
        .filter_map(|r| match &r.what {
            What::Step { id, .. } => Some((depth(id), r)),
            What::Mount(_) => None,
        })
        .collect();
    steps.sort_by_key(|s| std::cmp::Reverse(s.0));
    let in_use = |id: &str| d.containers.using_image(id);
    for (_, r) in steps {
        let What::Step { id, keys, own } = &r.what else { continue };
        for k in keys {
            cache.forget(k, id)?;
        }
        ids.push(r.info.id.clone().unwrap_or_default());
        if !own {
            continue; // part of a tagged image: the cache forgets it, the image stays
        }
        match d.images.remove(id, false, false, &in_use) {
            Ok(removal) => freed += removal.reclaimed,
            Err(e) if e.is_not_found() => {}
            Err(e) => tracing::debug!(image = %id, "builder prune keeps it: {e}"),
        }
    }
    for r in &chosen {
        let What::Mount(p) = &r.what else { continue };
        let lock = File::options().create(true).truncate(false).write(true).open(p.with_extension("lock"));
        if let Ok(l) = lock {
            if l.try_lock().is_ok() && std::fs::remove_dir_all(p).is_ok() {
                let _ = std::fs::remove_file(p.with_extension("info"));
                freed += r.info.size.unwrap_or(0) as u64;
                ids.push(r.info.id.clone().unwrap_or_default());
            }
        }
    }
    // Entries whose images are all gone are dead weight.
    cache.drop_dead(|id| d.images.get(id).ok().flatten().is_some())?;
    Ok((ids, freed))
}
