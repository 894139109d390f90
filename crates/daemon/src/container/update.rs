//! `POST /containers/{id}/update` (`docker update`): new resource limits and restart
//! policy, merged into the host config by dockerd's rules, checked like a create's,
//! recorded, and applied at once to a running container's cgroups (v1 or v2).

use std::sync::Arc;

use berth_api::models::{ContainerUpdateBody, EventMessageTypeEnum, HostConfig, RestartPolicyNameEnum};
use berth_errdefs::{Error, Result};
use libcgroups::common::{CgroupConfig, CgroupManager, ControllerOpt};

use super::{event_attrs, Container, Status};
use crate::Daemon;

/// dockerd's `UpdateContainer`: each field given (non-zero) replaces the current
/// one; CPU quota/period and NanoCPUs cannot be mixed across updates.
pub fn merge(hc: &mut HostConfig, u: &ContainerUpdateBody) -> Result<()> {
    let set = |v: Option<i64>| v.filter(|v| *v != 0);
    let cur = |v: Option<i64>| v.unwrap_or(0);
    if set(u.nano_cpus).is_some_and(|v| v > 0) && cur(hc.cpu_period) > 0 {
        return Err(Error::conflict("Conflicting options: Nano CPUs cannot be updated as CPU Period has already been set"));
    }
    if set(u.nano_cpus).is_some_and(|v| v > 0) && cur(hc.cpu_quota) > 0 {
        return Err(Error::conflict("Conflicting options: Nano CPUs cannot be updated as CPU Quota has already been set"));
    }
    if set(u.cpu_period).is_some_and(|v| v > 0) && cur(hc.nano_cpus) > 0 {
        return Err(Error::conflict("Conflicting options: CPU Period cannot be updated as NanoCPUs has already been set"));
    }
    if set(u.cpu_quota).is_some_and(|v| v > 0) && cur(hc.nano_cpus) > 0 {
        return Err(Error::conflict("Conflicting options: CPU Quota cannot be updated as NanoCPUs has already been set"));
    }
    if let Some(w) = u.blkio_weight.filter(|w| *w != 0) {
        hc.blkio_weight = Some(w);
    }
    if let Some(v) = set(u.cpu_shares) {
        hc.cpu_shares = Some(v);
    }
    if let Some(v) = set(u.nano_cpus) {
        hc.nano_cpus = Some(v);
    }
    if let Some(v) = set(u.cpu_period) {
        hc.cpu_period = Some(v);
    }
    if let Some(v) = set(u.cpu_quota) {
        hc.cpu_quota = Some(v);
    }
    if let Some(v) = u.cpuset_cpus.clone().filter(|s| !s.is_empty()) {
        hc.cpuset_cpus = Some(v);
    }
    if let Some(v) = u.cpuset_mems.clone().filter(|s| !s.is_empty()) {
        hc.cpuset_mems = Some(v);
    }
    if let Some(m) = set(u.memory) {
        if m > cur(hc.memory_swap) && set(u.memory_swap).is_none() {
            return Err(Error::conflict(
                "Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time",
            ));
        }
        hc.memory = Some(m);
    }
    if let Some(v) = set(u.memory_swap) {
        hc.memory_swap = Some(v);
    }
    if let Some(v) = set(u.memory_reservation) {
        hc.memory_reservation = Some(v);
    }
    if let Some(v) = set(u.cpu_realtime_period) {
        hc.cpu_realtime_period = Some(v);
    }
    if let Some(v) = set(u.cpu_realtime_runtime) {
        hc.cpu_realtime_runtime = Some(v);
    }
    if let Some(p) = u.pids_limit {
        hc.pids_limit = (p > 0).then_some(p);
    }
    if let Some(rp) = &u.restart_policy {
        let name = rp.name.unwrap_or(RestartPolicyNameEnum::EMPTY);
        if name != RestartPolicyNameEnum::EMPTY {
            if hc.auto_remove.unwrap_or(false) && name != RestartPolicyNameEnum::NO {
                return Err(Error::conflict("Restart policy cannot be updated because AutoRemove is enabled for the container"));
            }
            let max = rp.maximum_retry_count.unwrap_or(0);
            if max > 0 && name != RestartPolicyNameEnum::ON_FAILURE {
                return Err(Error::invalid("invalid restart policy: maximum retry count can only be used with 'on-failure'"));
            }
            hc.restart_policy = Some(rp.clone());
        }
    }
    Ok(())
}

/// Apply a host config's limits to a running container's cgroup. Device rules are
/// left as they are (rewriting them would deny the devices for a moment).
fn apply(cgroup_path: &str, hc: &HostConfig) -> Result<()> {
    let mut r = super::start::oci_resources(hc);
    let privileged = hc.privileged.unwrap_or(false);
    r.oom_kill_disable = false;
    let mut res = berth_oci::linux_resources(&r, privileged)?;
    res.set_devices(None);
    let manager = libcgroups::common::create_cgroup_manager(CgroupConfig {
        cgroup_path: cgroup_path.into(),
        systemd_cgroup: false,
        container_name: String::new(),
    })
    .map_err(|e| Error::internal(format!("cgroup manager: {e}")))?;
    manager
        .apply(&ControllerOpt { resources: &res, disable_oom_killer: false, oom_score_adj: None, freezer_state: None })
        .map_err(|e| Error::internal(format!("Cannot update container: {e}")))
}

/// Update a container: returns dockerd's warnings.
pub async fn update(d: &Arc<Daemon>, c: &Arc<Container>, raw: serde_json::Value) -> Result<Vec<String>> {
    let raw = if raw.is_null() { serde_json::json!({}) } else { raw };
    let u: ContainerUpdateBody =
        berth_api::gojson::from_value(raw.clone()).map_err(|e| Error::invalid(format!("invalid JSON: {e}")))?;
    let _op = c.op.lock().await;
    let rec = c.record();
    if matches!(rec.state.status, Status::Removing | Status::Dead) {
        return Err(Error::conflict(format!("Container {} is marked for removal and cannot be \"update\"", rec.id)));
    }
    // dockerd checks the update's own resources first (`verifyContainerSettings`),
    // then merges them into the container's and checks the whole.
    if let Ok(mut alone) = berth_api::gojson::from_value::<HostConfig>(raw.clone()) {
        super::verify::verify_resources(&mut alone, super::verify::sysinfo(), true)?;
    }
    let mut hc = rec.host_config.clone();
    merge(&mut hc, &u)?;
    let mut warnings = super::verify::verify_resources(&mut hc, super::verify::sysinfo(), true)?;
    // KernelMemory (gone from the API types after 1.41): dockerd refuses it for a
    // running container; otherwise, as at create, this kernel cannot apply it.
    if raw["KernelMemory"].as_i64().unwrap_or(0) != 0 && rec.state.status.is_live() {
        return Err(Error::invalid("Can not update kernel memory to a running container, please stop it first."));
    }
    warnings.extend(super::verify::kernel_memory_warnings(&raw));
    if rec.state.status.is_live() {
        let (path, hc2) = (rec.cgroup_path(), hc.clone());
        crate::http::blocking(move || apply(&path, &hc2)).await?;
    }
    let rec = c.update(d, |r| r.host_config = hc)?;
    d.events.emit(EventMessageTypeEnum::CONTAINER, "update", &rec.id, event_attrs(&rec));
    Ok(warnings)
}
