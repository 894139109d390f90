//! Warm sandboxes (`container::warm`): a container created ahead of time for the next
//! `run` of the same shape. A container started on one must be indistinguishable from
//! one created on demand; sandboxes never show in the API and never outlive their
//! image, the daemon, or a daemon crash.

use std::fs;
use std::time::Duration;

use berth_e2e::{wait_until, Cli, Daemon};

/// A daemon that logs whether each start took a sandbox (`warm=true`).
fn daemon(extra: &[&str]) -> Daemon {
    let mut args = vec!["-l", "debug"];
    args.extend_from_slice(extra);
    let d = Daemon::start_with_args(&args);
    d.import_busybox();
    d
}

/// Shims of this daemon still alive (sandboxes or containers). A created container's
/// init is a fork of its shim with the same command line, but its own name.
fn shims(d: &Daemon) -> usize {
    let root = d.exec_root().to_string_lossy().into_owned();
    fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| {
            let comm = fs::read_to_string(e.path().join("comm")).unwrap_or_default();
            let cmd = fs::read(e.path().join("cmdline")).unwrap_or_default();
            comm.trim() == "berth-shim" && String::from_utf8_lossy(&cmd).contains(&root)
        })
        .count()
}

fn state_dirs(d: &Daemon) -> usize {
    fs::read_dir(d.exec_root().join("c")).map(|r| r.count()).unwrap_or(0)
}

/// How the start of container `id` went, from the daemon's debug log.
fn started_warm(d: &Daemon, id: &str) -> Option<bool> {
    d.log()
        .lines()
        .find(|l| l.contains("container started") && l.contains(id))
        .map(|l| l.contains("warm=true"))
}

/// `n` sandboxes were made so far, and only one shim runs (the last sandbox's).
fn sandbox_ready(d: &Daemon, n: usize) -> bool {
    d.log().matches("warm sandbox ready").count() >= n && shims(d) == 1
}

/// Run `-d` twice with the same shape; the second takes the sandbox the first left.
fn second_run_is_warm(d: &Daemon, args: &[&str]) -> String {
    let mut run = vec!["run", "-d"];
    run.extend_from_slice(args);
    let first = d.berth(&run).ok().trim().to_owned();
    assert_eq!(started_warm(d, &first), Some(false), "first run cannot be warm");
    d.berth(&["wait", &first]).ok();
    assert!(wait_until(Duration::from_secs(20), || sandbox_ready(d, 1)), "no sandbox was made");
    let second = d.berth(&run).ok().trim().to_owned();
    assert_eq!(started_warm(d, &second), Some(true), "second run did not take the sandbox:\n{}", d.log());
    second
}

#[test]
fn container_on_a_sandbox_is_like_a_fresh_one() {
    let d = daemon(&[]);
    let probe = "echo id=$(hostname) home=$HOME path=$PATH foo=$FOO pwd=$(pwd); \
                 grep -E '^(CapEff|CapBnd|Seccomp|NoNewPrivs):' /proc/self/status; \
                 ls -l /proc/self/fd/0; cat /proc/1/cmdline | tr '\\0' ' '; echo";
    let args = ["-e", "FOO=bar", "-w", "/tmp", "busybox", "sh", "-c", probe];
    let id = second_run_is_warm(&d, &args);
    assert_eq!(d.berth(&["wait", &id]).ok().trim(), "0");
    let warm = d.berth(&["logs", &id]).ok().to_owned();
    assert!(warm.contains(&format!("id={} ", &id[..12])), "hostname is not the id:\n{warm}");
    assert!(warm.contains("home=/root path=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin foo=bar pwd=/tmp"), "{warm}");
    assert!(warm.contains("Seccomp:\t2"), "no seccomp filter:\n{warm}");
    assert!(warm.contains("-> /dev/null"), "stdin is not /dev/null:\n{warm}");
    assert!(warm.contains("sh -c echo"), "pid 1 is not the command:\n{warm}");

    // The same probe in a container created on demand (another hostname is another
    // shape) prints the same capabilities.
    let fresh = d
        .berth(&["run", "--rm", "--hostname", "fresh", "-e", "FOO=bar", "-w", "/tmp", "busybox", "sh", "-c", probe])
        .ok()
        .to_owned();
    let caps = |s: &str| s.lines().filter(|l| l.starts_with("Cap") || l.starts_with("NoNewPrivs")).map(str::to_owned).collect::<Vec<_>>();
    assert_eq!(caps(&warm), caps(&fresh), "capabilities differ from a fresh container");
}

#[test]
fn exit_codes_and_start_errors_match_on_a_sandbox() {
    let d = daemon(&[]);
    for cli in [Cli::Berth, Cli::Docker] {
        for _ in 0..3 {
            let out = d.cli(cli, &["run", "--rm", "busybox", "sh", "-c", "echo out; exit 3"]);
            assert_eq!(out.code, 3, "{cli:?}: {out:?}");
            assert_eq!(out.stdout, "out\n");
        }
        for _ in 0..2 {
            let out = d.cli(cli, &["run", "--rm", "busybox", "no-such-command"]);
            assert_eq!(out.code, 127, "{cli:?}: {out:?}");
            assert!(out.stderr.contains("executable file not found in $PATH"), "{}", out.stderr);
            let out = d.cli(cli, &["run", "--rm", "busybox", "/etc/passwd"]);
            assert_eq!(out.code, 126, "{cli:?}: {out:?}");
        }
    }
    assert!(d.log().contains("warm=true"), "no run took a sandbox:\n{}", d.log());
    assert!(d.container_ids().is_empty(), "--rm containers left behind");
    // The start's answer: dockerd's 400 for a command that cannot be run, on a
    // sandbox as on a container made at the start.
    for i in 0..3 {
        let r = d.api_json("POST", "/v1.41/containers/create", &serde_json::json!({"Image": "busybox", "Cmd": ["no-such-command"]}));
        let id = r.json()["Id"].as_str().unwrap().to_owned();
        let r = d.api("POST", &format!("/v1.41/containers/{id}/start"));
        assert_eq!(r.status, 400, "start {i}: {}", r.text());
        assert_eq!(d.inspect(&id)["State"]["ExitCode"], 127);
        d.berth(&["rm", &id]).ok();
    }
}

