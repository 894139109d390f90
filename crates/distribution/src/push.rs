//! Push: layers as gzip blobs (the same blob every time, see
//! `ImageStore::compressed_layer`), HEAD first, cross-repository mount when the layer
//! came from another repository of the same registry, then the config and a Docker
//! schema 2 manifest. Foreign / non-distributable layers are skipped ("Skipped foreign
//! layer"): the manifest carries the descriptor they were pulled with.

use berth_api::stream::JsonMessage;
use berth_content::Digest;
use berth_errdefs::{Error, Result};
use berth_image::layers::MEDIA_TYPE_DOCKER_LAYER_GZIP;
use berth_image::{ImageRecord, ImageStore, LayerSource, Reference};
use futures_util::StreamExt;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::client::{status_error, Credentials, Registry};
use crate::progress::{layer_progress, layer_status};
use crate::pull::MT_DOCKER_MANIFEST;

const MT_DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";

/// What a push of one tag produced.
#[derive(Debug, Clone)]
pub struct Pushed {
    pub tag: String,
    pub digest: String,
    pub size: usize,
}

async fn say(tx: &mpsc::Sender<JsonMessage>, m: JsonMessage) {
    let _ = tx.send(m).await;
}

struct Target<'a> {
    reg: &'a Registry,
    repo: &'a Reference,
    scope: String,
}

impl Target<'_> {
    async fn blob_exists(&self, d: &Digest) -> Result<bool> {
        let url = self.reg.url(&format!("/v2/{}/blobs/{d}", self.repo.path));
        let resp = self
            .reg
            .send(Method::HEAD, &url, &self.scope, &|rb| rb)
            .await?;
        match resp.status() {
            s if s.is_success() => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            _ => Err(status_error(resp, &format!("check blob {d}")).await),
        }
    }

    /// Try a cross-repository mount; true when the registry mounted it.
    async fn mount(&self, d: &Digest, from: &str) -> Result<bool> {
        let url = self.reg.url(&format!(
            "/v2/{}/blobs/uploads/?mount={d}&from={from}",
            self.repo.path
        ));
        let resp = self
            .reg
            .send(Method::POST, &url, &self.scope, &|rb| {
                rb.header("Content-Length", "0")
            })
            .await?;
        Ok(resp.status() == StatusCode::CREATED)
    }

    /// Upload a blob from the content store in one PUT, reporting progress.
    async fn upload(
        &self,
        store: &ImageStore,
        d: &Digest,
        id: &str,
        tx: &mpsc::Sender<JsonMessage>,
    ) -> Result<()> {
        let url = self
            .reg
            .url(&format!("/v2/{}/blobs/uploads/", self.repo.path));
        let resp = self
            .reg
            .send(Method::POST, &url, &self.scope, &|rb| {
                rb.header("Content-Length", "0")
            })
            .await?;
        if resp.status() != StatusCode::ACCEPTED {
            return Err(status_error(resp, &format!("start upload of {d}")).await);
        }
        let loc = resp
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| Error::internal("upload without Location"))?
            .to_owned();
        let loc = if loc.starts_with('/') {
            self.reg.url(&loc)
        } else {
            loc
        };
        let sep = if loc.contains('?') { '&' } else { '?' };
        let put_url = format!("{loc}{sep}digest={d}");
        let total = store.content().size(d)?;
        let path = store.content().path(d);
        // The body is re-read on an auth retry, so build it from the file each time.
        let (ptx, mut prx) = mpsc::unbounded_channel::<u64>();
        let id2 = id.to_owned();
        let tx2 = tx.clone();
        let reporter = tokio::spawn(async move {
            let mut last = 0;
            while let Some(n) = prx.recv().await {
                if n == total || n - last >= 512 * 1024 {
                    last = n;
                    say(&tx2, layer_progress("Pushing", &id2, n, total)).await;
                }
            }
        });
        let build = |rb: reqwest::RequestBuilder| {
            let path = path.clone();
            let ptx = ptx.clone();
            let stream =
                futures_util::stream::once(async move { tokio::fs::File::open(path).await })
                    .map(|f| match f {
                        // Large reads: each is a hop to tokio's blocking pool.
                        Ok(f) => {
                            tokio_util::io::ReaderStream::with_capacity(f, 1 << 20).left_stream()
                        }
                        Err(e) => futures_util::stream::once(async move { Err(e) }).right_stream(),
                    })
                    .flatten()
                    .scan(0u64, move |n, c| {
                        if let Ok(c) = &c {
                            *n += c.len() as u64;
                            let _ = ptx.send(*n);
                        }
                        futures_util::future::ready(Some(c))
                    });
            rb.header("Content-Type", "application/octet-stream")
                .header("Content-Length", total.to_string())
                .body(reqwest::Body::wrap_stream(stream))
        };
        let resp = self
            .reg
            .send(Method::PUT, &put_url, &self.scope, &build)
            .await?;
        drop(ptx);
        let _ = reporter.await;
        if resp.status() != StatusCode::CREATED {
            return Err(status_error(resp, &format!("upload {d}")).await);
        }
        Ok(())
    }
}

