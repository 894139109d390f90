//! Images and registries: push/pull through berth's own registry (on loopback), docker
//! CLI pull/push progress, save/load (Docker archive and OCI layout), commit, export,
//! diff, and corrupted registry blobs.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use berth_e2e::{bin, unique_tmp_dir, wait_until, Body, Daemon};

/// `berth registry serve` on a free loopback port.
struct Registry {
    child: Child,
    root: PathBuf,
    addr: String,
}

/// Tests that start registries run one at a time: they pick free loopback ports by
/// binding port 0 and releasing it, and two such picks racing in one process can land
/// on the same port, so one test would talk to another test's registry.
fn registry_lock() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

fn free_addr() -> String {
    format!("127.0.0.1:{}", berth_e2e::free_port())
}

fn have(bin: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {bin}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// `htpasswd -Bbn user pw` into `dir/htpasswd`.
fn htpasswd(dir: &Path, user: &str, pw: &str) -> PathBuf {
    let o = Command::new("htpasswd")
        .args(["-Bbn", user, pw])
        .output()
        .expect("htpasswd");
    assert!(o.status.success());
    let p = dir.join("htpasswd");
    std::fs::write(&p, &o.stdout).unwrap();
    p
}

impl Registry {
    fn start() -> Registry {
        Registry::start_with(&[])
    }

    fn start_with(extra: &[&str]) -> Registry {
        let root = unique_tmp_dir("berth-reg");
        let addr = free_addr();
        let child = Command::new(bin("berth"))
            .args(["registry", "serve", "--addr", &addr, "--root"])
            .arg(&root)
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn registry");
        assert!(
            wait_until(Duration::from_secs(10), || std::net::TcpStream::connect(
                &addr
            )
            .is_ok()),
            "registry did not listen on {addr}"
        );
        Registry { child, root, addr }
    }

    /// Every blob file under the registry root.
    fn blob_files(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        let dir = self.root.join("blobs/sha256");
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            out.push(e.path());
        }
        out
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

fn image_json(d: &Daemon, name: &str) -> serde_json::Value {
    let r = d.api("GET", &format!("/images/{name}/json"));
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

/// Tag busybox as `{registry}/{path}` on `d` and push it; the name and the push's output.
fn push_busybox(d: &Daemon, reg: &Registry, path: &str) -> (String, berth_e2e::Output) {
    let name = format!("{}/{path}", reg.addr);
    assert!(d.berth(&["tag", "busybox", &name]).success());
    let o = d.berth(&["push", &name]);
    assert!(o.success(), "push: {o}\n{}", d.log());
    (name, o)
}

/// The files of a busybox-based image, checked in a container.
fn run_out(d: &Daemon, image: &str, script: &str) -> String {
    let o = d.berth(&["run", "--rm", image, "sh", "-c", script]);
    assert!(o.success(), "{o}\nlog:\n{}", d.log());
    o.stdout.clone()
}

#[test]
fn push_then_pull_into_another_daemon() {
    let _serial = registry_lock();
    let reg = Registry::start();
    let d1 = Daemon::start();
    let (name, _) = push_busybox(&d1, &reg, "bb/app:1.0");
    let i1 = image_json(&d1, &name);

    let d2 = Daemon::start_bare();
    let r = d2.api(
        "POST",
        &format!("/images/create?fromImage={}/bb/app&tag=1.0", reg.addr),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let msgs = r.json_stream();
    let statuses: Vec<String> = msgs
        .iter()
        .filter_map(|m| m["status"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(
        statuses.first().map(String::as_str),
        Some("Pulling from bb/app"),
        "{statuses:?}"
    );
    assert_eq!(msgs[0]["id"], "1.0");
    for s in [
        "Pulling fs layer",
        "Downloading",
        "Verifying Checksum",
        "Download complete",
        "Extracting",
        "Pull complete",
    ] {
        assert!(
            statuses.iter().any(|x| x == s),
            "{s} missing in {statuses:?}"
        );
    }
    let n = statuses.len();
    assert!(
        statuses[n - 2].starts_with("Digest: sha256:"),
        "{statuses:?}"
    );
    assert_eq!(
        statuses[n - 1],
        format!("Status: Downloaded newer image for {name}")
    );
    let i2 = image_json(&d2, &name);
    assert_eq!(i1["Id"], i2["Id"]);
    assert_eq!(i1["RootFS"], i2["RootFS"]);
    let digest = statuses[n - 2].trim_start_matches("Digest: ").to_owned();
    assert_eq!(
        i2["RepoDigests"][0],
        format!("{}/bb/app@{digest}", reg.addr)
    );
    assert_eq!(i1["RepoDigests"][0], i2["RepoDigests"][0]);
    assert_eq!(run_out(&d2, &name, "echo ok"), "ok\n");

    // Pushing the pulled image to another repository of the same registry mounts the
    // layer from where it came.
    let other = format!("{}/bb/other:2", reg.addr);
    assert!(d2.berth(&["tag", &name, &other]).success());
    let o = d2.berth(&["push", &other]);
    assert!(o.success(), "{o}");
    assert!(o.stdout.contains("Mounted from bb/app"), "{o}");
    assert!(o.stdout.contains(&format!("2: digest: {digest}")), "{o}");

    // Again: up to date.
    let r = d2.api(
        "POST",
        &format!("/images/create?fromImage={}/bb/app&tag=1.0", reg.addr),
    );
    let last = r.json_stream().last().cloned().unwrap();
    assert_eq!(
        last["status"],
        format!("Status: Image is up to date for {name}")
    );

    // A second push of the same image sends the same blobs (stable digest).
    let o = d1.berth(&["push", &name]);
    assert!(o.success(), "{o}");
    assert!(o.stdout.contains("Layer already exists"), "{o}");
    assert!(o.stdout.contains(&digest), "{o}");

    // Missing tag: a plain 404 before any stream.
    let r = d2.api(
        "POST",
        &format!("/images/create?fromImage={}/nosuch&tag=1", reg.addr),
    );
    assert_eq!(r.status, 404, "{}", r.text());
    // "<code>: <registry's message>" (Docker's registry says "manifest unknown" again).
    let want = format!(
        "manifest for {}/nosuch:1 not found: manifest unknown: ",
        reg.addr
    );
    assert!(r.message().starts_with(&want), "{}", r.message());
}

#[test]
fn docker_cli_push_and_pull() {
    let _serial = registry_lock();
    let reg = Registry::start();
    let d = Daemon::start();
    let name = format!("{}/dk/bb:v1", reg.addr);
    assert!(d.docker(&["tag", "busybox", &name]).success());
    let o = d.docker(&["push", &name]);
    assert!(o.success(), "{o}\n{}", d.log());
    assert!(
        o.stdout.contains(&format!(
            "The push refers to repository [{}/dk/bb]",
            reg.addr
        )),
        "{o}"
    );
    assert!(o.stdout.contains("Pushed"), "{o}");
    assert!(o.stdout.contains("v1: digest: sha256:"), "{o}");

    let d2 = Daemon::start_bare();
    let o = d2.docker(&["pull", &name]);
    assert!(o.success(), "{o}\n{}", d2.log());
    assert!(o.stdout.contains("Pull complete"), "{o}");
    assert!(
        o.stdout
            .contains(&format!("Status: Downloaded newer image for {name}")),
        "{o}"
    );
    let o = d2.docker(&["run", "--rm", &name, "echo", "pulled"]);
    assert_eq!(o.stdout, "pulled\n", "{o}");

    // `docker run` of an image that is not there pulls it first.
    let d3 = Daemon::start_bare();
    let o = d3.docker(&["run", "--rm", &name, "echo", "auto"]);
    assert_eq!(o.stdout, "auto\n", "{o}\n{}", d3.log());
    assert!(o.stderr.contains("Unable to find image"), "{o}");
}

#[test]
fn corrupted_registry_blob_fails_pull_and_leaves_nothing() {
    let _serial = registry_lock();
    let reg = Registry::start();
    let d1 = Daemon::start();
    let (name, _) = push_busybox(&d1, &reg, "bad/img:1");
    // The biggest blob is the layer: corrupt it in place.
    let layer = reg
        .blob_files()
        .into_iter()
        .max_by_key(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0))
        .unwrap();
    let mut data = std::fs::read(&layer).unwrap();
    let mid = data.len() / 2;
    data[mid] ^= 0xff;
    std::fs::write(&layer, &data).unwrap();

    let d2 = Daemon::start_bare();
    let r = d2.api(
        "POST",
        &format!("/images/create?fromImage={}/bad/img&tag=1", reg.addr),
    );
    let msgs = r.json_stream();
    let err = msgs
        .iter()
        .find_map(|m| m["error"].as_str())
        .unwrap_or_else(|| panic!("no error in {msgs:?}"));
    assert!(
        err.contains("verification failed") || err.contains("gzip") || err.contains("don't match"),
        "{err}"
    );
    assert_eq!(d2.api("GET", &format!("/images/{name}/json")).status, 404);
    assert_eq!(d2.api("GET", "/images/json").json(), serde_json::json!([]));
    // (the containers' init layer is made at the daemon's start)
    let layers: Vec<_> = std::fs::read_dir(d2.data_root().join("layers"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name() != "init")
        .collect();
    assert!(layers.is_empty(), "{layers:?}");
    let blobs: Vec<_> = std::fs::read_dir(d2.data_root().join("content/blobs/sha256"))
        .unwrap()
        .flatten()
        .collect();
    assert!(blobs.is_empty(), "{blobs:?}");
}

/// An image with a file of mode 4751 owned by 12:34, a symlink and a hard link.
fn special_image(d: &Daemon, tag: &str) {
    let o = d.berth(&[
        "run",
        "--name",
        "mk",
        "busybox",
        "sh",
        "-c",
        "echo data > /f && chown 12:34 /f && chmod 4751 /f && ln -s /f /sym && ln /f /hard && rm /bin/wc",
    ]);
    assert!(o.success(), "{o}");
    let r = d.api(
        "POST",
        &format!("/commit?container=mk&repo={tag}&comment=c1&author=me"),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    assert!(r.json()["Id"].as_str().unwrap().starts_with("sha256:"));
}

const CHECK_NO_LINKS: &str =
    "stat -c '%a %u:%g' /f; readlink /sym; cat /hard; test -e /bin/wc && echo wc || echo nowc";
const CHECK: &str =
    "stat -c '%a %u:%g %h' /f; readlink /sym; cat /hard; test -e /bin/wc && echo wc || echo nowc";

#[test]
fn commit_save_load_keep_files() {
    let d = Daemon::start();
    special_image(&d, "special:0");
    // (The committed layer comes from berth_snapshot::write_diff, which stores hard
    // links as separate files: the link count is not checked here.)
    assert_eq!(
        run_out(&d, "special:0", CHECK_NO_LINKS),
        "4751 12:34\n/f\ndata\nnowc\n"
    );
    // Exporting the container that made the files (hard link in its upper dir), then
    // importing, gives a one-layer image whose tar has the hard link.
    let r = d.api("GET", "/containers/mk/export");
    assert_eq!(r.status, 200);
    let r = d.api_body(
        "POST",
        "/images/create?fromSrc=-&repo=special:1",
        Body::Chunked("text/plain", &r.body),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let ii = image_json(&d, "special:0");
    assert_eq!(ii["Comment"], "c1");
    assert_eq!(ii["Author"], "me");
    let changes = d.api("GET", "/containers/mk/changes").json();
    let has = |p: &str, k: i64| {
        changes
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["Path"] == p && c["Kind"] == k)
    };
    assert!(
        has("/f", 1) && has("/bin/wc", 2) && has("/bin", 0),
        "{changes}"
    );
    let o = d.docker(&["diff", "mk"]);
    assert!(o.success(), "{o}");
    for l in ["C /bin", "D /bin/wc", "A /f", "A /hard", "A /sym"] {
        assert!(o.stdout.lines().any(|x| x == l), "{l} missing: {o}");
    }

    // docker save → docker load into another daemon.
    let dir = unique_tmp_dir("berth-save");
    let tar = dir.join("s.tar");
    let o = d.docker(&["save", "-o", tar.to_str().unwrap(), "special:1"]);
    assert!(o.success(), "{o}");
    let d2 = Daemon::start_bare();
    let o = d2.docker(&["load", "-i", tar.to_str().unwrap()]);
    assert!(o.success(), "{o}\n{}", d2.log());
    assert!(o.stdout.contains("Loaded image: special:1"), "{o}");
    let ii = image_json(&d, "special:1");
    assert_eq!(image_json(&d2, "special:1")["Id"], ii["Id"]);
    assert_eq!(
        run_out(&d2, "special:1", CHECK),
        "4751 12:34 2\n/f\ndata\nnowc\n"
    );

    // The same archive without manifest.json is a plain OCI layout.
    let oci = strip_entry(&tar, "manifest.json");
    let d3 = Daemon::start_bare();
    let r = d3.api_body(
        "POST",
        "/images/load?quiet=1",
        Body::Chunked("application/x-tar", &oci),
    );
    assert_eq!(r.status, 200);
    let msgs = r.json_stream();
    assert_eq!(
        msgs.last().unwrap()["stream"],
        "Loaded image: special:1\n",
        "{msgs:?}"
    );
    assert_eq!(image_json(&d3, "special:1")["Id"], ii["Id"]);
    let _ = std::fs::remove_dir_all(&dir);
}

fn strip_entry(tar: &Path, name: &str) -> Vec<u8> {
    // Rebuild the tar with python-free plain bytes: walk 512-byte headers.
    let data = std::fs::read(tar).unwrap();
    let mut out = Vec::new();
    let mut i = 0;
    while i + 512 <= data.len() {
        let h = &data[i..i + 512];
        if h.iter().all(|b| *b == 0) {
            break;
        }
        let n = std::str::from_utf8(&h[..100])
            .unwrap()
            .trim_end_matches('\0')
            .to_owned();
        let size_s = std::str::from_utf8(&h[124..136])
            .unwrap()
            .trim_matches(|c: char| c == '\0' || c == ' ');
        let size = usize::from_str_radix(size_s, 8).unwrap();
        let total = 512 + size.div_ceil(512) * 512;
        if n != name {
            out.extend_from_slice(&data[i..i + total]);
        }
        i += total;
    }
    out.extend_from_slice(&[0u8; 1024]);
    out
}

#[test]
fn export_import_round_trip() {
    let d = Daemon::start();
    special_image(&d, "special:2");
    let dir = unique_tmp_dir("berth-export");
    let tar = dir.join("e.tar");
    let o = d.docker(&["export", "-o", tar.to_str().unwrap(), "mk"]);
    assert!(o.success(), "{o}");
    let o = d.docker(&["import", tar.to_str().unwrap(), "reimported:1"]);
    assert!(o.success(), "{o}");
    assert_eq!(
        run_out(&d, "reimported:1", CHECK),
        "4751 12:34 2\n/f\ndata\nnowc\n"
    );
    // The image's comment and its history's, as dockerd's import writes them.
    assert_eq!(image_json(&d, "reimported:1")["Comment"], "Imported from -");
    let o = d.docker(&["import", "-m", "from the export", tar.to_str().unwrap(), "reimported:2"]);
    assert!(o.success(), "{o}");
    assert_eq!(image_json(&d, "reimported:2")["Comment"], "from the export");
    let h = d.docker(&["history", "--format", "{{.Comment}}", "reimported:2"]);
    assert_eq!(h.ok(), "from the export\n");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn login_and_authenticated_push_pull() {
    let _serial = registry_lock();
    if !have("htpasswd") {
        eprintln!("skipping: htpasswd (apache2-utils) is not installed");
        return;
    }
    let dir = unique_tmp_dir("berth-auth");
    let pw = htpasswd(&dir, "tester", "secretpw");
    let reg = Registry::start_with(&["--htpasswd", pw.to_str().unwrap()]);
    let d = Daemon::start();
    let o = d.docker(&["login", "-u", "tester", "-p", "wrongpw", &reg.addr]);
    assert!(!o.success(), "{o}");
    assert!(
        o.stderr.contains(&format!(
            "login attempt to http://{}/v2/ failed with status: 401 Unauthorized",
            reg.addr
        )),
        "{o}"
    );
    let name = format!("{}/priv/bb:x", reg.addr);
    assert!(d.docker(&["tag", "busybox", &name]).success());
    // No credentials yet.
    let o = d.docker(&["push", &name]);
    assert!(!o.success(), "{o}");
    assert!(
        o.stdout.contains("no basic auth credentials")
            || o.stderr.contains("no basic auth credentials"),
        "{o}"
    );
    let o = d.cli_stdin(
        berth_e2e::Cli::Docker,
        &["login", "-u", "tester", "--password-stdin", &reg.addr],
        b"secretpw\n",
    );
    assert!(o.success() && o.stdout.contains("Login Succeeded"), "{o}");
    let o = d.docker(&["push", &name]);
    assert!(o.success(), "{o}\n{}", d.log());

    let d2 = Daemon::start_bare();
    let r = d2.api(
        "POST",
        &format!("/images/create?fromImage={}/priv/bb&tag=x", reg.addr),
    );
    assert_eq!(r.status, 500, "{}", r.text());
    assert!(
        r.message().contains("no basic auth credentials"),
        "{}",
        r.message()
    );
    let o = d2.cli_stdin(
        berth_e2e::Cli::Docker,
        &["login", "-u", "tester", "--password-stdin", &reg.addr],
        b"secretpw\n",
    );
    assert!(o.success(), "{o}");
    let o = d2.docker(&["pull", &name]);
    assert!(o.success(), "{o}\n{}", d2.log());
    assert_eq!(image_json(&d2, &name)["Id"], image_json(&d, &name)["Id"]);
    let _ = std::fs::remove_dir_all(&dir);
}

/// berth push → Debian's docker-registry (htpasswd auth) → `skopeo copy` to an OCI dir.
#[test]
fn interop_with_docker_registry_and_skopeo() {
    let _serial = registry_lock();
    for b in ["docker-registry", "skopeo", "htpasswd"] {
        if !have(b) {
            eprintln!("skipping interop test: {b} is not installed");
            return;
        }
    }
    let dir = unique_tmp_dir("berth-interop");
    let pw = htpasswd(&dir, "tester", "secretpw");
    let addr = free_addr();
    let cfg = dir.join("config.yml");
    std::fs::write(
        &cfg,
        format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {addr}\nauth:\n  htpasswd:\n    realm: berth-test\n    path: {}\n",
            dir.join("data").display(),
            pw.display()
        ),
    )
    .unwrap();
    let mut child = Command::new("docker-registry")
        .arg("serve")
        .arg(&cfg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("docker-registry");
    struct Kill<'a>(&'a mut Child);
    impl Drop for Kill<'_> {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _k = Kill(&mut child);
    assert!(wait_until(Duration::from_secs(10), || {
        std::net::TcpStream::connect(&addr).is_ok()
    }));

    let d = Daemon::start();
    let name = format!("{addr}/interop/bb:1");
    assert!(d.berth(&["tag", "busybox", &name]).success());
    let o = d.cli_stdin(
        berth_e2e::Cli::Docker,
        &["login", "-u", "tester", "--password-stdin", &addr],
        b"secretpw\n",
    );
    assert!(o.success(), "{o}");
    let o = d.docker(&["push", &name]);
    assert!(o.success(), "{o}\n{}", d.log());
    let pushed = o
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("1: digest: "))
        .expect("digest line")
        .to_owned();
    let pushed_digest = pushed.split(' ').next().unwrap().to_owned();

    let raw = Command::new("skopeo")
        .args([
            "inspect",
            "--raw",
            "--tls-verify=false",
            "--creds",
            "tester:secretpw",
        ])
        .arg(format!("docker://{name}"))
        .output()
        .unwrap();
    assert!(
        raw.status.success(),
        "{}",
        String::from_utf8_lossy(&raw.stderr)
    );
    assert_eq!(berth_sha256(&raw.stdout), pushed_digest);

    let oci = dir.join("oci");
    let o = Command::new("skopeo")
        .args([
            "copy",
            "--src-tls-verify=false",
            "--src-creds",
            "tester:secretpw",
        ])
        .arg(format!("docker://{name}"))
        .arg(format!("oci:{}:1", oci.display()))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(oci.join("index.json")).unwrap()).unwrap();
    let mdig = index["manifests"][0]["digest"].as_str().unwrap();
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(oci.join("blobs/sha256").join(&mdig[7..])).unwrap())
            .unwrap();
    let ii = image_json(&d, &name);
    // skopeo writes the config again as an OCI config, without Docker's fields (the
    // import's `comment`): the same layers, under the digest of what it wrote.
    let cfg_digest = manifest["config"]["digest"].as_str().unwrap().to_owned();
    let cfg_raw = std::fs::read(oci.join("blobs/sha256").join(&cfg_digest[7..])).unwrap();
    assert_eq!(berth_sha256(&cfg_raw), cfg_digest);
    let cfg: serde_json::Value = serde_json::from_slice(&cfg_raw).unwrap();
    assert_eq!(cfg["rootfs"]["diff_ids"], ii["RootFS"]["Layers"]);
    let pushed_manifest: serde_json::Value = serde_json::from_slice(&raw.stdout).unwrap();
    let digests = |m: &serde_json::Value| -> Vec<String> {
        m["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["digest"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(digests(&manifest), digests(&pushed_manifest));

    // And the OCI dir loads back into a daemon as an OCI layout.
    let tar = dir.join("oci.tar");
    assert!(Command::new("tar")
        .arg("-C")
        .arg(&oci)
        .arg("-cf")
        .arg(&tar)
        .arg(".")
        .status()
        .unwrap()
        .success());
    let d2 = Daemon::start_bare();
    let body = std::fs::read(&tar).unwrap();
    let r = d2.api_body(
        "POST",
        "/images/load",
        Body::Chunked("application/x-tar", &body),
    );
    let msgs = r.json_stream();
    assert!(
        msgs.iter().any(|m| m["stream"]
            .as_str()
            .is_some_and(|s| s.starts_with("Loaded image"))),
        "{msgs:?}"
    );
    assert!(
        d2.api(
            "GET",
            &format!("/images/{cfg_digest}/json")
        )
        .status
            == 200
    );
    let _ = std::fs::remove_dir_all(&dir);
}

fn berth_sha256(data: &[u8]) -> String {
    let o = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(data)?;
            c.wait_with_output()
        })
        .unwrap();
    format!(
        "sha256:{}",
        String::from_utf8_lossy(&o.stdout)
            .split(' ')
            .next()
            .unwrap()
    )
}

fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

#[test]
fn manifest_list_platform_and_digest_pulls() {
    let _serial = registry_lock();
    let reg = Registry::start();
    let d = Daemon::start();
    let (name, o) = push_busybox(&d, &reg, "ml/bb:single");
    let digest = o
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("single: digest: "))
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .to_owned();
    let raw = Command::new("curl")
        .args([
            "-sf",
            "-H",
            "Accept: application/vnd.docker.distribution.manifest.v2+json",
        ])
        .arg(format!("http://{}/v2/ml/bb/manifests/single", reg.addr))
        .output()
        .unwrap();
    assert!(raw.status.success());
    let size = raw.stdout.len();
    // An index with an entry for this host and one for another OS, both the same image.
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {"mediaType": "application/vnd.docker.distribution.manifest.v2+json", "digest": digest, "size": size,
             "platform": {"os": "plan9", "architecture": "386"}},
            {"mediaType": "application/vnd.docker.distribution.manifest.v2+json", "digest": digest, "size": size,
             "platform": {"os": "linux", "architecture": host_arch()}},
        ]
    });
    let put = Command::new("curl")
        .args([
            "-sf",
            "-X",
            "PUT",
            "-H",
            "Content-Type: application/vnd.oci.image.index.v1+json",
            "--data-binary",
        ])
        .arg(index.to_string())
        .arg(format!("http://{}/v2/ml/bb/manifests/multi", reg.addr))
        .output()
        .unwrap();
    assert!(
        put.status.success(),
        "{}",
        String::from_utf8_lossy(&put.stderr)
    );

    let d2 = Daemon::start_bare();
    let r = d2.api(
        "POST",
        &format!("/images/create?fromImage={}/ml/bb&tag=multi", reg.addr),
    );
    let msgs = r.json_stream();
    assert!(
        msgs.last().unwrap()["status"]
            .as_str()
            .unwrap()
            .starts_with("Status: Downloaded newer image"),
        "{msgs:?}"
    );
    let id = image_json(&d, &name)["Id"].clone();
    assert_eq!(
        image_json(&d2, &format!("{}/ml/bb:multi", reg.addr))["Id"],
        id
    );
    // The platform param picks the entry; no match is a 404 before the stream.
    let r = d2.api(
        "POST",
        &format!(
            "/images/create?fromImage={}/ml/bb&tag=multi&platform=plan9/386",
            reg.addr
        ),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let r = d2.api(
        "POST",
        &format!(
            "/images/create?fromImage={}/ml/bb&tag=multi&platform=windows/arm64",
            reg.addr
        ),
    );
    assert_eq!(r.status, 404, "{}", r.text());
    assert!(
        r.message()
            .contains("no matching manifest for windows/arm64"),
        "{}",
        r.message()
    );

    // By digest: the image records the repo digest.
    let d3 = Daemon::start_bare();
    let r = d3.api(
        "POST",
        &format!("/images/create?fromImage={}/ml/bb&tag={digest}", reg.addr),
    );
    let msgs = r.json_stream();
    assert_eq!(msgs[0]["id"], digest.as_str(), "{msgs:?}");
    let ii = image_json(&d3, id.as_str().unwrap());
    assert_eq!(ii["RepoDigests"][0], format!("{}/ml/bb@{digest}", reg.addr));
    assert_eq!(ii["RepoTags"], serde_json::json!([]));
}

/// A TLS registry on loopback: berthd tries TLS (unverified, as for any insecure
/// registry) before plain HTTP.
#[test]
fn tls_registry_on_loopback() {
    let _serial = registry_lock();
    if !have("openssl") {
        eprintln!("skipping: openssl is not installed");
        return;
    }
    let dir = unique_tmp_dir("berth-tls");
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let o = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
        ])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let reg = Registry::start_with(&[
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ]);
    let d = Daemon::start();
    let name = format!("{}/tls/bb:1", reg.addr);
    assert!(d.berth(&["tag", "busybox", &name]).success());
    let o = d.berth(&["push", &name]);
    assert!(o.success(), "{o}\n{}", d.log());
    let d2 = Daemon::start_bare();
    let o = d2.docker(&["pull", &name]);
    assert!(o.success(), "{o}\n{}", d2.log());
    assert_eq!(image_json(&d2, &name)["Id"], image_json(&d, &name)["Id"]);
    // It really is TLS.
    let o = Command::new("curl")
        .args(["-skf"])
        .arg(format!("https://{}/v2/tls/bb/tags/list", reg.addr))
        .output()
        .unwrap();
    assert!(o.status.success() && String::from_utf8_lossy(&o.stdout).contains("\"1\""));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn pull_skips_layers_already_present() {
    let _serial = registry_lock();
    let reg = Registry::start();
    let d1 = Daemon::start();
    let o = d1.berth(&[
        "run",
        "--name",
        "two",
        "busybox",
        "sh",
        "-c",
        "echo two > /two",
    ]);
    assert!(o.success(), "{o}");
    let name = format!("{}/two/layers:1", reg.addr);
    let r = d1.api(
        "POST",
        &format!("/commit?container=two&repo={}/two/layers&tag=1", reg.addr),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    assert!(d1.berth(&["push", &name]).success());

    // The second daemon already has the busybox layer.
    let d2 = Daemon::start();
    let r = d2.api(
        "POST",
        &format!("/images/create?fromImage={}/two/layers&tag=1", reg.addr),
    );
    let msgs = r.json_stream();
    let with = |s: &str| msgs.iter().filter(|m| m["status"] == s).count();
    assert_eq!(
        (with("Already exists"), with("Pull complete")),
        (1, 1),
        "{msgs:?}"
    );
    let i1 = image_json(&d1, &name);
    let i2 = image_json(&d2, &name);
    assert_eq!(i1["Id"], i2["Id"]);
    assert_eq!(i2["RootFS"]["Layers"].as_array().unwrap().len(), 2);
    assert_eq!(run_out(&d2, &name, "cat /two"), "two\n");
}

/// A pull cut off by a `kill -9` of berthd leaves nothing half-made: after the restart
/// the image is either absent with no stray layer or blob, or complete; a new pull then
/// succeeds and the image runs.
#[test]
fn interrupted_pull_restarts_cleanly() {
    let _serial = registry_lock();
    let reg = Registry::start();
    let d1 = Daemon::start();
    // An image with a large incompressible layer, so the pull takes a moment.
    let dir = unique_tmp_dir("berth-e2e-bigpull");
    std::fs::create_dir_all(dir.join("root/data")).unwrap();
    let mut big = vec![0u8; 96 << 20];
    let mut x: u64 = 0x9e3779b97f4a7c15;
    for chunk in big.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
    }
    std::fs::write(dir.join("root/data/blob"), &big).unwrap();
    drop(big);
    let tar = dir.join("big.tar");
    assert!(Command::new("tar").arg("-C").arg(dir.join("root")).arg("-cf").arg(&tar).arg(".").status().unwrap().success());
    let name = format!("{}/big/img:1", reg.addr);
    assert!(d1.berth(&["import", tar.to_str().unwrap(), &name]).success());
    assert!(d1.berth(&["push", &name]).success());
    let id = image_json(&d1, &name)["Id"].as_str().unwrap().to_owned();

    let mut d2 = Daemon::start();
    let mut pull = d2.spawn(berth_e2e::Cli::Berth, &["pull", &name]);
    let started = pull.wait_for_line(Duration::from_secs(30), |l| l.contains("Pulling fs layer") || l.contains("Downloading"));
    assert!(started.is_some(), "pull never started: {:?}", pull.stdout_lines());
    d2.crash();
    pull.kill();
    d2.relaunch();

    let r = d2.api("GET", &format!("/images/{name}/json"));
    if r.status == 200 {
        // The pull finished before the kill: it must be whole.
        assert_eq!(r.json()["Id"].as_str(), Some(id.as_str()));
    } else {
        assert_eq!(r.status, 404, "{}", r.text());
        // Whatever content survived is whole (its name is its digest): a later pull
        // may reuse it. Nothing half-written remains in the ingest area or as a layer.
        for e in std::fs::read_dir(d2.data_root().join("content/blobs/sha256")).unwrap().flatten() {
            let o = Command::new("sha256sum").arg(e.path()).output().unwrap();
            let sum = String::from_utf8_lossy(&o.stdout).split_whitespace().next().unwrap_or("").to_owned();
            assert_eq!(sum, e.file_name().to_string_lossy(), "blob {:?} does not match its digest", e.path());
        }
        let ingest: Vec<_> = std::fs::read_dir(d2.data_root().join("content/ingest")).unwrap().flatten().collect();
        assert!(ingest.is_empty(), "{ingest:?}");
        let tmp_layers: Vec<_> = std::fs::read_dir(d2.data_root().join("layers"))
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(".tmp-"))
            .collect();
        assert!(tmp_layers.is_empty(), "{tmp_layers:?}");
    }
    let o = d2.berth(&["pull", &name]);
    assert!(o.success(), "{o}");
    assert_eq!(image_json(&d2, &name)["Id"].as_str(), Some(id.as_str()));
    assert_eq!(image_json(&d2, &name)["RootFS"], image_json(&d1, &name)["RootFS"]);
    assert_eq!(image_json(&d2, &name)["Size"], image_json(&d1, &name)["Size"]);
    let _ = std::fs::remove_dir_all(&dir);
}

