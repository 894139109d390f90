//! After start: exit monitoring, restart policies, stop/kill/restart, wait, remove,
//! pause, rename, resize.

use std::sync::Arc;
use std::time::Duration;

use berth_api::models::{EventMessageTypeEnum, RestartPolicyNameEnum};
use berth_errdefs::{Error, Result};
use berth_metadata::Table;
use berth_shim_proto::{ExitStatus, Request, Response, EXIT_FILE};

use super::{event_attrs, now, shim, Container, Paths, Status};
use crate::Daemon;

/// Watch a running container's shim and record the exit when it comes; `waiting`: a
/// connection that already sent `Wait`.
pub fn spawn_monitor(d: Arc<Daemon>, c: Arc<Container>, waiting: Option<tokio::net::UnixStream>) {
    tokio::spawn(async move {
        let state = Paths::new(&d, &c.id).state;
        let answer = match waiting {
            Some(mut s) => match shim::read_response(&mut s).await {
                Ok(Response::Exited(st)) => Some(st),
                _ => None,
            },
            None => wait_shim(&state).await,
        };
        let status = match answer.or_else(|| read_exit_file(&state)) {
            Some(st) => st,
            // The shim was killed (by hand, by the OOM killer) while its container ran.
            None => {
                let st = ExitStatus {
                    code: 255,
                    finished_at: now(),
                    oom_killed: false,
                    error: Some("container shim exited without reporting an exit status".into()),
                };
                let rec = c.record();
                let _ = tokio::task::spawn_blocking(move || kill_unreachable(&rec, &state)).await;
                st
            }
        };
        on_exit(&d, &c, status).await;
    });
}

pub(super) async fn wait_shim(state: &std::path::Path) -> Option<ExitStatus> {
    let mut s = shim::send_wait(state).await.ok()?;
    match shim::read_response(&mut s).await.ok()? {
        Response::Exited(st) => Some(st),
        _ => None,
    }
}

/// The exit status a shim left behind.
pub fn read_exit_file(state: &std::path::Path) -> Option<ExitStatus> {
    let raw = std::fs::read(state.join(EXIT_FILE)).ok()?;
    serde_json::from_slice(&raw).ok()
}

/// A live container whose shim cannot be reached, or ended without an exit status, is
/// recorded as exited: nothing of it may run on (a restart policy would start it a
/// second time beside it, and its cgroup could not go). Its shim, if it lives without
/// its socket (the exec root was wiped under it), and whatever is left in the
/// container's cgroup are killed, as containerd's clean-up after a dead shim kills
/// the container's processes.
pub(super) fn kill_unreachable(rec: &super::Record, state: &std::path::Path) {
    let pid = rec.state.shim_pid;
    // The shim writes its log to the container's state directory: that names it.
    let log = state.join(berth_shim_proto::LOG_FILE).to_string_lossy().into_owned();
    let its_shim = pid > 0 && std::fs::read_link(format!("/proc/{pid}/fd/2")).is_ok_and(|p| p.to_string_lossy().starts_with(&log));
    if its_shim {
        // SAFETY: kill takes two integers.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
        }
    }
    let cg = rec.cgroup_path();
    if berth_shim_proto::kill_cgroup(&cg) > 0 || its_shim {
        tracing::warn!(id = %rec.id, "killed what ran on of a container whose shim is gone");
        berth_shim_proto::remove_cgroup(&cg, std::time::Duration::from_secs(2));
    }
}

