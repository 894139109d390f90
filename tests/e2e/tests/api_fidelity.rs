//! Container and image API details as dockerd 20.10 answers them: working
//! directories, exec failures and events, validation words, old API versions.

use std::time::Duration;

use berth_e2e::{Cli, Daemon, Spawned};
use serde_json::json;

#[test]
fn a_missing_working_directory_is_made_at_start_but_not_for_exec_and_execs_fail_as_dockerds() {
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
    // Every exec that cannot start ends with 126, its reason on the stream it would
    // have had (a terminal's too), in dockerd's (and runc's) words.
    let why = |what: &str| format!("OCI runtime exec failed: exec failed: unable to start container process: {what}: unknown");
    let cases: [(&[&str], String); 5] = [
        (&["wd", "nonexist"], why("exec: \"nonexist\": executable file not found in $PATH")),
        (&["wd", "/nonexist"], why("exec: \"/nonexist\": stat /nonexist: no such file or directory")),
        (&["-t", "wd", "/nonexist"], why("exec: \"/nonexist\": stat /nonexist: no such file or directory")),
        (&["wd", "/etc/passwd"], why("exec: \"/etc/passwd\": permission denied")),
        (&["-u", "nouser", "wd", "true"], "unable to find user nouser: no matching entries in passwd file".to_owned()),
    ];
    for (args, message) in &cases {
        let o = d.docker(&[&["exec"], *args].concat());
        assert_eq!((o.code, o.stdout.trim_end()), (126, message.as_str()), "{args:?}: {o}");
        // ended as dockerd ends the error it writes to the stream
        assert!(o.stdout.ends_with("unknown\r\n") || o.stdout.ends_with("file\r\n"), "{args:?}: {:?}", o.stdout);
    }
    // Detached, the start itself fails (a missing user: dockerd's 500); the exec ended.
    let r = d.api_json("POST", "/containers/wd/exec", &json!({"Cmd": ["true"], "User": "nouser"}));
    let eid = r.json()["Id"].as_str().unwrap().to_owned();
    let r = d.api_json("POST", &format!("/exec/{eid}/start"), &json!({"Detach": true}));
    assert_eq!(r.status, 500, "{}", r.text());
    let v = d.api("GET", &format!("/exec/{eid}/json")).json();
    assert_eq!((v["Running"].as_bool(), v["ExitCode"].as_i64()), (Some(false), Some(126)), "{v}");
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
    // As dockerd 20.10 sends them, a container's events also carry API 1.21's
    // `status`, `id` and `from` (docker-compose 1.29's `events` reads them).
    let past = d.api("GET", &format!("/events?since=0&until={}&filters=%7B%22type%22%3A%5B%22container%22%5D%7D", chrono_now()));
    let first: serde_json::Value = serde_json::from_str(past.text().lines().next().unwrap()).unwrap();
    assert_eq!((&first["status"], &first["from"]), (&json!("create"), &json!("busybox")), "{first}");
    assert_eq!(first["id"], first["Actor"]["ID"]);
    d.berth(&["rm", "-f", "ev"]);
    // An attached run without a network of its own, in dockerd's sequence: the
    // attach, and the none network joined and left.
    let since = chrono_now();
    assert!(d.docker(&["run", "--rm", "--network", "none", "--name", "ev2", "busybox", "true"]).success());
    let o = d.docker(&["events", "--since", &since.to_string(), "--until", &(chrono_now() + 1).to_string(), "--format", "{{.Type}} {{.Action}} {{.Actor.Attributes.name}}"]);
    let seq: Vec<&str> = o.stdout.lines().skip_while(|l| *l != "container create ev2").collect();
    assert_eq!(
        seq,
        ["container create ev2", "container attach ev2", "network connect none", "container start ev2", "container die ev2", "network disconnect none", "container destroy ev2"],
        "{o}"
    );
}

