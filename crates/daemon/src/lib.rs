//! berthd as a library: the daemon state ([`Daemon`]), the HTTP server, and the API
//! handlers. `main.rs` only parses flags and calls [`run`].

pub mod api;
pub mod build;
pub mod cleanup;
pub mod container;
pub mod events;
pub mod http;
pub mod names;
pub mod server;
pub mod settings;
pub use server::TlsFlags;

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use berth_content::Store;
use berth_image::ImageStore;
use berth_metadata::Db;
use berth_snapshot::Snapshotter;

/// Daemon configuration (from dockerd-compatible flags).
#[derive(Debug, Clone)]
pub struct Config {
    pub data_root: PathBuf,
    pub exec_root: PathBuf,
    /// `unix:///path` listen addresses.
    pub hosts: Vec<String>,
    pub pidfile: Option<PathBuf>,
    pub insecure_registries: Vec<String>,
    /// The shim binary; default: `berth-shim` next to the daemon's executable.
    pub shim: Option<PathBuf>,
    /// Warm sandboxes kept per container shape (0: none); see `container::warm`.
    pub warm_containers: usize,
    /// Container cgroups made ahead of need (cgroup v1; 0: none); see
    /// `berth_oci::CgroupPool`.
    pub cgroup_pool: usize,
    /// The static init binary for `--init` (default: `docker-init` or `tini-static`
    /// from PATH).
    pub init_path: Option<PathBuf>,
    /// Bridge networking: the default bridge, address pools, MTU, nftables table.
    pub network: NetworkFlags,
    /// TLS for `tcp://` hosts.
    pub tls: server::TlsFlags,
    /// `--debug`/`debug` (as `info` reports it).
    pub debug: bool,
    /// `--label`/`labels`: the daemon's labels.
    pub labels: Vec<String>,
    /// `--registry-mirror`/`registry-mirrors`: tried first for Docker Hub pulls.
    pub registry_mirrors: Vec<String>,
    /// Where CDI device specs are read (`--cdi-spec-dir`, `cdi-spec-dirs`).
    pub cdi_spec_dirs: Vec<PathBuf>,
    /// `--max-concurrent-downloads`: layers one pull downloads at once.
    pub max_concurrent_downloads: usize,
    /// `--max-concurrent-uploads`: layers one push uploads at once.
    pub max_concurrent_uploads: usize,
    /// `--no-new-privileges`: containers get no_new_privs unless they say otherwise.
    pub no_new_privileges: bool,
    /// `--userns-remap`: containers run in a user namespace mapped to this user's
    /// subordinate ids (`default`: dockerd's `dockremap`).
    pub userns_remap: Option<String>,
    /// `--default-ulimit` / `default-ulimits`: (name, soft, hard) for containers that
    /// set no such limit.
    pub default_ulimits: Vec<(String, i64, i64)>,
    /// DNS settings for containers that set none.
    pub dns: DnsDefaults,
    /// `--log-driver`/`--log-opt`: the log configuration of containers that set none.
    pub log: Option<(String, std::collections::HashMap<String, String>)>,
    /// How `SIGHUP` re-reads the configuration (none: it does nothing).
    pub reload: Option<settings::Reload>,
}

/// dockerd's `--dns`, `--dns-search`, `--dns-opt`.
#[derive(Debug, Clone, Default)]
pub struct DnsDefaults {
    pub servers: Vec<String>,
    pub search: Vec<String>,
    pub options: Vec<String>,
}

/// dockerd's networking flags.
#[derive(Debug, Clone, Default)]
pub struct NetworkFlags {
    /// `-b/--bridge`: the default bridge's interface name; `none`: no default bridge
    /// (containers get only loopback unless given a network).
    pub bridge: String,
    /// `--bip` (gateway address with prefix).
    pub bip: Option<String>,
    /// `--fixed-cidr`.
    pub fixed_cidr: Option<String>,
    /// `--default-address-pool base=…,size=…` (repeatable).
    pub pools: Vec<String>,
    /// `--mtu`.
    pub mtu: u32,
    /// `--ip`: default address published ports bind to.
    pub ip: Option<String>,
}

