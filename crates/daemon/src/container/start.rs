//! Starting a container: mount its rootfs, prepare its namespaces and /etc files,
//! write the OCI bundle, start a shim, hand pending attaches over, start the process.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use berth_api::models::{EventMessageTypeEnum, HostConfig};
use berth_errdefs::{Error, Result};
use berth_oci::{EtcFiles, MountKind, MountSpec, NsMode, Resources, SpecOptions};
use berth_shim_proto::{Ready, Request, Response};
use tokio::io::AsyncBufReadExt;

use super::{event_attrs, now, runtime_root, shim, Container, Paths, Record, Status};
use crate::Daemon;

fn network_mode(rec: &Record) -> &str {
    super::net::mode(&rec.host_config)
}

/// The mounts a host config asks for: `Binds` (`-v`), `Mounts` (`--mount`) and
/// `Tmpfs` (`--tmpfs`), parsed with dockerd's rules. `create` calls this to refuse a bad
/// specification with a 400 before anything exists.
///
/// `VolumeDriver` is the driver of the volumes the container makes (those of `-v`
/// and, see [`super::volumes::add_anonymous`], of the image's `VOLUME`s): a driver
/// berthd lacks is refused when one is made, as dockerd refuses it, and a container
/// with none keeps the setting.
pub fn mount_points(hc: &HostConfig) -> Result<Vec<berth_volume::MountPoint>> {
    let driver = hc.volume_driver.as_deref().unwrap_or("");
    let mut out: Vec<berth_volume::MountPoint> = Vec::new();
    for b in hc.binds.iter().flatten() {
        out.push(berth_volume::parse_bind(b, driver)?);
    }
    for m in hc.mounts.iter().flatten() {
        out.push(berth_volume::parse_mount(m)?);
    }
    for (dst, opts) in hc.tmpfs.iter().flatten() {
        if !dst.starts_with('/') {
            return Err(Error::invalid(format!("invalid tmpfs destination: {dst}: mount path must be absolute")));
        }
        berth_volume::check_tmpfs_options(opts)?;
        let mut m = berth_volume::MountPoint::anonymous(dst);
        m.kind = berth_volume::Kind::Tmpfs;
        m.name.clear();
        m.anonymous = false;
        m.copy_data = false;
        m.tmpfs_options = opts.clone();
        out.push(m);
    }
    for m in &out {
        berth_volume::check_driver(&m.driver).map_err(|e| e.context(format!("create {}", m.name)))?;
    }
    let mut seen = std::collections::HashSet::new();
    for m in &out {
        if !seen.insert(m.destination.as_str()) {
            return Err(Error::invalid(format!("Duplicate mount point: {}", m.destination)));
        }
    }
    Ok(out)
}

/// A host config's cgroup limits for the OCI spec.
pub fn oci_resources(hc: &HostConfig) -> Resources {
    Resources {
        memory: hc.memory.filter(|m| *m > 0),
        memory_swap: hc.memory_swap.filter(|m| *m != 0),
        memory_reservation: hc.memory_reservation.filter(|m| *m > 0),
        nano_cpus: hc.nano_cpus.filter(|m| *m > 0),
        cpu_shares: hc.cpu_shares.filter(|m| *m > 0).map(|v| v as u64),
        cpu_period: hc.cpu_period.filter(|m| *m > 0).map(|v| v as u64),
        cpu_quota: hc.cpu_quota.filter(|m| *m > 0),
        cpuset_cpus: hc.cpuset_cpus.clone().filter(|s| !s.is_empty()),
        cpuset_mems: hc.cpuset_mems.clone().filter(|s| !s.is_empty()),
        pids_limit: hc.pids_limit.filter(|m| *m > 0),
        blkio_weight: hc.blkio_weight.filter(|m| *m > 0),
        memory_swappiness: hc.memory_swappiness.filter(|s| (0..=100).contains(s)).map(|s| s as u64),
        oom_kill_disable: hc.oom_kill_disable.unwrap_or(false),
        blkio_weight_device: hc
            .blkio_weight_device
            .iter()
            .flatten()
            .filter_map(|w| Some((PathBuf::from(w.path.clone()?), w.weight? as u16)))
            .collect(),
        device_read_bps: throttles(&hc.blkio_device_read_bps),
        device_write_bps: throttles(&hc.blkio_device_write_bps),
        device_read_iops: throttles(&hc.blkio_device_read_iops),
        device_write_iops: throttles(&hc.blkio_device_write_iops),
    }
}

