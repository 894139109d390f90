//! `GET /containers/{id}/attach/ws`: an attach over a websocket, as dockerd serves it
//! (through Go's `x/net/websocket`): the container's output as binary messages, raw
//! (no stream headers, stdout and stderr alike), every message from the client
//! written to the container's stdin, and a normal close (1000) when the output ends.
//! The websocket framing is tokio-tungstenite's; the attach itself is the same bridge
//! as the hijacked one's, fed through an in-memory pipe.

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http::{HeaderValue, Request, StatusCode};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use berth_errdefs::Error;

use crate::http::{empty, Resp};

/// The `Sec-WebSocket-Accept` answer to a websocket handshake request, or why it is
/// not one (dockerd answers such a request 400 too).
pub fn accept_key(req: &Request<Incoming>) -> Result<String, Error> {
    let h = req.headers();
    let has = |name: http::header::HeaderName, want: &str| {
        h.get_all(name).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(',')).any(|t| t.trim().eq_ignore_ascii_case(want))
    };
    if !has(http::header::UPGRADE, "websocket") || !has(http::header::CONNECTION, "upgrade") {
        return Err(Error::invalid("websocket: the request is not a websocket handshake (Upgrade: websocket)"));
    }
    if h.get(http::header::SEC_WEBSOCKET_VERSION).and_then(|v| v.to_str().ok()) != Some("13") {
        return Err(Error::invalid("websocket: only version 13 of the protocol is supported"));
    }
    let key = h.get(http::header::SEC_WEBSOCKET_KEY).ok_or_else(|| Error::invalid("websocket: no Sec-WebSocket-Key"))?;
    Ok(tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes()))
}

/// The handshake's answer.
pub fn switching(accept: &str) -> Resp {
    let mut r = empty(101);
    *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = r.headers_mut();
    h.insert(http::header::UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(http::header::CONNECTION, HeaderValue::from_static("Upgrade"));
    if let Ok(v) = HeaderValue::from_str(accept) {
        h.insert(http::header::SEC_WEBSOCKET_ACCEPT, v);
    }
    r
}

/// Carry bytes between the upgraded connection's websocket and the returned end of
/// a pipe: what is written into it goes out as binary messages (and a close at its
/// end), and the client's messages can be read from it (the end of the client's
/// messages, or its close, is the end of what can be read).
pub fn pipe(up: hyper::upgrade::Upgraded) -> DuplexStream {
    let (ours, theirs) = tokio::io::duplex(64 * 1024);
    tokio::spawn(async move {
        let ws = WebSocketStream::from_raw_socket(TokioIo::new(up), Role::Server, None).await;
        let (mut sink, mut messages) = ws.split();
        let (mut from_bridge, mut to_bridge) = tokio::io::split(theirs);
        let output = async move {
            let mut buf = vec![0u8; 32 * 1024];
            loop {
                match from_bridge.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if sink.send(Message::Binary(Bytes::copy_from_slice(&buf[..n]))).await.is_err() {
                            return;
                        }
                    }
                }
            }
            let close = CloseFrame { code: CloseCode::Normal, reason: "".into() };
            let _ = sink.send(Message::Close(Some(close))).await;
        };
        let input = async move {
            while let Some(Ok(m)) = messages.next().await {
                let data: &[u8] = match &m {
                    Message::Binary(b) => b,
                    Message::Text(t) => t.as_bytes(),
                    Message::Close(_) => break,
                    // Pings are answered by the protocol itself.
                    _ => continue,
                };
                if to_bridge.write_all(data).await.is_err() {
                    return;
                }
            }
            let _ = to_bridge.shutdown().await;
            // The client is gone or closing: nothing more can reach it.
            std::future::pending::<()>().await;
        };
        tokio::select! {
            () = output => {}
            () = input => {}
        }
    });
    ours
}

/// A log replay (stream-framed for a container without a terminal) as the raw bytes
/// a websocket carries.
pub async fn replay_raw(w: &mut DuplexStream, mut rx: tokio::sync::mpsc::Receiver<Bytes>, framed: bool) -> bool {
    let mut demux = berth_api::stream::Demux::default();
    while let Some(b) = rx.recv().await {
        let ok = if framed {
            demux.push(&b);
            let mut ok = true;
            while let Some((_, payload)) = demux.next_frame() {
                ok &= w.write_all(&payload).await.is_ok();
            }
            ok
        } else {
            w.write_all(&b).await.is_ok()
        };
        if !ok {
            return false;
        }
    }
    true
}
