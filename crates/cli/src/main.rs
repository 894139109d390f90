//! `berth`: the command-line client of the berth container engine.

mod cli;
mod client;
mod commands;
mod context;
mod format;
mod opts;
mod progress;
mod ssh;
mod stream;

use clap::Parser;

fn exit(code: i32) -> ! {
    use std::io::Write;
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    std::process::exit(code)
}

/// `berth ps | head`: once the reader of stdout is gone, end quietly as the docker CLI
/// does (killed by SIGPIPE: status 141) instead of panicking in `println!`. SIGPIPE
/// itself stays ignored, so a daemon connection that closes is an error, not death.
fn quiet_broken_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let msg = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if msg.contains("failed printing to stdout") && msg.contains("Broken pipe") {
            std::process::exit(128 + libc::SIGPIPE);
        }
        default(info)
    }));
}

fn main() {
    quiet_broken_pipe();
    let cli = cli::Cli::parse();
    if let Some(r) = commands::run_offline(&cli) {
        match r {
            Ok(code) => exit(code),
            Err(e) => {
                eprintln!("{e:#}");
                exit(1)
            }
        }
    }
    // One thread: a CLI call is a few sequential requests and a stream or two, and
    // cross-thread wake-ups only add latency.
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start runtime: {e}");
            exit(1)
        }
    };
    let result = rt.block_on(commands::dispatch(cli));
    match result {
        Ok(code) => exit(code),
        Err(e) => {
            eprintln!("{e:#}");
            exit(1)
        }
    }
}
