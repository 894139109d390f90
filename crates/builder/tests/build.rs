//! berth-builder's driver against an in-memory backend: cache behaviour, stage pruning, build
//! args and failures, without an engine.

use std::collections::HashMap;
use std::path::Path;

use berth_errdefs::{Error, Result};
use berth_image::ImageConfigFile;
use sha2::{Digest, Sha256};

use berth_builder::context::{Context, Entry};
use berth_builder::{build, Backend, BuildOptions, Failure, Msg, RunEvent, RunOutcome, RunSpec};

#[derive(Default)]
struct Fake {
    images: HashMap<String, ImageConfigFile>,
    tags: HashMap<String, String>,
    layers: HashMap<String, Vec<u8>>,
    cache: HashMap<String, Vec<String>>,
    runs: Vec<RunSpec>,
    removed: Vec<String>,
    created: Vec<Vec<String>>,
    cancel: bool,
    /// How many times a root filesystem was mounted.
    mounts: usize,
}

fn sha(b: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(b)))
}

impl Fake {
    fn with_busybox() -> Fake {
        let mut f = Fake::default();
        let cfg = ImageConfigFile {
            architecture: "amd64".into(),
            os: "linux".into(),
            config: berth_api::models::ImageConfig {
                env: Some(vec!["PATH=/bin".into()]),
                ..Default::default()
            },
            ..Default::default()
        };
        let id = f.create_image(&cfg).unwrap();
        f.tags.insert("busybox".into(), id);
        f
    }
}

