//! COPY and ADD: select files from a context (or an image), apply Docker's
//! destination rules, and write the new layer as a tar.

use std::collections::BTreeMap;
use std::io::Read;

use berth_errdefs::{Error, Result};
use sha2::{Digest, Sha256};

use crate::context::{clean, Context, Kind};
use crate::dockerignore::Matcher;

/// One COPY/ADD, variables already expanded.
#[derive(Debug, Clone, Default)]
pub struct CopyRequest {
    pub sources: Vec<String>,
    pub dest: String,
    /// The stage's working directory (relative destinations are under it).
    pub workdir: String,
    pub chown: Option<(u32, u32)>,
    pub chmod: Option<u32>,
    /// ADD: local tar archives are extracted.
    pub add: bool,
    /// Sources come from another stage or image (changes the error text).
    pub from_image: bool,
    /// Files given inline: heredocs (`COPY <<EOF`), downloads (`ADD <url>`).
    pub inline: Vec<InlineSource>,
    /// `--parents`: keep each source's path (below the context root or a `/./` pivot).
    pub parents: bool,
    /// `--exclude` patterns (`.dockerignore` syntax, relative to each source).
    pub excludes: Vec<String>,
    /// ADD `--unpack`: `Some(false)` keeps local archives as they are.
    pub unpack: Option<bool>,
}

/// A file given inline rather than found in a context.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InlineSource {
    pub name: String,
    pub data: Vec<u8>,
    pub mode: u32,
    pub mtime: u64,
    /// Extract it when it is an archive (ADD `--unpack=true` of a URL).
    pub unpack: bool,
}

/// A file of the new layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutEntry {
    pub kind: Kind,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: u64,
    pub data: Vec<u8>,
}

/// The result of planning a copy.
#[derive(Debug, Clone)]
pub struct CopyPlan {
    /// Layer entries by path (no leading `/`).
    pub entries: BTreeMap<String, OutEntry>,
    /// Hash of what was selected: paths, types, modes, owners, content (no mtimes).
    pub content_hash: String,
    /// `file:<hash>`, `dir:<hash>` or `multi:<hash>` for the history text.
    pub src_desc: String,
    /// The destination as resolved (absolute), for the history text.
    pub dest: String,
}

/// What is at a path of the parent image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Existing {
    pub dir: bool,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

impl Existing {
    /// From the (not followed) metadata of a path in a mounted image.
    pub fn of(m: &std::fs::Metadata) -> Existing {
        use std::os::unix::fs::MetadataExt;
        Existing { dir: m.is_dir(), mode: m.mode() & 0o7777, uid: m.uid(), gid: m.gid() }
    }
}

/// What is at `path` (relative, no leading `/`) in the parent image, if anything.
pub type Exists<'a> = &'a dyn Fn(&str) -> Option<Existing>;

/// A local archive ADD unpacks: a tar, plain or gzip, bzip2, xz or zstd compressed.
fn is_archive(data: &[u8]) -> bool {
    berth_containerfs::is_tar(data)
}

fn join(dir: &str, rel: &str) -> String {
    clean(&format!("{dir}/{rel}"))
}

fn basename(p: &str) -> &str {
    p.rsplit('/').next().unwrap_or(p)
}

/// Hash of a set of layer entries: paths, types, modes, owners and bytes (no mtimes).
pub fn hash_entries(out: &BTreeMap<String, OutEntry>) -> String {
    let mut h = Sha256::new();
    for (p, e) in out {
        h.update(p.as_bytes());
        h.update([0]);
        match &e.kind {
            Kind::File => h.update(b"f"),
            Kind::Dir => h.update(b"d"),
            Kind::Symlink(t) => {
                h.update(b"l");
                h.update(t.as_bytes());
            }
        }
        h.update(e.mode.to_be_bytes());
        h.update(e.uid.to_be_bytes());
        h.update(e.gid.to_be_bytes());
        h.update((e.data.len() as u64).to_be_bytes());
        h.update(&e.data);
    }
    hex::encode(h.finalize())
}

