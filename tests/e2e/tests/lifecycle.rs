//! Detached containers: run -d, logs -f, exec, stop, rm; ps and inspect.

use std::time::Duration;

use berth_e2e::{wait_until, Cli, Daemon};

/// A container that prints `line0`, `line1`, … every 0.2 s and exits 0 on SIGTERM.
const TICKER: &str =
    "trap 'exit 0' TERM; i=0; while true; do echo line$i; i=$((i+1)); sleep 0.2; done";

#[test]
fn detached_logs_follow_exec_stop_rm() {
    let d = Daemon::start();
    for cli in Cli::ALL {
        let name = format!("lc-{}", cli.name());
        let o = d.cli(
            cli,
            &["run", "-d", "--name", &name, "busybox", "sh", "-c", TICKER],
        );
        assert_eq!(o.code, 0, "{o}");
        let id = o.out().to_string();
        assert_eq!(id.len(), 64, "run -d prints the full id: {o}");
        assert!(id.chars().all(|c| c.is_ascii_hexdigit()), "{o}");
        assert_eq!(d.inspect(&name)["State"]["Status"], "running");

        // logs -f delivers lines as they are produced
        let mut follow = d.spawn(cli, &["logs", "-f", &name]);
        for i in 0..4 {
            let want = format!("line{i}");
            assert!(
                follow
                    .wait_for_line(Duration::from_secs(10), |l| l == want)
                    .is_some(),
                "{}: logs -f never showed {want}; got {:?} / {:?}",
                cli.name(),
                follow.stdout_lines().to_vec(),
                follow.stderr_lines().to_vec()
            );
        }
        assert_eq!(follow.try_exit(), None, "logs -f must keep following");
        follow.kill();

        // exec: output and exit code
        let o = d.cli(
            cli,
            &[
                "exec",
                &name,
                "sh",
                "-c",
                "echo in-exec; echo to-err >&2; exit 7",
            ],
        );
        assert_eq!(o.code, 7, "{o}");
        assert_eq!(o.stdout, "in-exec\n", "{o}");
        assert!(o.stderr.contains("to-err"), "{o}");
        let o = d.cli(cli, &["exec", &name, "cat", "/proc/1/cmdline"]);
        assert!(
            o.stdout.starts_with("sh\0-c\0"),
            "exec runs beside the container's pid 1: {o}"
        );

        // stop: SIGTERM, the trap exits 0
        let o = d.cli(cli, &["stop", &name]);
        assert_eq!((o.code, o.out()), (0, name.as_str()), "{o}");
        let c = d.inspect(&name);
        assert_eq!(c["State"]["Status"], "exited");
        assert_eq!(c["State"]["Running"], false);
        assert_eq!(c["State"]["ExitCode"], 0);

        // non-follow logs hold what was printed
        let o = d.cli(cli, &["logs", &name]);
        assert!(o.stdout.starts_with("line0\nline1\nline2\nline3\n"), "{o}");

        let o = d.cli(cli, &["rm", &name]);
        assert_eq!((o.code, o.out()), (0, name.as_str()), "{o}");
        let r = d.api("GET", &format!("/v1.41/containers/{name}/json"));
        assert_eq!(r.status, 404, "{}", r.text());
        let o = d.cli(cli, &["rm", &name]);
        assert_ne!(o.code, 0, "rm of a removed container must fail: {o}");
        assert!(o.stderr.contains("No such container"), "{o}");
    }
}

#[test]
fn rm_force_kills_a_running_container() {
    let d = Daemon::start();
    for cli in Cli::ALL {
        let name = format!("rmf-{}", cli.name());
        d.cli(
            cli,
            &["run", "-d", "--name", &name, "busybox", "sleep", "1000"],
        )
        .ok();
        let o = d.cli(cli, &["rm", &name]);
        assert_ne!(o.code, 0, "rm of a running container needs -f: {o}");
        let o = d.cli(cli, &["rm", "-f", &name]);
        assert_eq!(o.code, 0, "{o}");
        assert_eq!(
            d.api("GET", &format!("/v1.41/containers/{name}/json"))
                .status,
            404
        );
    }
}

