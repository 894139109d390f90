//! `ssh://[user@]host[:port][/socket]` daemons, as the docker CLI reaches them: the
//! system `ssh` client runs `<cli> [--host=unix:///socket] system dial-stdio` on the
//! remote host and HTTP goes over the child's stdin/stdout.
//!
//! The remote program is `berth` unless `BERTH_SSH_REMOTE_CLI` names another (`docker`
//! for a host with the docker CLI; berth's CLI installed or linked as `docker` serves
//! the docker CLI's `ssh://` connections the same way).

use std::pin::Pin;
use std::process::Stdio;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use anyhow::{bail, Result};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

/// The environment variable naming the program run on the remote host.
pub const REMOTE_CLI_ENV: &str = "BERTH_SSH_REMOTE_CLI";
pub const DEFAULT_REMOTE_CLI: &str = "berth";

/// A parsed `ssh://` daemon URL (docker's `connhelper/ssh.Spec`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    pub user: Option<String>,
    pub host: String,
    pub port: Option<u16>,
    /// The daemon socket on the remote host ("" for the remote CLI's default).
    pub path: String,
}

fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned()
}

impl Spec {
    /// Parses `ssh://[user@]host[:port][/path]` with docker's rules: no password, no
    /// query, no fragment, a host is required.
    pub fn parse(url: &str) -> Result<Spec> {
        let u = url::Url::parse(url).map_err(|e| anyhow::anyhow!("invalid SSH URL: {e}"))?;
        if u.scheme() != "ssh" {
            bail!("invalid SSH URL: incorrect scheme: {}", u.scheme());
        }
        if u.password().is_some() {
            bail!("invalid SSH URL: plain-text password is not supported");
        }
        let host = u.host_str().unwrap_or("").trim_start_matches('[').trim_end_matches(']').to_owned();
        if host.is_empty() {
            bail!("invalid SSH URL: hostname is empty");
        }
        if let Some(q) = u.query().filter(|q| !q.is_empty()) {
            bail!("invalid SSH URL: query parameters are not allowed: {q:?}");
        }
        if let Some(f) = u.fragment().filter(|f| !f.is_empty()) {
            bail!("invalid SSH URL: fragments are not allowed: {f:?}");
        }
        let user = Some(decode(u.username())).filter(|s| !s.is_empty());
        Ok(Spec {
            user,
            host,
            port: u.port(),
            path: decode(u.path()),
        })
    }

    /// The command run on the remote host, as docker builds it: the socket path
    /// becomes `--host=unix://PATH` when there is one.
    pub fn remote_command(&self, cli: &str) -> Vec<String> {
        let mut cmd = vec![cli.to_owned()];
        if !self.path.trim_matches('/').is_empty() {
            cmd.push(format!("--host=unix://{}", self.path));
        }
        cmd.push("system".into());
        cmd.push("dial-stdio".into());
        cmd
    }

    /// `ssh`'s arguments (without `ssh` itself): `-l USER -p PORT -o ConnectTimeout=30
    /// -T -- HOST 'REMOTE COMMAND'`, every value from the URL quoted for the remote shell
    /// exactly as the docker CLI does it.
    pub fn ssh_args(&self, cli: &str) -> Result<Vec<String>> {
        let mut args = Vec::new();
        if let Some(user) = &self.user {
            args.push("-l".into());
            args.push(quote(user)?);
        }
        if let Some(port) = self.port {
            args.push("-p".into());
            args.push(port.to_string());
        }
        args.push("-o ConnectTimeout=30".into());
        args.push("-T".into());
        args.push("--".into());
        args.push(quote(&self.host)?);
        let remote = self
            .remote_command(cli)
            .iter()
            .map(|a| quote(a))
            .collect::<Result<Vec<_>>>()?;
        args.push(remote.join(" "));
        Ok(args)
    }
}

/// Quotes a word for a POSIX shell the way docker's `syntax.Quote` does: unchanged if
/// it needs no quoting, else in single quotes; control characters are refused.
pub fn quote(s: &str) -> Result<String> {
    if s.chars().any(|c| c.is_control()) {
        bail!("invalid argument {s:?}: contains a control character");
    }
    if s.is_empty() {
        return Ok("''".into());
    }
    let plain = s
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "_@%+=:,./-".contains(c));
    // A leading `~` or `#`, or `=` in the first word could change meaning; `=` cannot,
    // as the command word itself never contains one here.
    if plain {
        return Ok(s.to_owned());
    }
    Ok(format!("'{}'", s.replace('\'', r"'\''")))
}

/// The remote CLI name: `$BERTH_SSH_REMOTE_CLI` or `berth`.
pub fn remote_cli() -> String {
    std::env::var(REMOTE_CLI_ENV)
        .ok()
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_REMOTE_CLI.to_owned())
}