/// Record an exit, clean up the runtime, notify waiters, apply the restart policy.
pub async fn on_exit(d: &Arc<Daemon>, c: &Arc<Container>, st: ExitStatus) {
    tracing::debug!(id = %c.id, code = st.code, "container exited");
    // A `--rm` container is removed (a durable commit) right after this, so its exit
    // need not wait for the disk; after a crash in between, restore removes it.
    let auto_remove = c.record().host_config.auto_remove.unwrap_or(false);
    let record_exit = |r: &mut super::Record| {
        r.state.pid = 0;
        r.state.exit_code = st.code as i64;
        r.state.finished_at = st.finished_at.clone();
        r.state.oom_killed = st.oom_killed;
        if let Some(e) = &st.error {
            r.state.error = e.clone();
        }
        // As dockerd's exit handler, the restart decision is taken with the exit: a
        // container that will be restarted goes from running straight to restarting,
        // never seen exited while its runtime is torn down.
        let canceled = c.restart_canceled.load(std::sync::atomic::Ordering::SeqCst);
        r.state.status = if !auto_remove && !canceled && should_restart(r, r.manually_stopped) {
            Status::Restarting
        } else {
            Status::Exited
        };
        // Addresses and ports go with the namespace (teardown frees them).
        for ep in &mut r.endpoints {
            ep.deactivate();
        }
        r.ports.clear();
    };
    // A `--rm` container's exit is not written at all: its removal follows at once
    // (after a crash in between, start-up finds it running, its shim gone, and
    // removes it).
    let updated = if auto_remove {
        Ok(c.update_mem(record_exit))
    } else if c.record().build_step || c.removing.load(std::sync::atomic::Ordering::SeqCst) {
        // Removed right after the step (or kept by a failed build), or by the forced
        // removal that killed it: group commit.
        c.update_lazy(d, record_exit)
    } else {
        c.update(d, record_exit)
    };
    let rec = match updated {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(id = %c.id, "record exit: {e}");
            c.record()
        }
    };
    // Its volumes are given back at once (a `volume rm` right after `run --rm` finds
    // them unmounted), and so are its addresses, names and published ports, as
    // dockerd releases them before the waiters hear of the exit (a `network rm`
    // right after `run --rm --network n` or `rm -f` finds no endpoint of it). The
    // other runtime state of a container being removed (`--rm`, or the `rm -f` that
    // killed it) goes with its removal, after the waiters were told; any other
    // container is torn down now, before it can start again.
    super::volumes::release(d, &c.id);
    let removing = auto_remove || c.removing.load(std::sync::atomic::Ordering::SeqCst);
    if !removing {
        super::start::teardown_blocking(d, &c.id).await;
    } else if !rec.endpoints.is_empty() {
        let d = d.clone();
        let id = c.id.clone();
        let _ = tokio::task::spawn_blocking(move || super::net::unwire(&d, &id)).await;
    }
    if st.oom_killed {
        d.events.emit(EventMessageTypeEnum::CONTAINER, "oom", &c.id, event_attrs(&rec));
    }
    let mut attrs = event_attrs(&rec);
    attrs.insert("exitCode".into(), st.code.to_string());
    d.events.emit(EventMessageTypeEnum::CONTAINER, "die", &c.id, attrs);
    super::net::emit_for(d, "disconnect", &rec);
    c.wake(|w| {
        w.exits += 1;
        w.exit_code = st.code as i64;
        w.running = false;
    });
    if auto_remove {
        if let Err(e) = remove(d, c, true, true).await {
            if !e.is_not_found() {
                tracing::warn!(id = %c.id, "auto-remove: {e}");
            }
        }
        return;
    }
    // Restarting (decided with the exit): running as far as rm/stop/exec are
    // concerned, without a pid. A stop or kill since then made it exited.
    if c.status() == Status::Restarting {
        let delay = next_delay(c, since_rfc3339(&rec.state.started_at));
        let (d, c) = (d.clone(), c.clone());
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let _op = c.op.lock().await;
            let r = c.record();
            if r.state.status != Status::Restarting || c.restart_canceled.load(std::sync::atomic::Ordering::SeqCst) {
                return;
            }
            let _ = c.update(&d, |r| r.restart_count += 1);
            if let Err(e) = super::start::start_locked(&d, &c).await {
                tracing::warn!(id = %c.id, "restart: {e}");
                let _ = c.update(&d, |r| {
                    if r.state.status == Status::Restarting {
                        r.state.status = Status::Exited;
                    }
                });
            }
        });
    }
}

/// A start by hand (`start`, `restart`, the daemon's own start-up) gives the restart
/// policy a fresh manager: not canceled, no back-off, no restarts counted.
pub fn reset_restart_manager(d: &Daemon, c: &Container) -> Result<()> {
    c.restart_canceled.store(false, std::sync::atomic::Ordering::SeqCst);
    *c.restart_delay.lock().unwrap() = Duration::ZERO;
    if c.record().restart_count != 0 {
        c.update(d, |r| r.restart_count = 0)?;
    }
    Ok(())
}

/// How long a container ran, from its start time.
fn since_rfc3339(t: &str) -> Duration {
    chrono::DateTime::parse_from_rfc3339(t)
        .ok()
        .and_then(|s| (chrono::Utc::now() - s.with_timezone(&chrono::Utc)).to_std().ok())
        .unwrap_or_default()
}

