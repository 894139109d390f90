//! The daemon side of the shim protocol (async).

use std::path::Path;

use berth_errdefs::{Error, Result};
use berth_shim_proto::{Request, Response, SOCKET_FILE};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

/// Connect to a container's shim.
pub async fn connect(state_dir: &Path) -> std::io::Result<UnixStream> {
    let (_guard, path) = berth_shim_proto::socket_path(state_dir, SOCKET_FILE)?;
    UnixStream::connect(path).await
}

pub async fn write_line<T: serde::Serialize>(s: &mut UnixStream, v: &T) -> std::io::Result<()> {
    let mut b = serde_json::to_vec(v)?;
    b.push(b'\n');
    s.write_all(&b).await
}

/// Read one JSON line without reading past it (the stream may continue with frames).
pub async fn read_line<T: serde::de::DeserializeOwned>(s: &mut UnixStream) -> std::io::Result<T> {
    let mut buf = Vec::with_capacity(128);
    let mut b = [0u8; 1];
    loop {
        if s.read(&mut b).await? == 0 {
            return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "shim closed the connection"));
        }
        if b[0] == b'\n' {
            break;
        }
        buf.push(b[0]);
    }
    serde_json::from_slice(&buf).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

fn shim_err(e: std::io::Error) -> Error {
    Error::internal(format!("container shim: {e}"))
}

/// Read the one response line of a request/response exchange: nothing follows it on
/// the connection, so it can be read in chunks rather than byte by byte.
pub async fn read_response(s: &mut UnixStream) -> std::io::Result<Response> {
    let mut buf = Vec::with_capacity(256);
    let mut chunk = [0u8; 1024];
    loop {
        let n = s.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "shim closed the connection"));
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.iter().position(|&b| b == b'\n') {
            return serde_json::from_slice(&buf[..i]).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e));
        }
    }
}

/// Send one request and read its response.
pub async fn call(state_dir: &Path, req: &Request) -> Result<Response> {
    let mut s = connect(state_dir).await.map_err(shim_err)?;
    write_line(&mut s, req).await.map_err(shim_err)?;
    read_response(&mut s).await.map_err(shim_err)
}

/// Ask the shim to answer when the container exits; the answer is read later
/// (see `lifecycle::spawn_monitor`). Sent before the start, the exit needs no new
/// connection when it comes.
pub async fn send_wait(state_dir: &Path) -> std::io::Result<UnixStream> {
    let mut s = connect(state_dir).await?;
    write_line(&mut s, &Request::Wait).await?;
    Ok(s)
}

/// Send a request that must answer `Ok`.
pub async fn call_ok(state_dir: &Path, req: &Request) -> Result<()> {
    match call(state_dir, req).await? {
        Response::Error { message } => Err(Error::internal(message)),
        _ => Ok(()),
    }
}

/// Open a stream (attach or exec): returns the connection after the first response.
pub async fn open_stream(state_dir: &Path, req: &Request) -> Result<(UnixStream, Response)> {
    let s = send(state_dir, req).await?;
    stream_answer(s).await
}

/// Connect and write a request, without reading its answer.
pub async fn send(state_dir: &Path, req: &Request) -> Result<UnixStream> {
    let mut s = connect(state_dir).await.map_err(shim_err)?;
    write_line(&mut s, req).await.map_err(shim_err)?;
    Ok(s)
}

/// Read the answer line of a streaming request sent with [`send`].
pub async fn stream_answer(mut s: UnixStream) -> Result<(UnixStream, Response)> {
    let r: Response = read_line(&mut s).await.map_err(shim_err)?;
    if let Response::Error { message } = &r {
        return Err(Error::internal(message.clone()));
    }
    Ok((s, r))
}
