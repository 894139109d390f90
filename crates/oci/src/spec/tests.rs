use std::collections::HashMap;

use oci_spec::runtime::{Capability, LinuxNamespaceType, Mount, PosixRlimitType, Spec};

use super::*;
use crate::{EtcFiles, MountKind, MountSpec, NsMode, SpecOptions};

fn busybox_rootfs() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(d.path().join("etc")).unwrap();
    std::fs::write(
        d.path().join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n",
    )
    .unwrap();
    std::fs::write(
        d.path().join("etc/group"),
        "root:x:0:\nwheel:x:10:root\nnogroup:x:65534:\n",
    )
    .unwrap();
    d
}

fn opts(rootfs: &Path) -> SpecOptions {
    SpecOptions {
        rootfs: rootfs.to_path_buf(),
        args: vec!["sh".into(), "-c".into(), "true".into()],
        env: vec!["PATH=/usr/sbin:/usr/bin:/sbin:/bin".into()],
        hostname: "abcdef012345".into(),
        cgroups_path: "/berth/abcdef012345".into(),
        ..Default::default()
    }
}

fn dests(spec: &Spec) -> Vec<String> {
    spec.mounts()
        .as_ref()
        .unwrap()
        .iter()
        .map(|m| m.destination().display().to_string())
        .collect()
}

fn mount<'a>(spec: &'a Spec, dest: &str) -> &'a Mount {
    spec.mounts()
        .as_ref()
        .unwrap()
        .iter()
        .find(|m| m.destination() == Path::new(dest))
        .unwrap()
}

fn opts_of(m: &Mount) -> Vec<String> {
    m.options().clone().unwrap_or_default()
}

#[test]
fn plain_busybox_run() {
    let root = busybox_rootfs();
    let spec = build_spec(&opts(root.path())).unwrap();
    let linux = spec.linux().as_ref().unwrap();

    let ns: Vec<LinuxNamespaceType> = linux
        .namespaces()
        .as_ref()
        .unwrap()
        .iter()
        .map(|n| n.typ())
        .collect();
    for t in [
        LinuxNamespaceType::Mount,
        LinuxNamespaceType::Network,
        LinuxNamespaceType::Uts,
        LinuxNamespaceType::Pid,
        LinuxNamespaceType::Ipc,
    ] {
        assert!(ns.contains(&t), "{t:?}");
    }
    assert_eq!(
        ns.contains(&LinuxNamespaceType::Cgroup),
        cgroup_v2_unified()
    );
    assert!(!ns.contains(&LinuxNamespaceType::User));

    let process = spec.process().as_ref().unwrap();
    let caps = process.capabilities().as_ref().unwrap();
    let bounding = caps.bounding().as_ref().unwrap();
    assert_eq!(bounding.len(), 14);
    assert!(!bounding.contains(&Capability::SysAdmin));
    assert!(bounding.contains(&Capability::NetBindService));
    assert_eq!(caps.effective(), caps.bounding());
    assert_eq!(caps.permitted(), caps.bounding());
    assert!(caps.inheritable().is_none() && caps.ambient().is_none());

    assert_eq!(linux.masked_paths().as_ref().unwrap().len(), 11);
    assert!(linux
        .masked_paths()
        .as_ref()
        .unwrap()
        .contains(&"/proc/kcore".to_string()));
    assert!(linux
        .readonly_paths()
        .as_ref()
        .unwrap()
        .contains(&"/proc/sysrq-trigger".to_string()));
    assert!(linux.seccomp().is_some());
    assert_eq!(
        linux.cgroups_path().as_deref(),
        Some(Path::new("/berth/abcdef012345"))
    );
    assert!(linux.rootfs_propagation().is_none());

    assert_eq!(
        dests(&spec),
        [
            "/proc",
            "/dev",
            "/dev/pts",
            "/sys",
            "/sys/fs/cgroup",
            "/dev/mqueue",
            "/dev/shm"
        ]
    );
    assert_eq!(
        opts_of(mount(&spec, "/dev")),
        ["nosuid", "strictatime", "mode=755", "size=65536k"]
    );
    assert!(opts_of(mount(&spec, "/dev/pts")).contains(&"ptmxmode=0666".to_string()));
    assert!(opts_of(mount(&spec, "/sys")).contains(&"ro".to_string()));
    assert!(opts_of(mount(&spec, "/sys/fs/cgroup")).contains(&"ro".to_string()));
    assert!(opts_of(mount(&spec, "/dev/shm")).contains(&"size=67108864".to_string()));

    assert_eq!(
        process.env().as_ref().unwrap(),
        &[
            "PATH=/usr/sbin:/usr/bin:/sbin:/bin",
            "HOSTNAME=abcdef012345",
            "HOME=/root"
        ]
    );
    assert_eq!(process.cwd(), Path::new("/"));
    assert_eq!((process.user().uid(), process.user().gid()), (0, 0));
    assert_eq!(
        process.user().additional_gids().as_deref(),
        Some(&[0, 10][..])
    );
    assert_eq!(process.no_new_privileges(), None);
    let rl = &process.rlimits().as_ref().unwrap()[0];
    // 1048576, capped at the hard limit berth runs with.
    let (_, cur_hard) =
        nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE).unwrap();
    let want = cur_hard.min(1_048_576);
    assert_eq!(
        (rl.typ(), rl.soft(), rl.hard()),
        (PosixRlimitType::RlimitNofile, want, want)
    );

    assert_eq!(spec.hostname().as_deref(), Some("abcdef012345"));
    assert!(spec.domainname().is_none());
    assert_eq!(spec.root().as_ref().unwrap().path(), root.path());
    assert_eq!(spec.root().as_ref().unwrap().readonly(), Some(false));

    let devs = linux
        .resources()
        .as_ref()
        .unwrap()
        .devices()
        .as_ref()
        .unwrap();
    assert!(!devs[0].allow());
}

