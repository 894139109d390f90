//! Connection to the daemon: host resolution, daemon auto-start, API version
//! negotiation (`HEAD /_ping`, as the docker CLI does), and the raw HTTP layer every
//! call goes through (including hijacks, `wait` headers-first, streamed uploads);
//! bollard supplies the API models.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use bytes::{Bytes, BytesMut};
use futures_util::Stream;
use futures_util::StreamExt;
use http::{Method, Request, Response, StatusCode};
use hyper::client::conn::http1::SendRequest;
use http_body_util::{combinators::UnsyncBoxBody, BodyExt, Empty, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::TokioIo;
use serde::de::DeserializeOwned;
use tokio::io::{ReadHalf, WriteHalf};
use tokio::net::UnixStream;

pub const DEFAULT_SOCKET: &str = "/run/berth/berth.sock";

/// An error answered by the daemon (non-2xx status with a message).
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: u16,
    pub message: String,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Error response from daemon: {}", self.message)
    }
}
impl std::error::Error for ApiError {}

/// The status of an error if it came from the daemon.
pub fn api_status(e: &anyhow::Error) -> Option<u16> {
    e.downcast_ref::<ApiError>().map(|a| a.status)
}

pub type Body = UnsyncBoxBody<Bytes, std::io::Error>;

pub fn empty() -> Body {
    Empty::<Bytes>::new()
        .map_err(|never| match never {})
        .boxed_unsync()
}
pub fn full(b: impl Into<Bytes>) -> Body {
    Full::new(b.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}
pub fn json_body<T: serde::Serialize>(v: &T) -> Result<Body> {
    Ok(full(serde_json::to_vec(v)?))
}
pub fn stream_body<S>(s: S) -> Body
where
    S: Stream<Item = std::io::Result<Bytes>> + Send + 'static,
{
    BodyExt::boxed_unsync(StreamBody::new(s.map(|r| r.map(Frame::data))))
}

/// A streamed body read from a file (or stdin for "-") on a blocking thread.
pub fn reader_body(path: &str) -> Result<Body> {
    use std::io::Read;
    let mut reader: Box<dyn Read + Send> = if path == "-" {
        Box::new(std::io::stdin())
    } else {
        Box::new(std::fs::File::open(path).with_context(|| format!("open {path}"))?)
    };
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(4);
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    if tx
                        .blocking_send(Ok(Bytes::copy_from_slice(&buf[..n])))
                        .is_err()
                    {
                        break;
                    }
                }
                Err(e) => {
                    let _ = tx.blocking_send(Err(e));
                    break;
                }
            }
        }
    });
    Ok(channel_body(rx))
}

/// A streamed body fed through a channel.
pub fn channel_body(rx: tokio::sync::mpsc::Receiver<std::io::Result<Bytes>>) -> Body {
    stream_body(futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    }))
}

/// Docker's map form of `filters`: {"key":{"value":true}}.
pub fn filters_json(list: &[String]) -> Option<String> {
    if list.is_empty() {
        return None;
    }
    let mut m = serde_json::Map::new();
    for f in list {
        let (k, v) = f.split_once('=').unwrap_or((f.as_str(), ""));
        let entry = m
            .entry(k.to_string())
            .or_insert_with(|| serde_json::Value::Object(Default::default()));
        if let serde_json::Value::Object(inner) = entry {
            inner.insert(v.to_string(), serde_json::Value::Bool(true));
        }
    }
    Some(serde_json::Value::Object(m).to_string())
}

/// Query-string builder; keeps insertion order and allows repeated keys.
#[derive(Default, Clone, Debug)]
pub struct Query(Vec<(String, String)>);
impl Query {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn add(mut self, k: &str, v: impl ToString) -> Self {
        self.0.push((k.to_string(), v.to_string()));
        self
    }
    pub fn add_if(self, cond: bool, k: &str, v: impl ToString) -> Self {
        if cond {
            self.add(k, v)
        } else {
            self
        }
    }
    pub fn opt(self, k: &str, v: Option<impl ToString>) -> Self {
        match v {
            Some(v) => self.add(k, v),
            None => self,
        }
    }
    pub fn encode(&self) -> String {
        let mut ser = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in &self.0 {
            ser.append_pair(k, v);
        }
        ser.finish()
    }
}