impl Backend for Fake {
    fn image(&mut self, name: &str) -> Result<(String, ImageConfigFile)> {
        let id = self
            .tags
            .get(name)
            .cloned()
            .unwrap_or_else(|| name.to_owned());
        self.images
            .get(&id)
            .map(|c| (id.clone(), c.clone()))
            .ok_or_else(|| Error::not_found(format!("No such image: {name}")))
    }
    fn create_image(&mut self, cfg: &ImageConfigFile) -> Result<String> {
        let id = sha(&serde_json::to_vec(cfg).unwrap());
        self.images.insert(id.clone(), cfg.clone());
        Ok(id)
    }
    fn add_layer(&mut self, tar: &[u8]) -> Result<String> {
        let id = sha(tar);
        self.layers.insert(id.clone(), tar.to_vec());
        Ok(id)
    }
    fn with_rootfs(
        &mut self,
        image_id: &str,
        f: &mut dyn FnMut(&Path) -> Result<()>,
    ) -> Result<()> {
        self.mounts += 1;
        let dir = tempfile::tempdir()?;
        let cfg = self.images[image_id].clone();
        for l in &cfg.rootfs.diff_ids {
            if let Some(t) = self.layers.get(&l.to_string()) {
                tar::Archive::new(&t[..]).unpack(dir.path())?;
            }
        }
        f(dir.path())
    }
    fn run(
        &mut self,
        _image: &str,
        spec: &RunSpec,
        ev: &mut dyn FnMut(RunEvent<'_>),
    ) -> Result<RunOutcome> {
        self.runs.push(spec.clone());
        let cid = format!("{:064}", self.runs.len());
        ev(RunEvent::Started(&cid));
        ev(RunEvent::Output(
            format!("ran {}\n", spec.cmd.last().unwrap()).as_bytes(),
        ));
        let code = spec
            .cmd
            .last()
            .unwrap()
            .strip_prefix("exit ")
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let empty = tar::Builder::new(Vec::new()).into_inner().unwrap();
        let diff_id = if code == 0 {
            Some(self.add_layer(&empty)?)
        } else {
            None
        };
        Ok(RunOutcome {
            container_id: cid,
            exit_code: code,
            diff_id,
        })
    }
    fn create_container(&mut self, _image: &str, cmd: &[String]) -> Result<String> {
        self.created.push(cmd.to_vec());
        Ok(format!("c{:063}", self.created.len()))
    }
    fn remove_container(&mut self, id: &str) -> Result<()> {
        self.removed.push(id.to_owned());
        Ok(())
    }
    fn tag(&mut self, image_id: &str, reference: &str) -> Result<String> {
        let r = berth_image::Reference::parse_tagged(reference)?;
        self.tags.insert(r.familiar(), image_id.to_owned());
        Ok(r.familiar())
    }
    fn cancelled(&mut self) -> bool {
        self.cancel
    }
    fn cache_get(&mut self, key: &str) -> Vec<String> {
        self.cache.get(key).cloned().unwrap_or_default()
    }
    fn cache_put(&mut self, key: &str, image_id: &str) -> Result<()> {
        self.cache
            .entry(key.to_owned())
            .or_default()
            .insert(0, image_id.to_owned());
        Ok(())
    }
}

fn ctx(files: &[(&str, &str)]) -> Context {
    let mut c = Context::default();
    for (p, d) in files {
        c.insert(p.to_string(), Entry::file(0o644, *d));
    }
    c
}

fn opts() -> BuildOptions {
    BuildOptions {
        dockerfile: "Dockerfile".into(),
        tags: vec!["out".into()],
        rm: true,
        ..Default::default()
    }
}

fn run_build(
    be: &mut Fake,
    c: Context,
    o: &BuildOptions,
) -> (std::result::Result<String, Failure>, String) {
    let mut text = String::new();
    let r = build(be, c, o, &mut |m| {
        if let Msg::Stream(s) = m {
            text.push_str(&s)
        }
    });
    (r, text)
}

const DF: &str = "FROM busybox\nARG MODE=dev\nRUN build $MODE\nCOPY a.txt /a\nCOPY b.txt /b\nRUN test\nCMD [\"x\"]\n";

#[test]
fn cache_hits_and_misses() {
    let mut be = Fake::with_busybox();
    let files = [("Dockerfile", DF), ("a.txt", "A"), ("b.txt", "B")];
    let (r1, t1) = run_build(&mut be, ctx(&files), &opts());
    let id1 = r1.unwrap();
    assert_eq!(t1.matches("Using cache").count(), 0, "{t1}");
    assert_eq!(be.runs.len(), 2);
    assert_eq!(be.runs[0].env, ["MODE=dev"]);
    assert!(t1.contains("Successfully tagged out:latest"), "{t1}");

    // unchanged: all 6 steps after FROM cached, same image
    let (r2, t2) = run_build(&mut be, ctx(&files), &opts());
    assert_eq!(r2.unwrap(), id1);
    assert_eq!(t2.matches("Using cache").count(), 6, "{t2}");
    assert_eq!(be.runs.len(), 2);

    // b.txt changed: COPY b.txt, RUN test, CMD rerun; the rest is cached
    let (_, t3) = run_build(
        &mut be,
        ctx(&[("Dockerfile", DF), ("a.txt", "A"), ("b.txt", "B2")]),
        &opts(),
    );
    assert_eq!(t3.matches("Using cache").count(), 3, "{t3}");
    assert_eq!(be.runs.len(), 3);

    // a build arg RUN sees changes the RUN and everything after it
    let mut o = opts();
    o.build_args.insert("MODE".into(), Some("prod".into()));
    o.build_args.insert("UNUSED".into(), Some("1".into()));
    let (_, t4) = run_build(&mut be, ctx(&files), &o);
    assert_eq!(
        t4.matches("Using cache").count(),
        1,
        "only ARG is cached: {t4}"
    );
    assert!(
        t4.contains("[Warning] One or more build-args [UNUSED] were not consumed"),
        "{t4}"
    );
    assert_eq!(be.runs[3].env, ["MODE=prod"]);
    let hist = &be.images[&be.tags["out:latest"]].history;
    assert!(
        hist.iter()
            .any(|h| h.created_by.as_deref() == Some("|1 MODE=prod /bin/sh -c build $MODE")),
        "{hist:?}"
    );

    // --no-cache
    o.no_cache = true;
    let (_, t5) = run_build(&mut be, ctx(&files), &o);
    assert_eq!(t5.matches("Using cache").count(), 0);
    // --cache-from an unrelated image: the local cache is not used
    let mut o = opts();
    o.cache_from = vec!["busybox".into()];
    let (_, t6) = run_build(&mut be, ctx(&files), &o);
    assert_eq!(t6.matches("Using cache").count(), 0, "{t6}");
    o.cache_from = vec![id1.clone()];
    let (r7, t7) = run_build(&mut be, ctx(&files), &o);
    assert_eq!(r7.unwrap(), id1);
    assert_eq!(t7.matches("Using cache").count(), 6, "{t7}");
}

#[test]
fn stages_are_pruned_and_failures_reported() {
    let mut be = Fake::with_busybox();
    let df = "FROM busybox AS a\nRUN a\nFROM busybox AS bad\nRUN exit 5\nFROM a\nRUN c\n";
    let (r, t) = run_build(&mut be, ctx(&[("Dockerfile", df)]), &opts());
    r.unwrap();
    assert!(t.contains("Step 4/4 : RUN c"), "{t}");
    assert_eq!(
        be.runs.iter().map(|r| r.cmd[2].clone()).collect::<Vec<_>>(),
        ["a", "c"]
    );

    let mut o = opts();
    o.target = Some("bad".into());
    let (r, t) = run_build(&mut be, ctx(&[("Dockerfile", df)]), &o);
    let f = r.unwrap_err();
    assert_eq!(f.code, Some(5));
    assert_eq!(
        f.message,
        "The command '/bin/sh -c exit 5' returned a non-zero code: 5"
    );
    assert!(t.contains(" ---> Running in "), "{t}");
    assert!(!be.tags.contains_key("out:latest") || be.tags["out:latest"] != "bad");

    let (r, _) = run_build(
        &mut be,
        ctx(&[("Dockerfile", "FROM busybox\nRUN x\nFORM y\n")]),
        &opts(),
    );
    let f = r.unwrap_err();
    assert!(f.message.contains("line 3"), "{}", f.message);
    assert_eq!(f.code, None);

    let (r, _) = run_build(&mut be, ctx(&[("Dockerfile", "FROM nope\n")]), &opts());
    assert!(r.unwrap_err().message.contains("No such image: nope"));
    let (r, _) = run_build(&mut be, ctx(&[]), &opts());
    assert_eq!(
        r.unwrap_err().message,
        "Cannot locate specified Dockerfile: Dockerfile"
    );
}

#[test]
fn labels_and_copy_layers() {
    let mut be = Fake::with_busybox();
    let mut o = opts();
    o.labels.insert("l1".into(), "v1".into());
    let df = "FROM busybox\nWORKDIR /app\nCOPY --chmod=0700 a.txt sub/\n";
    let (r, t) = run_build(&mut be, ctx(&[("Dockerfile", df), ("a.txt", "A")]), &o);
    let id = r.unwrap();
    assert!(t.contains("Step 4/4 : LABEL l1=v1"), "{t}");
    let cfg = be.images[&id].clone();
    assert_eq!(cfg.config.labels.unwrap()["l1"], "v1");
    assert_eq!(cfg.config.working_dir.as_deref(), Some("/app"));
    // WORKDIR made /app (a layer), COPY added app/sub/a.txt (and names the existing
    // app/ as it is in the image, as a diff of the changed directory does)
    assert_eq!(cfg.rootfs.diff_ids.len(), 2);
    let copy_layer = &be.layers[&cfg.rootfs.diff_ids[1].to_string()];
    let mut a = tar::Archive::new(&copy_layer[..]);
    let names: Vec<(String, u32)> = a
        .entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.path().unwrap().display().to_string(),
                e.header().mode().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        names,
        [
            ("app/".to_owned(), 0o755),
            ("app/sub/".to_owned(), 0o755),
            ("app/sub/a.txt".to_owned(), 0o700)
        ]
    );
    let hist: Vec<_> = cfg
        .history
        .iter()
        .map(|h| (h.created_by.clone().unwrap(), h.empty_layer))
        .collect();
    assert_eq!(
        hist[0],
        ("/bin/sh -c #(nop) WORKDIR /app".to_owned(), false)
    );
    assert!(
        hist[1].0.starts_with("/bin/sh -c #(nop) COPY file:")
            && hist[1].0.ends_with(" in /app/sub/ "),
        "{hist:?}"
    );
    assert_eq!(hist[2], ("/bin/sh -c #(nop)  LABEL l1=v1".to_owned(), true));
    // metadata steps get a created-and-removed container, as in Docker
    assert_eq!(
        be.created.last().unwrap(),
        &["/bin/sh", "-c", "#(nop)  LABEL l1=v1"]
    );
    assert_eq!(
        t.matches("Removing intermediate container").count(),
        2,
        "{t}"
    );
}