#[test]
fn env_defaults_and_overrides() {
    let root = tempfile::tempdir().unwrap(); // no /etc/passwd
    let mut o = opts(root.path());
    o.env = vec![
        "FOO=bar".into(),
        "HOSTNAME=custom".into(),
        "UNSET_ME".into(),
    ];
    o.terminal = true;
    let spec = build_spec(&o).unwrap();
    let env = spec.process().as_ref().unwrap().env().clone().unwrap();
    assert_eq!(
        env,
        [
            &format!("PATH={DEFAULT_PATH_ENV}"),
            "HOSTNAME=custom",
            "TERM=xterm",
            "FOO=bar",
            "HOME=/"
        ]
    );
    o.env = vec!["HOME=/data".into()];
    let env = build_spec(&o)
        .unwrap()
        .process()
        .as_ref()
        .unwrap()
        .env()
        .clone()
        .unwrap();
    assert!(env.contains(&"HOME=/data".to_string()) && !env.contains(&"HOME=/".to_string()));
}

#[test]
fn privileged_spec() {
    let root = busybox_rootfs();
    let mut o = opts(root.path());
    o.privileged = true;
    let spec = build_spec(&o).unwrap();
    let linux = spec.linux().as_ref().unwrap();
    let bounding = spec
        .process()
        .as_ref()
        .unwrap()
        .capabilities()
        .as_ref()
        .unwrap()
        .bounding()
        .clone()
        .unwrap();
    assert_eq!(bounding.len(), crate::all_capabilities().len());
    assert!(bounding.contains(&Capability::SysAdmin));
    assert!(linux.seccomp().is_none());
    assert!(linux.masked_paths().is_none());
    assert!(linux.readonly_paths().is_none());
    assert!(!opts_of(mount(&spec, "/sys")).contains(&"ro".to_string()));
    assert!(!opts_of(mount(&spec, "/sys/fs/cgroup")).contains(&"ro".to_string()));
    let rules = linux
        .resources()
        .as_ref()
        .unwrap()
        .devices()
        .clone()
        .unwrap();
    assert_eq!(rules.len(), 1);
    assert!(rules[0].allow());
    assert!(linux
        .devices()
        .as_ref()
        .unwrap()
        .iter()
        .any(|d| d.path() == Path::new("/dev/null")));
}

