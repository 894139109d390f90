//! The build context: the uploaded tar held as a tree of entries keyed by clean
//! relative path, with `.dockerignore` filtering and Go-style source globbing.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use berth_errdefs::{Error, Result};

use crate::dockerignore::{glob_match, Matcher};

/// What a context entry is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
    Symlink(String),
}

/// One file, directory or symlink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub kind: Kind,
    /// Permission bits (and setuid/setgid/sticky).
    pub mode: u32,
    pub mtime: u64,
    pub data: Vec<u8>,
}

impl Entry {
    pub fn dir(mode: u32) -> Entry {
        Entry {
            kind: Kind::Dir,
            mode,
            mtime: 0,
            data: Vec::new(),
        }
    }
    pub fn file(mode: u32, data: impl Into<Vec<u8>>) -> Entry {
        Entry {
            kind: Kind::File,
            mode,
            mtime: 0,
            data: data.into(),
        }
    }
}

/// Cleans a path like Go's `filepath.Clean` relative to a root: no leading `/`,
/// no `.`, `..` never escapes. The root is `""`.
pub fn clean(p: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for seg in p.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            s => out.push(s),
        }
    }
    out.join("/")
}

/// Resolve `path` component by component, `link(p)` giving the target of `p` when
/// it is a symlink: absolute targets restart at the root, `..` never leaves it.
/// `None` after 40 links (a loop). (On disk, `ContainerFs::eval_symlinks` does this.)
fn resolve_links(path: &str, link: impl Fn(&str) -> Option<String>) -> Option<String> {
    let mut todo: std::collections::VecDeque<String> =
        path.split('/').filter(|c| !c.is_empty()).map(str::to_owned).collect();
    let mut cur: Vec<String> = Vec::new();
    let mut links = 0;
    while let Some(c) = todo.pop_front() {
        match c.as_str() {
            "." => continue,
            ".." => {
                cur.pop();
                continue;
            }
            _ => cur.push(c),
        }
        if let Some(t) = link(&cur.join("/")) {
            links += 1;
            if links > 40 {
                return None;
            }
            cur.pop();
            if t.starts_with('/') {
                cur.clear();
            }
            for part in t.split('/').filter(|c| !c.is_empty()).rev() {
                todo.push_front(part.to_owned());
            }
        }
    }
    Some(cur.join("/"))
}

/// A tree of files (the build context, or files read from an image).
#[derive(Debug, Clone, Default)]
pub struct Context {
    entries: BTreeMap<String, Entry>,
}

/// Whether `data` is a tar archive, plain or gzip-compressed (what a build context
/// download or stdin may be; anything else is taken as a Dockerfile).
pub fn looks_like_tar(data: &[u8]) -> bool {
    let ustar = |b: &[u8]| b.len() > 262 && &b[257..262] == b"ustar";
    if data.starts_with(&[0x1f, 0x8b]) {
        let mut head = Vec::new();
        let _ = flate2::read::GzDecoder::new(data)
            .take(512)
            .read_to_end(&mut head);
        return ustar(&head);
    }
    ustar(data)
}

impl Context {
    /// Read a (possibly gzip-compressed) context tar.
    pub fn from_tar(r: impl Read) -> Result<Context> {
        let mut br = BufReader::new(r);
        let gz = {
            let head = br.fill_buf()?;
            head.len() >= 2 && head[0] == 0x1f && head[1] == 0x8b
        };
        // The docker CLI's stream with a Dockerfile from outside the context ends
        // without padding or end-of-archive blocks (Go's reader accepts that): zeros
        // after the data complete it, and are ignored after a proper end.
        let pad = std::io::repeat(0).take(1024 + 512);
        if gz {
            Self::read_tar(flate2::read::GzDecoder::new(br).chain(pad))
        } else {
            Self::read_tar(br.chain(pad))
        }
    }

