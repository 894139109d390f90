//! berth-shim: owns one container (see README.md).

mod cgroupfs;
mod confine;
mod errlog;
mod exec;
mod io;
mod launch;
mod log;
mod run;
mod seccomp;

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

fn main() {
    // BERTH_SHIM_LOG=debug (inherited from berthd) traces libcontainer's steps, with
    // timestamps, into the shim's log: the way to see where container creation spends
    // its time.
    if let Ok(filter) = std::env::var("BERTH_SHIM_LOG") {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_writer(std::io::stderr)
            .with_ansi(false)
            .init();
    } else {
        errlog::install();
    }
    let mut args = std::env::args().skip(1);
    let code = match args.next().as_deref() {
        Some("run") => match parse_run(args) {
            Ok(a) => run::main(a),
            Err(e) => {
                eprintln!("berth-shim: {e:#}");
                2
            }
        },
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
            eprintln!("usage: berth-shim run --id ID --bundle DIR --runtime-root DIR --state-dir DIR --log FILE [--tty] [--stdin] [--stdin-once] [--deferred]");
            2
        }
    };
    std::process::exit(code);
}