#[test]
fn cap_add_drop_and_seccomp_follow_caps() {
    let root = busybox_rootfs();
    let mut o = opts(root.path());
    o.cap_add = vec!["SYS_ADMIN".into()];
    o.cap_drop = vec!["CAP_NET_RAW".into()];
    let spec = build_spec(&o).unwrap();
    let linux = spec.linux().as_ref().unwrap();
    let eff = spec
        .process()
        .as_ref()
        .unwrap()
        .capabilities()
        .as_ref()
        .unwrap()
        .effective()
        .clone()
        .unwrap();
    assert!(eff.contains(&Capability::SysAdmin) && !eff.contains(&Capability::NetRaw));
    let sc = linux.seccomp().as_ref().unwrap();
    assert!(sc
        .syscalls()
        .as_ref()
        .unwrap()
        .iter()
        .any(|s| s.names().contains(&"mount".to_string())));

    o.cap_add = vec!["ALL".into()];
    o.cap_drop = vec![];
    let spec = build_spec(&o).unwrap();
    let eff = spec
        .process()
        .as_ref()
        .unwrap()
        .capabilities()
        .as_ref()
        .unwrap()
        .effective()
        .clone()
        .unwrap();
    assert_eq!(eff.len(), crate::all_capabilities().len());
    // cap-add ALL is not --privileged: paths stay masked.
    assert!(spec.linux().as_ref().unwrap().masked_paths().is_some());

    o.cap_add = vec!["chown".into()];
    o.cap_drop = vec!["all".into()];
    let spec = build_spec(&o).unwrap();
    let eff = spec
        .process()
        .as_ref()
        .unwrap()
        .capabilities()
        .as_ref()
        .unwrap()
        .effective()
        .clone()
        .unwrap();
    assert_eq!(eff.into_iter().collect::<Vec<_>>(), vec![Capability::Chown]);

    o.cap_add = vec!["BOGUS".into()];
    assert!(build_spec(&o).is_err());
}

#[test]
fn security_opts() {
    let root = busybox_rootfs();
    let mut o = opts(root.path());
    for (opt, nnp) in [
        ("no-new-privileges", true),
        ("no-new-privileges:true", true),
        ("no-new-privileges=false", false),
    ] {
        o.security_opt = vec![opt.into()];
        let spec = build_spec(&o).unwrap();
        assert_eq!(
            spec.process().as_ref().unwrap().no_new_privileges(),
            nnp.then_some(true),
            "{opt}"
        );
    }
    o.security_opt = vec!["seccomp=unconfined".into()];
    assert!(build_spec(&o)
        .unwrap()
        .linux()
        .as_ref()
        .unwrap()
        .seccomp()
        .is_none());

    let profile = r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_ERRNO"}]}"#;
    o.security_opt = vec![format!("seccomp={profile}")];
    let sc = build_spec(&o)
        .unwrap()
        .linux()
        .as_ref()
        .unwrap()
        .seccomp()
        .clone()
        .unwrap();
    assert_eq!(
        sc.default_action(),
        oci_spec::runtime::LinuxSeccompAction::ScmpActAllow
    );
    let path = root.path().join("profile.json");
    std::fs::write(&path, profile).unwrap();
    o.security_opt = vec![format!("seccomp={}", path.display())];
    let sc2 = build_spec(&o)
        .unwrap()
        .linux()
        .as_ref()
        .unwrap()
        .seccomp()
        .clone()
        .unwrap();
    assert_eq!(sc, sc2);

    o.security_opt = vec!["systempaths=unconfined".into()];
    assert!(build_spec(&o)
        .unwrap()
        .linux()
        .as_ref()
        .unwrap()
        .masked_paths()
        .is_none());

    o.security_opt = vec!["bogus=1".into()];
    assert_eq!(
        build_spec(&o).unwrap_err().message(),
        "invalid --security-opt 2: \"bogus=1\""
    );
    o.security_opt = vec!["bogus".into()];
    assert_eq!(
        build_spec(&o).unwrap_err().message(),
        "invalid --security-opt 1: \"bogus\""
    );
    o.security_opt = vec!["no-new-privileges=maybe".into()];
    assert!(build_spec(&o).is_err());
}

