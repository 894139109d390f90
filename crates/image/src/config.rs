//! The image config document and the manifest berth writes for local images.

use berth_api::models::ImageConfig;
use berth_content::Digest;
use serde::{Deserialize, Serialize};

pub const MEDIA_TYPE_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const MEDIA_TYPE_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const MEDIA_TYPE_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";

/// `rootfs` of an image config.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct RootFs {
    #[serde(rename = "type")]
    pub kind: String,
    pub diff_ids: Vec<Digest>,
}

/// One `history` entry.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct History {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub empty_layer: bool,
}

/// The image config (OCI image config plus Docker's container-config fields). Its
/// sha256 is the image id.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ImageConfigFile {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    pub architecture: String,
    pub os: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    #[serde(default)]
    pub config: ImageConfig,
    pub rootfs: RootFs,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<History>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// Docker's parent image id (local builds only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    /// The container a build step or commit made the image from (dockerd's
    /// `container`), and its config (`container_config`: for a build step, the
    /// step's command as dockerd records it, `#(nop)` for metadata steps).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container_config: Option<serde_json::Value>,
    /// The engine version that made the image, where it says (dockerd's
    /// `docker_version`; images berth makes leave it out).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub docker_version: Option<String>,
}

/// The `PATH` an image without one gets from a build (dockerd's builder adds it to each
/// stage's config, `setDefaultPath`), as Linux containers get it at run time
/// (`berth_oci::DEFAULT_PATH_ENV`).
pub const DEFAULT_PATH_ENV: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The Go architecture name of this host, as images record it.
pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "arm" => "arm",
        "powerpc64" => "ppc64le",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        other => other,
    }
}

/// Now, written as Docker (Go's `time.RFC3339Nano`) writes times.
pub fn now_rfc3339() -> String {
    rfc3339_nano(chrono::Utc::now())
}

/// Go's `time.RFC3339Nano`: nanoseconds without trailing zeros (no fraction at all on
/// a whole second). Tools written in Go re-encode configs this way, so a config written
/// otherwise would change digest when they copy it.
pub fn rfc3339_nano(t: chrono::DateTime<chrono::Utc>) -> String {
    let s = t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
    match s.split_once('.') {
        Some((whole, frac)) => {
            let digits = frac.trim_end_matches('Z').trim_end_matches('0');
            if digits.is_empty() {
                format!("{whole}Z")
            } else {
                format!("{whole}.{digits}Z")
            }
        }
        None => s,
    }
}

/// A content descriptor.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Descriptor {
    #[serde(rename = "mediaType")]
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
}

/// An OCI image manifest.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    #[serde(rename = "schemaVersion")]
    pub schema_version: u32,
    #[serde(rename = "mediaType")]
    pub media_type: String,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn times_are_written_as_go_writes_them() {
        let t = chrono::Utc.with_ymd_and_hms(2026, 11, 23, 22, 2, 24).unwrap();
        assert_eq!(rfc3339_nano(t), "2026-11-23T22:02:24Z");
        let t = t + chrono::Duration::nanoseconds(967_131_890);
        assert_eq!(rfc3339_nano(t), "2026-11-23T22:02:24.96713189Z");
        let t = t + chrono::Duration::nanoseconds(1);
        assert_eq!(rfc3339_nano(t), "2026-11-23T22:02:24.967131891Z");
    }
}
