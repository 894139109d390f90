//! Parsing of what a request says, apart from the server so it can be tested (and
//! fuzzed) without one: the route of a path, the `Range` and `Content-Range` headers.

/// What a request path names (names and references percent-decoded, not yet validated).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Base,
    Catalog,
    Tags(String),
    Manifest(String, String),
    Blob(String, String),
    UploadStart(String),
    Upload(String, String),
    Referrers(String, String),
}

/// The route of a request path, or `None` for a path outside the API (404).
pub fn parse_route(path: &str) -> Option<Route> {
    let rest = path.strip_prefix("/v2")?;
    if rest.is_empty() || rest == "/" {
        return Some(Route::Base);
    }
    let rest = rest.strip_prefix('/')?;
    if rest == "_catalog" {
        return Some(Route::Catalog);
    }
    let segs: Vec<String> = rest
        .split('/')
        .map(|s| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect();
    let n = segs.len();
    let name = |k: usize| (n > k).then(|| segs[..n - k].join("/"));
    let last = |i: usize| segs.get(n.wrapping_sub(i)).map(String::as_str);
    if last(2) == Some("tags") && last(1) == Some("list") {
        return name(2).map(Route::Tags);
    }
    if last(3) == Some("blobs") && last(2) == Some("uploads") {
        let nm = name(3)?;
        return Some(if segs[n - 1].is_empty() {
            Route::UploadStart(nm)
        } else {
            Route::Upload(nm, segs[n - 1].clone())
        });
    }
    if last(2) == Some("blobs") && last(1) == Some("uploads") {
        return name(2).map(Route::UploadStart);
    }
    match last(2) {
        Some("manifests") => name(2).map(|nm| Route::Manifest(nm, segs[n - 1].clone())),
        Some("blobs") => name(2).map(|nm| Route::Blob(nm, segs[n - 1].clone())),
        Some("referrers") => name(2).map(|nm| Route::Referrers(nm, segs[n - 1].clone())),
        _ => None,
    }
}

/// A `Range` the blob cannot satisfy (answered with 416).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unsatisfiable;

/// A byte range of a blob of `size` bytes asked by a `Range` header:
/// Ok(None) = serve all, Err = 416.
pub fn parse_range(h: &str, size: u64) -> Result<Option<(u64, u64)>, Unsatisfiable> {
    let Some(spec) = h.trim().strip_prefix("bytes=") else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None); // multiple ranges: send the whole blob
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return Ok(None);
    };
    let (a, b) = (a.trim(), b.trim());
    if a.is_empty() {
        let n: u64 = b.parse().map_err(|_| Unsatisfiable)?;
        if n == 0 || size == 0 {
            return Err(Unsatisfiable);
        }
        return Ok(Some((size.saturating_sub(n), size - 1)));
    }
    let start: u64 = a.parse().map_err(|_| Unsatisfiable)?;
    let end: u64 = if b.is_empty() {
        u64::MAX
    } else {
        b.parse().map_err(|_| Unsatisfiable)?
    };
    if end < start || start >= size {
        return Err(Unsatisfiable);
    }
    Ok(Some((start, end.min(size - 1))))
}

/// `Content-Range: <start>-<end>` (also tolerating `bytes ` and `/<total>`).
pub fn parse_content_range(h: &str) -> Option<(u64, u64)> {
    let h = h.trim();
    let h = h.strip_prefix("bytes").map(str::trim_start).unwrap_or(h);
    let h = h.split('/').next()?;
    let (a, b) = h.split_once('-')?;
    let (a, b) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
    (b >= a).then_some((a, b))
}

#[cfg(test)]
mod tests {
    use super::*;


    #[test]
    fn routes() {
        let r = |p| parse_route(p);
        assert_eq!(r("/v2/"), Some(Route::Base));
        assert_eq!(r("/v2"), Some(Route::Base));
        assert_eq!(r("/v2/_catalog"), Some(Route::Catalog));
        assert_eq!(r("/v2/a/b/tags/list"), Some(Route::Tags("a/b".into())));
        assert_eq!(
            r("/v2/a/manifests/latest"),
            Some(Route::Manifest("a".into(), "latest".into()))
        );
        assert_eq!(
            r("/v2/a/b/blobs/sha256%3Aab"),
            Some(Route::Blob("a/b".into(), "sha256:ab".into()))
        );
        assert_eq!(
            r("/v2/a/blobs/uploads/"),
            Some(Route::UploadStart("a".into()))
        );
        assert_eq!(
            r("/v2/a/blobs/uploads"),
            Some(Route::UploadStart("a".into()))
        );
        assert_eq!(
            r("/v2/x/blobs/blobs/uploads/"),
            Some(Route::UploadStart("x/blobs".into()))
        );
        assert_eq!(
            r("/v2/a/blobs/uploads/123"),
            Some(Route::Upload("a".into(), "123".into()))
        );
        assert_eq!(
            r("/v2/a/referrers/sha256:x"),
            Some(Route::Referrers("a".into(), "sha256:x".into()))
        );
        assert_eq!(r("/v2/manifests/x"), None);
        assert_eq!(r("/v3/a/manifests/x"), None);
        assert_eq!(r("/v2/a/nothing"), None);
    }

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=500-1499", 2000), Ok(Some((500, 1499))));
        assert_eq!(parse_range("bytes=500-", 2000), Ok(Some((500, 1999))));
        assert_eq!(parse_range("bytes=-500", 2000), Ok(Some((1500, 1999))));
        assert_eq!(parse_range("bytes=-5000", 2000), Ok(Some((0, 1999))));
        assert_eq!(parse_range("bytes=1000-5000", 2000), Ok(Some((1000, 1999))));
        assert_eq!(parse_range("bytes=500-0", 2000), Err(Unsatisfiable));
        assert_eq!(parse_range("bytes=5000-10000", 2000), Err(Unsatisfiable));
        assert_eq!(parse_range("bytes=0-1,5-6", 2000), Ok(None));
        assert_eq!(parse_range("items=0-1", 2000), Ok(None));
    }

    #[test]
    fn content_ranges() {
        assert_eq!(parse_content_range("0-99"), Some((0, 99)));
        assert_eq!(parse_content_range("bytes 100-199/*"), Some((100, 199)));
        assert_eq!(parse_content_range("5-1"), None);
        assert_eq!(parse_content_range("x"), None);
    }
}
