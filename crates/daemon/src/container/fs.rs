//! A container's filesystem as the archive API (`docker cp`) sees it.
//!
//! A running container is reached through `/proc/<pid>/root` of its init: the
//! container's own mount namespace, so its volumes, binds and tmpfs mounts are
//! where the container sees them. A stopped (or never started) container gets its
//! overlay mounted at a private directory with its binds and volumes bound in at
//! their destinations, every destination resolved inside the rootfs; it is all
//! detached when the view is dropped. Paths are resolved by berth-containerfs,
//! never by the host's path walk.

use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::sync::Arc;

use berth_containerfs::ContainerFs;
use berth_errdefs::{Error, Result};
use berth_volume::Kind;
use nix::mount::MsFlags;

use super::Record;
use crate::Daemon;

pub struct View {
    pub fs: ContainerFs,
    /// The root's host path (`/proc/<pid>/root`, or our mount).
    root: PathBuf,
    /// Our private mount of a stopped container (detached on drop).
    temp: Option<PathBuf>,
    /// Volumes acquired for the temporary mount.
    volumes: Vec<String>,
    d: Arc<Daemon>,
}

impl View {
    /// The root's host path, for code that reads a file by path inside it with its
    /// own confinement (user lookup).
    pub fn root(&self) -> &std::path::Path {
        &self.root
    }
}

impl Drop for View {
    fn drop(&mut self) {
        if let Some(t) = self.temp.take() {
            // A lazy unmount takes the binds below with it.
            let _ = nix::mount::umount2(&t, nix::mount::MntFlags::MNT_DETACH);
            let _ = std::fs::remove_dir(&t);
        }
        for v in self.volumes.drain(..) {
            self.d.volumes.release(&v);
        }
    }
}

/// Is a container running, with the init pid its record names?
fn running_pid(d: &Daemon, rec: &Record) -> Option<i32> {
    let c = d.containers.get(&rec.id).ok()?;
    let now = c.record();
    (now.state.status.is_live() && now.state.pid > 0).then_some(now.state.pid)
}

/// Open a container's filesystem (blocking). For a container that is not running
/// the caller holds its operation lock, so that it cannot start meanwhile.
pub fn open(d: &Arc<Daemon>, rec: &Record) -> Result<View> {
    if let Some(pid) = d.warm.claimed_pid(&rec.id) {
        // Created on a warm sandbox, not started: its rootfs is mounted already and
        // its init waits inside it. A second overlay mount of the same upper
        // directory would not be coherent with that one (the process would not see
        // what a `cp` wrote); the init's root is the container's own view.
        return through_process(d, pid);
    }
    if let Some(pid) = running_pid(d, rec) {
        let view = through_process(d, pid)?;
        // The pid might have exited (and been reused) before we opened it.
        if running_pid(d, rec) == Some(pid) {
            return Ok(view);
        }
    }
    mount_stopped(d, rec)
}

/// The filesystem as process `pid` sees it (`/proc/<pid>/root`).
fn through_process(d: &Arc<Daemon>, pid: i32) -> Result<View> {
    let root = PathBuf::from(format!("/proc/{pid}/root"));
    let fs = ContainerFs::open(&root).map_err(|e| Error::internal(e.to_string()))?;
    Ok(View { fs, root, temp: None, volumes: Vec::new(), d: d.clone() })
}

fn mount_stopped(d: &Arc<Daemon>, rec: &Record) -> Result<View> {
    let layers = d.images.get_for_container(&rec.image_id)?.map(|i| i.layers).unwrap_or_default();
    let t = d.cfg.exec_root.join(format!("archive-{:016x}", rand::random::<u64>()));
    d.snap.mount(&rec.id, &layers, &t)?;
    let mut view = View {
        fs: ContainerFs::open(&t).map_err(|e| Error::internal(e.to_string()))?,
        root: t.clone(),
        temp: Some(t),
        volumes: Vec::new(),
        d: d.clone(),
    };
    let points = match &rec.mount_points {
        Some(p) => p.clone(),
        None => super::start::mount_points(&rec.host_config)?,
    };
    for m in points {
        let source = match m.kind {
            Kind::Bind => PathBuf::from(&m.source),
            Kind::Volume => {
                let p = d.volumes.acquire(&m.name)?;
                view.volumes.push(m.name.clone());
                p
            }
            // A tmpfs holds nothing while the container is stopped.
            Kind::Tmpfs => continue,
        };
        let Ok(meta) = std::fs::metadata(&source) else { continue };
        let target = view.fs.mountpoint(&m.destination, meta.is_dir()).map_err(|e| Error::internal(e.to_string()))?;
        let at = format!("/proc/self/fd/{}", target.as_raw_fd());
        nix::mount::mount(Some(&source), at.as_str(), None::<&str>, MsFlags::MS_BIND | MsFlags::MS_REC, None::<&str>)
            .map_err(|e| Error::internal(format!("bind {} at {}: {e}", source.display(), m.destination)))?;
        if !m.rw {
            // The new mount, reached again inside the root.
            let mounted = view.fs.open_path(&m.destination).map_err(|e| Error::internal(e.to_string()))?;
            let at = format!("/proc/self/fd/{}", mounted.as_raw_fd());
            nix::mount::mount(
                None::<&str>,
                at.as_str(),
                None::<&str>,
                MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
                None::<&str>,
            )
            .map_err(|e| Error::internal(format!("remount {} read-only: {e}", m.destination)))?;
        }
    }
    Ok(view)
}