/// Everything the API handlers work on.
pub struct Daemon {
    pub cfg: Config,
    pub db: Arc<Db>,
    pub images: ImageStore,
    pub snap: Snapshotter,
    /// Containers' directories (`<data-root>/containers/<id>`) made ahead of need: a
    /// container created without a warm sandbox gets one renamed instead of an ext4
    /// `mkdir` on its create's path.
    pub container_dirs: Arc<berth_snapshot::SpareDirs>,
    pub containers: container::Containers,
    pub events: events::Events,
    pub execs: container::exec::Execs,
    pub shim_path: PathBuf,
    /// A shim started ahead of the next container that needs one.
    pub standby: Arc<container::standby::Standby>,
    /// A network namespace made ahead of the next container that needs one.
    pub netns_pool: berth_network::netns::Pool,
    /// Cgroups made ahead of the next containers (cgroup v1 hosts).
    pub cgroup_pool: Option<Arc<berth_oci::CgroupPool>>,
    pub started_at: chrono::DateTime<chrono::Utc>,
    pub warm: container::warm::Warm,
    pub networks: berth_network::Networks,
    pub volumes: berth_volume::Volumes,
    /// Volumes each running container holds (released at its teardown).
    pub volume_users: std::sync::Mutex<std::collections::HashMap<String, Vec<String>>>,
    /// The embedded DNS server's tasks, by container.
    pub dns_tasks: std::sync::Mutex<std::collections::HashMap<String, Vec<tokio::task::AbortHandle>>>,
    /// Wakes the flusher of lazy metadata commits (see [`Daemon::commit`]).
    flush: Arc<tokio::sync::Notify>,
    /// Removals nobody waits for, run when starts do not need the CPU.
    pub cleaner: cleanup::Cleaner,
    /// Settings `SIGHUP` reloads (labels, registries, debug).
    pub live: std::sync::RwLock<settings::Live>,
    /// `--userns-remap`: the remapped user and the id map every container that does
    /// not ask for `--userns host` runs with.
    pub userns: Option<berth_userns::Remap>,
    /// The data root's lock, held for the daemon's life: one berthd per data root.
    _lock: std::fs::File,
}

impl Daemon {
    /// The id map of a container: the daemon's remap unless it runs with
    /// `--userns host`.
    pub fn idmap_for(&self, hc: Option<&berth_api::models::HostConfig>) -> Option<&berth_userns::IdMap> {
        let host = hc.and_then(|h| h.userns_mode.as_deref()) == Some("host");
        self.userns.as_ref().filter(|_| !host).map(|r| &r.map)
    }

    /// The daemon's id map (`--userns-remap`): what it creates for containers (upper
    /// dirs, /etc files, volumes, copied-in files) is owned by the map's root, whatever
    /// a container's own user namespace mode (dockerd's root identity).
    pub fn remap(&self) -> Option<&berth_userns::IdMap> {
        self.userns.as_ref().map(|r| &r.map)
    }
}

/// Where the user namespace remapped containers join is pinned.
pub fn userns_pin(cfg: &Config) -> PathBuf {
    cfg.exec_root.join("userns")
}

