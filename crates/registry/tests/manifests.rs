//! Manifests, tags, catalog, referrers over loopback.

mod common;
use common::*;

#[tokio::test]
async fn manifest_by_tag_and_digest() {
    let reg = start().await;
    let (m, d, blobs) = reg.push_image("app", "v1", "a").await;
    // exact bytes and content type back, by tag and by digest
    for reference in ["v1", d.as_str()] {
        let r = reg
            .client
            .get(reg.url(&format!("/v2/app/manifests/{reference}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["content-type"], OCI_MANIFEST);
        assert_eq!(r.headers()["docker-content-digest"], d.as_str());
        assert_eq!(r.bytes().await.unwrap().as_ref(), &m[..]);
        let r = reg
            .client
            .head(reg.url(&format!("/v2/app/manifests/{reference}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["content-length"], m.len().to_string().as_str());
    }
    // push by digest; a wrong digest is refused
    let m2 = image_manifest(&blobs[0], 42, &[], None);
    let d2 = sha256(&m2);
    let r = reg.put_manifest("app", &d2, OCI_MANIFEST, &m2).await;
    assert_eq!(r.status(), 201);
    assert!(r.headers()["location"]
        .to_str()
        .unwrap()
        .ends_with(&format!("/v2/app/manifests/{d2}")));
    let r = reg.put_manifest("app", &d, OCI_MANIFEST, &m2).await;
    assert_eq!(r.status(), 400);
    assert_eq!(error_code(r).await, "DIGEST_INVALID");
    // sha512 reference: digest computed with sha512
    let d512 = sha512(&m2);
    let r = reg.put_manifest("app", &d512, OCI_MANIFEST, &m2).await;
    assert_eq!(r.status(), 201);
    assert_eq!(r.headers()["docker-content-digest"], d512.as_str());
    assert_eq!(
        reg.client
            .get(reg.url(&format!("/v2/app/manifests/{d512}")))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    // tag parameters on a push by digest
    let r = reg
        .client
        .put(reg.url(&format!("/v2/app/manifests/{d2}?tag=x1&tag=x2")))
        .header("Content-Type", OCI_MANIFEST)
        .body(m2.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(r.headers()["oci-tag"], "x1, x2");

    // missing layer: MANIFEST_BLOB_UNKNOWN; non-distributable missing layer: accepted
    let absent = sha256(b"never pushed");
    let bad = image_manifest(&blobs[0], 42, &[(&absent, 12)], None);
    let r = reg.put_manifest("app", "bad", OCI_MANIFEST, &bad).await;
    assert_eq!(r.status(), 400);
    assert_eq!(error_code(r).await, "MANIFEST_BLOB_UNKNOWN");
    let foreign = serde_json::json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": blobs[0], "size": 42},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip", "digest": absent, "size": 12,
                    "urls": ["https://example.invalid/layer"]}]
    });
    let r = reg
        .put_manifest(
            "app",
            "foreign",
            OCI_MANIFEST,
            &serde_json::to_vec(&foreign).unwrap(),
        )
        .await;
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    // invalid JSON and media type mismatch
    let r = reg
        .put_manifest("app", "junk", OCI_MANIFEST, b"{not json")
        .await;
    assert_eq!(error_code(r).await, "MANIFEST_INVALID");
    let r = reg.put_manifest("app", "mismatch", OCI_INDEX, &m).await;
    assert_eq!(r.status(), 400);

    // an index: children must exist
    let idx = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": OCI_INDEX,
        "manifests": [{"mediaType": OCI_MANIFEST, "digest": d, "size": m.len(),
                       "platform": {"architecture": "amd64", "os": "linux"}}]
    }))
    .unwrap();
    let r = reg.put_manifest("app", "multi", OCI_INDEX, &idx).await;
    assert_eq!(r.status(), 201);
    let r = reg.put_manifest("other", "multi", OCI_INDEX, &idx).await;
    assert_eq!(r.status(), 400);
    assert_eq!(error_code(r).await, "MANIFEST_BLOB_UNKNOWN");

    // deletes: tag, then digest (which also drops tags pointing at it)
    let r = reg
        .client
        .delete(reg.url("/v2/app/manifests/multi"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    assert_eq!(
        reg.client
            .get(reg.url("/v2/app/manifests/multi"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    let r = reg
        .client
        .delete(reg.url(&format!("/v2/app/manifests/{d}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let r = reg
        .client
        .get(reg.url("/v2/app/manifests/v1"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(error_code(r).await, "MANIFEST_UNKNOWN");
    assert_eq!(
        reg.client
            .get(reg.url(&format!("/v2/app/manifests/{d}")))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    assert_eq!(
        reg.client
            .delete(reg.url(&format!("/v2/app/manifests/{d}")))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
}

fn next_link(r: &reqwest::Response) -> Option<String> {
    let l = r.headers().get("link")?.to_str().unwrap();
    assert!(l.ends_with("rel=\"next\""), "{l}");
    Some(l[l.find('<').unwrap() + 1..l.find('>').unwrap()].to_string())
}

#[tokio::test]
async fn tag_pagination_and_catalog() {
    let reg = start().await;
    let (m, _, _) = reg.push_image("pag", "t0", "p").await;
    for t in ["t3", "t1", "t4", "t2", "A"] {
        assert_eq!(
            reg.put_manifest("pag", t, OCI_MANIFEST, &m).await.status(),
            201
        );
    }
    let r = reg
        .client
        .get(reg.url("/v2/pag/tags/list"))
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("link").is_none());
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(
        v,
        serde_json::json!({"name": "pag", "tags": ["A", "t0", "t1", "t2", "t3", "t4"]})
    );

    let mut url = reg.url("/v2/pag/tags/list?n=4");
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        let r = reg.client.get(&url).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let next = next_link(&r);
        let v: serde_json::Value = r.json().await.unwrap();
        seen.extend(
            v["tags"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t.as_str().unwrap().to_string()),
        );
        pages += 1;
        match next {
            Some(n) => url = reg.url(&n),
            None => break,
        }
    }
    assert_eq!(pages, 2);
    assert_eq!(seen, ["A", "t0", "t1", "t2", "t3", "t4"]);
    let r = reg
        .client
        .get(reg.url("/v2/pag/tags/list?n=2&last=t1"))
        .send()
        .await
        .unwrap();
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["tags"], serde_json::json!(["t2", "t3"]));
    let r = reg
        .client
        .get(reg.url("/v2/pag/tags/list?n=0"))
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("link").is_none());
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["tags"],
        serde_json::json!([])
    );
    let r = reg
        .client
        .get(reg.url("/v2/nope/tags/list"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(error_code(r).await, "NAME_UNKNOWN");

    for repo in ["b/nested/deep", "c", "a"] {
        reg.push_image(repo, "latest", repo).await;
    }
    let r = reg
        .client
        .get(reg.url("/v2/_catalog"))
        .send()
        .await
        .unwrap();
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(
        v["repositories"],
        serde_json::json!(["a", "b/nested/deep", "c", "pag"])
    );
    let r = reg
        .client
        .get(reg.url("/v2/_catalog?n=2"))
        .send()
        .await
        .unwrap();
    let next = next_link(&r).unwrap();
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["repositories"],
        serde_json::json!(["a", "b/nested/deep"])
    );
    let r = reg.client.get(reg.url(&next)).send().await.unwrap();
    assert!(r.headers().get("link").is_none());
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["repositories"],
        serde_json::json!(["c", "pag"])
    );
}

#[tokio::test]
async fn referrers_and_subject() {
    let reg = start().await;
    let (subj_m, subj_d, _) = reg.push_image("ref", "base", "s").await;
    // an artifact with artifactType and the empty config (never pushed: materialized)
    let empty = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";
    let sig_layer = reg.push_blob("ref", b"signature bytes").await;
    let art = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": "application/vnd.example.sig",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2},
        "layers": [{"mediaType": "application/octet-stream", "digest": sig_layer, "size": 15}],
        "subject": {"mediaType": OCI_MANIFEST, "digest": subj_d, "size": subj_m.len()},
        "annotations": {"org.example": "yes"}
    }))
    .unwrap();
    let art_d = sha256(&art);
    let r = reg.put_manifest("ref", &art_d, OCI_MANIFEST, &art).await;
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    assert_eq!(r.headers()["oci-subject"], subj_d.as_str());
    // an image referrer without artifactType: config media type is used
    let cfg = reg.push_blob("ref", br#"{"sbom":true}"#).await;
    let sbom = image_manifest(&cfg, 13, &[], Some((&subj_d, subj_m.len())));
    let sbom_d = sha256(&sbom);
    assert_eq!(
        reg.put_manifest("ref", &sbom_d, OCI_MANIFEST, &sbom)
            .await
            .status(),
        201
    );
    // a referrer to a subject that does not exist is accepted
    let ghost = sha256(b"ghost");
    let orphan = image_manifest(&cfg, 13, &[], Some((&ghost, 10)));
    assert_eq!(
        reg.put_manifest("ref", "orphan", OCI_MANIFEST, &orphan)
            .await
            .status(),
        201
    );

    let r = reg
        .client
        .get(reg.url(&format!("/v2/ref/referrers/{subj_d}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], OCI_INDEX);
    assert!(r.headers().get("oci-filters-applied").is_none());
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["schemaVersion"], 2);
    assert_eq!(v["mediaType"], OCI_INDEX);
    let list = v["manifests"].as_array().unwrap();
    assert_eq!(list.len(), 2);
    let find = |d: &str| list.iter().find(|x| x["digest"] == d).unwrap().clone();
    let a = find(&art_d);
    assert_eq!(a["artifactType"], "application/vnd.example.sig");
    assert_eq!(a["size"], art.len());
    assert_eq!(a["annotations"]["org.example"], "yes");
    assert_eq!(
        find(&sbom_d)["artifactType"],
        "application/vnd.oci.image.config.v1+json"
    );

    let r = reg
        .client
        .get(reg.url(&format!(
            "/v2/ref/referrers/{subj_d}?artifactType=application/vnd.example.sig"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["oci-filters-applied"], "artifactType");
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["manifests"].as_array().unwrap().len(), 1);
    assert_eq!(v["manifests"][0]["digest"], art_d.as_str());

    let r = reg
        .client
        .get(reg.url(&format!("/v2/ref/referrers/{ghost}")))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["manifests"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let r = reg
        .client
        .get(reg.url(&format!("/v2/ref/referrers/{}", sha256(b"none"))))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["manifests"],
        serde_json::json!([])
    );
    let r = reg
        .client
        .get(reg.url("/v2/ref/referrers/sha256:bad"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);

    // deleting a referrer removes it from the list
    assert_eq!(
        reg.client
            .delete(reg.url(&format!("/v2/ref/manifests/{art_d}")))
            .send()
            .await
            .unwrap()
            .status(),
        202
    );
    let r = reg
        .client
        .get(reg.url(&format!("/v2/ref/referrers/{subj_d}")))
        .send()
        .await
        .unwrap();
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["manifests"].as_array().unwrap().len(), 1);
}
