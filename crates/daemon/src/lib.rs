//! berthd as a library: the daemon state ([`Daemon`]), the HTTP server, and the API
//! handlers. `main.rs` only parses flags and calls [`run`].

pub mod api;
pub mod build;
pub mod container;
pub mod events;
pub mod http;
pub mod names;
pub mod netns;
pub mod server;

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
}

/// Everything the API handlers work on.
pub struct Daemon {
    pub cfg: Config,
    pub db: Arc<Db>,
    pub images: ImageStore,
    pub snap: Snapshotter,
    pub containers: container::Containers,
    pub events: events::Events,
    pub execs: container::exec::Execs,
    pub shim_path: PathBuf,
    pub started_at: chrono::DateTime<chrono::Utc>,
    pub warm: container::warm::Warm,
    /// A flush of lazy metadata commits is scheduled.
    flush_pending: std::sync::atomic::AtomicBool,
}

impl Daemon {
    /// Open every store under the data root and load the containers.
    pub async fn open(cfg: Config) -> anyhow::Result<Arc<Daemon>> {
        for d in [&cfg.data_root, &cfg.exec_root] {
            std::fs::create_dir_all(d).with_context(|| format!("create {}", d.display()))?;
        }
        let shim_path = match &cfg.shim {
            Some(p) => p.clone(),
            None => find_shim()?,
        };
        let db = Arc::new(Db::open(&cfg.data_root.join("metadata.redb")).context("open metadata store")?);
        let content = Store::open(cfg.data_root.join("content")).context("open content store")?;
        let snap = Snapshotter::open(&cfg.data_root).context("open snapshotter")?;
        let images = ImageStore::new(content, db.clone(), snap.clone());
        let d = Arc::new(Daemon {
            containers: container::Containers::default(),
            events: events::Events::new(),
            execs: container::exec::Execs::default(),
            warm: container::warm::Warm::new(cfg.warm_containers),
            flush_pending: Default::default(),
            cfg,
            db,
            images,
            snap,
            shim_path,
            started_at: chrono::Utc::now(),
        });
        container::restore::restore_all(&d).await.context("restore containers")?;
        container::warm::spawn_reaper(d.clone());
        Ok(d)
    }
}

impl Daemon {
    /// Make the metadata commits that skipped the disk durable shortly (group commit):
    /// `--rm` containers are recorded lazily so that `run --rm` waits for no fsync,
    /// and are on disk at most [`FLUSH_DELAY`] later.
    pub fn flush_soon(self: &Arc<Self>) {
        if self.flush_pending.swap(true, std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        let d = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(FLUSH_DELAY).await;
            d.flush_pending.store(false, std::sync::atomic::Ordering::SeqCst);
            let db = d.db.clone();
            if let Ok(Err(e)) = tokio::task::spawn_blocking(move || db.flush()).await {
                tracing::warn!("flush metadata: {e}");
            }
        });
    }
}

/// How long lazy metadata commits may wait for the disk.
pub const FLUSH_DELAY: std::time::Duration = std::time::Duration::from_millis(100);

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
        let path = h
            .strip_prefix("unix://")
            .with_context(|| format!("unsupported listen address {h} (only unix:// is supported)"))?;
        servers.push(tokio::spawn(server::serve_unix(daemon.clone(), PathBuf::from(path))));
    }
    tracing::info!(data_root = %daemon.cfg.data_root.display(), "berthd ready");
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
        r = futures_util::future::select_all(servers) => {
            if let (Ok(Err(e)), _, _) = r { return Err(e); }
        }
    }
    tracing::info!("berthd shutting down; containers keep running");
    container::warm::destroy_all(&daemon).await;
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