#[test]
fn sandboxes_are_invisible_and_go_with_their_image() {
    let d = daemon(&[]);
    d.berth(&["run", "--rm", "busybox", "true"]).ok();
    assert!(wait_until(Duration::from_secs(20), || sandbox_ready(&d, 1)), "no sandbox was made");
    assert!(d.container_ids().is_empty(), "a sandbox shows in the API");
    assert_eq!(d.berth(&["ps", "-aq"]).ok().trim(), "");
    d.berth(&["rmi", "busybox"]).ok();
    assert!(
        wait_until(Duration::from_secs(10), || shims(&d) == 0 && state_dirs(&d) == 0),
        "sandbox outlived its image"
    );
}

#[test]
fn created_but_never_started_container_releases_its_sandbox() {
    let d = daemon(&[]);
    let first = d.berth(&["run", "-d", "busybox", "true"]).ok().trim().to_owned();
    d.berth(&["wait", &first]).ok();
    assert!(wait_until(Duration::from_secs(20), || sandbox_ready(&d, 1)));
    let id = d.berth(&["create", "busybox", "true"]).ok().trim().to_owned();
    d.berth(&["rm", &id, &first]).ok();
    assert!(
        wait_until(Duration::from_secs(10), || shims(&d) == 0 && state_dirs(&d) == 0),
        "claimed sandbox kept running"
    );
}

#[test]
fn daemon_crash_and_shutdown_leave_no_sandbox() {
    let mut d = daemon(&[]);
    d.berth(&["run", "--rm", "busybox", "true"]).ok();
    assert!(wait_until(Duration::from_secs(20), || sandbox_ready(&d, 1)));
    d.crash();
    assert_eq!(shims(&d), 1, "the sandbox's shim should survive a crash like containers do");
    d.relaunch();
    assert!(
        wait_until(Duration::from_secs(10), || shims(&d) == 0 && state_dirs(&d) == 0),
        "start-up kept a crashed daemon's sandbox"
    );
    // The same run still works, and a clean shutdown takes its new sandbox down.
    assert_eq!(d.berth(&["run", "--rm", "busybox", "echo", "again"]).ok(), "again\n");
    assert!(wait_until(Duration::from_secs(20), || sandbox_ready(&d, 2)));
    d.stop();
    // (the shim answers the daemon's last `Wait` a moment before it exits)
    assert!(
        wait_until(Duration::from_secs(5), || shims(&d) == 0 && state_dirs(&d) == 0),
        "a sandbox outlived the daemon's shutdown: {} shims, {} state dirs\n{}",
        shims(&d),
        state_dirs(&d),
        d.log()
    );
}

#[test]
fn warm_containers_zero_turns_it_off() {
    let d = daemon(&["--warm-containers", "0"]);
    for _ in 0..3 {
        assert_eq!(d.berth(&["run", "--rm", "busybox", "echo", "hi"]).ok(), "hi\n");
    }
    assert!(!d.log().contains("warm=true"));
    assert!(wait_until(Duration::from_secs(5), || shims(&d) == 0 && state_dirs(&d) == 0));
}

/// A container made at `start` gets its attach streams without the start waiting for
/// the attach's answer (the shim puts an attach in place before it serves a start sent
/// after it): a process that writes and exits at once loses nothing, on stdout, stderr
/// or from stdin, with either CLI, run after run.
#[test]
fn output_of_a_process_that_exits_at_once_reaches_a_cold_start_attach() {
    let d = daemon(&["--warm-containers", "0"]);
    for cli in Cli::ALL {
        for i in 0..8 {
            let o = d.cli(cli, &["run", "--rm", "busybox", "sh", "-c", &format!("echo out{i}; echo err{i} >&2")]);
            let want = (0, format!("out{i}\n"), format!("err{i}\n"));
            assert_eq!((o.code, o.stdout.clone(), o.stderr.clone()), want, "{}: {o}", cli.name());
            let o = d.cli_stdin(cli, &["run", "--rm", "-i", "busybox", "cat"], format!("in{i}\n").as_bytes());
            assert_eq!((o.code, o.stdout.clone()), (0, format!("in{i}\n")), "{}: {o}", cli.name());
        }
    }
}

/// The mount options of a container's rootfs, from the host's mount table.
fn rootfs_options(d: &Daemon, id: &str) -> String {
    let target = d.exec_root().join("c").join(id).join("rootfs");
    let target = target.to_string_lossy();
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .find(|l| l.split(' ').nth(4) == Some(&*target))
        .unwrap_or_else(|| panic!("{target} is not mounted"))
        .to_owned()
}

