//! Pull: resolve a reference to one platform's manifest and config (errors here are
//! plain API errors), then download layers concurrently, decompressing and verifying
//! while they stream, extract them in order and record the image.

use std::sync::Arc;

use berth_api::stream::JsonMessage;
use berth_content::Digest;
use berth_errdefs::{Error, Result};
use berth_image::config::{self, ImageConfigFile};
use berth_image::{Compression, ImageStore, LayerSource, Reference};
use futures_util::StreamExt;
use reqwest::Method;
use serde::Deserialize;
use tokio::sync::mpsc;

use crate::client::{status_error, Credentials, Registry};
use crate::progress::{layer_progress, layer_status};

/// Concurrent layer downloads per pull (Docker's default).
/// Layers downloaded at once unless told otherwise (dockerd's
/// `max-concurrent-downloads` default).
pub const MAX_DOWNLOADS: usize = 3;

pub const MT_DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const MT_DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const MT_OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const MT_OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

#[derive(Debug, Clone, Deserialize)]
pub struct RemoteDescriptor {
    #[serde(rename = "mediaType", default)]
    pub media_type: String,
    pub digest: String,
    #[serde(default)]
    pub size: u64,
    #[serde(default)]
    pub platform: Option<Platform>,
    /// Other places the blob may be fetched from (foreign / non-distributable layers).
    #[serde(default)]
    pub urls: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
pub struct Platform {
    #[serde(default)]
    pub os: String,
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub variant: Option<String>,
}

impl Platform {
    /// `os/arch[/variant]`; empty means the host's.
    pub fn parse(s: &str) -> Result<Platform> {
        if s.is_empty() {
            return Ok(Platform {
                os: "linux".into(),
                architecture: config::host_arch().into(),
                variant: None,
            });
        }
        let p: Vec<&str> = s.split('/').collect();
        match p.as_slice() {
            [os, arch] => Ok(Platform {
                os: (*os).into(),
                architecture: (*arch).into(),
                variant: None,
            }),
            [os, arch, v] => Ok(Platform {
                os: (*os).into(),
                architecture: (*arch).into(),
                variant: Some((*v).into()),
            }),
            [arch] if !arch.is_empty() => Ok(Platform {
                os: "linux".into(),
                architecture: (*arch).into(),
                variant: None,
            }),
            _ => Err(Error::invalid(format!("invalid platform: {s}"))),
        }
    }
    fn matches(&self, other: &Platform) -> bool {
        self.os == other.os
            && self.architecture == other.architecture
            && (self.variant.is_none() || other.variant.is_none() || self.variant == other.variant)
    }
    fn show(&self) -> String {
        match &self.variant {
            Some(v) => format!("{}/{}/{v}", self.os, self.architecture),
            None => format!("{}/{}", self.os, self.architecture),
        }
    }
}

#[derive(Debug, Deserialize)]
struct RemoteManifest {
    #[serde(rename = "mediaType", default)]
    media_type: String,
    #[serde(default)]
    config: Option<RemoteDescriptor>,
    #[serde(default)]
    layers: Vec<RemoteDescriptor>,
    #[serde(default)]
    manifests: Vec<RemoteDescriptor>,
}

/// A pull whose manifest and config are known.
pub struct Pull {
    store: ImageStore,
    reg: Arc<Registry>,
    reference: Reference,
    scope: String,
    /// Digest of the manifest the tag (or digest) pointed at (a list, if it was one).
    pub digest: String,
    config_raw: Vec<u8>,
    layers: Vec<(RemoteDescriptor, Digest)>,
    max_downloads: usize,
}

async fn get_manifest(
    reg: &Registry,
    r: &Reference,
    scope: &str,
    what: &str,
) -> Result<(Vec<u8>, String, String)> {
    let url = reg.url(&format!("/v2/{}/manifests/{what}", r.path));
    let accept = [
        MT_DOCKER_MANIFEST,
        MT_DOCKER_LIST,
        MT_OCI_MANIFEST,
        MT_OCI_INDEX,
    ]
    .join(", ");
    let resp = reg
        .send(Method::GET, &url, scope, &|rb| {
            rb.header("Accept", accept.clone())
        })
        .await?;
    if !resp.status().is_success() {
        let shown = r.familiar_name();
        let tag_or_digest = r
            .digest
            .clone()
            .or_else(|| r.tag.clone())
            .unwrap_or_default();
        let sep = if r.digest.is_some() { "@" } else { ":" };
        let e = status_error(
            resp,
            &format!("manifest for {shown}{sep}{tag_or_digest} not found"),
        )
        .await;
        return Err(e);
    }
    let ct = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let body = resp
        .bytes()
        .await
        .map_err(|e| Error::internal(format!("read manifest: {e}")))?
        .to_vec();
    let dig = Digest::of(&body).to_string();
    if what.starts_with("sha256:") && dig != what {
        return Err(Error::invalid(format!(
            "manifest verification failed for digest {what}"
        )));
    }
    Ok((body, ct, dig))
}

/// Resolve `reference` (tag or digest) to the manifest for `platform`, fetch and verify
/// its config (on the endpoints [`on_endpoints`] tries).
pub async fn resolve(
    store: ImageStore,
    reference: Reference,
    creds: Credentials,
    insecure: &[String],
    mirrors: &[String],
    platform: &str,
) -> Result<Pull> {
    let want = Platform::parse(platform)?;
    on_endpoints(&reference, creds, insecure, mirrors, |reg| {
        resolve_on(store.clone(), reg, reference.clone(), &want)
    })
    .await
}

/// Run `f` against the endpoints `reference` is fetched from. A Docker Hub image is
/// looked for on each of `mirrors` first, as dockerd does with `--registry-mirror`;
/// any failure there (unreachable, not mirrored) moves on to the next mirror and then
/// to Docker Hub itself.
async fn on_endpoints<T, F, Fut>(
    reference: &Reference,
    creds: Credentials,
    insecure: &[String],
    mirrors: &[String],
    f: F,
) -> Result<T>
where
    F: Fn(Arc<Registry>) -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    if reference.domain == "docker.io" {
        for m in mirrors {
            let reg = Arc::new(Registry::mirror(m, insecure)?);
            match f(reg).await {
                Ok(p) => {
                    tracing::info!(mirror = %m, image = %reference, "using a mirror");
                    return Ok(p);
                }
                Err(e) => {
                    tracing::info!(mirror = %m, image = %reference, "mirror failed, trying the next endpoint: {}", e.message())
                }
            }
        }
    }
    let reg = Arc::new(Registry::connect(&reference.domain, creds, insecure).await?);
    f(reg).await
}

