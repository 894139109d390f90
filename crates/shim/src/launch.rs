//! Deferred launch: the container is created ahead of time (a warm sandbox) and its
//! process is only chosen when the daemon starts it.
//!
//! libcontainer creates the container as usual — namespaces, cgroups, rootfs, pivot,
//! capabilities, seccomp — and then, after the start signal, hands control to an
//! [`Executor`] running inside the container's init process. [`LaunchExecutor`] reads
//! the real argv and environment from a pipe the shim writes on `Launch`, resolves the
//! executable the way libcontainer's default executor does, and execs it. A second
//! pipe, close-on-exec, reports the outcome: end-of-file means the exec happened; a
//! message means it could not (not found, not executable), and the init exits.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, RawFd};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::Result;
use libcontainer::oci_spec::runtime::Spec;
use libcontainer::workload::{Executor, ExecutorError, ExecutorValidationError};
use serde::{Deserialize, Serialize};

/// What the shim sends the init process on `Launch`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Launch {
    pub args: Vec<String>,
    pub env: Vec<String>,
}

/// The pipes between the shim and a deferred init process.
pub struct LaunchPipes {
    /// Shim ends: write the [`Launch`], read the outcome.
    pub launch_w: File,
    pub status_r: File,
    /// Init ends, closed in the shim once the container exists.
    pub launch_r: File,
    pub status_w: File,
}

impl LaunchPipes {
    pub fn new() -> Result<LaunchPipes> {
        let (launch_r, launch_w) = crate::run::pipe()?;
        let (status_r, status_w) = crate::run::pipe()?;
        Ok(LaunchPipes { launch_w, status_r, launch_r, status_w })
    }

    pub fn executor(&self) -> LaunchExecutor {
        LaunchExecutor {
            launch_fd: self.launch_r.as_raw_fd(),
            status_fd: self.status_w.as_raw_fd(),
            shim_fds: [self.launch_w.as_raw_fd(), self.status_r.as_raw_fd()],
        }
    }
}

/// A [`Launch`] on its way to the init process. [`Sending::begin`] writes what the
/// pipe's buffer takes at once — all of it, but for very long arguments — so it can
/// be done before the start signal and the init finds its process waiting;
/// [`Sending::finish`] writes the rest once the init reads.
pub struct Sending {
    /// The write end, until the whole message is in the pipe: then it is closed at
    /// once, so that the init, which reads to end-of-file, execs as soon as it is
    /// released rather than when the shim is done with libcontainer's state.
    w: Option<File>,
    msg: Vec<u8>,
    sent: usize,
}

impl Sending {
    pub fn begin(w: File, l: &Launch) -> Result<Sending> {
        let msg = serde_json::to_vec(l)?;
        let fd = w.as_raw_fd();
        set_nonblocking(fd, true)?;
        let mut sent = 0;
        while sent < msg.len() {
            match (&w).write(&msg[sent..]) {
                Ok(n) => sent += n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
        set_nonblocking(fd, false)?;
        let w = (sent < msg.len()).then_some(w);
        Ok(Sending { w, msg, sent })
    }

    /// Write the rest, close the pipe, and wait until the process was exec'd
    /// (`Ok(None)`) or failed (`Ok(Some(message))`).
    pub fn finish(self, mut status_r: File) -> Result<Option<String>> {
        if let Some(mut w) = self.w {
            w.write_all(&self.msg[self.sent..])?;
        }
        let mut msg = String::new();
        status_r.read_to_string(&mut msg)?;
        Ok(if msg.is_empty() { None } else { Some(msg) })
    }
}

fn set_nonblocking(fd: RawFd, on: bool) -> Result<()> {
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    // `fd` is the open write end owned by the caller's `File`.
    let mut flags = OFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GETFL)?);
    flags.set(OFlag::O_NONBLOCK, on);
    fcntl(fd, FcntlArg::F_SETFL(flags))?;
    Ok(())
}

/// Runs in the container's init process (a fork of the shim), after libcontainer has
/// set everything up and received the start signal.
#[derive(Clone)]
pub struct LaunchExecutor {
    launch_fd: RawFd,
    status_fd: RawFd,
    /// The shim's ends, which the forked init inherited too: closed first, or the
    /// launch pipe would never reach end-of-file.
    shim_fds: [RawFd; 2],
}

impl LaunchExecutor {
    fn fail(&self, code: i32, msg: &str) -> ! {
        // SAFETY: the status fd is ours (inherited from the shim); after reporting,
        // leave at once without running any destructors of the forked process.
        unsafe {
            let mut f = File::from_raw_fd(self.status_fd);
            let _ = f.write_all(msg.as_bytes());
            libc::_exit(code)
        }
    }
}

