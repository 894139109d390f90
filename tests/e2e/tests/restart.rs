//! `kill -9` of berthd: containers keep running, logs stay complete, control comes back.

use std::time::Duration;

use berth_e2e::{wait_until, Cli, Daemon};

const TICKER: &str =
    "trap 'exit 0' TERM; i=0; while true; do echo line$i; i=$((i+1)); sleep 0.1; done";

/// `line0 … lineN` without gaps or repeats; returns N+1.
#[track_caller]
fn contiguous(stdout: &str) -> usize {
    let lines: Vec<&str> = stdout.lines().collect();
    for (i, l) in lines.iter().enumerate() {
        assert_eq!(
            *l,
            format!("line{i}"),
            "log has a gap or repeat at line {i}:\n{stdout}"
        );
    }
    lines.len()
}

#[test]
fn running_container_survives_daemon_kill9() {
    let mut d = Daemon::start();
    let id = d
        .berth(&[
            "run", "-d", "--name", "keeper", "busybox", "sh", "-c", TICKER,
        ])
        .ok()
        .trim()
        .to_string();
    assert!(wait_until(Duration::from_secs(10), || d
        .berth(&["logs", "keeper"])
        .stdout
        .contains("line3\n")));
    let pid = d.inspect("keeper")["State"]["Pid"].as_i64().unwrap();
    assert!(pid > 0);

    d.crash();
    // the container goes on while the daemon is down
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "container process died with the daemon"
    );
    d.relaunch();

    // still running, same process
    let c = d.inspect("keeper");
    assert_eq!(c["State"]["Status"], "running", "{c}");
    assert_eq!(c["State"]["Pid"].as_i64(), Some(pid));
    assert_eq!(c["Id"], id.as_str());
    for cli in Cli::ALL {
        let o = d.cli(cli, &["ps", "-q", "--no-trunc"]);
        assert_eq!(o.ok().trim(), id, "{}: ps after restart: {o}", cli.name());
    }

    // logs are complete: before, during (daemon down) and after the restart
    let n0 = contiguous(&d.berth(&["logs", "keeper"]).stdout);
    assert!(n0 >= 6, "lines from the downtime are missing: only {n0}");
    assert!(
        wait_until(Duration::from_secs(10), || contiguous(
            &d.berth(&["logs", "keeper"]).stdout
        ) >= n0 + 5),
        "no new log lines after restart"
    );
    for cli in Cli::ALL {
        let o = d.cli(cli, &["logs", "keeper"]);
        assert!(contiguous(&o.stdout) >= n0 + 5, "{}: {o}", cli.name());
    }
    // and logs -f follows again
    let mut f = d.spawn(Cli::Berth, &["logs", "-f", "keeper"]);
    let target = format!("line{}", n0 + 15);
    assert!(
        f.wait_for_line(Duration::from_secs(10), |l| l == target)
            .is_some(),
        "logs -f after restart"
    );
    f.kill();

    // control works: exec and stop
    let o = d.berth(&["exec", "keeper", "echo", "exec-ok"]);
    assert_eq!((o.code, o.stdout.as_str()), (0, "exec-ok\n"), "{o}");
    let o = d.berth(&["stop", "keeper"]);
    assert_eq!(o.code, 0, "{o}");
    let c = d.inspect("keeper");
    assert_eq!(c["State"]["Status"], "exited");
    assert_eq!(c["State"]["ExitCode"], 0);
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists() || proc_is_zombie(pid));
    d.berth(&["rm", "keeper"]).ok();
}

fn proc_is_zombie(pid: i64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            s.rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z')
        })
        .unwrap_or(true)
}