/// A container's cgroup goes with it, in every hierarchy: after `rm -f` of a running
/// one with an exec still running in it, and after a `--rm` container's exit.
#[test]
fn cgroups_go_with_their_containers() {
    let d = Daemon::start();
    let id = d.berth(&["run", "-d", "busybox", "sleep", "60"]).ok().trim().to_owned();
    assert!(!berth_e2e::cgroup_dirs(&id).is_empty(), "no cgroup for {id}");
    d.berth(&["exec", "-d", &id, "sleep", "60"]).ok();
    d.berth(&["rm", "-f", &id]).ok();
    assert!(wait_until(Duration::from_secs(5), || berth_e2e::cgroup_dirs(&id).is_empty()), "{:?}", berth_e2e::cgroup_dirs(&id));

    let id = d.berth(&["run", "-d", "--rm", "busybox", "sleep", "0.2"]).ok().trim().to_owned();
    assert!(wait_until(Duration::from_secs(5), || d.container_ids().is_empty()));
    assert!(wait_until(Duration::from_secs(5), || berth_e2e::cgroup_dirs(&id).is_empty()), "{:?}", berth_e2e::cgroup_dirs(&id));
}

#[test]
fn ps_and_inspect() {
    let d = Daemon::start();
    for cli in Cli::ALL {
        let sfx = cli.name();
        let running = format!("ps-run-{sfx}");
        let created = format!("ps-created-{sfx}");
        let exited = format!("ps-exited-{sfx}");
        let run_id = d
            .cli(
                cli,
                &["run", "-d", "--name", &running, "busybox", "sleep", "1000"],
            )
            .ok()
            .trim()
            .to_string();
        let created_id = d
            .cli(cli, &["create", "--name", &created, "busybox", "true"])
            .ok()
            .trim()
            .to_string();
        let o = d.cli(
            cli,
            &["run", "--name", &exited, "busybox", "sh", "-c", "exit 2"],
        );
        assert_eq!(o.code, 2, "{o}");
        assert_eq!(created_id.len(), 64, "create prints the id");

        // ps: running only; names in the last column, short ids in the first
        let o = d.cli(cli, &["ps"]);
        let rows: Vec<&str> = o.ok().lines().skip(1).collect();
        assert!(o.stdout.starts_with("CONTAINER ID"), "{o}");
        let mine: Vec<&&str> = rows
            .iter()
            .filter(|r| r.ends_with(&format!("-{sfx}")))
            .collect();
        assert_eq!(mine.len(), 1, "ps shows only the running one: {o}");
        assert!(
            mine[0].starts_with(&run_id[..12]) && mine[0].ends_with(&running),
            "{o}"
        );
        assert!(mine[0].contains("Up "), "status column: {o}");

        // ps -a: all three
        let o = d.cli(cli, &["ps", "-a"]);
        for n in [&running, &created, &exited] {
            assert!(
                o.ok().lines().any(|l| l.ends_with(n.as_str())),
                "ps -a lacks {n}: {o}"
            );
        }
        assert!(
            o.stdout
                .lines()
                .any(|l| l.ends_with(&exited) && l.contains("Exited (2)")),
            "{o}"
        );
        assert!(
            o.stdout
                .lines()
                .any(|l| l.ends_with(&created) && l.contains("Created")),
            "{o}"
        );

        // -q: short ids only
        let o = d.cli(cli, &["ps", "-q", "--filter", &format!("name={running}")]);
        assert_eq!(
            o.ok().lines().collect::<Vec<_>>(),
            vec![&run_id[..12]],
            "{o}"
        );
        let o = d.cli(
            cli,
            &[
                "ps",
                "-aq",
                "--no-trunc",
                "--filter",
                &format!("name={created}"),
            ],
        );
        assert_eq!(
            o.ok().lines().collect::<Vec<_>>(),
            vec![created_id.as_str()],
            "{o}"
        );

        // filters: status, name (substring), id prefix
        let names = |args: &[&str]| -> Vec<String> {
            let o = d.cli(cli, args);
            o.ok()
                .lines()
                .skip(1)
                .filter_map(|l| l.split_whitespace().last())
                .map(str::to_owned)
                .collect()
        };
        let n = names(&["ps", "-a", "--filter", "status=exited"]);
        assert!(
            n.contains(&exited) && !n.contains(&running) && !n.contains(&created),
            "{n:?}"
        );
        let n = names(&["ps", "-a", "--filter", "status=created"]);
        assert!(n.contains(&created) && !n.contains(&exited), "{n:?}");
        let n = names(&["ps", "-a", "--filter", "name=ps-cr"]);
        assert!(n.contains(&created) && !n.contains(&running), "{n:?}");
        let n = names(&[
            "ps",
            "-a",
            "--filter",
            "status=running",
            "--filter",
            &format!("name={sfx}"),
        ]);
        assert_eq!(n, vec![running.clone()]);
        let o = d.cli(
            cli,
            &["ps", "-aq", "--filter", &format!("id={}", &run_id[..8])],
        );
        assert_eq!(o.ok().trim(), &run_id[..12], "{o}");

        // inspect through the CLI: a JSON array with the fields docker prints
        let image_id = d.api("GET", "/v1.41/images/busybox:latest/json").json()["Id"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(image_id.starts_with("sha256:"));
        let o = d.cli(cli, &["inspect", &exited]);
        let v = o.json();
        let c = &v[0];
        assert_eq!(c["Name"], format!("/{exited}"), "{o}");
        assert_eq!(c["Id"].as_str().unwrap().len(), 64);
        assert_eq!(c["State"]["Status"], "exited");
        assert_eq!(c["State"]["ExitCode"], 2);
        assert_eq!(
            c["Config"]["Cmd"],
            serde_json::json!(["sh", "-c", "exit 2"])
        );
        assert_eq!(c["Config"]["Image"], "busybox");
        assert_eq!(c["Image"], image_id.as_str());
        let v = d.cli(cli, &["inspect", &running]).json();
        assert_eq!(v[0]["Id"], run_id.as_str());
        assert_eq!(v[0]["State"]["Status"], "running");
        assert_eq!(v[0]["State"]["Running"], true);
        assert!(v[0]["State"]["Pid"].as_i64().unwrap() > 0);
        let v = d.cli(cli, &["inspect", &created]).json();
        assert_eq!(v[0]["State"]["Status"], "created");
        // inspect by short id prefix
        let v = d.cli(cli, &["inspect", &run_id[..10]]).json();
        assert_eq!(v[0]["Name"], format!("/{running}"));
        // unknown
        let o = d.cli(cli, &["inspect", "no-such-thing"]);
        assert_eq!(o.code, 1, "{o}");
        assert!(
            o.stderr.contains("No such object") || o.stderr.contains("No such container"),
            "{o}"
        );

        d.cli(cli, &["rm", "-f", &running, &created, &exited]).ok();
    }
    assert!(wait_until(Duration::from_secs(10), || d
        .container_ids()
        .is_empty()));
}

/// Real-SDK defects: a SIGKILL is answered once the container is dead; exec output
/// is framed by the start request's Tty; defaults clients index are present.
#[test]
fn kill_waits_exec_framing_follows_start_and_defaults_are_shown() {
    let d = Daemon::start();
    for i in 0..5 {
        let name = format!("k{i}");
        d.berth(&["run", "-d", "--name", &name, "busybox", "sleep", "600"]).ok();
        let r = d.api("POST", &format!("/v1.41/containers/{name}/kill"));
        assert_eq!(r.status, 204);
        let st = d.inspect(&name)["State"].clone();
        assert_eq!((st["Running"].as_bool(), st["ExitCode"].as_i64()), (Some(false), Some(137)), "{st}");
        let r = d.api("DELETE", &format!("/v1.41/containers/{name}"));
        assert_eq!(r.status, 204, "{}", r.text());
    }

    d.berth(&["run", "-d", "--name", "ex", "busybox", "sleep", "600"]).ok();
    let create = serde_json::json!({"Cmd": ["echo", "framed"], "Tty": true, "AttachStdout": true, "AttachStderr": true});
    let id = d.api_json("POST", "/v1.41/containers/ex/exec", &create).json()["Id"].as_str().unwrap().to_owned();
    let r = d.api_json("POST", &format!("/v1.41/exec/{id}/start"), &serde_json::json!({"Detach": false, "Tty": false}));
    assert_eq!(r.status, 200);
    assert_eq!(r.body.first(), Some(&1u8), "not multiplexed: {:?}", r.text());
    assert!(r.text().contains("framed"));
    let insp = d.api("GET", &format!("/v1.41/exec/{id}/json")).json();
    assert_eq!(insp["ProcessConfig"]["tty"], true);
    assert_eq!(insp["ProcessConfig"]["entrypoint"], "echo");
    // A create without a Tty, started with one: raw.
    let create = serde_json::json!({"Cmd": ["echo", "raw"], "AttachStdout": true});
    let id = d.api_json("POST", "/v1.41/containers/ex/exec", &create).json()["Id"].as_str().unwrap().to_owned();
    let r = d.api_json("POST", &format!("/v1.41/exec/{id}/start"), &serde_json::json!({"Tty": true}));
    assert_eq!(r.text(), "raw\n");

    let hc = d.inspect("ex")["HostConfig"].clone();
    assert_eq!(hc["Runtime"], "runc");
    assert_eq!(hc["LogConfig"]["Type"], "json-file");
    let info = d.api("GET", "/v1.41/info").json();
    assert_eq!(info["DefaultRuntime"], "runc");
    assert!(info["Debug"].is_boolean() && info["ExperimentalBuild"] == false, "{info}");
}

/// attach with logs and without stream replays the log and closes; logs --details;
/// rm --link drops a legacy link, not a container.
#[test]
fn attach_logs_replay_details_and_link_removal() {
    let d = Daemon::start();
    d.berth(&["run", "--name", "done", "busybox", "sh", "-c", "echo out; echo err >&2"]).ok();
    let r = d.api("POST", "/v1.41/containers/done/attach?stream=0&logs=1&stdout=1&stderr=1");
    assert_eq!(r.status, 200);
    // Both frames; stdout and stderr are separate pipes, so their order is not kept.
    let (out, err): (&[u8], &[u8]) = (b"\x01\x00\x00\x00\x00\x00\x00\x04out\n", b"\x02\x00\x00\x00\x00\x00\x00\x04err\n");
    assert!(r.body == [out, err].concat() || r.body == [err, out].concat(), "{:?}", r.body);
    let o = d.docker(&["logs", "--details", "done"]);
    assert_eq!((o.stdout.as_str(), o.stderr.as_str()), (" out\n", " err\n"));
    d.berth(&["run", "-d", "--name", "db1", "busybox", "sleep", "600"]).ok();
    d.berth(&["run", "-d", "--name", "app1", "--link", "db1:db", "busybox", "sleep", "600"]).ok();
    d.docker(&["rm", "--link", "/app1/db"]).ok();
    assert_eq!(d.inspect("app1")["HostConfig"]["Links"].as_array().map(Vec::len).unwrap_or(0), 0);
    assert_eq!(d.inspect("db1")["State"]["Running"], true);
    let o = d.docker(&["rm", "--link", "db1"]);
    assert!(o.code != 0 && o.stderr.contains("cannot remove the default link name"), "{o}");
}

/// `ps -s` / `inspect --size` / `system df`: what a container wrote, and that plus
/// its image (`size=1` was accepted and ignored before).
#[test]
fn container_sizes_count_what_it_wrote() {
    let d = berth_e2e::Daemon::start();
    let id = d.berth(&["run", "-d", "busybox", "sh", "-c", "dd if=/dev/zero of=/big bs=1024 count=1024 2>/dev/null; sleep 600"]).ok().trim().to_owned();
    assert!(berth_e2e::wait_until(std::time::Duration::from_secs(10), || {
        d.api("GET", &format!("/containers/{id}/json?size=1")).json()["SizeRw"].as_i64().unwrap_or(0) >= 1024 * 1024
    }));
    let v = d.api("GET", &format!("/containers/{id}/json?size=1")).json();
    let (rw, rootfs) = (v["SizeRw"].as_i64().unwrap(), v["SizeRootFs"].as_i64().unwrap());
    let image = d.api("GET", "/images/busybox/json").json()["Size"].as_i64().unwrap();
    assert_eq!(rootfs, rw + image);
    assert!(d.api("GET", &format!("/containers/{id}/json")).json().get("SizeRw").is_none(), "size only when asked");
    let ps = d.docker(&["ps", "-s", "--format", "{{.Size}}"]);
    assert!(ps.stdout.trim().starts_with("1.05MB (virtual "), "{ps}");
    let list = d.api("GET", "/containers/json?size=1").json();
    assert_eq!(list[0]["SizeRw"].as_i64(), Some(rw));
    // A container that wrote nothing: the list leaves its zero out, as dockerd's does.
    let quiet = d.berth(&["run", "-d", "busybox", "sleep", "600"]).ok().trim().to_owned();
    let list = d.api("GET", &format!("/containers/json?size=1&filters=%7B%22id%22%3A%5B%22{quiet}%22%5D%7D")).json();
    assert!(list[0].get("SizeRw").is_none() && list[0]["SizeRootFs"].as_i64() > Some(0), "{list}");
    // Both CLIs print it as "0B (virtual ...)".
    let f = format!("--filter=id={quiet}");
    let docker = d.docker(&["ps", "-s", &f, "--format", "{{.Size}}"]).ok().to_owned();
    assert!(docker.starts_with("0B (virtual "), "{docker}");
    assert_eq!(d.berth(&["ps", "-s", &f, "--format", "{{.Size}}"]).ok(), docker);
    d.berth(&["rm", "-f", &id, &quiet]).ok();
    // `rm -f` of a container that is not there reports it and does not fail (the
    // docker CLI's); without -f it fails.
    for cli in Cli::ALL {
        let o = d.cli(cli, &["rm", "-f", "nosuch-rm"]);
        assert!(o.code == 0 && o.stderr.contains("No such container: nosuch-rm"), "{}: {o}", cli.name());
        assert_eq!(d.cli(cli, &["rm", "nosuch-rm"]).code, 1, "{}", cli.name());
    }
}

/// `system df`'s images: each with its containers and the size of the layers another
/// listed image has too (`SharedSize`, computed there only, as dockerd does; the image
/// list says -1), so the docker CLI shows shared and unique sizes and counts an image a
/// container uses as not reclaimable.
#[test]
fn system_df_shows_what_images_share() {
    let d = Daemon::start();
    d.berth(&["run", "--name", "wr", "busybox", "sh", "-c", "head -c 100000 /dev/zero > /blob"]).ok();
    d.berth(&["commit", "wr", "derived"]).ok();
    let base = d.api("GET", "/images/busybox/json").json()["Size"].as_i64().unwrap();
    let df = d.api("GET", "/system/df").json();
    let row = |tag: &str| {
        df["Images"].as_array().unwrap().iter().find(|i| i["RepoTags"].to_string().contains(tag)).cloned().unwrap_or_else(|| panic!("{tag}: {df}"))
    };
    let (bb, derived) = (row("busybox:latest"), row("derived:latest"));
    assert_eq!(bb["SharedSize"].as_i64(), Some(base), "{bb}");
    assert_eq!(derived["SharedSize"].as_i64(), Some(base), "{derived}");
    assert!(derived["Size"].as_i64().unwrap() >= base + 100_000, "{derived}");
    assert_eq!((bb["Containers"].as_i64(), derived["Containers"].as_i64()), (Some(1), Some(0)));
    let list = d.api("GET", "/images/json").json();
    assert!(list.as_array().unwrap().iter().all(|i| i["SharedSize"] == -1), "{list}");
    let o = d.docker(&["system", "df", "-v", "--format", "{{range .Images}}{{.Repository}} {{.SharedSize}} {{.UniqueSize}}\n{{end}}"]);
    let line = o.stdout.lines().find(|l| l.starts_with("derived ")).unwrap_or_else(|| panic!("{o}"));
    assert!(!line.contains("N/A"), "{o}");
    // The summary's reclaimable images: all layers less what the images in use hold
    // alone; both CLIs work it out the same.
    let images_row = |cli: Cli| d.cli(cli, &["system", "df"]).ok().lines().find(|l| l.starts_with("Images")).unwrap_or_default().to_owned();
    assert_eq!(images_row(Cli::Berth), images_row(Cli::Docker));
    d.berth(&["rm", "wr"]).ok();
    d.berth(&["rmi", "derived"]).ok();
}

/// Names follow renames and removals: the old name of a renamed container is free for
/// a new one, each name finds its own container (by the docker CLI too), and a removed
/// container's name can be taken again.
#[test]
fn names_follow_renames_and_removals() {
    let d = Daemon::start();
    let first = d.berth(&["create", "--name", "one", "busybox", "true"]).ok().trim().to_owned();
    d.berth(&["rename", "one", "two"]).ok();
    let o = d.berth(&["inspect", "one"]);
    assert!(!o.success() && o.stderr.contains("No such"), "{o}");
    let second = d.berth(&["create", "--name", "one", "busybox", "true"]).ok().trim().to_owned();
    assert_ne!(first, second);
    for (name, id) in [("one", &second), ("two", &first)] {
        assert_eq!(d.inspect(name)["Id"].as_str(), Some(id.as_str()), "{name}");
    }
    assert_eq!(d.docker(&["inspect", "-f", "{{.Id}} {{.Name}}", "/two"]).ok().trim(), format!("{first} /two"));
    let o = d.berth(&["rename", "one", "two"]);
    assert!(!o.success() && o.stderr.contains("already in use"), "{o}");
    d.berth(&["rm", "two"]).ok();
    let third = d.berth(&["create", "--name", "two", "busybox", "true"]).ok().trim().to_owned();
    assert_eq!(d.inspect("two")["Id"].as_str(), Some(third.as_str()));
    d.berth(&["rm", "one", "two"]).ok();
}

/// An exec still running when its container's main process exits is killed with the
/// container and ends with 137 (SIGKILL), as with dockerd — through the docker CLI, the
/// berth CLI and the exec's inspect — rather than a stream cut off by the shim's exit.
#[test]
fn an_exec_ends_with_137_when_its_container_exits() {
    let d = Daemon::start();
    for (cli, name) in [(Cli::Docker, "exe1"), (Cli::Berth, "exe2")] {
        d.berth(&["run", "-d", "--name", name, "busybox", "sleep", "2"]).ok();
        let o = d.cli(cli, &["exec", name, "sleep", "100"]);
        assert_eq!(o.code, 137, "{cli:?}: {o}");
        let events = d.berth(&["events", "--since", "0", "--until", "0s", "--filter", &format!("container={name}"), "--filter", "event=exec_die", "--format", "{{json .}}"]);
        assert!(events.ok().contains("\"exitCode\":\"137\""), "{cli:?}: {events}");
    }
    d.berth(&["rm", "exe1", "exe2"]).ok();
}

/// `rmi -f` of an image only stopped containers use deletes it, as dockerd does
/// ("Untagged" and "Deleted"; gone from `images -a` and inspect), and those containers
/// still start, and commit, from the layers they keep; with the last of them the
/// image's layers go.
#[test]
fn forced_rmi_deletes_an_image_stopped_containers_use_and_they_keep_its_layers() {
    let d = Daemon::start();
    d.berth(&["run", "--name", "mk", "busybox", "sh", "-c", "echo only-here > /mark"]).ok();
    d.berth(&["commit", "mk", "doomed"]).ok();
    d.berth(&["rm", "mk"]).ok();
    let id = d.api("GET", "/images/doomed/json").json()["Id"].as_str().unwrap().to_owned();
    let top = d.api("GET", "/images/doomed/json").json()["RootFS"]["Layers"].as_array().unwrap().last().unwrap().as_str().unwrap().to_owned();
    let blob = d.data_root().join("content/blobs/sha256").join(top.trim_start_matches("sha256:"));
    assert!(blob.exists(), "{}", blob.display());
    d.docker(&["create", "--name", "user", "doomed", "cat", "/mark"]).ok();
    let o = d.docker(&["rmi", "doomed"]);
    assert!(o.code != 0 && o.stderr.contains("must force"), "{o}");
    let o = d.docker(&["rmi", "-f", "doomed"]);
    assert_eq!(o.ok(), format!("Untagged: doomed:latest\nDeleted: {id}\n"));
    assert!(!d.docker(&["images", "-aq", "--no-trunc"]).ok().contains(&id));
    assert_eq!(d.api("GET", &format!("/images/{id}/json")).status, 404);
    // The container still runs from its layers, and commits on top of them.
    assert_eq!(d.docker(&["start", "-a", "user"]).ok(), "only-here\n");
    assert_eq!(d.docker(&["inspect", "-f", "{{.Image}}", "user"]).ok().trim(), id);
    d.docker(&["commit", "user", "saved"]).ok();
    assert_eq!(d.docker(&["run", "--rm", "saved", "cat", "/mark"]).ok(), "only-here\n");
    d.docker(&["rmi", "saved"]).ok();
    assert!(blob.exists(), "the container still needs it");
    d.docker(&["rm", "user"]).ok();
    assert!(wait_until(Duration::from_secs(10), || !blob.exists()), "the deleted image's own layer outlived its last container");
    assert!(d.docker(&["run", "--rm", "busybox", "true"]).success(), "the base image keeps its layers");
}

/// pause and unpause: the state dockerd shows, execs refused by the name the client
/// gave, a paused container stopped, the refusals of a second pause or an unpause of
/// one that is not paused.
#[test]
fn pause_and_unpause_as_dockerd_does() {
    let d = berth_e2e::Daemon::start();
    let id = d.berth(&["run", "-d", "--name", "pz", "busybox", "sleep", "600"]).ok().trim().to_owned();
    d.docker(&["pause", "pz"]).ok();
    let o = d.docker(&["pause", "pz"]);
    assert!(o.code != 0 && o.stderr.contains(&format!("Container {id} is already paused")), "{o}");
    assert_eq!(d.docker(&["inspect", "-f", "{{.State.Status}} {{.State.Paused}} {{.State.Running}}", "pz"]).ok(), "paused true true\n");
    assert!(d.docker(&["ps", "--format", "{{.Status}}"]).ok().trim_end().ends_with("(Paused)"));
    let o = d.docker(&["exec", "pz", "true"]);
    assert!(o.code != 0 && o.stderr.contains("Container pz is paused, unpause the container before exec"), "{o}");
    d.docker(&["unpause", "pz"]).ok();
    assert_eq!(d.docker(&["exec", "pz", "echo", "back"]).ok(), "back\n");
    d.docker(&["pause", "pz"]).ok();
    d.docker(&["stop", "-t", "1", "pz"]).ok();
    assert_eq!(d.docker(&["inspect", "-f", "{{.State.Status}}", "pz"]).ok(), "exited\n");
    let o = d.docker(&["unpause", "pz"]);
    assert!(o.code != 0 && o.stderr.contains(&format!("Container {id} is not paused")), "{o}");
    d.docker(&["rm", "pz"]).ok();
}

/// `--format` on `version`, `info`, `stats` and `history`: a template prints the same with both
/// CLIs (the docker CLI's field names, matched to the API's keys), with `range`,
/// `with`, `if`, pipes and `printf` in `inspect -f` too; so does `top`.
#[test]
fn version_info_and_stats_take_format_templates() {
    let d = Daemon::start();
    d.berth(&["run", "-d", "--name", "fmt", "busybox", "sleep", "60"]).ok();
    for args in [
        vec!["version", "--format", "{{.Server.APIVersion}} {{.Server.Os}} {{.Client.Os}}"],
        vec!["info", "--format", "{{.Containers}} {{.ContainersRunning}} {{.OSType}}"],
        vec!["system", "info", "--format", "{{json .Driver}}"],
        vec!["stats", "--no-stream", "--format", "{{.Name}} {{.Container}} {{.ID}} {{.PIDs}}", "fmt"],
        vec!["inspect", "-f", "{{range $i, $a := .Config.Cmd}}{{$i}}:{{$a}} {{end}}{{with .State}}{{.Status}}{{end}} {{.Name | upper}} {{printf \"%-6s|\" .Config.Image}} {{index .Config.Labels \"nosuch\"}}{{if .State.Paused}}paused{{else}}not paused{{end}}", "fmt"],
        vec!["inspect", "-f", "{{if eq .State.Status \"running\"}}up{{end}} {{truncate .Id 5}} {{pad .Config.Image 1 1}}| {{range split \"x:y\" \":\"}}{{.}};{{end}} {{and .State.Running .Config.Image}} {{or .Config.User \"root\"}} {{if lt (len .Name) 10}}short{{end}} {{not .State.Paused}}", "fmt"],
        vec!["history", "--format", "{{.ID}}|{{.CreatedBy}}|{{.Size}}|{{.Comment}}|{{.CreatedAt}}", "busybox"],
        // not templates: `top`'s table (columns of at least 20, as the docker CLI's)
        // and `history`'s with dates as RFC 3339
        vec!["top", "fmt", "-o", "pid,comm"],
        vec!["history", "--human=false", "busybox"],
    ] {
        let (b, k) = (d.berth(&args).ok().to_owned(), d.docker(&args).ok().to_owned());
        assert_eq!(b, k, "{args:?}");
        assert!(!b.trim().is_empty() && !b.contains("<no value>"), "{args:?}: {b}");
    }
    d.berth(&["rm", "-f", "fmt"]).ok();
}