fn hash_source_entry(h: &mut Sha256, p: &str, e: &crate::context::Entry) {
    h.update((p.len() as u64).to_be_bytes());
    h.update(p.as_bytes());
    match &e.kind {
        Kind::File => h.update(b"f"),
        Kind::Dir => h.update(b"d"),
        Kind::Symlink(t) => {
            h.update(b"l");
            h.update((t.len() as u64).to_be_bytes());
            h.update(t.as_bytes());
        }
    }
    h.update(e.mode.to_be_bytes());
    h.update((e.data.len() as u64).to_be_bytes());
    h.update(&e.data);
}

/// A digest of everything [`plan_copy`] can read from `ctx` and `req.inline` for
/// `req`'s sources (each matched entry, a directory with all it holds: paths, types,
/// modes, link targets, bytes; no mtimes), computed without the parent image. With
/// the parent image id and the unresolved request it determines the copy's result,
/// so it keys the cache before the image is mounted. `None` when a source matches
/// nothing or is a URL (the full plan reports those).
pub fn source_digest(ctx: &Context, req: &CopyRequest) -> Option<String> {
    let mut h = Sha256::new();
    for s in &req.sources {
        if s.contains("://") {
            return None;
        }
        h.update(b"source\0");
        h.update((s.len() as u64).to_be_bytes());
        h.update(s.as_bytes());
        let m = ctx.glob(s);
        if m.is_empty() {
            return None;
        }
        for p in m {
            // What a symlink source points to is what gets copied.
            let real = ctx.follow(&p);
            h.update((p.len() as u64).to_be_bytes());
            h.update(p.as_bytes());
            match ctx.get(&real) {
                Some(e) => hash_source_entry(&mut h, &real, e),
                None if real.is_empty() => h.update(b"root\0"),
                None => return None,
            }
            if real.is_empty() || ctx.get(&real).is_some_and(|e| e.kind == Kind::Dir) {
                for (c, e) in ctx.descendants(&real) {
                    hash_source_entry(&mut h, c, e);
                }
            }
            h.update(b"end\0");
        }
    }
    for f in &req.inline {
        h.update(b"inline\0");
        h.update((f.name.len() as u64).to_be_bytes());
        h.update(f.name.as_bytes());
        h.update(f.mode.to_be_bytes());
        h.update([u8::from(f.unpack)]);
        h.update((f.data.len() as u64).to_be_bytes());
        h.update(&f.data);
    }
    Some(hex::encode(h.finalize()))
}

