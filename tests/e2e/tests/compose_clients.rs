//! The real Compose clients against berthd: Docker Compose v2 (`docker compose`)
//! and docker-compose 1.29 bring a three-service application up and down, and see
//! each other's projects.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use berth_e2e::compose_app::{app_dir, http_get};
use berth_e2e::{run_command, wait_until, Daemon, Output};

/// `docker compose ARGS` (v2) or `docker-compose ARGS` (1.29) in `dir`.
fn compose(d: &Daemon, v2: bool, dir: &Path, args: &[&str]) -> Output {
    let mut cmd = if v2 {
        let mut c = d.command(berth_e2e::Cli::Docker);
        c.arg("compose");
        c
    } else {
        let mut c = Command::new("docker-compose");
        c.env("DOCKER_HOST", d.host()).env("DOCKER_BUILDKIT", "0").env("COMPOSE_DOCKER_CLI_BUILD", "0");
        c
    };
    cmd.args(args).current_dir(dir).env("COMPOSE_PROJECT_NAME", "app").env("NO_COLOR", "1");
    run_command(cmd, None, Duration::from_secs(180))
}

/// The host port a service's container published for 8080.
fn web_port(d: &Daemon, container: &str) -> u16 {
    let o = d.docker(&["port", container, "8080/tcp"]);
    o.ok().lines().next().unwrap().rsplit(':').next().unwrap().parse().unwrap()
}

fn project_left(d: &Daemon) -> (String, String, String) {
    let f = "label=com.docker.compose.project=app";
    (
        d.docker(&["ps", "-aq", "--filter", f]).ok().to_owned(),
        d.docker(&["network", "ls", "-q", "--filter", f]).ok().to_owned(),
        d.docker(&["volume", "ls", "-q", "--filter", f]).ok().to_owned(),
    )
}

#[test]
fn compose_v2_runs_the_application() {
    let d = Daemon::start();
    let dir = app_dir();
    let o = compose(&d, true, &dir, &["up", "-d", "--wait"]);
    assert_eq!(o.code, 0, "{o}");
    // The published port answers; the worker reaches web by its service name.
    let port = web_port(&d, "app-web-1");
    assert_eq!(http_get(port, "/").as_deref(), Some("hello-from-web"));
    assert!(wait_until(Duration::from_secs(10), || compose(&d, true, &dir, &["exec", "-T", "worker", "cat", "/data/last"]).stdout.contains("hello-from-web")));
    let ps = compose(&d, true, &dir, &["ps", "--format", "{{.Service}} {{.State}}"]);
    assert_eq!(ps.ok(), "web running\nworker running\n", "{ps}");
    let job = d.inspect("app-job-1");
    assert_eq!((job["State"]["Status"].as_str(), job["State"]["ExitCode"].as_i64()), (Some("exited"), Some(0)));
    assert_eq!(job["Config"]["Labels"]["com.docker.compose.service"], "job");

    // Three replicas under one name: the DNS answer holds the three, in an order
    // that changes from query to query (round robin), and each one serves.
    let o = compose(&d, true, &dir, &["up", "-d", "--wait", "--scale", "web=3"]);
    assert_eq!(o.code, 0, "{o}");
    let script = "for i in $(seq 12); do nslookup web | grep -m1 -A1 'Name:.*web' | tail -1; done";
    let firsts = compose(&d, true, &dir, &["exec", "-T", "worker", "sh", "-c", script]);
    let distinct: std::collections::BTreeSet<&str> = firsts.ok().lines().collect();
    assert!(distinct.len() > 1, "always the same first address: {firsts}");
    let all = compose(&d, true, &dir, &["exec", "-T", "worker", "nslookup", "web"]);
    let addrs: Vec<&str> = all.ok().lines().filter_map(|l| l.strip_prefix("Address: ")).filter(|a| !a.contains(":53")).collect();
    assert_eq!(addrs.len(), 3, "{all}");
    let mut hosts = std::collections::BTreeSet::new();
    for a in &addrs {
        let o = compose(&d, true, &dir, &["exec", "-T", "worker", "wget", "-q", "-O-", &format!("http://{a}:8080/host")]);
        hosts.insert(o.ok().trim().to_owned());
    }
    assert_eq!(hosts.len(), 3, "{hosts:?}");

    // A changed environment recreates only the service it belongs to.
    let before = |s: &str| d.inspect(s)["Id"].as_str().unwrap().to_owned();
    let (web1, worker) = (before("app-web-1"), before("app-worker-1"));
    std::fs::write(dir.join(".env"), "GREETING=changed\n").unwrap();
    let o = compose(&d, true, &dir, &["up", "-d", "--wait", "--scale", "web=3"]);
    assert_eq!(o.code, 0, "{o}");
    assert_eq!(before("app-web-1"), web1, "web was recreated");
    assert_ne!(before("app-worker-1"), worker, "worker was not recreated");
    assert!(d.inspect("app-worker-1")["Config"]["Env"].as_array().unwrap().iter().any(|e| e == "GREETING=changed"));

    let o = compose(&d, true, &dir, &["down", "-v"]);
    assert_eq!(o.code, 0, "{o}");
    assert_eq!(project_left(&d), (String::new(), String::new(), String::new()));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn compose_v1_and_v2_share_projects() {
    let d = Daemon::start();
    let dir = app_dir();
    // Brought up by docker-compose 1.29, seen and taken down by v2.
    let o = compose(&d, false, &dir, &["up", "-d"]);
    assert_eq!(o.code, 0, "{o}");
    assert!(wait_until(Duration::from_secs(20), || d.inspect("app_web_1")["State"]["Health"]["Status"] == "healthy"));
    assert!(wait_until(Duration::from_secs(20), || d.inspect("app_worker_1")["State"]["Status"] == "running"));
    let port = web_port(&d, "app_web_1");
    assert_eq!(http_get(port, "/").as_deref(), Some("hello-from-web"));
    let ls = d.docker(&["compose", "ls", "--format", "json"]);
    assert!(ls.ok().contains("\"Name\":\"app\""), "{ls}");
    let ps = compose(&d, true, &dir, &["ps", "--format", "{{.Name}}"]);
    assert_eq!(ps.ok(), "app_web_1\napp_worker_1\n", "{ps}");
    let o = compose(&d, true, &dir, &["down", "-v"]);
    assert_eq!(o.code, 0, "{o}");
    assert_eq!(project_left(&d), (String::new(), String::new(), String::new()));

    // And the other way round.
    let o = compose(&d, true, &dir, &["up", "-d", "--wait"]);
    assert_eq!(o.code, 0, "{o}");
    let ps = compose(&d, false, &dir, &["ps", "--services"]);
    let mut services: Vec<&str> = ps.ok().lines().collect();
    services.sort();
    assert_eq!(services, ["job", "web", "worker"], "{ps}");
    let o = compose(&d, false, &dir, &["down", "-v"]);
    assert_eq!(o.code, 0, "{o}");
    assert_eq!(project_left(&d), (String::new(), String::new(), String::new()));
    let _ = std::fs::remove_dir_all(&dir);
}
