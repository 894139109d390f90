//! `RUN --mount` (and heredoc scripts) on the engine side: the host directories,
//! files, image snapshots and cache directories behind a build container's extra
//! mounts, given to the container as binds and tmpfs; undone after the run, and the
//! mountpoints the runtime had to create removed from the container's upper dir.

use std::collections::BTreeMap;
use std::fs::File;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use berth_builder::context::Kind;
use berth_builder::copy::OutEntry;
use berth_builder::{CacheSharing, RunMount, RunMountKind};
use berth_errdefs::{Error, Result, ResultExt};

use crate::Daemon;

/// The persistent cache mounts (`<data-root>/buildcache/mounts`).
pub fn cache_mounts_dir(d: &Daemon) -> PathBuf {
    d.cfg.data_root.join("buildcache").join("mounts")
}

/// What one run set up; [`Prepared::release`] undoes it.
#[derive(Default)]
pub struct Prepared {
    /// `host:container[:ro]`
    pub binds: Vec<String>,
    /// container path → tmpfs options
    pub tmpfs: std::collections::HashMap<String, String>,
    /// Scratch space for this run (files, secrets, private caches).
    tmp: Option<PathBuf>,
    /// Image snapshots mounted for `from=` binds: (snapshot key, mountpoint).
    snapshots: Vec<(String, PathBuf)>,
    /// Held cache locks (released on drop).
    locks: Vec<File>,
}

fn set_mode(p: &Path, mode: u32) -> Result<()> {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode & 0o7777))
        .ctx("set mount file mode")
}

/// Write a file tree (`""` is the root: a file or a directory) at `root`.
fn write_tree(root: &Path, files: &BTreeMap<String, OutEntry>) -> Result<()> {
    let mut dirs = Vec::new();
    for (rel, e) in files {
        let p = if rel.is_empty() {
            root.to_path_buf()
        } else {
            root.join(rel)
        };
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).ctx("create mount dir")?;
        }
        match &e.kind {
            Kind::Dir => {
                std::fs::create_dir_all(&p).ctx("create mount dir")?;
                dirs.push((p.clone(), e.mode));
            }
            Kind::File => {
                std::fs::write(&p, &e.data).ctx("write mount file")?;
                set_mode(&p, e.mode)?;
            }
            Kind::Symlink(t) => {
                std::os::unix::fs::symlink(t, &p).ctx("create mount symlink")?;
            }
        }
        let _ = std::os::unix::fs::lchown(&p, Some(e.uid), Some(e.gid));
    }
    // Directory modes last (a read-only directory would refuse its children).
    for (p, mode) in dirs.into_iter().rev() {
        set_mode(&p, mode)?;
    }
    Ok(())
}

fn new_dir(p: &Path, mode: u32, uid: u32, gid: u32) -> Result<()> {
    std::fs::create_dir_all(p).ctx("create cache mount")?;
    set_mode(p, mode)?;
    std::os::unix::fs::chown(p, Some(uid), Some(gid)).ctx("chown cache mount")?;
    Ok(())
}

impl Prepared {
    fn tmp(&mut self, d: &Daemon) -> Result<PathBuf> {
        if let Some(t) = &self.tmp {
            return Ok(t.clone());
        }
        let base = d.cfg.data_root.join("tmp");
        std::fs::create_dir_all(&base).ctx("create tmp dir")?;
        let t = base.join(format!(
            "run-mounts-{}",
            hex::encode(rand::random::<[u8; 8]>())
        ));
        std::fs::create_dir(&t).ctx("create run mounts dir")?;
        set_mode(&t, 0o700)?;
        self.tmp = Some(t.clone());
        Ok(t)
    }

    fn bind(&mut self, src: &Path, target: &str, readonly: bool) {
        let ro = if readonly { ":ro" } else { "" };
        self.binds.push(format!("{}:{target}{ro}", src.display()));
    }

    /// Set up every mount of a run.
    pub fn new(d: &Daemon, mounts: &[RunMount]) -> Result<Prepared> {
        let mut p = Prepared::default();
        match p.setup(d, mounts) {
            Ok(()) => Ok(p),
            Err(e) => {
                p.release(d);
                Err(e)
            }
        }
    }

