//! Creating a container's init process without libcontainer's intermediate process.
//!
//! libcontainer makes an init container with three processes: the caller (the shim),
//! an intermediate process that joins the container's cgroups and unshares the PID
//! namespace, and the init, which the intermediate clones into that namespace. On a
//! cgroup v1 host the intermediate's cgroup manager looks up each of twelve
//! controllers' mount point in `/proc/self/mountinfo`, every lookup opened through
//! pathrs's checked procfs: with the process itself, ~2 ms of CPU per container, and
//! ~3 ms on the way of a container created without a warm sandbox (BENCHMARKS.md).
//!
//! The shim does the intermediate's part itself: it clones the init straight into a new
//! PID namespace, places it in the container's cgroups while the init waits, and the
//! init then runs libcontainer's own init process (`container_init_process`: the other
//! namespaces, mounts, `pivot_root`, capabilities, the executor). libcontainer's state
//! is saved as its builder saves it, so start, exec, kill, pause and delete go through
//! libcontainer as before. The cgroups: on a v1 host where the shim made the
//! container's `/sys/fs/cgroup` tree (`cgroupfs`) it knows each hierarchy's cgroup, and
//! for a container whose resources are device rules alone (the usual one) it writes the
//! pid and the rules libcontainer's v1 devices controller would write itself;
//! otherwise (`-m`, `--cpus`, a cgroup v2 host) it uses libcgroups' manager exactly as
//! the intermediate does, for the init's pid.
//!
//! The init makes the spec's leading mounts itself first ([`crate::mounts`]) and hands
//! libcontainer's init process a spec without them; when those were all of them, it
//! makes the rest of the root filesystem too ([`crate::rootfs`]) and libcontainer's
//! init process runs as for a process joining the container.
//!
//! A user or time namespace, a PID namespace that is not new, hooks, a seccomp profile
//! left to libcontainer and the rarer fields ([`eligible`]) keep libcontainer's builder.

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use anyhow::{bail, Context, Result};
use libcontainer::container::{Container, ContainerStatus};
use libcontainer::oci_spec::runtime::{
    LinuxDeviceCgroup, LinuxDeviceCgroupBuilder, LinuxDeviceType, LinuxNamespaceType, LinuxResources, Spec,
};
use libcontainer::process::args::{ContainerArgs, ContainerType};
use libcontainer::process::channel::{self, InitReceiver, InitSender, MainSender};
use libcontainer::syscall::syscall::SyscallType;
use libcontainer::workload::Executor;
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::waitpid;
use nix::unistd::Pid;

use crate::cgroupfs::Hierarchy;

/// Whether the shim can create this container itself (see the module's doc).
pub fn eligible(spec: &Spec) -> bool {
    let Some(linux) = spec.linux() else { return false };
    let Some(namespaces) = linux.namespaces() else { return false };
    let new_pid_ns = namespaces.iter().any(|n| n.typ() == LinuxNamespaceType::Pid && n.path().is_none());
    let other_ns_ok = namespaces.iter().all(|n| !matches!(n.typ(), LinuxNamespaceType::User | LinuxNamespaceType::Time));
    new_pid_ns
        && other_ns_ok
        && spec.process().is_some()
        && spec.root().is_some()
        && spec.hooks().is_none()
        && linux.seccomp().is_none()
        && linux.intel_rdt().is_none()
        && linux.net_devices().as_ref().is_none_or(|d| d.is_empty())
        && linux.memory_policy().is_none()
        && linux.personality().is_none()
        && linux.time_offsets().is_none()
        && linux.uid_mappings().is_none()
        && linux.gid_mappings().is_none()
}

/// Whether the cgroup resources are device rules alone, which the shim writes itself
/// on a v1 host; any other resource is applied by libcgroups' manager.
fn only_device_rules(resources: Option<&LinuxResources>) -> bool {
    resources.is_none_or(|r| {
        let mut rest = r.clone();
        rest.set_devices(None);
        rest == LinuxResources::default()
    })
}

