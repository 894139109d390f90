//! `berth-shim run`: create the container, serve the protocol, reap, report the exit.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use berth_shim_proto::{self as proto, ExitStatus, FrameKind, Ready, Request, Response};
use libcontainer::container::builder::ContainerBuilder;
use libcontainer::container::Container;
use libcontainer::syscall::syscall::SyscallType;
use nix::sys::signal::Signal;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;

use crate::io::{Hub, StdinSink};
use crate::launch::{Launch, LaunchPipes, Sending};
use crate::confine::Confined;
use crate::seccomp::Filter;
use crate::log::JsonLog;
use crate::RunArgs;

/// State shared by the connection handlers and the reaper.
pub struct Shim {
    pub args: RunArgs,
    container: Mutex<Container>,
    pub init_pid: Pid,
    pub hub: Arc<Hub>,
    stdin: Arc<StdinSink>,
    pty_master: Option<File>,
    started: Mutex<bool>,
    /// The exit status once the init is reaped; until then, the connections of the
    /// `Wait` requests, answered by the reaper itself as soon as it knows.
    exit: Mutex<Exit>,
    /// Exit statuses of our own children (exec helpers), by pid.
    children: Mutex<Children>,
    pub execs: Mutex<HashMap<String, crate::exec::ExecHandle>>,
    /// The container's compiled seccomp filter, which execs load too.
    pub filter: Option<Filter>,
    /// Shim ends of the launch pipes of a `--deferred` container, until `Launch`.
    launch: Mutex<Option<(File, File)>>,
    /// The inode of the socket this shim bound: at exit it removes the socket file
    /// only if it is still this one (a restart of the container may already have a
    /// new shim listening at the same path).
    sock_ino: Option<u64>,
    /// The cgroup file with the OOM kill count, read at exit for `State.OOMKilled`.
    oom_events: Option<PathBuf>,
    /// The container's mount namespace, held open for the shim's life: when the
    /// init exits, the kernel then need not tear down every mount of the container
    /// (and wait for an RCU grace period) before it reports the exit; that happens
    /// when the shim ends, after the exit is out.
    _mnt_ns: Option<File>,
    /// The cgroup to remove at exit without libcontainer, when that is enough.
    quick_delete: Option<String>,
    /// The spec has `poststart` hooks: start through libcontainer's `start`.
    poststart: bool,
    /// Requests being answered (all but attach streams), which the reaper lets finish
    /// before the shim exits.
    answering: Answering,
    /// Attaches accepted but not yet in place, each on a thread of its own (the hub
    /// was busy): `Start` and `Launch` wait for them (see `attach_at_once`).
    attaching: Answering,
    /// The thread detaching the container's `/sys/fs/cgroup` tree after `Ready`,
    /// joined before the shim exits (in a shim without a mount namespace of its own
    /// the tree is in the host's).
    detaching: Mutex<Option<std::thread::JoinHandle<()>>>,
}

/// A count of the requests being answered. A `Kill` of the init is answered on the
/// accepting thread while the reaper, woken by the death it caused, runs `finish` on
/// another CPU: without this the shim could exit between the signal and the answer,
/// and berthd saw the connection close with no answer (a 500 for `docker kill`).
#[derive(Default)]
struct Answering {
    count: Mutex<usize>,
    idle: std::sync::Condvar,
}

impl Answering {
    fn enter(&self) -> AnsweringGuard<'_> {
        self.begin();
        AnsweringGuard(self)
    }

    fn begin(&self) {
        *self.count.lock().unwrap() += 1;
    }

    fn end(&self) {
        let mut n = self.count.lock().unwrap_or_else(|e| e.into_inner());
        *n -= 1;
        if *n == 0 {
            self.idle.notify_all();
        }
    }

    /// Waits until no request is being answered, at most `limit`.
    fn wait_idle(&self, limit: Duration) {
        let g = self.count.lock().unwrap_or_else(|e| e.into_inner());
        let _ = self.idle.wait_timeout_while(g, limit, |n| *n > 0);
    }
}

struct AnsweringGuard<'a>(&'a Answering);

impl Drop for AnsweringGuard<'_> {
    fn drop(&mut self) {
        self.0.end();
    }
}

#[derive(Default)]
pub struct Children {
    waiting: HashMap<i32, mpsc::Sender<i32>>,
    reaped: HashMap<i32, i32>,
}

