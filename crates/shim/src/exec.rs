//! Execs: the shim side (spawn a helper, stream its stdio) and the helper itself.

use std::fs::{self, File};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use berth_shim_proto::{self as proto, ExitStatus, FrameKind, Response};
use libcontainer::container::builder::ContainerBuilder;
use libcontainer::syscall::syscall::SyscallType;
use nix::sys::wait::waitpid;

use crate::io::{Hub, StdinSink};
use crate::run::{exit_code, now, resize, Shim};


/// An exec that cannot start says why on its stdout, ending the line as dockerd ends
/// the error it writes to the exec's stream (`\r\n`).
macro_rules! failed {
    ($($arg:tt)*) => {{
        print!("{}\r\n", format_args!($($arg)*));
    }};
}

/// What the shim keeps of a running exec.
pub struct ExecHandle {
    pty: Option<File>,
}

fn pipe() -> Result<(File, File)> {
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    Ok((File::from(r), File::from(w)))
}

pub fn run_exec(
    shim: &Arc<Shim>,
    conn: UnixStream,
    id: String,
    mut process: serde_json::Value,
    tty: bool,
    stdin: bool,
) -> Result<()> {
    let dir = &shim.args.state_dir;
    let short: String = id.chars().take(12).collect();
    let proc_path = dir.join(format!("exec-{short}.json"));
    // The container's spec went to libcontainer without its seccomp profile: the exec'd
    // process loads the compiled filter itself, like the container's init did.
    let loader_caps = shim.filter.as_ref().map(|_| crate::seccomp::add_loader_caps(&mut process));
    fs::write(&proc_path, serde_json::to_vec(&process)?)?;
    // This very binary, by the kernel's link: the file it was started from may have
    // been replaced since (an upgrade while the container ran), and its path then names
    // another program, or none (`current_exe` gives "… (deleted)").
    let mut cmd = Command::new("/proc/self/exe");
    cmd.arg("exec-helper")
        .arg("--id")
        .arg(&shim.args.id)
        .arg("--runtime-root")
        .arg(&shim.args.runtime_root)
        .arg("--process")
        .arg(&proc_path);
    // libcontainer's tenant joins every namespace of the container but its user
    // namespace: a remapped container's exec would run as the host's root. The helper
    // joins it first (it is still single-threaded then).
    let own_userns = |pid: &str| fs::metadata(format!("/proc/{pid}/ns/user")).map(|m| std::os::unix::fs::MetadataExt::ino(&m)).ok();
    let init = shim.init_pid.as_raw().to_string();
    if own_userns(&init).is_some_and(|ino| Some(ino) != own_userns("self")) {
        cmd.arg("--userns").arg(format!("/proc/{init}/ns/user"));
    }
    if let (Some(f), Some(drop)) = (&shim.filter, loader_caps) {
        cmd.arg("--seccomp-bpf")
            .arg(&f.bpf_path)
            .arg("--seccomp-flags")
            .arg(f.flags.to_string())
            .arg("--seccomp-drop")
            .arg(drop.join(","));
    }
    let console_path = dir.join(format!("e-{short}.sock"));
    let mut listener = None;
    let out_r;
    let mut err_r = None;
    let mut stdin_w = None;
    if tty {
        let _ = fs::remove_file(&console_path);
        let (_guard, bind_path) = proto::socket_path(dir, &format!("e-{short}.sock"))?;
        listener = Some(UnixListener::bind(&bind_path).context("bind exec console socket")?);
        cmd.arg("--console-socket").arg(&console_path);
        // The helper's own stdout carries only why the exec could not start (the
        // process writes to its terminal): it goes to the client all the same.
        let (or, ow) = pipe()?;
        cmd.stdin(Stdio::null()).stdout(Stdio::from(ow)).stderr(Stdio::inherit());
        out_r = Some(or);
    } else {
        let (or, ow) = pipe()?;
        let (er, ew) = pipe()?;
        if stdin {
            let (r, w) = pipe()?;
            cmd.stdin(Stdio::from(r));
            stdin_w = Some(w);
        } else {
            cmd.stdin(Stdio::null());
        }
        cmd.stdout(Stdio::from(ow)).stderr(Stdio::from(ew));
        out_r = Some(or);
        err_r = Some(er);
    }
    let (pid, rx) = shim.watch_child(|| {
        let child = cmd.spawn().context("spawn exec helper")?;
        Ok(child.id() as i32)
    })?;
    drop(cmd); // close our copies of the child's pipe ends
    let hub = Hub::new(None);
    let mut pty = None;
    let mut early = None;
    if let Some(l) = &listener {
        match receive_pty_with_exit(l, &rx)? {
            Ok(m) => pty = Some(m),
            Err(code) => early = Some(code),
        }
        let _ = fs::remove_file(&console_path);
    }
    // Subscribe (answering `Started` under the hub's lock) before any pump runs, so
    // none of the process's output can come before the client is there.
    let feeder_conn = if stdin { Some(conn.try_clone()?) } else { None };
    let mut started = serde_json::to_vec(&Response::Started { pid })?;
    started.push(b'\n');
    hub.subscribe(conn, &started, true, true);
    let sink = match &pty {
        Some(m) => {
            let helper_out = out_r.map(|f| (f, FrameKind::Stdout));
            hub.spawn_pumps([(m.try_clone()?, FrameKind::Stdout)].into_iter().chain(helper_out).collect());
            StdinSink::new(if stdin { Some(m.try_clone()?) } else { None }, false)
        }
        None => {
            let outputs = [(out_r, FrameKind::Stdout), (err_r, FrameKind::Stderr)];
            hub.spawn_pumps(outputs.into_iter().filter_map(|(f, kind)| Some((f?, kind))).collect());
            StdinSink::new(stdin_w, true)
        }
    };
    if let Some(c) = feeder_conn {
        sink.spawn_feeder(c);
    }
    shim.execs.lock().unwrap().insert(id.clone(), ExecHandle { pty: pty.as_ref().map(|m| m.try_clone()).transpose()? });
    let code = match early {
        Some(c) => c,
        None => rx.recv().unwrap_or(137),
    };
    hub.wait_drained(Duration::from_secs(2));
    sink.close();
    hub.finish(&ExitStatus { code, finished_at: now(), oom_killed: false, error: None });
    shim.execs.lock().unwrap().remove(&id);
    let _ = fs::remove_file(&proc_path);
    Ok(())
}