/// How the init is placed in its cgroups.
enum Join<'a> {
    /// On a v1 host, into the container's cgroup of each hierarchy `cgroupfs` found, with
    /// the device rules libcontainer's v1 devices controller writes: by the shim.
    Hierarchies(&'a [Hierarchy], Option<Vec<LinuxDeviceCgroup>>),
    /// With libcgroups' manager (v2, or resources beyond device rules): what
    /// libcontainer's intermediate process does, for the init's pid.
    Manager(libcgroups::common::CgroupConfig),
}

/// The init's standard streams: pipes, or a pty that the init makes and sends over the
/// console socket.
pub enum Stdio {
    Pipes { stdin: OwnedFd, stdout: OwnedFd, stderr: OwnedFd },
    Console(PathBuf),
}

/// The bundle's spec, to check with [`eligible`].
pub fn load(bundle: &Path) -> Result<Spec> {
    Spec::load(bundle.join("config.json")).context("load the spec")
}

/// Create container `id` from `bundle` (whose `spec` is [`eligible`]) with its state under
/// `root`, as libcontainer's `ContainerBuilder::as_init(..).build()` would: the init is
/// waiting for the start signal when this returns. `hierarchies`: the container's v1
/// cgroups from the `cgroupfs` tree, when the shim made one.
pub fn create(
    id: &str,
    root: &Path,
    bundle: &Path,
    mut spec: Spec,
    stdio: Stdio,
    executor: Box<dyn Executor>,
    hierarchies: Option<&[Hierarchy]>,
) -> Result<Container> {
    if id.is_empty() || id == "." || id == ".." || id.contains('/') {
        bail!("invalid container id {id:?}");
    }
    if !spec.version().starts_with("1.") {
        bail!("runtime spec has incompatible version '{}': only 1.X.Y is supported", spec.version());
    }
    libcontainer::validator::Validator::validate_spec(&spec).context("invalid spec")?;
    spec.canonicalize_rootfs(bundle).context("canonicalize the rootfs")?;
    let dir = root.join(id);
    if dir.exists() {
        bail!("container {id} already exists");
    }
    fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
    let made = create_in(id, &dir, bundle, spec, stdio, executor, hierarchies);
    if made.is_err() {
        let _ = fs::remove_dir_all(&dir);
    }
    made
}

