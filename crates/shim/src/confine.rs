//! What a container's init process does to itself after libcontainer has set it up and
//! before the start signal: make the cgroup mounts read-only, load the compiled
//! seccomp filter, drop the capabilities it held only for that.
//!
//! **Read-only cgroups.** Docker gives an unprivileged container its cgroup directories
//! read-only, so it cannot raise its own limits (or, where the hierarchy root shows,
//! write `release_agent`: CVE-2022-0492). On cgroup v1 libcontainer mounts a tmpfs at
//! `/sys/fs/cgroup` and bind-mounts each hierarchy into it read-write whatever the
//! spec's mount options say; runc remounts them read-only afterwards. The init process
//! does that here: every mount at or below `/sys/fs/cgroup` is remounted
//! `MS_BIND|MS_REMOUNT|MS_RDONLY`, keeping its other per-mount flags. The spec's
//! `/sys/fs/cgroup` mount carrying `ro` (everything but `--privileged` and
//! `writable-cgroups=true`) is what asks for it. Remounting needs `CAP_SYS_ADMIN`, which
//! the init process holds only until then (the seccomp loader capabilities, added for
//! this alone when there is no filter).

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs;
use std::os::fd::{AsFd, AsRawFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use libcontainer::oci_spec::runtime::Spec;
use libcontainer::workload::{Executor, ExecutorError, ExecutorSetEnvsError, ExecutorValidationError};
use serde_json::Value;

use berth_shim_proto as proto;

use crate::seccomp::{self, Filter};

pub(crate) const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// The bundle as libcontainer gets it, and what the init process must do itself.
pub struct Prepared {
    /// The bundle directory to hand libcontainer.
    pub bundle: PathBuf,
    pub filter: Option<Filter>,
    /// Remount the cgroup mounts read-only, then drop these capabilities (empty when
    /// the filter's loader capabilities cover it).
    pub ro_cgroups: Option<Vec<String>>,
    /// `--oom-kill-disable`: the cgroup v1 `memory.oom_control` to write once the
    /// container's cgroup exists (libcontainer 0.7 never sets it).
    pub oom_control: Option<PathBuf>,
    /// Where the container cgroup's OOM kill count is read at exit (v1
    /// `memory.oom_control`, v2 `memory.events`: an `oom_kill N` line).
    pub oom_events: Option<PathBuf>,
    /// The container's cgroup, when the shim may delete the container itself at exit
    /// (see [`quick_delete`]).
    pub quick_delete: Option<String>,
    /// The cgroup v1 tree the runtime binds at `/sys/fs/cgroup`: to drop once the
    /// container is created.
    pub cgroup_tree: Option<crate::cgroupfs::Tree>,
    /// The spec has `poststart` hooks (libcontainer's `start` runs them).
    pub poststart: bool,
}

/// The spec's cgroup, if deleting the container needs nothing but removing its
/// libcontainer state and its cgroup: it has a PID namespace of its own (the kernel
/// killed all of its processes with the init) and no `poststop` hooks.
fn quick_delete_cgroup(spec: &Value) -> Option<String> {
    let own_pid_ns = spec["linux"]["namespaces"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|n| n["type"] == "pid" && n["path"].as_str().is_none_or(str::is_empty));
    (own_pid_ns && !has_hooks(spec, "poststop")).then(|| spec["linux"]["cgroupsPath"].as_str().map(str::to_owned)).flatten()
}

/// Does the spec have hooks of `phase` (`poststart`, `poststop`)?
fn has_hooks(spec: &Value, phase: &str) -> bool {
    spec["hooks"][phase].as_array().is_some_and(|h| !h.is_empty())
}

/// Delete an exited container without libcontainer: its state directory, and its
/// cgroup in every hierarchy. libcontainer's `delete` builds a cgroup manager, which
/// parses the host's mount table once per v1 controller: with a hundred containers
/// running that was most of what removing one cost. False if a cgroup would not go
/// (a process left in it, after ~30 ms): then libcontainer's `delete`, which kills it,
/// is needed.
pub fn quick_delete(state: &Path, cgroup: &str) -> bool {
    let _ = fs::remove_dir_all(state);
    berth_shim_proto::remove_cgroup(cgroup, std::time::Duration::from_millis(30))
}

/// The file holding the OOM kill count of the spec's cgroup.
fn oom_events(spec: &Value) -> Option<PathBuf> {
    let cg = spec["linux"]["cgroupsPath"].as_str()?.trim_start_matches('/');
    let root = Path::new(CGROUP_ROOT);
    if root.join("cgroup.controllers").exists() && !root.join("memory").exists() {
        Some(root.join(cg).join("memory.events"))
    } else {
        Some(root.join("memory").join(cg).join("memory.oom_control"))
    }
}

/// The number of processes the OOM killer took in the cgroup (0 when unknown). Read
/// between the container's exit and its report: one `read`
/// ([`berth_shim_proto::read_proc`]), not a `stat` and three 32-byte probes.
pub fn oom_kills(path: &Path) -> u64 {
    berth_shim_proto::read_proc(path)
        .ok()
        .and_then(|s| s.lines().find_map(|l| l.strip_prefix("oom_kill ").and_then(|n| n.trim().parse().ok())))
        .unwrap_or(0)
}

/// The v1 `memory.oom_control` of the spec's cgroup when the spec disables the OOM
/// killer.
fn oom_control(spec: &Value) -> Option<PathBuf> {
    if spec["linux"]["resources"]["memory"]["disableOOMKiller"] != Value::Bool(true) {
        return None;
    }
    let cg = spec["linux"]["cgroupsPath"].as_str()?.trim_start_matches('/');
    Some(Path::new(CGROUP_ROOT).join("memory").join(cg).join("memory.oom_control"))
}

/// Disable the OOM killer for the container's cgroup (after it was created, before
/// the container starts).
pub fn disable_oom_killer(path: &Path) -> Result<()> {
    fs::write(path, "1").with_context(|| format!("disable the OOM killer: write {}", path.display()))
}

/// Does the spec ask for a read-only `/sys/fs/cgroup`?
fn wants_ro_cgroups(spec: &Value) -> bool {
    cgroup_mount_index(spec).is_some_and(|i| read_only(&spec["mounts"][i]))
}

/// Where the spec's `/sys/fs/cgroup` mount is in its mount list.
pub(crate) fn cgroup_mount_index(spec: &Value) -> Option<usize> {
    spec["mounts"].as_array()?.iter().position(|m| m["destination"].as_str().map(|d| d.trim_end_matches('/')) == Some(CGROUP_ROOT))
}

/// Does the spec mount carry the `ro` option?
pub(crate) fn read_only(m: &Value) -> bool {
    m["options"].as_array().into_iter().flatten().any(|o| o == "ro")
}

/// Rewrite the bundle's `config.json` for libcontainer: the seccomp profile compiled
/// and taken out, loader capabilities added where the init process needs them.
pub fn prepare_bundle(bundle: &Path, state_dir: &Path, cache: &Path) -> Result<Prepared> {
    let raw = fs::read(bundle.join("config.json")).context("read config.json")?;
    let mut spec: Value = serde_json::from_slice(&raw).context("parse config.json")?;
    clear_dev_links(&spec)?;
    // Leave the other containers' mounts out of this shim's (and so the container's)
    // mount namespace before anything is mounted for this one.
    if let Some(exec_root) = state_dir.parent().and_then(Path::parent) {
        proto::islands::prune(exec_root, &spec_paths(&spec, bundle))
            .context("leave the other containers' mounts out of the shim's mount namespace")?;
    }
    let filter = seccomp::take_profile(&mut spec, cache)?;
    let oom_control = oom_control(&spec);
    let oom_events = oom_events(&spec);
    let quick_delete = quick_delete_cgroup(&spec);
    let wants_ro = wants_ro_cgroups(&spec);
    let cgroup_tree = crate::cgroupfs::prepare(&mut spec, state_dir);
    // The tree is read-only, every mount of it, before the runtime binds it into the
    // container, and a bind copies that: the init has nothing to remount (reading its
    // mountinfo and remounting each hierarchy was ~0.25 ms of CPU per container).
    let ro_cgroups = (wants_ro && cgroup_tree.is_none()).then(|| match &filter {
        Some(_) => Vec::new(),
        None => seccomp::add_loader_caps(&mut spec["process"]),
    });
    let poststart = has_hooks(&spec, "poststart");
    if filter.is_none() && ro_cgroups.as_ref().is_none_or(|d| d.is_empty()) && cgroup_tree.is_none() {
        return Ok(Prepared { bundle: bundle.to_owned(), filter, ro_cgroups, oom_control, oom_events, quick_delete, cgroup_tree, poststart });
    }
    let dir = state_dir.join("runtime-bundle");
    fs::create_dir_all(&dir)?;
    fs::write(dir.join("config.json"), serde_json::to_vec(&spec)?)?;
    Ok(Prepared { bundle: dir, filter, ro_cgroups, oom_control, oom_events, quick_delete, cgroup_tree, poststart })
}

/// The host paths a spec names: its root, namespace paths, mount sources.
fn spec_paths(spec: &Value, bundle: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Some(r) = spec["root"]["path"].as_str() {
        out.push(bundle.join(r));
    }
    let namespaces = spec["linux"]["namespaces"].as_array().into_iter().flatten().filter_map(|n| n["path"].as_str());
    let sources = spec["mounts"].as_array().into_iter().flatten().filter_map(|m| m["source"].as_str());
    out.extend(namespaces.chain(sources).filter(|p| p.starts_with('/')).map(PathBuf::from));
    out
}

/// The symlinks and device nodes libcontainer makes in every container's /dev (and
/// fails on if they exist); the spec's own devices come on top.
const DEV_ENTRIES: [&str; 11] = ["fd", "stdin", "stdout", "stderr", "kcore", "null", "zero", "full", "tty", "random", "urandom"];

/// A volume or bind mount at `/dev` keeps what the last container's runtime made in
/// it, and libcontainer fails on what exists ("failed to symlink defaults", "failed
/// to mknod device": EEXIST) where runc keeps it, so a `/dev` volume could be used
/// once. Before each start, the default links and the spec's device nodes that are
/// in the way are removed — only symlinks and device nodes, resolved inside the
/// mount's source directory without following the last link — and the runtime makes
/// them afresh (a link left there by a container is never followed: removing it is
/// what keeps it from redirecting the runtime).
fn clear_dev_links(spec: &Value) -> Result<()> {
    let Some(src) = spec["mounts"].as_array().into_iter().flatten().find_map(|m| {
        let bind = m["type"] == "bind" || m["options"].as_array().is_some_and(|o| o.iter().any(|o| o == "bind" || o == "rbind"));
        (bind && m["destination"].as_str().map(|d| d.trim_end_matches('/')) == Some("/dev")).then(|| m["source"].as_str()).flatten()
    }) else {
        return Ok(());
    };
    let devices = spec["linux"]["devices"].as_array().into_iter().flatten().filter_map(|d| d["path"].as_str());
    let names: Vec<String> = DEV_ENTRIES
        .iter()
        .map(|n| n.to_string())
        .chain(devices.filter_map(|p| p.strip_prefix("/dev/")).map(str::to_owned))
        .collect();
    // pathrs resolves every name inside the source directory (a link never leads out).
    let root = pathrs::Root::open(src).with_context(|| format!("open the /dev mount's source {src}"))?;
    for name in &names {
        let Ok(h) = root.resolve_nofollow(name) else { continue };
        if in_the_way(&h) {
            root.remove_file(name).with_context(|| format!("remove {src}/{name}"))?;
        }
    }
    Ok(())
}

/// Is the entry a symlink or a device node (what the runtime makes itself)?
fn in_the_way(h: &pathrs::Handle) -> bool {
    use nix::sys::stat::{fstat, SFlag};
    fstat(h.as_fd().as_raw_fd()).is_ok_and(|st| {
        let kind = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT;
        kind == SFlag::S_IFLNK || kind == SFlag::S_IFCHR || kind == SFlag::S_IFBLK
    })
}

/// Mount points at or below `root` in a `/proc/self/mountinfo` text.
fn mounts_under(mountinfo: &str, root: &str) -> Vec<String> {
    mountinfo
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(unescape)
        .filter(|p| p == root || p.starts_with(&format!("{root}/")))
        .collect()
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

/// Remount every mount at or below `/sys/fs/cgroup` read-only, nosuid, nodev, noexec
/// (per mount point, keeping its atime flags).
pub fn remount_cgroups_ro() -> Result<()> {
    use nix::mount::{mount, MsFlags};
    use nix::sys::statvfs::{statvfs, FsFlags};
    let info = berth_shim_proto::read_proc("/proc/self/mountinfo").context("read /proc/self/mountinfo")?;
    for mp in mounts_under(&info, CGROUP_ROOT) {
        let st = statvfs(mp.as_str()).with_context(|| format!("statvfs {mp}"))?;
        let f = st.flags();
        // nosuid, nodev and noexec as runc mounts them; the atime flags as they are.
        let mut flags = MsFlags::MS_BIND
            | MsFlags::MS_REMOUNT
            | MsFlags::MS_RDONLY
            | MsFlags::MS_NOSUID
            | MsFlags::MS_NODEV
            | MsFlags::MS_NOEXEC;
        for (have, keep) in [
            (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
            (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
            (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
        ] {
            if f.contains(have) {
                flags |= keep;
            }
        }
        mount(None::<&str>, mp.as_str(), None::<&str>, flags, None::<&str>)
            .with_context(|| format!("remount {mp} read-only"))?;
    }
    Ok(())
}

/// Give the process the signal state a fresh process has: every ignored signal back to
/// its default action and nothing blocked. Ignored dispositions and the mask survive
/// `exec`, and the shim's own (Rust ignores SIGPIPE; a daemon started under `nohup`
/// ignores SIGHUP) must not reach the container: `yes | head` would spin forever.
pub fn reset_signals() {
    // The kernel's sigaction (glibc's wrapper refuses its own internal signals 32
    // and 33, which it ignores in every process and which must not stay ignored either).
    #[repr(C)]
    struct KernelSigaction {
        handler: usize,
        flags: u64,
        restorer: usize,
        mask: u64,
    }
    for sig in 1..=64 {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // SAFETY: rt_sigaction with kernel-layout structs; only SIG_IGN becomes SIG_DFL.
        unsafe {
            let mut old = KernelSigaction { handler: 0, flags: 0, restorer: 0, mask: 0 };
            let rc = libc::syscall(libc::SYS_rt_sigaction, sig, std::ptr::null::<KernelSigaction>(), &mut old, 8usize);
            if rc == 0 && old.handler == libc::SIG_IGN {
                let new = KernelSigaction { handler: libc::SIG_DFL, flags: 0, restorer: 0, mask: 0 };
                libc::syscall(libc::SYS_rt_sigaction, sig, &new, std::ptr::null_mut::<KernelSigaction>(), 8usize);
            }
        }
    }
    // SAFETY: an empty set, applied to this (single-threaded) process.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
    }
}

/// An executor that confines the init process (read-only cgroups, the compiled seccomp
/// filter) before the start signal, then runs `inner`.
#[derive(Clone)]
pub struct Confined {
    inner: Box<dyn Executor>,
    filter: Option<Arc<Filter>>,
    ro_cgroups: Option<Vec<String>>,
}

impl Confined {
    pub fn new(inner: Box<dyn Executor>, filter: Option<Filter>, ro_cgroups: Option<Vec<String>>) -> Confined {
        Confined { inner, filter: filter.map(Arc::new), ro_cgroups }
    }
}

impl Executor for Confined {
    fn exec(&self, spec: &Spec) -> Result<(), ExecutorError> {
        // Started: the container's process outlives its shim, as before the start it
        // would not (see `direct::init`). A seccomp profile that denies prctl leaves it
        // set: the process then ends if its shim is killed.
        // SAFETY: prctl with integer arguments only.
        unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, 0, 0, 0, 0) };
        if let Some(env) = spec.process().as_ref().and_then(|p| p.env().as_ref()) {
            env_in_order(env);
        }
        self.inner.exec(spec)
    }

    fn validate(&self, spec: &Spec) -> Result<(), ExecutorValidationError> {
        self.inner.validate(spec)
    }

    fn setup_envs(&self, envs: HashMap<String, String>) -> Result<(), ExecutorSetEnvsError> {
        self.inner.setup_envs(envs)?;
        reset_signals();
        let err = |what: &str, e: anyhow::Error| ExecutorSetEnvsError::Other(format!("{what}: {e:#}"));
        if let Some(drop) = &self.ro_cgroups {
            remount_cgroups_ro().map_err(|e| err("cgroup mounts", e))?;
            seccomp::drop_caps(drop).map_err(|e| err("capabilities", e))?;
        }
        if let Some(f) = &self.filter {
            seccomp::apply(f).map_err(|e| err("seccomp", e))?;
        }
        Ok(())
    }
}

/// libcontainer hands the spec's environment to `setup_envs` as a map, so the process
/// would list it in no order: put it back in the spec's (runc's and dockerd's: `PATH`,
/// `HOSTNAME`, then the container's own variables in their order), with what
/// libcontainer added that the spec lacks (a `HOME` from the user's entry) after it.
fn env_in_order(env: &[String]) {
    let now: Vec<(OsString, OsString)> = std::env::vars_os().collect();
    // SAFETY (each `*_var` below): the container's init, one thread, before its exec.
    for (k, _) in &now {
        unsafe { std::env::remove_var(k) };
    }
    for (k, v) in ordered_env(env, now) {
        unsafe { std::env::set_var(k, v) };
    }
}

/// The variables of `env` (`KEY=VALUE`, in order; a later one replaces an earlier one
/// in its place), then those of `now` that `env` does not name.
fn ordered_env(env: &[String], now: Vec<(OsString, OsString)>) -> Vec<(OsString, OsString)> {
    let mut out: Vec<(OsString, OsString)> = Vec::new();
    for e in env {
        if let Some((k, v)) = e.split_once('=').filter(|(k, _)| !k.is_empty()) {
            match out.iter_mut().find(|(x, _)| x == k) {
                Some(slot) => slot.1 = v.into(),
                None => out.push((k.into(), v.into())),
            }
        }
    }
    for (k, v) in now {
        if !out.iter().any(|(x, _)| *x == k) {
            out.push((k, v));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_environment_is_put_in_the_specs_order() {
        let os = |k: &str, v: &str| (OsString::from(k), OsString::from(v));
        let now = vec![os("B", "2"), os("HOME", "/root"), os("PATH", "/bin"), os("A", "1")];
        let spec: Vec<String> = ["PATH=/bin", "A=0", "B=2", "NOVALUE", "A=1"].map(String::from).to_vec();
        assert_eq!(ordered_env(&spec, now), [os("PATH", "/bin"), os("A", "1"), os("B", "2"), os("HOME", "/root")]);
    }

    #[test]
    fn quick_delete_only_with_an_own_pid_namespace_and_no_poststop_hooks() {
        let spec = |ns: Value, hooks: Value| serde_json::json!({"linux": {"cgroupsPath": "/berth/x", "namespaces": ns}, "hooks": hooks});
        let own = serde_json::json!([{"type": "mount"}, {"type": "pid"}]);
        assert_eq!(quick_delete_cgroup(&spec(own.clone(), Value::Null)).as_deref(), Some("/berth/x"));
        // --pid host: processes outlive the init, libcontainer's delete kills them
        assert_eq!(quick_delete_cgroup(&spec(serde_json::json!([{"type": "mount"}]), Value::Null)), None);
        // --pid container:other
        assert_eq!(quick_delete_cgroup(&spec(serde_json::json!([{"type": "pid", "path": "/proc/9/ns/pid"}]), Value::Null)), None);
        assert_eq!(quick_delete_cgroup(&spec(own, serde_json::json!({"poststop": [{"path": "/bin/true"}]}))), None);
    }

    const INFO: &str = "\
79 78 0:48 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime - tmpfs tmpfs rw,mode=755
80 79 0:29 /berth/x /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
88 79 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
90 78 0:50 / /sys/fs/cgroupx rw - tmpfs tmpfs rw
91 78 0:51 / /mnt/a\\040b rw - tmpfs tmpfs rw
";

    #[test]
    fn finds_every_cgroup_mount_and_nothing_else() {
        assert_eq!(
            mounts_under(INFO, CGROUP_ROOT),
            ["/sys/fs/cgroup", "/sys/fs/cgroup/cpu", "/sys/fs/cgroup/systemd"]
        );
        assert_eq!(mounts_under(INFO, "/mnt/a b"), ["/mnt/a b"]);
    }

    #[test]
    fn ro_cgroups_follow_the_spec_and_add_loader_caps_without_a_filter() {
        let dir = tempfile::tempdir().unwrap();
        let caps = serde_json::json!({"bounding": ["CAP_CHOWN"], "effective": ["CAP_CHOWN"], "permitted": ["CAP_CHOWN"]});
        let spec = |opts: &[&str]| {
            serde_json::json!({
                "process": {"capabilities": caps.clone()},
                "mounts": [{"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": opts}],
                "linux": {}
            })
        };
        fs::write(dir.path().join("config.json"), spec(&["nosuid", "ro"]).to_string()).unwrap();
        let p = prepare_bundle(dir.path(), dir.path(), &dir.path().join("cache")).unwrap();
        assert!(p.filter.is_none());
        assert_eq!(p.ro_cgroups.as_deref(), Some(&["CAP_SYS_ADMIN".to_string(), "CAP_SETPCAP".to_string()][..]));
        let written: Value = serde_json::from_slice(&fs::read(p.bundle.join("config.json")).unwrap()).unwrap();
        assert!(written["process"]["capabilities"]["bounding"].as_array().unwrap().iter().any(|c| c == "CAP_SYS_ADMIN"));
        // Writable (privileged): nothing to do, the bundle is used as it is.
        let dir2 = tempfile::tempdir().unwrap();
        fs::write(dir2.path().join("config.json"), spec(&["nosuid"]).to_string()).unwrap();
        let p = prepare_bundle(dir2.path(), dir2.path(), &dir2.path().join("cache")).unwrap();
        assert!(p.ro_cgroups.is_none());
        assert_eq!(p.bundle, dir2.path());
    }
}