/// What a registry says `reference` is, without pulling it (`GET
/// /distribution/{name}/json`): the descriptor of the manifest or list it names, and
/// the platforms it holds — a list's entries', or a single image's from its config —
/// as dockerd reports them.
pub async fn inspect(
    reference: Reference,
    creds: Credentials,
    insecure: &[String],
    mirrors: &[String],
) -> Result<berth_api::models::DistributionInspect> {
    on_endpoints(&reference, creds, insecure, mirrors, |reg| inspect_on(reg, &reference)).await
}

async fn inspect_on(reg: Arc<Registry>, r: &Reference) -> Result<berth_api::models::DistributionInspect> {
    use berth_api::models::{DistributionInspect, OciDescriptor, OciPlatform};
    let scope = format!("repository:{}:pull", r.path);
    let what = r.digest.clone().or_else(|| r.tag.clone()).unwrap_or_else(|| "latest".into());
    let (body, ct, digest) = get_manifest(&reg, r, &scope, &what).await?;
    let m: serde_json::Value =
        serde_json::from_slice(&body).map_err(|e| Error::invalid(format!("invalid manifest: {e}")))?;
    let media_type = match m["mediaType"].as_str().filter(|t| !t.is_empty()) {
        Some(t) => t.to_owned(),
        None => ct.split(';').next().unwrap_or("").trim().to_owned(),
    };
    let mut platforms = Vec::new();
    if let Some(cfg) = m["config"]["digest"].as_str() {
        // An image: its platform is its config's (a config that cannot be had or
        // names none gives no platform, as with dockerd).
        if let Ok(raw) = get_blob(&reg, r, &scope, cfg).await {
            if let Ok(p) = serde_json::from_slice::<OciPlatform>(&raw) {
                if p.os.as_deref().is_some_and(|o| !o.is_empty()) || p.architecture.as_deref().is_some_and(|a| !a.is_empty()) {
                    platforms.push(p);
                }
            }
        }
    } else {
        for e in m["manifests"].as_array().into_iter().flatten() {
            platforms.push(serde_json::from_value::<OciPlatform>(e["platform"].clone()).unwrap_or_default());
        }
    }
    Ok(DistributionInspect {
        descriptor: OciDescriptor {
            media_type: Some(media_type),
            digest: Some(digest),
            size: Some(body.len() as i64),
            ..Default::default()
        },
        platforms,
    })
}

