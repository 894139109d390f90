//! Containers: the persisted record, the in-memory registry, and the lifecycle
//! operations (one module each).

pub mod attach;
pub mod cdi;
pub mod create;
pub mod exec;
pub mod fs;
pub mod health;
pub mod inspect;
pub mod lifecycle;
pub mod logs;
pub mod net;
pub mod restore;
pub mod shim;
pub mod standby;
pub mod start;
pub mod stats;
pub mod update;
pub mod verify;
pub mod volumes;
pub mod warm;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};

use berth_api::models::{ContainerConfig, HostConfig, NetworkingConfig};
use berth_errdefs::{Error, Result};
use berth_metadata::Table;
use serde::{Deserialize, Serialize};
use tokio::sync::{oneshot, watch};

use crate::Daemon;

/// Lifecycle status, as Docker names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    #[default]
    Created,
    Running,
    Paused,
    Restarting,
    Removing,
    Exited,
    Dead,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Restarting => "restarting",
            Status::Removing => "removing",
            Status::Exited => "exited",
            Status::Dead => "dead",
        }
    }
    /// Has a live process (running or paused).
    pub fn is_live(self) -> bool {
        matches!(self, Status::Running | Status::Paused)
    }
}

/// Runtime state of a container, persisted with its record.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct State {
    pub status: Status,
    pub pid: i32,
    pub exit_code: i64,
    pub error: String,
    pub started_at: String,
    pub finished_at: String,
    pub oom_killed: bool,
    /// Pid of the shim owning the running container.
    #[serde(default)]
    pub shim_pid: i32,
    /// Healthcheck state (containers with a healthcheck that started once).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<health::Health>,
}

/// Everything berth persists about a container.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub id: String,
    /// Without the leading `/`.
    pub name: String,
    pub created: String,
    /// The image as the user named it.
    pub image: String,
    pub image_id: String,
    /// The image config merged with the create request, as Docker stores it.
    pub config: ContainerConfig,
    pub host_config: HostConfig,
    #[serde(default)]
    pub networking: Option<NetworkingConfig>,
    pub path: String,
    pub args: Vec<String>,
    pub state: State,
    #[serde(default)]
    pub restart_count: i64,
    /// Stopped by the user (restart policies leave it alone).
    #[serde(default)]
    pub manually_stopped: bool,
    /// A builder's RUN step: started once, never restarted (its rootfs is mounted
    /// `volatile`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub build_step: bool,
    /// The mounts parsed at create (`Binds`, `Mounts`, `Tmpfs`): an anonymous volume
    /// keeps its generated name across starts. `None` in records written before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mount_points: Option<Vec<berth_volume::MountPoint>>,
    /// The networks the container is on: what was asked (network, aliases, static
    /// addresses) and, while it runs, its addresses and interfaces.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub endpoints: Vec<berth_network::Endpoint>,
    /// API 1.41's `Config.MacAddress`, as given: the MAC address of the container's
    /// endpoint on its network mode's network, whenever that endpoint is made (at
    /// create, or by a later `network connect` there), as dockerd applies it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_mac: Option<String>,
    /// Its published ports while it runs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<berth_network::ports::Binding>,
    /// `network disconnect` took it off its network mode's network: no start puts it
    /// back there (as dockerd, which starts a container on the networks it lists),
    /// until a `network connect` does.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub mode_network_left: bool,
}

impl Record {
    /// The container's cgroup path (cgroupfs driver): `<--cgroup-parent or /berth>/<id>`.
    pub fn cgroup_path(&self) -> String {
        let parent = self.host_config.cgroup_parent.as_deref().unwrap_or("").trim_matches('/');
        let parent = if parent.is_empty() { DEFAULT_CGROUP_PARENT } else { parent };
        format!("/{parent}/{}", self.id)
    }

    /// A container whose records need not wait for the disk: `--rm` (removed once it
    /// exits) and the builder's step containers (removed after the step, or left
    /// behind by a failed build). Their records go by group commit (see
    /// `Daemon::commit`); a running one leaves a copy in its runtime state, from which
    /// start-up recovers it if the daemon died before the flush.
    pub fn ephemeral(&self) -> bool {
        self.host_config.auto_remove.unwrap_or(false) || self.build_step
    }
}

/// What `wait` watches.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Wake {
    pub exits: u64,
    pub exit_code: i64,
    pub running: bool,
    pub removed: bool,
}

/// An attach that waits for the container to start.
pub enum PendingAttach {
    /// `start` connects it to the shim (which may not exist before the start).
    Waiting { stdin: bool, stdout: bool, stderr: bool, tx: oneshot::Sender<tokio::net::UnixStream> },
    /// Being connected already, because the container sits on a warm sandbox whose
    /// shim is up: `start` waits for it to be in place before the process runs.
    Connecting(tokio::task::JoinHandle<()>),
}