#[test]
fn user_and_cwd() {
    let root = busybox_rootfs();
    let mut o = opts(root.path());
    o.user = "nobody".into();
    o.group_add = vec!["wheel".into()];
    o.cwd = "/tmp".into();
    let spec = build_spec(&o).unwrap();
    let p = spec.process().as_ref().unwrap();
    assert_eq!((p.user().uid(), p.user().gid()), (65534, 65534));
    assert_eq!(
        p.user().additional_gids().as_deref(),
        Some(&[65534, 10][..])
    );
    assert!(p
        .env()
        .as_ref()
        .unwrap()
        .contains(&"HOME=/home".to_string()));
    assert_eq!(p.cwd(), Path::new("/tmp"));

    o.user = "ghost".into();
    let e = build_spec(&o).unwrap_err();
    assert_eq!(
        e.message(),
        "unable to find user ghost: no matching entries in passwd file"
    );
    o.user = String::new();
    o.cwd = "relative".into();
    assert!(build_spec(&o).is_err());
    o.cwd = String::new();
    o.args.clear();
    assert!(build_spec(&o).is_err());
}

#[test]
fn resources_mapping() {
    let root = busybox_rootfs();
    let mut o = opts(root.path());
    o.resources = Resources {
        memory: Some(64 << 20),
        memory_swap: Some(128 << 20),
        nano_cpus: Some(1_500_000_000),
        cpu_shares: Some(512),
        cpuset_cpus: Some("0-1".into()),
        pids_limit: Some(100),
        blkio_weight: Some(300),
        ..Default::default()
    };
    let spec = build_spec(&o).unwrap();
    let r = spec.linux().as_ref().unwrap().resources().clone().unwrap();
    let mem = r.memory().as_ref().unwrap();
    assert_eq!((mem.limit(), mem.swap()), (Some(64 << 20), Some(128 << 20)));
    let cpu = r.cpu().as_ref().unwrap();
    assert_eq!((cpu.period(), cpu.quota()), (Some(100_000), Some(150_000)));
    assert_eq!(cpu.shares(), Some(512));
    assert_eq!(cpu.cpus().as_deref(), Some("0-1"));
    assert_eq!(r.pids().as_ref().unwrap().limit(), 100);
    assert_eq!(r.block_io().as_ref().unwrap().weight(), Some(300));

    o.resources = Resources {
        nano_cpus: Some(500_000_000),
        ..Default::default()
    };
    let r = build_spec(&o)
        .unwrap()
        .linux()
        .as_ref()
        .unwrap()
        .resources()
        .clone()
        .unwrap();
    assert_eq!(r.cpu().as_ref().unwrap().quota(), Some(50_000));
    assert!(r.memory().is_none() && r.pids().is_none());

    o.resources = Resources {
        pids_limit: Some(0),
        cpu_quota: Some(20_000),
        cpu_period: Some(50_000),
        ..Default::default()
    };
    let r = build_spec(&o)
        .unwrap()
        .linux()
        .as_ref()
        .unwrap()
        .resources()
        .clone()
        .unwrap();
    assert_eq!(r.pids().as_ref().unwrap().limit(), -1);
    assert_eq!(
        (
            r.cpu().as_ref().unwrap().period(),
            r.cpu().as_ref().unwrap().quota()
        ),
        (Some(50_000), Some(20_000))
    );

    o.resources = Resources {
        nano_cpus: Some(1),
        cpu_quota: Some(1000),
        ..Default::default()
    };
    assert!(build_spec(&o).is_err());
}