/// dockerd's back-off: 100 ms, doubled at each restart up to a minute, back to 100 ms
/// once a run lasted 10 s.
fn next_delay(c: &Container, ran_for: Duration) -> Duration {
    let mut d = c.restart_delay.lock().unwrap();
    if ran_for >= Duration::from_secs(10) {
        *d = Duration::ZERO;
    }
    *d = if d.is_zero() { Duration::from_millis(100) } else { (*d * 2).min(Duration::from_secs(60)) };
    *d
}

/// dockerd's restart decision: `always` whatever happened, `unless-stopped` unless
/// stopped by hand, `on-failure` after a non-zero exit within the retry budget.
pub fn should_restart(rec: &super::Record, manually_stopped: bool) -> bool {
    let Some(p) = &rec.host_config.restart_policy else { return false };
    match p.name.unwrap_or(RestartPolicyNameEnum::NO) {
        RestartPolicyNameEnum::ALWAYS => true,
        RestartPolicyNameEnum::UNLESS_STOPPED => !manually_stopped,
        RestartPolicyNameEnum::ON_FAILURE => {
            let max = p.maximum_retry_count.unwrap_or(0);
            rec.state.exit_code != 0 && (max == 0 || rec.restart_count < max)
        }
        _ => false,
    }
}

/// Parse a signal name or number (`TERM`, `SIGTERM`, `15`).
pub fn parse_signal(s: &str) -> Result<i32> {
    if s.is_empty() {
        return Ok(libc::SIGKILL);
    }
    if let Ok(n) = s.parse::<i32>() {
        if (1..=64).contains(&n) {
            return Ok(n);
        }
        return Err(Error::invalid(format!("Invalid signal: {s}")));
    }
    let up = s.to_ascii_uppercase();
    let bare = up.strip_prefix("SIG").unwrap_or(&up);
    // The real-time signals by the names Go's signal table gives them (systemd's
    // images stop with `SIGRTMIN+3`): RTMIN = 34, RTMIN+1 … RTMIN+15, RTMAX-14 …
    // RTMAX-1, RTMAX = 64.
    let offset = |o: &str, max: i32| o.parse::<i32>().ok().filter(|n| (1..=max).contains(n));
    let realtime = match bare {
        "RTMIN" => Some(34),
        "RTMAX" => Some(64),
        _ => match (bare.strip_prefix("RTMIN+"), bare.strip_prefix("RTMAX-")) {
            (Some(o), _) => offset(o, 15).map(|n| 34 + n),
            (_, Some(o)) => offset(o, 14).map(|n| 64 - n),
            _ => None,
        },
    };
    if let Some(n) = realtime {
        return Ok(n);
    }
    format!("SIG{bare}")
        .parse::<nix::sys::signal::Signal>()
        .map(|sig| sig as i32)
        .map_err(|_| Error::invalid(format!("Invalid signal: {s}")))
}

/// Send a signal to a running container.
pub async fn kill(d: &Daemon, c: &Container, signal: i32) -> Result<()> {
    let status = c.status();
    if !status.is_live() && status != Status::Restarting {
        return Err(Error::conflict(format!("Cannot kill container: {}: Container {} is not running", c.name(), c.id)));
    }
    // As dockerd's killWithSignal: SIGKILL, or the stop signal (any signal when the
    // container has none), means "do not restart", and the container counts as
    // stopped by hand.
    let rec = c.record();
    let stop_signal = rec.config.stop_signal.as_deref().filter(|s| !s.is_empty()).map(parse_signal).transpose()?;
    if signal == libc::SIGKILL || stop_signal.is_none_or(|s| s == signal) {
        c.restart_canceled.store(true, std::sync::atomic::Ordering::SeqCst);
    }
    let stopped = |r: &mut super::Record| {
        r.manually_stopped = true;
        // A pending restart is all there is to stop.
        if r.state.status == Status::Restarting && c.restart_canceled.load(std::sync::atomic::Ordering::SeqCst) {
            r.state.status = Status::Exited;
        }
    };
    if c.removing.load(std::sync::atomic::Ordering::SeqCst) {
        c.update_lazy(d, stopped)?;
    } else {
        c.update(d, stopped)?;
    }
    if status == Status::Restarting {
        return Ok(());
    }
    let state = Paths::new(d, &c.id).state;
    if let Err(e) = shim::call_ok(&state, &Request::Kill { signal, all: false }).await {
        // The init exited meanwhile (the shim ends with it, and wrote its exit file
        // first): the kill is done, as dockerd counts a kill that finds no process.
        if !state.join(EXIT_FILE).exists() {
            return Err(e);
        }
        tracing::debug!(id = %c.id, error = %e, "kill: the container exited meanwhile");
    }
    let rec = c.record();
    let mut attrs = event_attrs(&rec);
    attrs.insert("signal".into(), signal.to_string());
    d.events.emit(EventMessageTypeEnum::CONTAINER, "kill", &c.id, attrs);
    Ok(())
}