#[test]
fn rm_containers_are_volatile_and_their_sandboxes_are_not_given_to_kept_ones() {
    let d = daemon(&[]);
    // A `--rm` container's rootfs is thrown away at exit: overlayfs need not sync it.
    let rm = d.berth(&["run", "--rm", "-d", "busybox", "sleep", "60"]).ok().trim().to_owned();
    assert!(rootfs_options(&d, &rm).contains("volatile"), "{}", rootfs_options(&d, &rm));
    assert!(wait_until(Duration::from_secs(20), || d.log().contains("warm sandbox ready")), "no sandbox was made");
    // The same command without --rm is another shape: it must not inherit the
    // volatile rootfs of the sandbox made for the --rm one.
    let kept = d.berth(&["run", "-d", "busybox", "sleep", "60"]).ok().trim().to_owned();
    assert_eq!(started_warm(&d, &kept), Some(false), "a kept container took a --rm sandbox");
    assert!(!rootfs_options(&d, &kept).contains("volatile"), "{}", rootfs_options(&d, &kept));
    d.berth(&["rm", "-f", &rm, &kept]).ok();
}

/// The shim is started with the container's logging: a sandbox made after a
/// `--log-driver none` run is not given to a container that logs (docker-py's
/// `containers.run` read back nothing once it was).
#[test]
fn a_sandbox_keeps_the_logging_it_was_made_with() {
    let d = daemon(&[]);
    d.berth(&["run", "--log-driver", "none", "busybox", "echo", "unlogged"]).ok();
    assert!(wait_until(Duration::from_secs(20), || d.log().contains("warm sandbox ready")), "no sandbox was made");
    let id = d.berth(&["run", "-d", "busybox", "echo", "logged"]).ok().trim().to_owned();
    d.berth(&["wait", &id]).ok();
    assert_eq!(started_warm(&d, &id), Some(false), "a logging container took a --log-driver none sandbox");
    assert_eq!(d.berth(&["logs", &id]).ok(), "logged\n");
    d.berth(&["container", "prune", "-f"]).ok();
}

#[test]
fn back_to_back_runs_make_sandboxes_in_parallel_and_the_burst_ends() {
    let d = daemon(&[]);
    for _ in 0..8 {
        d.berth(&["run", "--rm", "busybox", "true"]).ok();
    }
    // Runs came faster than one sandbox is made: more than one was made at once.
    assert!(d.log().contains("warm sandboxes: burst"), "no burst:\n{}", d.log());
    assert!(wait_until(Duration::from_secs(20), || shims(&d) > 1), "no extra sandbox was kept");
    // Unused for a while, the extra sandboxes go and the configured one stays.
    assert!(wait_until(Duration::from_secs(30), || shims(&d) == 1), "burst sandboxes outlived the burst: {}", shims(&d));
    assert!(d.container_ids().is_empty());
}

/// Processes named `comm` whose command line names this daemon's exec root.
fn procs(d: &Daemon, comm: &str) -> Vec<u32> {
    let root = d.exec_root().to_string_lossy().into_owned();
    fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let pid = e.file_name().to_str()?.parse().ok()?;
            let name = fs::read_to_string(e.path().join("comm")).ok()?;
            let cmd = fs::read(e.path().join("cmdline")).ok()?;
            (name.trim() == comm && String::from_utf8_lossy(&cmd).contains(&root)).then_some(pid)
        })
        .collect()
}

/// A shim started ahead of need (`container::standby`) waits, holding nothing, for the
/// next container start; that container runs as one started on demand, a new standby
/// follows, and none outlives its daemon, stopped or killed.
#[test]
fn a_standby_shim_serves_the_next_start_and_ends_with_its_daemon() {
    let mut d = daemon(&["--warm-containers", "0"]);
    assert!(wait_until(Duration::from_secs(10), || procs(&d, "berth-standby").len() == 1), "no standby shim");
    let standby = procs(&d, "berth-standby")[0];
    // Its stdio and its own error log (a memfd); nothing inherited from the daemon.
    for fd in fs::read_dir(format!("/proc/{standby}/fd")).unwrap().flatten() {
        let n: u32 = fd.file_name().to_str().unwrap().parse().unwrap();
        let target = fs::read_link(fd.path()).unwrap_or_default();
        assert!(n <= 2 || target.to_string_lossy().contains("berth-shim-errors"), "standby holds fd {n} -> {target:?}");
    }

    // Forked by the daemon's one zygote, which holds its socket to berthd and nothing
    // of any standby or container.
    let zygotes = procs(&d, "berth-zygote");
    assert_eq!(zygotes.len(), 1, "not one zygote: {zygotes:?}");
    assert_eq!(ppid(standby), zygotes[0], "the standby is not the zygote's child");
    let zfds: Vec<String> = fs::read_dir(format!("/proc/{}/fd", zygotes[0])).unwrap().flatten()
        .map(|f| format!("{:?} -> {:?}", f.file_name(), fs::read_link(f.path()).unwrap_or_default())).collect();
    assert_eq!(zfds.len(), 3, "the zygote holds more than its stdio: {zfds:?}");

    let id = d.berth(&["run", "-d", "-e", "FOO=bar", "busybox", "sleep", "60"]).ok().trim().to_owned();
    // That standby is now the container's shim: its init's parent, logging to the
    // container's shim.log.
    assert_eq!(fs::read_to_string(format!("/proc/{standby}/comm")).unwrap().trim(), "berth-shim");
    let init = d.inspect(&id)["State"]["Pid"].as_u64().unwrap();
    assert_eq!(ppid(init as u32), standby, "the container's init is not the standby's child");
    assert!(d.exec_root().join("c").join(&id).join("shim.log").exists());
    assert_eq!(d.berth(&["exec", &id, "sh", "-c", "echo $FOO"]).ok(), "bar\n");
    assert!(wait_until(Duration::from_secs(10), || procs(&d, "berth-standby").len() == 1), "no new standby");
    assert_ne!(procs(&d, "berth-standby")[0], standby);
    d.berth(&["rm", "-f", &id]).ok();

    d.crash();
    let gone = |d: &Daemon| procs(d, "berth-standby").is_empty() && procs(d, "berth-zygote").is_empty();
    assert!(wait_until(Duration::from_secs(5), || gone(&d)), "a standby or the zygote outlived its daemon's kill -9");
    d.relaunch();
    assert!(wait_until(Duration::from_secs(10), || procs(&d, "berth-standby").len() == 1), "no standby after a restart");
    d.stop();
    assert!(wait_until(Duration::from_secs(5), || gone(&d)), "a standby or the zygote outlived its daemon's stop");
}

