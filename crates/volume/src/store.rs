//! Named volumes with the `local` driver, as dockerd's: a directory
//! `<data-root>/volumes/<name>/_data`, recorded in the metadata store (`volumes` table);
//! with options (`type`, `device`, `o`), a mount made there while containers use it
//! (`type=tmpfs,device=tmpfs,o=size=64m`, `type=none,o=bind,device=/path`, NFS-style).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use berth_errdefs::{Error, Result};
use berth_metadata::{Db, Table};
use serde::{Deserialize, Serialize};

/// A volume as berth records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Volume {
    pub name: String,
    pub driver: String,
    /// RFC 3339.
    pub created: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Driver options (`type`, `device`, `o`).
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    /// Made for one container (`-v /path`, an image's `VOLUME`).
    #[serde(default)]
    pub anonymous: bool,
}

const VALID_OPTS: [&str; 4] = ["type", "o", "device", "size"];

fn no_such(name: &str) -> Error {
    Error::not_found(format!("get {name}: no such volume"))
}

/// `o=` of the local driver as `mount(2)` takes it: the flags it names and the rest
/// as data.
pub fn parse_mount_options(o: &str) -> (nix::mount::MsFlags, String) {
    use nix::mount::MsFlags as F;
    let mut flags = F::empty();
    let mut data = Vec::new();
    for opt in o.split(',').filter(|x| !x.is_empty()) {
        let f = match opt {
            "ro" => F::MS_RDONLY,
            "rw" => F::empty(),
            "nosuid" => F::MS_NOSUID,
            "nodev" => F::MS_NODEV,
            "noexec" => F::MS_NOEXEC,
            "sync" => F::MS_SYNCHRONOUS,
            "dirsync" => F::MS_DIRSYNC,
            "noatime" => F::MS_NOATIME,
            "nodiratime" => F::MS_NODIRATIME,
            "relatime" => F::MS_RELATIME,
            "strictatime" => F::MS_STRICTATIME,
            "bind" => F::MS_BIND,
            "rbind" => F::MS_BIND | F::MS_REC,
            "mand" => F::MS_MANDLOCK,
            _ => {
                data.push(opt);
                continue;
            }
        };
        flags |= f;
    }
    (flags, data.join(","))
}

/// The driver a volume is made with: only `local` (or none named) exists here; any
/// other is refused as dockerd refuses a plugin it does not have (404).
pub fn check_driver(driver: &str) -> Result<()> {
    if matches!(driver, "" | "local") {
        return Ok(());
    }
    Err(Error::not_found(format!("error looking up volume plugin {driver}: plugin \"{driver}\" not found")))
}

/// The volumes of one daemon.
pub struct Volumes {
    db: Arc<Db>,
    root: PathBuf,
    vols: RwLock<BTreeMap<String, Volume>>,
    /// Mounted volumes (with options) and how many containers use the mount.
    active: Mutex<HashMap<String, usize>>,
    /// The owner of new volumes' `_data` (`--userns-remap`: the remapped root).
    owner: Option<(u32, u32)>,
}

impl Volumes {
    /// Load the volumes under `<data-root>/volumes`.
    pub fn open(db: Arc<Db>, data_root: &Path) -> Result<Volumes> {
        let root = data_root.join("volumes");
        std::fs::create_dir_all(&root)?;
        let vols = db.list::<Volume>(Table::Volumes)?.into_iter().collect();
        Ok(Volumes { db, root, vols: RwLock::new(vols), active: Mutex::new(HashMap::new()), owner: None })
    }

    /// New volumes' data directories belong to `owner` (uid, gid) instead of root.
    pub fn with_owner(mut self, owner: Option<(u32, u32)>) -> Volumes {
        self.owner = owner;
        self
    }

    /// Where a volume's data lives on the host.
    pub fn path(&self, name: &str) -> PathBuf {
        self.root.join(name).join("_data")
    }

    pub fn list(&self) -> Vec<Volume> {
        self.vols.read().unwrap().values().cloned().collect()
    }

    pub fn get(&self, name: &str) -> Result<Volume> {
        self.vols.read().unwrap().get(name).cloned().ok_or_else(|| no_such(name))
    }

