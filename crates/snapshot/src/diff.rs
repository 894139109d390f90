//! Turning a container's upper directory into an OCI layer tar: files as they are,
//! overlayfs whiteouts (0/0 character devices) as `.wh.<name>` entries, opaque
//! directories as `.wh..wh..opq` entries. Entries are written in sorted order, so the
//! same changes give the same tar (and the same diff id).

use std::ffi::CString;
use std::fs;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use berth_errdefs::{Error, Result};
use berth_userns::IdMap;

fn is_opaque(dir: &Path) -> bool {
    let Ok(c) = CString::new(dir.as_os_str().as_bytes()) else { return false };
    let mut buf = [0u8; 4];
    // SAFETY: valid C strings and a buffer of the given size.
    let n = unsafe {
        libc::lgetxattr(c.as_ptr(), c"trusted.overlay.opaque".as_ptr(), buf.as_mut_ptr().cast(), buf.len())
    };
    n == 1 && buf[0] == b'y'
}

fn empty_entry(mtime: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_size(0);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(mtime);
    h
}

/// Files already written, by (device, inode), so further names of the same file
/// become hard-link entries.
type Seen = std::collections::HashMap<(u64, u64), std::path::PathBuf>;

fn walk<W: Write>(b: &mut tar::Builder<W>, root: &Path, rel: &Path, seen: &mut Seen, ids: Option<&IdMap>) -> Result<()> {
    let dir = root.join(rel);
    let mut names: Vec<_> = fs::read_dir(&dir)?.collect::<std::io::Result<Vec<_>>>()?;
    names.sort_by_key(|e| e.file_name());
    for e in names {
        let name = e.file_name();
        let path = e.path();
        let rel_path = rel.join(&name);
        let md = fs::symlink_metadata(&path)?;
        let ft = md.file_type();
        if ft.is_char_device() && md.rdev() == 0 {
            let wh = rel.join(format!(".wh.{}", name.to_string_lossy()));
            let mut h = empty_entry(md.mtime().max(0) as u64);
            b.append_data(&mut h, &wh, std::io::empty())
                .map_err(|e| Error::internal(format!("write whiteout {}: {e}", wh.display())))?;
            continue;
        }
        if ft.is_socket() {
            continue; // not archivable (dockerd skips them too)
        }
        let err = |e: std::io::Error| Error::internal(format!("add {} to layer: {e}", rel_path.display()));
        let mut h = tar::Header::new_gnu();
        h.set_metadata_in_mode(&md, tar::HeaderMode::Complete);
        if let Some(m) = ids {
            let (u, g) = m.to_container(md.uid(), md.gid());
            h.set_uid(u.into());
            h.set_gid(g.into());
        }
        if ft.is_file() && md.nlink() > 1 {
            if let Some(first) = seen.get(&(md.dev(), md.ino())) {
                h.set_entry_type(tar::EntryType::Link);
                h.set_size(0);
                b.append_link(&mut h, &rel_path, first).map_err(err)?;
                continue;
            }
            seen.insert((md.dev(), md.ino()), rel_path.clone());
        }
        if ft.is_file() {
            b.append_data(&mut h, &rel_path, fs::File::open(&path)?).map_err(err)?;
        } else if ft.is_symlink() {
            h.set_size(0);
            b.append_link(&mut h, &rel_path, fs::read_link(&path)?).map_err(err)?;
        } else {
            h.set_size(0);
            if !ft.is_dir() {
                let kind = if ft.is_fifo() {
                    tar::EntryType::Fifo
                } else if ft.is_char_device() {
                    tar::EntryType::Char
                } else {
                    tar::EntryType::Block
                };
                h.set_entry_type(kind);
                let rdev = md.rdev();
                h.set_device_major(libc::major(rdev)).map_err(err)?;
                h.set_device_minor(libc::minor(rdev)).map_err(err)?;
            }
            b.append_data(&mut h, &rel_path, std::io::empty()).map_err(err)?;
        }
        if ft.is_dir() {
            if is_opaque(&path) {
                let opq = rel_path.join(".wh..wh..opq");
                let mut h = empty_entry(md.mtime().max(0) as u64);
                b.append_data(&mut h, &opq, std::io::empty())
                    .map_err(|e| Error::internal(format!("write opaque marker: {e}")))?;
            }
            walk(b, root, &rel_path, seen, ids)?;
        }
    }
    Ok(())
}