/// `--userns-remap`: resolve the user, and move the daemon's state to
/// `<data-root>/<uid>.<gid>` as dockerd does (images, containers and volumes of a
/// remapped daemon are its own). The remapped root must be able to walk to its
/// containers' root filesystems: the data and exec roots are opened to `o+x` (dockerd's
/// 0711) and every directory above them is checked.
fn userns_root(cfg: &mut Config, value: &str) -> anyhow::Result<Option<berth_userns::Remap>> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let Some(r) = berth_userns::resolve(value, &berth_userns::Files::default())? else { return Ok(None) };
    let (uid, gid) = r.map.root();
    for d in [&cfg.data_root, &cfg.exec_root] {
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o711))?;
    }
    let sub = cfg.data_root.join(r.map.root_dir_name());
    std::fs::create_dir_all(&sub)?;
    std::fs::set_permissions(&sub, std::fs::Permissions::from_mode(0o710))?;
    std::os::unix::fs::chown(&sub, Some(0), Some(gid))?;
    for top in [&sub, &cfg.exec_root] {
        let mut dir = top.as_path();
        while let Some(parent) = dir.parent() {
            dir = parent;
            let md = std::fs::metadata(dir)?;
            let mode = md.mode();
            let ok = mode & 0o001 != 0 || (md.uid() == uid && mode & 0o100 != 0) || (md.gid() == gid && mode & 0o010 != 0);
            if !ok {
                anyhow::bail!(
                    "a subdirectory in your graphroot path ({}) restricts access to the remapped root uid/gid; please fix by allowing 'o+x' permissions on existing directories",
                    top.display()
                );
            }
        }
    }
    tracing::info!(root = %sub.display(), remap = %r.spec(), "user namespaces: containers run remapped");
    cfg.data_root = sub;
    Ok(Some(r))
}

/// Take `<data-root>/berthd.lock` (an exclusive `flock`, gone with the process,
/// also after a `kill -9`) and write our pid into it. A second berthd on the same
/// data root is refused, as dockerd refuses a second daemon by its pidfile: two
/// daemons would each believe they own every container and record.
fn lock_data_root(root: &std::path::Path) -> anyhow::Result<std::fs::File> {
    use std::io::{Read, Seek, Write};
    use std::os::fd::AsRawFd;
    let path = root.join("berthd.lock");
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .with_context(|| format!("open {}", path.display()))?;
    // SAFETY: flock on a descriptor we own.
    if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        let mut pid = String::new();
        let _ = f.read_to_string(&mut pid);
        anyhow::bail!(
            "data root {} is in use by another berthd (pid {}); stop it, or give this one its own --data-root",
            root.display(),
            pid.trim()
        );
    }
    f.set_len(0)?;
    f.rewind()?;
    writeln!(f, "{}", std::process::id())?;
    Ok(f)
}