#[test]
fn mounts_etc_files_and_user_mounts_in_order() {
    let root = busybox_rootfs();
    let mut o = opts(root.path());
    o.readonly_rootfs = true;
    o.shm_size = Some(1 << 20);
    o.etc_files = Some(EtcFiles {
        hosts: "/var/lib/berth/c/hosts".into(),
        hostname: "/var/lib/berth/c/hostname".into(),
        resolv_conf: "/var/lib/berth/c/resolv.conf".into(),
    });
    o.mounts = vec![
        MountSpec {
            kind: MountKind::Bind,
            source: "/srv/a".into(),
            destination: "/data/sub".into(),
            readonly: true,
            options: vec![],
        },
        MountSpec {
            kind: MountKind::Bind,
            source: "/srv/b".into(),
            destination: "/data".into(),
            readonly: false,
            options: vec!["rslave".into()],
        },
        MountSpec {
            kind: MountKind::Tmpfs,
            source: "".into(),
            destination: "/run".into(),
            readonly: false,
            options: vec!["size=65536k".into(), "exec".into()],
        },
    ];
    let spec = build_spec(&o).unwrap();
    assert_eq!(
        dests(&spec),
        [
            "/proc",
            "/dev",
            "/dev/pts",
            "/sys",
            "/sys/fs/cgroup",
            "/dev/mqueue",
            "/dev/shm",
            "/data",
            "/run",
            "/etc/resolv.conf",
            "/etc/hostname",
            "/etc/hosts",
            "/data/sub",
        ]
    );
    assert!(opts_of(mount(&spec, "/dev/shm")).contains(&"size=1048576".to_string()));
    assert_eq!(
        opts_of(mount(&spec, "/etc/hosts")),
        ["rbind", "ro", "rprivate"]
    );
    assert_eq!(
        mount(&spec, "/etc/hosts").source().as_deref(),
        Some(Path::new("/var/lib/berth/c/hosts"))
    );
    assert_eq!(
        opts_of(mount(&spec, "/data/sub")),
        ["rbind", "ro", "rprivate"]
    );
    assert_eq!(opts_of(mount(&spec, "/data")), ["rbind", "rslave"]);
    assert_eq!(mount(&spec, "/run").typ().as_deref(), Some("tmpfs"));
    assert_eq!(
        opts_of(mount(&spec, "/run")),
        ["nosuid", "nodev", "size=65536k", "exec"]
    );
    assert_eq!(
        spec.linux()
            .as_ref()
            .unwrap()
            .rootfs_propagation()
            .as_deref(),
        Some("slave")
    );
    assert_eq!(spec.root().as_ref().unwrap().readonly(), Some(true));

    // A user mount replaces the default at the same destination; /dev replaces /dev/*.
    o.mounts = vec![
        MountSpec {
            kind: MountKind::Bind,
            source: "/host/resolv".into(),
            destination: "/etc/resolv.conf".into(),
            readonly: false,
            options: vec![],
        },
        MountSpec {
            kind: MountKind::Bind,
            source: "/dev".into(),
            destination: "/dev".into(),
            readonly: false,
            options: vec![],
        },
    ];
    let spec = build_spec(&o).unwrap();
    let d = dests(&spec);
    assert_eq!(d.iter().filter(|x| *x == "/etc/resolv.conf").count(), 1);
    assert_eq!(
        mount(&spec, "/etc/resolv.conf").source().as_deref(),
        Some(Path::new("/host/resolv"))
    );
    assert!(!d.iter().any(|x| x.starts_with("/dev/")));

    o.mounts = vec![MountSpec {
        kind: MountKind::Bind,
        source: "rel".into(),
        destination: "/x".into(),
        readonly: false,
        options: vec![],
    }];
    assert!(build_spec(&o).is_err());
}

#[test]
fn namespace_modes_and_hostname() {
    let root = busybox_rootfs();
    let mut o = opts(root.path());
    o.network = NsMode::Host;
    o.pid = NsMode::Path("/proc/42/ns/pid".into());
    o.uts = NsMode::Host;
    o.ipc = NsMode::Host;
    o.domainname = "example.com".into();
    let spec = build_spec(&o).unwrap();
    let ns = spec.linux().as_ref().unwrap().namespaces().clone().unwrap();
    assert!(!ns.iter().any(|n| matches!(
        n.typ(),
        LinuxNamespaceType::Network | LinuxNamespaceType::Uts | LinuxNamespaceType::Ipc
    )));
    let pid = ns
        .iter()
        .find(|n| n.typ() == LinuxNamespaceType::Pid)
        .unwrap();
    assert_eq!(pid.path().as_deref(), Some(Path::new("/proc/42/ns/pid")));
    assert!(spec.hostname().is_none() && spec.domainname().is_none());
    assert_eq!(mount(&spec, "/dev/shm").typ().as_deref(), Some("bind"));
    // mqueue is mounted in the host's IPC namespace (moby keeps the default spec's
    // mqueue mount for --ipc host; the host may have no /dev/mqueue to bind).
    assert_eq!(mount(&spec, "/dev/mqueue").typ().as_deref(), Some("mqueue"));
    // HOSTNAME is still exported, like Docker.
    assert!(spec
        .process()
        .as_ref()
        .unwrap()
        .env()
        .as_ref()
        .unwrap()
        .contains(&"HOSTNAME=abcdef012345".to_string()));

    o.uts = NsMode::Private;
    let spec = build_spec(&o).unwrap();
    assert_eq!(spec.domainname().as_deref(), Some("example.com"));
}

