//! Terminals and stdin: `run -it` on a pseudo-terminal, stdin piped into `run -i`.

use std::time::Duration;

use berth_e2e::{Cli, Daemon};

const T: Duration = Duration::from_secs(15);

#[test]
fn run_it_shell_on_a_pty() {
    let d = Daemon::start();
    for cli in Cli::ALL {
        let mut p = d.pty(cli, &["run", "-it", "--rm", "busybox", "sh"]);
        // busybox sh as root prompts "/ # "
        p.expect("# ", T)
            .unwrap_or_else(|e| panic!("{}: no prompt: {e}", cli.name()));
        p.send("echo $((6*7))\r").unwrap();
        p.expect("42", T)
            .unwrap_or_else(|e| panic!("{}: {e}", cli.name()));
        // the container's stdin is a terminal of the size of ours
        p.send("[ -t 0 ] && echo TTY-YES; stty size\r").unwrap();
        p.expect("TTY-YES", T)
            .unwrap_or_else(|e| panic!("{}: {e}", cli.name()));
        p.expect("24 80", T)
            .unwrap_or_else(|e| panic!("{}: {e}", cli.name()));
        p.send("exit\r").unwrap();
        let code = p.wait(T);
        assert_eq!(
            code,
            Some(0),
            "{}: exit code; screen:\n{}",
            cli.name(),
            p.output()
        );
    }
    assert!(berth_e2e::wait_until(Duration::from_secs(10), || d
        .container_ids()
        .is_empty()));
}

#[test]
fn run_it_exit_code_and_tty_output() {
    let d = Daemon::start();
    for cli in Cli::ALL {
        let mut p = d.pty(
            cli,
            &[
                "run",
                "-it",
                "--rm",
                "busybox",
                "sh",
                "-c",
                "printf 'a\\nb\\n'; exit 5",
            ],
        );
        // output through a tty comes back with \r\n line ends
        p.expect("a\r\nb\r\n", T)
            .unwrap_or_else(|e| panic!("{}: {e}", cli.name()));
        assert_eq!(p.wait(T), Some(5), "{}: {}", cli.name(), p.output());
    }
}

#[test]
fn stdin_piped_into_run_i() {
    let d = Daemon::start();
    for cli in Cli::ALL {
        let o = d.cli_stdin(
            cli,
            &[
                "run",
                "-i",
                "--rm",
                "busybox",
                "sh",
                "-c",
                "cat; echo done >&2",
            ],
            b"a\nb\n",
        );
        assert_eq!(o.code, 0, "{}: {o}", cli.name());
        assert_eq!(o.stdout, "a\nb\n", "{}: {o}", cli.name());
        assert!(o.stderr.contains("done"), "{}: {o}", cli.name());

        // a larger stream arrives intact, and the exit code still propagates
        let data: Vec<u8> = (0..200_000u32).map(|i| b'a' + (i % 26) as u8).collect();
        let o = d.cli_stdin(
            cli,
            &["run", "-i", "--rm", "busybox", "sh", "-c", "wc -c; exit 9"],
            &data,
        );
        assert_eq!(
            (o.code, o.out().trim()),
            (9, "200000"),
            "{}: {o}",
            cli.name()
        );
    }
}

#[test]
fn exec_i_reads_stdin() {
    let d = Daemon::start();
    d.berth(&["run", "-d", "--name", "ex", "busybox", "sleep", "1000"])
        .ok();
    for cli in Cli::ALL {
        let o = d.cli_stdin(
            cli,
            &["exec", "-i", "ex", "sh", "-c", "tr a-z A-Z"],
            b"hello\n",
        );
        assert_eq!(
            (o.code, o.stdout.as_str()),
            (0, "HELLO\n"),
            "{}: {o}",
            cli.name()
        );
    }
}
