//! Bad input gets Docker's error statuses, and hostile image tars cannot write
//! outside the daemon's data root.

use std::path::{Path, PathBuf};

use berth_e2e::{unique_tmp_dir, Body, Cli, Daemon, HttpResponse, RawTar};
use serde_json::json;

#[test]
fn unknown_image_is_404_on_create_and_125_from_run() {
    let d = Daemon::start_bare();
    let r = d.api_json(
        "POST",
        "/v1.41/containers/create",
        &json!({"Image": "nosuchimage:latest", "Cmd": ["true"]}),
    );
    assert_eq!(r.status, 404, "{}", r.text());
    assert!(r.message().contains("No such image"), "{}", r.text());
    assert!(
        r.header("content-type")
            .unwrap_or("")
            .contains("application/json"),
        "{:?}",
        r.headers
    );
    for cli in Cli::ALL {
        let o = d.cli(
            cli,
            &["run", "--rm", "127.0.0.1:1/nosuchimage:latest", "true"],
        );
        assert_eq!(o.code, 125, "{}: {o}", cli.name());
    }
    // A missing image is named as dockerd names it: tagged, or as a digest.
    for (args, shown) in [
        (&["rmi", "nosuch"][..], "nosuch:latest"),
        (&["tag", "nosuch", "x"][..], "nosuch:latest"),
        (&["image", "inspect", "some/repo:1"][..], "some/repo:1"),
        (&["rmi", &"ab".repeat(32)][..], &*format!("sha256:{}", "ab".repeat(32))),
    ] {
        let o = d.docker(args);
        assert!(o.code != 0 && o.stderr.contains(&format!("No such image: {shown}")), "{args:?}: {o}");
    }
}

#[test]
fn duplicate_name_is_409() {
    let d = Daemon::start();
    let body = json!({"Image": "busybox", "Cmd": ["true"]});
    let r = d.api_json("POST", "/v1.41/containers/create?name=dup", &body);
    assert_eq!(r.status, 201, "{}", r.text());
    let id = r.json()["Id"].as_str().unwrap().to_string();
    let r = d.api_json("POST", "/v1.41/containers/create?name=dup", &body);
    assert_eq!(r.status, 409, "{}", r.text());
    let msg = r.message();
    assert!(
        msg.contains("\"/dup\" is already in use") && msg.contains(&id),
        "{msg}"
    );
    for cli in Cli::ALL {
        let o = d.cli(cli, &["run", "--name", "dup", "busybox", "true"]);
        assert_eq!(o.code, 125, "{}: {o}", cli.name());
        assert!(o.stderr.contains("already in use"), "{}: {o}", cli.name());
    }
    // the original is untouched and the name is free again after rm
    assert_eq!(d.inspect("dup")["Id"], id.as_str());
    d.berth(&["rm", "dup"]).ok();
    let r = d.api_json("POST", "/v1.41/containers/create?name=dup", &body);
    assert_eq!(r.status, 201, "{}", r.text());
}

/// Current Docker (23+) answers undecodable create bodies with 400; 20.10 said 500.
#[test]
fn malformed_create_bodies_are_400() {
    let d = Daemon::start();
    for bad in [
        &b"{\"Image\": \"busybox\","[..],
        b"not json",
        b"{\"Image\": 5}",
        b"[1,2]",
    ] {
        let r = d.api_body(
            "POST",
            "/v1.41/containers/create",
            Body::Fixed("application/json", bad),
        );
        assert_eq!(
            r.status,
            400,
            "body {:?}: {}",
            String::from_utf8_lossy(bad),
            r.text()
        );
        assert!(!r.message().is_empty());
    }
    assert!(d.container_ids().is_empty());
}

