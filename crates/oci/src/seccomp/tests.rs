use super::*;

fn caps(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// All rules (with their args) that mention `name`.
fn rules_for<'a>(sc: &'a LinuxSeccomp, name: &str) -> Vec<&'a LinuxSyscall> {
    sc.syscalls()
        .as_ref()
        .unwrap()
        .iter()
        .filter(|s| s.names().iter().any(|n| n == name))
        .collect()
}

fn allowed_unconditionally(sc: &LinuxSeccomp, name: &str) -> bool {
    rules_for(sc, name).iter().any(|s| {
        s.action() == LinuxSeccompAction::ScmpActAllow
            && s.args().as_ref().is_none_or(|a| a.is_empty())
    })
}

#[test]
fn default_profile_shape() {
    let sc = default_seccomp();
    assert_eq!(sc.default_action(), LinuxSeccompAction::ScmpActErrno);
    assert_eq!(sc.default_errno_ret(), Some(libc::EPERM as u32));
    if cfg!(target_arch = "x86_64") {
        assert_eq!(
            sc.architectures().as_deref(),
            Some(&[Arch::ScmpArchX86_64, Arch::ScmpArchX86, Arch::ScmpArchX32][..])
        );
        assert!(allowed_unconditionally(&sc, "arch_prctl"));
        assert!(allowed_unconditionally(&sc, "modify_ldt"));
        assert!(rules_for(&sc, "s390_runtime_instr").is_empty());
    }
    for name in [
        "read",
        "write",
        "execve",
        "openat",
        "mmap",
        "futex",
        "exit_group",
        "wait4",
        "statx",
        "getrandom",
    ] {
        assert!(
            allowed_unconditionally(&sc, name),
            "{name} should be allowed"
        );
    }
    // Never allowed without the matching capabilities.
    for name in [
        "kexec_load",
        "mount",
        "umount2",
        "unshare",
        "setns",
        "reboot",
        "init_module",
        "bpf",
        "kcmp",
        "open_by_handle_at",
        "iopl",
        "clock_settime",
        "acct",
        "syslog",
        "perf_event_open",
        "vhangup",
        "mbind",
    ] {
        assert!(
            rules_for(&sc, name).is_empty(),
            "{name} must not be allowed"
        );
    }
    // chroot is allowed: CAP_SYS_CHROOT is a default capability.
    assert!(allowed_unconditionally(&sc, "chroot"));
}

#[test]
fn clone_is_filtered_without_sys_admin() {
    let sc = default_seccomp();
    let clone = rules_for(&sc, "clone");
    assert_eq!(clone.len(), 1);
    assert_eq!(clone[0].action(), LinuxSeccompAction::ScmpActAllow);
    let args = clone[0].args().as_ref().unwrap();
    assert_eq!(args.len(), 1);
    assert_eq!(args[0].op(), LinuxSeccompOperator::ScmpCmpMaskedEq);
    assert_eq!(
        args[0].index(),
        if native_go_arch() == "s390x" { 1 } else { 0 }
    );
    // libcontainer form: value = expected result, valueTwo = mask.
    assert_eq!(args[0].value(), 0);
    assert_eq!(args[0].value_two(), Some(0x7E02_0000));

    let clone3 = rules_for(&sc, "clone3");
    assert_eq!(clone3.len(), 1);
    assert_eq!(clone3[0].action(), LinuxSeccompAction::ScmpActErrno);
    assert_eq!(clone3[0].errno_ret(), Some(libc::ENOSYS as u32));
}

#[test]
fn sys_admin_unlocks_namespaces() {
    let mut c: Vec<String> = crate::caps::default_capabilities()
        .iter()
        .map(|s| s.to_string())
        .collect();
    c.push("CAP_SYS_ADMIN".into());
    let sc = default_seccomp_for_caps(&c);
    for name in [
        "mount",
        "umount2",
        "unshare",
        "setns",
        "clone",
        "clone3",
        "sethostname",
    ] {
        assert!(allowed_unconditionally(&sc, name), "{name}");
    }
    // No arg-filtered clone and no ENOSYS clone3 left.
    assert_eq!(rules_for(&sc, "clone").len(), 1);
    assert_eq!(rules_for(&sc, "clone3").len(), 1);
    assert!(rules_for(&sc, "kexec_load").is_empty());
}

#[test]
fn capability_gated_rules() {
    let sc = default_seccomp_for_caps(&caps(&["SYS_PTRACE", "CAP_SYS_TIME", "sys_module"]));
    assert!(allowed_unconditionally(&sc, "kcmp"));
    assert!(allowed_unconditionally(&sc, "clock_settime"));
    assert!(allowed_unconditionally(&sc, "finit_module"));
    assert!(!allowed_unconditionally(&sc, "chroot"));
    // ptrace is listed once even though two rules allow it.
    let ptrace: Vec<_> = rules_for(&sc, "ptrace");
    assert_eq!(ptrace.len(), 1);
}

#[test]
fn personality_and_socket_filters() {
    let sc = default_seccomp();
    let pers = rules_for(&sc, "personality");
    let values: Vec<u64> = pers
        .iter()
        .map(|r| r.args().as_ref().unwrap()[0].value())
        .collect();
    assert_eq!(values, vec![0x0, 0x8, 0x20000, 0x20008, 0xffff_ffff]);
    assert!(pers
        .iter()
        .all(|r| r.args().as_ref().unwrap()[0].op() == LinuxSeccompOperator::ScmpCmpEq));

    let sock = rules_for(&sc, "socket");
    assert_eq!(sock.len(), 1);
    let a = &sock[0].args().as_ref().unwrap()[0];
    assert_eq!(
        (a.index(), a.value(), a.op()),
        (0, libc::AF_VSOCK as u64, LinuxSeccompOperator::ScmpCmpNe)
    );
}

