//! Blob pull/push over loopback: monolithic, chunked, streamed, mount, sha512, ranges.

mod common;
use common::*;

#[tokio::test]
async fn base_and_errors() {
    let reg = start().await;
    let r = reg.client.get(reg.url("/v2/")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["docker-distribution-api-version"],
        "registry/2.0"
    );
    let r = reg
        .client
        .get(reg.url("/v2/Bad_Name/blobs/sha256:00"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(error_code(r).await, "NAME_INVALID");
    let d = sha256(b"nothing");
    let r = reg
        .client
        .get(reg.url(&format!("/v2/a/blobs/{d}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(
        r.headers()["docker-distribution-api-version"],
        "registry/2.0"
    );
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["errors"][0]["code"], "BLOB_UNKNOWN");
    assert_eq!(v["errors"][0]["detail"]["digest"], d.as_str());
    let r = reg
        .client
        .head(reg.url(&format!("/v2/a/blobs/{d}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = reg
        .client
        .get(reg.url("/v2/a/blobs/sha256:baddigest"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(error_code(r).await, "DIGEST_INVALID");
}

#[tokio::test]
async fn monolithic_post_and_post_put_and_range() {
    let reg = start().await;
    let data: Vec<u8> = (0..3000u32).map(|i| (i % 251) as u8).collect();
    let d = reg.push_blob("lib/one", &data).await;

    let r = reg
        .client
        .head(reg.url(&format!("/v2/lib/one/blobs/{d}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-length"], "3000");
    assert_eq!(r.headers()["docker-content-digest"], d.as_str());
    let r = reg
        .client
        .get(reg.url(&format!("/v2/lib/one/blobs/{d}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap().as_ref(), &data[..]);

    let get_range = |range: &'static str| {
        let (c, u) = (
            reg.client.clone(),
            reg.url(&format!("/v2/lib/one/blobs/{d}")),
        );
        async move { c.get(u).header("Range", range).send().await.unwrap() }
    };
    let r = get_range("bytes=500-1499").await;
    assert_eq!(r.status(), 206);
    assert_eq!(r.headers()["content-range"], "bytes 500-1499/3000");
    assert_eq!(r.headers()["content-length"], "1000");
    assert_eq!(r.bytes().await.unwrap().as_ref(), &data[500..1500]);
    let r = get_range("bytes=-500").await;
    assert_eq!(r.headers()["content-range"], "bytes 2500-2999/3000");
    assert_eq!(r.bytes().await.unwrap().as_ref(), &data[2500..]);
    let r = get_range("bytes=2000-5000").await;
    assert_eq!(r.status(), 206);
    assert_eq!(r.headers()["content-range"], "bytes 2000-2999/3000");
    assert_eq!(get_range("bytes=500-0").await.status(), 416);
    assert_eq!(get_range("bytes=5000-10000").await.status(), 416);

    // POST then PUT with the whole body
    let data2 = b"second blob".to_vec();
    let d2 = sha256(&data2);
    let r = reg
        .client
        .post(reg.url("/v2/lib/one/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let uuid = r.headers()["docker-upload-uuid"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(r.headers()["location"].to_str().unwrap().ends_with(&uuid));
    assert_eq!(r.headers()["range"], "0-0");
    let r = reg
        .client
        .put(format!("{}?digest={d2}", reg.loc(&r)))
        .body(data2.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(r.headers()["docker-content-digest"], d2.as_str());
    let got = reg
        .client
        .get(reg.loc(&r))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(got.as_ref(), &data2[..]);
    assert!(reg.files_under("uploads").is_empty());

    // blob delete unlinks it from the repository
    let r = reg
        .client
        .delete(reg.url(&format!("/v2/lib/one/blobs/{d2}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let r = reg
        .client
        .get(reg.url(&format!("/v2/lib/one/blobs/{d2}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = reg
        .client
        .delete(reg.url(&format!("/v2/lib/one/blobs/{d2}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn chunked_upload_with_order_checks() {
    let reg = start().await;
    let data: Vec<u8> = (0..10_000u32).map(|i| (i * 7 % 256) as u8).collect();
    let d = sha256(&data);
    let r = reg
        .client
        .post(reg.url("/v2/c/blobs/uploads/"))
        .header("Content-Length", "0")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let loc = reg.loc(&r);

    // out of order first chunk: 416, session still usable
    let r = reg
        .client
        .patch(&loc)
        .header("Content-Type", "application/octet-stream")
        .header("Content-Range", "4000-9999")
        .body(data[4000..].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 416);
    let r = reg.client.get(&loc).send().await.unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(r.headers()["range"], "0-0");

    let r = reg
        .client
        .patch(&loc)
        .header("Content-Type", "application/octet-stream")
        .header("Content-Range", "0-3999")
        .body(data[..4000].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    assert_eq!(r.headers()["range"], "0-3999");
    let loc = reg.loc(&r);
    // resending the same chunk is out of order now
    let r = reg
        .client
        .patch(&loc)
        .header("Content-Range", "0-3999")
        .body(data[..4000].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 416);
    assert_eq!(r.headers()["range"], "0-3999");
    // a streamed chunk without Content-Range
    let r = reg
        .client
        .patch(&loc)
        .body(data[4000..7000].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    assert_eq!(r.headers()["range"], "0-6999");
    let r = reg.client.get(&loc).send().await.unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(r.headers()["range"], "0-6999");
    // final chunk in the PUT
    let r = reg
        .client
        .put(format!("{loc}?digest={d}"))
        .header("Content-Range", "7000-9999")
        .body(data[7000..].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{:?}", r.text().await);
    let got = reg
        .client
        .get(reg.url(&format!("/v2/c/blobs/{d}")))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(got.as_ref(), &data[..]);
    // the session is gone
    assert_eq!(reg.client.get(&loc).send().await.unwrap().status(), 404);

    // cancel an upload
    let r = reg
        .client
        .post(reg.url("/v2/c/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    let loc = reg.loc(&r);
    reg.client
        .patch(&loc)
        .body(vec![1u8; 10])
        .send()
        .await
        .unwrap();
    assert_eq!(reg.client.delete(&loc).send().await.unwrap().status(), 204);
    let r = reg.client.get(&loc).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(error_code(r).await, "BLOB_UPLOAD_UNKNOWN");
    assert!(reg.files_under("uploads").is_empty());
}

#[tokio::test]
async fn digest_mismatch_leaves_nothing() {
    let reg = start().await;
    let wrong = sha256(b"something else");
    let r = reg
        .client
        .post(reg.url(&format!("/v2/m/blobs/uploads/?digest={wrong}")))
        .body(b"actual content".to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(error_code(r).await, "DIGEST_INVALID");

    let r = reg
        .client
        .post(reg.url("/v2/m/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    let loc = reg.loc(&r);
    reg.client
        .patch(&loc)
        .body(b"chunk one".to_vec())
        .send()
        .await
        .unwrap();
    let r = reg
        .client
        .put(format!("{loc}?digest={wrong}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(error_code(r).await, "DIGEST_INVALID");
    // unsupported algorithm
    let r = reg
        .client
        .post(reg.url("/v2/m/blobs/uploads/?digest=md5:0123"))
        .body(b"x".to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);

    assert!(
        reg.files_under("blobs").is_empty(),
        "{:?}",
        reg.files_under("blobs")
    );
    assert!(
        reg.files_under("uploads").is_empty(),
        "{:?}",
        reg.files_under("uploads")
    );
    assert!(reg.files_under("tmp").is_empty());
    let r = reg
        .client
        .head(reg.url(&format!("/v2/m/blobs/{}", sha256(b"actual content"))))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn sha512_blobs() {
    let reg = start().await;
    let data = b"sha512 content".repeat(50);
    let d = sha512(&data);
    let r = reg
        .client
        .post(reg.url(&format!("/v2/s/blobs/uploads/?digest={d}")))
        .body(data.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = reg
        .client
        .get(reg.url(&format!("/v2/s/blobs/{d}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["docker-content-digest"], d.as_str());
    assert_eq!(r.bytes().await.unwrap().as_ref(), &data[..]);
    assert!(reg.root.path().join("blobs/sha512").join(&d[7..]).is_file());

    // chunked with sha512
    let data2 = b"another sha512".repeat(30);
    let d2 = sha512(&data2);
    let r = reg
        .client
        .post(reg.url("/v2/s/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    let loc = reg.loc(&r);
    let r = reg
        .client
        .patch(&loc)
        .header("Content-Range", "0-99")
        .body(data2[..100].to_vec())
        .send()
        .await
        .unwrap();
    let loc = reg.loc(&r);
    let r = reg
        .client
        .put(format!("{loc}?digest={d2}"))
        .body(data2[100..].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = reg
        .client
        .head(reg.url(&format!("/v2/s/blobs/{d2}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["content-length"],
        data2.len().to_string().as_str()
    );
}

#[tokio::test]
async fn cross_repository_mount() {
    let reg = start().await;
    let d = reg.push_blob("src/repo", b"shared layer").await;
    let r = reg
        .client
        .head(reg.url(&format!("/v2/dst/blobs/{d}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = reg
        .client
        .post(reg.url(&format!("/v2/dst/blobs/uploads/?mount={d}&from=src/repo")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(r.headers()["docker-content-digest"], d.as_str());
    assert!(r.headers()["location"]
        .to_str()
        .unwrap()
        .ends_with(&format!("/v2/dst/blobs/{d}")));
    let got = reg
        .client
        .get(reg.url(&format!("/v2/dst/blobs/{d}")))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(got.as_ref(), b"shared layer");
    // one copy of the content
    assert_eq!(reg.files_under("blobs").len(), 1);

    // mount of a blob the source does not have: a new upload session
    let missing = sha256(b"missing");
    let r = reg
        .client
        .post(reg.url(&format!(
            "/v2/dst/blobs/uploads/?mount={missing}&from=src/repo"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    assert!(r.headers().contains_key("docker-upload-uuid"));
    let r = reg
        .client
        .put(format!("{}?digest={missing}", reg.loc(&r)))
        .body(b"missing".to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
}