/// Resolve the sources and lay the files out at their destinations.
pub fn plan_copy(ctx: &Context, req: &CopyRequest, exists: Exists<'_>) -> Result<CopyPlan> {
    let (uid, gid) = req.chown.unwrap_or((0, 0));
    let now = chrono::Utc::now().timestamp().max(0) as u64;
    // Destination: WORKDIR-relative, trailing `/` (or `.`) means a directory.
    let raw = if req.dest.starts_with('/') {
        req.dest.clone()
    } else {
        let wd = if req.workdir.is_empty() {
            "/"
        } else {
            &req.workdir
        };
        format!("{wd}/{}", req.dest)
    };
    let trailing = raw.ends_with('/') || raw.ends_with("/.") || req.dest == ".";
    let dest = clean(&raw);
    let excludes = (!req.excludes.is_empty()).then(|| Matcher::parse(&req.excludes.join("\n")));
    let excluded = |rel: &str| excludes.as_ref().is_some_and(|m| m.matches(rel));
    // dockerd's words for a source that is not there (or a link to outside the context)
    let missing = |shown: &str| {
        Error::invalid(if req.from_image {
            format!("COPY failed: stat {shown}: file does not exist")
        } else {
            format!(
                "COPY failed: file not found in build context or excluded by .dockerignore: stat {shown}: file does not exist"
            )
        })
    };

    // (path in the context, path kept under dest with --parents)
    let mut matched: Vec<(String, String)> = Vec::new();
    for s in &req.sources {
        if s.contains("://") {
            return Err(Error::invalid(if req.add {
                "ADD from this kind of URL is not supported by berth (only http and https)"
            } else {
                "source can't be a URL for COPY"
            }));
        }
        // `--parents` keeps the path below the `/./` pivot (or the context root).
        let pivot = match s.find("/./") {
            Some(i) if req.parents => clean(&s[..i]),
            _ => String::new(),
        };
        let m = ctx.glob(s);
        if m.is_empty() {
            return Err(missing(&clean(s)));
        }
        for p in m {
            if !p.is_empty() && excluded(basename(&p)) {
                continue;
            }
            let rel = if pivot.is_empty() {
                p.clone()
            } else {
                p.strip_prefix(&format!("{pivot}/"))
                    .unwrap_or(&p)
                    .to_owned()
            };
            matched.push((p, rel));
        }
    }
    let multi = matched.len() + req.inline.len() > 1;
    if multi && !trailing && !req.parents {
        return Err(Error::invalid(
            "When using COPY with more than one source file, the destination must be a directory and end with a /",
        ));
    }
    let dest_is_dir =
        trailing || multi || req.parents || dest.is_empty() || exists(&dest).is_some_and(|e| e.dir);

    let mut out: BTreeMap<String, OutEntry> = BTreeMap::new();
    let mode_of = |m: u32| req.chmod.unwrap_or(m);
    let put = |out: &mut BTreeMap<String, OutEntry>, path: String, e: OutEntry| {
        if !path.is_empty() {
            out.insert(path, e);
        }
    };
    for (src, rel) in &matched {
        // A source that is a symlink copies what it points to (resolved inside the
        // context), under the link's own name; links inside a copied directory stay links.
        let real = ctx.follow(src);
        if !real.is_empty() && ctx.get(&real).is_none() {
            return Err(missing(src));
        }
        let is_dir = real.is_empty() || ctx.get(&real).is_some_and(|e| e.kind == Kind::Dir);
        if is_dir {
            // A directory: its contents go into dest (dest/<rel> with --parents).
            let target_dir = if req.parents {
                join(&dest, rel)
            } else {
                dest.clone()
            };
            if !target_dir.is_empty() && exists(&target_dir).is_none() {
                let mode = ctx.get(&real).map(|e| e.mode).unwrap_or(0o755);
                put(
                    &mut out,
                    target_dir.clone(),
                    OutEntry {
                        kind: Kind::Dir,
                        mode: mode_of(mode),
                        uid,
                        gid,
                        mtime: now,
                        data: Vec::new(),
                    },
                );
            }
            let prefix_len = if real.is_empty() { 0 } else { real.len() + 1 };
            for (p, e) in ctx.descendants(&real) {
                let child = &p[prefix_len..];
                if excluded(child) {
                    continue;
                }
                put(
                    &mut out,
                    join(&target_dir, child),
                    OutEntry {
                        kind: e.kind.clone(),
                        mode: mode_of(e.mode),
                        uid,
                        gid,
                        mtime: e.mtime,
                        data: e.data.clone(),
                    },
                );
            }
            continue;
        }
        let e = ctx.get(&real).expect("followed paths exist");
        if req.add && req.unpack != Some(false) && e.kind == Kind::File && is_archive(&e.data) {
            extract(&e.data, &dest, req.chown, &mut out)?;
            continue;
        }
        let target = if req.parents {
            join(&dest, rel)
        } else if dest_is_dir {
            join(&dest, basename(src))
        } else {
            dest.clone()
        };
        put(
            &mut out,
            target,
            OutEntry {
                kind: e.kind.clone(),
                mode: mode_of(e.mode),
                uid,
                gid,
                mtime: e.mtime,
                data: e.data.clone(),
            },
        );
    }
    for f in &req.inline {
        if f.unpack && is_archive(&f.data) {
            extract(&f.data, &dest, req.chown, &mut out)?;
            continue;
        }
        let target = if dest_is_dir {
            join(&dest, &f.name)
        } else {
            dest.clone()
        };
        put(
            &mut out,
            target,
            OutEntry {
                kind: Kind::File,
                mode: mode_of(f.mode),
                uid,
                gid,
                mtime: f.mtime,
                data: f.data.clone(),
            },
        );
    }

    // Missing parent directories are created 0755, owned like the files. Parents
    // the image has keep their owner and mode: the layer names them as they are (a
    // directory absent from a layer tar would come out 0755 root in its place).
    let paths: Vec<String> = out.keys().cloned().collect();
    for p in paths {
        let mut cur = p.as_str();
        while let Some((parent, _)) = cur.rsplit_once('/') {
            if !out.contains_key(parent) {
                let (mode, uid, gid) = match exists(parent) {
                    None => (0o755, uid, gid),
                    Some(e) if e.dir => (e.mode, e.uid, e.gid),
                    Some(_) => {
                        cur = parent;
                        continue;
                    }
                };
                out.insert(
                    parent.to_owned(),
                    OutEntry {
                        kind: Kind::Dir,
                        mode,
                        uid,
                        gid,
                        mtime: now,
                        data: Vec::new(),
                    },
                );
            }
            cur = parent;
        }
    }

    let content_hash = hash_entries(&out);
    let kind = if multi {
        "multi"
    } else if matched
        .first()
        .is_some_and(|(s, _)| s.is_empty() || ctx.get(s).is_some_and(|e| e.kind == Kind::Dir))
    {
        "dir"
    } else {
        "file"
    };
    Ok(CopyPlan {
        src_desc: format!("{kind}:{content_hash}"),
        content_hash,
        entries: out,
        dest: format!(
            "/{dest}{}",
            if raw.ends_with('/') && !dest.is_empty() {
                "/"
            } else {
                ""
            }
        ),
    })
}

