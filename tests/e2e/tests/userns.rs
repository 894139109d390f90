//! `berthd --userns-remap`: root in a container is an unprivileged user of the host.
//! Every test checks what the host sees (owners of files the container wrote), not
//! only what the container reports.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use berth_e2e::{Cli, Daemon};

/// The first host uid and gid of `dockremap`'s subordinate ranges.
fn remap_start() -> (u32, u32) {
    let first = |file: &str| -> u32 {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        text.lines()
            .filter_map(|l| l.strip_prefix("dockremap:"))
            .filter_map(|r| r.split(':').next()?.parse().ok())
            .min()
            .unwrap_or_else(|| panic!("no dockremap range in {file}:\n{text}"))
    };
    (first("/etc/subuid"), first("/etc/subgid"))
}

fn remapped() -> Daemon {
    let d = Daemon::start_with_args(&["--userns-remap", "default"]);
    d.import_busybox();
    d
}

fn owner(p: &Path) -> (u32, u32) {
    let m = std::fs::symlink_metadata(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    (m.uid(), m.gid())
}

/// A host directory any container user may write to.
fn shared_dir(d: &Daemon, name: &str) -> std::path::PathBuf {
    let dir = d.dir().join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    dir
}

#[test]
fn container_root_writes_as_the_remapped_host_user() {
    let d = remapped();
    let (uid, gid) = remap_start();
    let info = d.api("GET", "/v1.41/info").json();
    assert!(
        info["SecurityOptions"].as_array().unwrap().iter().any(|o| o == "name=userns"),
        "{}",
        info["SecurityOptions"]
    );
    let root_dir = info["DockerRootDir"].as_str().unwrap().to_owned();
    assert!(root_dir.ends_with(&format!("/{uid}.{gid}")), "{root_dir}");

    for cli in Cli::ALL {
        let host = shared_dir(&d, &format!("bind-{}", cli.name()));
        let bind = format!("{}:/data", host.display());
        let o = d.cli(
            cli,
            &["run", "--rm", "-v", &bind, "busybox", "sh", "-c", "id -u; cat /proc/self/uid_map; touch /data/root-file"],
        );
        let out = o.ok().to_owned();
        let mut lines = out.lines();
        assert_eq!(lines.next(), Some("0"), "{o}");
        let map: Vec<&str> = lines.next().unwrap_or_default().split_whitespace().collect();
        assert_eq!(map, ["0", &uid.to_string(), "65536"], "{o}");
        assert_eq!(owner(&host.join("root-file")), (uid, gid), "{}: root in the container is {uid} on the host", cli.name());

        d.cli(cli, &["run", "--rm", "-u", "1000:1000", "-v", &bind, "busybox", "touch", "/data/user-file"]).ok();
        assert_eq!(owner(&host.join("user-file")), (uid + 1000, gid + 1000), "{}", cli.name());

        // --userns host: this container is the host's root again
        let o = d.cli(cli, &["run", "--rm", "--userns", "host", "-v", &bind, "busybox", "sh", "-c", "cat /proc/self/uid_map; touch /data/host-file"]);
        assert_eq!(o.ok().split_whitespace().collect::<Vec<_>>(), ["0", "0", "4294967295"], "{o}");
        assert_eq!(owner(&host.join("host-file")), (0, 0), "{}", cli.name());
    }

    // what a user namespace cannot have, refused with dockerd's words
    for (args, words) in [
        (vec!["--privileged"], "privileged mode is incompatible with user namespaces"),
        (vec!["--network", "host"], "cannot share the host's network namespace when user namespaces are enabled"),
        (vec!["--pid", "host"], "cannot share the host PID namespace when user namespaces are enabled"),
    ] {
        let mut a = vec!["run", "--rm"];
        a.extend(&args);
        a.extend(["busybox", "true"]);
        let o = d.docker(&a);
        assert_eq!(o.code, 125, "{o}");
        assert!(o.stderr.contains(words), "{args:?}: {o}");
    }
    let o = d.docker(&["run", "--rm", "--privileged", "--userns", "host", "busybox", "id", "-u"]);
    assert_eq!(o.ok().trim(), "0");
}

#[test]
fn exec_volumes_and_networking_stay_inside_the_user_namespace() {
    let d = remapped();
    let (uid, gid) = remap_start();
    let host = shared_dir(&d, "bind");
    let bind = format!("{}:/data", host.display());
    d.berth(&["run", "-d", "--name", "ns-app", "-v", &bind, "-v", "ns-vol:/vol", "busybox", "sleep", "300"]).ok();

    // libcontainer's exec joins every namespace but the user one: berth's must too
    for cli in Cli::ALL {
        let o = d.cli(cli, &["exec", "ns-app", "sh", "-c", "cat /proc/self/uid_map; touch /data/exec-file /vol/exec-file"]);
        let map: Vec<&str> = o.ok().split_whitespace().collect();
        assert_eq!(map, ["0", &uid.to_string(), "65536"], "{}: {o}", cli.name());
        assert_eq!(owner(&host.join("exec-file")), (uid, gid), "{}", cli.name());
    }
    let vol = d.api("GET", "/v1.41/volumes/ns-vol").json();
    let data = Path::new(vol["Mountpoint"].as_str().unwrap());
    assert_eq!(owner(data), (uid, gid), "a new volume belongs to the container's root");
    assert_eq!(owner(&data.join("exec-file")), (uid, gid));

    // the container owns its network namespace: it may set its sysctls and mount sysfs
    let o = d.berth(&[
        "run", "--rm", "--sysctl", "net.ipv4.ip_forward=1", "busybox", "sh", "-c",
        "cat /proc/sys/net/ipv4/ip_forward /proc/sys/net/ipv4/ip_unprivileged_port_start; ls /sys/class/net; ip -4 -o addr show eth0",
    ]);
    let out = o.ok();
    assert!(out.starts_with("1\n0\n"), "{o}");
    assert!(out.contains("eth0") && out.contains("inet 1"), "{o}");

    // /etc files the daemon writes are the container root's
    let o = d.berth(&["exec", "ns-app", "sh", "-c", "echo '10.9.9.9 extra' >> /etc/hosts && stat -c %u /etc/hosts /etc/resolv.conf"]);
    assert_eq!(o.ok().split_whitespace().collect::<Vec<_>>(), ["0", "0"], "{o}");

    // a daemon crash: the running container keeps its namespace, exec still lands in it
    let mut d = d;
    d.restart();
    let o = d.berth(&["exec", "ns-app", "cat", "/proc/self/uid_map"]);
    assert_eq!(o.ok().split_whitespace().collect::<Vec<_>>(), ["0", &uid.to_string(), "65536"], "{o}");
    let o = d.berth(&["run", "--rm", "busybox", "id", "-u"]);
    assert_eq!(o.ok().trim(), "0", "{o}");
    // containers from before and after the restart share the user namespace, so a new
    // one may join the old one's network namespace
    let o = d.berth(&["run", "--rm", "--network", "container:ns-app", "busybox", "ip", "-4", "-o", "addr", "show", "eth0"]);
    assert!(o.ok().contains("inet "), "{o}");
}

/// The owners of every entry of a tar, by name.
fn tar_owners(bytes: &[u8]) -> Vec<(String, u64, u64)> {
    let mut a = tar::Archive::new(bytes);
    a.entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let h = e.header();
            (e.path().unwrap().display().to_string().trim_end_matches('/').to_owned(), h.uid().unwrap(), h.gid().unwrap())
        })
        .collect()
}

