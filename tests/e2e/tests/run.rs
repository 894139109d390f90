//! `run` in the foreground: output and exit codes, with both CLIs.

use berth_e2e::{Cli, Daemon};

#[test]
fn run_rm_echo_prints_and_removes() {
    let d = Daemon::start();
    for cli in Cli::ALL {
        let o = d.cli(cli, &["run", "--rm", "busybox", "echo", "hi"]);
        assert_eq!(
            (o.code, o.stdout.as_str()),
            (0, "hi\n"),
            "{}: {o}",
            cli.name()
        );
    }
    // --rm: nothing is left behind
    assert!(
        d.container_ids().is_empty(),
        "containers left after run --rm: {:?}",
        d.container_ids()
    );
}

#[test]
fn run_stdout_and_stderr_are_separate() {
    let d = Daemon::start();
    for cli in Cli::ALL {
        let o = d.cli(
            cli,
            &[
                "run",
                "--rm",
                "busybox",
                "sh",
                "-c",
                "echo out; echo err >&2",
            ],
        );
        assert_eq!(o.code, 0, "{}: {o}", cli.name());
        assert_eq!(o.stdout, "out\n", "{}: {o}", cli.name());
        assert!(o.stderr.contains("err\n"), "{}: {o}", cli.name());
    }
}

#[test]
fn run_exit_codes_propagate() {
    let d = Daemon::start();
    for cli in Cli::ALL {
        let name = cli.name();
        let o = d.cli(cli, &["run", "--rm", "busybox", "true"]);
        assert_eq!(o.code, 0, "{name} true: {o}");

        let o = d.cli(cli, &["run", "--rm", "busybox", "sh", "-c", "exit 3"]);
        assert_eq!(o.code, 3, "{name} exit 3: {o}");

        // command not found: docker answers 127 (the start fails, "executable file not found")
        let o = d.cli(cli, &["run", "--rm", "busybox", "nosuchcmd"]);
        assert_eq!(o.code, 127, "{name} nosuchcmd: {o}");
        assert!(
            o.stderr.contains("nosuchcmd"),
            "{name}: error should name the command: {o}"
        );

        // an image that is not there (its registry is a closed loopback port, so a pull
        // attempt fails at once and sends nothing off the machine): 125
        let o = d.cli(
            cli,
            &["run", "--rm", "127.0.0.1:1/no/such-image:latest", "true"],
        );
        assert_eq!(o.code, 125, "{name} unknown image: {o}");

        // a flag the daemon refuses at create (relative working directory): 125
        let o = d.cli(
            cli,
            &["run", "--rm", "-w", "relative/dir", "busybox", "true"],
        );
        assert_eq!(o.code, 125, "{name} bad workdir: {o}");
        assert!(o.stderr.contains("absolute"), "{name}: {o}");
    }
    // the failed creates and starts left nothing behind (all were --rm or refused)
    assert!(
        wait_empty(&d),
        "containers left behind: {:?}",
        d.container_ids()
    );
}

fn wait_empty(d: &Daemon) -> bool {
    berth_e2e::wait_until(std::time::Duration::from_secs(10), || {
        d.container_ids().is_empty()
    })
}

#[test]
fn run_without_rm_keeps_the_exited_container() {
    let d = Daemon::start();
    for cli in Cli::ALL {
        let name = format!("kept-{}", cli.name());
        let o = d.cli(
            cli,
            &[
                "run",
                "--name",
                &name,
                "busybox",
                "sh",
                "-c",
                "echo kept; exit 4",
            ],
        );
        assert_eq!((o.code, o.stdout.as_str()), (4, "kept\n"), "{o}");
        let c = d.inspect(&name);
        assert_eq!(c["State"]["Status"], "exited");
        assert_eq!(c["State"]["ExitCode"], 4);
        // its output is still readable
        let o = d.cli(cli, &["logs", &name]);
        assert_eq!((o.code, o.stdout.as_str()), (0, "kept\n"), "{o}");
        d.cli(cli, &["rm", &name]).ok();
    }
}