    /// Create a volume, or return the one of that name (as dockerd does); another
    /// driver for an existing name is a conflict.
    pub fn create(
        &self,
        name: &str,
        driver: &str,
        options: BTreeMap<String, String>,
        labels: BTreeMap<String, String>,
        anonymous: bool,
    ) -> Result<Volume> {
        check_driver(driver)?;
        let driver = if driver.is_empty() { "local" } else { driver };
        // The local driver's checks, its errors named as dockerd's volume service
        // names them (`create <name>: ...`).
        let checked = || -> Result<()> {
            crate::spec::validate_name(name)?;
            for k in options.keys() {
                if !VALID_OPTS.contains(&k.as_str()) {
                    return Err(Error::invalid(format!("invalid option: \"{k}\"")));
                }
            }
            for (opt, needs) in [("device", &["type"][..]), ("type", &["device"][..]), ("o", &["device", "type"][..])] {
                if options.contains_key(opt) {
                    for n in needs {
                        if !options.contains_key(*n) {
                            return Err(Error::invalid(format!("missing required option: \"{n}\"")));
                        }
                    }
                }
            }
            if options.contains_key("size") {
                return Err(Error::invalid("quota size requested but no quota support"));
            }
            Ok(())
        };
        checked().map_err(|e| e.context(format_args!("create {name}")))?;
        let mut g = self.vols.write().unwrap();
        if let Some(v) = g.get(name) {
            if v.driver != driver {
                return Err(Error::conflict(format!("create {name}: volume name must be unique")));
            }
            return Ok(v.clone());
        }
        let v = Volume {
            name: name.to_owned(),
            driver: driver.to_owned(),
            created: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            labels,
            options,
            anonymous,
        };
        let path = self.path(name);
        std::fs::create_dir_all(&path)
            .and_then(|()| self.owner.map_or(Ok(()), |(u, g)| std::os::unix::fs::chown(&path, Some(u), Some(g))))
            .map_err(|e| Error::internal(format!("error while creating volume data path '{}': {e}", path.display())))?;
        if let Err(e) = self.db.put(Table::Volumes, name, &v) {
            let _ = std::fs::remove_dir_all(self.root.join(name));
            return Err(e);
        }
        g.insert(name.to_owned(), v.clone());
        Ok(v)
    }

    /// Remove a volume and its data. `users`: the containers that use it (a volume in
    /// use is a 409 naming them).
    pub fn remove(&self, name: &str, users: &[String]) -> Result<()> {
        if !users.is_empty() {
            return Err(Error::conflict(format!("remove {name}: volume is in use - [{}]", users.join(", "))));
        }
        let mut g = self.vols.write().unwrap();
        if !g.contains_key(name) {
            return Err(no_such(name));
        }
        if self.active.lock().unwrap().get(name).is_some_and(|n| *n > 0) {
            return Err(Error::conflict(format!("remove {name}: volume has active mounts")));
        }
        let dir = self.root.join(name);
        // A mount left by a crash goes first: its data is not the volume's to delete.
        if is_mountpoint(&self.path(name)) {
            let _ = nix::mount::umount2(&self.path(name), nix::mount::MntFlags::MNT_DETACH);
        }
        self.db.delete(Table::Volumes, name)?;
        g.remove(name);
        drop(g);
        if let Err(e) = std::fs::remove_dir_all(&dir) {
            if e.kind() != std::io::ErrorKind::NotFound {
                return Err(Error::internal(format!("error removing volume path '{}': {e}", dir.display())));
            }
        }
        Ok(())
    }

    /// A container starts using the volume: mount it if its options say so. Returns
    /// the host path to bind into the container.
    pub fn acquire(&self, name: &str) -> Result<PathBuf> {
        let v = self.get(name)?;
        let path = self.path(name);
        if !v.options.contains_key("type") {
            std::fs::create_dir_all(&path)?;
            return Ok(path);
        }
        let mut a = self.active.lock().unwrap();
        let n = a.entry(name.to_owned()).or_insert(0);
        if *n == 0 && !is_mountpoint(&path) {
            std::fs::create_dir_all(&path)?;
            let (flags, data) = parse_mount_options(v.options.get("o").map(String::as_str).unwrap_or(""));
            let device = v.options.get("device").map(String::as_str).unwrap_or("");
            let typ = v.options.get("type").map(String::as_str).unwrap_or("");
            let fstype = if typ == "none" { None } else { Some(typ) };
            nix::mount::mount(Some(device), &path, fstype, flags, (!data.is_empty()).then_some(data.as_str()))
                .map_err(|e| Error::internal(format!("error while mounting volume '{}': failed to mount local volume: mount {device}:{}, flags: {:#x}, data: {data}: {e}", path.display(), path.display(), flags.bits())))?;
        }
        *n += 1;
        Ok(path)
    }

