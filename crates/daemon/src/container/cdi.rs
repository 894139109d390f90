//! Devices through the Container Device Interface: Docker's device requests
//! (`--gpus`, `--device vendor.com/class=name`) resolved against the CDI specs in
//! the daemon's spec directories, and applied to a container's OCI spec.

use std::path::PathBuf;

use berth_api::models::HostConfig;
use berth_errdefs::Result;
use berth_oci::{DeviceMapping, HookSpec, MountKind, MountSpec, SpecOptions};

use crate::Daemon;

/// The CDI edits a container's device requests make (`None`: it has none). The specs
/// are read now: a spec added or changed since takes effect at the next start.
pub fn edits(d: &Daemon, hc: &HostConfig) -> Result<Option<berth_cdi::Edits>> {
    let reqs: Vec<berth_cdi::Request> = hc
        .device_requests
        .iter()
        .flatten()
        .map(|r| berth_cdi::Request {
            driver: r.driver.clone().unwrap_or_default(),
            count: r.count.unwrap_or(0),
            device_ids: r.device_ids.clone().unwrap_or_default(),
            capabilities: r.capabilities.clone().unwrap_or_default(),
        })
        .collect();
    if reqs.is_empty() {
        return Ok(None);
    }
    let names = berth_cdi::device_names(&reqs)?;
    let registry = berth_cdi::Registry::load(&d.cfg.cdi_spec_dirs)?;
    // `--gpus` on a host whose CDI specs name no GPUs: dockerd's error when no
    // driver takes the request.
    if names.iter().any(|n| n.starts_with("nvidia.com/gpu=")) && !registry.has_kind("nvidia.com/gpu") {
        if let Some(r) = reqs.iter().find(|r| r.driver != "cdi") {
            return Err(berth_cdi::no_driver(r));
        }
    }
    Ok(Some(registry.resolve(&names)?))
}

/// Apply `e` to the spec options: device nodes (allowed in the device cgroup),
/// environment (after the container's own), bind mounts and hooks.
pub fn apply(e: berth_cdi::Edits, o: &mut SpecOptions) {
    for n in e.device_nodes {
        o.devices.push(DeviceMapping {
            host: PathBuf::from(n.host_path.unwrap_or_else(|| n.path.clone())),
            container: n.path,
            permissions: n.permissions.filter(|p| !p.is_empty()).unwrap_or_else(|| "rwm".into()),
        });
    }
    o.env.extend(e.env);
    for m in e.mounts {
        let readonly = m.options.iter().any(|x| x == "ro");
        let options = m.options.into_iter().filter(|x| !matches!(x.as_str(), "ro" | "rw" | "bind" | "rbind")).collect();
        o.mounts.push(MountSpec {
            kind: MountKind::Bind,
            source: PathBuf::from(m.host_path),
            destination: m.container_path,
            readonly,
            options,
        });
    }
    o.hooks.extend(e.hooks.into_iter().map(|h| HookSpec {
        stage: h.hook_name,
        path: PathBuf::from(h.path),
        args: h.args,
        env: h.env,
        timeout: h.timeout,
    }));
}
