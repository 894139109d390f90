//! berth's own OCI distribution (v1.1) registry server: blobs shared by digest on the
//! filesystem, per-repository links for layers, manifests and tags, chunked and
//! monolithic uploads, cross-repository mounts, the referrers API, htpasswd (bcrypt)
//! Basic auth, optional TLS, and mark-and-sweep garbage collection.
//!
//! Entry points for the CLI: [`serve`], [`serve_with_listener`], [`garbage_collect`].

pub mod auth;
pub mod digest;
pub mod error;
pub mod gc;
pub mod manifest;
pub mod request;
mod server;
pub mod storage;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

pub use gc::GcReport;

/// How `berth registry serve` runs the server.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub addr: SocketAddr,
    /// Storage root (created if missing).
    pub root: PathBuf,
    /// An htpasswd file of bcrypt entries; when set every request needs Basic auth.
    pub htpasswd: Option<PathBuf>,
    /// PEM certificate chain and key; both or neither.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
}

/// Bind `cfg.addr` and serve until the process is killed.
pub async fn serve(cfg: ServeConfig) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(cfg.addr)
        .await
        .map_err(|e| anyhow::anyhow!("binding {}: {e}", cfg.addr))?;
    server::run(cfg, listener).await
}

/// Serve on an already bound listener (`cfg.addr` is ignored).
pub async fn serve_with_listener(
    cfg: ServeConfig,
    listener: tokio::net::TcpListener,
) -> anyhow::Result<()> {
    server::run(cfg, listener).await
}

/// Remove every blob under `root` that no manifest of any repository references
/// (configs, layers, index children recursively). With `dry_run`, only report.
pub fn garbage_collect(root: &Path, dry_run: bool) -> anyhow::Result<GcReport> {
    let store =
        storage::Store::open(root).map_err(|e| anyhow::anyhow!("opening registry storage: {e}"))?;
    gc::run(&store, dry_run).map_err(|e| anyhow::anyhow!("garbage collection: {e}"))
}
