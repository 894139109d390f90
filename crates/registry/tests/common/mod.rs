#![allow(dead_code)]
//! A registry on 127.0.0.1:0 with a temp root, and a loopback-only client.

use std::path::PathBuf;

use berth_registry::ServeConfig;
use sha2::Digest as _;

pub struct Reg {
    pub base: String,
    pub root: tempfile::TempDir,
    pub client: reqwest::Client,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Drop for Reg {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub async fn start_with(htpasswd: Option<PathBuf>, tls: Option<(PathBuf, PathBuf)>) -> Reg {
    let root = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tls_cert, tls_key) = match tls {
        Some((c, k)) => (Some(c), Some(k)),
        None => (None, None),
    };
    let scheme = if tls_cert.is_some() { "https" } else { "http" };
    let cfg = ServeConfig {
        addr,
        root: root.path().to_path_buf(),
        htpasswd,
        tls_cert,
        tls_key,
    };
    let task = tokio::spawn(berth_registry::serve_with_listener(cfg, listener));
    let client = reqwest::Client::builder()
        .no_proxy()
        .danger_accept_invalid_certs(true)
        .build()
        .unwrap();
    Reg {
        base: format!("{scheme}://{addr}"),
        root,
        client,
        task,
    }
}

pub async fn start() -> Reg {
    start_with(None, None).await
}

pub fn sha256(b: &[u8]) -> String {
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(b)))
}

pub fn sha512(b: &[u8]) -> String {
    format!("sha512:{}", hex::encode(sha2::Sha512::digest(b)))
}

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

impl Reg {
    pub fn url(&self, p: &str) -> String {
        format!("{}{p}", self.base)
    }

    /// Resolve a Location header against the registry.
    pub fn loc(&self, r: &reqwest::Response) -> String {
        let l = r.headers()["location"].to_str().unwrap().to_string();
        if l.starts_with("http") {
            l
        } else {
            self.url(&l)
        }
    }

    pub async fn push_blob(&self, repo: &str, data: &[u8]) -> String {
        let d = sha256(data);
        let r = self
            .client
            .post(self.url(&format!("/v2/{repo}/blobs/uploads/?digest={d}")))
            .header("Content-Type", "application/octet-stream")
            .body(data.to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "push blob: {}", r.text().await.unwrap());
        d
    }

    pub async fn put_manifest(
        &self,
        repo: &str,
        reference: &str,
        ct: &str,
        body: &[u8],
    ) -> reqwest::Response {
        self.client
            .put(self.url(&format!("/v2/{repo}/manifests/{reference}")))
            .header("Content-Type", ct)
            .body(body.to_vec())
            .send()
            .await
            .unwrap()
    }

    /// Push a config and one layer, then an image manifest tagged `tag`; returns
    /// (manifest bytes, manifest digest, [config, layer] digests).
    pub async fn push_image(
        &self,
        repo: &str,
        tag: &str,
        seed: &str,
    ) -> (Vec<u8>, String, Vec<String>) {
        let cfg = format!(r#"{{"architecture":"amd64","os":"linux","seed":"{seed}"}}"#);
        let layer = format!("layer-content-{seed}").repeat(100);
        let c = self.push_blob(repo, cfg.as_bytes()).await;
        let l = self.push_blob(repo, layer.as_bytes()).await;
        let m = image_manifest(&c, cfg.len(), &[(&l, layer.len())], None);
        let r = self.put_manifest(repo, tag, OCI_MANIFEST, &m).await;
        assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
        let d = sha256(&m);
        (m, d, vec![c, l])
    }

    /// Files left under a directory of the storage root.
    pub fn files_under(&self, sub: &str) -> Vec<PathBuf> {
        let mut out = Vec::new();
        let mut stack = vec![self.root.path().join(sub)];
        while let Some(d) = stack.pop() {
            let Ok(rd) = std::fs::read_dir(&d) else {
                continue;
            };
            for e in rd.flatten() {
                if e.path().is_dir() {
                    stack.push(e.path())
                } else {
                    out.push(e.path())
                }
            }
        }
        out
    }
}

pub fn image_manifest(
    config: &str,
    config_size: usize,
    layers: &[(&str, usize)],
    subject: Option<(&str, usize)>,
) -> Vec<u8> {
    let layers: Vec<serde_json::Value> = layers
        .iter()
        .map(|(d, s)| serde_json::json!({"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": d, "size": s}))
        .collect();
    let mut m = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": config_size},
        "layers": layers,
    });
    if let Some((d, s)) = subject {
        m["subject"] = serde_json::json!({"mediaType": OCI_MANIFEST, "digest": d, "size": s});
    }
    serde_json::to_vec_pretty(&m).unwrap()
}

pub async fn error_code(r: reqwest::Response) -> String {
    let v: serde_json::Value = r.json().await.unwrap();
    v["errors"][0]["code"].as_str().unwrap_or("").to_string()
}