/// A `--rm` container's /etc/hostname, /etc/hosts and /etc/resolv.conf are generated in
/// its exec-root state directory (a tmpfs, gone with it), a kept container's in the
/// data root, as dockerd's; inside, both look the same, and inspect says where they are.
#[test]
fn a_rm_containers_etc_files_live_in_the_exec_root() {
    let d = Daemon::start();
    let paths = |id: &str| -> Vec<String> {
        let f = "{{.HostnamePath}} {{.HostsPath}} {{.ResolvConfPath}}";
        d.berth(&["inspect", "-f", f, id]).ok().split_whitespace().map(str::to_owned).collect()
    };
    let rm = d
        .berth(&["run", "-d", "--rm", "--hostname", "eph", "--add-host", "db:10.1.2.3", "busybox", "sleep", "60"])
        .ok()
        .trim()
        .to_owned();
    let kept = d.berth(&["run", "-d", "--hostname", "kept", "--add-host", "db:10.1.2.3", "busybox", "sleep", "60"]).ok().trim().to_owned();
    for (id, root, host) in [(&rm, d.exec_root(), "eph"), (&kept, d.data_root(), "kept")] {
        let p = paths(id);
        assert_eq!(p.len(), 3, "{p:?}");
        for f in &p {
            assert!(std::path::Path::new(f).starts_with(root), "{f} not under {}", root.display());
        }
        assert_eq!(std::fs::read_to_string(&p[0]).unwrap(), format!("{host}\n"));
        let inside = d.berth(&["exec", id, "sh", "-c", "cat /etc/hostname; grep db /etc/hosts; hostname"]).ok().to_owned();
        assert!(inside.starts_with(&format!("{host}\n")) && inside.contains("10.1.2.3\tdb") && inside.ends_with(&format!("{host}\n")), "{inside}");
    }
    let rm_hosts = paths(&rm)[1].clone();
    d.berth(&["rm", "-f", &rm, &kept]).ok();
    // (removed by the clean-up that follows the removal's answer)
    let gone = || !std::path::Path::new(&rm_hosts).exists();
    assert!(berth_e2e::wait_until(std::time::Duration::from_secs(10), gone), "{rm_hosts} outlived its container");
}

/// A file without a `#!` line is not an executable: the process fails to start, as
/// with runc, whether its container was made at `run` (`--warm-containers 0`) or
/// ahead of time (glibc's `execvp` would have run it with `/bin/sh`). As with runc the
/// container starts, and its process prints `exec PATH: exec format error` and exits
/// with 1; a script whose interpreter the image lacks says "no such file or directory".
#[test]
fn a_script_without_an_interpreter_line_is_not_run_by_a_shell() {
    let dir = berth_e2e::unique_tmp_dir("noshebang");
    for (name, text) in [("s", "echo ran-by-a-shell\n"), ("b", "#!/no/such/interpreter\necho ran\n")] {
        let script = dir.join(name);
        std::fs::write(&script, text).unwrap();
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    }
    let bind = format!("{}:/scripts:ro", dir.display());
    for warm in ["0", "1"] {
        let d = Daemon::start_with_args(&["--warm-containers", warm]);
        d.import_busybox();
        for cli in Cli::ALL {
            // Twice: the second finds a warm sandbox of this shape where there are any.
            for round in 0..2 {
                let o = d.cli(cli, &["run", "--rm", "-v", &bind, "busybox", "/scripts/s"]);
                assert!(o.code != 0 && !o.stdout.contains("ran-by-a-shell"), "warm {warm}, {}: {o}", cli.name());
                for (script, words) in [("/scripts/s", "exec format error"), ("/scripts/b", "no such file or directory")] {
                    let name = format!("noexec-{warm}-{}-{round}", cli.name());
                    let o = d.cli(cli, &["run", "--name", &name, "-v", &bind, "busybox", script]);
                    assert_eq!(o.code, 1, "warm {warm}, {}: {o}", cli.name());
                    let logs = d.berth(&["logs", &name]);
                    assert_eq!(logs.stderr, format!("exec {script}: {words}\n"), "warm {warm}, {}: {logs}", cli.name());
                    assert_eq!(d.berth(&["inspect", "-f", "{{.State.ExitCode}}", &name]).ok(), "1\n");
                    d.berth(&["rm", &name]).ok();
                }
            }
        }
    }
}
