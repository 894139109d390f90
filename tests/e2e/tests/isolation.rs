//! What the process inside sees: its own pid namespace, hostname, mounts,
//! capabilities and network namespace.

use berth_e2e::{Cli, Daemon};

#[test]
fn container_process_is_pid_1() {
    let d = Daemon::start();
    for cli in Cli::ALL {
        let o = d.cli(cli, &["run", "--rm", "busybox", "cat", "/proc/1/cmdline"]);
        assert_eq!(
            (o.code, o.stdout.as_str()),
            (0, "cat\0/proc/1/cmdline\0"),
            "{}: {o}",
            cli.name()
        );

        let o = d.cli(cli, &["run", "--rm", "busybox", "ps", "-o", "pid,comm"]);
        let rows: Vec<Vec<&str>> = o
            .ok()
            .lines()
            .skip(1)
            .map(|l| l.split_whitespace().collect())
            .collect();
        assert_eq!(
            rows,
            vec![vec!["1", "ps"]],
            "{}: only the container's own process: {o}",
            cli.name()
        );

        let o = d.cli(cli, &["run", "--rm", "busybox", "sh", "-c", "echo $$"]);
        assert_eq!(o.ok().trim(), "1", "{o}");
    }
}

#[test]
fn hostname_is_short_id_or_given() {
    let d = Daemon::start();
    for cli in Cli::ALL {
        let name = format!("hn-{}", cli.name());
        let o = d.cli(cli, &["run", "--name", &name, "busybox", "hostname"]);
        let id = d.inspect(&name)["Id"].as_str().unwrap().to_string();
        assert_eq!(o.ok().trim(), &id[..12], "{o}");
        assert_eq!(d.inspect(&name)["Config"]["Hostname"], &id[..12]);
        d.cli(cli, &["rm", &name]).ok();

        let o = d.cli(
            cli,
            &[
                "run",
                "--rm",
                "--hostname",
                "myhost",
                "busybox",
                "sh",
                "-c",
                "hostname; cat /etc/hostname",
            ],
        );
        assert_eq!(o.ok(), "myhost\nmyhost\n", "{o}");
    }
    // the host's own hostname is untouched
    let host = nix::unistd::gethostname().unwrap();
    assert_ne!(host.to_string_lossy(), "myhost");
}

#[test]
fn no_host_mounts_visible() {
    let d = Daemon::start();
    for cli in Cli::ALL {
        let o = d.cli(
            cli,
            &["run", "--rm", "busybox", "cat", "/proc/self/mountinfo"],
        );
        let info = o.ok();
        let points: Vec<&str> = info.lines().filter_map(|l| l.split(' ').nth(4)).collect();
        assert!(points.contains(&"/"), "{info}");
        assert!(points.contains(&"/proc"), "{info}");
        assert!(points.contains(&"/dev"), "{info}");
        // Docker's default set: the rootfs, /proc, /dev (+pts, mqueue, shm), /sys (+cgroup),
        // /etc/{hosts,hostname,resolv.conf} and masked /proc paths. Nothing from the host.
        for p in &points {
            let ok = *p == "/"
                || ["/proc", "/dev", "/sys"]
                    .iter()
                    .any(|pre| p == pre || p.starts_with(&format!("{pre}/")))
                || ["/etc/hosts", "/etc/hostname", "/etc/resolv.conf"].contains(p);
            assert!(
                ok,
                "{}: unexpected mount {p} in the container:\n{info}",
                cli.name()
            );
        }
        assert!(!info.contains(" /work"), "{info}");

        // the rootfs is the image's, not the host's
        let o = d.cli(
            cli,
            &[
                "run",
                "--rm",
                "busybox",
                "sh",
                "-c",
                "ls /; test -e /work && echo HOST-WORK",
            ],
        );
        assert!(!o.stdout.contains("HOST-WORK"), "{o}");
        assert!(o.stdout.lines().any(|l| l == "bin"), "{o}");
    }
}

/// Docker's default capability set: CHOWN DAC_OVERRIDE FOWNER FSETID KILL SETGID SETUID
/// SETPCAP NET_BIND_SERVICE NET_RAW SYS_CHROOT MKNOD AUDIT_WRITE SETFCAP.
const DOCKER_DEFAULT_CAPS: u64 = 0xa80425fb;
const CAP_CHOWN: u32 = 0;
const CAP_SYS_ADMIN: u32 = 21;

