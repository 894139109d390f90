//! `POST /containers/create`: merge the image config with the request, reserve the
//! name, prepare the snapshot, persist the record.

use std::collections::HashMap;
use std::sync::Arc;

use berth_api::models::{ContainerConfig, ContainerCreateBody, EventMessageTypeEnum, HostConfig, RestartPolicyNameEnum};
use berth_errdefs::{Error, Result};
use berth_metadata::Table;

use super::{event_attrs, now, Container, Paths, Record, State};
use crate::Daemon;

/// Merge `KEY=VALUE` lists: later entries replace earlier ones with the same key.
pub fn merge_env(base: &[String], over: &[String]) -> Vec<String> {
    let mut out: Vec<String> = base.to_vec();
    for e in over {
        let k = e.split('=').next().unwrap_or(e);
        match out.iter_mut().find(|x| x.split('=').next() == Some(k)) {
            Some(x) => *x = e.clone(),
            None => out.push(e.clone()),
        }
    }
    out
}

/// Network modes berth can run today.
fn check_network_mode(d: &Daemon, mode: &str) -> Result<()> {
    match mode {
        "" | "default" | "bridge" | "none" | "host" => Ok(()),
        m if m.starts_with("container:") => d.containers.get(&m["container:".len()..]).map(|_| ()),
        other => Err(Error::not_found(format!("network {other} not found"))),
    }
}

fn validate_host_config(hc: &HostConfig) -> Result<()> {
    if let Some(rp) = &hc.restart_policy {
        let name = rp.name.unwrap_or(RestartPolicyNameEnum::EMPTY);
        if hc.auto_remove.unwrap_or(false) && !matches!(name, RestartPolicyNameEnum::EMPTY | RestartPolicyNameEnum::NO) {
            return Err(Error::invalid("can't create 'AutoRemove' container with restart policy"));
        }
        if rp.maximum_retry_count.unwrap_or(0) < 0 {
            return Err(Error::invalid("invalid restart policy: maximum retry count can't be negative"));
        }
        if rp.maximum_retry_count.unwrap_or(0) > 0 && name != RestartPolicyNameEnum::ON_FAILURE {
            return Err(Error::invalid("invalid restart policy: maximum retry count can only be used with 'on-failure'".to_string()));
        }
    }
    if hc.memory.unwrap_or(0) != 0 && hc.memory.unwrap_or(0) < 6 * 1024 * 1024 {
        return Err(Error::invalid("Minimum memory limit allowed is 6MB"));
    }
    if hc.nano_cpus.unwrap_or(0) < 0 {
        return Err(Error::invalid("Range of CPUs is from 0.01 to the number of CPUs available"));
    }
    Ok(())
}

/// Create a container; returns its id.
pub async fn create(d: &Arc<Daemon>, name: Option<&str>, body: ContainerCreateBody) -> Result<String> {
    create_opts(d, name, body, Origin::Api).await
}

/// Who asks for a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The API: it may take a warm sandbox, and its start keeps one ready for the
    /// next container like it.
    Api,
    /// The builder's step containers: no warm sandboxes (their images change with
    /// every step), run once (see `Record::build_step`).
    BuildStep,
}

