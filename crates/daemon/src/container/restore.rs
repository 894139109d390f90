//! Daemon start: load every container, re-adopt running ones from their shims, record
//! exits that happened while the daemon was down, and honour restart policies.

use std::sync::Arc;

use berth_errdefs::Result;
use berth_metadata::Table;
use berth_shim_proto::ExitStatus;

use super::{lifecycle, now, shim, Container, Paths, Record, Status};
use crate::Daemon;

/// `--rm` containers whose lazy commits a crash lost: their record's copy in the exec
/// root brings them back (written durably now).
fn recover_lost_records(d: &Daemon, recs: &mut Vec<(String, Record)>) {
    let Ok(entries) = std::fs::read_dir(d.cfg.exec_root.join("c")) else { return };
    for e in entries.flatten() {
        let id = e.file_name().to_string_lossy().into_owned();
        let Ok(raw) = std::fs::read(e.path().join(super::RECORD_COPY)) else { continue };
        let Ok(rec) = serde_json::from_slice::<Record>(&raw) else { continue };
        if rec.id != id {
            continue;
        }
        // A record the crash left behind its start (still `created` while the
        // container runs): the copy written at the start is the newer one.
        if let Some(slot) = recs.iter_mut().find(|(_, r)| r.id == id) {
            if !slot.1.state.status.is_live() && rec.state.status.is_live()
                && d.db.put(Table::Containers, &rec.id, &rec).is_ok() {
                    tracing::info!(%id, "recovered the running state of a --rm or build-step container from its runtime state");
                    slot.1 = rec;
                }
            continue;
        }
        let name_free = d.db.get::<String>(Table::Names, &rec.name).ok().flatten().is_none();
        let put = d.db.update(|tx| {
            if name_free {
                tx.put(Table::Names, &rec.name, &rec.id)?;
            }
            tx.put(Table::Containers, &rec.id, &rec)
        });
        if put.is_ok() {
            tracing::info!(%id, "recovered the record of a --rm or build-step container from its runtime state");
            recs.push((id, rec));
        }
    }
}

/// The names in `dir` (none if it cannot be read).
fn entry_names(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir).into_iter().flatten().flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect()
}

/// The snapshot and container directories of containers without a record: the
/// clean-up of a removal (`rm`, `--rm`) that a crash cut short after it had removed the
/// runtime state `warm::reap_leftovers` goes by. (Only container ids: a build's image
/// mounts have other names.)
fn remove_orphan_dirs(d: &Daemon, ids: &std::collections::HashSet<String>) {
    let orphan = |n: &str| n.len() == 64 && n.bytes().all(|b| b.is_ascii_hexdigit()) && !ids.contains(n);
    for id in d.snap.snapshot_ids().into_iter().filter(|n| orphan(n)) {
        tracing::info!(%id, "removing the snapshot of a removed container");
        if let Err(e) = d.snap.remove(&id) {
            tracing::warn!(%id, "remove a removed container's snapshot: {e}");
        }
    }
    let dir = d.cfg.data_root.join("containers");
    for id in entry_names(&dir).into_iter().filter(|n| orphan(n)) {
        tracing::info!(%id, "removing the directory of a removed container");
        if let Err(e) = d.container_dirs.recycle(&dir.join(&id)) {
            tracing::warn!(%id, "remove a removed container's directory: {e}");
        }
    }
}

/// What a request makes for its own use and removes when it ends, left behind by a
/// crash in the middle of one: the read-only image mounts of a build step and the
/// mounts of a stopped container that `cp`/`export` read (the exec root's `build/`,
/// `archive-*`, `export-*`), the image mounts of `RUN --mount=from=` with their
/// snapshots (`build-mnt-*`) and the spool files and directories under the data
/// root's `tmp/` (uploads, layer diffs, commits, a run's secret and file mounts).
/// No request is in progress at start-up, so none of it is anyone's.
fn remove_request_leftovers(d: &Daemon) {
    let exec = &d.cfg.exec_root;
    let mut points: Vec<_> = entry_names(exec)
        .into_iter()
        .filter(|n| n.starts_with("archive-") || n.starts_with("export-"))
        .map(|n| exec.join(n))
        .collect();
    points.extend(entry_names(&exec.join("build")).into_iter().map(|n| exec.join("build").join(n)));
    for p in points {
        tracing::info!(dir = %p.display(), "removing a mount a request left");
        if let Err(e) = berth_snapshot::unmount(&p).and_then(|()| std::fs::remove_dir(&p).map_err(Into::into)) {
            tracing::warn!(dir = %p.display(), "remove a mount a request left: {e}");
        }
    }
    for key in d.snap.snapshot_ids().into_iter().filter(|n| n.starts_with("build-mnt-")) {
        tracing::info!(%key, "removing a build's image mount snapshot");
        if let Err(e) = d.snap.remove(&key) {
            tracing::warn!(%key, "remove a build's image mount snapshot: {e}");
        }
    }
    let tmp = d.cfg.data_root.join("tmp");
    for n in entry_names(&tmp) {
        let p = tmp.join(&n);
        let removed = match std::fs::symlink_metadata(&p) {
            Ok(m) if m.is_dir() => std::fs::remove_dir_all(&p),
            _ => std::fs::remove_file(&p),
        };
        match removed {
            Ok(()) => tracing::info!(file = %p.display(), "removed a request's spool file"),
            Err(e) => tracing::warn!(file = %p.display(), "remove a request's spool file: {e}"),
        }
    }
}