/// A process's parent.
fn ppid(pid: u32) -> u32 {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    stat.rsplit(')').next().unwrap().split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Starts that find no standby waiting (a burst) get shims the zygote forks on the
/// spot; a zygote that dies is replaced at the next start, which still succeeds, and
/// the shims it had forked run on without it.
#[test]
fn the_shim_zygote_forks_every_shim_and_is_replaced_when_it_dies() {
    let d = daemon(&["--warm-containers", "0"]);
    assert!(wait_until(Duration::from_secs(10), || procs(&d, "berth-zygote").len() == 1), "no zygote");
    let zygote = procs(&d, "berth-zygote")[0];
    let ids: Vec<String> = std::thread::scope(|s| {
        let runs: Vec<_> = (0..4).map(|_| s.spawn(|| d.berth(&["run", "-d", "busybox", "sleep", "60"]).ok().trim().to_owned())).collect();
        runs.into_iter().map(|r| r.join().unwrap()).collect()
    });
    let shims: Vec<u32> = ids.iter().map(|id| ppid(d.inspect(id)["State"]["Pid"].as_u64().unwrap() as u32)).collect();
    for s in &shims {
        assert_eq!(ppid(*s), zygote, "shim {s} was not forked by the zygote");
    }

    nix::sys::signal::kill(nix::unistd::Pid::from_raw(zygote as i32), nix::sys::signal::Signal::SIGKILL).unwrap();
    assert!(wait_until(Duration::from_secs(5), || !procs(&d, "berth-zygote").contains(&zygote)));
    for id in &ids {
        assert_eq!(d.inspect(id)["State"]["Status"], "running", "{id} did not outlive the zygote");
    }
    assert_eq!(d.berth(&["run", "--rm", "busybox", "echo", "after"]).ok(), "after\n");
    let replaced = || matches!(procs(&d, "berth-zygote").as_slice(), [z] if *z != zygote);
    assert!(wait_until(Duration::from_secs(10), replaced), "no new zygote: {:?}", procs(&d, "berth-zygote"));
    assert_eq!(d.berth(&["run", "--rm", "busybox", "echo", "again"]).ok(), "again\n");
    assert_eq!(d.berth(&["exec", &ids[0], "echo", "still"]).ok(), "still\n");
    let mut rm = vec!["rm", "-f"];
    rm.extend(ids.iter().map(String::as_str));
    d.berth(&rm).ok();
}

/// A shim whose daemon died while it created the container (its `Ready` line has no
/// reader) takes the container down itself — kills it, removes its cgroup and runtime
/// state — instead of leaving it running unowned: a restarted daemon may already have
/// removed what it knew of it.
#[test]
fn a_shim_whose_daemon_is_gone_removes_the_container_it_created() {
    let d = daemon(&[]);
    let id = d.berth(&["run", "-d", "busybox", "sleep", "60"]).ok().trim().to_owned();
    // That container's bundle, for a container of another id.
    let dir = berth_e2e::dir_with("berth-orphan", &[]);
    let (bundle, runtime) = (dir.join("bundle"), dir.join("runtime"));
    fs::create_dir_all(&bundle).unwrap();
    let mut spec: serde_json::Value =
        serde_json::from_slice(&fs::read(d.exec_root().join("c").join(&id).join("config.json")).unwrap()).unwrap();
    let other = format!("{:064x}", 0x5eedu64);
    spec["linux"]["cgroupsPath"] = format!("/berth/{other}").into();
    spec["process"]["args"] = serde_json::json!(["sleep", "60"]);
    fs::write(bundle.join("config.json"), spec.to_string()).unwrap();
    let mut shim = std::process::Command::new(berth_e2e::bin("berth-shim"))
        .args(["run", "--id", &other, "--bundle"])
        .arg(&bundle)
        .arg("--runtime-root")
        .arg(&runtime)
        .arg("--state-dir")
        .arg(&bundle)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // No one will read the Ready line.
    drop(shim.stdout.take());
    assert!(wait_until(Duration::from_secs(20), || matches!(shim.try_wait(), Ok(Some(_)))), "the shim kept running");
    let log = fs::read_to_string(bundle.join("shim.log")).unwrap_or_default();
    assert!(log.contains("berthd is gone"), "shim.log: {log}");
    let memory = std::path::Path::new("/sys/fs/cgroup/memory/berth").join(&other);
    let unified = std::path::Path::new("/sys/fs/cgroup/berth").join(&other);
    assert!(!memory.exists() && !unified.exists(), "the container's cgroup is still there");
    assert!(!runtime.join(&other).exists(), "libcontainer's state is still there");
    d.berth(&["rm", "-f", &id]).ok();
    let _ = fs::remove_dir_all(&dir);
}

/// A detached start (`run -d`) has its answer at once, so the next sandbox is made at
/// once: a `run -d` that comes right after takes it (waiting for it if it is still
/// being made) instead of creating its container anew, and so does the one after.
#[test]
fn detached_runs_in_a_row_take_sandboxes() {
    let d = daemon(&[]);
    let body = serde_json::json!({"Image": "busybox", "Cmd": ["sleep", "60"], "HostConfig": {"NetworkMode": "none"}});
    let mut ids = Vec::new();
    for _ in 0..3 {
        let r = d.api_json("POST", "/containers/create", &body);
        assert_eq!(r.status, 201, "{}", r.text());
        let id = r.json()["Id"].as_str().unwrap().to_owned();
        let r = d.api("POST", &format!("/containers/{id}/start"));
        assert_eq!(r.status, 204, "{}", r.text());
        ids.push(id);
    }
    assert_eq!(started_warm(&d, &ids[0]), Some(false), "first run cannot be warm");
    for id in &ids[1..] {
        assert_eq!(started_warm(&d, id), Some(true), "a run -d right after another did not take a sandbox:\n{}", d.log());
    }
    let mut rm = vec!["rm", "-f"];
    rm.extend(ids.iter().map(String::as_str));
    d.berth(&rm).ok();
}

#[test]
fn a_copy_into_a_container_created_on_a_sandbox_counts_at_its_start() {
    // A container on a sandbox has its process (argv, environment, the user's home)
    // worked out when it is created. A `cp` before its start — here a passwd that
    // gives its user a home — must count all the same: dockerd resolves the user at
    // the start. The attach of `start -a` is connected to the sandbox's shim before
    // the start.
    let d = daemon(&[]);
    let args = ["-u", "4242", "busybox", "sh", "-c", "echo home=$HOME"];
    let first = d.berth(&[&["run", "-d"][..], &args].concat()).ok().trim().to_owned();
    d.berth(&["wait", &first]).ok();
    assert_eq!(d.berth(&["logs", &first]).ok().trim(), "home=/");
    assert!(wait_until(Duration::from_secs(20), || sandbox_ready(&d, 1)), "no sandbox was made");
    let id = d.berth(&[&["create"][..], &args].concat()).ok().trim().to_owned();
    let host = berth_e2e::unique_tmp_dir("berth-warm-cp");
    let passwd = host.join("passwd");
    fs::write(&passwd, "root:x:0:0:root:/root:/bin/sh\nu:x:4242:4242::/home/u:/bin/sh\n").unwrap();
    d.berth(&["cp", passwd.to_str().unwrap(), &format!("{id}:/etc/passwd")]).ok();
    assert_eq!(d.berth(&["start", "-a", &id]).ok().trim(), "home=/home/u");
    assert_eq!(started_warm(&d, &id), Some(true), "the container did not start on the sandbox:\n{}", d.log());
    // Without the copy, the process worked out at the create is the one that runs.
    assert!(wait_until(Duration::from_secs(20), || sandbox_ready(&d, 2)), "no second sandbox was made");
    let again = d.berth(&[&["create"][..], &args].concat()).ok().trim().to_owned();
    assert_eq!(d.berth(&["start", "-a", &again]).ok().trim(), "home=/");
    assert_eq!(started_warm(&d, &again), Some(true), "{}", d.log());
    let _ = fs::remove_dir_all(host);
}

/// The network namespaces berthd holds ready (by descriptor: `net:[inode]` links other
/// than its own namespace's).
fn pooled_netns(d: &Daemon) -> Vec<String> {
    let own = fs::read_link(format!("/proc/{}/ns/net", d.pid())).unwrap_or_default().to_string_lossy().into_owned();
    fs::read_dir(format!("/proc/{}/fd", d.pid()))
        .map(|r| {
            r.flatten()
                .filter_map(|e| fs::read_link(e.path()).ok())
                .map(|t| t.to_string_lossy().into_owned())
                .filter(|t| t.starts_with("net:[") && *t != own)
                .collect()
        })
        .unwrap_or_default()
}

/// Network namespaces pinned under the daemon's exec root (bind mounts of nsfs).
fn pinned_netns(d: &Daemon) -> usize {
    let root = d.exec_root().to_string_lossy().into_owned();
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| l.contains(" nsfs ") && l.split_whitespace().nth(4).is_some_and(|m| m.starts_with(&root)))
        .count()
}