/// Fetch blob `digest` of `r`'s repository whole (a config).
async fn get_blob(reg: &Registry, r: &Reference, scope: &str, digest: &str) -> Result<Vec<u8>> {
    let url = reg.url(&format!("/v2/{}/blobs/{digest}", r.path));
    let resp = reg.send(Method::GET, &url, scope, &|rb| rb).await?;
    if !resp.status().is_success() {
        return Err(status_error(resp, &format!("fetch config {digest}")).await);
    }
    Ok(resp
        .bytes()
        .await
        .map_err(|e| Error::internal(format!("read config: {e}")))?
        .to_vec())
}

/// Resolve on one registry endpoint.
async fn resolve_on(
    store: ImageStore,
    reg: Arc<Registry>,
    reference: Reference,
    want: &Platform,
) -> Result<Pull> {
    let scope = format!("repository:{}:pull", reference.path);
    let what = reference
        .digest
        .clone()
        .or_else(|| reference.tag.clone())
        .unwrap_or_else(|| "latest".into());
    let (body, ct, top_digest) = get_manifest(&reg, &reference, &scope, &what).await?;
    let m = match parse_manifest(&body, &ct, want)? {
        Manifest::Image(m) => m,
        Manifest::Child(chosen) => {
            let (body, _, _) = get_manifest(&reg, &reference, &scope, &chosen.digest).await?;
            match parse_manifest(&body, "", want)? {
                Manifest::Image(m) => m,
                Manifest::Child(_) => {
                    return Err(Error::invalid(
                        "manifest has no config (schema 1 is not supported)",
                    ))
                }
            }
        }
    };
    let config_raw = get_blob(&reg, &reference, &scope, &m.config.digest).await?;
    let layers = check_config(&m, &config_raw)?;
    Ok(Pull {
        store,
        reg,
        reference,
        scope,
        digest: top_digest,
        config_raw,
        layers,
        max_downloads: MAX_DOWNLOADS,
    })
}

/// An image manifest as the pull uses it: its config and layers.
#[derive(Debug, Clone)]
pub struct ImageManifest {
    pub config: RemoteDescriptor,
    pub layers: Vec<RemoteDescriptor>,
}

/// What a manifest body fetched for a pull is.
#[derive(Debug, Clone)]
pub enum Manifest {
    /// An image manifest.
    Image(ImageManifest),
    /// A manifest list / index: the entry for the wanted platform, to fetch next.
    Child(RemoteDescriptor),
}

/// Parse a manifest body served with `content_type` as the pull does: a list or index
/// gives the entry matching `want`, an image manifest must have a config.
pub fn parse_manifest(body: &[u8], content_type: &str, want: &Platform) -> Result<Manifest> {
    let m: RemoteManifest = serde_json::from_slice(body)
        .map_err(|e| Error::invalid(format!("invalid manifest: {e}")))?;
    let mt = if m.media_type.is_empty() {
        content_type
    } else {
        m.media_type.as_str()
    };
    if mt.starts_with(MT_DOCKER_LIST)
        || mt.starts_with(MT_OCI_INDEX)
        || (m.config.is_none() && !m.manifests.is_empty())
    {
        let chosen = m
            .manifests
            .iter()
            .find(|d| d.platform.as_ref().is_some_and(|p| want.matches(p)))
            .cloned()
            .ok_or_else(|| {
                Error::not_found(format!(
                    "no matching manifest for {} in the manifest list entries",
                    want.show()
                ))
            })?;
        return Ok(Manifest::Child(chosen));
    }
    let config = m
        .config
        .ok_or_else(|| Error::invalid("manifest has no config (schema 1 is not supported)"))?;
    Ok(Manifest::Image(ImageManifest {
        config,
        layers: m.layers,
    }))
}