/// The OCI mounts of a container's bind mounts, volumes and tmpfs mounts.
fn user_mounts(d: &Daemon, rec: &Record) -> Result<Vec<MountSpec>> {
    let points = match &rec.mount_points {
        Some(p) => p.clone(),
        None => mount_points(&rec.host_config)?,
    };
    let mut out = Vec::new();
    for m in points {
        let spec = match m.kind {
            berth_volume::Kind::Bind => {
                if !Path::new(&m.source).exists() {
                    if !m.create_source {
                        return Err(Error::invalid(format!(
                            "invalid mount config for type \"bind\": bind source path does not exist: {}",
                            m.source
                        )));
                    }
                    std::fs::create_dir_all(&m.source)?;
                }
                MountSpec {
                    kind: MountKind::Bind,
                    source: PathBuf::from(&m.source),
                    destination: m.destination.clone(),
                    readonly: !m.rw,
                    options: vec![m.propagation.clone()],
                }
            }
            berth_volume::Kind::Volume => MountSpec {
                kind: MountKind::Bind,
                source: super::volumes::host_path(d, &m.name)?,
                destination: m.destination.clone(),
                readonly: !m.rw,
                options: Vec::new(),
            },
            berth_volume::Kind::Tmpfs => MountSpec {
                kind: MountKind::Tmpfs,
                source: "tmpfs".into(),
                destination: m.destination.clone(),
                readonly: !m.rw,
                options: m.tmpfs_options.split(',').filter(|o| !o.is_empty()).map(str::to_owned).collect(),
            },
        };
        out.push(spec);
    }
    berth_oci::check_bind_propagation(&out)?;
    Ok(out)
}

fn ns_mode(mode: Option<&str>) -> NsMode {
    if mode == Some("host") {
        NsMode::Host
    } else {
        NsMode::Private
    }
}

/// Where a `shareable` container's /dev/shm lives on the host.
fn shm_dir(paths: &Paths) -> PathBuf {
    paths.dir.join("mounts").join("shm")
}

/// Mount the tmpfs a shareable container's /dev/shm is bound from.
fn mount_shm(dir: &Path, size: i64, owner: Option<(u32, u32)>) -> Result<()> {
    if berth_snapshot::is_mountpoint(dir) {
        return Ok(());
    }
    std::fs::create_dir_all(dir)?;
    nix::mount::mount(
        Some("shm"),
        dir,
        Some("tmpfs"),
        nix::mount::MsFlags::MS_NOSUID | nix::mount::MsFlags::MS_NODEV | nix::mount::MsFlags::MS_NOEXEC,
        Some(match owner {
            Some((u, g)) => format!("mode=1777,size={size},uid={u},gid={g}"),
            None => format!("mode=1777,size={size}"),
        })
        .as_deref(),
    )
    .map_err(|e| Error::internal(format!("mount shm tmpfs at {}: {e}", dir.display())))
}

/// A namespace shared with another, running container (`--pid`/`--ipc container:x`).
/// The namespace `ns` of the running container `other`; dockerd's 409 when it is not
/// running, after `prefix` (its IPC check names the container it cannot join first).
fn join_container_ns(other: &super::Container, ns: &str, prefix: &str) -> Result<NsMode> {
    let r = other.record();
    if !r.state.status.is_live() || r.state.pid <= 0 {
        return Err(Error::conflict(format!("{prefix}container {} is not running", other.id)));
    }
    Ok(NsMode::Path(PathBuf::from(format!("/proc/{}/ns/{ns}", r.state.pid))))
}

/// `HostConfig` throttle devices as (path, rate).
fn throttles(v: &Option<Vec<berth_api::models::ThrottleDevice>>) -> Vec<(PathBuf, u64)> {
    v.iter()
        .flatten()
        .filter_map(|t| Some((PathBuf::from(t.path.clone()?), t.rate? as u64)))
        .collect()
}

/// The static init binary for `--init` (dockerd's `--init-path`; Docker ships tini as
/// `docker-init`, Debian's `tini` package has `tini-static`).
pub fn init_binary(d: &Daemon) -> Result<PathBuf> {
    if let Some(p) = &d.cfg.init_path {
        return Ok(p.clone());
    }
    let path = std::env::var("PATH").unwrap_or_default();
    for name in ["docker-init", "tini-static"] {
        for dir in path.split(':').chain(["/usr/bin", "/usr/local/bin", "/usr/libexec/docker"]) {
            let p = Path::new(dir).join(name);
            if p.is_file() {
                return Ok(p);
            }
        }
    }
    Err(Error::invalid(
        "--init needs a static init binary: install tini (tini-static) or start berthd with --init-path",
    ))
}