/// Exit code the way Docker reports it: the code, or 128 + signal.
pub fn exit_code(ws: WaitStatus) -> Option<(i32, i32)> {
    match ws {
        WaitStatus::Exited(p, c) => Some((p.as_raw(), c)),
        WaitStatus::Signaled(p, s, _) => Some((p.as_raw(), 128 + s as i32)),
        _ => None,
    }
}

pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

fn set_subreaper() {
    // SAFETY: prctl with integer arguments only.
    unsafe {
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    }
}

/// Receive the pty master that libcontainer's init sends over the console socket.
pub fn receive_pty(listener: &UnixListener) -> Result<File> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    listener.set_nonblocking(false)?;
    let (conn, _) = listener.accept().context("accept console socket")?;
    conn.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut buf = [0u8; 4096];
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let msg = recvmsg::<()>(conn.as_raw_fd(), &mut iov, Some(&mut cmsg), MsgFlags::empty())
        .context("receive pty master")?;
    for c in msg.cmsgs().context("read control message")? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            if let Some(&fd) = fds.first() {
                // SAFETY: the fd was just received and is owned by nobody else.
                return Ok(unsafe { File::from_raw_fd(fd) });
            }
        }
    }
    anyhow::bail!("no pty master received on the console socket")
}

/// Set a terminal's size.
pub fn resize(master: &File, height: u16, width: u16) -> Result<()> {
    let ws = libc::winsize { ws_row: height, ws_col: width, ws_xpixel: 0, ws_ypixel: 0 };
    // SAFETY: TIOCSWINSZ with a valid winsize pointer on an open fd.
    let rc = unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error().into());
    }
    Ok(())
}

pub(crate) fn pipe() -> Result<(File, File)> {
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    Ok((File::from(r), File::from(w)))
}

/// Remove libcontainer state left by an earlier shim for the same id.
fn clear_stale(runtime_root: &Path, id: &str) {
    let dir = runtime_root.join(id);
    if dir.exists() {
        if let Ok(mut c) = Container::load(dir.clone()) {
            let _ = c.delete(true);
        }
        let _ = fs::remove_dir_all(&dir);
    }
}

/// Turn a libcontainer creation error into Docker's wording, which the docker CLI
/// maps to exit codes 126/127.
///
/// Only the failures of the exec itself are mapped (libcontainer's executable check,
/// or the launcher's `exec ARGV0: ...`): a "No such file" from setting the container up
/// (a device, a mount) is reported as it is, not as a missing executable.
fn docker_error(e: &str, argv0: &str) -> String {
    let exec_failed = e.starts_with("exec ");
    if e.contains("not found in $PATH") || (exec_failed && e.contains("No such file")) {
        format!(
            "failed to create task for container: failed to create shim task: OCI runtime create failed: exec: \"{argv0}\": executable file not found in $PATH: unknown"
        )
    } else if e.contains("does not have correct permissions")
        || e.contains("does not have the correct permission")
        || (exec_failed && e.contains("permission denied"))
    {
        format!(
            "failed to create task for container: failed to create shim task: OCI runtime create failed: exec: \"{argv0}\": permission denied: unknown"
        )
    } else {
        format!("failed to create task for container: OCI runtime create failed: {e}: unknown")
    }
}

