//! `build` (classic builder, `POST /build`) with both CLIs: multi-stage builds,
//! .dockerignore, the resulting config, the cache, and failures.

use std::fs;
use std::path::{Path, PathBuf};

use berth_e2e::{unique_tmp_dir, Cli, Daemon, Output};

fn context(files: &[(&str, &str)]) -> PathBuf {
    berth_e2e::dir_with("berth-build-ctx", files)
}

fn build(d: &Daemon, cli: Cli, ctx: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["build"];
    args.extend_from_slice(extra);
    let c = ctx.to_str().unwrap().to_owned();
    args.push(&c);
    d.cli(cli, &args)
}

fn inspect_image(d: &Daemon, name: &str) -> serde_json::Value {
    let r = d.api("GET", &format!("/v1.41/images/{name}/json"));
    assert_eq!(r.status, 200, "inspect {name}: {}", r.text());
    r.json()
}

const MULTI: &str = r#"FROM busybox AS gen
WORKDIR /work
RUN printf 'static content\n' > page.html && chmod 604 page.html
RUN mkdir -p out && cp page.html out/ && echo generated

FROM busybox
ARG VERSION=1.0
LABEL org.example.version=$VERSION maintainer="berth"
ENV APP_HOME=/srv/app PATH=/srv/app/bin:/usr/bin:/bin
WORKDIR $APP_HOME
COPY --from=gen /work/out/page.html ./www/index.html
COPY --chown=app:app bin/ ./bin/
COPY --chmod=0600 conf.txt /etc/app.conf
RUN echo "version $VERSION" > /version.txt
EXPOSE 8080 9000/udp
HEALTHCHECK --interval=5s --timeout=2s --retries=4 CMD test -f /version.txt
USER app
ENTRYPOINT ["/srv/app/bin/run.sh"]
CMD ["--serve"]
"#;

