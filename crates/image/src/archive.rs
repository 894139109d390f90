//! `docker save` / `docker load`: image archives in Docker's format (`manifest.json`,
//! `repositories`) combined with an OCI image layout (`oci-layout`, `index.json`,
//! `blobs/sha256/…`) in one tar, as Docker 25+ writes them. Loading accepts Docker
//! archives (including the legacy `<id>/layer.tar` layout) and plain OCI layouts.

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use berth_content::Digest;
use berth_errdefs::{Error, Result, ResultExt};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::config::{self, Descriptor, ImageConfigFile, Manifest};
use crate::reference::Reference;
use crate::store::{ImageRecord, ImageStore};

pub const MEDIA_TYPE_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const ANNOTATION_IMAGE_NAME: &str = "io.containerd.image.name";
const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";

/// One image to save, with the tags to record for it.
pub struct SaveItem {
    pub record: ImageRecord,
    pub tags: Vec<Reference>,
}

/// One `manifest.json` entry.
#[derive(Debug, Serialize, Deserialize)]
struct ArchiveEntry {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags", default)]
    repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers", default)]
    layers: Vec<String>,
}

fn tar_err(e: std::io::Error) -> Error {
    Error::internal(format!("write image archive: {e}"))
}

fn add_bytes<W: Write>(b: &mut tar::Builder<W>, path: &str, data: &[u8]) -> Result<()> {
    let mut h = tar::Header::new_ustar();
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_mtime(0);
    h.set_entry_type(tar::EntryType::Regular);
    b.append_data(&mut h, path, data).map_err(tar_err)
}

fn add_dir<W: Write>(b: &mut tar::Builder<W>, path: &str) -> Result<()> {
    let mut h = tar::Header::new_ustar();
    h.set_size(0);
    h.set_mode(0o755);
    h.set_mtime(0);
    h.set_entry_type(tar::EntryType::Directory);
    b.append_data(&mut h, path, std::io::empty())
        .map_err(tar_err)
}

