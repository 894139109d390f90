//! HTTP plumbing: the response body type, JSON and error responses, query access.

use std::collections::HashMap;
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use berth_errdefs::Error;
use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode};
use http_body_util::Full;
use hyper::body::{Body as HttpBody, Frame, Incoming};
use tokio::sync::mpsc;

/// A response body: either complete bytes or a stream fed through a channel.
pub enum Body {
    Full(Full<Bytes>),
    /// The stream ends when the channel closes, or when the client has gone away
    /// ([`Peer::watch`]): hyper then drops the receiver and the task feeding it sees
    /// its `Sender::closed`.
    Channel(mpsc::Receiver<Bytes>, Option<Hangup>),
}

/// Resolves once the client has closed its connection.
pub type Hangup = Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

impl HttpBody for Body {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<std::result::Result<Frame<Bytes>, Infallible>>> {
        match self.get_mut() {
            Body::Full(f) => Pin::new(f).poll_frame(cx),
            Body::Channel(rx, hangup) => match rx.poll_recv(cx) {
                Poll::Ready(o) => Poll::Ready(o.map(|b| Ok(Frame::data(b)))),
                Poll::Pending => match hangup.as_mut().map(|h| std::future::Future::poll(h.as_mut(), cx)) {
                    Some(Poll::Ready(())) => Poll::Ready(None),
                    _ => Poll::Pending,
                },
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Body::Full(f) => f.is_end_stream(),
            Body::Channel(..) => false,
        }
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        match self {
            Body::Full(f) => f.size_hint(),
            Body::Channel(..) => hyper::body::SizeHint::default(),
        }
    }
}

/// The socket of the connection a request came on (a request extension).
///
/// hyper serves connections with `half_close` (a client may shut its write side once
/// its request is out, and is still answered), so it does not read a connection while
/// an answer is pending and never sees a client that left meanwhile: the `wait` that
/// `docker run -d` opens and drops stayed, with its connection, until the container
/// exited. Go's server notices with a background read; here a streamed answer watches
/// the socket for the client's leaving. A unix socket tells a hangup (both directions
/// closed) from a half close (`system dial-stdio` at the end of its stdin, still owed
/// its answer). Over TCP a close is a FIN, as a half close is: there the end of the
/// client's side counts, as it does for Go's server.
#[derive(Clone, Copy, Debug)]
pub enum Peer {
    Unix(std::os::fd::RawFd),
    Tcp(std::os::fd::RawFd),
}

impl Peer {
    /// Make `resp`'s stream end when the client hangs up. Called while the request is
    /// served, so the connection (and its descriptor, which is duplicated here) is open.
    pub fn watch(self, resp: &mut Resp) {
        if let Body::Channel(_, hangup @ None) = resp.body_mut() {
            *hangup = self.hangup();
        }
    }

