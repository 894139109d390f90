//! Root-only end-to-end check: a spec from `build_spec` runs a busybox container under youki's
//! libcontainer (as berth-shim does) with Docker's identity, capabilities, seccomp, cgroup
//! limits and mounts. Skips itself, with a note, when not root or without /usr/bin/busybox.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use berth_oci::{build_spec, EtcFiles, MountKind, MountSpec, Resources, SpecOptions};
use libcontainer::container::builder::ContainerBuilder;
use libcontainer::syscall::syscall::SyscallType;

const SCRIPT: &str = "exec > /out/log 2>&1; id; grep CapBnd /proc/self/status; env; \
    unshare -u true; echo unshare=$?; mount -t tmpfs none /tmp; echo mount=$?; \
    echo pids=$(cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max); \
    cat /etc/hosts; touch /x; echo rootrw=$?";

fn run(tmp: &Path, readonly_rootfs: bool) -> String {
    let rootfs = tmp.join("rootfs");
    for d in ["bin", "etc", "tmp", "proc", "sys", "dev"] {
        std::fs::create_dir_all(rootfs.join(d)).unwrap();
    }
    std::fs::copy("/usr/bin/busybox", rootfs.join("bin/busybox")).unwrap();
    for a in [
        "sh", "id", "cat", "grep", "env", "unshare", "echo", "mount", "touch",
    ] {
        std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(a)).unwrap();
    }
    std::fs::write(rootfs.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
    std::fs::write(rootfs.join("etc/group"), "root:x:0:\nwheel:x:10:root\n").unwrap();
    let out = tmp.join("out");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o777)).unwrap();
    let etc = tmp.join("etcfiles");
    std::fs::create_dir_all(&etc).unwrap();
    std::fs::write(etc.join("hosts"), "127.0.0.1 berth-test-host\n").unwrap();
    std::fs::write(etc.join("hostname"), "abc123\n").unwrap();
    std::fs::write(etc.join("resolv.conf"), "nameserver 127.0.0.1\n").unwrap();

    let id = format!(
        "berth-oci-test-{}-{}",
        std::process::id(),
        readonly_rootfs as u8
    );
    let opts = SpecOptions {
        rootfs: rootfs.clone(),
        readonly_rootfs,
        args: vec!["/bin/sh".into(), "-c".into(), SCRIPT.into()],
        hostname: "abc123".into(),
        cgroups_path: format!("/berth-test/{id}"),
        etc_files: Some(EtcFiles {
            hosts: etc.join("hosts"),
            hostname: etc.join("hostname"),
            resolv_conf: etc.join("resolv.conf"),
        }),
        mounts: vec![MountSpec {
            kind: MountKind::Bind,
            source: out.clone(),
            destination: "/out".into(),
            readonly: false,
            options: vec![],
        }],
        resources: Resources {
            pids_limit: Some(50),
            memory: Some(64 << 20),
            ..Default::default()
        },
        ..Default::default()
    };
    let spec = build_spec(&opts).unwrap();
    let bundle = tmp.join("bundle");
    std::fs::create_dir_all(&bundle).unwrap();
    spec.save(bundle.join("config.json")).unwrap();
    let state = tmp.join("state");
    std::fs::create_dir_all(&state).unwrap();
    let mut c = ContainerBuilder::new(id, SyscallType::default())
        .with_root_path(&state)
        .unwrap()
        .as_init(&bundle)
        .with_systemd(false)
        .with_detach(true)
        .build()
        .unwrap();
    c.start().unwrap();
    let status = nix::sys::wait::waitpid(c.pid().unwrap(), None).unwrap();
    c.refresh_status().ok();
    c.delete(true).unwrap();
    assert_eq!(
        status,
        nix::sys::wait::WaitStatus::Exited(status.pid().unwrap(), 0)
    );
    std::fs::read_to_string(out.join("log")).unwrap()
}

#[test]
fn busybox_runs_like_docker() {
    if !nix::unistd::geteuid().is_root() || !Path::new("/usr/bin/busybox").exists() {
        eprintln!("note: needs root and /usr/bin/busybox, skipping libcontainer run test");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let log = run(tmp.path(), false);
    for want in [
        "uid=0(root) gid=0(root) groups=0(root),10(wheel)",
        "CapBnd:\t00000000a80425fb", // Docker's default capability set
        "HOSTNAME=abc123",
        "HOME=/root",
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "unshare=1", // seccomp + no CAP_SYS_ADMIN
        "mount=1",
        "pids=50",
        "127.0.0.1 berth-test-host",
        "rootrw=0",
    ] {
        assert!(log.contains(want), "missing {want:?} in:\n{log}");
    }
    let tmp = tempfile::tempdir().unwrap();
    let log = run(tmp.path(), true);
    assert!(
        log.contains("rootrw=1"),
        "read-only rootfs not enforced:\n{log}"
    );
    // Best effort: drop the now empty parent cgroup in every hierarchy.
    for h in std::fs::read_dir("/sys/fs/cgroup")
        .into_iter()
        .flatten()
        .flatten()
    {
        let _ = std::fs::remove_dir(h.path().join("berth-test"));
    }
}
