//! Stream formats: the stdcopy multiplexing of attach/exec/logs, and the JSON progress
//! messages of pull/push/load/import/build.

use bytes::{BufMut, Bytes, BytesMut};
use serde::{Deserialize, Serialize};

/// Stream ids of the multiplexed format.
pub const STDIN: u8 = 0;
pub const STDOUT: u8 = 1;
pub const STDERR: u8 = 2;
pub const SYSTEMERR: u8 = 3;

/// Encode one multiplexed frame: `[stream, 0, 0, 0, len u32 BE]` then the payload.
pub fn frame(stream: u8, payload: &[u8]) -> Bytes {
    let mut b = BytesMut::with_capacity(8 + payload.len());
    b.put_u8(stream);
    b.put_slice(&[0, 0, 0]);
    b.put_u32(payload.len() as u32);
    b.put_slice(payload);
    b.freeze()
}

/// Incremental decoder of multiplexed frames.
#[derive(Default)]
pub struct Demux {
    buf: BytesMut,
}

impl Demux {
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }
    /// The next whole frame, if one is buffered.
    pub fn next_frame(&mut self) -> Option<(u8, Bytes)> {
        if self.buf.len() < 8 {
            return None;
        }
        let len = u32::from_be_bytes([self.buf[4], self.buf[5], self.buf[6], self.buf[7]]) as usize;
        if self.buf.len() < 8 + len {
            return None;
        }
        let stream = self.buf[0];
        let mut f = self.buf.split_to(8 + len);
        let payload = f.split_off(8).freeze();
        Some((stream, payload))
    }
}

/// `{"code":..,"message":..}` inside a progress message.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ErrorDetail {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<i64>,
    pub message: String,
}

/// `{"current":N,"total":M}`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ProgressDetail {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total: Option<i64>,
}

/// One message of a JSON progress stream (Docker's `jsonmessage.JSONMessage`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct JsonMessage {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(rename = "progressDetail", skip_serializing_if = "Option::is_none")]
    pub progress_detail: Option<ProgressDetail>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub progress: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aux: Option<serde_json::Value>,
    #[serde(rename = "errorDetail", skip_serializing_if = "Option::is_none")]
    pub error_detail: Option<ErrorDetail>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl JsonMessage {
    pub fn status(s: impl Into<String>) -> Self {
        JsonMessage { status: Some(s.into()), ..Default::default() }
    }
    pub fn stream(s: impl Into<String>) -> Self {
        JsonMessage { stream: Some(s.into()), ..Default::default() }
    }
    pub fn error(msg: impl Into<String>, code: Option<i64>) -> Self {
        let m = msg.into();
        JsonMessage {
            error_detail: Some(ErrorDetail { code, message: m.clone() }),
            error: Some(m),
            ..Default::default()
        }
    }
    /// Serialize as one line of a progress stream (terminated by `\r\n`).
    pub fn to_line(&self) -> Bytes {
        let mut v = serde_json::to_vec(self).expect("serializable");
        v.extend_from_slice(b"\r\n");
        Bytes::from(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_matches_recorded_bytes() {
        assert_eq!(&frame(STDOUT, b"hi\n")[..], b"\x01\0\0\0\0\0\0\x03hi\n");
    }

    #[test]
    fn demux_handles_split_input() {
        let mut d = Demux::default();
        let mut all = frame(STDERR, b"err\n").to_vec();
        all.extend_from_slice(&frame(STDOUT, b"out\n"));
        d.push(&all[..5]);
        assert!(d.next_frame().is_none());
        d.push(&all[5..]);
        assert_eq!(d.next_frame().unwrap(), (STDERR, Bytes::from_static(b"err\n")));
        assert_eq!(d.next_frame().unwrap(), (STDOUT, Bytes::from_static(b"out\n")));
        assert!(d.next_frame().is_none());
    }

    #[test]
    fn error_message_shape() {
        let line = JsonMessage::error("boom", Some(3)).to_line();
        assert_eq!(&line[..], &b"{\"errorDetail\":{\"code\":3,\"message\":\"boom\"},\"error\":\"boom\"}\r\n"[..]);
    }
}
