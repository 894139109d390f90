//! The HTTP side: connection loop (plain or TLS), authentication, routing.

mod blobs;
mod manifests;

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_rustls::rustls;

use crate::auth::Htpasswd;
use crate::digest::valid_repo_name;
use crate::error::{Code, OciError};
use crate::request::{parse_route, Route};
use crate::storage::Store;
use crate::ServeConfig;

pub(crate) type Body = BoxBody<Bytes, std::io::Error>;
pub(crate) type Resp = Response<Body>;
pub(crate) type HResult = Result<Resp, OciError>;

pub(crate) struct State {
    pub store: Store,
    auth: Option<Htpasswd>,
    upload_locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl State {
    /// A lock serializing requests on one upload session.
    pub fn upload_lock(&self, id: &str) -> Arc<tokio::sync::Mutex<()>> {
        self.upload_locks
            .lock()
            .expect("upload locks")
            .entry(id.to_string())
            .or_default()
            .clone()
    }
    pub fn forget_upload(&self, id: &str) {
        self.upload_locks.lock().expect("upload locks").remove(id);
        self.store.remove_upload(id);
    }
    /// Run blocking storage work off the async workers.
    pub async fn blocking<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&Store) -> Result<T, OciError> + Send + 'static,
    ) -> Result<T, OciError> {
        let st = self.clone();
        tokio::task::spawn_blocking(move || f(&st.store))
            .await
            .map_err(|e| OciError::msg(Code::Internal, e.to_string()))?
    }
}

pub(crate) fn empty() -> Body {
    Empty::new().map_err(|n: Infallible| match n {}).boxed()
}

pub(crate) fn full(b: impl Into<Bytes>) -> Body {
    Full::new(b.into())
        .map_err(|n: Infallible| match n {})
        .boxed()
}

/// A response builder with the API version header every answer carries.
pub(crate) fn builder(status: u16) -> http::response::Builder {
    Response::builder()
        .status(status)
        .header("Docker-Distribution-API-Version", "registry/2.0")
}

pub(crate) fn finish(b: http::response::Builder, body: Body) -> HResult {
    b.body(body)
        .map_err(|e| OciError::msg(Code::Internal, e.to_string()))
}

pub(crate) fn json_response(status: u16, content_type: &str, v: &serde_json::Value) -> HResult {
    let bytes = serde_json::to_vec(v).map_err(|e| OciError::msg(Code::Internal, e.to_string()))?;
    finish(
        builder(status)
            .header("Content-Type", content_type)
            .header("Content-Length", bytes.len()),
        full(bytes),
    )
}

fn error_response(e: &OciError, head: bool) -> Resp {
    let body = e.body();
    let mut b = builder(e.status())
        .header("Content-Type", "application/json")
        .header("Content-Length", body.len());
    if e.code == Code::Unauthorized {
        b = b.header("WWW-Authenticate", "Basic realm=\"berth-registry\"");
    }
    let body = if head { empty() } else { full(body) };
    b.body(body).unwrap_or_else(|_| Response::new(empty()))
}

/// Query parameters in order (repeated keys kept).
pub(crate) fn query_pairs(req: &Request<Incoming>) -> Vec<(String, String)> {
    req.uri()
        .query()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default()
}

pub(crate) fn query_get<'a>(q: &'a [(String, String)], key: &str) -> Option<&'a str> {
    q.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

pub(crate) fn header_str<'a>(req: &'a Request<Incoming>, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

async fn handle(state: Arc<State>, req: Request<Incoming>) -> Result<Resp, Infallible> {
    let head = req.method() == Method::HEAD;
    let (method, path) = (req.method().clone(), req.uri().path().to_string());
    let res = dispatch(state, req).await;
    let resp = match res {
        Ok(r) => r,
        Err(e) => {
            if e.code == Code::Internal {
                tracing::warn!(%method, %path, error = %e, "registry request failed");
            }
            error_response(&e, head)
        }
    };
    tracing::debug!(%method, %path, status = resp.status().as_u16(), "registry request");
    Ok(resp)
}

