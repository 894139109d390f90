//! `POST /containers/create`: merge the image config with the request, reserve the
//! name, prepare the snapshot, persist the record.

use std::collections::HashMap;
use std::sync::Arc;

use berth_api::models::{ContainerConfig, ContainerCreateBody, EventMessageTypeEnum, HostConfig, RestartPolicyNameEnum};
use berth_errdefs::{Error, Result};
use berth_metadata::Table;

use super::{event_attrs, now, Container, Paths, Record, State};
use crate::Daemon;

/// dockerd's merge at create: the request's variables as given, then each of the
/// image's whose name the request does not set (`inspect` and `env` list them so).
pub fn env_over_image(own: &[String], image: &[String]) -> Vec<String> {
    let key = |e: &str| e.split('=').next().unwrap_or(e).to_owned();
    let mut out = own.to_vec();
    out.extend(image.iter().filter(|i| !own.iter().any(|o| key(o) == key(i))).cloned());
    out
}

/// The platform a create request asks for (`?platform=os[/arch[/variant]]`) must be the
/// image's: dockerd's 404, which makes the CLI try a pull for that platform.
pub fn check_platform(d: &Daemon, img: &berth_image::ImageRecord, image_name: &str, platform: &str) -> Result<()> {
    if platform.is_empty() {
        return Ok(());
    }
    let cfg = d.images.config(img)?;
    let mut parts = platform.split('/');
    let os = parts.next().unwrap_or("");
    let arch = parts.next();
    let variant = parts.next();
    let normalize = |a: &str| match a {
        "x86_64" | "x86-64" => "amd64".to_owned(),
        "aarch64" => "arm64".to_owned(),
        other => other.to_owned(),
    };
    let mut actual = format!("{}/{}", cfg.os, cfg.architecture);
    if let Some(v) = cfg.variant.as_deref().filter(|v| !v.is_empty()) {
        actual.push('/');
        actual.push_str(v);
    }
    let matches = os == cfg.os
        && arch.is_none_or(|a| normalize(a) == normalize(&cfg.architecture))
        && variant.is_none_or(|v| cfg.variant.as_deref() == Some(v));
    if !matches {
        return Err(Error::not_found(format!(
            "image with reference {image_name} was found but does not match the specified platform: wanted {platform}, actual: {actual}"
        )));
    }
    Ok(())
}

/// `--volumes-from`: the other containers' mounts, at the given mode (moby
/// `registerMountPoints`): binds and volumes, not tmpfs.
fn volumes_from(d: &Daemon, hc: &HostConfig) -> Result<Vec<berth_volume::MountPoint>> {
    let mut out = Vec::new();
    for spec in hc.volumes_from.iter().flatten() {
        let (reference, mode) = berth_volume::parse_volumes_from(spec)?;
        let other = d.containers.get(&reference)?;
        let r = other.record();
        let points = match r.mount_points {
            Some(p) => p,
            None => super::start::mount_points(&r.host_config)?,
        };
        for mut m in points.into_iter().filter(|m| m.kind != berth_volume::Kind::Tmpfs) {
            if mode.split(',').any(|o| o == "ro") {
                m.rw = false;
            } else if mode.split(',').any(|o| o == "rw") {
                m.rw = true;
            }
            m.copy_data = false;
            // Shared, not owned: `rm -v` of this container leaves it alone.
            m.anonymous = false;
            out.push(m);
        }
    }
    Ok(out)
}