fn layer_files(be: &Fake, image: &str) -> HashMap<String, (u32, Vec<u8>)> {
    let cfg = &be.images[image];
    let last = cfg.rootfs.diff_ids.last().unwrap().to_string();
    let mut out = HashMap::new();
    let mut a = tar::Archive::new(&be.layers[&last][..]);
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        let p = e.path().unwrap().to_string_lossy().into_owned();
        let mode = e.header().mode().unwrap();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut e, &mut data).unwrap();
        out.insert(p, (mode, data));
    }
    out
}

#[test]
fn run_heredocs_become_shell_commands_or_scripts() {
    let mut be = Fake::with_busybox();
    let df = "FROM busybox\nRUN <<EOF\necho one\necho two\nEOF\nRUN <<-EOT\n\techo tabbed\n\tEOT\nRUN <<EOF\n#!/bin/sh\necho script\nEOF\nRUN <<A cat > /f1 && cat <<B > /f2\na\nA\nb\nB\n";
    let (r, _) = run_build(&mut be, ctx(&[("Dockerfile", df)]), &opts());
    r.unwrap();
    let cmds: Vec<Vec<String>> = be.runs.iter().map(|r| r.cmd.clone()).collect();
    assert_eq!(cmds[0], ["/bin/sh", "-c", "echo one\necho two\n"]);
    assert_eq!(cmds[1], ["/bin/sh", "-c", "echo tabbed\n"]);
    assert_eq!(cmds[2], ["/bin/sh", "-c", "/dev/pipes/EOF"]);
    let m = &be.runs[2].mounts[0];
    assert_eq!((m.target.as_str(), m.readonly), ("/dev/pipes", true));
    assert_eq!(cmds[3][2], "<<A cat > /f1 && cat <<B > /f2\na\nA\nb\nB");
    // a different script is a different cache key
    let df2 = df.replace("echo script", "echo other");
    let (_, t) = run_build(&mut be, ctx(&[("Dockerfile", &df2)]), &opts());
    assert_eq!(t.matches("Using cache").count(), 2, "{t}");
}

