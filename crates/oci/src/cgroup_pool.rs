//! Container cgroups made ahead of need, on a cgroup v1 host.
//!
//! Making a cgroup directory in a v1 hierarchy sets up each controller's state for it
//! (the memory controller's most of all): ~0.4 ms across the eight hierarchies of a
//! usual host, spent by the shim before the runtime can start the container — on the
//! critical path of every container started without a warm sandbox. The pool keeps a
//! few fresh directories in every hierarchy under the containers' parent, named
//! `.pool-<pid>-<n>` after the daemon that made them, and a container's cgroup is one
//! of them renamed to its id (v1 lets a cgroup be renamed within its parent; the shim
//! then finds it there, as if it had made it).
//!
//! A pooled cgroup never held a task nor had a limit written: what a container finds
//! in it is what a `mkdir` would have given it. Several daemons share the parent: each
//! start removes the entries of every daemon that is no longer running (a `kill -9`'s
//! leftovers, whatever its data root), and shutdown removes its own. cgroup v2 cannot
//! rename a cgroup: no pool there.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

// A v1 hierarchy with one of these controllers gets a pooled directory.
use berth_shim_proto::MANAGED_CONTROLLERS as MANAGED;

/// The pool. Its filesystem work is blocking: call it off the async runtime's workers
/// or where blocking is allowed.
pub struct CgroupPool {
    /// The containers' parent directory in each managed hierarchy (`…/memory/berth`).
    parents: Vec<PathBuf>,
    prefix: String,
    depth: usize,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    ready: Vec<String>,
    /// Entries being made now.
    making: usize,
    next: u64,
    closed: bool,
}

/// The managed v1 hierarchies' mount points in a `/proc/self/mountinfo`; empty when a
/// v1 hierarchy is not mounted at its root (inside a container).
fn managed_hierarchies(mountinfo: &str) -> io::Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    for m in super::cgroups::cgroup_mount_infos(mountinfo)? {
        if m.fs_type != "cgroup" {
            continue;
        }
        if m.root != "/" {
            return Ok(Vec::new());
        }
        if m.super_options.keys().any(|k| MANAGED.contains(&k.as_str())) {
            found.push(m.mount_point);
        }
    }
    Ok(found)
}

/// Whether a cgroup2 hierarchy has controllers enabled: then the runtime works on v2.
fn v2_in_use() -> bool {
    std::fs::read_to_string("/sys/fs/cgroup/cgroup.controllers").is_ok_and(|c| !c.trim().is_empty())
}

impl CgroupPool {
    /// A pool of `depth` cgroups under `parent` (relative to each hierarchy's root,
    /// e.g. `berth`), its entries named after this process; the entries of daemons
    /// that are gone are removed. None when the host is not cgroup v1 (or no managed
    /// hierarchy is mounted) or `depth` is 0. The pool starts empty: [`fill`].
    ///
    /// [`fill`]: CgroupPool::fill
    pub fn open(parent: &str, depth: usize) -> io::Result<Option<CgroupPool>> {
        let parent = parent.trim_matches('/');
        if depth == 0 || parent.is_empty() || parent.split('/').any(|c| c == ".." || c == ".") || v2_in_use() {
            return Ok(None);
        }
        let hierarchies = managed_hierarchies(&std::fs::read_to_string("/proc/self/mountinfo")?)?;
        if hierarchies.is_empty() {
            return Ok(None);
        }
        let pool = CgroupPool {
            parents: hierarchies.iter().map(|h| h.join(parent)).collect(),
            prefix: format!("{POOL_PREFIX}{}-", std::process::id()),
            depth,
            state: Mutex::new(State::default()),
        };
        for p in &pool.parents {
            std::fs::create_dir_all(p)?;
        }
        pool.sweep();
        Ok(Some(pool))
    }

    /// Remove this pool's entries, and those of every daemon no longer running.
    fn sweep(&self) {
        for p in &self.parents {
            let Ok(entries) = std::fs::read_dir(p) else { continue };
            for e in entries.flatten() {
                let Some(name) = e.file_name().to_str().map(str::to_owned) else { continue };
                if name.starts_with(&self.prefix) || owner(&name).is_some_and(|pid| !alive(pid)) {
                    let _ = std::fs::remove_dir(e.path());
                }
            }
        }
    }

    /// Make entries until `depth` are ready (or being made by another caller).
    pub fn fill(&self) {
        loop {
            let name = {
                let mut st = self.state.lock().unwrap();
                if st.closed || st.ready.len() + st.making >= self.depth {
                    return;
                }
                st.making += 1;
                st.next += 1;
                format!("{}{}", self.prefix, st.next)
            };
            let made = self.make(&name);
            let mut st = self.state.lock().unwrap();
            st.making -= 1;
            match made {
                Ok(()) if !st.closed => st.ready.push(name),
                Ok(()) => {
                    drop(st);
                    self.remove(&name);
                    return;
                }
                Err(e) => {
                    tracing::warn!("cgroup pool: make {name}: {e}");
                    return;
                }
            }
        }
    }

    /// One entry in every hierarchy; on failure, none.
    fn make(&self, name: &str) -> io::Result<()> {
        for (i, p) in self.parents.iter().enumerate() {
            if let Err(e) = std::fs::create_dir(p.join(name)) {
                for q in &self.parents[..i] {
                    let _ = std::fs::remove_dir(q.join(name));
                }
                return Err(e);
            }
        }
        Ok(())
    }

    fn remove(&self, name: &str) {
        for p in &self.parents {
            let _ = std::fs::remove_dir(p.join(name));
        }
    }

