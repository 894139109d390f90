//! Mark and sweep garbage collection of blobs.

use std::collections::BTreeSet;

use berth_errdefs::Result;

use crate::digest::Digest;
use crate::manifest;
use crate::storage::Store;

/// What a garbage collection removed (or would remove, on a dry run).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcReport {
    pub blobs_removed: Vec<String>,
    pub bytes_freed: u64,
}

/// Every blob reachable from a manifest revision of any repository: the manifests
/// themselves, their configs and layers, and recursively the children of indexes.
pub fn mark(store: &Store) -> Result<BTreeSet<Digest>> {
    let mut marked = BTreeSet::new();
    let mut queue: Vec<Digest> = Vec::new();
    for repo in store.repositories()? {
        for d in store.manifest_revisions(&repo)? {
            if marked.insert(d.clone()) {
                queue.push(d);
            }
        }
    }
    while let Some(d) = queue.pop() {
        let Ok(bytes) = std::fs::read(store.blob_path(&d)) else {
            continue;
        };
        for (r, is_manifest) in manifest::references(&bytes) {
            if marked.insert(r.clone()) && is_manifest {
                queue.push(r);
            }
        }
    }
    Ok(marked)
}

/// Remove every blob no manifest references; with `dry_run`, only report them.
pub fn run(store: &Store, dry_run: bool) -> Result<GcReport> {
    let marked = mark(store)?;
    let mut report = GcReport::default();
    for d in store.all_blobs()? {
        if marked.contains(&d) {
            continue;
        }
        let size = store.blob_size(&d).unwrap_or(0);
        if !dry_run {
            store.remove_blob(&d)?;
        }
        tracing::info!(digest = %d, size, dry_run, "garbage collect blob");
        report.blobs_removed.push(d.to_string());
        report.bytes_freed += size;
    }
    if !dry_run {
        // abandoned upload sessions, as distribution purges them: after a week
        store.purge_stale(std::time::Duration::from_secs(7 * 24 * 3600))?;
        for repo in store.repositories()? {
            store.prune_dangling_links(&repo)?;
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::Algorithm;
    use crate::storage::ManifestMeta;

    #[test]
    fn keeps_referenced_recursively() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let put = |b: &[u8]| {
            let d = Algorithm::Sha256.digest(b);
            s.put_blob_bytes(b, &d).unwrap();
            d
        };
        let cfg = put(b"config");
        let layer = put(b"layer");
        let orphan = put(b"orphan");
        let img = format!(
            r#"{{"schemaVersion":2,"config":{{"mediaType":"c","digest":"{cfg}","size":6}},"layers":[{{"mediaType":"l","digest":"{layer}","size":5}}]}}"#
        );
        let img_d = put(img.as_bytes());
        let idx = format!(
            r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"m","digest":"{img_d}","size":1}}]}}"#
        );
        let idx_d = Algorithm::Sha256.digest(idx.as_bytes());
        let meta = ManifestMeta {
            media_type: manifest::OCI_INDEX.into(),
            subject: None,
        };
        s.put_manifest("r", &idx_d, idx.as_bytes(), &meta, &["t".into()])
            .unwrap();
        s.link_blob("r", &orphan).unwrap();

        let dry = run(&s, true).unwrap();
        assert_eq!(dry.blobs_removed, vec![orphan.to_string()]);
        assert!(s.blob_size(&orphan).is_some());
        let rep = run(&s, false).unwrap();
        assert_eq!(
            rep,
            GcReport {
                blobs_removed: vec![orphan.to_string()],
                bytes_freed: 6
            }
        );
        for d in [&cfg, &layer, &img_d, &idx_d] {
            assert!(s.blob_size(d).is_some());
        }
        assert!(s.repo_blob("r", &orphan).is_none());
    }
}
