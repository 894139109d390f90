//! `GET /containers/{id}/logs`: read the json-file log, filter, and follow.

use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde::Deserialize;
use tokio::sync::mpsc;

use super::{Container, Paths};
use crate::Daemon;

/// What the client asked for.
#[derive(Debug, Clone)]
pub struct LogOptions {
    pub stdout: bool,
    pub stderr: bool,
    pub follow: bool,
    pub timestamps: bool,
    /// Unix time in nanoseconds; entries before it are skipped.
    pub since: Option<i128>,
    pub until: Option<i128>,
    /// Only the last N lines (None: all).
    pub tail: Option<usize>,
}

#[derive(Deserialize)]
struct Entry {
    log: String,
    stream: String,
    time: String,
}

/// Parse a `since`/`until` value: unix seconds with optional fraction.
pub fn parse_time(s: &str) -> Option<i128> {
    if s.is_empty() {
        return None;
    }
    let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
    let secs: i128 = secs.parse().ok()?;
    let mut nanos: i128 = 0;
    if !frac.is_empty() {
        let f = format!("{frac:0<9}");
        nanos = f[..9].parse().ok()?;
    }
    Some(secs * 1_000_000_000 + nanos)
}

fn entry_nanos(e: &Entry) -> i128 {
    chrono::DateTime::parse_from_rfc3339(&e.time).map(|t| t.timestamp_nanos_opt().unwrap_or(0) as i128).unwrap_or(0)
}

fn render(e: &Entry, o: &LogOptions, tty: bool) -> Option<Bytes> {
    let is_err = e.stream == "stderr";
    if (is_err && !o.stderr) || (!is_err && !o.stdout) {
        return None;
    }
    let t = entry_nanos(e);
    if o.since.is_some_and(|s| t < s) || o.until.is_some_and(|u| t > u) {
        return None;
    }
    let mut payload = Vec::with_capacity(e.log.len() + 32);
    if o.timestamps {
        let ts = chrono::DateTime::parse_from_rfc3339(&e.time)
            .map(|t| t.with_timezone(&chrono::Utc).to_rfc3339_opts(chrono::SecondsFormat::Nanos, true))
            .unwrap_or_else(|_| e.time.clone());
        payload.extend_from_slice(ts.as_bytes());
        payload.push(b' ');
    }
    payload.extend_from_slice(e.log.as_bytes());
    Some(if tty {
        Bytes::from(payload)
    } else {
        berth_api::stream::frame(if is_err { berth_api::stream::STDERR } else { berth_api::stream::STDOUT }, &payload)
    })
}

/// Read complete lines from `r` starting at `pos`; returns entries and the new offset.
fn read_entries(path: &PathBuf, pos: u64) -> (Vec<Entry>, u64) {
    let Ok(mut f) = std::fs::File::open(path) else { return (Vec::new(), pos) };
    if f.seek(SeekFrom::Start(pos)).is_err() {
        return (Vec::new(), pos);
    }
    let mut r = BufReader::new(f);
    let mut out = Vec::new();
    let mut off = pos;
    let mut line = String::new();
    loop {
        line.clear();
        match r.read_line(&mut line) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if !line.ends_with('\n') {
                    break; // partial line: wait for the rest
                }
                off += n as u64;
                if let Ok(e) = serde_json::from_str::<Entry>(&line) {
                    out.push(e);
                }
            }
        }
    }
    (out, off)
}

/// Stream the logs into `tx` (blocking work happens on the blocking pool).
pub async fn stream(d: Arc<Daemon>, c: Arc<Container>, o: LogOptions, tx: mpsc::Sender<Bytes>) {
    let path = Paths::new(&d, &c.id).log(&c.id);
    let tty = c.tty();
    let p = path.clone();
    let (mut entries, mut pos) = tokio::task::spawn_blocking(move || read_entries(&p, 0)).await.unwrap_or_default();
    if let Some(n) = o.tail {
        // Tail counts lines of the selected streams.
        let keep: Vec<usize> = entries
            .iter()
            .enumerate()
            .filter(|(_, e)| if e.stream == "stderr" { o.stderr } else { o.stdout })
            .map(|(i, _)| i)
            .collect();
        let first = keep.len().saturating_sub(n);
        let start = keep.get(first).copied().unwrap_or(entries.len());
        entries.drain(..start);
    }
    for e in &entries {
        if let Some(b) = render(e, &o, tty) {
            if tx.send(b).await.is_err() {
                return;
            }
        }
    }
    if !o.follow {
        return;
    }
    let mut rx = c.subscribe();
    loop {
        let running = rx.borrow().running && !rx.borrow().removed;
        let p = path.clone();
        let (more, np) = tokio::task::spawn_blocking(move || read_entries(&p, pos)).await.unwrap_or((Vec::new(), pos));
        pos = np;
        for e in &more {
            if let Some(b) = render(e, &o, tty) {
                if tx.send(b).await.is_err() {
                    return;
                }
            }
        }
        if !running && more.is_empty() {
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(50)) => {}
            _ = rx.changed() => {}
            _ = tx.closed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_parses_fractional_seconds() {
        assert_eq!(parse_time("10"), Some(10_000_000_000));
        assert_eq!(parse_time("10.5"), Some(10_500_000_000));
        assert_eq!(parse_time(""), None);
        assert_eq!(parse_time("x"), None);
    }

    #[test]
    fn render_frames_and_timestamps() {
        let e = Entry { log: "hi\n".into(), stream: "stdout".into(), time: "2026-11-23T16:34:28.222432227Z".into() };
        let o = LogOptions { stdout: true, stderr: true, follow: false, timestamps: true, since: None, until: None, tail: None };
        let b = render(&e, &o, false).unwrap();
        assert_eq!(b[0], 1);
        assert!(b.ends_with(b"2026-11-23T16:34:28.222432227Z hi\n"));
        let o2 = LogOptions { stdout: false, ..o };
        assert!(render(&e, &o2, true).is_none());
    }
}