#[test]
fn container_exiting_while_daemon_is_down_is_seen_as_exited() {
    let mut d = Daemon::start();
    d.berth(&[
        "run",
        "-d",
        "--name",
        "shortlived",
        "busybox",
        "sh",
        "-c",
        "echo bye; sleep 0.5; exit 6",
    ])
    .ok();
    d.crash();
    std::thread::sleep(Duration::from_millis(1200));
    d.relaunch();
    assert!(
        wait_until(Duration::from_secs(10), || d.inspect("shortlived")["State"]
            ["Status"]
            == "exited"),
        "{}",
        d.inspect("shortlived")
    );
    let c = d.inspect("shortlived");
    assert_eq!(c["State"]["ExitCode"], 6, "{c}");
    for cli in Cli::ALL {
        let o = d.cli(cli, &["logs", "shortlived"]);
        assert_eq!(o.stdout, "bye\n", "{o}");
        let o = d.cli(cli, &["ps", "-a"]);
        assert!(
            o.stdout
                .lines()
                .any(|l| l.ends_with("shortlived") && l.contains("Exited (6)")),
            "{o}"
        );
    }
    // a stopped container can be started again after the restart
    let o = d.berth(&["start", "-a", "shortlived"]);
    assert_eq!((o.code, o.stdout.as_str()), (6, "bye\n"), "{o}");
}

/// A running container whose shim cannot be reached after a crash (here its socket is
/// gone, as when the exec root is wiped under it) is recorded as exited, and nothing
/// of it runs on: its shim and its processes are killed, its cgroup goes.
#[test]
fn a_container_whose_shim_is_unreachable_is_ended_at_the_next_start() {
    let mut d = Daemon::start();
    let id = d.berth(&["run", "-d", "busybox", "sleep", "600"]).ok().trim().to_owned();
    // A paused one too: its processes are frozen when the kill comes.
    let paused = d.berth(&["run", "-d", "busybox", "sleep", "600"]).ok().trim().to_owned();
    d.berth(&["pause", &paused]).ok();
    let pids: Vec<i64> = [&id, &paused].iter().map(|c| d.inspect(c)["State"]["Pid"].as_i64().unwrap()).collect();
    d.crash();
    let states: Vec<_> = [&id, &paused].iter().map(|c| d.exec_root().join("c").join(c)).collect();
    for state in &states {
        std::fs::remove_file(state.join("shim.sock")).unwrap();
    }
    d.relaunch();
    for c in [&id, &paused] {
        let c = d.inspect(c);
        assert_eq!((c["State"]["Status"].as_str(), c["State"]["ExitCode"].as_i64()), (Some("exited"), Some(255)), "{c}");
    }
    assert!(wait_until(Duration::from_secs(5), || pids.iter().all(|p| proc_is_zombie(*p))), "a container's process runs on");
    let shims = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| std::fs::read_link(e.path().join("fd/2")).is_ok_and(|p| states.iter().any(|s| p.starts_with(s))))
        .count();
    assert_eq!(shims, 0, "a shim runs on");
    d.berth(&["rm", &id, &paused]).ok();
}

/// A running container whose shim is killed while berthd runs (by hand, by the OOM
/// killer) is recorded as exited, and nothing of it runs on: its processes are killed
/// and its cgroup goes, so its restart policy starts one instance, never a second
/// beside the first, and `rm` leaves nothing behind.
#[test]
fn a_container_whose_shim_dies_is_ended_and_restarted_alone() {
    let d = Daemon::start();
    let id = d.berth(&["run", "-d", "busybox", "sleep", "600"]).ok().trim().to_owned();
    let again = d.berth(&["run", "-d", "--restart", "always", "busybox", "sleep", "600"]).ok().trim().to_owned();
    let pids: Vec<i64> = [&id, &again].iter().map(|c| d.inspect(c)["State"]["Pid"].as_i64().unwrap()).collect();
    for (c, pid) in [&id, &again].iter().zip(&pids) {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        let shim: i32 = stat.rsplit(')').next().unwrap().split_whitespace().nth(1).unwrap().parse().unwrap();
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(shim), nix::sys::signal::SIGKILL).unwrap();
        assert!(wait_until(Duration::from_secs(5), || proc_is_zombie(*pid)), "{c}'s process runs on without its shim");
    }
    assert!(wait_until(Duration::from_secs(5), || d.inspect(&id)["State"]["Status"] == "exited"));
    let c = d.inspect(&id);
    assert_eq!(c["State"]["ExitCode"], 255, "{c}");
    assert!(c["State"]["Error"].as_str().unwrap().contains("shim"), "{c}");
    assert!(wait_until(Duration::from_secs(5), || berth_e2e::cgroup_dirs(&id).is_empty()), "{:?}", berth_e2e::cgroup_dirs(&id));
    // The restarted one runs alone in its cgroup.
    assert!(wait_until(Duration::from_secs(10), || {
        let c = d.inspect(&again);
        c["RestartCount"] == 1 && c["State"]["Status"] == "running"
    }), "{}", d.inspect(&again));
    let pid = d.inspect(&again)["State"]["Pid"].as_i64().unwrap();
    let procs = std::fs::read_to_string(std::path::Path::new("/sys/fs/cgroup/pids/berth").join(&again).join("cgroup.procs"))
        .or_else(|_| std::fs::read_to_string(std::path::Path::new("/sys/fs/cgroup/berth").join(&again).join("cgroup.procs")))
        .unwrap_or_else(|e| panic!("{e}: {}", std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default()));
    assert_eq!(procs.trim(), pid.to_string());
    d.berth(&["rm", "-f", &id, &again]).ok();
    for c in [&id, &again] {
        assert!(wait_until(Duration::from_secs(5), || berth_e2e::cgroup_dirs(c).is_empty()), "{:?}", berth_e2e::cgroup_dirs(c));
    }
}

