//! Manifest, tag list, catalog and referrers endpoints.

use std::sync::Arc;

use http::Request;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use serde_json::json;

use super::blobs::parse_digest;
use super::{
    builder, empty, finish, full, header_str, json_response, location, query_get, query_pairs,
    HResult, State,
};
use crate::digest::{valid_tag, Algorithm, Digest};
use crate::error::{Code, OciError};
use crate::manifest::{self, Kind, EMPTY_JSON_DIGEST};
use crate::storage::ManifestMeta;

/// Largest manifest accepted (the spec's suggested 4 MiB).
const MAX_MANIFEST: usize = 4 * 1024 * 1024;

enum Reference {
    Tag(String),
    Digest(Digest),
}

fn parse_reference(r: &str) -> Result<Reference, OciError> {
    if r.contains(':') {
        return parse_digest(r).map(Reference::Digest);
    }
    if valid_tag(r) {
        return Ok(Reference::Tag(r.to_string()));
    }
    Err(
        OciError::msg(Code::ManifestInvalid, format!("invalid tag {r:?}"))
            .detail(json!({ "tag": r })),
    )
}

fn manifest_unknown(r: &str) -> OciError {
    OciError::new(Code::ManifestUnknown).detail(json!({ "reference": r }))
}

async fn resolve(state: &Arc<State>, name: &str, r: &str) -> Result<Digest, OciError> {
    match parse_reference(r)? {
        Reference::Digest(d) => Ok(d),
        Reference::Tag(t) => state
            .store
            .resolve_tag(name, &t)?
            .ok_or_else(|| manifest_unknown(r)),
    }
}

pub(crate) async fn get(state: &Arc<State>, name: &str, r: &str, head: bool) -> HResult {
    let d = resolve(state, name, r).await?;
    let (meta, bytes) = state
        .store
        .read_manifest(name, &d)?
        .ok_or_else(|| manifest_unknown(r))?;
    let b = builder(200)
        .header("Content-Type", meta.media_type)
        .header("Content-Length", bytes.len())
        .header("Docker-Content-Digest", d.to_string())
        .header("ETag", format!("\"{d}\""));
    finish(b, if head { empty() } else { full(bytes) })
}

fn blob_missing(d: &Digest) -> OciError {
    OciError::msg(
        Code::ManifestBlobUnknown,
        format!("blob unknown to registry: {d}"),
    )
    .detail(json!({ "digest": d.to_string() }))
}

/// Check that what `m` references exists in repository `name` (as the spec lets
/// a registry require), except its subject and non-distributable layers.
fn check_references(
    st: &crate::storage::Store,
    name: &str,
    m: &manifest::Manifest,
) -> Result<(), OciError> {
    let empty_json: Digest = EMPTY_JSON_DIGEST.parse().expect("constant digest");
    let blobs = m
        .config
        .iter()
        .chain(m.layers.iter().filter(|l| !l.is_non_distributable()));
    for desc in blobs {
        if st.repo_blob(name, &desc.digest).is_some() {
            continue;
        }
        if desc.digest == empty_json {
            // the well-known empty JSON blob: materialize it rather than fail
            st.put_blob_bytes(b"{}", &empty_json)?;
            st.link_blob(name, &empty_json)?;
            continue;
        }
        return Err(blob_missing(&desc.digest));
    }
    if m.kind == Kind::Index {
        for child in &m.manifests {
            if st.manifest_meta(name, &child.digest)?.is_none() {
                return Err(blob_missing(&child.digest));
            }
        }
    }
    Ok(())
}

