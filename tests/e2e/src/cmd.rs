//! Running CLI processes with a deadline, and following their output line by line.

use std::fmt;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

/// What a finished command left behind. `code` is -1 when it was killed by a signal
/// or by the harness's deadline (then `stderr` ends with a note saying so).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    pub code: i32,
    pub stdout: String,
    /// stdout as it came (`stdout` is its lossy UTF-8 form).
    pub stdout_bytes: Vec<u8>,
    pub stderr: String,
}

impl Output {
    pub fn success(&self) -> bool {
        self.code == 0
    }

    /// Panics with the full output unless the command exited 0; returns stdout.
    #[track_caller]
    pub fn ok(&self) -> &str {
        assert_eq!(self.code, 0, "command failed:\n{self}");
        &self.stdout
    }

    /// stdout with trailing newlines and carriage returns removed.
    pub fn out(&self) -> &str {
        self.stdout.trim_end_matches(['\n', '\r'])
    }

    /// stdout parsed as JSON (e.g. `inspect` output); panics with the output if it is not.
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{self}"))
    }

    /// stdout lines, blank lines dropped.
    pub fn lines(&self) -> Vec<&str> {
        self.stdout
            .lines()
            .filter(|l| !l.trim().is_empty())
            .collect()
    }
}

impl fmt::Display for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "exit code {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// Run `cmd` to completion, feeding `stdin` (then closing it) and killing it after
/// `timeout`. stdout and stderr are captured.
pub fn run_command(mut cmd: Command, stdin: Option<&[u8]>, timeout: Duration) -> Output {
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            return Output {
                code: -1,
                stdout: String::new(),
                stdout_bytes: Vec::new(),
                stderr: format!("failed to spawn {cmd:?}: {e}"),
            }
        }
    };
    let writer = stdin.map(|data| {
        let mut pipe = child.stdin.take().expect("stdin pipe");
        let data = data.to_vec();
        thread::spawn(move || {
            let _ = pipe.write_all(&data);
        })
    });
    let out = read_all(child.stdout.take().expect("stdout pipe"));
    let err = read_all(child.stderr.take().expect("stderr pipe"));

    let deadline = Instant::now() + timeout;
    let mut timed_out = false;
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break Some(st),
            Ok(None) if Instant::now() >= deadline => {
                timed_out = true;
                let _ = child.kill();
                break child.wait().ok();
            }
            Ok(None) => thread::sleep(Duration::from_millis(5)),
            Err(_) => break None,
        }
    };
    if let Some(w) = writer {
        let _ = w.join();
    }
    let stdout_bytes = out.join().unwrap_or_default();
    let stdout = String::from_utf8_lossy(&stdout_bytes).into_owned();
    let mut stderr = String::from_utf8_lossy(&err.join().unwrap_or_default()).into_owned();
    if timed_out {
        stderr.push_str(&format!("\n[harness: killed after {timeout:?}: {cmd:?}]"));
    }
    let code = status
        .and_then(|s| s.code())
        .filter(|_| !timed_out)
        .unwrap_or(-1);
    Output {
        code,
        stdout,
        stdout_bytes,
        stderr,
    }
}

fn read_all(mut r: impl Read + Send + 'static) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        buf
    })
}

/// Poll `cond` every 20 ms until it is true or `timeout` passes; returns the last result.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// A running process whose stdout and stderr lines are delivered as they come
/// (`logs -f`, long-running `run`). Killed on drop.
pub struct Spawned {
    child: Child,
    lines: Receiver<(bool, String)>,
    seen_out: Vec<String>,
    seen_err: Vec<String>,
}

