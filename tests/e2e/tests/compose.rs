//! `berth compose`: the application up and down, scaled, partly recreated; attached
//! mode; bad input refused before anything is made; projects shared with Docker
//! Compose v2.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use berth_e2e::compose_app::{app_dir, http_get};
use berth_e2e::{run_command, wait_until, Cli, Daemon, Output};

fn berth_compose(d: &Daemon, dir: &Path, args: &[&str]) -> Output {
    let mut cmd = d.command(Cli::Berth);
    cmd.arg("compose").args(args).current_dir(dir).env("COMPOSE_PROJECT_NAME", "app");
    run_command(cmd, None, Duration::from_secs(180))
}

fn docker_compose(d: &Daemon, dir: &Path, args: &[&str]) -> Output {
    let mut cmd = d.command(Cli::Docker);
    cmd.arg("compose").args(args).current_dir(dir).env("COMPOSE_PROJECT_NAME", "app");
    run_command(cmd, None, Duration::from_secs(180))
}

fn left(d: &Daemon, project: &str) -> String {
    let f = format!("label=com.docker.compose.project={project}");
    let mut s = d.docker(&["ps", "-aq", "--filter", &f]).ok().to_owned();
    s += d.docker(&["network", "ls", "-q", "--filter", &f]).ok();
    s += d.docker(&["volume", "ls", "-q", "--filter", &f]).ok();
    s
}