/// `args[0]` resolved as libcontainer's default executor does: a name with a slash as
/// is, otherwise the first `PATH` entry that has it.
fn resolve(name: &str, path_var: &str) -> Option<PathBuf> {
    if name.contains('/') {
        let p = PathBuf::from(name);
        return p.exists().then_some(p);
    }
    path_var.split(':').map(|dir| PathBuf::from(dir).join(name)).find(|p| p.exists())
}

impl Executor for LaunchExecutor {
    fn exec(&self, _spec: &Spec) -> Result<(), ExecutorError> {
        for fd in self.shim_fds {
            // SAFETY: these are this process's copies of the shim's pipe ends.
            unsafe { libc::close(fd) };
        }
        // SAFETY: the launch fd was inherited from the shim and is used only here.
        let mut f = unsafe { File::from_raw_fd(self.launch_fd) };
        let mut buf = Vec::new();
        if f.read_to_end(&mut buf).is_err() || buf.is_empty() {
            // The sandbox was discarded without being used.
            // SAFETY: plain process exit.
            unsafe { libc::_exit(0) }
        }
        drop(f);
        let l: Launch = match serde_json::from_slice(&buf) {
            Ok(l) => l,
            Err(e) => self.fail(1, &format!("bad launch message: {e}")),
        };
        let Some(argv0) = l.args.first().cloned() else { self.fail(1, "no command specified") };
        // The spec's environment (with the HOME libcontainer derived for the user) is
        // in our environment now; the launch's replaces it, keeping HOME if unset.
        let home = std::env::var_os("HOME");
        let vars: Vec<(String, String)> = std::env::vars().collect();
        for (k, _) in vars {
            // SAFETY: single-threaded init process.
            unsafe { std::env::remove_var(k) };
        }
        for e in &l.env {
            let (k, v) = e.split_once('=').unwrap_or((e.as_str(), ""));
            if !k.is_empty() {
                // SAFETY: as above.
                unsafe { std::env::set_var(k, v) };
            }
        }
        if std::env::var_os("HOME").is_none_or(|h| h.is_empty()) {
            if let Some(h) = home {
                // SAFETY: as above.
                unsafe { std::env::set_var("HOME", h) };
            }
        }
        let Some(path_var) = std::env::var("PATH").ok() else {
            self.fail(127, "PATH environment variable is not set")
        };
        let exe = match resolve(&argv0, &path_var) {
            Some(p) => p,
            None => self.fail(127, &format!("executable '{argv0}' not found in $PATH")),
        };
        match std::fs::metadata(&exe) {
            Ok(m) if m.is_file() && m.permissions().mode() & 0o111 != 0 => {}
            _ => self.fail(126, &format!("executable '{argv0}' does not have the correct permission set")),
        }
        let cargs: Vec<std::ffi::CString> =
            l.args.iter().map(|a| std::ffi::CString::new(a.as_bytes()).unwrap_or_default()).collect();
        // The path found above, not a second `PATH` search by `execvp` (a failed
        // `execve` per entry before it): runc, too, execs what its lookup found.
        let path = std::ffi::CString::new(exe.as_os_str().as_encoded_bytes()).unwrap_or_default();
        let err = nix::unistd::execv(&path, &cargs).unwrap_err();
        exec_failed(&exe, err)
    }

    fn validate(&self, _spec: &Spec) -> Result<(), ExecutorValidationError> {
        Ok(())
    }
}

/// The `execve` of a file the checks before the start accepted failed (a script without
/// a `#!` line, an interpreter or ELF loader missing from the image): as runc's init,
/// the error on the process's stderr in Go's words (`exec /app.sh: exec format error`)
/// and exit status 1. The container has started; its process ends at once.
fn exec_failed(path: &Path, err: nix::errno::Errno) -> ! {
    let msg = format!("exec {}: {}\n", path.display(), go_words(err));
    // SAFETY: a write of a buffer valid for the call to the process's stderr, then an
    // exit that runs nothing of the forked process.
    unsafe {
        libc::write(2, msg.as_ptr().cast(), msg.len());
        libc::_exit(1)
    }
}

/// An errno as Go's syscall package words it (glibc's text, first letter lower case):
/// "exec format error", "no such file or directory", "permission denied".
fn go_words(err: nix::errno::Errno) -> String {
    let desc = err.desc();
    let mut c = desc.chars();
    c.next().map(|f| f.to_lowercase().chain(c).collect()).unwrap_or_default()
}

/// libcontainer's default executor for a container whose process is known at creation,
/// but exec'ing the path its own check found (`validate`, kept as it is), as runc does,
/// instead of `execvp`: no failed `execve` per `PATH` entry before the right one, and
/// no retry through `/bin/sh` of a file without a `#!` line (Docker runs none; the
/// warm sandbox's [`LaunchExecutor`] does not either).
#[derive(Clone)]
pub struct ResolvedExecutor(Box<dyn Executor>);

impl ResolvedExecutor {
    pub fn new() -> ResolvedExecutor {
        ResolvedExecutor(libcontainer::workload::default::get_executor())
    }
}