/// Extract a (gzip) tar archive below `dest` (ADD).
fn extract(
    data: &[u8],
    dest: &str,
    chown: Option<(u32, u32)>,
    out: &mut BTreeMap<String, OutEntry>,
) -> Result<()> {
    let bad = |e: std::io::Error| Error::invalid(format!("ADD: invalid archive: {e}"));
    let r = berth_containerfs::decompress(data).map_err(bad)?;
    let mut a = tar::Archive::new(r);
    for e in a.entries().map_err(bad)? {
        // An archive whose last entry is whole but whose padding or end blocks are
        // missing is read as Go's archive/tar (and so dockerd) reads it.
        let mut e = match e {
            Ok(e) => e,
            // (the tar crate reports a short skip as "unexpected EOF during skip")
            Err(err) if err.kind() == std::io::ErrorKind::UnexpectedEof || err.to_string().contains("unexpected EOF") => {
                break
            }
            Err(err) => return Err(bad(err)),
        };
        let rel = clean(&e.path().map_err(bad)?.to_string_lossy());
        let h = e.header();
        let (uid, gid) =
            chown.unwrap_or((h.uid().unwrap_or(0) as u32, h.gid().unwrap_or(0) as u32));
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
            _ => continue,
        };
        let mut buf = Vec::new();
        if kind == Kind::File {
            e.read_to_end(&mut buf).map_err(bad)?;
            if Some(buf.len() as u64) != e.header().size().ok() {
                return Err(bad(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "unexpected EOF")));
            }
        }
        let target = join(dest, &rel);
        if !target.is_empty() {
            out.insert(
                target,
                OutEntry {
                    kind,
                    mode,
                    uid,
                    gid,
                    mtime,
                    data: buf,
                },
            );
        }
    }
    Ok(())
}

