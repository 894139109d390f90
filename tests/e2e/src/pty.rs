//! Driving a command through a pseudo-terminal, the way a user at a terminal would:
//! the child gets a new session with the pty slave as its controlling terminal and
//! as stdin/stdout/stderr; the test writes keystrokes to the master and reads the
//! screen output back.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::fcntl::{fcntl, FcntlArg, FdFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::pty::{openpty, Winsize};

pub struct Pty {
    master: File,
    child: Child,
    buf: Vec<u8>,
    pos: usize,
    eof: bool,
    status: Option<i32>,
}

fn cloexec(fd: &OwnedFd) -> io::Result<()> {
    fcntl(fd.as_raw_fd(), FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC))?;
    Ok(())
}

impl Pty {
    /// Spawn `cmd` on a new pty of `rows`×`cols`.
    pub fn spawn(mut cmd: Command, rows: u16, cols: u16) -> io::Result<Pty> {
        let ws = Winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        let pty = openpty(Some(&ws), None)?;
        cloexec(&pty.master)?;
        cloexec(&pty.slave)?;
        let out = pty.slave.try_clone()?;
        let err = pty.slave.try_clone()?;
        cmd.stdin(Stdio::from(pty.slave))
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err));
        cmd.env("TERM", "xterm");
        // SAFETY: only async-signal-safe calls (setsid, ioctl) between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                if libc::setsid() < 0 {
                    return Err(io::Error::last_os_error());
                }
                if libc::ioctl(0, libc::TIOCSCTTY as _, 0) < 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn()?;
        drop(cmd); // closes our copies of the slave, so reads see EOF when the child is gone
        Ok(Pty {
            master: File::from(pty.master),
            child,
            buf: Vec::new(),
            pos: 0,
            eof: false,
            status: None,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Type `s` (use `\r` for Enter, `\x04` for Ctrl-D, `\x03` for Ctrl-C).
    pub fn send(&mut self, s: &str) -> io::Result<()> {
        self.master.write_all(s.as_bytes())?;
        self.master.flush()
    }

    /// Read whatever arrives within `wait`; returns false at EOF.
    fn pump(&mut self, wait: Duration) -> bool {
        if self.eof {
            return false;
        }
        let ms = wait.as_millis().min(u16::MAX as u128) as u16;
        let mut fds = [PollFd::new(self.master.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(ms)) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => return true,
            Err(_) => {
                self.eof = true;
                return false;
            }
        }
        let mut chunk = [0u8; 4096];
        match self.master.read(&mut chunk) {
            Ok(0) => {
                self.eof = true;
                false
            }
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                true
            }
            // EIO: every slave fd is closed (the child and its children are gone).
            Err(e) if e.kind() == io::ErrorKind::Interrupted => true,
            Err(_) => {
                self.eof = true;
                false
            }
        }
    }

    /// Wait until `needle` appears in the output after the previous match; the cursor
    /// moves past it. On timeout or EOF the error holds everything seen so far.
    pub fn expect(&mut self, needle: &str, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        loop {
            let hay = &self.buf[self.pos..];
            if let Some(i) = find(hay, needle.as_bytes()) {
                self.pos += i + needle.len();
                return Ok(());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || !self.pump(left.min(Duration::from_millis(100))) && self.eof {
                return Err(format!(
                    "{} waiting for {needle:?}; output so far:\n{}",
                    if self.eof { "EOF" } else { "timed out" },
                    self.output()
                ));
            }
        }
    }

    /// Everything the terminal showed so far.
    pub fn output(&self) -> String {
        String::from_utf8_lossy(&self.buf).into_owned()
    }

    /// Wait for the child to exit (reading output meanwhile); kills it at the deadline.
    /// Returns its exit code (-1 for a signal), or None if it had to be killed.
    pub fn wait(&mut self, timeout: Duration) -> Option<i32> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(code) = self.status {
                return Some(code);
            }
            if let Ok(Some(st)) = self.child.try_wait() {
                // pick up the last output
                while self.pump(Duration::from_millis(20)) {}
                self.status = Some(st.code().unwrap_or(-1));
                continue;
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                return None;
            }
            if !self.pump(Duration::from_millis(20)) {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

impl Drop for Pty {
    fn drop(&mut self) {
        if self.status.is_none() && !matches!(self.child.try_wait(), Ok(Some(_))) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drives_an_interactive_shell() {
        let mut cmd = Command::new("/bin/busybox");
        cmd.args(["sh", "-i"]).env("PS1", "PROMPT# ");
        let mut p = Pty::spawn(cmd, 24, 80).unwrap();
        p.expect("PROMPT# ", Duration::from_secs(10)).unwrap();
        // the shell has a controlling terminal
        p.send("tty; [ -t 0 ] && echo IS-A-TTY\r").unwrap();
        p.expect("/dev/pts/", Duration::from_secs(10)).unwrap();
        p.expect("IS-A-TTY", Duration::from_secs(10)).unwrap();
        p.send("stty size\r").unwrap();
        p.expect("24 80", Duration::from_secs(10)).unwrap();
        p.send("echo $((6*7))\r").unwrap();
        p.expect("42", Duration::from_secs(10)).unwrap();
        p.send("exit 5\r").unwrap();
        assert_eq!(p.wait(Duration::from_secs(10)), Some(5), "{}", p.output());
    }

    #[test]
    fn expect_reports_eof_with_output() {
        let mut cmd = Command::new("/bin/sh");
        cmd.args(["-c", "echo only-this"]);
        let mut p = Pty::spawn(cmd, 24, 80).unwrap();
        let err = p.expect("never", Duration::from_secs(10)).unwrap_err();
        assert!(err.contains("only-this"), "{err}");
        assert_eq!(p.wait(Duration::from_secs(5)), Some(0));
    }
}