impl PendingAttach {
    /// Put the attach in place before the process runs: a waiting one is connected to
    /// the shim of the container whose state directory is `state` (the stream goes to
    /// the attach's connection), one being connected already is awaited. A waiting
    /// one's answer is read meanwhile: the shim puts an attach in place before it
    /// serves a `Start` or `Launch` sent after it (`berth-shim`'s `attach_at_once`),
    /// so the start need not wait for it.
    pub async fn connect(self, state: &std::path::Path) {
        match self {
            PendingAttach::Waiting { stdin, stdout, stderr, tx } => {
                let req = berth_shim_proto::Request::Attach { stdin, stdout, stderr };
                if let Ok(s) = shim::send(state, &req).await {
                    tokio::spawn(async move {
                        if let Ok((s, _)) = shim::stream_answer(s).await {
                            let _ = tx.send(s);
                        }
                    });
                }
            }
            PendingAttach::Connecting(task) => {
                let _ = task.await;
            }
        }
    }
}

/// A container known to the daemon.
pub struct Container {
    pub id: String,
    rec: Mutex<Record>,
    /// Serialises start/stop/remove/restart.
    pub op: tokio::sync::Mutex<()>,
    wake: watch::Sender<Wake>,
    pub pending: Mutex<Vec<PendingAttach>>,
    /// Keep a warm sandbox ready for containers like this one (see `warm`).
    pub warm: std::sync::atomic::AtomicBool,
    /// dockerd's restart manager: a stop or kill cancels the next restart...
    pub restart_canceled: std::sync::atomic::AtomicBool,
    /// ...and restarts back off (100 ms doubling to 1 min, reset after 10 s up).
    pub restart_delay: Mutex<std::time::Duration>,
    /// A forced removal is under way: the kill and the exit it causes are recorded
    /// without waiting for the disk (the removal's own commit is durable).
    pub removing: std::sync::atomic::AtomicBool,
}