/// Write the images as one archive.
pub fn save(store: &ImageStore, items: &[SaveItem], w: impl Write) -> Result<()> {
    let mut b = tar::Builder::new(w);
    add_dir(&mut b, "blobs/")?;
    add_dir(&mut b, "blobs/sha256/")?;
    let mut written: HashSet<Digest> = HashSet::new();
    let mut entries = Vec::new();
    let mut index = Vec::new();
    let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for item in items {
        let rec = &item.record;
        let cfg_raw = store.content().read(&rec.digest())?;
        let mut layers = Vec::new();
        for l in &rec.layers {
            let size = store.content().size(l)?;
            if written.insert(l.clone()) {
                let f = store.content().open_blob(l)?;
                let mut h = tar::Header::new_ustar();
                h.set_size(size);
                h.set_mode(0o644);
                h.set_mtime(0);
                h.set_entry_type(tar::EntryType::Regular);
                b.append_data(&mut h, format!("blobs/sha256/{}", l.hex()), f)
                    .map_err(tar_err)?;
            }
            layers.push(Descriptor {
                media_type: config::MEDIA_TYPE_LAYER_TAR.into(),
                digest: l.clone(),
                size,
            });
        }
        let manifest = Manifest {
            schema_version: 2,
            media_type: config::MEDIA_TYPE_MANIFEST.into(),
            config: Descriptor {
                media_type: config::MEDIA_TYPE_CONFIG.into(),
                digest: rec.digest(),
                size: cfg_raw.len() as u64,
            },
            layers,
        };
        let m_raw = serde_json::to_vec(&manifest).map_err(|e| Error::internal(e.to_string()))?;
        let m_dig = Digest::of(&m_raw);
        for (d, raw) in [(rec.digest(), &cfg_raw), (m_dig.clone(), &m_raw)] {
            if written.insert(d.clone()) {
                add_bytes(&mut b, &format!("blobs/sha256/{}", d.hex()), raw)?;
            }
        }
        let desc =
            json!({"mediaType": config::MEDIA_TYPE_MANIFEST, "digest": m_dig, "size": m_raw.len()});
        if item.tags.is_empty() {
            index.push(desc.clone());
        }
        for t in &item.tags {
            let mut d = desc.clone();
            d["annotations"] = json!({
                ANNOTATION_IMAGE_NAME: format!("{}:{}", t.full_name(), t.tag.clone().unwrap_or_default()),
                ANNOTATION_REF_NAME: t.tag.clone().unwrap_or_default(),
            });
            index.push(d);
            if let (Some(tag), Some(top)) = (&t.tag, rec.layers.last()) {
                repositories
                    .entry(t.familiar_name())
                    .or_default()
                    .insert(tag.clone(), top.hex().to_owned());
            }
        }
        entries.push(ArchiveEntry {
            config: format!("blobs/sha256/{}", rec.digest().hex()),
            repo_tags: Some(item.tags.iter().map(|t| t.familiar()).collect()),
            layers: rec
                .layers
                .iter()
                .map(|l| format!("blobs/sha256/{}", l.hex()))
                .collect(),
        });
    }
    let j =
        |v: &serde_json::Value| serde_json::to_vec(v).map_err(|e| Error::internal(e.to_string()));
    add_bytes(
        &mut b,
        "index.json",
        &j(&json!({"schemaVersion": 2, "mediaType": MEDIA_TYPE_INDEX, "manifests": index}))?,
    )?;
    add_bytes(
        &mut b,
        "manifest.json",
        &serde_json::to_vec(&entries).map_err(|e| Error::internal(e.to_string()))?,
    )?;
    add_bytes(&mut b, "oci-layout", br#"{"imageLayoutVersion": "1.0.0"}"#)?;
    if !repositories.is_empty() {
        add_bytes(
            &mut b,
            "repositories",
            &serde_json::to_vec(&repositories).map_err(|e| Error::internal(e.to_string()))?,
        )?;
    }
    b.into_inner().map_err(tar_err)?.flush().map_err(tar_err)?;
    Ok(())
}

/// What a load did for one image: the line Docker prints.
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded {
    pub id: String,
    pub tag: Option<Reference>,
}

impl Loaded {
    pub fn message(&self) -> String {
        match &self.tag {
            Some(t) => format!("Loaded image: {}\n", t.familiar()),
            None => format!("Loaded image ID: {}\n", self.id),
        }
    }
}

/// A path inside the unpacked archive; refuses anything resolving outside it.
fn inside(root: &Path, rel: &str) -> Result<PathBuf> {
    let p = fs::canonicalize(root.join(rel))
        .map_err(|e| Error::invalid(format!("archive entry {rel}: {e}")))?;
    let r = fs::canonicalize(root)?;
    if !p.starts_with(&r) {
        return Err(Error::invalid(format!(
            "archive entry {rel} points outside the archive"
        )));
    }
    Ok(p)
}

fn blob_path(root: &Path, d: &str) -> Result<PathBuf> {
    let (alg, hex) = d
        .split_once(':')
        .ok_or_else(|| Error::invalid(format!("invalid digest {d}")))?;
    if alg != "sha256" || hex.contains('/') {
        return Err(Error::invalid(format!("unsupported digest {d}")));
    }
    inside(root, &format!("blobs/{alg}/{hex}"))
}

/// Load every image of an archive read from `r`, unpacking it under `tmp` (removed
/// afterwards). `progress` is told about each layer as it is loaded.
pub fn load(
    store: &ImageStore,
    r: impl Read,
    tmp: &Path,
    progress: &mut dyn FnMut(&Digest, u64),
) -> Result<Vec<Loaded>> {
    fs::create_dir_all(tmp).ctx("create load dir")?;
    let res = load_in(store, r, tmp, progress);
    let _ = fs::remove_dir_all(tmp);
    res
}

fn load_in(
    store: &ImageStore,
    r: impl Read,
    tmp: &Path,
    progress: &mut dyn FnMut(&Digest, u64),
) -> Result<Vec<Loaded>> {
    let mut a = tar::Archive::new(r);
    a.set_preserve_permissions(false);
    a.set_unpack_xattrs(false);
    for e in a
        .entries()
        .map_err(|e| Error::invalid(format!("invalid tar: {e}")))?
    {
        let mut e = e.map_err(|e| Error::invalid(format!("invalid tar: {e}")))?;
        // `unpack_in` refuses entries escaping the directory.
        e.unpack_in(tmp)
            .map_err(|e| Error::invalid(format!("invalid tar entry: {e}")))?;
    }
    let mut out = Vec::new();
    if tmp.join("manifest.json").is_file() {
        let raw = fs::read(tmp.join("manifest.json"))?;
        let entries: Vec<ArchiveEntry> = serde_json::from_slice(&raw)
            .map_err(|e| Error::invalid(format!("invalid manifest.json: {e}")))?;
        for e in entries {
            let cfg_raw = fs::read(inside(tmp, &e.config)?)?;
            let layers = e
                .layers
                .iter()
                .map(|l| inside(tmp, l))
                .collect::<Result<Vec<_>>>()?;
            let tags = e
                .repo_tags
                .unwrap_or_default()
                .iter()
                .map(|t| Reference::parse_tagged(t))
                .collect::<Result<Vec<_>>>()?;
            out.extend(load_image(store, &cfg_raw, &layers, tags, progress)?);
        }
    } else if tmp.join("index.json").is_file() {
        let raw = fs::read(tmp.join("index.json"))?;
        let index: serde_json::Value = serde_json::from_slice(&raw)
            .map_err(|e| Error::invalid(format!("invalid index.json: {e}")))?;
        load_index(store, tmp, &index, None, progress, &mut out)?;
    } else {
        return Err(Error::invalid(
            "unrecognised image archive: no manifest.json or index.json",
        ));
    }
    Ok(out)
}

fn read_verified(root: &Path, d: &str) -> Result<Vec<u8>> {
    let raw = fs::read(blob_path(root, d)?)?;
    if Digest::of(&raw).as_str() != d {
        return Err(Error::invalid(format!(
            "blob {d} does not match its digest"
        )));
    }
    Ok(raw)
}

fn load_index(
    store: &ImageStore,
    root: &Path,
    index: &serde_json::Value,
    name: Option<Reference>,
    progress: &mut dyn FnMut(&Digest, u64),
    out: &mut Vec<Loaded>,
) -> Result<()> {
    let manifests = index["manifests"].as_array().cloned().unwrap_or_default();
    for m in &manifests {
        let digest = m["digest"].as_str().unwrap_or_default();
        let mt = m["mediaType"].as_str().unwrap_or_default();
        let ann = &m["annotations"];
        let name = ann[ANNOTATION_IMAGE_NAME]
            .as_str()
            .or_else(|| {
                ann[ANNOTATION_REF_NAME]
                    .as_str()
                    .filter(|n| n.contains(':') || n.contains('/'))
            })
            .and_then(|n| Reference::parse_tagged(n).ok())
            .or_else(|| name.clone());
        if let Some(p) = m.get("platform") {
            if p["os"].as_str().is_some_and(|o| o != "linux")
                || p["architecture"]
                    .as_str()
                    .is_some_and(|a| a != config::host_arch())
            {
                continue;
            }
        }
        let raw = read_verified(root, digest)?;
        if mt == MEDIA_TYPE_INDEX
            || mt == "application/vnd.docker.distribution.manifest.list.v2+json"
        {
            let nested: serde_json::Value = serde_json::from_slice(&raw)
                .map_err(|e| Error::invalid(format!("invalid index {digest}: {e}")))?;
            load_index(store, root, &nested, name, progress, out)?;
            continue;
        }
        let man: Manifest = serde_json::from_slice(&raw)
            .map_err(|e| Error::invalid(format!("invalid manifest {digest}: {e}")))?;
        let cfg_raw = read_verified(root, man.config.digest.as_str())?;
        let layers = man
            .layers
            .iter()
            .map(|l| blob_path(root, l.digest.as_str()))
            .collect::<Result<Vec<_>>>()?;
        out.extend(load_image(
            store,
            &cfg_raw,
            &layers,
            name.into_iter().collect(),
            progress,
        )?);
    }
    Ok(())
}

fn load_image(
    store: &ImageStore,
    cfg_raw: &[u8],
    layers: &[PathBuf],
    tags: Vec<Reference>,
    progress: &mut dyn FnMut(&Digest, u64),
) -> Result<Vec<Loaded>> {
    let cfg: ImageConfigFile = serde_json::from_slice(cfg_raw)
        .map_err(|e| Error::invalid(format!("invalid image config: {e}")))?;
    if cfg.rootfs.diff_ids.len() != layers.len() {
        return Err(Error::invalid(format!(
            "invalid manifest, layers length mismatch: expected {}, got {}",
            cfg.rootfs.diff_ids.len(),
            layers.len()
        )));
    }
    for (want, path) in cfg.rootfs.diff_ids.iter().zip(layers) {
        if store.has_layer(want) {
            continue;
        }
        let f = fs::File::open(path)?;
        let (got, size) = store.add_layer(f)?;
        if got != *want {
            store.remove_layer_if_unused(&got)?;
            return Err(Error::invalid(format!(
                "invalid diffID for layer: expected {want}, got {got}"
            )));
        }
        progress(&got, size);
    }
    let rec = store.create_image_raw(cfg_raw)?;
    if tags.is_empty() {
        return Ok(vec![Loaded {
            id: rec.id,
            tag: None,
        }]);
    }
    let mut out = Vec::new();
    for t in tags {
        store.tag(&rec.id, &t)?;
        out.push(Loaded {
            id: rec.id.clone(),
            tag: Some(t),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(name: &str, body: &[u8]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_path(name).unwrap();
        h.set_size(body.len() as u64);
        h.set_mode(0o754);
        h.set_uid(12);
        h.set_gid(34);
        h.set_mtime(0);
        h.set_cksum();
        b.append(&h, body).unwrap();
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_path("link").unwrap();
        h.set_link_name(name).unwrap();
        h.set_size(0);
        h.set_mode(0o777);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_cksum();
        b.append(&h, std::io::empty()).unwrap();
        b.into_inner().unwrap()
    }

    #[test]
    fn save_then_load_elsewhere() {
        let d1 = tempfile::tempdir().unwrap();
        let s1 = crate::store::tests::store(d1.path());
        let r = Reference::parse_tagged("saved:1").unwrap();
        let rec = s1
            .import(&layer("f", b"data")[..], &[], None, Some(&r))
            .unwrap();
        let mut tar = Vec::new();
        save(
            &s1,
            &[SaveItem {
                record: rec.clone(),
                tags: vec![r.clone()],
            }],
            &mut tar,
        )
        .unwrap();
        let names: Vec<String> = tar::Archive::new(&tar[..])
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        for n in ["index.json", "manifest.json", "oci-layout", "repositories"] {
            assert!(names.contains(&n.to_owned()), "{names:?}");
        }

        let d2 = tempfile::tempdir().unwrap();
        let s2 = crate::store::tests::store(d2.path());
        let mut n = 0;
        let out = load(&s2, &tar[..], &d2.path().join("tmp"), &mut |_, _| n += 1).unwrap();
        assert_eq!(
            out,
            vec![Loaded {
                id: rec.id.clone(),
                tag: Some(r.clone())
            }]
        );
        assert_eq!(out[0].message(), "Loaded image: saved:1\n");
        assert_eq!(n, 1);
        assert_eq!(s2.resolve("saved:1").unwrap().id, rec.id);
        assert!(!d2.path().join("tmp").exists());

        // The same tar without manifest.json is an OCI layout.
        let mut oci = tar::Builder::new(Vec::new());
        for e in tar::Archive::new(&tar[..]).entries().unwrap() {
            let mut e = e.unwrap();
            if e.path().unwrap().to_str() == Some("manifest.json") {
                continue;
            }
            let mut h = e.header().clone();
            let p = e.path().unwrap().into_owned();
            oci.append_data(&mut h, p, &mut e).unwrap();
        }
        let oci = oci.into_inner().unwrap();
        let d3 = tempfile::tempdir().unwrap();
        let s3 = crate::store::tests::store(d3.path());
        let out = load(&s3, &oci[..], &d3.path().join("tmp"), &mut |_, _| {}).unwrap();
        assert_eq!(out[0].message(), "Loaded image: saved:1\n");
        assert_eq!(s3.resolve("saved:1").unwrap().id, rec.id);
    }

    #[test]
    fn corrupt_archives_are_refused() {
        let d = tempfile::tempdir().unwrap();
        let s = crate::store::tests::store(d.path());
        let mut b = tar::Builder::new(Vec::new());
        add_bytes(
            &mut b,
            "manifest.json",
            br#"[{"Config":"../../etc/passwd","RepoTags":[],"Layers":[]}]"#,
        )
        .unwrap();
        let t = b.into_inner().unwrap();
        assert!(load(&s, &t[..], &d.path().join("tmp"), &mut |_, _| {}).is_err());
        assert!(s.list().unwrap().is_empty());
    }

    #[test]
    fn loads_legacy_layout_with_symlinked_layers() {
        let d = tempfile::tempdir().unwrap();
        let s = crate::store::tests::store(d.path());
        let l = layer("f", b"x");
        let diff = Digest::of(&l);
        let cfg = serde_json::to_vec(&json!({
            "architecture": "amd64", "os": "linux",
            "config": {"Cmd": ["sh"]},
            "rootfs": {"type": "layers", "diff_ids": [diff, diff]},
        }))
        .unwrap();
        let cfg_hex = Digest::of(&cfg).hex().to_owned();
        let mut b = tar::Builder::new(Vec::new());
        add_dir(&mut b, "aaa/").unwrap();
        add_bytes(&mut b, "aaa/layer.tar", &l).unwrap();
        add_dir(&mut b, "bbb/").unwrap();
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        h.set_mode(0o777);
        h.set_mtime(0);
        b.append_link(&mut h, "bbb/layer.tar", "../aaa/layer.tar")
            .unwrap();
        add_bytes(&mut b, &format!("{cfg_hex}.json"), &cfg).unwrap();
        let m = json!([{"Config": format!("{cfg_hex}.json"), "RepoTags": ["legacy:1"], "Layers": ["aaa/layer.tar", "bbb/layer.tar"]}]);
        add_bytes(&mut b, "manifest.json", &serde_json::to_vec(&m).unwrap()).unwrap();
        let t = b.into_inner().unwrap();
        let out = load(&s, &t[..], &d.path().join("tmp"), &mut |_, _| {}).unwrap();
        assert_eq!(out[0].message(), "Loaded image: legacy:1\n");
        assert_eq!(
            s.resolve("legacy:1").unwrap().id,
            format!("sha256:{cfg_hex}")
        );

        // A layer symlink pointing outside the archive is refused.
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        h.set_mode(0o777);
        h.set_mtime(0);
        b.append_link(&mut h, "evil.json", "/etc/passwd").unwrap();
        let m = json!([{"Config": "evil.json", "RepoTags": [], "Layers": []}]);
        add_bytes(&mut b, "manifest.json", &serde_json::to_vec(&m).unwrap()).unwrap();
        let t = b.into_inner().unwrap();
        let err = load(&s, &t[..], &d.path().join("tmp"), &mut |_, _| {}).unwrap_err();
        assert!(err.to_string().contains("outside"), "{err}");
    }
}