/// Where to reach the daemon.
pub fn resolve_socket(host: Option<&str>) -> Result<(PathBuf, bool)> {
    match host {
        Some(h) if !h.is_empty() => {
            let p = h.strip_prefix("unix://").unwrap_or(h);
            if p.contains("://") {
                bail!("unsupported host {h:?}: use unix:///path, tcp://host:port or ssh://[user@]host[:port][/path]");
            }
            Ok((PathBuf::from(p), p == DEFAULT_SOCKET))
        }
        _ => Ok((PathBuf::from(DEFAULT_SOCKET), true)),
    }
}

/// TLS settings for a `tcp://` daemon, as the docker CLI takes them (`--tls`,
/// `--tlsverify`, `--tlscacert/--tlscert/--tlskey`, `DOCKER_TLS_VERIFY`,
/// `DOCKER_CERT_PATH`).
#[derive(Debug, Clone, Default)]
pub struct TlsOptions {
    pub tls: bool,
    pub verify: bool,
    pub ca: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    /// Verify against the system's CA bundle when there is no CA (a context's
    /// endpoint with a client certificate only, as docker does).
    pub system_roots: bool,
}

/// The system's CA bundle (`$SSL_CERT_FILE`, else Debian's and Red Hat's paths).
fn system_ca_bundle() -> Option<PathBuf> {
    std::env::var_os("SSL_CERT_FILE")
        .map(PathBuf::from)
        .into_iter()
        .chain(["/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt", "/etc/ssl/cert.pem"].map(PathBuf::from))
        .find(|p| p.is_file())
}

impl TlsOptions {
    /// With the docker CLI's environment variables filled in.
    pub fn with_env(mut self) -> TlsOptions {
        if std::env::var("DOCKER_TLS_VERIFY").is_ok_and(|v| !v.is_empty()) {
            self.verify = true;
        }
        let dir = std::env::var_os("DOCKER_CERT_PATH")
            .filter(|d| !d.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker")));
        if let Some(dir) = dir {
            for (slot, name) in [(&mut self.ca, "ca.pem"), (&mut self.cert, "cert.pem"), (&mut self.key, "key.pem")] {
                if slot.is_none() && dir.join(name).exists() {
                    *slot = Some(dir.join(name));
                }
            }
        }
        self
    }

    pub fn enabled(&self) -> bool {
        self.tls || self.verify
    }

    fn connector(&self) -> Result<tokio_rustls::TlsConnector> {
        use tokio_rustls::rustls;
        use rustls::pki_types::pem::PemObject;
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone()).with_safe_default_protocol_versions()?;
        let builder = if self.verify {
            let system = if self.ca.is_none() && self.system_roots { system_ca_bundle() } else { None };
            let ca = self
                .ca
                .as_ref()
                .or(system.as_ref())
                .context("--tlsverify needs a CA certificate (--tlscacert or $DOCKER_CERT_PATH/ca.pem)")?;
            let mut roots = rustls::RootCertStore::empty();
            for c in rustls::pki_types::CertificateDer::pem_file_iter(ca).with_context(|| format!("read {}", ca.display()))? {
                roots.add(c.with_context(|| format!("parse {}", ca.display()))?)?;
            }
            builder.with_root_certificates(roots)
        } else {
            builder.dangerous().with_custom_certificate_verifier(std::sync::Arc::new(AnyServer(provider)))
        };
        let cfg = match (&self.cert, &self.key) {
            (Some(cert), Some(key)) => {
                let chain = rustls::pki_types::CertificateDer::pem_file_iter(cert)
                    .with_context(|| format!("read {}", cert.display()))?
                    .collect::<Result<Vec<_>, _>>()
                    .with_context(|| format!("parse {}", cert.display()))?;
                let key = rustls::pki_types::PrivateKeyDer::from_pem_file(key).with_context(|| format!("read {}", key.display()))?;
                builder.with_client_auth_cert(chain, key)?
            }
            _ => builder.with_no_client_auth(),
        };
        Ok(tokio_rustls::TlsConnector::from(std::sync::Arc::new(cfg)))
    }
}

