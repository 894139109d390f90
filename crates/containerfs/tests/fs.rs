//! The container filesystem view against a real directory tree, with the
//! hostile layouts `docker cp` has been attacked with.

use std::io::Read;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::Path;

use berth_containerfs::{ContainerFs, Error, ExtractOptions};

fn names(tar_bytes: &[u8]) -> Vec<String> {
    let mut a = tar::Archive::new(tar_bytes);
    a.entries()
        .unwrap()
        .map(|e| String::from_utf8_lossy(&e.unwrap().path_bytes()).into_owned())
        .collect()
}

fn archive(fs: &ContainerFs, path: &str) -> Vec<u8> {
    fs.source(path).unwrap().write_tar(Vec::new()).unwrap()
}

fn tree() -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    let r = t.path();
    std::fs::create_dir_all(r.join("etc/sub")).unwrap();
    std::fs::write(r.join("etc/passwd"), "root:x:0:0::/root:/bin/sh\n").unwrap();
    std::fs::write(r.join("etc/sub/f"), "f").unwrap();
    std::fs::hard_link(r.join("etc/sub/f"), r.join("etc/sub/g")).unwrap();
    symlink("/", r.join("rootlink")).unwrap();
    symlink("../../..", r.join("etc/up")).unwrap();
    symlink("/etc", r.join("etclink")).unwrap();
    t
}

#[test]
fn stat_reports_go_modes_and_link_targets() {
    let t = tree();
    let fs = ContainerFs::open(t.path()).unwrap();
    let s = fs.stat("/etc/passwd").unwrap();
    assert_eq!((s.name.as_str(), s.size, s.is_dir()), ("passwd", 26, false));
    let s = fs.stat("etc").unwrap();
    assert!(s.is_dir());
    let s = fs.stat("/etclink").unwrap();
    assert!(s.is_symlink());
    assert_eq!(s.link_target, "/etc");
    // A link that climbs out stays inside: its target is the container's root.
    let s = fs.stat("/etc/up").unwrap();
    assert_eq!(s.link_target, "/");
    // Through the link (trailing slash) it is the directory.
    assert!(fs.stat("/etclink/").unwrap().is_dir());
    assert!(matches!(fs.stat("/nope"), Err(Error::NotFound(_))));
    assert!(matches!(fs.stat("/rootlink/nope/x"), Err(Error::NotFound(_))));
}

#[test]
fn archives_are_named_as_dockerd_names_them() {
    let t = tree();
    let fs = ContainerFs::open(t.path()).unwrap();
    assert_eq!(names(&archive(&fs, "/etc/sub")), ["sub/", "sub/f", "sub/g"]);
    assert_eq!(names(&archive(&fs, "/etc/sub/.")), ["./", "./f", "./g"]);
    // Through a symlink with a trailing slash the entries keep the asked name.
    assert_eq!(names(&archive(&fs, "/etclink/")).first().unwrap(), "etclink/");
    // The symlink itself without one.
    let raw = archive(&fs, "/etclink");
    let mut a = tar::Archive::new(&raw[..]);
    let e = a.entries().unwrap().next().unwrap().unwrap();
    assert_eq!(e.header().entry_type(), tar::EntryType::Symlink);
    assert_eq!(&*e.link_name_bytes().unwrap(), b"/etc");
    // The second name of a hard-linked file is a link entry.
    let raw = archive(&fs, "/etc/sub");
    let mut a = tar::Archive::new(&raw[..]);
    let kinds: Vec<_> = a.entries().unwrap().map(|e| e.unwrap().header().entry_type()).collect();
    assert_eq!(kinds[2], tar::EntryType::Link);
    // Nothing outside the root is archived through a link that climbs.
    let all = names(&archive(&fs, "/etc/up/"));
    assert!(all.contains(&"up/etc/passwd".to_owned()), "{all:?}");
    assert!(!all.iter().any(|n| n.contains("proc")), "host entries leaked: {all:?}");
}

#[test]
fn long_names_survive() {
    let t = tempfile::tempdir().unwrap();
    let long = "d".repeat(120);
    std::fs::create_dir_all(t.path().join(&long)).unwrap();
    std::fs::write(t.path().join(&long).join("x".repeat(150)), "data").unwrap();
    symlink("y".repeat(200), t.path().join("l")).unwrap();
    let fs = ContainerFs::open(t.path()).unwrap();
    let raw = archive(&fs, "/.");
    let n = names(&raw);
    assert!(n.contains(&format!("./{long}/{}", "x".repeat(150))), "{n:?}");
    let out = tempfile::tempdir().unwrap();
    let dst = ContainerFs::open(out.path()).unwrap();
    dst.dest("/").unwrap().extract(&raw[..], &ExtractOptions::default()).unwrap();
    assert_eq!(std::fs::read_to_string(out.path().join(&long).join("x".repeat(150))).unwrap(), "data");
    assert_eq!(std::fs::read_link(out.path().join("l")).unwrap(), Path::new(&"y".repeat(200)));
}

fn tar_of(entries: &[(&str, tar::EntryType, &str)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, kind, data) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(*kind);
        h.set_mode(0o640);
        h.set_uid(1234);
        h.set_gid(4321);
        h.set_mtime(1_000_000_000);
        let n = h.as_old_mut();
        n.name[..name.len()].copy_from_slice(name.as_bytes());
        match kind {
            tar::EntryType::Symlink | tar::EntryType::Link => {
                h.as_old_mut().linkname[..data.len()].copy_from_slice(data.as_bytes());
                h.set_size(0);
                h.set_cksum();
                b.append(&h, std::io::empty()).unwrap();
            }
            _ => {
                h.set_size(data.len() as u64);
                h.set_cksum();
                b.append(&h, data.as_bytes()).unwrap();
            }
        }
    }
    b.into_inner().unwrap()
}

