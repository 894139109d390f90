//! End-to-end test harness.
//!
//! Every test starts its own `berthd` ([`Daemon::start`]) with private data/exec roots
//! and socket under a unique directory in /tmp, then drives it with the `berth` CLI,
//! the real `docker` CLI ([`Daemon::cli`]) or raw HTTP ([`Daemon::api`]). Dropping the
//! daemon removes its containers, stops it, unmounts what it left under its directory
//! and deletes the directory.
//!
//! Binaries are found in `$BERTH_BIN_DIR`, else next to the test executable
//! (`target/debug/deps/<test>` → `target/debug`). The docker CLI is
//! `$BERTH_DOCKER_CLI`, else `/usr/local/bin/docker`, else `docker` on `PATH`.

mod cmd;
mod daemon;
mod http;
mod mounts;
mod pty;
mod rootfs;
mod tarball;

pub mod compose_app;
pub use cmd::{free_port, run_command, wait_until, Output, Spawned};
pub use daemon::{Cli, Daemon};
pub use http::{read_head, Body, HttpResponse, UnixHttp};
pub use mounts::{mounts_under, unmount_under};
pub use pty::Pty;
pub use rootfs::{busybox_rootfs, repo_root};
pub use tarball::{RawTar, TarEntry};

use std::path::PathBuf;

/// The directory holding `berthd`, `berth` and `berth-shim`.
pub fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("BERTH_BIN_DIR") {
        return PathBuf::from(dir);
    }
    let exe = std::env::current_exe().expect("current_exe");
    // target/debug/deps/<test-binary> → target/debug
    let mut dir = exe.parent().expect("exe dir").to_path_buf();
    if dir.file_name().is_some_and(|n| n == "deps") {
        dir.pop();
    }
    dir
}

/// Path of a berth binary (`berthd`, `berth`, `berth-shim`); panics with a hint if missing.
pub fn bin(name: &str) -> PathBuf {
    let path = bin_dir().join(name);
    assert!(
        path.exists(),
        "{} not found; run `cargo build --workspace --bins` first or set BERTH_BIN_DIR",
        path.display()
    );
    path
}

/// The docker CLI used for compatibility runs.
pub fn docker_cli() -> PathBuf {
    if let Some(p) = std::env::var_os("BERTH_DOCKER_CLI") {
        return PathBuf::from(p);
    }
    let local = PathBuf::from("/usr/local/bin/docker");
    if local.exists() {
        return local;
    }
    PathBuf::from("docker")
}

/// The cgroup directories of container `id` that exist: `berth/<id>` in every cgroup
/// v1 hierarchy and in the unified tree.
pub fn cgroup_dirs(id: &str) -> Vec<PathBuf> {
    let root = std::path::Path::new("/sys/fs/cgroup");
    let mut hierarchies = vec![root.to_path_buf()];
    if let Ok(entries) = std::fs::read_dir(root) {
        hierarchies.extend(entries.flatten().map(|e| e.path()).filter(|p| p.is_dir()));
    }
    hierarchies.into_iter().map(|h| h.join("berth").join(id)).filter(|p| p.is_dir()).collect()
}

/// The cgroup pool entries (`berth_oci::CgroupPool`) of the berthd with pid `pid`, in
/// every hierarchy: `/sys/fs/cgroup/*/berth/.pool-<pid>-<n>`.
pub fn pooled_cgroups(pid: u32) -> Vec<PathBuf> {
    pool_entries(|owner| owner == pid)
}

/// Pool entries whose owner (the pid in their name) `pick` chooses.
pub fn pool_entries(pick: impl Fn(u32) -> bool) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for h in std::fs::read_dir("/sys/fs/cgroup").into_iter().flatten().flatten() {
        for e in std::fs::read_dir(h.path().join("berth")).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let owner = name.strip_prefix(".pool-").and_then(|r| r.split_once('-')).and_then(|(p, _)| p.parse::<u32>().ok());
            if owner.is_some_and(&pick) {
                found.push(e.path());
            }
        }
    }
    found.sort();
    found
}

/// A new unique directory holding `files` (relative paths, parents created): a build
/// context, say.
pub fn dir_with(prefix: &str, files: &[(&str, &str)]) -> PathBuf {
    let dir = unique_tmp_dir(prefix);
    for (name, content) in files {
        let p = dir.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }
    dir
}

/// A new directory unique to this process and call: `/tmp/<prefix>-<pid>-<n>-<nanos>`.
/// Every one is deleted when the test binary exits (see [`remove_tmp_dirs_at_exit`]).
pub fn unique_tmp_dir(prefix: &str) -> PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let dir = PathBuf::from(format!(
        "/tmp/{prefix}-{}-{n}-{nanos:x}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).expect("create temp dir");
    remove_tmp_dirs_at_exit(dir.clone());
    dir
}

/// The directories [`unique_tmp_dir`] made, for [`remove_tmp_dirs`] at exit.
static TMP_DIRS: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());

/// Records `dir` for deletion when the process exits; the first call registers
/// [`remove_tmp_dirs`] with `atexit(3)`, which the test harness's return from `main`
/// runs once every test is done.
fn remove_tmp_dirs_at_exit(dir: PathBuf) {
    static REGISTER: std::sync::Once = std::sync::Once::new();
    REGISTER.call_once(|| {
        // SAFETY: registers a plain `extern "C" fn` with no captured state.
        unsafe { libc::atexit(remove_tmp_dirs) };
    });
    TMP_DIRS.lock().unwrap_or_else(|e| e.into_inner()).push(dir);
}

/// Deletes the recorded directories, except any with a mount still under it (deleting
/// through a mount would reach outside the directory; a daemon's own directory is
/// unmounted and deleted by its `Drop` before this runs).
extern "C" fn remove_tmp_dirs() {
    let dirs = std::mem::take(&mut *TMP_DIRS.lock().unwrap_or_else(|e| e.into_inner()));
    for dir in dirs {
        if dir.exists() && mounts_under(&dir).is_empty() {
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
}