/// Write the planned entries as an uncompressed layer tar.
pub fn write_layer(entries: &BTreeMap<String, OutEntry>) -> Result<Vec<u8>> {
    let mut b = tar::Builder::new(Vec::new());
    let err = |e: std::io::Error| Error::internal(format!("write layer: {e}"));
    for (p, e) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_mode(e.mode);
        h.set_uid(e.uid as u64);
        h.set_gid(e.gid as u64);
        h.set_mtime(e.mtime);
        match &e.kind {
            Kind::Dir => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_size(0);
                b.append_data(&mut h, format!("{p}/"), std::io::empty())
                    .map_err(err)?;
            }
            Kind::File => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_size(e.data.len() as u64);
                b.append_data(&mut h, p, &e.data[..]).map_err(err)?;
            }
            Kind::Symlink(t) => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_size(0);
                b.append_link(&mut h, p, t).map_err(err)?;
            }
        }
    }
    b.into_inner().map_err(err)
}

/// Resolve symlinks in a destination inside an image root, as Docker does, so a
/// COPY into `/bin/` of an image where `/bin -> usr/bin` lands in `/usr/bin`.
/// `dest` is absolute (WORKDIR applied); the result keeps a trailing `/`. The last
/// component is followed only when it leads to a directory.
pub fn resolve_dest(root: &std::path::Path, dest: &str) -> String {
    let trailing = dest.ends_with('/') || dest.ends_with("/.");
    let mut parts: Vec<String> = clean(dest)
        .split('/')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    let mut out: Vec<String> = Vec::new();
    let mut hops = 0;
    let mut i = 0;
    while i < parts.len() {
        let last = i + 1 == parts.len();
        let mut cand = out.clone();
        cand.push(parts[i].clone());
        let path = root.join(cand.join("/"));
        match std::fs::symlink_metadata(&path) {
            Ok(md) if md.file_type().is_symlink() && hops < 40 => {
                let follow =
                    !last || trailing || std::fs::metadata(&path).is_ok_and(|m| m.is_dir());
                if !follow {
                    out.push(parts[i].clone());
                    i += 1;
                    continue;
                }
                hops += 1;
                let target = std::fs::read_link(&path)
                    .map(|t| t.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let base = if target.starts_with('/') {
                    String::new()
                } else {
                    out.join("/")
                };
                let mut rest: Vec<String> = clean(&format!("{base}/{target}"))
                    .split('/')
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect();
                rest.extend(parts[i + 1..].iter().cloned());
                parts = rest;
                out.clear();
                i = 0;
            }
            _ => {
                out.push(parts[i].clone());
                i += 1;
            }
        }
    }
    let mut r = format!("/{}", out.join("/"));
    if trailing && r != "/" {
        r.push('/');
    }
    r
}

/// Parse `--chown=user[:group]` (names looked up in the image's passwd/group text).
pub fn parse_chown(spec: &str, passwd: &str, group: &str) -> Result<(u32, u32)> {
    let (u, g) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let lookup = |db: &str, name: &str, field: usize| -> Option<(u32, u32)> {
        db.lines().find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.first() == Some(&name) && f.len() > field)
                .then(|| {
                    (
                        f[2].parse().ok(),
                        f.get(3).and_then(|x| x.parse().ok()).unwrap_or(0),
                    )
                })
                .and_then(|(a, b)| a.map(|a| (a, b)))
        })
    };
    let (uid, primary_gid) = match u.parse::<u32>() {
        Ok(n) => (n, n),
        Err(_) => lookup(passwd, u, 3)
            .ok_or_else(|| Error::invalid(format!("unable to convert uid/gid chown string to host mapping: can't find uid for user {u}: no such user: {u}")))?,
    };
    let gid = match g {
        None => if u.parse::<u32>().is_ok() { uid } else { primary_gid },
        Some(g) => match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => lookup(group, g, 2).map(|(gid, _)| gid).ok_or_else(|| {
                Error::invalid(format!("unable to convert uid/gid chown string to host mapping: can't find gid for group {g}: no such group: {g}"))
            })?,
        },
    };
    Ok((uid, gid))
}

