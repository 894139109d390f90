//! berth-shim: owns one container (see README.md).

mod bpf;
mod cgroupfs;
mod confine;
mod direct;
mod errlog;
mod exec;
mod io;
mod launch;
mod log;
mod mounts;
mod rootfs;
mod run;
mod seccomp;
mod zygote;

use std::path::PathBuf;

use anyhow::{bail, Context, Result};

/// `berth-shim run` options.
pub struct RunArgs {
    pub id: String,
    pub bundle: PathBuf,
    pub runtime_root: PathBuf,
    pub state_dir: PathBuf,
    /// The json-file log; `None` with `--no-log` (log driver `none`).
    pub log: Option<PathBuf>,
    pub log_rotation: log::Rotation,
    /// `--log-attrs <json object>`: written with every log entry.
    pub log_attrs: log::Attrs,
    pub tty: bool,
    pub stdin: bool,
    pub stdin_once: bool,
    /// Create the container now, choose its process at `Launch` (a warm sandbox).
    pub deferred: bool,
}

fn value(args: &mut impl Iterator<Item = String>, flag: &str) -> Result<String> {
    args.next().with_context(|| format!("{flag} needs a value"))
}

fn parse_run(mut args: impl Iterator<Item = String>) -> Result<RunArgs> {
    let mut r = RunArgs {
        id: String::new(),
        bundle: PathBuf::new(),
        runtime_root: PathBuf::new(),
        state_dir: PathBuf::new(),
        log: None,
        log_rotation: log::Rotation::default(),
        log_attrs: log::Attrs::new(),
        tty: false,
        stdin: false,
        stdin_once: false,
        deferred: false,
    };
    while let Some(a) = args.next() {
        match a.as_str() {
            "--id" => r.id = value(&mut args, &a)?,
            "--bundle" => r.bundle = value(&mut args, &a)?.into(),
            "--runtime-root" => r.runtime_root = value(&mut args, &a)?.into(),
            "--state-dir" => r.state_dir = value(&mut args, &a)?.into(),
            "--log" => r.log = Some(value(&mut args, &a)?.into()),
            "--log-opts" => r.log_rotation = log::Rotation::parse(&value(&mut args, &a)?)?,
            "--log-attrs" => r.log_attrs = serde_json::from_str(&value(&mut args, &a)?).context("--log-attrs")?,
            "--tty" => r.tty = true,
            "--stdin" => r.stdin = true,
            "--stdin-once" => r.stdin_once = true,
            "--deferred" => r.deferred = true,
            other => bail!("unknown flag {other}"),
        }
    }
    if r.id.is_empty() || r.bundle.as_os_str().is_empty() || r.state_dir.as_os_str().is_empty() {
        bail!("--id, --bundle and --state-dir are required");
    }
    Ok(r)
}

/// `berth-shim standby --runtime-root DIR` (or a fork of `berth-shim zygote`, see
/// zygote.rs): a shim berthd starts before a container
/// needs one, so that loading and starting the program is not part of creating a
/// container (the runtime root only tells whose it is). It waits for one line on stdin
/// — the JSON array of its `run` arguments — named `berth-standby` meanwhile, then
/// takes the name `berth-shim` again, points stdin at /dev/null and stderr at the
/// container's `shim.log`, and is the container's shim from there on. End-of-file
/// first (berthd stopped or died) ends it.
fn standby_main() -> i32 {
    use std::io::BufRead;
    use std::os::fd::AsRawFd;
    set_name(c"berth-standby");
    let mut line = String::new();
    if std::io::stdin().lock().read_line(&mut line).unwrap_or(0) == 0 {
        return 0;
    }
    let args: Vec<String> = match serde_json::from_str(&line) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("berth-shim standby: bad arguments {line:?}: {e}");
            return 2;
        }
    };
    set_name(c"berth-shim");
    set_cmdline(&args);
    let a = match parse_run(args.into_iter().skip_while(|a| a == "run")) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("berth-shim: {e:#}");
            return 2;
        }
    };
    if let Ok(null) = std::fs::File::open("/dev/null") {
        let _ = nix::unistd::dup2(null.as_raw_fd(), 0);
    }
    // stdout stays the pipe the Ready line goes to.
    run::redirect_to_log(&a.state_dir, &[2]);
    run::main(a)
}

