//! Layer unpacking and overlayfs container snapshots.

pub mod diff;
pub mod spares;
mod unpack;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use berth_content::Digest;
use berth_errdefs::{Error, Result, ResultExt};
pub use berth_userns::IdMap;

pub use diff::write_diff;
pub use spares::SpareDirs;
pub use unpack::{unpack_tar, UnpackStats};

/// Layers and container snapshots under one root.
#[derive(Debug, Clone)]
pub struct Snapshotter {
    root: PathBuf,
    /// `--userns-remap`: the id map and the idmapped view of `layers` that container
    /// snapshots are mounted from (their upper dirs then hold host ids).
    idmap: Option<(IdMap, PathBuf)>,
    /// Empty container snapshot directories (`upper/` and `work/`) made ahead of need:
    /// [`Snapshotter::prepare`] renames one to the container's instead of making three
    /// directories on the start's path — on a journal-less ext4, where each inode
    /// allocation skips every inode of its group freed in the last one to six minutes,
    /// the dearest of its disk work. They live in `snapshots/` as `.spare-<n>`; a
    /// crash's leftovers go at `open`.
    spares: Arc<SpareDirs>,
}

/// Spare snapshot directories kept ready.
const SPARES: usize = 2;

impl Snapshotter {
    pub fn open(root: impl Into<PathBuf>) -> Result<Snapshotter> {
        let root = root.into();
        fs::create_dir_all(root.join("layers")).ctx("create layers dir")?;
        fs::create_dir_all(root.join("snapshots")).ctx("create snapshots dir")?;
        spread_subdirectories(&root.join("snapshots"));
        // Remove half-unpacked layers left by a crash.
        for e in fs::read_dir(root.join("layers"))?.flatten() {
            if e.file_name().to_string_lossy().starts_with(".tmp-") {
                let _ = fs::remove_dir_all(e.path());
            }
        }
        make_init_layer(&root.join("layers")).ctx("create the containers' init layer")?;
        // And spare snapshot directories (made again by `fill_spares`).
        let spares = Arc::new(SpareDirs::open(&root.join("snapshots"), &["upper", "work"], SPARES));
        Ok(Snapshotter { root, idmap: None, spares })
    }

    /// Make spare snapshot directories until [`SPARES`] are ready (blocking; call it
    /// off the start's path).
    pub fn fill_spares(&self) {
        self.spares.fill();
    }

    /// Spare snapshot directories ready now.
    pub fn spares(&self) -> usize {
        self.spares.ready()
    }

    /// Remove the spare snapshot directories (at shutdown; a later `fill_spares` makes
    /// new ones).
    pub fn remove_spares(&self) {
        self.spares.remove_all();
    }

    /// Mount container snapshots through `view`, an idmapped mount of this root's
    /// `layers` with `map`: the container's root sees the image's files as its own,
    /// and its upper dir (created owned by that root) holds host ids.
    pub fn with_idmap(mut self, map: IdMap, view: PathBuf) -> Snapshotter {
        self.idmap = Some((map, view));
        self
    }

    /// The id map container snapshots are written with, if any.
    pub fn idmap(&self) -> Option<&IdMap> {
        self.idmap.as_ref().map(|(m, _)| m)
    }

    /// Where the layers are unpacked (one directory per diff id).
    pub fn layers_root(&self) -> PathBuf {
        self.root.join("layers")
    }

    /// The unpacked directory of a layer.
    pub fn layer_dir(&self, diff_id: &Digest) -> PathBuf {
        self.layers_root().join(diff_id.hex()).join("fs")
    }

    pub fn has_layer(&self, diff_id: &Digest) -> bool {
        self.layer_dir(diff_id).is_dir()
    }