fn create_in(
    id: &str,
    dir: &Path,
    bundle: &Path,
    mut spec: Spec,
    stdio: Stdio,
    executor: Box<dyn Executor>,
    hierarchies: Option<&[Hierarchy]>,
) -> Result<Container> {
    let mut container = Container::new(id, ContainerStatus::Creating, None, bundle, dir)?;
    container.save()?;
    container.set_systemd(false).set_annotations(spec.annotations().clone());
    let (Some(linux), Some(process), Some(root)) = (spec.linux(), spec.process(), spec.root()) else {
        bail!("the spec has no linux, process or root section");
    };
    // Canonical already: `create` canonicalized it in the spec.
    let rootfs = root.path().clone();
    let (pipes, console) = match stdio {
        Stdio::Pipes { stdin, stdout, stderr } => (Some([stdin, stdout, stderr]), None),
        Stdio::Console(path) => {
            (None, Some(libcontainer::tty::setup_console_socket(dir, &path, "console-socket").context("console socket")?))
        }
    };
    libcontainer::config::YoukiConfig::from_spec(&spec, id)?.save(dir)?;
    let cgroup_config = libcgroups::common::CgroupConfig {
        cgroup_path: libcontainer::utils::get_cgroup_path(linux.cgroups_path(), id),
        systemd_cgroup: false,
        container_name: id.to_owned(),
    };
    let notify_listener = libcontainer::notify_socket::NotifyListener::new(&dir.join(libcontainer::notify_socket::NOTIFY_FILE))?;
    // What libcontainer's builder does to its own process, for the init to inherit.
    if let Some(adj) = process.oom_score_adj() {
        fs::write("/proc/self/oom_score_adj", adj.to_string()).context("set the OOM score")?;
    }
    // SAFETY: prctl(PR_SET_DUMPABLE) takes no pointers.
    if unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) } != 0 {
        return Err(std::io::Error::last_os_error()).context("set dumpable to false");
    }
    let join = match hierarchies {
        Some(h) if only_device_rules(linux.resources().as_ref()) => Join::Hierarchies(h, device_rules(linux.resources().as_ref())),
        _ => Join::Manager(cgroup_config.clone()),
    };
    let rlimits = process.rlimits().clone().unwrap_or_default();
    // The leading mounts the init makes itself; libcontainer gets the rest. With all of
    // them made, the init makes the rest of the root filesystem too, and libcontainer's
    // init process runs as for a process joining the container (`rootfs`).
    let mounts = crate::mounts::take(&mut spec, &rootfs);
    let finish = mounts.as_ref().and_then(|_| crate::rootfs::take(&mut spec, console.is_some()));
    let stdio = pipes.as_ref().map(|p| [p[0].as_raw_fd(), p[1].as_raw_fd(), p[2].as_raw_fd()]);
    // The init sets up its streams itself when it makes the root filesystem.
    let own = Own { stdio: stdio.filter(|_| finish.is_some()), mounts: mounts.as_ref(), finish: finish.as_ref() };
    let fd = |i: usize| stdio.filter(|_| finish.is_none()).map(|s| s[i]);
    let args = ContainerArgs {
        // The descriptor is for libcontainer's intermediate process, which is not used.
        container_type: if finish.is_some() { ContainerType::TenantContainer { exec_notify_fd: -1 } } else { ContainerType::InitContainer },
        syscall: SyscallType::default(),
        spec: Rc::new(spec),
        rootfs,
        console_socket: console.as_ref().map(|c| c.as_raw_fd()),
        notify_listener,
        preserve_fds: 0,
        container: Some(container.clone()),
        user_ns_config: None,
        cgroup_config,
        detached: true,
        executor,
        no_pivot: false,
        stdin: fd(0),
        stdout: fd(1),
        stderr: fd(2),
        as_sibling: false,
        pid_file: None,
    };
    let pid = spawn(&args, &rlimits, &own, join)?;
    container
        .set_status(ContainerStatus::Created)
        .set_creator(nix::unistd::geteuid().as_raw())
        .set_pid(pid.as_raw())
        .save()?;
    container.refresh_state()?;
    Ok(container)
}

/// Clone the init into a new PID namespace, place it in the container's cgroups, and
/// wait until libcontainer's init process reports it is set up.
fn spawn(
    args: &ContainerArgs,
    rlimits: &[libcontainer::oci_spec::runtime::PosixRlimit],
    own: &Own<'_>,
    join: Join<'_>,
) -> Result<Pid> {
    let (mut init_main_sender, mut init_main_receiver) = channel::main_channel()?;
    let (mut init_sender, mut init_receiver) = channel::init_channel()?;
    // One byte once the init is in its cgroups; end-of-file if the shim gave up.
    let (go_r, go_w) = crate::run::pipe()?;
    let (keep_shim, keep_init) = UnixDatagram::pair().context("socketpair")?;
    let pid = clone_into_new_pid_ns().context("clone the init process")?;
    if pid == 0 {
        drop((go_w, keep_shim));
        let code = init(args, rlimits, own, ShimPipes { go: go_r, keep: keep_init }, &mut init_main_sender, &mut init_sender, &mut init_receiver);
        std::process::exit(code);
    }
    let pid = Pid::from_raw(pid);
    drop((go_r, keep_init));
    let abandon = |e: anyhow::Error| {
        let _ = kill(pid, Signal::SIGKILL);
        let _ = waitpid(pid, None);
        e
    };
    init_main_sender.close().map_err(|e| abandon(e.into()))?;
    match join {
        Join::Hierarchies(h, devices) => join_hierarchies(pid, h, devices.as_deref()),
        Join::Manager(config) => {
            let resources = args.spec.linux().as_ref().and_then(|l| l.resources().as_ref());
            join_with_manager(pid, config, resources)
        }
    }
    .map_err(abandon)?;
    (&go_w).write_all(&[1]).context("release the init process").map_err(abandon)?;
    drop(go_w);
    init_sender.close().map_err(|e| abandon(e.into()))?;
    let ready = init_main_receiver.wait_for_init_ready();
    let _ = init_receiver.close();
    let _ = init_main_receiver.close();
    ready.map_err(|e| abandon(anyhow::anyhow!("failed to create container: {e}")))?;
    if let Some(fd) = receive_procfs(&keep_shim) {
        // Left open on purpose: closed when the shim exits.
        std::mem::forget(fd);
    }
    Ok(pid)
}