#[test]
fn run_mounts_reach_the_backend_and_key_the_cache() {
    let mut be = Fake::with_busybox();
    let df = "FROM busybox AS tools\nRUN make-tools\nFROM busybox\nWORKDIR /w\nRUN --mount=type=cache,target=/root/.cache,id=pip,sharing=locked --mount=type=bind,source=src,target=src --mount=type=bind,from=tools,source=/usr,target=/t --mount=type=tmpfs,target=/tmp,size=1m --mount=type=secret,id=tok,required --network=none build\n";
    let mut o = opts();
    o.secrets.insert(
        "tok".into(),
        berth_builder::SecretBytes(b"hunter2".to_vec()),
    );
    let files = |a: &str| ctx(&[("Dockerfile", df), ("src/main.c", a)]);
    let (r, t) = run_build(&mut be, files("int main;"), &o);
    r.unwrap();
    assert!(!t.contains("hunter2"), "{t}");
    let spec = be.runs.last().unwrap().clone();
    assert_eq!(spec.cmd, ["/bin/sh", "-c", "build"]);
    assert_eq!(spec.network_mode, "none");
    let targets: Vec<&str> = spec.mounts.iter().map(|m| m.target.as_str()).collect();
    assert_eq!(
        targets,
        ["/root/.cache", "/w/src", "/t", "/tmp", "/run/secrets/tok"]
    );
    use berth_builder::{CacheSharing, RunMountKind};
    assert!(
        matches!(&spec.mounts[0].kind, RunMountKind::Cache { id, sharing: CacheSharing::Locked, .. } if id == "pip")
    );
    match &spec.mounts[1].kind {
        RunMountKind::Files(f) => assert_eq!(f["main.c"].data, b"int main;"),
        k => panic!("{k:?}"),
    }
    assert!(matches!(&spec.mounts[2].kind, RunMountKind::Image { path, .. } if path == "/usr"));
    match &spec.mounts[4].kind {
        RunMountKind::Secret { data, mode, .. } => {
            assert_eq!((data.0.as_slice(), *mode), (&b"hunter2"[..], 0o400))
        }
        k => panic!("{k:?}"),
    }
    // the history and the image config never carry the secret
    let id = be.tags["out:latest"].clone();
    let cfg = serde_json::to_string(&be.images[&id]).unwrap();
    assert!(!cfg.contains("hunter2"), "{cfg}");
    // same inputs (another secret value too): cached; a bound file changed: rerun
    o.secrets
        .insert("tok".into(), berth_builder::SecretBytes(b"other".to_vec()));
    let runs = be.runs.len();
    let (_, t) = run_build(&mut be, files("int main;"), &o);
    assert_eq!(be.runs.len(), runs, "{t}");
    run_build(&mut be, files("int main2;"), &o).0.unwrap();
    assert_eq!(be.runs.len(), runs + 1);
    // a required secret that was not given
    o.secrets.clear();
    let (r, _) = run_build(&mut be, files("x"), &o);
    assert_eq!(r.unwrap_err().message, "secret tok: not found");
}

#[test]
fn copy_heredocs_parents_and_excludes() {
    let mut be = Fake::with_busybox();
    let df = "FROM busybox\nARG WHO=world\nCOPY <<EOF /greeting\nhello $WHO\nEOF\nCOPY <<a.txt <<'b.txt' /dir/\nA $WHO\na.txt\nB $WHO\nb.txt\nCOPY --parents src/./x/*.c /p/\nCOPY --exclude=*.log --exclude=sub/skip logs/ /logs/\n";
    let files = [
        ("Dockerfile", df),
        ("src/x/a.c", "a"),
        ("src/x/b.c", "b"),
        ("logs/keep.txt", "k"),
        ("logs/drop.log", "d"),
        ("logs/sub/skip", "s"),
        ("logs/sub/ok", "o"),
    ];
    let (r, _) = run_build(&mut be, ctx(&files), &opts());
    let id = r.unwrap();
    let cfg = be.images[&id].clone();
    let n = cfg.rootfs.diff_ids.len();
    let layer = |i: usize| {
        let mut out = HashMap::new();
        let t = &be.layers[&cfg.rootfs.diff_ids[i].to_string()];
        for e in tar::Archive::new(&t[..]).entries().unwrap() {
            let mut e = e.unwrap();
            let p = e.path().unwrap().to_string_lossy().into_owned();
            let mode = e.header().mode().unwrap();
            let mut data = String::new();
            std::io::Read::read_to_string(&mut e, &mut data).unwrap();
            out.insert(p, (mode, data));
        }
        out
    };
    let l = layer(n - 4);
    assert_eq!(l["greeting"], (0o644, "hello world\n".to_owned()));
    let l = layer(n - 3);
    assert_eq!(l["dir/a.txt"].1, "A world\n");
    assert_eq!(l["dir/b.txt"].1, "B $WHO\n");
    let l = layer(n - 2);
    assert!(
        l.contains_key("p/x/a.c") && l.contains_key("p/x/b.c"),
        "{l:?}"
    );
    let l = layer(n - 1);
    let mut names: Vec<&String> = l.keys().filter(|k| !k.ends_with('/')).collect();
    names.sort();
    assert_eq!(names, ["logs/keep.txt", "logs/sub/ok"]);
}