pub(crate) async fn put(
    state: &Arc<State>,
    name: &str,
    r: &str,
    req: Request<Incoming>,
) -> HResult {
    let reference = parse_reference(r)?;
    let content_type = header_str(&req, "content-type").unwrap_or("").to_string();
    let q = query_pairs(&req);
    let mut tags: Vec<String> = Vec::new();
    for (k, v) in &q {
        if k == "tag" {
            if !valid_tag(v) {
                return Err(OciError::msg(
                    Code::ManifestInvalid,
                    format!("invalid tag {v:?}"),
                ));
            }
            tags.push(v.clone());
        }
    }
    let param_tags = tags.clone();
    let body = http_body_util::Limited::new(req.into_body(), MAX_MANIFEST);
    let bytes = match body.collect().await {
        Ok(c) => c.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            return Err(OciError::msg(Code::SizeInvalid, "manifest too large").with_status(413));
        }
        Err(e) => {
            return Err(OciError::msg(
                Code::ManifestInvalid,
                format!("reading manifest: {e}"),
            ))
        }
    };
    let alg = match &reference {
        Reference::Digest(d) => d.algorithm(),
        Reference::Tag(_) => Algorithm::Sha256,
    };
    let d = alg.digest(&bytes);
    match &reference {
        Reference::Digest(want) if want != &d => {
            return Err(OciError::msg(
                Code::DigestInvalid,
                format!("manifest digest is {d}, not {want}"),
            )
            .detail(json!({ "digest": want.to_string() })));
        }
        Reference::Tag(t) => tags.push(t.clone()),
        _ => {}
    }
    let m = manifest::parse(&bytes, &content_type)?;
    let meta = ManifestMeta {
        media_type: m.media_type.clone(),
        subject: m.subject.as_ref().map(|s| s.digest.to_string()),
    };
    let (n, dd) = (name.to_string(), d.clone());
    state
        .blocking(move |st| {
            check_references(st, &n, &m)?;
            st.put_manifest(&n, &dd, &bytes, &meta, &tags)?;
            Ok(())
        })
        .await?;
    let mut b = location(builder(201), &format!("/v2/{name}/manifests/{d}"))
        .header("Docker-Content-Digest", d.to_string())
        .header("Content-Length", 0);
    if let Some(s) = state.store.manifest_meta(name, &d)?.and_then(|m| m.subject) {
        b = b.header("OCI-Subject", s);
    }
    if !param_tags.is_empty() {
        b = b.header("OCI-Tag", param_tags.join(", "));
    }
    finish(b, empty())
}

pub(crate) async fn delete(state: &Arc<State>, name: &str, r: &str) -> HResult {
    let removed = match parse_reference(r)? {
        Reference::Tag(t) => state.store.delete_tag(name, &t)?,
        Reference::Digest(d) => {
            let n = name.to_string();
            state
                .blocking(move |st| Ok(st.delete_manifest(&n, &d)?))
                .await?
        }
    };
    if !removed {
        return Err(manifest_unknown(r));
    }
    finish(builder(202).header("Content-Length", 0), empty())
}

/// Apply `n` and `last` to a sorted list; returns the page and the `last` of a
/// next page if there is one.
/// A page of names and, if more follow, (n, last) for the next page's link.
type Page = (Vec<String>, Option<(usize, String)>);

fn paginate(all: Vec<String>, q: &[(String, String)]) -> Result<Page, OciError> {
    let n =
        match query_get(q, "n") {
            Some(v) => Some(v.parse::<usize>().map_err(|_| {
                OciError::new(Code::PaginationNumberInvalid).detail(json!({ "n": v }))
            })?),
            None => None,
        };
    let mut items: Vec<String> = match query_get(q, "last") {
        Some(last) => all.into_iter().filter(|t| t.as_str() > last).collect(),
        None => all,
    };
    let mut next = None;
    if let Some(n) = n {
        if items.len() > n {
            items.truncate(n);
            if let Some(l) = items.last() {
                next = Some((n, l.clone()));
            }
        }
    }
    Ok((items, next))
}

fn link_header(path: &str, n: usize, last: &str) -> String {
    let last: String = url::form_urlencoded::byte_serialize(last.as_bytes()).collect();
    format!("<{path}?n={n}&last={last}>; rel=\"next\"")
}

