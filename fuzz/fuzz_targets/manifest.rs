//! Manifests, indexes and image configs as berth reads them from registries and pushes:
//! the pull's `berth_distribution::pull::parse_manifest` (a list/index picks a
//! platform, an image manifest needs a config) and `check_config_content` (config JSON,
//! diff ids against layers, layer media types and digests); the registry server's
//! `berth_registry::manifest::parse` (validation of a pushed manifest, with several
//! Content-Types) and `references` (what garbage collection follows); and the
//! `ImageConfigFile` / `Manifest` serde types of `berth_image::config`.
//!
//! Input: the manifest, optionally followed by a 0xFF byte and the image config (0xFF
//! never occurs in UTF-8, so the seeds can be plain JSON files).
#![no_main]

use berth_distribution::pull::{check_config_content, parse_manifest, Manifest, Platform};
use libfuzzer_sys::fuzz_target;

const CONTENT_TYPES: [&str; 6] = [
    "",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json; charset=utf-8",
    "application/json",
];

fuzz_target!(|data: &[u8]| {
    let (manifest, config) = match data.iter().position(|&b| b == 0xff) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, data),
    };
    let platforms = [
        Platform::parse("").expect("host platform"),
        Platform::parse("linux/arm64/v8").expect("platform"),
    ];
    for ct in CONTENT_TYPES {
        for want in &platforms {
            if let Ok(Manifest::Image(m)) = parse_manifest(manifest, ct, want) {
                let _ = check_config_content(&m, config);
            }
        }
        if let Ok(m) = berth_registry::manifest::parse(manifest, ct) {
            for d in m.layers.iter().chain(&m.manifests) {
                let _ = d.is_non_distributable();
                let _ = d.digest.file_key();
            }
        }
    }
    let _ = berth_registry::manifest::references(manifest);
    let _ = serde_json::from_slice::<berth_image::ImageConfigFile>(config);
    let _ = serde_json::from_slice::<berth_image::config::Manifest>(manifest);
});
