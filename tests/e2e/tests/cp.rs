//! `cp` through the archive API with both CLIs: files, directories and symlinks
//! both ways, running and stopped containers, volumes and read-only mounts, tar
//! streams, and the symlink-swap race of CVE-2018-15664.

use std::path::Path;
use std::time::Duration;

use berth_e2e::{run_command, unique_tmp_dir, wait_until, Body, Cli, Daemon};

fn names_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    v.sort();
    v
}

fn tar_of_dir(dir: &Path, entry: &str) -> Vec<u8> {
    let mut cmd = std::process::Command::new("tar");
    cmd.arg("-C").arg(dir).args(["-cf", "-", entry]);
    let o = run_command(cmd, None, Duration::from_secs(30));
    assert_eq!(o.code, 0, "{o}");
    o.stdout_bytes.clone()
}

/// The (name, content) of each regular file in a tar.
fn tar_files(raw: &[u8]) -> Vec<(String, String)> {
    let mut a = tar::Archive::new(raw);
    let mut out = Vec::new();
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        if e.header().entry_type() == tar::EntryType::Regular {
            let mut s = String::new();
            std::io::Read::read_to_string(&mut e, &mut s).unwrap();
            out.push((String::from_utf8_lossy(&e.path_bytes()).into_owned(), s));
        }
    }
    out
}

#[test]
fn cp_files_directories_and_links_both_ways_with_both_clis() {
    let d = Daemon::start();
    for cli in Cli::ALL {
        let n = format!("cp-{}", cli.name());
        let script = "mkdir -p /d/sub && echo hi > /d/sub/f && ln -sfn / /d/rootlink && ln -sfn /etc/passwd /d/pw && echo vol > /data/v && sleep 600";
        d.cli(cli, &["run", "-d", "--name", &n, "-v", &format!("cpv-{}:/data", cli.name()), "busybox", "sh", "-c", script]).ok();
        assert!(wait_until(Duration::from_secs(10), || d.cli(cli, &["exec", &n, "test", "-f", "/data/v"]).code == 0));
        let passwd = d.cli(cli, &["exec", &n, "cat", "/etc/passwd"]).ok().to_owned();
        let host = unique_tmp_dir("berth-cp");
        let h = |p: &str| host.join(p).to_string_lossy().into_owned();
        let c = |p: &str| format!("{n}:{p}");

        // A directory out: the link to / comes as a link, nothing of the host with it.
        d.cli(cli, &["cp", &c("/d"), &h("out")]).ok();
        assert_eq!(names_in(&host.join("out")), ["pw", "rootlink", "sub"], "{}", cli.name());
        assert_eq!(std::fs::read_to_string(host.join("out/sub/f")).unwrap(), "hi\n");
        assert_eq!(std::fs::read_link(host.join("out/rootlink")).unwrap(), Path::new("/"));
        // A symlink is copied as a link; -L copies what it points to in the container.
        d.cli(cli, &["cp", &c("/d/pw"), &h("pwlink")]).ok();
        assert_eq!(std::fs::read_link(host.join("pwlink")).unwrap(), Path::new("/etc/passwd"));
        d.cli(cli, &["cp", "-L", &c("/d/pw"), &h("pw")]).ok();
        assert_eq!(std::fs::read_to_string(host.join("pw")).unwrap(), passwd);
        // Through the link to / the container's root is reached, not the host's.
        d.cli(cli, &["cp", &c("/d/rootlink/etc/passwd"), &h("viaroot")]).ok();
        assert_eq!(std::fs::read_to_string(host.join("viaroot")).unwrap(), passwd);
        // Out of a volume, into an existing directory.
        d.cli(cli, &["cp", &c("/data/v"), &h("out")]).ok();
        assert_eq!(std::fs::read_to_string(host.join("out/v")).unwrap(), "vol\n");
        // A tar stream out.
        let o = d.cli(cli, &["cp", &c("/d/sub"), "-"]);
        assert_eq!(tar_files(&o.stdout_bytes), [("sub/f".to_owned(), "hi\n".to_owned())]);

        // In: a file into a directory and under a new name, a directory to a new name,
        // a directory's contents, a tar stream, into a volume.
        std::fs::write(host.join("up.txt"), "up\n").unwrap();
        std::fs::create_dir_all(host.join("updir/x")).unwrap();
        std::fs::write(host.join("updir/x/y"), "y\n").unwrap();
        d.cli(cli, &["cp", &h("up.txt"), &c("/d/sub/")]).ok();
        d.cli(cli, &["cp", &h("up.txt"), &c("/data/renamed")]).ok();
        d.cli(cli, &["cp", &h("updir"), &c("/newdir")]).ok();
        d.cli(cli, &["cp", &format!("{}/.", h("updir")), &c("/contents")]).ok();
        d.cli_stdin(cli, &["cp", "-", &c("/tmp")], &tar_of_dir(&host.join("updir"), "x")).ok();
        let o = d.cli(cli, &["exec", &n, "sh", "-c", "cat /d/sub/up.txt /data/renamed /newdir/x/y /contents/x/y /tmp/x/y"]);
        assert_eq!(o.ok(), "up\nup\ny\ny\ny\n", "{}: {o}", cli.name());
        // The link to / in the container as a destination: lands in the container's root.
        d.cli(cli, &["cp", &h("up.txt"), &c("/d/rootlink/")]).ok();
        assert_eq!(d.cli(cli, &["exec", &n, "cat", "/up.txt"]).ok(), "up\n");

        // Errors, with dockerd's words.
        let o = d.cli(cli, &["cp", &c("/nope"), &h("x")]);
        assert!(o.code != 0 && o.stderr.contains(&format!("Could not find the file /nope in container {n}")), "{o}");
        let o = d.cli(cli, &["cp", &c("/d/sub"), &h("up.txt")]);
        assert!(o.code != 0 && o.stderr.contains("cannot copy directory"), "{o}");
        let o = d.cli(cli, &["cp", &h("updir"), &c("/d/sub/f")]);
        assert!(o.code != 0 && o.stderr.contains("cannot copy directory"), "{o}");
        let o = d.cli(cli, &["cp", &h("up.txt"), &c("/d/sub/f/")]);
        assert!(o.code != 0, "{o}");

        // A stopped container, both ways, its volume included.
        d.cli(cli, &["stop", "-t", "0", &n]).ok();
        d.cli(cli, &["cp", &c("/data/renamed"), &h("fromstopped")]).ok();
        assert_eq!(std::fs::read_to_string(host.join("fromstopped")).unwrap(), "up\n");
        d.cli(cli, &["cp", &h("up.txt"), &c("/data/whilestopped")]).ok();
        d.cli(cli, &["cp", &h("up.txt"), &c("/etc/whilestopped")]).ok();
        d.cli(cli, &["start", &n]).ok();
        let o = d.cli(cli, &["exec", &n, "cat", "/data/whilestopped", "/etc/whilestopped"]);
        assert_eq!(o.ok(), "up\nup\n");
        d.cli(cli, &["rm", "-f", &n]).ok();
        let _ = std::fs::remove_dir_all(&host);
    }
    // Nothing stays mounted for the stopped copies.
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(&d.exec_root().join("archive-").to_string_lossy().into_owned()), "{mounts}");
}