impl Container {
    pub fn new(rec: Record) -> Arc<Container> {
        let running = rec.state.status.is_live();
        let (wake, _) = watch::channel(Wake { running, exit_code: rec.state.exit_code, ..Default::default() });
        Arc::new(Container {
            id: rec.id.clone(),
            rec: Mutex::new(rec),
            op: tokio::sync::Mutex::new(()),
            wake,
            pending: Mutex::new(Vec::new()),
            warm: std::sync::atomic::AtomicBool::new(true),
            restart_canceled: std::sync::atomic::AtomicBool::new(false),
            restart_delay: Mutex::new(std::time::Duration::ZERO),
            removing: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// A copy of the record.
    pub fn record(&self) -> Record {
        self.rec.lock().unwrap().clone()
    }

    pub fn name(&self) -> String {
        self.rec.lock().unwrap().name.clone()
    }

    pub fn status(&self) -> Status {
        self.rec.lock().unwrap().state.status
    }

    /// The creation time (RFC 3339), for ordering listings.
    pub fn created(&self) -> String {
        self.rec.lock().unwrap().created.clone()
    }

    /// The `docker ps` row, when the record passes `keep` (the record is read in place,
    /// not copied).
    pub fn summary_if(&self, d: &Daemon, keep: impl FnOnce(&Record) -> bool) -> Option<berth_api::models::ContainerSummary> {
        let g = self.rec.lock().unwrap();
        keep(&g).then(|| inspect::summary(d, &g))
    }

    pub fn tty(&self) -> bool {
        self.rec.lock().unwrap().config.tty.unwrap_or(false)
    }

    /// Change the record and persist it.
    pub fn update(&self, d: &Daemon, f: impl FnOnce(&mut Record)) -> Result<Record> {
        let mut g = self.rec.lock().unwrap();
        f(&mut g);
        d.db.put(Table::Containers, &g.id, &*g)?;
        Ok(g.clone())
    }

    /// Change the record in memory only.
    pub fn update_mem(&self, f: impl FnOnce(&mut Record)) -> Record {
        let mut g = self.rec.lock().unwrap();
        f(&mut g);
        g.clone()
    }

    /// Change the record and persist it by group commit (see `Daemon::commit`).
    pub fn update_lazy(&self, d: &Daemon, f: impl FnOnce(&mut Record)) -> Result<Record> {
        let mut g = self.rec.lock().unwrap();
        f(&mut g);
        d.commit(false, |tx| tx.put(Table::Containers, &g.id, &*g))?;
        Ok(g.clone())
    }

    pub fn subscribe(&self) -> watch::Receiver<Wake> {
        self.wake.subscribe()
    }

    pub fn wake(&self, f: impl FnOnce(&mut Wake)) {
        self.wake.send_modify(f);
    }
}

/// A record for unit tests: `cmd` run from `busybox` with no network, `--rm`.
#[cfg(test)]
pub(crate) fn test_record(id: &str, name: &str, cmd: &[&str], labels: &[(&str, &str)]) -> Record {
    let labels: serde_json::Map<String, serde_json::Value> =
        labels.iter().map(|(k, v)| (k.to_string(), serde_json::Value::from(*v))).collect();
    serde_json::from_value(serde_json::json!({
        "id": id, "name": name, "created": "2026-12-05T00:00:00Z", "image": "busybox",
        "image_id": "sha256:0123", "config": {"Cmd": cmd, "Labels": labels},
        "host_config": {"NetworkMode": "none", "AutoRemove": true},
        "networking": null, "path": cmd[0], "args": &cmd[1..],
        "state": serde_json::to_value(State::default()).unwrap(), "restart_count": 0,
        "manually_stopped": false, "build_step": false,
        "mount_points": [], "endpoints": [], "ports": []
    }))
    .unwrap()
}

/// The registry of containers, by id, with an index of their names.
#[derive(Default)]
pub struct Containers {
    map: RwLock<HashMap<String, Arc<Container>>>,
    /// Name → id, for lookups by name and for `create`'s generated names (each
    /// candidate used to be checked against every container's record: with 500
    /// containers, ~0.3 ms of every `run`). Taken after `map` when both are.
    names: RwLock<HashMap<String, String>>,
}

impl Containers {
    pub fn insert(&self, c: Arc<Container>) {
        let mut map = self.map.write().unwrap();
        self.names.write().unwrap().insert(c.name(), c.id.clone());
        map.insert(c.id.clone(), c);
    }

    pub fn remove(&self, id: &str) {
        let mut map = self.map.write().unwrap();
        if let Some(c) = map.remove(id) {
            let mut names = self.names.write().unwrap();
            let name = c.name();
            if names.get(&name).is_some_and(|n| n == id) {
                names.remove(&name);
            }
        }
    }

    /// Container `id` was renamed from `old` to `new` (its record says `new` already).
    pub fn renamed(&self, id: &str, old: &str, new: &str) {
        let _map = self.map.read().unwrap();
        let mut names = self.names.write().unwrap();
        if names.get(old).is_some_and(|n| n == id) {
            names.remove(old);
        }
        names.insert(new.to_owned(), id.to_owned());
    }

    pub fn all(&self) -> Vec<Arc<Container>> {
        self.map.read().unwrap().values().cloned().collect()
    }

    /// Find by full id, name (with or without `/`), or unique id prefix.
    pub fn get(&self, key: &str) -> Result<Arc<Container>> {
        let missing = || Error::not_found(format!("No such container: {key}"));
        if key.is_empty() {
            return Err(missing());
        }
        let map = self.map.read().unwrap();
        if let Some(c) = map.get(key) {
            return Ok(c.clone());
        }
        let name = key.strip_prefix('/').unwrap_or(key);
        if let Some(c) = self.names.read().unwrap().get(name).and_then(|id| map.get(id)) {
            return Ok(c.clone());
        }
        let mut found = map.values().filter(|c| c.id.starts_with(key));
        match (found.next(), found.next()) {
            (Some(c), None) => Ok(c.clone()),
            (Some(_), Some(_)) => Err(Error::invalid(format!("multiple IDs found with provided prefix: {key}"))),
            _ => Err(missing()),
        }
    }

    /// Is a name taken?
    pub fn name_taken(&self, name: &str) -> Option<String> {
        self.names.read().unwrap().get(name).cloned()
    }

    /// How many containers use each image id (no record is copied).
    pub fn count_by_image(&self) -> HashMap<String, i64> {
        let map = self.map.read().unwrap();
        let mut out: HashMap<String, i64> = HashMap::new();
        for c in map.values() {
            let r = c.rec.lock().unwrap();
            if let Some(n) = out.get_mut(r.image_id.as_str()) {
                *n += 1;
            } else {
                out.insert(r.image_id.clone(), 1);
            }
        }
        out
    }

    /// A container using an image: (container id, running).
    pub fn using_image(&self, image_id: &str) -> Option<(String, bool)> {
        let map = self.map.read().unwrap();
        let mut users = map.values().filter(|c| c.rec.lock().unwrap().image_id == image_id);
        let mut first = None;
        for c in users.by_ref() {
            let live = c.status().is_live();
            if live {
                return Some((c.id.clone(), true));
            }
            first.get_or_insert((c.id.clone(), false));
        }
        first
    }
}

/// Paths of one container.
pub struct Paths {
    /// `<data-root>/containers/<id>`: logs and (but for ephemeral containers) the
    /// generated /etc files.
    pub dir: PathBuf,
    /// `<exec-root>/c/<id>`: bundle, rootfs mount, shim socket, exit file.
    pub state: PathBuf,
}

impl Paths {
    pub fn new(d: &Daemon, id: &str) -> Paths {
        Paths { dir: d.cfg.data_root.join("containers").join(id), state: d.cfg.exec_root.join("c").join(id) }
    }
    pub fn log(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}-json.log"))
    }
    pub fn rootfs(&self) -> PathBuf {
        self.state.join("rootfs")
    }
    /// The container's /etc/hostname, /etc/hosts and /etc/resolv.conf, generated at
    /// each start and bound into it: in the data root's directory, or for an ephemeral
    /// container (`--rm`, a build step) in its exec-root state directory, a tmpfs —
    /// three files made and deleted on disk for every such container were ~0.4 ms of
    /// its start on a journal-less ext4 (inode allocation skips every inode freed in
    /// the last one to six minutes there), and nobody reads them after it is gone.
    pub fn etc_files(&self, ephemeral: bool) -> berth_oci::EtcFiles {
        let dir = if ephemeral { &self.state } else { &self.dir };
        berth_oci::EtcFiles { hosts: dir.join("hosts"), hostname: dir.join("hostname"), resolv_conf: dir.join("resolv.conf") }
    }
    pub fn netns(d: &Daemon, id: &str) -> PathBuf {
        d.cfg.exec_root.join("netns").join(id)
    }
}

/// A running `--rm` container's record, kept in its exec-root state dir: start-up
/// recovers the container from it if the lazy metadata commit was lost in a crash.
pub const RECORD_COPY: &str = "record.json";

/// The cgroup containers go under unless `--cgroup-parent` says otherwise.
pub const DEFAULT_CGROUP_PARENT: &str = "berth";

/// Top up what creates and starts take ready-made — the cgroup pool, the spare
/// snapshot and container directories — on the blocking pool.
pub fn refill_pools(d: &Arc<Daemon>) {
    if let Ok(rt) = tokio::runtime::Handle::try_current() {
        let (cgroups, snap, dirs) = (d.cgroup_pool.clone(), d.snap.clone(), d.container_dirs.clone());
        rt.spawn_blocking(move || {
            if let Some(pool) = cgroups {
                pool.fill();
            }
            snap.fill_spares();
            dirs.fill();
        });
    }
}

/// The libcontainer state root.
pub fn runtime_root(d: &Daemon) -> PathBuf {
    d.cfg.exec_root.join("runtime")
}

/// Now, as Docker writes times.
pub fn now() -> String {
    berth_image::config::now_rfc3339()
}

/// Docker's zero time, for times that never happened.
pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// Attributes of a container event: image, name and the container's labels.
pub fn event_attrs(rec: &Record) -> HashMap<String, String> {
    let mut a: HashMap<String, String> = rec.config.labels.clone().unwrap_or_default();
    a.insert("image".into(), rec.image.clone());
    a.insert("name".into(), rec.name.clone());
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(c: &Containers) -> Vec<String> {
        let mut v: Vec<String> = c.all().iter().map(|c| c.id.clone()).collect();
        v.sort();
        v
    }

    #[test]
    fn names_are_found_renamed_and_freed() {
        let cs = Containers::default();
        let (a, b) = ("a".repeat(64), "b".repeat(64));
        cs.insert(Container::new(test_record(&a, "web", &["true"], &[])));
        cs.insert(Container::new(test_record(&b, "db", &["true"], &[])));
        assert_eq!(cs.name_taken("web").as_deref(), Some(a.as_str()));
        assert_eq!(cs.get("/db").unwrap().id, b);
        assert_eq!(cs.get("db").unwrap().id, b);
        assert!(cs.name_taken("cache").is_none());
        // A rename: the new name finds it, the old one is free.
        let web = cs.get("web").unwrap();
        web.update_mem(|r| r.name = "front".into());
        cs.renamed(&a, "web", "front");
        assert_eq!(cs.get("front").unwrap().id, a);
        assert!(cs.name_taken("web").is_none());
        assert!(cs.get("web").is_err_and(|e| e.to_string().contains("No such container: web")));
        // Ids and id prefixes still resolve; a removal frees the name.
        assert_eq!(cs.get(&b[..12]).unwrap().id, b);
        cs.remove(&b);
        assert!(cs.name_taken("db").is_none());
        assert!(cs.get("db").is_err());
        assert_eq!(ids(&cs), vec![a.clone()]);
        // Removing an id that is not there leaves another container's name alone.
        cs.remove(&b);
        assert_eq!(cs.name_taken("front").as_deref(), Some(a.as_str()));
    }
}