impl Daemon {
    /// Open every store under the data root and load the containers.
    pub async fn open(mut cfg: Config) -> anyhow::Result<Arc<Daemon>> {
        for d in [&cfg.data_root, &cfg.exec_root] {
            std::fs::create_dir_all(d).with_context(|| format!("create {}", d.display()))?;
        }
        let lock = lock_data_root(&cfg.data_root)?;
        use berth_shim_proto::islands::{tmpfs_root, ExecRoot};
        match tmpfs_root(&cfg.exec_root).with_context(|| format!("mount a tmpfs on the exec root {}", cfg.exec_root.display()))? {
            ExecRoot::Mounted => tracing::info!(dir = %cfg.exec_root.display(), "exec root: a tmpfs mounted (it was on disk)"),
            ExecRoot::Kept(fs) => tracing::info!(
                dir = %cfg.exec_root.display(),
                fs,
                "exec root left on disk: not empty (state of an earlier berthd); a tmpfs is mounted at a start that finds it empty"
            ),
            ExecRoot::Tmpfs => {}
        }
        for (dir, island) in berth_shim_proto::islands::make(&cfg.exec_root).context("make the exec root's mount islands")? {
            if let berth_shim_proto::islands::Island::Occupied(n) = island {
                tracing::info!(dir = %dir.display(), mounts = n, "not a mount island yet (containers from an earlier berthd are mounted there): one is made at a start with none");
            }
        }
        let cgroup_pool = match berth_oci::CgroupPool::open(container::DEFAULT_CGROUP_PARENT, cfg.cgroup_pool) {
            Ok(p) => p.map(Arc::new),
            Err(e) => {
                tracing::warn!("no cgroup pool (containers' cgroups are made at their start): {e}");
                None
            }
        };
        let shim_path = match &cfg.shim {
            Some(p) => p.clone(),
            None => find_shim()?,
        };
        let userns = match cfg.userns_remap.clone() {
            Some(v) => userns_root(&mut cfg, &v)?,
            None => None,
        };
        if let Some(log) = &cfg.log {
            container::verify::check_default_log_config(log)?;
        }
        let db = Arc::new(Db::open(&cfg.data_root.join("metadata.redb")).context("open metadata store")?);
        let content = Store::open(cfg.data_root.join("content")).context("open content store")?;
        let mut snap = Snapshotter::open(&cfg.data_root).context("open snapshotter")?;
        // Containers' own directories (logs, kept containers' /etc files), spread as
        // their snapshots are.
        let containers_dir = cfg.data_root.join("containers");
        std::fs::create_dir_all(&containers_dir).context("create containers dir")?;
        berth_snapshot::spread_subdirectories(&containers_dir);
        let container_dirs = Arc::new(berth_snapshot::SpareDirs::open(&containers_dir, &[], 2));
        if let Some(r) = &userns {
            let ns = berth_userns::make_userns(&shim_path, &r.map, &userns_pin(&cfg))?;
            let view = berth_userns::IdmappedView::mount(
                std::os::fd::AsFd::as_fd(&ns),
                &snap.layers_root(),
                &cfg.data_root.join("layers-userns"),
            )?;
            snap = snap.with_idmap(r.map.clone(), view.path);
        }
        let images = ImageStore::new(content, db.clone(), snap.clone());
        let net_cfg = network_config(&cfg.network)?;
        let networks = {
            let db = db.clone();
            tokio::task::spawn_blocking(move || berth_network::Networks::open(db, net_cfg))
                .await?
                .context("set up networking")?
        };
        let volumes = berth_volume::Volumes::open(db.clone(), &cfg.data_root)
            .context("open volume store")?
            .with_owner(userns.as_ref().map(|r| r.map.root()));
        let d = Arc::new(Daemon {
            userns,
            networks,
            volumes,
            volume_users: Default::default(),
            dns_tasks: Default::default(),
            containers: container::Containers::default(),
            events: events::Events::new(),
            execs: container::exec::Execs::default(),
            warm: container::warm::Warm::new(cfg.warm_containers),
            flush: Arc::new(tokio::sync::Notify::new()),
            cleaner: cleanup::Cleaner::new(),
            _lock: lock,
            live: std::sync::RwLock::new(settings::Live {
                debug: cfg.debug,
                labels: cfg.labels.clone(),
                insecure_registries: cfg.insecure_registries.clone(),
                registry_mirrors: cfg.registry_mirrors.clone(),
            }),
            cfg,
            db,
            images,
            snap,
            shim_path,
            standby: Default::default(),
            netns_pool: berth_network::netns::Pool::new(1),
            cgroup_pool,
            container_dirs,
            started_at: chrono::Utc::now(),
        });
        container::restore::restore_all(&d).await.context("restore containers")?;
        container::warm::spawn_reaper(d.clone());
        d.standby.refill(&d.shim_path, &container::runtime_root(&d));
        container::refill_pools(&d);
        spawn_flusher(d.db.clone(), d.flush.clone());
        Ok(d)
    }
}

impl Daemon {
    /// Plan a pull of `r` with the registries' settings now in force (insecure
    /// registries, Docker Hub mirrors).
    pub async fn resolve_pull(
        &self,
        r: berth_image::Reference,
        creds: berth_distribution::Credentials,
        platform: &str,
    ) -> berth_errdefs::Result<berth_distribution::Pull> {
        let live = self.live.read().unwrap().clone();
        berth_distribution::resolve(
            self.images.clone(),
            r,
            creds,
            &live.insecure_registries,
            &live.registry_mirrors,
            platform,
        )
        .await
        .map(|p| p.with_max_downloads(self.cfg.max_concurrent_downloads))
    }