    /// Give a ready entry the name `id` in every hierarchy (the container's cgroup
    /// `<parent>/<id>`). False when none is ready, or a rename failed (a cgroup of that
    /// name exists already, say): then the entry is gone and nothing was renamed, and
    /// the cgroup is made as without a pool.
    pub fn take(&self, id: &str) -> bool {
        if id.is_empty() || id.contains('/') || id.starts_with('.') {
            return false;
        }
        let Some(name) = self.state.lock().unwrap().ready.pop() else { return false };
        for (i, p) in self.parents.iter().enumerate() {
            if let Err(e) = std::fs::rename(p.join(&name), p.join(id)) {
                tracing::debug!("cgroup pool: rename {name} to {id} in {}: {e}", p.display());
                for q in &self.parents[..i] {
                    let _ = std::fs::rename(q.join(id), q.join(&name));
                }
                self.remove(&name);
                return false;
            }
        }
        true
    }

    /// Entries ready now.
    pub fn ready(&self) -> usize {
        self.state.lock().unwrap().ready.len()
    }

    /// No more entries; every one there is removed (shutdown).
    pub fn close(&self) {
        let ready = {
            let mut st = self.state.lock().unwrap();
            st.closed = true;
            std::mem::take(&mut st.ready)
        };
        for name in ready {
            self.remove(&name);
        }
        self.sweep();
    }

    /// The hierarchies' parent directories the entries live in.
    pub fn parents(&self) -> &[PathBuf] {
        &self.parents
    }
}

/// The names of pool entries start with this, then the owner's pid and `-`.
pub const POOL_PREFIX: &str = ".pool-";

/// The pid of the daemon that made a pool entry, from its name.
pub fn owner(name: &str) -> Option<u32> {
    name.strip_prefix(POOL_PREFIX)?.split_once('-')?.0.parse().ok()
}

/// Whether `pid` is a running process (any: a pid reused since only keeps its
/// entries until a later start finds it gone).
fn alive(pid: u32) -> bool {
    Path::new("/proc").join(pid.to_string()).exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    const V1: &str = "\
25 1 0:22 / / rw - ext4 /dev/vda rw
30 25 0:26 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
31 30 0:27 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw
32 30 0:28 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd
33 30 0:29 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
34 30 0:30 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct
35 30 0:31 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids
";

    #[test]
    fn the_managed_v1_hierarchies_get_entries_the_named_and_v2_ones_do_not() {
        let h = managed_hierarchies(V1).unwrap();
        let names: Vec<_> = h.iter().map(|p| p.display().to_string()).collect();
        assert_eq!(names, ["/sys/fs/cgroup/memory", "/sys/fs/cgroup/cpu,cpuacct", "/sys/fs/cgroup/pids"]);
    }

    #[test]
    fn a_hierarchy_mounted_from_below_its_root_means_no_pool() {
        let inside = V1.replace("33 30 0:29 / /sys/fs/cgroup/memory", "33 30 0:29 /docker/x /sys/fs/cgroup/memory");
        assert!(managed_hierarchies(&inside).unwrap().is_empty());
    }

    /// On a cgroup v1 host, as root: entries made in every hierarchy, one renamed to a
    /// container's id, a rename onto an existing cgroup refused without losing
    /// anything but the entry, and nothing left after `close`.
    #[test]
    fn entries_are_made_renamed_and_removed() {
        let parent = format!("berth-pool-test-{}", std::process::id());
        // An entry of a daemon that is gone (no such pid) is removed at open.
        if let Ok(text) = std::fs::read_to_string("/proc/self/mountinfo") {
            for h in managed_hierarchies(&text).unwrap_or_default() {
                let _ = std::fs::create_dir_all(h.join(&parent).join(".pool-2147483646-1"));
            }
        }
        let pool = match CgroupPool::open(&parent, 2) {
            Ok(Some(p)) => p,
            Ok(None) | Err(_) => {
                eprintln!("skipped: not root on a cgroup v1 host");
                return;
            }
        };
        let me = format!(".pool-{}-", std::process::id());
        let e = |n: u32| format!("{me}{n}");
        let names = |p: &Path| -> Vec<String> {
            let mut v: Vec<String> = std::fs::read_dir(p)
                .unwrap()
                .flatten()
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect();
            v.sort();
            v
        };
        for p in pool.parents() {
            assert!(names(p).is_empty(), "{}: {:?}", p.display(), names(p));
        }
        pool.fill();
        assert_eq!(pool.ready(), 2);
        for p in pool.parents() {
            assert_eq!(names(p), [e(1), e(2)], "{}", p.display());
        }
        assert!(pool.take("c1"));
        pool.fill();
        for p in pool.parents() {
            assert_eq!(names(p), [e(1), e(3), "c1".into()], "{}", p.display());
        }
        // A cgroup of that name exists: the entry goes, the existing cgroup stays.
        assert!(!pool.take("c1"));
        assert_eq!(pool.ready(), 1);
        for p in pool.parents() {
            assert_eq!(names(p), [e(1), "c1".into()], "{}", p.display());
        }
        assert!(!pool.take("../x") && !pool.take(&e(1)));
        pool.close();
        pool.fill();
        for p in pool.parents() {
            assert_eq!(names(p), ["c1"], "{}", p.display());
            std::fs::remove_dir(p.join("c1")).unwrap();
            std::fs::remove_dir(p).unwrap();
        }
    }

    #[test]
    fn an_entry_names_its_owner() {
        assert_eq!(owner(".pool-4242-7"), Some(4242));
        assert_eq!(owner(".pool-x-7"), None);
        assert_eq!(owner("4242"), None);
        assert!(alive(std::process::id()));
    }
}
