//! Validation of documents against the OCI image-spec JSON schemas (draft-04) kept in
//! `shared/conformance/image-spec/schema` beside the repository. Shared by the tests of
//! berth-image, berth-distribution and berth-registry (included with `#[path]`).
//!
//! The schemas name each other with relative `$ref`s (`defs-descriptor.json#/…`) under
//! `https://opencontainers.org/schema/…` ids; those are answered from the local files by
//! name, never from the network. A missing schema directory fails the test.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde_json::Value;

/// Which image-spec schema a document must satisfy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Schema {
    Manifest,
    Index,
    Config,
    Layout,
    Descriptor,
}

impl Schema {
    fn file(self) -> &'static str {
        match self {
            Schema::Manifest => "image-manifest-schema.json",
            Schema::Index => "image-index-schema.json",
            Schema::Config => "config-schema.json",
            Schema::Layout => "image-layout-schema.json",
            Schema::Descriptor => "content-descriptor.json",
        }
    }
}

/// `$BERTH_OCI_SCHEMA_DIR`, else `$BERTH_CONFORMANCE_DIR/image-spec/schema` (as
/// scripts/test.sh names the conformance data), else
/// `<repo>/../shared/conformance/image-spec/schema` found from this crate's directory
/// (`crates/<name>`).
pub fn schema_dir() -> PathBuf {
    let dir = std::env::var_os("BERTH_OCI_SCHEMA_DIR")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("BERTH_CONFORMANCE_DIR")
                .map(|c| PathBuf::from(c).join("image-spec/schema"))
        })
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../../shared/conformance/image-spec/schema")
        });
    assert!(
        dir.join("image-manifest-schema.json").is_file(),
        "OCI image-spec JSON schemas not found in {} (expected shared/conformance/image-spec/schema \
         beside the repository, or $BERTH_OCI_SCHEMA_DIR): these tests cannot run without them",
        dir.display()
    );
    dir
}

fn read_json(p: &Path) -> Value {
    let raw = std::fs::read(p).unwrap_or_else(|e| panic!("read schema {}: {e}", p.display()));
    serde_json::from_slice(&raw).unwrap_or_else(|e| panic!("parse schema {}: {e}", p.display()))
}

/// Answers every `$ref` to another schema document by its file name in the schema
/// directory (ids and relative refs resolve to several `https://opencontainers.org/…`
/// bases; the file name is what they share).
struct LocalSchemas(PathBuf);

impl jsonschema::Retrieve for LocalSchemas {
    fn retrieve(
        &self,
        uri: &jsonschema::Uri<String>,
    ) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
        let path = uri.path().as_str();
        let name = path.rsplit('/').next().unwrap_or(path);
        let file = self.0.join(name);
        if name.ends_with(".json") && file.is_file() {
            Ok(read_json(&file))
        } else {
            Err(format!("schema {uri} is not in {}", self.0.display()).into())
        }
    }
}

fn validators() -> &'static HashMap<Schema, jsonschema::Validator> {
    static V: OnceLock<HashMap<Schema, jsonschema::Validator>> = OnceLock::new();
    V.get_or_init(|| {
        let dir = schema_dir();
        [
            Schema::Manifest,
            Schema::Index,
            Schema::Config,
            Schema::Layout,
            Schema::Descriptor,
        ]
        .into_iter()
        .map(|s| {
            let schema = read_json(&dir.join(s.file()));
            let v = jsonschema::options()
                .with_draft(jsonschema::Draft::Draft4)
                .should_validate_formats(true)
                .with_retriever(LocalSchemas(dir.clone()))
                .build(&schema)
                .unwrap_or_else(|e| panic!("compile {}: {e}", s.file()));
            (s, v)
        })
        .collect()
    })
}

/// Every schema violation of `doc`, as `path: message` lines (empty when valid).
pub fn violations(schema: Schema, doc: &Value) -> Vec<String> {
    validators()[&schema]
        .iter_errors(doc)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}

/// Panic, listing the violations, unless the JSON `raw` satisfies `schema`.
pub fn assert_valid(schema: Schema, what: &str, raw: &[u8]) {
    let doc: Value = serde_json::from_slice(raw)
        .unwrap_or_else(|e| panic!("{what} is not JSON ({e}): {}", String::from_utf8_lossy(raw)));
    let errs = violations(schema, &doc);
    assert!(
        errs.is_empty(),
        "{what} does not satisfy the OCI {schema:?} schema:\n  {}\ndocument: {}",
        errs.join("\n  "),
        String::from_utf8_lossy(raw)
    );
}

/// The schemas themselves accept a good document and reject each of its single faults
/// (so a validator that accepts anything, or never follows a `$ref`, is noticed).
pub fn self_check() {
    use serde_json::json;
    let d = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";
    let good = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "size": 2, "digest": d},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "size": 2, "digest": d}],
    });
    assert_eq!(violations(Schema::Manifest, &good), Vec::<String>::new());
    let faults: [(&str, Value); 5] = [
        ("/config/digest", json!("sha256-without-colon")),
        ("/layers/0/mediaType", json!("not a media type")),
        ("/layers", Value::Null),
        ("/schemaVersion", json!(1)),
        ("/config/size", json!(-1)),
    ];
    for (ptr, v) in faults {
        let mut bad = good.clone();
        *bad.pointer_mut(ptr).unwrap() = v;
        assert!(
            !violations(Schema::Manifest, &bad).is_empty(),
            "the manifest schema accepted a bad {ptr}"
        );
    }
    let index = json!({"schemaVersion": 2, "manifests": [good["config"].clone()]});
    assert!(violations(Schema::Index, &index).is_empty());
    let mut bad = index.clone();
    bad["manifests"][0]["urls"] = json!("http://not-an-array");
    assert!(!violations(Schema::Index, &bad).is_empty());
    assert!(violations(Schema::Layout, &json!({"imageLayoutVersion": "1.0.0"})).is_empty());
    assert!(!violations(Schema::Layout, &json!({"imageLayoutVersion": 1})).is_empty());
    let config = json!({"architecture": "amd64", "os": "linux",
        "created": "2024-01-02T03:04:05.123456789Z",
        "config": {"ExposedPorts": {"80/tcp": {}}, "Cmd": null},
        "rootfs": {"type": "layers", "diff_ids": [d]}});
    assert_eq!(violations(Schema::Config, &config), Vec::<String>::new());
    for (ptr, v) in [
        ("/created", json!("yesterday")),
        ("/config/ExposedPorts", Value::Null),
        ("/rootfs/type", json!("other")),
    ] {
        let mut bad = config.clone();
        *bad.pointer_mut(ptr).unwrap() = v;
        assert!(
            !violations(Schema::Config, &bad).is_empty(),
            "the config schema accepted a bad {ptr}"
        );
    }
}
