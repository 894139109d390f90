//! Network namespaces that berth creates for containers: a new namespace pinned by a
//! bind mount at `<exec-root>/netns/<id>`, with loopback up. Work inside a namespace
//! happens on a short-lived thread of its own, since `setns`/`unshare(CLONE_NEWNET)`
//! change only the calling thread.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use berth_errdefs::{Error, Result};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{setns, unshare, CloneFlags};

fn loopback_up() -> std::io::Result<()> {
    let sock = nix::sys::socket::socket(
        nix::sys::socket::AddressFamily::Inet,
        nix::sys::socket::SockType::Datagram,
        nix::sys::socket::SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    // SAFETY: ifreq is plain data; we fill the name and read/write flags via ioctl.
    unsafe {
        let mut ifr: libc::ifreq = std::mem::zeroed();
        for (i, b) in b"lo".iter().enumerate() {
            ifr.ifr_name[i] = *b as libc::c_char;
        }
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut ifr) < 0 {
            return Err(std::io::Error::last_os_error());
        }
        ifr.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &ifr) < 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Create a network namespace with loopback up, pinned at `path`.
pub fn create(path: &Path) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    if is_mountpoint(path) {
        return Ok(());
    }
    std::fs::write(path, b"")?;
    let p: PathBuf = path.to_owned();
    let r = std::thread::spawn(move || -> std::io::Result<()> {
        unshare(CloneFlags::CLONE_NEWNET)?;
        let tid = nix::unistd::gettid();
        let ns = format!("/proc/self/task/{tid}/ns/net");
        mount(Some(ns.as_str()), &p, None::<&str>, MsFlags::MS_BIND, None::<&str>)?;
        loopback_up()
    })
    .join()
    .map_err(|_| Error::internal("network namespace thread panicked"))?;
    r.map_err(|e| {
        let _ = remove(path);
        Error::internal(format!("create network namespace: {e}"))
    })
}

/// Like [`create`] for a namespace that `make` creates and pins at the path it is
/// given (one owned by another user namespace, made by a helper process).
pub fn create_with(path: &Path, make: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    if is_mountpoint(path) {
        return Ok(());
    }
    let made = make(path).and_then(|()| run_in(path, || loopback_up().map_err(|e| Error::internal(format!("loopback up: {e}")))));
    made.inspect_err(|_| {
        let _ = remove(path);
    })
}

/// Unpin and delete a namespace created by [`create`] (its interfaces go with it).
pub fn remove(path: &Path) -> Result<()> {
    if is_mountpoint(path) || std::fs::metadata(path).is_ok() {
        let _ = umount2(path, MntFlags::MNT_DETACH);
    }
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
        _ => Ok(()),
    }
}

fn is_mountpoint(p: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let (Ok(m), Some(parent)) = (std::fs::symlink_metadata(p), p.parent()) else { return false };
    std::fs::metadata(parent).is_ok_and(|pm| pm.dev() != m.dev())
}

/// Run `f` inside the network namespace at `path` (a pinned namespace or
/// `/proc/<pid>/ns/net`), on a thread of its own.
pub fn run_in<T: Send + 'static>(path: &Path, f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    let ns = File::open(path).map_err(|e| Error::internal(format!("open network namespace {}: {e}", path.display())))?;
    std::thread::spawn(move || {
        setns(&ns, CloneFlags::CLONE_NEWNET).map_err(|e| Error::internal(format!("enter network namespace: {e}")))?;
        f()
    })
    .join()
    .map_err(|_| Error::internal("network namespace thread panicked"))?
}
