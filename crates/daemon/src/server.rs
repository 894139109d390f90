//! The listeners: the unix socket, and TCP with TLS (dockerd's `-H tcp://`,
//! `--tls`, `--tlsverify`): HTTP/1.1 with upgrades (attach and exec hijack) on both.
//!
//! A TCP listener gives whoever reaches it root on this host, so berthd only opens
//! one with `--tlsverify` (mutual TLS: a client certificate signed by `--tlscacert`
//! is required, checked in the handshake before any request is read), unless told
//! otherwise with `--insecure-tcp`, and then warns at every start.

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, UnixListener};
use tokio_rustls::rustls;
use tokio_rustls::TlsAcceptor;

use crate::Daemon;

/// dockerd's TLS flags.
#[derive(Debug, Clone, Default)]
pub struct TlsFlags {
    /// `--tls`: serve TLS (implied by `verify`).
    pub tls: bool,
    /// `--tlsverify`: require a client certificate signed by the CA.
    pub verify: bool,
    pub ca: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    /// Listen on TCP without mutual TLS anyway.
    pub insecure_tcp: bool,
}

/// Where dockerd looks for `ca.pem`, `cert.pem` and `key.pem` by default:
/// `$DOCKER_CERT_PATH`, else `~/.docker`.
fn default_cert_dir() -> PathBuf {
    if let Some(p) = std::env::var_os("DOCKER_CERT_PATH").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/root")).join(".docker")
}

fn certs(path: &Path) -> anyhow::Result<Vec<rustls::pki_types::CertificateDer<'static>>> {
    use rustls::pki_types::pem::PemObject;
    let list: Vec<_> = rustls::pki_types::CertificateDer::pem_file_iter(path)
        .with_context(|| format!("could not read certificate {}", path.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("could not parse certificate {}", path.display()))?;
    if list.is_empty() {
        bail!("no certificate in {}", path.display());
    }
    Ok(list)
}

/// The TLS acceptor for the flags, or `None` for plain TCP.
pub fn tls_acceptor(f: &TlsFlags) -> anyhow::Result<Option<TlsAcceptor>> {
    if !f.tls && !f.verify {
        return Ok(None);
    }
    use rustls::pki_types::pem::PemObject;
    let dir = default_cert_dir();
    let cert = f.cert.clone().unwrap_or_else(|| dir.join("cert.pem"));
    let key = f.key.clone().unwrap_or_else(|| dir.join("key.pem"));
    let chain = certs(&cert)?;
    let key = rustls::pki_types::PrivateKeyDer::from_pem_file(&key)
        .with_context(|| format!("could not read key {}", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone()).with_safe_default_protocol_versions()?;
    let builder = if f.verify {
        let ca = f.ca.clone().unwrap_or_else(|| dir.join("ca.pem"));
        let mut roots = rustls::RootCertStore::empty();
        for c in certs(&ca)? {
            roots.add(c).with_context(|| format!("CA certificate {}", ca.display()))?;
        }
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .context("client certificate verifier")?;
        builder.with_client_cert_verifier(verifier)
    } else {
        builder.with_no_client_auth()
    };
    let mut cfg = builder.with_single_cert(chain, key).context("TLS certificate and key")?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Some(TlsAcceptor::from(Arc::new(cfg))))
}

/// `tcp://[host]:port` → an address (no host: all interfaces; no port: 2376 with
/// TLS, 2375 without, as dockerd).
pub fn tcp_addr(spec: &str, tls: bool) -> anyhow::Result<SocketAddr> {
    let rest = spec.trim_end_matches('/');
    let default_port = if tls { 2376 } else { 2375 };
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) if !p.is_empty() && !h.ends_with(':') => {
            (h, p.parse::<u16>().with_context(|| format!("invalid port in tcp://{spec}"))?)
        }
        _ => (rest.trim_end_matches(':'), default_port),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let host = if host.is_empty() { "0.0.0.0" } else { host };
    let ip: std::net::IpAddr = match host {
        "localhost" => std::net::IpAddr::from([127, 0, 0, 1]),
        h => h.parse().with_context(|| format!("invalid address tcp://{spec}: berthd listens on IP addresses"))?,
    };
    Ok(SocketAddr::new(ip, port))
}

