//! The one image-spec document the registry writes itself, the referrers response (an
//! OCI image index), satisfies the OCI image-spec JSON schema.

mod common;
#[path = "../../image/tests/common/oci_schema.rs"]
mod oci_schema;

use common::*;
use oci_schema::{assert_valid, Schema};

async fn referrers(reg: &Reg, repo: &str, subject: &str, query: &str) -> Vec<u8> {
    let r = reg
        .client
        .get(reg.url(&format!("/v2/{repo}/referrers/{subject}{query}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], OCI_INDEX);
    r.bytes().await.unwrap().to_vec()
}

#[tokio::test]
async fn referrers_index_satisfies_the_index_schema() {
    let reg = start().await;
    let (subj_m, subj_d, _) = reg.push_image("sch", "base", "s").await;
    let subject =
        serde_json::json!({"mediaType": OCI_MANIFEST, "digest": subj_d, "size": subj_m.len()});
    // An artifact (artifactType, empty config, annotations) ...
    let empty = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";
    let sig = reg.push_blob("sch", b"signature bytes").await;
    let art = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": "application/vnd.example.sig",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2},
        "layers": [{"mediaType": "application/octet-stream", "digest": sig, "size": 15}],
        "subject": subject,
        "annotations": {"org.opencontainers.image.created": "2024-01-02T03:04:05Z"}
    }))
    .unwrap();
    let r = reg
        .put_manifest("sch", &sha256(&art), OCI_MANIFEST, &art)
        .await;
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    // ... an image referrer (its config media type stands for the artifact type) ...
    let cfg = reg.push_blob("sch", br#"{"sbom":true}"#).await;
    let sbom = image_manifest(&cfg, 13, &[], Some((&subj_d, subj_m.len())));
    let r = reg
        .put_manifest("sch", &sha256(&sbom), OCI_MANIFEST, &sbom)
        .await;
    assert_eq!(r.status(), 201);
    // ... and an index referrer (no artifact type at all).
    let idx = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": OCI_INDEX,
        "manifests": [{"mediaType": OCI_MANIFEST, "digest": sha256(&sbom), "size": sbom.len()}],
        "subject": subject,
    }))
    .unwrap();
    let r = reg
        .put_manifest("sch", &sha256(&idx), OCI_INDEX, &idx)
        .await;
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());

    let all = referrers(&reg, "sch", &subj_d, "").await;
    assert_valid(Schema::Index, "referrers response", &all);
    let v: serde_json::Value = serde_json::from_slice(&all).unwrap();
    assert_eq!(v["manifests"].as_array().unwrap().len(), 3, "{v}");

    let filtered = referrers(
        &reg,
        "sch",
        &subj_d,
        "?artifactType=application/vnd.example.sig",
    )
    .await;
    assert_valid(Schema::Index, "filtered referrers response", &filtered);

    let none = referrers(&reg, "sch", &sha256(b"nothing refers to this"), "").await;
    assert_valid(Schema::Index, "empty referrers response", &none);
}