/// `--rm` containers are recorded without waiting for the disk (flushed within 100 ms);
/// a `kill -9` of berthd right after `run -d --rm` must still find the container
/// running afterwards, and its removal on exit still happens.
#[test]
fn rm_container_survives_daemon_kill9_right_after_run() {
    let mut d = Daemon::start();
    let id = d
        .berth(&["run", "-d", "--rm", "--name", "quick", "busybox", "sleep", "30"])
        .ok()
        .trim()
        .to_string();
    d.crash();
    d.relaunch();
    assert_eq!(d.inspect("quick")["State"]["Running"], true, "{}", d.log());
    assert_eq!(d.inspect("quick")["Id"], id.as_str());
    d.berth(&["stop", "-t", "1", "quick"]).ok();
    assert!(
        wait_until(Duration::from_secs(10), || d.container_ids().is_empty()),
        "--rm container not removed after stop"
    );
}

/// Restart policies as dockerd's restart manager applies them: back-off between
/// restarts, `restarting` in between (not removable without force), on-failure's
/// retry budget, stop and kill cancelling a restart, and what a daemon restart
/// starts again.
#[test]
fn restart_policies_back_off_and_obey_stop_kill_and_daemon_restart() {
    let mut d = Daemon::start();
    // on-failure:3 — three restarts, then it stays exited; a success is not restarted.
    d.berth(&["run", "-d", "--name", "fail3", "--restart", "on-failure:3", "busybox", "sh", "-c", "exit 3"]).ok();
    d.berth(&["run", "-d", "--name", "ok", "--restart", "on-failure", "busybox", "true"]).ok();
    assert!(wait_until(Duration::from_secs(15), || {
        let i = d.inspect("fail3");
        i["RestartCount"] == 3 && i["State"]["Status"] == "exited"
    }), "{}", d.inspect("fail3"));
    std::thread::sleep(Duration::from_millis(1000));
    assert_eq!(d.inspect("fail3")["RestartCount"], 3);
    assert_eq!(d.inspect("ok")["RestartCount"], 0);
    // The delays grow (100, 200, 400 ms ...): three restarts take a while.
    let started: Vec<String> = d.berth(&["events", "--since", "0", "--until", &now_plus(1), "--filter", "container=fail3", "--filter", "event=start", "--format", "{{.TimeNano}}"]).ok().lines().map(str::to_owned).collect();
    assert_eq!(started.len(), 4, "{started:?}");
    let t: Vec<i128> = started.iter().map(|s| s.parse().unwrap()).collect();
    assert!(t[3] - t[2] > t[2] - t[1] && t[3] - t[2] > 350_000_000, "no back-off: {t:?}");

    // always, exiting at once: seen restarting, which rm refuses without force.
    d.berth(&["run", "-d", "--name", "loop", "--restart", "always", "busybox", "sh", "-c", "sleep 0.3; exit 1"]).ok();
    assert!(wait_until(Duration::from_secs(10), || d.inspect("loop")["State"]["Restarting"] == true));
    let i = d.inspect("loop");
    assert_eq!((i["State"]["Running"].as_bool(), i["State"]["Status"].as_str()), (Some(true), Some("restarting")));
    let o = d.docker(&["rm", "loop"]);
    assert!(o.code != 0 && (o.stderr.contains("restarting container") || o.stderr.contains("running container")), "{o}");
    // stop ends it for good.
    d.docker(&["stop", "-t", "1", "loop"]).ok();
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(d.inspect("loop")["State"]["Status"], "exited");

    // kill cancels an always restart too; unless-stopped and always after a daemon
    // restart: always comes back, a stopped unless-stopped does not.
    d.berth(&["run", "-d", "--name", "alw", "--restart", "always", "busybox", "sleep", "600"]).ok();
    d.berth(&["run", "-d", "--name", "uls", "--restart", "unless-stopped", "busybox", "sleep", "600"]).ok();
    d.berth(&["run", "-d", "--name", "uls2", "--restart", "unless-stopped", "busybox", "sleep", "600"]).ok();
    d.docker(&["kill", "alw"]).ok();
    d.docker(&["stop", "-t", "0", "uls"]).ok();
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(d.inspect("alw")["State"]["Status"], "exited");
    d.restart();
    assert!(wait_until(Duration::from_secs(10), || d.inspect("alw")["State"]["Status"] == "running"));
    assert!(wait_until(Duration::from_secs(10), || d.inspect("uls2")["State"]["Status"] == "running"));
    assert_eq!(d.inspect("uls")["State"]["Status"], "exited");
    // `loop` exits every 0.3 s: between runs it is restarting, never exited.
    assert!(
        wait_until(Duration::from_secs(10), || d.inspect("loop")["State"]["Status"] == "running"),
        "always restarts on daemon start even after a stop"
    );
    for _ in 0..20 {
        assert_ne!(d.inspect("loop")["State"]["Status"], "exited", "an always container seen exited between runs");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn now_plus(secs: u64) -> String {
    (std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() + secs).to_string()
}

#[test]
fn a_second_daemon_on_the_same_data_root_is_refused() {
    let d = Daemon::start();
    let other = berth_e2e::unique_tmp_dir("berth-second");
    let o = berth_e2e::run_command(
        {
            let mut c = std::process::Command::new(berth_e2e::bin("berthd"));
            c.arg("--data-root")
                .arg(d.data_root())
                .arg("--exec-root")
                .arg(other.join("exec"))
                .arg("-H")
                .arg(format!("unix://{}", other.join("sock").display()))
                .env("RUST_BACKTRACE", "0");
            c
        },
        None,
        Duration::from_secs(20),
    );
    assert_eq!(o.code, 1, "{o}");
    assert!(o.stderr.contains("is in use by another berthd (pid"), "{o}");
    // the first one still serves
    assert!(d.berth(&["ps"]).success());
    std::fs::remove_dir_all(&other).ok();
}

/// The filesystem type of `p` (`stat -f`).
fn fs_type(p: &std::path::Path) -> String {
    let o = std::process::Command::new("stat").args(["-f", "-c", "%T"]).arg(p).output().unwrap();
    String::from_utf8_lossy(&o.stdout).trim().to_owned()
}

/// The exec root is runtime state: berthd keeps it on a tmpfs, mounting one when it is
/// on disk and empty (as here, where `/tmp` and `/run` are on disk). The mount outlives
/// a crash: the restarted daemon finds its containers' state there and stacks nothing
/// on it. An exec root on disk that is not empty is left where it is, said in the log.
#[test]
fn the_exec_root_is_a_tmpfs_that_outlives_a_crash() {
    let mut d = Daemon::start();
    let root = d.exec_root().to_owned();
    let on_disk = fs_type(root.parent().unwrap()) != "tmpfs";
    let tmpfs_mounts = |root: &std::path::Path| berth_e2e::mounts_under(root).iter().filter(|m| *m == root).count();
    assert_eq!(fs_type(&root), "tmpfs");
    assert_eq!(tmpfs_mounts(&root), usize::from(on_disk));

    d.berth(&["run", "-d", "--name", "keeper", "busybox", "sleep", "600"]).ok();
    let pid = d.inspect("keeper")["State"]["Pid"].as_i64().unwrap();
    d.crash();
    d.relaunch();
    assert_eq!(tmpfs_mounts(&root), usize::from(on_disk), "a second tmpfs over the first");
    let c = d.inspect("keeper");
    assert_eq!(c["State"]["Status"], "running", "{c}");
    assert_eq!(c["State"]["Pid"].as_i64(), Some(pid));
    assert_eq!(d.berth(&["exec", "keeper", "echo", "hi"]).ok(), "hi\n");
    d.berth(&["rm", "-f", "keeper"]).ok();
    if !on_disk {
        return;
    }

    // On disk and not empty: left there.
    d.crash();
    berth_e2e::unmount_under(&root);
    std::fs::write(root.join("left-by-someone"), "").unwrap();
    d.relaunch();
    assert_ne!(fs_type(&root), "tmpfs");
    assert!(d.log().contains("exec root left on disk"), "{}", d.log());
    assert_eq!(d.berth(&["run", "--rm", "busybox", "echo", "ok"]).ok(), "ok\n");
}

/// `rm -f` answers before its clean-up; a daemon killed right after, with the clean-up
/// queued or under way, leaves nothing of the removed containers once it is back (no
/// runtime state, mount, snapshot or container directory), and the directories of a
/// container without a record (a clean-up cut short after the runtime state went) go
/// too, while a kept container's stay.
#[test]
fn removals_cut_short_by_a_crash_are_finished_at_the_next_start() {
    let mut d = Daemon::start_with_args(&["--warm-containers", "0"]);
    d.import_busybox();
    let kept = d.berth(&["create", "busybox", "true"]).ok().trim().to_owned();
    let ids: Vec<String> = (0..12).map(|_| d.berth(&["run", "-d", "busybox", "sleep", "600"]).ok().trim().to_owned()).collect();
    let mut rm = vec!["rm", "-f"];
    rm.extend(ids.iter().map(String::as_str));
    d.berth(&rm).ok();
    d.crash();
    let orphan = "ab".repeat(32);
    std::fs::create_dir_all(d.data_root().join("snapshots").join(&orphan).join("upper")).unwrap();
    std::fs::create_dir_all(d.data_root().join("containers").join(&orphan)).unwrap();
    let (exec_root, data_root) = (d.exec_root().to_owned(), d.data_root().to_owned());
    let left = |id: &str| -> Vec<String> {
        let mut v: Vec<String> = [exec_root.join("c").join(id), data_root.join("snapshots").join(id), data_root.join("containers").join(id)]
            .into_iter()
            .filter(|p| p.exists())
            .map(|p| p.display().to_string())
            .collect();
        if std::fs::read_to_string("/proc/self/mountinfo").unwrap().contains(id) {
            v.push("a mount".into());
        }
        v
    };
    assert!(!left(&kept).is_empty());
    d.relaunch();
    for id in ids.iter().chain([&orphan]) {
        assert!(wait_until(Duration::from_secs(10), || left(id).is_empty()), "{id}: {:?}", left(id));
    }
    assert!(d.data_root().join("snapshots").join(&kept).exists(), "the kept container lost its snapshot");
    assert_eq!(d.berth(&["ps", "-aq", "--no-trunc"]).ok().trim(), kept);
    d.berth(&["rm", &kept]).ok();
}

/// A crash in the middle of requests leaves what they make for their own use: the
/// image mount of a build step's `RUN --mount=from=` with its snapshot, the mount of a
/// stopped container that `cp` or `export` reads, spool files under the data root's
/// `tmp/`. None of it is anyone's once berthd is back, and the next start removes it.
#[test]
fn what_requests_cut_short_made_for_themselves_goes_at_the_next_start() {
    let mut d = Daemon::start();
    d.import_busybox();
    let ctx = berth_e2e::dir_with(
        "crash-build",
        &[("Dockerfile", "FROM busybox\nRUN --mount=type=bind,from=busybox,source=/bin,target=/m sleep 600\n")],
    );
    let mut build = d.spawn(Cli::Berth, &["build", ctx.to_str().unwrap()]);
    let (exec_root, data_root) = (d.exec_root().to_owned(), d.data_root().to_owned());
    let build_dir = exec_root.join("build");
    let mounted_under = |dir: &std::path::Path| {
        let dir = format!("{}/", dir.display());
        std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
            .any(|l| l.split(' ').nth(4).is_some_and(|m| m.starts_with(&dir)))
    };
    let names = |dir: &std::path::Path, prefix: &str| -> Vec<String> {
        std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(prefix))
            .collect()
    };
    assert!(wait_until(Duration::from_secs(30), || mounted_under(&build_dir)), "the step's image is not mounted: {}", d.log());
    assert_eq!(names(&data_root.join("snapshots"), "build-mnt-").len(), 1);
    d.crash();
    build.kill();
    // What a `cp` from a stopped container and an upload in progress leave.
    let archive = exec_root.join("archive-00000000000000aa");
    std::fs::create_dir(&archive).unwrap();
    let o = std::process::Command::new("mount").args(["-t", "tmpfs", "tmpfs"]).arg(&archive).output().unwrap();
    assert!(o.status.success(), "{o:?}");
    std::fs::create_dir_all(data_root.join("tmp/run-mounts-00000000000000bb")).unwrap();
    std::fs::write(data_root.join("tmp/run-mounts-00000000000000bb/s0"), "secret").unwrap();
    std::fs::write(data_root.join("tmp/load-00000000000000cc"), "half an upload").unwrap();
    d.relaunch();
    assert!(!mounted_under(&build_dir), "the step's image mount is still there");
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mountinfo.contains(archive.to_str().unwrap()), "the cp mount is still there");
    assert_eq!(names(&build_dir, ""), Vec::<String>::new());
    assert!(!archive.exists());
    assert_eq!(names(&data_root.join("snapshots"), "build-mnt-"), Vec::<String>::new());
    assert_eq!(names(&data_root.join("tmp"), ""), Vec::<String>::new());
    // The build's step container is still a container (as dockerd keeps one); it goes as any other.
    for id in d.container_ids() {
        d.berth(&["rm", "-f", &id]).ok();
    }
    std::fs::remove_dir_all(&ctx).ok();
}

