//! Attach plumbing: raw terminal mode, stdin forwarding with half-close, output
//! demultiplexing, TTY resize and the signal proxy.

use std::os::fd::AsRawFd;

use anyhow::Result;
use nix::sys::termios::{self, SetArg, Termios};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::signal::unix::{signal, SignalKind};

use crate::client::{Client, Hijacked};

pub fn stdin_is_tty() -> bool {
    nix::unistd::isatty(std::io::stdin().as_raw_fd()).unwrap_or(false)
}
pub fn stdout_is_tty() -> bool {
    nix::unistd::isatty(std::io::stdout().as_raw_fd()).unwrap_or(false)
}
pub fn stderr_is_tty() -> bool {
    nix::unistd::isatty(std::io::stderr().as_raw_fd()).unwrap_or(false)
}

/// Terminal size (rows, cols) of stdout, else stdin.
pub fn term_size() -> Option<(u16, u16)> {
    for fd in [std::io::stdout().as_raw_fd(), std::io::stdin().as_raw_fd()] {
        let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
        // SAFETY: TIOCGWINSZ writes a winsize into the pointer we pass.
        let r = unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut ws) };
        if r == 0 && ws.ws_row > 0 && ws.ws_col > 0 {
            return Some((ws.ws_row, ws.ws_col));
        }
    }
    None
}

/// Puts the local terminal (stdin) into raw mode; restores it on drop.
pub struct RawMode {
    orig: Termios,
}

impl RawMode {
    pub fn enable() -> Option<RawMode> {
        let stdin = std::io::stdin();
        if !stdin_is_tty() {
            return None;
        }
        let orig = termios::tcgetattr(&stdin).ok()?;
        let mut raw = orig.clone();
        // Fully raw like docker's term.MakeRaw: the container's pty already
        // produces \r\n, so local output processing would double the \r.
        termios::cfmakeraw(&mut raw);
        termios::tcsetattr(&stdin, SetArg::TCSANOW, &raw).ok()?;
        Some(RawMode { orig })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(std::io::stdin(), SetArg::TCSANOW, &self.orig);
    }
}

/// Copies output from the daemon to our stdout/stderr until it closes the stream.
/// Non-TTY streams are multiplexed (8-byte frame headers); TTY streams are raw.
pub async fn copy_output<R: AsyncRead + Unpin>(mut read: R, tty: bool) -> Result<()> {
    let mut stdout = tokio::io::stdout();
    let mut stderr = tokio::io::stderr();
    if tty {
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            let n = read.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            stdout.write_all(&buf[..n]).await?;
            stdout.flush().await?;
        }
        return Ok(());
    }
    // Frames are read through a buffer and written in batches: a batch goes out when
    // the other stream's turn comes, when it is large, or when no more input is
    // buffered (so live output is never held back waiting for more).
    let mut read = tokio::io::BufReader::with_capacity(64 * 1024, read);
    let mut header = [0u8; 8];
    let mut batch: Vec<u8> = Vec::with_capacity(64 * 1024);
    let mut batch_is_err = false;
    async fn flush_to<W: AsyncWrite + Unpin>(w: &mut W, batch: &mut Vec<u8>) -> std::io::Result<()> {
        if !batch.is_empty() {
            w.write_all(batch).await?;
            w.flush().await?;
            batch.clear();
        }
        Ok(())
    }
    loop {
        if read.buffer().is_empty() {
            if batch_is_err {
                flush_to(&mut stderr, &mut batch).await?;
            } else {
                flush_to(&mut stdout, &mut batch).await?;
            }
        }
        match read.read_exact(&mut header).await {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(e) => return Err(e.into()),
        }
        let len = u32::from_be_bytes([header[4], header[5], header[6], header[7]]) as usize;
        let is_err = matches!(header[0], 2 | 3);
        if is_err != batch_is_err {
            if batch_is_err {
                flush_to(&mut stderr, &mut batch).await?;
            } else {
                flush_to(&mut stdout, &mut batch).await?;
            }
            batch_is_err = is_err;
        }
        let start = batch.len();
        batch.resize(start + len, 0);
        read.read_exact(&mut batch[start..]).await?;
        if batch.len() >= 64 * 1024 {
            if batch_is_err {
                flush_to(&mut stderr, &mut batch).await?;
            } else {
                flush_to(&mut stdout, &mut batch).await?;
            }
        }
    }
    if batch_is_err {
        flush_to(&mut stderr, &mut batch).await?;
    } else {
        flush_to(&mut stdout, &mut batch).await?;
    }
    Ok(())
}

/// Forwards our stdin into the stream, half-closing it at EOF. With `detach` keys
/// (a terminal session), the sequence ends the session instead of reaching the
/// container: returns true then, and the connection is left for the caller to drop.
pub async fn copy_stdin<W: AsyncWrite + Unpin>(mut write: W, detach: Option<Vec<u8>>) -> Result<bool> {
    let mut stdin = tokio::io::stdin();
    let mut proxy = detach.map(berth_api::query::EscapeProxy::new);
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        let n = stdin.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        let (pass, detached) = match proxy.as_mut() {
            Some(p) => p.feed(&buf[..n]),
            None => (buf[..n].to_vec(), false),
        };
        write.write_all(&pass).await?;
        write.flush().await?;
        if detached {
            return Ok(true);
        }
    }
    write.shutdown().await?;
    Ok(false)
}

