//! The container log in Docker's `json-file` format: one JSON object per line,
//! `{"log":"…","stream":"stdout","time":"RFC3339Nano"}` (with `"attrs":{…}` after the
//! stream when the container's log options ask for some), split at newlines, rotated as
//! `--log-opt max-size=…,max-file=…,compress=…` say (the current file `<log>`, older
//! ones `<log>.1` … `<log>.N-1`, gzip-compressed as `<log>.K.gz` with `compress`).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;

/// Longest partial line kept before it is written out as its own entry (as Docker).
const MAX_PARTIAL: usize = 16 * 1024;

#[derive(Serialize)]
struct Entry<'a> {
    log: &'a str,
    stream: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    attrs: Option<&'a Attrs>,
    time: String,
}

/// The attributes written with every entry (json-file's `labels`, `env`, `tag`).
pub type Attrs = std::collections::BTreeMap<String, String>;

/// Rotation settings (json-file's `max-size`, `max-file`, `compress`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rotation {
    /// Bytes a file may hold before the next entry starts a new one (0: no limit).
    pub max_size: u64,
    /// Files kept, the current one included (at least 1).
    pub max_file: u32,
    pub compress: bool,
}

impl Default for Rotation {
    fn default() -> Self {
        Rotation { max_size: 0, max_file: 1, compress: false }
    }
}

impl Rotation {
    /// `max-size=10485760,max-file=3,compress=true` (sizes already in bytes).
    pub fn parse(s: &str) -> anyhow::Result<Rotation> {
        let mut r = Rotation::default();
        for kv in s.split(',').filter(|x| !x.is_empty()) {
            let (k, v) = kv.split_once('=').ok_or_else(|| anyhow::anyhow!("bad log option {kv}"))?;
            match k {
                "max-size" => r.max_size = v.parse()?,
                "max-file" => r.max_file = v.parse::<u32>()?.max(1),
                "compress" => r.compress = matches!(v, "true" | "1"),
                other => anyhow::bail!("unknown log option {other}"),
            }
        }
        Ok(r)
    }
}

pub struct JsonLog {
    path: PathBuf,
    file: File,
    size: u64,
    rotation: Rotation,
    attrs: Option<Attrs>,
    partial: [Vec<u8>; 2],
}

/// The name of the `n`th rotated file of `path`.
pub fn rotated(path: &Path, n: u32, compressed: bool) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{n}{}", if compressed { ".gz" } else { "" }));
    PathBuf::from(s)
}

fn stream_name(idx: usize) -> &'static str {
    if idx == 0 {
        "stdout"
    } else {
        "stderr"
    }
}

