//! berthd on TCP with mutual TLS, driven by the real docker CLI and the berth CLI
//! (run, logs -f, exec, build over TLS); clients without a good certificate are
//! refused in the handshake; plain TCP needs an explicit opt-in.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use berth_e2e::{free_port, run_command, Daemon, Output};
use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose};

struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
}

fn ca(name: &str) -> Ca {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name.push(DnType::CommonName, name);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    let key = KeyPair::generate().unwrap();
    let cert = p.self_signed(&key).unwrap();
    Ca { cert, key }
}

/// A certificate signed by `ca` into `dir` as cert.pem/key.pem (and the CA as ca.pem).
fn issue(ca: &Ca, dir: &Path, sans: &[&str], usage: ExtendedKeyUsagePurpose, expired: bool) {
    std::fs::create_dir_all(dir).unwrap();
    let mut p = CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    p.distinguished_name.push(DnType::CommonName, sans.first().copied().unwrap_or("client"));
    p.extended_key_usages = vec![usage];
    if expired {
        p.not_before = rcgen::date_time_ymd(2020, 1, 1);
        p.not_after = rcgen::date_time_ymd(2021, 1, 1);
    }
    let key = KeyPair::generate().unwrap();
    let cert = p.signed_by(&key, &ca.cert, &ca.key).unwrap();
    std::fs::write(dir.join("cert.pem"), cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), key.serialize_pem()).unwrap();
    std::fs::write(dir.join("ca.pem"), ca.cert.pem()).unwrap();
}


/// The docker CLI against the TCP daemon with the certificates in `certs`.
fn docker_tls(d: &Daemon, port: u16, certs: &Path, args: &[&str]) -> Output {
    let mut cmd = d.command(berth_e2e::Cli::Docker);
    cmd.env("DOCKER_HOST", format!("tcp://127.0.0.1:{port}"))
        .env("DOCKER_TLS_VERIFY", "1")
        .env("DOCKER_CERT_PATH", certs)
        .args(args);
    run_command(cmd, None, Duration::from_secs(60))
}

fn curl(port: u16, certs: &Path, client: bool) -> Output {
    let mut cmd = Command::new("curl");
    cmd.args(["-s", "--max-time", "5", "--cacert"]).arg(certs.join("ca.pem"));
    if client {
        cmd.arg("--cert").arg(certs.join("cert.pem")).arg("--key").arg(certs.join("key.pem"));
    }
    cmd.arg(format!("https://127.0.0.1:{port}/_ping"));
    run_command(cmd, None, Duration::from_secs(10))
}