fn cap(status: &str, field: &str) -> u64 {
    let line = status
        .lines()
        .find(|l| l.starts_with(field))
        .unwrap_or_else(|| panic!("no {field} in {status}"));
    u64::from_str_radix(line.split_whitespace().nth(1).unwrap(), 16).unwrap()
}

#[test]
fn default_capabilities_match_docker() {
    let d = Daemon::start();
    for cli in Cli::ALL {
        let o = d.cli(
            cli,
            &["run", "--rm", "busybox", "grep", "Cap", "/proc/self/status"],
        );
        let st = o.ok();
        let eff = cap(st, "CapEff:");
        assert_eq!(
            eff & (1 << CAP_SYS_ADMIN),
            0,
            "CAP_SYS_ADMIN must be dropped: {st}"
        );
        assert_ne!(eff & (1 << CAP_CHOWN), 0, "CAP_CHOWN must be kept: {st}");
        assert_eq!(
            eff, DOCKER_DEFAULT_CAPS,
            "effective set differs from docker's default:\n{st}"
        );
        assert_eq!(cap(st, "CapBnd:"), DOCKER_DEFAULT_CAPS, "{st}");
        // a non-root user gets no effective capabilities
        let o = d.cli(
            cli,
            &[
                "run",
                "--rm",
                "--user",
                "1000",
                "busybox",
                "grep",
                "CapEff",
                "/proc/self/status",
            ],
        );
        assert_eq!(cap(o.ok(), "CapEff:"), 0, "{o}");
        // --cap-add / --cap-drop
        let o = d.cli(
            cli,
            &[
                "run",
                "--rm",
                "--cap-add",
                "SYS_ADMIN",
                "--cap-drop",
                "CHOWN",
                "busybox",
                "grep",
                "CapEff",
                "/proc/self/status",
            ],
        );
        let eff = cap(o.ok(), "CapEff:");
        assert_eq!(
            eff,
            (DOCKER_DEFAULT_CAPS | 1 << CAP_SYS_ADMIN) & !(1 << CAP_CHOWN),
            "{o}"
        );
    }
}

#[test]
fn network_none_has_only_loopback() {
    let d = Daemon::start();
    for cli in Cli::ALL {
        let o = d.cli(
            cli,
            &[
                "run",
                "--rm",
                "--network",
                "none",
                "busybox",
                "cat",
                "/proc/net/dev",
            ],
        );
        let ifaces: Vec<&str> = o
            .ok()
            .lines()
            .skip(2)
            .filter_map(|l| l.split(':').next())
            .map(str::trim)
            .collect();
        assert_eq!(ifaces, vec!["lo"], "{}: {o}", cli.name());
        let o = d.cli(
            cli,
            &[
                "run",
                "--rm",
                "--network",
                "none",
                "busybox",
                "ls",
                "/sys/class/net",
            ],
        );
        assert_eq!(
            o.ok().split_whitespace().collect::<Vec<_>>(),
            vec!["lo"],
            "{o}"
        );
    }
}

/// Docker's default seccomp profile is in force in the container and in every exec
/// (berth compiles it once and loads it itself): `unshare` needs no capability for a
/// user namespace, so only the filter can refuse it.
#[test]
fn default_seccomp_profile_applies_to_run_and_exec() {
    let d = Daemon::start();
    let probe = "unshare -U true 2>/dev/null; echo rc=$?; grep -E '^(Seccomp|CapBnd):' /proc/self/status";
    let caps_bnd = "CapBnd:\t00000000a80425fb";
    for cli in Cli::ALL {
        for _ in 0..2 {
            let o = d.cli(cli, &["run", "--rm", "busybox", "sh", "-c", probe]);
            let out = o.ok();
            assert!(out.contains("rc=1") && out.contains("Seccomp:\t2") && out.contains(caps_bnd), "{}: {out}", cli.name());
        }
        let o = d.cli(cli, &["run", "--rm", "--security-opt", "seccomp=unconfined", "busybox", "sh", "-c", probe]);
        let out = o.ok();
        assert!(out.contains("rc=0") && out.contains("Seccomp:\t0"), "{}: unconfined: {out}", cli.name());
    }
    d.berth(&["run", "-d", "--name", "sc", "busybox", "sleep", "60"]).ok();
    for user in ["0", "1000"] {
        let out = d.berth(&["exec", "-u", user, "sc", "sh", "-c", probe]).ok().to_owned();
        assert!(out.contains("rc=1") && out.contains("Seccomp:\t2") && out.contains(caps_bnd), "exec -u {user}: {out}");
    }
    d.berth(&["rm", "-f", "sc"]).ok();
}

