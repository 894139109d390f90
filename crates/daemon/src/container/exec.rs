//! Execs: `POST /containers/{id}/exec`, `/exec/{id}/start|resize|json`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use berth_api::models::{ExecConfig, ExecInspectResponse, ProcessConfig};
use berth_errdefs::{Error, Result};
use berth_shim_proto::{Request, Response};
use tokio::net::UnixStream;

use super::{shim, Container, Paths};
use crate::Daemon;

/// One exec instance.
pub struct Exec {
    pub id: String,
    pub container_id: String,
    pub config: ExecConfig,
    pub state: Mutex<ExecState>,
}

#[derive(Debug, Clone, Default)]
pub struct ExecState {
    pub running: bool,
    pub started: bool,
    pub exit_code: Option<i64>,
    pub pid: i64,
}

#[derive(Default)]
pub struct Execs {
    map: Mutex<HashMap<String, Arc<Exec>>>,
}

impl Execs {
    pub fn get(&self, id: &str) -> Result<Arc<Exec>> {
        self.map
            .lock()
            .unwrap()
            .get(id)
            .cloned()
            .ok_or_else(|| Error::not_found(format!("No such exec instance: {id}")))
    }

    /// Ids of a container's execs.
    pub fn of_container(&self, cid: &str) -> Vec<String> {
        self.map.lock().unwrap().values().filter(|e| e.container_id == cid).map(|e| e.id.clone()).collect()
    }

    /// Forget a container's execs (when it is removed).
    pub fn forget_container(&self, cid: &str) {
        self.map.lock().unwrap().retain(|_, e| e.container_id != cid);
    }
}

/// Create an exec instance in a running container, named `given` by the client (a
/// paused one is refused by that name, as dockerd refuses it).
pub fn create(d: &Daemon, c: &Container, given: &str, cfg: ExecConfig) -> Result<String> {
    // (an exec's bad keys are "escape keys" in dockerd's words, an attach's "detach keys")
    let keys = cfg.detach_keys.as_deref().unwrap_or("");
    berth_api::query::detach_keys(keys).map_err(|_| Error::invalid(format!("Invalid escape keys ({keys}) provided")))?;
    if c.status() == super::Status::Restarting {
        return Err(Error::conflict(format!("Container {} is restarting, wait until the container is running", c.id)));
    }
    if !c.status().is_live() {
        return Err(Error::conflict(format!("Container {} is not running", c.id)));
    }
    if c.status() == super::Status::Paused {
        return Err(Error::conflict(format!("Container {given} is paused, unpause the container before exec")));
    }
    if cfg.cmd.as_ref().map(|c| c.is_empty()).unwrap_or(true) {
        return Err(Error::invalid("No exec command specified"));
    }
    let id = hex::encode(rand::random::<[u8; 32]>());
    let e = Arc::new(Exec { id: id.clone(), container_id: c.id.clone(), config: cfg, state: Mutex::new(ExecState::default()) });
    event(d, &e, "exec_create", &[("execID", id.clone())]);
    d.execs.map.lock().unwrap().insert(id.clone(), e);
    Ok(id)
}

