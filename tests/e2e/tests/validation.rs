//! Bad input gets dockerd's status and message, and every `run` flag either works or is
//! refused with an error that names the cause — none is accepted and ignored.

use berth_e2e::{Cli, Daemon};
use serde_json::json;

fn enc(s: &str) -> String {
    s.bytes().map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") }).collect()
}

#[test]
fn bad_filters_answer_400_with_dockerds_message() {
    let d = Daemon::start();
    let cases = [
        ("GET", "/containers/json", r#"{"status":["bogus"]}"#, "Invalid filter 'status=bogus'"),
        ("GET", "/containers/json", r#"{"health":["bogus"]}"#, "Unrecognised filter value for health: bogus"),
        ("GET", "/containers/json", r#"{"is-task":["maybe"]}"#, "Invalid filter 'is-task=maybe'"),
        ("GET", "/containers/json", r#"{"exited":["x"]}"#, "Invalid filter 'exited=x'"),
        ("GET", "/containers/json", r#"{"publish":["80:80"]}"#, "filter for 'publish' should not contain ':': 80:80"),
        ("GET", "/containers/json", r#"{"nope":["1"]}"#, "Invalid filter 'nope'"),
        ("GET", "/images/json", r#"{"dangling":["maybe"]}"#, "Invalid filter 'dangling=maybe'"),
        ("GET", "/images/json", r#"{"reference":["[[["]}"#, "syntax error in pattern"),
        ("POST", "/containers/prune", r#"{"until":["notatime"]}"#, "failed to parse value as time or duration: \"notatime\""),
        ("POST", "/images/prune", r#"{"until":["notatime"]}"#, "failed to parse value as time or duration: \"notatime\""),
        ("POST", "/images/prune", r#"{"dangling":["maybe"]}"#, "Invalid filter 'dangling=maybe'"),
        ("POST", "/volumes/prune", r#"{"all":["maybe"]}"#, "Invalid filter 'all=maybe'"),
        ("GET", "/containers/json", "{not json", "invalid filter"),
    ];
    for (method, path, filters, want) in cases {
        let r = d.api(method, &format!("{path}?filters={}", enc(filters)));
        assert_eq!(r.status, 400, "{method} {path} {filters}: {}", r.text());
        assert_eq!(r.header("content-type"), Some("application/json"), "{path} {filters}");
        assert!(r.message().contains(want), "{method} {path} {filters}: {}", r.message());
    }
    // Events asked from after they end.
    let r = d.api("GET", "/events?since=5&until=1");
    assert_eq!((r.status, r.message()), (400, "`since` time (5) cannot be after `until` time (1)".to_owned()));
    // A volume prune with API 1.42's `all=false` keeps named volumes and takes
    // anonymous ones (1.41's prune, the default here, takes both).
    d.berth(&["volume", "create", "named"]).ok();
    d.berth(&["run", "-v", "/anon", "--name", "anon", "busybox", "true"]).ok();
    let anon = d.inspect("anon")["Mounts"][0]["Name"].as_str().unwrap().to_owned();
    d.berth(&["rm", "anon"]).ok();
    let r = d.api("POST", &format!("/volumes/prune?filters={}", enc(r#"{"all":["false"]}"#)));
    assert_eq!(r.json()["VolumesDeleted"], json!([anon]), "{}", r.text());
    let r = d.api("POST", "/volumes/prune");
    assert_eq!(r.json()["VolumesDeleted"], json!(["named"]), "{}", r.text());
    // A container named in before/since that does not exist.
    let r = d.api("GET", &format!("/containers/json?filters={}", enc(r#"{"before":["nosuch"]}"#)));
    assert_eq!(r.status, 404, "{}", r.text());
    // The docker CLI prints the daemon's message.
    let o = d.docker(&["ps", "--filter", "status=bogus"]);
    assert!(o.code != 0 && o.stderr.contains("Invalid filter 'status=bogus'"), "{o}");
}

#[test]
fn ps_filters_before_since_and_ancestor_work() {
    let d = Daemon::start();
    for n in ["f1", "f2", "f3"] {
        d.berth(&["create", "--name", n, "busybox", "true"]).ok();
    }
    let names = |filter: &str| -> Vec<String> {
        let o = d.berth(&["ps", "-a", "--format", "{{.Names}}", "--filter", filter]);
        o.ok().lines().map(str::to_owned).collect()
    };
    assert_eq!(names("before=f3"), ["f2", "f1"]);
    assert_eq!(names("since=f1"), ["f3", "f2"]);
    assert_eq!(names("ancestor=busybox").len(), 3);
    assert!(names("is-task=true").is_empty());
    assert_eq!(names("health=none").len(), 3);
    assert_eq!(names("label!=nope").len(), 3);
    d.berth(&["rm", "f1", "f2", "f3"]).ok();
}

#[test]
fn auth_with_a_body_that_is_not_credentials_is_400_without_network() {
    let d = Daemon::start_bare();
    for body in ["[]", r#"{"Cmd":1}"#, "7", "nope"] {
        let t0 = std::time::Instant::now();
        let r = d.api_body("POST", "/auth", berth_e2e::Body::Fixed("application/json", body.as_bytes()));
        assert_eq!(r.status, 400, "{body}: {}", r.text());
        assert!(t0.elapsed() < std::time::Duration::from_secs(2), "{body}: took {:?}", t0.elapsed());
    }
    let r = d.api_body("POST", "/build?buildargs=%7B%22a%22%3A1%7D", berth_e2e::Body::Fixed("application/x-tar", b""));
    assert_eq!(r.status, 400, "{}", r.text());
}

#[test]
fn invalid_binds_and_mounts_are_refused_at_create() {
    let d = Daemon::start();
    let create = |hc: serde_json::Value| d.api_json("POST", "/containers/create", &json!({"Image": "busybox", "Cmd": ["true"], "HostConfig": hc}));
    for (bind, want) in [
        ("..:/x", "includes invalid characters for a local volume name"),
        (".:/x", "volume name is too short"),
        ("~:/x", "volume name is too short"),
        ("~me:/x", "includes invalid characters"),
        ("/a:relative", "mount path must be absolute"),
        ("/a:/b:bogus", "invalid mode: bogus"),
        ("/a:/", "destination can't be '/'"),
    ] {
        let r = create(json!({"Binds": [bind]}));
        assert_eq!(r.status, 400, "{bind}: {}", r.text());
        assert!(r.message().contains(want), "{bind}: {}", r.message());
    }
    let r = create(json!({"Mounts": [{"Type": "bind", "Source": "/nonexistent-berth-src", "Target": "/x"}]}));
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.message().contains("bind source path does not exist: /nonexistent-berth-src"), "{}", r.message());
    // A --mount bind is really mounted, read-only when asked.
    let dir = berth_e2e::dir_with("berth-mnt", &[("hello.txt", "from the host\n")]);
    let spec = format!("type=bind,source={},target=/data,readonly", dir.display());
    for cli in Cli::ALL {
        let o = d.cli(cli, &["run", "--rm", "--mount", &spec, "busybox", "sh", "-c", "cat /data/hello.txt; touch /data/x 2>&1 | grep -c Read-only"]);
        assert_eq!(o.ok(), "from the host\n1\n", "{}: {o}", cli.name());
    }
    let o = d.berth(&["run", "--rm", "--mount", "type=tmpfs,target=/t,tmpfs-size=1m", "busybox", "sh", "-c", "grep ' /t ' /proc/mounts"]);
    assert!(o.ok().contains("tmpfs") && o.ok().contains("size=1024k"), "{o}");
}

#[test]
fn run_flags_take_effect() {
    let d = Daemon::start();
    for cli in Cli::ALL {
        let name = cli.name();
        // --oom-kill-disable
        let o = d.cli(cli, &["run", "--rm", "--oom-kill-disable", "-m", "32m", "busybox", "head", "-1", "/sys/fs/cgroup/memory/memory.oom_control"]);
        assert_eq!(o.ok(), "oom_kill_disable 1\n", "{name}: {o}");
        // --init: pid 1 is the init, which reaps orphans
        let o = d.cli(cli, &["run", "--rm", "--init", "busybox", "sh", "-c", "cat /proc/1/cmdline | tr '\\0' ' '; (sleep 0.1 &); sleep 0.5; ps -o stat | grep -c Z"]);
        assert!(o.stdout.starts_with("/sbin/docker-init -- sh"), "{name}: {o}");
        assert!(o.stdout.ends_with("0\n"), "{name}: a zombie was left: {o}");
        // --cgroup-parent
        let o = d.cli(cli, &["run", "--rm", "--cgroup-parent", "/berth-e2e-parent", "busybox", "grep", "memory:", "/proc/self/cgroup"]);
        assert!(o.ok().contains(":memory:/berth-e2e-parent/"), "{name}: {o}");
        // --ipc host / none / shareable+container
        let o = d.cli(cli, &["run", "--rm", "--ipc", "host", "busybox", "ls", "-d", "/dev/shm"]);
        assert_eq!(o.ok(), "/dev/shm\n", "{name}: {o}");
        let o = d.cli(cli, &["run", "--rm", "--ipc", "none", "busybox", "ls", "/dev/shm"]);
        assert!(o.code != 0, "{name}: --ipc none kept /dev/shm: {o}");
        // --device
        let o = d.cli(cli, &["run", "--rm", "--device", "/dev/null:/dev/berthnull:rw", "busybox", "sh", "-c", "echo x > /dev/berthnull && echo ok"]);
        assert_eq!(o.ok(), "ok\n", "{name}: {o}");
        // --platform for another architecture: dockerd's 404 wording (the CLI then tries a pull)
        let o = d.cli(cli, &["run", "--rm", "--pull", "never", "--platform", "linux/arm64", "busybox", "true"]);
        assert!(o.code != 0, "{name}: {o}");
    }
    let r = d.api_json("POST", "/containers/create?platform=linux/arm64", &json!({"Image": "busybox", "Cmd": ["true"]}));
    assert_eq!(r.status, 404);
    assert!(r.message().contains("does not match the specified platform: wanted linux/arm64, actual: linux/amd64"), "{}", r.message());
    d.berth(&["run", "-d", "--name", "donor", "--ipc", "shareable", "busybox", "sh", "-c", "echo x > /dev/shm/m; sleep 60"]).ok();
    assert!(berth_e2e::wait_until(std::time::Duration::from_secs(5), || d.berth(&["exec", "donor", "test", "-f", "/dev/shm/m"]).code == 0));
    let o = d.berth(&["run", "--rm", "--ipc", "container:donor", "busybox", "cat", "/dev/shm/m"]);
    assert_eq!(o.ok(), "x\n", "{o}");
    d.berth(&["run", "-d", "--name", "private", "busybox", "sleep", "60"]).ok();
    let o = d.berth(&["run", "--rm", "--ipc", "container:private", "busybox", "true"]);
    assert!(o.stderr.contains("non-shareable IPC"), "{o}");
    // Not running: dockerd's words, the running check first.
    let id = d.berth(&["create", "--name", "stopped", "busybox", "true"]).ok().trim().to_owned();
    let o = d.docker(&["run", "--rm", "--ipc", "container:stopped", "busybox", "true"]);
    assert!(o.stderr.contains(&format!("can't join IPC of container {id}: container {id} is not running")), "{o}");
    let o = d.docker(&["run", "--rm", "--pid", "container:stopped", "busybox", "true"]);
    assert!(o.stderr.contains(&format!("Error response from daemon: container {id} is not running")), "{o}");
    d.berth(&["rm", "-f", "donor", "private", "stopped"]).ok();
    // --log-driver none: nothing kept, reading says why.
    d.berth(&["run", "--name", "nolog", "--log-driver", "none", "busybox", "echo", "hi"]).ok();
    let o = d.docker(&["logs", "nolog"]);
    assert!(o.code != 0 && o.stderr.contains("configured logging driver does not support reading"), "{o}");
    assert_eq!(d.inspect("nolog")["HostConfig"]["LogConfig"]["Type"], "none");
    // A log driver berthd lacks, and an option it does not know: refused.
    let o = d.docker(&["run", "--rm", "--log-driver", "syslog", "busybox", "true"]);
    assert!(o.code == 125 && o.stderr.contains("\"syslog\" logging driver"), "{o}");
    let o = d.docker(&["run", "--rm", "--log-opt", "bogus=a", "busybox", "true"]);
    assert!(o.code == 125 && o.stderr.contains("unknown log opt 'bogus' for json-file log driver"), "{o}");
    let o = d.docker(&["run", "--rm", "--log-driver", "local", "--log-opt", "tag=x", "busybox", "true"]);
    assert!(o.code == 125 && o.stderr.contains("unknown log opt 'tag' for log driver local"), "{o}");
    // json-file's attributes: named and matched labels and variables, a tag from its
    // template, written with every entry and shown (sorted, query-escaped) by
    // `logs --details`; a template beyond the fields is refused by name.
    let o = d.docker(&[
        "run", "--name", "attrs", "--label", "team=a b", "--label", "x.y=1", "-e", "FOO=bar",
        "--log-opt", "labels=team,none", "--log-opt", "labels-regex=^x\\.", "--log-opt", "env=FOO",
        "--log-opt", "tag={{.Name}}/{{.ImageName}}", "busybox", "echo", "hi",
    ]);
    assert_eq!(o.ok(), "hi\n");
    for cli in Cli::ALL {
        let o = d.cli(cli, &["logs", "--details", "attrs"]);
        assert_eq!(o.ok(), "FOO=bar,tag=attrs%2Fbusybox,team=a+b,x.y=1 hi\n", "{}", cli.name());
    }
    assert_eq!(d.docker(&["logs", "attrs"]).ok(), "hi\n");
    let log = std::fs::read_to_string(d.inspect("attrs")["LogPath"].as_str().unwrap()).unwrap();
    let entry: serde_json::Value = serde_json::from_str(log.lines().next().unwrap()).unwrap();
    assert_eq!(entry["attrs"], serde_json::json!({"FOO": "bar", "tag": "attrs/busybox", "team": "a b", "x.y": "1"}), "{log}");
    let o = d.docker(&["run", "--rm", "--log-opt", "tag={{.Name | upper}}", "busybox", "true"]);
    assert!(o.code == 125 && o.stderr.contains("tag templates take the fields"), "{o}");
    // Option values as dockerd's drivers read them: max-file alone is taken (as
    // docker-py's tests expect), compress without rotation is not.
    d.docker(&["run", "--rm", "--log-opt", "max-file=100", "busybox", "true"]).ok();
    let o = d.docker(&["run", "--rm", "--log-opt", "max-file=3", "--log-opt", "compress=true", "busybox", "true"]);
    assert!(
        o.code == 125
            && o.stderr.contains("failed to initialize logging driver: compress cannot be true when max-file is less than 2 or max-size is not set"),
        "{o}"
    );
    let o = d.docker(&["run", "--rm", "--log-driver", "local", "--log-opt", "max-file=1", "busybox", "true"]);
    assert!(o.code == 125 && o.stderr.contains("compression cannot be enabled when max file count is 1"), "{o}");
    // What this kernel lacks: dockerd's warning, the setting dropped, the container runs.
    let o = d.docker(&["run", "--rm", "--blkio-weight", "300", "busybox", "true"]);
    let blkio = std::path::Path::new("/sys/fs/cgroup/blkio/blkio.weight").exists();
    assert_eq!(o.code, 0, "{o}");
    assert_eq!(o.stderr.contains("Block I/O weight"), !blkio, "{o}");
    // --gpus on a host without a GPU driver: Docker's own error.
    let o = d.docker(&["run", "--rm", "--gpus", "all", "busybox", "true"]);
    assert!(o.code == 125 && o.stderr.contains("could not select device driver"), "{o}");
    // Unknown runtimes and restart policies with a retry count but not on-failure.
    let r = d.api_json("POST", "/containers/create", &json!({"Image": "busybox", "HostConfig": {"Runtime": "kata"}}));
    assert_eq!((r.status, r.message()), (400, "Unknown runtime specified kata".to_owned()));
    let r = d.api_json(
        "POST",
        "/containers/create",
        &json!({"Image": "busybox", "HostConfig": {"RestartPolicy": {"Name": "always", "MaximumRetryCount": 3}}}),
    );
    assert_eq!(r.status, 400, "{}", r.text());
    let r = d.api_json("POST", "/containers/create", &json!({"Image": "busybox", "Env": ["=foo"]}));
    assert_eq!(r.status, 400, "{}", r.text());
    // The `--cgroup-parent` cgroup stays, as dockerd leaves it: once the daemon is gone
    // (with the warm sandbox made under it), the test removes it.
    drop(d);
    let parents: Vec<_> = std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten().map(|h| h.path().join("berth-e2e-parent")).collect();
    assert!(
        berth_e2e::wait_until(std::time::Duration::from_secs(10), || parents.iter().all(|p| std::fs::remove_dir(p).is_ok() || !p.exists())),
        "{parents:?}"
    );
}

/// `run --name NAME [log flags] busybox` printing `line-0` … `line-{n-1}`; the
/// container's id and directory.
fn run_lines(d: &Daemon, name: &str, log_flags: &[&str], n: usize) -> (String, std::path::PathBuf) {
    let script = format!("i=0; while [ $i -lt {n} ]; do echo line-$i; i=$((i+1)); done");
    let mut args = vec!["run", "--name", name];
    args.extend_from_slice(log_flags);
    args.extend(["busybox", "sh", "-c", &script]);
    let o = d.berth(&args);
    assert_eq!(o.code, 0, "{o}");
    let id = d.inspect(name)["Id"].as_str().unwrap().to_owned();
    let dir = d.data_root().join("containers").join(&id);
    (id, dir)
}

/// `logs NAME` reads the kept files in order: it ends with the last of `n` lines and
/// has every one from the first it kept.
fn assert_logs_end_at(d: &Daemon, name: &str, n: usize) {
    let out = d.berth(&["logs", name]);
    let lines: Vec<&str> = out.ok().lines().collect();
    assert_eq!(lines.last().copied(), Some(format!("line-{}", n - 1)).as_deref());
    let first: usize = lines[0].trim_start_matches("line-").parse().unwrap();
    assert!(first > 0 && lines.len() == n - first, "{} lines from {first}", lines.len());
}

#[test]
fn log_rotation_keeps_max_file_files() {
    let d = Daemon::start();
    let (id, dir) = run_lines(&d, "rot", &["--log-opt", "max-size=1k", "--log-opt", "max-file=2"], 200);
    let log = dir.join(format!("{id}-json.log"));
    assert!(std::fs::metadata(&log).unwrap().len() <= 1024);
    assert!(dir.join(format!("{id}-json.log.1")).exists());
    assert!(!dir.join(format!("{id}-json.log.2")).exists());
    assert_logs_end_at(&d, "rot", 200);
    assert_eq!(d.berth(&["logs", "--tail", "3", "rot"]).ok(), "line-197\nline-198\nline-199\n");
    d.berth(&["rm", "rot"]).ok();
}

/// The `local` driver rotates unless told otherwise (dockerd's defaults: 20 MiB a
/// file, 5 files, the older ones compressed); its sizes count in powers of 1000.
#[test]
fn the_local_log_driver_rotates_and_compresses_by_default() {
    let d = Daemon::start();
    let (id, dir) = run_lines(&d, "loc", &["--log-driver", "local", "--log-opt", "max-size=1k"], 400);
    let file = |suffix: &str| dir.join(format!("{id}-json.log{suffix}"));
    assert!(std::fs::metadata(file("")).unwrap().len() <= 1000);
    for n in 1..=4 {
        assert!(file(&format!(".{n}.gz")).exists(), "no {n}th compressed file");
    }
    assert!(!file(".5.gz").exists() && !file(".1").exists());
    assert_logs_end_at(&d, "loc", 400);
    d.berth(&["rm", "loc"]).ok();
}