/// A container's processes start with no signal ignored or blocked (the shim's own
/// dispositions — Rust ignores SIGPIPE — must not leak in: `yes | head` would spin).
#[test]
fn processes_start_with_default_signal_dispositions() {
    let d = Daemon::start();
    let probe = "grep -E '^Sig(Ign|Blk)' /proc/self/status; yes | head -c 1 >/dev/null; echo done";
    let want = "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\ndone\n";
    for cli in Cli::ALL {
        for _ in 0..2 {
            let o = d.cli(cli, &["run", "--rm", "busybox", "sh", "-c", probe]);
            assert_eq!(o.ok(), want, "{}: {o}", cli.name());
        }
    }
    d.berth(&["run", "-d", "--name", "sig", "busybox", "sleep", "60"]).ok();
    assert_eq!(d.berth(&["exec", "sig", "sh", "-c", probe]).ok(), want);
    d.berth(&["rm", "-f", "sig"]).ok();
}

/// Containers are created by the shim without libcontainer's intermediate process
/// (`shim::direct`): the usual one placed in its v1 cgroups by the shim, one with a
/// cgroup resource set (`--cpu-shares`, here at its default value, so nothing else
/// differs) by libcgroups' manager; one that joins another container's PID namespace
/// still goes through libcontainer's builder. All three must be confined alike: the
/// same cgroups in every hierarchy, the same device rules (a block device can be made
/// but not opened), capabilities, seccomp, limits and OOM score, and the same mounts
/// (listed in another order: a directly created init makes the leading mounts itself,
/// before libcontainer's recursive bind of the root copies them depth first).
#[test]
fn containers_the_shim_creates_itself_are_confined_as_libcontainers_are() {
    let d = Daemon::start();
    d.cli(Cli::Berth, &["run", "-d", "--name", "pid-donor", "busybox", "sleep", "600"]).ok();
    let probe = "sed 's/[0-9a-f]\\{64\\}/ID/' /proc/self/cgroup; cat /sys/fs/cgroup/devices/devices.list; \
                 cat /sys/fs/cgroup/cpuset/cpuset.cpus /sys/fs/cgroup/cpuset/cpuset.mems; \
                 grep -E '^(Cap|Seccomp|NoNewPrivs)' /proc/self/status; cat /proc/self/oom_score_adj; \
                 grep 'open files' /proc/self/limits; cut -d' ' -f2,3 /proc/self/mounts | sort; \
                 mknod /tmp/disk b 8 0 && head -c 1 /tmp/disk 2>&1; echo \"open: $?\"";
    for cli in Cli::ALL {
        let run = |extra: &[&str]| {
            let mut args = vec!["run", "--rm", "--network", "none"];
            args.extend_from_slice(extra);
            args.extend_from_slice(&["busybox", "sh", "-c", probe]);
            d.cli(cli, &args)
        };
        let own_join = run(&[]);
        let manager_join = run(&["--cpu-shares", "1024"]);
        let builder = run(&["--pid", "container:pid-donor"]);
        let out = own_join.ok();
        assert_eq!(out, manager_join.ok(), "{}", cli.name());
        assert_eq!(out, builder.ok(), "{}", cli.name());
        for c in ["cpu", "cpuacct", "cpuset", "devices", "memory", "pids", "blkio", "freezer"] {
            if std::path::Path::new("/sys/fs/cgroup").join(c).is_dir() {
                assert!(out.lines().any(|l| l.ends_with(&format!(":{c}:/berth/ID"))), "{c}: {out}");
            }
        }
        assert!(out.contains("Operation not permitted") && out.contains("open: 1"), "{out}");
        if std::path::Path::new("/sys/fs/cgroup/devices").is_dir() {
            assert!(out.contains("c 1:3 rwm") && out.contains("c *:* m"), "{out}");
        }
    }
    d.cli(Cli::Berth, &["rm", "-f", "pid-donor"]).ok();
}

