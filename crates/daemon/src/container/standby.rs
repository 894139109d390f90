//! A shim started ahead of need (`berth-shim standby`), so that starting a container
//! does not wait for the shim program to start. The standby waits for its `run`
//! arguments on stdin; the next container start that needs a shim hands them over and
//! reads the `Ready` line from its stdout as from a shim it spawned, and a new standby
//! is made in the background. One is kept; a start that finds none (a burst) gets one
//! made on the spot. The standby holds nothing of any container; it ends at
//! end-of-file on stdin, i.e. when this daemon stops or dies.
//!
//! Standbys are forked by the shim zygote (`berth-shim zygote`, one per daemon, started
//! with the first standby and again if it dies), not started with `exec`: a fork of an
//! initialised process instead of ~1.3 ms of CPU loading and starting the program each
//! time. The zygote is asked over a `SOCK_SEQPACKET` socket (its stdin) and handed the
//! standby's stdin and stdout pipes (`SCM_RIGHTS`); it ends at end-of-file too.

use std::ffi::OsString;
use std::io;
use std::io::IoSlice;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use nix::sys::socket::{recv, sendmsg, socketpair, AddressFamily, ControlMessage, MsgFlags, SockFlag, SockType};
use tokio::io::{AsyncRead, AsyncWriteExt};
use tokio::net::unix::pipe;

/// Where a starting shim writes its `Ready` line.
pub type ShimOut = Pin<Box<dyn AsyncRead + Send>>;

struct Idle {
    stdin: pipe::Sender,
    stdout: pipe::Receiver,
}

#[derive(Default)]
pub struct Standby {
    idle: Mutex<Option<Idle>>,
    starting: AtomicBool,
    zygote: Mutex<Option<Zygote>>,
}

impl Standby {
    /// Hand `args` (a `berth-shim run` command line without the program) to a shim
    /// started ahead of need — the waiting standby, else one the zygote forks now (a
    /// start that found none waiting): its stdout, where the `Ready` line comes. None
    /// when neither can be had or an argument is not UTF-8: the caller starts the shim
    /// program itself.
    pub async fn hand(self: &Arc<Self>, shim: &Path, runtime_root: &Path, args: &[OsString]) -> Option<ShimOut> {
        let line = encode(args)?;
        let waiting = self.idle.lock().unwrap().take();
        if let Some(idle) = waiting {
            // A standby that is gone (killed) fails here; one is forked instead.
            if let Some(out) = give(idle, &line).await {
                return Some(out);
            }
        }
        let me = self.clone();
        let (shim, root) = (shim.to_owned(), runtime_root.to_owned());
        match tokio::task::spawn_blocking(move || me.fork(&shim, &root)).await.ok()? {
            Ok(idle) => give(idle, &line).await,
            Err(e) => {
                tracing::warn!(error = %e, "the shim zygote could not make a shim; starting one with exec");
                None
            }
        }
    }

    /// Make a standby in the background if none waits or is being made.
    /// `runtime_root` names the daemon it belongs to on its command line.
    pub fn refill(self: &Arc<Self>, shim: &Path, runtime_root: &Path) {
        if self.idle.lock().unwrap().is_some() || self.starting.swap(true, Ordering::AcqRel) {
            return;
        }
        let me = self.clone();
        let (shim, root) = (shim.to_owned(), runtime_root.to_owned());
        // On the blocking pool: asking the zygote waits for its fork (and the first
        // time for the zygote's own start, an exec), which would otherwise hold an async
        // worker while the start that asked for this standby is still answering.
        tokio::task::spawn_blocking(move || {
            match me.fork(&shim, &root) {
                Ok(idle) => *me.idle.lock().unwrap() = Some(idle),
                Err(e) => tracing::warn!(error = %e, "could not make a standby shim"),
            }
            me.starting.store(false, Ordering::Release);
        });
    }

    /// A new standby from the zygote, started first if there is none, and once more if
    /// the one there was is gone. Blocking; in the runtime's context (the pipes are
    /// registered with its reactor).
    fn fork(&self, shim: &Path, runtime_root: &Path) -> io::Result<Idle> {
        let mut zygote = self.zygote.lock().unwrap();
        let mut retried = false;
        loop {
            let z = match zygote.as_ref() {
                Some(z) => z,
                None => zygote.insert(Zygote::start(shim, runtime_root)?),
            };
            match z.fork() {
                Ok(idle) => return Ok(idle),
                Err(e) if !retried && e.kind() == io::ErrorKind::BrokenPipe => {
                    tracing::warn!(error = %e, "the shim zygote is gone; starting another");
                    *zygote = None;
                    retried = true;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// The line a standby reads: `args` as a JSON array. None when one is not UTF-8 (the
/// shim program is started with them instead).
fn encode(args: &[OsString]) -> Option<Vec<u8>> {
    let args: Vec<&str> = args.iter().map(|a| a.to_str()).collect::<Option<_>>()?;
    let mut line = serde_json::to_vec(&args).ok()?;
    line.push(b'\n');
    Some(line)
}

/// Hand a standby its arguments' `line`: its stdout.
async fn give(mut idle: Idle, line: &[u8]) -> Option<ShimOut> {
    idle.stdin.write_all(line).await.ok()?;
    idle.stdin.flush().await.ok()?;
    Some(Box::pin(idle.stdout))
}

/// berthd's end of the zygote's socket.
struct Zygote {
    sock: OwnedFd,
}

impl Zygote {
    fn start(shim: &Path, runtime_root: &Path) -> io::Result<Zygote> {
        let (ours, theirs) = socketpair(AddressFamily::Unix, SockType::SeqPacket, None, SockFlag::SOCK_CLOEXEC)?;
        let mut child = tokio::process::Command::new(shim)
            .arg("zygote")
            .arg("--runtime-root")
            .arg(runtime_root)
            .stdin(std::process::Stdio::from(theirs))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(false)
            .spawn()?;
        // Reap it when it exits (at end-of-file, or killed).
        tokio::spawn(async move {
            let _ = child.wait().await;
        });
        Ok(Zygote { sock: ours })
    }

    /// Ask for one standby: its stdin and stdout pipes made here, their far ends sent.
    /// `BrokenPipe` when the zygote is gone.
    fn fork(&self) -> io::Result<Idle> {
        let gone = || io::Error::new(io::ErrorKind::BrokenPipe, "the shim zygote is gone");
        let (in_r, in_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
        let (out_r, out_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
        let fds = [in_r.as_raw_fd(), out_w.as_raw_fd()];
        let sent = sendmsg::<()>(self.sock.as_raw_fd(), &[IoSlice::new(b"f")], &[ControlMessage::ScmRights(&fds)], MsgFlags::MSG_NOSIGNAL, None);
        match sent {
            Ok(_) => {}
            Err(nix::errno::Errno::EPIPE | nix::errno::Errno::ECONNRESET) => return Err(gone()),
            Err(e) => return Err(e.into()),
        }
        drop((in_r, out_w));
        let mut pid = [0u8; 4];
        match recv(self.sock.as_raw_fd(), &mut pid, MsgFlags::empty()) {
            Ok(4) => {}
            Ok(_) | Err(nix::errno::Errno::ECONNRESET) => return Err(gone()),
            Err(e) => return Err(e.into()),
        }
        if u32::from_ne_bytes(pid) == 0 {
            return Err(io::Error::other("the shim zygote could not fork"));
        }
        Ok(Idle { stdin: pipe::Sender::from_owned_fd(in_w)?, stdout: pipe::Receiver::from_owned_fd(out_r)? })
    }
}