impl Executor for ResolvedExecutor {
    fn exec(&self, spec: &Spec) -> Result<(), ExecutorError> {
        let args = spec.process().as_ref().and_then(|p| p.args().as_ref()).ok_or(ExecutorError::InvalidArg)?;
        let argv0 = args.first().ok_or(ExecutorError::InvalidArg)?;
        // The spec's environment is this process's by now (`setup_envs`).
        let path_var = std::env::var("PATH").unwrap_or_default();
        let Some(exe) = resolve(argv0, &path_var) else { return self.0.exec(spec) };
        let cargs: Vec<std::ffi::CString> =
            args.iter().map(|a| std::ffi::CString::new(a.as_bytes()).unwrap_or_default()).collect();
        let path = std::ffi::CString::new(exe.as_os_str().as_encoded_bytes()).map_err(|_| ExecutorError::InvalidArg)?;
        let err = nix::unistd::execv(&path, &cargs).unwrap_err();
        exec_failed(&exe, err)
    }

    fn validate(&self, spec: &Spec) -> Result<(), ExecutorValidationError> {
        self.0.validate(spec)
    }

    fn setup_envs(&self, envs: std::collections::HashMap<String, String>) -> Result<(), libcontainer::workload::ExecutorSetEnvsError> {
        self.0.setup_envs(envs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_like_the_default_executor() {
        assert_eq!(resolve("sh", "/nonexistent:/bin"), Some(PathBuf::from("/bin/sh")));
        assert_eq!(resolve("/bin/sh", ""), Some(PathBuf::from("/bin/sh")));
        assert_eq!(resolve("no-such-cmd-berth", "/bin:/usr/bin"), None);
        assert_eq!(resolve("./no-such", "/bin"), None);
    }

    #[test]
    fn exec_errors_are_worded_as_go_words_them() {
        use nix::errno::Errno;
        assert_eq!(go_words(Errno::ENOEXEC), "exec format error");
        assert_eq!(go_words(Errno::ENOENT), "no such file or directory");
        assert_eq!(go_words(Errno::EACCES), "permission denied");
    }

    #[test]
    fn launch_reports_exec_and_failure() {
        let p = LaunchPipes::new().unwrap();
        let LaunchPipes { launch_w, status_r, launch_r, status_w } = p;
        let child = std::thread::spawn(move || {
            let mut r = launch_r;
            let mut buf = Vec::new();
            r.read_to_end(&mut buf).unwrap();
            let l: Launch = serde_json::from_slice(&buf).unwrap();
            let mut w = status_w;
            w.write_all(format!("executable '{}' not found in $PATH", l.args[0]).as_bytes()).unwrap();
        });
        let l = Launch { args: vec!["nope".into()], env: vec![] };
        let got = Sending::begin(launch_w, &l).unwrap().finish(status_r).unwrap();
        child.join().unwrap();
        assert_eq!(got.as_deref(), Some("executable 'nope' not found in $PATH"));
    }

    #[test]
    fn a_launch_that_fits_the_pipe_reaches_end_of_file_before_the_finish() {
        let LaunchPipes { launch_w, status_r, launch_r, status_w } = LaunchPipes::new().unwrap();
        let l = Launch { args: vec!["true".into()], env: vec!["A=b".into()] };
        let sending = Sending::begin(launch_w, &l).unwrap();
        // The init reads to end-of-file while the shim has not called `finish` (it is
        // saving libcontainer's state then): that read must not wait for it.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut r = launch_r;
            let mut buf = Vec::new();
            r.read_to_end(&mut buf).unwrap();
            tx.send(buf).unwrap();
        });
        let buf = rx.recv_timeout(std::time::Duration::from_secs(10)).expect("end-of-file before finish");
        assert_eq!(serde_json::from_slice::<Launch>(&buf).unwrap(), l);
        drop(status_w);
        assert_eq!(sending.finish(status_r).unwrap(), None);
    }

    #[test]
    fn a_launch_larger_than_the_pipe_is_sent_whole_after_the_start() {
        let LaunchPipes { launch_w, status_r, launch_r, status_w } = LaunchPipes::new().unwrap();
        let l = Launch { args: vec!["sh".into(), "x".repeat(1 << 20)], env: vec!["A=b".into()] };
        // Nobody reads yet (the init waits for its start signal): begin must not block.
        let sending = Sending::begin(launch_w, &l).unwrap();
        assert!(sending.sent > 0 && sending.sent < sending.msg.len());
        let child = std::thread::spawn(move || {
            let mut r = launch_r;
            let mut buf = Vec::new();
            r.read_to_end(&mut buf).unwrap();
            drop(status_w);
            serde_json::from_slice::<Launch>(&buf).unwrap()
        });
        assert_eq!(sending.finish(status_r).unwrap(), None);
        assert_eq!(child.join().unwrap(), l);
    }
}