/// Parse `--chmod=0755`.
pub fn parse_chmod(spec: &str) -> Result<u32> {
    u32::from_str_radix(spec, 8)
        .ok()
        .filter(|m| *m <= 0o7777)
        .ok_or_else(|| Error::invalid(format!("invalid chmod parameter: {spec}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::Entry;

    fn ctx() -> Context {
        let mut c = Context::default();
        c.insert("a.txt".into(), Entry::file(0o644, "A"));
        c.insert("b.txt".into(), Entry::file(0o600, "B"));
        c.insert("dir/x".into(), Entry::file(0o755, "X"));
        c.insert("dir/sub/y".into(), Entry::file(0o644, "Y"));
        c
    }

    fn req(src: &[&str], dest: &str) -> CopyRequest {
        CopyRequest {
            sources: src.iter().map(|s| s.to_string()).collect(),
            dest: dest.into(),
            workdir: "/app".into(),
            ..Default::default()
        }
    }

    fn none(_: &str) -> Option<Existing> {
        None
    }

    /// An image where only `name` exists, a directory 0755 root.
    fn only_dir(name: &'static str) -> impl Fn(&str) -> Option<Existing> {
        move |p| (p == name).then_some(Existing { dir: true, mode: 0o755, uid: 0, gid: 0 })
    }

    #[test]
    fn destination_rules() {
        let c = ctx();
        // file to a file path, WORKDIR-relative, parents created
        let p = plan_copy(&c, &req(&["a.txt"], "conf/a.conf"), &none).unwrap();
        assert_eq!(
            p.entries.keys().collect::<Vec<_>>(),
            ["app", "app/conf", "app/conf/a.conf"]
        );
        assert_eq!(p.dest, "/app/conf/a.conf");
        // trailing slash: into the directory
        let p = plan_copy(&c, &req(&["a.txt"], "/etc/"), &only_dir("etc")).unwrap();
        assert_eq!(p.entries.keys().collect::<Vec<_>>(), ["etc", "etc/a.txt"]);
        // an existing directory without slash
        let p = plan_copy(&c, &req(&["a.txt"], "/etc"), &only_dir("etc")).unwrap();
        assert!(p.entries.contains_key("etc/a.txt"));
        // a directory copies its contents
        let p = plan_copy(&c, &req(&["dir"], "/opt/d"), &only_dir("opt")).unwrap();
        assert_eq!(
            p.entries.keys().collect::<Vec<_>>(),
            ["opt", "opt/d", "opt/d/sub", "opt/d/sub/y", "opt/d/x"]
        );
        assert!(p.src_desc.starts_with("dir:"));
        // wildcards, several sources need a trailing slash
        assert!(plan_copy(&c, &req(&["*.txt"], "/t"), &none).is_err());
        let p = plan_copy(&c, &req(&["*.txt"], "/t/"), &none).unwrap();
        assert!(p.entries.contains_key("t/a.txt") && p.entries.contains_key("t/b.txt"));
        assert!(p.src_desc.starts_with("multi:"));
        // missing source
        let e = plan_copy(&c, &req(&["nope"], "/x"), &none).unwrap_err();
        assert!(
            e.to_string().contains("file not found in build context"),
            "{e}"
        );
        // `.` means WORKDIR
        let p = plan_copy(&c, &req(&["a.txt"], "."), &only_dir("app")).unwrap();
        assert_eq!(p.entries.keys().collect::<Vec<_>>(), ["app", "app/a.txt"]);
    }

    #[test]
    fn owners_modes_and_hash() {
        let c = ctx();
        let mut r = req(&["b.txt"], "/b");
        let p1 = plan_copy(&c, &r, &none).unwrap();
        assert_eq!(p1.entries["b"].mode, 0o600);
        assert_eq!((p1.entries["b"].uid, p1.entries["b"].gid), (0, 0));
        r.chown = Some((1000, 1001));
        r.chmod = Some(0o640);
        let p2 = plan_copy(&c, &r, &none).unwrap();
        assert_eq!(p2.entries["b"].mode, 0o640);
        assert_eq!(p2.entries["b"].uid, 1000);
        assert_ne!(p1.content_hash, p2.content_hash);
        // mtime does not change the hash; content does
        let mut c2 = c.clone();
        c2.insert(
            "b.txt".into(),
            Entry {
                mtime: 99,
                ..Entry::file(0o600, "B")
            },
        );
        assert_eq!(
            plan_copy(&c2, &req(&["b.txt"], "/b"), &none)
                .unwrap()
                .content_hash,
            p1.content_hash
        );
        c2.insert("b.txt".into(), Entry::file(0o600, "B2"));
        assert_ne!(
            plan_copy(&c2, &req(&["b.txt"], "/b"), &none)
                .unwrap()
                .content_hash,
            p1.content_hash
        );
        let tar = write_layer(&p2.entries).unwrap();
        let mut a = tar::Archive::new(&tar[..]);
        let e = a.entries().unwrap().next().unwrap().unwrap();
        assert_eq!(e.header().uid().unwrap(), 1000);
    }

    #[test]
    fn add_extracts_archives() {
        let inner = crate::context::tests_support::tar_of(&[("top/f", "F", 0o644)]);
        let mut c = Context::default();
        c.insert("a.tar".into(), Entry::file(0o644, inner));
        let mut r = req(&["a.tar"], "/x/");
        r.add = true;
        let p = plan_copy(&c, &r, &none).unwrap();
        assert_eq!(p.entries["x/top/f"].data, b"F");
        r.add = false;
        let p = plan_copy(&c, &r, &none).unwrap();
        assert!(p.entries.contains_key("x/a.tar"));
    }

    #[test]
    fn destinations_follow_symlinks_in_the_image() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        std::fs::create_dir_all(r.join("usr/bin")).unwrap();
        std::os::unix::fs::symlink("usr/bin", r.join("bin")).unwrap();
        std::os::unix::fs::symlink("/usr", r.join("u")).unwrap();
        std::fs::write(r.join("usr/bin/f"), "x").unwrap();
        std::os::unix::fs::symlink("f", r.join("usr/bin/flink")).unwrap();
        assert_eq!(resolve_dest(r, "/bin/"), "/usr/bin/");
        assert_eq!(resolve_dest(r, "/bin/tool"), "/usr/bin/tool");
        assert_eq!(resolve_dest(r, "/u/bin/x"), "/usr/bin/x");
        assert_eq!(resolve_dest(r, "/bin"), "/usr/bin");
        assert_eq!(
            resolve_dest(r, "/bin/flink"),
            "/usr/bin/flink",
            "a file link is replaced, not followed"
        );
        assert_eq!(resolve_dest(r, "/new/dir/"), "/new/dir/");
        assert_eq!(resolve_dest(r, "/"), "/");
    }

    #[test]
    fn chown_and_chmod() {
        let passwd = "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n";
        let group = "root:x:0:\nstaff:x:50:\n";
        assert_eq!(parse_chown("app", passwd, group).unwrap(), (1000, 1001));
        assert_eq!(parse_chown("app:staff", passwd, group).unwrap(), (1000, 50));
        assert_eq!(parse_chown("10:20", passwd, group).unwrap(), (10, 20));
        assert_eq!(parse_chown("10", passwd, group).unwrap(), (10, 10));
        assert!(parse_chown("nobody", passwd, group).is_err());
        assert_eq!(parse_chmod("0755").unwrap(), 0o755);
        assert!(parse_chmod("999").is_err());
    }
}
