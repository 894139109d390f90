//! Blob endpoints: pull (with ranges), delete, uploads (monolithic, chunked,
//! streamed), cross-repository mount.

use std::io::SeekFrom;
use std::sync::Arc;

use futures_util::TryStreamExt as _;
use http::Request;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::{Frame, Incoming};
use tokio::io::{AsyncSeekExt, AsyncWriteExt};

use super::{builder, empty, finish, header_str, location, query_get, query_pairs, HResult, State};
use crate::digest::{hash_file, Digest, DigestError, Hasher};
use crate::error::{Code, OciError};
use crate::request::{parse_content_range, parse_range};

pub(crate) fn parse_digest(s: &str) -> Result<Digest, OciError> {
    s.parse::<Digest>().map_err(|e| {
        let msg = match &e {
            DigestError::Unsupported(_) => format!("unsupported digest algorithm: {s}"),
            DigestError::Format(_) => format!("invalid digest: {s}"),
        };
        OciError::msg(Code::DigestInvalid, msg).detail(serde_json::json!({ "digest": s }))
    })
}

fn blob_unknown(d: &Digest) -> OciError {
    OciError::new(Code::BlobUnknown).detail(serde_json::json!({ "digest": d.to_string() }))
}

fn upload_unknown(id: &str) -> OciError {
    OciError::new(Code::BlobUploadUnknown).detail(serde_json::json!({ "uuid": id }))
}

pub(crate) async fn get(
    state: &Arc<State>,
    name: &str,
    digest: &str,
    req: &Request<Incoming>,
    head: bool,
) -> HResult {
    let d = parse_digest(digest)?;
    let size = state
        .store
        .repo_blob(name, &d)
        .ok_or_else(|| blob_unknown(&d))?;
    let range = match header_str(req, "range") {
        Some(h) => match parse_range(h, size) {
            Ok(r) => r,
            Err(_) => {
                let e = OciError::msg(Code::RangeInvalid, "requested range not satisfiable");
                let b = builder(416).header("Content-Range", format!("bytes */{size}"));
                let body = e.body();
                return finish(
                    b.header("Content-Type", "application/json"),
                    super::full(body),
                );
            }
        },
        None => None,
    };
    let (status, start, len) = match range {
        Some((s, e)) => (206, s, e - s + 1),
        None => (200, 0, size),
    };
    let mut b = builder(status)
        .header("Content-Type", "application/octet-stream")
        .header("Content-Length", len)
        .header("Docker-Content-Digest", d.to_string())
        .header("ETag", format!("\"{d}\""))
        .header("Accept-Ranges", "bytes");
    if let Some((s, e)) = range {
        b = b.header("Content-Range", format!("bytes {s}-{e}/{size}"));
    }
    if head {
        return finish(b, empty());
    }
    let f = std::fs::File::open(state.store.blob_path(&d)).map_err(|_| blob_unknown(&d))?;
    finish(b, file_body(f, start, len))
}

/// `len` bytes of `f` from `start` as a response body: one blocking task reads the
/// whole range in 1 MiB pieces straight into the buffers that are sent (no copy
/// through a tokio file's own buffer, no trip to the blocking pool per piece), a
/// few pieces ahead of the connection.
fn file_body(mut f: std::fs::File, start: u64, len: u64) -> super::Body {
    use std::io::{Read, Seek};
    const PIECE: u64 = 1024 * 1024;
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<bytes::Bytes>>(4);
    tokio::task::spawn_blocking(move || {
        if start > 0 {
            if let Err(e) = f.seek(SeekFrom::Start(start)) {
                let _ = tx.blocking_send(Err(e));
                return;
            }
        }
        let mut left = len;
        while left > 0 {
            let want = left.min(PIECE) as usize;
            let mut buf = bytes::BytesMut::zeroed(want);
            let got = match f.read(&mut buf) {
                Ok(0) => Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "blob shorter than its size",
                )),
                Ok(n) => Ok(n),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => Err(e),
            };
            let piece = got.map(|n| {
                buf.truncate(n);
                left -= n as u64;
                buf.freeze()
            });
            let failed = piece.is_err();
            if tx.blocking_send(piece).is_err() || failed {
                return;
            }
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|piece| (piece, rx))
    })
    .map_ok(Frame::data);
    StreamBody::new(stream).boxed()
}

