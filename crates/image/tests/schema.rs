//! Every OCI document berth-image writes satisfies the OCI image-spec JSON schemas: the
//! config and manifest of imported and committed images, and the `oci-layout`,
//! `index.json`, manifests and configs of a saved archive.

mod common;

use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use berth_content::{Digest, Store};
use berth_image::archive::{self, SaveItem};
use berth_image::config::{self, History};
use berth_image::{ImageRecord, ImageStore, Reference};
use berth_metadata::Db;
use berth_snapshot::Snapshotter;
use common::oci_schema::{assert_valid, self_check, Schema};
use serde_json::Value;

fn store(dir: &Path) -> ImageStore {
    let content = Store::open(dir.join("content")).unwrap();
    let db = Arc::new(Db::open(&dir.join("m.redb")).unwrap());
    let snap = Snapshotter::open(dir).unwrap();
    ImageStore::new(content, db, snap)
}

fn tar_of(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, body) in files {
        let mut h = tar::Header::new_gnu();
        h.set_path(name).unwrap();
        h.set_size(body.len() as u64);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_cksum();
        b.append(&h, *body).unwrap();
    }
    b.into_inner().unwrap()
}

/// The config and the stored manifest of an image record.
fn check_record(s: &ImageStore, rec: &ImageRecord, what: &str) {
    let cfg = s.content().read(&rec.digest()).unwrap();
    assert_valid(Schema::Config, &format!("{what} config"), &cfg);
    let m = s
        .content()
        .read(rec.manifest.as_ref().expect("a manifest is recorded"))
        .unwrap();
    assert_valid(Schema::Manifest, &format!("{what} manifest"), &m);
    let mv: Value = serde_json::from_slice(&m).unwrap();
    assert_eq!(mv["config"]["digest"], rec.id.as_str());
    assert_eq!(mv["layers"].as_array().unwrap().len(), rec.layers.len());
}

/// A commit as the daemon does it: the parent's config, one more layer, the container's
/// config with `--change`s, a history entry, author, comment and parent.
fn commit(s: &ImageStore, parent: &ImageRecord, r: &Reference) -> ImageRecord {
    let mut cfg = s.config(parent).unwrap();
    let (diff_id, _) = s
        .add_layer(&tar_of(&[("etc/committed", b"yes\n")])[..])
        .unwrap();
    for ch in [
        "ENV PATH=/usr/bin:/bin",
        "ENTRYPOINT [\"/bin/sh\", \"-c\"]",
        "WORKDIR /srv",
        "USER 1000:1000",
        "LABEL org.example.k=v other=x",
        "EXPOSE 8080/tcp 53/udp",
        "VOLUME /data",
        "STOPSIGNAL SIGTERM",
        "ONBUILD RUN echo hi",
    ] {
        berth_image::changes::apply_change(&mut cfg.config, ch).unwrap();
    }
    let now = config::now_rfc3339();
    cfg.created = Some(now.clone());
    cfg.author = Some("me <me@example.org>".into());
    cfg.comment = Some("committed".into());
    cfg.parent = Some(parent.id.clone());
    cfg.rootfs.diff_ids.push(diff_id);
    cfg.history.push(History {
        created: Some(now.clone()),
        created_by: Some("/bin/sh -c echo yes > /etc/committed".into()),
        author: cfg.author.clone(),
        comment: cfg.comment.clone(),
        empty_layer: false,
    });
    cfg.history.push(History {
        created: Some(now),
        created_by: Some("ENV PATH=/usr/bin:/bin".into()),
        empty_layer: true,
        ..Default::default()
    });
    let rec = s.create_image(&cfg).unwrap();
    s.tag(&rec.id, r).unwrap();
    rec
}

fn blob(root: &Path, d: &str) -> Vec<u8> {
    let (alg, hex) = d.split_once(':').unwrap();
    let raw = std::fs::read(root.join("blobs").join(alg).join(hex))
        .unwrap_or_else(|e| panic!("blob {d} missing from the layout: {e}"));
    assert_eq!(Digest::of(&raw).as_str(), d, "blob {d} does not match");
    raw
}

