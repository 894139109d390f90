//! The image store: records and tags in the metadata db, documents and layers in the
//! content store, unpacked layers in the snapshotter.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Read};
use std::sync::{Arc, Mutex};

use berth_content::{Digest, Store};
use berth_errdefs::{Error, Result};
use berth_metadata::{Db, Table};
use berth_snapshot::Snapshotter;
use serde::{Deserialize, Serialize};

use crate::config::{self, Descriptor, ImageConfigFile, Manifest};
use crate::reference::Reference;

/// What berth records about an image (the config itself is a blob).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ImageRecord {
    /// `sha256:…` of the config blob.
    pub id: String,
    /// The OCI manifest berth holds for it.
    pub manifest: Option<Digest>,
    /// Diff ids, bottom layer first.
    pub layers: Vec<Digest>,
    /// Creation time (unix seconds) from the config.
    pub created: i64,
    #[serde(default)]
    pub last_tag_time: Option<String>,
    #[serde(default)]
    pub repo_digests: Vec<String>,
}

impl ImageRecord {
    pub fn digest(&self) -> Digest {
        self.id.parse().expect("image ids are digests")
    }
}

/// What listings need of an image's config: kept in memory by image id, since a
/// config never changes (its id is its digest), so listing thousands of images reads
/// no blob twice.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConfigMeta {
    /// Docker's parent image id, when the image was built or committed here.
    pub parent: Option<String>,
    /// Creation time, unix seconds (0 when unknown).
    pub created: i64,
    pub labels: HashMap<String, String>,
}

impl ConfigMeta {
    fn of(cfg: &ImageConfigFile) -> ConfigMeta {
        ConfigMeta {
            parent: cfg.parent.clone().filter(|p| !p.is_empty()),
            created: cfg
                .created
                .as_deref()
                .and_then(|c| chrono::DateTime::parse_from_rfc3339(c).ok())
                .map(|t| t.timestamp())
                .unwrap_or(0),
            labels: cfg.config.labels.clone().unwrap_or_default(),
        }
    }
}

/// The image store.
#[derive(Clone)]
pub struct ImageStore {
    content: Store,
    pub(crate) db: Arc<Db>,
    snap: Snapshotter,
    meta: Arc<Mutex<HashMap<String, Arc<ConfigMeta>>>>,
    /// Layer sizes as dockerd reports them, by diff id ([`ImageStore::layer_size`]).
    layer_sizes: Arc<Mutex<HashMap<Digest, u64>>>,
}

/// Who uses an image: answers for a given image id (container id, running?).
pub type InUse<'a> = &'a dyn Fn(&str) -> Option<(String, bool)>;

impl ImageStore {
    pub fn new(content: Store, db: Arc<Db>, snap: Snapshotter) -> ImageStore {
        ImageStore { content, db, snap, meta: Arc::default(), layer_sizes: Arc::default() }
    }

    /// A layer's size as dockerd reports it (`docker history`, `system df`): the bytes
    /// of its unpacked files, each inode once, not its tar's (a header per entry); the
    /// tar's when it is not unpacked. Kept in memory once known (a layer never changes).
    pub fn layer_size(&self, diff_id: &Digest) -> u64 {
        if let Some(n) = self.layer_sizes.lock().unwrap().get(diff_id) {
            return *n;
        }
        match self.snap.layer_size(diff_id) {
            Some(n) => {
                self.layer_sizes.lock().unwrap().insert(diff_id.clone(), n);
                n
            }
            None => self.content.size(diff_id).unwrap_or(0),
        }
    }

    /// An image's size as dockerd reports it: its layers' ([`ImageStore::layer_size`]).
    pub fn image_size(&self, rec: &ImageRecord) -> u64 {
        rec.layers.iter().map(|l| self.layer_size(l)).sum()
    }

    pub fn content(&self) -> &Store {
        &self.content
    }

    pub fn snapshotter(&self) -> &Snapshotter {
        &self.snap
    }