/// Build the OCI spec options of a container.
fn spec_options(d: &Daemon, rec: &Record, paths: &Paths, etc: EtcFiles) -> Result<SpecOptions> {
    let hc = &rec.host_config;
    let network = match network_mode(rec) {
        "host" => NsMode::Host,
        m if m.starts_with("container:") => {
            let other = d.containers.get(&m["container:".len()..])?;
            if !other.status().is_live() {
                return Err(Error::conflict(format!("cannot join network of a non running container: {}", other.id)));
            }
            NsMode::Path(Paths::netns(d, &other.id))
        }
        _ => NsMode::Path(Paths::netns(d, &rec.id)),
    };
    let pid = match hc.pid_mode.as_deref().unwrap_or("") {
        "host" => NsMode::Host,
        m => match super::verify::container_ref(m) {
            Some(r) => join_container_ns(&*d.containers.get(r)?, "pid", "")?,
            None => NsMode::Private,
        },
    };
    let mut shm_source = None;
    let ipc = match hc.ipc_mode.as_deref().unwrap_or("") {
        "host" => NsMode::Host,
        "shareable" => {
            shm_source = Some(shm_dir(paths));
            NsMode::Private
        }
        m => match super::verify::container_ref(m) {
            Some(r) => {
                let donor = d.containers.get(r)?;
                let prefix = format!("can't join IPC of container {}: ", donor.id);
                let joined = join_container_ns(&donor, "ipc", &prefix)?;
                match donor.record().host_config.ipc_mode.as_deref() {
                    Some("shareable") => shm_source = Some(shm_dir(&Paths::new(d, &donor.id))),
                    Some("host") => {}
                    _ => {
                        return Err(Error::invalid(format!(
                            "{prefix}non-shareable IPC (hint: use IpcMode:shareable for the donor container)"
                        )))
                    }
                }
                joined
            }
            None => NsMode::Private,
        },
    };
    let devices = hc
        .devices
        .iter()
        .flatten()
        .map(|m| berth_oci::DeviceMapping {
            host: PathBuf::from(m.path_on_host.clone().unwrap_or_default()),
            container: m
                .path_in_container
                .clone()
                .filter(|p| !p.is_empty())
                .or(m.path_on_host.clone())
                .unwrap_or_default(),
            permissions: m.cgroup_permissions.clone().filter(|p| !p.is_empty()).unwrap_or_else(|| "rwm".into()),
        })
        .collect();
    let mut args = vec![rec.path.clone()];
    args.extend(rec.args.iter().cloned());
    let cdi = super::cdi::edits(d, hc)?;
    let mut opts = SpecOptions {
        rootfs: paths.rootfs(),
        readonly_rootfs: hc.readonly_rootfs.unwrap_or(false),
        args,
        env: {
            // Legacy links' variables first: the container's own override them.
            let mut env = super::net::link_env(d, rec);
            env.extend(rec.config.env.clone().unwrap_or_default());
            env
        },
        cwd: rec.config.working_dir.clone().unwrap_or_default(),
        user: rec.config.user.clone().unwrap_or_default(),
        group_add: hc.group_add.clone().unwrap_or_default(),
        hostname: rec.config.hostname.clone().unwrap_or_default(),
        domainname: rec.config.domainname.clone().unwrap_or_default(),
        terminal: rec.config.tty.unwrap_or(false),
        network,
        pid,
        ipc,
        ipc_none: hc.ipc_mode.as_deref() == Some("none"),
        shm_source,
        uts: ns_mode(hc.uts_mode.as_deref()),
        cgroupns_private: match hc.cgroupns_mode.map(|m| m.to_string()).as_deref() {
            Some("private") => true,
            Some("host") => false,
            _ => berth_oci::cgroup_v2_unified(),
        },
        etc_files: Some(etc),
        mounts: user_mounts(d, rec)?,
        cgroups_path: rec.cgroup_path(),
        resources: oci_resources(hc),
        privileged: hc.privileged.unwrap_or(false),
        cap_add: hc.cap_add.clone().unwrap_or_default(),
        cap_drop: hc.cap_drop.clone().unwrap_or_default(),
        security_opt: {
            let mut opts = hc.security_opt.clone().unwrap_or_default();
            // the daemon's default, unless the container sets the option itself
            if d.cfg.no_new_privileges && !opts.iter().any(|o| o.starts_with("no-new-privileges")) {
                opts.push("no-new-privileges".into());
            }
            opts
        },
        shm_size: hc.shm_size.filter(|s| *s > 0),
        sysctls: {
            let mut s = hc.sysctls.clone().unwrap_or_default();
            if super::net::own_namespace(hc) {
                // dockerd's defaults: unprivileged ports and ping work in containers
                // (no ping sockets in a user namespace: its gids do not reach that far)
                s.entry("net.ipv4.ip_unprivileged_port_start".into()).or_insert_with(|| "0".into());
                if d.idmap_for(Some(hc)).is_none() {
                    s.entry("net.ipv4.ping_group_range".into()).or_insert_with(|| "0 2147483647".into());
                }
            }
            s
        },
        ulimits: {
            let mut list: Vec<(String, u64, u64)> = hc
                .ulimits
                .clone()
                .unwrap_or_default()
                .into_iter()
                .filter_map(|u| Some((u.name?, u.soft? as u64, u.hard? as u64)))
                .collect();
            for (name, soft, hard) in &d.cfg.default_ulimits {
                if !list.iter().any(|(n, _, _)| n == name) {
                    list.push((name.clone(), *soft as u64, *hard as u64));
                }
            }
            list
        },
        oom_score_adj: hc.oom_score_adj.map(|v| v as i32),
        devices,
        device_cgroup_rules: hc.device_cgroup_rules.clone().unwrap_or_default(),
        masked_paths: hc.masked_paths.clone(),
        readonly_paths: hc.readonly_paths.clone(),
        init: if hc.init.unwrap_or(false) { Some(init_binary(d)?) } else { None },
        hooks: Vec::new(),
        userns: d.idmap_for(Some(hc)).map(|_| crate::userns_pin(&d.cfg)),
    };
    if let Some(e) = cdi {
        super::cdi::apply(e, &mut opts);
    }
    Ok(opts)
}