/// Verify the config blob of `m` (digest, JSON, one diff id per layer, known layer
/// media types and digests); gives each layer with its diff id.
pub fn check_config(
    m: &ImageManifest,
    config_raw: &[u8],
) -> Result<Vec<(RemoteDescriptor, Digest)>> {
    if Digest::of(config_raw).as_str() != m.config.digest {
        return Err(Error::invalid(format!(
            "image config verification failed for digest {}",
            m.config.digest
        )));
    }
    check_config_content(m, config_raw)
}

/// [`check_config`] without the digest check (the part that reads the content).
pub fn check_config_content(
    m: &ImageManifest,
    config_raw: &[u8],
) -> Result<Vec<(RemoteDescriptor, Digest)>> {
    let cfg: ImageConfigFile = serde_json::from_slice(config_raw)
        .map_err(|e| Error::invalid(format!("invalid image config: {e}")))?;
    if cfg.rootfs.diff_ids.len() != m.layers.len() {
        return Err(Error::invalid(format!(
            "layers from manifest don't match image configuration: {} layers, {} diff ids",
            m.layers.len(),
            cfg.rootfs.diff_ids.len()
        )));
    }
    for l in &m.layers {
        Compression::from_media_type(&l.media_type)?;
        l.digest.parse::<Digest>()?;
    }
    Ok(m.layers.iter().cloned().zip(cfg.rootfs.diff_ids).collect())
}

/// Send a message, ignoring a client that went away.
async fn say(tx: &mpsc::Sender<JsonMessage>, m: JsonMessage) {
    let _ = tx.send(m).await;
}

fn short(d: &str) -> String {
    d.strip_prefix("sha256:")
        .unwrap_or(d)
        .chars()
        .take(12)
        .collect()
}

impl Pull {
    /// Download at most `n` (>= 1) layers at once (`max-concurrent-downloads`).
    pub fn with_max_downloads(mut self, n: usize) -> Pull {
        self.max_downloads = n.max(1);
        self
    }

    /// The image id the pull will give.
    pub fn image_id(&self) -> Digest {
        Digest::of(&self.config_raw)
    }

    /// Download, verify, extract and record. Progress goes to `tx`; the returned error
    /// (if any) is for the stream's errorDetail. Layers new to this pull are removed when
    /// it fails.
    pub async fn run(self, tx: mpsc::Sender<JsonMessage>) -> Result<()> {
        let r = &self.reference;
        let shown_tag = r
            .digest
            .clone()
            .or_else(|| r.tag.clone())
            .unwrap_or_default();
        say(
            &tx,
            JsonMessage {
                status: Some(format!("Pulling from {}", r.path)),
                id: Some(shown_tag),
                ..Default::default()
            },
        )
        .await;
        let id = self.image_id();
        let already = self.store.get(id.as_str())?.is_some();
        let tagged_here = r
            .tag
            .as_ref()
            .map(|_| {
                self.store
                    .resolve(&r.familiar())
                    .map(|rec| rec.id == id.as_str())
                    .unwrap_or(false)
            })
            .unwrap_or(already);
        let mut fresh: Vec<Digest> = Vec::new();
        if !already {
            let mut todo = Vec::new();
            for (desc, diff_id) in &self.layers {
                if self.store.has_layer(diff_id)
                    || todo
                        .iter()
                        .any(|(_, d): &(RemoteDescriptor, Digest)| d == diff_id)
                {
                    if self.store.has_layer(diff_id) {
                        say(&tx, layer_status("Already exists", &short(&desc.digest))).await;
                    }
                } else {
                    say(&tx, layer_status("Pulling fs layer", &short(&desc.digest))).await;
                    todo.push((desc.clone(), diff_id.clone()));
                }
            }
            // Three downloads (or as set) run at once; the rest wait, as Docker reports.
            for (desc, _) in todo.iter().skip(self.max_downloads) {
                say(&tx, layer_status("Waiting", &short(&desc.digest))).await;
            }
            if let Err(e) = self.download_all(&todo, &tx, &mut fresh).await {
                self.cleanup(&fresh).await;
                return Err(e);
            }
        }
        let store = self.store.clone();
        let cfg = self.config_raw.clone();
        let reference = r.clone();
        let repo_digest = format!("{}@{}", r.familiar_name(), self.digest);
        let recorded = tokio::task::spawn_blocking(move || -> Result<()> {
            let rec = store.create_image_raw(&cfg)?;
            if reference.tag.is_some() {
                store.tag(&rec.id, &reference)?;
            }
            store.add_repo_digest(&rec.id, &repo_digest)
        })
        .await
        .map_err(|e| Error::internal(e.to_string()))?;
        if let Err(e) = recorded {
            self.cleanup(&fresh).await;
            return Err(e);
        }
        for (desc, diff_id) in &self.layers {
            if let Ok(d) = desc.digest.parse::<Digest>() {
                let _ = self.store.add_layer_source(
                    diff_id,
                    LayerSource {
                        digest: d,
                        size: desc.size,
                        media_type: desc.media_type.clone(),
                        repos: vec![r.full_name()],
                        local: false,
                        urls: desc.urls.clone(),
                    },
                );
            }
        }
        say(&tx, JsonMessage::status(format!("Digest: {}", self.digest))).await;
        let status = if already && tagged_here {
            "Image is up to date for"
        } else {
            "Downloaded newer image for"
        };
        say(
            &tx,
            JsonMessage::status(format!("Status: {status} {}", r.familiar())),
        )
        .await;
        Ok(())
    }

