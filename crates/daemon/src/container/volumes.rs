//! A container's volumes: made at create (named ones on first use, anonymous ones for
//! `-v /path` and the image's `VOLUME`s), mounted and filled from the image at start,
//! released at stop, removed with `rm -v`. The store itself is `berth_volume::Volumes`.

use std::collections::BTreeMap;

use berth_errdefs::{Error, Result};
use berth_volume::{Kind, MountPoint};

use super::{Paths, Record};
use crate::Daemon;

/// The image's and the request's `Volumes` that no mount covers become anonymous
/// volumes of the container's `VolumeDriver` (dockerd's
/// `createContainerOSSpecificSettings`).
pub fn add_anonymous(points: &mut Vec<MountPoint>, volumes: &[String], driver: &str) {
    for dest in volumes {
        let clean = berth_volume::clean_path(dest);
        if clean == "/" || !clean.starts_with('/') {
            continue;
        }
        if !points.iter().any(|m| m.destination == clean) {
            let mut m = MountPoint::anonymous(&clean);
            m.driver = driver.to_owned();
            points.push(m);
        }
    }
}

/// Make the volumes a new container names (an existing one is used as it is).
/// Returns the anonymous ones made, to undo if the create fails later.
pub fn create_for(d: &Daemon, points: &[MountPoint]) -> Result<Vec<String>> {
    let mut made = Vec::new();
    for m in points.iter().filter(|m| m.kind == Kind::Volume) {
        let labels: BTreeMap<String, String> = m.volume_labels.clone().into_iter().collect();
        let opts: BTreeMap<String, String> = m.driver_options.clone().into_iter().collect();
        let existed = d.volumes.get(&m.name).is_ok();
        match d.volumes.create(&m.name, &m.driver, opts, labels, m.anonymous) {
            Ok(_) => {
                if !existed {
                    made.push(m.name.clone());
                    let mut attrs = std::collections::HashMap::new();
                    attrs.insert("driver".to_owned(), "local".to_owned());
                    d.events.emit(berth_api::models::EventMessageTypeEnum::VOLUME, "create", &m.name, attrs);
                }
            }
            Err(e) => {
                undo(d, &made);
                // dockerd's words: "create <name>: error looking up volume plugin …".
                return Err(e.context(format!("create {}", m.name)));
            }
        }
    }
    Ok(made)
}

/// Remove volumes [`create_for`] made.
pub fn undo(d: &Daemon, made: &[String]) {
    for name in made {
        let _ = d.volumes.remove(name, &[]);
    }
}

/// The containers whose mounts name a volume.
pub fn users(d: &Daemon, name: &str) -> Vec<String> {
    d.containers
        .all()
        .iter()
        .filter(|c| {
            c.record()
                .mount_points
                .iter()
                .flatten()
                .any(|m| m.kind == Kind::Volume && m.name == name)
        })
        .map(|c| c.id.clone())
        .collect()
}

/// At start (blocking, with the rootfs mounted): mount each volume and fill an empty
/// one with the image's content at its destination (unless `nocopy`).
pub fn acquire(d: &Daemon, rec: &Record) -> Result<()> {
    let rootfs = Paths::new(d, &rec.id).rootfs();
    let mut held = Vec::new();
    let result = (|| -> Result<()> {
        for m in rec.mount_points.iter().flatten().filter(|m| m.kind == Kind::Volume) {
            let path = d.volumes.acquire(&m.name)?;
            held.push(m.name.clone());
            if m.copy_data {
                // The image's directory at the destination, its symlinks resolved
                // inside the rootfs: a hostile image cannot make us copy host files.
                let fs = berth_containerfs::ContainerFs::open(&rootfs).map_err(|e| Error::internal(e.to_string()))?;
                if let Ok(fd) = fs.open_path(&m.destination) {
                    use std::os::fd::AsRawFd;
                    let src = std::path::PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()));
                    berth_volume::copy_up(&src, &path)?;
                }
            }
        }
        Ok(())
    })();
    d.volume_users.lock().unwrap().insert(rec.id.clone(), held);
    result?;
    make_mountpoints(rec, &rootfs, d.remap().map(|m| m.root()))
}