    fn setup(&mut self, d: &Daemon, mounts: &[RunMount]) -> Result<()> {
        for (i, m) in mounts.iter().enumerate() {
            if m.target.contains(':') {
                return Err(Error::invalid(format!(
                    "RUN --mount: target {:?} contains ':', which berth cannot mount",
                    m.target
                )));
            }
            match &m.kind {
                RunMountKind::Files(files) => {
                    let src = self.tmp(d)?.join(format!("m{i}"));
                    write_tree(&src, files)?;
                    self.bind(&src, &m.target, m.readonly);
                }
                RunMountKind::Secret {
                    data,
                    mode,
                    uid,
                    gid,
                } => {
                    let src = self.tmp(d)?.join(format!("s{i}"));
                    std::fs::write(&src, &data.0).ctx("write secret")?;
                    set_mode(&src, *mode)?;
                    std::os::unix::fs::chown(&src, Some(*uid), Some(*gid)).ctx("chown secret")?;
                    self.bind(&src, &m.target, true);
                }
                RunMountKind::Tmpfs { size } => {
                    let mut opts = "exec".to_owned();
                    if *size > 0 {
                        opts.push_str(&format!(",size={size}"));
                    }
                    self.tmpfs.insert(m.target.clone(), opts);
                }
                RunMountKind::Image { image_id, path } => {
                    let rec = d.images.resolve(image_id)?;
                    let key = format!("build-mnt-{}", hex::encode(rand::random::<[u8; 8]>()));
                    let target = d.cfg.exec_root.join("build").join(&key);
                    d.snap.prepare(&key)?;
                    if let Err(e) = d.snap.mount(&key, &rec.layers, &target) {
                        let _ = d.snap.remove(&key);
                        return Err(e);
                    }
                    self.snapshots.push((key, target.clone()));
                    let src = target.join(path.trim_start_matches('/'));
                    if std::fs::symlink_metadata(&src).is_err() {
                        return Err(Error::invalid(format!(
                            "failed to compute cache key: failed to calculate checksum of ref: \"{path}\": not found"
                        )));
                    }
                    self.bind(&src, &m.target, m.readonly);
                }
                RunMountKind::Cache {
                    id,
                    sharing,
                    mode,
                    uid,
                    gid,
                } => {
                    let dir = cache_mounts_dir(d)
                        .join(berth_builder::cache_mount_dir(id, *mode, *uid, *gid));
                    std::fs::create_dir_all(cache_mounts_dir(d)).ctx("create cache mounts")?;
                    let info = dir.with_extension("info");
                    let lock = File::options()
                        .create(true)
                        .truncate(false)
                        .write(true)
                        .open(dir.with_extension("lock"))
                        .ctx("open cache lock")?;
                    let src = match sharing {
                        CacheSharing::Shared => {
                            lock.lock_shared().ctx("lock cache mount")?;
                            dir
                        }
                        CacheSharing::Locked => {
                            lock.lock().ctx("lock cache mount")?;
                            dir
                        }
                        CacheSharing::Private => {
                            if lock.try_lock().is_ok() {
                                dir
                            } else {
                                // Busy: this run gets a fresh, throw-away instance.
                                let t = self.tmp(d)?.join(format!("c{i}"));
                                new_dir(&t, *mode, *uid, *gid)?;
                                t
                            }
                        }
                    };
                    // Its last use (for `system df` and `builder prune --filter until`).
                    let _ = lock.set_modified(std::time::SystemTime::now());
                    self.locks.push(lock);
                    if !info.exists() {
                        let what = serde_json::json!({ "id": id, "target": m.target });
                        let tmp = info.with_extension(format!(
                            "info-{}",
                            hex::encode(rand::random::<[u8; 8]>())
                        ));
                        if std::fs::write(&tmp, what.to_string()).is_ok() {
                            let _ = std::fs::rename(&tmp, &info);
                        }
                    }
                    if !src.exists() {
                        // Created whole or not at all, and never replaced: stages
                        // building at the same time may both get here.
                        let part = src.with_extension(format!(
                            "new-{}",
                            hex::encode(rand::random::<[u8; 8]>())
                        ));
                        new_dir(&part, *mode, *uid, *gid)?;
                        let placed = nix::fcntl::renameat2(
                            None,
                            &part,
                            None,
                            &src,
                            nix::fcntl::RenameFlags::RENAME_NOREPLACE,
                        );
                        if let Err(e) = placed {
                            let _ = std::fs::remove_dir(&part);
                            if !src.is_dir() {
                                return Err(Error::internal(format!("create cache mount: {e}")));
                            }
                        }
                    }
                    self.bind(&src, &m.target, m.readonly);
                }
            }
        }
        Ok(())
    }

