//! The Compose loader (`berth_compose::load`, what `berth compose` runs first) on one
//! arbitrary `compose.yaml` written to a fresh project directory, with interpolation
//! on; then what `berth compose up` plans from the result (`berth_compose::plan`:
//! start order, create bodies, network and volume bodies).
#![no_main]

use std::collections::BTreeMap;
use std::sync::OnceLock;

use berth_compose::plan::{self, ContainerOptions, Context};
use libfuzzer_sys::fuzz_target;

fn dir() -> &'static tempfile::TempDir {
    static D: OnceLock<tempfile::TempDir> = OnceLock::new();
    D.get_or_init(|| tempfile::Builder::new().prefix("berth-fuzz-compose-").tempdir().expect("tempdir"))
}

fuzz_target!(|data: &[u8]| {
    let dir = dir().path();
    std::fs::write(dir.join("compose.yaml"), data).expect("write compose.yaml");
    let env: BTreeMap<String, String> = [("HOME", "/nonexistent"), ("USER", "fuzz"), ("TAG", "1.0")]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let opts = berth_compose::Options {
        working_dir: dir.to_path_buf(),
        project_name: Some("fuzz".into()),
        env,
        ..Default::default()
    };
    let Ok(project) = berth_compose::load(&opts) else {
        return;
    };
    let Ok(json) = project.to_json() else {
        return;
    };
    let p: serde_json::Value = serde_json::from_str(&json).expect("to_json writes JSON");
    let ctx = Context {
        project: project.name.clone(),
        working_dir: project.working_dir.to_string_lossy().into_owned(),
        config_files: vec![dir.join("compose.yaml").to_string_lossy().into_owned()],
    };
    let services = plan::services(&p);
    let _ = plan::start_order(&p, &[], false);
    for s in &services {
        let svc = &p["services"][s];
        let _ = plan::depends_on(&p, s);
        let _ = plan::config_hash(svc);
        for (net, _) in plan::service_networks(svc) {
            let _ = plan::network_body(&ctx, &p, &net);
        }
        let o = ContainerOptions {
            number: 1,
            ..Default::default()
        };
        let _ = plan::container_body(&ctx, &p, s, &o);
    }
    if let Some(vols) = p["volumes"].as_object() {
        for k in vols.keys() {
            let _ = plan::volume_body(&ctx, &p, k);
        }
    }
});