    /// A container stopped using the volume: unmount it with its last user.
    pub fn release(&self, name: &str) {
        let mut a = self.active.lock().unwrap();
        let Some(n) = a.get_mut(name) else { return };
        *n = n.saturating_sub(1);
        if *n == 0 {
            a.remove(name);
            let path = self.path(name);
            if is_mountpoint(&path) {
                let _ = nix::mount::umount2(&path, nix::mount::MntFlags::MNT_DETACH);
            }
        }
    }

    /// After a restart: the mounts running containers still use are counted again.
    pub fn restore_active(&self, name: &str) {
        if self.get(name).is_ok_and(|v| v.options.contains_key("type")) {
            *self.active.lock().unwrap().entry(name.to_owned()).or_insert(0) += 1;
        }
    }

    /// Bytes a volume holds (`system df -v`, `UsageData`).
    pub fn size(&self, name: &str) -> i64 {
        berth_snapshot::dir_size(&self.path(name)) as i64
    }
}

/// Fill an empty volume with what the image has at its mount point (dockerd's
/// copy-up): files, directories and symlinks with their owners, modes and times, and
/// the directory's own owner and mode. Nothing is done when `dst` is not empty.
pub fn copy_up(src: &Path, dst: &Path) -> Result<bool> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    // `src` is resolved already (the caller hands a /proc/self/fd path): follow it.
    let Ok(src_md) = std::fs::metadata(src) else { return Ok(false) };
    if !src_md.is_dir() || std::fs::read_dir(dst)?.next().is_some() {
        return Ok(false);
    }
    fn copy_tree(src: &Path, dst: &Path) -> std::io::Result<()> {
        for e in std::fs::read_dir(src)? {
            let e = e?;
            let from = e.path();
            let to = dst.join(e.file_name());
            let md = std::fs::symlink_metadata(&from)?;
            let ft = md.file_type();
            if ft.is_dir() {
                std::fs::create_dir(&to)?;
                copy_tree(&from, &to)?;
            } else if ft.is_symlink() {
                std::os::unix::fs::symlink(std::fs::read_link(&from)?, &to)?;
            } else if ft.is_file() {
                std::fs::copy(&from, &to)?;
            } else {
                continue; // sockets, fifos, devices stay in the image
            }
            let _ = std::os::unix::fs::lchown(&to, Some(md.uid()), Some(md.gid()));
            if !ft.is_symlink() {
                std::fs::set_permissions(&to, std::fs::Permissions::from_mode(md.mode() & 0o7777))?;
                let t = nix::sys::time::TimeSpec::new(md.mtime(), md.mtime_nsec());
                let _ = nix::sys::stat::utimensat(None, &to, &t, &t, nix::sys::stat::UtimensatFlags::NoFollowSymlink);
            }
        }
        Ok(())
    }
    copy_tree(src, dst).map_err(|e| Error::internal(format!("copy {} into the volume: {e}", src.display())))?;
    let _ = std::os::unix::fs::chown(dst, Some(src_md.uid()), Some(src_md.gid()));
    std::fs::set_permissions(dst, std::fs::Permissions::from_mode(src_md.mode() & 0o7777))?;
    Ok(true)
}

