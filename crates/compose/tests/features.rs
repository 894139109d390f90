//! Behaviour beyond the conformance corpus: several files, discovery, profiles, `.env`,
//! `env_file`, `include`, `!reset` / `!override`, project names and error messages.

use std::collections::BTreeMap;
use std::path::Path;

use berth_compose::{load, Options};
use serde_json::{json, Value};

fn write(dir: &Path, name: &str, content: &str) {
    let p = dir.join(name);
    if let Some(parent) = p.parent() {
        std::fs::create_dir_all(parent).expect("mkdir");
    }
    std::fs::write(p, content).expect("write");
}

fn opts(dir: &Path, files: &[&str], env: &[(&str, &str)]) -> Options {
    let env: BTreeMap<String, String> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Options {
        working_dir: dir.to_path_buf(),
        files: files.iter().map(|f| dir.join(f)).collect(),
        env,
        ..Default::default()
    }
}

fn config(o: &Options) -> Value {
    let p = load(o).expect("load");
    serde_json::from_str(&p.to_json().expect("json")).expect("valid json")
}

#[test]
fn discovery_merges_override_with_reset_and_override_tags() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path();
    write(
        root,
        "compose.yaml",
        "services:\n  web:\n    image: nginx\n    restart: always\n    ports: ['80:80']\n    environment: {A: '1', B: '2'}\n",
    );
    write(
        root,
        "compose.override.yaml",
        "services:\n  web:\n    restart: !reset\n    ports: !override ['81:81']\n    environment: {B: '3'}\n",
    );
    std::fs::create_dir_all(root.join("sub/dir")).expect("mkdir");
    let j = config(&opts(
        &root.join("sub/dir"),
        &[],
        &[("COMPOSE_PROJECT_NAME", "demo")],
    ));
    let web = &j["services"]["web"];
    assert!(web.get("restart").is_none());
    assert_eq!(
        web["ports"],
        json!([{"mode": "ingress", "target": 81, "published": "81", "protocol": "tcp"}])
    );
    assert_eq!(web["environment"], json!({"A": "1", "B": "3"}));
    assert_eq!(j["name"], "demo");
}

#[test]
fn several_files_follow_merge_rules() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path();
    write(root, "a.yml", "services:\n  app:\n    image: a\n    command: run a\n    volumes: ['./x:/data']\n    labels: [one=1]\n");
    write(root, "b.yml", "services:\n  app:\n    command: [run, b]\n    volumes: ['./y:/data']\n    labels: {two: '2'}\n");
    let j = config(&opts(root, &["a.yml", "b.yml"], &[]));
    let app = &j["services"]["app"];
    assert_eq!(app["command"], json!(["run", "b"]));
    assert_eq!(app["volumes"].as_array().map(Vec::len), Some(1));
    assert!(app["volumes"][0]["source"]
        .as_str()
        .is_some_and(|s| s.ends_with("/y")));
    assert_eq!(app["labels"], json!({"one": "1", "two": "2"}));
    // the project name falls back to the (normalized) directory name
    let dir_name = root
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    assert_eq!(j["name"], berth_compose::normalize_project_name(dir_name));
}

#[test]
fn dotenv_env_files_and_profiles() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path();
    write(
        root,
        ".env",
        "TAG=1.0\nCOMPOSE_PROFILES=debug\nNAME=from-dotenv\n",
    );
    write(root, "app.env", "FROM_FILE=${TAG}-x\nOVERRIDDEN=file\n");
    write(
        root,
        "compose.yaml",
        "name: ${NAME}\nservices:\n  app:\n    image: app:${TAG:-latest}\n    env_file:\n      - app.env\n      - path: missing.env\n        required: false\n    environment:\n      OVERRIDDEN: explicit\n      INHERITED:\n  dbg:\n    image: busybox\n    profiles: [debug]\n  off:\n    image: busybox\n    profiles: [other]\n",
    );
    let j = config(&opts(root, &["compose.yaml"], &[("INHERITED", "yes")]));
    assert_eq!(j["name"], "from-dotenv");
    let app = &j["services"]["app"];
    assert_eq!(app["image"], "app:1.0");
    assert_eq!(
        app["environment"],
        json!({"FROM_FILE": "1.0-x", "OVERRIDDEN": "explicit", "INHERITED": "yes"})
    );
    assert!(app.get("env_file").is_none());
    assert!(j["services"].get("dbg").is_some());
    assert!(j["services"].get("off").is_none());

    let mut o = opts(root, &["compose.yaml"], &[]);
    o.profiles = vec!["other".into()];
    let j = config(&o);
    assert!(j["services"].get("dbg").is_none());
    assert!(j["services"].get("off").is_some());
}

#[test]
fn include_uses_its_own_directory_and_env() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path();
    write(root, "lib/.env", "IMG=included-image\n");
    write(
        root,
        "lib/compose.yaml",
        "services:\n  lib:\n    image: ${IMG}\n    build: .\n",
    );
    write(root, "compose.yaml", "include:\n  - lib/compose.yaml\nservices:\n  app:\n    image: app\n    depends_on: [lib]\n");
    let j = config(&opts(
        root,
        &["compose.yaml"],
        &[("COMPOSE_PROJECT_NAME", "inc")],
    ));
    let lib = &j["services"]["lib"];
    assert_eq!(lib["image"], "included-image");
    let ctx = lib["build"]["context"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(ctx.ends_with("/lib"), "{ctx}");
}

#[test]
fn extends_from_another_file_resolves_paths_there() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path();
    write(root, "base/common.yml", "services:\n  base:\n    image: base\n    volumes: ['./data:/data']\n    environment: [A=1]\n");
    write(root, "compose.yaml", "services:\n  app:\n    extends: {file: base/common.yml, service: base}\n    environment: [B=2]\n");
    let j = config(&opts(
        root,
        &["compose.yaml"],
        &[("COMPOSE_PROJECT_NAME", "ext")],
    ));
    let app = &j["services"]["app"];
    assert_eq!(app["environment"], json!({"A": "1", "B": "2"}));
    let src = app["volumes"][0]["source"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(src.ends_with("/base/data"), "{src}");
}

#[test]
fn errors_name_file_and_key_path() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path();
    write(
        root,
        "bad.yaml",
        "services:\n  web:\n    image: nginx\n    portz: ['80']\n",
    );
    let err = load(&opts(root, &["bad.yaml"], &[]))
        .expect_err("schema error")
        .to_string();
    assert!(
        err.contains("bad.yaml") && err.contains("services.web") && err.contains("portz"),
        "{err}"
    );

    write(
        root,
        "interp.yaml",
        "services:\n  web:\n    image: ${IMAGE:?image is required}\n",
    );
    let err = load(&opts(root, &["interp.yaml"], &[]))
        .expect_err("interpolation error")
        .to_string();
    assert!(
        err.contains("services.web.image") && err.contains("image is required"),
        "{err}"
    );

    write(
        root,
        "dup.yaml",
        "services:\n  web:\n    image: a\n    image: b\n",
    );
    let err = load(&opts(root, &["dup.yaml"], &[]))
        .expect_err("yaml error")
        .to_string();
    assert!(
        err.contains("dup.yaml") && err.contains("already defined"),
        "{err}"
    );

    write(
        root,
        "net.yaml",
        "services:\n  web:\n    image: a\n    networks: [missing]\n",
    );
    let err = load(&opts(root, &["net.yaml"], &[]))
        .expect_err("consistency error")
        .to_string();
    assert!(err.contains("undefined network missing"), "{err}");
}