/// The root filesystem the init makes itself after its mounts (`/dev`'s links and
/// nodes, `pivot_root`, standard streams on the container's `/dev/null`, read-only and
/// masked paths; berth-shim's `rootfs`) is the one libcontainer's init process makes:
/// compared with a container libcontainer's builder creates (`--pid container:`) and
/// with a terminal (libcontainer's init process makes the root and `/dev/console`).
#[test]
fn the_root_filesystem_the_init_makes_is_libcontainers() {
    let d = Daemon::start();
    d.cli(Cli::Berth, &["run", "-d", "--name", "rootfs-donor", "busybox", "sleep", "600"]).ok();
    let probe = "for f in /dev/*; do stat -c '%n %F %a %u:%g %t:%T' $f; done; \
                 for l in /dev/fd /dev/stdin /dev/stdout /dev/stderr /dev/ptmx; do echo $l $(readlink $l); done; \
                 [ \"$(stat -L -c %d:%i /proc/self/fd/0)\" = \"$(stat -c %d:%i /dev/null)\" ] && echo stdin on the container null; \
                 touch /probe 2>/dev/null && echo root writable; \
                 echo x 2>/dev/null > /proc/sys/kernel/hostname || echo proc-sys read-only; \
                 echo kcore $(stat -c %F /proc/kcore 2>&1); echo timer_list $(wc -c < /proc/timer_list); \
                 echo acpi $(ls -A /proc/acpi | wc -l) $(stat -f -c %T /proc/acpi)";
    for cli in Cli::ALL {
        let run = |extra: &[&str]| {
            let mut args = vec!["run", "--rm", "--network", "none"];
            args.extend_from_slice(extra);
            args.extend_from_slice(&["busybox", "sh", "-c", probe]);
            d.cli(cli, &args).ok().to_owned()
        };
        let own = run(&[]);
        assert_eq!(own, run(&["--pid", "container:rootfs-donor"]), "{}", cli.name());
        for want in [
            "/dev/null character special file 666 0:0 1:3",
            "/dev/tty character special file 666 0:0 5:0",
            "/dev/ptmx pts/ptmx",
            "/dev/stdin /proc/self/fd/0",
            "stdin on the container null",
            "root writable",
            "proc-sys read-only",
            "timer_list 0",
            "acpi 0 tmpfs",
        ] {
            assert!(own.contains(want), "{}: {want}: {own}", cli.name());
        }
        // A terminal: libcontainer's init process makes the root, plus /dev/console.
        let tty = ["run", "--rm", "-t", "--network", "none", "busybox", "sh", "-c", probe];
        let with_tty = d.cli(cli, &tty).ok().replace('\r', "");
        let console = with_tty.lines().find(|l| l.starts_with("/dev/console ")).unwrap_or_default().to_owned();
        assert!(console.starts_with("/dev/console character special file"), "{}: {with_tty}", cli.name());
        let differing: Vec<_> = with_tty.lines().filter(|l| !own.lines().any(|o| o == *l)).collect();
        assert_eq!(differing, [console.as_str()], "{}", cli.name());
        // A read-only root and a device of the spec's, with its own name.
        let ro = run(&["--read-only", "--device", "/dev/null:/dev/berthnull:rw"]);
        assert!(!ro.contains("root writable") && ro.contains("/dev/berthnull character special file 666 0:0 1:3"), "{}: {ro}", cli.name());
    }
    d.cli(Cli::Berth, &["rm", "-f", "rootfs-donor"]).ok();
}