impl Spawned {
    pub fn spawn(mut cmd: Command) -> std::io::Result<Spawned> {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn()?;
        let (tx, rx) = mpsc::channel();
        let tx2 = tx.clone();
        let out = child.stdout.take().expect("stdout pipe");
        let err = child.stderr.take().expect("stderr pipe");
        thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send((false, line)).is_err() {
                    break;
                }
            }
        });
        thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                if tx2.send((true, line)).is_err() {
                    break;
                }
            }
        });
        Ok(Spawned {
            child,
            lines: rx,
            seen_out: Vec::new(),
            seen_err: Vec::new(),
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Wait until a stdout line satisfies `pred`; returns it, or None at the deadline
    /// or when the process closed its output.
    pub fn wait_for_line(
        &mut self,
        timeout: Duration,
        mut pred: impl FnMut(&str) -> bool,
    ) -> Option<String> {
        if let Some(l) = self.seen_out.iter().find(|l| pred(l)) {
            return Some(l.clone());
        }
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok((true, line)) => self.seen_err.push(line),
                Ok((false, line)) => {
                    let hit = pred(&line);
                    self.seen_out.push(line.clone());
                    if hit {
                        return Some(line);
                    }
                }
                Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => {
                    return None
                }
            }
        }
    }

    /// Lines received so far on stdout.
    pub fn stdout_lines(&mut self) -> &[String] {
        self.drain();
        &self.seen_out
    }

    /// Lines received so far on stderr.
    pub fn stderr_lines(&mut self) -> &[String] {
        self.drain();
        &self.seen_err
    }

    fn drain(&mut self) {
        while let Ok((is_err, line)) = self.lines.try_recv() {
            if is_err {
                self.seen_err.push(line)
            } else {
                self.seen_out.push(line)
            }
        }
    }

    /// Has the process exited? Returns its exit code (-1 for a signal).
    pub fn try_exit(&mut self) -> Option<i32> {
        self.child
            .try_wait()
            .ok()
            .flatten()
            .map(|s| s.code().unwrap_or(-1))
    }

    /// Wait for exit up to `timeout`; kills it if still running. Returns the exit
    /// code, or None if it had to be killed.
    pub fn wait(&mut self, timeout: Duration) -> Option<i32> {
        let mut code = None;
        wait_until(timeout, || {
            code = self.try_exit();
            code.is_some()
        });
        if code.is_none() {
            self.kill();
        }
        code
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        if self.try_exit().is_none() {
            self.kill();
        }
    }
}

/// A TCP port on 127.0.0.1 free now, for a server a test starts (berthd on TCP, sshd).
/// Taken below the kernel's ephemeral range: a port `bind(0)` chose and the test let go
/// of can be handed to any other process's outgoing connection before the server binds
/// it (a unit test failed in CI that way); ports below the range are only ever taken by
/// an explicit bind. Each call moves on to the next port.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let ephemeral_start: u16 = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(32768);
    let (lo, span) = (ephemeral_start.saturating_sub(12000).max(1024), 10000u16.min(ephemeral_start.saturating_sub(1024)));
    if span > 100 {
        // Start somewhere of this process's own, so parallel test binaries seldom meet.
        let _ = NEXT.compare_exchange(0, (std::process::id() % u32::from(span)) as u16 + 1, Ordering::SeqCst, Ordering::SeqCst);
        for _ in 0..span {
            let p = lo + NEXT.fetch_add(1, Ordering::SeqCst) % span;
            if std::net::TcpListener::bind(("127.0.0.1", p)).is_ok() {
                return p;
            }
        }
    }
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_command_captures_and_times_out() {
        let mut c = Command::new("sh");
        c.args(["-c", "cat; echo err >&2; exit 3"]);
        let o = run_command(c, Some(b"in\n"), Duration::from_secs(10));
        assert_eq!(o.code, 3);
        assert_eq!(o.stdout, "in\n");
        assert_eq!(o.stderr, "err\n");

        let mut c = Command::new("sleep");
        c.arg("30");
        let t = Instant::now();
        let o = run_command(c, None, Duration::from_millis(200));
        assert_eq!(o.code, -1);
        assert!(o.stderr.contains("killed after"));
        assert!(t.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn spawned_lines_arrive_as_they_come() {
        let mut c = Command::new("sh");
        c.args(["-c", "echo one; sleep 0.2; echo two; sleep 30"]);
        let mut s = Spawned::spawn(c).unwrap();
        let t = Instant::now();
        assert_eq!(
            s.wait_for_line(Duration::from_secs(5), |l| l == "two")
                .as_deref(),
            Some("two")
        );
        assert_eq!(s.stdout_lines(), &["one".to_string(), "two".to_string()]);
        assert!(t.elapsed() < Duration::from_secs(5));
        assert_eq!(s.try_exit(), None);
        s.kill();
    }
}