    /// Look an image up by reference, full id, or unique id prefix.
    pub fn resolve(&self, name: &str) -> Result<ImageRecord> {
        // dockerd's `ErrImageDoesNotExist`: a name shown as its tagged familiar
        // reference (`x` is `x:latest`), a full id as a digest.
        let missing = || {
            let shown = if name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit()) {
                format!("sha256:{name}")
            } else if name.starts_with("sha256:") {
                name.to_owned()
            } else {
                Reference::parse_tagged(name).map(|r| r.familiar()).unwrap_or_else(|_| name.to_owned())
            };
            Error::not_found(format!("No such image: {shown}"))
        };
        let hex_like =
            |s: &str| !s.is_empty() && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if let Some(hex) = name.strip_prefix("sha256:") {
            if hex.len() == 64 {
                return self.get(name)?.ok_or_else(missing);
            }
            return self.by_prefix(hex)?.ok_or_else(missing);
        }
        if let Ok(r) = Reference::parse_tagged(name) {
            if let Some(id) = self.db.get::<String>(Table::Tags, &r.familiar())? {
                return self.get(&id)?.ok_or_else(missing);
            }
        }
        if hex_like(name) && name.len() <= 64 {
            if let Some(rec) = self.by_prefix(name)? {
                return Ok(rec);
            }
        }
        Err(missing())
    }

    fn by_prefix(&self, prefix: &str) -> Result<Option<ImageRecord>> {
        let matches: Vec<ImageRecord> = self
            .db
            .list::<ImageRecord>(Table::Images)?
            .into_iter()
            .map(|(_, r)| r)
            .filter(|r| r.id[7..].starts_with(prefix))
            .collect();
        match matches.len() {
            0 => Ok(None),
            1 => Ok(matches.into_iter().next()),
            _ => Err(Error::invalid(format!(
                "multiple IDs found with provided prefix: {prefix}"
            ))),
        }
    }

    /// The record of an image id.
    pub fn get(&self, id: &str) -> Result<Option<ImageRecord>> {
        self.db.get(Table::Images, id)
    }

    /// The image a container was made from, also when `rmi -f` deleted it while the
    /// container was stopped (dockerd deletes it all the same; the container keeps its
    /// config and layers until it goes: see [`ImageStore::release_retained`]).
    pub fn get_for_container(&self, id: &str) -> Result<Option<ImageRecord>> {
        match self.get(id)? {
            Some(r) => Ok(Some(r)),
            None => self.db.get(Table::RetainedImages, id),
        }
    }

    /// The ids of the deleted images kept for containers.
    pub fn retained(&self) -> Result<Vec<String>> {
        Ok(self.retained_records()?.into_iter().map(|r| r.id).collect())
    }

    /// The records of the deleted images kept for containers.
    pub(crate) fn retained_records(&self) -> Result<Vec<ImageRecord>> {
        Ok(self.db.list::<ImageRecord>(Table::RetainedImages)?.into_iter().map(|(_, r)| r).collect())
    }

    /// A deleted image kept for containers goes, with whatever of its content no
    /// image or other kept image needs, once no container uses it. Returns the layer
    /// bytes freed.
    pub fn release_retained(&self, id: &str, in_use: InUse<'_>) -> Result<u64> {
        let Some(rec) = self.db.get::<ImageRecord>(Table::RetainedImages, id)? else {
            return Ok(0);
        };
        if in_use(id).is_some() {
            return Ok(0);
        }
        self.db.delete(Table::RetainedImages, id)?;
        self.forget_meta(id);
        self.collect_garbage(&rec)
    }

    /// Every image record.
    pub fn list(&self) -> Result<Vec<ImageRecord>> {
        Ok(self
            .db
            .list::<ImageRecord>(Table::Images)?
            .into_iter()
            .map(|(_, r)| r)
            .collect())
    }

    /// Every tag, as (familiar reference, image id).
    pub fn tags(&self) -> Result<Vec<(String, String)>> {
        self.db.list(Table::Tags)
    }

    /// Every tag, grouped by image id (one pass over the tags).
    pub fn tags_by_image(&self) -> Result<HashMap<String, Vec<String>>> {
        let mut out: HashMap<String, Vec<String>> = HashMap::new();
        for (t, id) in self.tags()? {
            out.entry(id).or_default().push(t);
        }
        Ok(out)
    }

    /// The listing facts of an image's config (parent, created, labels), from memory
    /// after the first read.
    pub fn meta(&self, rec: &ImageRecord) -> Result<Arc<ConfigMeta>> {
        if let Some(m) = self.meta.lock().unwrap().get(&rec.id) {
            return Ok(m.clone());
        }
        let m = Arc::new(ConfigMeta::of(&self.config(rec)?));
        self.meta.lock().unwrap().insert(rec.id.clone(), m.clone());
        Ok(m)
    }

    /// Forget the cached facts of a deleted image.
    pub(crate) fn forget_meta(&self, id: &str) {
        self.meta.lock().unwrap().remove(id);
    }

    /// The tags pointing at an image.
    pub fn tags_of(&self, id: &str) -> Result<Vec<String>> {
        Ok(self
            .tags()?
            .into_iter()
            .filter(|(_, i)| i == id)
            .map(|(t, _)| t)
            .collect())
    }

    /// The config document of an image.
    pub fn config(&self, rec: &ImageRecord) -> Result<ImageConfigFile> {
        let raw = self.content.read(&rec.digest())?;
        serde_json::from_slice(&raw)
            .map_err(|e| Error::internal(format!("corrupt image config {}: {e}", rec.id)))
    }

    /// Store an uncompressed (or gzip- or zstd-compressed) layer tar: the blob is kept under its
    /// diff id and unpacked once. Hostile tars are refused and leave nothing behind.
    pub fn add_layer(&self, r: impl Read) -> Result<(Digest, u64)> {
        let mut br = BufReader::with_capacity(256 * 1024, r);
        let (gz, zst) = {
            let head = br.fill_buf()?;
            (head.starts_with(&[0x1f, 0x8b]), head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]))
        };
        let mut ing = self.content.ingest()?;
        if gz {
            ing.copy_from(flate2::read::MultiGzDecoder::new(br))
                .map_err(|e| Error::invalid(format!("invalid gzip layer: {e}")))?;
        } else if zst {
            let dec = ruzstd::decoding::StreamingDecoder::new(br)
                .map_err(|e| Error::invalid(format!("invalid zstd layer: {e}")))?;
            ing.copy_from(dec).map_err(|e| Error::invalid(format!("invalid zstd layer: {e}")))?;
        } else {
            ing.copy_from(br)?;
        }
        let existed = self.content.exists(&ing.digest());
        let size = ing.size();
        let diff_id = ing.commit(None)?;
        let unpacked = self
            .content
            .open_blob(&diff_id)
            .and_then(|f| self.snap.unpack_layer(&diff_id, f));
        if let Err(e) = unpacked {
            if !existed {
                let _ = self.content.delete(&diff_id);
            }
            return Err(e);
        }
        Ok((diff_id, size))
    }

    /// Write a config (and an OCI manifest for it) and record the image.
    pub fn create_image(&self, cfg: &ImageConfigFile) -> Result<ImageRecord> {
        let raw = serde_json::to_vec(cfg).map_err(|e| Error::internal(e.to_string()))?;
        self.create_image_raw(&raw)
    }

    /// Record an image from its config exactly as given (pulled or loaded: the image id
    /// is the digest of these bytes). Every layer must already be stored.
    pub fn create_image_raw(&self, raw: &[u8]) -> Result<ImageRecord> {
        let cfg: ImageConfigFile = serde_json::from_slice(raw)
            .map_err(|e| Error::invalid(format!("invalid image config: {e}")))?;
        for d in &cfg.rootfs.diff_ids {
            if !self.content.exists(d) {
                return Err(Error::invalid(format!(
                    "layer {d} of the image config is missing"
                )));
            }
        }
        let id = self.content.write(raw)?;
        let mut layers = Vec::new();
        for d in &cfg.rootfs.diff_ids {
            let s = self.content.size(d)?;
            layers.push(Descriptor {
                media_type: config::MEDIA_TYPE_LAYER_TAR.into(),
                digest: d.clone(),
                size: s,
            });
        }
        let manifest = Manifest {
            schema_version: 2,
            media_type: config::MEDIA_TYPE_MANIFEST.into(),
            config: Descriptor {
                media_type: config::MEDIA_TYPE_CONFIG.into(),
                digest: id.clone(),
                size: raw.len() as u64,
            },
            layers,
        };
        let mdig = self
            .content
            .write(&serde_json::to_vec(&manifest).map_err(|e| Error::internal(e.to_string()))?)?;
        let created = cfg
            .created
            .as_deref()
            .and_then(|c| chrono::DateTime::parse_from_rfc3339(c).ok())
            .map(|t| t.timestamp())
            .unwrap_or(0);
        let rec = ImageRecord {
            id: id.to_string(),
            manifest: Some(mdig),
            layers: cfg.rootfs.diff_ids.clone(),
            created,
            last_tag_time: None,
            repo_digests: Vec::new(),
        };
        let existing: Option<ImageRecord> = self.get(&rec.id)?;
        if existing.is_none() {
            self.db.put(Table::Images, &rec.id, &rec)?;
        }
        Ok(existing.unwrap_or(rec))
    }

    /// Add a `repo@sha256:…` digest reference to an image record.
    pub fn add_repo_digest(&self, id: &str, repo_digest: &str) -> Result<()> {
        self.db.update(|tx| {
            let mut rec: ImageRecord = tx
                .get(Table::Images, id)?
                .ok_or_else(|| Error::not_found(format!("No such image: {id}")))?;
            let repo = repo_digest.split('@').next().unwrap_or("");
            rec.repo_digests
                .retain(|d| d.split('@').next() != Some(repo));
            rec.repo_digests.push(repo_digest.to_owned());
            tx.put(Table::Images, id, &rec)
        })
    }

    /// Point `reference` at image `id` (moving the tag if it pointed elsewhere).
    pub fn tag(&self, id: &str, reference: &Reference) -> Result<()> {
        // `sha256:abc` would read as an image id: dockerd's reference store refuses it.
        if reference.familiar_name() == "sha256" {
            return Err(Error::invalid("refusing to create an ambiguous tag using digest algorithm as name"));
        }
        let key = reference.familiar();
        self.db.update(|tx| {
            let mut rec: ImageRecord = tx
                .get(Table::Images, id)?
                .ok_or_else(|| Error::not_found(format!("No such image: {id}")))?;
            rec.last_tag_time = Some(config::now_rfc3339());
            tx.put(Table::Images, id, &rec)?;
            tx.put(Table::Tags, &key, &id.to_owned())
        })
    }

    /// Remove blobs and unpacked layers of a deleted image that nothing else uses;
    /// returns the bytes of layer content freed.
    pub(crate) fn collect_garbage(&self, gone: &ImageRecord) -> Result<u64> {
        let mut live: HashSet<Digest> = HashSet::new();
        for r in self.list()?.into_iter().chain(self.retained_records()?) {
            live.insert(r.digest());
            live.extend(r.layers.iter().cloned());
            if let Some(m) = &r.manifest {
                live.insert(m.clone());
            }
        }
        let mut freed = 0;
        for l in &gone.layers {
            if !live.contains(l) && self.content.exists(l) {
                freed += self.content.size(l).unwrap_or(0);
                self.snap.remove_layer(l)?;
                self.content.delete(l)?;
                self.drop_layer_sources(l);
                live.insert(l.clone());
            }
        }
        if let Some(m) = &gone.manifest {
            if !live.contains(m) {
                self.content.delete(m)?;
            }
        }
        let id = gone.digest();
        if !live.contains(&id) {
            self.content.delete(&id)?;
        }
        Ok(freed)
    }

    /// Import a rootfs tar as a one-layer image (`docker import`).
    pub fn import(
        &self,
        tar: impl Read,
        changes: &[String],
        message: Option<&str>,
        reference: Option<&Reference>,
    ) -> Result<ImageRecord> {
        let (diff_id, _) = self.add_layer(tar)?;
        // The image's comment and its history entry's, as dockerd's import writes them.
        let comment = message.filter(|m| !m.is_empty()).unwrap_or("Imported from -").to_owned();
        let mut cfg = ImageConfigFile {
            created: Some(config::now_rfc3339()),
            architecture: config::host_arch().into(),
            os: "linux".into(),
            rootfs: config::RootFs {
                kind: "layers".into(),
                diff_ids: vec![diff_id],
            },
            history: vec![config::History {
                created: Some(config::now_rfc3339()),
                // empty, as dockerd's import leaves it
                created_by: None,
                comment: Some(comment.clone()),
                ..Default::default()
            }],
            comment: Some(comment),
            ..Default::default()
        };
        for c in changes {
            crate::changes::apply_change(&mut cfg.config, c)?;
        }
        let rec = self.create_image(&cfg)?;
        if let Some(r) = reference {
            self.tag(&rec.id, r)?;
        }
        Ok(rec)
    }
}