fn chrono_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
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
    // run flags dockerd refuses, in its words (the docker CLI's exit codes follow them:
    // a missing device's "no such file or directory" is its 127)
    for (args, code, want) in [
        (&["--uts", "host", "--hostname", "x"][..], 125, "conflicting options: hostname and the UTS mode"),
        (&["--stop-signal", "NOPE"], 125, "Invalid signal: NOPE"),
        (&["--network", "none", "--ip", "10.0.0.5"], 125, "user specified IP address is supported on user defined networks only"),
        (&["--device", "/dev/nonexist"], 127, "error gathering device information while adding custom device \"/dev/nonexist\": no such file or directory"),
    ] {
        let o = d.docker(&[&["run", "--rm"], args, &["busybox", "true"]].concat());
        assert_eq!(o.code, code, "{args:?}: {o}");
        assert!(o.stderr.contains(want), "{args:?}: {o}");
    }
    // systemd's stop signal is one
    let o = d.docker(&["run", "--rm", "--stop-signal", "SIGRTMIN+3", "busybox", "true"]);
    assert!(o.success(), "{o}");
    // shared propagation from a source on a mount that is not shared propagates nothing
    let src = d.data_root().join("private-src");
    std::fs::create_dir_all(&src).unwrap();
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let root_shared = mountinfo.lines().any(|l| l.split(' ').nth(4) == Some("/") && l.contains(" shared:"));
    let on_own_mount = mountinfo.lines().any(|l| l.split(' ').nth(4).is_some_and(|m| m != "/" && src.starts_with(m)));
    if !root_shared && !on_own_mount {
        let o = d.docker(&["run", "--rm", "-v", &format!("{}:/h:rshared", src.display()), "busybox", "true"]);
        assert_eq!(o.code, 125, "{o}");
        assert!(o.stderr.contains(&format!("path {} is mounted on / but it is not a shared mount", src.display())), "{o}");
    }
}

