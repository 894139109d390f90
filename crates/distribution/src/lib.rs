//! Moving images between berth's image store and registries: pull (manifest lists,
//! Docker schema 2 and OCI manifests, verified gzip layers, concurrent downloads,
//! Docker's progress messages), push (stable gzip blobs, HEAD/mount/upload, schema 2
//! manifest) and the `docker login` check.

pub mod client;
pub mod progress;
pub mod pull;
pub mod push;

pub use client::{Credentials, Registry};
pub use pull::{inspect, resolve, Pull, MAX_DOWNLOADS};
pub use push::{push, Pushed};

/// Check credentials against a registry's `/v2/` (`POST /auth`).
pub async fn login(
    server: &str,
    creds: Credentials,
    insecure: &[String],
) -> berth_errdefs::Result<()> {
    let host = server
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .trim_end_matches("/v1")
        .trim_end_matches("/v2");
    let host = if host.is_empty() || host == "index.docker.io" {
        "docker.io"
    } else {
        host
    };
    Registry::connect(host, creds, insecure)
        .await?
        .login()
        .await
}