#[test]
fn cp_honours_read_only_mounts_owners_and_tmpfs() {
    let d = Daemon::start();
    let host = unique_tmp_dir("berth-cpro");
    std::fs::write(host.join("f"), "f\n").unwrap();
    let hf = host.join("f").to_string_lossy().into_owned();
    let bind = format!("{}:/hostro:ro", host.display());
    d.berth(&["run", "-d", "--name", "ro", "--read-only", "-v", "rov:/data", "-v", &bind, "--tmpfs", "/scratch", "--user", "1000:1000", "busybox", "sleep", "600"]).ok();
    for cli in Cli::ALL {
        let o = d.cli(cli, &["cp", &hf, "ro:/etc/"]);
        assert!(o.code != 0 && o.stderr.contains("container rootfs is marked read-only"), "{o}");
        let o = d.cli(cli, &["cp", &hf, "ro:/hostro/g"]);
        assert!(o.code != 0 && o.stderr.contains("mounted volume is marked read-only"), "{o}");
        // A writable volume and the container's tmpfs take files.
        d.cli(cli, &["cp", &hf, "ro:/data/"]).ok();
        d.cli(cli, &["cp", &hf, "ro:/scratch/"]).ok();
        assert_eq!(d.cli(cli, &["exec", "ro", "cat", "/data/f", "/scratch/f"]).ok(), "f\nf\n");
        // -a gives the copy the container user's owner; without it the archive's.
        d.cli(cli, &["cp", "-a", &hf, "ro:/data/owned"]).ok();
        assert_eq!(d.cli(cli, &["exec", "ro", "stat", "-c", "%u:%g", "/data/owned"]).ok(), "1000:1000\n");
    }
    assert!(!host.join("g").exists());
    // Stopped: the rules are the same.
    d.berth(&["stop", "-t", "0", "ro"]).ok();
    let o = d.docker(&["cp", &hf, "ro:/etc/"]);
    assert!(o.code != 0 && o.stderr.contains("container rootfs is marked read-only"), "{o}");
    let o = d.docker(&["cp", &hf, "ro:/hostro/g"]);
    assert!(o.code != 0 && o.stderr.contains("mounted volume is marked read-only"), "{o}");
    assert!(!host.join("g").exists());
    let _ = std::fs::remove_dir_all(&host);
}