#[test]
fn add_url_downloads_and_checks_the_checksum() {
    use std::io::{Read, Write};
    let body = b"downloaded\n".to_vec();
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let b2 = body.clone();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let mut s = s.unwrap();
            let mut buf = [0u8; 2048];
            let _ = s.read(&mut buf);
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                b2.len()
            );
            let _ = s.write_all(head.as_bytes());
            let _ = s.write_all(&b2);
        }
    });
    let sum = sha(&body);
    let mut be = Fake::with_busybox();
    let df = format!("FROM busybox\nADD --checksum={sum} http://{addr}/files/tool.sh /opt/\nADD http://{addr}/files/tool.sh /renamed\n");
    let (r, _) = run_build(&mut be, ctx(&[("Dockerfile", &df)]), &opts());
    let id = r.unwrap();
    let files = layer_files(&be, &id);
    assert_eq!(files["renamed"], (0o600, body.clone()));
    let parent = be.images[&id].parent.clone().unwrap();
    assert_eq!(layer_files(&be, &parent)["opt/tool.sh"].1, body);
    let bad = format!("sha256:{}", "0".repeat(64));
    let df = format!("FROM busybox\nADD --checksum={bad} http://{addr}/x /x\n");
    let (r, _) = run_build(&mut be, ctx(&[("Dockerfile", &df)]), &opts());
    let m = r.unwrap_err().message;
    assert!(
        m.starts_with(&format!("digest mismatch {sum}: {bad}")),
        "{m}"
    );
    let (r, _) = run_build(
        &mut be,
        ctx(&[("Dockerfile", "FROM busybox\nCOPY http://127.0.0.1:1/x /x\n")]),
        &opts(),
    );
    assert_eq!(r.unwrap_err().message, "source can't be a URL for COPY");
    let (r, _) = run_build(
        &mut be,
        ctx(&[(
            "Dockerfile",
            "FROM busybox\nADD https://example.invalid/r.git /src\n",
        )]),
        &opts(),
    );
    assert!(r.unwrap_err().message.contains("git repositories"));
}

#[test]
fn a_gone_client_stops_the_build() {
    let mut be = Fake::with_busybox();
    be.cancel = true;
    let (r, _) = run_build(
        &mut be,
        ctx(&[("Dockerfile", "FROM busybox\nRUN true\n")]),
        &opts(),
    );
    assert!(r.unwrap_err().message.contains("cancelled"));
    assert!(be.runs.is_empty());
}