/// Accept the helper's console connection and receive the pty master; if the helper
/// exits before sending one, return its exit code instead.
fn receive_pty_with_exit(l: &UnixListener, rx: &std::sync::mpsc::Receiver<i32>) -> Result<std::result::Result<File, i32>> {
    l.set_nonblocking(true)?;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match l.accept() {
            Ok((conn, _)) => {
                conn.set_nonblocking(false)?;
                return Ok(Ok(recv_fd(&conn)?));
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e.into()),
        }
        if let Ok(code) = rx.try_recv() {
            return Ok(Err(code));
        }
        if Instant::now() > deadline {
            anyhow::bail!("timed out waiting for the exec terminal");
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn recv_fd(conn: &UnixStream) -> Result<File> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    use std::os::fd::{AsRawFd, FromRawFd};
    conn.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut buf = [0u8; 4096];
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let msg = recvmsg::<()>(conn.as_raw_fd(), &mut iov, Some(&mut cmsg), MsgFlags::empty())?;
    for c in msg.cmsgs()? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            if let Some(&fd) = fds.first() {
                // SAFETY: freshly received fd, owned by us alone.
                return Ok(unsafe { File::from_raw_fd(fd) });
            }
        }
    }
    anyhow::bail!("no pty master received")
}

pub fn resize_exec(shim: &Shim, id: &str, height: u16, width: u16) -> Response {
    match shim.execs.lock().unwrap().get(id) {
        Some(ExecHandle { pty: Some(m) }) => match resize(m, height, width) {
            Ok(()) => Response::Ok,
            Err(e) => Response::Error { message: e.to_string() },
        },
        Some(_) => Response::Ok,
        None => Response::Error { message: format!("No such exec instance: {id}") },
    }
}