#[test]
fn archive_api_shapes_and_bad_requests() {
    let d = Daemon::start();
    d.berth(&["run", "-d", "--name", "arc", "busybox", "sh", "-c", "mkdir /x && echo abc > /x/f && ln -s /x/f /x/l && sleep 600"]).ok();
    assert!(wait_until(Duration::from_secs(10), || d.berth(&["exec", "arc", "test", "-L", "/x/l"]).code == 0));
    let r = d.api("HEAD", "/v1.41/containers/arc/archive?path=/x/l");
    assert_eq!(r.status, 200);
    let stat = r.header("X-Docker-Container-Path-Stat").expect("stat header");
    let raw = std::process::Command::new("base64").arg("-d").stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped()).spawn().and_then(|mut c| {
        std::io::Write::write_all(c.stdin.as_mut().unwrap(), stat.as_bytes())?;
        c.wait_with_output()
    }).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&raw.stdout).unwrap();
    assert_eq!(v["name"], "l");
    assert_eq!(v["linkTarget"], "/x/f");
    assert_eq!(v["mode"].as_u64().unwrap() & (1 << 27), 1 << 27, "{v}");
    let r = d.api("GET", "/v1.41/containers/arc/archive?path=/x");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Content-Type"), Some("application/x-tar"));
    assert_eq!(tar_files(&r.body), [("x/f".to_owned(), "abc\n".to_owned())]);
    // Missing path parameter, missing file, not a directory, a bad tar, a breakout.
    let r = d.api("GET", "/v1.41/containers/arc/archive");
    assert_eq!((r.status, r.json()["message"].as_str().unwrap()), (400, "bad parameter: pathcannot be empty"));
    let r = d.api("HEAD", "/v1.41/containers/arc/archive?path=/nope");
    assert_eq!(r.status, 404);
    let r = d.api("GET", "/v1.41/containers/nope/archive?path=/");
    assert_eq!(r.status, 404);
    let r = d.api_body("PUT", "/v1.41/containers/arc/archive?path=/x/f", Body::Fixed("application/x-tar", &[0u8; 1024]));
    assert_eq!((r.status, r.json()["message"].as_str().unwrap()), (400, "extraction point is not a directory"));
    let r = d.api_body("PUT", "/v1.41/containers/arc/archive?path=/x", Body::Fixed("application/x-tar", b"not a tar at all, just words"));
    assert_eq!(r.status, 400, "{}", r.text());
    let mut evil = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.as_old_mut().name[..10].copy_from_slice(b"../../evil");
    h.set_size(1);
    h.set_mode(0o644);
    h.set_cksum();
    evil.append(&h, &b"e"[..]).unwrap();
    let evil = evil.into_inner().unwrap();
    let r = d.api_body("PUT", "/v1.41/containers/arc/archive?path=/x", Body::Chunked("application/x-tar", &evil));
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("is outside of"), "{}", r.text());
    // noOverwriteDirNonDir.
    let mut t = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_path("x").unwrap();
    h.set_size(0);
    h.set_mode(0o644);
    h.set_cksum();
    t.append(&h, std::io::empty()).unwrap();
    let t = t.into_inner().unwrap();
    let r = d.api_body("PUT", "/v1.41/containers/arc/archive?path=/&noOverwriteDirNonDir=1", Body::Fixed("application/x-tar", &t));
    assert_eq!(r.status, 400);
    assert!(r.text().contains("cannot overwrite directory"), "{}", r.text());
}

/// CVE-2018-15664: while `cp` runs, the container swaps a directory on the copied
/// path for a symlink to `/`. Every path is resolved inside the container, so no
/// copy ever reads or writes the host's files at that path.
#[test]
fn cp_symlink_swap_race_never_reaches_the_host() {
    let d = Daemon::start();
    let secret = unique_tmp_dir("berth-cve-15664");
    std::fs::write(secret.join("secret"), "HOST\n").unwrap();
    let rel = secret.strip_prefix("/").unwrap().to_string_lossy().into_owned();
    let script = format!(
        "mkdir -p /w/real/{rel} && echo CTR > /w/real/{rel}/secret && \
         while :; do ln -sfn /w/real /w/x; ln -sfn / /w/x; done"
    );
    d.berth(&["run", "-d", "--name", "swap", "busybox", "sh", "-c", &script]).ok();
    assert!(wait_until(Duration::from_secs(10), || d.berth(&["exec", "swap", "test", "-L", "/w/x"]).code == 0));
    let path = format!("/w/x/{rel}/secret");
    let mut seen_ctr = 0;
    let mut upload = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_path("planted").unwrap();
    h.set_size(4);
    h.set_mode(0o644);
    h.set_cksum();
    upload.append(&h, &b"evil"[..]).unwrap();
    let upload = upload.into_inner().unwrap();
    for _ in 0..150 {
        let r = d.api("GET", &format!("/v1.41/containers/swap/archive?path={path}"));
        if r.status == 200 {
            for (_, content) in tar_files(&r.body) {
                assert_eq!(content, "CTR\n", "a copy out read the host's file");
                seen_ctr += 1;
            }
        }
        let dir = format!("/w/x/{rel}");
        let _ = d.api_body("PUT", &format!("/v1.41/containers/swap/archive?path={dir}"), Body::Fixed("application/x-tar", &upload));
    }
    assert_eq!(names_in(&secret), ["secret"], "a copy in wrote to the host");
    assert_eq!(std::fs::read_to_string(secret.join("secret")).unwrap(), "HOST\n");
    assert!(seen_ctr > 0, "the race never let a copy through the benign link");
    d.berth(&["rm", "-f", "swap"]).ok();
    let _ = std::fs::remove_dir_all(&secret);
}