    async fn cleanup(&self, fresh: &[Digest]) {
        let store = self.store.clone();
        let fresh = fresh.to_vec();
        let _ = tokio::task::spawn_blocking(move || {
            for d in &fresh {
                let _ = store.remove_layer_if_unused(d);
            }
        })
        .await;
    }

    async fn download_all(
        &self,
        todo: &[(RemoteDescriptor, Digest)],
        tx: &mpsc::Sender<JsonMessage>,
        fresh: &mut Vec<Digest>,
    ) -> Result<()> {
        let mut results = futures_util::stream::iter(todo.iter().cloned())
            .map(|(desc, diff_id)| {
                let tx = tx.clone();
                async move {
                    let r = self.download(&desc, &diff_id, &tx).await;
                    (desc, diff_id, r)
                }
            })
            .buffer_unordered(self.max_downloads);
        let mut first_err = None;
        // Layers unpack into directories of their own: each one as soon as it is in,
        // beside the downloads still running.
        let mut extracting = Vec::new();
        while let Some((desc, diff_id, r)) = results.next().await {
            match r {
                Ok(()) => {
                    fresh.push(diff_id.clone());
                    extracting.push(self.extract(&desc, diff_id, tx));
                }
                Err(e) => {
                    if first_err.is_none() {
                        first_err = Some(e);
                    }
                }
            }
        }
        for task in extracting {
            let r = task
                .await
                .map_err(|e| Error::internal(e.to_string()))
                .and_then(|r| r);
            if let (Err(e), None) = (r, &first_err) {
                first_err = Some(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    /// Unpack a downloaded layer on the blocking pool, reporting as Docker does.
    fn extract(
        &self,
        desc: &RemoteDescriptor,
        diff_id: Digest,
        tx: &mpsc::Sender<JsonMessage>,
    ) -> tokio::task::JoinHandle<Result<()>> {
        let (store, tx, id) = (self.store.clone(), tx.clone(), short(&desc.digest));
        tokio::spawn(async move {
            let size = store.content().size(&diff_id)?;
            say(&tx, layer_progress("Extracting", &id, size, size)).await;
            tokio::task::spawn_blocking(move || store.unpack(&diff_id))
                .await
                .map_err(|e| Error::internal(e.to_string()))??;
            say(&tx, layer_status("Pull complete", &id)).await;
            Ok(())
        })
    }

    /// The layer blob from the registry, or, when the registry does not have it (a
    /// foreign / non-distributable layer), from the first of the descriptor's `urls`
    /// that answers. The bytes are verified against the digest either way.
    async fn open_layer(&self, desc: &RemoteDescriptor) -> Result<reqwest::Response> {
        let url = self.reg.url(&format!(
            "/v2/{}/blobs/{}",
            self.reference.path, desc.digest
        ));
        let resp = self
            .reg
            .send(Method::GET, &url, &self.scope, &|rb| rb)
            .await?;
        if resp.status().is_success() {
            return Ok(resp);
        }
        let mut failures = Vec::new();
        for u in &desc.urls {
            match self.reg.get_external(u).await {
                Ok(r) if r.status().is_success() => return Ok(r),
                Ok(r) => failures.push(format!("{u}: {}", r.status())),
                Err(e) => failures.push(format!("{u}: {e}")),
            }
        }
        let e = status_error(resp, &format!("fetch layer {}", desc.digest)).await;
        if failures.is_empty() {
            Err(e)
        } else {
            Err(Error::internal(format!(
                "{e} (urls: {})",
                failures.join("; ")
            )))
        }
    }

    async fn download(
        &self,
        desc: &RemoteDescriptor,
        diff_id: &Digest,
        tx: &mpsc::Sender<JsonMessage>,
    ) -> Result<()> {
        let id = short(&desc.digest);
        let resp = self.open_layer(desc).await?;
        let total = resp.content_length().unwrap_or(desc.size);
        let compression = Compression::from_media_type(&desc.media_type)?;
        let digest: Digest = desc.digest.parse()?;
        // Bytes go to a blocking thread that decompresses and hashes as they arrive.
        // (a tokio channel: the download side sends without a hop to the blocking pool)
        let (btx, brx) = mpsc::channel::<std::io::Result<bytes::Bytes>>(64);
        let store = self.store.clone();
        let (d2, di2) = (digest.clone(), diff_id.clone());
        let worker = tokio::task::spawn_blocking(move || {
            store.ingest_layer(
                ChanReader {
                    rx: brx,
                    cur: bytes::Bytes::new(),
                },
                compression,
                &d2,
                &di2,
            )
        });
        let mut body = resp.bytes_stream();
        let mut got = 0u64;
        let mut last_report = 0u64;
        let mut net_err = None;
        while let Some(chunk) = body.next().await {
            match chunk {
                Ok(c) => {
                    got += c.len() as u64;
                    if btx.send(Ok(c)).await.is_err() {
                        break;
                    }
                    if got == total || got - last_report >= 256 * 1024 || last_report == 0 {
                        last_report = got.max(1);
                        say(tx, layer_progress("Downloading", &id, got, total)).await;
                    }
                }
                Err(e) => {
                    net_err = Some(Error::internal(format!("read layer {}: {e}", desc.digest)));
                    let _ = btx
                        .send(Err(std::io::Error::other("download failed")))
                        .await;
                    break;
                }
            }
        }
        drop(btx);
        let res = worker.await.map_err(|e| Error::internal(e.to_string()))?;
        if let Some(e) = net_err {
            return Err(e);
        }
        say(tx, layer_status("Verifying Checksum", &id)).await;
        res?;
        say(tx, layer_status("Download complete", &id)).await;
        Ok(())
    }
}

/// A blocking reader over a channel of chunks.
struct ChanReader {
    rx: mpsc::Receiver<std::io::Result<bytes::Bytes>>,
    cur: bytes::Bytes,
}

impl std::io::Read for ChanReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.cur.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(b)) => self.cur = b,
                Some(Err(e)) => return Err(e),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.cur.len());
        buf[..n].copy_from_slice(&self.cur[..n]);
        let _ = self.cur.split_to(n);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platforms() {
        let host = Platform::parse("").unwrap();
        assert_eq!(host.os, "linux");
        assert_eq!(host.architecture, config::host_arch());
        let arm = Platform::parse("linux/arm64/v8").unwrap();
        assert_eq!(arm.variant.as_deref(), Some("v8"));
        assert!(arm.matches(&Platform {
            os: "linux".into(),
            architecture: "arm64".into(),
            variant: None
        }));
        assert!(!arm.matches(&Platform {
            os: "linux".into(),
            architecture: "arm64".into(),
            variant: Some("v7".into())
        }));
        assert_eq!(Platform::parse("arm64").unwrap().os, "linux");
        assert!(Platform::parse("a/b/c/d").is_err());
        assert_eq!(arm.show(), "linux/arm64/v8");
    }

    #[test]
    fn hub_names_map_to_the_hub_api() {
        let r = Reference::parse_tagged("busybox").unwrap();
        assert_eq!(
            (r.domain.as_str(), r.path.as_str()),
            ("docker.io", "library/busybox")
        );
        assert_eq!(
            crate::client::endpoint(&r.domain, &[]),
            "https://registry-1.docker.io"
        );
        assert_eq!(short("sha256:0123456789abcdef"), "0123456789ab");
    }
}