/// `gzip -nc` of some bytes.
fn gzip_bytes(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut c = Command::new("gzip")
        .arg("-nc")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("gzip");
    let mut stdin = c.stdin.take().unwrap();
    let input = data.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let o = c.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(o.status.success());
    o.stdout
}

/// `curl` with the given arguments; (HTTP status, body).
fn curl(args: &[&str]) -> (u16, Vec<u8>) {
    let o = Command::new("curl")
        .args(["-s", "-w", "\n%{http_code}"])
        .args(args)
        .output()
        .expect("curl");
    let out = o.stdout;
    let nl = out.iter().rposition(|&b| b == b'\n').unwrap();
    let code = String::from_utf8_lossy(&out[nl + 1..])
        .trim()
        .parse()
        .unwrap_or(0);
    (code, out[..nl].to_vec())
}

/// A pulled image whose bottom layer is foreign (Docker's foreign media type, with
/// `urls`) is pushed to another repository without that layer's blob: the CLI says
/// "Skipped foreign layer", the new manifest carries the same descriptor, the new
/// repository does not have the blob, and a pull from there fetches it from the urls.
#[test]
fn foreign_layers_are_skipped_on_push() {
    let _serial = registry_lock();
    let reg = Registry::start();
    let dir = unique_tmp_dir("berth-e2e-foreign");
    std::fs::create_dir_all(&dir).unwrap();
    let foreign_tar = berth_e2e::RawTar::new()
        .file("foreign.txt", b"base layer nobody may redistribute\n")
        .build();
    let own_tar = berth_e2e::RawTar::new()
        .file("own.txt", b"our layer\n")
        .build();
    let (foreign_gz, own_gz) = (gzip_bytes(&foreign_tar), gzip_bytes(&own_tar));
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": host_arch(), "os": "linux", "created": "2024-01-02T03:04:05Z",
        "config": {"Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": [berth_sha256(&foreign_tar), berth_sha256(&own_tar)]},
    }))
    .unwrap();
    let upload = |repo: &str, data: &[u8]| -> String {
        let d = berth_sha256(data);
        let f = dir.join(d.trim_start_matches("sha256:"));
        std::fs::write(&f, data).unwrap();
        let (code, body) = curl(&[
            "-X",
            "POST",
            "-H",
            "Content-Type: application/octet-stream",
            "--data-binary",
            &format!("@{}", f.display()),
            &format!("http://{}/v2/{repo}/blobs/uploads/?digest={d}", reg.addr),
        ]);
        assert_eq!(code, 201, "{}", String::from_utf8_lossy(&body));
        d
    };
    let cfg_d = upload("fl/src", &config);
    let foreign_d = upload("fl/src", &foreign_gz);
    let own_d = upload("fl/src", &own_gz);
    let foreign_url = format!("http://{}/v2/fl/src/blobs/{foreign_d}", reg.addr);
    let foreign_desc = serde_json::json!({
        "mediaType": "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
        "size": foreign_gz.len(), "digest": foreign_d, "urls": [foreign_url],
    });
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": config.len(), "digest": cfg_d},
        "layers": [foreign_desc, {"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": own_gz.len(), "digest": own_d}],
    });
    let (code, body) = curl(&[
        "-X",
        "PUT",
        "-H",
        "Content-Type: application/vnd.docker.distribution.manifest.v2+json",
        "--data-binary",
        &manifest.to_string(),
        &format!("http://{}/v2/fl/src/manifests/1", reg.addr),
    ]);
    assert_eq!(code, 201, "{}", String::from_utf8_lossy(&body));

    let d = Daemon::start_bare();
    let src = format!("{}/fl/src:1", reg.addr);
    let o = d.berth(&["pull", &src]);
    assert!(o.success(), "{o}\n{}", d.log());
    let id = image_json(&d, &src)["Id"].clone();
    assert_eq!(id, berth_sha256(&config).as_str());

    let dst = format!("{}/fl/dst:2", reg.addr);
    assert!(d.berth(&["tag", &src, &dst]).success());
    let o = d.berth(&["push", &dst]);
    assert!(o.success(), "{o}\n{}", d.log());
    let foreign_id = &berth_sha256(&foreign_tar)[7..19];
    let own_id = &berth_sha256(&own_tar)[7..19];
    assert!(
        o.stdout
            .contains(&format!("{foreign_id}: Skipped foreign layer")),
        "{o}"
    );
    assert!(
        o.stdout.contains(&format!("{own_id}: Mounted from fl/src")),
        "{o}"
    );
    let (code, body) = curl(&[
        "-H",
        "Accept: application/vnd.docker.distribution.manifest.v2+json",
        &format!("http://{}/v2/fl/dst/manifests/2", reg.addr),
    ]);
    assert_eq!(code, 200);
    let pushed: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(pushed["layers"][0], foreign_desc, "{pushed}");
    assert_eq!(pushed["layers"][1]["digest"], own_d.as_str());
    // The blob was neither uploaded nor mounted into the new repository.
    let (code, _) = curl(&[
        "-I",
        &format!("http://{}/v2/fl/dst/blobs/{foreign_d}", reg.addr),
    ]);
    assert_eq!(code, 404);

    // Another daemon pulls the pushed image: the foreign blob comes from its urls.
    let d2 = Daemon::start_bare();
    let o = d2.berth(&["pull", &dst]);
    assert!(o.success(), "{o}\n{}", d2.log());
    assert_eq!(image_json(&d2, &dst)["Id"], id);
    assert_eq!(
        image_json(&d2, &dst)["RootFS"],
        image_json(&d, &src)["RootFS"]
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// `registry-mirrors` in daemon.json: a Docker Hub image is pulled from the mirror
/// (berth's registry on loopback holding `library/busybox`); Docker Hub itself is
/// never asked (this machine could not reach it), and `info` lists the mirror.
#[test]
fn docker_hub_pulls_go_to_the_registry_mirror() {
    let _serial = registry_lock();
    let reg = Registry::start();
    let d1 = Daemon::start();
    let mirrored = format!("{}/library/busybox:latest", reg.addr);
    assert!(d1.berth(&["tag", "busybox", &mirrored]).success());
    assert!(d1.berth(&["push", &mirrored]).success());

    let cfg = unique_tmp_dir("berth-mirror").join("daemon.json");
    std::fs::create_dir_all(cfg.parent().unwrap()).unwrap();
    std::fs::write(&cfg, format!(r#"{{"registry-mirrors": ["http://{}/"]}}"#, reg.addr)).unwrap();
    let d2 = Daemon::start_with_args(&["--config-file", cfg.to_str().unwrap()]);
    let o = d2.docker(&["pull", "busybox"]);
    assert!(o.success(), "{o}\n{}", d2.log());
    assert!(o.stdout.contains("Status: Downloaded newer image for busybox:latest"), "{o}");
    assert_eq!(run_out(&d2, "busybox", "echo mirrored"), "mirrored\n");
    let info = d2.docker(&["info", "--format", "{{json .RegistryConfig.Mirrors}}"]);
    assert_eq!(info.stdout.trim(), format!(r#"["http://{}/"]"#, reg.addr));
}

#[test]
fn max_concurrent_downloads_and_uploads_limit_pulls_and_pushes() {
    let _serial = registry_lock();
    let reg = Registry::start();
    let d = Daemon::start_with_args(&["--max-concurrent-downloads", "1", "--max-concurrent-uploads", "1"]);
    d.import_busybox();
    let ctx = berth_e2e::dir_with(
        "berth-mcd",
        &[("Dockerfile", "FROM busybox\nRUN echo 1 > /a\nRUN echo 2 > /b\nRUN echo 3 > /c\n")],
    );
    let image = format!("{}/layers:1", reg.addr);
    assert!(d.berth(&["build", "-q", "-t", &image, ctx.to_str().unwrap()]).success());
    assert!(d.berth(&["push", &image]).success());
    // a fresh daemon pulls the four layers one at a time: three wait
    let d2 = Daemon::start_with_args(&["--max-concurrent-downloads", "1"]);
    let o = d2.docker(&["pull", &image]);
    assert!(o.success(), "{o}");
    assert_eq!(o.stdout.matches("Waiting").count(), 3, "{o}");
    let d3 = Daemon::start_bare();
    let o = d3.docker(&["pull", &image]);
    assert_eq!(o.stdout.matches("Waiting").count(), 1, "dockerd's default is three at once: {o}");
    // pushed again from a daemon that uploads five at once: the same manifest, its
    // layers in the image's order
    let again = format!("{}/layers:2", reg.addr);
    assert!(d3.berth(&["tag", &image, &again]).success());
    let o = d3.berth(&["push", &again]);
    assert!(o.success(), "{o}");
    let layers = |tag: &str| {
        let o = Command::new("curl")
            .args(["-sf", "-H", "Accept: application/vnd.docker.distribution.manifest.v2+json"])
            .arg(format!("http://{}/v2/layers/manifests/{tag}", reg.addr))
            .output()
            .unwrap();
        let m: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        m["layers"].clone()
    };
    assert_eq!(layers("1"), layers("2"));
    assert_eq!(layers("1").as_array().unwrap().len(), 4);
    std::fs::remove_dir_all(&ctx).ok();
}

/// Image and layer sizes are dockerd's: the bytes of a layer's files and symlinks, a
/// hard-linked file once, directories and the tar's headers nothing.
#[test]
fn image_sizes_count_file_bytes_as_dockerd_does() {
    let d = Daemon::start();
    let tar = berth_e2e::RawTar::new()
        .dir("d")
        .file("d/f", &[7u8; 1000])
        .hardlink("d/hard", "d/f")
        .symlink("sym", "abc")
        .build();
    let dir = unique_tmp_dir("berth-sizes");
    let path = dir.join("l.tar");
    std::fs::write(&path, &tar).unwrap();
    assert!(d.docker(&["import", path.to_str().unwrap(), "sized:1"]).success());
    assert_eq!(image_json(&d, "sized:1")["Size"], 1003, "not the tar's {} bytes", tar.len());
    let o = d.docker(&["history", "--format", "{{.Size}}", "--human=false", "sized:1"]);
    assert_eq!(o.out(), "1003", "{o}");
    let o = d.docker(&["images", "--format", "{{.Size}}", "sized:1"]);
    assert_eq!(o.out(), "1kB", "{o}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `GET /distribution/{name}/json` asks the registry what a reference is without
/// pulling it: the manifest's descriptor (the digest a pull records) and its
/// platforms, as the Docker SDK for Python's `get_registry_data` reads them. The
/// registry is on loopback and berthd runs with a proxy in its environment that does
/// not exempt it: like dockerd's Go client, berthd reaches loopback directly.
#[test]
fn distribution_inspect_asks_the_registry() {
    let _serial = registry_lock();
    let reg = Registry::start();
    let d = Daemon::start();
    let (name, _) = push_busybox(&d, &reg, "bb/app:1.0");
    let repo_digest = image_json(&d, &name)["RepoDigests"][0].as_str().unwrap().to_owned();
    let digest = repo_digest.rsplit('@').next().unwrap().to_owned();
    let arch = host_arch();
    for r in [name.clone(), format!("{}/bb/app@{digest}", reg.addr)] {
        let i = d.api("GET", &format!("/v1.41/distribution/{r}/json"));
        assert_eq!(i.status, 200, "{r}: {}", i.text());
        let v = i.json();
        assert_eq!(v["Descriptor"]["digest"], digest.as_str(), "{v}");
        assert_eq!(v["Descriptor"]["mediaType"], "application/vnd.docker.distribution.manifest.v2+json", "{v}");
        assert!(v["Descriptor"]["size"].as_i64().unwrap() > 0, "{v}");
        assert_eq!(v["Platforms"], serde_json::json!([{"architecture": arch, "os": "linux"}]), "{v}");
    }
    let missing = d.api("GET", &format!("/v1.41/distribution/{}/bb/app:nope/json", reg.addr));
    assert_eq!(missing.status, 404, "{}", missing.text());
    let bad = d.api("GET", "/v1.41/distribution/UPPER/json");
    assert_eq!(bad.status, 400, "{}", bad.text());
    // The Docker SDK for Python.
    let script = format!(
        "import docker\nr = docker.from_env().images.get_registry_data({name:?})\nassert r.id == {digest:?}, r.id\nassert r.has_platform('linux/{arch}')\nassert not r.has_platform('windows/{arch}')\nprint('ok')\n"
    );
    let mut cmd = Command::new("python3");
    cmd.args(["-c", &script]).env("DOCKER_HOST", d.host());
    let o = berth_e2e::run_command(cmd, None, Duration::from_secs(60));
    assert_eq!((o.code, o.stdout.trim()), (0, "ok"), "{o}");
}