/// `--tls` without `--tlsverify`: the docker CLI does not check the daemon's
/// certificate then (the connection is encrypted, not authenticated).
#[derive(Debug)]
struct AnyServer(std::sync::Arc<tokio_rustls::rustls::crypto::CryptoProvider>);

impl tokio_rustls::rustls::client::danger::ServerCertVerifier for AnyServer {
    fn verify_server_cert(
        &self,
        _end_entity: &tokio_rustls::rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[tokio_rustls::rustls::pki_types::CertificateDer<'_>],
        _server_name: &tokio_rustls::rustls::pki_types::ServerName<'_>,
        _ocsp: &[u8],
        _now: tokio_rustls::rustls::pki_types::UnixTime,
    ) -> std::result::Result<tokio_rustls::rustls::client::danger::ServerCertVerified, tokio_rustls::rustls::Error> {
        Ok(tokio_rustls::rustls::client::danger::ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &tokio_rustls::rustls::pki_types::CertificateDer<'_>,
        dss: &tokio_rustls::rustls::DigitallySignedStruct,
    ) -> std::result::Result<tokio_rustls::rustls::client::danger::HandshakeSignatureValid, tokio_rustls::rustls::Error> {
        tokio_rustls::rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &tokio_rustls::rustls::pki_types::CertificateDer<'_>,
        dss: &tokio_rustls::rustls::DigitallySignedStruct,
    ) -> std::result::Result<tokio_rustls::rustls::client::danger::HandshakeSignatureValid, tokio_rustls::rustls::Error> {
        tokio_rustls::rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<tokio_rustls::rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// How to reach the daemon.
#[derive(Clone)]
pub enum Endpoint {
    Unix(PathBuf),
    Tcp { addr: String, host: String, tls: Option<tokio_rustls::TlsConnector> },
    /// `ssh://`: the system ssh client runs `CLI system dial-stdio` on the remote host.
    Ssh { url: String, spec: crate::ssh::Spec, cli: String },
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Endpoint::Unix(p) => write!(f, "unix://{}", p.display()),
            Endpoint::Tcp { addr, .. } => write!(f, "tcp://{addr}"),
            Endpoint::Ssh { url, .. } => f.write_str(url),
        }
    }
}

/// A connection's byte stream, whatever carries it.
pub trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin> Io for T {}

impl Endpoint {
    /// The endpoint a host string names (`unix:///path` or a bare path, `tcp://host[:port]`,
    /// `ssh://[user@]host[:port][/socket]`; none: the default socket), and whether it
    /// is the default socket (which berth may start a daemon on).
    pub fn parse(host: Option<&str>, tls: &TlsOptions) -> Result<(Endpoint, bool)> {
        let host = host.filter(|h| !h.is_empty());
        if let Some(rest) = host.and_then(|h| h.strip_prefix("tcp://")) {
            let rest = rest.trim_end_matches('/');
            let default_port = if tls.enabled() { 2376 } else { 2375 };
            let addr = if rest.rsplit_once(':').is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok()) {
                rest.to_owned()
            } else {
                format!("{rest}:{default_port}")
            };
            let host = addr.rsplit_once(':').map(|(h, _)| h.trim_start_matches('[').trim_end_matches(']').to_owned()).unwrap_or_default();
            if host.is_empty() {
                bail!("unable to parse docker host `tcp://{rest}`");
            }
            let tls = if tls.enabled() { Some(tls.connector()?) } else { None };
            return Ok((Endpoint::Tcp { addr, host, tls }, false));
        }
        if let Some(h) = host.filter(|h| h.starts_with("ssh://")) {
            let spec = crate::ssh::Spec::parse(h)?;
            return Ok((Endpoint::Ssh { url: h.to_owned(), spec, cli: crate::ssh::remote_cli() }, false));
        }
        let (socket, is_default) = resolve_socket(host)?;
        Ok((Endpoint::Unix(socket), is_default))
    }

    /// [`Endpoint::parse`], then, for the default socket as root, starts berthd if
    /// nothing answers there.
    pub async fn open(host: Option<&str>, tls: &TlsOptions) -> Result<Endpoint> {
        let (endpoint, is_default) = Endpoint::parse(host, tls)?;
        if let (Endpoint::Unix(socket), true) = (&endpoint, is_default) {
            if !socket_answers(socket) && nix::unistd::geteuid().is_root() {
                autostart_daemon()?;
                let deadline = std::time::Instant::now() + Duration::from_secs(10);
                loop {
                    if socket_answers(socket) {
                        break;
                    }
                    if std::time::Instant::now() > deadline {
                        bail!(
                            "berthd did not come up within 10s on {} (see /var/log/berthd.log)",
                            socket.display()
                        );
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
        Ok(endpoint)
    }

    /// A new raw connection to the daemon.
    pub async fn dial(&self) -> Result<Box<dyn Io>> {
        Ok(match self {
            Endpoint::Unix(p) => Box::new(
                UnixStream::connect(p)
                    .await
                    .with_context(|| format!("Cannot connect to the berth daemon at unix://{}", p.display()))?,
            ),
            Endpoint::Tcp { addr, host, tls } => {
                let tcp = tokio::net::TcpStream::connect(addr.as_str())
                    .await
                    .with_context(|| format!("Cannot connect to the berth daemon at tcp://{addr}"))?;
                let _ = tcp.set_nodelay(true);
                match tls {
                    None => Box::new(tcp),
                    Some(connector) => {
                        let name = tokio_rustls::rustls::pki_types::ServerName::try_from(host.clone())
                            .with_context(|| format!("invalid server name {host:?}"))?;
                        Box::new(connector.connect(name, tcp).await.with_context(|| format!("TLS handshake with tcp://{addr}"))?)
                    }
                }
            }
            Endpoint::Ssh { spec, cli, .. } => Box::new(crate::ssh::spawn(spec, cli)?),
        })
    }
}

/// A connected, version-negotiated client; requests go through [`Client::request`]
/// so that every path carries the `/v{version}` prefix and docker's exact query
/// parameters.
#[derive(Clone)]
pub struct Client {
    pub endpoint: Endpoint,
    pub version: String,
    /// A connection with no request on it (the ping's, or one whose answer was read
    /// to its end), kept for the next request: one connection (and one accept in the
    /// daemon) fewer for every command.
    idle: Arc<std::sync::Mutex<Option<Idle>>>,
}

fn socket_answers(path: &Path) -> bool {
    std::os::unix::net::UnixStream::connect(path).is_ok()
}

fn find_berthd() -> Option<PathBuf> {
    if let Ok(exe) = std::env::current_exe() {
        if let Some(dir) = exe.parent() {
            let p = dir.join("berthd");
            if p.is_file() {
                return Some(p);
            }
        }
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("berthd"))
        .find(|p| p.is_file())
}

fn open_log() -> Option<std::fs::File> {
    for p in ["/var/log/berthd.log", "/run/berth/berthd.log"] {
        let path = Path::new(p);
        if let Some(parent) = path.parent() {
            let _ = std::fs::create_dir_all(parent);
        }
        if let Ok(f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            return Some(f);
        }
    }
    None
}

/// Starts berthd in the background (own session, output to a log file).
fn autostart_daemon() -> Result<()> {
    use std::os::unix::process::CommandExt;
    let berthd = find_berthd().context("berthd is not running and could not be found")?;
    let mut cmd = std::process::Command::new(&berthd);
    cmd.stdin(std::process::Stdio::null());
    match open_log() {
        Some(f) => {
            let f2 = f.try_clone()?;
            cmd.stdout(f).stderr(f2);
        }
        None => {
            cmd.stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null());
        }
    }
    // SAFETY: setsid is async-signal-safe and touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            nix::unistd::setsid().map_err(std::io::Error::from)?;
            Ok(())
        });
    }
    cmd.spawn()
        .with_context(|| format!("starting {}", berthd.display()))?;
    Ok(())
}

/// A connection with no request on it, and since when.
type Idle = (SendRequest<Body>, std::time::Instant);

/// How long a kept connection is still used for the next request.
const IDLE_REUSE: Duration = Duration::from_secs(2);

impl Client {
    /// Connects (starting the daemon as root when needed) and negotiates the API version.
    pub async fn connect(host: Option<&str>, tls: &TlsOptions) -> Result<Client> {
        let endpoint = Endpoint::open(host, tls).await?;
        // Negotiate as the docker CLI does: `HEAD /_ping`, then the lower of the
        // daemon's `Api-Version` and ours (bollard's models set the client's maximum).
        let ours = bollard::API_DEFAULT_VERSION;
        let mut c = Client {
            endpoint,
            version: format!("{}.{}", ours.major_version, ours.minor_version),
            idle: Default::default(),
        };
        let unreachable = |e: anyhow::Error| match c.endpoint {
            Endpoint::Ssh { .. } => anyhow!("Cannot connect to the berth daemon at {}: {e:#}", c.endpoint),
            _ => anyhow!("Cannot connect to the berth daemon at {}. Is berthd running? ({e:#})", c.endpoint),
        };
        let mut sender = c.sender(false).await.map_err(unreachable)?;
        let ping = Request::builder()
            .method(Method::HEAD)
            .uri("/_ping")
            .header("Host", "api.moby.localhost")
            .body(empty())?;
        let resp = sender.send_request(ping).await.map_err(|e| unreachable(e.into()))?;
        let theirs = resp
            .headers()
            .get("Api-Version")
            .and_then(|v| v.to_str().ok())
            .and_then(parse_version);
        // A daemon that does not report a version: keep ours (as docker does).
        if let Some(v) = theirs.filter(|v| *v < (ours.major_version, ours.minor_version)) {
            c.version = format!("{}.{}", v.0, v.1);
        }
        // A HEAD answer has no body: the connection is free again.
        *c.idle.lock().unwrap() = Some((sender, std::time::Instant::now()));
        Ok(c)
    }

