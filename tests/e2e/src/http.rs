//! A tiny HTTP/1.1 client over a unix socket, for API-level assertions.
//! One request per connection (`Connection: close`); chunked responses are decoded.

use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Read an answer's status line and headers from `s`, up to the blank line, byte by
/// byte (what follows stays unread).
pub fn read_head(s: &mut impl io::Read) -> String {
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(s.read(&mut b).unwrap(), 1, "the connection ended in the head: {}", String::from_utf8_lossy(&head));
        head.push(b[0]);
    }
    String::from_utf8_lossy(&head).into_owned()
}

#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// First header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body parsed as one JSON value; panics with the body if it is not JSON.
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "status {} body is not JSON ({e}): {}",
                self.status,
                self.text()
            )
        })
    }

    /// A JSON-message stream (`{..}\r\n{..}\r\n`, as import/pull/load answer) split into values;
    /// lines that are not JSON are skipped.
    pub fn json_stream(&self) -> Vec<serde_json::Value> {
        let text = self.text();
        serde_json::Deserializer::from_str(&text)
            .into_iter::<serde_json::Value>()
            .map_while(Result::ok)
            .collect()
    }

    /// The `message` field of a JSON error body, or the whole body.
    pub fn message(&self) -> String {
        serde_json::from_slice::<serde_json::Value>(&self.body)
            .ok()
            .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(str::to_owned))
            .unwrap_or_else(|| self.text())
    }
}

/// HTTP over one unix socket path.
#[derive(Debug, Clone)]
pub struct UnixHttp {
    pub socket: PathBuf,
    pub timeout: Duration,
}

/// How to send a request body.
pub enum Body<'a> {
    None,
    /// `Content-Length` body with this content type.
    Fixed(&'a str, &'a [u8]),
    /// `Transfer-Encoding: chunked`, as the docker CLI streams uploads.
    Chunked(&'a str, &'a [u8]),
}

impl UnixHttp {
    pub fn new(socket: &Path) -> UnixHttp {
        UnixHttp {
            socket: socket.to_path_buf(),
            timeout: Duration::from_secs(60),
        }
    }

    pub fn get(&self, path: &str) -> io::Result<HttpResponse> {
        self.request("GET", path, Body::None)
    }

    pub fn request(&self, method: &str, path: &str, body: Body<'_>) -> io::Result<HttpResponse> {
        let mut stream = UnixStream::connect(&self.socket)?;
        stream.set_read_timeout(Some(self.timeout))?;
        stream.set_write_timeout(Some(self.timeout))?;
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: api.moby.localhost\r\nUser-Agent: berth-e2e\r\nConnection: close\r\n"
        )
        .into_bytes();
        match body {
            Body::None => {
                if method == "POST" || method == "PUT" {
                    req.extend_from_slice(b"Content-Length: 0\r\n");
                }
                req.extend_from_slice(b"\r\n");
            }
            Body::Fixed(ct, data) => {
                req.extend_from_slice(
                    format!(
                        "Content-Type: {ct}\r\nContent-Length: {}\r\n\r\n",
                        data.len()
                    )
                    .as_bytes(),
                );
                req.extend_from_slice(data);
            }
            Body::Chunked(ct, data) => {
                req.extend_from_slice(
                    format!("Content-Type: {ct}\r\nTransfer-Encoding: chunked\r\n\r\n").as_bytes(),
                );
                for chunk in data.chunks(32 * 1024) {
                    req.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
                    req.extend_from_slice(chunk);
                    req.extend_from_slice(b"\r\n");
                }
                req.extend_from_slice(b"0\r\n\r\n");
            }
        }
        // The server may answer (an error) and close before reading the whole body;
        // still read what it said.
        let write_err = stream.write_all(&req).and_then(|_| stream.flush()).err();
        match read_response(BufReader::new(stream), method == "HEAD") {
            Ok(r) => Ok(r),
            Err(e) => Err(write_err.unwrap_or(e)),
        }
    }
}