    /// Unpack an uncompressed layer tar as `diff_id`. Already-unpacked layers are kept.
    pub fn unpack_layer(&self, diff_id: &Digest, tar: impl std::io::Read) -> Result<UnpackStats> {
        if self.has_layer(diff_id) {
            return Ok(UnpackStats::default());
        }
        let tmp = self.root.join("layers").join(format!(".tmp-{}-{}", diff_id.short(), std::process::id()));
        let _ = fs::remove_dir_all(&tmp);
        fs::create_dir_all(tmp.join("fs")).ctx("create layer dir")?;
        let stats = match unpack_tar(tar, &tmp.join("fs")) {
            Ok(s) => s,
            Err(e) => {
                let _ = fs::remove_dir_all(&tmp);
                return Err(e);
            }
        };
        // Measured once, while the new files' inodes are still cached.
        let _ = fs::write(tmp.join(SIZE_FILE), dir_size(&tmp.join("fs")).to_string());
        let dst = self.root.join("layers").join(diff_id.hex());
        if let Err(e) = fs::rename(&tmp, &dst) {
            let _ = fs::remove_dir_all(&tmp);
            if !dst.exists() {
                return Err(Error::from(e).context("commit layer"));
            }
        }
        Ok(stats)
    }

    /// The size of an unpacked layer as dockerd gives a layer's (the bytes of its files
    /// and symlinks, each inode once: not its tar's, which adds a header per entry):
    /// recorded beside it when unpacked, measured and recorded now for a layer unpacked
    /// before that was done. None when the layer is not unpacked.
    pub fn layer_size(&self, diff_id: &Digest) -> Option<u64> {
        let dir = self.layers_root().join(diff_id.hex());
        if let Some(n) = fs::read_to_string(dir.join(SIZE_FILE)).ok().and_then(|s| s.trim().parse().ok()) {
            return Some(n);
        }
        if !dir.join("fs").is_dir() {
            return None;
        }
        let n = dir_size(&dir.join("fs"));
        let tmp = dir.join(format!(".{SIZE_FILE}-{}", std::process::id()));
        if fs::write(&tmp, n.to_string()).and_then(|()| fs::rename(&tmp, dir.join(SIZE_FILE))).is_err() {
            let _ = fs::remove_file(&tmp);
        }
        Some(n)
    }

    /// Remove an unpacked layer.
    pub fn remove_layer(&self, diff_id: &Digest) -> Result<()> {
        Ok(spares::remove_missing_ok(&self.root.join("layers").join(diff_id.hex()))?)
    }

    fn snapshot_dir(&self, id: &str) -> PathBuf {
        self.root.join("snapshots").join(id)
    }

    /// The writable upper directory of a container snapshot.
    pub fn upper_dir(&self, id: &str) -> PathBuf {
        self.snapshot_dir(id).join("upper")
    }

    /// Create the upper and work dirs of a container snapshot: a spare renamed when
    /// the snapshot has none yet and one is ready.
    pub fn prepare(&self, id: &str) -> Result<()> {
        let d = self.snapshot_dir(id);
        self.spares.provide(&d).ctx("create upper and work dirs")?;
        // overlayfs shows the upper dir's owner as the root directory's
        berth_userns::chown_to_root(&d.join("upper"), self.idmap())
    }

    /// The init layer's files (see [`make_init_layer`]): what every container's rootfs
    /// has above its image's layers and below its own upper dir.
    pub fn init_layer_dir(&self) -> PathBuf {
        self.layers_root().join(INIT_LAYER).join("fs")
    }

    /// Where the init layer is read from for a container snapshot (through the
    /// idmapped view under `--userns-remap`, so its files are the container root's).
    fn init_lower_dir(&self) -> PathBuf {
        match &self.idmap {
            Some((_, view)) => view.join(INIT_LAYER).join("fs"),
            None => self.init_layer_dir(),
        }
    }

    /// Where layer `l`'s files are read from for a container snapshot.
    fn lower_dir(&self, l: &Digest, container: bool) -> PathBuf {
        match &self.idmap {
            Some((_, view)) if container => view.join(l.hex()).join("fs"),
            _ => self.layer_dir(l),
        }
    }

