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