pub(crate) async fn delete(state: &Arc<State>, name: &str, digest: &str) -> HResult {
    let d = parse_digest(digest)?;
    if !state.store.unlink_blob(name, &d)? {
        return Err(blob_unknown(&d));
    }
    finish(builder(202).header("Content-Length", 0), empty())
}

/// Append a request body to `file`, feeding `hasher`; returns the bytes written.
async fn append_body(
    body: Incoming,
    file: &mut tokio::fs::File,
    mut hasher: Option<&mut Hasher>,
) -> Result<u64, OciError> {
    let mut body = body;
    let mut n = 0u64;
    // Frames are small; each write to a tokio file is a trip to the blocking pool,
    // so they are gathered into 1 MiB writes.
    const BATCH: usize = 1024 * 1024;
    let mut pending: Vec<u8> = Vec::with_capacity(BATCH);
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            OciError::msg(
                Code::BlobUploadInvalid,
                format!("reading request body: {e}"),
            )
        })?;
        if let Ok(data) = frame.into_data() {
            if let Some(h) = hasher.as_deref_mut() {
                h.update(&data);
            }
            n += data.len() as u64;
            pending.extend_from_slice(&data);
            if pending.len() >= BATCH {
                file.write_all(&pending).await?;
                pending.clear();
            }
        }
    }
    file.write_all(&pending).await?;
    file.flush().await?;
    Ok(n)
}

fn upload_accepted(status: u16, name: &str, id: &str, size: u64) -> HResult {
    let b = location(builder(status), &format!("/v2/{name}/blobs/uploads/{id}"))
        .header("Range", format!("0-{}", size.saturating_sub(1)))
        .header("Docker-Upload-UUID", id)
        .header("Content-Length", 0);
    finish(b, empty())
}

fn blob_created(name: &str, d: &Digest) -> HResult {
    let b = location(builder(201), &format!("/v2/{name}/blobs/{d}"))
        .header("Docker-Content-Digest", d.to_string())
        .header("Content-Length", 0);
    finish(b, empty())
}

/// Verify the finished upload against `want`, then move it into the blob store and
/// link it; on mismatch the upload is removed.
async fn complete(
    state: &Arc<State>,
    name: &str,
    id: &str,
    want: &Digest,
    hashed: Option<Digest>,
) -> HResult {
    let data = state.store.upload_data(id);
    let got = match hashed {
        Some(d) => d,
        None => {
            let (p, alg) = (data.clone(), want.algorithm());
            state.blocking(move |_| Ok(hash_file(&p, alg)?)).await?
        }
    };
    if &got != want {
        state.forget_upload(id);
        return Err(OciError::msg(
            Code::DigestInvalid,
            format!("digest mismatch: content is {got}, expected {want}"),
        )
        .detail(serde_json::json!({ "digest": want.to_string() })));
    }
    let (n, w) = (name.to_string(), want.clone());
    state
        .blocking(move |s| {
            s.commit_blob_file(&data, &w)?;
            s.link_blob(&n, &w)?;
            Ok(())
        })
        .await?;
    state.forget_upload(id);
    blob_created(name, want)
}

pub(crate) async fn start_upload(
    state: &Arc<State>,
    name: &str,
    req: Request<Incoming>,
) -> HResult {
    let q = query_pairs(&req);
    if let Some(m) = query_get(&q, "mount") {
        if let Ok(d) = m.parse::<Digest>() {
            let present = match query_get(&q, "from") {
                Some(from) => {
                    crate::digest::valid_repo_name(from)
                        && state.store.repo_blob(from, &d).is_some()
                }
                None => state.store.blob_size(&d).is_some(),
            };
            if present {
                state.store.link_blob(name, &d)?;
                return blob_created(name, &d);
            }
        }
        let id = state.store.new_upload(name)?;
        return upload_accepted(202, name, &id, 0);
    }
    let want = query_get(&q, "digest").map(parse_digest).transpose()?;
    let id = state.store.new_upload(name)?;
    let Some(want) = want else {
        return upload_accepted(202, name, &id, 0);
    };
    // monolithic upload in the POST itself
    let mut f = tokio::fs::OpenOptions::new()
        .append(true)
        .open(state.store.upload_data(&id))
        .await?;
    let mut h = want.algorithm().hasher();
    if let Err(e) = append_body(req.into_body(), &mut f, Some(&mut h)).await {
        state.forget_upload(&id);
        return Err(e);
    }
    drop(f);
    complete(state, name, &id, &want, Some(h.finish())).await
}