    /// Mount a container's rootfs at `target`: its layers (bottom first in `layers`)
    /// under its upper dir. Mounting an already-mounted target is a no-op.
    pub fn mount(&self, id: &str, layers: &[Digest], target: &Path) -> Result<()> {
        self.mount_overlay(Some(id), layers, target, "")
    }

    /// Like [`Snapshotter::mount`] for a rootfs that is mounted once and never again
    /// (a build step's, a `--rm` container's): overlayfs's `volatile` option skips syncing the upper dir,
    /// which makes the unmount several milliseconds faster. After a host crash such
    /// an upper dir cannot be mounted again; its container is gone by then anyway.
    pub fn mount_volatile(&self, id: &str, layers: &[Digest], target: &Path) -> Result<()> {
        self.mount_overlay(Some(id), layers, target, ",volatile")
    }

    /// After the rootfs of snapshot `id` was unmounted: forget that it was mounted
    /// `volatile` (overlayfs refuses to mount such an upper dir again, in case a host
    /// crash left it inconsistent; a clean unmount did not), so that a build step's
    /// container can still be committed or started again.
    pub fn unmounted(&self, id: &str) {
        let _ = fs::remove_dir_all(self.snapshot_dir(id).join("work/work/incompat"));
    }

    /// Mount `layers` read-only at `target`, with no upper dir: nothing to prepare or
    /// remove, and nothing to sync when unmounted.
    pub fn mount_readonly(&self, layers: &[Digest], target: &Path) -> Result<()> {
        self.mount_overlay(None, layers, target, "")
    }

    fn empty_dir(&self, name: &str) -> Result<PathBuf> {
        let empty = self.root.join("layers").join(name);
        fs::create_dir_all(&empty)?;
        Ok(empty)
    }

    fn mount_overlay(&self, id: Option<&str>, layers: &[Digest], target: &Path, extra: &str) -> Result<()> {
        fs::create_dir_all(target).ctx("create rootfs mount point")?;
        if is_mountpoint(target) {
            return Ok(());
        }
        let mut lower: Vec<String> =
            top_first_unique(layers).map(|l| self.lower_dir(l, id.is_some()).display().to_string()).collect();
        if id.is_some() {
            lower.insert(0, self.init_lower_dir().display().to_string());
        }
        // Overlay needs a lower dir (FROM scratch has none), and two without an upper dir.
        for name in ["empty", "empty-2"] {
            if lower.len() < if id.is_some() { 1 } else { 2 } {
                lower.push(self.empty_dir(name)?.display().to_string());
            }
        }
        let mut opts = format!("lowerdir={}", lower.join(":"));
        let mut flags = nix::mount::MsFlags::empty();
        match id {
            Some(id) => {
                let d = self.snapshot_dir(id);
                opts.push_str(&format!(",upperdir={},workdir={}", d.join("upper").display(), d.join("work").display()));
                // As dockerd's overlay2: with the inodes index on (a kernel built or
                // loaded with it), overlayfs refuses an upper dir another mount still
                // holds (EBUSY) — the previous run's mount, kept by its exiting shim's
                // mount namespace, when a container is restarted at once.
                if index_supported() {
                    opts.push_str(",index=off");
                }
            }
            None => flags |= nix::mount::MsFlags::MS_RDONLY,
        }
        opts.push_str(extra);
        if opts.len() >= 4000 {
            return Err(Error::internal("too many layers for one overlay mount"));
        }
        nix::mount::mount(Some("overlay"), target, Some("overlay"), flags, Some(opts.as_str()))
            .map_err(|e| Error::internal(format!("mount overlay at {}: {e}", target.display())))?;
        Ok(())
    }

