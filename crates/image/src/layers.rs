//! Layer bookkeeping for distribution: verified ingest of registry blobs (compressed
//! digest and diff id checked in one pass), and the mapping from a layer's diff id to the
//! compressed blobs it is known under (in registries, or compressed locally for a push),
//! so that pushes of the same layer always send the same blob.

use std::fs;
use std::io::{self, Read, Write};
use std::path::PathBuf;

use berth_content::Digest;
use berth_errdefs::{Error, Result, ResultExt};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::store::ImageStore;

pub const MEDIA_TYPE_DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
pub const MEDIA_TYPE_OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const MEDIA_TYPE_DOCKER_FOREIGN_LAYER: &str =
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
/// Prefix of the OCI non-distributable layer media types (`…v1.tar`, `+gzip`, `+zstd`).
pub const MEDIA_TYPE_OCI_NONDISTRIBUTABLE_PREFIX: &str =
    "application/vnd.oci.image.layer.nondistributable.v1.tar";

/// Whether a layer media type is one registries may not redistribute (Docker's foreign
/// layers, OCI's non-distributable ones): pushes keep its descriptor and skip the blob.
pub fn is_foreign_media_type(mt: &str) -> bool {
    mt == MEDIA_TYPE_DOCKER_FOREIGN_LAYER || mt.starts_with(MEDIA_TYPE_OCI_NONDISTRIBUTABLE_PREFIX)
}

/// A compressed blob a layer is known under.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LayerSource {
    pub digest: Digest,
    pub size: u64,
    #[serde(rename = "mediaType")]
    pub media_type: String,
    /// `registry/path` repositories known to hold the blob.
    #[serde(default)]
    pub repos: Vec<String>,
    /// The compressed blob is kept in the local content store.
    #[serde(default)]
    pub local: bool,
    /// Where the blob may be downloaded from besides registries (the descriptor's
    /// `urls`, kept for foreign / non-distributable layers).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub urls: Vec<String>,
}

impl LayerSource {
    /// A foreign / non-distributable layer: its descriptor is pushed, its blob never.
    pub fn is_foreign(&self) -> bool {
        is_foreign_media_type(&self.media_type)
    }
}

/// How a layer blob is compressed, from its media type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    pub fn from_media_type(mt: &str) -> Result<Compression> {
        if mt.ends_with("gzip") {
            Ok(Compression::Gzip)
        } else if mt.ends_with("zstd") {
            Ok(Compression::Zstd)
        } else if mt.ends_with(".tar") || mt == "application/vnd.docker.image.rootfs.diff.tar" {
            Ok(Compression::None)
        } else {
            Err(Error::invalid(format!("unsupported layer media type {mt}")))
        }
    }
}

/// A reader that hashes and counts what passes through it.
struct Hashing<R> {
    inner: R,
    hasher: Sha256,
    n: u64,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let k = self.inner.read(buf)?;
        self.hasher.update(&buf[..k]);
        self.n += k as u64;
        Ok(k)
    }
}

impl ImageStore {
    fn sources_path(&self, diff_id: &Digest) -> PathBuf {
        self.content()
            .root()
            .join("layer-sources")
            .join(diff_id.hex())
    }