    fn uri(&self, path: &str, q: &Query) -> String {
        let qs = q.encode();
        if qs.is_empty() {
            format!("/v{}{}", self.version, path)
        } else {
            format!("/v{}{}?{}", self.version, path, qs)
        }
    }

    async fn sender(
        &self,
        upgrades: bool,
    ) -> Result<SendRequest<Body>> {
        let stream = self.endpoint.dial().await?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        if upgrades {
            tokio::spawn(async move {
                let _ = conn.with_upgrades().await;
            });
        } else {
            tokio::spawn(async move {
                let _ = conn.await;
            });
        }
        Ok(sender)
    }

    fn build(
        &self,
        method: Method,
        path: &str,
        q: &Query,
        headers: &[(&str, String)],
        body: Body,
    ) -> Result<Request<Body>> {
        let mut b = Request::builder()
            .method(method)
            .uri(self.uri(path, q))
            .header("Host", "api.moby.localhost")
            .header(
                "User-Agent",
                concat!("Berth-Client/", env!("CARGO_PKG_VERSION"), " (linux)"),
            );
        for (k, v) in headers {
            b = b.header(*k, v);
        }
        Ok(b.body(body)?)
    }

    /// Sends `req` on the idle connection while it is recent and still open, else on a
    /// new one; returns the answer and the connection it came on.
    async fn send(&self, mut req: Request<Body>) -> Result<(Response<Incoming>, SendRequest<Body>)> {
        // Only a recent one: a server may close an idle connection just as a late
        // request goes out (after a prompt, say), and a sent request is not retried.
        let kept = self.idle.lock().unwrap().take();
        if let Some((mut sender, _)) = kept.filter(|(_, at)| at.elapsed() < IDLE_REUSE) {
            if sender.ready().await.is_ok() {
                match sender.try_send_request(req).await {
                    Ok(resp) => return Ok((resp, sender)),
                    // Not sent (the daemon closed the idle connection meanwhile): send
                    // it on a new one. Once sent, an error is the request's.
                    Err(mut e) => match e.take_message() {
                        Some(unsent) => req = unsent,
                        None => return Err(e.into_error().into()),
                    },
                }
            }
        }
        let mut sender = self.sender(false).await?;
        let resp = sender.send_request(req).await?;
        Ok((resp, sender))
    }