/// An upgrade replaces berth's binaries while containers run: a running container's
/// shim was started from a file that is gone (or holds another build), and execs in it
/// still work, before and after the daemon restarts on the new files.
#[test]
fn execs_work_after_the_shim_binary_is_replaced_under_a_running_container() {
    let dir = berth_e2e::unique_tmp_dir("berth-upgrade");
    let shim = dir.join("berth-shim");
    std::fs::copy(berth_e2e::bin("berth-shim"), &shim).unwrap();
    let mut d = Daemon::start_with_args(&["--shim", shim.to_str().unwrap()]);
    d.import_busybox();
    let o = d.berth(&["run", "-d", "--name", "up", "busybox", "sleep", "600"]);
    assert!(o.success(), "{o}\n{}", d.log());
    assert_eq!(d.berth(&["exec", "up", "echo", "before"]).out(), "before");
    // as a package manager does: a new file renamed over the old one
    let next = dir.join("berth-shim.new");
    std::fs::copy(berth_e2e::bin("berth-shim"), &next).unwrap();
    std::fs::rename(&next, &shim).unwrap();
    for cli in Cli::ALL {
        let o = d.cli(cli, &["exec", "up", "echo", "after"]);
        assert_eq!(o.out(), "after", "{}: {o}", cli.name());
    }
    d.restart();
    let o = d.docker(&["exec", "up", "echo", "restarted"]);
    assert_eq!(o.out(), "restarted", "{o}");
    d.berth(&["rm", "-f", "up"]);
    let _ = std::fs::remove_dir_all(&dir);
}