#[test]
fn missing_containers_are_404() {
    let d = Daemon::start_bare();
    for (m, p) in [
        ("GET", "/v1.41/containers/nosuch/json"),
        ("POST", "/v1.41/containers/nosuch/start"),
        ("POST", "/v1.41/containers/nosuch/stop"),
        ("DELETE", "/v1.41/containers/nosuch"),
        ("GET", "/v1.41/containers/nosuch/logs?stdout=1"),
    ] {
        let r = d.api(m, p);
        assert_eq!(r.status, 404, "{m} {p}: {}", r.text());
        assert!(
            r.message().contains("No such container: nosuch"),
            "{m} {p}: {}",
            r.text()
        );
    }
}

/// Where a hostile tar tries to write: a directory outside the daemon's roots.
struct Sentinel {
    dir: PathBuf,
}

impl Sentinel {
    fn new() -> Sentinel {
        // short, so that `../`×16 + this path fits a 100-byte ustar name
        Sentinel {
            dir: unique_tmp_dir("be2e-s"),
        }
    }
    fn path(&self, name: &str) -> String {
        format!("{}/{name}", self.dir.display())
    }
    /// `../` enough times to reach / from anywhere in the data root, then the path.
    fn up(&self, name: &str) -> String {
        format!(
            "{}{}",
            "../".repeat(16),
            self.path(name).trim_start_matches('/')
        )
    }
    #[track_caller]
    fn assert_untouched(&self, expect: &[&str]) {
        let mut names: Vec<String> = std::fs::read_dir(&self.dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(
            names,
            expect,
            "something was written outside the data root into {}",
            self.dir.display()
        );
    }
}

impl Drop for Sentinel {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn import(d: &Daemon, repo: &str, tar: &[u8]) -> HttpResponse {
    d.api_body(
        "POST",
        &format!("/v1.41/images/create?fromSrc=-&repo={repo}"),
        Body::Chunked("text/plain", tar),
    )
}

/// Rejected: an error status, or (once the stream has started) an error message in it;
/// and no image was made.
fn rejected(d: &Daemon, repo: &str, r: &HttpResponse) -> bool {
    let stream_error = r
        .json_stream()
        .iter()
        .any(|m| m.get("error").is_some() || m.get("errorDetail").is_some());
    let no_image = d.api("GET", &format!("/v1.41/images/{repo}/json")).status == 404;
    (r.status >= 400 || stream_error) && no_image
}

#[test]
fn hostile_rootfs_tars_cannot_escape() {
    let d = Daemon::start_bare();
    let s = Sentinel::new();
    std::fs::write(s.dir.join("target"), "original").unwrap();
    let base = || {
        RawTar::new()
            .dir("./")
            .dir("./etc/")
            .file("./etc/ok", b"ok\n")
    };

    // Docker refuses links that lead out and writes through them (its ApplyLayer fails: 500).
    let refused: Vec<(&str, Vec<u8>)> = vec![
        (
            "evil:symlinkrel",
            base()
                .symlink("./esc", &s.up(""))
                .file("./esc/through", b"pwned")
                .build(),
        ),
        (
            "evil:symlinkabs",
            base()
                .symlink("./abslink", &s.path(""))
                .file("./abslink/through", b"pwned")
                .build(),
        ),
        (
            "evil:hardlink",
            base()
                .hardlink("./hl", &s.up("target"))
                .file("./hl", b"pwned")
                .build(),
        ),
    ];
    for (repo, tar) in &refused {
        let r = import(&d, repo, tar);
        s.assert_untouched(&["target"]);
        assert!(
            rejected(&d, repo, &r),
            "{repo} was accepted: {} {}",
            r.status,
            r.text()
        );
    }
    assert_eq!(
        std::fs::read_to_string(s.dir.join("target")).unwrap(),
        "original"
    );

    // `../` entries are refused outright (berth does not try to guess what they meant),
    // whatever comes before them.
    let dotdot: Vec<(&str, Vec<u8>)> = vec![
        (
            "evil:dotdot",
            base().file(&s.up("dotdot"), b"pwned").build(),
        ),
        (
            "evil:dotdotmid",
            base()
                .dir("./a/")
                .file(&format!("a/{}", s.up("mid")), b"pwned")
                .build(),
        ),
        (
            "evil:rootdotdot",
            base()
                .file(&format!("/../../..{}", s.path("rdd")), b"pwned")
                .build(),
        ),
    ];
    for (repo, tar) in &dotdot {
        let r = import(&d, repo, tar);
        s.assert_untouched(&["target"]);
        assert_eq!(r.status, 400, "{repo}: {} {}", r.status, r.text());
        assert!(r.message().contains("escapes"), "{repo}: {}", r.text());
        assert_eq!(d.api("GET", &format!("/v1.41/images/{repo}/json")).status, 404);
    }

    // Absolute names are taken relative to the rootfs, as Docker does.
    let r = import(&d, "evil:abs", &base().file(&s.path("abs"), b"inside").build());
    s.assert_untouched(&["target"]);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(d.api("GET", "/v1.41/images/evil:abs/json").status, 200);
    assert!(!Path::new(&s.path("abs")).exists());

    // the CLIs report the failure
    let dir = unique_tmp_dir("berth-e2e-evil");
    let evil = dir.join("evil.tar");
    std::fs::write(&evil, &refused[0].1).unwrap(); // the escaping symlink
    for cli in Cli::ALL {
        let o = d.cli(cli, &["import", evil.to_str().unwrap(), "evil:cli"]);
        assert_ne!(o.code, 0, "{}: {o}", cli.name());
        s.assert_untouched(&["target"]);
    }
    std::fs::remove_dir_all(&dir).unwrap();

    // and a plain tar still imports fine afterwards
    let r = import(&d, "good:1", &base().build());
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(d.api("GET", "/v1.41/images/good:1/json").status, 200);
    assert!(!Path::new(&s.path("dotdot")).exists());
    assert!(!Path::new("/esc").exists() && !Path::new("/hl").exists());
}

#[test]
fn network_mode_conflicts_are_refused_at_create() {
    let d = Daemon::start();
    d.berth(&["run", "-d", "--name", "netowner", "busybox", "sleep", "60"]).ok();
    for cli in Cli::ALL {
        for (args, want) in [
            (&["-p", "8080:80", "--network", "container:netowner"][..], "port publishing and the container type network mode"),
            (&["--hostname", "h", "--network", "container:netowner"][..], "hostname and the network mode"),
            (&["--dns", "1.1.1.1", "--network", "container:netowner"][..], "dns and the network mode"),
            (&["--add-host", "a:1.2.3.4", "--network", "container:netowner"][..], "custom host-to-IP mapping"),
            (&["-p", "8080:80", "--network", "none"][..], "port publishing and the none network mode"),
            (&["--network", "nosuchnet"][..], "network nosuchnet not found"),
            (&["--network-alias", "x"][..], "network-scoped alias"),
            (&["--ip", "172.17.0.50"][..], "user specified IP address is supported only"),
        ] {
            // --pull never: a 404 on create makes a CLI try a pull otherwise.
            let mut a = vec!["run", "--rm", "--pull", "never"];
            a.extend_from_slice(args);
            a.extend(["busybox", "true"]);
            let o = d.cli(cli, &a);
            assert_eq!(o.code, 125, "{} {args:?}: {o}", cli.name());
            assert!(o.stderr.contains(want), "{} {args:?}: {o}", cli.name());
        }
        // host networking has nothing to publish: dockerd warns and runs it
        let o = d.cli(cli, &["run", "--rm", "-p", "8080:80", "--network", "host", "busybox", "echo", "ok"]);
        assert_eq!((o.code, o.out().trim()), (0, "ok"), "{}: {o}", cli.name());
        assert!(o.stderr.contains("Published ports are discarded when using host network mode"), "{}: {o}", cli.name());
    }
    d.berth(&["rm", "-f", "netowner"]).ok();
    assert!(d.container_ids().is_empty());
}

/// What dockerd checks at create is refused at create with its words (no container is
/// made), and what it looks up at start is not a 404 at create: the docker CLI takes
/// any 404 from create for a missing image and pulls it.
#[test]
fn create_checks_what_dockerd_checks_and_never_sends_the_cli_to_pull() {
    let d = Daemon::start();
    for (hc, msg) in [
        (json!({"CapAdd": ["bogus"]}), "invalid CapAdd: unknown capability: \"CAP_BOGUS\""),
        (json!({"CapDrop": ["NET_RAW", "nope"]}), "invalid CapDrop: unknown capability: \"CAP_NOPE\""),
        (json!({"PortBindings": {"80/tcp": [{"HostPort": "70000"}]}}), "invalid port specification: \"70000\""),
        (json!({"PortBindings": {"web/tcp": [{"HostPort": "80"}]}}), "invalid port specification: \"web\""),
        (json!({"PidMode": "container:nosuch"}), "No such container: nosuch"),
        (json!({"IpcMode": "container:nosuch"}), "No such container: nosuch"),
        // (dockerd finds this one at start, where berthd's mount would fail obscurely)
        (json!({"Tmpfs": {"/t": "rw,size=1m,bogus=2"}}), "invalid tmpfs option [\"bogus\" \"2\"]"),
    ] {
        let r = d.api_json("POST", "/v1.41/containers/create", &json!({"Image": "busybox", "HostConfig": hc}));
        assert_eq!((r.status, r.message()), (400, msg.to_owned()), "{hc}");
    }
    assert!(d.container_ids().is_empty());
    for cli in Cli::ALL {
        let o = d.cli(cli, &["run", "--rm", "--network", "container:nosuch", "busybox", "true"]);
        assert_eq!(o.code, 125, "{}: {o}", cli.name());
        assert!(o.stderr.contains("No such container: nosuch") && !o.stderr.contains("Unable to find image"), "{}: {o}", cli.name());
    }
    assert!(d.container_ids().is_empty(), "a --rm container whose start failed was kept");
    // Log times that are not unix seconds are refused, not taken for "no limit".
    let id = d.berth(&["run", "-d", "busybox", "echo", "hi"]).ok().trim().to_owned();
    for (q, bad) in [("since=abc", "abc"), ("until=10.x", "x")] {
        let r = d.api("GET", &format!("/v1.41/containers/{id}/logs?stdout=1&{q}"));
        assert_eq!((r.status, r.message()), (400, format!("strconv.ParseInt: parsing \"{bad}\": invalid syntax")), "{q}");
    }
}

/// `Cmd`, `Entrypoint` and `Shell` are Docker's `StrSlice`: a lone string is a list of
/// one. An empty `Entrypoint` list drops the image's entrypoint and keeps its `Cmd`.
#[test]
fn command_fields_take_a_lone_string_and_an_empty_entrypoint() {
    let d = Daemon::start();
    let r = d.api_json("POST", "/v1.41/containers/create", &json!({"Image": "busybox", "Entrypoint": "echo", "Cmd": "hi there"}));
    assert_eq!(r.status, 201, "{}", r.text());
    let id = r.json()["Id"].as_str().unwrap().to_owned();
    let c = d.inspect(&id);
    assert_eq!((&c["Path"], &c["Args"]), (&json!("echo"), &json!(["hi there"])), "{c}");
    assert_eq!(d.berth(&["start", "-a", &id]).ok(), "hi there\n");
    // An image with an entrypoint and a Cmd: an empty entrypoint list keeps the Cmd.
    d.berth(&["import", "-c", "ENTRYPOINT [\"false\"]", "-c", "CMD [\"echo\", \"from the image\"]", &berth_e2e::busybox_rootfs().to_string_lossy(), "withcmd"]).ok();
    let r = d.api_json("POST", "/v1.41/containers/create", &json!({"Image": "withcmd", "Entrypoint": []}));
    assert_eq!(r.status, 201, "{}", r.text());
    let id = r.json()["Id"].as_str().unwrap().to_owned();
    let c = d.inspect(&id);
    assert_eq!((&c["Path"], &c["Args"]), (&json!("echo"), &json!(["from the image"])), "{c}");
    assert_eq!(d.berth(&["start", "-a", &id]).ok(), "from the image\n");
}
