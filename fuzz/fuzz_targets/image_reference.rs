//! Image references (`berth_image::Reference::parse`, `parse_tagged`,
//! `reference::from_repo_tag`) with a round-trip check (a parsed reference printed in
//! familiar form parses back to itself), content digests (`berth_content::Digest`),
//! platforms (`berth_distribution::pull::Platform::parse`) and `--change` lines
//! (`berth_image::changes::apply_change`).
//!
//! Input: text; a first line and what follows it are also tried as the `repo` and `tag`
//! query parameters.
#![no_main]

use berth_api::models::ImageConfig;
use berth_image::reference::{from_repo_tag, Reference};
use libfuzzer_sys::fuzz_target;

fn round_trip(r: &Reference) {
    let shown = r.familiar();
    match Reference::parse(&shown) {
        Ok(back) => assert_eq!(&back, r, "{shown:?} does not parse back to {r:?}"),
        Err(e) => panic!("{shown:?} (printed from {r:?}) does not parse: {e:?}"),
    }
    let full = r.full_name();
    match Reference::parse(&full) {
        Ok(back) => assert_eq!(back.full_name(), full),
        Err(e) => panic!("{full:?} (printed from {r:?}) does not parse: {e:?}"),
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(r) = Reference::parse(s) {
        round_trip(&r);
    }
    if let Ok(r) = Reference::parse_tagged(s) {
        round_trip(&r);
    }
    let (repo, tag) = s.split_once('\n').unwrap_or((s, ""));
    if let Ok(r) = from_repo_tag(repo, tag) {
        let _ = r.familiar();
    }
    let _ = s.parse::<berth_content::Digest>();
    let _ = berth_distribution::pull::Platform::parse(s);
    let mut cfg = ImageConfig::default();
    for line in s.lines() {
        let _ = berth_image::changes::apply_change(&mut cfg, line);
    }
});