/// Remove everything of a container but its record: runtime state, snapshot, logs and
/// generated files.
pub fn purge(d: &Daemon, id: &str) {
    teardown(d, id);
    let _ = d.snap.remove(id);
    let _ = d.container_dirs.recycle(&Paths::new(d, id).dir);
}

/// [`teardown`] on the blocking pool, awaited.
pub(super) async fn teardown_blocking(d: &Arc<Daemon>, id: &str) {
    let (d, id) = (d.clone(), id.to_owned());
    let _ = tokio::task::spawn_blocking(move || teardown(&d, &id)).await;
}

/// Undo what `prepare` did (on failure or after exit).
pub fn teardown(d: &Daemon, id: &str) {
    let paths = Paths::new(d, id);
    // Only an unmount seen here is a clean one (after a host crash nothing is mounted
    // and a volatile upper dir must stay unusable).
    let mounted = berth_snapshot::is_mountpoint(&paths.rootfs());
    if berth_snapshot::unmount(&paths.rootfs()).is_ok() && mounted {
        d.snap.unmounted(id);
    }
    super::net::unwire(d, id);
    super::volumes::release(d, id);
    let _ = berth_network::netns::remove(&Paths::netns(d, id));
    let shm = shm_dir(&paths);
    if berth_snapshot::is_mountpoint(&shm) {
        let _ = berth_snapshot::unmount(&shm);
    }
    // A cgroup tree a shim that died while creating the container left mounted (it
    // binds host cgroup directories: never let the removal below walk into it).
    let tree = paths.state.join(berth_shim_proto::CGROUPFS_DIR);
    while berth_snapshot::is_mountpoint(&tree) && berth_snapshot::unmount(&tree).is_ok() {}
    let _ = std::fs::remove_dir_all(&paths.state);
    // The shim removes the cgroup and libcontainer state when it sees the exit; if the
    // shim itself was killed, they are left behind: remove them here (empty cgroups
    // only, so a live container is never touched).
    let _ = std::fs::remove_dir_all(super::runtime_root(d).join(id));
    let cg = d.containers.get(id).ok().filter(|c| c.id == id).map(|c| c.record().cgroup_path());
    berth_shim_proto::remove_cgroup(&cg.unwrap_or_else(|| format!("/berth/{id}")), Duration::ZERO);
}

/// The OCI spec of a container (its /etc files and mounts are not touched).
pub(super) fn spec_for(d: &Daemon, rec: &Record) -> Result<impl serde::Serialize> {
    berth_oci::build_spec(&options_for(d, rec)?)
}

/// What the container's OCI spec is built from, with its own paths and /etc files.
fn options_for(d: &Daemon, rec: &Record) -> Result<SpecOptions> {
    let paths = Paths::new(d, &rec.id);
    spec_options(d, rec, &paths, paths.etc_files(rec.ephemeral()))
}

