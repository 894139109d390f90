//! The body of `POST /containers/create` as berthd reads it: JSON into bollard's
//! `ContainerCreateBody` (`berth_api::models`), then the mount specifications in it
//! parsed with dockerd's rules by `berth_volume` (`parse_bind` for `HostConfig.Binds`,
//! `parse_mount` for `HostConfig.Mounts`, `parse_volumes_from`, `tmpfs_options`,
//! `validate_name`). The daemon's own checks (`daemon::container::verify`) live in the
//! daemon binary crate and are not reachable from here.
#![no_main]

use berth_api::models::ContainerCreateBody;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let _ = raw["MacAddress"].as_str();
    let Ok(body) = serde_json::from_value::<ContainerCreateBody>(raw) else {
        return;
    };
    let Some(hc) = &body.host_config else {
        return;
    };
    let driver = hc.volume_driver.as_deref().unwrap_or("local");
    for b in hc.binds.iter().flatten() {
        let _ = berth_volume::parse_bind(b, driver);
    }
    for m in hc.mounts.iter().flatten() {
        let _ = berth_volume::parse_mount(m);
        if let Some(t) = &m.tmpfs_options {
            let _ = berth_volume::tmpfs_options(t.size_bytes, t.mode, m.read_only.unwrap_or(false));
        }
        if let Some(src) = &m.source {
            let _ = berth_volume::validate_name(src);
            let _ = berth_volume::clean_path(src);
        }
    }
    for v in hc.volumes_from.iter().flatten() {
        let _ = berth_volume::parse_volumes_from(v);
    }
});
