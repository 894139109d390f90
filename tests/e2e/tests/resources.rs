//! Limits hold: an OOM kill is reported, a fork bomb stops at the pids limit, --cpus
//! caps CPU time, `update` changes a running container's limits.

use std::time::Duration;

use berth_e2e::{Cli, Daemon};

/// cgroup v1 or v2 path inside the container (the mounts are read-only but readable).
const MEM_LIMIT: &str = "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max";

#[test]
fn oom_kill_is_reported() {
    let d = Daemon::start();
    for cli in Cli::ALL {
        let n = format!("oom-{}", cli.name());
        let o = d.cli(cli, &["run", "--name", &n, "-m", "32m", "busybox", "sh", "-c", "x=$(head -c 64000000 /dev/zero | tr '\\0' a); echo ${#x}"]);
        assert_eq!(o.code, 137, "{o}");
        let st = d.inspect(&n)["State"].clone();
        assert_eq!((st["OOMKilled"].as_bool(), st["ExitCode"].as_i64()), (Some(true), Some(137)), "{st}");
        let ev = d.docker(&["events", "--since", "0", "--until", &now(), "--filter", &format!("container={n}"), "--format", "{{.Action}}"]);
        let actions: Vec<&str> = ev.ok().lines().collect();
        assert!(actions.ends_with(&["oom", "die"]), "{actions:?}");
    }
    // Without a kill, it is false (and -m gives swap as much again, as dockerd).
    let o = d.berth(&["run", "--name", "fine", "-m", "32m", "busybox", "true"]);
    assert_eq!(o.code, 0);
    let i = d.inspect("fine");
    assert_eq!(i["State"]["OOMKilled"], false);
    assert_eq!(i["HostConfig"]["MemorySwap"], 64 * 1024 * 1024);
}

#[test]
fn pids_limit_stops_a_fork_bomb_and_cpus_caps_cpu_time() {
    let d = Daemon::start();
    // Builtins only once the limit is reached (no fork is left for anything else).
    let bomb = "(for i in $(seq 40); do sleep 3 & done) 2>/dev/null; \
                read n < /sys/fs/cgroup/pids/pids.current 2>/dev/null || read n < /sys/fs/cgroup/pids.current; echo $n";
    let o = d.berth(&["run", "--rm", "--pids-limit", "20", "busybox", "sh", "-c", bomb]);
    let procs: i32 = o.stdout.trim().parse().unwrap_or_else(|_| panic!("{o}"));
    assert!((10..=20).contains(&procs), "pids limit not enforced: {procs} processes ({o})");
    // Half a core for 3 s of spinning: about 1.5 s of CPU time.
    let spin = "timeout 3 sh -c 'while :; do :; done'; \
                cat /sys/fs/cgroup/cpuacct/cpuacct.usage 2>/dev/null || awk '/usage_usec/ {print $2 * 1000}' /sys/fs/cgroup/cpu.stat";
    let o = d.berth(&["run", "--rm", "--cpus", "0.5", "busybox", "sh", "-c", spin]);
    let ns: f64 = o.ok().trim().parse().unwrap();
    let secs = ns / 1e9;
    assert!((1.0..2.2).contains(&secs), "CPU time {secs:.2}s for 3 s at --cpus 0.5");
}

#[test]
fn update_changes_a_running_containers_limits() {
    let d = Daemon::start();
    d.berth(&["run", "-d", "--name", "upd", "-m", "32m", "busybox", "sleep", "600"]).ok();
    assert_eq!(d.berth(&["exec", "upd", "sh", "-c", MEM_LIMIT]).ok().trim(), "33554432");
    // 48 MiB do not fit in 32.
    let alloc = "x=$(head -c 48000000 /dev/zero | tr '\\0' a); echo ${#x}";
    assert_eq!(d.berth(&["exec", "upd", "sh", "-c", alloc]).code, 137);
    let o = d.docker(&["update", "-m", "128m", "upd"]);
    assert!(o.code != 0 && o.stderr.contains("Memory limit should be smaller than already set memoryswap limit"), "{o}");
    // No warnings: dockerd's null, not an empty list.
    let r = d.api_json("POST", "/v1.41/containers/upd/update", &serde_json::json!({"CpuShares": 512}));
    assert_eq!((r.status, r.json()), (200, serde_json::json!({"Warnings": null})));
    // The update's own values are checked before they meet the container's.
    let o = d.docker(&["update", "-m", "1000", "upd"]);
    assert!(o.code != 0 && o.stderr.contains("Minimum memory limit allowed is 6MB"), "{o}");
    for cli in Cli::ALL {
        d.cli(cli, &["update", "-m", "96m", "--memory-swap", "192m", "--pids-limit", "50", "--restart", "on-failure:3", "upd"]).ok();
    }
    assert_eq!(d.berth(&["exec", "upd", "sh", "-c", MEM_LIMIT]).ok().trim(), "100663296");
    assert_eq!(d.berth(&["exec", "upd", "sh", "-c", alloc]).ok().trim(), "48000000");
    let hc = d.inspect("upd")["HostConfig"].clone();
    assert_eq!((hc["Memory"].as_i64(), hc["PidsLimit"].as_i64()), (Some(100663296), Some(50)));
    assert_eq!(hc["RestartPolicy"]["Name"], "on-failure");
    let o = d.docker(&["update", "--cpus", "0.5", "--cpu-quota", "1000", "upd"]);
    assert!(o.code != 0 && o.stderr.contains("Conflicting options"), "{o}");
    let o = d.docker(&["update", "--restart", "always", "nope"]);
    assert!(o.code != 0 && o.stderr.contains("No such container"), "{o}");
    std::thread::sleep(Duration::from_millis(10));
}

