//! Container and image API details as dockerd 20.10 answers them: working
//! directories, exec failures and events, validation words, old API versions.

use std::time::Duration;

use berth_e2e::{Cli, Daemon, Spawned};
use serde_json::json;

#[test]
fn a_missing_working_directory_is_made_at_start_but_not_for_exec() {
    let d = Daemon::start();
    for cli in Cli::ALL {
        let o = d.cli(cli, &["run", "--rm", "-w", "/missing/deep", "busybox", "sh", "-c", "pwd; stat -c '%u %a' ."]);
        assert_eq!(o.out(), "/missing/deep\n0 755", "{}: {o}", cli.name());
    }
    // a file in the way: dockerd's words
    let o = d.docker(&["run", "--rm", "-w", "/etc/passwd", "busybox", "true"]);
    assert_eq!(o.code, 125, "{o}");
    assert!(o.stderr.contains("Cannot mkdir: /etc/passwd is not a directory"), "{o}");
    // exec: runc's chdir fails, exit 126
    assert!(d.berth(&["run", "-d", "--name", "wd", "busybox", "sleep", "60"]).success());
    for cli in Cli::ALL {
        let o = d.cli(cli, &["exec", "-w", "/nope/x", "wd", "pwd"]);
        assert_eq!(o.code, 126, "{}: {o}", cli.name());
        // dockerd's runc message arrives on the exec's stdout
        assert!(o.stdout.contains("chdir to cwd (\"/nope/x\") set in config.json failed: no such file or directory"), "{o}");
        let o = d.cli(cli, &["exec", "-w", "/etc", "wd", "pwd"]);
        assert_eq!(o.out(), "/etc", "{o}");
    }
    d.berth(&["rm", "-f", "wd"]);
}

#[test]
fn exec_events_name_the_command_the_exec_and_its_exit_code() {
    let d = Daemon::start();
    assert!(d.berth(&["run", "-d", "--name", "ev", "busybox", "sleep", "60"]).success());
    let mut events = Spawned::spawn({
        let mut c = d.command(Cli::Docker);
        c.args(["events", "--filter", "container=ev", "--format", "{{.Action}} {{.Actor.Attributes.exitCode}}"]);
        c
    })
    .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(d.berth(&["exec", "ev", "sh", "-c", "exit 3"]).code, 3);
    let line = events.wait_for_line(Duration::from_secs(10), |l| l.starts_with("exec_die"));
    assert_eq!(line.as_deref(), Some("exec_die 3"));
    let lines = events.stdout_lines().to_vec();
    assert!(lines.iter().any(|l| l.starts_with("exec_create: sh -c exit 3")), "{lines:?}");
    assert!(lines.iter().any(|l| l.starts_with("exec_start: sh -c exit 3")), "{lines:?}");
    events.kill();
    d.berth(&["rm", "-f", "ev"]);
}

#[test]
fn validation_uses_dockerds_words() {
    let d = Daemon::start();
    for (hc, want) in [
        (json!({"Test": ["CMD", "true"], "Interval": -1}), "Interval in Healthcheck cannot be less than 1ms"),
        (json!({"Test": ["CMD", "true"], "Timeout": 100}), "Timeout in Healthcheck cannot be less than 1ms"),
        (json!({"Test": ["CMD", "true"], "Retries": -1}), "Retries in Healthcheck cannot be negative"),
        (json!({"Test": ["CMD", "true"], "StartPeriod": 5}), "StartPeriod in Healthcheck cannot be less than 1ms"),
    ] {
        let r = d.api_json("POST", "/v1.41/containers/create", &json!({"Image": "busybox", "Cmd": ["true"], "Healthcheck": hc}));
        assert_eq!(r.status, 400, "{}", r.text());
        assert_eq!(r.json()["message"], want);
    }
    // a tag that would read as an image id
    let r = d.api("POST", "/v1.41/images/busybox/tag?repo=sha256&tag=abc");
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(r.json()["message"], "refusing to create an ambiguous tag using digest algorithm as name");
    let r = d.api("POST", "/v1.41/images/busybox/tag?repo=x&tag=sha256:abc");
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("invalid tag format"), "{}", r.text());
    // the BuildKit session endpoint is refused, with the reason
    let r = d.api("POST", "/v1.41/session");
    assert_eq!(r.status, 501, "{}", r.text());
    assert!(r.text().contains("BuildKit"), "{}", r.text());
}

#[test]
fn old_api_versions_are_served_with_plain_text_errors_up_to_1_23() {
    let d = Daemon::start();
    let r = d.api("GET", "/v1.11/version");
    assert_eq!(r.status, 400);
    assert_eq!(
        r.text(),
        "client version 1.11 is too old. Minimum supported API version is 1.12, please upgrade your client to a newer version\n"
    );
    for v in ["1.12", "1.19", "1.23"] {
        assert_eq!(d.api("GET", &format!("/v{v}/version")).status, 200, "{v}");
        let r = d.api("GET", &format!("/v{v}/containers/nosuch/json"));
        assert_eq!(r.status, 404);
        assert!(r.header("content-type").is_some_and(|t| t.starts_with("text/plain")), "{v}");
        assert_eq!(r.text(), "No such container: nosuch\n");
    }
    let r = d.api("GET", "/v1.24/containers/nosuch/json");
    assert_eq!(r.json()["message"], "No such container: nosuch");
    // /info's SystemTime: RFC 3339 with nanoseconds
    let t = d.api("GET", "/v1.41/info").json()["SystemTime"].as_str().unwrap().to_owned();
    let (date, time) = t.split_once('T').unwrap_or_else(|| panic!("{t}"));
    assert_eq!(date.len(), 10, "{t}");
    assert!(time.contains('.') && (time.ends_with('Z') || time.contains('+') || time.contains('-')), "{t}");
}

#[test]
fn reference_filters_are_or_ed_and_list_only_matching_tags() {
    let d = Daemon::start();
    for t in ["aa:1", "bb:1", "cc:1"] {
        assert!(d.berth(&["tag", "busybox", t]).success());
    }
    // filters={"reference":["aa","bb:*"]}
    let r = d.api("GET", "/v1.41/images/json?filters=%7B%22reference%22%3A%5B%22aa%22%2C%22bb%3A%2A%22%5D%7D");
    assert_eq!(r.status, 200, "{}", r.text());
    let list = r.json();
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    let mut tags: Vec<String> = list[0]["RepoTags"].as_array().unwrap().iter().map(|t| t.as_str().unwrap().to_owned()).collect();
    tags.sort();
    assert_eq!(tags, ["aa:1", "bb:1"], "only the matching tags are listed, as dockerd");
    let o = d.docker(&["images", "--filter", "reference=cc", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert_eq!(o.stdout, "cc:1\n", "{o}");
}