/// Wait until the container is not running, at most `timeout`.
pub async fn wait_stopped(c: &Container, timeout: Option<Duration>) -> bool {
    let mut rx = c.subscribe();
    let fut = rx.wait_for(|w| !w.running);
    match timeout {
        Some(t) => matches!(tokio::time::timeout(t, fut).await, Ok(Ok(_))),
        None => fut.await.is_ok(),
    }
}

/// Stop: the stop signal, a grace period, then SIGKILL.
pub async fn stop(d: &Arc<Daemon>, c: &Arc<Container>, timeout: Option<i64>, signal: Option<&str>) -> Result<()> {
    let _op = c.op.lock().await;
    stop_locked(d, c, timeout, signal).await
}

async fn stop_locked(d: &Arc<Daemon>, c: &Arc<Container>, timeout: Option<i64>, signal: Option<&str>) -> Result<()> {
    let rec = c.record();
    if !rec.state.status.is_live() && rec.state.status != Status::Restarting {
        return Err(Error::not_modified("container already stopped"));
    }
    c.restart_canceled.store(true, std::sync::atomic::Ordering::SeqCst);
    c.update(d, |r| {
        r.manually_stopped = true;
        if r.state.status == Status::Restarting {
            r.state.status = Status::Exited;
        }
    })?;
    if rec.state.status == Status::Restarting {
        d.events.emit(EventMessageTypeEnum::CONTAINER, "stop", &c.id, event_attrs(&rec));
        return Ok(());
    }
    if rec.state.status == Status::Paused {
        let _ = shim::call_ok(&Paths::new(d, &c.id).state, &Request::Resume).await;
    }
    let sig = match signal.filter(|s| !s.is_empty()).or(rec.config.stop_signal.as_deref()) {
        Some(s) => parse_signal(s)?,
        None => libc::SIGTERM,
    };
    let grace = timeout.or(rec.config.stop_timeout).unwrap_or(10);
    let _ = kill(d, c, sig).await;
    let limit = if grace < 0 { None } else { Some(Duration::from_secs(grace as u64)) };
    if !wait_stopped(c, limit).await {
        let _ = kill(d, c, libc::SIGKILL).await;
        if !wait_stopped(c, Some(Duration::from_secs(30))).await {
            return Err(Error::internal(format!("container {} did not stop after SIGKILL", c.id)));
        }
    }
    d.events.emit(EventMessageTypeEnum::CONTAINER, "stop", &c.id, event_attrs(&rec));
    Ok(())
}

/// Stop (if running) and start again.
pub async fn restart(d: &Arc<Daemon>, c: &Arc<Container>, timeout: Option<i64>, signal: Option<&str>) -> Result<()> {
    let _op = c.op.lock().await;
    match stop_locked(d, c, timeout, signal).await {
        Ok(()) => {}
        Err(e) if e.kind() == berth_errdefs::Kind::NotModified => {}
        Err(e) => return Err(e),
    }
    reset_restart_manager(d, c)?;
    super::start::start_locked(d, c).await?;
    d.events.emit(EventMessageTypeEnum::CONTAINER, "restart", &c.id, event_attrs(&c.record()));
    Ok(())
}

/// Wait conditions of `POST /containers/{id}/wait`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitCondition {
    NotRunning,
    NextExit,
    Removed,
}

impl WaitCondition {
    pub fn parse(s: &str) -> Result<WaitCondition> {
        match s {
            "" | "not-running" => Ok(WaitCondition::NotRunning),
            "next-exit" => Ok(WaitCondition::NextExit),
            "removed" => Ok(WaitCondition::Removed),
            other => Err(Error::invalid(format!("invalid condition: \"{other}\""))),
        }
    }
}

