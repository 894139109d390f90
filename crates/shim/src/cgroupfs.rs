//! A container's `/sys/fs/cgroup` on a cgroup v1 host, made by the shim as one tree
//! that the runtime mounts with a single recursive bind.
//!
//! On v1, libcontainer mounts a tmpfs at `/sys/fs/cgroup` and bind-mounts each
//! hierarchy's directory of the container's cgroup into it, one mount at a time, each
//! through its path-safety checks (pathrs resolution, procfs re-verification): with the
//! ten hierarchies of a usual host that was ~40 % of the init process's work before
//! `pivot_root`. The shim makes the same tree in the host's mount namespace with plain
//! mount calls — nothing in it comes from the container's root filesystem, so there is
//! no path inside the container to check — hands the runtime a bind of it in place of
//! the `cgroup` mount, and detaches it once the runtime has cloned it into the
//! container.
//!
//! The tree is what libcontainer would mount: the tmpfs (`noexec,nosuid,nodev,
//! mode=755`); for each v1 hierarchy mounted at `/sys/fs/cgroup/NAME`, a bind of the
//! directory the container's init is in — the container's cgroup for the
//! controllers libcontainer manages, the shim's own cgroup for the others (a named
//! `systemd` hierarchy) — and the symlinks of co-mounted controllers (`cpu` →
//! `cpu,cpuacct`). Only for the spec that asks for it read-only (every container but a
//! `--privileged` one): the tree is made read-only before the runtime sees it, so
//! nothing can write through the host's copy in the moment it exists, and the
//! runtime's recursive bind copies each mount's flags: the container's copy is
//! read-only as it appears (the init process remounts nothing, see `confine`). Not used with a
//! cgroup or user namespace of the container's own, nor on a cgroup v2 host: those
//! keep libcontainer's own mounts.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use serde_json::Value;

use crate::confine::{cgroup_mount_index, read_only, CGROUP_ROOT};

use berth_shim_proto::MANAGED_CONTROLLERS as MANAGED;

/// One hierarchy's entry in the tree.
#[derive(Debug, PartialEq)]
struct Entry {
    /// The directory name under `/sys/fs/cgroup` (`memory`, `cpu,cpuacct`, `systemd`).
    name: String,
    /// The host directory bound there.
    source: PathBuf,
    /// The container's own cgroup (made here if missing; libcontainer fills it in).
    own: bool,
}

/// The tree's entries from the host's mount table and cgroup files, or None when the
/// host is not cgroup v1 the way the tree assumes (every hierarchy mounted at its root
/// and the host's init in each root cgroup — as on a host, not inside a container).
fn plan(mountinfo: &str, own_cgroup: &str, pid1_cgroup: &str, cgroups_path: &str) -> Option<Vec<Entry>> {
    let rel = cgroups_path.trim_start_matches('/');
    if rel.is_empty() || rel.split('/').any(|c| c == ".." || c == ".") {
        return None;
    }
    if pid1_cgroup.lines().any(|l| l.splitn(3, ':').nth(2).is_some_and(|p| p != "/")) {
        return None;
    }
    let shim: HashMap<&str, &str> = own_cgroup
        .lines()
        .filter_map(|l| {
            let mut f = l.splitn(3, ':');
            let (_, ctrl, path) = (f.next()?, f.next()?, f.next()?);
            Some((ctrl, path))
        })
        .collect();
    let mut root_is_tmpfs = false;
    let mut entries = Vec::new();
    for line in mountinfo.lines() {
        let f: Vec<&str> = line.split(' ').collect();
        let Some(sep) = f.iter().position(|x| *x == "-") else { continue };
        let (Some(root), Some(mp), Some(fstype)) = (f.get(3), f.get(4), f.get(sep + 1)) else { continue };
        if *mp == CGROUP_ROOT {
            root_is_tmpfs = *fstype == "tmpfs";
            continue;
        }
        let Some(name) = mp.strip_prefix("/sys/fs/cgroup/") else { continue };
        if *fstype != "cgroup" || name.contains('/') || name.contains('\\') {
            continue;
        }
        if *root != "/" {
            return None;
        }
        let own = name.split(',').any(|c| MANAGED.contains(&c));
        let path = if own {
            rel.to_owned()
        } else {
            let key = if name == "systemd" { "name=systemd".to_owned() } else { name.to_owned() };
            // libcontainer skips a hierarchy it cannot place the init in.
            let Some(p) = shim.get(key.as_str()) else { continue };
            p.trim_start_matches('/').to_owned()
        };
        let source = if path.is_empty() { PathBuf::from(mp) } else { Path::new(mp).join(&path) };
        entries.push(Entry { name: name.to_owned(), source, own });
    }
    (root_is_tmpfs && !entries.is_empty()).then_some(entries)
}