    fn hangup(self) -> Option<Hangup> {
        use std::os::fd::BorrowedFd;
        use tokio::io::Interest;
        let (raw, interest) = match self {
            Peer::Unix(fd) => (fd, Interest::PRIORITY),
            Peer::Tcp(fd) => (fd, Interest::READABLE),
        };
        // SAFETY: the connection's socket is open while its request is served (see
        // `watch`); the duplicate is owned from here on.
        let fd = unsafe { BorrowedFd::borrow_raw(raw) }.try_clone_to_owned().ok()?;
        // A unix socket's is registered for urgent data only, which it never has: epoll
        // reports a hangup to every registration whatever it asked for, and nothing
        // else wakes this one (a half close, a request pipelined behind this one, room
        // to write would each wake a reader or a writer, on every answer). A TCP
        // socket's is registered for reading: the FIN ends its readable side.
        // SAFETY: the `OwnedFd` stays open, and the same descriptor, for as long as the
        // `AsyncFd` owns it.
        let fd = unsafe { tokio::io::unix::AsyncFd::register_with_interest(fd, interest) }.ok()?;
        Some(Box::pin(async move {
            loop {
                let Ok(mut ready) = fd.ready(interest).await else {
                    return std::future::pending().await;
                };
                // (a hangup sets "read closed" too)
                if ready.ready().is_read_closed() {
                    return;
                }
                ready.clear_ready();
            }
        }))
    }
}

pub type Resp = Response<Body>;
pub type Result<T = Resp> = std::result::Result<T, Error>;

/// A response with the given status and bytes.
pub fn bytes(status: u16, content_type: Option<&str>, b: impl Into<Bytes>) -> Resp {
    let mut r = Response::new(Body::Full(Full::new(b.into())));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if let Some(ct) = content_type {
        r.headers_mut().insert(http::header::CONTENT_TYPE, HeaderValue::from_str(ct).expect("static content type"));
    }
    r
}

/// A JSON response.
pub fn json<T: serde::Serialize>(status: u16, v: &T) -> Resp {
    match serde_json::to_vec(v) {
        Ok(mut b) => {
            b.push(b'\n');
            bytes(status, Some("application/json"), b)
        }
        Err(e) => error(&Error::internal(e.to_string())),
    }
}

/// An empty response (204, 201...).
pub fn empty(status: u16) -> Resp {
    bytes(status, None, Bytes::new())
}

/// Docker's error body: `{"message": ...}` with the kind's status.
pub fn error(e: &Error) -> Resp {
    let status = e.kind().http_status();
    if status == 304 {
        return empty(304);
    }
    json(status, &serde_json::json!({ "message": e.message() }))
}

/// The error body for clients of API 1.23 and older: the message as plain text.
pub fn error_text(e: &Error) -> Resp {
    let status = e.kind().http_status();
    if status == 304 {
        return empty(304);
    }
    bytes(status, Some("text/plain; charset=utf-8"), Bytes::from(format!("{}\n", e.message())))
}

/// A streaming response: headers go out at once; the caller feeds the channel.
pub fn stream(status: u16, content_type: Option<&str>) -> (mpsc::Sender<Bytes>, Resp) {
    let (tx, rx) = mpsc::channel(64);
    let mut r = Response::new(Body::Channel(rx, None));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    if let Some(ct) = content_type {
        r.headers_mut().insert(http::header::CONTENT_TYPE, HeaderValue::from_str(ct).expect("static content type"));
    }
    (tx, r)
}

/// Run blocking work (metadata reads, file reads, anything that may take more than a
/// few microseconds) on the blocking pool, so that no request holds up the runtime's
/// workers and the others (`/_ping` among them) are answered meanwhile.
pub async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f).await.map_err(|e| Error::internal(format!("blocking task failed: {e}")))?
}

/// Parsed query string (repeated keys keep every value).
#[derive(Debug, Default, Clone)]
pub struct Query(HashMap<String, Vec<String>>);

impl Query {
    pub fn parse(q: Option<&str>) -> Query {
        let mut m: HashMap<String, Vec<String>> = HashMap::new();
        if let Some(q) = q {
            for (k, v) in url::form_urlencoded::parse(q.as_bytes()) {
                m.entry(k.into_owned()).or_default().push(v.into_owned());
            }
        }
        Query(m)
    }
    pub fn get(&self, k: &str) -> Option<&str> {
        self.0.get(k).and_then(|v| v.first()).map(String::as_str)
    }
    pub fn all(&self, k: &str) -> &[String] {
        self.0.get(k).map(Vec::as_slice).unwrap_or(&[])
    }
    pub fn str(&self, k: &str) -> &str {
        self.get(k).unwrap_or("")
    }
    pub fn bool(&self, k: &str) -> bool {
        self.get(k).map(berth_api::query::parse_bool).unwrap_or(false)
    }
    /// A boolean with a default for when it is absent.
    pub fn bool_or(&self, k: &str, default: bool) -> bool {
        self.get(k).map(berth_api::query::parse_bool).unwrap_or(default)
    }
    pub fn int(&self, k: &str) -> Result<Option<i64>> {
        match self.get(k) {
            None | Some("") => Ok(None),
            Some(v) => v
                .parse::<i64>()
                .map(Some)
                .map_err(|_| Error::invalid(format!("invalid value for {k}: {v}"))),
        }
    }
    pub fn filters(&self) -> Result<berth_api::query::Filters> {
        berth_api::query::Filters::parse(self.str("filters"))
    }
}