/// Make each mount's destination inside the rootfs (a directory, or a file for a
/// bind of a file), resolving symlinks inside it: an image whose mount path is a
/// dangling symlink gets its target made there, never on the host.
fn make_mountpoints(rec: &Record, rootfs: &std::path::Path, owner: Option<(u32, u32)>) -> Result<()> {
    let Some(points) = &rec.mount_points else { return Ok(()) };
    if points.is_empty() {
        return Ok(());
    }
    let fs = berth_containerfs::ContainerFs::open(rootfs).map_err(|e| Error::internal(e.to_string()))?;
    for m in points {
        if m.kind == Kind::Volume {
            // dockerd refuses a volume where the image has a file (VOLUME /etc/passwd).
            let on_file = fs.open_path(&m.destination).ok().and_then(|fd| { use std::os::fd::AsRawFd; nix::sys::stat::fstat(fd.as_raw_fd()).ok() }).is_some_and(|st| {
                st.st_mode & libc::S_IFMT != libc::S_IFDIR
            });
            if on_file {
                return Err(Error::invalid(format!(
                    "cannot mount volume over existing file, file exists {}",
                    rootfs.join(m.destination.trim_start_matches('/')).display()
                )));
            }
        }
        let dir = m.kind != Kind::Bind || std::fs::metadata(&m.source).map(|md| md.is_dir()).unwrap_or(true);
        let err = |e: berth_containerfs::Error| Error::internal(format!("create mountpoint for {} mount: {e}", m.destination));
        if dir {
            fs.mkdir_all_owned(&m.destination, owner).map_err(err)?;
        } else {
            // a remapped container's root owns what berthd makes for it
            fs.mkdir_all_owned(&berth_containerfs::gopath::dir(&m.destination), owner).map_err(err)?;
            let existed = fs.open_path(&m.destination).is_ok();
            let fd = fs.mountpoint(&m.destination, false).map_err(err)?;
            if let (Some((u, g)), false) = (owner, existed) {
                nix::unistd::fchownat(Some(std::os::fd::AsRawFd::as_raw_fd(&fd)), "", Some(u.into()), Some(g.into()), nix::fcntl::AtFlags::AT_EMPTY_PATH)
                    .map_err(|e| Error::internal(format!("chown mountpoint {}: {e}", m.destination)))?;
            }
        }
    }
    Ok(())
}

/// At teardown: give the volumes back (unmounting option volumes with their last user).
pub fn release(d: &Daemon, id: &str) {
    let held = d.volume_users.lock().unwrap().remove(id).unwrap_or_default();
    for name in held {
        d.volumes.release(&name);
    }
}

/// After a restart: a running container's option volumes are counted as mounted again.
pub fn restore(d: &Daemon, rec: &Record) {
    let names: Vec<String> = rec.mount_points.iter().flatten().filter(|m| m.kind == Kind::Volume).map(|m| m.name.clone()).collect();
    for n in &names {
        d.volumes.restore_active(n);
    }
    d.volume_users.lock().unwrap().insert(rec.id.clone(), names);
}

/// `rm -v`: the container's anonymous volumes that no other container uses.
pub fn remove_anonymous(d: &Daemon, rec: &Record) {
    for m in rec.mount_points.iter().flatten().filter(|m| m.kind == Kind::Volume && m.anonymous) {
        if users(d, &m.name).iter().any(|u| u != &rec.id) {
            continue;
        }
        match d.volumes.remove(&m.name, &[]) {
            Ok(()) => {
                let mut attrs = std::collections::HashMap::new();
                attrs.insert("driver".to_owned(), "local".to_owned());
                d.events.emit(berth_api::models::EventMessageTypeEnum::VOLUME, "destroy", &m.name, attrs);
            }
            Err(e) if !e.is_not_found() => tracing::warn!(volume = %m.name, "remove anonymous volume: {e}"),
            Err(_) => {}
        }
    }
}

/// A volume's host path for the OCI bind.
pub fn host_path(d: &Daemon, name: &str) -> Result<std::path::PathBuf> {
    d.volumes.get(name).map_err(|_| Error::not_found(format!("get {name}: no such volume")))?;
    Ok(d.volumes.path(name))
}