    fn read_tar(r: impl Read) -> Result<Context> {
        let mut ctx = Context::default();
        let mut a = tar::Archive::new(r);
        let bad = |e: std::io::Error| Error::invalid(format!("invalid build context tar: {e}"));
        for e in a.entries().map_err(bad)? {
            let mut e = e.map_err(bad)?;
            let path = clean(&e.path().map_err(bad)?.to_string_lossy());
            if path.is_empty() {
                continue;
            }
            let h = e.header();
            let mode = h.mode().unwrap_or(0o644) & 0o7777;
            let mtime = h.mtime().unwrap_or(0);
            let kind = match h.entry_type() {
                tar::EntryType::Directory => Kind::Dir,
                tar::EntryType::Symlink => Kind::Symlink(
                    e.link_name()
                        .map_err(bad)?
                        .map(|l| l.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                ),
                tar::EntryType::Regular | tar::EntryType::Continuous => Kind::File,
                tar::EntryType::Link => {
                    // A hard link: copy the target's content.
                    let target = clean(
                        &e.link_name()
                            .map_err(bad)?
                            .map(|l| l.to_string_lossy().into_owned())
                            .unwrap_or_default(),
                    );
                    if let Some(t) = ctx.entries.get(&target).cloned() {
                        ctx.insert(path, t);
                    }
                    continue;
                }
                _ => continue,
            };
            let mut data = Vec::new();
            if kind == Kind::File {
                e.read_to_end(&mut data).map_err(bad)?;
            }
            ctx.insert(
                path,
                Entry {
                    kind,
                    mode,
                    mtime,
                    data,
                },
            );
        }
        Ok(ctx)
    }

    /// Read the subtrees `prefixes` (relative paths) of an image's root on disk
    /// (`COPY --from`). Symlinks on the way to a prefix are resolved inside `root`
    /// (an absolute link means the image's `/`, never the host's), and a prefix that
    /// is itself a symlink brings what it points to, which [`Context::follow`] finds.
    pub fn from_dir(root: &Path, prefixes: &[String]) -> Result<Context> {
        // the real path of `rel` inside the root (pathrs, as `docker cp` resolves):
        // no symlink left in it, so joining it to `root` stays inside
        let fs = berth_containerfs::ContainerFs::open(root).map_err(|e| Error::internal(e.to_string()))?;
        let scoped = |rel: &str| fs.eval_symlinks(rel).ok().map(|p| clean(&p));
        let mut ctx = Context::default();
        for p in prefixes {
            let p = clean(p);
            let (parent, name) = p.rsplit_once('/').unwrap_or(("", p.as_str()));
            let Some(real_parent) = scoped(parent) else { continue };
            ctx.load(root, &clean(&format!("{real_parent}/{name}")), &p)?;
            let mut seen = 0;
            loop {
                let target = ctx.follow(&p);
                if ctx.entries.contains_key(&target) || seen == 8 {
                    break;
                }
                seen += 1;
                let Some(real) = scoped(&target) else { break };
                ctx.load(root, &real, &target)?;
            }
        }
        Ok(ctx)
    }

    /// Load the entry at `real` (a path inside `root` with no symlink before its last
    /// component) and everything below it, named `rel` in the context.
    fn load(&mut self, root: &Path, real: &str, rel: &str) -> Result<()> {
        let full = if real.is_empty() {
            root.to_path_buf()
        } else {
            root.join(real)
        };
        let Ok(md) = std::fs::symlink_metadata(&full) else {
            return Ok(());
        };
        let mode = md.mode() & 0o7777;
        let mtime = md.mtime().max(0) as u64;
        let ft = md.file_type();
        if ft.is_dir() {
            if !rel.is_empty() {
                self.insert(
                    rel.to_owned(),
                    Entry {
                        kind: Kind::Dir,
                        mode,
                        mtime,
                        data: Vec::new(),
                    },
                );
            }
            let mut names: Vec<String> = std::fs::read_dir(&full)?
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            for n in names {
                let (real_child, child) = if rel.is_empty() {
                    (clean(&format!("{real}/{n}")), n)
                } else {
                    (clean(&format!("{real}/{n}")), format!("{rel}/{n}"))
                };
                self.load(root, &real_child, &child)?;
            }
        } else if ft.is_symlink() {
            let t = std::fs::read_link(&full)?.to_string_lossy().into_owned();
            self.insert(
                rel.to_owned(),
                Entry {
                    kind: Kind::Symlink(t),
                    mode,
                    mtime,
                    data: Vec::new(),
                },
            );
        } else if ft.is_file() {
            let data = std::fs::read(&full)?;
            self.insert(
                rel.to_owned(),
                Entry {
                    kind: Kind::File,
                    mode,
                    mtime,
                    data,
                },
            );
        }
        Ok(())
    }

    /// Add an entry, creating missing parent directories (0755).
    pub fn insert(&mut self, path: String, e: Entry) {
        let mut parent = path.as_str();
        while let Some((p, _)) = parent.rsplit_once('/') {
            self.entries
                .entry(p.to_owned())
                .or_insert_with(|| Entry::dir(0o755));
            parent = p;
        }
        self.entries.insert(path, e);
    }

    pub fn get(&self, path: &str) -> Option<&Entry> {
        self.entries.get(&clean(path))
    }

    /// The path `path` names once every symlink in it, the last component included,
    /// is followed within the context (an absolute target starts at the context's
    /// root; `..` stops there), as dockerd resolves a COPY source. A chain longer
    /// than 40 links, like a loop, leaves the path as it is.
    pub fn follow(&self, path: &str) -> String {
        let target = |p: &str| match self.entries.get(p) {
            Some(Entry { kind: Kind::Symlink(t), .. }) => Some(t.clone()),
            _ => None,
        };
        resolve_links(&clean(path), target).unwrap_or_else(|| clean(path))
    }

    pub fn paths(&self) -> impl Iterator<Item = &String> {
        self.entries.keys()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Every entry strictly below directory `dir` ("" for the root), in path order.
    pub fn descendants<'a>(
        &'a self,
        dir: &'a str,
    ) -> impl Iterator<Item = (&'a String, &'a Entry)> + 'a {
        let prefix = if dir.is_empty() {
            String::new()
        } else {
            format!("{dir}/")
        };
        self.entries
            .range(prefix.clone()..)
            .take_while(move |(k, _)| k.starts_with(&prefix))
            .filter(|(k, _)| !k.is_empty())
    }

