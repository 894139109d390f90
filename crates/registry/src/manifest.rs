//! Parsing pushed manifests just enough to validate them and follow their references.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::digest::Digest;
use crate::error::{Code, OciError};

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// The digest of `{}`, the OCI empty descriptor's content.
pub const EMPTY_JSON_DIGEST: &str =
    "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";

#[derive(Debug, Clone, Deserialize)]
pub struct RawDescriptor {
    #[serde(rename = "mediaType", default)]
    pub media_type: String,
    pub digest: String,
    #[serde(default)]
    pub size: i64,
    #[serde(default)]
    pub urls: Vec<String>,
    #[serde(rename = "artifactType", default)]
    pub artifact_type: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
struct RawManifest {
    #[serde(rename = "schemaVersion")]
    schema_version: Option<i64>,
    #[serde(rename = "mediaType")]
    media_type: Option<String>,
    #[serde(rename = "artifactType")]
    artifact_type: Option<String>,
    config: Option<RawDescriptor>,
    #[serde(default)]
    layers: Option<Vec<RawDescriptor>>,
    manifests: Option<Vec<RawDescriptor>>,
    #[serde(default)]
    blobs: Option<Vec<RawDescriptor>>,
    subject: Option<RawDescriptor>,
    annotations: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Image,
    Index,
}

#[derive(Debug, Clone)]
pub struct Descriptor {
    pub media_type: String,
    pub digest: Digest,
    pub size: i64,
    pub urls: Vec<String>,
}

impl Descriptor {
    /// Layers a registry must accept without their blob being pushed.
    pub fn is_non_distributable(&self) -> bool {
        self.media_type.contains(".nondistributable.") || self.media_type.contains(".foreign.")
    }
}

/// A validated manifest.
#[derive(Debug, Clone)]
pub struct Manifest {
    pub kind: Kind,
    pub media_type: String,
    pub artifact_type: Option<String>,
    pub config: Option<Descriptor>,
    /// Layers (image manifest) or `blobs` (artifact manifest).
    pub layers: Vec<Descriptor>,
    /// Children of an index.
    pub manifests: Vec<Descriptor>,
    pub subject: Option<Descriptor>,
    pub annotations: Option<BTreeMap<String, String>>,
}

fn invalid(msg: impl Into<String>) -> OciError {
    OciError::msg(Code::ManifestInvalid, msg)
}

fn convert(d: RawDescriptor, what: &str) -> Result<Descriptor, OciError> {
    let digest = d
        .digest
        .parse::<Digest>()
        .map_err(|e| invalid(format!("{what}: {e}")))?;
    if d.size < 0 {
        return Err(invalid(format!("{what}: negative size")));
    }
    Ok(Descriptor {
        media_type: d.media_type,
        digest,
        size: d.size,
        urls: d.urls,
    })
}

fn base_type(ct: &str) -> &str {
    ct.split(';').next().unwrap_or("").trim()
}

/// Parse and validate manifest bytes pushed with `content_type` (may be empty).
pub fn parse(bytes: &[u8], content_type: &str) -> Result<Manifest, OciError> {
    let raw: RawManifest = serde_json::from_slice(bytes)
        .map_err(|e| invalid(format!("invalid manifest JSON: {e}")))?;
    match raw.schema_version {
        Some(2) => {}
        Some(v) => return Err(invalid(format!("unsupported manifest schemaVersion {v}"))),
        None => return Err(invalid("manifest has no schemaVersion")),
    }
    // a generic type says nothing about the manifest: go by its mediaType then
    let ct = match base_type(content_type) {
        "application/json" | "application/octet-stream" | "text/plain" => "",
        t => t,
    };
    if let (Some(mt), false) = (&raw.media_type, ct.is_empty()) {
        if mt != ct {
            return Err(invalid(format!(
                "mediaType {mt:?} does not match Content-Type {ct:?}"
            )));
        }
    }
    let kind = if raw.manifests.is_some() || matches!(ct, OCI_INDEX | DOCKER_LIST) {
        Kind::Index
    } else {
        Kind::Image
    };
    let media_type = if !ct.is_empty() {
        ct.to_string()
    } else if let Some(mt) = &raw.media_type {
        mt.clone()
    } else if kind == Kind::Index {
        OCI_INDEX.to_string()
    } else {
        OCI_MANIFEST.to_string()
    };
    if kind == Kind::Image
        && matches!(media_type.as_str(), OCI_MANIFEST | DOCKER_MANIFEST)
        && raw.config.is_none()
    {
        return Err(invalid("image manifest has no config"));
    }
    let config = raw.config.map(|c| convert(c, "config")).transpose()?;
    let mut layers = Vec::new();
    for l in raw
        .layers
        .into_iter()
        .flatten()
        .chain(raw.blobs.into_iter().flatten())
    {
        layers.push(convert(l, "layer")?);
    }
    let mut manifests = Vec::new();
    for m in raw.manifests.into_iter().flatten() {
        manifests.push(convert(m, "manifest")?);
    }
    let subject = raw.subject.map(|s| convert(s, "subject")).transpose()?;
    Ok(Manifest {
        kind,
        media_type,
        artifact_type: raw.artifact_type.filter(|s| !s.is_empty()),
        config,
        layers,
        manifests,
        subject,
        annotations: raw.annotations,
    })
}

/// Every blob a stored manifest references (config, layers, children), leniently:
/// used by garbage collection on bytes that were validated when pushed.
pub fn references(bytes: &[u8]) -> Vec<(Digest, bool)> {
    let Ok(raw) = serde_json::from_slice::<RawManifest>(bytes) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut push = |d: &RawDescriptor, is_manifest: bool| {
        if let Ok(dg) = d.digest.parse::<Digest>() {
            out.push((dg, is_manifest));
        }
    };
    if let Some(c) = &raw.config {
        push(c, false);
    }
    for l in raw
        .layers
        .iter()
        .flatten()
        .chain(raw.blobs.iter().flatten())
    {
        push(l, false);
    }
    for m in raw.manifests.iter().flatten() {
        push(m, true);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn image_and_index() {
        let m = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"a","digest":"{D}","size":0}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.nondistributable.v1.tar","digest":"{D}","size":1}}],"subject":{{"mediaType":"{OCI_MANIFEST}","digest":"{D}","size":3}}}}"#
        );
        let p = parse(m.as_bytes(), OCI_MANIFEST).unwrap();
        assert_eq!(p.kind, Kind::Image);
        assert!(p.layers[0].is_non_distributable());
        assert_eq!(p.subject.unwrap().digest.to_string(), D);
        assert_eq!(references(m.as_bytes()).len(), 2);
        let i = format!(
            r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"{OCI_MANIFEST}","digest":"{D}","size":3}}]}}"#
        );
        let p = parse(i.as_bytes(), "").unwrap();
        assert_eq!((p.kind, p.media_type.as_str()), (Kind::Index, OCI_INDEX));
        assert_eq!(references(i.as_bytes()), vec![(D.parse().unwrap(), true)]);
    }

    #[test]
    fn rejects() {
        assert!(parse(b"not json", OCI_MANIFEST).is_err());
        assert!(parse(br#"{"schemaVersion":1}"#, OCI_MANIFEST).is_err());
        let m = format!(r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[]}}"#);
        assert!(parse(m.as_bytes(), OCI_MANIFEST).is_err());
        let bad = r#"{"schemaVersion":2,"config":{"mediaType":"a","digest":"sha256:zz","size":1},"layers":[]}"#;
        assert_eq!(
            parse(bad.as_bytes(), OCI_MANIFEST).unwrap_err().code,
            Code::ManifestInvalid
        );
        assert!(parse(br#"{"schemaVersion":2,"layers":[]}"#, OCI_MANIFEST).is_err());
        let idx = format!(r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[]}}"#);
        assert_eq!(
            parse(idx.as_bytes(), "application/json")
                .unwrap()
                .media_type,
            OCI_INDEX
        );
    }
}