#[test]
fn copy_cache_hits_mount_nothing_and_changes_rerun_exactly_what_they_touch() {
    const DF: &str = "FROM busybox AS gen\nCOPY a.txt /out/\nCOPY gen.txt /g\nFROM busybox\nWORKDIR /app\nCOPY a.txt ./\nCOPY dir/ ./d/\nCOPY --from=gen /out/a.txt /data/\nCOPY --chown=0:0 --chmod=600 b.txt /b\nCMD [\"x\"]\n";
    let mut be = Fake::with_busybox();
    let base = |a: &str, y: &str, mode: u32| {
        let mut c = ctx(&[
            ("Dockerfile", DF),
            ("a.txt", a),
            ("b.txt", "B"),
            ("gen.txt", "G"),
            ("dir/x", "X"),
        ]);
        c.insert("dir/sub/y".into(), Entry::file(mode, y));
        c
    };
    let (r1, t1) = run_build(&mut be, base("A", "Y", 0o644), &opts());
    let id1 = r1.unwrap();
    assert_eq!(t1.matches("Using cache").count(), 0, "{t1}");
    assert!(be.mounts > 0);

    // unchanged: every step is a hit, and no root filesystem is mounted for it
    be.mounts = 0;
    let (r2, t2) = run_build(&mut be, base("A", "Y", 0o644), &opts());
    assert_eq!(r2.unwrap(), id1);
    assert_eq!(t2.matches("Using cache").count(), 8, "{t2}");
    assert_eq!(be.mounts, 0, "cache hits mount nothing");

    // a file deep in a copied directory changes: that COPY and what follows rerun
    let (r3, t3) = run_build(&mut be, base("A", "Y2", 0o644), &opts());
    assert_ne!(r3.unwrap(), id1);
    assert_eq!(
        t3.matches("Using cache").count(),
        4,
        "gen's 2, WORKDIR, COPY a.txt: {t3}"
    );
    // only its mode changes: the same
    let (_, t4) = run_build(&mut be, base("A", "Y", 0o600), &opts());
    assert_eq!(t4.matches("Using cache").count(), 4, "{t4}");
    // back to the first content: all cached again, the first image
    let (r5, t5) = run_build(&mut be, base("A", "Y", 0o644), &opts());
    assert_eq!(r5.unwrap(), id1);
    assert_eq!(t5.matches("Using cache").count(), 8, "{t5}");

    // a.txt changes: both gen steps, COPY a.txt and everything after it rerun
    let (_, t6) = run_build(&mut be, base("A2", "Y", 0o644), &opts());
    assert_eq!(t6.matches("Using cache").count(), 1, "WORKDIR only: {t6}");

    // the gen stage gives a new image whose copied file is unchanged: the COPY --from
    // is still a hit (matched by content once the new image is read) ...
    let mut c = base("A", "Y", 0o644);
    c.insert("gen.txt".into(), Entry::file(0o644, "G2"));
    let (r7, t7) = run_build(&mut be, c.clone(), &opts());
    assert_eq!(r7.unwrap(), id1, "{t7}");
    assert_eq!(t7.matches("Using cache").count(), 7, "{t7}");
    // ... and the next rebuild needs no mount for it
    be.mounts = 0;
    let (r8, t8) = run_build(&mut be, c, &opts());
    assert_eq!(r8.unwrap(), id1);
    assert_eq!(t8.matches("Using cache").count(), 8, "{t8}");
    assert_eq!(be.mounts, 0);

    // the COPY's own flags are part of its key
    let df2 = DF.replace("--chmod=600", "--chmod=640");
    let mut c = base("A", "Y", 0o644);
    c.insert("Dockerfile".into(), Entry::file(0o644, df2.as_str()));
    let (_, t9) = run_build(&mut be, c, &opts());
    assert_eq!(t9.matches("Using cache").count(), 6, "{t9}");
}