/// The init's procfs handle, which pathrs makes on first use as a detached `procfs`
/// mount (of the container's PID namespace) and caches for the process: the last close
/// of that mount's descriptor dissolves it, and a dissolved mount waits for an
/// expedited RCU grace period (~50 µs here, longer under load; the kernel signals every
/// CPU). The init's copy is closed by the `execve` of the container's process, where
/// that wait delayed every container's first instruction. The init sends a duplicate
/// to the shim, which holds it until it exits: the init's close is not the last.
fn hand_over_procfs(to_shim: &UnixDatagram) {
    use std::os::fd::AsFd;
    let Ok(handle) = pathrs::procfs::ProcfsHandle::new() else { return };
    let fd = handle.as_fd().as_raw_fd();
    let _ = nix::sys::socket::sendmsg::<()>(
        to_shim.as_raw_fd(),
        &[std::io::IoSlice::new(&[0])],
        &[nix::sys::socket::ControlMessage::ScmRights(&[fd])],
        nix::sys::socket::MsgFlags::MSG_DONTWAIT,
        None,
    );
}

/// Receive what [`hand_over_procfs`] sent (already queued: the init sent it before it
/// reported ready), for the shim to keep open.
fn receive_procfs(from_init: &UnixDatagram) -> Option<OwnedFd> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    use std::os::fd::FromRawFd;
    let mut byte = [0u8; 1];
    let mut iov = [std::io::IoSliceMut::new(&mut byte)];
    let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let flags = MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_CMSG_CLOEXEC;
    let msg = recvmsg::<()>(from_init.as_raw_fd(), &mut iov, Some(&mut space), flags).ok()?;
    let fd = msg.cmsgs().ok()?.find_map(|c| match c {
        ControlMessageOwned::ScmRights(fds) => fds.first().copied(),
        _ => None,
    })?;
    // SAFETY: a descriptor the kernel just installed in this process for us.
    Some(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// What the init does itself before libcontainer's init process.
struct Own<'a> {
    /// The container's standard streams, set up by the init when it makes the root
    /// filesystem (libcontainer's init process, as a joining process, gets none).
    stdio: Option<[std::os::fd::RawFd; 3]>,
    /// The spec's mounts it makes ([`crate::mounts`]).
    mounts: Option<&'a crate::mounts::Plan>,
    /// The rest of the root filesystem ([`crate::rootfs`]).
    finish: Option<&'a crate::rootfs::Finish>,
}

/// The init's ends of what it shares with the shim besides libcontainer's channels.
struct ShimPipes {
    /// One byte once the init is in its cgroups; end-of-file if the shim gave up.
    go: File,
    /// Where the init sends its procfs handle ([`hand_over_procfs`]).
    keep: UnixDatagram,
}