    /// The Dockerfile's content (read before `.dockerignore` is applied).
    pub fn read_file(&self, name: &str) -> Option<&[u8]> {
        self.entries
            .get(&clean(name))
            .filter(|e| e.kind == Kind::File)
            .map(|e| e.data.as_slice())
    }

    /// Apply `<dockerfile>.dockerignore` (if present) or `.dockerignore`: ignored
    /// entries are removed, as they are for COPY and ADD. Returns the number removed.
    pub fn apply_dockerignore(&mut self, dockerfile: &str) -> usize {
        let specific = format!("{}.dockerignore", clean(dockerfile));
        let content = self
            .read_file(&specific)
            .or_else(|| self.read_file(".dockerignore"))
            .map(|b| String::from_utf8_lossy(b).into_owned());
        let Some(content) = content else { return 0 };
        let m = Matcher::parse(&content);
        let before = self.entries.len();
        self.entries.retain(|k, _| !m.matches(k));
        before - self.entries.len()
    }

    /// Paths matching a COPY/ADD source pattern (Go `filepath.Match` per segment).
    /// `.` (or `/`) is the root, returned as `""`.
    pub fn glob(&self, pattern: &str) -> Vec<String> {
        let pat = clean(pattern);
        if pat.is_empty() {
            return vec![String::new()];
        }
        if !pat.contains(['*', '?', '[', '\\']) {
            return if self.entries.contains_key(&pat) {
                vec![pat]
            } else {
                Vec::new()
            };
        }
        let psegs: Vec<&str> = pat.split('/').collect();
        self.entries
            .keys()
            .filter(|k| {
                let ks: Vec<&str> = k.split('/').collect();
                ks.len() == psegs.len() && ks.iter().zip(&psegs).all(|(s, p)| glob_match(p, s))
            })
            .cloned()
            .collect()
    }

