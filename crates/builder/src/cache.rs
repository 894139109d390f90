//! The build cache: one key per instruction, and a directory of key → image id.

use std::path::{Path, PathBuf};

use berth_errdefs::{Result, ResultExt};
use sha2::{Digest, Sha256};

/// Everything an instruction's result depends on.
#[derive(Debug, Clone, Default)]
pub struct KeyInput<'a> {
    /// The image the instruction applies to (`""` for scratch).
    pub parent: &'a str,
    /// The instruction text after variable substitution (for RUN: the argv).
    pub text: &'a str,
    /// The build args visible to the instruction (`KEY=VALUE`, any order).
    pub args: &'a [String],
    /// For COPY/ADD: the hash of the selected files (path, type, mode, content).
    pub content: Option<&'a str>,
}

/// The cache key: a sha256 over the inputs, unambiguously framed.
pub fn cache_key(k: &KeyInput<'_>) -> String {
    let mut h = Sha256::new();
    let mut field = |name: &str, v: &[u8]| {
        h.update(name.as_bytes());
        h.update((v.len() as u64).to_be_bytes());
        h.update(v);
    };
    field("parent", k.parent.as_bytes());
    field("text", k.text.as_bytes());
    let mut args = k.args.to_vec();
    args.sort();
    for a in &args {
        field("arg", a.as_bytes());
    }
    if let Some(c) = k.content {
        field("content", c.as_bytes());
    }
    hex::encode(h.finalize())
}

/// The directory name (under `<data-root>/buildcache/mounts/`) of a `RUN
/// --mount=type=cache`: by its id, and by its mode/owner when they are not the
/// default 0755 root:root (a cache created differently is a different cache).
pub fn cache_mount_dir(id: &str, mode: u32, uid: u32, gid: u32) -> String {
    let name = if (mode, uid, gid) == (0o755, 0, 0) {
        id.to_owned()
    } else {
        format!("{id}\0{mode:o}:{uid}:{gid}")
    };
    hex::encode(Sha256::digest(name.as_bytes()))
}

/// A persistent key → image id map: one small file per key, written atomically.
#[derive(Debug, Clone)]
pub struct DirCache {
    dir: PathBuf,
}