#[test]
fn extract_keeps_owners_modes_and_times() {
    let t = tree();
    let fs = ContainerFs::open(t.path()).unwrap();
    let raw = tar_of(&[
        ("new/", tar::EntryType::Directory, ""),
        ("new/file", tar::EntryType::Regular, "hello"),
        ("new/link", tar::EntryType::Symlink, "file"),
        ("new/hard", tar::EntryType::Link, "new/file"),
        ("deep/er/file", tar::EntryType::Regular, "x"),
    ]);
    fs.dest("/etc").unwrap().extract(&raw[..], &ExtractOptions::default()).unwrap();
    let f = t.path().join("etc/new/file");
    let m = std::fs::metadata(&f).unwrap();
    assert_eq!((m.uid(), m.gid(), m.permissions().mode() & 0o7777, m.mtime()), (1234, 4321, 0o640, 1_000_000_000));
    assert_eq!(std::fs::metadata(t.path().join("etc/new")).unwrap().mtime(), 1_000_000_000);
    assert_eq!(std::fs::metadata(t.path().join("etc/new/hard")).unwrap().ino(), m.ino());
    assert_eq!(std::fs::read_link(t.path().join("etc/new/link")).unwrap(), Path::new("file"));
    // Parents the archive did not list are made root-owned 0755.
    let d = std::fs::metadata(t.path().join("etc/deep/er")).unwrap();
    assert_eq!((d.uid(), d.permissions().mode() & 0o777), (0, 0o755));
    // copyUIDGID: everything to the given owner.
    let opts = ExtractOptions { chown: Some((7, 8)), ..Default::default() };
    fs.dest("/etc").unwrap().extract(&tar_of(&[("o", tar::EntryType::Regular, "")])[..], &opts).unwrap();
    let m = std::fs::metadata(t.path().join("etc/o")).unwrap();
    assert_eq!((m.uid(), m.gid()), (7, 8));
}

#[test]
fn extract_through_symlinks_stays_inside() {
    let t = tree();
    let fs = ContainerFs::open(t.path()).unwrap();
    // The destination is a link to the root: lands in the container's root.
    fs.dest("/rootlink").unwrap().extract(&tar_of(&[("a", tar::EntryType::Regular, "1")])[..], &Default::default()).unwrap();
    assert_eq!(std::fs::read_to_string(t.path().join("a")).unwrap(), "1");
    // A parent in the archive path that is a link climbing out: still inside.
    fs.dest("/etc").unwrap().extract(&tar_of(&[("up/b", tar::EntryType::Regular, "2")])[..], &Default::default()).unwrap();
    assert_eq!(std::fs::read_to_string(t.path().join("b")).unwrap(), "2");
    // An existing symlink as the leaf is replaced, not written through.
    fs.dest("/").unwrap().extract(&tar_of(&[("etclink", tar::EntryType::Regular, "3")])[..], &Default::default()).unwrap();
    assert_eq!(std::fs::read_to_string(t.path().join("etclink")).unwrap(), "3");
    assert!(t.path().join("etc/passwd").exists());
}

#[test]
fn extract_refuses_breakouts_and_conflicts() {
    let t = tree();
    let fs = ContainerFs::open(t.path()).unwrap();
    let dest = fs.dest("/etc/sub").unwrap();
    let e = dest.extract(&tar_of(&[("../../x", tar::EntryType::Regular, "")])[..], &Default::default()).unwrap_err();
    assert!(matches!(e, Error::Breakout(_)), "{e}");
    let e = dest.extract(&tar_of(&[("l", tar::EntryType::Symlink, "../../../x")])[..], &Default::default()).unwrap_err();
    assert!(e.to_string().starts_with("invalid symlink"), "{e}");
    let e = dest.extract(&tar_of(&[("h", tar::EntryType::Link, "../passwd")])[..], &Default::default()).unwrap_err();
    assert!(e.to_string().starts_with("invalid hardlink"), "{e}");
    let strict = ExtractOptions { no_overwrite_dir_non_dir: true, ..Default::default() };
    let e = fs.dest("/").unwrap().extract(&tar_of(&[("etc", tar::EntryType::Regular, "")])[..], &strict).unwrap_err();
    assert_eq!(e.to_string(), r#"cannot overwrite directory "/etc" with non-directory "/""#);
    let e = fs.dest("/etc").unwrap().extract(&tar_of(&[("passwd/", tar::EntryType::Directory, "")])[..], &strict).unwrap_err();
    assert_eq!(e.to_string(), r#"cannot overwrite non-directory "/etc/passwd" with directory "/etc""#);
    assert!(matches!(fs.dest("/etc/passwd"), Err(Error::NotDirectory)));
    assert!(matches!(fs.dest("/missing"), Err(Error::NotFound(_))));
    // Nothing was written outside.
    assert!(!t.path().parent().unwrap().join("x").exists());
}

#[test]
fn round_trip_through_gzip() {
    let t = tree();
    let fs = ContainerFs::open(t.path()).unwrap();
    let raw = archive(&fs, "/etc");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &raw).unwrap();
    let gz = gz.finish().unwrap();
    let out = tempfile::tempdir().unwrap();
    ContainerFs::open(out.path()).unwrap().dest("/").unwrap().extract(&gz[..], &Default::default()).unwrap();
    let mut s = String::new();
    std::fs::File::open(out.path().join("etc/passwd")).unwrap().read_to_string(&mut s).unwrap();
    assert!(s.starts_with("root:"));
    assert_eq!(
        std::fs::metadata(out.path().join("etc/sub/f")).unwrap().ino(),
        std::fs::metadata(out.path().join("etc/sub/g")).unwrap().ino()
    );
}
