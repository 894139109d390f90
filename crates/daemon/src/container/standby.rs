//! A shim started ahead of need (`berth-shim standby`), so that starting a container
//! does not wait for the kernel to load and start the shim program (~2 ms of a cold
//! start here, most of it before the shim's `main`). The standby waits for its `run`
//! arguments on stdin; the next container start that needs a shim hands them over and
//! reads the `Ready` line from its stdout as from a shim it spawned, and a new standby
//! is started in the background. One is kept: a burst of starts spawns the others as
//! before. The standby holds nothing of any container; it ends at end-of-file on stdin,
//! i.e. when this daemon stops or dies.

use std::ffi::OsString;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use tokio::io::AsyncWriteExt;
use tokio::process::{ChildStdin, ChildStdout};

struct Idle {
    stdin: ChildStdin,
    stdout: ChildStdout,
}

#[derive(Default)]
pub struct Standby {
    idle: Mutex<Option<Idle>>,
    starting: AtomicBool,
}

impl Standby {
    /// Hand `args` (a `berth-shim run` command line without the program) to the waiting
    /// shim: its stdout, where the `Ready` line comes. None when no standby is waiting,
    /// or it is gone, or an argument is not UTF-8: the caller spawns a shim itself.
    pub async fn hand(&self, args: &[OsString]) -> Option<ChildStdout> {
        let args: Vec<&str> = args.iter().map(|a| a.to_str()).collect::<Option<_>>()?;
        let mut idle = self.idle.lock().unwrap().take()?;
        let mut line = serde_json::to_vec(&args).ok()?;
        line.push(b'\n');
        idle.stdin.write_all(&line).await.ok()?;
        idle.stdin.flush().await.ok()?;
        Some(idle.stdout)
    }

    /// Start a standby in the background if none waits or is being started.
    /// `runtime_root` names the daemon it belongs to on its command line.
    pub fn refill(self: &std::sync::Arc<Self>, shim: &Path, runtime_root: &Path) {
        if self.idle.lock().unwrap().is_some() || self.starting.swap(true, Ordering::AcqRel) {
            return;
        }
        let me = self.clone();
        let (shim, root) = (shim.to_owned(), runtime_root.to_owned());
        // On the blocking pool: the spawn returns only once the child has exec'd (a
        // vfork), ~1 ms that would otherwise hold an async worker while the start that
        // asked for this standby is still answering its client.
        tokio::task::spawn_blocking(move || {
            match spawn(&shim, &root) {
                Ok(idle) => *me.idle.lock().unwrap() = Some(idle),
                Err(e) => tracing::warn!(error = %e, "could not start a standby shim"),
            }
            me.starting.store(false, Ordering::Release);
        });
    }
}

fn spawn(shim: &Path, runtime_root: &Path) -> std::io::Result<Idle> {
    let mut child = tokio::process::Command::new(shim)
        .arg("standby")
        .arg("--runtime-root")
        .arg(runtime_root)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(false)
        .spawn()?;
    let idle = Idle { stdin: child.stdin.take().expect("piped"), stdout: child.stdout.take().expect("piped") };
    // Reap it when it exits, as a container's shim or at end-of-file.
    tokio::spawn(async move {
        let _ = child.wait().await;
    });
    Ok(idle)
}
