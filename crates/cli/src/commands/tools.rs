//! Commands that need no daemon connection: `daemon`, `registry`, `debug`.

use anyhow::{Context, Result};

use crate::cli::{DebugCmd, RegistryCmd};

/// `berth daemon ARGS...`: replaces this process with berthd.
pub fn exec_daemon(args: &[String]) -> Result<i32> {
    use std::os::unix::process::CommandExt;
    let exe = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(|d| d.join("berthd")))
        .filter(|p| p.is_file())
        .unwrap_or_else(|| "berthd".into());
    let err = std::process::Command::new(&exe).args(args).exec();
    Err(err).with_context(|| format!("exec {}", exe.display()))
}

#[cfg(feature = "registry")]
pub async fn registry(cmd: RegistryCmd) -> Result<i32> {
    match cmd {
        RegistryCmd::Serve {
            addr,
            root,
            htpasswd,
            tls_cert,
            tls_key,
        } => {
            berth_registry::serve(berth_registry::ServeConfig {
                addr,
                root,
                htpasswd,
                tls_cert,
                tls_key,
            })
            .await?;
            Ok(0)
        }
        RegistryCmd::GarbageCollect { root, dry_run } => {
            let report = berth_registry::garbage_collect(&root, dry_run)?;
            for b in &report.blobs_removed {
                if dry_run {
                    println!("blob eligible for deletion: {b}");
                } else {
                    println!("blob deleted: {b}");
                }
            }
            println!(
                "{} blobs {}, {} freed",
                report.blobs_removed.len(),
                if dry_run {
                    "eligible for deletion"
                } else {
                    "deleted"
                },
                crate::format::human_size(report.bytes_freed as i64)
            );
            Ok(0)
        }
    }
}

#[cfg(not(feature = "registry"))]
pub async fn registry(_cmd: RegistryCmd) -> Result<i32> {
    anyhow::bail!("this berth was built without the `registry` feature")
}

#[cfg(feature = "dockerfile")]
pub fn debug(cmd: DebugCmd) -> Result<i32> {
    match cmd {
        DebugCmd::ParseDockerfile { file } => match berth_dockerfile::parse_and_dump(&file) {
            Ok(s) => {
                print!("{s}");
                Ok(0)
            }
            Err(e) => {
                eprintln!("{e}");
                Ok(1)
            }
        },
    }
}

#[cfg(not(feature = "dockerfile"))]
pub fn debug(_cmd: DebugCmd) -> Result<i32> {
    anyhow::bail!("this berth was built without the `dockerfile` feature")
}