/// Mount, namespaces and networks, /etc files and bundle. Returns what wiring the
/// networks produced (addresses, published ports), which goes into the record once
/// the container runs.
pub(super) fn prepare(d: &Arc<Daemon>, rec: &Record) -> Result<super::net::Wired> {
    let t0 = std::time::Instant::now();
    let paths = Paths::new(d, &rec.id);
    let img = d
        .images
        .get_for_container(&rec.image_id)?
        .ok_or_else(|| Error::not_found(format!("No such image: {}", rec.image_id)))?;
    let _ = std::fs::remove_file(paths.state.join(berth_shim_proto::EXIT_FILE));
    std::fs::create_dir_all(&paths.state)?;
    // A warm sandbox's directory (made here, not by `create`) is a spare when one is
    // ready, as the snapshot's is in `Snapshotter::prepare`.
    d.container_dirs.provide(&paths.dir)?;
    d.snap.prepare(&rec.id)?;
    // A rootfs that is used once and then deleted (a build step's, a `--rm`
    // container's) need not be synced to disk at unmount.
    if rec.build_step || rec.host_config.auto_remove == Some(true) {
        d.snap.mount_volatile(&rec.id, &img.layers, &paths.rootfs())?;
    } else {
        d.snap.mount(&rec.id, &img.layers, &paths.rootfs())?;
    }
    // A working directory the image lacks is made at every start (root, 0755), as
    // dockerd's SetupWorkingDirectory does, symlinks followed inside the rootfs.
    if let Some(w) = rec.config.working_dir.as_deref().filter(|w| !w.is_empty() && *w != "/") {
        let made = berth_containerfs::ContainerFs::open(&paths.rootfs())
            .and_then(|fs| fs.mkdir_all_owned(w, d.remap().map(|m| m.root())));
        match made {
            Ok(_) => {}
            Err(berth_containerfs::Error::NotDirectory) => {
                return Err(Error::invalid(format!("Cannot mkdir: {w} is not a directory")))
            }
            Err(berth_containerfs::Error::Io { source, .. }) if source.raw_os_error() == Some(libc::ENOTDIR) => {
                return Err(Error::invalid(format!("Cannot mkdir: {w} is not a directory")))
            }
            Err(e) => return Err(Error::internal(format!("create the working directory {w}: {e}"))),
        }
    }
    super::volumes::acquire(d, rec)?;
    let mut wired = super::net::Wired { endpoints: Vec::new(), ports: Vec::new() };
    if super::net::own_namespace(&rec.host_config) {
        let ns = Paths::netns(d, &rec.id);
        if d.idmap_for(Some(&rec.host_config)).is_some() {
            // owned by the remapped containers' user namespace, so that the container's
            // root may configure it (sysctls, sysfs) and join it at all
            let userns = crate::userns_pin(&d.cfg);
            berth_network::netns::create_with(&ns, |p| berth_userns::make_netns(&d.shim_path, &userns, p))?;
        } else {
            d.netns_pool.create(&ns)?;
        }
        wired = super::net::wire(d, rec, &ns)?;
        super::net::start_dns(d, rec, &wired.endpoints, &ns)?;
    }
    if rec.host_config.ipc_mode.as_deref() == Some("shareable") {
        let size = rec.host_config.shm_size.filter(|s| *s > 0).unwrap_or(berth_oci::DEFAULT_SHM_SIZE);
        mount_shm(&shm_dir(&paths), size, d.remap().map(|m| m.root()))?;
    }
    let t_ns = t0.elapsed();
    super::net::write_etc_files(d, rec, &wired.endpoints, &paths.etc_files(rec.ephemeral()))?;
    take_pooled_cgroup(d, rec);
    // Both pools: this cgroup, and the spare snapshot directory a warm sandbox's
    // snapshot took above (a container's took its at create, which refilled).
    super::refill_pools(d);
    let spec = spec_for(d, rec)?;
    let t_spec = t0.elapsed();
    let json = serde_json::to_vec(&spec).map_err(|e| Error::internal(e.to_string()))?;
    std::fs::write(paths.state.join("config.json"), json)?;
    tracing::debug!(id = %rec.id, mount_netns = ?t_ns, spec = ?t_spec, total = ?t0.elapsed(), "bundle prepared");
    Ok(wired)
}

/// The container's cgroup, under the default parent, is a pooled one renamed (the shim
/// finds it made). Without a pooled one ready, the shim makes it as before.
fn take_pooled_cgroup(d: &Arc<Daemon>, rec: &Record) {
    let Some(pool) = &d.cgroup_pool else { return };
    if rec.cgroup_path() != format!("/{}/{}", super::DEFAULT_CGROUP_PARENT, rec.id) {
        return;
    }
    pool.take(&rec.id);
}