impl JsonLog {
    pub fn open(path: &Path, rotation: Rotation) -> std::io::Result<JsonLog> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let size = file.metadata()?.len();
        Ok(JsonLog { path: path.to_owned(), file, size, rotation, attrs: None, partial: [Vec::new(), Vec::new()] })
    }

    /// Write `attrs` with every entry (none when empty).
    pub fn with_attrs(mut self, attrs: Attrs) -> JsonLog {
        self.attrs = (!attrs.is_empty()).then_some(attrs);
        self
    }

    /// Start a new file: shift the rotated ones up (dropping the oldest), move the
    /// current one to `.1` (compressed with `compress`), reopen.
    fn rotate(&mut self) -> std::io::Result<()> {
        let Rotation { max_file, compress, .. } = self.rotation;
        if max_file <= 1 {
            self.file.set_len(0)?;
            self.size = 0;
            return Ok(());
        }
        let _ = std::fs::remove_file(rotated(&self.path, max_file - 1, compress));
        for n in (1..max_file - 1).rev() {
            let _ = std::fs::rename(rotated(&self.path, n, compress), rotated(&self.path, n + 1, compress));
        }
        let first = rotated(&self.path, 1, false);
        std::fs::rename(&self.path, &first)?;
        self.file = OpenOptions::new().create(true).append(true).open(&self.path)?;
        self.size = 0;
        if compress {
            compress_file(&first, &rotated(&self.path, 1, true))?;
        }
        Ok(())
    }

    fn write_entry(&mut self, idx: usize, bytes: &[u8]) {
        let e = Entry {
            log: &String::from_utf8_lossy(bytes),
            stream: stream_name(idx),
            attrs: self.attrs.as_ref(),
            time: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
        };
        if let Ok(mut line) = serde_json::to_vec(&e) {
            line.push(b'\n');
            let max = self.rotation.max_size;
            if max > 0 && self.size > 0 && self.size + line.len() as u64 > max {
                if let Err(e) = self.rotate() {
                    eprintln!("rotate {}: {e}", self.path.display());
                }
            }
            if self.file.write_all(&line).is_ok() {
                self.size += line.len() as u64;
            }
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

/// gzip `from` into `to` (through a temporary name, so readers never see half a file),
/// then remove `from`.
fn compress_file(from: &Path, to: &Path) -> std::io::Result<()> {
    let tmp = to.with_extension("gz.tmp");
    {
        let mut r = File::open(from)?;
        let mut w = flate2::write::GzEncoder::new(File::create(&tmp)?, flate2::Compression::default());
        std::io::copy(&mut r, &mut w)?;
        w.finish()?.sync_all()?;
    }
    std::fs::rename(&tmp, to)?;
    std::fs::remove_file(from)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(p: &Path) -> usize {
        std::fs::read_to_string(p).map(|s| s.lines().count()).unwrap_or(0)
    }

    /// With attributes, every entry carries them between its stream and time, as
    /// dockerd's json-file writes them; without, the key is left out.
    #[test]
    fn entries_carry_the_attributes() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c-json.log");
        let attrs: Attrs = [("tag".to_owned(), "web".to_owned()), ("a".to_owned(), "1".to_owned())].into();
        let mut log = JsonLog::open(&p, Rotation::default()).unwrap().with_attrs(attrs);
        log.write(1, b"x\n");
        let line = std::fs::read_to_string(&p).unwrap();
        assert!(line.starts_with(r#"{"log":"x\n","stream":"stderr","attrs":{"a":"1","tag":"web"},"time":""#), "{line}");
        let q = dir.path().join("plain-json.log");
        let mut plain = JsonLog::open(&q, Rotation::default()).unwrap().with_attrs(Attrs::new());
        plain.write(0, b"y\n");
        assert!(!std::fs::read_to_string(&q).unwrap().contains("attrs"));
    }

    #[test]
    fn rotates_keeping_max_file_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c-json.log");
        let mut log = JsonLog::open(&p, Rotation { max_size: 300, max_file: 3, compress: false }).unwrap();
        for i in 0..40 {
            log.write(0, format!("line {i:03}\n").as_bytes());
        }
        log.flush();
        assert!(std::fs::metadata(&p).unwrap().len() <= 300);
        assert!(rotated(&p, 1, false).exists() && rotated(&p, 2, false).exists());
        assert!(!rotated(&p, 3, false).exists());
        let last = std::fs::read_to_string(&p).unwrap();
        assert!(last.contains("line 039"));
        assert!(lines(&rotated(&p, 1, false)) > 0);
    }

    #[test]
    fn compresses_rotated_files_and_truncates_with_one_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c-json.log");
        let mut log = JsonLog::open(&p, Rotation { max_size: 200, max_file: 2, compress: true }).unwrap();
        for i in 0..20 {
            log.write(1, format!("err {i}\n").as_bytes());
        }
        assert!(rotated(&p, 1, true).exists() && !rotated(&p, 1, false).exists());
        let mut s = String::new();
        std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(File::open(rotated(&p, 1, true)).unwrap()), &mut s).unwrap();
        assert!(s.contains("\"stream\":\"stderr\""));
        let p1 = dir.path().join("one.log");
        let mut one = JsonLog::open(&p1, Rotation { max_size: 100, max_file: 1, compress: false }).unwrap();
        for i in 0..20 {
            one.write(0, format!("x {i}\n").as_bytes());
        }
        assert!(std::fs::metadata(&p1).unwrap().len() <= 100);
        assert!(!rotated(&p1, 1, false).exists());
    }

    #[test]
    fn rotation_options_parse() {
        assert_eq!(Rotation::parse("").unwrap(), Rotation::default());
        assert_eq!(
            Rotation::parse("max-size=1024,max-file=2,compress=true").unwrap(),
            Rotation { max_size: 1024, max_file: 2, compress: true }
        );
        assert!(Rotation::parse("labels=a").is_err());
    }
}
