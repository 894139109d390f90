//! Docker's query-parameter rules in `berth_api::query` (`Filters::parse` in both forms
//! and what handlers ask of the result, `parse_bool`, `ram_in_bytes`,
//! `go_duration_secs`, `timestamp`, `path_match`), API versions (`berth_api::version`)
//! and the multiplexed stream decoder (`berth_api::stream::Demux`).
//!
//! Input: text; split at the first newline it is also a (pattern, name) pair for
//! `path_match`. The raw bytes are fed to the stream decoder.
#![no_main]

use berth_api::query::{
    go_duration_secs, parse_bool, path_match, ram_in_bytes, timestamp, Filters,
};
use berth_api::{stream, version};
use libfuzzer_sys::fuzz_target;

/// 2026-01-01T00:00:00Z, a fixed "now" for `until`/`since`.
const NOW: i64 = 1_767_225_600;

fuzz_target!(|data: &[u8]| {
    let mut demux = stream::Demux::default();
    for chunk in data.chunks(7) {
        demux.push(chunk);
        while demux.next_frame().is_some() {}
    }
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(f) = Filters::parse(s) {
        let _ = f.validate(&["label", "label!", "name", "dangling", "until"]);
        let _ = f.validate_values("status", &["created", "running", "exited"]);
        let _ = f.bool_value("dangling");
        let labels = |k: &str| (k == "a").then_some("1");
        let _ = f.match_labels(labels);
        let _ = f.match_labels_not(labels);
        for v in f.get("until") {
            let _ = timestamp(v, NOW);
        }
        for v in f.get("reference") {
            let _ = path_match(v, "docker.io/library/busybox:latest");
        }
    }
    let _ = parse_bool(s);
    let _ = ram_in_bytes(s);
    if let Some(secs) = go_duration_secs(s) {
        if secs.is_finite() && (0.0..1e9).contains(&secs) {
            let d = std::time::Duration::from_secs_f64(secs);
            let _ = berth_api::query::go_duration_string(d);
        }
    }
    let _ = timestamp(s, NOW);
    let _ = version::parse(s);
    let _ = version::split_prefix(s);
    let _ = version::check(s);
    if let Some((pattern, name)) = s.split_once('\n') {
        let _ = path_match(pattern, name);
    }
});