/// What ssh wrote to its stderr, collected in the background.
#[derive(Default)]
struct Diag {
    text: std::sync::Mutex<String>,
    done: tokio::sync::Notify,
    finished: std::sync::atomic::AtomicBool,
}

/// An `ssh` child whose stdout/stdin are the connection's read/write sides. Shutting
/// down the write side closes ssh's stdin (the remote `dial-stdio` then half-closes
/// its daemon connection); dropping it kills ssh. When ssh ends before sending a single
/// byte, reads fail with its exit status and stderr.
pub struct SshStream {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: ChildStdout,
    got_data: bool,
    diag: Arc<Diag>,
    failing: Option<Pin<Box<dyn std::future::Future<Output = std::io::Error> + Send>>>,
    /// The diagnosis once made (reads and writes may both ask for it again).
    failed: Option<(std::io::ErrorKind, String)>,
    argv: Vec<String>,
}

/// Starts `ssh ARGS` (in its own session, killed if berth dies, like the docker CLI's
/// `commandconn`).
pub fn spawn(spec: &Spec, cli: &str) -> Result<SshStream> {
    use anyhow::Context as _;
    let args = spec.ssh_args(cli)?;
    let mut cmd = Command::new("ssh");
    cmd.args(&args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    // SAFETY: setsid and prctl are async-signal-safe and touch no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            // Own session: a ProxyCommand's children and ssh itself are not reached by
            // the terminal's signals (docker does the same).
            let _ = nix::unistd::setsid();
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    let mut child = cmd
        .spawn()
        .with_context(|| "cannot run ssh (is the OpenSSH client installed?)")?;
    let stdin = child.stdin.take();
    let stdout = child.stdout.take().context("ssh stdout")?;
    let stderr = child.stderr.take().context("ssh stderr")?;
    let diag = Arc::new(Diag::default());
    let d = diag.clone();
    tokio::spawn(async move {
        use tokio::io::AsyncReadExt;
        let mut stderr = stderr;
        let mut buf = [0u8; 4096];
        loop {
            match stderr.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let mut t = d.text.lock().unwrap_or_else(|p| p.into_inner());
                    // Keep it bounded: only the start matters for a diagnosis.
                    if t.len() < 64 * 1024 {
                        t.push_str(&String::from_utf8_lossy(&buf[..n]));
                    }
                }
            }
        }
        d.finished.store(true, std::sync::atomic::Ordering::SeqCst);
        d.done.notify_waiters();
    });
    let mut argv = vec!["ssh".to_owned()];
    argv.extend(args);
    Ok(SshStream {
        child,
        stdin,
        stdout,
        got_data: false,
        diag,
        failing: None,
        failed: None,
        argv,
    })
}

impl SshStream {
    /// The error for an ssh that ended without a byte of output: its exit status
    /// and stderr (waited for up to 2 s).
    fn failure(&mut self) -> Pin<Box<dyn std::future::Future<Output = std::io::Error> + Send>> {
        let diag = self.diag.clone();
        let argv = self.argv.clone();
        let pid = self.child.id();
        Box::pin(async move {
            let wait = async {
                while !diag.finished.load(std::sync::atomic::Ordering::SeqCst) {
                    let notified = diag.done.notified();
                    if diag.finished.load(std::sync::atomic::Ordering::SeqCst) {
                        break;
                    }
                    notified.await;
                }
            };
            let _ = tokio::time::timeout(Duration::from_secs(2), wait).await;
            let stderr = diag.text.lock().unwrap_or_else(|p| p.into_inner()).trim().to_owned();
            let status = pid
                .and_then(|p| exit_status(p as i32))
                .unwrap_or_else(|| "ended".into());
            std::io::Error::new(
                std::io::ErrorKind::ConnectionAborted,
                format!(
                    "command [{}] has exited with {status}, make sure the URL is valid, and berth (or docker) is installed on the remote host: stderr={stderr}",
                    argv.join(" ")
                ),
            )
        })
    }
}

/// "exit status N" of a child that has ended (without reaping it: tokio does that).
fn exit_status(pid: i32) -> Option<String> {
    use nix::sys::wait::{waitid, Id, WaitPidFlag, WaitStatus};
    for _ in 0..100 {
        match waitid(
            Id::Pid(nix::unistd::Pid::from_raw(pid)),
            WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT | WaitPidFlag::WNOHANG,
        ) {
            Ok(WaitStatus::Exited(_, code)) => return Some(format!("exit status {code}")),
            Ok(WaitStatus::Signaled(_, sig, _)) => return Some(format!("signal: {sig}")),
            Ok(_) => std::thread::sleep(Duration::from_millis(10)),
            Err(_) => return None,
        }
    }
    None
}