/// `berth-shim exec-helper`: join the container and run one process; exit with its code.
pub fn helper_main(mut args: impl Iterator<Item = String>) -> i32 {
    let mut id = String::new();
    let mut root = PathBuf::new();
    let mut process = PathBuf::new();
    let mut console: Option<PathBuf> = None;
    let mut filter: Option<crate::seccomp::Filter> = None;
    while let Some(a) = args.next() {
        let v = args.next().unwrap_or_default();
        let f = || crate::seccomp::Filter { bpf_path: PathBuf::new(), prog: Vec::new(), flags: 0, drop: Vec::new() };
        match a.as_str() {
            "--id" => id = v,
            "--runtime-root" => root = v.into(),
            "--process" => process = v.into(),
            "--console-socket" => console = Some(v.into()),
            "--userns" => {
                let joined = fs::File::open(&v).and_then(|ns| {
                    nix::sched::setns(ns, nix::sched::CloneFlags::CLONE_NEWUSER).map_err(std::io::Error::from)
                });
                if let Err(e) = joined {
                    failed!("OCI runtime exec failed: join the container's user namespace: {e}: unknown");
                    return 126;
                }
            }
            "--seccomp-bpf" => filter.get_or_insert_with(f).bpf_path = v.into(),
            "--seccomp-flags" => filter.get_or_insert_with(f).flags = v.parse().unwrap_or(0),
            "--seccomp-drop" => {
                filter.get_or_insert_with(f).drop = v.split(',').filter(|c| !c.is_empty()).map(str::to_owned).collect()
            }
            _ => {
                eprintln!("exec-helper: unknown flag {a}");
                return 126;
            }
        }
    }
    // SAFETY: prctl with integer arguments only.
    unsafe {
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    }
    let spec = fs::read(&process).ok().and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok());
    let argv0 = spec.as_ref().and_then(|v| v["args"][0].as_str().map(str::to_owned)).unwrap_or_default();
    // Unlike a container's, an exec's working directory is not made: runc's chdir
    // fails, and so does this, with runc's words (libcontainer's say less). The
    // "OCI runtime exec failed" messages go to the exec's stdout, where dockerd's are.
    if let Some(cwd) = spec.as_ref().and_then(|v| v["cwd"].as_str()) {
        if cwd_missing(&root, &id, cwd) {
            failed!(
                "OCI runtime exec failed: exec failed: unable to start container process: chdir to cwd (\"{cwd}\") set in config.json failed: no such file or directory: unknown"
            );
            return 126;
        }
    }
    if let Some(f) = filter.as_mut() {
        match fs::read(&f.bpf_path) {
            Ok(p) => f.prog = p,
            Err(e) => {
                failed!("OCI runtime exec failed: read seccomp program {}: {e}: unknown", f.bpf_path.display());
                return 126;
            }
        }
    }
    let executor =
        crate::confine::Confined::new(libcontainer::workload::default::get_executor(), filter, None);
    let built = ContainerBuilder::new(id, SyscallType::default())
        .with_executor(executor)
        .with_root_path(root)
        .map(|b| b.with_console_socket(console.as_ref()))
        .and_then(|b| b.validate_id())
        .and_then(|b| b.as_tenant().with_process(Some(&process)).with_detach(true).build());
    let pid = match built {
        Ok(p) => p,
        Err(e) => {
            // runc's words; an exec that cannot start ends with 126 whatever the cause
            // (dockerd's), unlike a container's command (127 when it is missing).
            failed!(
                "OCI runtime exec failed: exec failed: unable to start container process: exec: \"{argv0}\": {}: unknown",
                exec_failure(&argv0, &e.to_string())
            );
            return 126;
        }
    };
    loop {
        match waitpid(pid, None) {
            Ok(ws) => {
                if let Some((_, code)) = exit_code(ws) {
                    return code;
                }
            }
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return 137,
        }
    }
}

/// Why an exec's program could not start, as runc says it: a name looked up in
/// `$PATH` is "not found" there, a path that is missing is `stat`'s error.
fn exec_failure(argv0: &str, msg: &str) -> String {
    if msg.contains("not found") || msg.contains("No such file") {
        if argv0.contains('/') {
            format!("stat {argv0}: no such file or directory")
        } else {
            "executable file not found in $PATH".to_owned()
        }
    } else if msg.contains("permission") || msg.contains("Permission") {
        "permission denied".to_owned()
    } else {
        msg.to_owned()
    }
}

/// Is `cwd` missing in the running container `id` (looked up inside its root, as
/// the container sees it: symlinks resolved there, its mounts included)?
fn cwd_missing(runtime_root: &std::path::Path, id: &str, cwd: &str) -> bool {
    let Ok(c) = libcontainer::container::Container::load(runtime_root.join(id)) else { return false };
    let Some(pid) = c.pid() else { return false };
    use std::os::unix::fs::OpenOptionsExt;
    // Opened with the magic link followed on purpose: it is the root we want.
    let Ok(dir) = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC)
        .open(format!("/proc/{pid}/root"))
    else {
        return false;
    };
    pathrs::Root::from_fd(std::os::fd::OwnedFd::from(dir)).resolve(cwd).is_err()
}
