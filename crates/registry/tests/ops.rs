//! Auth, TLS, garbage collection, and interop with skopeo (when installed).

mod common;
use common::*;

use base64::Engine as _;

fn basic(u: &str, p: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
    )
}

#[tokio::test]
async fn basic_auth_from_htpasswd() {
    let dir = tempfile::tempdir().unwrap();
    let hp = dir.path().join("htpasswd");
    // the format `htpasswd -B` writes
    let hash = bcrypt::hash("pa55word", 5)
        .unwrap()
        .replacen("$2b$", "$2y$", 1);
    std::fs::write(&hp, format!("alice:{hash}\n")).unwrap();
    let reg = start_with(Some(hp), None).await;

    let r = reg.client.get(reg.url("/v2/")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(
        r.headers()["www-authenticate"],
        "Basic realm=\"berth-registry\""
    );
    assert_eq!(error_code(r).await, "UNAUTHORIZED");
    let r = reg
        .client
        .get(reg.url("/v2/"))
        .header("Authorization", basic("alice", "nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = reg
        .client
        .get(reg.url("/v2/"))
        .header("Authorization", basic("mallory", "pa55word"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = reg
        .client
        .get(reg.url("/v2/"))
        .header("Authorization", basic("alice", "pa55word"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let d = sha256(b"authed");
    let r = reg
        .client
        .post(reg.url(&format!("/v2/sec/blobs/uploads/?digest={d}")))
        .header("Authorization", basic("alice", "pa55word"))
        .body(b"authed".to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = reg
        .client
        .get(reg.url(&format!("/v2/sec/blobs/{d}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn tls_serving() {
    let dir = tempfile::tempdir().unwrap();
    let cert =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .unwrap();
    let (c, k) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&c, cert.cert.pem()).unwrap();
    std::fs::write(&k, cert.key_pair.serialize_pem()).unwrap();
    let reg = start_with(None, Some((c, k))).await;
    assert!(reg.base.starts_with("https://"));
    let r = reg.client.get(reg.url("/v2/")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let d = reg.push_blob("tls", b"over tls").await;
    let got = reg
        .client
        .get(reg.url(&format!("/v2/tls/blobs/{d}")))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(got.as_ref(), b"over tls");
}

#[tokio::test]
async fn garbage_collection_keeps_referenced() {
    let reg = start().await;
    let (_, img_d, blobs) = reg.push_image("gc/app", "v1", "g").await;
    let idx = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": OCI_INDEX,
        "manifests": [{"mediaType": OCI_MANIFEST, "digest": img_d, "size": 1}]
    }))
    .unwrap();
    assert_eq!(
        reg.put_manifest("gc/app", "multi", OCI_INDEX, &idx)
            .await
            .status(),
        201
    );
    // the image is only reachable through the index once its own tag is gone
    let orphan = reg.push_blob("gc/app", b"orphan-bytes").await;
    let (_, gone_d, gone_blobs) = reg.push_image("gc/other", "tmp", "h").await;
    assert_eq!(
        reg.client
            .delete(reg.url(&format!("/v2/gc/other/manifests/{gone_d}")))
            .send()
            .await
            .unwrap()
            .status(),
        202
    );
    assert_eq!(
        reg.client
            .delete(reg.url("/v2/gc/app/manifests/v1"))
            .send()
            .await
            .unwrap()
            .status(),
        202
    );

    let root = reg.root.path().to_path_buf();
    let dry = berth_registry::garbage_collect(&root, true).unwrap();
    let mut expect = vec![
        orphan.clone(),
        gone_d.clone(),
        gone_blobs[0].clone(),
        gone_blobs[1].clone(),
    ];
    expect.sort();
    let mut got = dry.blobs_removed.clone();
    got.sort();
    assert_eq!(got, expect);
    assert!(dry.bytes_freed > 0);
    assert_eq!(
        reg.client
            .head(reg.url(&format!("/v2/gc/app/blobs/{orphan}")))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    let rep = berth_registry::garbage_collect(&root, false).unwrap();
    assert_eq!(rep, dry);
    assert_eq!(
        reg.client
            .head(reg.url(&format!("/v2/gc/app/blobs/{orphan}")))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    for b in &blobs {
        let r = reg
            .client
            .get(reg.url(&format!("/v2/gc/app/blobs/{b}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{b} kept");
    }
    assert_eq!(
        reg.client
            .get(reg.url(&format!("/v2/gc/app/manifests/{img_d}")))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        reg.client
            .get(reg.url("/v2/gc/app/manifests/multi"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    // idempotent
    assert_eq!(
        berth_registry::garbage_collect(&root, false)
            .unwrap()
            .blobs_removed
            .len(),
        0
    );
}

/// Write an OCI image layout with one image; returns its manifest digest.
fn write_oci_layout(dir: &std::path::Path) -> String {
    let put = |data: &[u8]| {
        let d = sha256(data);
        let p = dir.join("blobs/sha256").join(&d[7..]);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, data).unwrap();
        (d, data.len())
    };
    // a real (uncompressed) tar layer with one file
    let mut tar = Vec::new();
    let content = b"hello from berth\n";
    let mut hdr = [0u8; 512];
    hdr[..9].copy_from_slice(b"hello.txt");
    hdr[100..108].copy_from_slice(b"0000644\0");
    hdr[108..116].copy_from_slice(b"0000000\0");
    hdr[116..124].copy_from_slice(b"0000000\0");
    hdr[124..136].copy_from_slice(format!("{:011o}\0", content.len()).as_bytes());
    hdr[136..148].copy_from_slice(b"00000000000\0");
    hdr[156] = b'0';
    hdr[257..263].copy_from_slice(b"ustar\0");
    hdr[263..265].copy_from_slice(b"00");
    hdr[148..156].copy_from_slice(b"        ");
    let sum: u32 = hdr.iter().map(|&b| b as u32).sum();
    hdr[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    tar.extend_from_slice(&hdr);
    tar.extend_from_slice(content);
    tar.resize(512 + 512, 0);
    tar.resize(tar.len() + 1024, 0);
    let diff_id = sha256(&tar);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, &tar).unwrap();
    let (ld, ll) = put(&gz.finish().unwrap());
    let cfg = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux", "config": {},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]}
    }))
    .unwrap();
    let (cd, cl) = put(&cfg);
    let m = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cl},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": ld, "size": ll}]
    }))
    .unwrap();
    let (md, ml) = put(&m);
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    let index = serde_json::json!({
        "schemaVersion": 2, "mediaType": OCI_INDEX,
        "manifests": [{"mediaType": OCI_MANIFEST, "digest": md, "size": ml,
                       "annotations": {"org.opencontainers.image.ref.name": "latest"}}]
    });
    std::fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
    md
}

#[tokio::test]
async fn skopeo_interop() {
    if std::process::Command::new("skopeo")
        .arg("--version")
        .output()
        .is_err()
    {
        println!("NOTE: skopeo not installed; skipping interop test (apt-get install -y skopeo)");
        return;
    }
    let reg = start().await;
    let host = reg.base.trim_start_matches("http://").to_string();
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    let back = work.path().join("back");
    let md = write_oci_layout(&src);

    let skopeo = |args: Vec<String>| async move {
        let out = tokio::process::Command::new("skopeo")
            .arg("--insecure-policy")
            .args(&args)
            .env("NO_PROXY", "*")
            .env_remove("HTTP_PROXY")
            .env_remove("HTTPS_PROXY")
            .output()
            .await
            .unwrap();
        assert!(
            out.status.success(),
            "skopeo {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    };
    skopeo(vec![
        "copy".into(),
        "--dest-tls-verify=false".into(),
        format!("oci:{}:latest", src.display()),
        format!("docker://{host}/interop/img:v1"),
    ])
    .await;
    // the registry has the exact manifest
    let r = reg
        .client
        .get(reg.url("/v2/interop/img/manifests/v1"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["docker-content-digest"], md.as_str());

    let out = skopeo(vec![
        "inspect".into(),
        "--tls-verify=false".into(),
        format!("docker://{host}/interop/img:v1"),
    ])
    .await;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["Digest"], md.as_str());

    skopeo(vec![
        "copy".into(),
        "--src-tls-verify=false".into(),
        format!("docker://{host}/interop/img:v1"),
        format!("oci:{}:latest", back.display()),
    ])
    .await;
    // and through the Basic auth challenge, as real clients log in
    let hp = work.path().join("htpasswd");
    let hash = bcrypt::hash("pw", 5).unwrap().replacen("$2b$", "$2y$", 1);
    std::fs::write(&hp, format!("bob:{hash}\n")).unwrap();
    let authed = start_with(Some(hp), None).await;
    let ahost = authed.base.trim_start_matches("http://").to_string();
    skopeo(vec![
        "copy".into(),
        "--dest-tls-verify=false".into(),
        "--dest-creds=bob:pw".into(),
        format!("oci:{}:latest", src.display()),
        format!("docker://{ahost}/private/img:v1"),
    ])
    .await;
    let denied = tokio::process::Command::new("skopeo")
        .args([
            "--insecure-policy",
            "inspect",
            "--tls-verify=false",
            "--creds=bob:wrong",
        ])
        .arg(format!("docker://{ahost}/private/img:v1"))
        .output()
        .await
        .unwrap();
    assert!(!denied.status.success());
    let r = authed
        .client
        .get(authed.url("/v2/private/img/manifests/v1"))
        .header("Authorization", basic("bob", "pw"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["docker-content-digest"], md.as_str());
    let idx: serde_json::Value =
        serde_json::from_slice(&std::fs::read(back.join("index.json")).unwrap()).unwrap();
    assert_eq!(idx["manifests"][0]["digest"], md.as_str());
    for e in std::fs::read_dir(src.join("blobs/sha256")).unwrap() {
        let e = e.unwrap();
        let copied = std::fs::read(back.join("blobs/sha256").join(e.file_name())).unwrap();
        assert_eq!(copied, std::fs::read(e.path()).unwrap());
    }
}
