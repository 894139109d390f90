//! daemon.json (`--config-file`): dockerd's keys and messages, what they do to
//! containers and `info`, and `SIGHUP` reloads.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use berth_e2e::{bin, unique_tmp_dir, wait_until, Daemon};

fn config_file(json: &str) -> PathBuf {
    let dir = unique_tmp_dir("berth-config");
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join("daemon.json");
    std::fs::write(&p, json).unwrap();
    p
}

/// Run berthd with `args` and a throwaway root; it must refuse to start.
fn refused(args: &[&str]) -> String {
    let dir = unique_tmp_dir("berth-config-refused");
    let sock = format!("unix://{}", dir.join("s.sock").display());
    let mut child = Command::new(bin("berthd"))
        .args(["--data-root", dir.join("data").to_str().unwrap(), "--exec-root", dir.join("exec").to_str().unwrap()])
        .args(["-H", &sock, "--bridge", "none"])
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // a daemon that starts after all must fail the test, not hang it
    let exited = berth_e2e::wait_until(std::time::Duration::from_secs(20), || child.try_wait().ok().flatten().is_some());
    if !exited {
        let _ = child.kill();
        let _ = child.wait();
    }
    let o = child.wait_with_output().unwrap();
    // A daemon that got as far as its exec root left a tmpfs there.
    berth_e2e::unmount_under(&dir);
    assert!(exited && !o.status.success(), "berthd started with {args:?}");
    let _ = std::fs::remove_dir_all(&dir);
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn unknown_keys_conflicts_and_missing_features_stop_the_daemon() {
    let f = config_file(r#"{"labels": ["a=b"], "no-such-option": 1}"#);
    let e = refused(&["--config-file", f.to_str().unwrap()]);
    assert!(e.contains("the following directives don't match any configuration option: no-such-option"), "{e}");

    let f = config_file(r#"{"labels": ["from=file"]}"#);
    let e = refused(&["--config-file", f.to_str().unwrap(), "--label", "from=flag"]);
    assert!(
        e.contains("the following directives are specified both as a flag and in the configuration file: labels: (from flag: [from=flag], from file: [from=file])"),
        "{e}"
    );

    let f = config_file(r#"{"storage-driver": "vfs"}"#);
    assert!(refused(&["--config-file", f.to_str().unwrap()]).contains("does not support these dockerd options: storage-driver"));
    // userns-remap is read (tests/userns.rs runs remapped daemons) and checked
    let f = config_file(r#"{"userns-remap": "no-such-user-berth"}"#);
    let e = refused(&["--config-file", f.to_str().unwrap()]);
    assert!(e.contains("Error during uid lookup for \"no-such-user-berth\""), "{e}");
    let f = config_file(r#"{"log-driver": "json-file", "log-opts": {"max-size": "huge"}}"#);
    assert!(refused(&["--config-file", f.to_str().unwrap()]).contains("invalid size: 'huge'"));
    let e = refused(&["--config-file", "/nonexistent/daemon.json"]);
    assert!(e.contains("unable to configure the Docker daemon with file /nonexistent/daemon.json"), "{e}");
}

#[test]
fn file_settings_reach_containers_and_info_and_sighup_reloads() {
    let f = config_file(
        r#"{
            "labels": ["env=test", "tier=one"],
            "debug": false,
            "dns": ["10.255.0.53"],
            "dns-search": ["berth.test"],
            "log-driver": "json-file",
            "log-opts": {"max-size": "10k", "max-file": "2"},
            "features": {"buildkit": false},
            "live-restore": true
        }"#,
    );
    let d = Daemon::start_with_args(&["--config-file", f.to_str().unwrap()]);
    d.import_busybox();
    let labels = d.docker(&["info", "--format", "{{json .Labels}}"]);
    assert_eq!(labels.stdout.trim(), r#"["env=test","tier=one"]"#, "{labels}");
    assert_eq!(d.docker(&["info", "--format", "{{.LoggingDriver}} {{.LiveRestoreEnabled}}"]).stdout.trim(), "json-file true");
    let info = d.berth(&["info"]).ok().to_owned();
    assert!(info.contains(" Labels:\n  env=test\n  tier=one\n") && info.contains(" Live Restore Enabled: true"), "{info}");

    // The daemon's DNS settings are a container's unless it names its own.
    let resolv = d.berth(&["run", "--rm", "busybox", "cat", "/etc/resolv.conf"]);
    assert!(resolv.stdout.contains("nameserver 10.255.0.53") && resolv.stdout.contains("search berth.test"), "{resolv}");
    let own = d.berth(&["run", "--rm", "--dns", "10.255.0.54", "busybox", "cat", "/etc/resolv.conf"]);
    assert!(own.stdout.contains("nameserver 10.255.0.54") && !own.stdout.contains("10.255.0.53"), "{own}");

    // The default log options apply to a container that sets none, merged under its own.
    let id = d.berth(&["create", "--log-opt", "max-file=3", "busybox", "true"]).stdout.trim().to_owned();
    let lc = &d.inspect(&id)["HostConfig"]["LogConfig"];
    assert_eq!(lc["Type"], "json-file");
    assert_eq!(lc["Config"]["max-size"], "10k");
    assert_eq!(lc["Config"]["max-file"], "3");

    // SIGHUP: labels and debug change without a restart, with a daemon reload event.
    let mut events = d.spawn(berth_e2e::Cli::Docker, &["events", "--filter", "type=daemon", "--format", "{{.Action}}"]);
    std::thread::sleep(Duration::from_millis(300));
    std::fs::write(&f, r#"{"labels": ["env=prod"], "debug": true, "dns": ["10.255.0.53"]}"#).unwrap();
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(d.pid() as i32), nix::sys::signal::Signal::SIGHUP).unwrap();
    assert!(
        wait_until(Duration::from_secs(10), || d.docker(&["info", "--format", "{{json .Labels}}"]).stdout.trim() == r#"["env=prod"]"#),
        "labels not reloaded:\n{}",
        d.log()
    );
    assert_eq!(d.docker(&["info", "--format", "{{.Debug}}"]).stdout.trim(), "true");
    assert!(events.wait_for_line(Duration::from_secs(10), |l| l == "reload").is_some(), "no reload event: {:?}", events.stdout_lines());

    // A broken file on reload is refused and the running configuration stays.
    std::fs::write(&f, r#"{"labels": ["env=x"], "bogus": true}"#).unwrap();
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(d.pid() as i32), nix::sys::signal::Signal::SIGHUP).unwrap();
    assert!(wait_until(Duration::from_secs(10), || d.log().contains("don't match any configuration option: bogus")), "{}", d.log());
    assert_eq!(d.docker(&["info", "--format", "{{json .Labels}}"]).stdout.trim(), r#"["env=prod"]"#);
}

#[test]
fn no_new_privileges_default_ulimits_and_apparmor_options() {
    let f = config_file(r#"{"no-new-privileges": true, "default-ulimits": {"nofile": {"Name": "nofile", "Hard": 4096, "Soft": 2048}}}"#);
    let d = Daemon::start_with_args(&["--config-file", f.to_str().unwrap()]);
    d.import_busybox();
    // the daemon's defaults reach a container that sets neither
    let o = d.berth(&["run", "--rm", "busybox", "sh", "-c", "grep NoNewPrivs /proc/self/status; ulimit -n; ulimit -Hn"]);
    assert_eq!(o.stdout.split_whitespace().collect::<Vec<_>>(), ["NoNewPrivs:", "1", "2048", "4096"], "{o}");
    // a container's own setting wins
    let o = d.berth(&[
        "run", "--rm", "--security-opt", "no-new-privileges=false", "--ulimit", "nofile=100:200", "busybox", "sh", "-c",
        "grep NoNewPrivs /proc/self/status; ulimit -n",
    ]);
    assert_eq!(o.stdout.split_whitespace().collect::<Vec<_>>(), ["NoNewPrivs:", "0", "100"], "{o}");
    let info = d.api("GET", "/v1.41/info").json();
    assert!(info["SecurityOptions"].as_array().unwrap().iter().any(|o| o == "name=no-new-privileges"), "{info}");
    // AppArmor and SELinux options are accepted and recorded (this host has neither,
    // so nothing is applied, as dockerd does on such a host)
    let o = d.docker(&["create", "--name", "labelled", "--security-opt", "apparmor=my-profile", "--security-opt", "label=type:svirt_t", "busybox", "true"]);
    assert!(o.success(), "{o}");
    let c = d.inspect("labelled");
    assert_eq!(c["AppArmorProfile"], "my-profile");
    assert_eq!(c["HostConfig"]["SecurityOpt"], serde_json::json!(["apparmor=my-profile", "label=type:svirt_t"]));
    assert!(d.berth(&["start", "-a", "labelled"]).success());
    // the flag form
    let d2 = Daemon::start_with_args(&["--default-ulimit", "nproc=300:400"]);
    d2.import_busybox();
    assert_eq!(d2.berth(&["run", "--rm", "busybox", "sh", "-c", "ulimit -u"]).stdout, "300\n");
}