/// The init process, until libcontainer's init takes over (it execs the container's
/// process, or returns an error): the exit code.
fn init(
    args: &ContainerArgs,
    rlimits: &[libcontainer::oci_spec::runtime::PosixRlimit],
    own: &Own<'_>,
    pipes: ShimPipes,
    main_sender: &mut MainSender,
    init_sender: &mut InitSender,
    init_receiver: &mut InitReceiver,
) -> i32 {
    // The name libcontainer gives its init until the exec.
    // SAFETY: the name is a NUL-terminated literal.
    unsafe { libc::prctl(libc::PR_SET_NAME, c"youki:[2:INIT]".as_ptr(), 0, 0, 0) };
    if init_sender.close().is_err() {
        return -1;
    }
    let mut b = [0u8; 1];
    let ShimPipes { go, keep } = pipes;
    if !matches!((&go).read(&mut b), Ok(1)) {
        return -1;
    }
    drop(go);
    // The shim was alive a moment ago (it sent `go`): from here the init dies with it,
    // until the container's process is exec'd (`Confined::exec` undoes this). A shim
    // killed while its container waited for the start signal (a warm sandbox does, for
    // minutes) left the init blocked on libcontainer's notify socket for good, holding
    // its namespaces, cgroup and mounts. The init is the shim's main thread's child,
    // and that thread lives as long as the shim.
    // SAFETY: prctl with integer arguments only.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) };
    let syscall = args.syscall.create_syscall();
    for r in rlimits {
        if let Err(e) = syscall.set_rlimit(r) {
            let _ = main_sender.exec_failed(format!("failed to set rlimit {:?}: {e}", r.typ()));
            return -1;
        }
    }
    hand_over_procfs(&keep);
    drop(keep);
    // In libcontainer's order: the standard streams, the namespaces, the mounts, the
    // rest of the root filesystem.
    if let Some(stdio) = own.stdio {
        for (from, to) in stdio.into_iter().zip(0..) {
            if nix::unistd::dup2(from, to).and_then(|_| nix::unistd::close(from)).is_err() {
                let _ = main_sender.exec_failed(format!("failed to set up stdio fd {to}"));
                return -1;
            }
        }
    }
    let prepared = own.mounts.map_or(Ok(()), |plan| plan.apply()).and_then(|()| own.finish.map_or(Ok(()), |f| f.apply(&args.rootfs)));
    if let Err(e) = prepared {
        let _ = main_sender.exec_failed(format!("failed to prepare rootfs: {e:#}"));
        return -1;
    }
    match libcontainer::process::init::container_init_process(args, main_sender, init_receiver) {
        Ok(()) => 0,
        Err(e) => {
            tracing::error!("failed to initialize container process: {e}");
            let _ = main_sender.exec_failed(e.to_string());
            -1
        }
    }
}

/// `clone3(CLONE_NEWPID)` without a new stack, as `fork`: the child's pid in the
/// parent, 0 in the child. The caller is single-threaded (the shim before its threads).
fn clone_into_new_pid_ns() -> std::io::Result<i32> {
    /// The kernel's `struct clone_args` (version 2, 88 bytes).
    #[repr(C)]
    #[derive(Default)]
    struct CloneArgs {
        flags: u64,
        pidfd: u64,
        child_tid: u64,
        parent_tid: u64,
        exit_signal: u64,
        stack: u64,
        stack_size: u64,
        tls: u64,
        set_tid: u64,
        set_tid_size: u64,
        cgroup: u64,
    }
    let mut a = CloneArgs { flags: libc::CLONE_NEWPID as u64, exit_signal: libc::SIGCHLD as u64, ..Default::default() };
    // SAFETY: a fork-like clone3 (no CLONE_VM, no stack) of a single-threaded process;
    // the struct outlives the call and its size is passed.
    let r = unsafe { libc::syscall(libc::SYS_clone3, &mut a as *mut CloneArgs, std::mem::size_of::<CloneArgs>()) };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(r as i32)
}

