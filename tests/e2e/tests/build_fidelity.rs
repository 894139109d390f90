//! The classic builder as dockerd 20.10's: Dockerfiles that dockerd builds build the
//! same way here, and those it refuses are refused with its words and statuses.
//! Each test names the dockerd behaviour it holds.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use berth_e2e::{bin, wait_until, Body, Cli, Daemon, Output, RawTar};

fn context(files: &[(&str, &str)]) -> PathBuf {
    berth_e2e::dir_with("berth-build-fid", files)
}

fn build(d: &Daemon, cli: Cli, ctx: &Path, extra: &[&str]) -> Output {
    d.build_dir(cli, ctx, extra)
}

fn run(d: &Daemon, image: &str, script: &str) -> String {
    let o = d.berth(&["run", "--rm", image, "sh", "-c", script]);
    assert!(o.success(), "{o}");
    o.stdout
}

/// POST /build with a raw context tar: (status, body).
fn raw_build(d: &Daemon, query: &str, tar: &[u8]) -> (u16, String) {
    let r = d.api_body("POST", &format!("/v1.41/build?{query}"), Body::Chunked("application/x-tar", tar));
    (r.status, r.text())
}

#[test]
fn steps_that_change_nothing_and_repeated_copies_mount_and_run() {
    // The same (empty) layer several times in one image: overlayfs refuses a lower
    // dir listed twice, so every step after the third failed with ELOOP.
    let d = Daemon::start();
    let ctx = context(&[
        ("Dockerfile", "FROM busybox\nRUN true\nRUN true\nRUN true\nRUN true\nRUN true\nCOPY f /f\nCOPY f /f\nRUN cat /f\nCMD [\"cat\", \"/f\"]\n"),
        ("f", "same content\n"),
    ]);
    for cli in Cli::ALL {
        let o = build(&d, cli, &ctx, &["-t", "noop", "--no-cache"]);
        assert!(o.success(), "{}: {o}", cli.name());
    }
    let o = d.berth(&["run", "--rm", "noop"]);
    assert_eq!(o.out(), "same content", "{o}");
    // A step that changes nothing adds no layer: its history entry is empty.
    let hist = d.api("GET", "/v1.41/images/noop/history").json();
    let runs: Vec<&serde_json::Value> =
        hist.as_array().unwrap().iter().filter(|h| h["CreatedBy"] == "/bin/sh -c true").collect();
    assert_eq!(runs.len(), 5, "{hist}");
    assert!(runs.iter().all(|h| h["Size"] == 0), "{hist}");
    fs::remove_dir_all(&ctx).ok();
}