/// The process's name (`/proc/PID/comm`, what `ps` shows by default).
fn set_name(name: &std::ffi::CStr) {
    // SAFETY: PR_SET_NAME reads a NUL-terminated string of at most 16 bytes.
    unsafe {
        libc::prctl(libc::PR_SET_NAME, name.as_ptr(), 0, 0, 0);
    }
}

/// Show `berth-shim run ARGS...` as this process's command line (`ps`, and whatever
/// finds a container's shim by its arguments), as if it had been started with them:
/// the kernel reads `/proc/PID/cmdline` from the range set here (`PR_SET_MM`, which
/// needs `CAP_SYS_RESOURCE`; without it the line stays `berth-shim standby`).
fn set_cmdline(args: &[String]) {
    let mut buf = b"berth-shim\0".to_vec();
    for a in args {
        buf.extend_from_slice(a.as_bytes());
        buf.push(0);
    }
    // The kernel keeps pointing at it for the life of the process.
    let buf: &'static [u8] = Box::leak(buf.into_boxed_slice());
    let (start, end) = (buf.as_ptr() as libc::c_ulong, buf.as_ptr() as libc::c_ulong + buf.len() as libc::c_ulong);
    // SAFETY: prctl with plain integers; the range is valid memory of this process that
    // is never freed. The start moves first: the kernel requires start <= end throughout,
    // and the new range lies below the stack that holds the old one.
    unsafe {
        if libc::prctl(libc::PR_SET_MM, libc::PR_SET_MM_ARG_START, start, 0, 0) == 0 {
            libc::prctl(libc::PR_SET_MM, libc::PR_SET_MM_ARG_END, end, 0, 0);
        }
    }
}

/// The shim's own logging: libcontainer's errors kept for its error reports, or with
/// BERTH_SHIM_LOG=debug (inherited from berthd) libcontainer's steps, with timestamps,
/// in the shim's log: the way to see where container creation spends its time.
fn init_logs() {
    if let Ok(filter) = std::env::var("BERTH_SHIM_LOG") {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_writer(std::io::stderr)
            .with_ansi(false)
            .init();
    } else {
        errlog::install();
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let first = args.next();
    if first.as_deref() == Some("zygote") {
        // Before any logging is set up: each standby sets up its own (its own memfd).
        if let Some(code) = zygote::serve() {
            std::process::exit(code);
        }
        init_logs();
        std::process::exit(standby_main());
    }
    init_logs();
    let code = match first.as_deref() {
        Some("run") => match parse_run(args) {
            Ok(a) => run::main(a),
            Err(e) => {
                eprintln!("berth-shim: {e:#}");
                2
            }
        },
        // Started ahead of need: waits for its `run` arguments on stdin.
        Some("standby") => standby_main(),
        // `zygote` is handled above: it forks standbys.
        Some("exec-helper") => exec::helper_main(args),
        // Holds a new user namespace while berthd writes its id map and opens it
        // (berthd is multi-threaded and cannot unshare one itself).
        Some("userns-hold") => match berth_userns::hold(&args.collect::<Vec<_>>()) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("berth-shim: unshare a user namespace: {e}");
                1
            }
        },
        _ => {
            eprintln!("usage: berth-shim run --id ID --bundle DIR --runtime-root DIR --state-dir DIR --log FILE [--tty] [--stdin] [--stdin-once] [--deferred]\n       berth-shim standby   (the same arguments as a JSON array on stdin)\n       berth-shim zygote    (forks standbys, see zygote.rs)");
            2
        }
    };
    std::process::exit(code);
}
