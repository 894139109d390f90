//! Layer unpacking and overlayfs container snapshots.

pub mod diff;
mod unpack;

use std::fs;
use std::path::{Path, PathBuf};

use berth_content::Digest;
use berth_errdefs::{Error, Result, ResultExt};

pub use diff::write_diff;
pub use unpack::{unpack_tar, UnpackStats};

/// Layers and container snapshots under one root.
#[derive(Debug, Clone)]
pub struct Snapshotter {
    root: PathBuf,
}

impl Snapshotter {
    pub fn open(root: impl Into<PathBuf>) -> Result<Snapshotter> {
        let root = root.into();
        fs::create_dir_all(root.join("layers")).ctx("create layers dir")?;
        fs::create_dir_all(root.join("snapshots")).ctx("create snapshots dir")?;
        // Remove half-unpacked layers left by a crash.
        for e in fs::read_dir(root.join("layers"))?.flatten() {
            if e.file_name().to_string_lossy().starts_with(".tmp-") {
                let _ = fs::remove_dir_all(e.path());
            }
        }
        Ok(Snapshotter { root })
    }

    /// The unpacked directory of a layer.
    pub fn layer_dir(&self, diff_id: &Digest) -> PathBuf {
        self.root.join("layers").join(diff_id.hex()).join("fs")
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
        let dst = self.root.join("layers").join(diff_id.hex());
        if let Err(e) = fs::rename(&tmp, &dst) {
            let _ = fs::remove_dir_all(&tmp);
            if !dst.exists() {
                return Err(Error::from(e).context("commit layer"));
            }
        }
        Ok(stats)
    }

    /// Remove an unpacked layer.
    pub fn remove_layer(&self, diff_id: &Digest) -> Result<()> {
        let dir = self.root.join("layers").join(diff_id.hex());
        match fs::remove_dir_all(&dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    }

    fn snapshot_dir(&self, id: &str) -> PathBuf {
        self.root.join("snapshots").join(id)
    }

    /// The writable upper directory of a container snapshot.
    pub fn upper_dir(&self, id: &str) -> PathBuf {
        self.snapshot_dir(id).join("upper")
    }

    /// Create the upper and work dirs of a container snapshot.
    pub fn prepare(&self, id: &str) -> Result<()> {
        let d = self.snapshot_dir(id);
        fs::create_dir_all(d.join("upper")).ctx("create upper dir")?;
        fs::create_dir_all(d.join("work")).ctx("create work dir")?;
        Ok(())
    }

    /// Mount a container's rootfs at `target`: its layers (bottom first in `layers`)
    /// under its upper dir. Mounting an already-mounted target is a no-op.
    pub fn mount(&self, id: &str, layers: &[Digest], target: &Path) -> Result<()> {
        fs::create_dir_all(target).ctx("create rootfs mount point")?;
        if is_mountpoint(target) {
            return Ok(());
        }
        let d = self.snapshot_dir(id);
        let lower: Vec<String> = if layers.is_empty() {
            // An empty image (FROM scratch): overlay needs a lower dir.
            let empty = self.root.join("layers").join("empty");
            fs::create_dir_all(&empty)?;
            vec![empty.display().to_string()]
        } else {
            layers.iter().rev().map(|l| self.layer_dir(l).display().to_string()).collect()
        };
        let opts = format!(
            "lowerdir={},upperdir={},workdir={}",
            lower.join(":"),
            d.join("upper").display(),
            d.join("work").display()
        );
        if opts.len() >= 4000 {
            return Err(Error::internal("too many layers for one overlay mount"));
        }
        nix::mount::mount(Some("overlay"), target, Some("overlay"), nix::mount::MsFlags::empty(), Some(opts.as_str()))
            .map_err(|e| Error::internal(format!("mount overlay at {}: {e}", target.display())))?;
        Ok(())
    }

    /// Remove a container snapshot (its rootfs must be unmounted).
    pub fn remove(&self, id: &str) -> Result<()> {
        match fs::remove_dir_all(self.snapshot_dir(id)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    }
}

/// Unmount `target` if it is a mount point (lazily, so busy mounts go away when freed).
pub fn unmount(target: &Path) -> Result<()> {
    if !is_mountpoint(target) {
        return Ok(());
    }
    nix::mount::umount2(target, nix::mount::MntFlags::MNT_DETACH)
        .map_err(|e| Error::internal(format!("unmount {}: {e}", target.display())))
}

/// Is `p` the root of a mount? (compares device ids with the parent)
pub fn is_mountpoint(p: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let (Ok(me), Some(parent)) = (fs::symlink_metadata(p), p.parent()) else { return false };
    let Ok(pm) = fs::metadata(parent) else { return false };
    me.dev() != pm.dev() || me.ino() == pm.ino()
}