#[test]
fn parse_errors_and_empty_results_use_dockerds_words_and_statuses() {
    let d = Daemon::start();
    // An error before the first line of output is an HTTP error, not a 200 stream.
    let cases: [(&[u8], &str); 4] = [
        (b"", "the Dockerfile (Dockerfile) cannot be empty"),
        (b"# only a comment\n", "failed to parse Dockerfile: file with no instructions"),
        (b"FROM busybox\nFOO bar\n", "dockerfile parse error line 2: unknown instruction: FOO"),
        (b"FROM busybox\nCOPY onlyone\n", "dockerfile parse error line 2: COPY requires at least two arguments, but only one was provided. Destination could not be determined"),
    ];
    for (df, want) in cases {
        let tar = RawTar::new().file("Dockerfile", df).build();
        let (status, body) = raw_build(&d, "", &tar);
        assert_eq!(status, 400, "{body}");
        let msg: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(msg["message"], want, "{body}");
    }
    let ctx = context(&[("Dockerfile", "FROM busybox\nRUN true\nFORM x\n")]);
    for cli in Cli::ALL {
        let o = build(&d, cli, &ctx, &[]);
        assert_ne!(o.code, 0);
        assert!(o.stderr.contains("dockerfile parse error line 3: unknown instruction: FORM"), "{o}");
    }
    // A Dockerfile that makes no image fails, after its step.
    let tar = RawTar::new().file("Dockerfile", b"FROM scratch\n").build();
    let (status, body) = raw_build(&d, "", &tar);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("Step 1/1 : FROM scratch"), "{body}");
    assert!(body.contains(r#""error":"No image was generated. Is your Dockerfile empty?""#), "{body}");
    // Query options dockerd's classic builder refuses.
    for (q, want) in [
        ("squash=1", "squash is only supported with experimental mode"),
        ("securityopt=seccomp%3Dunconfined", "does not support setting security options on build"),
        ("isolation=hyperv", "Unsupported isolation: \"hyperv\""),
        ("platform=linux%2Fs390x", "host platform"),
    ] {
        let tar = RawTar::new().file("Dockerfile", b"FROM busybox\n").build();
        let (status, body) = raw_build(&d, q, &tar);
        assert_eq!(status, 400, "{q}: {body}");
        let msg: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert!(msg["message"].as_str().unwrap().contains(want), "{q}: {body}");
    }
    let tar = RawTar::new().file("Dockerfile", b"FROM busybox\n").build();
    let (status, body) = raw_build(&d, "platform=linux", &tar);
    assert_eq!(status, 200, "{body}");
    fs::remove_dir_all(&ctx).ok();
}

#[test]
fn run_with_an_empty_exec_form_runs_the_images_command() {
    // dockerd: `RUN []` leaves the step's command empty, so its container runs the
    // image's own entrypoint and command.
    let d = Daemon::start();
    let ctx = context(&[(
        "Dockerfile",
        "FROM busybox\nCMD [\"sh\", \"-c\", \"echo from-cmd > /ran\"]\nRUN []\nRUN cat /ran\n",
    )]);
    let o = build(&d, Cli::Docker, &ctx, &["-t", "emptyrun"]);
    assert!(o.success(), "{o}");
    assert!(o.stdout.contains("from-cmd"), "{o}");
    fs::remove_dir_all(&ctx).ok();
}

#[test]
fn proxy_args_reach_run_but_not_the_history_and_labels_are_literal() {
    let d = Daemon::start();
    let ctx = context(&[(
        "Dockerfile",
        "FROM busybox\nARG no_proxy\nLABEL a=file b=file\nRUN echo \"seen:$HTTP_PROXY:$no_proxy\" > /p\n",
    )]);
    let o = build(
        &d,
        Cli::Docker,
        &ctx,
        &[
            "-t",
            "proxied",
            "--build-arg",
            "HTTP_PROXY=http://proxy.invalid:3128",
            "--build-arg",
            "no_proxy=localhost",
            "--label",
            "b=$PATH",
            "--label",
            "c=cli",
        ],
    );
    assert!(o.success(), "{o}");
    // one literal LABEL step per --label, in key order, after the Dockerfile's steps
    assert!(o.stdout.contains("Step 5/6 : LABEL b=$PATH") && o.stdout.contains("Step 6/6 : LABEL c=cli"), "{o}");
    assert_eq!(run(&d, "proxied", "cat /p").trim(), "seen:http://proxy.invalid:3128:localhost");
    let img = d.api("GET", "/v1.41/images/proxied/json").json();
    let labels = &img["Config"]["Labels"];
    assert_eq!(labels["a"], "file");
    assert_eq!(labels["b"], "$PATH", "--label is literal and overrides the Dockerfile's");
    assert_eq!(labels["c"], "cli");
    // The undeclared proxy arg is kept out of the history; the declared one is named.
    let hist = d.api("GET", "/v1.41/images/proxied/history").text();
    assert!(!hist.contains("proxy.invalid"), "{hist}");
    assert!(hist.contains("|1 no_proxy=localhost /bin/sh -c echo"), "{hist}");
    fs::remove_dir_all(&ctx).ok();
}

#[test]
fn copy_keeps_existing_directories_and_follows_source_symlinks() {
    let d = Daemon::start();
    let tar = RawTar::new()
        .file(
            "Dockerfile",
            b"FROM busybox\n\
RUN mkdir -p /d && chown 123:456 /d && chmod 0700 /d\n\
COPY f /d/\n\
COPY link /l\n\
COPY dirlink /dl\n\
COPY tree /tree\n",
        )
        .file("f", b"x")
        .file("real", b"target content")
        .symlink("link", "real")
        .dir("realdir")
        .file("realdir/inner", b"in")
        .symlink("dirlink", "realdir")
        .dir("tree")
        .symlink("tree/rel", "../real")
        .build();
    let (status, body) = raw_build(&d, "t=copies", &tar);
    assert_eq!(status, 200, "{body}");
    assert!(!body.contains("\"error\""), "{body}");
    let out = run(
        &d,
        "copies",
        "stat -c '%u:%g %a' /d; cat /l; echo; test -L /l || echo regular; cat /dl/inner; echo; readlink /tree/rel",
    );
    assert_eq!(out, "123:456 700\ntarget content\nregular\nin\n../real\n", "{out}");
    // a link to outside the context is not followed out of it
    let tar = RawTar::new()
        .file("Dockerfile", b"FROM busybox\nCOPY out /o\n")
        .symlink("out", "/etc/passwd")
        .build();
    let (_, body) = raw_build(&d, "", &tar);
    assert!(body.contains("COPY failed: file not found in build context or excluded by .dockerignore: stat out: file does not exist"), "{body}");
    // The cache follows the link: a changed target is a changed source.
    let one = |content: &[u8]| {
        RawTar::new()
            .file("Dockerfile", b"FROM busybox\nCOPY link /l\n")
            .file("real", content)
            .symlink("link", "real")
            .build()
    };
    let (_, first) = raw_build(&d, "t=cached", &one(b"v1"));
    assert!(!first.contains("Using cache"), "{first}");
    let (_, again) = raw_build(&d, "t=cached", &one(b"v1"));
    assert!(again.contains("Using cache"), "{again}");
    let (_, changed) = raw_build(&d, "t=cached", &one(b"v2"));
    assert!(!changed.contains("Using cache"), "{changed}");
    assert_eq!(run(&d, "cached", "cat /l"), "v2");
}

#[test]
fn add_unpacks_xz_and_bzip2_archives_and_refuses_a_truncated_one() {
    let d = Daemon::start();
    let src = berth_e2e::unique_tmp_dir("berth-fid-archives");
    fs::create_dir_all(src.join("content")).unwrap();
    fs::write(src.join("content/a"), "from an archive\n").unwrap();
    for (flag, name) in [("-cJf", "a.tar.xz"), ("-cjf", "a.tar.bz2"), ("-cf", "plain.tar")] {
        let ok = Command::new("tar")
            .args(["-C", src.join("content").to_str().unwrap(), flag, src.join(name).to_str().unwrap(), "a"])
            .status()
            .unwrap()
            .success();
        assert!(ok, "tar {flag}");
    }
    let read = |n: &str| fs::read(src.join(n)).unwrap();
    let plain = read("plain.tar");
    let tar = RawTar::new()
        .file("Dockerfile", b"FROM busybox\nADD a.tar.xz /xz/\nADD a.tar.bz2 /bz/\nADD notatar.tar /raw/\n")
        .file("a.tar.xz", &read("a.tar.xz"))
        .file("a.tar.bz2", &read("a.tar.bz2"))
        .file("notatar.tar", b"just text, copied as it is")
        .build();
    let (status, body) = raw_build(&d, "t=unpacked", &tar);
    assert_eq!(status, 200, "{body}");
    assert!(!body.contains("\"error\""), "{body}");
    assert_eq!(
        run(&d, "unpacked", "cat /xz/a /bz/a /raw/notatar.tar"),
        "from an archive\nfrom an archive\njust text, copied as it is"
    );
    // A tar whose first header is sound but whose file data is cut short fails the
    // step; one that only lacks its padding and end blocks is read as dockerd reads it.
    let tar = RawTar::new()
        .file("Dockerfile", b"FROM busybox\nADD cut.tar /cut/\n")
        .file("cut.tar", &plain[..520])
        .build();
    let (_, body) = raw_build(&d, "", &tar);
    assert!(body.contains("\"error\""), "{body}");
    let tar = RawTar::new()
        .file("Dockerfile", b"FROM busybox\nADD cut.tar /cut/\nRUN cat /cut/a\n")
        .file("cut.tar", &plain[..600])
        .build();
    let (_, body) = raw_build(&d, "", &tar);
    assert!(!body.contains("\"error\"") && body.contains("from an archive"), "{body}");
    fs::remove_dir_all(&src).ok();
}

#[test]
fn add_host_reaches_run_steps() {
    let d = Daemon::start();
    let ctx = context(&[("Dockerfile", "FROM busybox\nRUN grep -w buildhost /etc/hosts > /h\n")]);
    for cli in Cli::ALL {
        let o = build(&d, cli, &ctx, &["--no-cache", "-t", "hosts", "--add-host", "buildhost:10.1.2.3"]);
        assert!(o.success(), "{}: {o}", cli.name());
        assert!(run(&d, "hosts", "cat /h").starts_with("10.1.2.3"), "{}", cli.name());
    }
    fs::remove_dir_all(&ctx).ok();
}

/// `berth registry serve` on a free loopback port, for the images a build pulls.
struct Registry {
    child: std::process::Child,
    root: PathBuf,
    addr: String,
}

impl Registry {
    fn start() -> Registry {
        let root = berth_e2e::unique_tmp_dir("berth-fid-reg");
        let addr = format!("127.0.0.1:{}", berth_e2e::free_port());
        let child = Command::new(bin("berth"))
            .args(["registry", "serve", "--addr", &addr, "--root"])
            .arg(&root)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        assert!(wait_until(Duration::from_secs(10), || std::net::TcpStream::connect(&addr).is_ok()));
        Registry { child, root, addr }
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = fs::remove_dir_all(&self.root);
    }
}

#[test]
fn from_and_copy_from_pull_missing_images_and_pull_always_pulls() {
    let d = Daemon::start();
    let reg = Registry::start();
    let base = format!("{}/fid/base:1", reg.addr);
    assert!(d.berth(&["tag", "busybox", &base]).success());
    let o = d.berth(&["push", &base]);
    assert!(o.success(), "{o}");
    assert!(d.berth(&["rmi", &base]).success());
    let ctx = context(&[(
        "Dockerfile",
        &format!("FROM {base}\nCOPY --from={base} /bin/busybox /copied\nRUN test -x /copied\n"),
    )]);
    let o = build(&d, Cli::Docker, &ctx, &["-t", "pulled"]);
    assert!(o.success(), "{o}");
    assert!(o.stdout.contains("Pulling from fid/base") || o.stdout.contains("Downloaded newer image"), "{o}");
    assert_eq!(d.api("GET", &format!("/v1.41/images/{base}/json")).status, 200);
    // --pull pulls even what is here (and says the image is up to date)
    let o = build(&d, Cli::Docker, &ctx, &["--pull", "-t", "pulled"]);
    assert!(o.success(), "{o}");
    assert!(o.stdout.contains("Image is up to date") || o.stdout.contains("Pulling from"), "{o}");
    // A missing --from image names the flag, as dockerd does.
    let bad = context(&[("Dockerfile", &format!("FROM busybox\nCOPY --from={}/fid/nosuch /x /x\n", reg.addr))]);
    let o = build(&d, Cli::Docker, &bad, &[]);
    assert_ne!(o.code, 0);
    assert!(o.stderr.contains(&format!("invalid from flag value {}/fid/nosuch:", reg.addr)), "{o}");
    fs::remove_dir_all(&ctx).ok();
    fs::remove_dir_all(&bad).ok();
}

#[test]
fn cache_from_reuses_a_loaded_image_by_its_history() {
    // The CI case: the previous image arrives by `load` (or pull) with no parent
    // links; dockerd's classic --cache-from matches it step by step by history.
    let d = Daemon::start();
    let ctx = context(&[
        (
            "Dockerfile",
            "FROM busybox\nENV A=1\nCOPY f /f\nRUN echo built > /b\nWORKDIR /w\nLABEL x=y\nCMD [\"cat\", \"/b\"]\n",
        ),
        ("f", "data\n"),
    ]);
    assert!(build(&d, Cli::Docker, &ctx, &["-t", "app:1"]).success());
    let id = d.api("GET", "/v1.41/images/app:1/json").json()["Id"].as_str().unwrap().to_owned();
    let dir = berth_e2e::unique_tmp_dir("berth-fid-save");
    let tar = dir.join("app.tar");
    assert!(d.docker(&["save", "-o", tar.to_str().unwrap(), "app:1", "busybox"]).success());

    let d2 = Daemon::start_bare();
    assert!(d2.docker(&["load", "-i", tar.to_str().unwrap()]).success());
    // without --cache-from nothing is reused
    let o = build(&d2, Cli::Docker, &ctx, &["-t", "fresh"]);
    assert!(o.success() && !o.stdout.contains("Using cache"), "{o}");
    let d3 = Daemon::start_bare();
    assert!(d3.docker(&["load", "-i", tar.to_str().unwrap()]).success());
    for cli in Cli::ALL {
        let o = build(&d3, cli, &ctx, &["--cache-from", "app:1", "-t", "app:2"]);
        assert!(o.success(), "{o}");
        assert_eq!(o.stdout.matches("Using cache").count(), 6, "{}: {o}", cli.name());
        assert!(!o.stdout.contains("Running in"), "{o}");
        assert_eq!(d3.api("GET", "/v1.41/images/app:2/json").json()["Id"], id.as_str());
    }
    assert_eq!(d3.berth(&["run", "--rm", "app:2"]).out(), "built");
    // a changed file breaks the chain from its COPY on
    fs::write(ctx.join("f"), "changed\n").unwrap();
    let o = build(&d3, Cli::Docker, &ctx, &["--cache-from", "app:1", "-t", "app:3"]);
    assert!(o.success(), "{o}");
    assert_eq!(o.stdout.matches("Using cache").count(), 1, "only ENV: {o}");
    assert!(o.stdout.contains("Running in"), "{o}");
    fs::remove_dir_all(&ctx).ok();
    fs::remove_dir_all(&dir).ok();
}

#[test]
fn built_images_record_their_steps_as_dockerd_does() {
    let d = Daemon::start();
    let ctx = context(&[("Dockerfile", "FROM busybox\nARG V=1\nENV Z=1\nCOPY f /f\nRUN echo $V\n"), ("f", "x")]);
    let o = build(&d, Cli::Docker, &ctx, &["-t", "steps"]);
    assert!(o.success(), "{o}");
    // `docker history` names every step's image (the parent chain), down to the base
    let o = d.docker(&["history", "--format", "{{.ID}}|{{.CreatedBy}}", "steps"]);
    let lines: Vec<&str> = o.stdout.lines().collect();
    assert_eq!(lines.len(), 5, "{o}");
    assert!(lines.iter().all(|l| !l.starts_with("<missing>")), "{o}");
    let ids: Vec<String> = d.docker(&["history", "-q", "steps"]).stdout.lines().map(str::to_owned).collect();
    let cmd = |i: usize| {
        let v = d.api("GET", &format!("/v1.41/images/{}/json", ids[i])).json();
        (v["ContainerConfig"]["Cmd"].clone(), v["ContainerConfig"]["Image"].as_str().unwrap_or("").to_owned())
    };
    // RUN: the build args it names, then its argv; the parent image
    let (run_cmd, run_parent) = cmd(0);
    assert_eq!(run_cmd, json_words(&["|1", "V=1", "/bin/sh", "-c", "echo $V"]));
    assert!(run_parent.starts_with(&format!("sha256:{}", ids[1])), "{run_parent}");
    // metadata steps: the shell, "#(nop) " and the comment; COPY: one word
    assert_eq!(cmd(2).0, json_words(&["/bin/sh", "-c", "#(nop) ", "ENV Z=1"]));
    let copy = cmd(1).0;
    assert!(copy[2].as_str().unwrap().starts_with("#(nop) COPY file:"), "{copy}");
    // a base without PATH (the imported busybox, scratch) gets Linux's default, first
    const PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
    let env = d.api("GET", "/v1.41/images/steps/json").json()["Config"]["Env"].clone();
    assert_eq!(env, json_words(&[PATH, "Z=1"]));
    fs::remove_dir_all(&ctx).ok();
    let ctx = context(&[("Dockerfile", "FROM scratch\nENV PATH=/bin:$PATH\nCOPY f /f\n"), ("f", "x")]);
    let o = build(&d, Cli::Docker, &ctx, &["-t", "from-scratch"]);
    assert!(o.success(), "{o}");
    let env = d.api("GET", "/v1.41/images/from-scratch/json").json()["Config"]["Env"].clone();
    assert_eq!(env, json_words(&["PATH=/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]));
    fs::remove_dir_all(&ctx).ok();
}

fn json_words(w: &[&str]) -> serde_json::Value {
    serde_json::Value::from(w.iter().map(|s| s.to_string()).collect::<Vec<_>>())
}

#[test]
fn volume_paths_in_build_steps_are_volumes() {
    // dockerd's classic builder: a step's container has the image's VOLUMEs, so a
    // RUN's writes there after the VOLUME are discarded, and a VOLUME over a file
    // fails the next step that runs.
    let d = Daemon::start();
    let ctx = context(&[(
        "Dockerfile",
        "FROM busybox\nRUN mkdir /data && echo before > /data/a\nVOLUME /data\nRUN echo after > /data/b\n",
    )]);
    let o = build(&d, Cli::Docker, &ctx, &["-t", "vols"]);
    assert!(o.success(), "{o}");
    assert_eq!(run(&d, "vols", "ls /data"), "a\n");
    let left = d.api("GET", "/v1.41/volumes").json();
    assert_eq!(left["Volumes"].as_array().map_or(0, Vec::len), 0, "the steps' volumes went with them: {left}");
    let bad = context(&[("Dockerfile", "FROM busybox\nVOLUME /etc/passwd\nRUN true\n")]);
    let o = build(&d, Cli::Docker, &bad, &[]);
    assert_ne!(o.code, 0, "{o}");
    assert!(o.stderr.contains("cannot mount volume over existing file, file exists"), "{o}");
    fs::remove_dir_all(&ctx).ok();
    fs::remove_dir_all(&bad).ok();
}

#[test]
fn cache_follows_what_each_step_depends_on() {
    let d = Daemon::start();
    let ctx = context(&[
        (
            "Dockerfile",
            "FROM busybox AS one\nCOPY a.txt /a\nRUN cat /a > /one\n\
             FROM busybox AS two\nCOPY b.txt /b\nRUN cat /b > /two\n\
             FROM busybox\nCOPY --from=one /one /one\nCOPY --from=two /two /two\nCOPY *.conf /conf/\nRUN cat /one /two /conf/*\n",
        ),
        ("a.txt", "a1\n"),
        ("b.txt", "b1\n"),
        ("x.conf", "x1\n"),
        ("y.conf", "y1\n"),
    ]);
    let run_lines = |o: &Output| o.stdout.matches("Running in").count();
    let o = build(&d, Cli::Docker, &ctx, &["-t", "ms"]);
    assert!(o.success(), "{o}");
    assert_eq!(run_lines(&o), 3, "{o}");
    // nothing changed: every step from the cache
    let o = build(&d, Cli::Docker, &ctx, &["-t", "ms"]);
    assert_eq!(run_lines(&o), 0, "{o}");
    // only stage two's input changed: stage one stays cached, two and the final RUN rerun
    fs::write(ctx.join("b.txt"), "b2\n").unwrap();
    let o = build(&d, Cli::Docker, &ctx, &["-t", "ms"]);
    assert_eq!(run_lines(&o), 2, "{o}");
    assert!(o.stdout.contains("Step 3/11 : RUN cat /a > /one\n ---> Using cache"), "{o}");
    // a file the wildcard COPY matches changed: that COPY and what follows rerun
    fs::write(ctx.join("y.conf"), "y2\n").unwrap();
    let o = build(&d, Cli::Docker, &ctx, &["-t", "ms"]);
    assert_eq!(run_lines(&o), 1, "{o}");
    assert_eq!(run(&d, "ms", "cat /one /two /conf/x.conf /conf/y.conf"), "a1\nb2\nx1\ny2\n");
    // a new file the wildcard now matches also counts
    fs::write(ctx.join("z.conf"), "z1\n").unwrap();
    let o = build(&d, Cli::Docker, &ctx, &["-t", "ms"]);
    assert_eq!(run_lines(&o), 1, "{o}");
    fs::remove_dir_all(&ctx).ok();
}

/// A RUN step's stderr reaches the client as dockerd's classic builder sends it: each
/// piece between "bright red" and "reset" (docker-py's tests look for exactly that);
/// stdout as it is.
#[test]
fn a_run_steps_stderr_is_streamed_in_red() {
    let d = Daemon::start();
    d.import_busybox();
    let tar = RawTar::new().file("Dockerfile", b"FROM busybox\nRUN sh -c \"echo to-err >&2; sleep 0.1; echo to-out\"\n").build();
    let (status, body) = raw_build(&d, "nocache=1", &tar);
    assert_eq!(status, 200, "{body}");
    let streams: Vec<String> = body
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["stream"].as_str().map(str::to_owned))
        .collect();
    assert!(streams.contains(&"\u{1b}[91mto-err\n\u{1b}[0m".to_owned()), "{streams:?}");
    assert!(streams.contains(&"to-out\n".to_owned()), "{streams:?}");
}
