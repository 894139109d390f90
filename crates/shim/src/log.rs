//! The container log in Docker's `json-file` format: one JSON object per line,
//! `{"log":"…","stream":"stdout","time":"RFC3339Nano"}`, split at newlines.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;

use serde::Serialize;

/// Longest partial line kept before it is written out as its own entry (as Docker).
const MAX_PARTIAL: usize = 16 * 1024;

#[derive(Serialize)]
struct Entry<'a> {
    log: &'a str,
    stream: &'a str,
    time: String,
}

pub struct JsonLog {
    file: File,
    partial: [Vec<u8>; 2],
}

fn stream_name(idx: usize) -> &'static str {
    if idx == 0 {
        "stdout"
    } else {
        "stderr"
    }
}

impl JsonLog {
    pub fn open(path: &Path) -> std::io::Result<JsonLog> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(JsonLog { file, partial: [Vec::new(), Vec::new()] })
    }

    fn write_entry(&mut self, idx: usize, bytes: &[u8]) {
        let e = Entry {
            log: &String::from_utf8_lossy(bytes),
            stream: stream_name(idx),
            time: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
        };
        if let Ok(mut line) = serde_json::to_vec(&e) {
            line.push(b'\n');
            let _ = self.file.write_all(&line);
        }
    }

    /// Append output of stream `idx` (0 stdout, 1 stderr): every complete line becomes
    /// an entry; the rest waits for its newline.
    pub fn write(&mut self, idx: usize, data: &[u8]) {
        let mut buf = std::mem::take(&mut self.partial[idx]);
        buf.extend_from_slice(data);
        let mut start = 0;
        while let Some(nl) = buf[start..].iter().position(|&b| b == b'\n') {
            let end = start + nl + 1;
            self.write_entry(idx, &buf[start..end]);
            start = end;
        }
        let rest = &buf[start..];
        if rest.len() >= MAX_PARTIAL {
            self.write_entry(idx, rest);
        } else {
            self.partial[idx] = rest.to_vec();
        }
    }

    /// Write out any partial lines (at end of stream).
    pub fn flush(&mut self) {
        for idx in 0..2 {
            let rest = std::mem::take(&mut self.partial[idx]);
            if !rest.is_empty() {
                self.write_entry(idx, &rest);
            }
        }
        let _ = self.file.flush();
    }
}
