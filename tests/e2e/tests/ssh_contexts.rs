//! Remote daemons through `ssh://` and contexts.
//!
//! The SSH tests run a private OpenSSH server on 127.0.0.1 (own host key, own
//! authorized key, own config; never the system's sshd) whose sessions find berth's CLI
//! as `docker` and `berth` first on PATH and the test daemon in `BERTH_HOST`. The
//! clients find `ssh` through a wrapper that adds the test's client config (key, no
//! known-hosts file). Then the real docker CLI (`DOCKER_HOST=ssh://...`, which runs
//! `docker system dial-stdio` remotely) and the berth CLI (`-H ssh://...`) run, exec,
//! attach, log and list over it. The context tests share contexts between the docker
//! CLI and berth in one `DOCKER_CONFIG`, over a unix socket and over mutual TLS.

use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use berth_e2e::{free_port, run_command, wait_until, Daemon, Output};

const T: Duration = Duration::from_secs(90);


fn sh(cmd: &mut Command) {
    let o = cmd.output().expect("spawn");
    assert!(o.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&o.stderr));
}

/// A private sshd on 127.0.0.1 and the client-side `ssh` wrapper that reaches it.
struct Sshd {
    dir: PathBuf,
    port: u16,
    child: Child,
}

impl Sshd {
    /// `daemon_socket`: what `BERTH_HOST` is in the remote sessions.
    fn start(daemon_socket: &Path) -> Sshd {
        let dir = berth_e2e::unique_tmp_dir("berth-sshd");
        for key in ["host_key", "client_key"] {
            sh(Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", "", "-C", key, "-f"]).arg(dir.join(key)));
        }
        // Only root may log in (with the client key).
        std::fs::copy(dir.join("client_key.pub"), dir.join("authorized_keys_root")).unwrap();
        // The remote host's PATH: berth's CLI as `docker` and as `berth`.
        let remote_bin = dir.join("remote-bin");
        std::fs::create_dir_all(&remote_bin).unwrap();
        for name in ["docker", "berth"] {
            std::os::unix::fs::symlink(berth_e2e::bin("berth"), remote_bin.join(name)).unwrap();
        }
        let port = free_port();
        let config = format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host_key\nPidFile {d}/sshd.pid\n\
             AuthorizedKeysFile {d}/authorized_keys_%u\nStrictModes no\nUsePAM no\n\
             PasswordAuthentication no\nKbdInteractiveAuthentication no\nPubkeyAuthentication yes\n\
             PermitRootLogin prohibit-password\nPrintMotd no\nLogLevel VERBOSE\n\
             SetEnv PATH={bin}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin BERTH_HOST=unix://{sock}\n",
            d = dir.display(),
            bin = remote_bin.display(),
            sock = daemon_socket.display(),
        );
        std::fs::write(dir.join("sshd_config"), config).unwrap();
        // The client side: `ssh` on PATH is a wrapper adding our config.
        let client_bin = dir.join("client-bin");
        std::fs::create_dir_all(&client_bin).unwrap();
        std::fs::write(
            dir.join("ssh_config"),
            format!(
                "Host *\n  IdentityFile {d}/client_key\n  IdentitiesOnly yes\n  StrictHostKeyChecking no\n  \
                 UserKnownHostsFile /dev/null\n  LogLevel ERROR\n  BatchMode yes\n",
                d = dir.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(dir.join("ssh_config"), std::fs::Permissions::from_mode(0o600)).unwrap();
        let wrapper = client_bin.join("ssh");
        std::fs::write(&wrapper, format!("#!/bin/sh\nexec /usr/bin/ssh -F {}/ssh_config \"$@\"\n", dir.display())).unwrap();
        std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
        // sshd's privilege separation directory.
        std::fs::create_dir_all("/run/sshd").unwrap();
        let log = std::fs::File::create(dir.join("sshd.log")).unwrap();
        let child = Command::new("/usr/sbin/sshd")
            .args(["-D", "-e", "-f"])
            .arg(dir.join("sshd_config"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start /usr/sbin/sshd (is openssh-server installed? scripts/deps.sh installs it)");
        let s = Sshd { dir, port, child };
        assert!(
            wait_until(Duration::from_secs(10), || TcpStream::connect(("127.0.0.1", port)).is_ok()),
            "sshd did not listen: {}",
            s.log()
        );
        s
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("sshd.log")).unwrap_or_default()
    }

    /// `ssh://root@127.0.0.1:PORT` plus `path`.
    fn url(&self, path: &str) -> String {
        format!("ssh://root@127.0.0.1:{}{path}", self.port)
    }

    /// PATH for a client: the ssh wrapper first.
    fn client_path(&self) -> String {
        format!("{}:{}", self.dir.join("client-bin").display(), std::env::var("PATH").unwrap_or_default())
    }

    /// The docker CLI with `DOCKER_HOST=url`.
    fn docker(&self, d: &Daemon, url: &str, args: &[&str], stdin: Option<&[u8]>) -> Output {
        let mut cmd = d.command(berth_e2e::Cli::Docker);
        cmd.env("DOCKER_HOST", url).env("PATH", self.client_path()).args(args);
        run_command(cmd, stdin, T)
    }

    /// The berth CLI with `-H url` (no other host settings).
    fn berth(&self, url: &str, args: &[&str], stdin: Option<&[u8]>) -> Output {
        let mut cmd = Command::new(berth_e2e::bin("berth"));
        cmd.env_remove("BERTH_HOST")
            .env_remove("DOCKER_HOST")
            .env("PATH", self.client_path())
            .args(["-H", url])
            .args(args);
        run_command(cmd, stdin, T)
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::env::var_os("BERTH_E2E_KEEP").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

#[test]
fn docker_cli_over_ssh_reaches_berth_through_dial_stdio() {
    let d = Daemon::start();
    let s = Sshd::start(d.socket());
    let url = s.url("");
    let o = s.docker(&d, &url, &["run", "--rm", "busybox", "echo", "hi over ssh"], None);
    assert_eq!(o.ok(), "hi over ssh\n", "sshd log:\n{}", s.log());
    s.docker(&d, &url, &["run", "-d", "--name", "svc", "busybox", "sh", "-c", "echo started; exec sleep 600"], None).ok();
    let o = s.docker(&d, &url, &["ps", "--format", "{{.Names}} {{.Image}}"], None);
    assert_eq!(o.ok(), "svc busybox\n");
    assert!(wait_until(Duration::from_secs(10), || s.docker(&d, &url, &["logs", "svc"], None).out() == "started"));
    let o = s.docker(&d, &url, &["exec", "svc", "echo", "exec'd"], None);
    assert_eq!(o.ok(), "exec'd\n");
    // stdin through ssh, dial-stdio and a hijacked stream; its end must reach the container.
    let o = s.docker(&d, &url, &["exec", "-i", "svc", "sh", "-c", "cat; echo eof seen"], Some(b"line 1\nline 2\n"));
    assert_eq!(o.ok(), "line 1\nline 2\neof seen\n");
    let o = s.docker(&d, &url, &["run", "--rm", "-i", "busybox", "wc", "-c"], Some(&[b'x'; 100_000]));
    assert_eq!(o.ok().trim(), "100000");

    // The URL's path is the remote socket (`docker --host=unix://PATH system dial-stdio`).
    let sock = d.socket().display().to_string();
    let o = s.docker(&d, &s.url(&sock), &["ps", "-q"], None);
    assert_eq!(o.ok().lines().count(), 1, "{o}");
    let o = s.docker(&d, &s.url("/nonexistent/berth.sock"), &["ps"], None);
    assert!(o.code != 0 && o.stderr.contains("/nonexistent/berth.sock"), "{o}");

    // A context holding the ssh:// host, made by berth, used by docker.
    let mut cmd = d.command(berth_e2e::Cli::Berth);
    cmd.args(["context", "create", "over-ssh", "--docker", &format!("host={url}")]);
    run_command(cmd, None, T).ok();
    let mut cmd = Command::new(berth_e2e::docker_cli());
    cmd.env("DOCKER_CONFIG", d.dir().join("docker-config"))
        .env_remove("DOCKER_HOST")
        .env("PATH", s.client_path())
        .args(["--context", "over-ssh", "inspect", "--format", "{{.Name}}", "svc"]);
    assert_eq!(run_command(cmd, None, T).ok(), "/svc\n");
    s.docker(&d, &url, &["rm", "-f", "svc"], None).ok();
}

#[test]
fn berth_cli_over_ssh() {
    let d = Daemon::start();
    let s = Sshd::start(d.socket());
    let sock = d.socket().display().to_string();
    // The socket in the URL, and (BERTH_HOST of the remote sessions) none.
    for url in [s.url(&sock), s.url("")] {
        let o = s.berth(&url, &["run", "--rm", "busybox", "echo", "hi"], None);
        assert_eq!(o.ok(), "hi\n", "{url}; sshd log:\n{}", s.log());
    }
    let url = s.url("");
    s.berth(&url, &["run", "-d", "--name", "web", "busybox", "sh", "-c", "echo up; exec sleep 600"], None).ok();
    assert_eq!(s.berth(&url, &["ps", "--format", "{{.Names}}"], None).ok(), "web\n");
    assert!(wait_until(Duration::from_secs(10), || s.berth(&url, &["logs", "web"], None).out() == "up"));
    let o = s.berth(&url, &["exec", "-i", "web", "sh", "-c", "cat; echo done"], Some(b"to the container\n"));
    assert_eq!(o.ok(), "to the container\ndone\n");
    let o = s.berth(&url, &["run", "--rm", "-i", "busybox", "md5sum"], Some(&vec![b'a'; 300_000]));
    let mut cmd = Command::new("md5sum");
    cmd.stdin(Stdio::piped());
    let local = run_command(cmd, Some(&vec![b'a'; 300_000]), T);
    assert_eq!(o.ok(), local.ok());
    // `docker` on the remote host (berth linked as docker there), and BERTH_HOST=ssh://.
    let mut cmd = Command::new(berth_e2e::bin("berth"));
    cmd.env_remove("DOCKER_HOST")
        .env("BERTH_HOST", &url)
        .env("BERTH_SSH_REMOTE_CLI", "docker")
        .env("PATH", s.client_path())
        .args(["inspect", "--format", "{{.State.Running}}", "web"]);
    assert_eq!(run_command(cmd, None, T).ok(), "true\n");
    // `berth system dial-stdio` locally, over ssh: a raw HTTP exchange through it.
    let mut cmd = Command::new(berth_e2e::bin("berth"));
    cmd.env("PATH", s.client_path()).args(["-H", &url, "system", "dial-stdio"]);
    let o = run_command(cmd, Some(b"GET /_ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"), T);
    assert!(o.ok().starts_with("HTTP/1.1 200") && o.stdout.ends_with("OK"), "{o}");
    s.berth(&url, &["rm", "-f", "web"], None).ok();
}

#[test]
fn ssh_failures_are_explained() {
    let d = Daemon::start_bare();
    let s = Sshd::start(d.socket());
    // Nothing listens there.
    let closed = format!("ssh://root@127.0.0.1:{}", free_port());
    let o = s.berth(&closed, &["ps"], None);
    assert!(o.code != 0 && o.stderr.contains("Connection refused") && o.stderr.contains("exit status 255"), "{o}");
    // A user whose key is not authorized.
    let o = s.berth(&format!("ssh://nobody@127.0.0.1:{}", s.port), &["ps"], None);
    assert!(o.code != 0 && o.stderr.contains("Permission denied"), "{o}");
    // A remote host without the remote CLI.
    let mut cmd = Command::new(berth_e2e::bin("berth"));
    cmd.env("PATH", s.client_path())
        .env("BERTH_SSH_REMOTE_CLI", "no-such-cli")
        .args(["-H", &s.url(""), "ps"]);
    let o = run_command(cmd, None, T);
    assert!(o.code != 0 && o.stderr.contains("no-such-cli"), "{o}");
    // A malformed URL.
    let o = s.berth("ssh://root:secret@127.0.0.1", &["ps"], None);
    assert!(o.code != 0 && o.stderr.contains("plain-text password is not supported"), "{o}");
}

/// The berth CLI with only `DOCKER_CONFIG` (no host flags or variables).
fn berth_cfg(cfg: &Path, args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut cmd = Command::new(berth_e2e::bin("berth"));
    for v in ["BERTH_HOST", "DOCKER_HOST", "BERTH_CONTEXT", "DOCKER_CONTEXT", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH"] {
        cmd.env_remove(v);
    }
    cmd.env("DOCKER_CONFIG", cfg).args(args);
    run_command(cmd, stdin, T)
}

/// The docker CLI with only `DOCKER_CONFIG`.
fn docker_cfg(cfg: &Path, args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut cmd = Command::new(berth_e2e::docker_cli());
    for v in ["DOCKER_HOST", "DOCKER_CONTEXT", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH"] {
        cmd.env_remove(v);
    }
    cmd.env("DOCKER_CONFIG", cfg).env("DOCKER_CLI_HINTS", "false").args(args);
    run_command(cmd, stdin, T)
}

#[test]
fn contexts_are_shared_with_the_docker_cli() {
    let d = Daemon::start();
    let cfg = berth_e2e::unique_tmp_dir("berth-ctx-cfg");
    std::fs::write(cfg.join("config.json"), r#"{"auths":{"registry.example":{"auth":"dTpw"}},"psFormat":"table {{.Names}}"}"#).unwrap();
    let host = d.host();
    d.berth(&["run", "-d", "--name", "marker", "busybox", "sleep", "600"]).ok();

    // docker creates, berth uses.
    docker_cfg(&cfg, &["context", "create", "from-docker", "--docker", &format!("host={host}")], None).ok();
    assert_eq!(berth_cfg(&cfg, &["--context", "from-docker", "ps", "--format", "{{.Names}}"], None).ok(), "marker\n");
    // berth creates, docker uses.
    let o = berth_cfg(&cfg, &["context", "create", "from-berth", "--description", "made by berth", "--docker", &format!("host={host}")], None);
    assert_eq!(o.ok(), "from-berth\n");
    assert!(o.stderr.contains("Successfully created context \"from-berth\""), "{o}");
    assert_eq!(docker_cfg(&cfg, &["--context", "from-berth", "ps", "--format", "{{.Names}}"], None).ok(), "marker\n");
    let o = docker_cfg(&cfg, &["context", "ls", "--format", "json"], None);
    let rows: Vec<serde_json::Value> = o.ok().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let ours = rows.iter().find(|r| r["Name"] == "from-berth").expect("listed by docker");
    assert_eq!((ours["Description"].as_str(), ours["DockerEndpoint"].as_str()), (Some("made by berth"), Some(host.as_str())));
    // Both list the same contexts the same way (berth's default endpoint is its own socket).
    let berth_ls = berth_cfg(&cfg, &["context", "ls", "--format", "{{.Name}} {{.Current}} {{.DockerEndpoint}}"], None);
    assert_eq!(
        berth_ls.ok(),
        format!("default true unix:///run/berth/berth.sock\nfrom-berth false {host}\nfrom-docker false {host}\n")
    );
    // inspect agrees on everything but the default's endpoint.
    let b = berth_cfg(&cfg, &["context", "inspect", "from-docker"], None).json();
    let k = docker_cfg(&cfg, &["context", "inspect", "from-docker"], None).json();
    assert_eq!(b, k);

    // `use` by one is seen by the other; config.json keeps its other keys.
    berth_cfg(&cfg, &["context", "use", "from-docker"], None).ok();
    assert_eq!(docker_cfg(&cfg, &["context", "show"], None).ok(), "from-docker\n");
    assert_eq!(berth_cfg(&cfg, &["ps", "--format", "{{.Names}}"], None).ok(), "marker\n");
    assert_eq!(docker_cfg(&cfg, &["ps", "--format", "{{.Names}}"], None).ok(), "marker\n");
    let c: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(cfg.join("config.json")).unwrap()).unwrap();
    assert_eq!(c["currentContext"], "from-docker");
    assert_eq!(c["auths"]["registry.example"]["auth"], "dTpw");
    assert_eq!(c["psFormat"], "table {{.Names}}");
    let ls = berth_cfg(&cfg, &["context", "ls"], None);
    assert!(ls.ok().lines().any(|l| l.starts_with("from-docker *")), "{ls}");
    // The current context is not removed without -f; with -f the config is reset.
    let o = berth_cfg(&cfg, &["context", "rm", "from-docker"], None);
    assert!(o.code != 0 && o.stderr.contains("context \"from-docker\" is in use, set -f flag to force remove"), "{o}");
    let o = berth_cfg(&cfg, &["context", "rm", "default"], None);
    assert!(o.code != 0 && o.stderr.contains("context \"default\" cannot be removed"), "{o}");
    // Host settings beat the current context; --context and -H together are refused.
    let mut cmd = Command::new(berth_e2e::bin("berth"));
    cmd.env("DOCKER_CONFIG", &cfg).env_remove("DOCKER_HOST").env("BERTH_HOST", "unix:///nonexistent.sock").arg("ps");
    let o = run_command(cmd, None, T);
    assert!(o.code != 0 && o.stderr.contains("/nonexistent.sock"), "{o}");
    let o = berth_cfg(&cfg, &["--context", "from-berth", "-H", &host, "ps"], None);
    assert!(o.code != 0 && o.stderr.contains("conflicting options: cannot specify both --host and --context"), "{o}");

    // export by berth, import by docker, and the other way (tar on stdin).
    let file = cfg.join("exported.dockercontext");
    berth_cfg(&cfg, &["context", "export", "from-berth", file.to_str().unwrap()], None).ok();
    docker_cfg(&cfg, &["context", "import", "imported-by-docker", file.to_str().unwrap()], None).ok();
    assert_eq!(docker_cfg(&cfg, &["--context", "imported-by-docker", "ps", "-q"], None).ok().lines().count(), 1);
    let tar = docker_cfg(&cfg, &["context", "export", "from-docker", "-"], None);
    assert!(tar.success(), "{tar}");
    berth_cfg(&cfg, &["context", "import", "imported-by-berth", "-"], Some(&tar.stdout_bytes)).ok();
    assert_eq!(berth_cfg(&cfg, &["--context", "imported-by-berth", "ps", "-q"], None).ok().lines().count(), 1);
    assert_eq!(docker_cfg(&cfg, &["context", "inspect", "--format", "{{.Endpoints.docker.Host}}", "imported-by-berth"], None).ok(), format!("{host}\n"));

    // update, then rm -f of the current context.
    berth_cfg(&cfg, &["context", "update", "imported-by-berth", "--description", "updated", "--docker", "host=unix:///elsewhere.sock"], None).ok();
    let i = docker_cfg(&cfg, &["context", "inspect", "imported-by-berth"], None).json();
    assert_eq!((i[0]["Metadata"]["Description"].as_str(), i[0]["Endpoints"]["docker"]["Host"].as_str()), (Some("updated"), Some("unix:///elsewhere.sock")));
    assert_eq!(berth_cfg(&cfg, &["context", "rm", "-f", "from-docker"], None).ok(), "from-docker\n");
    assert_eq!(docker_cfg(&cfg, &["context", "show"], None).ok(), "default\n");
    let c: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(cfg.join("config.json")).unwrap()).unwrap();
    assert!(c.get("currentContext").is_none() && c["psFormat"] == "table {{.Names}}", "{c}");
    assert_eq!(berth_cfg(&cfg, &["context", "use", "default"], None).ok(), "default\n");
    d.berth(&["rm", "-f", "marker"]).ok();
    let _ = std::fs::remove_dir_all(&cfg);
}

#[test]
fn tcp_contexts_carry_their_tls_material() {
    use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose};
    let dir = berth_e2e::unique_tmp_dir("berth-ctx-tls");
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name.push(DnType::CommonName, "ctx test CA");
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::DigitalSignature];
    let ca_key = KeyPair::generate().unwrap();
    let ca = p.self_signed(&ca_key).unwrap();
    std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
    for (name, sans, usage) in [
        ("server", vec!["127.0.0.1".to_string()], ExtendedKeyUsagePurpose::ServerAuth),
        ("client", vec![], ExtendedKeyUsagePurpose::ClientAuth),
    ] {
        let mut p = CertificateParams::new(sans).unwrap();
        p.distinguished_name.push(DnType::CommonName, name);
        p.extended_key_usages = vec![usage];
        let key = KeyPair::generate().unwrap();
        let cert = p.signed_by(&key, &ca, &ca_key).unwrap();
        std::fs::write(dir.join(format!("{name}-cert.pem")), cert.pem()).unwrap();
        std::fs::write(dir.join(format!("{name}-key.pem")), key.serialize_pem()).unwrap();
    }
    let port = free_port();
    let f = |n: &str| dir.join(n).display().to_string();
    let d = Daemon::start_with_args(&[
        "-H", &format!("tcp://127.0.0.1:{port}"), "--tlsverify",
        "--tlscacert", &f("ca.pem"), "--tlscert", &f("server-cert.pem"), "--tlskey", &f("server-key.pem"),
    ]);
    d.import_busybox();
    let cfg = dir.join("config");
    std::fs::create_dir_all(&cfg).unwrap();
    let spec = format!("host=tcp://127.0.0.1:{port},ca={},cert={},key={}", f("ca.pem"), f("client-cert.pem"), f("client-key.pem"));
    berth_cfg(&cfg, &["context", "create", "tls-berth", "--docker", &spec], None).ok();
    docker_cfg(&cfg, &["context", "create", "tls-docker", "--docker", &spec], None).ok();
    // The material is copied into the store: the originals can go.
    for n in ["client-cert.pem", "client-key.pem"] {
        std::fs::remove_file(dir.join(n)).unwrap();
    }
    let i = berth_cfg(&cfg, &["context", "inspect", "tls-docker"], None).json();
    assert_eq!(i[0]["TLSMaterial"]["docker"], serde_json::json!(["ca.pem", "cert.pem", "key.pem"]));
    for ctx in ["tls-berth", "tls-docker"] {
        let o = berth_cfg(&cfg, &["--context", ctx, "run", "--rm", "busybox", "echo", "tls ok"], None);
        assert_eq!(o.ok(), "tls ok\n", "{ctx}");
        let o = docker_cfg(&cfg, &["--context", ctx, "run", "--rm", "busybox", "echo", "tls ok"], None);
        assert_eq!(o.ok(), "tls ok\n", "{ctx}");
    }
    // Without the material the daemon refuses the handshake.
    berth_cfg(&cfg, &["context", "create", "no-cert", "--docker", &format!("host=tcp://127.0.0.1:{port},ca={}", f("ca.pem"))], None).ok();
    let o = berth_cfg(&cfg, &["--context", "no-cert", "ps"], None);
    assert!(o.code != 0, "{o}");
    drop(d);
    let _ = std::fs::remove_dir_all(&dir);
}