    /// The compressed blobs a layer is known under.
    pub fn layer_sources(&self, diff_id: &Digest) -> Vec<LayerSource> {
        fs::read(self.sources_path(diff_id))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    /// Record (or merge into an existing record) a compressed blob of a layer.
    pub fn add_layer_source(&self, diff_id: &Digest, src: LayerSource) -> Result<()> {
        let mut all = self.layer_sources(diff_id);
        match all.iter_mut().find(|s| s.digest == src.digest) {
            Some(s) => {
                for r in src.repos {
                    if !s.repos.contains(&r) {
                        s.repos.push(r);
                    }
                }
                s.local |= src.local;
                for u in src.urls {
                    if !s.urls.contains(&u) {
                        s.urls.push(u);
                    }
                }
            }
            None => all.push(src),
        }
        let p = self.sources_path(diff_id);
        fs::create_dir_all(p.parent().expect("has parent")).ctx("create layer-sources dir")?;
        let tmp = p.with_extension(format!("tmp{}", std::process::id()));
        fs::write(
            &tmp,
            serde_json::to_vec(&all).map_err(|e| Error::internal(e.to_string()))?,
        )
        .ctx("write layer sources")?;
        fs::rename(&tmp, &p).ctx("commit layer sources")?;
        Ok(())
    }

    /// The recorded descriptor of a layer pulled as foreign / non-distributable, if it
    /// was: what a push puts in the manifest instead of uploading the layer.
    pub fn foreign_layer(&self, diff_id: &Digest) -> Option<LayerSource> {
        self.layer_sources(diff_id)
            .into_iter()
            .find(LayerSource::is_foreign)
    }

    /// Forget a layer's sources, deleting compressed blobs kept locally.
    pub(crate) fn drop_layer_sources(&self, diff_id: &Digest) {
        for s in self.layer_sources(diff_id) {
            if s.local {
                let _ = self.content().delete(&s.digest);
            }
        }
        let _ = fs::remove_file(self.sources_path(diff_id));
    }

    /// Whether a layer is stored and unpacked.
    pub fn has_layer(&self, diff_id: &Digest) -> bool {
        self.content().exists(diff_id) && self.snapshotter().has_layer(diff_id)
    }

    /// Store a layer blob as it comes from a registry: the compressed bytes must hash to
    /// `digest` and the uncompressed ones to `diff_id`; only then is the uncompressed tar
    /// committed (under its diff id). Nothing is left behind on failure. Returns the
    /// uncompressed size. The layer is not unpacked: see [`ImageStore::unpack`].
    pub fn ingest_layer(
        &self,
        r: impl Read,
        compression: Compression,
        digest: &Digest,
        diff_id: &Digest,
    ) -> Result<u64> {
        let mut h = Hashing {
            inner: r,
            hasher: Sha256::new(),
            n: 0,
        };
        let mut ing = self.content().ingest()?;
        match compression {
            Compression::Gzip => {
                let mut dec = flate2::read::MultiGzDecoder::new(&mut h);
                ing.copy_from(&mut dec)
                    .map_err(|e| Error::invalid(format!("invalid gzip layer {digest}: {e}")))?;
            }
            Compression::Zstd => {
                let mut dec = ruzstd::decoding::StreamingDecoder::new(&mut h)
                    .map_err(|e| Error::invalid(format!("invalid zstd layer {digest}: {e}")))?;
                ing.copy_from(&mut dec)
                    .map_err(|e| Error::invalid(format!("invalid zstd layer {digest}: {e}")))?;
            }
            Compression::None => {
                ing.copy_from(&mut h)?;
            }
        }
        // Hash whatever the decoder left unread (padding after the gzip trailer).
        io::copy(&mut h, &mut io::sink())?;
        let got = Digest::from_hex(&hex::encode(h.hasher.finalize()))?;
        if got != *digest {
            return Err(Error::invalid(format!(
                "filesystem layer verification failed for digest {digest}: got {got}"
            )));
        }
        if ing.digest() != *diff_id {
            return Err(Error::invalid(format!(
                "layers from manifest don't match image configuration: layer {digest} has diff id {}, config says {diff_id}",
                ing.digest()
            )));
        }
        let size = ing.size();
        ing.commit(Some(diff_id))?;
        Ok(size)
    }

    /// Unpack a stored layer blob into the snapshotter (no-op when already unpacked).
    pub fn unpack(&self, diff_id: &Digest) -> Result<()> {
        let f = self.content().open_blob(diff_id)?;
        self.snapshotter().unpack_layer(diff_id, f)?;
        Ok(())
    }

    /// Remove a layer's blob and unpacked tree unless an image uses it (or a deleted
    /// one kept for its containers).
    pub fn remove_layer_if_unused(&self, diff_id: &Digest) -> Result<()> {
        if self.list()?.iter().chain(&self.retained_records()?).any(|r| r.layers.contains(diff_id)) {
            return Ok(());
        }
        self.snapshotter().remove_layer(diff_id)?;
        self.content().delete(diff_id)?;
        self.drop_layer_sources(diff_id);
        Ok(())
    }

    /// A gzip-compressed blob of a layer for pushing: one recorded earlier (kept locally)
    /// or made now and recorded, so the same layer always gives the same blob.
    pub fn compressed_layer(&self, diff_id: &Digest) -> Result<LayerSource> {
        if let Some(s) = self
            .layer_sources(diff_id)
            .into_iter()
            .find(|s| s.local && self.content().exists(&s.digest))
        {
            return Ok(s);
        }
        let mut src = io::BufReader::with_capacity(256 * 1024, self.content().open_blob(diff_id).ctx("open layer")?);
        // Level 1: several times faster than the default level (a push of fresh layers is
        // bound by this), for blobs only slightly larger. A layer whose first MiB does not
        // shrink (already compressed or random data) is stored instead: deflating it would
        // cost the most time for no gain. The choice depends on the content only, so the
        // blob stays the same every time.
        let mut head = Vec::with_capacity(PROBE);
        io::Read::by_ref(&mut src).take(PROBE as u64).read_to_end(&mut head).ctx("read layer")?;
        let level = compression_for(&head);
        let mut ing = self.content().ingest()?;
        {
            let mut enc = flate2::write::GzEncoder::new(&mut ing, level);
            enc.write_all(&head).ctx("compress layer")?;
            io::copy(&mut src, &mut enc).ctx("compress layer")?;
            enc.finish().ctx("compress layer")?;
        }
        let size = ing.size();
        let digest = ing.commit(None)?;
        let s = LayerSource {
            digest,
            size,
            media_type: MEDIA_TYPE_DOCKER_LAYER_GZIP.into(),
            repos: Vec::new(),
            local: true,
            urls: Vec::new(),
        };
        self.add_layer_source(diff_id, s.clone())?;
        Ok(s)
    }
}

/// How much of a layer is compressed on trial to choose the level.
const PROBE: usize = 1 << 20;

/// gzip level for a layer whose first [`PROBE`] bytes are `head`: level 1, or stored
/// blocks when level 1 saves less than 5% of them.
fn compression_for(head: &[u8]) -> flate2::Compression {
    let mut trial = flate2::write::DeflateEncoder::new(Vec::with_capacity(head.len()), flate2::Compression::fast());
    let shrinks = trial.write_all(head).and_then(|_| trial.finish()).is_ok_and(|out| out.len() * 20 < head.len() * 19);
    if shrinks || head.is_empty() {
        flate2::Compression::fast()
    } else {
        flate2::Compression::none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn incompressible_layers_are_stored_compressible_ones_deflated() {
        let text: Vec<u8> = b"a compressible layer line\n".iter().cycle().take(2 << 20).copied().collect();
        assert_eq!(compression_for(&text[..PROBE]).level(), flate2::Compression::fast().level());
        // xorshift noise: deflate cannot shrink it
        let mut x: u64 = 0x9e3779b97f4a7c15;
        let noise: Vec<u8> = (0..PROBE)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        assert_eq!(compression_for(&noise).level(), flate2::Compression::none().level());
    }

    fn tar_bytes() -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_path("f").unwrap();
        h.set_size(3);
        h.set_mode(0o640);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_cksum();
        b.append(&h, &b"abc"[..]).unwrap();
        b.into_inner().unwrap()
    }

    #[test]
    fn verified_ingest_checks_both_digests() {
        let dir = tempfile::tempdir().unwrap();
        let s = crate::store::tests::store(dir.path());
        let t = tar_bytes();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&t).unwrap();
        let gz = gz.finish().unwrap();
        let (dg, di) = (Digest::of(&gz), Digest::of(&t));
        // wrong compressed digest: nothing stored
        let err = s
            .ingest_layer(&gz[..], Compression::Gzip, &di, &di)
            .unwrap_err();
        assert!(err.to_string().contains("verification failed"), "{err}");
        // wrong diff id
        let err = s
            .ingest_layer(&gz[..], Compression::Gzip, &dg, &dg)
            .unwrap_err();
        assert!(err.to_string().contains("don't match"), "{err}");
        assert!(s.content().list().unwrap().is_empty());
        assert_eq!(
            s.ingest_layer(&gz[..], Compression::Gzip, &dg, &di)
                .unwrap(),
            t.len() as u64
        );
        s.unpack(&di).unwrap();
        assert!(s.has_layer(&di));
        // compression for push is stable
        let a = s.compressed_layer(&di).unwrap();
        let b = s.compressed_layer(&di).unwrap();
        assert_eq!(a, b);
        s.add_layer_source(
            &di,
            LayerSource {
                repos: vec!["r/x".into()],
                ..a.clone()
            },
        )
        .unwrap();
        assert_eq!(s.layer_sources(&di)[0].repos, ["r/x"]);
        s.remove_layer_if_unused(&di).unwrap();
        assert!(s.content().list().unwrap().is_empty());
        assert!(s.layer_sources(&di).is_empty());
    }