#[test]
fn mutual_tls_for_both_clis_and_refusals_in_the_handshake() {
    let dir = berth_e2e::unique_tmp_dir("berth-tls");
    let good = ca("berth test CA");
    let other = ca("another CA");
    issue(&good, &dir.join("server"), &["localhost", "127.0.0.1"], ExtendedKeyUsagePurpose::ServerAuth, false);
    issue(&good, &dir.join("client"), &["client"], ExtendedKeyUsagePurpose::ClientAuth, false);
    issue(&other, &dir.join("stranger"), &["client"], ExtendedKeyUsagePurpose::ClientAuth, false);
    issue(&good, &dir.join("expired"), &["client"], ExtendedKeyUsagePurpose::ClientAuth, true);
    // The stranger trusts our CA for the server (only its own certificate is foreign).
    std::fs::copy(dir.join("client/ca.pem"), dir.join("stranger/ca.pem")).unwrap();
    let port = free_port();
    let s = dir.join("server");
    let tcp = format!("tcp://127.0.0.1:{port}");
    let d = Daemon::start_with_args(&[
        "-H", &tcp, "--tlsverify",
        "--tlscacert", s.join("ca.pem").to_str().unwrap(),
        "--tlscert", s.join("cert.pem").to_str().unwrap(),
        "--tlskey", s.join("key.pem").to_str().unwrap(),
    ]);
    d.import_busybox();
    let client = dir.join("client");

    let o = docker_tls(&d, port, &client, &["run", "--rm", "busybox", "echo", "over tls"]);
    assert_eq!(o.ok(), "over tls\n");
    docker_tls(&d, port, &client, &["run", "-d", "--name", "tick", "busybox", "sh", "-c", "for i in 1 2 3; do echo tick$i; sleep 0.2; done"]).ok();
    let o = docker_tls(&d, port, &client, &["logs", "-f", "tick"]);
    assert_eq!(o.ok(), "tick1\ntick2\ntick3\n");
    docker_tls(&d, port, &client, &["run", "-d", "--name", "svc", "busybox", "sleep", "600"]).ok();
    let mut cmd = d.command(berth_e2e::Cli::Docker);
    cmd.env("DOCKER_HOST", &tcp).env("DOCKER_TLS_VERIFY", "1").env("DOCKER_CERT_PATH", &client).args(["exec", "-i", "svc", "cat"]);
    let o = run_command(cmd, Some(b"through a hijacked TLS stream\n"), Duration::from_secs(30));
    assert_eq!(o.ok(), "through a hijacked TLS stream\n");
    let ctx = berth_e2e::dir_with("berth-tls-ctx", &[("Dockerfile", "FROM busybox\nRUN echo built > /b\n")]);
    let o = docker_tls(&d, port, &client, &["build", "-q", "-t", "tlsimg", ctx.to_str().unwrap()]);
    assert_eq!(o.code, 0, "{o}");
    // The berth CLI, with the same flags.
    let mut cmd = Command::new(berth_e2e::bin("berth"));
    cmd.args(["-H", &tcp, "--tlsverify"])
        .arg("--tlscacert").arg(client.join("ca.pem"))
        .arg("--tlscert").arg(client.join("cert.pem"))
        .arg("--tlskey").arg(client.join("key.pem"))
        .args(["run", "--rm", "tlsimg", "cat", "/b"]);
    assert_eq!(run_command(cmd, None, Duration::from_secs(30)).ok(), "built\n");

    // Refused in the handshake: no certificate, another CA's, an expired one.
    assert_eq!(curl(port, &client, true).ok(), "OK");
    for (what, certs, with_cert) in [("none", &client, false), ("other CA", &dir.join("stranger"), true), ("expired", &dir.join("expired"), true)] {
        let o = curl(port, certs, with_cert);
        assert!(o.code != 0 && o.stdout.is_empty(), "{what}: {o}");
    }
    let o = docker_tls(&d, port, &dir.join("stranger"), &["version"]);
    assert!(o.code != 0, "{o}");
    assert!(d.log().contains("TLS handshake refused"), "{}", d.log());
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&ctx);
}

#[test]
fn plain_tcp_is_refused_without_an_explicit_opt_in() {
    let port = free_port();
    let dir = berth_e2e::unique_tmp_dir("berth-tcp");
    let mut cmd = Command::new(berth_e2e::bin("berthd"));
    cmd.arg("--data-root").arg(dir.join("data")).arg("--exec-root").arg(dir.join("exec"))
        .args(["--bridge", "none", "-H", &format!("tcp://127.0.0.1:{port}")]);
    let o = run_command(cmd, None, Duration::from_secs(20));
    assert!(o.code != 0 && o.stderr.contains("--tlsverify"), "{o}");
    // With --insecure-tcp it serves, with a warning.
    let d = Daemon::start_with_args(&["-H", &format!("tcp://127.0.0.1:{port}"), "--insecure-tcp"]);
    let mut cmd = d.command(berth_e2e::Cli::Docker);
    cmd.env("DOCKER_HOST", format!("tcp://127.0.0.1:{port}")).args(["version", "--format", "{{.Server.APIVersion}}"]);
    assert_eq!(run_command(cmd, None, Duration::from_secs(20)).ok(), "1.41\n");
    assert!(d.log().contains("anyone who can reach it has root"), "{}", d.log());
    berth_e2e::unmount_under(&dir);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Over TCP too, a client that leaves while a streamed answer waits (the `wait` that
/// `docker run -d` opens and drops) frees its connection at once, not at the exit.
#[test]
fn a_tcp_client_that_leaves_a_waiting_answer_frees_its_connection() {
    use std::io::Write;
    let port = free_port();
    let d = Daemon::start_with_args(&["--warm-containers", "0", "-H", &format!("tcp://127.0.0.1:{port}"), "--insecure-tcp"]);
    d.import_busybox();
    let id = d.berth(&["run", "-d", "busybox", "sleep", "60"]).ok().trim().to_owned();
    let before = d.settled_fds();
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(s, "POST /v1.41/containers/{id}/wait?condition=next-exit HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let head = berth_e2e::read_head(&mut s);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(d.open_fds() > before, "{} fds, {before} before", d.open_fds());
    drop(s);
    assert!(berth_e2e::wait_until(Duration::from_secs(10), || d.open_fds() <= before), "{} fds, {before} before", d.open_fds());
    d.berth(&["rm", "-f", &id]).ok();
}
