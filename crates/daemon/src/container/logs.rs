//! `GET /containers/{id}/logs`: read the json-file log (and its rotated files),
//! filter, and follow — streaming, with memory bounded by the response channel, not
//! by the size of the log. `tail` reads from the end of the files.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use serde::Deserialize;
use tokio::sync::{mpsc, watch};

use super::{Container, Paths, Wake};
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
    /// `details`: each line led by the entry's log attributes (`k=v,k2=v2`, from
    /// json-file's `labels`, `env` and `tag` options) and a space — the space alone
    /// when it has none, as dockerd prints it.
    pub details: bool,
}

#[derive(Deserialize)]
struct Entry {
    log: String,
    stream: String,
    #[serde(default)]
    attrs: std::collections::BTreeMap<String, String>,
    time: String,
}

/// Only the stream name: enough to count lines for `tail` without decoding payloads.
#[derive(Deserialize)]
struct StreamOnly<'a> {
    #[serde(borrow)]
    stream: &'a str,
}

/// Parse a `since`/`until` value: unix seconds with optional fraction (dockerd's
/// `timetypes.ParseTimestamps`; its error in Go's words).
pub fn parse_time(s: &str) -> Result<Option<i128>, String> {
    if s.is_empty() {
        return Ok(None);
    }
    let syntax = |part: &str| format!("strconv.ParseInt: parsing {part:?}: invalid syntax");
    let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
    let secs: i128 = secs.parse().map_err(|_| syntax(secs))?;
    let mut nanos: i128 = 0;
    if s.contains('.') {
        if frac.is_empty() || !frac.bytes().all(|b| b.is_ascii_digit()) {
            return Err(syntax(frac));
        }
        let f = format!("{frac:0<9}");
        nanos = f[..9].parse().map_err(|_| syntax(frac))?;
    }
    Ok(Some(secs * 1_000_000_000 + nanos))
}

fn entry_nanos(e: &Entry) -> i128 {
    chrono::DateTime::parse_from_rfc3339(&e.time).map(|t| t.timestamp_nanos_opt().unwrap_or(0) as i128).unwrap_or(0)
}

impl LogOptions {
    fn wants(&self, stream: &str) -> bool {
        if stream == "stderr" {
            self.stderr
        } else {
            self.stdout
        }
    }
}

/// What to do with an entry.
enum Verdict {
    Send(Bytes),
    Skip,
    /// Past `until`: nothing after it is sent.
    Stop,
}

fn render(e: &Entry, o: &LogOptions, tty: bool) -> Verdict {
    if !o.wants(&e.stream) {
        return Verdict::Skip;
    }
    if o.since.is_some() || o.until.is_some() {
        let t = entry_nanos(e);
        if o.until.is_some_and(|u| t > u) {
            return Verdict::Stop;
        }
        if o.since.is_some_and(|s| t < s) {
            return Verdict::Skip;
        }
    }
    let mut payload = Vec::with_capacity(e.log.len() + 32);
    if o.timestamps {
        let ts = chrono::DateTime::parse_from_rfc3339(&e.time)
            .map(|t| t.with_timezone(&chrono::Utc).to_rfc3339_opts(chrono::SecondsFormat::Nanos, true))
            .unwrap_or_else(|_| e.time.clone());
        payload.extend_from_slice(ts.as_bytes());
        payload.push(b' ');
    }
    if o.details {
        // dockerd's `attrsByteSlice`: sorted by key, both sides query-escaped
        let attrs: Vec<String> = e.attrs.iter().map(|(k, v)| format!("{}={}", query_escape(k), query_escape(v))).collect();
        payload.extend_from_slice(attrs.join(",").as_bytes());
        payload.push(b' ');
    }
    payload.extend_from_slice(e.log.as_bytes());
    Verdict::Send(if tty {
        Bytes::from(payload)
    } else {
        berth_api::stream::frame(if e.stream == "stderr" { berth_api::stream::STDERR } else { berth_api::stream::STDOUT }, &payload)
    })
}

/// Go's `url.QueryEscape`: unreserved bytes as they are, a space as `+`, the rest `%XX`.
fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The log files, oldest first: `<log>.N[.gz]` … `<log>.1[.gz]`, then `<log>`.
fn log_files(path: &Path) -> Vec<PathBuf> {
    let mut rotated = Vec::new();
    for n in 1.. {
        let plain = PathBuf::from(format!("{}.{n}", path.display()));
        let gz = PathBuf::from(format!("{}.{n}.gz", path.display()));
        if plain.exists() {
            rotated.push(plain);
        } else if gz.exists() {
            rotated.push(gz);
        } else {
            break;
        }
    }
    rotated.reverse();
    rotated.push(path.to_owned());
    rotated
}

fn is_gz(p: &Path) -> bool {
    p.extension().is_some_and(|e| e == "gz")
}