    /// A connection whose last answer was read to its end serves the next request
    /// (a `run`: the create's carries the `wait`): one connect, and one accept in the
    /// daemon, fewer.
    fn keep(&self, sender: SendRequest<Body>) {
        let mut idle = self.idle.lock().unwrap();
        if idle.is_none() {
            *idle = Some((sender, std::time::Instant::now()));
        }
    }

    /// Sends one request; non-2xx answers become [`ApiError`]. The answer's body is
    /// the caller's to read (a stream, say), so its connection is not used again.
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        q: &Query,
        headers: &[(&str, String)],
        body: Body,
    ) -> Result<Response<Incoming>> {
        let req = self.build(method, path, q, headers, body)?;
        let (resp, _) = self.send(req).await?;
        check(resp).await
    }

    /// Sends one request and reads its whole answer; the connection then serves the
    /// next request.
    pub async fn request_bytes(
        &self,
        method: Method,
        path: &str,
        q: &Query,
        headers: &[(&str, String)],
        body: Body,
    ) -> Result<Bytes> {
        let req = self.build(method, path, q, headers, body)?;
        let (resp, sender) = self.send(req).await?;
        let bytes = check(resp).await?.into_body().collect().await?.to_bytes();
        self.keep(sender);
        Ok(bytes)
    }