pub(crate) async fn tags(state: &Arc<State>, name: &str, req: &Request<Incoming>) -> HResult {
    if !state.store.repo_exists(name) {
        return Err(OciError::new(Code::NameUnknown).detail(json!({ "name": name })));
    }
    let (page, next) = paginate(state.store.tags(name)?, &query_pairs(req))?;
    let mut resp = json_response(
        200,
        "application/json",
        &json!({ "name": name, "tags": page }),
    )?;
    if let Some((n, last)) = next {
        let v = link_header(&format!("/v2/{name}/tags/list"), n, &last);
        resp.headers_mut().insert(
            "Link",
            v.parse().map_err(|_| OciError::new(Code::Internal))?,
        );
    }
    Ok(resp)
}

pub(crate) async fn catalog(state: &Arc<State>, req: &Request<Incoming>) -> HResult {
    let all = state.blocking(|st| Ok(st.repositories()?)).await?;
    let (page, next) = paginate(all, &query_pairs(req))?;
    let mut resp = json_response(200, "application/json", &json!({ "repositories": page }))?;
    if let Some((n, last)) = next {
        let v = link_header("/v2/_catalog", n, &last);
        resp.headers_mut().insert(
            "Link",
            v.parse().map_err(|_| OciError::new(Code::Internal))?,
        );
    }
    Ok(resp)
}

pub(crate) async fn referrers(
    state: &Arc<State>,
    name: &str,
    digest: &str,
    req: &Request<Incoming>,
) -> HResult {
    let subject = parse_digest(digest)?;
    let q = query_pairs(req);
    let filter = query_get(&q, "artifactType").map(str::to_string);
    let mut descs = Vec::new();
    for d in state.store.referrers(name, &subject)? {
        let Some((meta, bytes)) = state.store.read_manifest(name, &d)? else {
            continue;
        };
        let Ok(m) = manifest::parse(&bytes, &meta.media_type) else {
            continue;
        };
        let artifact_type = match (&m.artifact_type, m.kind) {
            (Some(a), _) => Some(a.clone()),
            (None, Kind::Image) => m.config.as_ref().map(|c| c.media_type.clone()),
            (None, Kind::Index) => None,
        };
        if let Some(f) = &filter {
            if artifact_type.as_deref() != Some(f.as_str()) {
                continue;
            }
        }
        let mut desc =
            json!({ "mediaType": meta.media_type, "digest": d.to_string(), "size": bytes.len() });
        if let Some(a) = artifact_type {
            desc["artifactType"] = json!(a);
        }
        if let Some(a) = &m.annotations {
            desc["annotations"] = json!(a);
        }
        descs.push(desc);
    }
    let index = json!({ "schemaVersion": 2, "mediaType": manifest::OCI_INDEX, "manifests": descs });
    let mut resp = json_response(200, manifest::OCI_INDEX, &index)?;
    if filter.is_some() {
        resp.headers_mut().insert(
            "OCI-Filters-Applied",
            http::HeaderValue::from_static("artifactType"),
        );
    }
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn pagination() {
        let all: Vec<String> = ["a", "b", "c", "d"].iter().map(|s| s.to_string()).collect();
        assert_eq!(paginate(all.clone(), &q(&[])).unwrap(), (all.clone(), None));
        assert_eq!(
            paginate(all.clone(), &q(&[("n", "2")])).unwrap(),
            (vec!["a".into(), "b".into()], Some((2, "b".into())))
        );
        assert_eq!(
            paginate(all.clone(), &q(&[("n", "2"), ("last", "b")])).unwrap(),
            (vec!["c".into(), "d".into()], None)
        );
        assert_eq!(
            paginate(all.clone(), &q(&[("n", "0")])).unwrap(),
            (vec![], None)
        );
        assert_eq!(
            paginate(all.clone(), &q(&[("last", "c")])).unwrap(),
            (vec!["d".into()], None)
        );
        assert!(paginate(all, &q(&[("n", "x")])).is_err());
    }
}
