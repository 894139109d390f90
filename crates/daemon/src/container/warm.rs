//! Warm sandboxes: containers created ahead of time, so that `run` only has to start
//! one.
//!
//! Creating a container (namespaces, cgroups, the rootfs mounts, the seccomp filter)
//! is most of what `docker run` costs. After a container of some *shape* starts —
//! its image and every part of its OCI spec except the process's argv and
//! environment, plus its /etc files and stdio mode — berthd prepares one more of the
//! same shape: a rootfs, a network namespace, /etc files and a shim that has created
//! the container with a deferred process (`berth-shim run --deferred`). The next
//! `create` whose shape matches takes that sandbox's id; its `start` sends the real
//! argv and environment (`Launch`) instead of creating anything. A request of any
//! other shape, or when no sandbox is ready, takes the ordinary path, so behaviour is
//! the same either way; only the time differs.
//!
//! Sandboxes are not containers: no record, no name, no events; they never appear in
//! the API. They are destroyed when idle for [`IDLE`], when their image is removed,
//! on daemon shutdown, and on start-up if a crash left any behind. `--warm-containers
//! 0` turns them off.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use berth_shim_proto::{Ready, Request};
use tokio::sync::Notify;

use super::{lifecycle, shim, start, Paths, Record};
use crate::Daemon;

/// A sandbox unused this long is destroyed.
pub const IDLE: Duration = Duration::from_secs(600);
/// Extra sandboxes a shape may get while its runs come faster than one sandbox can
/// be made (see [`Warm::take`]).
const MAX_BURST: usize = 2;
/// A burst sandbox (one beyond `--warm-containers`) unused this long is destroyed
/// and its shape's burst ends.
const BURST_IDLE: Duration = Duration::from_secs(10);
/// Marker file in a sandbox's state dir (so start-up can tell leftovers apart).
const MARKER: &str = "warm";
/// The id that shapes are computed with, so that they do not depend on the id.
const PLACEHOLDER: &str = "0000000000000000000000000000000000000000000000000000000000000000";

struct Slot {
    id: String,
    image_id: String,
    init_pid: i32,
    /// Its networks as wired (addresses taken for its id, which the container takes).
    endpoints: Vec<berth_network::Endpoint>,
    /// The exit watch (`Wait`), sent to the shim when the sandbox was made, so that
    /// `start` has one request less to make before the process runs.
    wait: Option<tokio::net::UnixStream>,
    made: Instant,
}

#[derive(Default)]
struct Inner {
    /// Ready sandboxes by shape.
    ready: HashMap<String, Vec<Slot>>,
    /// Sandboxes being made, by shape.
    filling: HashMap<String, usize>,
    /// Shapes whose runs outpace sandbox creation: how many sandboxes beyond the
    /// configured depth each keeps, so that several are made at once. Creating one is
    /// mostly waiting on the kernel (an RCU grace period when the cgroups are
    /// joined, disk), so creations overlap well even on few CPUs.
    burst: HashMap<String, usize>,
    /// Containers created on a sandbox and not started yet, by id.
    claimed: HashMap<String, Claimed>,
}

/// What `start` takes over from the sandbox a container was created on.
pub struct Claimed {
    pub init_pid: i32,
    /// The sandbox's networks (addresses taken for its id, which the container has).
    pub endpoints: Vec<berth_network::Endpoint>,
    /// The exit watch already registered with the shim, if it could be.
    pub wait: Option<tokio::net::UnixStream>,
    /// The `Launch` request, worked out on the blocking pool as soon as `create`
    /// claimed the sandbox (the spec build reads the rootfs's `/etc/passwd`); dropped
    /// if the rootfs is written before the start (see [`Warm::forget_launch`]).
    pub launch: Option<tokio::task::JoinHandle<berth_errdefs::Result<Request>>>,
}

/// The pool of warm sandboxes.
pub struct Warm {
    /// Sandboxes kept per shape (0: off).
    depth: usize,
    /// Shutting down: no new sandboxes.
    closed: std::sync::atomic::AtomicBool,
    inner: Mutex<Inner>,
    changed: Notify,
    /// Shapes worked out so far, by their record's spec inputs (see [`shape`]).
    shapes: Mutex<HashMap<String, String>>,
}