fn open_reader(p: &Path) -> Option<Box<dyn BufRead>> {
    let f = File::open(p).ok()?;
    Some(if is_gz(p) {
        Box::new(BufReader::with_capacity(64 * 1024, flate2::read::GzDecoder::new(f)))
    } else {
        Box::new(BufReader::with_capacity(64 * 1024, f))
    })
}

/// Where reading starts so that only the last `n` selected lines are sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Start {
    /// Index of the first file to read.
    file: usize,
    /// Byte offset in that file (plain files, found by scanning backwards).
    offset: u64,
    /// Selected lines to skip from there (compressed files, which are counted).
    skip: u64,
}

/// Find the [`Start`] for `tail n`. Memory stays bounded: plain files are scanned
/// backwards in blocks, compressed ones are counted in one streaming pass.
fn tail_start(files: &[PathBuf], n: usize, o: &LogOptions) -> Start {
    let mut need = n as u64;
    for (i, p) in files.iter().enumerate().rev() {
        if is_gz(p) {
            let count = count_selected(p, o);
            if count >= need {
                return Start { file: i, offset: 0, skip: count - need };
            }
            need -= count;
        } else {
            match last_selected(p, need, o) {
                Ok(offset) => return Start { file: i, offset, skip: 0 },
                Err(found) => need -= found,
            }
        }
    }
    Start { file: 0, offset: 0, skip: 0 }
}

fn selected(line: &[u8], o: &LogOptions) -> bool {
    serde_json::from_slice::<StreamOnly<'_>>(line).is_ok_and(|s| o.wants(s.stream))
}

fn count_selected(p: &Path, o: &LogOptions) -> u64 {
    let Some(mut r) = open_reader(p) else { return 0 };
    let mut line = Vec::new();
    let mut n = 0;
    loop {
        line.clear();
        match r.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => return n,
            Ok(_) if line.ends_with(b"\n") && selected(&line, o) => n += 1,
            Ok(_) => {}
        }
    }
}

/// Scan a plain file backwards for its last `need` selected (complete) lines:
/// `Ok(offset of the first of them)`, or `Err(selected lines the file has)` when it
/// has fewer.
fn last_selected(p: &Path, need: u64, o: &LogOptions) -> Result<u64, u64> {
    use std::os::unix::fs::FileExt;
    let Ok(f) = File::open(p) else { return Err(0) };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    if need == 0 {
        return Ok(len);
    }
    const BLOCK: u64 = 64 * 1024;
    let mut found = 0u64;
    // End (exclusive) of the complete line whose start is being looked for.
    let mut line_end: Option<u64> = None;
    let check = |a: u64, b: u64, found: &mut u64| -> bool {
        let mut line = vec![0u8; (b - a) as usize];
        if f.read_exact_at(&mut line, a).is_ok() && selected(&line, o) {
            *found += 1;
        }
        *found == need
    };
    let mut pos = len;
    let mut buf = vec![0u8; BLOCK as usize];
    while pos > 0 {
        let start = pos.saturating_sub(BLOCK);
        let chunk = &mut buf[..(pos - start) as usize];
        if f.read_exact_at(chunk, start).is_err() {
            return Err(found);
        }
        for i in (0..chunk.len()).rev() {
            if chunk[i] != b'\n' {
                continue;
            }
            let q = start + i as u64;
            if let Some(e) = line_end {
                if e > q + 1 && check(q + 1, e, &mut found) {
                    return Ok(q + 1);
                }
            }
            line_end = Some(q + 1);
        }
        pos = start;
    }
    match line_end {
        Some(e) if e > 0 && check(0, e, &mut found) => Ok(0),
        _ => Err(found),
    }
}

/// Sends rendered entries in batches; false once the client is gone or `until` passed.
struct Sink<'a> {
    tx: &'a mpsc::Sender<Bytes>,
    batch: BytesMut,
    o: &'a LogOptions,
    tty: bool,
    stopped: bool,
}

const BATCH: usize = 32 * 1024;

impl Sink<'_> {
    fn line(&mut self, line: &[u8]) -> bool {
        if let Ok(e) = serde_json::from_slice::<Entry>(line) {
            match render(&e, self.o, self.tty) {
                Verdict::Send(b) => {
                    self.batch.extend_from_slice(&b);
                    if self.batch.len() >= BATCH {
                        return self.flush();
                    }
                }
                Verdict::Skip => {}
                Verdict::Stop => {
                    self.stopped = true;
                    return false;
                }
            }
        }
        true
    }

    fn flush(&mut self) -> bool {
        if self.batch.is_empty() {
            return true;
        }
        let b = self.batch.split().freeze();
        self.tx.blocking_send(b).is_ok()
    }
}