/// Create a container; returns its id and dockerd's warnings.
/// `config_mac` is API 1.41's `Config.MacAddress` (the body model has no place for it).
pub async fn create(
    d: &Arc<Daemon>,
    name: Option<&str>,
    platform: &str,
    body: ContainerCreateBody,
    config_mac: Option<String>,
) -> Result<(String, Vec<String>)> {
    create_with(d, name, platform, body, config_mac, Origin::Api).await
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

/// Create a container as `origin` asks; returns its id.
pub async fn create_opts(d: &Arc<Daemon>, name: Option<&str>, body: ContainerCreateBody, origin: Origin) -> Result<String> {
    create_with(d, name, "", body, None, origin).await.map(|(id, _)| id)
}

async fn create_with(
    d: &Arc<Daemon>,
    name: Option<&str>,
    platform: &str,
    body: ContainerCreateBody,
    config_mac: Option<String>,
    origin: Origin,
) -> Result<(String, Vec<String>)> {
    let warm = origin == Origin::Api;
    let image_name = body.image.clone().filter(|s| !s.is_empty()).ok_or_else(|| {
        Error::invalid("Config cannot be empty in order to create a container")
    })?;
    let img = d.images.resolve(&image_name)?;
    check_platform(d, &img, &image_name, platform)?;
    let icfg = d.images.config(&img)?.config;
    let mut hc = body.host_config.clone().unwrap_or_default();
    super::verify::default_log_config(&mut hc, d.cfg.log.as_ref());
    super::verify::verify_healthcheck(body.healthcheck.as_ref())?;
    let mut warnings = super::verify::verify_host_config(
        &mut hc,
        &ContainerConfig {
            env: body.env.clone(),
            hostname: body.hostname.clone(),
            stop_signal: body.stop_signal.clone(),
            ..Default::default()
        },
    )?;
    verify_userns(d, &hc)?;
    // A PID or IPC namespace to join names a container that exists (that it runs is
    // for the start to check), as dockerd checks at create.
    for mode in [hc.pid_mode.as_deref(), hc.ipc_mode.as_deref()] {
        if let Some(r) = mode.and_then(super::verify::container_ref) {
            d.containers.get(r).map_err(|e| if e.is_not_found() { Error::invalid(e.message()) } else { e })?;
        }
    }
    // Device requests name CDI devices that must exist (they are applied at start).
    super::cdi::edits(d, &hc)?;
    if let Some(p) = hc.cgroup_parent.as_deref().filter(|p| !p.is_empty()) {
        if p.split('/').any(|c| c == "..") || !p.chars().all(|c| c.is_ascii_alphanumeric() || "/_.-".contains(c)) {
            return Err(Error::invalid(format!("invalid cgroup parent: {p}")));
        }
    }
    if hc.init.unwrap_or(false) {
        super::start::init_binary(d)?;
    }
    let mut mount_points = volumes_from(d, &hc)?;
    for m in super::start::mount_points(&hc)? {
        mount_points.retain(|o| o.destination != m.destination);
        mount_points.push(m);
    }
    if !hc.privileged.unwrap_or(false) {
        let defaults = |d: &[&str]| d.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        hc.masked_paths.get_or_insert_with(|| defaults(berth_oci::DEFAULT_MASKED_PATHS));
        hc.readonly_paths.get_or_insert_with(|| defaults(berth_oci::DEFAULT_READONLY_PATHS));
    }
    let config_mac = config_mac.filter(|m| !m.is_empty());
    let mac_given = config_mac.is_some()
        || body.networking_config.as_ref().and_then(|n| n.endpoints_config.as_ref()).is_some_and(|e| {
            e.values().any(|s| s.mac_address.as_deref().is_some_and(|m| !m.is_empty()))
        });
    let exposed_given = body.exposed_ports.as_ref().is_some_and(|e| !e.is_empty());
    super::net::validate_mode(body.hostname.as_deref().unwrap_or(""), mac_given, exposed_given, &hc)?;
    if body.network_disabled == Some(true) && super::net::publishes(&hc) {
        return Err(Error::invalid("conflicting options: port publishing and NetworkDisabled (no address to publish on)"));
    }
    let endpoints = match super::net::endpoints_for_create(d, &hc, body.networking_config.as_ref(), config_mac.as_deref()) {
        // `NetworkDisabled` (docker-py's `network_disabled`): a namespace of its own
        // with a loopback only, on no network, its network mode as given (dockerd's).
        _ if body.network_disabled == Some(true) => Vec::new(),
        // dockerd looks a container's networks up when it starts it: one that does not
        // exist yet is no error here (and a 404 now would make the docker CLI pull the
        // image). The start makes the endpoints, or fails naming the network.
        Err(e) if e.is_not_found() && super::net::names_a_network(&hc) => Vec::new(),
        r => r?,
    };
    for l in hc.links.iter().flatten() {
        let (name, _) = super::net::parse_link(l);
        if d.containers.get(name).is_err() {
            return Err(Error::invalid(format!("Could not get container for {name}")));
        }
        if !endpoints.first().is_some_and(|e| d.networks.get(&e.network_id).is_ok_and(|n| n.is_bridge())) {
            return Err(Error::invalid("conflicting options: links need a bridge network"));
        }
    }

    // Entrypoint and Cmd as dockerd merges them: an entrypoint given (`--entrypoint`,
    // `[""]` for none) drops the image's Cmd; an empty list is none given, but
    // without the image's entrypoint.
    let (entrypoint, cmd): (Vec<String>, Vec<String>) = match &body.entrypoint {
        Some(e) if !e.is_empty() => {
            let e = if e.len() == 1 && e[0].is_empty() { Vec::new() } else { e.clone() };
            (e, body.cmd.clone().unwrap_or_default())
        }
        given => {
            let cmd = body.cmd.clone().filter(|c| !c.is_empty()).or_else(|| icfg.cmd.clone()).unwrap_or_default();
            let e = if given.is_some() { Vec::new() } else { icfg.entrypoint.clone().unwrap_or_default() };
            (e, cmd)
        }
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
    for v in body.volumes.clone().unwrap_or_default() {
        if !volumes.contains(&v) {
            volumes.push(v);
        }
    }
    // Every container, a build step's too, gets an anonymous volume at the image's
    // VOLUME paths: as with dockerd's classic builder, a RUN's writes there after the
    // VOLUME are not in its layer (the step's volumes go with its container).
    super::volumes::add_anonymous(&mut mount_points, &volumes, hc.volume_driver.as_deref().unwrap_or(""));
    let made_volumes = super::volumes::create_for(d, &mount_points)?;
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
        // dockerd's merge: the image's as it is when the request sets none (null stays
        // null), else the two merged
        env: match body.env.as_deref() {
            None | Some([]) => icfg.env.clone(),
            Some(own) => Some(env_over_image(own, icfg.env.as_deref().unwrap_or_default())),
        },
        cmd: if cmd.is_empty() { None } else { Some(cmd) },
        healthcheck: body.healthcheck.clone().or(icfg.healthcheck.clone()),
        // Go's `omitempty` fields of the config: false and empty are left out.
        args_escaped: body.args_escaped.filter(|&e| e),
        image: Some(image_name.clone()),
        volumes: if volumes.is_empty() { None } else { Some(volumes) },
        working_dir: Some(
            body.working_dir.clone().filter(|w| !w.is_empty()).or(icfg.working_dir.clone()).unwrap_or_default(),
        ),
        entrypoint: if entrypoint.is_empty() { None } else { Some(entrypoint) },
        network_disabled: body.network_disabled.filter(|&n| n),
        on_build: icfg.on_build.clone(),
        labels: Some(labels),
        stop_signal: body.stop_signal.clone().filter(|s| !s.is_empty()).or(icfg.stop_signal.clone()),
        stop_timeout: body.stop_timeout,
        shell: body.shell.clone().or(icfg.shell.clone()),
    };
    // dockerd 20.10's default IPC mode.
    if hc.ipc_mode.as_deref().unwrap_or("").is_empty() {
        hc.ipc_mode = Some("private".into());
    }
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
        mount_points: Some(mount_points),
        endpoints,
        config_mac,
        ports: Vec::new(),
        mode_network_left: false,
    };

    // A warm sandbox of the same shape becomes this container.
    let shape = if warm && d.warm.any() { super::warm::shape(d, &rec) } else { None };
    let claim = match shape {
        Some(shape) => super::warm::take(d, &shape).await,
        None => None,
    };
    if let Some(c) = &claim {
        rec = super::warm::rebase(&rec, &c.id);
    }
    let id = rec.id.clone();
    let paths = Paths::new(d, &id);
    // A warm sandbox's directories are the container's already (its id is taken, its
    // preparation made them); otherwise a spare renamed into place is the directory.
    if claim.is_none() {
        d.container_dirs.provide(&paths.dir)?;
        d.snap.prepare(&id)?;
        // spare directories were taken
        super::refill_pools(d);
    }
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
        super::volumes::undo(d, &made_volumes);
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
    if let Some(c) = claim {
        let (d2, r2) = (d.clone(), rec.clone());
        d.warm.claimed(c, tokio::task::spawn_blocking(move || super::start::launch_request(&d2, &r2)));
        super::warm::adopt(d, &id);
    }
    let attrs = event_attrs(&rec);
    let c = Container::new(rec);
    c.warm.store(warm, std::sync::atomic::Ordering::Relaxed);
    d.containers.insert(c);
    d.events.emit(EventMessageTypeEnum::CONTAINER, "create", &id, attrs);
    warnings.dedup();
    Ok((id, warnings))
}

/// What a container in a user namespace cannot have (dockerd's
/// `verifyPlatformContainerSettings`): `--userns host` lifts it.
fn verify_userns(d: &Daemon, hc: &berth_api::models::HostConfig) -> Result<()> {
    if d.idmap_for(Some(hc)).is_none() {
        return Ok(());
    }
    if hc.privileged.unwrap_or(false) {
        return Err(Error::invalid(
            "privileged mode is incompatible with user namespaces.  You must run the container in the host namespace when running privileged mode",
        ));
    }
    if hc.network_mode.as_deref() == Some("host") {
        return Err(Error::invalid("cannot share the host's network namespace when user namespaces are enabled"));
    }
    if hc.pid_mode.as_deref() == Some("host") {
        return Err(Error::invalid("cannot share the host PID namespace when user namespaces are enabled"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_create_lists_its_own_variables_first() {
        let image = vec!["PATH=/bin".to_owned(), "A=1".to_owned(), "C".to_owned()];
        let own = vec!["B=3".to_owned(), "A=2".to_owned(), "C=x".to_owned()];
        assert_eq!(env_over_image(&own, &image), ["B=3", "A=2", "C=x", "PATH=/bin"]);
    }
}