/// Wait for a condition; returns the exit code.
pub async fn wait(c: &Container, cond: WaitCondition) -> i64 {
    let mut rx = c.subscribe();
    let start = *rx.borrow();
    let r = match cond {
        WaitCondition::NotRunning => rx.wait_for(|w| !w.running || w.removed).await.map(|w| w.exit_code),
        WaitCondition::NextExit => rx.wait_for(|w| w.exits > start.exits || w.removed).await.map(|w| w.exit_code),
        WaitCondition::Removed => rx.wait_for(|w| w.removed).await.map(|w| w.exit_code),
    };
    r.unwrap_or(start.exit_code)
}

/// Remove a container (`force` kills a running one first).
pub async fn remove(d: &Arc<Daemon>, c: &Arc<Container>, force: bool, volumes: bool) -> Result<()> {
    let _op = c.op.lock().await;
    if d.containers.get(&c.id).is_err() {
        return Err(Error::not_found(format!("No such container: {}", c.id)));
    }
    let rec = c.record();
    if rec.state.status == Status::Restarting {
        if !force {
            return Err(Error::conflict(format!(
                "You cannot remove a restarting container {}. Stop the container before attempting removal or force remove",
                rec.id
            )));
        }
        c.restart_canceled.store(true, std::sync::atomic::Ordering::SeqCst);
        c.update(d, |r| r.state.status = Status::Exited)?;
    }
    if rec.state.status.is_live() {
        if !force {
            return Err(Error::conflict(format!(
                "You cannot remove a running container {}. Stop the container before attempting removal or force remove",
                rec.id
            )));
        }
        c.restart_canceled.store(true, std::sync::atomic::Ordering::SeqCst);
        // Killed and recorded stopped (by the kill) without waiting for the disk: the
        // removal's commit below is durable and makes them so. After a crash in
        // between the container is still there, as before the removal (its restart
        // policy applies as after any crash).
        c.removing.store(true, std::sync::atomic::Ordering::SeqCst);
        let _ = kill(d, c, libc::SIGKILL).await;
        if !wait_stopped(c, Some(Duration::from_secs(30))).await {
            c.removing.store(false, std::sync::atomic::Ordering::SeqCst);
            return Err(Error::internal(format!("could not kill running container {}, cannot remove", rec.id)));
        }
    }
    // An exited `--rm` container is removed without waiting for the disk: after a
    // crash it would come back exited, and start-up removes those again. A build
    // step's removal waits for the disk (it runs beside the next step, off the build's
    // path): start-up cannot tell a step container the build removed from one it kept
    // (`--rm=false`), so a lost removal would bring it back.
    let auto = rec.host_config.auto_remove.unwrap_or(false) && rec.state.status == Status::Exited;
    let delete = |tx: &mut berth_metadata::Tx<'_>| {
        tx.delete(Table::Containers, &rec.id)?;
        if tx.get::<String>(Table::Names, &rec.name)?.as_deref() == Some(rec.id.as_str()) {
            tx.delete(Table::Names, &rec.name)?;
        }
        Ok(())
    };
    let committed = if auto { d.commit(false, delete) } else { d.commit_shared(delete).await };
    if let Err(e) = committed {
        // The container stays: one this removal killed is torn down now (its exit left
        // that to the removal), as any exited container is before it can start again.
        if c.removing.swap(false, std::sync::atomic::Ordering::SeqCst) {
            super::start::teardown_blocking(d, &rec.id).await;
        }
        return Err(e);
    }
    d.containers.remove(&rec.id);
    super::warm::release(d, &rec.id).await;
    // What a user of the engine sees of the container is gone now: its record and name,
    // and (released at its exit) its addresses, ports and volumes. Its rootfs mount,
    // network namespace, state and snapshot directories go when the CPU is not wanted
    // for a start (`crate::cleanup`), as containerd's garbage collector removes a
    // deleted snapshot's files after the delete returned: all of them are named by the
    // container's id, which nothing will reuse.
    {
        let (dd, id, image) = (d.clone(), rec.id.clone(), rec.image_id.clone());
        drop(d.cleaner.run(move || {
            super::start::purge(&dd, &id);
            // Its image, if `rmi -f` deleted it meanwhile, goes with its last user.
            let _ = dd.images.release_retained(&image, &|i| dd.containers.using_image(i));
        }));
    }
    // `rm -v` (and `--rm`): the container's anonymous volumes go with it, unless
    // another container uses them too (`--volumes-from`).
    if volumes || auto {
        super::volumes::remove_anonymous(d, &rec);
    }
    c.wake(|w| w.removed = true);
    tracing::debug!(id = %rec.id, "container removed");
    d.events.emit(EventMessageTypeEnum::CONTAINER, "destroy", &rec.id, event_attrs(&rec));
    Ok(())
}