    pub async fn get_json<T: DeserializeOwned>(&self, path: &str, q: &Query) -> Result<T> {
        let bytes = self.request_bytes(Method::GET, path, q, &[], empty()).await?;
        Ok(serde_json::from_slice(&bytes)?)
    }

    pub async fn post_json<T: DeserializeOwned>(
        &self,
        path: &str,
        q: &Query,
        body: Option<Body>,
    ) -> Result<T> {
        let (headers, body) = match body {
            Some(b) => (vec![("Content-Type", "application/json".to_string())], b),
            None => (vec![], empty()),
        };
        let bytes = self.request_bytes(Method::POST, path, q, &headers, body).await?;
        if bytes.is_empty() {
            return Ok(serde_json::from_slice(b"null")?);
        }
        Ok(serde_json::from_slice(&bytes)?)
    }

    /// `POST /containers/{id}/start`.
    pub async fn start_container(&self, id: &str) -> Result<()> {
        self.request_bytes(
            Method::POST,
            &format!("/containers/{id}/start"),
            &Query::new(),
            &[],
            empty(),
        )
        .await?;
        Ok(())
    }

    /// `POST /containers/{id}/kill?signal=NAME`.
    pub async fn kill_container(&self, id: &str, signal: &str) -> Result<()> {
        let q = Query::new().add("signal", signal);
        self.request_bytes(
            Method::POST,
            &format!("/containers/{id}/kill"),
            &q,
            &[],
            empty(),
        )
        .await?;
        Ok(())
    }

    /// `POST {prefix}/resize?h=..&w=..` (prefix is `/containers/{id}` or `/exec/{id}`).
    pub async fn resize(&self, prefix: &str, h: u16, w: u16) -> Result<()> {
        let q = Query::new().add("h", h).add("w", w);
        self.request_bytes(Method::POST, &format!("{prefix}/resize"), &q, &[], empty())
            .await?;
        Ok(())
    }

    /// POST with an upgrade to a raw two-way stream (attach, exec start).
    pub async fn hijack(&self, path: &str, q: &Query, body: Option<Body>) -> Result<Hijacked> {
        let mut sender = self.sender(true).await?;
        let (ct, body) = match body {
            Some(b) => ("application/json", b),
            None => ("text/plain", empty()),
        };
        let req = self.build(
            Method::POST,
            path,
            q,
            &[
                ("Connection", "Upgrade".into()),
                ("Upgrade", "tcp".into()),
                ("Content-Type", ct.into()),
            ],
            body,
        )?;
        let resp = sender.send_request(req).await?;
        let resp = check(resp).await?;
        if resp.status() != StatusCode::SWITCHING_PROTOCOLS {
            // Old daemons may answer 200 and keep the connection raw; we only support 101.
            bail!(
                "daemon did not upgrade the connection (status {})",
                resp.status()
            );
        }
        let upgraded = hyper::upgrade::on(resp).await?;
        let (r, w) = tokio::io::split(TokioIo::new(upgraded));
        Ok(Hijacked { read: r, write: w })
    }