/// Read complete lines from `r` into the sink, skipping the first `skip` selected
/// lines; returns the bytes consumed (complete lines only) and whether to go on.
fn pump(r: &mut dyn BufRead, sink: &mut Sink<'_>, mut skip: u64) -> (u64, bool) {
    let mut line = Vec::with_capacity(1024);
    let mut used = 0u64;
    loop {
        line.clear();
        match r.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => return (used, true),
            Ok(n) => {
                if !line.ends_with(b"\n") {
                    return (used, true); // partial line: wait for the rest
                }
                used += n as u64;
                if skip > 0 && selected(&line, sink.o) {
                    skip -= 1;
                    continue;
                }
                if !sink.line(&line) {
                    return (used, false);
                }
            }
        }
    }
}

/// The blocking part: the files so far, then (with `follow`) whatever is appended,
/// across rotations, until the container stops or the client leaves.
fn read_log(path: &Path, o: &LogOptions, tty: bool, tx: &mpsc::Sender<Bytes>, wake: Option<watch::Receiver<Wake>>) {
    let mut sink = Sink { tx, batch: BytesMut::with_capacity(BATCH), o, tty, stopped: false };
    let files = log_files(path);
    let last = files.len() - 1;
    let start = match o.tail {
        // Nothing of the past: start at the current end.
        Some(0) => Start { file: last, offset: u64::MAX, skip: 0 },
        Some(n) => tail_start(&files, n, o),
        None => Start { file: 0, offset: 0, skip: 0 },
    };
    // Every file before the current one is read to its end.
    for (i, p) in files.iter().enumerate().take(last).skip(start.file) {
        let Some(mut r) = open_reader(p) else { continue };
        let (skip, offset) = if i == start.file { (start.skip, start.offset) } else { (0, 0) };
        if offset > 0 && r.seek_relative_plain(offset).is_err() {
            continue;
        }
        let (_, go) = pump(&mut *r, &mut sink, skip);
        if !go {
            sink.flush();
            return;
        }
    }
    let mut cur = File::open(path).ok();
    let mut ino = cur.as_ref().and_then(|f| f.metadata().ok()).map(|m| m.ino());
    let mut pos = 0u64;
    if let Some(f) = cur.as_mut() {
        let len = f.metadata().map(|m| m.len()).unwrap_or(0);
        let (offset, skip) = if start.file == last { (start.offset.min(len), start.skip) } else { (0, 0) };
        if f.seek(SeekFrom::Start(offset)).is_ok() {
            let mut r = BufReader::with_capacity(64 * 1024, &mut *f);
            let (used, go) = pump(&mut r, &mut sink, skip);
            pos = offset + used;
            let sent = sink.flush();
            if !go || !sent {
                return;
            }
        }
    }
    let Some(mut wake) = wake.filter(|_| o.follow && !sink.stopped) else {
        sink.flush();
        return;
    };
    loop {
        let running = {
            let w = wake.borrow_and_update();
            w.running && !w.removed
        };
        // Rotated away (or recreated)? Finish the old file, then take the new one.
        let now = std::fs::metadata(path).ok().map(|m| m.ino());
        if let Some(f) = cur.as_mut() {
            let _ = f.seek(SeekFrom::Start(pos));
            let mut r = BufReader::with_capacity(64 * 1024, &mut *f);
            let (used, go) = pump(&mut r, &mut sink, 0);
            pos += used;
            if !go {
                sink.flush();
                return;
            }
        }
        if now.is_some() && now != ino {
            cur = File::open(path).ok();
            ino = now;
            pos = 0;
            continue;
        }
        if !sink.flush() || tx.is_closed() {
            return;
        }
        if !running {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Skipping to a byte offset of an uncompressed file through its `BufRead`.
trait SeekPlain {
    fn seek_relative_plain(&mut self, n: u64) -> std::io::Result<()>;
}

impl SeekPlain for Box<dyn BufRead> {
    fn seek_relative_plain(&mut self, n: u64) -> std::io::Result<()> {
        std::io::copy(&mut self.as_mut().take(n), &mut std::io::sink()).map(|_| ())
    }
}

/// Stream the logs into `tx` (the reading happens on the blocking pool).
pub async fn stream(d: Arc<Daemon>, c: Arc<Container>, o: LogOptions, tx: mpsc::Sender<Bytes>) {
    let path = Paths::new(&d, &c.id).log(&c.id);
    let tty = c.tty();
    let wake = o.follow.then(|| c.subscribe());
    let _ = tokio::task::spawn_blocking(move || read_log(&path, &o, tty, &tx, wake)).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn since_parses_fractional_seconds() {
        assert_eq!(parse_time("10"), Ok(Some(10_000_000_000)));
        assert_eq!(parse_time("10.5"), Ok(Some(10_500_000_000)));
        assert_eq!(parse_time(""), Ok(None));
        assert_eq!(parse_time("x").unwrap_err(), "strconv.ParseInt: parsing \"x\": invalid syntax");
        assert_eq!(parse_time("1.x").unwrap_err(), "strconv.ParseInt: parsing \"x\": invalid syntax");
    }

    fn opts(tail: Option<usize>) -> LogOptions {
        LogOptions { stdout: true, stderr: true, follow: false, timestamps: false, since: None, until: None, tail, details: false }
    }

    #[test]
    fn render_frames_and_timestamps() {
        let e = Entry { log: "hi\n".into(), stream: "stdout".into(), attrs: Default::default(), time: "2026-11-23T16:34:28.222432227Z".into() };
        let o = LogOptions { timestamps: true, ..opts(None) };
        let Verdict::Send(b) = render(&e, &o, false) else { panic!() };
        assert_eq!(b[0], 1);
        assert!(b.ends_with(b"2026-11-23T16:34:28.222432227Z hi\n"));
        let o2 = LogOptions { stdout: false, ..o };
        assert!(matches!(render(&e, &o2, true), Verdict::Skip));
        // details: the attributes sorted and query-escaped, then a space (alone when none)
        let details = LogOptions { details: true, ..opts(None) };
        let Verdict::Send(b) = render(&e, &details, true) else { panic!() };
        assert_eq!(&b[..], b" hi\n");
        let e: Entry = serde_json::from_str(r#"{"log":"hi\n","stream":"stdout","attrs":{"z":"a b","tag":"x/y?"},"time":"2026-11-23T16:34:28Z"}"#).unwrap();
        let Verdict::Send(b) = render(&e, &details, true) else { panic!() };
        assert_eq!(&b[..], b"tag=x%2Fy%3F,z=a+b hi\n");
    }

    fn entry(stream: &str, i: usize) -> String {
        format!("{{\"log\":\"{stream} {i}\\n\",\"stream\":\"{stream}\",\"time\":\"2026-11-23T16:34:28.{i:09}Z\"}}\n")
    }

    /// Everything `read_log` sends, as text with frame headers stripped.
    fn collect(path: &Path, o: &LogOptions) -> Vec<String> {
        let (tx, mut rx) = mpsc::channel(1024);
        read_log(path, o, true, &tx, None);
        drop(tx);
        let mut out = String::new();
        while let Ok(b) = rx.try_recv() {
            out.push_str(&String::from_utf8_lossy(&b));
        }
        out.lines().map(str::to_owned).collect()
    }

    #[test]
    fn tail_reads_across_rotated_files_from_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c-json.log");
        // .2 (oldest), .1 compressed, then the current file; stderr lines interleaved.
        let mut old = String::new();
        for i in 0..1000 {
            old.push_str(&entry("stdout", i));
        }
        std::fs::write(dir.path().join("c-json.log.2"), &old).unwrap();
        let mut gz = flate2::write::GzEncoder::new(File::create(dir.path().join("c-json.log.1.gz")).unwrap(), Default::default());
        for i in 1000..1010 {
            gz.write_all(entry("stderr", i).as_bytes()).unwrap();
        }
        gz.finish().unwrap();
        let mut cur = String::new();
        for i in 1010..1015 {
            cur.push_str(&entry("stdout", i));
        }
        cur.push_str("{\"log\":\"partial"); // an entry still being written
        std::fs::write(&p, &cur).unwrap();

        let all = collect(&p, &opts(None));
        assert_eq!(all.len(), 1015);
        assert_eq!(all[0], "stdout 0");
        assert_eq!(all[1014], "stdout 1014");
        assert_eq!(collect(&p, &opts(Some(3))), ["stdout 1012", "stdout 1013", "stdout 1014"]);
        let t = collect(&p, &opts(Some(7)));
        assert_eq!(t.first().unwrap(), "stderr 1008");
        let t = collect(&p, &opts(Some(20)));
        assert_eq!(t.first().unwrap(), "stdout 995");
        assert_eq!(t.len(), 20);
        let only_out = LogOptions { stderr: false, ..opts(Some(8)) };
        assert_eq!(collect(&p, &only_out).first().unwrap(), "stdout 997");
        assert!(collect(&p, &opts(Some(0))).is_empty());
        assert_eq!(collect(&p, &opts(Some(5000))).len(), 1015);
    }

    #[test]
    fn until_stops_and_since_skips() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c-json.log");
        let mut s = String::new();
        for i in 0..10 {
            s.push_str(&entry("stdout", i));
        }
        std::fs::write(&p, &s).unwrap();
        let base = parse_time("1795451668").unwrap().unwrap(); // 2026-11-23T16:34:28Z
        let o = LogOptions { since: Some(base + 3), until: Some(base + 6), ..opts(None) };
        assert_eq!(collect(&p, &o), ["stdout 3", "stdout 4", "stdout 5", "stdout 6"]);
    }
}