/// Write the changes recorded in `upper` as a layer tar to `w`: modes, owners,
/// symlinks, devices and hard links kept, in name order. `ids`: the tree holds host
/// ids of a remapped container; the tar gets the container's. A mounted rootfs has no
/// whiteouts, so this also tars a whole one (`export`).
pub fn write_diff(root: &Path, w: impl Write, ids: Option<&IdMap>) -> Result<()> {
    let mut b = tar::Builder::new(w);
    walk(&mut b, root, Path::new(""), &mut Seen::new(), ids)?;
    b.into_inner()
        .and_then(|mut w| w.flush())
        .map_err(|e| Error::internal(format!("finish layer tar: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_and_whiteouts_round_trip() {
        if !nix::unistd::Uid::effective().is_root() {
            eprintln!("skipping: needs root for mknod and trusted xattrs");
            return;
        }
        let up = tempfile::tempdir().unwrap();
        fs::create_dir_all(up.path().join("etc")).unwrap();
        fs::write(up.path().join("etc/new"), b"x").unwrap();
        fs::hard_link(up.path().join("etc/new"), up.path().join("etc/same")).unwrap();
        std::os::unix::fs::symlink("new", up.path().join("etc/link")).unwrap();
        let c = CString::new(up.path().join("etc/gone").as_os_str().as_bytes()).unwrap();
        // SAFETY: valid path; creates a 0/0 char device (an overlay whiteout).
        assert_eq!(unsafe { libc::mknod(c.as_ptr(), libc::S_IFCHR, 0) }, 0);
        fs::create_dir_all(up.path().join("opq")).unwrap();
        let c = CString::new(up.path().join("opq").as_os_str().as_bytes()).unwrap();
        // SAFETY: valid C strings.
        unsafe { libc::lsetxattr(c.as_ptr(), c"trusted.overlay.opaque".as_ptr(), b"y".as_ptr().cast(), 1, 0) };
        let mut out = Vec::new();
        write_diff(up.path(), &mut out, None).unwrap();
        let mut names: Vec<String> = tar::Archive::new(&out[..])
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        names.sort();
        assert_eq!(names, ["etc", "etc/.wh.gone", "etc/link", "etc/new", "etc/same", "opq", "opq/.wh..wh..opq"]);
        // and unpacking it gives the overlay form back
        let dst = tempfile::tempdir().unwrap();
        crate::unpack_tar(&out[..], dst.path()).unwrap();
        assert!(fs::symlink_metadata(dst.path().join("etc/gone")).unwrap().file_type().is_char_device());
        assert!(is_opaque(&dst.path().join("opq")));
        assert_eq!(fs::read(dst.path().join("etc/new")).unwrap(), b"x");
        let (a, b) = (fs::metadata(dst.path().join("etc/new")).unwrap(), fs::metadata(dst.path().join("etc/same")).unwrap());
        assert_eq!((a.ino(), a.nlink()), (b.ino(), 2), "hard link kept");
        // the same changes give the same bytes
        let mut again = Vec::new();
        write_diff(up.path(), &mut again, None).unwrap();
        assert_eq!(out, again);
    }

    #[test]
    fn remapped_owners_go_back_to_container_ids() {
        if !nix::unistd::Uid::effective().is_root() {
            eprintln!("skipping: needs root for chown");
            return;
        }
        let up = tempfile::tempdir().unwrap();
        let map = IdMap::from_ranges(vec![(100000, 65536)], vec![(200000, 65536)]).unwrap();
        for (name, uid, gid) in [("root", 100000, 200000), ("user", 101234, 201234), ("stranger", 0, 0)] {
            let p = up.path().join(name);
            fs::write(&p, b"x").unwrap();
            std::os::unix::fs::chown(&p, Some(uid), Some(gid)).unwrap();
        }
        std::os::unix::fs::symlink("root", up.path().join("link")).unwrap();
        std::os::unix::fs::lchown(up.path().join("link"), Some(100007), Some(200007)).unwrap();
        let mut out = Vec::new();
        write_diff(up.path(), &mut out, Some(&map)).unwrap();
        let owners: Vec<(String, u64, u64)> = tar::Archive::new(&out[..])
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (e.path().unwrap().display().to_string(), e.header().uid().unwrap(), e.header().gid().unwrap())
            })
            .collect();
        assert_eq!(
            owners,
            [
                ("link".to_owned(), 7, 7),
                ("root".to_owned(), 0, 0),
                // outside the map: what the container sees, the overflow id
                ("stranger".to_owned(), 65534, 65534),
                ("user".to_owned(), 1234, 1234),
            ]
        );
    }
}
