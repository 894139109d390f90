//! The client side of `docker cp`: what a path on the user's host means as a copy
//! source or destination, and which directory an archive is extracted into with
//! which top-level name, by moby's `pkg/archive/copy.go` rules:
//!
//! - `cp SRC DST` where DST is an existing directory copies SRC *into* it;
//! - where DST does not exist, SRC is copied *as* DST (its entries renamed);
//! - `SRC/.` copies the contents of SRC rather than SRC itself;
//! - a DST ending in `/` must be a directory.

use std::io;
use std::path::Path;

use crate::gopath;

/// A copy source or destination.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CopyInfo {
    pub path: String,
    pub exists: bool,
    pub is_dir: bool,
    /// The name the source's archive entries take (when a followed symlink changed
    /// the last element).
    pub rebase_name: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CopyError {
    #[error("cannot copy directory")]
    CannotCopyDir,
    #[error("no such directory")]
    DirNotExists,
    #[error("not a directory")]
    NotDirectory,
    #[error("{0}")]
    Other(String),
}

pub use berth_errdefs::go_error;

fn lstat_err(path: &str, e: io::Error) -> CopyError {
    CopyError::Other(format!("lstat {path}: {}", go_error(&e)))
}

/// An absolute form of a local path (relative to the working directory), keeping
/// a trailing `/` or `/.`.
pub fn absolute(path: &str) -> String {
    if path.starts_with('/') {
        return path.to_owned();
    }
    let cwd = std::env::current_dir().map(|p| p.to_string_lossy().into_owned()).unwrap_or_else(|_| "/".into());
    let joined = gopath::join(&cwd, path);
    gopath::preserve_trailing(&joined, path)
}

fn eval_symlinks(path: &str) -> Result<String, CopyError> {
    std::fs::canonicalize(path).map(|p| p.to_string_lossy().into_owned()).map_err(|e| lstat_err(path, e))
}

/// moby's `CopyInfoSourcePath`: a local source, its directory's symlinks (and, with
/// `follow`, its own) evaluated.
pub fn source_info(path: &str, follow: bool) -> Result<CopyInfo, CopyError> {
    let path = absolute(path);
    let (resolved, rebase_name) = if follow {
        let r = eval_symlinks(&path)?;
        gopath::rebase_name(&path, &r)
    } else {
        let (dir, base) = gopath::split(&path);
        let rdir = eval_symlinks(if dir.is_empty() { "." } else { dir })?;
        let resolved = format!("{}/{}", rdir.trim_end_matches('/'), base);
        let rebase = if gopath::has_trailing_separator(&path) && gopath::base(&path) != gopath::base(&resolved) {
            gopath::base(&path).to_owned()
        } else {
            String::new()
        };
        (resolved, rebase)
    };
    let st = std::fs::symlink_metadata(&resolved).map_err(|e| lstat_err(&resolved, e))?;
    Ok(CopyInfo { path: resolved, exists: true, is_dir: st.is_dir(), rebase_name })
}

/// moby's `CopyInfoDestinationPath`: a local destination, its symlinks followed;
/// it need not exist, but its parent must be a directory.
pub fn destination_info(path: &str) -> Result<CopyInfo, CopyError> {
    let mut path = absolute(path);
    let original = path.clone();
    let mut st = std::fs::symlink_metadata(&path);
    let mut n = 0;
    while let Ok(m) = &st {
        if !m.file_type().is_symlink() {
            return Ok(CopyInfo { path, exists: true, is_dir: m.is_dir(), rebase_name: String::new() });
        }
        n += 1;
        if n > 10 {
            return Err(CopyError::Other(format!("too many symlinks in {original}")));
        }
        let target = std::fs::read_link(&path).map_err(|e| lstat_err(&path, e))?;
        let target = target.to_string_lossy().into_owned();
        path = if target.starts_with('/') {
            target
        } else {
            gopath::join(&gopath::split_dir_entry(&path).0, &target)
        };
        st = std::fs::symlink_metadata(&path);
    }
    let err = st.expect_err("the loop only ends on an error");
    if err.kind() != io::ErrorKind::NotFound {
        return Err(lstat_err(&path, err));
    }
    let (parent, _) = gopath::split_dir_entry(&path);
    match std::fs::metadata(&parent) {
        Ok(m) if m.is_dir() => Ok(CopyInfo { path, ..Default::default() }),
        Ok(_) => Err(CopyError::NotDirectory),
        Err(e) => Err(CopyError::Other(format!("stat {parent}: {}", go_error(&e)))),
    }
}