#[test]
fn sysctls_ulimits_oom() {
    let root = busybox_rootfs();
    let mut o = opts(root.path());
    o.sysctls = HashMap::from([("net.ipv4.ip_forward".to_string(), "1".to_string())]);
    o.ulimits = vec![("nofile".into(), 1024, 2048), ("nproc".into(), 50, 100)];
    o.oom_score_adj = Some(500);
    let spec = build_spec(&o).unwrap();
    assert_eq!(
        spec.linux().as_ref().unwrap().sysctl().as_ref().unwrap()["net.ipv4.ip_forward"],
        "1"
    );
    let p = spec.process().as_ref().unwrap();
    let rl: Vec<(PosixRlimitType, u64, u64)> = p
        .rlimits()
        .as_ref()
        .unwrap()
        .iter()
        .map(|r| (r.typ(), r.soft(), r.hard()))
        .collect();
    assert_eq!(
        rl,
        [
            (PosixRlimitType::RlimitNofile, 1024, 2048),
            (PosixRlimitType::RlimitNproc, 50, 100)
        ]
    );
    assert_eq!(p.oom_score_adj(), Some(500));

    o.ulimits = vec![("bogus".into(), 1, 1)];
    assert_eq!(
        build_spec(&o).unwrap_err().message(),
        "invalid ulimit type: bogus"
    );
    o.ulimits = vec![("nofile".into(), 10, 1)];
    assert!(build_spec(&o).is_err());
}

#[test]
fn json_round_trip() {
    let root = busybox_rootfs();
    let mut o = opts(root.path());
    o.etc_files = Some(EtcFiles {
        hosts: "/h".into(),
        hostname: "/hn".into(),
        resolv_conf: "/r".into(),
    });
    o.resources.memory = Some(1 << 30);
    let spec = build_spec(&o).unwrap();
    let json = serde_json::to_string_pretty(&spec).unwrap();
    let back: Spec = serde_json::from_str(&json).unwrap();
    assert_eq!(back, spec);
    // Spot-check the wire form.
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["linux"]["seccomp"]["defaultAction"], "SCMP_ACT_ERRNO");
    assert_eq!(v["process"]["user"]["uid"], 0);
    assert!(v["linux"]["maskedPaths"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p == "/proc/keys"));
}

#[test]
fn spec_passes_libcontainer_validation() {
    let root = busybox_rootfs();
    let mut o = opts(root.path());
    o.network = NsMode::Private;
    o.sysctls = HashMap::from([("net.ipv4.ip_forward".to_string(), "1".to_string())]);
    let spec = build_spec(&o).unwrap();
    libcontainer::validator::Validator::validate_spec(&spec).unwrap();
    o.privileged = true;
    o.uts = NsMode::Host;
    libcontainer::validator::Validator::validate_spec(&build_spec(&o).unwrap()).unwrap();
}

#[test]
fn a_launch_gets_the_process_the_spec_would_have() {
    let root = busybox_rootfs();
    let mut cases = vec![opts(root.path())];
    let mut o = opts(root.path());
    o.init = Some(PathBuf::from("/usr/bin/docker-init"));
    o.terminal = true;
    o.env = vec!["HOME=/data".into(), "PATH".into(), "A=1".into()];
    cases.push(o);
    let mut o = opts(root.path());
    o.user = "nobody".into();
    o.env = vec!["HOSTNAME=mine".into()];
    cases.push(o);
    for o in &cases {
        let spec = build_spec(o).unwrap();
        let p = spec.process().as_ref().unwrap();
        let (args, env) = process_of(o).unwrap();
        assert_eq!(Some(&args), p.args().as_ref());
        assert_eq!(Some(&env), p.env().as_ref());
    }
    assert_eq!(cases[1].init.is_some(), process_of(&cases[1]).unwrap().0[0] == INIT_PATH);
    assert!(process_of(&cases[2]).unwrap().1.contains(&"HOME=/home".to_string()));
    let mut o = opts(root.path());
    o.args.clear();
    assert!(process_of(&o).is_err());
    o = opts(root.path());
    o.user = "nosuchuser".into();
    assert_eq!(process_of(&o).is_err(), build_spec(&o).is_err());
}