#[test]
fn berth_compose_runs_scales_and_removes_the_application() {
    let d = Daemon::start();
    let dir = app_dir();
    let o = berth_compose(&d, &dir, &["up", "-d", "--wait"]);
    assert_eq!(o.code, 0, "{o}");
    assert!(o.stderr.contains("Container app-web-1  Healthy"), "{o}");
    let port: u16 = berth_compose(&d, &dir, &["port", "web", "8080"]).ok().trim().rsplit(':').next().unwrap().parse().unwrap();
    assert_eq!(http_get(port, "/").as_deref(), Some("hello-from-web"));
    assert!(wait_until(Duration::from_secs(10), || berth_compose(&d, &dir, &["exec", "-T", "worker", "cat", "/data/last"]).stdout.contains("hello-from-web")));
    let ps = berth_compose(&d, &dir, &["ps", "--format", "{{.Service}} {{.State}}"]);
    assert_eq!(ps.ok(), "web running\nworker running\n", "{ps}");
    let ps = berth_compose(&d, &dir, &["ps", "-a", "--format", "json"]);
    assert_eq!(ps.ok().lines().count(), 3, "{ps}");
    let ls = berth_compose(&d, &dir, &["ls", "--format", "json"]);
    assert!(ls.ok().contains("\"Name\":\"app\""), "{ls}");
    // The same project seen by Docker Compose v2.
    let v2 = docker_compose(&d, &dir, &["ps", "--format", "{{.Name}}"]);
    assert_eq!(v2.ok(), "app-web-1\napp-worker-1\n", "{v2}");
    // run: a one-off container with the service's config and its own command.
    let o = berth_compose(&d, &dir, &["run", "--rm", "-T", "worker", "sh", "-c", "echo $GREETING; wget -q -O- http://web:8080/"]);
    assert_eq!(o.ok(), "hello\nhello-from-web\n", "{o}");
    let o = berth_compose(&d, &dir, &["logs", "job"]);
    assert!(o.ok().contains("job-1 | job done"), "{o}");

    // Scale, then change one service's environment: only it is recreated.
    let o = berth_compose(&d, &dir, &["up", "-d", "--wait", "--scale", "web=3"]);
    assert_eq!(o.code, 0, "{o}");
    assert_eq!(d.docker(&["ps", "-q", "--filter", "label=com.docker.compose.service=web"]).ok().lines().count(), 3);
    let ids = |s: &str| d.inspect(s)["Id"].as_str().unwrap().to_owned();
    let (web, worker) = (ids("app-web-2"), ids("app-worker-1"));
    std::fs::write(dir.join(".env"), "GREETING=changed\n").unwrap();
    let o = berth_compose(&d, &dir, &["up", "-d", "--wait", "--scale", "web=3"]);
    assert_eq!(o.code, 0, "{o}");
    assert_eq!(ids("app-web-2"), web);
    assert_ne!(ids("app-worker-1"), worker);
    // Scale down: the highest numbers go.
    let o = berth_compose(&d, &dir, &["up", "-d", "--scale", "web=1"]);
    assert_eq!(o.code, 0, "{o}");
    assert!(d.api("GET", "/v1.41/containers/app-web-3/json").status == 404);

    let o = berth_compose(&d, &dir, &["down", "-v"]);
    assert_eq!(o.code, 0, "{o}");
    assert_eq!(left(&d, "app"), "");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn attached_up_prefixes_logs_and_returns_the_exit_code() {
    let d = Daemon::start();
    let dir = berth_e2e::dir_with(
        "berth-compose-attached",
        &[(
            "compose.yaml",
            "services:\n  one:\n    image: busybox\n    command: sh -c 'echo first; sleep 0.3; exit 3'\n  two:\n    image: busybox\n    command: sh -c 'echo second; sleep 5'\n",
        )],
    );
    let o = berth_compose(&d, &dir, &["up", "--exit-code-from", "one", "--no-color"]);
    assert_eq!(o.code, 3, "{o}");
    assert!(o.stdout.contains("one-1 | first") && o.stdout.contains("two-1 | second"), "{o}");
    assert!(o.stderr.contains("Attaching to one-1, two-1"), "{o}");
    // --exit-code-from stopped the rest.
    assert_eq!(d.inspect("app-two-1")["State"]["Running"], false);
    berth_compose(&d, &dir, &["down"]).ok();
    assert_eq!(left(&d, "app"), "");
    // A project made by Docker Compose v2 is taken down by berth compose.
    docker_compose(&d, &dir, &["up", "-d"]).ok();
    let o = berth_compose(&d, &dir, &["down", "-t", "0"]);
    assert_eq!(o.code, 0, "{o}");
    assert_eq!(left(&d, "app"), "");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_projects_are_refused_before_anything_is_made() {
    let d = Daemon::start();
    let cases: &[(&str, &str, i32)] = &[
        ("services:\n  web:\n    image: busybox\n    portz: [80]\n", "portz", 15),
        ("services:\n  a:\n    image: busybox\n    depends_on: [b]\n  b:\n    image: busybox\n    depends_on: [a]\n", "cycle", 15),
        ("services:\n  a:\n    image: busybox\n    depends_on: [nope]\n", "nope", 15),
        ("services:\n  a:\n    image: ${NEEDED:?you must set NEEDED}\n", "you must set NEEDED", 15),
        ("services:\n  a:\n    image: busybox\n    networks: [ext]\nnetworks:\n  ext:\n    external: true\n", "declared as external", 1),
    ];
    for (i, (yaml, want, code)) in cases.iter().enumerate() {
        let dir = berth_e2e::dir_with("berth-compose-bad", &[("compose.yaml", yaml)]);
        let args: &[&str] = if *code == 15 { &["config"] } else { &["up", "-d"] };
        let o = berth_compose(&d, &dir, args);
        assert_eq!(o.code, *code, "case {i}: {o}");
        assert!(o.stderr.contains(want), "case {i}: {o}");
        if *code == 15 {
            let o = berth_compose(&d, &dir, &["up", "-d"]);
            assert!(o.code != 0 && o.stderr.contains(want), "case {i}: {o}");
        }
        assert_eq!(left(&d, "app"), "", "case {i} left things behind");
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[test]
fn config_prints_the_normalized_model() {
    let dir = app_dir();
    let mut cmd = Command::new(berth_e2e::bin("berth"));
    cmd.args(["compose", "config", "--format", "json"]).current_dir(&dir).env("COMPOSE_PROJECT_NAME", "app");
    let o = run_command(cmd, None, Duration::from_secs(30));
    let v: serde_json::Value = serde_json::from_str(o.ok()).unwrap();
    assert_eq!(v["name"], "app");
    assert_eq!(v["services"]["worker"]["environment"]["GREETING"], "hello");
    assert_eq!(v["volumes"]["data"]["name"], "app_data");
    let mut cmd = Command::new(berth_e2e::bin("berth"));
    cmd.args(["compose", "config", "--services"]).current_dir(&dir);
    assert_eq!(run_command(cmd, None, Duration::from_secs(30)).ok(), "job\nweb\nworker\n");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Secrets and configs without a swarm, as Docker Compose provides them: files are
/// bind-mounted read-only, inline and environment ones are copied in before start
/// with their mode and owner; a missing variable stops `up` before anything is made.
#[test]
fn secrets_and_configs_reach_the_containers() {
    let d = Daemon::start();
    let dir = berth_e2e::dir_with(
        "berth-compose-secrets",
        &[
            ("pw.txt", "s3cr3t\n"),
            (
                "compose.yaml",
                "services:\n  app:\n    image: busybox\n    command: [\"sh\", \"-c\", \"cat /run/secrets/pw /run/secrets/token /etc/app.conf; stat -c '%a %u' /run/secrets/token /etc/app.conf; echo x >> /run/secrets/pw || echo ro\"]\n    secrets:\n      - pw\n      - source: tok\n        target: token\n        mode: 0400\n        uid: \"1000\"\n    configs:\n      - source: conf\n        target: /etc/app.conf\nsecrets:\n  pw:\n    file: ./pw.txt\n  tok:\n    environment: APP_TOKEN\nconfigs:\n  conf:\n    content: |\n      port=80\n",
            ),
        ],
    );
    let o = berth_compose(&d, &dir, &["up"]);
    assert_ne!(o.code, 0);
    assert!(o.stderr.contains("environment variable APP_TOKEN is not set"), "{o}");
    assert_eq!(left(&d, "app"), "", "up made something before failing");

    let mut cmd = d.command(Cli::Berth);
    cmd.args(["compose", "up", "--no-color"]).current_dir(&dir).env("COMPOSE_PROJECT_NAME", "app").env("APP_TOKEN", "t0k3n");
    let o = run_command(cmd, None, Duration::from_secs(120));
    assert_eq!(o.code, 0, "{o}");
    for want in ["app-1 | s3cr3t", "t0k3n", "port=80", "400 1000", "444 0", "app-1 | ro"] {
        assert!(o.stdout.contains(want), "{want:?} missing:\n{o}");
    }
    berth_compose(&d, &dir, &["down"]).ok();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn build_sections_inline_dockerfiles_secrets_hosts_and_refusals() {
    let d = Daemon::start();
    let dir = berth_e2e::dir_with(
        "berth-compose-build",
        &[
            (
                "compose.yaml",
                r#"
services:
  app:
    image: inline-app
    build:
      context: .
      dockerfile_inline: |
        FROM busybox
        ARG GREETING
        RUN --mount=type=secret,id=tok cat /run/secrets/tok > /tok.txt && echo >> /tok.txt
        RUN --mount=type=secret,id=pw cat /run/secrets/pw > /pw.txt
        RUN grep -w buildhost /etc/hosts | cut -f1 > /host.txt
        RUN echo "$$GREETING" > /greeting.txt
      args:
        GREETING: hello
      extra_hosts:
        - "buildhost=10.9.8.7"
      secrets: [tok, pw]
secrets:
  tok:
    environment: TOKEN
  pw:
    file: ./pw.txt
"#,
            ),
            ("pw.txt", "file-secret\n"),
            (".env", "TOKEN=env-secret\n"),
        ],
    );
    let o = berth_compose(&d, &dir, &["build"]);
    assert_eq!(o.code, 0, "{o}");
    let o = d.berth(&["run", "--rm", "inline-app", "sh", "-c", "cat /greeting.txt /tok.txt /pw.txt /host.txt"]);
    assert_eq!(o.stdout.split_whitespace().collect::<Vec<_>>(), ["hello", "env-secret", "file-secret", "10.9.8.7"], "{o}");
    // secrets are in no layer
    let o = d.berth(&["run", "--rm", "inline-app", "sh", "-c", "ls /run/secrets 2>&1 || true"]);
    assert!(!o.stdout.contains("tok"), "{o}");
    // keys the classic builder has no equivalent for are refused, naming the key
    std::fs::write(
        dir.join("compose.yaml"),
        "services:\n  app:\n    image: x\n    build:\n      context: .\n      ssh: [default]\n",
    )
    .unwrap();
    let o = berth_compose(&d, &dir, &["build"]);
    assert_ne!(o.code, 0, "{o}");
    assert!(o.stderr.contains("build.ssh is not supported"), "{o}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn cp_into_and_out_of_services_and_project_events() {
    let d = Daemon::start();
    let dir = berth_e2e::dir_with(
        "berth-compose-cp",
        &[
            (
                "compose.yaml",
                "services:\n  box:\n    image: busybox\n    command: [\"sleep\", \"300\"]\n    scale: 2\n    environment:\n      PRICE: \"5$$\"\n",
            ),
            ("in.txt", "to the service\n"),
        ],
    );
    let mut events = berth_e2e::Spawned::spawn({
        let mut c = d.command(Cli::Berth);
        c.args(["compose", "events", "--json"]).current_dir(&dir).env("COMPOSE_PROJECT_NAME", "app");
        c
    })
    .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(berth_compose(&d, &dir, &["up", "-d"]).code, 0);
    // `$$` in the file is a `$` in the container (the escaped form is only config's output)
    assert_eq!(d.berth(&["exec", "app-box-1", "sh", "-c", "echo $PRICE"]).stdout, "5$\n");
    // into a service without --index: every replica
    let o = berth_compose(&d, &dir, &["cp", "in.txt", "box:/tmp/in.txt"]);
    assert_eq!(o.code, 0, "{o}");
    for n in ["1", "2"] {
        assert_eq!(d.berth(&["exec", &format!("app-box-{n}"), "cat", "/tmp/in.txt"]).stdout, "to the service\n");
    }
    // out of one replica
    assert!(d.berth(&["exec", "app-box-2", "sh", "-c", "echo from-two > /tmp/out.txt"]).success());
    let o = berth_compose(&d, &dir, &["cp", "--index", "2", "box:/tmp/out.txt", "out.txt"]);
    assert_eq!(o.code, 0, "{o}");
    assert_eq!(std::fs::read_to_string(dir.join("out.txt")).unwrap(), "from-two\n");
    // the events named the service, without compose's labels in the attributes
    let line = events.wait_for_line(Duration::from_secs(10), |l| l.contains("\"action\":\"start\""));
    let e: serde_json::Value = serde_json::from_str(&line.expect("a start event")).unwrap();
    assert_eq!(e["service"], "box");
    assert_eq!(e["type"], "container");
    assert!(e["attributes"]["name"].as_str().unwrap().starts_with("app-box-"), "{e}");
    assert!(e["attributes"].as_object().unwrap().keys().all(|k| !k.starts_with("com.docker.compose.")), "{e}");
    events.kill();
    assert_eq!(berth_compose(&d, &dir, &["down", "-t", "0"]).code, 0);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn watch_syncs_files_and_rebuilds_images() {
    let d = Daemon::start();
    let dir = berth_e2e::dir_with(
        "berth-compose-watch",
        &[
            (
                "compose.yaml",
                r#"
services:
  box:
    image: busybox
    command: ["sleep", "300"]
    develop:
      watch:
        - path: ./src
          action: sync
          target: /app
          ignore: ["*.tmp"]
          initial_sync: true
        - path: ./conf
          action: sync+exec
          target: /conf
          include: ["*.conf"]
          exec:
            command: ["sh", "-c", "echo $$GREETING:$$(pwd):$$(id -u) > /tmp/ran"]
            user: "1000"
            working_dir: /conf
            environment:
              GREETING: hi
  built:
    image: watch-built
    build: ./img
    command: ["sleep", "300"]
    develop:
      watch:
        - path: ./img
          action: rebuild
"#,
            ),
            ("src/first.txt", "one\n"),
            ("conf/.keep", ""),
            ("img/Dockerfile", "FROM busybox\nCOPY version /version\n"),
            ("img/version", "v1\n"),
        ],
    );
    let mut w = berth_e2e::Spawned::spawn({
        let mut c = d.command(Cli::Berth);
        c.args(["compose", "up", "--watch", "-d"]).current_dir(&dir).env("COMPOSE_PROJECT_NAME", "app");
        c
    })
    .unwrap();
    assert!(
        wait_until(Duration::from_secs(60), || w.stderr_lines().iter().any(|l| l.contains("Watch enabled"))),
        "{:?}",
        w.stderr_lines()
    );
    let cat = |c: &str, f: &str| d.berth(&["exec", c, "cat", f]).stdout;
    assert_eq!(cat("app-built-1", "/version"), "v1\n");
    // initial_sync: what was there before the watch began is copied in first
    assert!(wait_until(Duration::from_secs(10), || cat("app-box-1", "/app/first.txt") == "one\n"));
    // a new file reaches the container; an ignored one does not; a deleted one goes
    std::fs::write(dir.join("src/new.txt"), "fresh\n").unwrap();
    std::fs::write(dir.join("src/skip.tmp"), "no\n").unwrap();
    assert!(wait_until(Duration::from_secs(20), || cat("app-box-1", "/app/new.txt") == "fresh\n"), "{:?}", w.stderr_lines());
    assert!(d.berth(&["exec", "app-box-1", "test", "-e", "/app/skip.tmp"]).code != 0);
    std::fs::remove_file(dir.join("src/new.txt")).unwrap();
    assert!(wait_until(Duration::from_secs(20), || d.berth(&["exec", "app-box-1", "test", "-e", "/app/new.txt"]).code != 0));
    // `include`: only matching files count; `exec` runs with its user, directory, env
    std::fs::write(dir.join("conf/skip.txt"), "no\n").unwrap();
    std::fs::write(dir.join("conf/app.conf"), "x=1\n").unwrap();
    assert!(wait_until(Duration::from_secs(20), || cat("app-box-1", "/tmp/ran") == "hi:/conf:1000\n"), "{:?}", w.stderr_lines());
    assert_eq!(cat("app-box-1", "/conf/app.conf"), "x=1\n");
    assert!(d.berth(&["exec", "app-box-1", "test", "-e", "/conf/skip.txt"]).code != 0, "a file outside `include` was synced");
    // a change in the build context rebuilds the image and recreates the container
    std::fs::write(dir.join("img/version"), "v2\n").unwrap();
    assert!(wait_until(Duration::from_secs(60), || cat("app-built-1", "/version") == "v2\n"), "{:?}", w.stderr_lines());
    w.kill();
    assert_eq!(berth_compose(&d, &dir, &["down", "-t", "0"]).code, 0);
    std::fs::remove_dir_all(&dir).ok();
}

/// Progress as Docker Compose shows it: on a terminal a live block (`[+] Running n/m`,
/// a line per resource with `✔` and its time), `--progress json` a JSON object per
/// change, `quiet` nothing, plain lines otherwise; an unknown mode is refused.
#[test]
fn progress_is_shown_as_compose_shows_it() {
    let d = Daemon::start();
    let dir = d.dir().join("progress");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("compose.yaml"),
        "services:\n  a:\n    image: busybox\n    command: [sleep, '300']\n    init: true\n  b:\n    image: busybox\n    command: [sleep, '300']\n    init: true\n",
    )
    .unwrap();
    let mut cmd = d.command(Cli::Berth);
    cmd.args(["compose", "up", "-d"]).current_dir(&dir).env("COMPOSE_PROJECT_NAME", "prog");
    let mut p = berth_e2e::Pty::spawn(cmd, 24, 100).unwrap();
    assert_eq!(p.wait(Duration::from_secs(60)), Some(0), "{}", p.output());
    let out = p.output();
    // the last drawing: every resource done
    let last = &out[out.rfind("[+] Running").expect("a progress block")..];
    assert!(last.starts_with("[+] Running 3/3"), "{last:?}");
    for id in ["Network prog_default", "Container prog-a-1", "Container prog-b-1"] {
        let line = last.lines().find(|l| l.contains(id)).unwrap_or_else(|| panic!("no line for {id} in {last:?}"));
        assert!(line.contains('✔') && line.contains(if id.starts_with("Network") { "Created" } else { "Started" }), "{line:?}");
        assert!(line.trim_end_matches(|c: char| c.is_whitespace() || c.is_ascii_control() || "[0mK".contains(c)).ends_with('s'), "{line:?}");
    }

    let o = berth_compose_in(&d, &dir, "prog", &["--progress", "json", "down", "-t", "1"]);
    let events: Vec<serde_json::Value> = o.stderr.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}"))).collect();
    assert!(events.contains(&serde_json::json!({"id": "Container prog-a-1", "status": "Removed"})), "{o}");
    assert!(events.contains(&serde_json::json!({"id": "Network prog_default", "status": "Removed"})), "{o}");

    let o = berth_compose_in(&d, &dir, "prog", &["--progress", "quiet", "up", "-d"]);
    assert!(o.success() && o.stderr.is_empty(), "{o}");
    let o = berth_compose_in(&d, &dir, "prog", &["down", "-t", "1"]);
    assert!(o.stderr.contains(" Container prog-a-1  Removed\n"), "{o}");
    let o = berth_compose_in(&d, &dir, "prog", &["--progress", "fancy", "ps"]);
    assert!(!o.success() && o.stderr.contains("unsupported --progress value \"fancy\""), "{o}");
}

fn berth_compose_in(d: &Daemon, dir: &Path, project: &str, args: &[&str]) -> Output {
    let mut cmd = d.command(Cli::Berth);
    cmd.arg("compose").args(args).current_dir(dir).env("COMPOSE_PROJECT_NAME", project);
    run_command(cmd, None, Duration::from_secs(60))
}
