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
    bridge_inner(client, shim, tty, stdin, detach, None::<fn(Option<&ExitStatus>)>).await
}

/// [`bridge`] for an exec, calling `on_exit` with how the process ended (None: the
/// shim's stream broke). While the client is attached, that is before its stream is
/// closed: the exit code is recorded by then, as dockerd records it before it closes
/// the exec's streams — the docker CLI inspects the exec as soon as its stream ends and
/// exits with the code it finds there. A client that detaches (its keys) or goes away
/// leaves the exec running: the rest of its output is read and dropped until it ends.
pub async fn bridge_then<C, F>(
    client: C,
    shim: UnixStream,
    tty: bool,
    stdin: bool,
    detach: Option<Vec<u8>>,
    on_exit: F,
) -> Option<ExitStatus>
where
    C: AsyncRead + AsyncWrite + Send + 'static,
    F: FnOnce(Option<&ExitStatus>),
{
    bridge_inner(client, shim, tty, stdin, detach, Some(on_exit)).await
}

async fn bridge_inner<C, F>(
    client: C,
    shim: UnixStream,
    tty: bool,
    stdin: bool,
    detach: Option<Vec<u8>>,
    on_exit: Option<F>,
) -> Option<ExitStatus>
where
    C: AsyncRead + AsyncWrite + Send + 'static,
    F: FnOnce(Option<&ExitStatus>),
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
    let follow = on_exit.is_some();
    let mut client_gone = false;
    let mut status = None;
    let mut header = [0u8; 8];
    loop {
        tokio::select! {
            r = sr.read_exact(&mut header) => if r.is_err() { break },
            _ = detached.notified(), if !client_gone => {
                if !follow {
                    break;
                }
                client_gone = true;
                let _ = cw.shutdown().await;
                continue;
            }
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
            Some(_) if client_gone => {}
            Some(kind) => {
                let ok = if tty {
                    cw.write_all(&payload).await
                } else {
                    let stream = if kind == FrameKind::Stderr { berth_api::stream::STDERR } else { berth_api::stream::STDOUT };
                    cw.write_all(&berth_api::stream::frame(stream, &payload)).await
                };
                if ok.is_err() {
                    if !follow {
                        break;
                    }
                    client_gone = true;
                }
            }
            None => break,
        }
    }
    if !client_gone {
        let _ = cw.flush().await;
    }
    if let Some(f) = on_exit {
        f(status.as_ref());
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use berth_shim_proto::encode_frame;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    /// The exit is handed over before the client's stream ends: a client that inspects
    /// the exec as soon as it reads the end finds the exit code recorded.
    #[tokio::test]
    async fn the_exit_is_recorded_before_the_client_sees_the_end() {
        let (shim_ours, mut shim_theirs) = UnixStream::pair().unwrap();
        let (client_ours, mut client_theirs) = tokio::io::duplex(4096);
        let recorded = Arc::new(AtomicBool::new(false));
        let r2 = recorded.clone();
        let bridge = tokio::spawn(bridge_then(client_ours, shim_ours, false, false, None, move |st| {
            assert_eq!(st.map(|s| s.code), Some(7));
            r2.store(true, Ordering::SeqCst);
        }));
        let exit = ExitStatus { code: 7, finished_at: String::new(), oom_killed: false, error: None };
        shim_theirs.write_all(&encode_frame(FrameKind::Stdout, b"out")).await.unwrap();
        shim_theirs.write_all(&encode_frame(FrameKind::Exit, &serde_json::to_vec(&exit).unwrap())).await.unwrap();
        let mut got = Vec::new();
        client_theirs.read_to_end(&mut got).await.unwrap();
        assert!(recorded.load(Ordering::SeqCst), "the stream ended before the exit was recorded");
        assert_eq!(got, berth_api::stream::frame(berth_api::stream::STDOUT, b"out"));
        assert_eq!(bridge.await.unwrap().map(|s| s.code), Some(7));
    }

    /// A client that detaches from an exec leaves it running: its stream ends at once,
    /// and the exit is recorded when the process really ends, not as a failure then.
    #[tokio::test]
    async fn a_detached_exec_is_followed_to_its_real_exit() {
        let (shim_ours, mut shim_theirs) = UnixStream::pair().unwrap();
        let (client_ours, mut client_theirs) = tokio::io::duplex(4096);
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let bridge = tokio::spawn(bridge_then(client_ours, shim_ours, true, true, Some(vec![0x10, 0x11]), move |st| {
            tx.send(st.map(|s| s.code)).unwrap();
        }));
        client_theirs.write_all(&[b'x', 0x10, 0x11]).await.unwrap();
        let mut got = Vec::new();
        client_theirs.read_to_end(&mut got).await.unwrap();
        // the process got what came before the keys, and has not ended
        let mut stdin = [0u8; 1];
        shim_theirs.read_exact(&mut stdin).await.unwrap();
        assert_eq!(&stdin, b"x");
        assert!(rx.try_recv().is_err(), "recorded as ended while it runs");
        let exit = ExitStatus { code: 3, finished_at: String::new(), oom_killed: false, error: None };
        shim_theirs.write_all(&encode_frame(FrameKind::Stdout, b"after the detach")).await.unwrap();
        shim_theirs.write_all(&encode_frame(FrameKind::Exit, &serde_json::to_vec(&exit).unwrap())).await.unwrap();
        assert_eq!(rx.recv().await.unwrap(), Some(3));
        assert_eq!(bridge.await.unwrap().map(|s| s.code), Some(3));
    }
}
