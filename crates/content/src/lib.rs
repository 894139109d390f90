//! Content-addressed blob store.
//!
//! Blobs live at `<root>/blobs/<algorithm>/<hex>`. New content is written through an
//! [`Ingest`], hashed while it streams, fsynced, and renamed into place atomically.

use std::fmt;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use berth_errdefs::{Error, Result, ResultExt};
use sha2::{Digest as _, Sha256};

/// A `sha256:<64 hex>` content digest.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Digest(String);

impl Digest {
    /// The digest of `data`.
    pub fn of(data: &[u8]) -> Digest {
        Digest(format!("sha256:{}", hex::encode(Sha256::digest(data))))
    }
    pub fn from_hex(hex_str: &str) -> Result<Digest> {
        format!("sha256:{hex_str}").parse()
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// The hex part after `sha256:`.
    pub fn hex(&self) -> &str {
        &self.0[7..]
    }
    /// The first 12 hex characters, as Docker prints ids.
    pub fn short(&self) -> &str {
        &self.hex()[..12]
    }
}

impl FromStr for Digest {
    type Err = Error;
    fn from_str(s: &str) -> Result<Digest> {
        let hex_part = s
            .strip_prefix("sha256:")
            .ok_or_else(|| Error::invalid(format!("unsupported digest algorithm: {s}")))?;
        if hex_part.len() != 64 || !hex_part.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(Error::invalid(format!("invalid digest: {s}")));
        }
        Ok(Digest(s.to_owned()))
    }
}

impl TryFrom<String> for Digest {
    type Error = Error;
    fn try_from(s: String) -> Result<Digest> {
        s.parse()
    }
}

impl From<Digest> for String {
    fn from(d: Digest) -> String {
        d.0
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The blob store rooted at a directory.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

impl Store {
    /// Open (creating if needed) a store at `root`. Stale ingests from a crash are removed.
    pub fn open(root: impl Into<PathBuf>) -> Result<Store> {
        let root = root.into();
        fs::create_dir_all(root.join("blobs/sha256")).ctx("create content store")?;
        let ingest = root.join("ingest");
        let _ = fs::remove_dir_all(&ingest);
        fs::create_dir_all(&ingest).ctx("create ingest dir")?;
        Ok(Store { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the blob with this digest lives (whether or not it exists).
    pub fn path(&self, d: &Digest) -> PathBuf {
        self.root.join("blobs/sha256").join(d.hex())
    }

    pub fn exists(&self, d: &Digest) -> bool {
        self.path(d).exists()
    }

    /// Size in bytes of a stored blob.
    pub fn size(&self, d: &Digest) -> Result<u64> {
        let md = fs::metadata(self.path(d)).map_err(|e| not_found_or(e, d))?;
        Ok(md.len())
    }

    /// Read a whole blob into memory (configs, manifests).
    pub fn read(&self, d: &Digest) -> Result<Vec<u8>> {
        fs::read(self.path(d)).map_err(|e| not_found_or(e, d))
    }

    /// Open a blob for streaming reads (layers).
    pub fn open_blob(&self, d: &Digest) -> Result<File> {
        File::open(self.path(d)).map_err(|e| not_found_or(e, d))
    }

    /// Store a small blob held in memory; returns its digest.
    pub fn write(&self, data: &[u8]) -> Result<Digest> {
        let d = Digest::of(data);
        if self.exists(&d) {
            return Ok(d);
        }
        let mut ing = self.ingest()?;
        ing.write_all(data)?;
        ing.commit(Some(&d))
    }

    /// Start streaming a new blob in.
    pub fn ingest(&self) -> Result<Ingest> {
        let name = format!("{:016x}", rand::random::<u64>());
        let path = self.root.join("ingest").join(name);
        let file = File::create(&path).ctx("create ingest file")?;
        Ok(Ingest { store: self.clone(), path, file, hasher: Sha256::new(), size: 0, done: false })
    }

    /// Remove a blob. Removing a missing blob is not an error.
    pub fn delete(&self, d: &Digest) -> Result<()> {
        match fs::remove_file(self.path(d)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    }

    /// Every stored digest.
    pub fn list(&self) -> Result<Vec<Digest>> {
        let mut out = Vec::new();
        for e in fs::read_dir(self.root.join("blobs/sha256"))? {
            if let Some(n) = e?.file_name().to_str() {
                if let Ok(d) = Digest::from_hex(n) {
                    out.push(d);
                }
            }
        }
        Ok(out)
    }
}

fn not_found_or(e: io::Error, d: &Digest) -> Error {
    if e.kind() == io::ErrorKind::NotFound {
        Error::not_found(format!("content {d} not found"))
    } else {
        e.into()
    }
}

/// A blob being written. Dropped without `commit`, it leaves nothing behind.
pub struct Ingest {
    store: Store,
    path: PathBuf,
    file: File,
    hasher: Sha256,
    size: u64,
    done: bool,
}

impl Ingest {
    /// Bytes written so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The digest of what was written so far.
    pub fn digest(&self) -> Digest {
        Digest(format!("sha256:{}", hex::encode(self.hasher.clone().finalize())))
    }

    /// Copy everything from a reader into the blob.
    pub fn copy_from(&mut self, mut r: impl Read) -> Result<u64> {
        let mut buf = vec![0u8; 256 * 1024];
        let mut n = 0;
        loop {
            let k = match r.read(&mut buf) {
                Ok(0) => break,
                Ok(k) => k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e.into()),
            };
            self.write_all(&buf[..k])?;
            n += k as u64;
        }
        Ok(n)
    }

    /// Finish: verify against `expected` (if given), fsync, and rename into place.
    pub fn commit(mut self, expected: Option<&Digest>) -> Result<Digest> {
        let d = self.digest();
        if let Some(want) = expected {
            if *want != d {
                return Err(Error::invalid(format!(
                    "digest mismatch: expected {want}, got {d}"
                )));
            }
        }
        self.file.sync_all().ctx("sync blob")?;
        let dst = self.store.path(&d);
        fs::rename(&self.path, &dst).ctx("commit blob")?;
        self.done = true;
        Ok(d)
    }
}

impl Write for Ingest {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl Drop for Ingest {
    fn drop(&mut self) {
        if !self.done {
            let _ = fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_read_roundtrip() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let d = s.write(b"hello").unwrap();
        assert_eq!(d.as_str(), "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824");
        assert_eq!(s.read(&d).unwrap(), b"hello");
        assert_eq!(s.size(&d).unwrap(), 5);
        assert_eq!(s.list().unwrap(), vec![d.clone()]);
        s.delete(&d).unwrap();
        assert!(s.read(&d).unwrap_err().is_not_found());
    }

    #[test]
    fn mismatched_digest_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let mut ing = s.ingest().unwrap();
        ing.write_all(b"abc").unwrap();
        let wrong = Digest::of(b"xyz");
        assert!(ing.commit(Some(&wrong)).is_err());
        assert!(s.list().unwrap().is_empty());
        assert_eq!(fs::read_dir(dir.path().join("ingest")).unwrap().count(), 0);
    }

    #[test]
    fn digest_parsing_is_strict() {
        assert!("sha256:abc".parse::<Digest>().is_err());
        assert!("md5:00".parse::<Digest>().is_err());
        let d = Digest::of(b"");
        assert_eq!(d.short().len(), 12);
        assert_eq!(d.as_str().parse::<Digest>().unwrap(), d);
    }
}