/// Push `rec` as `reference` (which carries the tag).
pub async fn push(
    store: ImageStore,
    rec: &ImageRecord,
    reference: &Reference,
    creds: Credentials,
    insecure: &[String],
    max_uploads: usize,
    tx: &mpsc::Sender<JsonMessage>,
) -> Result<Pushed> {
    let reg = Registry::connect(&reference.domain, creds, insecure).await?;
    let tag = reference.tag.clone().unwrap_or_else(|| "latest".into());
    // Mount sources in the same registry need pull access too.
    let mut mount_scopes: Vec<String> = Vec::new();
    let mut sources: Vec<(Digest, Option<LayerSource>)> = Vec::new();
    for l in &rec.layers {
        // Foreign / non-distributable layers are never uploaded: their descriptor is.
        if let Some(f) = store.foreign_layer(l) {
            sources.push((l.clone(), Some(f)));
            continue;
        }
        // Prefer a blob this registry is known to hold, then one kept locally.
        let all = store.layer_sources(l);
        let prefix = format!("{}/", reference.domain);
        let known = all
            .iter()
            .find(|s| s.repos.iter().any(|r| r.starts_with(&prefix)))
            .or_else(|| all.iter().find(|s| s.local))
            .cloned();
        if let Some(s) = &known {
            for r in &s.repos {
                if let Some(p) = r.strip_prefix(&format!("{}/", reference.domain)) {
                    if p != reference.path && !mount_scopes.iter().any(|m| m.contains(p)) {
                        mount_scopes.push(format!("repository:{p}:pull"));
                    }
                }
            }
        }
        sources.push((l.clone(), known));
    }
    let mut scope = format!("repository:{}:pull,push", reference.path);
    for m in &mount_scopes {
        scope.push(' ');
        scope.push_str(m);
    }
    let t = Target {
        reg: &reg,
        repo: reference,
        scope,
    };
    let mut layers_json = Vec::new();
    let mut plan = Vec::new();
    for (diff_id, known) in sources.iter().rev() {
        // Docker keys push progress by the layer's diff id.
        let id = diff_id.short().to_owned();
        say(tx, layer_status("Preparing", &id)).await;
        plan.push((diff_id.clone(), known.clone(), id));
    }
    plan.reverse();
    // Compress the layers nobody has a blob of yet, all at once on the blocking pool:
    // compression is what bounds a first push, and it uses every core this way.
    let mut compressing: std::collections::HashMap<
        Digest,
        tokio::task::JoinHandle<Result<LayerSource>>,
    > = plan
        .iter()
        .filter(|(_, known, _)| known.is_none())
        .map(|(diff_id, _, _)| {
            let (st, d) = (store.clone(), diff_id.clone());
            (
                diff_id.clone(),
                tokio::task::spawn_blocking(move || st.compressed_layer(&d)),
            )
        })
        .collect();
    // Each layer on its own: up to `max_uploads` go at once (dockerd's
    // max-concurrent-uploads); the manifest lists them in order all the same.
    let jobs: Vec<_> = plan
        .iter()
        .map(|(diff_id, known, id)| (diff_id, known, id, compressing.remove(diff_id)))
        .collect();
    let (t, store) = (&t, &store);
    use futures_util::{StreamExt, TryStreamExt};
    // (futures built in a loop, not by a closure over borrowed data: the push stays
    // a `Send` future for tokio::spawn)
    let mut uploads = Vec::with_capacity(jobs.len());
    for (diff_id, known, id, job) in jobs {
        uploads.push(async move {
            if let Some(f) = known.as_ref().filter(|s| s.is_foreign()) {
                say(tx, layer_status("Skipped foreign layer", id)).await;
                let mut d = json!({"mediaType": f.media_type, "size": f.size, "digest": f.digest});
                if !f.urls.is_empty() {
                    d["urls"] = json!(f.urls);
                }
                return Ok::<Value, Error>(d);
            }
            // A blob the registry may already hold (pulled from it, or pushed earlier).
            let mut blob: Option<LayerSource> = None;
            if let Some(s) = known {
                if t.blob_exists(&s.digest).await? {
                    say(tx, layer_status("Layer already exists", id)).await;
                    blob = Some(s.clone());
                } else if let Some(from) = s
                    .repos
                    .iter()
                    .find_map(|r| r.strip_prefix(&format!("{}/", reference.domain)))
                {
                    if from != reference.path && t.mount(&s.digest, from).await? {
                        say(tx, layer_status(&format!("Mounted from {from}"), id)).await;
                        blob = Some(s.clone());
                    }
                }
            }
            let blob = match blob {
                Some(b) => b,
                None => {
                    let job = match job {
                        Some(job) => job,
                        None => {
                            let (st, d) = (store.clone(), diff_id.clone());
                            tokio::task::spawn_blocking(move || st.compressed_layer(&d))
                        }
                    };
                    let local = job.await.map_err(|e| Error::internal(e.to_string()))??;
                    if t.blob_exists(&local.digest).await? {
                        say(tx, layer_status("Layer already exists", id)).await;
                    } else {
                        t.upload(store, &local.digest, id, tx).await?;
                        say(tx, layer_status("Pushed", id)).await;
                    }
                    local
                }
            };
            let _ = store.add_layer_source(
                diff_id,
                LayerSource {
                    repos: vec![reference.full_name()],
                    ..blob.clone()
                },
            );
            let mt = if blob.media_type.ends_with("gzip") {
                MEDIA_TYPE_DOCKER_LAYER_GZIP
            } else {
                blob.media_type.as_str()
            };
            Ok(json!({"mediaType": mt, "size": blob.size, "digest": blob.digest}))
        });
    }
    let pushed: Vec<Value> = futures_util::stream::iter(uploads)
        .buffered(max_uploads.max(1))
        .try_collect()
        .await?;
    layers_json.extend(pushed);
    // The config.
    let cfg_digest = rec.digest();
    if !t.blob_exists(&cfg_digest).await? {
        t.upload(store, &cfg_digest, cfg_digest.short(), &mpsc::channel(1).0)
            .await?;
    }
    let cfg_size = store.content().size(&cfg_digest)?;
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": MT_DOCKER_MANIFEST,
        "config": {"mediaType": MT_DOCKER_CONFIG, "size": cfg_size, "digest": cfg_digest},
        "layers": layers_json,
    });
    let body = serde_json::to_vec_pretty(&manifest).map_err(|e| Error::internal(e.to_string()))?;
    let digest = Digest::of(&body).to_string();
    let url = reg.url(&format!("/v2/{}/manifests/{tag}", reference.path));
    let b2 = body.clone();
    let resp = reg
        .send(Method::PUT, &url, &t.scope, &|rb| {
            rb.header("Content-Type", MT_DOCKER_MANIFEST)
                .body(b2.clone())
        })
        .await?;
    if resp.status() != StatusCode::CREATED {
        return Err(status_error(resp, "put manifest").await);
    }
    store.add_repo_digest(&rec.id, &format!("{}@{digest}", reference.familiar_name()))?;
    say(
        tx,
        JsonMessage::status(format!("{tag}: digest: {digest} size: {}", body.len())),
    )
    .await;
    say(
        tx,
        JsonMessage {
            progress_detail: Some(Default::default()),
            aux: Some(json!({"Tag": tag, "Digest": digest, "Size": body.len()})),
            ..Default::default()
        },
    )
    .await;
    Ok(Pushed {
        tag,
        digest,
        size: body.len(),
    })
}