fn argv0(bundle: &Path) -> String {
    fs::read(bundle.join("config.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| v["process"]["args"][0].as_str().map(str::to_owned))
        .unwrap_or_default()
}

struct Created {
    container: Container,
    filter: Option<Filter>,
    launch: Option<(File, File)>,
    out: Option<File>,
    err: Option<File>,
    stdin_w: Option<File>,
    pty: Option<File>,
    oom_events: Option<PathBuf>,
    quick_delete: Option<String>,
    poststart: bool,
    /// The container's `/sys/fs/cgroup` tree, which the init process has its own copy
    /// of now: detached once berthd has the `Ready` line, beside the requests.
    cgroup_tree: Option<crate::cgroupfs::Tree>,
}

fn create(a: &RunArgs) -> Result<Created> {
    clear_stale(&a.runtime_root, &a.id);
    fs::create_dir_all(&a.runtime_root)?;
    let mut out = None;
    let mut err = None;
    let mut stdin_w = None;
    let console_path = a.state_dir.join("console.sock");
    let (console, stdio) = if a.tty {
        let _ = fs::remove_file(&console_path);
        let (_guard, bind_path) = proto::socket_path(&a.state_dir, "console.sock")?;
        let l = UnixListener::bind(&bind_path).context("bind console socket")?;
        (Some(l), crate::direct::Stdio::Console(console_path.clone()))
    } else {
        let (or, ow) = pipe()?;
        let (er, ew) = pipe()?;
        let stdin_r: OwnedFd = if a.stdin {
            let (r, w) = pipe()?;
            stdin_w = Some(w);
            r.into()
        } else {
            File::open("/dev/null")?.into()
        };
        out = Some(or);
        err = Some(er);
        (None, crate::direct::Stdio::Pipes { stdin: stdin_r, stdout: ow.into(), stderr: ew.into() })
    };
    let pipes = if a.deferred { Some(LaunchPipes::new()?) } else { None };
    let cache = a.runtime_root.parent().unwrap_or(&a.runtime_root).join("seccomp");
    let crate::confine::Prepared { bundle, filter, ro_cgroups, oom_control, oom_events, quick_delete, cgroup_tree, poststart } =
        crate::confine::prepare_bundle(&a.bundle, &a.state_dir, &cache)?;
    let inner: Box<dyn libcontainer::workload::Executor> = match &pipes {
        Some(p) => Box::new(p.executor()),
        None => Box::new(crate::launch::ResolvedExecutor::new()),
    };
    let executor = Confined::new(inner, filter.clone(), ro_cgroups);
    crate::errlog::clear();
    // Created by the shim without libcontainer's intermediate process (see `direct`),
    // but for a user or time namespace, hooks and the like: libcontainer's builder.
    let direct = crate::direct::load(&bundle).ok().filter(crate::direct::eligible);
    let created = match direct {
        Some(spec) => {
            let hierarchies = cgroup_tree.as_ref().map(|t| t.own_cgroups());
            crate::direct::create(&a.id, &a.runtime_root, &bundle, spec, stdio, Box::new(executor), hierarchies)
                .map_err(|e| format!("{e:#}"))
        }
        None => {
            let mut b = ContainerBuilder::new(a.id.clone(), SyscallType::default()).with_root_path(&a.runtime_root)?;
            b = match stdio {
                crate::direct::Stdio::Console(path) => b.with_console_socket(Some(&path)),
                crate::direct::Stdio::Pipes { stdin, stdout, stderr } => b.with_stdin(stdin).with_stdout(stdout).with_stderr(stderr),
            };
            b.with_executor(executor)
                .validate_id()
                .and_then(|b| b.as_init(&bundle).with_systemd(false).with_detach(true).build())
                .map_err(|e| e.to_string())
        }
    };
    let container = created.map_err(|e| anyhow::anyhow!(docker_error(&crate::errlog::with_cause(&e), &argv0(&a.bundle))))?;
    if let Some(p) = &oom_control {
        crate::confine::disable_oom_killer(p)?;
    }
    // The init process holds its ends of the launch pipes; ours must close so that
    // end-of-file on the status pipe means "exec'd".
    let launch = pipes.map(|p| (p.launch_w, p.status_r));
    let pty = match console {
        Some(l) => {
            let m = receive_pty(&l)?;
            let _ = fs::remove_file(&console_path);
            Some(m)
        }
        None => None,
    };
    Ok(Created { container, filter, launch, out, err, stdin_w, pty, oom_events, quick_delete, poststart, cgroup_tree })
}

/// Point the descriptors `fds` (stdout, stderr) at the shim's own log.
pub fn redirect_to_log(state_dir: &Path, fds: &[i32]) {
    if let Ok(f) = fs::OpenOptions::new().create(true).append(true).open(state_dir.join(proto::LOG_FILE)) {
        for &fd in fds {
            let _ = nix::unistd::dup2(f.as_raw_fd(), fd);
        }
    }
}

/// Point our stdout/stderr at the shim's own log, so the daemon's pipe can go away.
fn redirect_output(state_dir: &Path) {
    redirect_to_log(state_dir, &[1, 2]);
}

pub fn main(a: RunArgs) -> i32 {
    let _ = nix::unistd::setsid();
    set_subreaper();
    let ready = |r: &Ready| {
        let mut out = std::io::stdout().lock();
        proto::write_line(&mut out, r).is_ok()
    };
    let t0 = std::time::Instant::now();
    let created = match create(&a) {
        Ok(c) => c,
        Err(e) => {
            ready(&Ready::Error { message: format!("{e:#}") });
            return 1;
        }
    };
    let init_pid = created.container.pid().unwrap_or(Pid::from_raw(0));
    let log = match &a.log {
        None => None,
        Some(path) => match JsonLog::open(path, a.log_rotation) {
            Ok(l) => Some(l.with_attrs(a.log_attrs.clone())),
            Err(e) => {
                ready(&Ready::Error { message: format!("open log {}: {e}", path.display()) });
                return 1;
            }
        },
    };
    let hub = Hub::new(log);
    let stdin_once = a.stdin_once;
    // The pumps start once the `Ready` line is out: nothing is written before the
    // process starts, which is after it (the pipes hold whatever comes first).
    let mut pumps = Vec::new();
    let (stdin, pty_master) = match created.pty {
        Some(m) => {
            pumps.push((m.try_clone().expect("dup pty"), FrameKind::Stdout));
            let w = if a.stdin { Some(m.try_clone().expect("dup pty")) } else { None };
            (StdinSink::new(w, false), Some(m))
        }
        None => {
            if let Some(o) = created.out {
                pumps.push((o, FrameKind::Stdout));
            }
            if let Some(e) = created.err {
                pumps.push((e, FrameKind::Stderr));
            }
            (StdinSink::new(created.stdin_w, stdin_once), None)
        }
    };
    let sock_path = a.state_dir.join(proto::SOCKET_FILE);
    let _ = fs::remove_file(&sock_path);
    let bound = proto::socket_path(&a.state_dir, proto::SOCKET_FILE).and_then(|(_g, p)| UnixListener::bind(p));
    let listener = match bound {
        Ok(l) => l,
        Err(e) => {
            ready(&Ready::Error { message: format!("bind {}: {e}", sock_path.display()) });
            return 1;
        }
    };
    let shim = Arc::new(Shim {
        args: a,
        container: Mutex::new(created.container),
        init_pid,
        hub,
        stdin,
        pty_master,
        started: Mutex::new(false),
        exit: Mutex::new(Exit::Running(Vec::new())),
        children: Mutex::new(Children::default()),
        execs: Mutex::new(HashMap::new()),
        launch: Mutex::new(created.launch),
        filter: created.filter,
        sock_ino: fs::metadata(&sock_path).ok().map(|m| std::os::unix::fs::MetadataExt::ino(&m)),
        oom_events: created.oom_events,
        _mnt_ns: File::open(format!("/proc/{init_pid}/ns/mnt")).ok(),
        quick_delete: created.quick_delete,
        poststart: created.poststart,
        answering: Answering::default(),
        attaching: Answering::default(),
        detaching: Mutex::new(None),
    });
    let told = ready(&Ready::Ok {
        shim_pid: std::process::id() as i32,
        init_pid: init_pid.as_raw(),
        create_micros: t0.elapsed().as_micros() as u64,
    });
    // Before the first request is served (requests are served only below): `finish`
    // then always finds every pump counted.
    shim.hub.spawn_pumps(pumps);
    // On a thread of its own: an unmount waits for an RCU grace period (0.2 ms, up to
    // 5 ms on a busy host), and until the loop below runs no request is accepted — a
    // warm sandbox made ready just before a `run` kept that start waiting.
    if let Some(tree) = created.cgroup_tree {
        *shim.detaching.lock().unwrap() = Some(std::thread::spawn(move || drop(tree)));
    }
    redirect_output(&shim.args.state_dir);
    if !told {
        // berthd died while the container was being created: it never learns of this
        // container, and a restarted berthd may already have removed its state
        // directory. Take it down (kill, reap, delete its cgroup and runtime state)
        // rather than leave it running unowned.
        eprintln!("berth-shim: berthd is gone; removing the container it never saw");
        if !matches!(shim.kill(libc::SIGKILL, true), Response::Ok) && shim.exit.lock().unwrap().status().is_none() {
            // The init is gone already: reap it and delete the container all the same.
            let s = shim.clone();
            std::thread::spawn(move || s.reap());
        }
        // The reaper ends the process once the container is deleted (`finish`).
        for _ in 0..60 {
            std::thread::park_timeout(Duration::from_secs(1));
        }
        return 1;
    }
    for conn in listener.incoming() {
        let Ok(mut conn) = conn else { continue };
        // The request is read here (berthd writes it with the connection), and the
        // ones answered at once are served here too: no thread to start, on the
        // critical path of every start, for `Start`, `Wait`, `Kill` and the like.
        let _ = conn.set_read_timeout(Some(REQUEST_TIMEOUT));
        let req: Request = match proto::read_line_socket(&mut conn) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("berth-shim: connection: read the request: {e}");
                continue;
            }
        };
        let _ = conn.set_read_timeout(None);
        let conn = match req {
            Request::Attach { stdin, stdout, stderr } => match shim.attach_at_once(conn, stdin, stdout, stderr) {
                Ok(()) => continue,
                Err(conn) => conn,
            },
            _ => conn,
        };
        if served_at_once(&req) {
            if let Err(e) = shim.handle(conn, req) {
                eprintln!("berth-shim: connection: {e:#}");
            }
            continue;
        }
        let attach = matches!(req, Request::Attach { .. });
        if attach {
            shim.attaching.begin();
        }
        let s = shim.clone();
        std::thread::spawn(move || {
            if let Err(e) = s.handle(conn, req) {
                eprintln!("berth-shim: connection: {e:#}");
            }
            if attach {
                s.attaching.end();
            }
        });
    }
    0
}