fn read_response(mut r: impl BufRead, head: bool) -> io::Result<HttpResponse> {
    let mut line = String::new();
    r.read_line(&mut line)?;
    let mut parts = line.trim_end().splitn(3, ' ');
    let proto = parts.next().unwrap_or("");
    if !proto.starts_with("HTTP/") {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("bad status line {line:?}"),
        ));
    }
    let status: u16 = parts.next().and_then(|s| s.parse().ok()).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("bad status line {line:?}"),
        )
    })?;
    let mut headers = Vec::new();
    loop {
        line.clear();
        if r.read_line(&mut line)? == 0 {
            break;
        }
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    let resp = HttpResponse {
        status,
        headers,
        body: Vec::new(),
    };
    if head || status == 204 || status == 304 || (100..200).contains(&status) {
        return Ok(resp);
    }
    let chunked = resp
        .header("transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    let length = resp
        .header("content-length")
        .and_then(|v| v.parse::<usize>().ok());
    let mut body = Vec::new();
    if chunked {
        loop {
            line.clear();
            if r.read_line(&mut line)? == 0 {
                break; // server closed without the last chunk
            }
            let size_str = line.trim_end().split(';').next().unwrap_or("");
            let size = usize::from_str_radix(size_str.trim(), 16).map_err(|_| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("bad chunk size {line:?}"),
                )
            })?;
            if size == 0 {
                break;
            }
            let start = body.len();
            body.resize(start + size, 0);
            r.read_exact(&mut body[start..])?;
            let mut crlf = [0u8; 2];
            r.read_exact(&mut crlf)?;
        }
    } else if let Some(n) = length {
        body.resize(n, 0);
        r.read_exact(&mut body)?;
    } else {
        r.read_to_end(&mut body)?;
    }
    Ok(HttpResponse { body, ..resp })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    #[test]
    fn parses_chunked_and_fixed() {
        let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nApi-Version: 1.41\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
        let r = read_response(Cursor::new(&raw[..]), false).unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.body, b"abcde");
        assert_eq!(r.header("api-version"), Some("1.41"));

        let raw =
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 27\r\n\r\n{\"message\":\"No such image\"}";
        let r = read_response(Cursor::new(&raw[..]), false).unwrap();
        assert_eq!(r.status, 404);
        assert_eq!(r.message(), "No such image");

        let raw = b"HTTP/1.1 204 No Content\r\n\r\n";
        assert!(read_response(Cursor::new(&raw[..]), false)
            .unwrap()
            .body
            .is_empty());
    }

    #[test]
    fn json_stream_splits_messages() {
        let r = HttpResponse {
            status: 200,
            headers: vec![],
            body: b"{\"status\":\"a\"}\r\n{\"error\":\"b\"}\r\n".to_vec(),
        };
        let v = r.json_stream();
        assert_eq!(v.len(), 2);
        assert_eq!(v[1]["error"], "b");
    }

    #[test]
    fn round_trip_over_a_real_socket() {
        use std::os::unix::net::UnixListener;
        let dir = crate::unique_tmp_dir("berth-e2e-httptest");
        let sock = dir.join("s.sock");
        let listener = UnixListener::bind(&sock).unwrap();
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut req = Vec::new();
            // read headers + chunked body until the terminating chunk
            loop {
                let mut l = String::new();
                if r.read_line(&mut l).unwrap() == 0 || l == "0\r\n" {
                    break;
                }
                req.extend_from_slice(l.as_bytes());
            }
            s.write_all(b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok")
                .unwrap();
            String::from_utf8(req).unwrap()
        });
        let c = UnixHttp::new(&sock);
        let r = c
            .request("POST", "/v1.41/x", Body::Chunked("text/plain", b"hello"))
            .unwrap();
        assert_eq!((r.status, r.text().as_str()), (201, "ok"));
        let req = server.join().unwrap();
        assert!(req.starts_with("POST /v1.41/x HTTP/1.1\r\n"), "{req}");
        assert!(req.contains("Transfer-Encoding: chunked"));
        assert!(req.contains("5\r\nhello\r\n"));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
