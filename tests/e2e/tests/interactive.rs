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

/// Ctrl-P Ctrl-Q (or `--detach-keys`) detaches from `run -it`, `attach` and
/// `exec -it`: the client exits 0, the container keeps running with its terminal,
/// and attaching again finds the same shell.
#[test]
fn detach_keys_leave_the_container_running() {
    let d = Daemon::start();
    for cli in Cli::ALL {
        let name = format!("detach-{}", cli.name());
        let mut p = d.pty(cli, &["run", "-it", "--name", &name, "busybox", "sh"]);
        p.expect("# ", T).unwrap_or_else(|e| panic!("{}: no prompt: {e}", cli.name()));
        // seen by the shell before the detach (busybox ash may still be reading the
        // answer to its cursor query right after the prompt, and eat what is typed)
        p.send("export MARK=still-here; echo set-$MARK\r").unwrap();
        p.expect("set-still-here", T).unwrap_or_else(|e| panic!("{}: {e}", cli.name()));
        p.send("\x10\x11").unwrap();
        assert_eq!(p.wait(T), Some(0), "{}: detach from run -it; screen:\n{}", cli.name(), p.output());
        assert_eq!(d.inspect(&name)["State"]["Status"], "running", "{}: the container stopped", cli.name());

        // attach with custom keys, and the shell is the same one.
        let mut a = d.pty(cli, &["attach", "--detach-keys", "ctrl-a,x", &name]);
        std::thread::sleep(Duration::from_millis(300));
        a.send("echo $MARK\r").unwrap();
        a.expect("still-here", T).unwrap_or_else(|e| panic!("{}: {e}", cli.name()));
        a.send("\x01x").unwrap();
        // As the docker CLI does: `attach` reports the detach and exits 1.
        assert_eq!(a.wait(T), Some(1), "{}: detach from attach; screen:\n{}", cli.name(), a.output());
        assert!(a.output().contains("read escape sequence"), "{}: {}", cli.name(), a.output());
        assert_eq!(d.inspect(&name)["State"]["Status"], "running");

        // exec -it detaches the same way; the exec'd shell is left behind.
        let mut e = d.pty(cli, &["exec", "-it", &name, "sh"]);
        e.expect("# ", T).unwrap_or_else(|e| panic!("{}: no exec prompt: {e}", cli.name()));
        e.send("\x10\x11").unwrap();
        assert_eq!(e.wait(T), Some(1), "{}: detach from exec -it; screen:\n{}", cli.name(), e.output());
        assert!(e.output().contains("read escape sequence"), "{}: {}", cli.name(), e.output());
        assert_eq!(d.inspect(&name)["State"]["Status"], "running");
        d.berth(&["rm", "-f", &name]).ok();
    }
}

/// The daemon honours `detachKeys` itself (for clients that do not look for the keys,
/// such as raw API users): the hijacked attach ends at the sequence, the keys never
/// reach the container, and bad keys are a 400.
#[test]
fn the_daemon_detaches_on_the_keys_and_refuses_bad_ones() {
    let d = Daemon::start();
    let id = d.berth(&["run", "-dit", "busybox", "sh"]).ok().trim().to_owned();
    let r = d.api("POST", &format!("/containers/{id}/attach?stream=1&stdin=1&stdout=1&detachKeys=ctrl-9"));
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("Invalid detach keys (ctrl-9) provided"), "{}", r.text());
    let r = d.api_json("POST", &format!("/containers/{id}/exec"), &serde_json::json!({"Cmd": ["true"], "DetachKeys": "bogus"}));
    assert_eq!((r.status, r.message()), (400, "Invalid escape keys (bogus) provided".to_owned()), "{}", r.text());

    // A raw hijack: send a command, then ctrl-a,x; the daemon closes the stream.
    use std::io::{Read, Write};
    let mut s = std::os::unix::net::UnixStream::connect(d.socket()).unwrap();
    write!(
        s,
        "POST /containers/{id}/attach?stream=1&stdin=1&stdout=1&stderr=1&detachKeys=ctrl-a,x HTTP/1.1\r\nHost: d\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 0\r\n\r\n"
    )
    .unwrap();
    s.set_read_timeout(Some(T)).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    s.write_all(b"echo marker-$((20+22))\n").unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&got).contains("marker-42") {
        let n = s.read(&mut buf).expect("output of the command");
        assert!(n > 0, "stream ended early: {}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
    s.write_all(b"\x01x").unwrap();
    // read_to_end returns only because the daemon closed the stream.
    s.read_to_end(&mut got).expect("the daemon ends the stream at the keys");
    // The stream ended at the keys and the shell still runs, its stdin open.
    assert_eq!(d.inspect(&id)["State"]["Status"], "running");
    let o = d.berth(&["exec", &id, "sh", "-c", "ls /proc/1/fd/0 -l"]);
    assert!(o.success(), "{o}");
    d.berth(&["rm", "-f", &id]).ok();
}

/// A resize that comes before its exec runs waits for it, as dockerd's does (a
/// client's first resize can overtake the start), then sizes the exec's terminal.
#[test]
fn an_exec_resize_waits_for_the_exec_to_run() {
    let d = Daemon::start();
    d.berth(&["run", "-d", "--name", "rs", "busybox", "sleep", "60"]).ok();
    let r = d.api_json("POST", "/v1.41/containers/rs/exec", &serde_json::json!({"Cmd": ["sleep", "5"], "Tty": true}));
    let eid = r.json()["Id"].as_str().unwrap().to_owned();
    std::thread::scope(|s| {
        let early = s.spawn(|| d.api("POST", &format!("/v1.41/exec/{eid}/resize?h=33&w=77")).status);
        std::thread::sleep(Duration::from_millis(300));
        let r = d.api_json("POST", &format!("/v1.41/exec/{eid}/start"), &serde_json::json!({"Detach": true, "Tty": true}));
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(early.join().unwrap(), 200);
    });
    d.berth(&["rm", "-f", "rs"]).ok();
}