#[test]
fn files_leave_and_enter_with_container_ids() {
    let d = remapped();
    let (uid, gid) = remap_start();
    d.berth(&["run", "-d", "--name", "ns-cp", "busybox", "sh", "-c", "mkdir /box && touch /box/r && chown 1234:1234 /box && sleep 300"]).ok();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !d.berth(&["exec", "ns-cp", "test", "-e", "/box/r"]).success() {
        assert!(std::time::Instant::now() < deadline, "the container never made /box");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let id = d.inspect("ns-cp")["Id"].as_str().unwrap().to_owned();
    let upper = d.data_root().join(format!("{uid}.{gid}/snapshots/{id}/upper"));
    assert_eq!(owner(&upper.join("box")), (uid + 1234, gid + 1234), "on the host");

    // out: the archive has the container's ids
    let r = d.api("GET", "/v1.41/containers/ns-cp/archive?path=/box");
    assert_eq!(r.status, 200, "{}", r.text());
    let owners = tar_owners(&r.body);
    assert!(owners.contains(&("box".into(), 1234, 1234)), "{owners:?}");
    assert!(owners.contains(&("box/r".into(), 0, 0)), "{owners:?}");

    // in: the archive's ids are container ids, stored as the host ids they map to
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(2);
    h.set_mode(0o644);
    h.set_uid(42);
    h.set_gid(43);
    h.set_cksum();
    b.append_data(&mut h, "in.txt", &b"hi"[..]).unwrap();
    let tar = b.into_inner().unwrap();
    let r = d.api_body("PUT", "/v1.41/containers/ns-cp/archive?path=/box", berth_e2e::Body::Fixed("application/x-tar", &tar));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(owner(&upper.join("box/in.txt")), (uid + 42, gid + 43));
    let o = d.berth(&["exec", "ns-cp", "stat", "-c", "%u:%g", "/box/in.txt"]);
    assert_eq!(o.ok().trim(), "42:43");
    // ids the map does not reach are refused, not stored as something else
    let mut b = tar::Builder::new(Vec::new());
    h.set_uid(70000);
    h.set_cksum();
    b.append_data(&mut h, "far.txt", &b"hi"[..]).unwrap();
    let r = d.api_body("PUT", "/v1.41/containers/ns-cp/archive?path=/box", berth_e2e::Body::Fixed("application/x-tar", &b.into_inner().unwrap()));
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("Container ID 70000 cannot be mapped to a host ID"), "{}", r.text());

    // commit and export: layers hold container ids, never the host's
    d.berth(&["commit", "ns-cp", "ns-committed"]).ok();
    let saved = d.api("GET", "/v1.41/images/ns-committed/get").body;
    let mut layer_owners = Vec::new();
    let mut outer = tar::Archive::new(&saved[..]);
    for e in outer.entries().unwrap() {
        let mut e = e.unwrap();
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut e, &mut bytes).unwrap();
        if bytes.len() > 262 && &bytes[257..262] == b"ustar" {
            layer_owners.extend(tar_owners(&bytes));
        }
    }
    assert!(layer_owners.contains(&("box".into(), 1234, 1234)), "{layer_owners:?}");
    assert!(layer_owners.contains(&("box/in.txt".into(), 42, 43)), "{layer_owners:?}");
    assert!(layer_owners.iter().all(|(_, u, g)| *u < 65536 && *g < 65536), "{layer_owners:?}");
    let exported = d.api("GET", "/v1.41/containers/ns-cp/export").body;
    let owners = tar_owners(&exported);
    assert!(owners.contains(&("bin/sh".into(), 0, 0)), "image files are root's");
    assert!(owners.contains(&("box".into(), 1234, 1234)), "{owners:?}");

    // a build's RUN steps run remapped too, and its layers keep container ids
    let ctx = d.dir().join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM busybox\nRUN mkdir /made && chown 7:8 /made && cat /proc/self/uid_map > /made/map\n",
    )
    .unwrap();
    d.build_dir(Cli::Berth, &ctx, &["-t", "ns-built"]).ok();
    let o = d.berth(&["run", "--rm", "ns-built", "sh", "-c", "stat -c %u:%g /made; cat /made/map"]);
    let out = o.ok();
    assert!(out.starts_with("7:8\n"), "{o}");
    assert_eq!(out.lines().nth(1).unwrap().split_whitespace().collect::<Vec<_>>(), ["0", &uid.to_string(), "65536"]);
}
