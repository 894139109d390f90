//! One berthd per test: private roots and socket under a unique /tmp directory.

use std::fs::{self, OpenOptions};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::cmd::{run_command, wait_until, Output, Spawned};
use crate::http::{Body, HttpResponse, UnixHttp};
use crate::pty::Pty;

/// Which command-line client to drive the daemon with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cli {
    /// target/debug/berth, given `-H unix://…`.
    Berth,
    /// The real docker CLI with `DOCKER_HOST=unix://…`.
    Docker,
}

impl Cli {
    pub const ALL: [Cli; 2] = [Cli::Berth, Cli::Docker];

    pub fn name(self) -> &'static str {
        match self {
            Cli::Berth => "berth",
            Cli::Docker => "docker",
        }
    }
}

/// Default deadline for one CLI invocation.
pub const CLI_TIMEOUT: Duration = Duration::from_secs(60);
const PING_TIMEOUT: Duration = Duration::from_secs(20);

pub struct Daemon {
    dir: PathBuf,
    /// The default bridge's name (unique per test daemon, so daemons run side by side).
    bridge: String,
    data_root: PathBuf,
    exec_root: PathBuf,
    socket: PathBuf,
    log_path: PathBuf,
    docker_config: PathBuf,
    extra_args: Vec<String>,
    child: Option<Child>,
    http: UnixHttp,
}

impl Daemon {
    /// Start a daemon and import the busybox rootfs as `busybox:latest`.
    pub fn start() -> Daemon {
        let d = Daemon::start_bare();
        d.import_busybox();
        d
    }

    /// Start a daemon with no images.
    pub fn start_bare() -> Daemon {
        Daemon::start_with_args(&[])
    }

    /// Start a daemon with extra berthd flags (after the root/socket flags).
    /// `$BERTH_E2E_DAEMON_ARGS` (whitespace-separated) is appended to every daemon.
    pub fn start_with_args(extra: &[&str]) -> Daemon {
        let dir = crate::unique_tmp_dir("berth-e2e");
        let mut extra_args: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        if let Ok(env) = std::env::var("BERTH_E2E_DAEMON_ARGS") {
            extra_args.extend(env.split_whitespace().map(str::to_owned));
        }
        let socket = dir.join("berth.sock");
        // Interface names have at most 15 characters.
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let bridge = format!("bt{:x}{n:x}", std::process::id() & 0xffffff);
        let d = Daemon {
            bridge,
            data_root: dir.join("data"),
            exec_root: dir.join("exec"),
            log_path: dir.join("berthd.log"),
            docker_config: dir.join("docker-config"),
            http: UnixHttp::new(&socket),
            socket,
            dir,
            extra_args,
            child: None,
        };
        for p in [&d.data_root, &d.exec_root, &d.docker_config] {
            fs::create_dir_all(p).expect("create daemon dirs");
        }
        let mut d = d;
        d.launch();
        d
    }