/// moby's `PrepareArchiveCopy`: the directory to extract the source's archive into
/// and, when the archive's top entry must take another name, `(old, new)` for
/// [`crate::ExtractOptions::rebase`] (or the name to give a local source's archive).
pub fn prepare(src: &CopyInfo, dst: &CopyInfo) -> Result<(String, Option<(String, String)>), CopyError> {
    let (dst_dir, dst_base) = gopath::split_dir_entry(&dst.path);
    let (_, mut src_base) = gopath::split_dir_entry(&src.path);
    if !src.rebase_name.is_empty() {
        src_base = src.rebase_name.clone();
    }
    if dst.exists && dst.is_dir {
        return Ok((dst.path.clone(), None));
    }
    if dst.exists && src.is_dir {
        return Err(CopyError::CannotCopyDir);
    }
    let asserts_dir = gopath::has_trailing_separator(&dst.path) || gopath::specifies_current_dir(&dst.path);
    if !dst.exists && !src.is_dir && asserts_dir {
        return Err(CopyError::DirNotExists);
    }
    Ok((dst_dir, Some((src_base, dst_base))))
}

/// The archive of a local source, its top entry named as the copy needs.
pub fn local_source(src: &CopyInfo, rename: Option<&(String, String)>) -> crate::Result<crate::Source> {
    let fs = crate::ContainerFs::open(Path::new("/"))?;
    let mut s = fs.source(&src.path)?;
    let (_, base) = gopath::split_dir_entry(&src.path);
    let mut name = if src.rebase_name.is_empty() { base } else { src.rebase_name.clone() };
    if let Some((old, new)) = rename {
        name = gopath::rebase(&name, old, new);
    }
    s.rename(if name == "/" { "" } else { &name });
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(path: &str, exists: bool, is_dir: bool) -> CopyInfo {
        CopyInfo { path: path.into(), exists, is_dir, rebase_name: String::new() }
    }

    #[test]
    fn prepare_follows_docker_cp_rules() {
        // into an existing directory
        assert_eq!(prepare(&info("/a/f", true, false), &info("/d", true, true)), Ok(("/d".into(), None)));
        // onto an existing file: renamed
        assert_eq!(
            prepare(&info("/a/f", true, false), &info("/d/g", true, false)),
            Ok(("/d".into(), Some(("f".into(), "g".into()))))
        );
        // a directory onto a file
        assert_eq!(prepare(&info("/a", true, true), &info("/d/g", true, false)), Err(CopyError::CannotCopyDir));
        // a directory to a new name
        assert_eq!(
            prepare(&info("/a/src", true, true), &info("/d/new", false, false)),
            Ok(("/d".into(), Some(("src".into(), "new".into()))))
        );
        // the contents of a directory to a new name
        assert_eq!(
            prepare(&info("/a/src/.", true, true), &info("/d/new", false, false)),
            Ok(("/d".into(), Some((".".into(), "new".into()))))
        );
        // a file to a missing directory
        assert_eq!(prepare(&info("/a/f", true, false), &info("/d/new/", false, false)), Err(CopyError::DirNotExists));
    }

    #[test]
    fn destination_needs_a_parent_directory() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().to_str().unwrap();
        assert_eq!(destination_info(&format!("{p}/new")).unwrap(), info(&format!("{p}/new"), false, false));
        std::fs::write(t.path().join("f"), "x").unwrap();
        assert_eq!(
            destination_info(&format!("{p}/f/new")),
            Err(CopyError::Other(format!("lstat {p}/f/new: not a directory")))
        );
        std::os::unix::fs::symlink("f", t.path().join("l")).unwrap();
        assert_eq!(destination_info(&format!("{p}/l")).unwrap(), info(&format!("{p}/f"), true, false));
        assert!(destination_info(&format!("{p}/missing/x")).is_err());
    }

    #[test]
    fn source_keeps_its_name_through_a_trailing_slash_symlink() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir(t.path().join("real")).unwrap();
        std::os::unix::fs::symlink("real", t.path().join("link")).unwrap();
        let p = t.path().canonicalize().unwrap();
        let p = p.to_str().unwrap();
        let s = source_info(&format!("{p}/link"), false).unwrap();
        assert_eq!((s.path.as_str(), s.is_dir), (format!("{p}/link").as_str(), false));
        let s = source_info(&format!("{p}/link/"), false).unwrap();
        assert!(s.is_dir);
        let s = source_info(&format!("{p}/link"), true).unwrap();
        assert_eq!((s.path, s.is_dir, s.rebase_name), (format!("{p}/real"), true, "link".to_owned()));
    }
}
