//! Named and anonymous volumes: data that outlives containers and the daemon, copy-up
//! from the image, volumes in use, the `/volumes` API through both CLIs.

use berth_e2e::{Cli, Daemon};

#[test]
fn named_volumes_keep_data_across_containers_and_a_daemon_crash() {
    let mut d = Daemon::start();
    for cli in Cli::ALL {
        let v = format!("data-{}", cli.name());
        d.cli(cli, &["volume", "create", "--label", "team=a", &v]).ok();
        d.cli(cli, &["run", "--rm", "-v", &format!("{v}:/data"), "busybox", "sh", "-c", "echo kept > /data/f"]).ok();
        let o = d.cli(cli, &["run", "--rm", "-v", &format!("{v}:/data:ro"), "busybox", "sh", "-c", "cat /data/f; touch /data/g 2>&1 | grep -c Read-only"]);
        assert_eq!(o.ok(), "kept\n1\n", "{}: {o}", cli.name());
        let insp: serde_json::Value = serde_json::from_str(d.cli(cli, &["volume", "inspect", &v]).ok()).unwrap();
        assert_eq!(insp[0]["Labels"]["team"], "a");
        assert_eq!(insp[0]["Driver"], "local");
        assert_eq!(insp[0]["Scope"], "local");
        assert!(insp[0]["Mountpoint"].as_str().unwrap().ends_with(&format!("/volumes/{v}/_data")));
    }
    d.restart();
    let o = d.berth(&["run", "--rm", "-v", "data-berth:/data", "busybox", "cat", "/data/f"]);
    assert_eq!(o.ok(), "kept\n");
    let ls = d.docker(&["volume", "ls", "--filter", "label=team=a", "--format", "{{.Name}}"]);
    let mut names: Vec<&str> = ls.ok().lines().collect();
    names.sort();
    assert_eq!(names, ["data-berth", "data-docker"]);
    // A volume in use cannot be removed (409 naming the container).
    d.berth(&["run", "-d", "--name", "user", "-v", "data-berth:/data", "busybox", "sleep", "60"]).ok();
    let o = d.docker(&["volume", "rm", "data-berth"]);
    assert!(o.code != 0 && o.stderr.contains("volume is in use"), "{o}");
    let o = d.docker(&["ps", "--filter", "volume=data-berth", "--format", "{{.Names}}"]);
    assert_eq!(o.ok(), "user\n");
    let mounts = d.inspect("user")["Mounts"].clone();
    assert_eq!(mounts[0]["Type"], "volume");
    assert_eq!(mounts[0]["Name"], "data-berth");
    assert_eq!(mounts[0]["Destination"], "/data");
    assert_eq!(mounts[0]["RW"], true);
    d.berth(&["rm", "-f", "user"]).ok();
    d.docker(&["volume", "rm", "data-berth", "data-docker"]).ok();
    assert!(d.docker(&["volume", "ls", "-q"]).ok().trim().is_empty());
}

#[test]
fn image_content_is_copied_into_a_new_volume_and_anonymous_volumes_go_with_rm_v() {
    let d = Daemon::start();
    // Copy-up keeps owner and mode: /home/app belongs to app (1000) in the test image.
    let o = d.berth(&["run", "--rm", "-v", "homes:/home", "busybox", "sh", "-c", "stat -c '%u %a %n' /home/app"]);
    assert_eq!(o.ok(), "1000 755 /home/app\n", "{o}");
    // nocopy leaves it empty.
    let o = d.berth(&["run", "--rm", "--mount", "type=volume,src=empty,dst=/etc,volume-nocopy", "busybox", "ls", "/etc"]);
    assert!(!o.ok().contains("passwd"), "{o}");
    // An anonymous volume: made for the container, removed by rm -v (and by --rm).
    d.berth(&["create", "--name", "anon", "-v", "/scratch", "busybox", "true"]).ok();
    let name = d.inspect("anon")["Mounts"][0]["Name"].as_str().unwrap().to_owned();
    assert_eq!(name.len(), 64);
    assert!(d.berth(&["volume", "ls", "-q"]).ok().contains(&name));
    d.berth(&["rm", "-v", "anon"]).ok();
    assert!(!d.berth(&["volume", "ls", "-q"]).ok().contains(&name));
    d.berth(&["run", "--rm", "-v", "/scratch", "busybox", "true"]).ok();
    let left: Vec<String> = d.berth(&["volume", "ls", "-q"]).ok().lines().map(str::to_owned).collect();
    assert!(left.iter().all(|v| v.len() != 64), "{left:?}");
    // --volumes-from shares them, read-only when asked.
    d.berth(&["run", "-d", "--name", "owner", "-v", "shared:/shared", "busybox", "sh", "-c", "echo s > /shared/x; sleep 60"]).ok();
    assert!(berth_e2e::wait_until(std::time::Duration::from_secs(5), || d.berth(&["exec", "owner", "test", "-f", "/shared/x"]).code == 0));
    let o = d.berth(&["run", "--rm", "--volumes-from", "owner:ro", "busybox", "sh", "-c", "cat /shared/x; touch /shared/y 2>&1 | grep -c Read-only"]);
    assert_eq!(o.ok(), "s\n1\n", "{o}");
    d.berth(&["rm", "-f", "owner"]).ok();
    // prune (API 1.41): every unused volume goes.
    let o = d.docker(&["volume", "prune", "-f"]);
    assert!(o.ok().contains("homes") && o.ok().contains("shared"), "{o}");
}