/// What libcontainer's v1 cgroup manager does for an init: the process into the
/// container's cgroup of every hierarchy (cpuset's `cpus` and `mems` first filled in
/// from the parent where empty, or the kernel refuses the process), then the device
/// rules.
fn join_hierarchies(pid: Pid, cgroups: &[Hierarchy], devices: Option<&[LinuxDeviceCgroup]>) -> Result<()> {
    let mut done = HashSet::new();
    for h in cgroups {
        if !done.insert(&h.cgroup) {
            continue;
        }
        // Usually there already (berthd's pool made it): one stat instead of a `mkdir`
        // that fails with EEXIST and then a stat.
        if !h.cgroup.is_dir() {
            fs::create_dir_all(&h.cgroup).with_context(|| format!("create {}", h.cgroup.display()))?;
        }
        if controllers(h).any(|c| c == "cpuset") {
            fill_cpuset(h, "cpuset.cpus")?;
            fill_cpuset(h, "cpuset.mems")?;
        }
        write_cgroup_file(&h.cgroup.join("cgroup.procs"), &pid.to_string())?;
    }
    if let Some(rules) = devices {
        let Some(h) = cgroups.iter().find(|h| controllers(h).any(|c| c == "devices")) else {
            bail!("the device rules need the devices cgroup, which is not mounted");
        };
        // One open of each file; the kernel takes one rule per write.
        let (mut allow, mut deny) = (None, None);
        for r in rules {
            let (slot, file) = if r.allow() { (&mut allow, "devices.allow") } else { (&mut deny, "devices.deny") };
            let path = h.cgroup.join(file);
            if slot.is_none() {
                *slot = Some(OpenOptions::new().write(true).open(&path).with_context(|| format!("open {}", path.display()))?);
            }
            let f: &mut File = slot.as_mut().expect("opened above");
            f.write_all(r.to_string().as_bytes()).with_context(|| format!("write {r} to {}", path.display()))?;
        }
    }
    Ok(())
}

/// libcontainer's intermediate process's `apply_cgroups`, for the init's pid: into the
/// cgroup, then the resources.
fn join_with_manager(pid: Pid, config: libcgroups::common::CgroupConfig, resources: Option<&LinuxResources>) -> Result<()> {
    use libcgroups::common::{CgroupManager, ControllerOpt};
    let m = libcgroups::common::create_cgroup_manager(config).context("cgroup manager")?;
    m.add_task(pid).context("add the init to its cgroup")?;
    if let Some(resources) = resources {
        let opt = ControllerOpt { resources, freezer_state: None, oom_score_adj: None, disable_oom_killer: false };
        m.apply(&opt).context("apply the cgroup resources")?;
    }
    Ok(())
}

/// The controllers of a hierarchy, from its mount point's name (`cpu,cpuacct`).
fn controllers(h: &Hierarchy) -> impl Iterator<Item = &str> {
    h.mount.file_name().and_then(|n| n.to_str()).unwrap_or("").split(',')
}

/// Copy `file` down from the hierarchy's root to the container's cgroup wherever it is
/// empty.
fn fill_cpuset(h: &Hierarchy, file: &str) -> Result<()> {
    // Usually filled in already: berthd makes containers' cgroups under a parent with
    // `cgroup.clone_children` set, and the kernel copies the parent's values.
    if fs::read_to_string(h.cgroup.join(file)).is_ok_and(|v| !v.trim().is_empty()) {
        return Ok(());
    }
    let rel = h.cgroup.strip_prefix(&h.mount).with_context(|| format!("{} is not under {}", h.cgroup.display(), h.mount.display()))?;
    let mut current = h.mount.clone();
    for c in rel.components() {
        let parent = fs::read_to_string(current.join(file)).with_context(|| format!("read {}", current.join(file).display()))?;
        if parent.trim().is_empty() {
            bail!("{} is empty", current.join(file).display());
        }
        current.push(c);
        let child = current.join(file);
        if fs::read_to_string(&child).with_context(|| format!("read {}", child.display()))?.trim().is_empty() {
            write_cgroup_file(&child, &parent)?;
        }
    }
    Ok(())
}

fn write_cgroup_file(path: &Path, data: &str) -> Result<()> {
    OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|mut f| f.write_all(data.as_bytes()))
        .with_context(|| format!("write {data:?} to {}", path.display()))
}