/// The largest JSON body berthd reads. Real clients send a few KiB (a `docker run`
/// create body is ~2 KiB, compose's are alike); the kernel refuses an argv or
/// environment over 2 MiB anyway, so nothing a container can run needs more.
pub const MAX_JSON_BODY: usize = 4 << 20;

/// How much of an oversized body is read (and dropped) so that the client gets the
/// 413 rather than a broken pipe; past this the connection is simply closed.
pub const MAX_DISCARD: usize = 256 << 20;

/// Read a whole (small) request body: at most [`MAX_JSON_BODY`] bytes, else 413.
pub async fn body_bytes(b: Incoming) -> Result<Bytes> {
    body_bytes_limit(b, MAX_JSON_BODY).await
}

/// Read a whole request body of at most `limit` bytes; a longer one is drained (up to
/// a bound, holding none of it) and refused with 413.
pub async fn body_bytes_limit(b: Incoming, limit: usize) -> Result<Bytes> {
    use futures_util::StreamExt;
    let too_big = |n: usize| {
        Error::too_large(format!("request body too large: more than {n} bytes (the limit is {limit} bytes)"))
    };
    let mut body = http_body_util::BodyStream::new(b);
    let mut buf = bytes::BytesMut::new();
    let mut seen = 0usize;
    while let Some(frame) = body.next().await {
        let frame = frame.map_err(|e| Error::invalid(format!("read request body: {e}")))?;
        let Ok(data) = frame.into_data() else { continue };
        seen += data.len();
        if seen > limit {
            if seen > MAX_DISCARD {
                return Err(too_big(seen));
            }
            continue;
        }
        buf.extend_from_slice(&data);
    }
    if seen > limit {
        return Err(too_big(seen));
    }
    Ok(buf.freeze())
}

/// A request body up to `mem_limit` bytes in memory, a longer one spooled to a file
/// under `<data-root>/tmp` (which the caller removes).
pub enum Upload {
    Memory(Bytes),
    File(std::path::PathBuf),
}

impl Upload {
    /// A reader over the body.
    pub fn reader(&self) -> std::io::Result<Box<dyn std::io::Read + Send>> {
        Ok(match self {
            Upload::Memory(b) => Box::new(std::io::Cursor::new(b.clone())),
            Upload::File(p) => Box::new(std::fs::File::open(p)?),
        })
    }

    pub fn is_empty(&self) -> bool {
        match self {
            Upload::Memory(b) => b.is_empty(),
            Upload::File(p) => std::fs::metadata(p).map(|m| m.len() == 0).unwrap_or(true),
        }
    }

