//! Filesystem layout of the registry. Everything lives under `root`:
//!
//! ```text
//! blobs/<alg>/<hex>                                   content, shared by all repositories
//! repositories/<name>/_layers/<alg>/<hex>             empty file: blob linked into <name>
//! repositories/<name>/_manifests/revisions/<alg>/<hex> JSON {mediaType, subject}: manifest in <name>
//! repositories/<name>/_manifests/tags/<tag>           digest string
//! repositories/<name>/_referrers/<alg>/<hex>/<alg>-<hex>  empty: manifest whose subject is <alg>:<hex>
//! uploads/<id>/data, uploads/<id>/repo                 upload sessions
//! tmp/                                                 temp files of atomic writes
//! ```
//! Every write is temp file + fsync + rename (+ fsync of the directory).

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use berth_errdefs::{Error, Result, ResultExt};
use serde::{Deserialize, Serialize};

use crate::digest::{Algorithm, Digest};

/// What is kept beside a manifest revision.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ManifestMeta {
    #[serde(rename = "mediaType")]
    pub media_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

fn random_id() -> String {
    let b: [u8; 16] = rand::random();
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

fn fsync_dir(dir: &Path) {
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

fn exists(p: &Path) -> bool {
    fs::symlink_metadata(p).is_ok()
}

fn read_dir_names(dir: &Path) -> Result<Vec<String>> {
    match fs::read_dir(dir) {
        Ok(rd) => {
            let mut out = Vec::new();
            for e in rd {
                let e = e?;
                if let Some(n) = e.file_name().to_str() {
                    out.push(n.to_string());
                }
            }
            Ok(out)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(Error::from(e).context(dir.display())),
    }
}

impl Store {
    /// Open (creating the layout if needed) a store under `root`.
    pub fn open(root: &Path) -> Result<Store> {
        for d in ["blobs", "repositories", "uploads", "tmp"] {
            fs::create_dir_all(root.join(d)).ctx(format!("creating {}", root.join(d).display()))?;
        }
        Ok(Store {
            root: root.to_path_buf(),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn tmp_path(&self) -> PathBuf {
        self.root.join("tmp").join(random_id())
    }

    /// Write `data` to `dest` atomically.
    pub fn write_atomic(&self, dest: &Path, data: &[u8]) -> Result<()> {
        let tmp = self.tmp_path();
        let res = (|| -> std::io::Result<()> {
            let mut f = fs::File::create(&tmp)?;
            f.write_all(data)?;
            f.sync_all()?;
            let parent = dest.parent().expect("dest has a parent");
            fs::create_dir_all(parent)?;
            fs::rename(&tmp, dest)?;
            fsync_dir(parent);
            Ok(())
        })();
        if res.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        res.ctx(format!("writing {}", dest.display()))
    }

    // ---- blobs ----

    pub fn blob_path(&self, d: &Digest) -> PathBuf {
        self.root
            .join("blobs")
            .join(d.algorithm().name())
            .join(d.hex())
    }

    /// Size of a stored blob, if present.
    pub fn blob_size(&self, d: &Digest) -> Option<u64> {
        fs::metadata(self.blob_path(d))
            .ok()
            .filter(|m| m.is_file())
            .map(|m| m.len())
    }

    /// Move a fully written and verified file into the blob store.
    pub fn commit_blob_file(&self, file: &Path, d: &Digest) -> Result<()> {
        let dest = self.blob_path(d);
        if dest.is_file() {
            let _ = fs::remove_file(file);
            return Ok(());
        }
        let res = (|| -> std::io::Result<()> {
            fs::File::open(file)?.sync_all()?;
            let parent = dest.parent().expect("blob path has a parent");
            fs::create_dir_all(parent)?;
            fs::rename(file, &dest)?;
            fsync_dir(parent);
            Ok(())
        })();
        res.ctx(format!("storing blob {d}"))
    }

    pub fn put_blob_bytes(&self, data: &[u8], d: &Digest) -> Result<()> {
        let dest = self.blob_path(d);
        if dest.is_file() {
            return Ok(());
        }
        self.write_atomic(&dest, data)
    }

    pub fn remove_blob(&self, d: &Digest) -> Result<()> {
        match fs::remove_file(self.blob_path(d)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::from(e).context(format!("removing blob {d}"))),
        }
    }

    /// Every blob in the store.
    pub fn all_blobs(&self) -> Result<Vec<Digest>> {
        let mut out = Vec::new();
        for alg in read_dir_names(&self.root.join("blobs"))? {
            let Some(a) = Algorithm::from_name(&alg) else {
                continue;
            };
            for hex in read_dir_names(&self.root.join("blobs").join(&alg))? {
                if let Ok(d) = format!("{}:{hex}", a.name()).parse() {
                    out.push(d);
                }
            }
        }
        out.sort();
        Ok(out)
    }

    // ---- repositories ----

    fn repo_dir(&self, name: &str) -> PathBuf {
        self.root.join("repositories").join(name)
    }

    fn layer_link(&self, name: &str, d: &Digest) -> PathBuf {
        self.repo_dir(name)
            .join("_layers")
            .join(d.algorithm().name())
            .join(d.hex())
    }

    fn revision_path(&self, name: &str, d: &Digest) -> PathBuf {
        self.repo_dir(name)
            .join("_manifests/revisions")
            .join(d.algorithm().name())
            .join(d.hex())
    }

    fn tag_path(&self, name: &str, tag: &str) -> PathBuf {
        self.repo_dir(name).join("_manifests/tags").join(tag)
    }

    fn referrer_dir(&self, name: &str, subject: &Digest) -> PathBuf {
        self.repo_dir(name)
            .join("_referrers")
            .join(subject.algorithm().name())
            .join(subject.hex())
    }

    /// Whether the repository has any content.
    pub fn repo_exists(&self, name: &str) -> bool {
        let d = self.repo_dir(name);
        d.join("_manifests").is_dir() || d.join("_layers").is_dir()
    }

    /// Size of a blob that is linked into `name` and present.
    pub fn repo_blob(&self, name: &str, d: &Digest) -> Option<u64> {
        if !exists(&self.layer_link(name, d)) {
            return None;
        }
        self.blob_size(d)
    }

    pub fn link_blob(&self, name: &str, d: &Digest) -> Result<()> {
        let p = self.layer_link(name, d);
        if exists(&p) {
            return Ok(());
        }
        self.write_atomic(&p, b"")
    }

    /// Remove the link of a blob from `name`; false if it was not linked.
    pub fn unlink_blob(&self, name: &str, d: &Digest) -> Result<bool> {
        match fs::remove_file(self.layer_link(name, d)) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// All repository names, sorted.
    pub fn repositories(&self) -> Result<Vec<String>> {
        let mut out = Vec::new();
        let base = self.root.join("repositories");
        let mut stack = vec![String::new()];
        while let Some(prefix) = stack.pop() {
            let dir = if prefix.is_empty() {
                base.clone()
            } else {
                base.join(&prefix)
            };
            for n in read_dir_names(&dir)? {
                if n.starts_with('_') || !dir.join(&n).is_dir() {
                    continue;
                }
                let full = if prefix.is_empty() {
                    n
                } else {
                    format!("{prefix}/{n}")
                };
                if self.repo_exists(&full) {
                    out.push(full.clone());
                }
                stack.push(full);
            }
        }
        out.sort();
        Ok(out)
    }

    // ---- manifests ----

    /// Store a manifest: its bytes as a blob, a revision link with its media type,
    /// its tags and its referrer entry.
    pub fn put_manifest(
        &self,
        name: &str,
        d: &Digest,
        bytes: &[u8],
        meta: &ManifestMeta,
        tags: &[String],
    ) -> Result<()> {
        self.put_blob_bytes(bytes, d)?;
        self.write_atomic(&self.revision_path(name, d), &serde_json::to_vec(meta)?)?;
        if let Some(s) = meta
            .subject
            .as_deref()
            .and_then(|s| s.parse::<Digest>().ok())
        {
            self.write_atomic(&self.referrer_dir(name, &s).join(d.file_key()), b"")?;
        }
        for t in tags {
            self.write_atomic(&self.tag_path(name, t), d.to_string().as_bytes())?;
        }
        Ok(())
    }

    pub fn manifest_meta(&self, name: &str, d: &Digest) -> Result<Option<ManifestMeta>> {
        match fs::read(self.revision_path(name, d)) {
            Ok(b) => Ok(Some(
                serde_json::from_slice(&b).ctx("reading manifest revision")?,
            )),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// A manifest of `name` with its bytes, if both link and blob exist.
    pub fn read_manifest(&self, name: &str, d: &Digest) -> Result<Option<(ManifestMeta, Vec<u8>)>> {
        let Some(meta) = self.manifest_meta(name, d)? else {
            return Ok(None);
        };
        match fs::read(self.blob_path(d)) {
            Ok(b) => Ok(Some((meta, b))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    pub fn resolve_tag(&self, name: &str, tag: &str) -> Result<Option<Digest>> {
        match fs::read_to_string(self.tag_path(name, tag)) {
            Ok(s) => Ok(s.trim().parse().ok()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    pub fn delete_tag(&self, name: &str, tag: &str) -> Result<bool> {
        match fs::remove_file(self.tag_path(name, tag)) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Delete a manifest revision from `name` with the tags that point at it and its
    /// referrer entry. False if it was not there.
    pub fn delete_manifest(&self, name: &str, d: &Digest) -> Result<bool> {
        let Some(meta) = self.manifest_meta(name, d)? else {
            return Ok(false);
        };
        for t in self.tags(name)? {
            if self.resolve_tag(name, &t)?.as_ref() == Some(d) {
                self.delete_tag(name, &t)?;
            }
        }
        if let Some(s) = meta
            .subject
            .as_deref()
            .and_then(|s| s.parse::<Digest>().ok())
        {
            let _ = fs::remove_file(self.referrer_dir(name, &s).join(d.file_key()));
        }
        fs::remove_file(self.revision_path(name, d))?;
        Ok(true)
    }

    /// Tags of `name`, sorted ("ASCIIbetical").
    pub fn tags(&self, name: &str) -> Result<Vec<String>> {
        let mut t = read_dir_names(&self.repo_dir(name).join("_manifests/tags"))?;
        t.sort();
        Ok(t)
    }

    /// Digests of all manifest revisions of `name`.
    pub fn manifest_revisions(&self, name: &str) -> Result<Vec<Digest>> {
        let base = self.repo_dir(name).join("_manifests/revisions");
        let mut out = Vec::new();
        for alg in read_dir_names(&base)? {
            for hex in read_dir_names(&base.join(&alg))? {
                if let Ok(d) = format!("{alg}:{hex}").parse() {
                    out.push(d);
                }
            }
        }
        out.sort();
        Ok(out)
    }

    /// Manifests of `name` whose subject is `subject`.
    pub fn referrers(&self, name: &str, subject: &Digest) -> Result<Vec<Digest>> {
        let mut out: Vec<Digest> = read_dir_names(&self.referrer_dir(name, subject))?
            .iter()
            .filter_map(|n| Digest::from_file_key(n))
            .collect();
        out.sort();
        Ok(out)
    }

    /// Remove layer links of `name` whose blob is gone.
    pub fn prune_dangling_links(&self, name: &str) -> Result<()> {
        let base = self.repo_dir(name).join("_layers");
        for alg in read_dir_names(&base)? {
            for hex in read_dir_names(&base.join(&alg))? {
                if let Ok(d) = format!("{alg}:{hex}").parse::<Digest>() {
                    if self.blob_size(&d).is_none() {
                        let _ = fs::remove_file(base.join(&alg).join(&hex));
                    }
                }
            }
        }
        Ok(())
    }

    // ---- uploads ----

    fn upload_dir(&self, id: &str) -> PathBuf {
        self.root.join("uploads").join(id)
    }

    pub fn upload_data(&self, id: &str) -> PathBuf {
        self.upload_dir(id).join("data")
    }

    /// Start an upload session for `name`; returns its id.
    pub fn new_upload(&self, name: &str) -> Result<String> {
        let id = random_id();
        let dir = self.upload_dir(&id);
        fs::create_dir_all(&dir)?;
        fs::File::create(dir.join("data"))?;
        self.write_atomic(&dir.join("repo"), name.as_bytes())?;
        Ok(id)
    }

    /// Current size of upload `id` of repository `name`, None if unknown.
    pub fn upload_size(&self, name: &str, id: &str) -> Option<u64> {
        let valid = !id.is_empty() && id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-');
        if !valid {
            return None;
        }
        let repo = fs::read_to_string(self.upload_dir(id).join("repo")).ok()?;
        if repo != name {
            return None;
        }
        fs::metadata(self.upload_data(id)).ok().map(|m| m.len())
    }

    /// Remove upload sessions and temp files untouched for longer than `age`;
    /// returns how many were removed.
    pub fn purge_stale(&self, age: std::time::Duration) -> Result<usize> {
        let now = std::time::SystemTime::now();
        let old = |p: &Path| {
            fs::metadata(p)
                .and_then(|m| m.modified())
                .map(|t| now.duration_since(t).unwrap_or_default() > age)
                .unwrap_or(false)
        };
        let mut n = 0;
        for id in read_dir_names(&self.root.join("uploads"))? {
            let dir = self.upload_dir(&id);
            if old(&dir.join("data")) && old(&dir) {
                let _ = fs::remove_dir_all(&dir);
                n += 1;
            }
        }
        for t in read_dir_names(&self.root.join("tmp"))? {
            let p = self.root.join("tmp").join(&t);
            if old(&p) {
                let _ = fs::remove_file(&p);
                n += 1;
            }
        }
        Ok(n)
    }

    pub fn remove_upload(&self, id: &str) {
        let _ = fs::remove_dir_all(self.upload_dir(id));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifests_tags_referrers() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let body = br#"{"schemaVersion":2}"#;
        let d = Algorithm::Sha256.digest(body);
        let subj = Algorithm::Sha256.digest(b"subject");
        let meta = ManifestMeta {
            media_type: "application/x".into(),
            subject: Some(subj.to_string()),
        };
        s.put_manifest("a/b", &d, body, &meta, &["v1".into(), "v2".into()])
            .unwrap();
        assert_eq!(
            s.read_manifest("a/b", &d).unwrap().unwrap(),
            (meta, body.to_vec())
        );
        assert_eq!(s.tags("a/b").unwrap(), vec!["v1", "v2"]);
        assert_eq!(s.resolve_tag("a/b", "v1").unwrap(), Some(d.clone()));
        assert_eq!(s.referrers("a/b", &subj).unwrap(), vec![d.clone()]);
        assert_eq!(s.repositories().unwrap(), vec!["a/b"]);
        assert!(s.delete_manifest("a/b", &d).unwrap());
        assert!(s.tags("a/b").unwrap().is_empty());
        assert!(s.referrers("a/b", &subj).unwrap().is_empty());
        assert!(!s.delete_manifest("a/b", &d).unwrap());
    }

    #[test]
    fn uploads_are_scoped_to_their_repo() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let id = s.new_upload("x").unwrap();
        assert_eq!(s.upload_size("x", &id), Some(0));
        assert_eq!(s.upload_size("y", &id), None);
        assert_eq!(s.upload_size("x", "../../etc"), None);
        s.remove_upload(&id);
        assert_eq!(s.upload_size("x", &id), None);

        let id = s.new_upload("x").unwrap();
        assert_eq!(
            s.purge_stale(std::time::Duration::from_secs(3600)).unwrap(),
            0
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert_eq!(s.purge_stale(std::time::Duration::ZERO).unwrap(), 1);
        assert_eq!(s.upload_size("x", &id), None);
    }
}
