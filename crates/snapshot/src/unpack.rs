//! Safe unpacking of layer tars, with OCI whiteouts turned into overlayfs ones.

use std::ffi::CString;
use std::fs;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use berth_errdefs::{Error, Result};

/// What an unpack wrote.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct UnpackStats {
    pub entries: u64,
    pub bytes: u64,
}

const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE: &str = ".wh..wh..opq";

/// The entry path made relative, or an error if it tries to leave the root.
fn clean_path(raw: &Path) -> Result<PathBuf> {
    let mut out = PathBuf::new();
    for c in raw.components() {
        match c {
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
            Component::ParentDir => {
                return Err(Error::invalid(format!(
                    "invalid tar entry {}: path escapes the root",
                    raw.display()
                )))
            }
            Component::Normal(n) => out.push(n),
        }
    }
    Ok(out)
}

/// Check that no existing ancestor of `rel` under `root` is a symlink, so nothing is
/// ever written through a link (which could point outside the root).
fn check_no_symlink_parents(root: &Path, rel: &Path) -> Result<()> {
    let mut cur = root.to_path_buf();
    let comps: Vec<_> = rel.components().collect();
    for c in comps.iter().take(comps.len().saturating_sub(1)) {
        cur.push(c);
        match fs::symlink_metadata(&cur) {
            Ok(m) if m.file_type().is_symlink() => {
                return Err(Error::invalid(format!(
                    "invalid tar entry {}: parent {} is a symlink",
                    rel.display(),
                    cur.strip_prefix(root).unwrap_or(&cur).display()
                )))
            }
            _ => {}
        }
    }
    Ok(())
}

fn mknod(path: &Path, kind: libc::mode_t, mode: u32, major: u32, minor: u32) -> Result<()> {
    let c = CString::new(path.as_os_str().as_bytes()).map_err(|_| Error::invalid("NUL in path"))?;
    let dev = libc::makedev(major, minor);
    let _ = fs::remove_file(path);
    // SAFETY: c is a valid NUL-terminated path.
    let rc = unsafe { libc::mknod(c.as_ptr(), kind | (mode & 0o7777), dev) };
    if rc != 0 {
        return Err(Error::internal(format!("mknod {}: {}", path.display(), std::io::Error::last_os_error())));
    }
    Ok(())
}

fn set_opaque(dir: &Path) -> Result<()> {
    let c = CString::new(dir.as_os_str().as_bytes()).map_err(|_| Error::invalid("NUL in path"))?;
    // SAFETY: valid C strings and a 1-byte value buffer.
    let rc = unsafe {
        libc::lsetxattr(c.as_ptr(), c"trusted.overlay.opaque".as_ptr(), b"y".as_ptr().cast(), 1, 0)
    };
    if rc != 0 {
        return Err(Error::internal(format!("set opaque on {}: {}", dir.display(), std::io::Error::last_os_error())));
    }
    Ok(())
}

/// An io error with its inner cause (the tar crate wraps the useful part).
fn io_chain(e: &std::io::Error) -> String {
    match std::error::Error::source(e) {
        Some(inner) => format!("{e}: {inner}"),
        None => e.to_string(),
    }
}