    /// Remove the spool file, if any.
    pub fn discard(self) {
        if let Upload::File(p) = self {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Read a body into memory while it is small, to a spool file once it is not, so an
/// upload of any size holds at most `mem_limit` bytes.
pub async fn body_upload(data_root: &std::path::Path, b: Incoming, prefix: &str, mem_limit: usize) -> Result<Upload> {
    use futures_util::StreamExt;
    use std::io::Write;
    let mut body = http_body_util::BodyStream::new(b);
    let mut buf = bytes::BytesMut::new();
    let mut file: Option<(std::path::PathBuf, std::fs::File)> = None;
    while let Some(frame) = body.next().await {
        let frame = match frame {
            Ok(f) => f,
            Err(e) => {
                if let Some((p, _)) = file {
                    let _ = std::fs::remove_file(p);
                }
                return Err(Error::invalid(format!("read request body: {e}")));
            }
        };
        let Ok(data) = frame.into_data() else { continue };
        if file.is_none() && buf.len() + data.len() > mem_limit {
            let dir = data_root.join("tmp");
            std::fs::create_dir_all(&dir)?;
            let path = dir.join(format!("{prefix}-{:016x}", rand::random::<u64>()));
            let mut f = std::fs::File::create(&path)?;
            f.write_all(&buf)?;
            buf.clear();
            file = Some((path, f));
        }
        match &mut file {
            Some((p, f)) => {
                if let Err(e) = f.write_all(&data) {
                    let _ = std::fs::remove_file(p);
                    return Err(e.into());
                }
            }
            None => buf.extend_from_slice(&data),
        }
    }
    Ok(match file {
        Some((p, _)) => Upload::File(p),
        None => Upload::Memory(buf.freeze()),
    })
}

/// Read and drop a request body (so the client sees the answer, not a broken pipe).
pub async fn drain_body(b: Incoming) {
    use futures_util::StreamExt;
    let mut body = http_body_util::BodyStream::new(b);
    let mut seen = 0usize;
    while let Some(Ok(frame)) = body.next().await {
        seen += frame.data_ref().map_or(0, |d| d.len());
        if seen > MAX_DISCARD {
            return;
        }
    }
}

fn invalid_json(e: serde_json::Error) -> Error {
    Error::invalid(format!("invalid JSON: {e}"))
}

/// A JSON request body as the document sent; an empty body is `None`.
async fn body_document(b: Incoming) -> Result<Option<serde_json::Value>> {
    let raw = body_bytes(b).await?;
    if raw.iter().all(|c| c.is_ascii_whitespace()) {
        return Ok(None);
    }
    serde_json::from_slice(&raw).map(Some).map_err(invalid_json)
}

/// A JSON request body as the document sent; an empty body is `null`.
pub async fn body_value(b: Incoming) -> Result<serde_json::Value> {
    Ok(body_document(b).await?.unwrap_or_default())
}

/// Decode a JSON request body into a model, its keys matched to fields in any case
/// as dockerd's decoder matches them; an empty body decodes as `T::default()`.
pub async fn body_json<T: serde::de::DeserializeOwned + Default>(b: Incoming) -> Result<T> {
    match body_document(b).await? {
        Some(v) => berth_api::gojson::from_value(v).map_err(invalid_json),
        None => Ok(T::default()),
    }
}

/// Write a JSON value as one stream message (`\r\n` for progress streams).
pub fn json_line<T: serde::Serialize>(v: &T, crlf: bool) -> Bytes {
    let mut b = serde_json::to_vec(v).unwrap_or_default();
    if crlf {
        b.push(b'\r');
    }
    b.push(b'\n');
    Bytes::from(b)
}

/// Stream a (possibly large) request body into a new file under `<data-root>/tmp`
/// and return its path; the caller removes it.
pub async fn spool_body(data_root: &std::path::Path, b: Incoming, prefix: &str) -> Result<std::path::PathBuf> {
    match body_upload(data_root, b, prefix, 0).await? {
        Upload::File(p) => Ok(p),
        Upload::Memory(_) => {
            let dir = data_root.join("tmp");
            std::fs::create_dir_all(&dir)?;
            let path = dir.join(format!("{prefix}-{:016x}", rand::random::<u64>()));
            std::fs::File::create(&path)?;
            Ok(path)
        }
    }
}

/// A `Write` for blocking code that sends what it writes as response chunks.
pub struct ChanWriter(pub mpsc::Sender<Bytes>);

impl std::io::Write for ChanWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .blocking_send(Bytes::copy_from_slice(buf))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "client went away"))?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A blocking `Read` over a request body as it arrives (for code on the blocking
/// pool that consumes an upload without holding it: `PUT /containers/{id}/archive`).
/// At most a few frames are buffered; dropping the reader stops the pump.
pub struct BodyReader {
    rx: mpsc::Receiver<std::io::Result<Bytes>>,
    cur: Bytes,
}

impl BodyReader {
    pub fn new(b: Incoming) -> BodyReader {
        use futures_util::StreamExt;
        let (tx, rx) = mpsc::channel::<std::io::Result<Bytes>>(16);
        tokio::spawn(async move {
            let mut body = http_body_util::BodyStream::new(b);
            while let Some(frame) = body.next().await {
                let item = match frame {
                    Ok(f) => match f.into_data() {
                        Ok(d) => Ok(d),
                        Err(_) => continue,
                    },
                    Err(e) => Err(std::io::Error::other(format!("read request body: {e}"))),
                };
                let stop = item.is_err();
                if tx.send(item).await.is_err() || stop {
                    return;
                }
            }
        });
        BodyReader { rx, cur: Bytes::new() }
    }
}

impl std::io::Read for BodyReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.cur.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(b)) => self.cur = b,
                Some(Err(e)) => return Err(e),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.cur.len());
        buf[..n].copy_from_slice(&self.cur.split_to(n));
        Ok(n)
    }
}