/// The spec's `/sys/fs/cgroup` mount, if the tree can stand in for it.
fn cgroup_mount(spec: &Value) -> Option<usize> {
    let ns = spec["linux"]["namespaces"].as_array()?;
    if ns.iter().any(|n| n["type"] == "cgroup" || n["type"] == "user") {
        return None;
    }
    let i = cgroup_mount_index(spec)?;
    let m = &spec["mounts"][i];
    (m["type"] == "cgroup" && read_only(m)).then_some(i)
}

/// The tree, mounted at `<state>/cgroupfs` until dropped.
pub struct Tree {
    dir: PathBuf,
    /// The container's own cgroup in each hierarchy libcontainer manages: where its
    /// init goes (see `direct`).
    own: Vec<Hierarchy>,
}

/// The container's cgroup in one v1 hierarchy.
#[derive(Debug, Clone, PartialEq)]
pub struct Hierarchy {
    /// Where the hierarchy is mounted (`/sys/fs/cgroup/cpuset`).
    pub mount: PathBuf,
    /// The container's cgroup in it (`/sys/fs/cgroup/cpuset/berth/<id>`).
    pub cgroup: PathBuf,
}

impl Tree {
    /// The container's cgroup in every hierarchy whose controllers libcontainer
    /// manages: the cgroups libcontainer's v1 manager would put the init in.
    pub fn own_cgroups(&self) -> &[Hierarchy] {
        &self.own
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        detach(&self.dir);
    }
}

/// Detach whatever is mounted at `dir` (a tree a crashed shim left too) and remove it.
fn detach(dir: &Path) {
    while umount2(dir, MntFlags::MNT_DETACH).is_ok() {}
    let _ = fs::remove_dir(dir);
}

/// Make the tree for the spec and point the spec's `/sys/fs/cgroup` mount at it. None
/// (the spec untouched) when the tree does not apply or could not be made — then the
/// runtime mounts the hierarchies itself, as it always did.
pub fn prepare(spec: &mut Value, state_dir: &Path) -> Option<Tree> {
    let i = cgroup_mount(spec)?;
    let cgroups_path = spec["linux"]["cgroupsPath"].as_str()?;
    let read = |p: &str| berth_shim_proto::read_proc(p).ok();
    let entries = plan(&read("/proc/self/mountinfo")?, &read("/proc/self/cgroup")?, &read("/proc/1/cgroup")?, cgroups_path)?;
    let dir = state_dir.join(berth_shim_proto::CGROUPFS_DIR);
    detach(&dir);
    let own = entries
        .iter()
        .filter(|e| e.own)
        .map(|e| Hierarchy { mount: Path::new(CGROUP_ROOT).join(&e.name), cgroup: e.source.clone() })
        .collect();
    let tree = Tree { dir, own };
    if let Err(e) = build(&tree.dir, &entries) {
        eprintln!("berth-shim: cgroup tree: {e:#}; the runtime mounts the hierarchies itself");
        return None;
    }
    let m = &mut spec["mounts"][i];
    m["type"] = "bind".into();
    m["source"] = tree.dir.to_string_lossy().into_owned().into();
    m["options"] = serde_json::json!(["rbind", "nosuid", "noexec", "nodev"]);
    Some(tree)
}

fn build(dir: &Path, entries: &[Entry]) -> Result<()> {
    let base = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    mount(Some("tmpfs"), dir, Some("tmpfs"), base, Some("mode=755")).context("mount the tmpfs")?;
    // Nothing of the tree propagates anywhere (the host's root may be shared).
    mount(None::<&str>, dir, None::<&str>, MsFlags::MS_PRIVATE, None::<&str>).context("make it private")?;
    for e in entries {
        let target = dir.join(&e.name);
        fs::create_dir(&target).with_context(|| format!("create {}", target.display()))?;
        if e.own {
            fs::create_dir_all(&e.source).with_context(|| format!("create the cgroup {}", e.source.display()))?;
        }
        mount(Some(&e.source), &target, None::<&str>, MsFlags::MS_BIND | MsFlags::MS_REC, None::<&str>)
            .with_context(|| format!("bind {}", e.source.display()))?;
        // Co-mounted controllers get a link per controller, as libcontainer makes them.
        if e.name.contains(',') {
            for c in e.name.split_terminator(',') {
                let _ = std::os::unix::fs::symlink(&e.name, dir.join(c));
            }
        }
    }
    // Read-only (and nosuid, nodev, noexec) all at once, or mount by mount on a kernel
    // without mount_setattr (before 5.12).
    if !set_attrs_recursive(dir) {
        let ro = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | base;
        for e in entries {
            let target = dir.join(&e.name);
            mount(None::<&str>, &target, None::<&str>, ro, None::<&str>)
                .with_context(|| format!("remount {} read-only", target.display()))?;
        }
        mount(None::<&str>, dir, None::<&str>, ro, None::<&str>).context("remount the tmpfs read-only")?;
    }
    Ok(())
}