    /// `POST /containers/{id}/wait`: returns once the response headers are in, with a
    /// task that resolves to the exit status when the body arrives.
    pub async fn wait_headers(&self, id: &str, condition: Option<&str>) -> Result<WaitHandle> {
        let q = Query::new().opt("condition", condition);
        let resp = self
            .request(
                Method::POST,
                &format!("/containers/{id}/wait"),
                &q,
                &[],
                empty(),
            )
            .await?;
        let task = tokio::spawn(async move {
            let bytes = resp.into_body().collect().await?.to_bytes();
            let v: serde_json::Value = serde_json::from_slice(&bytes).with_context(|| {
                format!(
                    "decoding wait response {:?}",
                    String::from_utf8_lossy(&bytes)
                )
            })?;
            let code = v.get("StatusCode").and_then(|c| c.as_i64()).unwrap_or(-1);
            let err = v
                .get("Error")
                .and_then(|e| e.get("Message"))
                .and_then(|m| m.as_str())
                .filter(|m| !m.is_empty())
                .map(str::to_string);
            Ok((code, err))
        });
        Ok(WaitHandle { task })
    }
}

/// `1.41` → (1, 41).
fn parse_version(s: &str) -> Option<(usize, usize)> {
    let (a, b) = s.trim().split_once('.')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

pub struct Hijacked {
    pub read: ReadHalf<TokioIo<hyper::upgrade::Upgraded>>,
    pub write: WriteHalf<TokioIo<hyper::upgrade::Upgraded>>,
}

pub struct WaitHandle {
    task: tokio::task::JoinHandle<Result<(i64, Option<String>)>>,
}
impl WaitHandle {
    pub async fn result(self) -> Result<(i64, Option<String>)> {
        self.task.await?
    }
    pub fn abort(self) {
        self.task.abort();
    }
}

async fn check(resp: Response<Incoming>) -> Result<Response<Incoming>> {
    let status = resp.status();
    if status.is_success()
        || status == StatusCode::SWITCHING_PROTOCOLS
        || status == StatusCode::NOT_MODIFIED
    {
        return Ok(resp);
    }
    let bytes = resp
        .into_body()
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    Err(ApiError {
        status: status.as_u16(),
        message: error_message(&bytes),
    }
    .into())
}

pub fn error_message(bytes: &[u8]) -> String {
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(bytes) {
        if let Some(m) = v.get("message").and_then(|m| m.as_str()) {
            return m.to_string();
        }
    }
    String::from_utf8_lossy(bytes).trim_end().to_string()
}

/// Reads a chunked body as newline-separated records (JSON-message streams).
pub struct LineReader {
    body: Incoming,
    buf: BytesMut,
    done: bool,
}

impl LineReader {
    pub fn new(resp: Response<Incoming>) -> Self {
        LineReader {
            body: resp.into_body(),
            buf: BytesMut::new(),
            done: false,
        }
    }

    /// Next non-empty line (without the trailing `\r\n`), or None at the end.
    pub async fn next_line(&mut self) -> Result<Option<Bytes>> {
        loop {
            if let Some(pos) = self.buf.iter().position(|b| *b == b'\n') {
                let mut line = self.buf.split_to(pos + 1);
                while line.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                    line.truncate(line.len() - 1);
                }
                if line.iter().all(|b| b.is_ascii_whitespace()) {
                    continue;
                }
                return Ok(Some(line.freeze()));
            }
            if self.done {
                if self.buf.iter().all(|b| b.is_ascii_whitespace()) {
                    return Ok(None);
                }
                return Ok(Some(self.buf.split().freeze()));
            }
            match self.body.frame().await {
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        self.buf.extend_from_slice(&data);
                    }
                }
                Some(Err(e)) => return Err(e.into()),
                None => self.done = true,
            }
        }
    }

    pub async fn next_json<T: DeserializeOwned>(&mut self) -> Result<Option<T>> {
        match self.next_line().await? {
            Some(l) => Ok(Some(serde_json::from_slice(&l).with_context(|| {
                format!("decoding {:?}", String::from_utf8_lossy(&l))
            })?)),
            None => Ok(None),
        }
    }
}