/// A [`Fake`] that can be forked, so independent stages run on threads. Its `run`
/// knows two extra commands: `meet` (returns 0 once two runs are inside it at the
/// same time, 1 if no other came within 10 s) and `until-cancelled` (returns 137
/// once the build is cancelled, 0 after 10 s).
#[derive(Clone)]
struct SharedFake {
    inner: std::sync::Arc<std::sync::Mutex<Fake>>,
    meet: std::sync::Arc<(std::sync::Mutex<usize>, std::sync::Condvar)>,
    cancelled: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl SharedFake {
    fn new() -> SharedFake {
        SharedFake {
            inner: std::sync::Arc::new(std::sync::Mutex::new(Fake::with_busybox())),
            meet: Default::default(),
            cancelled: Default::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Fake> {
        self.inner.lock().unwrap()
    }

    fn rendezvous(&self) -> bool {
        let (n, cv) = &*self.meet;
        let mut n = n.lock().unwrap();
        *n += 1;
        cv.notify_all();
        let (n, _) = cv
            .wait_timeout_while(n, std::time::Duration::from_secs(10), |n| *n < 2)
            .unwrap();
        *n >= 2
    }

    fn wait_cancelled(&self) -> bool {
        let t0 = std::time::Instant::now();
        while t0.elapsed() < std::time::Duration::from_secs(10) {
            if self.cancelled.load(std::sync::atomic::Ordering::SeqCst) {
                return true;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        false
    }
}

impl Backend for SharedFake {
    fn image(&mut self, name: &str) -> Result<(String, ImageConfigFile)> {
        self.lock().image(name)
    }
    fn create_image(&mut self, cfg: &ImageConfigFile) -> Result<String> {
        self.lock().create_image(cfg)
    }
    fn add_layer(&mut self, tar: &[u8]) -> Result<String> {
        self.lock().add_layer(tar)
    }
    fn with_rootfs(
        &mut self,
        image_id: &str,
        f: &mut dyn FnMut(&Path) -> Result<()>,
    ) -> Result<()> {
        self.lock().with_rootfs(image_id, f)
    }
    fn run(
        &mut self,
        image: &str,
        spec: &RunSpec,
        ev: &mut dyn FnMut(RunEvent<'_>),
    ) -> Result<RunOutcome> {
        let mut spec = spec.clone();
        let last = spec.cmd.last().cloned().unwrap_or_default();
        if last.starts_with("meet") && !self.rendezvous() {
            *spec.cmd.last_mut().unwrap() = "exit 1".into();
        }
        if last == "until-cancelled" && self.wait_cancelled() {
            *spec.cmd.last_mut().unwrap() = "exit 137".into();
        }
        self.lock().run(image, &spec, ev)
    }
    fn create_container(&mut self, image: &str, cmd: &[String]) -> Result<String> {
        self.lock().create_container(image, cmd)
    }
    fn remove_container(&mut self, id: &str) -> Result<()> {
        self.lock().remove_container(id)
    }
    fn tag(&mut self, image_id: &str, reference: &str) -> Result<String> {
        self.lock().tag(image_id, reference)
    }
    fn cache_get(&mut self, key: &str) -> Vec<String> {
        self.lock().cache_get(key)
    }
    fn cache_put(&mut self, key: &str, image_id: &str) -> Result<()> {
        self.lock().cache_put(key, image_id)
    }
    fn cancelled(&mut self) -> bool {
        self.cancelled.load(std::sync::atomic::Ordering::SeqCst)
    }
    fn fork(&mut self) -> Option<Box<dyn Backend + Send>> {
        Some(Box::new(self.clone()))
    }
    fn cancel(&mut self) {
        self.cancelled
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

fn run_shared(be: &mut SharedFake, df: &str) -> (std::result::Result<String, Failure>, Vec<Msg>) {
    let mut msgs = Vec::new();
    let r = build(be, ctx(&[("Dockerfile", df)]), &opts(), &mut |m| {
        msgs.push(m)
    });
    (r, msgs)
}

fn stream_text(msgs: &[Msg]) -> String {
    msgs.iter()
        .filter_map(|m| match m {
            Msg::Stream(s) => Some(s.as_str()),
            _ => None,
        })
        .collect()
}

#[test]
fn independent_stages_build_at_once_and_print_in_order() {
    // a and b only meet if they run at the same time; the last stage uses both.
    const DF: &str = "FROM busybox AS a\nRUN meet a\nRUN echo a2\nFROM busybox AS b\nRUN meet b\nENV B=1\nFROM a\nRUN --mount=type=bind,from=b,target=/b echo final\n";
    let mut be = SharedFake::new();
    let (r, msgs) = run_shared(&mut be, DF);
    let text = stream_text(&msgs);
    let id = r.unwrap_or_else(|f| panic!("{f:?}\n{text}"));
    assert_eq!(be.lock().tags["out:latest"], id);
    assert_eq!(be.lock().runs.len(), 4, "{text}");
    // Exactly the sequential output: steps 1..8 in order, each stage's lines together.
    let steps: Vec<&str> = text.lines().filter(|l| l.starts_with("Step ")).collect();
    assert_eq!(steps.len(), 8, "{text}");
    for (n, l) in steps.iter().enumerate() {
        assert!(l.starts_with(&format!("Step {}/8 : ", n + 1)), "{text}");
    }
    let pos = |s: &str| {
        text.find(s)
            .unwrap_or_else(|| panic!("{s} missing: {text}"))
    };
    assert!(
        pos("ran echo a2") < pos("Step 4/8 : FROM busybox AS b"),
        "{text}"
    );
    assert!(pos("Step 4/8") < pos("Step 5/8 : RUN meet b"));
    assert!(pos("Step 6/8 : ENV B=1") < pos("Step 7/8 : FROM a"));
    // One aux per stage, the target's last.
    let aux: Vec<&String> = msgs
        .iter()
        .filter_map(|m| match m {
            Msg::Aux(id) => Some(id),
            _ => None,
        })
        .collect();
    assert_eq!(aux.len(), 3);
    assert_eq!(aux[2], &id);
    // A rebuild is all cache hits.
    let (r2, msgs2) = run_shared(&mut be, DF);
    assert_eq!(r2.unwrap(), id);
    assert_eq!(stream_text(&msgs2).matches("Using cache").count(), 5);
}

#[test]
fn a_failing_stage_stops_the_others_and_is_the_error() {
    const DF: &str = "FROM busybox AS slow\nRUN until-cancelled\nRUN never\nFROM busybox AS bad\nRUN exit 3\nFROM slow\nCOPY --from=bad /x /x\n";
    let mut be = SharedFake::new();
    let (r, msgs) = run_shared(&mut be, DF);
    let f = r.unwrap_err();
    assert_eq!(f.code, Some(3), "{f:?}");
    assert!(f.message.contains("returned a non-zero code: 3"), "{f:?}");
    let fake = be.lock();
    let cmds: Vec<&str> = fake
        .runs
        .iter()
        .map(|r| r.cmd.last().unwrap().as_str())
        .collect();
    // The slow stage's RUN was stopped (it is recorded as "exit 137"; it may also
    // not have started at all) rather than left to run 10 s; nothing after it ran.
    assert!(
        !cmds.contains(&"never") && !cmds.contains(&"until-cancelled"),
        "{cmds:?}"
    );
    assert!(!fake.tags.contains_key("out:latest"));
    // The failing stage's output is shown, after the slow stage's when that one
    // started at all (its thread may find the build failed before it begins).
    let text = stream_text(&msgs);
    let p3 = text.find("ran exit 3").expect(&text);
    if let Some(p1) = text.find("Step 1/7") {
        assert!(p1 < p3, "{text}");
    }
}

#[test]
fn a_step_two_stages_share_is_computed_once() {
    const DF: &str = "FROM busybox AS a\nRUN same\nRUN a\nFROM busybox AS b\nRUN same\nRUN b\nFROM busybox\nRUN --mount=type=bind,from=a,target=/a --mount=type=bind,from=b,target=/b final\n";
    let mut be = SharedFake::new();
    let (r, msgs) = run_shared(&mut be, DF);
    let text = stream_text(&msgs);
    r.unwrap_or_else(|f| panic!("{f:?}\n{text}"));
    let cmds: Vec<String> = be
        .lock()
        .runs
        .iter()
        .map(|r| r.cmd.last().unwrap().clone())
        .collect();
    assert_eq!(cmds.iter().filter(|c| *c == "same").count(), 1, "{cmds:?}");
    assert_eq!(text.matches("Using cache").count(), 1, "{text}");
}

#[test]
fn platform_args_reach_from_and_declared_stage_args() {
    let mut be = Fake::with_busybox();
    let df = "FROM --platform=$BUILDPLATFORM busybox\nARG TARGETARCH\nARG TARGETOS\nRUN echo $TARGETOS/$TARGETARCH\n";
    let (r, t) = run_build(&mut be, ctx(&[("Dockerfile", df)]), &opts());
    r.unwrap_or_else(|f| panic!("{f:?}\n{t}"));
    let arch = berth_image::config::host_arch();
    let run = &be.runs[0];
    assert!(run.env.contains(&format!("TARGETARCH={arch}")), "{run:?}");
    assert!(run.env.contains(&"TARGETOS=linux".to_owned()), "{run:?}");
    // not declared in the stage: not set
    let df2 = "FROM busybox\nRUN echo $TARGETARCH\n";
    let (r, _) = run_build(&mut be, ctx(&[("Dockerfile", df2)]), &opts());
    r.unwrap();
    assert!(be.runs.last().unwrap().env.is_empty());
    let df3 = "FROM --platform=linux/mips64le busybox\nRUN true\n";
    let (r, _) = run_build(&mut be, ctx(&[("Dockerfile", df3)]), &opts());
    assert!(r.unwrap_err().message.contains("host platform"));
}

/// A long run of metadata steps: the first ones commit an image each (dockerd's
/// output), later ones are folded, one image per chunk; the result has every
/// variable and one history entry per instruction, is cached as a whole, and a
/// change deep in the run rebuilds from its chunk on.
#[test]
fn long_runs_of_metadata_steps_are_folded_and_cached() {
    let mut be = Fake::with_busybox();
    let df = |changed: usize| {
        let mut s = String::from("FROM busybox\n");
        for i in 0..200 {
            let v = if i == changed { "changed".to_owned() } else { format!("v{i}") };
            s.push_str(&format!("ENV K{i}={v}\n"));
        }
        s.push_str("RUN test\n");
        s
    };
    let before = be.images.len();
    let (r, t) = run_build(&mut be, ctx(&[("Dockerfile", &df(usize::MAX))]), &opts());
    let id = r.unwrap();
    // 16 step images, 184 folded steps in chunks of 64 (3 images), the RUN's image.
    assert_eq!(be.images.len() - before, 16 + 3 + 1, "{t}");
    assert_eq!(be.created.len(), 16, "only unfolded steps get a container");
    let cfg = &be.images[&id];
    let env = cfg.config.env.as_ref().unwrap();
    assert!(env.contains(&"K0=v0".to_owned()) && env.contains(&"K199=v199".to_owned()));
    assert_eq!(cfg.history.len(), 200 + 1, "one history entry per step");
    assert_eq!(be.runs.len(), 1);

    // Unchanged: every step cached, the same image.
    let (r2, t2) = run_build(&mut be, ctx(&[("Dockerfile", &df(usize::MAX))]), &opts());
    assert_eq!(r2.unwrap(), id, "{t2}");
    assert_eq!(be.runs.len(), 1);

    // ENV K150 changed (the 151st step, in the third chunk): the 16 single steps and
    // the first two chunks are cached, the third chunk and the RUN are rebuilt.
    let (r3, t3) = run_build(&mut be, ctx(&[("Dockerfile", &df(150))]), &opts());
    let id3 = r3.unwrap();
    assert_ne!(id3, id);
    assert_eq!(be.runs.len(), 2, "{t3}");
    assert!(be.images[&id3].config.env.as_ref().unwrap().contains(&"K150=changed".to_owned()));
    assert_eq!(t3.matches("Using cache").count(), 16 + 2, "{t3}");
}