/// `mount_setattr(dir, AT_RECURSIVE)`: read-only, nosuid, nodev and noexec on the
/// tree's every mount in one call. False if the kernel lacks it.
fn set_attrs_recursive(dir: &Path) -> bool {
    use berth_userns::{MountAttr, MOUNT_ATTR_NODEV, MOUNT_ATTR_NOEXEC, MOUNT_ATTR_NOSUID, MOUNT_ATTR_RDONLY};
    use std::os::unix::ffi::OsStrExt;
    let Ok(path) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else { return false };
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    berth_userns::mount_setattr(libc::AT_FDCWD, &path, libc::AT_RECURSIVE as libc::c_uint, &attr).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const INFO: &str = "\
24 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
30 24 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec shared:4 - tmpfs tmpfs rw,mode=755
31 30 0:27 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec shared:5 - cgroup2 cgroup2 rw
32 30 0:28 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec shared:6 - cgroup cgroup rw,xattr,name=systemd
33 30 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec shared:7 - cgroup cgroup rw,cpu,cpuacct
34 30 0:30 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec shared:8 - cgroup cgroup rw,memory
35 30 0:31 / /sys/fs/cgroup/rdma rw,nosuid,nodev,noexec shared:9 - cgroup cgroup rw,rdma
";
    const OWN: &str = "5:rdma:/\n4:memory:/system.slice/berthd.service\n3:cpu,cpuacct:/system.slice/berthd.service\n2:name=systemd:/system.slice/berthd.service\n0::/system.slice/berthd.service\n";
    const PID1: &str = "5:rdma:/\n4:memory:/\n3:cpu,cpuacct:/\n2:name=systemd:/\n0::/\n";

    #[test]
    fn binds_the_containers_cgroup_where_libcontainer_puts_the_init_and_the_shims_elsewhere() {
        let p = plan(INFO, OWN, PID1, "/berth/abc").unwrap();
        let e = |name: &str, source: &str, own: bool| Entry { name: name.into(), source: source.into(), own };
        assert_eq!(
            p,
            [
                e("systemd", "/sys/fs/cgroup/systemd/system.slice/berthd.service", false),
                e("cpu,cpuacct", "/sys/fs/cgroup/cpu,cpuacct/berth/abc", true),
                e("memory", "/sys/fs/cgroup/memory/berth/abc", true),
                e("rdma", "/sys/fs/cgroup/rdma", false),
            ]
        );
    }

    #[test]
    fn stays_out_of_the_way_where_its_assumptions_do_not_hold() {
        // cgroup v2 only
        assert!(plan("30 24 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n", OWN, PID1, "/berth/abc").is_none());
        // inside a container: the host's init is not in the root cgroups
        assert!(plan(INFO, OWN, "4:memory:/docker/x\n", "/berth/abc").is_none());
        // a hierarchy mounted from below its root
        let nested = INFO.replace("0:30 / /sys/fs/cgroup/memory", "0:30 /docker /sys/fs/cgroup/memory");
        assert!(plan(&nested, OWN, PID1, "/berth/abc").is_none());
        assert!(plan(INFO, OWN, PID1, "/berth/../x").is_none());
        assert!(plan(INFO, OWN, PID1, "").is_none());
    }

    #[test]
    fn only_a_read_only_cgroup_mount_without_own_cgroup_or_user_namespace() {
        let spec = |opts: &[&str], ns: &[&str]| {
            serde_json::json!({
                "mounts": [{"destination": "/proc", "type": "proc"}, {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": opts}],
                "linux": {"namespaces": ns.iter().map(|t| serde_json::json!({"type": t})).collect::<Vec<_>>()}
            })
        };
        assert_eq!(cgroup_mount(&spec(&["ro", "nosuid"], &["mount", "pid"])), Some(1));
        assert_eq!(cgroup_mount(&spec(&["nosuid"], &["mount", "pid"])), None, "--privileged: writable");
        assert_eq!(cgroup_mount(&spec(&["ro"], &["mount", "cgroup"])), None);
        assert_eq!(cgroup_mount(&spec(&["ro"], &["mount", "user"])), None);
    }
}