#[test]
fn local_driver_options_mount_tmpfs_and_binds() {
    let d = Daemon::start();
    d.docker(&["volume", "create", "--opt", "type=tmpfs", "--opt", "device=tmpfs", "--opt", "o=size=2m,uid=1000", "tv"]).ok();
    let o = d.berth(&["run", "--rm", "-v", "tv:/t", "busybox", "sh", "-c", "grep ' /t ' /proc/mounts"]);
    assert!(o.ok().contains("tmpfs") && o.ok().contains("size=2048k") && o.ok().contains("uid=1000"), "{o}");
    let dir = berth_e2e::dir_with("berth-volbind", &[("marker", "host\n")]);
    d.docker(&["volume", "create", "--opt", "type=none", "--opt", "o=bind", "--opt", &format!("device={}", dir.display()), "bv"]).ok();
    let o = d.berth(&["run", "--rm", "-v", "bv:/b", "busybox", "cat", "/b/marker"]);
    assert_eq!(o.ok(), "host\n");
    // Bad options are refused with the local driver's words, named as dockerd's
    // volume service names them.
    let o = d.docker(&["volume", "create", "--opt", "bogus=1", "bad"]);
    assert!(o.code != 0 && o.stderr.contains("create bad: invalid option: \"bogus\""), "{o}");
    let o = d.docker(&["volume", "create", "--opt", "type=tmpfs", "bad"]);
    assert!(o.code != 0 && o.stderr.contains("create bad: missing required option: \"device\""), "{o}");
    let o = d.docker(&["volume", "create", "-d", "nfsplugin", "bad"]);
    assert!(o.code != 0 && o.stderr.contains("plugin \"nfsplugin\" not found"), "{o}");
    d.docker(&["volume", "rm", "tv", "bv"]).ok();
    assert!(std::path::Path::new(&dir).join("marker").exists(), "removing a bind volume leaves the host directory alone");
}

/// A hostile image whose volume path is a symlink to a host directory: copy-up
/// resolves it inside the rootfs, so nothing of the host lands in the volume.
#[test]
fn copy_up_through_an_image_symlink_stays_in_the_rootfs() {
    let d = Daemon::start();
    let host = berth_e2e::dir_with("berth-hostile-copyup", &[("host-secret", "HOST\n")]);
    let df = format!("FROM busybox\nRUN ln -s {} /vol && mkdir -p /real && echo img > /real/f && ln -s /real /vol2\n", host.display());
    let ctx = berth_e2e::dir_with("berth-hostile-ctx", &[("Dockerfile", &df)]);
    d.berth(&["build", "-q", "-t", "hostile", &ctx.to_string_lossy()]).ok();
    let o = d.berth(&["run", "--rm", "-v", "hv:/vol", "-v", "hv2:/vol2", "hostile", "sh", "-c", "ls -A /vol; cat /vol2/f"]);
    assert_eq!(o.ok(), "img\n", "{o}");
    let mp = d.docker(&["volume", "inspect", "-f", "{{.Mountpoint}}", "hv"]).ok().trim().to_owned();
    assert_eq!(std::fs::read_dir(&mp).unwrap().count(), 0, "host files were copied into the volume");
    assert!(host.join("host-secret").exists());
    let _ = std::fs::remove_dir_all(&host);
    let _ = std::fs::remove_dir_all(&ctx);
}

/// `--volume-driver` is the driver of the volumes a container makes: with none to
/// make it is kept (as dockerd keeps it; docker-py's tests create so), and a driver
/// berthd lacks is refused, with dockerd's words and status (404, which the docker
/// CLI takes for a missing image: the refusals are checked through the API), when
/// `-v` or the image's `VOLUME` would make one, leaving no volume behind.
#[test]
fn a_volume_driver_is_refused_only_when_a_volume_needs_it() {
    let d = Daemon::start();
    d.import_busybox();
    let id = d.docker(&["create", "--volume-driver", "foo", "busybox", "true"]).ok().trim().to_owned();
    assert_eq!(d.inspect(&id)["HostConfig"]["VolumeDriver"], "foo");
    d.docker(&["commit", "--change", "VOLUME /v", &id, "withvol"]).ok();
    let create = |image: &str, hc: serde_json::Value| {
        let r = d.api_json("POST", "/v1.41/containers/create", &serde_json::json!({"Image": image, "Cmd": ["true"], "HostConfig": hc}));
        (r.status, r.message())
    };
    let plugin = "error looking up volume plugin foo: plugin \"foo\" not found";
    for (image, hc, volume) in [
        ("busybox", serde_json::json!({"VolumeDriver": "foo", "Binds": ["/data"]}), None),
        ("withvol", serde_json::json!({"VolumeDriver": "foo", "Binds": ["named:/n"]}), Some("named")),
        ("withvol", serde_json::json!({"VolumeDriver": "foo"}), None),
    ] {
        let (status, msg) = create(image, hc);
        assert!(status == 404 && msg.contains(plugin), "{status} {msg}");
        // As dockerd words it: "create <volume>: error looking up …".
        if let Some(v) = volume {
            assert!(msg.starts_with(&format!("create {v}: ")), "{msg}");
        }
    }
    assert_eq!(d.docker(&["volume", "ls", "-q"]).ok(), "", "a refused create leaves no volume");
    let (status, msg) = create("withvol", serde_json::json!({"VolumeDriver": "local", "Binds": ["named:/n"]}));
    assert_eq!(status, 201, "{msg}");
    assert_eq!(d.docker(&["volume", "ls", "-q"]).ok().lines().count(), 2, "the named volume and the image's anonymous one");
}