/// The rules libcontainer's v1 devices controller writes: the spec's, then an allow
/// rule for each device every container gets and the device types it always allows
/// (libcgroups' `default_devices` and `default_allow_devices`). None when the spec has
/// no resources (libcontainer then applies none).
fn device_rules(resources: Option<&LinuxResources>) -> Option<Vec<LinuxDeviceCgroup>> {
    use LinuxDeviceType::{B, C};
    let r = resources?;
    let mut rules = r.devices().clone().unwrap_or_default();
    // null, zero, full, tty, urandom, random; then mknod of any character or block
    // device, /dev/console, the pty slaves, /dev/ptmx, /dev/net/tun.
    let always: [(LinuxDeviceType, Option<i64>, Option<i64>, &str); 12] = [
        (C, Some(1), Some(3), "rwm"),
        (C, Some(1), Some(5), "rwm"),
        (C, Some(1), Some(7), "rwm"),
        (C, Some(5), Some(0), "rwm"),
        (C, Some(1), Some(9), "rwm"),
        (C, Some(1), Some(8), "rwm"),
        (C, None, None, "m"),
        (B, None, None, "m"),
        (C, Some(5), Some(1), "rwm"),
        (C, Some(136), None, "rwm"),
        (C, Some(5), Some(2), "rwm"),
        (C, Some(10), Some(200), "rwm"),
    ];
    for (typ, major, minor, access) in always {
        let mut b = LinuxDeviceCgroupBuilder::default().allow(true).typ(typ).access(access);
        if let Some(m) = major {
            b = b.major(m);
        }
        if let Some(m) = minor {
            b = b.minor(m);
        }
        rules.push(b.build().expect("a complete device rule"));
    }
    Some(rules)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// `b` merged into `a`, object by object (for specs written as a base and changes).
    pub(crate) fn merge(a: &mut serde_json::Value, b: serde_json::Value) {
        match (a, b) {
            (serde_json::Value::Object(a), serde_json::Value::Object(b)) => {
                for (k, v) in b {
                    merge(a.entry(k).or_insert(serde_json::Value::Null), v);
                }
            }
            (a, b) => *a = b,
        }
    }

    fn spec(extra: serde_json::Value) -> Spec {
        let mut v = serde_json::json!({
            "ociVersion": "1.0.2",
            "root": {"path": "rootfs"},
            "process": {"args": ["true"], "cwd": "/", "user": {"uid": 0, "gid": 0}},
            "linux": {
                "namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "network", "path": "/run/netns/x"}, {"type": "ipc"}, {"type": "uts"}],
                "resources": {"devices": [{"allow": false, "access": "rwm"}]},
                "cgroupsPath": "/berth/x"
            }
        });
        merge(&mut v, extra);
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn the_container_is_created_directly_but_with_a_user_or_time_namespace_or_hooks() {
        assert!(eligible(&spec(serde_json::json!({}))));
        let not = |extra: serde_json::Value, why: &str| assert!(!eligible(&spec(extra)), "{why}");
        not(serde_json::json!({"linux": {"namespaces": [{"type": "mount"}, {"type": "network"}]}}), "--pid host");
        not(serde_json::json!({"linux": {"namespaces": [{"type": "pid", "path": "/proc/1/ns/pid"}]}}), "--pid container:");
        not(serde_json::json!({"linux": {"namespaces": [{"type": "pid"}, {"type": "user"}]}}), "user namespace");
        not(serde_json::json!({"linux": {"namespaces": [{"type": "pid"}, {"type": "time"}]}}), "time namespace");
        not(serde_json::json!({"hooks": {"createRuntime": [{"path": "/bin/true"}]}}), "hooks (CDI)");
        not(serde_json::json!({"linux": {"seccomp": {"defaultAction": "SCMP_ACT_ALLOW"}}}), "seccomp left to libcontainer");
        not(serde_json::json!({"linux": {"uidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}]}}), "id mappings");
    }

    #[test]
    fn resources_beyond_device_rules_go_to_libcgroups() {
        assert!(eligible(&spec(serde_json::json!({"linux": {"resources": {"memory": {"limit": 1048576}}}}))));
        assert!(eligible(&spec(serde_json::json!({"linux": {"namespaces": [{"type": "pid"}, {"type": "cgroup"}]}}))));
        let r = |v: serde_json::Value| serde_json::from_value::<LinuxResources>(v).unwrap();
        assert!(only_device_rules(None));
        assert!(only_device_rules(Some(&r(serde_json::json!({"devices": [{"allow": false, "access": "rwm"}]})))));
        assert!(!only_device_rules(Some(&r(serde_json::json!({"memory": {"limit": 1048576}})))));
        assert!(!only_device_rules(Some(&r(serde_json::json!({"pids": {"limit": 10}})))));
        assert!(!only_device_rules(Some(&r(serde_json::json!({"cpu": {"shares": 512}})))));
    }

    #[test]
    fn the_device_rules_are_the_specs_then_libcontainers_own() {
        let r: LinuxResources = serde_json::from_value(serde_json::json!({"devices": [
            {"allow": false, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"}
        ]}))
        .unwrap();
        let rules: Vec<String> = device_rules(Some(&r)).unwrap().iter().map(|d| format!("{} {d}", d.allow())).collect();
        assert_eq!(
            rules,
            [
                "false a *:* rwm",
                "true c 1:3 rwm",
                "true c 1:3 rwm",
                "true c 1:5 rwm",
                "true c 1:7 rwm",
                "true c 5:0 rwm",
                "true c 1:9 rwm",
                "true c 1:8 rwm",
                "true c *:* m",
                "true b *:* m",
                "true c 5:1 rwm",
                "true c 136:* rwm",
                "true c 5:2 rwm",
                "true c 10:200 rwm",
            ]
        );
        assert!(device_rules(None).is_none());
    }

    #[test]
    fn the_procfs_handle_pathrs_caches_is_handed_over_as_the_same_open_file() {
        let (shim, init) = UnixDatagram::pair().unwrap();
        hand_over_procfs(&init);
        let got = receive_procfs(&shim).expect("a descriptor");
        let fs = nix::sys::statfs::fstatfs(&got).unwrap();
        assert_eq!(fs.filesystem_type(), nix::sys::statfs::PROC_SUPER_MAGIC);
        // The same open file as pathrs's (not a second procfs): closing pathrs's copy
        // is then not the last close.
        use std::os::fd::AsFd;
        let cached = pathrs::procfs::ProcfsHandle::new().unwrap();
        let (a, b) = (nix::sys::stat::fstat(cached.as_fd().as_raw_fd()).unwrap(), nix::sys::stat::fstat(got.as_raw_fd()).unwrap());
        assert_eq!((a.st_dev, a.st_ino), (b.st_dev, b.st_ino));
        assert!(receive_procfs(&shim).is_none(), "one descriptor per init");
    }

    #[test]
    fn cpuset_is_filled_in_down_to_the_container_where_empty() {
        let d = tempfile::tempdir().unwrap();
        let mount = d.path().join("cpuset");
        let cg = mount.join("berth/x");
        fs::create_dir_all(&cg).unwrap();
        fs::write(mount.join("cpuset.cpus"), "0-1\n").unwrap();
        fs::write(mount.join("berth/cpuset.cpus"), "1\n").unwrap();
        fs::write(cg.join("cpuset.cpus"), "\n").unwrap();
        fill_cpuset(&Hierarchy { mount: mount.clone(), cgroup: cg.clone() }, "cpuset.cpus").unwrap();
        assert_eq!(fs::read_to_string(cg.join("cpuset.cpus")).unwrap(), "1\n");
        // The hierarchy's own value empty: the kernel would refuse the process.
        fs::write(mount.join("cpuset.cpus"), "").unwrap();
        fs::write(cg.join("cpuset.cpus"), "\n").unwrap();
        assert!(fill_cpuset(&Hierarchy { mount: mount.clone(), cgroup: cg.clone() }, "cpuset.cpus").is_err());
        // A container's cgroup that has its value (copied by the kernel under a parent
        // with clone_children) is left as it is, its parents unread.
        fs::write(cg.join("cpuset.cpus"), "0\n").unwrap();
        fill_cpuset(&Hierarchy { mount, cgroup: cg.clone() }, "cpuset.cpus").unwrap();
        assert_eq!(fs::read_to_string(cg.join("cpuset.cpus")).unwrap(), "0\n");
    }
}
