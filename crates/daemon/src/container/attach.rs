//! Bridging a client's hijacked connection and a shim stream (attach and exec).

use berth_shim_proto::{ExitStatus, FrameKind};
use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::sync::mpsc;

/// Copy shim frames to the client (raw for a TTY, multiplexed otherwise) and, when
/// `stdin` is set, the client's bytes to the shim. Returns the exit status when the
/// process ended (None if either side went away first, or the client detached).
///
/// `detach`: for a terminal, the detach keys (dockerd's `detachKeys`): the sequence is
/// not passed on, the client is let go, and the process keeps its stdin.
pub async fn bridge<C>(client: C, shim: UnixStream, tty: bool, stdin: bool, detach: Option<Vec<u8>>) -> Option<ExitStatus>
where
    C: AsyncRead + AsyncWrite + Send + 'static,
{
    let (mut cr, mut cw) = tokio::io::split(client);
    let (mut sr, mut sw) = shim.into_split();
    let detached = std::sync::Arc::new(tokio::sync::Notify::new());
    let feeder = if stdin {
        let detached = detached.clone();
        let mut proxy = detach.filter(|_| tty).map(berth_api::query::EscapeProxy::new);
        Some(tokio::spawn(async move {
            let mut buf = vec![0u8; 32 * 1024];
            loop {
                let n = match cr.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                let (pass, escaped) = match proxy.as_mut() {
                    Some(p) => p.feed(&buf[..n]),
                    None => (buf[..n].to_vec(), false),
                };
                if sw.write_all(&pass).await.is_err() {
                    return;
                }
                if escaped {
                    // Keep the process's stdin open: only this client leaves.
                    detached.notify_one();
                    std::future::pending::<()>().await;
                }
            }
            let _ = sw.shutdown().await;
        }))
    } else {
        None
    };
    let mut status = None;
    let mut header = [0u8; 8];
    loop {
        tokio::select! {
            r = sr.read_exact(&mut header) => if r.is_err() { break },
            _ = detached.notified() => break,
        }
        let len = u32::from_be_bytes([header[4], header[5], header[6], header[7]]) as usize;
        let mut payload = vec![0u8; len];
        if sr.read_exact(&mut payload).await.is_err() {
            break;
        }
        match FrameKind::from_u8(header[0]) {
            Some(FrameKind::Exit) => {
                status = serde_json::from_slice(&payload).ok();
                break;
            }
            Some(kind) => {
                let ok = if tty {
                    cw.write_all(&payload).await
                } else {
                    let stream = if kind == FrameKind::Stderr { berth_api::stream::STDERR } else { berth_api::stream::STDOUT };
                    cw.write_all(&berth_api::stream::frame(stream, &payload)).await
                };
                if ok.is_err() {
                    break;
                }
            }
            None => break,
        }
    }
    let _ = cw.flush().await;
    let _ = cw.shutdown().await;
    if let Some(f) = feeder {
        f.abort();
    }
    status
}

/// A client-side stand-in for requests that were not upgraded: the bridge writes into
/// one end of a pipe and the other end feeds a response body channel.
pub fn body_pipe() -> (tokio::io::DuplexStream, mpsc::Receiver<Bytes>) {
    let (ours, theirs) = tokio::io::duplex(64 * 1024);
    let (tx, rx) = mpsc::channel(32);
    tokio::spawn(async move {
        let mut theirs = theirs;
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match theirs.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if tx.send(Bytes::copy_from_slice(&buf[..n])).await.is_err() {
                        break;
                    }
                }
            }
        }
    });
    (ours, rx)
}