/// A container without a warm sandbox gets a network namespace made ahead of time
/// (the pool): a fresh one each time — what one container did to its namespace is
/// never seen by the next — and the pool holds them by descriptor only, so nothing
/// stays pinned after a `kill -9` or a stop.
#[test]
fn pooled_network_namespaces_are_fresh_per_container_and_go_with_the_daemon() {
    let mut d = daemon(&["--warm-containers", "0"]);
    assert!(wait_until(Duration::from_secs(10), || pooled_netns(&d).len() == 1), "no pooled namespace");
    let first = pooled_netns(&d)[0].clone();

    let out = d
        .berth(&[
            "run", "--rm", "--cap-add", "NET_ADMIN", "busybox", "sh", "-c",
            "readlink /proc/self/ns/net; ip addr add 10.9.9.9/32 dev lo && ip link set lo mtu 1300 && ip addr show lo",
        ])
        .ok()
        .to_owned();
    assert_eq!(out.lines().next(), Some(first.as_str()), "the container did not get the pooled namespace:\n{out}");
    assert!(out.contains("10.9.9.9") && out.contains("mtu 1300"), "{out}");

    // The next container gets another namespace, as fresh as one made on demand.
    assert!(wait_until(Duration::from_secs(10), || pooled_netns(&d).len() == 1), "the pool was not refilled");
    let second = pooled_netns(&d)[0].clone();
    let out = d.berth(&["run", "--rm", "busybox", "sh", "-c", "readlink /proc/self/ns/net; ip addr show lo"]).ok().to_owned();
    assert_eq!(out.lines().next(), Some(second.as_str()), "{out}");
    assert!(!out.contains("10.9.9.9") && out.contains("mtu 65536") && out.contains("127.0.0.1") && out.contains("UP"), "{out}");

    // Detached: the namespace is pinned while the container runs and unpinned at rm
    // (a `--rm` container's is unpinned by the clean-up queue after its exit: waited for).
    let id = d.berth(&["run", "-d", "busybox", "sleep", "60"]).ok().trim().to_owned();
    assert!(wait_until(Duration::from_secs(10), || pinned_netns(&d) == 1), "{}", pinned_netns(&d));
    d.berth(&["rm", "-f", &id]).ok();
    // The clean-up unpins the namespace, then removes its file: both are waited for.
    let netns_files = |d: &Daemon| fs::read_dir(d.exec_root().join("netns")).map(|r| r.count()).unwrap_or(0);
    assert!(
        wait_until(Duration::from_secs(10), || pinned_netns(&d) == 0 && netns_files(&d) == 0),
        "{} pinned, {} files",
        pinned_netns(&d),
        netns_files(&d)
    );

    assert!(wait_until(Duration::from_secs(10), || pooled_netns(&d).len() == 1));
    d.crash();
    assert_eq!(pinned_netns(&d), 0, "a pooled namespace was pinned on disk");
    assert_eq!(netns_files(&d), 0);
    d.relaunch();
    assert!(wait_until(Duration::from_secs(10), || pooled_netns(&d).len() == 1), "no pooled namespace after a restart");
    assert_eq!(d.berth(&["run", "--rm", "busybox", "echo", "ok"]).ok(), "ok\n");
    d.stop();
    assert_eq!(pinned_netns(&d), 0);
}