impl AsyncRead for SshStream {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        if this.failing.is_some() || this.failed.is_some() {
            return this.poll_failure(cx).map(Err);
        }
        let before = buf.filled().len();
        match Pin::new(&mut this.stdout).poll_read(cx, buf) {
            Poll::Ready(Ok(())) if buf.filled().len() == before && !this.got_data => this.poll_failure(cx).map(Err),
            Poll::Ready(Ok(())) => {
                this.got_data = true;
                Poll::Ready(Ok(()))
            }
            other => other,
        }
    }
}

impl SshStream {
    /// A write that failed because ssh is gone before answering: the error says why
    /// (its exit status and stderr), as a read would, not just "broken pipe".
    fn explain<T>(&mut self, cx: &mut Context<'_>, r: Poll<std::io::Result<T>>) -> Poll<std::io::Result<T>> {
        if self.failing.is_some() || self.failed.is_some() {
            return self.poll_failure(cx).map(Err);
        }
        match r {
            Poll::Ready(Err(e)) if !self.got_data && e.kind() == std::io::ErrorKind::BrokenPipe => {
                self.poll_failure(cx).map(Err)
            }
            other => other,
        }
    }

    /// The diagnosis of the failed ssh: made once (waiting for its stderr and exit),
    /// then the same error for every later read or write.
    fn poll_failure(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Error> {
        if let Some((kind, msg)) = &self.failed {
            return Poll::Ready(std::io::Error::new(*kind, msg.clone()));
        }
        if self.failing.is_none() {
            self.failing = Some(self.failure());
        }
        let f = self.failing.as_mut().expect("set above");
        match f.as_mut().poll(cx) {
            Poll::Ready(e) => {
                self.failed = Some((e.kind(), e.to_string()));
                self.failing = None;
                Poll::Ready(e)
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl AsyncWrite for SshStream {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<std::io::Result<usize>> {
        let this = &mut *self;
        let r = match this.stdin.as_mut() {
            Some(w) => Pin::new(w).poll_write(cx, data),
            None => Poll::Ready(Err(std::io::ErrorKind::BrokenPipe.into())),
        };
        this.explain(cx, r)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        let r = match this.stdin.as_mut() {
            Some(w) => Pin::new(w).poll_flush(cx),
            None => Poll::Ready(Ok(())),
        };
        this.explain(cx, r)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        if let Some(w) = self.stdin.as_mut() {
            if let Poll::Ready(Err(e)) = Pin::new(w).poll_flush(cx) {
                return Poll::Ready(Err(e));
            }
        }
        // Closing the pipe is ssh's EOF on the channel.
        self.stdin = None;
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let s = Spec::parse("ssh://root@127.0.0.1:2222/run/berth/berth.sock").unwrap();
        assert_eq!(
            s,
            Spec {
                user: Some("root".into()),
                host: "127.0.0.1".into(),
                port: Some(2222),
                path: "/run/berth/berth.sock".into()
            }
        );
        let s = Spec::parse("ssh://example.com").unwrap();
        assert_eq!((s.user, s.port, s.path.as_str()), (None, None, ""));
        assert_eq!(Spec::parse("ssh://[::1]:22").unwrap().host, "::1");
        for bad in ["ssh://u:pw@h", "ssh://h?x=1", "ssh://h#f", "ssh://", "ssh:///sock", "tcp://h:1"] {
            assert!(Spec::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn argv_like_docker() {
        let s = Spec::parse("ssh://me@host:2222").unwrap();
        assert_eq!(
            s.ssh_args("docker").unwrap(),
            ["-l", "me", "-p", "2222", "-o ConnectTimeout=30", "-T", "--", "host", "docker system dial-stdio"]
        );
        let s = Spec::parse("ssh://host/var/run/x%20y.sock").unwrap();
        assert_eq!(
            s.ssh_args("berth").unwrap(),
            ["-o ConnectTimeout=30", "-T", "--", "host", "berth '--host=unix:///var/run/x y.sock' system dial-stdio"]
        );
        // A path of "/" only is no path.
        assert_eq!(Spec::parse("ssh://host/").unwrap().remote_command("berth"), ["berth", "system", "dial-stdio"]);
        assert_eq!(
            Spec::parse("ssh://host/s.sock").unwrap().remote_command("docker"),
            ["docker", "--host=unix:///s.sock", "system", "dial-stdio"]
        );
    }

    #[test]
    fn quoting() {
        assert_eq!(quote("abc-1.2/x=y:z").unwrap(), "abc-1.2/x=y:z");
        assert_eq!(quote("a b").unwrap(), "'a b'");
        assert_eq!(quote("it's").unwrap(), r"'it'\''s'");
        assert_eq!(quote("$(reboot)").unwrap(), "'$(reboot)'");
        assert_eq!(quote("").unwrap(), "''");
        assert!(quote("a\nb").is_err());
    }
}
