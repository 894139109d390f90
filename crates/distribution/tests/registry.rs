//! Push and pull against berth's own registry, in process on 127.0.0.1: the pushed
//! manifest and config satisfy the OCI image-spec schemas, and foreign layers keep their
//! descriptor through a pull and a push without their blob being uploaded.

#[path = "../../image/tests/common/oci_schema.rs"]
mod oci_schema;

use std::io::Write as _;
use std::path::Path;
use std::sync::Arc;

use berth_api::stream::JsonMessage;
use berth_content::{Digest, Store};
use berth_distribution::Credentials;
use berth_image::layers::MEDIA_TYPE_DOCKER_FOREIGN_LAYER;
use berth_image::{ImageStore, Reference};
use berth_metadata::Db;
use berth_snapshot::Snapshotter;
use oci_schema::{assert_valid, Schema};
use serde_json::{json, Value};
use tokio::sync::mpsc;

const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";

struct Reg {
    addr: String,
    http: reqwest::Client,
    _root: tempfile::TempDir,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Drop for Reg {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Reg {
    async fn start() -> Reg {
        let root = tempfile::tempdir().unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let cfg = berth_registry::ServeConfig {
            addr,
            root: root.path().to_path_buf(),
            htpasswd: None,
            tls_cert: None,
            tls_key: None,
        };
        let task = tokio::spawn(berth_registry::serve_with_listener(cfg, listener));
        Reg {
            addr: addr.to_string(),
            http: reqwest::Client::builder().no_proxy().build().unwrap(),
            _root: root,
            task,
        }
    }

    fn url(&self, p: &str) -> String {
        format!("http://{}{p}", self.addr)
    }

    async fn push_blob(&self, repo: &str, data: &[u8]) -> Digest {
        let d = Digest::of(data);
        let r = self
            .http
            .post(self.url(&format!("/v2/{repo}/blobs/uploads/?digest={d}")))
            .header("Content-Type", "application/octet-stream")
            .body(data.to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
        d
    }

    async fn put_manifest(&self, repo: &str, tag: &str, ct: &str, body: &[u8]) {
        let r = self
            .http
            .put(self.url(&format!("/v2/{repo}/manifests/{tag}")))
            .header("Content-Type", ct)
            .body(body.to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    }

    async fn manifest(&self, repo: &str, tag: &str) -> Vec<u8> {
        let r = self
            .http
            .get(self.url(&format!("/v2/{repo}/manifests/{tag}")))
            .header("Accept", DOCKER_MANIFEST)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.bytes().await.unwrap().to_vec()
    }

    async fn blob_status(&self, repo: &str, d: &str) -> u16 {
        self.http
            .head(self.url(&format!("/v2/{repo}/blobs/{d}")))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    async fn blob(&self, repo: &str, d: &str) -> Vec<u8> {
        let r = self
            .http
            .get(self.url(&format!("/v2/{repo}/blobs/{d}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.bytes().await.unwrap().to_vec()
    }
}

fn store(dir: &Path) -> ImageStore {
    let content = Store::open(dir.join("content")).unwrap();
    let db = Arc::new(Db::open(&dir.join("m.redb")).unwrap());
    let snap = Snapshotter::open(dir).unwrap();
    ImageStore::new(content, db, snap)
}

fn tar_of(name: &str, body: &[u8]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_path(name).unwrap();
    h.set_size(body.len() as u64);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_cksum();
    b.append(&h, body).unwrap();
    b.into_inner().unwrap()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(data).unwrap();
    gz.finish().unwrap()
}

/// Run a push, returning its messages.
async fn push(
    s: &ImageStore,
    image: &str,
    target: &str,
) -> (berth_distribution::Pushed, Vec<JsonMessage>) {
    let rec = s.resolve(image).unwrap();
    let r = Reference::parse_tagged(target).unwrap();
    let (tx, mut rx) = mpsc::channel(1024);
    let res = berth_distribution::push(s.clone(), &rec, &r, Credentials::default(), &[], 5, &tx).await;
    drop(tx);
    let mut msgs = Vec::new();
    while let Some(m) = rx.recv().await {
        msgs.push(m);
    }
    (
        res.unwrap_or_else(|e| panic!("push {target}: {e}\n{msgs:?}")),
        msgs,
    )
}

async fn pull(s: &ImageStore, name: &str) -> Vec<JsonMessage> {
    let r = Reference::parse_tagged(name).unwrap();
    let p = berth_distribution::resolve(s.clone(), r, Credentials::default(), &[], &[], "")
        .await
        .unwrap();
    let (tx, mut rx) = mpsc::channel(1024);
    let task = tokio::spawn(p.run(tx));
    let mut msgs = Vec::new();
    while let Some(m) = rx.recv().await {
        msgs.push(m);
    }
    task.await
        .unwrap()
        .unwrap_or_else(|e| panic!("pull {name}: {e}\n{msgs:?}"));
    msgs
}

fn statuses(msgs: &[JsonMessage]) -> Vec<(String, String)> {
    msgs.iter()
        .filter_map(|m| Some((m.id.clone().unwrap_or_default(), m.status.clone()?)))
        .collect()
}

#[tokio::test]
async fn pushed_manifest_and_config_satisfy_the_oci_schemas() {
    let reg = Reg::start().await;
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    let name = format!("{}/schema/img:1", reg.addr);
    let r = Reference::parse_tagged(&name).unwrap();
    s.import(
        &tar_of("hello", b"hi")[..],
        &[
            "CMD [\"/hello\"]".into(),
            "EXPOSE 80".into(),
            "LABEL a=b".into(),
        ],
        Some("for the schema"),
        Some(&r),
    )
    .unwrap();
    let (pushed, _) = push(&s, &name, &name).await;
    let m = reg.manifest("schema/img", "1").await;
    assert_eq!(Digest::of(&m).as_str(), pushed.digest);
    assert_valid(Schema::Manifest, "pushed manifest", &m);
    let mv: Value = serde_json::from_slice(&m).unwrap();
    assert_eq!(mv["mediaType"], DOCKER_MANIFEST);
    assert_eq!(mv["config"]["mediaType"], DOCKER_CONFIG);
    let cfg = reg
        .blob("schema/img", mv["config"]["digest"].as_str().unwrap())
        .await;
    assert_valid(Schema::Config, "pushed config", &cfg);
}

/// An image whose bottom layer is foreign (its descriptor has `urls`), put into the
/// registry by hand, pulled, pushed elsewhere and pulled from there again.
#[tokio::test]
async fn foreign_layers_are_pulled_and_skipped_on_push() {
    let reg = Reg::start().await;
    let foreign_tar = tar_of("windows-base", b"not redistributable");
    let own_tar = tar_of("app", b"our own layer");
    let (foreign_gz, own_gz) = (gzip(&foreign_tar), gzip(&own_tar));
    let config = serde_json::to_vec(&json!({
        "architecture": berth_image::config::host_arch(), "os": "linux",
        "created": "2024-01-02T03:04:05Z",
        "config": {"Cmd": ["/app"]},
        "rootfs": {"type": "layers", "diff_ids": [Digest::of(&foreign_tar), Digest::of(&own_tar)]},
    }))
    .unwrap();
    let cfg_d = reg.push_blob("src/img", &config).await;
    let foreign_d = reg.push_blob("src/img", &foreign_gz).await;
    let own_d = reg.push_blob("src/img", &own_gz).await;
    // The foreign layer may be fetched from here too (loopback: the source repository).
    let foreign_url = reg.url(&format!("/v2/src/img/blobs/{foreign_d}"));
    let foreign_desc = json!({
        "mediaType": MEDIA_TYPE_DOCKER_FOREIGN_LAYER, "size": foreign_gz.len(),
        "digest": foreign_d, "urls": [foreign_url],
    });
    let manifest = serde_json::to_vec_pretty(&json!({
        "schemaVersion": 2, "mediaType": DOCKER_MANIFEST,
        "config": {"mediaType": DOCKER_CONFIG, "size": config.len(), "digest": cfg_d},
        "layers": [foreign_desc, {"mediaType": DOCKER_LAYER, "size": own_gz.len(), "digest": own_d}],
    }))
    .unwrap();
    reg.put_manifest("src/img", "1", DOCKER_MANIFEST, &manifest)
        .await;

    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    let src = format!("{}/src/img:1", reg.addr);
    let msgs = pull(&s, &src).await;
    let st = statuses(&msgs);
    assert!(
        st.iter()
            .any(|(id, s)| id == foreign_d.short() && s == "Pull complete"),
        "{st:?}"
    );
    let rec = s.resolve(&src).unwrap();
    assert_eq!(rec.id, Digest::of(&config).as_str());
    let kept = s
        .foreign_layer(&Digest::of(&foreign_tar))
        .expect("foreign descriptor kept");
    assert_eq!(
        (kept.digest.clone(), kept.size),
        (foreign_d.clone(), foreign_gz.len() as u64)
    );
    assert_eq!(kept.urls, std::slice::from_ref(&foreign_url));
    assert!(s.foreign_layer(&Digest::of(&own_tar)).is_none());

    // Push to another repository: the foreign layer is skipped, its descriptor copied.
    let dst = format!("{}/dst/img:2", reg.addr);
    s.tag(&rec.id, &Reference::parse_tagged(&dst).unwrap())
        .unwrap();
    let (pushed, msgs) = push(&s, &dst, &dst).await;
    let st = statuses(&msgs);
    let foreign_id = Digest::of(&foreign_tar).short().to_owned();
    let own_id = Digest::of(&own_tar).short().to_owned();
    let of = |id: &str| -> Vec<&str> {
        st.iter()
            .filter(|(i, _)| i == id)
            .map(|(_, s)| s.as_str())
            .collect()
    };
    assert_eq!(
        of(&foreign_id),
        ["Preparing", "Skipped foreign layer"],
        "{st:?}"
    );
    assert_eq!(of(&own_id), ["Preparing", "Mounted from src/img"], "{st:?}");
    let m = reg.manifest("dst/img", "2").await;
    assert_eq!(Digest::of(&m).as_str(), pushed.digest);
    assert_valid(Schema::Manifest, "pushed manifest with a foreign layer", &m);
    let mv: Value = serde_json::from_slice(&m).unwrap();
    assert_eq!(mv["layers"][0], foreign_desc);
    assert_eq!(mv["layers"][1]["digest"], own_d.as_str());
    // Nothing uploaded or mounted the foreign blob into the new repository.
    assert_eq!(reg.blob_status("dst/img", foreign_d.as_str()).await, 404);
    assert_eq!(reg.blob_status("dst/img", own_d.as_str()).await, 200);
    // Pushing again skips it again.
    let (again, msgs) = push(&s, &dst, &dst).await;
    assert_eq!(again.digest, pushed.digest);
    assert!(statuses(&msgs).contains(&(foreign_id.clone(), "Skipped foreign layer".into())));

    // A fresh store pulls from the new repository: the registry does not have the
    // foreign blob there, so it comes from the descriptor's urls.
    let dir2 = tempfile::tempdir().unwrap();
    let s2 = store(dir2.path());
    pull(&s2, &dst).await;
    assert_eq!(s2.resolve(&dst).unwrap().id, rec.id);
    assert!(s2.has_layer(&Digest::of(&foreign_tar)));
    assert_eq!(
        s2.foreign_layer(&Digest::of(&foreign_tar)).unwrap().urls,
        [foreign_url]
    );

    // No urls and no blob in the registry: the pull fails and says why.
    let bare = json!({"mediaType": MEDIA_TYPE_DOCKER_FOREIGN_LAYER, "size": foreign_gz.len(), "digest": foreign_d});
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": DOCKER_MANIFEST,
        "config": {"mediaType": DOCKER_CONFIG, "size": config.len(), "digest": cfg_d},
        "layers": [bare, {"mediaType": DOCKER_LAYER, "size": own_gz.len(), "digest": own_d}],
    }))
    .unwrap();
    reg.put_manifest("dst/img", "nourls", DOCKER_MANIFEST, &manifest)
        .await;
    let dir3 = tempfile::tempdir().unwrap();
    let s3 = store(dir3.path());
    let r = Reference::parse_tagged(&format!("{}/dst/img:nourls", reg.addr)).unwrap();
    let p = berth_distribution::resolve(s3.clone(), r, Credentials::default(), &[], &[], "")
        .await
        .unwrap();
    let (tx, mut rx) = mpsc::channel(1024);
    let task = tokio::spawn(p.run(tx));
    while rx.recv().await.is_some() {}
    let err = task.await.unwrap().unwrap_err();
    assert!(err.to_string().contains("blob unknown"), "{err}");
    assert!(s3.list().unwrap().is_empty());
}

/// OCI non-distributable layers (here without `urls`) are skipped the same way.
#[tokio::test]
async fn oci_non_distributable_layers_are_skipped_on_push() {
    const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    const NONDIST: &str = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip";
    let reg = Reg::start().await;
    let layer_tar = tar_of("licensed", b"licensed bits");
    let layer_gz = gzip(&layer_tar);
    let config = serde_json::to_vec(&json!({
        "architecture": berth_image::config::host_arch(), "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [Digest::of(&layer_tar)]},
    }))
    .unwrap();
    let cfg_d = reg.push_blob("oci/src", &config).await;
    let layer_d = reg.push_blob("oci/src", &layer_gz).await;
    let desc = json!({"mediaType": NONDIST, "size": layer_gz.len(), "digest": layer_d});
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "size": config.len(), "digest": cfg_d},
        "layers": [desc],
    }))
    .unwrap();
    reg.put_manifest("oci/src", "1", OCI_MANIFEST, &manifest)
        .await;

    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    let src = format!("{}/oci/src:1", reg.addr);
    pull(&s, &src).await;
    let rec = s.resolve(&src).unwrap();
    let dst = format!("{}/oci/dst:1", reg.addr);
    s.tag(&rec.id, &Reference::parse_tagged(&dst).unwrap())
        .unwrap();
    let (_, msgs) = push(&s, &dst, &dst).await;
    let id = Digest::of(&layer_tar).short().to_owned();
    assert!(
        statuses(&msgs).contains(&(id, "Skipped foreign layer".into())),
        "{msgs:?}"
    );
    let m = reg.manifest("oci/dst", "1").await;
    assert_valid(Schema::Manifest, "pushed manifest", &m);
    let mv: Value = serde_json::from_slice(&m).unwrap();
    assert_eq!(mv["layers"], json!([desc]));
    assert_eq!(reg.blob_status("oci/dst", layer_d.as_str()).await, 404);
}