    #[test]
    fn foreign_sources_are_remembered_and_old_records_read() {
        let dir = tempfile::tempdir().unwrap();
        let s = crate::store::tests::store(dir.path());
        let di = Digest::of(b"layer");
        // A record written before `urls` existed.
        let old = format!(
            r#"[{{"digest":"{}","size":5,"mediaType":"{MEDIA_TYPE_DOCKER_LAYER_GZIP}","repos":["h/r"],"local":false}}]"#,
            Digest::of(b"gz")
        );
        let p = s.sources_path(&di);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, old).unwrap();
        assert_eq!(s.layer_sources(&di).len(), 1);
        assert!(s.layer_sources(&di)[0].urls.is_empty());
        assert!(s.foreign_layer(&di).is_none());
        let f = LayerSource {
            digest: Digest::of(b"foreign"),
            size: 7,
            media_type: MEDIA_TYPE_DOCKER_FOREIGN_LAYER.into(),
            repos: vec!["h/r".into()],
            local: false,
            urls: vec!["http://127.0.0.1:1/layer".into()],
        };
        s.add_layer_source(&di, f.clone()).unwrap();
        assert_eq!(s.foreign_layer(&di), Some(f));
        assert!(is_foreign_media_type(
            "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd"
        ));
        assert!(!is_foreign_media_type(MEDIA_TYPE_OCI_LAYER_GZIP));
    }

    #[test]
    fn zstd_layers() {
        let dir = tempfile::tempdir().unwrap();
        let s = crate::store::tests::store(dir.path());
        let t = tar_bytes();
        let mut z = Vec::new();
        ruzstd::encoding::compress(&t[..], &mut z, ruzstd::encoding::CompressionLevel::Fastest);
        let (dz, di) = (Digest::of(&z), Digest::of(&t));
        let c =
            Compression::from_media_type("application/vnd.oci.image.layer.v1.tar+zstd").unwrap();
        assert_eq!(c, Compression::Zstd);
        assert_eq!(s.ingest_layer(&z[..], c, &dz, &di).unwrap(), t.len() as u64);
        assert!(s.content().exists(&di));
    }
}