    /// The literal directory prefix of a pattern (what to read from an image for it).
    pub fn literal_prefix(pattern: &str) -> String {
        let pat = clean(pattern);
        let mut out = Vec::new();
        for seg in pat.split('/') {
            if seg.contains(['*', '?', '[', '\\']) {
                break;
            }
            out.push(seg);
        }
        out.join("/")
    }
}

#[cfg(test)]
pub(crate) mod tests_support {
    pub fn tar_of(files: &[(&str, &str, u32)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (p, data, mode) in files {
            let mut h = tar::Header::new_gnu();
            if p.ends_with('/') {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_size(0);
                h.set_mode(*mode);
                b.append_data(&mut h, p, std::io::empty()).unwrap();
            } else {
                h.set_size(data.len() as u64);
                h.set_mode(*mode);
                b.append_data(&mut h, p, data.as_bytes()).unwrap();
            }
        }
        b.into_inner().unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tests_support::tar_of;

    #[test]
    fn reads_globs_and_ignores() {
        let t = tar_of(&[
            ("Dockerfile", "FROM x", 0o644),
            (
                ".dockerignore",
                "secret.txt\nlogs\n*.tmp\n!keep.tmp\n",
                0o644,
            ),
            ("hello.txt", "hi", 0o644),
            ("secret.txt", "s", 0o600),
            ("x.tmp", "t", 0o644),
            ("keep.tmp", "k", 0o644),
            ("logs/a.log", "l", 0o644),
            ("src/", "", 0o755),
            ("src/main.c", "c", 0o640),
            ("src/b.c", "c", 0o640),
        ]);
        let mut c = Context::from_tar(&t[..]).unwrap();
        assert!(c.get("logs").is_some(), "implicit parents are created");
        assert_eq!(c.read_file("Dockerfile"), Some(&b"FROM x"[..]));
        c.apply_dockerignore("Dockerfile");
        assert!(c.get("secret.txt").is_none());
        assert!(c.get("logs/a.log").is_none() && c.get("logs").is_none());
        assert!(c.get("x.tmp").is_none());
        assert!(c.get("keep.tmp").is_some());
        assert_eq!(c.glob("src/*.c"), ["src/b.c", "src/main.c"]);
        assert_eq!(c.glob("./hello.txt"), ["hello.txt"]);
        assert_eq!(c.glob("../hello.txt"), ["hello.txt"]);
        assert!(c.glob("nope").is_empty());
        assert_eq!(c.glob("."), [""]);
        assert_eq!(c.get("src/main.c").unwrap().mode, 0o640);
        let d: Vec<_> = c.descendants("src").map(|(k, _)| k.clone()).collect();
        assert_eq!(d, ["src/b.c", "src/main.c"]);
        assert_eq!(Context::literal_prefix("/usr/lib/*.so"), "usr/lib");
    }

    #[test]
    fn unterminated_tar_from_the_docker_cli() {
        let mut t = tar_of(&[
            ("f", "abc", 0o644),
            (".dockerfile.x", "FROM busybox\n", 0o600),
        ]);
        // cut the end-of-archive blocks and the last data block's padding
        t.truncate(512 * 3 + 13);
        let c = Context::from_tar(&t[..]).unwrap();
        assert_eq!(c.read_file(".dockerfile.x"), Some(&b"FROM busybox\n"[..]));
        assert_eq!(c.read_file("f"), Some(&b"abc"[..]));
    }

    #[test]
    fn dockerfile_specific_ignore_file_wins() {
        let t = tar_of(&[
            ("build/app.Dockerfile", "FROM x", 0o644),
            ("build/app.Dockerfile.dockerignore", "a.txt\n", 0o644),
            (".dockerignore", "b.txt\n", 0o644),
            ("a.txt", "a", 0o644),
            ("b.txt", "b", 0o644),
        ]);
        let mut c = Context::from_tar(&t[..]).unwrap();
        c.apply_dockerignore("build/app.Dockerfile");
        assert!(c.get("a.txt").is_none());
        assert!(c.get("b.txt").is_some());
        let mut c = Context::from_tar(&t[..]).unwrap();
        c.apply_dockerignore("Dockerfile");
        assert!(c.get("a.txt").is_some());
        assert!(c.get("b.txt").is_none());
    }
}
