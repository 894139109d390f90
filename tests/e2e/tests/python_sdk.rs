//! The Docker SDK for Python (`docker` from PyPI) as a real client.

use std::process::Command;
use std::time::Duration;

use berth_e2e::{run_command, Daemon};

fn run_py(d: &Daemon, script: &str) {
    let path = berth_e2e::repo_root().join("tests/e2e/py").join(script);
    let mut cmd = Command::new("python3");
    cmd.arg(&path).env("DOCKER_HOST", d.host());
    let o = run_command(cmd, None, Duration::from_secs(120));
    assert_eq!((o.code, o.stdout.trim()), (0, "ok"), "{script}: {o}");
}

#[test]
fn docker_py_network_api() {
    let d = Daemon::start();
    run_py(&d, "network_sdk.py");
}

#[test]
fn docker_py_volume_api() {
    let d = Daemon::start();
    run_py(&d, "volume_sdk.py");
}

#[test]
fn docker_py_archive_api() {
    let d = Daemon::start();
    run_py(&d, "archive_sdk.py");
}

#[test]
fn docker_py_health_and_stats() {
    let d = Daemon::start();
    run_py(&d, "health_sdk.py");
}
