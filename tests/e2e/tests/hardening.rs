//! Defences a container must not get around: its own limits, the daemon's
//! responsiveness, known escapes (CVE regression tests).

use berth_e2e::{Cli, Daemon};

/// Opens every file under /sys/fs/cgroup for writing (without writing: `: >` only
/// opens) and tries to create a child cgroup in each hierarchy; prints what worked.
const CGROUP_PROBE: &str = r#"
for f in $(find /sys/fs/cgroup -type f); do ( : > "$f" ) 2>/dev/null && echo "writable $f"; done
for d in /sys/fs/cgroup /sys/fs/cgroup/*; do mkdir "$d/berth-probe" 2>/dev/null && echo "mkdir $d"; done
echo files=$(find /sys/fs/cgroup -type f | wc -l)
"#;

fn files_probed(out: &str) -> usize {
    out.lines().find_map(|l| l.strip_prefix("files=")).and_then(|n| n.trim().parse().ok()).unwrap_or(0)
}

#[test]
fn a_container_cannot_lift_its_own_cgroup_limits() {
    let d = Daemon::start();
    let limits = ["--rm", "-m", "32m", "--pids-limit", "20", "--cpus", "0.5"];
    for cli in Cli::ALL {
        // Twice: the second run may take a warm sandbox, which must be as confined.
        for round in 0..2 {
            let mut args = vec!["run"];
            args.extend(limits);
            args.extend(["busybox", "sh", "-c", CGROUP_PROBE]);
            let o = d.cli(cli, &args);
            let out = o.ok();
            assert!(files_probed(out) > 20, "{} round {round}: the probe saw no cgroup files: {out}", cli.name());
            assert!(!out.contains("writable") && !out.contains("mkdir"), "{} round {round}: {out}", cli.name());
        }
        // Unconfined seccomp changes nothing about the mounts.
        let o = d.cli(
            cli,
            &["run", "--rm", "--security-opt", "seccomp=unconfined", "-m", "32m", "busybox", "sh", "-c", CGROUP_PROBE],
        );
        assert!(!o.ok().contains("writable"), "{}: unconfined: {o}", cli.name());
    }

    // The limits hold: the attempt to raise them fails and they read as set.
    let o = d.berth(&[
        "run", "--rm", "-m", "32m", "--pids-limit", "20", "busybox", "sh", "-c",
        "echo 1073741824 > /sys/fs/cgroup/memory/memory.limit_in_bytes; echo max > /sys/fs/cgroup/pids/pids.max; \
         cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max 2>/dev/null || \
         cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max",
    ]);
    assert_eq!(o.code, 0, "{o}");
    assert_eq!(o.stdout, "33554432\n20\n", "{o}");
    assert!(o.stderr.contains("Read-only file system"), "{o}");

    // exec joins the same mounts.
    d.berth(&["run", "-d", "--name", "cg", "-m", "32m", "busybox", "sleep", "60"]).ok();
    let o = d.berth(&["exec", "cg", "sh", "-c", CGROUP_PROBE]);
    assert!(files_probed(o.ok()) > 20 && !o.ok().contains("writable"), "exec: {o}");
    d.berth(&["rm", "-f", "cg"]).ok();

    // --privileged keeps them writable, as with Docker.
    let o = d.berth(&["run", "--rm", "--privileged", "busybox", "sh", "-c", "grep ' /sys/fs/cgroup' /proc/self/mountinfo"]);
    assert!(o.ok().lines().all(|l| l.split(' ').nth(5).is_some_and(|opts| opts.starts_with("rw"))), "{o}");

    // On cgroup v1 the shim builds the container's /sys/fs/cgroup as one tree in the
    // host's mount namespace for the moment of creation: the container sees one mount
    // per v1 hierarchy of the host, and no tree stays mounted on the host (a warm
    // sandbox made meanwhile may hold one for a few milliseconds).
    let host = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let v1 = host.lines().filter(|l| l.contains(" /sys/fs/cgroup/") && l.contains(" - cgroup ")).count();
    let o = d.berth(&["run", "--rm", "-m", "32m", "busybox", "grep", "-c", " /sys/fs/cgroup/", "/proc/self/mountinfo"]);
    if v1 > 0 {
        assert_eq!(o.ok().trim(), v1.to_string(), "{o}");
    }
    let tree = d.exec_root().join("c");
    let mounted = || std::fs::read_to_string("/proc/self/mountinfo").unwrap().lines().any(|l| l.contains(tree.to_str().unwrap()) && l.contains("/cgroupfs"));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while mounted() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(!mounted(), "a cgroup tree stayed mounted on the host");
}

/// CVE-2022-0492: with cgroup v1, a writable hierarchy root lets a container set a
/// `release_agent` that the host runs as root.
#[test]
fn cve_2022_0492_release_agent_is_not_writable() {
    let d = Daemon::start();
    let o = d.berth(&[
        "run", "--rm", "busybox", "sh", "-c",
        "for f in $(find /sys/fs/cgroup -name release_agent -o -name notify_on_release); do \
           ( : > $f ) 2>/dev/null && echo writable $f; done; \
         mkdir /tmp/cg && mount -t cgroup -o memory cgroup /tmp/cg 2>/dev/null && echo mounted; echo done",
    ]);
    assert_eq!(o.ok(), "done\n", "{o}");
}

/// JSON bodies are capped: a huge one is refused with 413 and costs the daemon no
/// memory; a log of any size is read with bounded memory.
#[test]
fn bodies_and_logs_do_not_bloat_the_daemon() {
    let d = Daemon::start();
    let before = d.rss_kib();
    // 64 MiB of invalid JSON, then a valid create with a 5 MiB Cmd.
    let junk = vec![b'['; 64 << 20];
    let r = d.api_body("POST", "/containers/create", berth_e2e::Body::Fixed("application/json", &junk));
    assert_eq!(r.status, 413, "{}", r.text());
    assert!(r.message().contains("request body too large"), "{}", r.message());
    let big = serde_json::json!({"Image": "busybox", "Cmd": ["echo", "x".repeat(5 << 20)]}).to_string();
    let r = d.api_body("POST", "/containers/create", berth_e2e::Body::Fixed("application/json", big.as_bytes()));
    assert_eq!(r.status, 413, "{}", r.text());
    let after = d.rss_kib();
    assert!(after < before + 32 * 1024, "RSS grew from {before} KiB to {after} KiB");

    // A container that writes 128 MiB to stdout; reading and tailing its log keeps
    // the daemon small.
    d.berth(&["run", "-d", "--name", "chatty", "busybox", "sh", "-c", "yes 0123456789abcdef0123456789abcdef0123456789abcdef012345678 | head -c 134217728; echo last-line"]).ok();
    let o = d.berth(&["wait", "chatty"]);
    assert_eq!(o.ok(), "0\n", "{o}");
    let r = d.api("GET", "/containers/chatty/logs?stdout=1&tail=1");
    assert!(r.text().ends_with("last-line\n"), "{:?}", &r.text()[r.text().len().saturating_sub(80)..]);
    let peak = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let (p2, pid) = (peak.clone(), d.pid());
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let s2 = stop.clone();
    let sampler = std::thread::spawn(move || {
        while !s2.load(std::sync::atomic::Ordering::Relaxed) {
            let st = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
            let kib: u64 = st.lines().find_map(|l| l.strip_prefix("VmRSS:")).and_then(|v| v.split_whitespace().next()?.parse().ok()).unwrap_or(0);
            p2.fetch_max(kib, std::sync::atomic::Ordering::Relaxed);
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    });
    let mut child = std::process::Command::new(berth_e2e::bin("berth"))
        .args(["-H", &d.host(), "logs", "chatty"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut total = 0u64;
    let mut buf = vec![0u8; 1 << 20];
    let mut out = child.stdout.take().unwrap();
    loop {
        let n = std::io::Read::read(&mut out, &mut buf).unwrap();
        if n == 0 {
            break;
        }
        total += n as u64;
    }
    child.wait().unwrap();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    sampler.join().unwrap();
    assert_eq!(total, (128 << 20) + "last-line\n".len() as u64);
    let peak = peak.load(std::sync::atomic::Ordering::Relaxed);
    assert!(peak < 60 * 1024, "berthd peaked at {peak} KiB while a 128 MiB log was read");
}

/// Every cgroup directory (any v1 hierarchy, or the unified tree) named after one of
/// `ids`.
fn cgroups_of(ids: &std::collections::HashSet<String>) -> Vec<String> {
    ids.iter().flat_map(|id| berth_e2e::cgroup_dirs(id)).map(|p| p.display().to_string()).collect()
}

/// No cgroup of a removed container stays behind in any hierarchy: `run --rm`,
/// `run -d` + `rm -f`, build steps, warm sandboxes, and a daemon killed with -9 in
/// the middle of it all.
#[test]
fn removed_containers_leave_no_cgroups_behind() {
    let mut d = Daemon::start_with_args(&["-l", "debug"]);
    d.import_busybox();
    for _ in 0..40 {
        assert!(d.berth(&["run", "--rm", "busybox", "true"]).success());
    }
    let mut kept = Vec::new();
    for _ in 0..10 {
        kept.push(d.berth(&["run", "-d", "busybox", "sleep", "60"]).ok().trim().to_owned());
    }
    let ctx = berth_e2e::dir_with("berth-cg-build", &[("Dockerfile", "FROM busybox\nRUN echo a > /a\nRUN echo b > /b\nENV X=1\n")]);
    assert!(d.berth(&["build", "-q", "-t", "cgtest", ctx.to_str().unwrap()]).success());
    // kill -9 with containers running and a sandbox ready, then clean up after restart.
    d.crash();
    d.relaunch();
    let mut args = vec!["rm", "-f"];
    args.extend(kept.iter().map(String::as_str));
    assert!(d.berth(&args).success());
    for _ in 0..10 {
        assert!(d.berth(&["run", "--rm", "busybox", "true"]).success());
    }
    assert!(d.berth(&["ps", "-aq"]).ok().trim().is_empty());
    // A graceful stop destroys the sandboxes too; then nothing may be left.
    d.stop();
    let ids: std::collections::HashSet<String> = d
        .log()
        .split(|c: char| !c.is_ascii_hexdigit())
        .filter(|w| w.len() == 64)
        .map(str::to_owned)
        .collect();
    assert!(ids.len() > 50, "too few container ids in the log: {}", ids.len());
    let left = cgroups_of(&ids);
    assert!(left.is_empty(), "cgroups left behind:\n{}", left.join("\n"));
}

fn sha256_file(p: &std::path::Path) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(std::fs::read(p).unwrap()))
}

/// A loop inside the container that tries to open, for writing, the executable of
/// every process it can see (`>>`: append, so nothing is truncated even if it opens),
/// and notes every executable it saw that is not the container's own busybox.
const EXE_SCANNER: &str = r#"
: > /tmp/seen
while [ ! -e /tmp/stop ]; do
  for p in /proc/[0-9]*; do
    [ "$p" = /proc/$$ ] && continue
    # The container's own busybox is left alone (holding it open for writing would
    # only make the next exec of it fail with ETXTBSY).
    l=$(readlink "$p/exe" 2>/dev/null)
    [ "$l" = /bin/busybox ] && continue
    [ -n "$l" ] && echo "saw $l" >> /tmp/seen
    ( : >> "$p/exe" ) 2>/dev/null && echo "WROTE $p $l"
  done
done
echo scanner-done
"#;

/// CVE-2019-5736: a root process in the container must not be able to open the
/// runtime's binary through `/proc/<pid>/exe` for writing while berth starts an exec
/// in it, nor when the exec'd binary is a `#!/proc/self/exe` script (runc's exploit);
/// the host's berth-shim and berthd binaries are unchanged afterwards.
#[test]
fn cve_2019_5736_runtime_binary_is_not_writable_from_the_container() {
    let d = Daemon::start();
    let shim = berth_e2e::bin("berth-shim");
    let daemon = berth_e2e::bin("berthd");
    let before = (sha256_file(&shim), sha256_file(&daemon));
    // The exploit's entry point: a binary in the container that is a script whose
    // interpreter is the exec'ing process's own executable.
    let script = format!("printf '#!/proc/self/exe\\n' > /tmp/evil; chmod +x /tmp/evil; {EXE_SCANNER}");
    let c = d.berth(&["run", "-d", "busybox", "sh", "-c", &script]).ok().trim().to_owned();
    for i in 0..15 {
        let cli = if i % 2 == 0 { Cli::Berth } else { Cli::Docker };
        d.cli(cli, &["exec", &c, "true"]);
        let _ = d.cli(cli, &["exec", &c, "/tmp/evil"]);
    }
    // Stopped from the host (an exec could race with the scanner holding a binary
    // open, which makes exec fail with ETXTBSY).
    std::fs::write(d.exec_root().join("c").join(&c).join("rootfs/tmp/stop"), "").unwrap();
    let logs = berth_e2e::wait_until(std::time::Duration::from_secs(20), || d.berth(&["logs", &c]).stdout.contains("scanner-done"));
    assert!(logs, "scanner did not finish");
    let out = d.berth(&["logs", &c]).stdout;
    assert!(!out.contains("WROTE"), "the container opened a host binary for writing:\n{out}");
    assert_eq!((sha256_file(&shim), sha256_file(&daemon)), before, "a host binary changed");
    d.berth(&["rm", "-f", &c]).ok();
}

/// CVE-2024-21626: a working directory under `/proc/self/fd/N` must not reach a
/// directory of the host through a descriptor leaked into the container's init
/// (`run -w`, `exec -w`, a build's WORKDIR), and no host descriptor is open in pid 1.
#[test]
fn cve_2024_21626_no_host_descriptor_leaks_into_the_container() {
    let d = Daemon::start();
    let c = d.berth(&["run", "-d", "busybox", "sleep", "600"]).ok().trim().to_owned();
    // What pid 1 holds: only its stdio (and descriptors to files inside the container).
    // Listed from an exec while pid 1 sleeps: a shell as pid 1 listing itself could be
    // caught holding a pipe of its own pipeline for a moment (gone before readlink).
    let fds = d.berth(&["exec", &c, "sh", "-c", "ls -l /proc/1/fd | tail -n +2"]).ok().to_owned();
    assert!(!fds.trim().is_empty(), "no descriptors listed");
    for line in fds.lines() {
        let target = line.rsplit(" -> ").next().unwrap_or("");
        assert!(
            target.starts_with("pipe:") || target.starts_with("/dev/") || target.starts_with("socket:") || target.starts_with("anon_inode:"),
            "pid 1 holds {target:?}:\n{fds}"
        );
    }
    // A host directory reached through a leaked descriptor would show the host's
    // files (the data root's `metadata.redb`, the cgroup tree) instead of the container's.
    let host_marker = "berth-21626-host-marker";
    std::fs::write(d.data_root().join(host_marker), "x").unwrap();
    let probe = format!("ls -a . ..; ls / | grep -c {host_marker} || true");
    for n in 3..20 {
        let dir = format!("/proc/self/fd/{n}");
        for cli in [Cli::Berth, Cli::Docker] {
            let run = d.cli(cli, &["run", "--rm", "-w", &dir, "busybox", "sh", "-c", &probe]);
            assert!(!run.stdout.contains(host_marker) && !run.stdout.contains("metadata.redb"), "run -w {dir}: {run}");
            let exec = d.cli(cli, &["exec", "-w", &dir, &c, "sh", "-c", &probe]);
            assert!(!exec.stdout.contains(host_marker) && !exec.stdout.contains("metadata.redb"), "exec -w {dir}: {exec}");
        }
    }
    let ctx = berth_e2e::dir_with(
        "berth-21626",
        &[("Dockerfile", "FROM busybox\nWORKDIR /proc/self/fd/7\nRUN ls -a / > /tmp/listing 2>&1 || true\nRUN cat /tmp/listing\n")],
    );
    let b = d.berth(&["build", "--no-cache", ctx.to_str().unwrap()]);
    let all = format!("{}{}", b.stdout, b.stderr);
    assert!(!all.contains(host_marker) && !all.contains("metadata.redb"), "build step saw the host:\n{all}");
    d.berth(&["rm", "-f", &c]).ok();
}

/// Import the busybox rootfs as `name`, with the paths in `replace` (e.g. `proc`)
/// left out and symlinks `(path, target)` in their place.
fn crafted_image(d: &Daemon, name: &str, links: &[(&str, &str)]) {
    let mut src = tar::Archive::new(std::fs::File::open(berth_e2e::busybox_rootfs()).unwrap());
    let mut out = tar::Builder::new(Vec::new());
    for e in src.entries().unwrap() {
        let mut e = e.unwrap();
        let path = e.path().unwrap().display().to_string();
        let rel = path.trim_start_matches("./").trim_end_matches('/').to_owned();
        if links.iter().any(|(p, _)| rel == *p || rel.starts_with(&format!("{p}/"))) {
            continue;
        }
        let h = e.header().clone();
        out.append(&h, &mut e).unwrap();
    }
    for (p, target) in links {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        h.set_mode(0o777);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        out.append_link(&mut h, p, target).unwrap();
    }
    let tar = out.into_inner().unwrap();
    let path = berth_e2e::unique_tmp_dir("berth-crafted").join("rootfs.tar");
    std::fs::write(&path, tar).unwrap();
    d.berth(&["import", path.to_str().unwrap(), name]).ok();
}

/// The mounts of a container, from the inside: `(mount point, root within its
/// filesystem)` for each line of /proc/self/mountinfo.
const MOUNTS: &str = "awk '{print $5, $4}' /proc/self/mountinfo";

/// runc's 2025 advisories (CVE-2025-31133, -52565, -52881): an image whose `/proc`,
/// `/sys`, `/dev/null` or `/dev/console` is a symlink — to a host path, or to a
/// `/proc` file that masking would then expose writable — must not make the runtime
/// mount through the link or mask with anything but the real `/dev/null`. As with
/// dockerd, the init layer's own `/proc` and `/sys` directories lie over the image's
/// links (the container gets its procfs and sysfs there, nothing reaches the link's
/// target); the `/dev` ones are hidden by the container's own /dev, and the masked
/// paths stay masked by the null device.
#[test]
fn special_paths_replaced_by_symlinks_in_the_image_are_not_followed() {
    let d = Daemon::start();
    let outside = berth_e2e::unique_tmp_dir("berth-link-target");
    let outside_s = outside.to_str().unwrap().to_owned();
    crafted_image(&d, "evil:proc", &[("proc", &outside_s)]);
    crafted_image(&d, "evil:sys", &[("sys", &outside_s)]);
    for image in ["evil:proc", "evil:sys"] {
        for cli in Cli::ALL {
            let o = d.cli(cli, &["run", "--rm", image, "stat", "-f", "-c", "%T", "/proc", "/sys"]);
            assert_eq!(o.out(), "proc\nsysfs", "{image}: {o}");
        }
    }
    assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0, "something was made in the link's target");
    let host_mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!host_mounts.contains(&outside_s), "a mount reached the host: {host_mounts}");

    crafted_image(&d, "evil:dev", &[("dev/null", "/proc/sys/kernel/core_pattern"), ("dev/console", "/proc/sysrq-trigger")]);
    for cli in Cli::ALL {
        let o = d.cli(
            cli,
            &["run", "--rm", "evil:dev", "sh", "-c",
              "stat -c '%n %F %t:%T' /dev/null /proc/keys /proc/timer_list; \
               for f in /proc/sys/kernel/core_pattern /proc/sysrq-trigger /proc/keys; do [ ! -c $f ] && ( : >> $f ) 2>/dev/null && echo writable $f; done; true"],
        );
        // (`: >>` opens for writing without writing anything.)
        let out = o.ok();
        for p in ["/dev/null", "/proc/keys", "/proc/timer_list"] {
            assert!(out.contains(&format!("{p} character special file 1:3")), "{}: {p} is not the null device: {out}", cli.name());
        }
        assert!(!out.contains("writable"), "{}: {out}", cli.name());
    }
}

/// The files berth binds over the image's (`/etc/hosts`, `/etc/hostname`,
/// `/etc/resolv.conf`) never follow the image's own: an image whose `/etc/hosts` is a
/// link out of the root (absolute, or climbing with `..`) to a host file, or to another
/// file inside it, gets its /etc files bound on the init layer's, which lie over the
/// links (as with dockerd): the host file is never bound or changed, the linked file
/// inside is left as the image has it.
#[test]
fn etc_files_replaced_by_symlinks_in_the_image_stay_inside_the_container() {
    let d = Daemon::start();
    let outside = berth_e2e::unique_tmp_dir("berth-etc-link");
    let outside_s = outside.to_str().unwrap().to_owned();
    std::fs::write(outside.join("hosts"), "host file\n").unwrap();
    let climbing = format!("../../../../../../..{outside_s}/hosts");
    let absolute = format!("{outside_s}/hosts");
    for (i, target) in [climbing, absolute].iter().enumerate() {
        let image = format!("evil:hosts{i}");
        crafted_image(&d, &image, &[("etc/hosts", target)]);
        for cli in Cli::ALL {
            let o = d.cli(cli, &["run", "--rm", "--add-host", "probe:10.9.8.7", &image, "cat", "/etc/hosts"]);
            assert!(o.ok().contains("10.9.8.7\tprobe"), "{}: {o}", cli.name());
            assert!(!o.stdout.contains("host file"), "{}: {o}", cli.name());
        }
    }
    assert_eq!(std::fs::read_to_string(outside.join("hosts")).unwrap(), "host file\n");
    assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 1, "something was made in the link's target");
    let host_mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!host_mounts.contains(&outside_s), "a mount reached the host: {host_mounts}");

    crafted_image(&d, "evil:hosts-inside", &[("etc/hosts", "/etc/group")]);
    for cli in Cli::ALL {
        let o = d.cli(cli, &["run", "--rm", "--add-host", "probe:10.9.8.7", "evil:hosts-inside", "cat", "/etc/hosts", "/etc/group"]);
        let out = o.ok();
        assert!(out.contains("10.9.8.7\tprobe") && out.contains("root:x:0:"), "{}: {o}", cli.name());
    }
}

/// CVE-2021-30465: a container that shares a volume with a new container swaps the
/// new container's mount target (a directory in that volume) for a symlink to a host
/// path, over and over, while berth mounts another volume there. Each mount must land
/// inside the new container (seen in its own mount table) or the start must fail;
/// never on the link's target outside it. The racer moves directories away rather
/// than deleting them: deleting a directory that is a mount point in another mount
/// namespace dissolves that mount (the kernel allows it since 3.18), which would hide
/// where the mount went; a moved one keeps it, at its new path.
#[test]
fn cve_2021_30465_mount_target_swapped_for_a_symlink_stays_inside_the_container() {
    let d = Daemon::start();
    let outside = berth_e2e::unique_tmp_dir("berth-30465");
    let outside_s = outside.to_str().unwrap().to_owned();
    d.berth(&["volume", "create", "race"]).ok();
    d.berth(&["volume", "create", "payload"]).ok();
    d.berth(&["run", "--rm", "-v", "payload:/p", "busybox", "sh", "-c", "echo payload > /p/marker"]).ok();
    let swap = format!(
        "i=0; while :; do i=$((i+1)); mkdir /r/t; mv /r/t /r/old.$i; ln -s {outside_s} /r/t; rm -f /r/t; \
         ln -s ../../../../../../../..{outside_s} /r/t; rm -f /r/t; done 2>/dev/null"
    );
    let racer = d.berth(&["run", "-d", "-v", "race:/r", "busybox", "sh", "-c", &swap]).ok().trim().to_owned();
    let (mut started, mut refused) = (0, 0);
    for i in 0..30 {
        let cli = if i % 2 == 0 { Cli::Berth } else { Cli::Docker };
        let o = d.cli(cli, &["run", "--rm", "-v", "race:/r", "-v", "payload:/r/t", "busybox", "sh", "-c", MOUNTS]);
        if o.code != 0 {
            refused += 1;
            continue;
        }
        started += 1;
        let inside = o.stdout.lines().find(|l| l.ends_with("/payload/_data"));
        assert!(inside.is_some(), "round {i}: the volume is not mounted inside the container:\n{o}");
    }
    eprintln!("30465: {started} started with the volume inside, {refused} refused");
    d.berth(&["rm", "-f", &racer]).ok();
    assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0, "the volume's content reached the link's target");
    let host_mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!host_mounts.contains(&outside_s), "a mount reached the host: {host_mounts}");
}

/// CVE-2025-31133 as a race: `/dev` is a volume another container shares, which keeps
/// replacing `null` with a symlink to `/proc/sys/kernel/core_pattern` while containers
/// with that `/dev` start. Masking must use the real null device or fail; a masked
/// path never becomes the link's target.
#[test]
fn cve_2025_31133_dev_null_swapped_while_masking_never_unmasks() {
    let d = Daemon::start();
    d.berth(&["volume", "create", "devv"]).ok();
    // A /dev volume serves one container after another (the runtime's nodes and links
    // from the last one are made afresh, not refused as existing).
    for cli in Cli::ALL {
        let o = d.cli(cli, &["run", "--rm", "-v", "devv:/dev", "busybox", "stat", "-c", "%n %F %t:%T", "/dev/null", "/proc/keys"]);
        assert!(o.ok().contains("/dev/null character special file 1:3"), "{}: {o}", cli.name());
        assert!(o.ok().contains("/proc/keys character special file 1:3"), "{}: {o}", cli.name());
    }
    // Half of the time a link, half of the time nothing (the runtime makes the node).
    let swap = "while :; do rm -f /d/null; ln -s /proc/sys/kernel/core_pattern /d/null; usleep 2000; rm -f /d/null; usleep 2000; done";
    let racer = d.berth(&["run", "-d", "-v", "devv:/d", "busybox", "sh", "-c", swap]).ok().trim().to_owned();
    let (mut started, mut refused) = (0, 0);
    for i in 0..30 {
        let cli = if i % 2 == 0 { Cli::Berth } else { Cli::Docker };
        let o = d.cli(cli, &["run", "--rm", "-v", "devv:/dev", "busybox", "stat", "-c", "%n %F %t:%T", "/proc/keys", "/proc/timer_list"]);
        if o.code != 0 {
            refused += 1;
            continue;
        }
        started += 1;
        for p in ["/proc/keys", "/proc/timer_list"] {
            assert!(o.stdout.contains(&format!("{p} character special file 1:3")), "round {i}: {p} unmasked:\n{o}");
        }
    }
    eprintln!("31133: {started} started masked, {refused} refused");
    d.berth(&["rm", "-f", &racer]).ok();
}