#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn store(dir: &std::path::Path) -> ImageStore {
        let content = Store::open(dir.join("content")).unwrap();
        let db = Arc::new(Db::open(&dir.join("m.redb")).unwrap());
        let snap = Snapshotter::open(dir).unwrap();
        ImageStore::new(content, db, snap)
    }

    /// Records written before sizes were measured from the unpacked layers carry the
    /// tars' sum as `size`: they still read (the size is worked out from the layers).
    #[test]
    fn records_with_the_old_size_field_still_read() {
        let old = r#"{"id":"sha256:aa","manifest":null,"layers":[],"size":2149376,"created":0}"#;
        let rec: ImageRecord = serde_json::from_str(old).unwrap();
        assert_eq!((rec.id.as_str(), rec.created), ("sha256:aa", 0));
    }

    fn rootfs_tar() -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_path("bin/hello").unwrap();
        h.set_size(2);
        h.set_mode(0o755);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_cksum();
        b.append(&h, &b"hi"[..]).unwrap();
        b.into_inner().unwrap()
    }

    #[test]
    fn import_tag_resolve_remove() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        let r = Reference::parse_tagged("imported:1").unwrap();
        let rec = s
            .import(
                &rootfs_tar()[..],
                &["CMD [\"/bin/hello\"]".into()],
                Some("msg"),
                Some(&r),
            )
            .unwrap();
        assert_eq!(s.resolve("imported:1").unwrap().id, rec.id);
        assert_eq!(s.resolve(&rec.id[7..19]).unwrap().id, rec.id);
        assert_eq!(s.resolve(&rec.id).unwrap().id, rec.id);
        assert!(s.resolve("imported").unwrap_err().is_not_found());
        let cfg = s.config(&rec).unwrap();
        assert_eq!(cfg.config.cmd.unwrap(), ["/bin/hello"]);
        assert_eq!(cfg.comment.as_deref(), Some("msg"));
        assert!(s
            .snapshotter()
            .layer_dir(&rec.layers[0])
            .join("bin/hello")
            .exists());

        s.tag(&rec.id, &Reference::parse_tagged("other").unwrap())
            .unwrap();
        let out = s.remove("other", false, true, &|_| None).unwrap().items;
        assert_eq!(out[0].untagged.as_deref(), Some("other:latest"));
        assert!(s.resolve(&rec.id).is_ok());

        let err = s
            .remove("imported:1", false, true, &|_| Some(("c".repeat(64), true)))
            .unwrap_err();
        assert_eq!(err.kind(), berth_errdefs::Kind::Conflict);

        let out = s.remove("imported:1", false, true, &|_| None).unwrap().items;
        assert_eq!(
            out.last().unwrap().deleted.as_deref(),
            Some(rec.id.as_str())
        );
        assert!(s.resolve(&rec.id).is_err());
        assert!(!s.snapshotter().has_layer(&rec.layers[0]));
        assert!(s.content().list().unwrap().is_empty());
    }

    #[test]
    fn hostile_import_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.as_old_mut().name[..9].copy_from_slice(b"../escape");
        h.set_size(1);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_cksum();
        b.append(&h, &b"x"[..]).unwrap();
        let t = b.into_inner().unwrap();
        assert!(s.import(&t[..], &[], None, None).is_err());
        assert!(s.content().list().unwrap().is_empty());
        assert!(s.list().unwrap().is_empty());
        assert!(!dir.path().join("escape").exists());
    }
}