/// A container's `/dev/mqueue` shows the message queues of its own IPC namespace: a
/// queue made there is seen through `exec` and by a container that joins that
/// namespace (`--ipc container:`), and by no other container. (The init mounts the
/// mqueue filesystem itself, in the IPC namespace it then hands to libcontainer: had
/// libcontainer made another, the mount would show queues no other process reaches.)
#[test]
fn a_containers_mqueue_is_its_own_ipc_namespaces() {
    let d = Daemon::start();
    d.berth(&["run", "-d", "--name", "mq", "--ipc", "shareable", "busybox", "sh", "-c", "touch /dev/mqueue/q && sleep 60"]).ok();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !d.berth(&["exec", "mq", "ls", "/dev/mqueue"]).stdout.contains('q') {
        assert!(std::time::Instant::now() < deadline, "the queue was never made");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    for cli in Cli::ALL {
        let joined = d.cli(cli, &["run", "--rm", "--ipc", "container:mq", "busybox", "ls", "/dev/mqueue"]);
        assert_eq!(joined.ok(), "q\n", "{}: {joined}", cli.name());
        let other = d.cli(cli, &["run", "--rm", "busybox", "ls", "/dev/mqueue"]);
        assert_eq!(other.ok(), "", "{}: {other}", cli.name());
    }
    d.berth(&["rm", "-f", "mq"]).ok();
}

#[test]
fn sysctls_are_set_in_the_containers_namespaces_only() {
    let d = Daemon::start();
    let read = "/proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shmmni /proc/sys/fs/mqueue/msg_max /proc/sys/net/ipv4/ip_unprivileged_port_start";
    let host = |p: &str| std::fs::read_to_string(p).unwrap();
    let before: Vec<String> = read.split(' ').map(host).collect();
    for cli in Cli::ALL {
        // Twice: the second run of the shape starts on a warm sandbox.
        for _ in 0..2 {
            let mut args = vec!["run", "--rm", "--sysctl", "net.ipv4.ip_forward=1", "--sysctl", "kernel.shmmni=77"];
            args.extend(["--sysctl", "fs.mqueue.msg_max=20", "busybox", "cat"]);
            args.extend(read.split(' '));
            let o = d.cli(cli, &args);
            // dockerd's default for a container's own network namespace: port 0 and up.
            assert_eq!(o.ok(), "1\n77\n20\n0\n", "{}: {o}", cli.name());
        }
        // The UTS namespace's: not through the CLI, as docker's.
        let o = d.cli(cli, &["run", "--rm", "--sysctl", "kernel.domainname=example.org", "busybox", "true"]);
        assert_eq!(o.code, 125, "{}: {o}", cli.name());
        assert!(o.stderr.contains("sysctl 'kernel.domainname=example.org' is not allowed"), "{}: {o}", cli.name());
        // Not in a namespace of the host's.
        let o = d.cli(cli, &["run", "--rm", "--network", "host", "--sysctl", "net.ipv4.ip_forward=1", "busybox", "true"]);
        assert_ne!(o.code, 0, "{}: {o}", cli.name());
        assert!(o.stderr.contains("not allowed in host network namespace"), "{}: {o}", cli.name());
        let o = d.cli(cli, &["run", "--rm", "--ipc", "host", "--sysctl", "kernel.shmmni=77", "busybox", "true"]);
        assert_ne!(o.code, 0, "{}: {o}", cli.name());
        assert!(o.stderr.contains("not allowed in the hosts ipc namespace"), "{}: {o}", cli.name());
    }
    // Through the API (as compose sends it), one of the UTS namespace's beside a
    // network one: libcontainer writes them all.
    let body = serde_json::json!({"Image": "busybox", "Cmd": ["cat", "/proc/sys/kernel/domainname", "/proc/sys/net/ipv4/ip_forward"],
        "HostConfig": {"Sysctls": {"kernel.domainname": "example.org", "net.ipv4.ip_forward": "1"}}});
    let r = d.api_json("POST", "/v1.41/containers/create?name=uts-sysctl", &body);
    assert_eq!(r.status, 201, "{r:?}");
    d.berth(&["start", "uts-sysctl"]).ok();
    d.berth(&["wait", "uts-sysctl"]).ok();
    assert_eq!(d.berth(&["logs", "uts-sysctl"]).ok(), "example.org\n1\n");
    d.berth(&["rm", "uts-sysctl"]).ok();
    let after: Vec<String> = read.split(' ').map(host).collect();
    assert_eq!(before, after, "the host's values");
}
