//! The layer unpacker (`berth_snapshot::unpack_tar`, what `Snapshotter::unpack_layer`
//! runs for every layer pulled, loaded or built) on arbitrary tar bytes, into a fresh
//! directory per input. Hostile entries must be refused with an error, never written
//! outside that directory: after every input the harness checks that the directory's
//! parent still holds only the root and an empty sibling `canary` directory whose
//! metadata is unchanged (seeds carry symlinks to `../canary` and `..` entries).
#![no_main]

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

struct Dirs {
    _base: tempfile::TempDir,
    base: PathBuf,
    root: PathBuf,
    canary: PathBuf,
    canary_meta: (u32, u32, u32, i64, i64),
    base_meta: (u32, u32, u32),
    xattr_sizes: (usize, usize),
}

fn meta(p: &Path) -> (u32, u32, u32, i64, i64) {
    let m = fs::symlink_metadata(p).expect("stat");
    (m.mode(), m.uid(), m.gid(), m.mtime(), m.mtime_nsec())
}

fn xattrs(p: &Path) -> usize {
    let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).expect("path");
    // SAFETY: a valid C string and no buffer (size query only).
    let n = unsafe { libc_llistxattr(c.as_ptr(), std::ptr::null_mut(), 0) };
    n.max(0) as usize
}

extern "C" {
    #[link_name = "llistxattr"]
    fn libc_llistxattr(path: *const std::ffi::c_char, list: *mut std::ffi::c_char, size: usize) -> isize;
}

fn dirs() -> &'static Dirs {
    static D: OnceLock<Dirs> = OnceLock::new();
    D.get_or_init(|| {
        let t = tempfile::Builder::new().prefix("berth-fuzz-layer-").tempdir().expect("tempdir");
        let base = t.path().to_path_buf();
        let canary = base.join("canary");
        fs::create_dir(&canary).expect("canary");
        let m = fs::symlink_metadata(&base).expect("stat base");
        Dirs {
            root: base.join("root"),
            canary_meta: meta(&canary),
            base_meta: (m.mode(), m.uid(), m.gid()),
            xattr_sizes: (xattrs(&canary), xattrs(&base)),
            canary,
            base,
            _base: t,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let d = dirs();
    let _ = fs::remove_dir_all(&d.root);
    fs::create_dir(&d.root).expect("create root");
    let _ = berth_snapshot::unpack_tar(data, &d.root);

    // Nothing may have appeared or changed outside the root.
    let mut names: Vec<_> = fs::read_dir(&d.base)
        .expect("read base")
        .map(|e| e.expect("entry").file_name())
        .collect();
    names.sort();
    assert_eq!(names, ["canary", "root"], "entries appeared beside the root");
    let inside: Vec<_> = fs::read_dir(&d.canary).expect("read canary").collect();
    assert!(inside.is_empty(), "the unpack wrote into ../canary: {inside:?}");
    assert_eq!(meta(&d.canary), d.canary_meta, "the unpack changed ../canary");
    assert_eq!(xattrs(&d.canary), d.xattr_sizes.0, "the unpack set xattrs on ../canary");
    let m = fs::symlink_metadata(&d.base).expect("stat base");
    assert_eq!((m.mode(), m.uid(), m.gid()), d.base_meta, "the unpack changed the root's parent");
    assert_eq!(xattrs(&d.base), d.xattr_sizes.1, "the unpack set xattrs on the root's parent");
    assert!(
        fs::symlink_metadata(&d.root).is_ok_and(|m| m.is_dir()),
        "the root is no longer a directory"
    );
    let _ = fs::remove_dir_all(&d.root);
});