/// An attach's answer (`Ok` as a line), written to it under the output hub's lock.
fn attach_greeting() -> Vec<u8> {
    let mut ok = serde_json::to_vec(&Response::Ok).expect("Ok serializes");
    ok.push(b'\n');
    ok
}

/// How long a start waits at most for attaches accepted before it to be in place.
const ATTACH_LIMIT: Duration = Duration::from_secs(1);

/// How long the shim waits for the request line of a new connection.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// Requests answered without waiting on anything that may take long, served on the
/// accepting thread. `Launch` waits for the exec of the process, no longer than an
/// exec takes, and while it waits berthd sends nothing else (the container is not
/// running until the answer). `Exec` and `Attach` stream; `Pause`, `Resume` and a
/// kill of every process (which freezes the cgroup around the signals) wait for the
/// freezer, and `State` for the container's lock, which a pause holds meanwhile: each
/// gets a thread of its own, so that a plain `Kill` is always served.
fn served_at_once(req: &Request) -> bool {
    matches!(
        req,
        Request::Start
            | Request::Launch { .. }
            | Request::Wait
            | Request::Kill { all: false, .. }
            | Request::Resize { .. }
            | Request::ResizeExec { .. }
    )
}

/// The container's init: still running (with the connections waiting for its exit),
/// or reaped.
enum Exit {
    Running(Vec<UnixStream>),
    Exited(ExitStatus),
}