/// The OCI process for an exec: the container's process with the exec's overrides.
fn process_json(d: &Daemon, c: &Container, e: &Exec) -> Result<serde_json::Value> {
    let paths = Paths::new(d, &c.id);
    let raw = std::fs::read(paths.state.join("config.json"))?;
    let spec: serde_json::Value = serde_json::from_slice(&raw).map_err(|e| Error::internal(e.to_string()))?;
    let mut p = spec["process"].clone();
    let cfg = &e.config;
    p["args"] = serde_json::json!(cfg.cmd.clone().unwrap_or_default());
    p["terminal"] = serde_json::json!(cfg.tty.unwrap_or(false));
    // dockerd's: the daemon's defaults (`TERM` for an exec with a terminal), the legacy
    // links' variables, the container's, the exec's; no `HOME` unless one of them sets
    // it: the runtime adds the exec user's.
    let rec = c.record();
    let mut env = super::net::link_env(d, &rec);
    env.extend(rec.config.env.clone().unwrap_or_default());
    env.extend(cfg.env.clone().unwrap_or_default());
    let hostname = rec.config.hostname.clone().unwrap_or_default();
    p["env"] = serde_json::json!(berth_oci::daemon_env(&hostname, cfg.tty.unwrap_or(false), &env));
    if let Some(w) = cfg.working_dir.as_deref().filter(|w| !w.is_empty()) {
        p["cwd"] = serde_json::json!(w);
    }
    if let Some(u) = cfg.user.as_deref().filter(|u| !u.is_empty()) {
        let ru = berth_oci::resolve_user(&paths.rootfs(), u, &[])?;
        p["user"] = serde_json::json!({"uid": ru.uid, "gid": ru.gid, "additionalGids": ru.additional_gids});
    }
    if cfg.privileged.unwrap_or(false) {
        let all = berth_oci::all_capabilities();
        p["capabilities"] = serde_json::json!({
            "bounding": all, "effective": all, "permitted": all,
        });
    }
    p.as_object_mut().map(|o| o.remove("consoleSize"));
    Ok(p)
}

/// Start an exec and return the shim stream carrying its stdio.
pub async fn start(d: &Daemon, e: &Arc<Exec>) -> Result<UnixStream> {
    {
        let mut st = e.state.lock().unwrap();
        if st.started {
            return Err(Error::conflict(format!("Error: Exec command {} has already run", e.id)));
        }
        st.started = true;
        st.running = true;
    }
    let c = d.containers.get(&e.container_id)?;
    if !c.status().is_live() {
        e.state.lock().unwrap().running = false;
        return Err(Error::conflict(format!("Container {} is not running", c.id)));
    }
    let opened = async {
        // A user the container lacks is dockerd's system error (500), not a bad request.
        let process = process_json(d, &c, e).map_err(|err| Error::internal(err.message().to_owned()))?;
        let req = Request::Exec {
            id: e.id.clone(),
            process,
            tty: e.config.tty.unwrap_or(false),
            stdin: e.config.attach_stdin.unwrap_or(false),
        };
        event(d, e, "exec_start", &[("execID", e.id.clone())]);
        shim::open_stream(&Paths::new(d, &c.id).state, &req).await
    };
    match opened.await {
        Ok((s, resp)) => {
            if let Response::Started { pid } = resp {
                e.state.lock().unwrap().pid = pid as i64;
            }
            Ok(s)
        }
        Err(err) => {
            // As dockerd: an exec that could not start has ended, with 126 (no event).
            let mut st = e.state.lock().unwrap();
            st.running = false;
            st.exit_code = Some(126);
            Err(err)
        }
    }
}

/// Record an exec's end.
pub fn finished(d: &Daemon, e: &Exec, code: Option<i64>) {
    let code = code.unwrap_or(126);
    {
        let mut st = e.state.lock().unwrap();
        st.running = false;
        st.exit_code = Some(code);
    }
    event(d, e, "exec_die", &[("execID", e.id.clone()), ("exitCode", code.to_string())]);
}

/// An exec's event on its container, as dockerd names them: `exec_create: <cmd>`,
/// `exec_start: <cmd>`, `exec_die` (with `execID` and `exitCode`).
fn event(d: &Daemon, e: &Exec, action: &str, extra: &[(&str, String)]) {
    let Ok(c) = d.containers.get(&e.container_id) else { return };
    let mut attrs = super::event_attrs(&c.record());
    attrs.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
    let action = match action {
        "exec_die" => action.to_owned(),
        // dockerd's "<entrypoint> <args>": a command alone keeps the space
        _ => {
            let cmd = e.config.cmd.clone().unwrap_or_default();
            let (first, rest) = cmd.split_first().map(|(f, r)| (f.as_str(), r)).unwrap_or(("", &[]));
            format!("{action}: {first} {}", rest.join(" "))
        }
    };
    d.events.emit(berth_api::models::EventMessageTypeEnum::CONTAINER, &action, &e.container_id, attrs);
}