/// Validate an index and everything it references, recursively; returns how many
/// image manifests were found.
fn check_index(root: &Path, what: &str, raw: &[u8]) -> usize {
    assert_valid(Schema::Index, what, raw);
    let idx: Value = serde_json::from_slice(raw).unwrap();
    let mut images = 0;
    for m in idx["manifests"].as_array().unwrap() {
        let d = m["digest"].as_str().unwrap();
        let body = blob(root, d);
        assert_eq!(m["size"].as_u64().unwrap(), body.len() as u64);
        match m["mediaType"].as_str().unwrap() {
            archive::MEDIA_TYPE_INDEX => images += check_index(root, &format!("index {d}"), &body),
            config::MEDIA_TYPE_MANIFEST => {
                images += 1;
                assert_valid(Schema::Manifest, &format!("manifest {d}"), &body);
                let man: Value = serde_json::from_slice(&body).unwrap();
                let cd = man["config"]["digest"].as_str().unwrap();
                let cfg = blob(root, cd);
                assert_eq!(man["config"]["size"].as_u64().unwrap(), cfg.len() as u64);
                assert_valid(Schema::Config, &format!("config {cd}"), &cfg);
                for l in man["layers"].as_array().unwrap() {
                    let ld = l["digest"].as_str().unwrap();
                    assert_eq!(l["size"].as_u64().unwrap(), blob(root, ld).len() as u64);
                }
            }
            other => panic!("unexpected media type {other} in {what}"),
        }
    }
    images
}

#[test]
fn schemas_reject_bad_documents() {
    self_check();
}

#[test]
fn written_documents_satisfy_the_oci_schemas() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());

    // import, with changes and a message
    let base_ref = Reference::parse_tagged("example.org/schema/base:1").unwrap();
    let base = s
        .import(
            &tar_of(&[("bin/hello", b"hi")])[..],
            &["CMD [\"/bin/hello\"]".into(), "ENV A=1".into()],
            Some("imported for the schema test"),
            Some(&base_ref),
        )
        .unwrap();
    check_record(&s, &base, "imported image");
    // import without anything optional
    let bare = s
        .import(&tar_of(&[("f", b"x")])[..], &[], None, None)
        .unwrap();
    check_record(&s, &bare, "bare imported image");

    // commit on top
    let child_ref = Reference::parse_tagged("schema/child:2").unwrap();
    let child = commit(&s, &base, &child_ref);
    check_record(&s, &child, "committed image");
    assert_eq!(child.layers.len(), 2);

    // a config recorded as given (pulled or loaded), minimal: no created, no history
    let minimal = serde_json::to_vec(&serde_json::json!({
        "architecture": config::host_arch(), "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [bare.layers[0]]},
    }))
    .unwrap();
    let raw_rec = s.create_image_raw(&minimal).unwrap();
    check_record(&s, &raw_rec, "raw-config image");

    // save: tagged (twice), untagged, and an image with no layers of its own history
    let mut out = Vec::new();
    archive::save(
        &s,
        &[
            SaveItem {
                record: base.clone(),
                tags: vec![base_ref.clone()],
            },
            SaveItem {
                record: child.clone(),
                tags: vec![
                    child_ref,
                    Reference::parse_tagged("schema/child:alias").unwrap(),
                ],
            },
            SaveItem {
                record: raw_rec.clone(),
                tags: vec![],
            },
        ],
        &mut out,
    )
    .unwrap();
    let layout = dir.path().join("layout");
    std::fs::create_dir_all(&layout).unwrap();
    tar::Archive::new(&out[..]).unpack(&layout).unwrap();

    let mut oci_layout = Vec::new();
    std::fs::File::open(layout.join("oci-layout"))
        .unwrap()
        .read_to_end(&mut oci_layout)
        .unwrap();
    assert_valid(Schema::Layout, "oci-layout", &oci_layout);
    let index = std::fs::read(layout.join("index.json")).unwrap();
    let images = check_index(&layout, "index.json", &index);
    assert_eq!(images, 4, "one manifest per tag, plus the untagged image");
}