impl Exit {
    fn status(&self) -> Option<&ExitStatus> {
        match self {
            Exit::Running(_) => None,
            Exit::Exited(st) => Some(st),
        }
    }
}

impl Shim {
    fn handle(self: &Arc<Self>, mut conn: UnixStream, req: Request) -> Result<()> {
        // Attach streams end with the hub at the exit; an exec's ends with its process,
        // which `finish` reaps before it waits for these.
        let _answering = match req {
            Request::Attach { .. } => None,
            _ => Some(self.answering.enter()),
        };
        let resp = match req {
            Request::Attach { stdin, stdout, stderr } => {
                if stdin {
                    self.stdin.spawn_feeder(conn.try_clone()?);
                }
                self.hub.subscribe(conn, &attach_greeting(), stdout, stderr);
                return Ok(());
            }
            Request::Start | Request::Launch { .. } => {
                let (resp, started) = match req {
                    Request::Launch { args, env } => self.launch(Launch { args, env }),
                    _ => self.start(),
                };
                // The answer goes out before the reaper starts: a process that exits
                // at once would otherwise end the shim (`finish`) before it answered.
                let written = proto::write_line(&mut conn, &resp);
                if started {
                    let s = self.clone();
                    std::thread::spawn(move || s.reap());
                }
                return written.map_err(Into::into);
            }
            Request::Kill { signal, all } => self.kill(signal, all),
            Request::Resize { height, width } => match &self.pty_master {
                Some(m) => resize(m, height, width).map(|_| Response::Ok).unwrap_or_else(err),
                None => Response::Ok,
            },
            Request::Wait => {
                let mut g = self.exit.lock().unwrap();
                match &mut *g {
                    // Answered by the reaper (`finish`).
                    Exit::Running(waiting) => {
                        waiting.push(conn);
                        return Ok(());
                    }
                    Exit::Exited(st) => Response::Exited(st.clone()),
                }
            }
            Request::State => {
                let running = *self.started.lock().unwrap() && self.exit.lock().unwrap().status().is_none();
                let paused = self.container.lock().unwrap().status() == libcontainer::container::ContainerStatus::Paused;
                Response::State { pid: self.init_pid.as_raw(), running, paused }
            }
            Request::Exec { id, process, tty, stdin } => {
                return crate::exec::run_exec(self, conn, id, process, tty, stdin);
            }
            Request::ResizeExec { id, height, width } => crate::exec::resize_exec(self, &id, height, width),
            Request::Pause => {
                self.container.lock().unwrap().pause().map(|_| Response::Ok).unwrap_or_else(err)
            }
            Request::Resume => {
                self.container.lock().unwrap().resume().map(|_| Response::Ok).unwrap_or_else(err)
            }
        };
        proto::write_line(&mut conn, &resp)?;
        Ok(())
    }