/// Images `rmi -f` deleted while containers used them go when none of those is left
/// (a crash may have come between a container's removal and its image's release).
fn release_unused_retained_images(d: &Daemon, recs: &[(String, Record)]) {
    let Ok(ids) = d.images.retained() else { return };
    let user = |i: &str| recs.iter().find(|(_, r)| r.image_id == i).map(|(_, r)| (r.id.clone(), false));
    for id in ids {
        if let Err(e) = d.images.release_retained(&id, &user) {
            tracing::warn!(image = %id, "release a deleted image: {e}");
        }
    }
}

pub async fn restore_all(d: &Arc<Daemon>) -> Result<()> {
    let mut recs: Vec<(String, Record)> = d.db.list(Table::Containers)?;
    recover_lost_records(d, &mut recs);
    let ids = recs.iter().map(|(_, r)| r.id.clone()).collect();
    super::warm::reap_leftovers(d, &ids).await;
    remove_orphan_dirs(d, &ids);
    remove_request_leftovers(d);
    release_unused_retained_images(d, &recs);
    // Addresses: every running container keeps its own; any other allocation (a
    // sandbox, a container that stopped meanwhile) is freed.
    let mut live = std::collections::HashMap::new();
    for (_, r) in &recs {
        if r.state.status.is_live() && shim::connect(&Paths::new(d, &r.id).state).await.is_ok() {
            live.insert(r.id.clone(), r.endpoints.clone());
        }
    }
    if let Err(e) = d.networks.reconcile(&live) {
        tracing::warn!("reconcile network addresses: {e}");
    }
    let mut to_start = Vec::new();
    for (_, rec) in recs {
        let c = Container::new(rec.clone());
        d.containers.insert(c.clone());
        let state = Paths::new(d, &rec.id).state;
        if rec.state.status.is_live() || rec.state.status == Status::Restarting {
            if shim::connect(&state).await.is_ok() {
                tracing::info!(id = %rec.id, "re-adopted running container");
                super::net::restore(d, &rec);
                super::volumes::restore(d, &rec);
                lifecycle::spawn_monitor(d.clone(), c.clone(), None);
                super::health::start_monitor(d, &c);
                continue;
            }
            let st = lifecycle::exit_from_disk(d, &rec.id).unwrap_or(ExitStatus {
                code: 255,
                finished_at: now(),
                oom_killed: false,
                error: Some("container shim is gone (daemon or host restarted)".into()),
            });
            // Its exit is read first: what the kill makes of it is not its exit.
            lifecycle::kill_unreachable(&rec, &state);
            tracing::info!(id = %rec.id, code = st.code, "container exited while the daemon was down");
            lifecycle::on_exit(d, &c, st).await;
            continue;
        }
        // A `--rm` container that is not running is removed, as dockerd does on
        // restore (a crash may have undone the group-committed removal, or left it
        // as created), before the daemon serves anything: it must not show, or hold
        // its volumes, for a moment.
        if rec.host_config.auto_remove.unwrap_or(false) && matches!(rec.state.status, Status::Exited | Status::Created) {
            let _ = lifecycle::remove(d, &c, true, true).await;
            continue;
        }
        // Not running: make sure nothing of a previous run is left mounted, and no
        // shim holds a container that never started (one created on a warm sandbox).
        if shim::connect(&state).await.is_ok() {
            super::warm::stop_shim(d, &rec.id).await;
        }
        super::start::teardown_blocking(d, &rec.id).await;
        // dockerd starts what a fresh restart manager would restart: `always` even
        // after a stop by hand, `unless-stopped` unless so stopped, `on-failure`
        // after a failure.
        if matches!(rec.state.status, Status::Exited | Status::Restarting) && lifecycle::should_restart(&rec, rec.manually_stopped) {
            to_start.push(c);
        }
    }
    for c in to_start {
        let d = d.clone();
        tokio::spawn(async move {
            if let Err(e) = super::start::start(&d, &c).await {
                tracing::warn!(id = %c.id, "restart on daemon start: {e}");
            }
        });
    }
    Ok(())
}