    /// Unmount snapshots, drop scratch files, release cache locks.
    pub fn release(&mut self, d: &Daemon) {
        for (key, target) in self.snapshots.drain(..) {
            let _ = berth_snapshot::unmount(&target);
            let _ = std::fs::remove_dir(&target);
            let _ = d.snap.remove(&key);
        }
        if let Some(t) = self.tmp.take() {
            let _ = std::fs::remove_dir_all(t);
        }
        self.locks.clear();
    }
}

/// The path components of each target (`a`, `a/b`, `a/b/c` for `/a/b/c`) the image
/// does not have: what the runtime creates as mountpoints.
pub fn missing_in_image(root: &Path, targets: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for t in targets {
        let mut cur = String::new();
        for seg in t.split('/').filter(|s| !s.is_empty()) {
            cur = if cur.is_empty() {
                seg.to_owned()
            } else {
                format!("{cur}/{seg}")
            };
            if std::fs::symlink_metadata(root.join(&cur)).is_err() && !out.contains(&cur) {
                out.push(cur.clone());
            }
        }
    }
    out
}

/// Remove from an upper dir the mountpoints the runtime created (empty directories,
/// or empty files for single-file mounts) that the image did not have, deepest
/// first, as BuildKit does; anything the command wrote there stays.
pub fn drop_mountpoints(upper: &Path, missing: &[String]) {
    let mut paths: Vec<&String> = missing.iter().collect();
    paths.sort_by_key(|p| std::cmp::Reverse(p.matches('/').count()));
    for p in paths {
        let full = upper.join(p);
        match std::fs::symlink_metadata(&full) {
            Ok(m) if m.is_dir() => {
                let _ = std::fs::remove_dir(&full);
            }
            Ok(m) if m.is_file() && m.len() == 0 => {
                let _ = std::fs::remove_file(&full);
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountpoints_the_image_lacked_are_removed() {
        let img = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(img.path().join("root")).unwrap();
        let upper = tempfile::tempdir().unwrap();
        let u = upper.path();
        std::fs::create_dir_all(u.join("root/.cache/pip")).unwrap();
        std::fs::create_dir_all(u.join("run/secrets")).unwrap();
        std::fs::write(u.join("run/secrets/tok"), "").unwrap();
        std::fs::create_dir_all(u.join("src/keep")).unwrap();
        let missing = missing_in_image(
            img.path(),
            &[
                "/root/.cache/pip".into(),
                "/run/secrets/tok".into(),
                "/src".into(),
            ],
        );
        assert_eq!(
            missing,
            [
                "root/.cache",
                "root/.cache/pip",
                "run",
                "run/secrets",
                "run/secrets/tok",
                "src"
            ]
        );
        drop_mountpoints(u, &missing);
        assert!(!u.join("root/.cache").exists());
        assert!(u.join("root").exists(), "the image had /root");
        assert!(!u.join("run").exists());
        assert!(u.join("src/keep").exists(), "written by the command");
    }

    #[test]
    fn trees_are_written_with_their_modes() {
        let d = tempfile::tempdir().unwrap();
        let mut files = BTreeMap::new();
        let e = |kind, mode, data: &str| OutEntry {
            kind,
            mode,
            uid: 0,
            gid: 0,
            mtime: 0,
            data: data.as_bytes().to_vec(),
        };
        files.insert(String::new(), e(Kind::Dir, 0o555, ""));
        files.insert("a/b.sh".into(), e(Kind::File, 0o750, "echo"));
        files.insert("l".into(), e(Kind::Symlink("a/b.sh".into()), 0o777, ""));
        let root = d.path().join("m0");
        write_tree(&root, &files).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode(&root), 0o555);
        assert_eq!(mode(&root.join("a/b.sh")), 0o750);
        assert_eq!(std::fs::read_to_string(root.join("l")).unwrap(), "echo");
        set_mode(&root, 0o755).unwrap();
    }
}