    /// Put an attach in place on the accepting thread: no thread to start on the way
    /// to the process, and an attach accepted before a `Start` is in place before the
    /// process runs, so berthd sends the start without waiting for the attach's answer.
    /// If the hub is busy (a pump writing to a client that does not read can hold it)
    /// the connection comes back, for a thread of its own, which `Start` and `Launch`
    /// then wait for (`attaching`).
    fn attach_at_once(&self, conn: UnixStream, stdin: bool, stdout: bool, stderr: bool) -> Result<(), UnixStream> {
        let feeder = match stdin.then(|| conn.try_clone()).transpose() {
            Ok(f) => f,
            // Left to the thread, whose `handle` reports it.
            Err(_) => return Err(conn),
        };
        self.hub.try_subscribe(conn, &attach_greeting(), stdout, stderr, || {
            if let Some(f) = feeder {
                self.stdin.spawn_feeder(f);
            }
        })
    }

    /// Release a container created with its process (`Start`). The bool: it was
    /// released now, and its reaper is to be started once the answer is out.
    fn start(self: &Arc<Self>) -> (Response, bool) {
        self.attaching.wait_idle(ATTACH_LIMIT);
        let mut started = self.started.lock().unwrap();
        if *started {
            return (Response::Started { pid: self.init_pid.as_raw() }, false);
        }
        if self.launch.lock().unwrap().is_some() {
            return (Response::Error { message: "container was created for a deferred launch".into() }, false);
        }
        if let Err(e) = self.release() {
            return (Response::Error { message: format!("start container: {e:#}") }, false);
        }
        *started = true;
        (Response::Started { pid: self.init_pid.as_raw() }, true)
    }

    /// Start a `--deferred` container with the process chosen now, as [`Shim::start`].
    /// The answer waits for the outcome of the exec (it may fail: not found, not
    /// executable).
    fn launch(self: &Arc<Self>, l: Launch) -> (Response, bool) {
        self.attaching.wait_idle(ATTACH_LIMIT);
        let mut started = self.started.lock().unwrap();
        let Some((launch_w, status_r)) = self.launch.lock().unwrap().take() else {
            return (Response::Error { message: "container was not created for a deferred launch".into() }, false);
        };
        // The process goes into the pipe before the start signal: the init execs it
        // as soon as it is released instead of waiting for it.
        let sending = match Sending::begin(launch_w, &l) {
            Ok(s) => s,
            Err(e) => return (Response::Error { message: format!("launch: {e:#}") }, false),
        };
        if let Err(e) = self.release() {
            return (Response::Error { message: format!("start container: {e:#}") }, false);
        }
        let outcome = sending.finish(status_r);
        *started = true;
        let resp = match outcome {
            Ok(None) => Response::Started { pid: self.init_pid.as_raw() },
            Ok(Some(msg)) => Response::Error { message: docker_error(&msg, l.args.first().map_or("", |s| s.as_str())) },
            Err(e) => Response::Error { message: format!("launch: {e:#}") },
        };
        (resp, true)
    }

    /// Send the init process the start signal. libcontainer's `start` reloads the
    /// container's state and configuration, signals, then saves the state: ~0.5 ms
    /// before the init is released. Without `poststart` hooks (all it needs the
    /// configuration for) the signal goes first and the state is saved while the
    /// process starts.
    fn release(&self) -> Result<()> {
        use libcontainer::container::ContainerStatus;
        use libcontainer::notify_socket::{NotifySocket, NOTIFY_FILE};
        let mut c = self.container.lock().unwrap();
        if self.poststart {
            return c.start().map_err(Into::into);
        }
        NotifySocket::new(c.root.join(NOTIFY_FILE)).notify_container_start().context("send the start signal")?;
        c.set_status(ContainerStatus::Running).save().context("save the container's state")?;
        Ok(())
    }