    /// Remove a container snapshot (its rootfs must be unmounted): its upper and work
    /// directories go, and its emptied directory is kept as a spare when fewer than
    /// twice [`SPARES`] are ready ([`SpareDirs::recycle`]).
    pub fn remove(&self, id: &str) -> Result<()> {
        Ok(self.spares.recycle(&self.snapshot_dir(id))?)
    }

    /// The ids of the container snapshots there are (not the spares).
    pub fn snapshot_ids(&self) -> Vec<String> {
        fs::read_dir(self.root.join("snapshots"))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| !n.starts_with('.'))
            .collect()
    }
}

/// The file beside a layer's `fs/` that records its size ([`Snapshotter::layer_size`]).
const SIZE_FILE: &str = "size";

/// The init layer's directory under `layers/` (never a diff id's hex).
const INIT_LAYER: &str = "init";

/// Make the *init layer* if it is not there yet: the files dockerd puts between a
/// container's image and its writable layer (its `initlayer.Setup`), the same for every
/// container, so one read-only copy serves them all — `/.dockerenv` (what programs test
/// to know they run in a container), `/etc/mtab` → `/proc/mounts`, and the mount points
/// of what the runtime mounts over them (`/etc/hosts`, `/etc/hostname`,
/// `/etc/resolv.conf`, `/dev/console`, `/dev/pts`, `/dev/shm`, `/proc`, `/sys`), so that
/// no container's upper dir gets them. Directories 0755, empty files 0755, as dockerd
/// makes them. Built under a temporary name and renamed into place.
fn make_init_layer(layers: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    if layers.join(INIT_LAYER).join("fs").is_dir() {
        return Ok(());
    }
    let tmp = layers.join(format!(".tmp-{INIT_LAYER}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&tmp);
    let fs_dir = tmp.join("fs");
    let mode = |p: &Path| fs::set_permissions(p, fs::Permissions::from_mode(0o755));
    for d in ["", "dev", "dev/pts", "dev/shm", "proc", "sys", "etc"] {
        let p = fs_dir.join(d);
        fs::create_dir_all(&p)?;
        mode(&p)?;
    }
    for f in [".dockerenv", "etc/resolv.conf", "etc/hosts", "etc/hostname", "dev/console"] {
        let p = fs_dir.join(f);
        fs::File::create(&p)?;
        mode(&p)?;
    }
    std::os::unix::fs::symlink("/proc/mounts", fs_dir.join("etc/mtab"))?;
    match fs::rename(&tmp, layers.join(INIT_LAYER)) {
        Ok(()) => Ok(()),
        // made meanwhile by another opener
        Err(_) if layers.join(INIT_LAYER).join("fs").is_dir() => {
            let _ = fs::remove_dir_all(&tmp);
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

/// Does this kernel's overlayfs have the inodes index feature (and so the `index`
/// mount option)?
fn index_supported() -> bool {
    static SUPPORTED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *SUPPORTED.get_or_init(|| Path::new("/sys/module/overlay/parameters/index").exists())
}

/// `layers` (bottom first) as overlay's lower dirs want them: top first, and each layer
/// once. An image may hold the same layer twice (two RUN steps that change nothing both
/// add the empty layer, two identical COPYs add the same tar), and overlayfs refuses a
/// lower dir listed twice (ELOOP, "overlapping layers"). Dropping all but the topmost
/// copy changes nothing: that copy holds the same entries and whiteouts, and everything
/// it covers lies below it already.
fn top_first_unique(layers: &[Digest]) -> impl Iterator<Item = &Digest> {
    let mut seen = std::collections::HashSet::new();
    layers.iter().rev().filter(move |l| seen.insert(*l))
}

/// ext4's "top of a directory hierarchy" inode flag (`FS_TOPDIR_FL`, `chattr +T`).
const FS_TOPDIR_FL: libc::c_int = 0x0002_0000;

/// Asks the filesystem to place each new subdirectory of `dir` as it places a new
/// directory at its root: ext4 then spreads them over its block groups (Orlov) instead
/// of packing them into `dir`'s own. Every container makes and deletes inodes under
/// its directory (its snapshot's, overlay's work-directory checks at each mount, its
/// log), and on an ext4 without a journal each inode allocation skips, one buffer
/// lookup each, every inode of its group freed in the last one to six minutes: with all
/// containers in one group, back-to-back runs spent 0.8 ms of CPU each in that scan,
/// 0.16 ms spread (perf, 100 runs). Best effort: other filesystems refuse or ignore
/// the flag, and nothing depends on it.
pub fn spread_subdirectories(dir: &Path) {
    use std::os::fd::AsRawFd;
    let Ok(f) = fs::File::open(dir) else { return };
    let Some(flags) = inode_flags(&f).filter(|f| f & FS_TOPDIR_FL == 0) else { return };
    let flags = flags | FS_TOPDIR_FL;
    // SAFETY: FS_IOC_SETFLAGS reads one int through the pointer, valid for the call;
    // the descriptor is open.
    if unsafe { libc::ioctl(f.as_raw_fd(), libc::FS_IOC_SETFLAGS, &flags) } != 0 {
        tracing::debug!(dir = %dir.display(), error = %std::io::Error::last_os_error(), "directory not marked FS_TOPDIR_FL");
    }
}

/// An open file's inode flags (`FS_IOC_GETFLAGS`); None where the filesystem has none.
fn inode_flags(f: &fs::File) -> Option<libc::c_int> {
    use std::os::fd::AsRawFd;
    let mut flags: libc::c_int = 0;
    // SAFETY: FS_IOC_GETFLAGS writes one int through the pointer, valid for the call;
    // the descriptor is open.
    (unsafe { libc::ioctl(f.as_raw_fd(), libc::FS_IOC_GETFLAGS, &mut flags) } == 0).then_some(flags)
}

/// Unmount `target` if it is a mount point (lazily, so busy mounts go away when freed).
pub fn unmount(target: &Path) -> Result<()> {
    if !is_mountpoint(target) {
        return Ok(());
    }
    nix::mount::umount2(target, nix::mount::MntFlags::MNT_DETACH)
        .map_err(|e| Error::internal(format!("unmount {}: {e}", target.display())))
}

/// Bytes of the regular files and symlinks under `p`, each inode once, as dockerd
/// measures a layer or a container's changes (its `directory.Size`: directories count
/// nothing, a hard link's file once); unreadable entries are skipped.
pub fn dir_size(p: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut total = 0;
    let mut seen = std::collections::HashSet::new();
    let mut todo = vec![p.to_path_buf()];
    while let Some(d) = todo.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            let Ok(md) = e.path().symlink_metadata() else { continue };
            if md.is_dir() {
                todo.push(e.path());
            } else if md.len() > 0 && (md.nlink() < 2 || seen.insert((md.dev(), md.ino()))) {
                total += md.len();
            }
        }
    }
    total
}

/// Is `p` the root of a mount? (compares device ids with the parent)
pub fn is_mountpoint(p: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let (Ok(me), Some(parent)) = (fs::symlink_metadata(p), p.parent()) else { return false };
    let Ok(pm) = fs::metadata(parent) else { return false };
    me.dev() != pm.dev() || me.ino() == pm.ino()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir).unwrap().flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
        v.sort();
        v
    }

    fn dir_flags(dir: &Path) -> Option<libc::c_int> {
        inode_flags(&fs::File::open(dir).unwrap())
    }

    #[test]
    fn the_snapshots_directory_spreads_its_subdirectories_on_ext4() {
        let dir = tempfile::tempdir().unwrap();
        let fs_type = nix::sys::statfs::statfs(dir.path()).unwrap().filesystem_type();
        Snapshotter::open(dir.path()).unwrap();
        let snaps = dir.path().join("snapshots");
        if fs_type == nix::sys::statfs::EXT4_SUPER_MAGIC {
            let flags = dir_flags(&snaps).expect("ext4 has inode flags");
            assert_ne!(flags & FS_TOPDIR_FL, 0, "snapshots/ is not marked FS_TOPDIR_FL: {flags:#x}");
            // Marking again is a no-op, and the flag stays.
            spread_subdirectories(&snaps);
            assert_ne!(dir_flags(&snaps).unwrap() & FS_TOPDIR_FL, 0);
        } else {
            eprintln!("temp dir is not on ext4 ({fs_type:?}); only checked that open does not fail");
        }
    }

    #[test]
    fn snapshot_ids_are_the_snapshots_not_the_spares() {
        let dir = tempfile::tempdir().unwrap();
        let s = Snapshotter::open(dir.path()).unwrap();
        s.fill_spares();
        assert!(s.snapshot_ids().is_empty());
        s.prepare("c1").unwrap();
        s.prepare("c2").unwrap();
        let mut ids = s.snapshot_ids();
        ids.sort();
        assert_eq!(ids, ["c1", "c2"]);
        s.remove("c1").unwrap();
        assert_eq!(s.snapshot_ids(), ["c2"]);
    }

    #[test]
    fn spares_become_snapshots_and_a_crash_s_leftovers_go_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let s = Snapshotter::open(dir.path()).unwrap();
        let snaps = dir.path().join("snapshots");
        s.fill_spares();
        assert_eq!(s.spares(), 2);
        assert_eq!(entries(&snaps), [".spare-1", ".spare-2"]);
        // A new snapshot takes a spare: upper/ and work/, empty.
        s.prepare("c1").unwrap();
        assert_eq!(s.spares(), 1);
        assert_eq!(entries(&snaps), [".spare-1", "c1"]);
        assert_eq!(entries(&snaps.join("c1")), ["upper", "work"]);
        assert!(entries(&snaps.join("c1/upper")).is_empty());
        // One that exists keeps what it has and takes none.
        fs::write(snaps.join("c1/upper/f"), "x").unwrap();
        s.prepare("c1").unwrap();
        assert_eq!(s.spares(), 1);
        assert_eq!(entries(&snaps.join("c1/upper")), ["f"]);
        // Without spares, made as before.
        s.prepare("c2").unwrap();
        s.prepare("c3").unwrap();
        assert_eq!(s.spares(), 0);
        assert_eq!(entries(&snaps.join("c3")), ["upper", "work"]);
        s.remove_spares();
        assert_eq!(entries(&snaps), ["c1", "c2", "c3"]);
        s.fill_spares();
        // A crash leaves the spares; the next open removes them and nothing else.
        drop(s);
        let s = Snapshotter::open(dir.path()).unwrap();
        assert_eq!(entries(&snaps), ["c1", "c2", "c3"]);
        assert_eq!(s.spares(), 0);
    }

    fn layer(s: &Snapshotter, files: &[(&str, &[u8])]) -> Digest {
        let mut b = tar::Builder::new(Vec::new());
        for (path, data) in files {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_uid(0);
            h.set_gid(0);
            h.set_mtime(1_000_000);
            h.set_path(path).unwrap();
            h.set_cksum();
            b.append(&h, *data).unwrap();
        }
        let tar = b.into_inner().unwrap();
        let d = Digest::of(&tar);
        s.unpack_layer(&d, &tar[..]).unwrap();
        d
    }

    /// A layer's size is dockerd's: its files' and symlinks' bytes, a hard-linked file
    /// once, directories and tar headers nothing; recorded at unpack, measured again
    /// when the record is missing (a layer unpacked by an older berthd).
    #[test]
    fn layer_sizes_count_file_bytes_once_per_inode() {
        let dir = tempfile::tempdir().unwrap();
        let s = Snapshotter::open(dir.path().join("snap")).unwrap();
        let mut b = tar::Builder::new(Vec::new());
        let header = |kind: tar::EntryType, mode: u32, size: u64| {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(kind);
            h.set_mode(mode);
            h.set_size(size);
            h.set_uid(0);
            h.set_gid(0);
            h.set_mtime(1_000_000);
            h
        };
        b.append_data(&mut header(tar::EntryType::Directory, 0o755, 0), "d/", &[][..]).unwrap();
        b.append_data(&mut header(tar::EntryType::Regular, 0o644, 5), "d/f", &b"12345"[..]).unwrap();
        b.append_link(&mut header(tar::EntryType::Link, 0o644, 0), "d/hard", "d/f").unwrap();
        b.append_link(&mut header(tar::EntryType::Symlink, 0o777, 0), "sym", "abc").unwrap();
        let tar = b.into_inner().unwrap();
        let d = Digest::of(&tar);
        s.unpack_layer(&d, &tar[..]).unwrap();
        assert_eq!(s.layer_size(&d), Some(8));
        let record = s.layers_root().join(d.hex()).join(SIZE_FILE);
        assert_eq!(fs::read_to_string(&record).unwrap(), "8");
        fs::remove_file(&record).unwrap();
        assert_eq!(s.layer_size(&d), Some(8));
        assert!(record.exists(), "measured again and recorded");
        assert_eq!(s.layer_size(&Digest::of(b"not unpacked")), None);
    }

    /// Mounting needs root (CI runs as root); skipped otherwise.
    fn root() -> bool {
        nix::unistd::geteuid().is_root()
    }

    #[test]
    fn readonly_mounts_need_no_snapshot_and_refuse_writes() {
        if !root() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let s = Snapshotter::open(dir.path().join("snap")).unwrap();
        let a = layer(&s, &[("a", b"1"), ("x", b"old")]);
        let b = layer(&s, &[("x", b"new")]);
        for (layers, want) in [(vec![a.clone()], "old"), (vec![a.clone(), b.clone()], "new")] {
            let t = dir.path().join("ro");
            s.mount_readonly(&layers, &t).unwrap();
            assert!(is_mountpoint(&t));
            assert_eq!(fs::read_to_string(t.join("x")).unwrap(), want);
            assert!(fs::write(t.join("y"), b"no").is_err());
            unmount(&t).unwrap();
            assert!(!is_mountpoint(&t));
        }
        // scratch: an empty read-only tree
        let t = dir.path().join("scratch");
        s.mount_readonly(&[], &t).unwrap();
        assert_eq!(fs::read_dir(&t).unwrap().count(), 0);
        unmount(&t).unwrap();
        assert!(!dir.path().join("snap/snapshots").join("ro").exists());
    }

    #[test]
    fn a_layer_repeated_in_an_image_mounts_once_at_its_topmost_place() {
        if !root() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let s = Snapshotter::open(dir.path().join("snap")).unwrap();
        let empty = layer(&s, &[]);
        let a = layer(&s, &[("x", b"a")]);
        let b = layer(&s, &[("x", b"b")]);
        // base, empty, b, empty, a, empty: overlay refuses the same lower dir twice (ELOOP)
        let layers = [a.clone(), empty.clone(), b.clone(), empty.clone(), a.clone(), empty.clone()];
        assert_eq!(top_first_unique(&layers).cloned().collect::<Vec<_>>(), vec![empty.clone(), a.clone(), b.clone()]);
        let t = dir.path().join("ro");
        s.mount_readonly(&layers, &t).unwrap();
        assert_eq!(fs::read_to_string(t.join("x")).unwrap(), "a");
        unmount(&t).unwrap();
        s.prepare("c").unwrap();
        s.mount("c", &layers[..4], &t).unwrap();
        assert_eq!(fs::read_to_string(t.join("x")).unwrap(), "b");
        unmount(&t).unwrap();
        s.remove("c").unwrap();
    }

    /// As root: a snapshotter in a temporary directory, one layer holding `a` = "1",
    /// and snapshot `id` prepared on it.
    fn one_layer_snapshot(id: &str) -> Option<(tempfile::TempDir, Snapshotter, Digest)> {
        if !root() {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let s = Snapshotter::open(dir.path().join("snap")).unwrap();
        let a = layer(&s, &[("a", b"1")]);
        s.prepare(id).unwrap();
        Some((dir, s, a))
    }

    #[test]
    fn an_upper_dir_still_held_by_another_mount_mounts_again() {
        let Some((dir, s, a)) = one_layer_snapshot("c") else { return };
        let (t1, t2) = (dir.path().join("r1"), dir.path().join("r2"));
        s.mount("c", std::slice::from_ref(&a), &t1).unwrap();
        s.mount("c", std::slice::from_ref(&a), &t2).unwrap();
        assert_eq!(fs::read(t2.join("a")).unwrap(), b"1");
        unmount(&t2).unwrap();
        unmount(&t1).unwrap();
        s.remove("c").unwrap();
    }

    #[test]
    fn volatile_mounts_write_to_the_upper_dir() {
        let Some((dir, s, a)) = one_layer_snapshot("c1") else { return };
        let t = dir.path().join("rootfs");
        s.mount_volatile("c1", std::slice::from_ref(&a), &t).unwrap();
        fs::write(t.join("b"), b"2").unwrap();
        unmount(&t).unwrap();
        assert_eq!(fs::read(s.upper_dir("c1").join("b")).unwrap(), b"2");
        assert!(!s.upper_dir("c1").join("a").exists());
        // A volatile upper dir mounts again only once it is known to be clean.
        assert!(s.mount("c1", std::slice::from_ref(&a), &t).is_err());
        s.unmounted("c1");
        s.mount("c1", &[a], &t).unwrap();
        assert_eq!(fs::read(t.join("b")).unwrap(), b"2");
        unmount(&t).unwrap();
        s.remove("c1").unwrap();
    }

    #[test]
    fn containers_see_the_init_layer_and_never_write_it() {
        use std::os::unix::fs::PermissionsExt;
        let Some((dir, s, a)) = one_layer_snapshot("c") else { return };
        let t = dir.path().join("rootfs");
        s.mount("c", std::slice::from_ref(&a), &t).unwrap();
        assert_eq!(fs::read(t.join("a")).unwrap(), b"1");
        let env = fs::symlink_metadata(t.join(".dockerenv")).unwrap();
        assert!(env.is_file() && env.len() == 0);
        assert_eq!(env.permissions().mode() & 0o7777, 0o755);
        assert_eq!(fs::read_link(t.join("etc/mtab")).unwrap(), Path::new("/proc/mounts"));
        for d in ["dev/pts", "dev/shm", "proc", "sys"] {
            assert!(t.join(d).is_dir(), "{d}");
        }
        for f in ["etc/hosts", "etc/hostname", "etc/resolv.conf", "dev/console"] {
            assert!(t.join(f).is_file(), "{f}");
        }
        // Nothing of it is in the container's own layer, and its writes stay there.
        assert!(entries(&s.upper_dir("c")).is_empty());
        fs::write(t.join("etc/hosts"), b"x").unwrap();
        unmount(&t).unwrap();
        assert_eq!(fs::read(s.upper_dir("c").join("etc/hosts")).unwrap(), b"x");
        assert_eq!(fs::metadata(s.init_layer_dir().join("etc/hosts")).unwrap().len(), 0);
        // Read-only views of images (the builder's) do not have it.
        s.mount_readonly(std::slice::from_ref(&a), &t).unwrap();
        assert!(!t.join(".dockerenv").exists());
        unmount(&t).unwrap();
        s.remove("c").unwrap();
        // A second open keeps the layer as it is.
        let again = Snapshotter::open(dir.path().join("snap")).unwrap();
        assert_eq!(entries(&again.init_layer_dir()), [".dockerenv", "dev", "etc", "proc", "sys"]);
    }
}