impl DirCache {
    pub fn open(dir: impl Into<PathBuf>) -> Result<DirCache> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir).ctx("create build cache dir")?;
        Ok(DirCache { dir })
    }

    fn path(&self, key: &str) -> Option<PathBuf> {
        (key.len() == 64 && key.bytes().all(|b| b.is_ascii_hexdigit())).then(|| self.dir.join(key))
    }

    /// The images recorded for `key`, newest first.
    pub fn get(&self, key: &str) -> Vec<String> {
        let Some(p) = self.path(key) else {
            return Vec::new();
        };
        let s = std::fs::read_to_string(p).unwrap_or_default();
        s.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect()
    }

    /// Record `image_id` for `key` (kept with up to 7 older results, so a
    /// `--no-cache` or `--cache-from` build does not lose the others).
    pub fn put(&self, key: &str, image_id: &str) -> Result<()> {
        let mut ids = vec![image_id.to_owned()];
        ids.extend(self.get(key).into_iter().filter(|i| i != image_id).take(7));
        self.write(key, &ids)
    }

    fn write(&self, key: &str, ids: &[String]) -> Result<()> {
        let Some(p) = self.path(key) else {
            return Ok(());
        };
        static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tmp = self
            .dir
            .join(format!(".{key}.tmp{}-{n}", std::process::id()));
        std::fs::write(&tmp, ids.join("\n") + "\n").ctx("write build cache entry")?;
        std::fs::rename(&tmp, &p).ctx("commit build cache entry")?;
        Ok(())
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Every entry: (key, image ids newest first, when it was last written).
    pub fn entries(&self) -> Result<Vec<(String, Vec<String>, std::time::SystemTime)>> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(&self.dir)
            .ctx("read build cache")?
            .flatten()
        {
            let key = e.file_name().to_string_lossy().into_owned();
            if self.path(&key).is_none() {
                continue; // temporary files, the mounts directory
            }
            let when = e
                .metadata()
                .and_then(|m| m.modified())
                .unwrap_or(std::time::UNIX_EPOCH);
            out.push((key.clone(), self.get(&key), when));
        }
        Ok(out)
    }

    /// Forget `image_id` under `key` (the entry goes when it names no image).
    pub fn forget(&self, key: &str, image_id: &str) -> Result<()> {
        let Some(p) = self.path(key) else {
            return Ok(());
        };
        let left: Vec<String> = self
            .get(key)
            .into_iter()
            .filter(|i| i != image_id)
            .collect();
        if left.is_empty() {
            return match std::fs::remove_file(&p) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    Err(e).ctx("remove build cache entry")
                }
                _ => Ok(()),
            };
        }
        self.write(key, &left)
    }

    /// Remove entries none of whose images `exists`.
    pub fn drop_dead(&self, exists: impl Fn(&str) -> bool) -> Result<()> {
        for (key, ids, _) in self.entries()? {
            if !ids.iter().any(|i| exists(i)) {
                if let Some(p) = self.path(&key) {
                    let _ = std::fs::remove_file(p);
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_change_exactly_with_their_inputs() {
        let args = vec!["A=1".to_owned(), "B=2".to_owned()];
        let base = KeyInput {
            parent: "sha256:aa",
            text: "RUN echo hi",
            args: &args,
            content: None,
        };
        let k = cache_key(&base);
        assert_eq!(k, cache_key(&base.clone()));
        // arg order does not matter
        let rev = vec!["B=2".to_owned(), "A=1".to_owned()];
        assert_eq!(
            k,
            cache_key(&KeyInput {
                args: &rev,
                ..base.clone()
            })
        );
        // each input does
        assert_ne!(
            k,
            cache_key(&KeyInput {
                parent: "sha256:ab",
                ..base.clone()
            })
        );
        assert_ne!(
            k,
            cache_key(&KeyInput {
                text: "RUN echo ho",
                ..base.clone()
            })
        );
        let other = vec!["A=2".to_owned(), "B=2".to_owned()];
        assert_ne!(
            k,
            cache_key(&KeyInput {
                args: &other,
                ..base.clone()
            })
        );
        assert_ne!(
            k,
            cache_key(&KeyInput {
                content: Some("x"),
                ..base.clone()
            })
        );
        // framing: moving bytes between fields changes the key
        let a = cache_key(&KeyInput {
            parent: "ab",
            text: "c",
            args: &[],
            content: None,
        });
        let b = cache_key(&KeyInput {
            parent: "a",
            text: "bc",
            args: &[],
            content: None,
        });
        assert_ne!(a, b);
    }

    #[test]
    fn dir_cache_round_trip() {
        let d = tempfile::tempdir().unwrap();
        let c = DirCache::open(d.path().join("bc")).unwrap();
        let key = "a".repeat(64);
        assert!(c.get(&key).is_empty());
        c.put(&key, "sha256:1234").unwrap();
        c.put(&key, "sha256:5678").unwrap();
        c.put(&key, "sha256:1234").unwrap();
        assert_eq!(c.get(&key), ["sha256:1234", "sha256:5678"]);
        assert!(c.get("../etc/passwd").is_empty());
        std::fs::create_dir(d.path().join("bc/mounts")).unwrap();
        let entries = c.entries().unwrap();
        assert_eq!(entries.len(), 1, "the mounts dir is no entry");
        assert_eq!(entries[0].0, key);
        assert_eq!(entries[0].1, ["sha256:1234", "sha256:5678"]);
        c.forget(&key, "sha256:1234").unwrap();
        assert_eq!(c.get(&key), ["sha256:5678"]);
        c.put(&"b".repeat(64), "sha256:9").unwrap();
        c.drop_dead(|id| id == "sha256:9").unwrap();
        assert!(c.get(&key).is_empty());
        assert_eq!(c.get(&"b".repeat(64)), ["sha256:9"]);
        c.forget(&"b".repeat(64), "sha256:9").unwrap();
        assert!(c.entries().unwrap().is_empty());
    }
}