    fn kill(self: &Arc<Self>, signal: i32, all: bool) -> Response {
        let sig = match Signal::try_from(signal) {
            Ok(s) => s,
            Err(_) => return Response::Error { message: format!("invalid signal: {signal}") },
        };
        if self.exit.lock().unwrap().status().is_some() {
            return Response::Error { message: "container is not running".into() };
        }
        // A container that was never started (a discarded warm sandbox, a failed
        // start): kill its waiting init and reap it, so this shim finishes too.
        {
            let mut started = self.started.lock().unwrap();
            if !*started {
                *started = true;
                self.launch.lock().unwrap().take();
                if let Err(e) = nix::sys::signal::kill(self.init_pid, Signal::SIGKILL) {
                    return Response::Error { message: format!("kill: {e}") };
                }
                let s = self.clone();
                std::thread::spawn(move || s.reap());
                return Response::Ok;
            }
        }
        if all {
            return self.container.lock().unwrap().kill(sig, true).map(|_| Response::Ok).unwrap_or_else(err);
        }
        match nix::sys::signal::kill(self.init_pid, sig) {
            Ok(()) => Response::Ok,
            Err(e) => Response::Error { message: format!("kill: {e}") },
        }
    }

    /// Register a child (exec helper) and get its exit code when it is reaped.
    pub fn watch_child(&self, spawn: impl FnOnce() -> Result<i32>) -> Result<(i32, mpsc::Receiver<i32>)> {
        let mut ch = self.children.lock().unwrap();
        let pid = spawn()?;
        let (tx, rx) = mpsc::channel();
        if let Some(code) = ch.reaped.remove(&pid) {
            let _ = tx.send(code);
        } else {
            ch.waiting.insert(pid, tx);
        }
        Ok((pid, rx))
    }

    fn reap(self: Arc<Self>) {
        loop {
            match waitpid(Pid::from_raw(-1), None) {
                Ok(ws) => {
                    let Some((pid, code)) = exit_code(ws) else { continue };
                    if pid == self.init_pid.as_raw() {
                        self.finish(code);
                    }
                    self.child_exited(pid, code);
                }
                Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => std::thread::sleep(Duration::from_millis(10)),
            }
        }
    }

    /// A child (exec helper) was reaped: its watcher gets the code, or it is kept for
    /// a watcher not registered yet (`watch_child`).
    fn child_exited(&self, pid: i32, code: i32) {
        let mut ch = self.children.lock().unwrap();
        match ch.waiting.remove(&pid) {
            Some(tx) => {
                let _ = tx.send(code);
            }
            None => {
                ch.reaped.insert(pid, code);
            }
        }
    }

    /// Exec processes still running when the init exited die with its PID namespace:
    /// reap them (for `limit` at most) so that each exec ends with its own exit code —
    /// 137 for the SIGKILL, as dockerd reports — instead of a stream cut off by the
    /// shim's exit (berthd then recorded 126). Execs not reaped by then end with 137.
    fn reap_execs(&self, limit: Duration) {
        use nix::sys::wait::WaitPidFlag;
        let deadline = std::time::Instant::now() + limit;
        while !self.children.lock().unwrap().waiting.is_empty() {
            match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) => {
                    if std::time::Instant::now() >= deadline {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(2));
                }
                Ok(ws) => {
                    if let Some((pid, code)) = exit_code(ws) {
                        self.child_exited(pid, code);
                    }
                }
                Err(nix::errno::Errno::EINTR) => {}
                Err(_) => break,
            }
        }
        // Their senders dropped: those execs end with 137.
        self.children.lock().unwrap().waiting.clear();
    }

    fn finish(&self, code: i32) -> ! {
        self.hub.wait_drained(Duration::from_secs(2));
        // Read before the cgroup goes with the container.
        let oom_killed = self.oom_events.as_deref().is_some_and(|p| crate::confine::oom_kills(p) > 0);
        let status = ExitStatus { code, finished_at: now(), oom_killed, error: None };
        let _ = write_exit_file(&self.args.state_dir, &status);
        let waiting = match std::mem::replace(&mut *self.exit.lock().unwrap(), Exit::Exited(status.clone())) {
            Exit::Running(w) => w,
            Exit::Exited(_) => Vec::new(),
        };
        // Each waiter is told here, before the clean-up below; a waiter that does not
        // read (its socket buffer full) holds the reaper up for a second at most.
        for mut conn in waiting {
            let _ = conn.set_write_timeout(Some(Duration::from_secs(1)));
            let _ = proto::write_line(&mut conn, &Response::Exited(status.clone()));
        }
        self.hub.finish(&status);
        self.stdin.close();
        self.reap_execs(Duration::from_secs(1));
        let state = self.args.runtime_root.join(&self.args.id);
        let deleted = self.quick_delete.as_deref().is_some_and(|cg| crate::confine::quick_delete(&state, cg));
        if !deleted {
            if let Ok(mut c) = self.container.lock() {
                let _ = c.delete(true);
            }
        }
        let sock = self.args.state_dir.join(proto::SOCKET_FILE);
        let ours = fs::symlink_metadata(&sock)
            .ok()
            .map(|m| std::os::unix::fs::MetadataExt::ino(&m));
        if ours.is_some() && ours == self.sock_ino {
            let _ = fs::remove_file(&sock);
        }
        // A request answered meanwhile (the kill that ended the init, say) gets its
        // answer out before the process ends.
        self.answering.wait_idle(Duration::from_secs(2));
        if let Some(t) = self.detaching.lock().ok().and_then(|mut d| d.take()) {
            let _ = t.join();
        }
        // What is left is the exit itself (the address space, the container's procfs
        // and other mounts this process still holds): nobody waits for it, so it runs
        // at the lowest priority, after the work of the next container's start.
        lowest_priority();
        std::process::exit(0);
    }
}