    fn launch(&mut self) {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .expect("open berthd.log");
        let log2 = log.try_clone().expect("dup log");
        let mut cmd = Command::new(crate::bin("berthd"));
        cmd.arg("--data-root")
            .arg(&self.data_root)
            .arg("--exec-root")
            .arg(&self.exec_root)
            .arg("-H")
            .arg(self.host())
            .arg("--bridge")
            .arg(&self.bridge)
            .args(&self.extra_args)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2);
        let path = std::env::var("PATH").unwrap_or_default();
        cmd.env("PATH", format!("{}:{path}", crate::bin_dir().display()));
        if std::env::var_os("RUST_LOG").is_none() {
            cmd.env("RUST_LOG", "info");
        }
        // Tests talk only to loopback and to addresses inside namespaces they made. A
        // test that made berthd reach for a registry by name (a 404 at create makes the
        // docker CLI pull, from Docker Hub by default) would send a DNS query out: its
        // registry client goes through a proxy on a closed loopback port instead, and
        // fails there, while registries on private addresses are reached directly, and
        // those on loopback too without being named here (dockerd's Go client never
        // proxies loopback, nor does berthd's).
        cmd.env("HTTPS_PROXY", "http://127.0.0.1:9")
            .env("HTTP_PROXY", "http://127.0.0.1:9")
            .env("NO_PROXY", "10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,fc00::/7")
            .env_remove("https_proxy")
            .env_remove("http_proxy")
            .env_remove("no_proxy");
        // If the test process dies without running Drop, take the daemon down with it.
        // SAFETY: prctl is async-signal-safe.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = cmd.spawn().unwrap_or_else(|e| panic!("spawn berthd: {e}"));
        self.child = Some(child);
        self.wait_ready();
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + PING_TIMEOUT;
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(st)) = child.try_wait() {
                    self.child = None;
                    panic!("berthd exited during startup ({st}); log:\n{}", self.log());
                }
            }
            if let Ok(r) = self.http.get("/_ping") {
                if r.status == 200 {
                    return;
                }
            }
            if Instant::now() >= deadline {
                panic!(
                    "berthd did not answer GET /_ping within {PING_TIMEOUT:?}; log:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kill berthd with SIGKILL (containers and shims keep running) and start it
    /// again on the same roots and socket.
    pub fn restart(&mut self) {
        self.crash();
        self.relaunch();
    }

    /// `kill -9` berthd and reap it; its containers and shims are left alone.
    pub fn crash(&mut self) {
        self.kill_daemon(Signal::SIGKILL, Duration::from_secs(10));
    }

    /// Stop berthd the way an init system does (SIGTERM), waiting for it to exit.
    pub fn stop(&mut self) {
        self.kill_daemon(Signal::SIGTERM, Duration::from_secs(10));
    }

    /// Start berthd again (after [`Daemon::crash`]) on the same roots and socket.
    pub fn relaunch(&mut self) {
        assert!(self.child.is_none(), "berthd is still running");
        self.launch();
    }

    /// Stop berthd: `sig`, then SIGKILL if it is still there after `grace`.
    fn kill_daemon(&mut self, sig: Signal, grace: Duration) {
        if let Some(mut child) = self.child.take() {
            let pid = Pid::from_raw(child.id() as i32);
            let _ = kill(pid, sig);
            let exited = wait_until(grace, || matches!(child.try_wait(), Ok(Some(_))));
            if !exited {
                let _ = child.kill();
            }
            let _ = child.wait();
        }
    }

    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The default bridge's interface name.
    pub fn bridge(&self) -> &str {
        &self.bridge
    }

    /// berthd's nftables table (`inet`).
    pub fn nft_table(&self) -> String {
        format!("berth_{}", self.bridge)
    }

    /// Remove every user-defined network; returns the bridges the daemon had.
    fn remove_all_networks(&mut self) -> Vec<String> {
        let mut bridges = vec![self.bridge.clone()];
        if self.child.is_none() {
            return bridges;
        }
        let Ok(r) = self.http.get("/networks") else { return bridges };
        let nets: Vec<serde_json::Value> = serde_json::from_slice(&r.body).unwrap_or_default();
        for n in nets {
            if let Some(b) = n["Options"]["com.docker.network.bridge.name"].as_str() {
                bridges.push(b.to_owned());
            } else if n["Driver"] == "bridge" {
                bridges.push(format!("br-{}", &n["Id"].as_str().unwrap_or("")[..12.min(n["Id"].as_str().unwrap_or("").len())]));
            }
            if n["Name"] != "bridge" && n["Name"] != "host" && n["Name"] != "none" {
                let _ = self.http.request("DELETE", &format!("/networks/{}", n["Id"].as_str().unwrap_or("")), crate::http::Body::None);
            }
        }
        bridges
    }

    /// Delete what berthd leaves on the host by design (its bridges and firewall table
    /// outlive it, for the containers that do).
    fn remove_host_networking(&self, bridges: &[String]) {
        for b in bridges {
            let _ = Command::new("ip").args(["link", "del", b]).stderr(Stdio::null()).status();
        }
        let _ = Command::new("nft").args(["delete", "table", "inet", &self.nft_table()]).stderr(Stdio::null()).status();
    }

    /// berthd's pid (panics when it is not running).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("berthd is running").id()
    }

    /// How many descriptors berthd has open.
    pub fn open_fds(&self) -> usize {
        fs::read_dir(format!("/proc/{}/fd", self.pid())).map(|r| r.count()).unwrap_or(0)
    }

    /// berthd's descriptor count once it has held still for 200 ms (waiting 10 s at
    /// most for that).
    pub fn settled_fds(&self) -> usize {
        let still = || {
            let n = self.open_fds();
            std::thread::sleep(Duration::from_millis(200));
            self.open_fds() == n
        };
        assert!(crate::wait_until(Duration::from_secs(10), still), "berthd's descriptors never settled");
        self.open_fds()
    }

    /// berthd's resident memory in KiB, from /proc.
    pub fn rss_kib(&self) -> u64 {
        let status = fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    }

    pub fn data_root(&self) -> &Path {
        &self.data_root
    }

    pub fn exec_root(&self) -> &Path {
        &self.exec_root
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// `unix:///tmp/…/berth.sock`
    pub fn host(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    /// berthd's output so far (all runs, restarts included).
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// A `Command` for `cli`, pointed at this daemon, with no host config leaking in.
    pub fn command(&self, cli: Cli) -> Command {
        let host = self.host();
        let mut cmd = match cli {
            Cli::Berth => {
                let mut c = Command::new(crate::bin("berth"));
                c.arg("-H").arg(&host);
                c
            }
            Cli::Docker => Command::new(crate::docker_cli()),
        };
        for var in [
            "DOCKER_CONTEXT",
            "DOCKER_TLS_VERIFY",
            "DOCKER_CERT_PATH",
            "DOCKER_API_VERSION",
        ] {
            cmd.env_remove(var);
        }
        cmd.env("BERTH_HOST", &host)
            .env("DOCKER_HOST", &host)
            .env("DOCKER_CONFIG", &self.docker_config)
            .env("DOCKER_BUILDKIT", "0")
            .env("DOCKER_CLI_HINTS", "false")
            .env("NO_COLOR", "1")
            // Temporary files of the clients (the docker CLI's git clones) stay in
            // this daemon's directory, removed with it.
            .env("TMPDIR", self.cli_tmp());
        cmd
    }

    fn cli_tmp(&self) -> PathBuf {
        let t = self.dir.join("cli-tmp");
        let _ = fs::create_dir_all(&t);
        t
    }

    /// Run `cli args…` to completion (60 s deadline).
    pub fn cli(&self, cli: Cli, args: &[&str]) -> Output {
        let mut cmd = self.command(cli);
        cmd.args(args);
        run_command(cmd, None, CLI_TIMEOUT)
    }

    /// Run `cli args…` with `stdin` piped in (closed after it is written).
    pub fn cli_stdin(&self, cli: Cli, args: &[&str], stdin: &[u8]) -> Output {
        let mut cmd = self.command(cli);
        cmd.args(args);
        run_command(cmd, Some(stdin), CLI_TIMEOUT)
    }

    pub fn berth(&self, args: &[&str]) -> Output {
        self.cli(Cli::Berth, args)
    }

    /// `cli build [extra…] <ctx>`.
    pub fn build_dir(&self, cli: Cli, ctx: &Path, extra: &[&str]) -> Output {
        let mut args = vec!["build"];
        args.extend_from_slice(extra);
        let c = ctx.to_string_lossy();
        args.push(&c);
        self.cli(cli, &args)
    }

    pub fn docker(&self, args: &[&str]) -> Output {
        self.cli(Cli::Docker, args)
    }

    /// Start `cli args…` in the background, reading its output line by line.
    pub fn spawn(&self, cli: Cli, args: &[&str]) -> Spawned {
        let mut cmd = self.command(cli);
        cmd.args(args);
        Spawned::spawn(cmd).unwrap_or_else(|e| panic!("spawn {} {args:?}: {e}", cli.name()))
    }

    /// Start `cli args…` on a fresh 24×80 pseudo-terminal.
    pub fn pty(&self, cli: Cli, args: &[&str]) -> Pty {
        let mut cmd = self.command(cli);
        cmd.args(args);
        Pty::spawn(cmd, 24, 80)
            .unwrap_or_else(|e| panic!("spawn {} {args:?} on a pty: {e}", cli.name()))
    }

    /// Raw HTTP request with no body. Panics if the connection fails.
    pub fn api(&self, method: &str, path: &str) -> HttpResponse {
        self.api_body(method, path, Body::None)
    }

    pub fn api_body(&self, method: &str, path: &str, body: Body<'_>) -> HttpResponse {
        self.http
            .request(method, path, body)
            .unwrap_or_else(|e| panic!("{method} {path}: {e}; berthd log:\n{}", self.log()))
    }

    /// A request with a JSON body.
    pub fn api_json(&self, method: &str, path: &str, json: &serde_json::Value) -> HttpResponse {
        let body = serde_json::to_vec(json).expect("serialize");
        self.api_body(method, path, Body::Fixed("application/json", &body))
    }

    /// `GET /containers/{name}/json`; panics unless 200.
    #[track_caller]
    pub fn inspect(&self, name: &str) -> serde_json::Value {
        let r = self.api("GET", &format!("/v1.41/containers/{name}/json"));
        assert_eq!(r.status, 200, "inspect {name}: {}", r.text());
        r.json()
    }

    /// Ids of all containers (`GET /containers/json?all=1`).
    pub fn container_ids(&self) -> Vec<String> {
        let r = self.api("GET", "/v1.41/containers/json?all=1");
        assert_eq!(r.status, 200, "list containers: {}", r.text());
        r.json()
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|c| c["Id"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// `berth import <busybox rootfs> busybox`, then check `busybox:latest` exists.
    pub fn import_busybox(&self) {
        let tar = crate::busybox_rootfs()
            .to_str()
            .expect("utf-8 path")
            .to_owned();
        let o = self.berth(&["import", &tar, "busybox"]);
        assert!(
            o.success(),
            "berth import busybox failed:\n{o}\nberthd log:\n{}",
            self.log()
        );
        let r = self.api("GET", "/v1.41/images/busybox:latest/json");
        assert_eq!(
            r.status,
            200,
            "busybox:latest missing after import: {}",
            r.text()
        );
    }

    /// Remove every container (`DELETE ?force=1`), best effort, short deadlines.
    fn remove_all_containers(&mut self) {
        if !self.is_running() {
            return;
        }
        let mut http = self.http.clone();
        http.timeout = Duration::from_secs(15);
        let Ok(r) = http.get("/v1.41/containers/json?all=1") else {
            return;
        };
        let Ok(list) = serde_json::from_slice::<serde_json::Value>(&r.body) else {
            return;
        };
        for id in list
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["Id"].as_str())
        {
            let _ = http.request(
                "DELETE",
                &format!("/v1.41/containers/{id}?force=1&v=1"),
                Body::None,
            );
        }
    }

    /// The containers (and warm sandboxes) this daemon left runtime state or records
    /// of: after [`Daemon::kill_leftovers`] killed their shims, nobody removes their
    /// cgroups (berthd does when it sees a container exit, the shim when it reaps it).
    fn runtime_ids(&self) -> Vec<String> {
        [self.exec_root.join("c"), self.data_root.join("containers")]
            .iter()
            .filter_map(|d| fs::read_dir(d).ok())
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|id| id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()))
            .collect()
    }

    /// rmdir their cgroups in every hierarchy (empty ones only: rmdir refuses others).
    fn remove_cgroups(&self, ids: &[String]) {
        for id in ids {
            for dir in crate::cgroup_dirs(id) {
                // the processes SIGKILLed a moment ago may take a moment to leave
                for _ in 0..20 {
                    match fs::remove_dir(&dir) {
                        Err(e) if e.raw_os_error() == Some(libc::EBUSY) => std::thread::sleep(Duration::from_millis(10)),
                        _ => break,
                    }
                }
            }
        }
    }

    /// Kill processes the daemon left behind (shims): any process whose command line
    /// or working directory mentions this daemon's directory.
    fn kill_leftovers(&self) {
        let me = std::process::id();
        let dir = self.dir.to_string_lossy().into_owned();
        let Ok(entries) = fs::read_dir("/proc") else {
            return;
        };
        for e in entries.flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            if pid == me {
                continue;
            }
            let cmdline = fs::read(e.path().join("cmdline")).unwrap_or_default();
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            let cwd = fs::read_link(e.path().join("cwd")).unwrap_or_default();
            if cmdline.contains(&dir) || cwd.starts_with(&self.dir) {
                let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
            }
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if std::thread::panicking() && !self.log().trim().is_empty() {
            let log = self.log();
            let tail: Vec<&str> = log.lines().rev().take(150).collect();
            eprintln!(
                "---- berthd log ({}; last {} lines) ----\n{}\n----",
                self.log_path.display(),
                tail.len(),
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
        self.remove_all_containers();
        let bridges = self.remove_all_networks();
        self.kill_daemon(Signal::SIGTERM, Duration::from_secs(5));
        let ids = self.runtime_ids();
        self.kill_leftovers();
        self.remove_cgroups(&ids);
        // pools that a test's `kill -9` left (a clean stop removes its own); a running
        // daemon's are left alone
        for dir in crate::pool_entries(|pid| !std::path::Path::new(&format!("/proc/{pid}")).exists()) {
            let _ = fs::remove_dir(dir);
        }
        self.remove_host_networking(&bridges);
        crate::unmount_under(&self.dir);
        if std::env::var_os("BERTH_E2E_KEEP").is_some() {
            eprintln!("keeping {}", self.dir.display());
            return;
        }
        if let Err(e) = fs::remove_dir_all(&self.dir) {
            // A mount that went away lazily may still pin a file for a moment.
            std::thread::sleep(Duration::from_millis(200));
            crate::unmount_under(&self.dir);
            if fs::remove_dir_all(&self.dir).is_err() {
                eprintln!("warning: could not remove {}: {e}", self.dir.display());
            }
        }
    }
}