/// Shapes remembered at most; the memo starts over beyond.
const SHAPES_KEPT: usize = 64;

/// A sandbox taken by `create`.
pub struct Claim {
    pub id: String,
    claimed: Claimed,
}

impl Warm {
    pub fn new(depth: usize) -> Warm {
        Warm {
            depth,
            closed: Default::default(),
            inner: Mutex::new(Inner::default()),
            changed: Notify::new(),
            shapes: Mutex::new(HashMap::new()),
        }
    }

    /// Take a sandbox of `shape`: a ready one, or one being made (waiting for it
    /// costs less than creating a container anew).
    pub async fn take(&self, shape: &str) -> Option<Claim> {
        if self.depth == 0 {
            return None;
        }
        tracing::trace!(%shape, "warm take");
        let deadline = Instant::now() + Duration::from_millis(200);
        let mut waited = false;
        loop {
            let notified = self.changed.notified();
            {
                let mut g = self.inner.lock().unwrap();
                if let Some(slots) = g.ready.get_mut(shape) {
                    let slot = slots.pop().expect("no empty lists are kept");
                    if slots.is_empty() {
                        g.ready.remove(shape);
                    }
                    let claimed = Claimed { init_pid: slot.init_pid, endpoints: slot.endpoints, wait: slot.wait, launch: None };
                    return Some(Claim { id: slot.id, claimed });
                }
                if g.filling.get(shape).copied().unwrap_or(0) == 0 {
                    return None;
                }
                // This run has to wait for a sandbox: this shape's runs come faster
                // than one sandbox is made.
                if !waited {
                    waited = true;
                    if let Some(b) = bump_burst(&mut g.burst, shape) {
                        tracing::debug!(burst = b, "warm sandboxes: burst");
                    }
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || tokio::time::timeout(left, notified).await.is_err() {
                return None;
            }
        }
    }

    /// Whether any sandbox is ready or being made: if not, `create` need not work out
    /// its shape.
    pub fn any(&self) -> bool {
        let g = self.inner.lock().unwrap();
        self.depth > 0 && !(g.ready.is_empty() && g.filling.is_empty())
    }

    /// `create` recorded a container on the sandbox: its `start` launches the process
    /// `launch` works out.
    pub fn claimed(&self, mut c: Claim, launch: tokio::task::JoinHandle<berth_errdefs::Result<Request>>) {
        c.claimed.launch = Some(launch);
        self.inner.lock().unwrap().claimed.insert(c.id, c.claimed);
    }

    /// The rootfs of `id`, on an unstarted sandbox, is being written (`docker cp`):
    /// its process (the user's home in `/etc/passwd`) is worked out again at the start.
    pub fn forget_launch(&self, id: &str) {
        if let Some(c) = self.inner.lock().unwrap().claimed.get_mut(id) {
            c.launch = None;
        }
    }

    /// The init process of the unstarted sandbox `id` sits on (it waits, pivoted into
    /// the container's rootfs, for its start): None when `id` is on none.
    pub fn claimed_pid(&self, id: &str) -> Option<i32> {
        self.inner.lock().unwrap().claimed.get(id).map(|c| c.init_pid)
    }

    /// If `id` sits on an unstarted sandbox: forget it and return what `start` needs.
    pub fn take_claimed(&self, id: &str) -> Option<Claimed> {
        self.inner.lock().unwrap().claimed.remove(id)
    }
}

/// One more burst sandbox for `shape` (up to [`MAX_BURST`]); the new burst if it grew.
fn bump_burst(burst: &mut HashMap<String, usize>, shape: &str) -> Option<usize> {
    let b = burst.entry(shape.to_owned()).or_default();
    (*b < MAX_BURST).then(|| {
        *b += 1;
        *b
    })
}

/// Could a container like this run on a sandbox? (Cheap checks before the shape,
/// which needs the spec; binds are excluded because building their spec creates
/// missing host directories.)
pub fn eligible(rec: &Record) -> bool {
    let hc = &rec.host_config;
    let c = &rec.config;
    !c.tty.unwrap_or(false)
        && !c.open_stdin.unwrap_or(false)
        && hc.binds.as_ref().is_none_or(|b| b.is_empty())
        && hc.mounts.as_ref().is_none_or(|m| m.is_empty())
        && hc.tmpfs.as_ref().is_none_or(|t| t.is_empty())
        && rec.mount_points.as_ref().is_none_or(|m| m.is_empty())
        && matches!(hc.network_mode.as_deref(), None | Some("default" | "none" | "bridge"))
        // A sandbox for `--pid container:X` would be a process waiting in X's PID
        // namespace: in X's `ps`, and, when X's init is killed, one the kernel must see
        // reaped before X's exit is reported — which its shim does only once started.
        && hc.pid_mode.as_deref().and_then(super::verify::container_ref).is_none()
        // Ports, links and endpoint settings (aliases, static addresses) are the
        // container's own: no sandbox made for another container could have them.
        && hc.port_bindings.as_ref().is_none_or(|p| p.is_empty())
        && !hc.publish_all_ports.unwrap_or(false)
        && hc.links.as_ref().is_none_or(|l| l.is_empty())
        && rec.endpoints.len() <= 1
        && rec.endpoints.iter().all(|e| e.aliases.is_empty() && e.want_ipv4.is_none() && e.want_ipv6.is_none() && e.want_mac.is_none())
        // Log attributes (a tag with the container's name, its labels) are its own too.
        && hc.log_config.as_ref().and_then(|l| l.config.as_ref()).is_none_or(|o| {
            !super::verify::LOG_ATTR_OPTS.iter().any(|k| o.contains_key(*k))
        })
}

/// The record as if it had id `id` (the default hostname follows the id).
pub fn rebase(rec: &Record, id: &str) -> Record {
    let mut r = rec.clone();
    if r.config.hostname.as_deref() == rec.id.get(..12) {
        r.config.hostname = Some(id[..12].to_owned());
    }
    r.id = id.to_owned();
    r
}

/// Everything about a container that a sandbox fixes, as a string: the OCI spec
/// without the process's argv and environment, the inputs of its /etc files, its
/// stdio mode and its image. Worked out once per set of inputs (a run asks twice: at
/// its create, and for the next sandbox after its start): building and serializing a
/// spec is half of a warm `create`'s time.
pub fn shape(d: &Daemon, rec: &Record) -> Option<String> {
    if !eligible(rec) {
        return None;
    }
    let r = rebase(rec, PLACEHOLDER);
    let memo = spec_inputs(&r);
    if let Some(k) = &memo {
        if let Some(found) = d.warm.shapes.lock().unwrap().get(k) {
            return Some(found.clone());
        }
    }
    let shape = shape_of(d, &r)?;
    if let Some(k) = memo {
        let mut shapes = d.warm.shapes.lock().unwrap();
        if shapes.len() >= SHAPES_KEPT {
            shapes.clear();
        }
        shapes.insert(k, shape.clone());
    }
    Some(shape)
}

/// What a (rebased) record's spec is built from, as a string (JSON objects with
/// sorted keys): the image, the container's config and host config, its command,
/// mounts and build-step flag. The spec also reads the daemon's settings, fixed for its
/// life, and the image, fixed by its id. None when it also depends on other state —
/// another container's namespaces, device nodes, CDI spec files — whose shape is then
/// worked out every time.
fn spec_inputs(r: &Record) -> Option<String> {
    let hc = &r.host_config;
    let joins = |m: &Option<String>| m.as_deref().and_then(super::verify::container_ref).is_some();
    if joins(&hc.pid_mode)
        || joins(&hc.ipc_mode)
        || hc.devices.as_ref().is_some_and(|d| !d.is_empty())
        || hc.device_requests.as_ref().is_some_and(|d| !d.is_empty())
    {
        return None;
    }
    let v = serde_json::to_value((&r.image_id, &r.config, hc, &r.path, &r.args, r.build_step, &r.mount_points)).ok()?;
    Some(v.to_string())
}

/// [`shape`], worked out.
fn shape_of(d: &Daemon, r: &Record) -> Option<String> {
    let spec = start::spec_for(d, r).ok()?;
    let mut v = serde_json::to_value(&spec).ok()?;
    if let Some(p) = v.get_mut("process").and_then(|p| p.as_object_mut()) {
        p.remove("args");
        p.remove("env");
        // Capability sets are hash sets in oci-spec: compare them in a fixed order.
        if let Some(caps) = p.get_mut("capabilities").and_then(|c| c.as_object_mut()) {
            for set in caps.values_mut() {
                if let Some(list) = set.as_array_mut() {
                    list.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
                }
            }
        }
    }
    let hc = &r.host_config;
    let key = serde_json::json!({
        "image": r.image_id,
        "spec": v,
        "network": hc.network_mode,
        // A `--rm` container's rootfs is mounted volatile (see `start::prepare`).
        "auto_remove": hc.auto_remove.unwrap_or(false),
        "extra_hosts": hc.extra_hosts,
        "dns": [hc.dns, hc.dns_search, hc.dns_options],
        "stdio": [r.config.tty, r.config.open_stdin, r.config.stdin_once],
        // The shim is started with the container's logging (driver, rotation): a
        // sandbox made for `--log-driver none` would keep the next one's output.
        "log": hc.log_config,
    });
    Some(key.to_string())
}

/// After a container of this shape started: make sure a sandbox of it is ready or
/// on its way.
pub fn refill(d: &Arc<Daemon>, template: &Record) {
    if d.warm.depth == 0 || d.warm.closed.load(std::sync::atomic::Ordering::SeqCst) {
        return;
    }
    let Some(key) = shape(d, template) else { return };
    tracing::trace!(%key, "warm refill");
    let missing = {
        let mut g = d.warm.inner.lock().unwrap();
        let have = g.ready.get(&key).map_or(0, Vec::len) + g.filling.get(&key).copied().unwrap_or(0);
        let want = d.warm.depth + g.burst.get(&key).copied().unwrap_or(0);
        let missing = want.saturating_sub(have);
        if missing == 0 {
            return;
        }
        *g.filling.entry(key.clone()).or_default() += missing;
        missing
    };
    for _ in 0..missing {
        fill(d, template, key.clone());
    }
}

/// Make one sandbox of shape `key` (already counted in `filling`) in the background.
fn fill(d: &Arc<Daemon>, template: &Record, key: String) {
    let id = hex::encode(rand::random::<[u8; 32]>());
    let rec = rebase(template, &id);
    let d = d.clone();
    tokio::spawn(async move {
        let made = make(&d, &rec).await;
        // Its image may have gone, or the daemon be shutting down, meanwhile.
        let wanted = d.images.get(&rec.image_id).ok().flatten().is_some()
            && !d.warm.closed.load(std::sync::atomic::Ordering::SeqCst);
        {
            let mut g = d.warm.inner.lock().unwrap();
            if let Some(n) = g.filling.get_mut(&key) {
                *n -= 1;
                if *n == 0 {
                    g.filling.remove(&key);
                }
            }
            match made {
                Ok((init_pid, endpoints, wait)) if wanted => {
                    tracing::debug!(id = %rec.id, "warm sandbox ready");
                    g.ready.entry(key).or_default().push(Slot {
                        id: rec.id.clone(),
                        image_id: rec.image_id.clone(),
                        init_pid,
                        endpoints,
                        wait,
                        made: Instant::now(),
                    });
                }
                Ok(_) => {
                    let (d2, id) = (d.clone(), rec.id.clone());
                    tokio::spawn(async move { destroy(&d2, &id).await });
                }
                Err(e) => tracing::debug!(id = %rec.id, "warm sandbox: {e}"),
            }
        }
        d.warm.changed.notify_waiters();
    });
}

/// A made sandbox: its init pid, its networks, its exit watch.
type Made = (i32, Vec<berth_network::Endpoint>, Option<tokio::net::UnixStream>);

/// Prepare the rootfs, namespaces and bundle, and have a shim create the container
/// with a deferred process; register the exit watch with the shim.
async fn make(d: &Arc<Daemon>, rec: &Record) -> Result<Made, String> {
    let paths = Paths::new(d, &rec.id);
    let (d2, r2) = (d.clone(), rec.clone());
    let prepared = tokio::task::spawn_blocking(move || {
        let wired = start::prepare(&d2, &r2)?;
        std::fs::write(Paths::new(&d2, &r2.id).state.join(MARKER), b"")?;
        Ok::<_, berth_errdefs::Error>(wired)
    })
    .await
    .map_err(|e| e.to_string())?;
    let mut endpoints = Vec::new();
    let ready = match prepared {
        Ok(w) => {
            endpoints = w.endpoints;
            start::spawn_shim(d, rec, &paths, true).await.map_err(|e| e.message().to_owned())
        }
        Err(e) => Err(e.message().to_owned()),
    };
    match ready {
        // Without the watch, `start` sends it as for any container.
        Ok(Ready::Ok { init_pid, .. }) => Ok((init_pid, endpoints, shim::send_wait(&paths.state).await.ok())),
        Ok(Ready::Error { message }) | Err(message) => {
            let (d, id) = (d.clone(), rec.id.clone());
            let _ = tokio::task::spawn_blocking(move || start::purge(&d, &id)).await;
            Err(message)
        }
    }
}

/// [`Warm::take`], passing over a sandbox whose init died while it waited (killed by
/// hand, by the OOM killer): its `Launch` could only fail. It is destroyed in the
/// background; the refill after this run makes another.
pub async fn take(d: &Arc<Daemon>, shape: &str) -> Option<Claim> {
    loop {
        let c = d.warm.take(shape).await?;
        if alive(c.claimed.init_pid) {
            return Some(c);
        }
        tracing::debug!(id = %c.id, "warm sandbox: its init died while it waited");
        let (d, id) = (d.clone(), c.id);
        tokio::spawn(async move { destroy(&d, &id).await });
    }
}

/// Whether process `pid` is running (not gone, not a zombie). A sandbox's init stays a
/// zombie until its shim, which reaps only once the container started, is stopped: its
/// pid is not reused meanwhile.
fn alive(pid: i32) -> bool {
    // In one read (on the claim's path): `read_to_string` probes a procfs file 32 bytes
    // at a time, six reads for this one.
    let Ok(stat) = berth_shim_proto::read_proc(format!("/proc/{pid}/stat")) else { return false };
    // The state follows the command name, which is in parentheses and may hold any byte.
    match stat.rfind(')').and_then(|i| stat[i + 1..].split_whitespace().next()) {
        Some(state) => !matches!(state, "Z" | "X" | "x"),
        None => false,
    }
}

/// The sandbox's container now belongs to a record: drop the leftover marker.
pub fn adopt(d: &Daemon, id: &str) {
    let _ = std::fs::remove_file(Paths::new(d, id).state.join(MARKER));
}

/// Kill a sandbox's container, wait for its shim to finish, remove its files.
pub async fn destroy(d: &Arc<Daemon>, id: &str) {
    stop_shim(d, id).await;
    let (d, id) = (d.clone(), id.to_owned());
    let _ = tokio::task::spawn_blocking(move || start::purge(&d, &id)).await;
}

/// A container that sat on a sandbox is removed before it ever started.
pub async fn release(d: &Arc<Daemon>, id: &str) {
    if d.warm.take_claimed(id).is_some() {
        destroy(d, id).await;
    }
}

/// Destroy the ready sandboxes chosen by `pick`.
async fn evict(d: &Arc<Daemon>, pick: impl Fn(&Slot) -> bool) {
    let gone: Vec<String> = {
        let mut g = d.warm.inner.lock().unwrap();
        let mut gone = Vec::new();
        for slots in g.ready.values_mut() {
            slots.retain(|s| {
                let drop = pick(s);
                if drop {
                    gone.push(s.id.clone());
                }
                !drop
            });
        }
        g.ready.retain(|_, v| !v.is_empty());
        gone
    };
    for id in gone {
        destroy(d, &id).await;
    }
}

/// Before an image is removed: its sandboxes hold its layers mounted.
pub async fn evict_image(d: &Arc<Daemon>, image_id: &str) {
    evict(d, |s| s.image_id == image_id).await;
}

/// Before a network is removed: sandboxes hold addresses on it.
pub async fn evict_network(d: &Arc<Daemon>, network_id: &str) {
    evict(d, |s| s.endpoints.iter().any(|e| e.network_id == network_id)).await;
}

/// Destroy sandboxes idle for longer than [`IDLE`], and burst sandboxes idle for
/// longer than [`BURST_IDLE`] (ending their shape's burst).
pub fn spawn_reaper(d: Arc<Daemon>) {
    if d.warm.depth == 0 {
        return;
    }
    tokio::spawn(async move {
        let mut ticks = 0u32;
        loop {
            tokio::time::sleep(BURST_IDLE / 2).await;
            ticks += 1;
            trim_bursts(&d).await;
            if ticks.is_multiple_of(12) {
                evict(&d, |s| s.made.elapsed() > IDLE).await;
            }
        }
    });
}

/// Shapes with more ready sandboxes than `--warm-containers` whose newest has sat
/// unused for [`BURST_IDLE`]: the burst is over; keep the configured depth.
async fn trim_bursts(d: &Arc<Daemon>) {
    let gone: Vec<String> = {
        let mut g = d.warm.inner.lock().unwrap();
        let depth = d.warm.depth;
        let mut gone = Vec::new();
        let mut ended = Vec::new();
        for (shape, slots) in g.ready.iter_mut() {
            if slots.len() > depth && slots.iter().all(|s| s.made.elapsed() > BURST_IDLE) {
                gone.extend(slots.drain(depth..).map(|s| s.id));
                ended.push(shape.clone());
            }
        }
        for shape in ended {
            g.burst.remove(&shape);
        }
        gone
    };
    for id in gone {
        destroy(d, &id).await;
    }
}

/// Daemon shutdown: no sandbox outlives the daemon (containers do).
pub async fn destroy_all(d: &Arc<Daemon>) {
    d.warm.closed.store(true, std::sync::atomic::Ordering::SeqCst);
    // Sandboxes being made become ready (or fail) shortly: wait for them.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let notified = d.warm.changed.notified();
        if d.warm.inner.lock().unwrap().filling.is_empty() || Instant::now() > deadline {
            break;
        }
        let _ = tokio::time::timeout(Duration::from_millis(100), notified).await;
    }
    evict(d, |_| true).await;
    let claimed: Vec<String> = d.warm.inner.lock().unwrap().claimed.drain().map(|(id, _)| id).collect();
    // A container created on a sandbox but never started keeps its record; its
    // sandbox goes, and a later start takes the ordinary path.
    for id in claimed {
        stop_shim(d, &id).await;
        start::teardown_blocking(d, &id).await;
    }
}

/// Kill the container of a shim that is still there and wait for the shim to end.
pub async fn stop_shim(d: &Arc<Daemon>, id: &str) {
    let state = Paths::new(d, id).state;
    if shim::call(&state, &Request::Kill { signal: libc::SIGKILL, all: true }).await.is_ok() {
        let _ = tokio::time::timeout(Duration::from_secs(10), lifecycle::wait_shim(&state)).await;
    }
}

/// Start-up: runtime state without a container record — sandboxes a crashed daemon
/// left, or a removed container whose clean-up it did not finish — is destroyed.
pub async fn reap_leftovers(d: &Arc<Daemon>, records: &HashSet<String>) {
    let Ok(entries) = std::fs::read_dir(d.cfg.exec_root.join("c")) else { return };
    for e in entries.flatten() {
        let id = e.file_name().to_string_lossy().into_owned();
        if !records.contains(&id) {
            tracing::info!(%id, warm = e.path().join(MARKER).exists(), "removing leftover runtime state");
            destroy(d, &id).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static STATE: std::sync::LazyLock<serde_json::Value> =
        std::sync::LazyLock::new(|| serde_json::to_value(super::super::State::default()).unwrap());

    #[test]
    fn bursts_are_capped() {
        let mut b = HashMap::new();
        assert_eq!(bump_burst(&mut b, "s"), Some(1));
        assert_eq!(bump_burst(&mut b, "s"), Some(2));
        assert_eq!(bump_burst(&mut b, "s"), None);
        assert_eq!(b["s"], MAX_BURST);
        assert_eq!(bump_burst(&mut b, "t"), Some(1));
    }

    #[test]
    fn rebase_moves_the_default_hostname_only() {
        let mut rec: Record = serde_json::from_value(serde_json::json!({
            "id": "abcdef0123456789", "name": "n", "created": "", "image": "i", "image_id": "sha256:x",
            "config": {"Hostname": "abcdef012345"}, "host_config": {}, "path": "true", "args": [],
            "state": STATE.clone()
        }))
        .unwrap();
        let r = rebase(&rec, PLACEHOLDER);
        assert_eq!(r.id, PLACEHOLDER);
        assert_eq!(r.config.hostname.as_deref(), Some("000000000000"));
        rec.config.hostname = Some("web".into());
        assert_eq!(rebase(&rec, PLACEHOLDER).config.hostname.as_deref(), Some("web"));
    }

    #[test]
    fn tty_stdin_and_binds_are_not_eligible() {
        let base: Record = serde_json::from_value(serde_json::json!({
            "id": "a", "name": "n", "created": "", "image": "i", "image_id": "sha256:x",
            "config": {}, "host_config": {"NetworkMode": "default"}, "path": "true", "args": [],
            "state": STATE.clone()
        }))
        .unwrap();
        assert!(eligible(&base));
        let mut r = base.clone();
        r.config.tty = Some(true);
        assert!(!eligible(&r));
        let mut r = base.clone();
        r.config.open_stdin = Some(true);
        assert!(!eligible(&r));
        let mut r = base.clone();
        r.host_config.binds = Some(vec!["/tmp:/x".into()]);
        assert!(!eligible(&r));
        let mut r = base;
        r.host_config.network_mode = Some("host".into());
        assert!(!eligible(&r));
    }

    use super::super::test_record as record;

    #[test]
    fn spec_inputs_ignore_what_the_spec_does_not_read() {
        let a = record(PLACEHOLDER, "a", &["true"], &[("x", "1"), ("y", "2"), ("z", "3")]);
        let mut b = record(PLACEHOLDER, "b", &["true"], &[("z", "3"), ("y", "2"), ("x", "1")]);
        b.state.status = super::super::Status::Running;
        b.restart_count = 3;
        assert_eq!(spec_inputs(&a), spec_inputs(&b), "name, state or label order changed the inputs");
        assert!(spec_inputs(&a).is_some());
        let other = record(PLACEHOLDER, "a", &["false"], &[("x", "1"), ("y", "2"), ("z", "3")]);
        assert_ne!(spec_inputs(&a), spec_inputs(&other), "another command has other inputs");
    }

    #[test]
    fn a_zombie_or_a_missing_process_is_not_alive() {
        assert!(alive(std::process::id() as i32));
        assert!(!alive(i32::MAX));
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id() as i32;
        // Not reaped yet: a zombie once it has exited.
        let deadline = Instant::now() + Duration::from_secs(10);
        while alive(pid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(!alive(pid), "an exited, unreaped child is not alive");
        assert!(std::fs::metadata(format!("/proc/{pid}")).is_ok(), "still a zombie");
        child.wait().unwrap();
    }

    #[test]
    fn no_sandbox_waits_in_another_containers_pid_namespace() {
        let mut r = record(PLACEHOLDER, "a", &["true"], &[]);
        assert!(eligible(&r));
        r.host_config.pid_mode = Some("container:other".into());
        assert!(!eligible(&r));
        r.host_config.pid_mode = Some("host".into());
        assert!(eligible(&r));
    }

    #[test]
    fn specs_that_read_other_state_are_not_remembered() {
        let mut r = record(PLACEHOLDER, "a", &["true"], &[]);
        r.host_config.pid_mode = Some("container:other".into());
        assert_eq!(spec_inputs(&r), None);
        let mut r = record(PLACEHOLDER, "a", &["true"], &[]);
        r.host_config.ipc_mode = Some("container:other".into());
        assert_eq!(spec_inputs(&r), None);
        let mut r = record(PLACEHOLDER, "a", &["true"], &[]);
        r.host_config.device_requests = Some(vec![Default::default()]);
        assert_eq!(spec_inputs(&r), None);
    }
}