#[test]
fn multi_stage_build_with_both_clis() {
    let d = Daemon::start();
    let ctx = context(&[
        ("Dockerfile", MULTI),
        (
            "bin/run.sh",
            "#!/bin/sh\necho \"run $*\"; cat /srv/app/www/index.html\n",
        ),
        ("conf.txt", "key=value\n"),
        ("ignored.log", "noise"),
        ("secret/key", "s3cret"),
        (".dockerignore", "*.log\nsecret\n"),
    ]);
    fs::set_permissions(
        ctx.join("bin/run.sh"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    for cli in Cli::ALL {
        let tag = format!("multi-{}:v1", cli.name());
        let o = build(&d, cli, &ctx, &["-t", &tag, "--build-arg", "VERSION=2.5"]);
        assert_eq!(o.code, 0, "{}: {o}", cli.name());
        assert!(o.stdout.contains("Step 1/"), "{o}");
        assert!(
            o.stdout.contains(&format!("Successfully tagged {tag}")),
            "{o}"
        );

        // what the image runs, and the files in it
        let o = d.cli(cli, &["run", "--rm", &tag]);
        assert_eq!(o.code, 0, "{o}");
        assert_eq!(o.stdout, "run --serve\nstatic content\n");
        let o = d.cli(
            cli,
            &[
                "run", "--rm", "--entrypoint", "sh", &tag, "-c",
                "id -u; stat -c '%a %u:%g %n' /srv/app/www/index.html /srv/app/bin/run.sh /etc/app.conf; cat /version.txt; pwd; ls /srv/app; ls / | grep -c secret",
            ],
        );
        assert_eq!(
            o.stdout,
            "1000\n604 0:0 /srv/app/www/index.html\n755 1000:1000 /srv/app/bin/run.sh\n600 0:0 /etc/app.conf\nversion 2.5\n/srv/app\nbin\nwww\n0\n",
            "{o}"
        );
    }
    // the config
    let ii = inspect_image(&d, "multi-docker:v1");
    let c = &ii["Config"];
    assert_eq!(c["Entrypoint"], serde_json::json!(["/srv/app/bin/run.sh"]));
    assert_eq!(c["Cmd"], serde_json::json!(["--serve"]));
    assert_eq!(c["User"], "app");
    assert_eq!(c["WorkingDir"], "/srv/app");
    assert_eq!(c["Labels"]["org.example.version"], "2.5");
    assert_eq!(c["Labels"]["maintainer"], "berth");
    assert!(
        c["ExposedPorts"].get("8080/tcp").is_some() && c["ExposedPorts"].get("9000/udp").is_some(),
        "{c}"
    );
    assert_eq!(
        c["Healthcheck"]["Test"],
        serde_json::json!(["CMD-SHELL", "test -f /version.txt"])
    );
    assert_eq!(c["Healthcheck"]["Interval"], 5_000_000_000i64);
    assert_eq!(c["Healthcheck"]["Retries"], 4);
    let env: Vec<&str> = c["Env"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    assert!(env.contains(&"APP_HOME=/srv/app"), "{env:?}");
    assert!(env.contains(&"PATH=/srv/app/bin:/usr/bin:/bin"), "{env:?}");
    assert!(
        !env.iter().any(|e| e.starts_with("VERSION=")),
        "build args are not persisted: {env:?}"
    );
    // ignored files never reach the image, and the history is Docker's
    let h = d.api("GET", "/v1.41/images/multi-docker:v1/history").json();
    let created: Vec<&str> = h
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["CreatedBy"].as_str())
        .collect();
    assert!(
        created.contains(&"|1 VERSION=2.5 /bin/sh -c echo \"version $VERSION\" > /version.txt"),
        "{created:?}"
    );
    assert!(
        created.contains(&"/bin/sh -c #(nop)  USER app"),
        "{created:?}"
    );
    assert!(
        created.contains(&"/bin/sh -c #(nop) WORKDIR /srv/app"),
        "{created:?}"
    );
    fs::remove_dir_all(&ctx).ok();
}

#[test]
fn target_builds_only_needed_stages() {
    let d = Daemon::start();
    let ctx = context(&[(
        "Dockerfile",
        "FROM busybox AS base\nRUN echo base > /base\nFROM busybox AS unused\nRUN exit 7\nFROM base AS final\nRUN cat /base\n",
    )]);
    for cli in Cli::ALL {
        let o = build(&d, cli, &ctx, &["-t", "tgt", "--target", "base"]);
        assert_eq!(o.code, 0, "{o}");
        assert!(o.stdout.contains("Step 2/2 : RUN echo base > /base"), "{o}");
        let o = build(&d, cli, &ctx, &["-t", "tgt2"]);
        assert_eq!(o.code, 0, "the failing unused stage is skipped: {o}");
        assert!(o.stdout.contains("Step 4/4 : RUN cat /base"), "{o}");
        assert!(!o.stdout.contains("exit 7"), "{o}");
        let o = build(&d, cli, &ctx, &["--target", "nope"]);
        assert_ne!(o.code, 0);
        assert!(
            format!("{}{}", o.stdout, o.stderr)
                .contains("failed to reach build target nope in Dockerfile"),
            "{o}"
        );
    }
    fs::remove_dir_all(&ctx).ok();
}

#[test]
fn cache_reuses_steps_until_a_copied_file_changes() {
    let d = Daemon::start();
    let ctx = context(&[
        (
            "Dockerfile",
            "FROM busybox\nRUN echo one > /one\nCOPY a.txt /a.txt\nCOPY b.txt /b.txt\nRUN cat /a.txt /b.txt > /ab\nCMD [\"cat\", \"/ab\"]\n",
        ),
        ("a.txt", "A1\n"),
        ("b.txt", "B1\n"),
        ("notes.md", "not copied\n"),
        (".dockerignore", "notes.md\n"),
    ]);
    for cli in Cli::ALL {
        let tag = format!("cached-{}", cli.name());
        fs::write(ctx.join("b.txt"), "B1\n").unwrap();
        let first = build(&d, cli, &ctx, &["-t", &tag]);
        assert_eq!(first.code, 0, "{first}");
        // nothing changed: every step after FROM comes from the cache, same image
        let again = build(&d, cli, &ctx, &["-t", &tag]);
        assert_eq!(again.code, 0, "{again}");
        assert_eq!(again.stdout.matches("Using cache").count(), 5, "{again}");
        let id1 = inspect_image(&d, &tag)["Id"].as_str().unwrap().to_owned();
        // an ignored file changing does not matter either
        fs::write(ctx.join("notes.md"), "changed\n").unwrap();
        let o = build(&d, cli, &ctx, &["-t", &tag]);
        assert_eq!(o.stdout.matches("Using cache").count(), 5, "{o}");
        assert_eq!(inspect_image(&d, &tag)["Id"].as_str().unwrap(), id1);
        // b.txt changed: steps 1-3 cached, COPY b.txt and the rest rerun
        let b2 = format!("B2-{}\n", cli.name());
        fs::write(ctx.join("b.txt"), &b2).unwrap();
        let o = build(&d, cli, &ctx, &["-t", &tag]);
        assert_eq!(o.code, 0, "{o}");
        assert_eq!(o.stdout.matches("Using cache").count(), 2, "{o}");
        let after_b = o.stdout.split("Step 4/6").nth(1).unwrap();
        assert!(!after_b.contains("Using cache"), "{o}");
        assert!(after_b.contains("Running in"), "{o}");
        let out = d.cli(cli, &["run", "--rm", &tag]);
        assert_eq!(out.stdout, format!("A1\n{b2}"), "{out}");
        // --no-cache reruns everything
        let o = build(&d, cli, &ctx, &["--no-cache", "-t", &tag]);
        assert_eq!(o.code, 0, "{o}");
        assert_eq!(o.stdout.matches("Using cache").count(), 0, "{o}");
    }
    // intermediate containers (RUN and metadata steps) are all removed
    assert!(
        d.container_ids().is_empty(),
        "left behind: {:?}",
        d.container_ids()
    );
    fs::remove_dir_all(&ctx).ok();
}

#[test]
fn failing_run_propagates_its_exit_code() {
    let d = Daemon::start();
    let ctx = context(&[(
        "Dockerfile",
        "FROM busybox\nRUN echo before-failure\nRUN echo oops; exit 3\nRUN echo never\n",
    )]);
    for cli in Cli::ALL {
        let o = build(&d, cli, &ctx, &["-t", "broken"]);
        assert_eq!(o.code, 3, "{}: {o}", cli.name());
        assert!(o.stdout.contains("oops"), "{o}");
        let all = format!("{}{}", o.stdout, o.stderr);
        assert!(
            all.contains("The command '/bin/sh -c echo oops; exit 3' returned a non-zero code: 3"),
            "{o}"
        );
        assert!(!o.stdout.contains("never"), "{o}");
    }
    assert_eq!(d.api("GET", "/v1.41/images/broken:latest/json").status, 404);
    // a syntax error names its line
    let ctx2 = context(&[("Dockerfile", "FROM busybox\nRUN true\nFORM x\n")]);
    let o = build(&d, Cli::Docker, &ctx2, &[]);
    assert_ne!(o.code, 0);
    assert!(
        format!("{}{}", o.stdout, o.stderr).contains("line 3"),
        "{o}"
    );
    fs::remove_dir_all(&ctx).ok();
    fs::remove_dir_all(&ctx2).ok();
}

#[test]
fn quiet_build_prints_only_the_id_and_raw_api_stream() {
    let d = Daemon::start();
    let ctx = context(&[("Dockerfile", "FROM busybox\nENV A=1\n")]);
    for cli in Cli::ALL {
        let o = build(&d, cli, &ctx, &["-q", "-t", "quiet"]);
        assert_eq!(o.code, 0, "{o}");
        let id = o.out();
        assert!(id.starts_with("sha256:") && id.len() == 71, "{o}");
        assert_eq!(inspect_image(&d, "quiet")["Id"], id);
    }
    // The raw stream of a quiet build is the id alone, as dockerd's (its aux lines kept
    // aside with the rest, for an error); a failing one shows what it kept.
    let tar = berth_e2e::RawTar::new().file("Dockerfile", b"FROM busybox\nRUN echo step\nFROM busybox\nENV B=2\n").build();
    let r = d.api_body("POST", "/v1.41/build?q=1&t=quiet2", berth_e2e::Body::Fixed("application/x-tar", &tar));
    let lines = r.json_stream();
    assert_eq!(lines.len(), 1, "{}", r.text());
    assert_eq!(lines[0]["stream"].as_str().unwrap(), format!("{}\n", inspect_image(&d, "quiet2")["Id"].as_str().unwrap()));
    let tar = berth_e2e::RawTar::new().file("Dockerfile", b"FROM busybox\nRUN echo kept; exit 3\n").build();
    let r = d.api_body("POST", "/v1.41/build?q=1", berth_e2e::Body::Fixed("application/x-tar", &tar));
    let text = r.text();
    assert!(text.contains("kept") && text.contains("returned a non-zero code: 3"), "{text}");
    // build/prune forgets the cache
    let r = d.api("POST", "/v1.41/build/prune");
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        r.json()["CachesDeleted"]
            .as_array()
            .is_some_and(|a| !a.is_empty()),
        "{}",
        r.text()
    );
    let o = build(&d, Cli::Docker, &ctx, &["-t", "quiet"]);
    assert_eq!(o.stdout.matches("Using cache").count(), 0, "{o}");
    fs::remove_dir_all(&ctx).ok();
}

#[test]
fn shell_app_with_dockerignore_add_and_onbuild() {
    let d = Daemon::start();
    // an archive for ADD to unpack
    let archive = berth_e2e::RawTar::new()
        .dir("vendor/")
        .file("vendor/lib.sh", b"greet() { echo \"hello $1\"; }\n")
        .build();
    let ctx = context(&[
        (
            "Dockerfile",
            "FROM busybox\nONBUILD RUN echo triggered > /onbuild.txt\nWORKDIR /app\nCOPY . .\nADD deps.tar /opt/\nCOPY --from=busybox /bin/busybox /usr/local/bin/bb\nRUN mkdir -p /usr/local/real && ln -s /usr/local/real /linked\nCOPY lib/util.sh /linked/\nENV NAME=world\nCMD sh /app/app.sh $NAME\n",
        ),
        ("app.sh", ". /opt/vendor/lib.sh\n. /app/lib/util.sh\nshout \"$(greet $1)\"\n"),
        ("lib/util.sh", "shout() { echo \"$*!\"; }\n"),
        ("build.log", "log"),
        ("tmp/scratch.txt", "x"),
        ("tmp/keep.txt", "kept"),
        (".git/HEAD", "ref"),
        (".dockerignore", "*.log\ntmp\n!tmp/keep.txt\n.git\n"),
    ]);
    fs::write(ctx.join("deps.tar"), &archive).unwrap();
    for cli in Cli::ALL {
        let tag = format!("shapp-{}", cli.name());
        let o = build(&d, cli, &ctx, &["-t", &tag]);
        assert_eq!(o.code, 0, "{o}");
        let o = d.cli(cli, &["run", "--rm", &tag]);
        assert_eq!(o.stdout, "hello world!\n", "{o}");
        let o = d.cli(
            cli,
            &["run", "--rm", &tag, "sh", "-c", "cd /app && find . -type f | sort; test -x /usr/local/bin/bb && echo bb; ls /onbuild.txt 2>&1 | grep -c 'No such'; readlink /linked; ls /usr/local/real"],
        );
        assert_eq!(
            o.stdout,
            "./.dockerignore\n./Dockerfile\n./app.sh\n./deps.tar\n./lib/util.sh\n./tmp/keep.txt\nbb\n1\n/usr/local/real\nutil.sh\n",
            "{o}"
        );
        // ONBUILD runs in a child build, not in the image that declares it
        let child = context(&[(
            "Dockerfile",
            &format!("FROM {tag}\nRUN cat /onbuild.txt && echo {}\n", cli.name()),
        )]);
        let o = build(&d, cli, &child, &["-t", &format!("child-{}", cli.name())]);
        assert_eq!(o.code, 0, "{o}");
        assert!(o.stdout.contains("# Executing 1 build trigger"), "{o}");
        assert!(o.stdout.contains("triggered"), "{o}");
        fs::remove_dir_all(&child).ok();
    }
    fs::remove_dir_all(&ctx).ok();
}

#[test]
fn raw_api_applies_dockerfile_specific_ignore_file() {
    let d = Daemon::start();
    let tar = berth_e2e::RawTar::new()
        .file(
            "build/app.Dockerfile",
            b"FROM busybox\nCOPY . /ctx/\nRUN ls /ctx | sort | tr '\\n' ' '\n",
        )
        .file("build/app.Dockerfile.dockerignore", b"secret.txt\n")
        .file(".dockerignore", b"public.txt\n")
        .file("secret.txt", b"s")
        .file("public.txt", b"p")
        .build();
    let r = d.api_body(
        "POST",
        "/v1.41/build?dockerfile=build%2Fapp.Dockerfile&t=raw&version=1",
        berth_e2e::Body::Chunked("application/x-tar", &tar),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let text = r.text();
    let msgs: Vec<serde_json::Value> = text
        .split("\r\n")
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(msgs.iter().all(|m| m.get("error").is_none()), "{text}");
    let out: String = msgs.iter().filter_map(|m| m["stream"].as_str()).collect();
    assert!(out.contains("build public.txt"), "{out}");
    assert!(!out.contains("secret.txt"), "{out}");
    assert!(
        msgs.iter().any(|m| m["aux"]["ID"]
            .as_str()
            .is_some_and(|s| s.starts_with("sha256:"))),
        "{text}"
    );
}

#[test]
fn cache_from_limits_the_cache_to_those_images() {
    let d = Daemon::start();
    let ctx = context(&[("Dockerfile", "FROM busybox\nRUN echo cf > /cf\nENV X=1\n")]);
    let o = build(&d, Cli::Berth, &ctx, &["-t", "cf-src"]);
    assert_eq!(o.code, 0, "{o}");
    for cli in Cli::ALL {
        // an unrelated image as the cache source: nothing is reused
        let o = build(
            &d,
            cli,
            &ctx,
            &["--cache-from", "busybox", "-t", "cf-other"],
        );
        assert_eq!(o.code, 0, "{o}");
        assert_eq!(o.stdout.matches("Using cache").count(), 0, "{o}");
        // the earlier result as the source: every step is reused, same image
        let o = build(&d, cli, &ctx, &["--cache-from", "cf-src", "-t", "cf-again"]);
        assert_eq!(o.stdout.matches("Using cache").count(), 2, "{o}");
        assert_eq!(
            inspect_image(&d, "cf-again")["Id"],
            inspect_image(&d, "cf-src")["Id"]
        );
    }
    fs::remove_dir_all(&ctx).ok();
}

#[test]
fn dockerfile_outside_the_context_and_from_stdin() {
    let d = Daemon::start();
    let ctx = context(&[("f.txt", "from context\n")]);
    let elsewhere = context(&[("Dockerfile", "FROM busybox\nRUN echo a \\\n    && echo b\nCOPY f.txt /f.txt\nCMD [\"cat\", \"/f.txt\"]\n")]);
    let df = elsewhere.join("Dockerfile");
    for cli in Cli::ALL {
        let tag = format!("outside-{}", cli.name());
        let o = build(&d, cli, &ctx, &["-f", df.to_str().unwrap(), "-t", &tag]);
        assert_eq!(o.code, 0, "{o}");
        assert!(o.stdout.contains("Step 2/4 : RUN echo a"), "{o}");
        assert_eq!(d.cli(cli, &["run", "--rm", &tag]).stdout, "from context\n");
        let o = d.cli_stdin(
            cli,
            &["build", "-t", "stdin-df", "-"],
            b"FROM busybox\nCMD [\"echo\", \"from stdin\"]\n",
        );
        assert_eq!(o.code, 0, "{o}");
        assert_eq!(
            d.cli(cli, &["run", "--rm", "stdin-df"]).stdout,
            "from stdin\n"
        );
    }
    fs::remove_dir_all(&ctx).ok();
    fs::remove_dir_all(&elsewhere).ok();
}

const BUILDKIT_DF: &str = r#"FROM busybox
ARG WHO=world
WORKDIR /app
RUN <<EOF
echo "heredoc ran" > /heredoc.txt
echo "second line" >> /heredoc.txt
EOF
RUN <<EOF
#!/bin/sh
echo "script $0" > /script.txt
EOF
RUN <<A cat > /multi1 && cat <<B > /multi2
first
A
second
B
COPY <<EOF /greeting
hello ${WHO}
EOF
COPY <<'EOF' /raw
hello ${WHO}
EOF
COPY --chmod=0755 <<one.sh <<two.txt /docs/
echo one
one.sh
two
two.txt
RUN --mount=type=cache,target=/cache,id=e2e-CLINAME sh -c 'echo run >> /cache/log; wc -l < /cache/log | tr -d " " > /count'
RUN --mount=type=tmpfs,target=/scratch,size=1m sh -c 'test -z "$(ls -A /scratch)" && echo x > /scratch/f && grep -c " /scratch tmpfs" /proc/mounts > /tmpfs.txt'
RUN --mount=type=bind,source=data,target=data sh -c 'cat data/in.txt > /bound.txt; (touch data/new 2>/dev/null && echo writable || echo readonly) > /bindro.txt'
RUN --mount=type=bind,source=data,target=/data,rw sh -c 'touch /data/new && echo ok > /bindrw.txt'
RUN --network=none sh -c 'tail -n +3 /proc/net/dev | grep -vc "lo:" > /ifaces.txt; true'
COPY --parents src/./x/*.c /p/
COPY --exclude=*.log logs/ /logs/
"#;

#[test]
fn heredocs_and_run_mounts_with_both_clis() {
    let d = Daemon::start();
    for cli in Cli::ALL {
        let df = BUILDKIT_DF.replace("CLINAME", cli.name());
        let ctx = context(&[
            ("Dockerfile", &df),
            ("data/in.txt", "bound content\n"),
            ("src/x/a.c", "a"),
            ("logs/keep.txt", "k"),
            ("logs/drop.log", "d"),
        ]);
        let tag = format!("bk-{}", cli.name());
        let o = build(&d, cli, &ctx, &["-t", &tag]);
        assert_eq!(o.code, 0, "{}: {o}", cli.name());
        let o = d.cli(
            cli,
            &[
                "run", "--rm", &tag, "sh", "-c",
                "cat /heredoc.txt /script.txt /multi1 /multi2 /greeting /raw; stat -c '%a %n' /greeting /docs/one.sh /docs/two.txt; cat /count /tmpfs.txt /bound.txt /bindro.txt /bindrw.txt /ifaces.txt; ls /p/x; ls /logs; ls -d /cache /scratch /app/data /data /run/secrets 2>&1 | grep -c 'No such'",
            ],
        );
        assert_eq!(
            o.stdout,
            "heredoc ran\nsecond line\nscript /dev/pipes/EOF\nfirst\nsecond\nhello world\nhello ${WHO}\n644 /greeting\n755 /docs/one.sh\n755 /docs/two.txt\n1\n1\nbound content\nreadonly\nok\n0\na.c\nkeep.txt\n5\n",
            "{}: {o}",
            cli.name()
        );
        // the cache mount outlives the build; nothing else re-runs from cache
        let o = build(&d, cli, &ctx, &["-t", &tag]);
        assert_eq!(o.code, 0, "{o}");
        assert!(!o.stdout.contains("Running in"), "all cached: {o}");
        let o = build(&d, cli, &ctx, &["--no-cache", "-t", &tag]);
        assert_eq!(o.code, 0, "{o}");
        let o = d.cli(cli, &["run", "--rm", &tag, "cat", "/count"]);
        assert_eq!(o.stdout, "2\n", "{o}");
        // a bound file changing invalidates the RUN that mounts it
        fs::write(ctx.join("data/in.txt"), "changed\n").unwrap();
        let o = build(&d, cli, &ctx, &["-t", &tag]);
        assert_eq!(o.code, 0, "{o}");
        let o = d.cli(cli, &["run", "--rm", &tag, "cat", "/bound.txt"]);
        assert_eq!(o.stdout, "changed\n", "{o}");
        fs::remove_dir_all(&ctx).ok();
    }
    assert!(d.container_ids().is_empty(), "{:?}", d.container_ids());
}

#[test]
fn secrets_are_readable_in_run_but_never_stored() {
    let d = Daemon::start();
    // (the Dockerfile only holds the secret's md5, so the value never shows in it)
    let ctx = context(&[(
        "Dockerfile",
        "FROM busybox\nRUN --mount=type=secret,id=tok test \"$(md5sum < /run/secrets/tok | cut -c1-32)\" = e74a7345b906b2dd50c8e026a10bc02f && stat -c '%a' /run/secrets/tok > /secret-mode\nRUN --mount=type=secret,id=tok,env=TOKEN,required test \"$(printf %s \"$TOKEN\" | md5sum | cut -c1-32)\" = e74a7345b906b2dd50c8e026a10bc02f && echo env-ok > /env-ok\nRUN --mount=type=secret,id=absent echo optional > /optional\n",
    )]);
    let secret_file = unique_tmp_dir("berth-build-secret").join("tok");
    fs::write(&secret_file, "s3cr3t-value").unwrap();
    let spec = format!("id=tok,src={}", secret_file.display());
    let o = build(
        &d,
        Cli::Berth,
        &ctx,
        &["--secret", &spec, "-t", "with-secret"],
    );
    assert_eq!(o.code, 0, "{o}");
    assert!(!o.stdout.contains("s3cr3t-value"), "{o}");
    let o = d.berth(&[
        "run", "--rm", "with-secret", "sh", "-c",
        "cat /secret-mode /env-ok /optional; test -e /run/secrets && echo present || echo absent; grep -rl s3cr3t-value / --exclude-dir=proc --exclude-dir=sys --exclude-dir=dev 2>/dev/null | wc -l",
    ]);
    assert_eq!(o.stdout, "400\nenv-ok\noptional\nabsent\n0\n", "{o}");
    let h = d.api("GET", "/v1.41/images/with-secret/history").text();
    assert!(!h.contains("s3cr3t"), "{h}");
    let cfg = d.api("GET", "/v1.41/images/with-secret/json").text();
    assert!(!cfg.contains("s3cr3t"), "{cfg}");
    // the secret's value is not part of the cache key
    fs::write(&secret_file, "other-value").unwrap();
    let spec2 = format!("id=tok,src={}", secret_file.display());
    let o = build(&d, Cli::Berth, &ctx, &["--secret", &spec2]);
    assert_eq!(o.code, 0, "{o}");
    assert_eq!(o.stdout.matches("Using cache").count(), 3, "{o}");
    // a required secret that was not given fails the build; an optional one is
    // simply not mounted
    let o = build(&d, Cli::Berth, &ctx, &["--no-cache"]);
    assert_eq!(o.code, 1, "{o}");
    assert!(o.stdout.contains("can't open /run/secrets/tok"), "{o}");
    fs::write(
        ctx.join("Dockerfile"),
        "FROM busybox\nRUN --mount=type=secret,id=tok,required true\n",
    )
    .unwrap();
    let o = build(&d, Cli::Berth, &ctx, &[]);
    assert_ne!(o.code, 0, "{o}");
    assert!(
        format!("{}{}", o.stdout, o.stderr).contains("secret tok: not found"),
        "{o}"
    );
    fs::remove_dir_all(secret_file.parent().unwrap()).ok();
    fs::remove_dir_all(&ctx).ok();
}

/// A tiny HTTP server on 127.0.0.1 serving `body` for every request.
fn serve(body: &'static [u8]) -> String {
    use std::io::{Read, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nLast-Modified: Wed, 21 Oct 2015 07:28:00 GMT\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = s.write_all(head.as_bytes());
            let _ = s.write_all(body);
        }
    });
    format!("http://{addr}")
}

#[test]
fn add_url_verifies_its_checksum() {
    let d = Daemon::start();
    const BODY: &[u8] = b"#!/bin/sh\necho downloaded\n";
    let base = serve(BODY);
    // the body's sha256, computed by the image's own sha256sum
    let o = d.berth(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "printf '#!/bin/sh\\necho downloaded\\n' | sha256sum",
    ]);
    assert_eq!(o.code, 0, "{o}");
    let sum = o.stdout.split_whitespace().next().unwrap().to_owned();
    for cli in Cli::ALL {
        let ctx = context(&[(
            "Dockerfile",
            &format!("FROM busybox\nADD --checksum=sha256:{sum} {base}/dl/tool.sh /opt/\nADD {base}/dl/tool.sh /renamed\n"),
        )]);
        let tag = format!("addurl-{}", cli.name());
        let o = build(&d, cli, &ctx, &["-t", &tag]);
        assert_eq!(o.code, 0, "{o}");
        let o = d.cli(
            cli,
            &[
                "run",
                "--rm",
                &tag,
                "sh",
                "-c",
                "stat -c '%a %Y %n' /opt/tool.sh /renamed; cat /renamed",
            ],
        );
        assert_eq!(
            o.stdout,
            "600 1445412480 /opt/tool.sh\n600 1445412480 /renamed\n#!/bin/sh\necho downloaded\n",
            "{o}"
        );
        let bad = "0".repeat(64);
        fs::write(
            ctx.join("Dockerfile"),
            format!("FROM busybox\nADD --checksum=sha256:{bad} {base}/dl/tool.sh /x\n"),
        )
        .unwrap();
        let o = build(&d, cli, &ctx, &[]);
        assert_ne!(o.code, 0, "{o}");
        assert!(
            format!("{}{}", o.stdout, o.stderr)
                .contains(&format!("digest mismatch sha256:{sum}: sha256:{bad}")),
            "{o}"
        );
        fs::remove_dir_all(&ctx).ok();
    }
}

#[test]
fn bind_mounts_from_a_stage_discard_their_writes() {
    let d = Daemon::start();
    let ctx = context(&[(
        "Dockerfile",
        "FROM busybox AS tools\nRUN mkdir /out && echo from-stage > /out/f\nFROM busybox\nRUN --mount=type=bind,from=tools,source=/out,target=/mnt,rw sh -c 'cat /mnt/f > /got && echo scribble > /mnt/f'\nRUN --mount=type=bind,from=tools,source=/out,target=/mnt cat /mnt/f > /again\nRUN --mount=type=bind,from=busybox,source=/bin/busybox,target=/usr/local/bin/true /usr/local/bin/true && echo ok > /file-bind\n",
    )]);
    let o = build(&d, Cli::Berth, &ctx, &["-t", "bind-from"]);
    assert_eq!(o.code, 0, "{o}");
    let o = d.berth(&[
        "run",
        "--rm",
        "bind-from",
        "sh",
        "-c",
        "cat /got /again /file-bind; ls -d /mnt /usr/local/bin/true 2>&1 | grep -c 'No such'",
    ]);
    assert_eq!(o.stdout, "from-stage\nfrom-stage\nok\n2\n", "{o}");
    fs::remove_dir_all(&ctx).ok();
}

/// Two stages that only finish if they run at the same time: each leaves a marker
/// in a shared cache mount and waits (at most 20 s) for the other's.
const MEET: &str = r#"FROM busybox AS a
ARG N
RUN --mount=type=cache,id=meet,target=/m touch /m/a$N; i=0; until [ -e /m/b$N ]; do i=$((i+1)); [ $i -gt 40 ] && exit 7; sleep 0.5; done; echo a-met-b; echo a > /a.txt

FROM busybox AS b
ARG N
RUN --mount=type=cache,id=meet,target=/m touch /m/b$N; i=0; until [ -e /m/a$N ]; do i=$((i+1)); [ $i -gt 40 ] && exit 7; sleep 0.5; done; echo b-met-a; echo b > /b.txt

FROM busybox
COPY --from=a /a.txt /a.txt
COPY --from=b /b.txt /b.txt
CMD ["cat", "/a.txt", "/b.txt"]
"#;

#[test]
fn independent_stages_build_at_the_same_time() {
    let d = Daemon::start();
    let ctx = context(&[("Dockerfile", MEET)]);
    for cli in Cli::ALL {
        let tag = format!("meet-{}", cli.name());
        let nonce = format!("N={}", cli.name());
        let o = build(&d, cli, &ctx, &["-t", &tag, "--build-arg", &nonce]);
        assert_eq!(o.code, 0, "{}: {o}", cli.name());
        assert!(
            o.stdout.contains("a-met-b") && o.stdout.contains("b-met-a"),
            "{o}"
        );
        // The output is the sequential one: steps in order, each stage's lines together.
        let steps: Vec<&str> = o
            .stdout
            .lines()
            .filter(|l| l.starts_with("Step "))
            .collect();
        assert_eq!(steps.len(), 10, "{o}");
        for (n, l) in steps.iter().enumerate() {
            assert!(l.starts_with(&format!("Step {}/10 : ", n + 1)), "{o}");
        }
        let at = |s: &str| o.stdout.find(s).unwrap_or_else(|| panic!("{s}: {o}"));
        assert!(
            at("a-met-b") < at("Step 4/10") && at("b-met-a") > at("Step 6/10"),
            "{o}"
        );
        let run = d.cli(cli, &["run", "--rm", &tag]);
        assert_eq!(run.stdout, "a\nb\n", "{run}");
    }
    assert!(d.container_ids().is_empty(), "{:?}", d.container_ids());
    fs::remove_dir_all(&ctx).ok();
}

#[test]
fn a_failing_stage_stops_the_stages_running_beside_it() {
    let d = Daemon::start();
    let ctx = context(&[(
        "Dockerfile",
        "FROM busybox AS slow\nRUN sleep 60\nRUN echo never\nFROM busybox AS bad\nRUN echo failing; exit 3\nFROM busybox\nCOPY --from=slow /etc/passwd /p\nCOPY --from=bad /etc/group /g\n",
    )]);
    let t0 = std::time::Instant::now();
    let o = build(&d, Cli::Berth, &ctx, &["-t", "stopped"]);
    let took = t0.elapsed();
    assert_eq!(o.code, 3, "{o}");
    let all = format!("{}{}", o.stdout, o.stderr);
    assert!(all.contains("returned a non-zero code: 3"), "{o}");
    assert!(!all.contains("never"), "{o}");
    // The 60 s step was killed, not waited for.
    assert!(took < std::time::Duration::from_secs(30), "{took:?}: {o}");
    assert_eq!(
        d.api("GET", "/v1.41/images/stopped:latest/json").status,
        404
    );
    let running = d.api("GET", "/v1.41/containers/json").json();
    assert_eq!(running, serde_json::json!([]));
    fs::remove_dir_all(&ctx).ok();
}

#[test]
fn a_failed_step_container_can_be_committed_and_started_again() {
    // Step containers' root filesystems are mounted `volatile`; once cleanly
    // unmounted they must still mount again (commit, start), as with Docker.
    let d = Daemon::start();
    let ctx = context(&[(
        "Dockerfile",
        "FROM busybox\nRUN echo partial > /state.txt && exit 4\n",
    )]);
    let o = build(&d, Cli::Docker, &ctx, &["-t", "never"]);
    assert_eq!(o.code, 4, "{o}");
    let left = d.container_ids();
    assert_eq!(left.len(), 1, "the failed step's container stays: {o}");
    let cid = &left[0];
    let c = d.cli(Cli::Docker, &["commit", cid, "debug:failed"]);
    assert_eq!(c.code, 0, "{c}");
    let r = d.cli(Cli::Berth, &["run", "--rm", "debug:failed", "cat", "/state.txt"]);
    assert_eq!(r.stdout, "partial\n", "{r}");
    let s = d.cli(Cli::Docker, &["start", "-a", cid]);
    assert_eq!(s.code, 4, "{s}");
    fs::remove_dir_all(&ctx).ok();
}

/// A static file server on 127.0.0.1 for `root` (404 for what is missing).
fn serve_dir(root: PathBuf) -> String {
    use std::io::{Read, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let mut req = Vec::new();
            let mut buf = [0u8; 4096];
            while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => req.extend_from_slice(&buf[..n]),
                }
            }
            let line = String::from_utf8_lossy(&req).lines().next().unwrap_or("").to_owned();
            let path = line.split(' ').nth(1).unwrap_or("/").split('?').next().unwrap_or("/");
            let file = root.join(path.trim_start_matches('/'));
            let (status, body) = match fs::read(&file) {
                Ok(b) if !path.contains("..") => ("200 OK", b),
                _ => ("404 Not Found", b"not found\n".to_vec()),
            };
            let head = format!(
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = s.write_all(head.as_bytes());
            let _ = s.write_all(&body);
        }
    });
    format!("http://{addr}")
}

fn sh(cmd: &str) {
    let o = std::process::Command::new("sh").arg("-c").arg(cmd).output().unwrap();
    assert!(o.status.success(), "{cmd}: {}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn remote_contexts_tar_dockerfile_and_git_urls() {
    let d = Daemon::start();
    let site = unique_tmp_dir("berth-remote-ctx");
    // A gzip tar context, and a bare Dockerfile.
    let src = context(&[
        ("Dockerfile", "FROM busybox\nCOPY msg.txt /msg.txt\nCMD [\"cat\", \"/msg.txt\"]\n"),
        ("msg.txt", "from a tar url\n"),
    ]);
    sh(&format!("tar -czf {}/ctx.tar.gz -C {} .", site.display(), src.display()));
    fs::write(site.join("Dockerfile"), "FROM busybox\nRUN echo from a dockerfile url > /msg.txt\nCMD [\"cat\", \"/msg.txt\"]\n").unwrap();
    // A git repository (served by "dumb" HTTP), the context in a subdirectory of a branch.
    let work = site.join("work");
    fs::create_dir_all(work.join("app")).unwrap();
    fs::write(work.join("app/Dockerfile"), "FROM busybox\nCOPY msg.txt /msg.txt\nCMD [\"cat\", \"/msg.txt\"]\n").unwrap();
    fs::write(work.join("app/msg.txt"), "from git\n").unwrap();
    sh(&format!(
        "cd {w} && git init -q -b stable . && git add -A && git -c user.name=t -c user.email=t@t commit -qm one && git clone -q --bare . {s}/repo.git && git -C {s}/repo.git update-server-info",
        w = work.display(),
        s = site.display()
    ));
    let base = serve_dir(site.clone());
    let cases = [
        (format!("{base}/ctx.tar.gz"), "from a tar url\n"),
        (format!("{base}/Dockerfile"), "from a dockerfile url\n"),
        (format!("{base}/repo.git#stable:app"), "from git\n"),
    ];
    for cli in Cli::ALL {
        for (i, (url, want)) in cases.iter().enumerate() {
            let tag = format!("remote-{}-{i}", cli.name());
            let o = d.cli(cli, &["build", "-t", &tag, url]);
            assert_eq!(o.code, 0, "{} {url}: {o}", cli.name());
            let r = d.cli(cli, &["run", "--rm", &tag]);
            assert_eq!(r.stdout, *want, "{url}: {r}");
        }
        let o = d.cli(cli, &["build", &format!("{base}/missing.tar")]);
        assert_ne!(o.code, 0, "{o}");
        assert!(format!("{}{}", o.stdout, o.stderr).contains("404"), "{o}");
    }
    // The raw API: remote= is downloaded by the daemon; git is the client's job.
    let r = d.api("POST", &format!("/v1.41/build?t=raw-remote&remote={base}/ctx.tar.gz"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("Successfully tagged raw-remote:latest"), "{}", r.text());
    let r = d.api("POST", &format!("/v1.41/build?remote={base}/repo.git"));
    assert_eq!(r.status, 400, "{}", r.text());
    fs::remove_dir_all(&site).ok();
    fs::remove_dir_all(&src).ok();
}

#[test]
fn run_steps_get_the_build_resource_limits() {
    let d = Daemon::start();
    // cgroup v1 (memory hierarchy) or v2 (memory.max), and the size of /dev/shm.
    let ctx = context(&[(
        "Dockerfile",
        "FROM busybox\nRUN (cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max) | sed 's/^/mem=/'; df -k /dev/shm | tail -1 | awk '{print \"shm=\" $2}'; echo nofile=$(ulimit -n)\n",
    )]);
    for cli in Cli::ALL {
        let o = build(
            &d,
            cli,
            &ctx,
            &["--no-cache", "--memory", "64m", "--shm-size", "32m", "--ulimit", "nofile=512:512"],
        );
        assert_eq!(o.code, 0, "{}: {o}", cli.name());
        assert!(o.stdout.contains("mem=67108864"), "{o}");
        assert!(o.stdout.contains("shm=32768"), "{o}");
        assert!(o.stdout.contains("nofile=512"), "{o}");
    }
    let o = build(&d, Cli::Docker, &ctx, &["--memory", "1m"]);
    assert_ne!(o.code, 0);
    assert!(format!("{}{}", o.stdout, o.stderr).contains("Minimum memory limit allowed is 6MB"), "{o}");
    fs::remove_dir_all(&ctx).ok();
}