/// How a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// The daemon ended the output (the process exited, or the stream closed).
    Output,
    /// The user typed the detach keys: the container goes on without us.
    Detached,
}

/// A started I/O session over a hijacked connection.
pub struct Session {
    output: tokio::task::JoinHandle<Result<()>>,
    input: Option<tokio::task::JoinHandle<Result<bool>>>,
}

impl Session {
    /// Starts pumping. Without stdin, the write side is closed at once, as docker does.
    /// `detach`: the detach keys, for a terminal session with stdin.
    pub fn start(h: Hijacked, tty: bool, with_stdin: bool, detach: Option<Vec<u8>>) -> Session {
        let Hijacked { read, mut write } = h;
        let input = if with_stdin {
            Some(tokio::spawn(copy_stdin(write, detach.filter(|_| tty))))
        } else {
            tokio::spawn(async move {
                let _ = write.shutdown().await;
                // keep the half alive until the read side finishes
                std::future::pending::<()>().await;
            });
            None
        };
        let output = tokio::spawn(copy_output(read, tty));
        Session { output, input }
    }

    /// Waits for the daemon to end the output stream, or for the user to detach.
    pub async fn finish(self) -> Result<Ended> {
        let Session { mut output, input } = self;
        let Some(mut input) = input else {
            output.await??;
            return Ok(Ended::Output);
        };
        let mut input_done = false;
        loop {
            tokio::select! {
                r = &mut output => {
                    input.abort();
                    r??;
                    return Ok(Ended::Output);
                }
                r = &mut input, if !input_done => {
                    input_done = true;
                    if let Ok(Ok(true)) = r {
                        output.abort();
                        return Ok(Ended::Detached);
                    }
                }
            }
        }
    }
}

/// The detach keys a session uses: `--detach-keys`, else the docker CLI config's
/// `detachKeys`, else Ctrl-P Ctrl-Q; with the spelling to send the daemon.
pub fn detach_keys(flag: Option<&str>) -> Result<(Vec<u8>, String)> {
    let spelled = match flag {
        Some(f) => f.to_owned(),
        None => config_detach_keys().unwrap_or_else(|| "ctrl-p,ctrl-q".to_owned()),
    };
    let keys = berth_api::query::detach_keys(&spelled).map_err(|e| anyhow::anyhow!("{}", e.message()))?;
    Ok((keys, spelled))
}

fn config_detach_keys() -> Option<String> {
    let dir = std::env::var_os("DOCKER_CONFIG")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".docker")))?;
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("config.json")).ok()?).ok()?;
    v["detachKeys"].as_str().filter(|s| !s.is_empty()).map(str::to_owned)
}

#[derive(Clone)]
pub enum ResizeTarget {
    Container(String),
    Exec(String),
}

pub async fn resize_once(client: &Client, target: &ResizeTarget) {
    let Some((h, w)) = term_size() else { return };
    let prefix = match target {
        ResizeTarget::Container(id) => format!("/containers/{id}"),
        ResizeTarget::Exec(id) => format!("/exec/{id}"),
    };
    let _ = client.resize(&prefix, h, w).await;
}

/// Resizes now and on every SIGWINCH; with `winch_kill`, also forwards WINCH like the
/// docker signal proxy does for `run -t`.
pub fn spawn_resizer(
    client: Client,
    target: ResizeTarget,
    winch_kill: bool,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        resize_once(&client, &target).await;
        let Ok(mut winch) = signal(SignalKind::window_change()) else {
            return;
        };
        while winch.recv().await.is_some() {
            resize_once(&client, &target).await;
            if winch_kill {
                if let ResizeTarget::Container(id) = &target {
                    let _ = client.kill_container(id, "WINCH").await;
                }
            }
        }
    })
}

/// Forwards INT/TERM/HUP/QUIT/USR1/USR2 to the container (`POST kill?signal=NAME`).
pub fn spawn_sig_proxy(client: Client, id: String) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let kinds = [
            (SignalKind::interrupt(), "INT"),
            (SignalKind::terminate(), "TERM"),
            (SignalKind::hangup(), "HUP"),
            (SignalKind::quit(), "QUIT"),
            (SignalKind::user_defined1(), "USR1"),
            (SignalKind::user_defined2(), "USR2"),
        ];
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<&'static str>();
        for (kind, name) in kinds {
            let Ok(mut s) = signal(kind) else { continue };
            let tx = tx.clone();
            tokio::spawn(async move {
                while s.recv().await.is_some() {
                    if tx.send(name).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
        while let Some(name) = rx.recv().await {
            let _ = client.kill_container(&id, name).await;
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn demux_frames() {
        // stdout "hi\n" then stderr "err\n": just check it consumes both frames cleanly
        let mut data = vec![1u8, 0, 0, 0, 0, 0, 0, 3];
        data.extend_from_slice(b"hi\n");
        data.extend_from_slice(&[2, 0, 0, 0, 0, 0, 0, 4]);
        data.extend_from_slice(b"err\n");
        copy_output(&data[..], false).await.unwrap();
        // truncated payload is an error
        let bad = [1u8, 0, 0, 0, 0, 0, 0, 9, b'x'];
        assert!(copy_output(&bad[..], false).await.is_err());
    }
}
