//! Root-only: load the generated seccomp filters with youki's libcontainer (the code path the
//! shim uses) in forked children and check that they allow and deny what Docker's do.
//! Skips itself, with a note, when not run as root.

use berth_oci::{
    default_capabilities, default_seccomp, default_seccomp_for_caps, load_seccomp_profile,
};
use oci_spec::runtime::LinuxSeccomp;

fn is_root() -> bool {
    if nix::unistd::geteuid().is_root() {
        true
    } else {
        eprintln!("note: not root, skipping seccomp enforcement test");
        false
    }
}

fn errno_of(ret: libc::c_long) -> i32 {
    if ret < 0 {
        std::io::Error::last_os_error().raw_os_error().unwrap_or(-1)
    } else {
        0
    }
}

/// Run `probe` in a forked child after loading `filter`; returns the errno of each probe
/// (0 = success), or Err if the filter failed to load.
fn in_child(filter: &LinuxSeccomp, probe: fn() -> Vec<i32>) -> Result<Vec<i32>, String> {
    let mut fds = [0i32; 2];
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        unsafe { libc::close(fds[0]) };
        let out: Vec<i32> = match libcontainer::seccomp::initialize_seccomp(filter) {
            Ok(_) => probe(),
            Err(_) => vec![-1000],
        };
        let bytes: Vec<u8> = out.iter().flat_map(|v| v.to_le_bytes()).collect();
        unsafe {
            libc::write(fds[1], bytes.as_ptr().cast(), bytes.len());
            libc::_exit(0);
        }
    }
    unsafe { libc::close(fds[1]) };
    let mut buf = Vec::new();
    let mut chunk = [0u8; 256];
    loop {
        let n = unsafe { libc::read(fds[0], chunk.as_mut_ptr().cast(), chunk.len()) };
        if n <= 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n as usize]);
    }
    unsafe {
        libc::close(fds[0]);
        libc::waitpid(pid, std::ptr::null_mut(), 0);
    }
    let vals: Vec<i32> = buf
        .chunks_exact(4)
        .map(|c| i32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    if vals == [-1000] {
        return Err("libcontainer failed to load the filter".into());
    }
    Ok(vals)
}

/// Raw clone(2) with `flags`; a created child exits at once.
fn raw_clone(flags: libc::c_long) -> i32 {
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone,
            flags | libc::SIGCHLD as libc::c_long,
            0,
            0,
            0,
            0,
        )
    };
    if ret == 0 {
        unsafe { libc::_exit(0) };
    }
    if ret > 0 {
        unsafe { libc::waitpid(ret as i32, std::ptr::null_mut(), 0) };
    }
    errno_of(ret)
}

fn default_probe() -> Vec<i32> {
    unsafe {
        vec![
            errno_of(libc::getpid() as libc::c_long),
            raw_clone(0),
            raw_clone(libc::CLONE_NEWUTS as libc::c_long),
            errno_of(libc::syscall(libc::SYS_clone3, std::ptr::null::<u8>(), 0)),
            errno_of(libc::unshare(libc::CLONE_NEWUTS) as libc::c_long),
            errno_of(libc::socket(libc::AF_UNIX, libc::SOCK_STREAM, 0) as libc::c_long),
            errno_of(libc::socket(libc::AF_VSOCK, libc::SOCK_STREAM, 0) as libc::c_long),
            errno_of(libc::personality(0xffff_ffff) as libc::c_long),
            errno_of(libc::personality(libc::ADDR_NO_RANDOMIZE as libc::c_ulong) as libc::c_long),
            errno_of(libc::syscall(libc::SYS_reboot, 0, 0, 0, 0)),
            errno_of(libc::syscall(libc::SYS_kexec_load, 0, 0, 0, 0x100)),
            errno_of(libc::syscall(
                libc::SYS_mount,
                c"none".as_ptr(),
                c"/nonexistent-berth".as_ptr(),
                c"tmpfs".as_ptr(),
                0,
                0,
            )),
        ]
    }
}