/// The cgroup pool's entries by name, each with the inode of its memory hierarchy
/// directory (kernfs keeps a directory's inode across a rename).
fn pooled_cgroup_inodes(d: &Daemon) -> std::collections::BTreeMap<String, u64> {
    use std::os::unix::fs::MetadataExt;
    berth_e2e::pooled_cgroups(d.pid())
        .into_iter()
        .filter(|p| p.starts_with("/sys/fs/cgroup/memory/"))
        .filter_map(|p| Some((p.file_name()?.to_str()?.to_owned(), fs::metadata(&p).ok()?.ino())))
        .collect()
}

/// On a cgroup v1 host a container's cgroup is one made ahead of time and renamed to
/// its id: the container's processes are in it, it is as fresh as one made on demand
/// (a limit one container had is not the next one's), and the pool goes with the
/// daemon: a stop removes it; a `kill -9` leaves it for the next start, which removes
/// it before making its own.
#[test]
fn pooled_cgroups_are_fresh_per_container_and_go_with_the_daemon() {
    let v2 = fs::read_to_string("/sys/fs/cgroup/cgroup.controllers").is_ok_and(|c| !c.trim().is_empty());
    if v2 || !std::path::Path::new("/sys/fs/cgroup/memory/").is_dir() {
        eprintln!("skipped: not a cgroup v1 host (no pool there)");
        return;
    }
    let mut d = daemon(&["--warm-containers", "0"]);
    assert!(wait_until(Duration::from_secs(10), || pooled_cgroup_inodes(&d).len() == 2), "no pool: {:?}", pooled_cgroup_inodes(&d));
    // every managed hierarchy has each entry
    let per_name = berth_e2e::pooled_cgroups(d.pid()).len() / 2;
    assert!(per_name >= 3, "{:?}", berth_e2e::pooled_cgroups(d.pid()));
    let pooled: Vec<u64> = pooled_cgroup_inodes(&d).into_values().collect();

    let id = d.berth(&["run", "-d", "--name", "limited", "-m", "64m", "--pids-limit", "7", "busybox", "sleep", "60"]).ok().trim().to_owned();
    let cg = std::path::Path::new("/sys/fs/cgroup/memory/berth").join(&id);
    let ino = std::os::unix::fs::MetadataExt::ino(&fs::metadata(&cg).unwrap());
    assert!(pooled.contains(&ino), "the container's cgroup {} is not a pooled one ({pooled:?})", cg.display());
    assert_eq!(fs::read_to_string(cg.join("memory.limit_in_bytes")).unwrap().trim(), "67108864");
    let pid = d.berth(&["inspect", "-f", "{{.State.Pid}}", &id]).ok().trim().to_owned();
    assert!(fs::read_to_string(cg.join("cgroup.procs")).unwrap().lines().any(|l| l == pid), "the init is not in its cgroup");
    assert!(wait_until(Duration::from_secs(10), || pooled_cgroup_inodes(&d).len() == 2), "the pool was not refilled");
    d.berth(&["rm", "-f", "limited"]).ok();
    assert!(!cg.exists(), "the container's cgroup outlived it");

    // The next container's cgroup: pooled as well, and without the limits of the last.
    let pooled: Vec<u64> = pooled_cgroup_inodes(&d).into_values().collect();
    let out = d
        .berth(&["run", "--rm", "busybox", "sh", "-c", "stat -c %i /sys/fs/cgroup/memory; cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max"])
        .ok()
        .to_owned();
    let lines: Vec<&str> = out.lines().collect();
    assert!(pooled.iter().any(|i| i.to_string() == lines[0]), "{out} not one of {pooled:?}");
    assert!(lines[1] != "67108864" && lines[2] == "max", "{out}");

    // kill -9: the pool stays until the next start (of any daemon) removes it.
    assert!(wait_until(Duration::from_secs(10), || pooled_cgroup_inodes(&d).len() == 2));
    let crashed = d.pid();
    d.crash();
    assert!(!berth_e2e::pooled_cgroups(crashed).is_empty(), "the crashed daemon's pool should still be there");
    d.relaunch();
    assert!(wait_until(Duration::from_secs(10), || pooled_cgroup_inodes(&d).len() == 2));
    assert!(berth_e2e::pooled_cgroups(crashed).is_empty(), "entries of the crashed daemon were kept");
    assert_eq!(d.berth(&["run", "--rm", "busybox", "echo", "ok"]).ok(), "ok\n");
    let pid = d.pid();
    d.stop();
    assert!(berth_e2e::pooled_cgroups(pid).is_empty(), "{:?}", berth_e2e::pooled_cgroups(pid));
}