/// dockerd's init layer: every container has `/.dockerenv` and `/etc/mtab`, and the
/// mount points of its /etc files, from a layer between its image and its own: they are
/// in its exports and in volumes filled from the image, never among its changes or in
/// an image committed from it.
#[test]
fn containers_have_dockerds_init_layer_outside_their_own() {
    let d = Daemon::start();
    let o = d.docker(&["run", "--name", "il", "busybox", "sh", "-c", "stat -c '%a %s' /.dockerenv; readlink /etc/mtab; touch /made"]);
    assert_eq!(o.out(), "755 0\n/proc/mounts", "{o}");
    let o = d.docker(&["diff", "il"]);
    assert_eq!(o.out(), "A /made", "{o}");
    let o = d.docker(&["commit", "il", "il-img"]);
    assert!(o.success(), "{o}");
    let o = d.docker(&["create", "--name", "il2", "il-img"]);
    assert!(o.success(), "{o}");
    assert_eq!(d.docker(&["diff", "il2"]).out(), "", "the committed layer holds only the container's own change");
    let o = d.docker(&["run", "--rm", "il-img", "ls", "/made", "/.dockerenv"]);
    assert_eq!(o.out(), "/.dockerenv\n/made", "{o}");
    let out = d.command(Cli::Docker).args(["export", "il"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let names: Vec<String> = tar::Archive::new(&out.stdout[..])
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect();
    for want in [".dockerenv", "etc/mtab", "made", "dev/console"] {
        assert!(names.iter().any(|l| l == want), "export lacks {want}: {names:?}");
    }
    let o = d.docker(&["run", "--rm", "-v", "il-etc:/etc", "busybox", "readlink", "/etc/mtab"]);
    assert_eq!(o.out(), "/proc/mounts", "{o}");
    d.docker(&["rm", "il", "il2"]);
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

/// Clients that pin an older API version get dockerd 20.10's older shapes and rules
/// (moby's `versions.LessThan` checks in its routers and `daemon/inspect.go`).
#[test]
fn old_api_versions_get_dockerds_older_shapes() {
    use berth_e2e::Body;
    let d = Daemon::start();
    d.berth(&["network", "create", "oldnet"]).ok();
    d.berth(&["volume", "create", "olddata"]).ok();

    // API 1.19's create body: host settings at the top level.
    let r = d.api_json(
        "POST",
        "/v1.19/containers/create?name=old",
        &json!({"Image": "busybox", "Cmd": ["sleep", "60"], "Memory": 67108864, "CpuShares": 512,
                "Binds": ["olddata:/data"], "NetworkMode": "oldnet"}),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(d.api("POST", "/v1.19/containers/old/start").status, 204);

    let v19 = d.api("GET", "/v1.19/containers/old/json").json();
    assert!(v19.get("Mounts").is_none(), "{v19}");
    let src = v19["Volumes"]["/data"].as_str().unwrap_or_else(|| panic!("{v19}"));
    assert!(src.ends_with("/olddata/_data"), "{v19}");
    assert_eq!(v19["VolumesRW"]["/data"], true, "{v19}");
    assert_eq!(v19["HostConfig"]["Memory"], 67108864, "the top-level Memory is the host config's: {v19}");
    assert_eq!(v19["Config"]["Memory"], 67108864, "{v19}");
    assert_eq!(v19["Config"]["CpuShares"], 512, "{v19}");
    assert_eq!(v19["Config"]["VolumeDriver"], "", "{v19}");
    assert!(v19["NetworkSettings"].get("Networks").is_none(), "{v19}");
    assert!(v19["NetworkSettings"].get("IPAddress").is_some(), "{v19}");

    let v20 = d.api("GET", "/v1.20/containers/old/json").json();
    assert_eq!(v20["Mounts"][0]["Destination"], "/data", "{v20}");
    assert!(v20.get("Volumes").is_none() && v20["Config"].get("Memory").is_none(), "{v20}");
    assert!(v20["NetworkSettings"].get("Networks").is_none(), "{v20}");
    let now = d.api("GET", "/v1.41/containers/old/json").json();
    assert!(now["NetworkSettings"]["Networks"]["oldnet"].is_object(), "{now}");
    assert!(now["Config"].get("VolumeDriver").is_none(), "{now}");

    // Stats: one summed `network` before 1.21.
    let s = d.api("GET", "/v1.20/containers/old/stats?stream=0").json();
    assert!(s["network"]["rx_bytes"].is_u64() && s.get("networks").is_none(), "{s}");
    let s = d.api("GET", "/v1.41/containers/old/stats?stream=0").json();
    assert!(s["networks"]["eth0"].is_object() && s.get("network").is_none(), "{s}");

    // Networks list: each network's containers before 1.28.
    let list = d.api("GET", "/v1.27/networks").json();
    let net = list.as_array().unwrap().iter().find(|n| n["Name"] == "oldnet").cloned().unwrap();
    assert_eq!(net["Containers"].as_object().map(|c| c.len()), Some(1), "{net}");
    let list = d.api("GET", "/v1.41/networks").json();
    let net = list.as_array().unwrap().iter().find(|n| n["Name"] == "oldnet").cloned().unwrap();
    assert!(net["Containers"].as_object().is_none_or(|c| c.is_empty()), "{net}");

    // /info before 1.25.
    let info = d.api("GET", "/v1.24/info").json();
    assert_eq!(info["ExecutionDriver"], "<not supported>", "{info}");
    assert!(info["SecurityOptions"].as_array().unwrap().iter().any(|o| o == "seccomp"), "{info}");
    assert!(d.api("GET", "/v1.41/info").json().get("ExecutionDriver").is_none());

    // The 1.23 `copy` route (removed in 1.24).
    let r = d.api_body("POST", "/v1.23/containers/old/copy", Body::Fixed("application/json", br#"{"Resource":"/etc/hostname"}"#));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/x-tar"));
    let mut ar = tar::Archive::new(&r.body[..]);
    let names: Vec<String> = ar.entries().unwrap().map(|e| e.unwrap().path().unwrap().display().to_string()).collect();
    assert_eq!(names, ["hostname"]);
    let r = d.api_body("POST", "/v1.23/containers/old/copy", Body::Fixed("application/json", br#"{"Resource":""}"#));
    assert_eq!((r.status, r.text()), (400, "Path cannot be empty\n".to_owned()));
    let r = d.api_body("POST", "/v1.24/containers/old/copy", Body::Fixed("application/json", br#"{"Resource":"/etc/hostname"}"#));
    assert_eq!(r.status, 404);

    // A start body: refused from 1.24 on with dockerd's words.
    let r = d.api_body("POST", "/v1.24/containers/old/start", Body::Fixed("application/json", br#"{"Privileged":true}"#));
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["message"], "starting container with non-empty request body was deprecated since API v1.22 and removed in v1.24");

    // Kill of a stopped container: not an error before 1.20.
    d.berth(&["stop", "-t", "0", "old"]).ok();
    assert_eq!(d.api("POST", "/v1.19/containers/old/kill").status, 204);
    assert_eq!(d.api("POST", "/v1.41/containers/old/kill").status, 409);

    // Wait before 1.30 has no condition: `next-exit` of a stopped container answers at once.
    let r = d.api("POST", "/v1.29/containers/old/wait?condition=next-exit");
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), json!({"Error": null, "StatusCode": 137}), "{}", r.text());
    let r = d.api("POST", "/v1.41/containers/old/wait?condition=not-running");
    assert_eq!(r.text(), "{\"Error\":null,\"StatusCode\":137}\n");

    // Create defaults of older clients.
    let r = d.api_json("POST", "/v1.24/containers/create?name=old-rm", &json!({"Image": "busybox", "Cmd": ["true"], "HostConfig": {"AutoRemove": true}}));
    assert_eq!(r.status, 201, "{}", r.text());
    let hc = d.api("GET", "/v1.41/containers/old-rm/json").json()["HostConfig"].clone();
    assert_eq!(hc["AutoRemove"], false, "1.24 clients remove their containers themselves: {hc}");
    assert_eq!(hc["IpcMode"], "shareable", "{hc}");
    let r = d.api_json("POST", "/v1.41/containers/create?name=new-ipc", &json!({"Image": "busybox", "Cmd": ["true"]}));
    assert_eq!(r.status, 201);
    assert_eq!(d.api("GET", "/containers/new-ipc/json").json()["HostConfig"]["IpcMode"], "private");

    // Images: `filter=` is a reference filter before 1.41.
    d.berth(&["tag", "busybox", "oldtag:1"]).ok();
    let tags = |path: &str| -> Vec<String> {
        d.api("GET", path).json().as_array().unwrap().iter()
            .flat_map(|i| i["RepoTags"].as_array().cloned().unwrap_or_default())
            .map(|t| t.as_str().unwrap().to_owned()).collect()
    };
    assert_eq!(tags("/v1.40/images/json?filter=oldtag"), ["oldtag:1"]);
    assert!(tags("/v1.41/images/json?filter=oldtag").contains(&"busybox:latest".to_owned()));

    d.berth(&["rm", "-f", "old", "old-rm", "new-ipc"]).ok();
}

/// Documents carry every key dockerd 20.10 writes, with its zero value when unset:
/// clients that index the JSON (docker-py's `attrs`) must find them.
#[test]
fn documents_have_every_key_dockerd_writes() {
    let d = Daemon::start();
    let r = d.api_json("POST", "/v1.41/containers/create?name=minimal", &json!({"Image": "busybox", "Cmd": ["true"]}));
    assert_eq!(r.status, 201, "{}", r.text());
    let c = d.api("GET", "/v1.41/containers/minimal/json").json();
    for k in ["CapAdd", "CapDrop", "SecurityOpt", "ExtraHosts", "Links", "VolumesFrom", "DeviceRequests", "PidsLimit", "MemorySwappiness"] {
        assert!(c["HostConfig"].as_object().unwrap().contains_key(k), "HostConfig.{k}: {}", c["HostConfig"]);
    }
    for (k, zero) in [("KernelMemory", json!(0)), ("OomKillDisable", json!(false)), ("ConsoleSize", json!([0, 0]))] {
        assert_eq!(c["HostConfig"][k], zero, "HostConfig.{k}");
    }
    for k in ["Entrypoint", "OnBuild", "Volumes", "Domainname", "User"] {
        assert!(c["Config"].as_object().unwrap().contains_key(k), "Config.{k}: {}", c["Config"]);
    }
    assert!(c.as_object().unwrap().contains_key("ExecIDs"));
    let ep = c["NetworkSettings"]["Networks"]["bridge"].as_object().unwrap().clone();
    for k in ["IPAMConfig", "Links", "Aliases", "DriverOpts", "NetworkID", "EndpointID", "MacAddress"] {
        assert!(ep.contains_key(k), "Networks.bridge.{k}: {ep:?}");
    }
    // a network mode without endpoints (none, host) has them all too, zero
    let r = d.api_json("POST", "/v1.41/containers/create?name=no-net", &json!({"Image": "busybox", "Cmd": ["true"], "HostConfig": {"NetworkMode": "none"}}));
    assert_eq!(r.status, 201, "{}", r.text());
    let ep = d.api("GET", "/v1.41/containers/no-net/json").json()["NetworkSettings"]["Networks"]["none"].clone();
    for (k, zero) in [("IPAddress", json!("")), ("IPPrefixLen", json!(0)), ("Gateway", json!("")), ("GlobalIPv6Address", json!("")), ("IPv6Gateway", json!("")), ("Aliases", json!(null))] {
        assert_eq!(ep.get(k), Some(&zero), "Networks.none.{k}: {ep}");
    }

    let img = d.api("GET", "/v1.41/images/busybox/json").json();
    for section in ["Config", "ContainerConfig"] {
        for k in ["Cmd", "Entrypoint", "Env", "WorkingDir", "User", "Volumes", "OnBuild"] {
            assert!(img[section].as_object().is_some_and(|o| o.contains_key(k)), "{section}.{k}: {img}");
        }
    }
    let list = d.api("GET", "/v1.41/images/json").json();
    assert!(list.as_array().unwrap().iter().all(|i| i["VirtualSize"] == i["Size"]), "{list}");
    let info = d.api("GET", "/v1.41/info").json();
    assert_eq!(info["IndexServerAddress"], "https://index.docker.io/v1/");
    for k in ["NFd", "NGoroutines", "BridgeNfIptables", "HttpProxy", "NoProxy", "OSVersion", "ContainerdCommit", "RuncCommit", "InitCommit", "KernelMemoryTCP"] {
        assert!(info.as_object().unwrap().contains_key(k), "info has no {k}");
    }
    assert!(info["NFd"].as_u64().unwrap() > 0 && info["NGoroutines"].as_u64().unwrap() > 0, "{info}");
    d.berth(&["rm", "minimal"]).ok();
}

/// A client that shuts its write side once its request is sent (as `system dial-stdio`
/// does at the end of its stdin) still gets the answer, every time (Go's server gives
/// it; hyper's default dropped about one in four).
#[test]
fn a_request_followed_by_a_half_close_is_answered() {
    use std::io::{Read, Write};
    let d = Daemon::start_bare();
    for i in 0..100 {
        let mut s = std::os::unix::net::UnixStream::connect(d.socket()).unwrap();
        s.write_all(b"GET /_ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
        s.shutdown(std::net::Shutdown::Write).unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        assert!(out.starts_with("HTTP/1.1 200") && out.ends_with("OK"), "attempt {i}: {out:?}");
    }
}

/// A client that leaves while a streamed answer waits (the `wait` that `docker run -d`
/// opens and drops, `logs -f` or `events` ended by Ctrl-C) frees its connection at once
/// rather than when the answer would have come; one that only shut its write side
/// still gets the answer.
#[test]
fn a_client_that_hangs_up_on_a_waiting_answer_frees_its_connection() {
    use std::io::{Read, Write};
    use std::os::unix::net::UnixStream;
    let d = Daemon::start_with_args(&["--warm-containers", "0"]);
    d.import_busybox();
    let id = d.berth(&["run", "-d", "busybox", "sleep", "60"]).ok().trim().to_owned();
    // (the wait `run -d` itself opened and dropped goes the same way)
    let before = d.settled_fds();
    let request = |method: &str, path: &str| {
        let mut s = UnixStream::connect(d.socket()).unwrap();
        write!(s, "{method} {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let head = berth_e2e::read_head(&mut s);
        assert!(head.starts_with("HTTP/1.1 200"), "{method} {path}: {head}");
        s
    };
    let clients = [
        request("POST", &format!("/v1.41/containers/{id}/wait?condition=next-exit")),
        request("GET", "/v1.41/events"),
        request("GET", &format!("/v1.41/containers/{id}/logs?follow=1&stdout=1")),
    ];
    assert!(d.open_fds() >= before + 3, "{} fds, {before} before", d.open_fds());
    drop(clients);
    assert!(berth_e2e::wait_until(Duration::from_secs(10), || d.open_fds() <= before), "{} fds, {before} before", d.open_fds());

    // A half close is not a hangup: the exit code comes.
    let mut s = request("POST", &format!("/v1.41/containers/{id}/wait?condition=next-exit"));
    s.shutdown(std::net::Shutdown::Write).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    d.berth(&["kill", &id]).ok();
    let mut rest = String::new();
    s.read_to_string(&mut rest).unwrap();
    assert!(rest.contains("\"StatusCode\":137"), "{rest:?}");
    d.berth(&["rm", "-f", &id]).ok();
}

/// Swarm mode and engine plugins: berthd has neither, and answers the docker CLI's
/// commands for them as dockerd answers them on a node outside a swarm with no plugin
/// installed (503 "not a swarm manager", an empty plugin list, "not found"), so that
/// clients which probe or clean up (docker-py's tests leave any swarm at each
/// tear-down) carry on; making a swarm or installing a plugin is refused.
#[test]
fn swarm_and_plugin_commands_get_the_answers_of_a_node_outside_a_swarm() {
    let d = Daemon::start_bare();
    let refused = |args: &[&str], msg: &str| {
        let o = d.docker(args);
        assert!(o.code != 0 && o.stderr.contains(msg), "{args:?}: {o}");
    };
    refused(&["swarm", "leave", "--force"], "Error response from daemon: This node is not part of a swarm");
    let manager = "This node is not a swarm manager. Use \"docker swarm init\" or \"docker swarm join\"";
    for cmd in ["node", "service", "secret", "config"] {
        refused(&[cmd, "ls"], manager);
    }
    refused(&["swarm", "init"], "berthd does not implement swarm mode");
    assert_eq!(d.docker(&["info", "--format", "{{.Swarm.LocalNodeState}}"]).ok().trim(), "inactive");
    assert_eq!(d.api("GET", "/v1.41/swarm").status, 503);

    assert_eq!(d.docker(&["plugin", "ls", "--format", "{{.Name}}"]).ok(), "");
    refused(&["plugin", "inspect", "vieux/sshfs:1.0"], "plugin \"vieux/sshfs:1.0\" not found");
    refused(&["plugin", "rm", "foo"], "plugin \"foo\" not found");
    refused(&["plugin", "install", "--grant-all-permissions", "foo"], "berthd does not support engine plugins");
    let r = d.api("GET", "/v1.41/plugins?filters=%7B%22foo%22%3A%5B%22x%22%5D%7D");
    assert_eq!((r.status, r.message()), (400, "Invalid filter 'foo'".to_owned()));
    let plugins = d.docker(&["info", "--format", "{{json .Plugins}}"]).ok().to_owned();
    assert!(plugins.contains(r#""Network":["bridge","host","null"]"#) && plugins.contains(r#""Log":["json-file","local"]"#), "{plugins}");
}

/// dockerd reads request bodies with Go's `encoding/json`, which matches keys to
/// fields whatever their case: docker-py sends an exec's `detachKeys` so, and
/// hand-written clients `image` or `cmd`. Map keys (labels) keep their case.
#[test]
fn body_keys_match_fields_in_any_case_as_go_matches_them() {
    let d = Daemon::start();
    d.import_busybox();
    let r = d.api_json(
        "POST",
        "/v1.41/containers/create?name=gocase",
        &json!({"image": "busybox", "cmd": ["sleep", "60"], "labels": {"Team": "a"}, "hostConfig": {"memory": 67108864}}),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let c = d.inspect("gocase");
    assert_eq!(c["Config"]["Cmd"], json!(["sleep", "60"]));
    assert_eq!(c["Config"]["Labels"], json!({"Team": "a"}));
    assert_eq!(c["HostConfig"]["Memory"], 67108864);
    d.berth(&["start", "gocase"]).ok();
    let r = d.api_json("POST", "/v1.41/containers/gocase/exec", &json!({"cmd": ["true"], "detachKeys": "ctrl-p", "attachStdout": true}));
    assert_eq!(r.status, 201, "{}", r.text());
    let id = r.json()["Id"].as_str().unwrap().to_owned();
    let e = d.api("GET", &format!("/v1.41/exec/{id}/json")).json();
    assert_eq!((e["DetachKeys"].as_str(), e["ProcessConfig"]["entrypoint"].as_str()), (Some("ctrl-p"), Some("true")));
    d.berth(&["rm", "-f", "gocase"]).ok();
}

/// `GET /containers/{id}/attach/ws` as dockerd 20.10 answers it (recorded with a raw
/// client): a 101 with the handshake's accept key, the output as binary messages
/// without stream headers (stdout and stderr alike, the logs first with `logs=1`),
/// each client message on the container's stdin, a normal close when it ends. A
/// request that is not a websocket handshake is refused.
#[test]
fn attach_over_a_websocket_carries_output_and_stdin() {
    use std::io::{Read, Write};
    let d = Daemon::start();
    d.import_busybox();
    d.berth(&["run", "-d", "-i", "--name", "ws", "busybox", "sh", "-c", "echo ready; read l; echo got:$l; sleep 0.2; echo bye >&2"]).ok();
    assert!(berth_e2e::wait_until(Duration::from_secs(10), || d.berth(&["logs", "ws"]).stdout.contains("ready")));
    let mut s = std::os::unix::net::UnixStream::connect(d.socket()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    // The example key of RFC 6455 and its accept value.
    write!(
        s,
        "GET /v1.41/containers/ws/attach/ws?stream=1&logs=1&stdin=1&stdout=1&stderr=1 HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    .unwrap();
    let head = berth_e2e::read_head(&mut s);
    assert!(head.starts_with("HTTP/1.1 101") && head.to_ascii_lowercase().contains("sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo="), "{head}");
    // A masked binary message from the client: a line for `read`.
    let (payload, mask) = (b"typed\n", [1u8, 2, 3, 4]);
    let mut frame = vec![0x82, 0x80 | payload.len() as u8];
    frame.extend(mask);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    s.write_all(&frame).unwrap();
    let (mut out, mut close) = (Vec::new(), None);
    while close.is_none() {
        let mut h = [0u8; 2];
        s.read_exact(&mut h).unwrap();
        let mut len = (h[1] & 0x7f) as usize;
        if len == 126 {
            let mut l = [0u8; 2];
            s.read_exact(&mut l).unwrap();
            len = u16::from_be_bytes(l) as usize;
        }
        assert_eq!(h[1] & 0x80, 0, "a server's frames are not masked");
        let mut p = vec![0u8; len];
        s.read_exact(&mut p).unwrap();
        match h[0] & 0x0f {
            0x2 => out.extend(p),
            0x8 => close = Some(p),
            op => panic!("unexpected opcode {op:#x}"),
        }
    }
    assert_eq!(close.unwrap(), [0x03, 0xe8], "a normal close");
    let text = String::from_utf8(out).unwrap();
    assert!(text.starts_with("ready\n") && text.contains("got:typed\n") && text.contains("bye\n"), "{text:?}");
    assert_eq!(text.matches("ready").count(), 1, "{text:?}");

    let r = d.api("GET", "/v1.41/containers/ws/attach/ws?stream=1&stdout=1");
    assert_eq!(r.status, 400, "{}", r.text());
    d.berth(&["rm", "-f", "ws"]).ok();
}

/// What API 1.41 clients (docker-compose 1.29, docker-py) read back as dockerd writes
/// it: `CpuCount` as given, the container config's `MacAddress` as given (and given to its network's
/// endpoint however often that is made), and `Mounts` without the legacy
/// `HostConfig.Tmpfs` entries (dockerd keeps those out of its mount points; a
/// `--mount type=tmpfs` is one).
#[test]
fn inspect_keeps_the_config_mac_and_leaves_legacy_tmpfs_out_of_mounts() {
    let d = Daemon::start();
    let body = json!({
        "Image": "busybox", "Cmd": ["sleep", "60"], "MacAddress": "02:42:ac:11:65:43",
        "HostConfig": {"Tmpfs": {"/legacy": "size=1m"}, "Mounts": [{"Type": "tmpfs", "Target": "/listed"}],
            "CpuCount": 2, "CpuPercent": 20}
    });
    let r = d.api_json("POST", "/v1.41/containers/create?name=macmounts", &body);
    assert_eq!(r.status, 201, "{}", r.text());
    // A CPU percent is discarded, a CPU count kept (and, on Linux, applied by neither
    // engine): dockerd's answers, berthd naming both.
    assert_eq!(
        r.json()["Warnings"],
        json!(["linux does not support CPU percent. Percent discarded.", "linux does not support CPU count. Count kept but not applied."])
    );
    // Reconnected before its start, as docker-compose 1.29 does: the config's MAC
    // address is still its network's.
    d.docker(&["network", "disconnect", "bridge", "macmounts"]).ok();
    d.docker(&["network", "connect", "bridge", "macmounts"]).ok();
    d.docker(&["start", "macmounts"]).ok();
    let v = d.inspect("macmounts");
    assert_eq!((v["HostConfig"]["CpuCount"].as_i64(), v["HostConfig"]["CpuPercent"].as_i64()), (Some(2), Some(0)));
    assert_eq!(v["Config"]["MacAddress"], "02:42:ac:11:65:43", "{}", v["Config"]);
    assert_eq!(v["NetworkSettings"]["MacAddress"], "02:42:ac:11:65:43");
    let dests: Vec<&str> = v["Mounts"].as_array().unwrap().iter().filter_map(|m| m["Destination"].as_str()).collect();
    assert_eq!(dests, ["/listed"], "{}", v["Mounts"]);
    // Both are mounted all the same.
    let o = d.docker(&["exec", "macmounts", "sh", "-c", "grep -c -E ' /(legacy|listed) tmpfs' /proc/mounts"]);
    assert_eq!(o.ok().trim(), "2");
    d.docker(&["rm", "-f", "macmounts"]).ok();
}

/// The list's `Command`: an argument holding a space is quoted, as dockerd writes it
/// (compose's `ps` and the docker CLI show it so).
#[test]
fn the_list_quotes_arguments_with_spaces() {
    let d = Daemon::start();
    let id = d.berth(&["run", "-d", "busybox", "sh", "-c", "sleep 60; true"]).ok().trim().to_owned();
    let list = d.api("GET", "/v1.41/containers/json").json();
    let row = list.as_array().unwrap().iter().find(|c| c["Id"] == id.as_str()).unwrap().clone();
    assert_eq!(row["Command"], "sh -c 'sleep 60; true'");
    d.berth(&["rm", "-f", &id]).ok();
}

/// A create's environment is the request's variables as given, then the image's it
/// does not set (dockerd's merge): so `inspect` lists it, and so the process sees it.
#[test]
fn a_containers_environment_lists_its_own_variables_before_the_images() {
    let d = Daemon::start();
    let rootfs = berth_e2e::busybox_rootfs();
    d.berth(&["import", "-c", "ENV A=image", "-c", "ENV Z=image", &rootfs.to_string_lossy(), "withenv"]).ok();
    // The berth CLI and the API keep the order given (the docker CLI sends its own
    // variables in Go's map order: it merges its proxy settings into them).
    d.berth(&["create", "--name", "envorder", "-e", "B=own", "-e", "A=own", "withenv", "env"]).ok();
    let r = d.api_json("POST", "/v1.41/containers/create?name=envorder-api", &json!({"Image": "withenv", "Cmd": ["env"], "Env": ["B=own", "A=own"]}));
    assert_eq!(r.status, 201, "{}", r.text());
    for name in ["envorder", "envorder-api"] {
        let env = d.inspect(name)["Config"]["Env"].clone();
        assert_eq!(env, json!(["B=own", "A=own", "Z=image"]), "{name}");
        let out = d.berth(&["start", "-a", name]).ok().to_owned();
        let lines: Vec<&str> = out.lines().filter(|l| ["A=", "B=", "Z="].iter().any(|p| l.starts_with(p))).collect();
        assert_eq!(lines, ["B=own", "A=own", "Z=image"], "{name}: {out}");
        d.berth(&["rm", name]).ok();
    }
    // An exec's: the daemon's defaults (TERM for its own terminal), the container's,
    // the exec's (a bare name unsets), and the exec user's HOME after them, as dockerd.
    d.docker(&["run", "-d", "--name", "envexec", "-e", "B=own", "busybox", "sleep", "60"]).ok();
    let env = |args: &[&str]| -> Vec<String> {
        let mut a = vec!["exec"];
        a.extend_from_slice(args);
        a.extend(["envexec", "env"]);
        let o = d.docker(&a).ok().to_owned();
        o.lines().map(|l| l.trim_end_matches('\r').to_owned()).filter(|l| !l.starts_with("HOSTNAME=") && !l.starts_with("PATH=")).collect()
    };
    assert_eq!(env(&["-e", "C=1", "-e", "B"]), ["C=1", "HOME=/root"]);
    assert_eq!(env(&["-u", "nobody"]), ["B=own", "HOME=/nonexistent"]);
    assert_eq!(env(&["-t"]), ["TERM=xterm", "B=own", "HOME=/root"]);
    d.docker(&["rm", "-f", "envexec"]).ok();
}