#[test]
fn no_duplicate_unconditional_names() {
    let sc = default_seccomp_for_caps(&crate::caps::all_capabilities());
    let mut seen = HashSet::new();
    for s in sc.syscalls().as_ref().unwrap() {
        if s.action() == LinuxSeccompAction::ScmpActAllow && s.args().is_none() {
            for n in s.names() {
                assert!(seen.insert(n.clone()), "{n} listed twice");
            }
        }
    }
}

#[test]
fn kernel_version_parsing() {
    assert_eq!(parse_kernel_version("6.1.0-18-amd64"), Some((6, 1)));
    assert_eq!(parse_kernel_version("4.8"), Some((4, 8)));
    assert_eq!(parse_kernel_version("5"), Some((5, 0)));
    assert_eq!(parse_kernel_version("x"), None);
}

const SMALL_PROFILE: &str = r#"{
    "defaultAction": "SCMP_ACT_ERRNO",
    "defaultErrnoRet": 1,
    "archMap": [
        {"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]},
        {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]}
    ],
    "syscalls": [
        {"names": ["read", "write", "exit_group"], "action": "SCMP_ACT_ALLOW", "args": []},
        {"name": "getpid", "action": "SCMP_ACT_ALLOW"},
        {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
         "args": [{"index": 0, "value": 2114060288, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}],
         "excludes": {"caps": ["CAP_SYS_ADMIN"]}},
        {"names": ["mount"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
        {"names": ["uname"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38, "includes": {"minKernel": "3.0"}},
        {"names": ["future"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "999.0"}},
        {"names": ["nomips"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["mips64"]}}
    ]
}"#;

#[test]
fn loads_docker_format_profile() {
    let sc = load_seccomp_profile(SMALL_PROFILE).unwrap();
    assert_eq!(sc.default_action(), LinuxSeccompAction::ScmpActErrno);
    assert_eq!(sc.default_errno_ret(), Some(1));
    if cfg!(target_arch = "x86_64") {
        assert_eq!(
            sc.architectures().as_deref(),
            Some(&[Arch::ScmpArchX86_64, Arch::ScmpArchX86, Arch::ScmpArchX32][..])
        );
    }
    assert!(allowed_unconditionally(&sc, "read"));
    assert!(allowed_unconditionally(&sc, "getpid"));
    assert!(rules_for(&sc, "mount").is_empty());
    assert!(rules_for(&sc, "future").is_empty());
    assert!(rules_for(&sc, "nomips").is_empty());
    let uname = rules_for(&sc, "uname");
    assert_eq!(
        (uname[0].action(), uname[0].errno_ret()),
        (LinuxSeccompAction::ScmpActErrno, Some(38))
    );
    // Docker's masked compare (mask in value) is converted for libcontainer.
    let clone = rules_for(&sc, "clone");
    let a = &clone[0].args().as_ref().unwrap()[0];
    assert_eq!((a.value(), a.value_two()), (0, Some(2114060288)));

    let with_admin =
        load_seccomp_profile_for_caps(SMALL_PROFILE, &caps(&["CAP_SYS_ADMIN"])).unwrap();
    assert!(allowed_unconditionally(&with_admin, "mount"));
    assert!(rules_for(&with_admin, "clone").is_empty());
}

#[test]
fn rejects_bad_profiles() {
    let e = load_seccomp_profile("not json").unwrap_err();
    assert_eq!(e.kind(), berth_errdefs::Kind::InvalidArgument);
    assert!(load_seccomp_profile(r#"{"defaultAction":"SCMP_ACT_NOPE"}"#).is_err());
    assert!(load_seccomp_profile(r#"{"syscalls":[]}"#).is_err());
    assert!(load_seccomp_profile(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"name":"a","names":["b"],"action":"SCMP_ACT_ERRNO"}]}"#
    )
    .is_err());
    assert!(load_seccomp_profile(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86"],"archMap":[{"architecture":"SCMP_ARCH_X86_64"}]}"#
    )
    .is_err());
    // Old-style architectures list and a plain deny list work.
    let sc = load_seccomp_profile(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86_64"],"syscalls":[{"names":["chmod"],"action":"SCMP_ACT_ERRNO"}]}"#,
    )
    .unwrap();
    assert_eq!(
        sc.architectures().as_deref(),
        Some(&[Arch::ScmpArchX86_64][..])
    );
    assert_eq!(
        rules_for(&sc, "chmod")[0].action(),
        LinuxSeccompAction::ScmpActErrno
    );
}

#[test]
fn profiles_are_reused_by_capability_set_whatever_the_spelling_or_order() {
    let a = default_seccomp_for_caps(&caps(&["CAP_CHOWN", "CAP_SYS_ADMIN"]));
    let b = default_seccomp_for_caps(&caps(&["sys_admin", "chown", "CAP_CHOWN"]));
    assert_eq!(a, b);
    assert_eq!(a, build_default_seccomp(&caps(&["CAP_CHOWN", "CAP_SYS_ADMIN"])));
    // Another set is another profile, not the one built before.
    let c = default_seccomp_for_caps(&caps(&["CAP_CHOWN"]));
    assert_ne!(a, c);
    assert!(allowed_unconditionally(&a, "mount") && !allowed_unconditionally(&c, "mount"));
}