/// `--cgroup-pool 0` makes no pool; containers' cgroups are made at their start.
#[test]
fn cgroup_pool_zero_turns_it_off() {
    let d = daemon(&["--cgroup-pool", "0"]);
    assert_eq!(d.berth(&["run", "--rm", "busybox", "echo", "ok"]).ok(), "ok\n");
    assert!(berth_e2e::pooled_cgroups(d.pid()).is_empty());
}

/// The spare snapshot directories under the data root.
fn spare_dirs(d: &Daemon) -> Vec<std::path::PathBuf> {
    fs::read_dir(d.data_root().join("snapshots"))
        .map(|r| r.flatten().filter(|e| e.file_name().to_string_lossy().starts_with(".spare-")).map(|e| e.path()).collect())
        .unwrap_or_default()
}

/// The spare snapshot directories' inodes.
fn spare_snapshots(d: &Daemon) -> Vec<u64> {
    use std::os::unix::fs::MetadataExt;
    let mut v: Vec<u64> = spare_dirs(d).iter().filter_map(|p| fs::metadata(p).ok().map(|m| m.ino())).collect();
    v.sort();
    v
}

/// A new container's snapshot directory is a spare made ahead of time (renamed), two
/// stay ready; a removed container's directory, emptied, becomes a spare again — and
/// nothing the container wrote is seen by the one that gets it next. A stop removes
/// them and a crash leaves them for the next start to replace.
#[test]
fn spare_snapshot_directories_are_taken_and_go_with_the_daemon() {
    use std::os::unix::fs::MetadataExt;
    let mut d = daemon(&["--warm-containers", "0"]);
    assert!(wait_until(Duration::from_secs(10), || spare_snapshots(&d).len() == 2), "{:?}", spare_snapshots(&d));
    let before = spare_snapshots(&d);
    let id = d.berth(&["run", "-d", "busybox", "sh", "-c", "echo hi > /f; chmod 700 /; sleep 60"]).ok().trim().to_owned();
    let snap = d.data_root().join("snapshots").join(&id);
    let ino = fs::metadata(&snap).unwrap().ino();
    assert!(before.contains(&ino), "{} is not a spare", snap.display());
    assert!(wait_until(Duration::from_secs(10), || fs::read_to_string(snap.join("upper/f")).is_ok_and(|s| s == "hi\n")));
    assert!(wait_until(Duration::from_secs(10), || spare_snapshots(&d).len() == 2), "not refilled");
    d.berth(&["rm", "-f", &id]).ok();
    // The directory is kept by the clean-up that follows the removal's answer.
    assert!(
        wait_until(Duration::from_secs(10), || !snap.exists() && spare_snapshots(&d).contains(&ino)),
        "the removed container's directory is not a spare: {:?}",
        spare_snapshots(&d)
    );
    // The next container gets that directory (the spare last kept is taken first), with
    // a new, empty upper directory: neither the file nor the root's mode is there.
    let next_id = d
        .berth(&["run", "-d", "busybox", "sh", "-c", "stat -c %a /; test -e /f || echo no-f; sleep 60"])
        .ok()
        .trim()
        .to_owned();
    let next = d.data_root().join("snapshots").join(&next_id);
    assert_eq!(fs::metadata(&next).unwrap().ino(), ino, "the next container did not get the kept directory");
    let logs = || d.berth(&["logs", &next_id]).out().to_owned();
    assert!(wait_until(Duration::from_secs(10), || logs().lines().count() == 2), "{}", logs());
    assert_eq!(logs(), "755\nno-f");
    d.berth(&["rm", "-f", &next_id]).ok();
    assert!(wait_until(Duration::from_secs(10), || !next.exists()), "{} outlived its container", next.display());

    // Marked, so that what the next start makes can be told apart (inode numbers may
    // be reused).
    for s in spare_dirs(&d) {
        fs::write(s.join("work/marker"), "").unwrap();
    }
    d.crash();
    // The two made ahead, and up to two more kept from removed containers (twice the
    // depth, `SpareDirs::recycle`).
    let left = spare_dirs(&d).len();
    assert!((2..=4).contains(&left), "a crash should leave them: {left}");
    d.relaunch();
    assert!(wait_until(Duration::from_secs(10), || spare_snapshots(&d).len() == 2));
    assert!(spare_dirs(&d).iter().all(|s| !s.join("work/marker").exists()), "the crashed daemon's spares were kept");
    assert_eq!(d.berth(&["run", "--rm", "busybox", "echo", "ok"]).ok(), "ok\n");
    d.stop();
    assert!(spare_snapshots(&d).is_empty(), "{:?}", spare_snapshots(&d));
}