/// Append a chunk to upload `id`, checking its `Content-Range` against the current
/// size. Returns (new size, hash if the whole upload was hashed while writing).
async fn write_chunk(
    state: &Arc<State>,
    name: &str,
    id: &str,
    req: Request<Incoming>,
    mut hasher: Option<Hasher>,
) -> Result<(u64, Option<Digest>), OciError> {
    let size = state
        .store
        .upload_size(name, id)
        .ok_or_else(|| upload_unknown(id))?;
    let range = match header_str(&req, "content-range") {
        Some(h) => Some(parse_content_range(h).ok_or_else(|| range_error(size))?),
        None => None,
    };
    let content_length: Option<u64> =
        header_str(&req, "content-length").and_then(|v| v.trim().parse().ok());
    if let Some((start, end)) = range {
        let want_len = end - start + 1;
        if start != size || content_length.is_some_and(|l| l != want_len) {
            return Err(range_error(size));
        }
    }
    if size != 0 {
        hasher = None;
    }
    let mut f = tokio::fs::OpenOptions::new()
        .write(true)
        .open(state.store.upload_data(id))
        .await?;
    f.seek(SeekFrom::Start(size)).await?;
    let written = append_body(req.into_body(), &mut f, hasher.as_mut()).await;
    let bad_len = match (&written, range) {
        (Ok(n), Some((s, e))) => *n != e - s + 1,
        _ => false,
    };
    if written.is_err() || bad_len {
        // roll back to where the chunk started
        f.set_len(size).await?;
        written?;
        return Err(range_error(size));
    }
    let n = written?;
    Ok((size + n, hasher.map(Hasher::finish)))
}

fn range_error(size: u64) -> OciError {
    OciError::msg(
        Code::RangeInvalid,
        format!("chunk does not start at the current upload offset {size}"),
    )
    .detail(serde_json::json!({ "uploadedBytes": size }))
}

pub(crate) async fn patch_upload(
    state: &Arc<State>,
    name: &str,
    id: &str,
    req: Request<Incoming>,
) -> HResult {
    let lock = state.upload_lock(id);
    let _g = lock.lock().await;
    match write_chunk(state, name, id, req, None).await {
        Ok((size, _)) => upload_accepted(202, name, id, size),
        Err(e) if e.code == Code::RangeInvalid => {
            let size = state.store.upload_size(name, id).unwrap_or(0);
            let b = location(builder(416), &format!("/v2/{name}/blobs/uploads/{id}"))
                .header("Range", format!("0-{}", size.saturating_sub(1)))
                .header("Docker-Upload-UUID", id)
                .header("Content-Type", "application/json");
            finish(b, super::full(e.body()))
        }
        Err(e) => Err(e),
    }
}

pub(crate) async fn put_upload(
    state: &Arc<State>,
    name: &str,
    id: &str,
    req: Request<Incoming>,
) -> HResult {
    let lock = state.upload_lock(id);
    let _g = lock.lock().await;
    if state.store.upload_size(name, id).is_none() {
        return Err(upload_unknown(id));
    }
    let q = query_pairs(&req);
    let want = match query_get(&q, "digest") {
        Some(d) => parse_digest(d)?,
        None => {
            return Err(OciError::msg(
                Code::DigestInvalid,
                "digest parameter is required to complete an upload",
            ))
        }
    };
    let (_, hashed) = write_chunk(state, name, id, req, Some(want.algorithm().hasher())).await?;
    complete(state, name, id, &want, hashed).await
}

pub(crate) async fn upload_status(state: &Arc<State>, name: &str, id: &str) -> HResult {
    let size = state
        .store
        .upload_size(name, id)
        .ok_or_else(|| upload_unknown(id))?;
    upload_accepted(204, name, id, size)
}

pub(crate) async fn cancel_upload(state: &Arc<State>, name: &str, id: &str) -> HResult {
    let lock = state.upload_lock(id);
    let _g = lock.lock().await;
    state
        .store
        .upload_size(name, id)
        .ok_or_else(|| upload_unknown(id))?;
    state.forget_upload(id);
    finish(builder(204).header("Content-Length", 0), empty())
}
