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

fn main() {
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