/// Create a container as `origin` asks.
pub async fn create_opts(d: &Arc<Daemon>, name: Option<&str>, body: ContainerCreateBody, origin: Origin) -> Result<String> {
    let warm = origin == Origin::Api;
    let image_name = body.image.clone().filter(|s| !s.is_empty()).ok_or_else(|| {
        Error::invalid("Config cannot be empty in order to create a container")
    })?;
    let img = d.images.resolve(&image_name).map_err(|e| {
        if e.is_not_found() {
            let shown = berth_image::Reference::parse_tagged(&image_name)
                .map(|r| r.familiar())
                .unwrap_or_else(|_| image_name.clone());
            Error::not_found(format!("No such image: {shown}"))
        } else {
            e
        }
    })?;
    let icfg = d.images.config(&img)?.config;
    let hc = body.host_config.clone().unwrap_or_default();
    validate_host_config(&hc)?;
    let mode = hc.network_mode.as_deref().unwrap_or("");
    check_network_mode(d, mode)?;
    let publishes = hc.port_bindings.as_ref().is_some_and(|p| p.values().any(|b| b.as_ref().is_some_and(|b| !b.is_empty())))
        || hc.publish_all_ports.unwrap_or(false);
    if publishes && mode != "host" {
        // Bridge networking (and with it port publishing) has not landed yet: refuse
        // rather than start a container whose ports silently go nowhere.
        return Err(Error::invalid(
            "publishing ports needs a bridge network, which berthd does not provide yet; use --network host",
        ));
    }

    // Entrypoint and Cmd: an explicit entrypoint drops the image's Cmd.
    let entrypoint_given = body.entrypoint.is_some();
    let entrypoint: Vec<String> = match &body.entrypoint {
        Some(e) if e.len() == 1 && e[0].is_empty() => Vec::new(),
        Some(e) => e.clone(),
        None => icfg.entrypoint.clone().unwrap_or_default(),
    };
    let cmd: Vec<String> = match &body.cmd {
        Some(c) if !c.is_empty() => c.clone(),
        _ if entrypoint_given => Vec::new(),
        _ => icfg.cmd.clone().unwrap_or_default(),
    };
    let mut argv: Vec<String> = entrypoint.iter().chain(cmd.iter()).cloned().collect();
    if argv.is_empty() {
        return Err(Error::invalid("No command specified"));
    }
    let path = argv.remove(0);

    let name = match name.filter(|n| !n.is_empty()) {
        Some(n) => {
            let n = n.strip_prefix('/').unwrap_or(n);
            if !crate::names::valid(n) {
                return Err(Error::invalid(format!(
                    "Invalid container name ({n}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
                )));
            }
            n.to_owned()
        }
        None => crate::names::generate(|n| d.containers.name_taken(n).is_some()),
    };

    let id = hex::encode(rand::random::<[u8; 32]>());
    let mut labels: HashMap<String, String> = icfg.labels.clone().unwrap_or_default();
    labels.extend(body.labels.clone().unwrap_or_default());
    let mut exposed = icfg.exposed_ports.clone().unwrap_or_default();
    for p in body.exposed_ports.clone().unwrap_or_default() {
        if !exposed.contains(&p) {
            exposed.push(p);
        }
    }
    let mut volumes = icfg.volumes.clone().unwrap_or_default();
    volumes.extend(body.volumes.clone().unwrap_or_default());
    let config = ContainerConfig {
        hostname: Some(body.hostname.clone().filter(|h| !h.is_empty()).unwrap_or_else(|| id[..12].to_owned())),
        domainname: Some(body.domainname.clone().unwrap_or_default()),
        user: Some(body.user.clone().filter(|u| !u.is_empty()).or(icfg.user.clone()).unwrap_or_default()),
        attach_stdin: Some(body.attach_stdin.unwrap_or(false)),
        attach_stdout: Some(body.attach_stdout.unwrap_or(false)),
        attach_stderr: Some(body.attach_stderr.unwrap_or(false)),
        exposed_ports: if exposed.is_empty() { None } else { Some(exposed) },
        tty: Some(body.tty.unwrap_or(false)),
        open_stdin: Some(body.open_stdin.unwrap_or(false)),
        stdin_once: Some(body.stdin_once.unwrap_or(false)),
        env: Some(merge_env(&icfg.env.clone().unwrap_or_default(), &body.env.clone().unwrap_or_default())),
        cmd: if cmd.is_empty() { None } else { Some(cmd) },
        healthcheck: body.healthcheck.clone().or(icfg.healthcheck.clone()),
        args_escaped: body.args_escaped,
        image: Some(image_name.clone()),
        volumes: if volumes.is_empty() { None } else { Some(volumes) },
        working_dir: Some(
            body.working_dir.clone().filter(|w| !w.is_empty()).or(icfg.working_dir.clone()).unwrap_or_default(),
        ),
        entrypoint: if entrypoint.is_empty() { None } else { Some(entrypoint) },
        network_disabled: body.network_disabled,
        on_build: icfg.on_build.clone(),
        labels: Some(labels),
        stop_signal: body.stop_signal.clone().or(icfg.stop_signal.clone()),
        stop_timeout: body.stop_timeout,
        shell: body.shell.clone().or(icfg.shell.clone()),
    };
    let mut hc = hc;
    if hc.network_mode.as_deref().unwrap_or("").is_empty() {
        hc.network_mode = Some("default".into());
    }
    if hc.restart_policy.is_none() {
        hc.restart_policy = Some(berth_api::models::RestartPolicy {
            name: Some(RestartPolicyNameEnum::NO),
            maximum_retry_count: Some(0),
        });
    }
    let mut rec = Record {
        id: id.clone(),
        name: name.clone(),
        created: now(),
        image: image_name,
        image_id: img.id.clone(),
        config,
        host_config: hc,
        networking: body.networking_config.clone(),
        path,
        args: argv,
        state: State::default(),
        restart_count: 0,
        manually_stopped: false,
        build_step: origin == Origin::BuildStep,
    };

    // A warm sandbox of the same shape becomes this container.
    let shape = if warm && d.warm.any() { super::warm::shape(d, &rec) } else { None };
    let claim = match shape {
        Some(shape) => d.warm.take(&shape).await,
        None => None,
    };
    if let Some(c) = &claim {
        rec = super::warm::rebase(&rec, &c.id);
    }
    let id = rec.id.clone();
    let paths = Paths::new(d, &id);
    std::fs::create_dir_all(&paths.dir)?;
    d.snap.prepare(&id)?;
    let reserve = |tx: &mut berth_metadata::Tx<'_>| {
        if let Some(other) = tx.get::<String>(Table::Names, &name)? {
            return Err(Error::conflict(format!(
                "Conflict. The container name \"/{name}\" is already in use by container \"{other}\". You have to remove (or rename) that container to be able to reuse that name."
            )));
        }
        tx.put(Table::Names, &name, &id)?;
        tx.put(Table::Containers, &id, &rec)
    };
    // A `--rm` or build-step container is recorded without waiting for the disk (see
    // `Record::ephemeral`).
    let reserved = d.commit(!rec.ephemeral(), reserve);
    if let Err(e) = reserved {
        match claim {
            Some(c) => {
                let d = d.clone();
                tokio::spawn(async move { super::warm::destroy(&d, &c.id).await });
            }
            None => {
                let _ = std::fs::remove_dir_all(&paths.dir);
                let _ = d.snap.remove(&id);
            }
        }
        return Err(e);
    }
    if let Some(c) = &claim {
        d.warm.claimed(c);
        super::warm::adopt(d, &id);
    }
    let attrs = event_attrs(&rec);
    let c = Container::new(rec);
    c.warm.store(warm, std::sync::atomic::Ordering::Relaxed);
    d.containers.insert(c);
    d.events.emit(EventMessageTypeEnum::CONTAINER, "create", &id, attrs);
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_merge_overrides_by_key() {
        let base = vec!["PATH=/bin".to_owned(), "A=1".to_owned()];
        let over = vec!["A=2".to_owned(), "B=3".to_owned()];
        assert_eq!(merge_env(&base, &over), ["PATH=/bin", "A=2", "B=3"]);
    }
}