/// The process of a container started on a warm sandbox: argv and environment
/// exactly as its OCI spec would have them (default PATH and all).
pub(super) fn launch_request(d: &Daemon, rec: &Record) -> Result<Request> {
    let (args, env) = berth_oci::process_of(&options_for(d, rec)?)?;
    Ok(Request::Launch { args, env })
}

/// Start the shim and wait for its `Ready` line. `deferred`: a warm sandbox, whose
/// process is chosen at `Launch`.
pub(super) async fn spawn_shim(d: &Daemon, rec: &Record, paths: &Paths, deferred: bool) -> Result<Ready> {
    let args = shim_args(d, rec, paths, deferred);
    let stdout: super::standby::ShimOut = match d.standby.hand(&d.shim_path, &runtime_root(d), &args).await {
        Some(out) => out,
        None => {
            let shim_log = std::fs::OpenOptions::new().create(true).append(true).open(paths.state.join(berth_shim_proto::LOG_FILE))?;
            let mut child = tokio::process::Command::new(&d.shim_path)
                .args(&args)
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::from(shim_log))
                .kill_on_drop(false)
                .spawn()
                .map_err(|e| Error::internal(format!("start shim {}: {e}", d.shim_path.display())))?;
            let stdout = child.stdout.take().expect("piped");
            // Reap the shim if it exits while this daemon runs.
            tokio::spawn(async move {
                let _ = child.wait().await;
            });
            Box::pin(stdout)
        }
    };
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let line = tokio::time::timeout(Duration::from_secs(60), lines.next_line()).await;
    // The next standby is started once this container is created, not meanwhile (two
    // cores here: starting a program beside the creation slowed it).
    d.standby.refill(&d.shim_path, &runtime_root(d));
    let line = line
        .map_err(|_| Error::internal("timed out waiting for the container shim"))?
        .map_err(|e| Error::internal(format!("read from shim: {e}")))?
        .ok_or_else(|| Error::internal("container shim exited before it was ready (see shim.log)"))?;
    serde_json::from_str(&line).map_err(|e| Error::internal(format!("bad shim ready line {line:?}: {e}")))
}

/// The `berth-shim run` command line for the container (without the program).
fn shim_args(d: &Daemon, rec: &Record, paths: &Paths, deferred: bool) -> Vec<std::ffi::OsString> {
    let mut args: Vec<std::ffi::OsString> = vec!["run".into(), "--id".into(), rec.id.clone().into(), "--bundle".into()];
    args.push(paths.state.clone().into());
    args.push("--runtime-root".into());
    args.push(runtime_root(d).into());
    args.push("--state-dir".into());
    args.push(paths.state.clone().into());
    let lc = rec.host_config.log_config.clone().unwrap_or_default();
    if lc.typ.as_deref() != Some("none") {
        args.push("--log".into());
        args.push(paths.log(&rec.id).into());
        let opts = lc.config.unwrap_or_default();
        // Checked at create; a record from before that check rotates as it can.
        let driver = lc.typ.as_deref().unwrap_or("json-file");
        if let Ok(r) = super::verify::log_rotation(driver, &opts) {
            if let Some(n) = r.max_size {
                args.push("--log-opts".into());
                args.push(format!("max-size={n},max-file={},compress={}", r.max_file, r.compress).into());
            }
        }
        // json-file's attributes, worked out at each start as dockerd's logger is
        // made then (a renamed container's tag has its new name)
        if super::verify::LOG_ATTR_OPTS.iter().any(|k| opts.contains_key(*k)) {
            let labels = rec.config.labels.clone().unwrap_or_default();
            let env = rec.config.env.clone().unwrap_or_default();
            let info = super::verify::LogInfo {
                id: &rec.id,
                name: &rec.name,
                image_id: &rec.image_id,
                image_name: &rec.image,
                command: std::iter::once(rec.path.as_str()).chain(rec.args.iter().map(String::as_str)).collect::<Vec<_>>().join(" "),
                labels: &labels,
                env: &env,
            };
            match super::verify::log_attrs(&opts, &info) {
                Ok(attrs) if !attrs.is_empty() => {
                    args.push("--log-attrs".into());
                    args.push(serde_json::to_string(&attrs).unwrap_or_default().into());
                }
                Ok(_) => {}
                // checked at create; a record from before that logs without them
                Err(e) => tracing::warn!(container = %rec.id, "log attributes: {e}"),
            }
        }
    }
    for (on, flag) in [
        (rec.config.tty.unwrap_or(false), "--tty"),
        (rec.config.open_stdin.unwrap_or(false), "--stdin"),
        (rec.config.stdin_once.unwrap_or(false), "--stdin-once"),
        (deferred, "--deferred"),
    ] {
        if on {
            args.push(flag.into());
        }
    }
    args
}