/// Is something mounted at `p`? (From /proc/self/mountinfo: a bind mount of a directory
/// on the same filesystem has the same device number, so `stat` cannot tell.)
fn is_mountpoint(p: &Path) -> bool {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else { return false };
    let want = p.to_string_lossy();
    info.lines().filter_map(|l| l.split(' ').nth(4)).any(|mp| unescape(mp) == want)
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c)) {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Volumes) {
        let dir = tempfile::tempdir().unwrap();
        let db = Arc::new(Db::open(&dir.path().join("m.redb")).unwrap());
        let v = Volumes::open(db, dir.path()).unwrap();
        (dir, v)
    }

    #[test]
    fn create_is_idempotent_and_remove_checks_users() {
        let (_d, s) = store();
        let mut labels = BTreeMap::new();
        labels.insert("a".into(), "b".into());
        let v = s.create("data", "", BTreeMap::new(), labels.clone(), false).unwrap();
        assert_eq!(v.driver, "local");
        assert!(s.path("data").is_dir());
        assert_eq!(s.create("data", "local", BTreeMap::new(), BTreeMap::new(), false).unwrap().labels, labels);
        std::fs::write(s.path("data").join("f"), "x").unwrap();
        assert_eq!(s.size("data"), 1);
        let e = s.remove("data", &["c1".into()]).unwrap_err();
        assert_eq!(e.message(), "remove data: volume is in use - [c1]");
        s.remove("data", &[]).unwrap();
        assert!(!s.path("data").exists());
        assert!(s.get("data").unwrap_err().is_not_found());
        assert!(s.remove("data", &[]).unwrap_err().is_not_found());
    }

    #[test]
    fn options_are_checked_as_the_local_driver_does() {
        let (_d, s) = store();
        let opts = |kv: &[(&str, &str)]| kv.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<BTreeMap<_, _>>();
        assert_eq!(s.create("v1", "", opts(&[("bogus", "1")]), BTreeMap::new(), false).unwrap_err().message(), "create v1: invalid option: \"bogus\"");
        assert_eq!(s.create("v2", "", opts(&[("type", "tmpfs")]), BTreeMap::new(), false).unwrap_err().message(), "create v2: missing required option: \"device\"");
        assert!(s.create("v3", "nfsplugin", BTreeMap::new(), BTreeMap::new(), false).unwrap_err().is_not_found());
        assert!(s.create("..", "", BTreeMap::new(), BTreeMap::new(), false).is_err());
        let (f, data) = parse_mount_options("ro,size=64m,uid=1000,nosuid");
        assert!(f.contains(nix::mount::MsFlags::MS_RDONLY | nix::mount::MsFlags::MS_NOSUID));
        assert_eq!(data, "size=64m,uid=1000");
    }

    #[test]
    fn copy_up_fills_an_empty_volume_only() {
        use std::os::unix::fs::PermissionsExt;
        let src = tempfile::tempdir().unwrap();
        std::fs::create_dir(src.path().join("sub")).unwrap();
        std::fs::write(src.path().join("sub/f"), "data").unwrap();
        std::fs::set_permissions(src.path().join("sub/f"), std::fs::Permissions::from_mode(0o640)).unwrap();
        std::os::unix::fs::symlink("sub/f", src.path().join("link")).unwrap();
        std::fs::set_permissions(src.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
        let dst = tempfile::tempdir().unwrap();
        assert!(copy_up(src.path(), dst.path()).unwrap());
        assert_eq!(std::fs::read_to_string(dst.path().join("sub/f")).unwrap(), "data");
        assert_eq!(std::fs::metadata(dst.path().join("sub/f")).unwrap().permissions().mode() & 0o777, 0o640);
        assert_eq!(std::fs::read_link(dst.path().join("link")).unwrap(), Path::new("sub/f"));
        assert_eq!(std::fs::metadata(dst.path()).unwrap().permissions().mode() & 0o777, 0o711);
        std::fs::write(src.path().join("new"), "n").unwrap();
        assert!(!copy_up(src.path(), dst.path()).unwrap(), "not empty any more");
        assert!(!dst.path().join("new").exists());
    }

    #[test]
    fn tmpfs_volumes_are_mounted_while_used() {
        let (_d, s) = store();
        let opts: BTreeMap<String, String> =
            [("type", "tmpfs"), ("device", "tmpfs"), ("o", "size=1m")].iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        s.create("tv", "", opts, BTreeMap::new(), false).unwrap();
        let p = s.acquire("tv").unwrap();
        assert!(is_mountpoint(&p));
        let p2 = s.acquire("tv").unwrap();
        assert_eq!(p, p2);
        s.release("tv");
        assert!(is_mountpoint(&p), "still used once");
        s.release("tv");
        assert!(!is_mountpoint(&p));
        s.remove("tv", &[]).unwrap();
    }
}