#[test]
fn default_profile_is_enforced_like_docker() {
    if !is_root() {
        return;
    }
    let got = in_child(&default_seccomp(), default_probe).unwrap();
    let (ok, eperm, enosys) = (0, libc::EPERM, libc::ENOSYS);
    let want = vec![
        ok,     // getpid
        ok,     // plain fork-style clone
        eperm,  // clone(CLONE_NEWUTS) without CAP_SYS_ADMIN
        enosys, // clone3 -> ENOSYS so libc falls back to clone
        eperm,  // unshare
        ok,     // socket(AF_UNIX)
        eperm,  // socket(AF_VSOCK)
        ok,     // personality query
        eperm,  // personality(ADDR_NO_RANDOMIZE)
        eperm,  // reboot (would be EINVAL unfiltered)
        eperm,  // kexec_load (would be EINVAL unfiltered)
        eperm,  // mount (would be ENOENT unfiltered)
    ];
    assert_eq!(got, want);
}

#[test]
fn sys_admin_profile_allows_namespaces() {
    if !is_root() {
        return;
    }
    let mut caps: Vec<String> = default_capabilities()
        .iter()
        .map(|c| c.to_string())
        .collect();
    caps.push("CAP_SYS_ADMIN".into());
    let got = in_child(&default_seccomp_for_caps(&caps), || {
        vec![
            raw_clone(libc::CLONE_NEWUTS as libc::c_long),
            errno_of(unsafe { libc::unshare(libc::CLONE_NEWUTS) } as libc::c_long),
        ]
    })
    .unwrap();
    assert_eq!(got, vec![0, 0]);
}

#[test]
fn docker_format_masked_compare_is_enforced() {
    if !is_root() {
        return;
    }
    // Deny unshare when (flags & (NEWUTS|NEWNET)) == NEWUTS, in Docker's encoding.
    let mask = (libc::CLONE_NEWUTS | libc::CLONE_NEWNET) as u64;
    let json = format!(
        r#"{{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{{"names":["unshare"],"action":"SCMP_ACT_ERRNO",
            "args":[{{"index":0,"value":{mask},"valueTwo":{},"op":"SCMP_CMP_MASKED_EQ"}}]}}]}}"#,
        libc::CLONE_NEWUTS
    );
    let filter = load_seccomp_profile(&json).unwrap();
    let got = in_child(&filter, || unsafe {
        vec![
            errno_of(libc::unshare(libc::CLONE_NEWUTS) as libc::c_long),
            errno_of(libc::unshare(libc::CLONE_NEWUTS | libc::CLONE_NEWNET) as libc::c_long),
            errno_of(libc::unshare(0) as libc::c_long),
        ]
    })
    .unwrap();
    assert_eq!(got, vec![libc::EPERM, 0, 0]);
}

#[test]
fn every_syscall_name_resolves_or_is_skipped_safely() {
    // Name resolution needs no privileges; make sure it does reject unknown names.
    assert!(libseccomp::ScmpSyscall::from_name("berth_no_such_syscall").is_err());
    let all = default_seccomp_for_caps(&berth_oci::all_capabilities());
    let mut unresolved = Vec::new();
    for s in all.syscalls().as_ref().unwrap() {
        for n in s.names() {
            if libseccomp::ScmpSyscall::from_name(n).is_err() {
                unresolved.push(n.clone());
            }
        }
    }
    eprintln!("checked names; unresolved: {}", unresolved.len());
    if !unresolved.is_empty() {
        eprintln!(
            "note: syscalls unknown to this libseccomp (libcontainer skips them): {unresolved:?}"
        );
    }
    for core in [
        "read",
        "write",
        "execve",
        "clone",
        "clone3",
        "mount",
        "socket",
        "personality",
        "openat",
        "statx",
    ] {
        assert!(!unresolved.iter().any(|u| u == core), "{core} must resolve");
    }
    // libcontainer skips unknown names instead of failing: loading the largest profile works.
    if is_root() {
        in_child(&all, || {
            vec![errno_of(unsafe { libc::getpid() } as libc::c_long)]
        })
        .unwrap();
    }
}