fn now() -> String {
    (std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() + 1).to_string()
}

#[test]
fn cdi_devices_and_gpus_reach_the_container() {
    // A CDI spec written by the test for harmless devices: /dev/null under another
    // name, an env var, a read-only mount and a createRuntime hook on the host.
    let dir = berth_e2e::unique_tmp_dir("berth-cdi");
    let specs = dir.join("cdi");
    std::fs::create_dir_all(specs.join("..").join("shared")).unwrap();
    std::fs::create_dir_all(&specs).unwrap();
    std::fs::write(dir.join("shared/f"), "from the host\n").unwrap();
    let hook_out = dir.join("hook.out");
    std::fs::write(
        specs.join("fake.yaml"),
        format!(
            r#"cdiVersion: "0.6.0"
kind: berth.test/fake
devices:
  - name: one
    containerEdits:
      env: ["FAKE_DEVICE=one"]
      deviceNodes:
        - path: /dev/fake0
          hostPath: /dev/null
      mounts:
        - hostPath: {shared}
          containerPath: /opt/fake
          options: [ro, bind]
      hooks:
        - hookName: createRuntime
          path: /bin/sh
          args: [sh, -c, "echo hooked > {hook}"]
"#,
            shared = dir.join("shared").display(),
            hook = hook_out.display()
        ),
    )
    .unwrap();
    std::fs::write(
        specs.join("gpu.json"),
        r#"{"cdiVersion":"0.5.0","kind":"nvidia.com/gpu","devices":[{"name":"all","containerEdits":{"env":["GPUS=all"]}},{"name":"0","containerEdits":{"env":["GPUS=zero"]}}]}"#,
    )
    .unwrap();
    let d = Daemon::start_with_args(&["--cdi-spec-dir", specs.to_str().unwrap()]);
    d.import_busybox();
    assert_eq!(d.api("GET", "/v1.41/info").json()["CDISpecDirs"], serde_json::json!([specs.to_str().unwrap()]));
    let script = "test -c /dev/fake0 && echo $FAKE_DEVICE; cat /opt/fake/f; touch /opt/fake/x 2>/dev/null || echo read-only";
    for cli in Cli::ALL {
        let _ = std::fs::remove_file(&hook_out);
        let o = d.cli(cli, &["run", "--rm", "--device", "berth.test/fake=one", "busybox", "sh", "-c", script]);
        assert_eq!(o.stdout, "one\nfrom the host\nread-only\n", "{}: {o}", cli.name());
        assert_eq!(std::fs::read_to_string(&hook_out).unwrap_or_default(), "hooked\n", "the hook ran on the host");
        let o = d.cli(cli, &["run", "--rm", "--gpus", "all", "busybox", "sh", "-c", "echo $GPUS"]);
        assert_eq!(o.stdout, "all\n", "{}: {o}", cli.name());
        let o = d.cli(cli, &["run", "--rm", "--gpus", "1", "busybox", "sh", "-c", "echo $GPUS"]);
        assert_eq!(o.stdout, "zero\n", "{}: {o}", cli.name());
        let o = d.cli(cli, &["run", "--rm", "--device", "berth.test/fake=nope", "busybox", "true"]);
        assert_eq!(o.code, 125, "{o}");
        assert!(o.stderr.contains("unresolvable CDI devices berth.test/fake=nope"), "{o}");
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// Whether some cgroup hierarchy carries `favordynmods` (the setting is the kernel's,
/// global, whichever hierarchy shows it).
fn favordynmods_on() -> bool {
    std::fs::read_to_string("/proc/self/mountinfo").unwrap().lines().any(|l| {
        let post = l.split_once(" - ").map_or("", |(_, p)| p);
        let mut f = post.split(' ');
        let fstype = f.next().unwrap_or("");
        let opts = f.nth(1).unwrap_or("");
        fstype.starts_with("cgroup") && opts.split(',').any(|o| o == "favordynmods")
    })
}

#[test]
fn the_daemon_makes_joining_cgroups_cheap_unless_told_not_to() {
    // `--cgroup-favordynmods=false` is taken and changes nothing itself.
    let off = Daemon::start_with_args(&["--cgroup-favordynmods=false"]);
    assert!(!off.log().contains("favordynmods turned on"), "{}", off.log());
    let d = Daemon::start();
    assert!(favordynmods_on(), "no cgroup hierarchy has favordynmods after berthd started:\n{}", d.log());
    // Containers start and keep their limits with it.
    d.import_busybox();
    let out = d.berth(&["run", "--rm", "-m", "64m", "busybox", "sh", "-c", MEM_LIMIT]).ok().trim().to_owned();
    assert_eq!(out, "67108864");
}

/// Mount points under `dir` in a mountinfo text.
fn mounts_under(mountinfo: &str, dir: &std::path::Path) -> usize {
    let dir = dir.to_string_lossy();
    mountinfo.lines().filter(|l| l.split(' ').nth(4).is_some_and(|m| m.starts_with(&*dir))).count()
}

fn shim_of(d: &Daemon, id: &str) -> u32 {
    let init = d.inspect(id)["State"]["Pid"].as_u64().unwrap();
    let stat = std::fs::read_to_string(format!("/proc/{init}/stat")).unwrap();
    stat.rsplit(')').next().unwrap().split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Each container's shim (and so its runtime and init) works in a mount namespace
/// without the other containers' mounts (the exec root's `c` and `netns` islands are
/// left out, its own root filesystem and network namespace put back): creating a
/// container does not get slower with every container running. Nothing of it reaches
/// the host's mount table, and the containers are what they were.
#[test]
fn a_container_is_created_without_the_other_containers_mounts() {
    let d = Daemon::start();
    d.import_busybox();
    let ids: Vec<String> =
        (0..6).map(|i| d.berth(&["run", "-d", "-v", &format!("/data{i}"), "busybox", "sleep", "600"]).ok().trim().to_owned()).collect();
    let host = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let c = d.exec_root().join("c");
    let netns = d.exec_root().join("netns");
    // the islands themselves, and each container's root filesystem and namespace
    assert!(mounts_under(&host, &c) > ids.len(), "{host}");
    assert_eq!(mounts_under(&host, &netns), 1 + ids.len(), "{host}");

    let last = ids.last().unwrap();
    let shim = std::fs::read_to_string(format!("/proc/{}/mountinfo", shim_of(&d, last))).unwrap();
    let own = c.join(last).join("rootfs");
    assert_eq!(mounts_under(&shim, &c), 1, "the shim sees other containers' mounts:\n{shim}");
    assert_eq!(mounts_under(&shim, &own), 1, "{shim}");
    assert_eq!(mounts_under(&shim, &netns), 1, "{shim}");
    assert_eq!(mounts_under(&shim, &netns.join(last)), 1, "{shim}");
    // The host still has every container's mounts, and every container works: its
    // files, its anonymous volume, its network namespace, exec.
    let now = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    for id in &ids {
        assert_eq!(mounts_under(&now, &c.join(id).join("rootfs")), 1, "{id} lost its rootfs mount in the host's table");
        assert_eq!(mounts_under(&now, &netns.join(id)), 1);
        let out = d.berth(&["exec", id, "sh", "-c", "echo hi > /tmp/f && cat /tmp/f && ls / | grep -c data && ip addr show lo | grep -c 127.0.0.1"]).ok().to_owned();
        assert_eq!(out, "hi\n1\n1\n", "{id}");
    }
    // A container joining another's network namespace gets that namespace back in its
    // shim's view too.
    let out = d.berth(&["run", "--rm", "--network", &format!("container:{}", ids[0]), "busybox", "readlink", "/proc/self/ns/net"]).ok().to_owned();
    let first = d.berth(&["exec", &ids[0], "readlink", "/proc/self/ns/net"]).ok().to_owned();
    assert_eq!(out, first);
    d.berth(&["rm", "-f", &ids[0]]).ok();
    // Its mounts go with the removal's clean-up, which follows the answer.
    let gone = || {
        let after = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        mounts_under(&after, &c.join(&ids[0])) == 0 && mounts_under(&after, &netns.join(&ids[0])) == 0
    };
    assert!(berth_e2e::wait_until(Duration::from_secs(10), gone), "{}", std::fs::read_to_string("/proc/self/mountinfo").unwrap());
}

/// cgroup v1: new cpuset cgroups under berth's parent copy its CPUs and memory nodes
/// when made (`cgroup.clone_children`), so the runtime writes none and the kernel
/// rebuilds no scheduler domains per container; `--cpuset-cpus` still applies.
#[test]
fn cpuset_cgroups_start_with_their_parents_cpus() {
    let parent = std::path::Path::new("/sys/fs/cgroup/cpuset/berth");
    let d = Daemon::start();
    if !std::path::Path::new("/sys/fs/cgroup/cpuset/cpuset.cpus").exists() {
        eprintln!("no cgroup v1 cpuset hierarchy here: nothing to check");
        return;
    }
    assert_eq!(std::fs::read_to_string(parent.join("cgroup.clone_children")).unwrap().trim(), "1");
    let all = std::fs::read_to_string(parent.join("cpuset.cpus")).unwrap().trim().to_owned();
    assert!(!all.is_empty());
    d.import_busybox();
    let cpus = "cat /sys/fs/cgroup/cpuset/cpuset.cpus";
    assert_eq!(d.berth(&["run", "--rm", "busybox", "sh", "-c", cpus]).ok().trim(), all);
    assert_eq!(d.berth(&["run", "--rm", "--cpuset-cpus", "0", "busybox", "sh", "-c", cpus]).ok().trim(), "0");
}