/// The exit code Docker records when the process could not be started.
fn start_error_code(msg: &str) -> i64 {
    if msg.contains("executable file not found") || msg.contains("no such file or directory") {
        127
    } else if msg.contains("permission denied") {
        126
    } else {
        128
    }
}

/// Start a created or stopped container.
pub async fn start(d: &Arc<Daemon>, c: &Arc<Container>) -> Result<()> {
    let _op = c.op.lock().await;
    if !c.status().is_live() {
        super::lifecycle::reset_restart_manager(d, c)?;
    }
    start_locked(d, c).await
}

/// Start, with the container's op lock already held.
pub async fn start_locked(d: &Arc<Daemon>, c: &Arc<Container>) -> Result<()> {
    let mut rec = c.record();
    match rec.state.status {
        Status::Running | Status::Paused => return Err(Error::not_modified("container already started")),
        Status::Removing | Status::Dead => {
            return Err(Error::conflict(format!("container {} is marked for removal and cannot be started", rec.id)))
        }
        _ => {}
    }
    // A network that did not exist at the create: found now, or the start fails as
    // any start does (exit code 128, a `--rm` container removed), with its 404.
    match super::net::resolve_deferred(d, c, &rec) {
        Ok(Some(updated)) => rec = updated,
        Ok(None) => {}
        Err(e) => {
            let msg = e.message().to_owned();
            c.update(d, |r| {
                r.state.exit_code = 128;
                r.state.error = msg.clone();
            })?;
            remove_if_auto(d, c, 128);
            return Err(e);
        }
    }
    let paths = Paths::new(d, &rec.id);
    let t0 = std::time::Instant::now();
    // A container created on a warm sandbox: its shim is ready and waits for `Launch`.
    let warm = d.warm.take_claimed(&rec.id);
    let on_sandbox = warm.is_some();
    let mut wired = super::net::Wired { endpoints: Vec::new(), ports: Vec::new() };
    let mut waiting = None;
    let mut launch = None;
    let ready = match warm {
        Some(claimed) => {
            wired.endpoints = claimed.endpoints;
            waiting = claimed.wait;
            launch = claimed.launch;
            Ok(Ready::Ok { shim_pid: 0, init_pid: claimed.init_pid, create_micros: 0 })
        }
        None => {
            // On this thread: the start waits for it either way, and handing it to the
            // blocking pool and back cost two thread wake-ups (~0.1 ms each on an idle
            // VM's CPU) on the start's critical path. The worker's other tasks move to
            // another thread meanwhile (`block_in_place`).
            let prepared = match tokio::runtime::Handle::current().runtime_flavor() {
                tokio::runtime::RuntimeFlavor::MultiThread => tokio::task::block_in_place(|| prepare(d, &rec)),
                _ => {
                    let (d2, rec2) = (d.clone(), rec.clone());
                    tokio::task::spawn_blocking(move || prepare(&d2, &rec2))
                        .await
                        .map_err(|e| Error::internal(e.to_string()))?
                }
            };
            match prepared {
                Ok(w) => {
                    wired = w;
                    spawn_shim(d, &rec, &paths, false).await
                }
                Err(e) => Err(e),
            }
        }
    };
    let t_ready = t0.elapsed();
    let failure = match ready {
        Ok(Ready::Ok { init_pid, create_micros, .. }) => {
            tracing::debug!(id = %rec.id, create_micros, "shim created the container");
            Ok(init_pid)
        }
        Ok(Ready::Error { message }) => Err(message),
        Err(e) => Err(e.message().to_owned()),
    };
    let init_pid = match failure {
        Ok(pid) => pid,
        Err(msg) => {
            teardown(d, &rec.id);
            let code = start_error_code(&msg);
            c.update(d, |r| {
                r.state.exit_code = code;
                r.state.error = msg.clone();
                if r.state.status != Status::Created {
                    r.state.status = Status::Exited;
                }
            })?;
            remove_if_auto(d, c, code);
            return Err(if code == 128 { Error::internal(msg) } else { Error::invalid(msg) });
        }
    };
    // The process of a warm sandbox is worked out (the spec, the image's user) on the
    // blocking pool: since `create`, or else while the attach streams are set up.
    if on_sandbox && launch.is_none() {
        let (d, rec) = (d.clone(), rec.clone());
        launch = Some(tokio::task::spawn_blocking(move || launch_request(&d, &rec)));
    }
    // Hand every waiting attach its stream before the process runs.
    let pending: Vec<_> = std::mem::take(&mut *c.pending.lock().unwrap());
    let attached = !pending.is_empty();
    for p in pending {
        p.connect(&paths.state).await;
    }
    let t_attached = t0.elapsed();
    // The exit watch goes in before the process starts (a sandbox's went in when it
    // was made).
    if waiting.is_none() {
        waiting = shim::send_wait(&paths.state).await.ok();
    }
    let t_wait = t0.elapsed();
    let start_req = match launch {
        Some(task) => task.await.unwrap_or_else(|e| Err(Error::internal(e.to_string()))),
        None => Ok(Request::Start),
    };
    let t_request = t0.elapsed();
    let answer = match start_req {
        Ok(req) => shim::call(&paths.state, &req).await,
        Err(e) => Err(e),
    };
    match answer {
        Ok(Response::Started { .. }) => {}
        failed @ (Ok(Response::Error { .. }) | Err(_)) => {
            let message = match failed {
                Ok(Response::Error { message }) => message,
                Err(e) => e.message().to_owned(),
                Ok(_) => unreachable!("matched above"),
            };
            let _ = shim::call(&paths.state, &Request::Kill { signal: 9, all: true }).await;
            teardown(d, &rec.id);
            let code = start_error_code(&message);
            c.update(d, |r| {
                r.state.exit_code = code;
                r.state.error = message.clone();
            })?;
            remove_if_auto(d, c, code);
            return Err(if code == 128 { Error::internal(message) } else { Error::invalid(message) });
        }
        Ok(other) => return Err(Error::internal(format!("unexpected shim answer {other:?}"))),
    }
    tracing::debug!(id = %rec.id, warm = on_sandbox, shim_ready = ?t_ready, attached = ?t_attached, wait = ?t_wait, request = ?t_request, started = ?t0.elapsed(), "container started");
    let running = |r: &mut Record| {
        if !wired.endpoints.is_empty() {
            r.endpoints = wired.endpoints.clone();
        }
        r.ports = wired.ports.clone();
        r.state.status = Status::Running;
        r.state.pid = init_pid;
        r.state.started_at = now();
        r.state.error.clear();
        r.state.exit_code = 0;
        r.manually_stopped = false;
    };
    let rec = if rec.ephemeral() {
        // `--rm` or a build step: the commit skips the disk; the record's copy beside
        // the shim socket (exec root) lets start-up find the running container until
        // the flush.
        let rec = c.update_lazy(d, running)?;
        if let Ok(json) = serde_json::to_vec(&rec) {
            let _ = std::fs::write(paths.state.join(super::RECORD_COPY), json);
        }
        rec
    } else {
        c.update(d, running)?
    };
    c.wake(|w| w.running = true);
    super::net::emit_for(d, "connect", &rec);
    d.events.emit(EventMessageTypeEnum::CONTAINER, "start", &rec.id, event_attrs(&rec));
    super::lifecycle::spawn_monitor(d.clone(), c.clone(), waiting);
    super::health::start_monitor(d, c);
    if c.warm.load(std::sync::atomic::Ordering::Relaxed) {
        // Make the next sandbox. A client attached to this container waits for it to
        // end: then once it is done (or after 100 ms), so that creating the sandbox
        // does not compete with a short run for the CPU. A detached start (`run -d`)
        // has its answer now: at once, and counted as being made before the answer
        // goes out, so that the next `run -d` of a series finds it (or waits for it).
        if attached {
            let (d, c, rec) = (d.clone(), c.clone(), rec.clone());
            tokio::spawn(async move {
                let auto = rec.host_config.auto_remove.unwrap_or(false);
                let mut rx = c.subscribe();
                let done = rx.wait_for(|w| w.removed || (!auto && !w.running));
                let _ = tokio::time::timeout(Duration::from_millis(100), done).await;
                super::warm::refill(&d, &rec);
            });
        } else {
            super::warm::refill(d, &rec);
        }
    }
    Ok(())
}

/// A `--rm` container that failed to start is removed, as dockerd does; waiters on
/// `condition=removed` get the start error's exit code.
fn remove_if_auto(d: &Arc<Daemon>, c: &Arc<Container>, code: i64) {
    if !c.record().host_config.auto_remove.unwrap_or(false) {
        return;
    }
    c.wake(|w| w.exit_code = code);
    let (d, c) = (d.clone(), c.clone());
    tokio::spawn(async move {
        if let Err(e) = super::lifecycle::remove(&d, &c, true, true).await {
            tracing::warn!(id = %c.id, "remove after failed start: {e}");
        }
    });
}