/// Freeze or thaw a running container.
pub async fn set_paused(d: &Daemon, c: &Container, pause: bool) -> Result<()> {
    let status = c.status();
    if pause && status == Status::Paused {
        return Err(Error::conflict(format!("Container {} is already paused", c.id)));
    }
    if !pause && status != Status::Paused {
        return Err(Error::conflict(format!("Container {} is not paused", c.id)));
    }
    if !status.is_live() {
        return Err(Error::conflict(format!("Container {} is not running", c.id)));
    }
    let state = Paths::new(d, &c.id).state;
    shim::call_ok(&state, if pause { &Request::Pause } else { &Request::Resume }).await?;
    let rec = c.update(d, |r| r.state.status = if pause { Status::Paused } else { Status::Running })?;
    d.events.emit(EventMessageTypeEnum::CONTAINER, if pause { "pause" } else { "unpause" }, &c.id, event_attrs(&rec));
    Ok(())
}

/// Rename a container.
pub fn rename(d: &Daemon, c: &Container, new: &str) -> Result<()> {
    let new = new.strip_prefix('/').unwrap_or(new);
    if !crate::names::valid(new) {
        return Err(Error::invalid(format!("Invalid container name ({new}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")));
    }
    let old = c.name();
    if old == new {
        return Err(Error::conflict("Renaming a container with the same name as its current name".to_string()));
    }
    let id = c.id.clone();
    let mut rec = c.record();
    rec.name = new.to_owned();
    d.db.update(|tx| {
        if let Some(other) = tx.get::<String>(Table::Names, new)? {
            return Err(Error::conflict(format!(
                "Conflict. The container name \"/{new}\" is already in use by container \"{other}\". You have to remove (or rename) that container to be able to reuse that name."
            )));
        }
        tx.delete(Table::Names, &old)?;
        tx.put(Table::Names, new, &id)?;
        tx.put(Table::Containers, &id, &rec)
    })?;
    d.containers.renamed(&id, &old, new);
    c.update(d, |r| r.name = new.to_owned())?;
    // A running container answers to its new name on its networks at once.
    let r = c.record();
    if r.state.status.is_live() && super::net::uses_dns(d, &r.endpoints) {
        super::net::register_names(d, &r, &r.endpoints);
    }
    let mut attrs = event_attrs(&rec);
    attrs.insert("oldName".into(), format!("/{old}"));
    d.events.emit(EventMessageTypeEnum::CONTAINER, "rename", &c.id, attrs);
    Ok(())
}

/// Resize a container's terminal.
pub async fn resize(d: &Daemon, c: &Container, h: u16, w: u16) -> Result<()> {
    if !c.status().is_live() {
        return Err(Error::conflict(format!("Container {} is not running", c.id)));
    }
    shim::call_ok(&Paths::new(d, &c.id).state, &Request::Resize { height: h, width: w }).await
}

/// Read a run's worth of exit state for a container whose shim finished while the
/// daemon was down.
pub fn exit_from_disk(d: &Daemon, id: &str) -> Option<ExitStatus> {
    read_exit_file(&Paths::new(d, id).state)
}

#[cfg(test)]
mod signal_tests {
    use super::parse_signal;

    #[test]
    fn signals_parse_as_docker_names_them() {
        for (name, n) in [("TERM", 15), ("SIGKILL", 9), ("usr1", 10), ("9", 9), ("SIGRTMIN+3", 37), ("RTMIN", 34), ("RTMAX", 64), ("SIGRTMAX-1", 63)] {
            assert_eq!(parse_signal(name).unwrap(), n, "{name}");
        }
        for bad in ["NOPE", "0", "65", "RTMIN+16", "RTMAX-15", "RTMIN-1", "RTMIN+x", "SIG"] {
            let e = parse_signal(bad).unwrap_err();
            assert_eq!(e.to_string(), format!("Invalid signal: {bad}"));
        }
    }
}