/// No sandbox is made ahead for a container that joins another's PID namespace: it
/// would wait in that namespace — a stranger in the other container's `ps` — and, its
/// shim reaping it only once started, it kept the kernel from reporting that
/// container's exit when it was killed (`rm -f` failed after 30 s).
#[test]
fn no_sandbox_waits_in_a_pid_namespace_it_shares() {
    let d = daemon(&[]);
    d.berth(&["run", "-d", "--name", "donor", "busybox", "sleep", "600"]).ok();
    for cli in Cli::ALL {
        for _ in 0..2 {
            d.cli(cli, &["run", "--rm", "--pid", "container:donor", "busybox", "true"]).ok();
        }
    }
    let ps = d.berth(&["exec", "donor", "ps", "-o", "comm"]).ok().to_owned();
    assert_eq!(ps.split_whitespace().collect::<Vec<_>>(), ["COMMAND", "sleep", "ps"], "{ps}");
    let t = std::time::Instant::now();
    d.berth(&["rm", "-f", "donor"]).ok();
    assert!(t.elapsed() < Duration::from_secs(10), "rm -f took {:?}", t.elapsed());
}

/// A sandbox whose init was killed while it waited (by hand, by the OOM killer) is
/// passed over: the next run makes its container anew instead of failing ("launch:
/// Broken pipe"), and a sandbox is made again after it.
#[test]
fn a_sandbox_killed_while_it_waits_is_not_used() {
    let d = daemon(&[]);
    d.berth(&["run", "--rm", "busybox", "true"]).ok();
    assert!(wait_until(Duration::from_secs(20), || sandbox_ready(&d, 1)), "no sandbox was made");
    let root = d.exec_root().to_string_lossy().into_owned();
    let inits: Vec<i32> = fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| {
            let comm = fs::read_to_string(e.path().join("comm")).unwrap_or_default();
            let cmd = fs::read(e.path().join("cmdline")).unwrap_or_default();
            comm.trim() == "youki:[2:INIT]" && String::from_utf8_lossy(&cmd).contains(&root)
        })
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect();
    assert_eq!(inits.len(), 1, "one sandbox's init waits: {inits:?}");
    // SAFETY: kill(2) of a pid read from /proc just now.
    assert_eq!(unsafe { libc::kill(inits[0], libc::SIGKILL) }, 0);
    for cli in Cli::ALL {
        let o = d.cli(cli, &["run", "--rm", "busybox", "echo", "made-anew"]);
        assert_eq!((o.code, o.stdout.as_str()), (0, "made-anew\n"), "{}: {o}", cli.name());
    }
    // The dead sandbox was destroyed (its init reaped, its shim gone), and others made.
    let dead = format!("/proc/{}", inits[0]);
    assert!(wait_until(Duration::from_secs(20), || !std::path::Path::new(&dead).exists()), "the dead sandbox was left");
    assert!(d.log().matches("warm sandbox ready").count() >= 2, "no sandbox was made after");
}

/// A sandbox's init waits for its start signal, for as long as the sandbox is not
/// used: if its shim is killed meanwhile, the init goes with it instead of waiting for
/// good (holding its namespaces, cgroup and mounts). A started container's process
/// is not tied to its shim's life by the kernel: with the daemon down (nothing to
/// clean up after the shim), it outlives its shim; the daemon's next start ends it.
#[test]
fn a_sandbox_init_dies_with_its_shim_and_a_started_process_does_not() {
    let mut d = daemon(&[]);
    let id = d.berth(&["run", "-d", "busybox", "sleep", "60"]).ok().trim().to_owned();
    let pid = d.inspect(&id)["State"]["Pid"].as_u64().unwrap() as u32;
    let started_shim = ppid(pid);
    assert!(wait_until(Duration::from_secs(20), || d.log().matches("warm sandbox ready").count() >= 1), "no sandbox was made");
    // The sandbox's init: a fork of its shim, named as libcontainer names it.
    let inits = procs(&d, "youki:[2:INIT]");
    assert_eq!(inits.len(), 1, "{inits:?}");
    let (init, shim) = (inits[0], ppid(inits[0]));
    assert_ne!(shim, started_shim);
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(shim as i32), nix::sys::signal::SIGKILL).unwrap();
    assert!(
        wait_until(Duration::from_secs(10), || !std::path::Path::new(&format!("/proc/{init}")).exists()),
        "the sandbox's init outlived its shim"
    );
    d.stop();
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(started_shim as i32), nix::sys::signal::SIGKILL).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert!(running(pid), "the container's process died with its shim");
    d.relaunch();
    assert_eq!(d.inspect(&id)["State"]["Status"], "exited");
    assert!(wait_until(Duration::from_secs(5), || !running(pid)), "the container's process runs on");
}

/// Whether `pid` is a process that has not exited (a zombie has).
fn running(pid: u32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|s| s.rsplit(')').next().is_some_and(|rest| !rest.trim_start().starts_with('Z')))
}
