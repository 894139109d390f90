//! `ADD <url>`: download an http(s) source, verify `--checksum`, and name the file
//! as Docker does (the last path segment; mode 0600; `Last-Modified` as mtime).

use std::io::Read;

use berth_errdefs::{Error, Result};
use sha2::{Digest, Sha256, Sha384, Sha512};

use crate::copy::InlineSource;

/// An http or https URL (ADD downloads those).
pub fn is_url(s: &str) -> bool {
    let l = s.to_ascii_lowercase();
    l.starts_with("http://") || l.starts_with("https://")
}

/// A git source (`git@host:repo`, `git://…`, `https://…/repo.git[#ref]`).
pub fn is_git(s: &str) -> bool {
    let l = s.to_ascii_lowercase();
    if l.starts_with("git@") || l.starts_with("git://") || l.starts_with("ssh://") {
        return true;
    }
    if !is_url(&l) {
        return false;
    }
    let no_frag = l.split('#').next().unwrap_or(&l);
    no_frag.trim_end_matches('/').ends_with(".git")
}

/// The file name a download gets: the URL path's last segment (`__unnamed__` when
/// there is none), as BuildKit names it.
pub fn url_filename(url: &str) -> String {
    let path = url::Url::parse(url)
        .map(|u| u.path().to_owned())
        .unwrap_or_default();
    let base = path.trim_end_matches('/').rsplit('/').next().unwrap_or("");
    let base = percent_decode(base);
    if base.is_empty() || base == "." || path.ends_with('/') {
        "__unnamed__".into()
    } else {
        base
    }
}

fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// Check a `--checksum` value's form (`sha256:<64 hex>`, sha384, sha512).
pub fn parse_checksum(c: &str) -> Result<(&str, &str)> {
    let bad = || Error::invalid(format!("invalid checksum digest format: {c}"));
    let (alg, hex) = c.split_once(':').ok_or_else(bad)?;
    let len = match alg {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        _ => return Err(Error::invalid(format!("unsupported digest algorithm: {c}"))),
    };
    if hex.len() != len || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(bad());
    }
    Ok((alg, hex))
}

/// Verify `data` against `--checksum` (BuildKit's `digest mismatch <got>: <want>`).
pub fn verify_checksum(data: &[u8], checksum: &str) -> Result<()> {
    let (alg, _) = parse_checksum(checksum)?;
    let got = match alg {
        "sha256" => hex::encode(Sha256::digest(data)),
        "sha384" => hex::encode(Sha384::digest(data)),
        _ => hex::encode(Sha512::digest(data)),
    };
    let got = format!("{alg}:{got}");
    if got != checksum {
        return Err(Error::invalid(format!("digest mismatch {got}: {checksum}")));
    }
    Ok(())
}

/// Download `url` for ADD: the body, named after the URL, mode 0600, mtime from
/// `Last-Modified` (else now). `checksum` (may be empty) is verified.
pub fn fetch(url: &str, checksum: &str, unpack: bool) -> Result<InlineSource> {
    if !checksum.is_empty() {
        parse_checksum(checksum)?;
    }
    // The environment's proxies as dockerd's Go client uses them (never for loopback).
    let mut client = reqwest::blocking::Client::builder().user_agent("berth-builder").no_proxy();
    for p in berth_distribution::client::go_proxies() {
        client = client.proxy(p);
    }
    let client = client.build().map_err(|e| Error::internal(format!("http client: {e}")))?;
    let resp = client
        .get(url)
        .send()
        .map_err(|e| Error::invalid(format!("failed to GET {url}: {e}")))?;
    let status = resp.status();
    if !status.is_success() {
        return Err(Error::invalid(format!(
            "failed to GET {url} with status {status}"
        )));
    }
    let mtime = resp
        .headers()
        .get(reqwest::header::LAST_MODIFIED)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| chrono::DateTime::parse_from_rfc2822(v).ok())
        .map(|t| t.timestamp().max(0) as u64)
        .unwrap_or_else(|| chrono::Utc::now().timestamp().max(0) as u64);
    let mut data = Vec::new();
    resp.take(u64::MAX)
        .read_to_end(&mut data)
        .map_err(|e| Error::invalid(format!("failed to read {url}: {e}")))?;
    if !checksum.is_empty() {
        verify_checksum(&data, checksum)?;
    }
    Ok(InlineSource {
        name: url_filename(url),
        data,
        mode: 0o600,
        mtime,
        unpack,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// A one-shot HTTP server on 127.0.0.1 answering every request with `resp`.
    fn serve(resp: Vec<u8>, n: usize) -> String {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        std::thread::spawn(move || {
            for s in l.incoming().take(n) {
                let mut s = s.unwrap();
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf);
                let _ = s.write_all(&resp);
            }
        });
        format!("http://{addr}")
    }

    #[test]
    fn names_and_kinds() {
        assert_eq!(url_filename("http://h/a/b.txt?x=1"), "b.txt");
        assert_eq!(url_filename("http://h/a/"), "__unnamed__");
        assert_eq!(url_filename("http://h"), "__unnamed__");
        assert_eq!(url_filename("http://h/a%20b"), "a b");
        assert!(is_url("HTTPS://x/y") && !is_url("x/y"));
        assert!(is_git("https://github.com/a/b.git#main"));
        assert!(is_git("git@github.com:a/b.git"));
        assert!(!is_git("https://example.com/file.tar"));
    }

    #[test]
    fn checksums() {
        let good = format!("sha256:{}", hex::encode(Sha256::digest(b"hi")));
        verify_checksum(b"hi", &good).unwrap();
        let e = verify_checksum(b"ho", &good).unwrap_err();
        assert!(e.message().starts_with("digest mismatch sha256:"), "{e}");
        assert!(parse_checksum("sha256:abc").is_err());
        assert!(parse_checksum("md5:abc").is_err());
    }

    #[test]
    fn downloads_from_a_loopback_server() {
        let body = b"remote content\n";
        let resp = [
            format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nLast-Modified: Wed, 21 Oct 2015 07:28:00 GMT\r\nConnection: close\r\n\r\n",
                body.len()
            )
            .into_bytes(),
            body.to_vec(),
        ]
        .concat();
        let base = serve(resp, 2);
        let f = fetch(&format!("{base}/dir/file.txt"), "", false).unwrap();
        assert_eq!(
            (f.name.as_str(), f.data.as_slice(), f.mode, f.mtime),
            ("file.txt", &body[..], 0o600, 1445412480)
        );
        let sum = format!("sha256:{}", hex::encode(Sha256::digest(b"other")));
        let e = fetch(&format!("{base}/file.txt"), &sum, false).unwrap_err();
        assert!(e.message().contains("digest mismatch"), "{e}");
        let base = serve(
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_vec(),
            1,
        );
        let e = fetch(&format!("{base}/missing"), "", false).unwrap_err();
        assert!(e.message().contains("404"), "{e}");
    }
}