pub async fn resize(d: &Daemon, e: &Exec, h: u16, w: u16) -> Result<()> {
    // As dockerd, wait (10 s at most) for the exec's process to run (the shim gave its
    // pid): a client's first resize can come before the start has reached it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let st = e.state.lock().unwrap().clone();
        if st.pid != 0 || st.exit_code.is_some() {
            break;
        }
        if std::time::Instant::now() >= deadline {
            return Err(Error::internal("timeout waiting for exec session ready"));
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let state = Paths::new(d, &e.container_id).state;
    shim::call_ok(&state, &Request::ResizeExec { id: e.id.clone(), height: h, width: w }).await
}

pub fn inspect(e: &Exec) -> ExecInspectResponse {
    let st = e.state.lock().unwrap().clone();
    let cmd = e.config.cmd.clone().unwrap_or_default();
    ExecInspectResponse {
        can_remove: Some(false),
        detach_keys: Some(e.config.detach_keys.clone().unwrap_or_default()),
        id: Some(e.id.clone()),
        running: Some(st.running),
        exit_code: st.exit_code,
        process_config: Some(ProcessConfig {
            privileged: Some(e.config.privileged.unwrap_or(false)),
            // (dockerd omits an empty user)
            user: e.config.user.clone().filter(|u| !u.is_empty()),
            tty: Some(e.config.tty.unwrap_or(false)),
            entrypoint: cmd.first().cloned(),
            arguments: Some(cmd.iter().skip(1).cloned().collect()),
        }),
        open_stdin: Some(e.config.attach_stdin.unwrap_or(false)),
        open_stderr: Some(e.config.attach_stderr.unwrap_or(false)),
        open_stdout: Some(e.config.attach_stdout.unwrap_or(false)),
        container_id: Some(e.container_id.clone()),
        pid: Some(st.pid),
    }
}

/// Run a healthcheck probe in the container: its exit code and combined output
/// (the first [`super::health::MAX_OUTPUT`] bytes), or `None` when it ran past
/// `timeout` (it is then killed). Probes are not listed as the container's execs.
pub async fn run_probe(
    d: &Daemon,
    c: &Container,
    cmd: Vec<String>,
    timeout: std::time::Duration,
) -> Result<Option<(i64, String)>> {
    use tokio::io::AsyncReadExt;
    let cfg = ExecConfig { cmd: Some(cmd), attach_stdout: Some(true), attach_stderr: Some(true), ..Default::default() };
    let e = Arc::new(Exec {
        id: hex::encode(rand::random::<[u8; 32]>()),
        container_id: c.id.clone(),
        config: cfg,
        state: Mutex::new(ExecState::default()),
    });
    let mut s = start(d, &e).await?;
    let read = async {
        let mut out: Vec<u8> = Vec::new();
        let mut header = [0u8; 8];
        loop {
            if s.read_exact(&mut header).await.is_err() {
                return (126, out);
            }
            let len = u32::from_be_bytes([header[4], header[5], header[6], header[7]]) as usize;
            let mut payload = vec![0u8; len];
            if s.read_exact(&mut payload).await.is_err() {
                return (126, out);
            }
            match berth_shim_proto::FrameKind::from_u8(header[0]) {
                Some(berth_shim_proto::FrameKind::Exit) => {
                    let st: Option<berth_shim_proto::ExitStatus> = serde_json::from_slice(&payload).ok();
                    return (st.map(|s| s.code as i64).unwrap_or(126), out);
                }
                Some(_) => {
                    let room = super::health::MAX_OUTPUT.saturating_sub(out.len());
                    out.extend_from_slice(&payload[..payload.len().min(room)]);
                }
                None => return (126, out),
            }
        }
    };
    match tokio::time::timeout(timeout, read).await {
        Ok((code, out)) => Ok(Some((code, String::from_utf8_lossy(&out).into_owned()))),
        Err(_) => {
            let pid = e.state.lock().unwrap().pid as i32;
            if pid > 0 {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
            }
            Ok(None)
        }
    }
}