/// Unpack a tar stream into `dst`, preserving modes, owners, times and xattrs.
/// Fails on entries that would escape `dst`.
pub fn unpack_tar(r: impl Read, dst: &Path) -> Result<UnpackStats> {
    let mut ar = tar::Archive::new(r);
    ar.set_preserve_permissions(true);
    ar.set_preserve_ownerships(true);
    ar.set_preserve_mtime(true);
    ar.set_unpack_xattrs(true);
    ar.set_overwrite(true);
    let mut stats = UnpackStats::default();
    let mut dir_times: Vec<(PathBuf, u64)> = Vec::new();
    let entries = ar.entries().map_err(|e| Error::invalid(format!("invalid tar: {e}")))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| Error::invalid(format!("invalid tar: {e}")))?;
        let raw = entry.path().map_err(|e| Error::invalid(format!("invalid tar entry path: {e}")))?.into_owned();
        let rel = clean_path(&raw)?;
        if rel.as_os_str().is_empty() {
            continue;
        }
        check_no_symlink_parents(dst, &rel)?;
        let name = rel.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let parent = rel.parent().map(|p| dst.join(p)).unwrap_or_else(|| dst.to_path_buf());
        if name == OPAQUE {
            fs::create_dir_all(&parent)?;
            set_opaque(&parent)?;
            continue;
        }
        if let Some(hidden) = name.strip_prefix(WHITEOUT_PREFIX) {
            fs::create_dir_all(&parent)?;
            mknod(&parent.join(hidden), libc::S_IFCHR, 0, 0, 0)?;
            continue;
        }
        // Hard links must point inside the root too.
        if entry.header().entry_type().is_hard_link() {
            if let Ok(Some(target)) = entry.link_name() {
                let t = clean_path(&target)?;
                check_no_symlink_parents(dst, &t)?;
            }
        }
        let et = entry.header().entry_type();
        let mode = entry.header().mode().unwrap_or(0o644);
        if et.is_character_special() || et.is_block_special() || et.is_fifo() {
            let full = dst.join(&rel);
            if let Some(p) = full.parent() {
                fs::create_dir_all(p)?;
            }
            let kind = if et.is_character_special() {
                libc::S_IFCHR
            } else if et.is_block_special() {
                libc::S_IFBLK
            } else {
                libc::S_IFIFO
            };
            let major = entry.header().device_major().ok().flatten().unwrap_or(0);
            let minor = entry.header().device_minor().ok().flatten().unwrap_or(0);
            mknod(&full, kind, mode, major, minor)?;
            let uid = entry.header().uid().unwrap_or(0) as u32;
            let gid = entry.header().gid().unwrap_or(0) as u32;
            let _ = std::os::unix::fs::lchown(&full, Some(uid), Some(gid));
            stats.entries += 1;
            continue;
        }
        stats.bytes += entry.header().size().unwrap_or(0);
        let is_dir = et.is_dir();
        let mtime = entry.header().mtime().unwrap_or(0);
        let ok = entry
            .unpack_in(dst)
            .map_err(|e| Error::invalid(format!("invalid tar entry {}: {}", raw.display(), io_chain(&e))))?;
        if !ok {
            return Err(Error::invalid(format!("invalid tar entry {}: path escapes the root", raw.display())));
        }
        if is_dir {
            dir_times.push((dst.join(&rel), mtime));
        }
        stats.entries += 1;
    }
    // Directory mtimes change as entries are written into them; restore them last.
    for (d, t) in dir_times.into_iter().rev() {
        let ts = nix::sys::time::TimeSpec::new(t as i64, 0);
        let _ = nix::sys::stat::utimensat(None, &d, &ts, &ts, nix::sys::stat::UtimensatFlags::NoFollowSymlink);
    }
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_with(entries: &[(&str, tar::EntryType, &[u8], Option<&str>)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (path, kind, data, link) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(*kind);
            h.set_size(data.len() as u64);
            h.set_mode(if *kind == tar::EntryType::Directory { 0o755 } else { 0o644 });
            h.set_mtime(1_000_000);
            h.set_uid(0);
            h.set_gid(0);
            if let Some(l) = link {
                h.set_link_name(l).unwrap();
            }
            // set_path refuses "..": write the raw name bytes.
            let name = h.as_old_mut().name.as_mut();
            name[..path.len()].copy_from_slice(path.as_bytes());
            h.set_cksum();
            b.append(&h, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    #[test]
    fn unpacks_files_dirs_and_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let t = tar_with(&[
            ("./bin/", tar::EntryType::Directory, b"", None),
            ("./bin/busybox", tar::EntryType::Regular, b"ELF", None),
            ("./bin/sh", tar::EntryType::Symlink, b"", Some("busybox")),
            ("/etc/hostname", tar::EntryType::Regular, b"x\n", None),
        ]);
        let s = unpack_tar(&t[..], dir.path()).unwrap();
        assert_eq!(s.entries, 4);
        assert_eq!(fs::read(dir.path().join("bin/busybox")).unwrap(), b"ELF");
        assert_eq!(fs::read_link(dir.path().join("bin/sh")).unwrap(), Path::new("busybox"));
        assert_eq!(fs::read(dir.path().join("etc/hostname")).unwrap(), b"x\n");
    }

    #[test]
    fn rejects_parent_dir_entries() {
        let outer = tempfile::tempdir().unwrap();
        let dst = outer.path().join("root");
        fs::create_dir(&dst).unwrap();
        let t = tar_with(&[("../escaped", tar::EntryType::Regular, b"bad", None)]);
        let e = unpack_tar(&t[..], &dst).unwrap_err();
        assert!(e.to_string().contains("escapes"), "{e}");
        assert!(!outer.path().join("escaped").exists());
    }

    #[test]
    fn rejects_writes_through_symlinks() {
        let outer = tempfile::tempdir().unwrap();
        let dst = outer.path().join("root");
        let victim = outer.path().join("victim");
        fs::create_dir(&dst).unwrap();
        fs::create_dir(&victim).unwrap();
        let t = tar_with(&[
            ("link", tar::EntryType::Symlink, b"", Some(victim.to_str().unwrap())),
            ("link/owned", tar::EntryType::Regular, b"bad", None),
        ]);
        assert!(unpack_tar(&t[..], &dst).is_err());
        assert!(!victim.join("owned").exists());
    }

    #[test]
    fn rejects_hardlinks_outside() {
        let dir = tempfile::tempdir().unwrap();
        let t = tar_with(&[("h", tar::EntryType::Link, b"", Some("../../etc/passwd"))]);
        assert!(unpack_tar(&t[..], dir.path()).is_err());
    }

    #[test]
    fn whiteouts_become_overlay_whiteouts() {
        if !nix::unistd::Uid::effective().is_root() {
            eprintln!("skipping: needs root for mknod");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let t = tar_with(&[
            ("d/", tar::EntryType::Directory, b"", None),
            ("d/.wh..wh..opq", tar::EntryType::Regular, b"", None),
            ("d/.wh.gone", tar::EntryType::Regular, b"", None),
        ]);
        unpack_tar(&t[..], dir.path()).unwrap();
        use std::os::unix::fs::{FileTypeExt, MetadataExt};
        let m = fs::symlink_metadata(dir.path().join("d/gone")).unwrap();
        assert!(m.file_type().is_char_device());
        assert_eq!(m.rdev(), 0);
        assert!(!dir.path().join("d/.wh.gone").exists());
    }
}
