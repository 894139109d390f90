//! `berth-shim zygote`: one process, started by berthd, that forks standby shims.
//!
//! A standby shim started with `exec` spent ~1.3 ms of CPU before it could wait for
//! its container (the kernel loading the program, the dynamic linker's relocations,
//! glibc's CPU feature probing — `cpuid` traps to the hypervisor on a VM, ~8 µs each —
//! and Rust's start-up); on two cores, with containers started back to back, that is
//! CPU the next container waits for. The zygote has done all of that once: each
//! standby is a `fork` of it, a copy of an initialised process.
//!
//! Protocol, on the zygote's stdin (a `SOCK_SEQPACKET` socket berthd holds the other
//! end of): berthd sends one byte with two descriptors (`SCM_RIGHTS`): the read end of
//! the standby's stdin and the write end of its stdout. The zygote forks; the child
//! takes them as its stdin and stdout (stderr stays the zygote's, `/dev/null`) and goes
//! on as `berth-shim standby`. The zygote answers with the child's pid (4 bytes,
//! native order), or 0 when the fork failed. End-of-file — berthd stopped or died —
//! ends it. It holds nothing of any container: its children are reaped by the kernel
//! (`SIGCHLD` ignored) and it closes its copies of the descriptors after each fork.

use std::io::IoSliceMut;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use nix::sys::socket::{recvmsg, send, ControlMessageOwned, MsgFlags};
use nix::unistd::{dup2, fork, ForkResult};

/// The zygote's stdin: berthd's socket.
const SOCKET: RawFd = 0;

/// Serve fork requests until berthd goes. Returns `Some(exit code)` in the zygote
/// when it ends, `None` in a forked child, which then goes on as a standby shim.
pub fn serve() -> Option<i32> {
    crate::set_name(c"berth-zygote");
    warm();
    // SAFETY: SIG_IGN for SIGCHLD: the kernel reaps the children (standby shims, then
    // the containers' shims); nothing here waits for them.
    unsafe {
        libc::signal(libc::SIGCHLD, libc::SIG_IGN);
    }
    loop {
        let fds = match receive() {
            Ok(Some(fds)) => fds,
            Ok(None) => return Some(0),
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => {
                eprintln!("berth-shim zygote: receive: {e}");
                return Some(1);
            }
        };
        if fds.len() != 2 {
            // A request without its two descriptors: answer "no child" and go on.
            let _ = send(SOCKET, &0u32.to_ne_bytes(), MsgFlags::empty());
            continue;
        }
        // SAFETY: this process has one thread (it never starts another), so the child
        // may go on running Rust code.
        match unsafe { fork() } {
            Ok(ForkResult::Child) => {
                become_standby(&fds);
                return None;
            }
            Ok(ForkResult::Parent { child }) => {
                drop(fds);
                if send(SOCKET, &(child.as_raw() as u32).to_ne_bytes(), MsgFlags::empty()).is_err() {
                    return Some(0);
                }
            }
            Err(e) => {
                eprintln!("berth-shim zygote: fork: {e}");
                drop(fds);
                if send(SOCKET, &0u32.to_ne_bytes(), MsgFlags::empty()).is_err() {
                    return Some(0);
                }
            }
        }
    }
}

/// Once here what every shim, and the container processes libcontainer clones from it,
/// would otherwise each do on first use: CPU feature detection (std's cache, sha2's),
/// a dozen `cpuid`s at ~8 µs each on a VM. The forks inherit the answers.
fn warm() {
    use sha2::Digest;
    #[cfg(target_arch = "x86_64")]
    let _ = std::arch::is_x86_feature_detected!("avx2");
    let _ = sha2::Sha256::digest(b"");
    let _ = sha2::Sha512::digest(b"");
}

/// One request: its descriptors, or None at end-of-file.
fn receive() -> nix::Result<Option<Vec<OwnedFd>>> {
    let mut byte = [0u8; 1];
    let mut iov = [IoSliceMut::new(&mut byte)];
    let mut space = nix::cmsg_space!([RawFd; 2]);
    let msg = recvmsg::<()>(SOCKET, &mut iov, Some(&mut space), MsgFlags::MSG_CMSG_CLOEXEC)?;
    let mut fds = Vec::new();
    for c in msg.cmsgs()? {
        if let ControlMessageOwned::ScmRights(raw) = c {
            // SAFETY: descriptors the kernel just installed in this process for us.
            fds.extend(raw.into_iter().map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }));
        }
    }
    if msg.bytes == 0 && fds.is_empty() {
        return Ok(None);
    }
    Ok(Some(fds))
}

/// In the child: the default `SIGCHLD` again (it waits for its container), the two
/// descriptors as stdin and stdout (which also closes the zygote's socket, fd 0).
fn become_standby(fds: &[OwnedFd]) {
    // SAFETY: restoring the default disposition.
    unsafe {
        libc::signal(libc::SIGCHLD, libc::SIG_DFL);
    }
    let _ = dup2(fds[0].as_raw_fd(), 0);
    let _ = dup2(fds[1].as_raw_fd(), 1);
}