async fn dispatch(state: Arc<State>, req: Request<Incoming>) -> HResult {
    if state.auth.is_some() {
        let authz = header_str(&req, "authorization").map(str::to_string);
        let st = state.clone();
        let ok = tokio::task::spawn_blocking(move || {
            st.auth.as_ref().is_some_and(|a| a.check(authz.as_deref()))
        })
        .await
        .unwrap_or(false);
        if !ok {
            return Err(OciError::new(Code::Unauthorized));
        }
    }
    let Some(route) = parse_route(req.uri().path()) else {
        return Err(OciError::msg(Code::Unsupported, "no such endpoint").with_status(404));
    };
    let name = match &route {
        Route::Base | Route::Catalog => None,
        Route::Tags(n)
        | Route::Manifest(n, _)
        | Route::Blob(n, _)
        | Route::UploadStart(n)
        | Route::Upload(n, _)
        | Route::Referrers(n, _) => Some(n.clone()),
    };
    if let Some(n) = &name {
        if !valid_repo_name(n) {
            return Err(OciError::new(Code::NameInvalid).detail(serde_json::json!({ "name": n })));
        }
    }
    let m = req.method().clone();
    let unsupported = || {
        Err(OciError::msg(
            Code::Unsupported,
            format!("method {m} not allowed here"),
        ))
    };
    match (route, req.method().clone()) {
        (Route::Base, Method::GET | Method::HEAD) => finish(
            builder(200)
                .header("Content-Type", "application/json")
                .header("Content-Length", 2),
            full("{}"),
        ),
        (Route::Catalog, Method::GET) => manifests::catalog(&state, &req).await,
        (Route::Tags(n), Method::GET) => manifests::tags(&state, &n, &req).await,
        (Route::Manifest(n, r), Method::GET) => manifests::get(&state, &n, &r, false).await,
        (Route::Manifest(n, r), Method::HEAD) => manifests::get(&state, &n, &r, true).await,
        (Route::Manifest(n, r), Method::PUT) => manifests::put(&state, &n, &r, req).await,
        (Route::Manifest(n, r), Method::DELETE) => manifests::delete(&state, &n, &r).await,
        (Route::Referrers(n, d), Method::GET) => manifests::referrers(&state, &n, &d, &req).await,
        (Route::Blob(n, d), Method::GET) => blobs::get(&state, &n, &d, &req, false).await,
        (Route::Blob(n, d), Method::HEAD) => blobs::get(&state, &n, &d, &req, true).await,
        (Route::Blob(n, d), Method::DELETE) => blobs::delete(&state, &n, &d).await,
        (Route::UploadStart(n), Method::POST) => blobs::start_upload(&state, &n, req).await,
        (Route::Upload(n, id), Method::PATCH) => blobs::patch_upload(&state, &n, &id, req).await,
        (Route::Upload(n, id), Method::PUT) => blobs::put_upload(&state, &n, &id, req).await,
        (Route::Upload(n, id), Method::GET) => blobs::upload_status(&state, &n, &id).await,
        (Route::Upload(n, id), Method::DELETE) => blobs::cancel_upload(&state, &n, &id).await,
        _ => unsupported(),
    }
}

fn load_tls(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> anyhow::Result<tokio_rustls::TlsAcceptor> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .with_context(|| format!("reading TLS certificate {}", cert.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("parsing TLS certificate {}", cert.display()))?;
    anyhow::ensure!(!certs.is_empty(), "no certificate in {}", cert.display());
    let key = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("reading TLS key {}", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .context("TLS certificate and key")?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(cfg)))
}

/// Serve the registry on `listener` until the process ends.
pub(crate) async fn run(cfg: ServeConfig, listener: TcpListener) -> anyhow::Result<()> {
    let store = Store::open(&cfg.root).map_err(|e| anyhow::anyhow!("{e}"))?;
    let auth = match &cfg.htpasswd {
        Some(p) => Some(Htpasswd::load(p).map_err(|e| anyhow::anyhow!("{e}"))?),
        None => None,
    };
    let tls = match (&cfg.tls_cert, &cfg.tls_key) {
        (Some(c), Some(k)) => Some(load_tls(c, k)?),
        (None, None) => None,
        _ => anyhow::bail!("TLS needs both a certificate and a key"),
    };
    let state = Arc::new(State {
        store,
        auth,
        upload_locks: Mutex::new(HashMap::new()),
    });
    tracing::info!(addr = ?listener.local_addr().ok(), tls = tls.is_some(), root = %cfg.root.display(), "registry serving");
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let state = state.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req| handle(state.clone(), req));
            let http = hyper::server::conn::http1::Builder::new();
            let res = match tls {
                Some(acc) => match acc.accept(stream).await {
                    Ok(s) => http.serve_connection(TokioIo::new(s), svc).await,
                    Err(e) => {
                        tracing::debug!(%peer, error = %e, "TLS handshake failed");
                        return;
                    }
                },
                None => http.serve_connection(TokioIo::new(stream), svc).await,
            };
            if let Err(e) = res {
                tracing::debug!(%peer, error = %e, "connection ended with error");
            }
        });
    }
}

pub(crate) fn location(b: http::response::Builder, loc: &str) -> http::response::Builder {
    match HeaderValue::from_str(loc) {
        Ok(v) => b.header("Location", v),
        Err(_) => b,
    }
}