/// Refuse a TCP listener that would give root to anyone who reaches it.
pub fn check_tcp_policy(spec: &str, f: &TlsFlags) -> anyhow::Result<()> {
    if f.verify {
        return Ok(());
    }
    if !f.insecure_tcp {
        bail!(
            "refusing to listen on tcp://{spec} without --tlsverify: the API gives root on this host to anyone who reaches it. \
             Use --tlsverify with --tlscacert, --tlscert and --tlskey (mutual TLS), or pass --insecure-tcp to accept the risk"
        );
    }
    tracing::warn!(
        "API listening on tcp://{spec} {}: anyone who can reach it has root on this host (--insecure-tcp)",
        if f.tls { "with TLS but without client certificates" } else { "without encryption or authentication" }
    );
    Ok(())
}

/// Serve one connection (unix, TCP or TLS).
/// `peer`: the connection's socket, whose streamed answers end when the client leaves
/// ([`crate::http::Peer`]).
fn serve_connection<I>(daemon: Arc<Daemon>, io: I, peer: Option<crate::http::Peer>)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        let svc = service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
            if let Some(p) = peer {
                req.extensions_mut().insert(p);
            }
            let d = daemon.clone();
            async move { Ok::<_, std::convert::Infallible>(crate::api::route(d, req).await) }
        });
        // half_close: a client may shut its write side once its request is out (`system
        // dial-stdio` does at the end of its stdin, over ssh); the answer is still owed,
        // as Go's server gives it. Without it hyper dropped about one in four such.
        let conn = http1::Builder::new().keep_alive(true).half_close(true).serve_connection(TokioIo::new(io), svc).with_upgrades();
        if let Err(e) = conn.await {
            tracing::debug!("connection: {e}");
        }
    });
}

/// Serve the API on a unix socket (mode 0660) until the task is dropped.
pub async fn serve_unix(daemon: Arc<Daemon>, path: PathBuf) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path).with_context(|| format!("listen on {}", path.display()))?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o660))?;
    loop {
        let (stream, _) = listener.accept().await?;
        let peer = crate::http::Peer::Unix(std::os::fd::AsRawFd::as_raw_fd(&stream));
        serve_connection(daemon.clone(), stream, Some(peer));
    }
}

/// Serve the API on TCP, with TLS when an acceptor is given: a client that fails
/// the handshake (no certificate, another CA, expired) is dropped before any
/// request is read.
pub async fn serve_tcp(daemon: Arc<Daemon>, addr: SocketAddr, tls: Option<TlsAcceptor>) -> anyhow::Result<()> {
    let listener = TcpListener::bind(addr).await.with_context(|| format!("listen on tcp://{addr}"))?;
    tracing::info!(%addr, tls = tls.is_some(), "API listening on TCP");
    loop {
        let (stream, peer) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        let fd = crate::http::Peer::Tcp(std::os::fd::AsRawFd::as_raw_fd(&stream));
        match &tls {
            None => serve_connection(daemon.clone(), stream, Some(fd)),
            Some(acceptor) => {
                let (acceptor, d) = (acceptor.clone(), daemon.clone());
                tokio::spawn(async move {
                    match tokio::time::timeout(std::time::Duration::from_secs(10), acceptor.accept(stream)).await {
                        Ok(Ok(s)) => serve_connection(d, s, Some(fd)),
                        Ok(Err(e)) => tracing::info!(%peer, "TLS handshake refused: {e}"),
                        Err(_) => tracing::info!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcp_addresses_as_dockerd_takes_them() {
        assert_eq!(tcp_addr("127.0.0.1:2376", true).unwrap().to_string(), "127.0.0.1:2376");
        assert_eq!(tcp_addr(":4243", false).unwrap().to_string(), "0.0.0.0:4243");
        assert_eq!(tcp_addr("0.0.0.0", true).unwrap().to_string(), "0.0.0.0:2376");
        assert_eq!(tcp_addr("localhost", false).unwrap().to_string(), "127.0.0.1:2375");
        assert_eq!(tcp_addr("[::1]:2376", true).unwrap().to_string(), "[::1]:2376");
        assert!(tcp_addr("example.com:1", true).is_err());
    }

    #[test]
    fn plain_tcp_needs_an_explicit_opt_in() {
        let e = check_tcp_policy("0.0.0.0:2375", &TlsFlags::default()).unwrap_err();
        assert!(e.to_string().contains("--tlsverify"), "{e}");
        assert!(check_tcp_policy("0.0.0.0:2375", &TlsFlags { insecure_tcp: true, ..Default::default() }).is_ok());
        assert!(check_tcp_policy("x", &TlsFlags { tls: true, ..Default::default() }).is_err());
        assert!(check_tcp_policy("x", &TlsFlags { verify: true, ..Default::default() }).is_ok());
    }
}