    /// One metadata transaction. `durable`: wait for the disk, as almost everything
    /// does. Otherwise it is a group commit: visible at once, on disk at most
    /// [`FLUSH_DELAY`] later (the flusher's next durable commit) — for `--rm`
    /// containers, so that `run --rm` waits for no fsync.
    pub fn commit<R>(&self, durable: bool, f: impl FnOnce(&mut berth_metadata::Tx<'_>) -> berth_errdefs::Result<R>) -> berth_errdefs::Result<R> {
        if durable {
            return self.db.update(f);
        }
        let r = self.db.update_lazy(f)?;
        self.flush.notify_one();
        Ok(r)
    }

    /// A durable commit whose disk flush is shared with the other requests committing
    /// at the same time (group commit): the change is committed at once, and this
    /// returns once a flush covers it. For requests that come many at a time (`rm -f`
    /// of a hundred containers): each durable commit of its own would wait for the
    /// disk in turn.
    pub async fn commit_shared<R>(
        &self,
        f: impl FnOnce(&mut berth_metadata::Tx<'_>) -> berth_errdefs::Result<R>,
    ) -> berth_errdefs::Result<R> {
        let r = self.db.update_lazy(f)?;
        let point = self.db.lazy_commits();
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || db.flush_to(point))
            .await
            .map_err(|e| berth_errdefs::Error::internal(e.to_string()))??;
        Ok(r)
    }
}

/// How long lazy metadata commits may wait for the disk.
pub const FLUSH_DELAY: std::time::Duration = std::time::Duration::from_millis(100);

/// Makes lazy commits durable, [`FLUSH_DELAY`] after the first of a burst.
fn spawn_flusher(db: Arc<Db>, wake: Arc<tokio::sync::Notify>) {
    tokio::spawn(async move {
        loop {
            wake.notified().await;
            tokio::time::sleep(FLUSH_DELAY).await;
            let db = db.clone();
            if let Ok(Err(e)) = tokio::task::spawn_blocking(move || db.flush()).await {
                tracing::warn!("flush metadata: {e}");
            }
        }
    });
}

/// The network manager's settings from the daemon's flags.
fn network_config(f: &NetworkFlags) -> anyhow::Result<berth_network::Config> {
    use berth_network::ipam;
    if !berth_network::firewall::available() {
        anyhow::bail!("bridge networking needs the nft tool: install nftables (apt-get install nftables)");
    }
    let bridge = if f.bridge.is_empty() { "berth0".to_owned() } else { f.bridge.clone() };
    if bridge != "none" && (bridge.len() > 15 || bridge.contains('/')) {
        anyhow::bail!("invalid bridge name {bridge:?}: at most 15 characters");
    }
    let bip = f
        .bip
        .as_deref()
        .map(|b| b.parse::<ipnet::IpNet>().with_context(|| format!("invalid --bip {b:?}")))
        .transpose()?;
    let fixed_cidr = f
        .fixed_cidr
        .as_deref()
        .map(|b| b.parse::<ipnet::IpNet>().with_context(|| format!("invalid --fixed-cidr {b:?}")))
        .transpose()?;
    let pools = if f.pools.is_empty() {
        ipam::default_pools()
    } else {
        f.pools.iter().map(|p| ipam::parse_pool(p).map_err(|e| anyhow::anyhow!("{}", e.message()))).collect::<anyhow::Result<_>>()?
    };
    let table = if bridge == "berth0" { "berth".to_owned() } else { format!("berth_{}", bridge.replace(['-', '.'], "_")) };
    Ok(berth_network::Config {
        default_bridge: bridge,
        bip,
        fixed_cidr,
        pools,
        mtu: f.mtu,
        table,
        default_bind: f.ip.as_deref().map(|i| i.parse()).transpose().context("invalid --ip")?,
        host_resolv: PathBuf::from("/etc/resolv.conf"),
        host_hosts: PathBuf::from("/etc/hosts"),
    })
}

fn find_shim() -> anyhow::Result<PathBuf> {
    if let Ok(exe) = std::env::current_exe() {
        if let Some(dir) = exe.parent() {
            let p = dir.join("berth-shim");
            if p.exists() {
                return Ok(p);
            }
        }
    }
    for dir in std::env::var("PATH").unwrap_or_default().split(':') {
        let p = PathBuf::from(dir).join("berth-shim");
        if p.exists() {
            return Ok(p);
        }
    }
    anyhow::bail!("berth-shim not found next to berthd or in PATH (use --shim)")
}

/// `SIGHUP`: re-read the configuration file and apply what can change while running.
fn reload(d: &Arc<Daemon>) {
    let Some(r) = &d.cfg.reload else { return };
    tracing::info!(file = %r.file.display(), "got signal to reload configuration");
    match r.read() {
        Ok(l) => {
            tracing::info!(debug = l.debug, labels = ?l.labels, insecure_registries = ?l.insecure_registries, registry_mirrors = ?l.registry_mirrors, "reloaded configuration");
            let attrs = std::collections::HashMap::from([
                ("debug".to_owned(), l.debug.to_string()),
                ("labels".to_owned(), serde_json::to_string(&l.labels).unwrap_or_default()),
                ("insecure-registries".to_owned(), serde_json::to_string(&l.insecure_registries).unwrap_or_default()),
                ("registry-mirrors".to_owned(), serde_json::to_string(&l.registry_mirrors).unwrap_or_default()),
                ("live-restore".to_owned(), "true".to_owned()),
            ]);
            *d.live.write().unwrap() = l;
            let id = api::system::host_id(d);
            d.events.emit(berth_api::models::EventMessageTypeEnum::DAEMON, "reload", &id, attrs);
        }
        Err(e) => tracing::error!("{e:#}"),
    }
}

/// Run the daemon until SIGINT/SIGTERM.
pub async fn run(cfg: Config) -> anyhow::Result<()> {
    let hosts = cfg.hosts.clone();
    let pidfile = cfg.pidfile.clone();
    let daemon = Daemon::open(cfg).await?;
    if let Some(p) = &pidfile {
        std::fs::write(p, format!("{}\n", std::process::id()))?;
    }
    let mut servers = Vec::new();
    for h in &hosts {
        if let Some(path) = h.strip_prefix("unix://") {
            servers.push(tokio::spawn(server::serve_unix(daemon.clone(), PathBuf::from(path))));
        } else if let Some(spec) = h.strip_prefix("tcp://") {
            let tls = &daemon.cfg.tls;
            server::check_tcp_policy(spec, tls)?;
            let addr = server::tcp_addr(spec, tls.tls || tls.verify)?;
            let acceptor = server::tls_acceptor(tls)?;
            servers.push(tokio::spawn(server::serve_tcp(daemon.clone(), addr, acceptor)));
        } else {
            anyhow::bail!("unsupported listen address {h}: use unix:///path or tcp://host:port");
        }
    }
    tracing::info!(data_root = %daemon.cfg.data_root.display(), "berthd ready");
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    let mut servers = futures_util::future::select_all(servers);
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = term.recv() => break,
            _ = hup.recv() => reload(&daemon),
            r = &mut servers => {
                if let (Ok(Err(e)), _, _) = r { return Err(e); }
                break;
            }
        }
    }
    tracing::info!("berthd shutting down; containers keep running");
    container::warm::destroy_all(&daemon).await;
    daemon.cleaner.drain().await;
    let d = daemon.clone();
    let _ = tokio::task::spawn_blocking(move || {
        if let Some(pool) = &d.cgroup_pool {
            pool.close();
        }
        d.snap.remove_spares();
        d.container_dirs.remove_all();
    })
    .await;
    let d = daemon.clone();
    let _ = tokio::task::spawn_blocking(move || d.networks.shutdown()).await;
    for h in &hosts {
        if let Some(p) = h.strip_prefix("unix://") {
            let _ = std::fs::remove_file(p);
        }
    }
    if let Some(p) = &pidfile {
        let _ = std::fs::remove_file(p);
    }
    Ok(())
}
