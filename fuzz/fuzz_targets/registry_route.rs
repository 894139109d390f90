//! The registry server's request parsing, reached without a running server through
//! `berth_registry::request` (split out of the server for this): the route of a path
//! (`parse_route`) with the checks the dispatcher applies to it (`valid_repo_name`,
//! references as tag or digest), the `Range` and `Content-Range` headers, upload
//! digests, htpasswd files (`auth::Htpasswd::parse`).
//!
//! Input lines: path, `Range` header, `Content-Range` header; the whole text is also an
//! htpasswd file. Handlers themselves need storage and a running server and are not
//! covered here.
#![no_main]

use berth_registry::digest::{valid_repo_name, valid_tag, Digest};
use berth_registry::request::{parse_content_range, parse_range, parse_route, Route};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let mut lines = s.split('\n');
    let path = lines.next().unwrap_or("");
    if let Some(route) = parse_route(path) {
        let (name, reference) = match &route {
            Route::Base | Route::Catalog => (None, None),
            Route::Tags(n) | Route::UploadStart(n) => (Some(n), None),
            Route::Manifest(n, r) | Route::Blob(n, r) | Route::Referrers(n, r) => (Some(n), Some(r)),
            Route::Upload(n, id) => (Some(n), Some(id)),
        };
        if let Some(n) = name {
            let _ = valid_repo_name(n);
        }
        if let Some(r) = reference {
            if let Ok(d) = r.parse::<Digest>() {
                assert_eq!(Digest::from_file_key(&d.file_key()), Some(d.clone()));
                assert_eq!(d.to_string().parse::<Digest>().ok(), Some(d));
            }
            let _ = valid_tag(r);
        }
    }
    if let Some(range) = lines.next() {
        for size in [0, 1, 2000, u64::MAX] {
            if let Ok(Some((a, b))) = parse_range(range, size) {
                assert!(a <= b && b < size, "range {a}-{b} outside a blob of {size} bytes");
            }
        }
    }
    if let Some(cr) = lines.next() {
        if let Some((a, b)) = parse_content_range(cr) {
            assert!(a <= b);
        }
    }
    let _ = berth_registry::auth::Htpasswd::parse(s);
});