/// The calling thread (the reaper, which ends the process) at nice 19.
fn lowest_priority() {
    // SAFETY: setpriority has no memory effects; PRIO_PROCESS with id 0 is the calling
    // thread on Linux. A failure leaves the priority as it was.
    unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, 19) };
}

fn err(e: impl std::fmt::Display) -> Response {
    Response::Error { message: e.to_string() }
}

/// Write `exit.json` atomically (temp file, rename). It is not fsynced: it lives in
/// the exec root (a tmpfs on most hosts) and only has to outlive a daemon crash, not a
/// host crash, after which no container is running anyway.
fn write_exit_file(dir: &Path, st: &ExitStatus) -> Result<()> {
    let tmp: PathBuf = dir.join(".exit.json.tmp");
    let mut f = File::create(&tmp)?;
    f.write_all(&serde_json::to_vec(st)?)?;
    fs::rename(&tmp, dir.join(proto::EXIT_FILE))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::docker_error;

    #[test]
    fn the_exit_waits_for_answers_being_written() {
        use super::Answering;
        use std::sync::Arc;
        use std::time::{Duration, Instant};
        let a = Arc::new(Answering::default());
        // Nothing being answered: no wait.
        let t = Instant::now();
        a.wait_idle(Duration::from_secs(5));
        assert!(t.elapsed() < Duration::from_secs(1));
        // An answer in progress holds the exit until it is out.
        let (entered_tx, entered_rx) = std::sync::mpsc::channel();
        let answering = a.clone();
        let writer = std::thread::spawn(move || {
            let _g = answering.enter();
            entered_tx.send(()).unwrap();
            std::thread::sleep(Duration::from_millis(300));
            Instant::now()
        });
        entered_rx.recv().unwrap();
        a.wait_idle(Duration::from_secs(5));
        let released = Instant::now();
        let answered = writer.join().unwrap();
        assert!(released >= answered, "the exit went ahead of the answer");
        // And never longer than its limit.
        let _stuck = a.enter();
        let t = Instant::now();
        a.wait_idle(Duration::from_millis(200));
        assert!(t.elapsed() >= Duration::from_millis(200) && t.elapsed() < Duration::from_secs(2));
    }

    #[test]
    fn only_exec_failures_read_as_missing_or_unrunnable_executables() {
        let e = docker_error("exec process failed with error error in executing process : executable 'x' not found in $PATH", "x");
        assert!(e.contains("exec: \"x\": executable file not found in $PATH"), "{e}");
        let e = docker_error("exec /bin/x: No such file or directory (os error 2)", "/bin/x");
        assert!(e.contains("executable file not found"), "{e}");
        let e = docker_error("exec /etc/passwd: permission denied (os error 13)", "/etc/passwd");
        assert!(e.contains("exec: \"/etc/passwd\": permission denied"), "{e}");
        // Setting the container up failed: said as it is.
        let setup = "failed to set masked paths err=NixOther(ENOENT): No such file or directory";
        assert!(docker_error(setup, "sh").contains(setup));
        let setup = "failed to prepare rootfs: mount /x: Permission denied";
        assert!(!docker_error(setup, "sh").contains("exec: \"sh\""));
    }
}