/// Reads a body chunk by chunk (raw bytes).
pub async fn next_chunk(body: &mut Incoming) -> Result<Option<Bytes>> {
    loop {
        match body.frame().await {
            Some(Ok(frame)) => {
                if let Ok(d) = frame.into_data() {
                    return Ok(Some(d));
                }
            }
            Some(Err(e)) => return Err(e.into()),
            None => return Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_resolution() {
        assert_eq!(
            resolve_socket(None).unwrap(),
            (PathBuf::from(DEFAULT_SOCKET), true)
        );
        assert_eq!(
            resolve_socket(Some("unix:///tmp/x.sock")).unwrap(),
            (PathBuf::from("/tmp/x.sock"), false)
        );
        assert!(resolve_socket(Some("http://1.2.3.4")).is_err());
    }

    #[test]
    fn query_encoding() {
        let q = Query::new()
            .add("fromImage", "127.0.0.1:5000/myapp")
            .add("changes", "CMD [\"sh\"]")
            .add("changes", "ENV X=1");
        assert_eq!(
            q.encode(),
            "fromImage=127.0.0.1%3A5000%2Fmyapp&changes=CMD+%5B%22sh%22%5D&changes=ENV+X%3D1"
        );
    }

    #[test]
    fn filters_map_form() {
        assert_eq!(filters_json(&[]), None);
        let f = filters_json(&[
            "name=c2".into(),
            "status=running".into(),
            "status=exited".into(),
        ])
        .unwrap();
        let v: serde_json::Value = serde_json::from_str(&f).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"name":{"c2":true},"status":{"running":true,"exited":true}})
        );
    }

    #[test]
    fn error_bodies() {
        assert_eq!(
            error_message(br#"{"message":"No such image: x"}"#),
            "No such image: x"
        );
        assert_eq!(error_message(b"plain text\n"), "plain text");
    }

    /// A daemon on a unix socket that answers every request with `{}` (and `/stream`
    /// with a body it has not finished), counting the connections it accepts.
    async fn counting_daemon(sock: &Path) -> Arc<std::sync::atomic::AtomicUsize> {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let listener = tokio::net::UnixListener::bind(sock).unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            while let Ok((io, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(|req: Request<Incoming>| async move {
                        let body = if req.uri().path().ends_with("/stream") {
                            let (tx, rx) = tokio::sync::mpsc::channel(1);
                            tokio::spawn(async move {
                                let _ = tx.send(Ok(Bytes::from_static(b"{}\n"))).await;
                                tokio::time::sleep(Duration::from_secs(30)).await;
                            });
                            channel_body(rx)
                        } else {
                            full("{}")
                        };
                        Ok::<_, std::convert::Infallible>(
                            Response::builder().header("Api-Version", "1.41").body(body).unwrap(),
                        )
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(io), svc)
                        .await;
                });
            }
        });
        accepted
    }

    #[tokio::test]
    async fn a_connection_whose_answer_was_read_carries_the_next_request() {
        use std::sync::atomic::Ordering;
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("d.sock");
        let accepted = counting_daemon(&sock).await;
        let host = format!("unix://{}", sock.display());
        let c = Client::connect(Some(&host), &TlsOptions::default()).await.unwrap();
        let _: serde_json::Value = c.post_json("/containers/create", &Query::new(), None).await.unwrap();
        let _: serde_json::Value = c.get_json("/containers/x/json", &Query::new()).await.unwrap();
        c.start_container("x").await.unwrap();
        assert_eq!(accepted.load(Ordering::SeqCst), 1, "ping, create, inspect and start on one connection");

        // An answer still being read (a wait, a log stream) keeps its connection: the
        // next request goes on a new one.
        let mut streaming = c.request(Method::GET, "/stream", &Query::new(), &[], empty()).await.unwrap();
        assert_eq!(next_chunk(streaming.body_mut()).await.unwrap().as_deref(), Some(&b"{}\n"[..]));
        c.start_container("x").await.unwrap();
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
    }
}
