//! `exec`.

use anyhow::{Context, Result};
use serde_json::{json, Value};

use crate::cli::ExecArgs;
use crate::client::{json_body, Client, Query};
use crate::opts::{expand_env, parse_env_file};
use crate::stream::{self, RawMode, ResizeTarget, Session};

pub async fn exec(c: &Client, a: ExecArgs) -> Result<i32> {
    let container = &a.args[0];
    let cmd = a.args[1..].to_vec();
    if a.tty && a.interactive && !stream::stdin_is_tty() {
        eprintln!("the input device is not a TTY");
        return Ok(1);
    }
    let info: Value = c
        .get_json(&format!("/containers/{container}/json"), &Query::new())
        .await?;
    if !info["State"]["Running"].as_bool().unwrap_or(false) {
        anyhow::bail!(crate::client::ApiError {
            status: 409,
            message: format!(
                "container {} is not running",
                info["Id"].as_str().unwrap_or(container)
            ),
        });
    }
    let mut env = Vec::new();
    for f in &a.env_file {
        let content = std::fs::read_to_string(f).with_context(|| format!("open {f}"))?;
        env.extend(parse_env_file(&content, |k| std::env::var(k).ok())?);
    }
    for e in &a.env {
        env.push(expand_env(e, |k| std::env::var(k).ok())?);
    }
    let attach = !a.detach;
    let (keys, spelled) = crate::stream::detach_keys(a.detach_keys.as_deref())?;
    let body = json!({
        "User": a.user.clone().unwrap_or_default(),
        "Privileged": a.privileged,
        "Tty": a.tty,
        "AttachStdin": a.interactive && attach,
        "AttachStderr": attach,
        "AttachStdout": attach,
        "Detach": a.detach,
        "DetachKeys": spelled,
        "Env": if env.is_empty() { Value::Null } else { json!(env) },
        "WorkingDir": a.workdir.clone().unwrap_or_default(),
        "Cmd": cmd,
    });
    let created: Value = c
        .post_json(
            &format!("/containers/{container}/exec"),
            &Query::new(),
            Some(json_body(&body)?),
        )
        .await?;
    let exec_id = created["Id"].as_str().unwrap_or_default().to_string();
    if a.detach {
        let start = json!({"Detach": true, "Tty": a.tty});
        let _: Value = c
            .post_json(
                &format!("/exec/{exec_id}/start"),
                &Query::new(),
                Some(json_body(&start)?),
            )
            .await?;
        return Ok(0);
    }
    let start = json!({"Detach": false, "Tty": a.tty});
    let h = c
        .hijack(
            &format!("/exec/{exec_id}/start"),
            &Query::new(),
            Some(json_body(&start)?),
        )
        .await?;
    let raw = if a.tty && a.interactive {
        RawMode::enable()
    } else {
        None
    };
    let session = Session::start(h, a.tty, a.interactive, Some(keys));
    let resizer = a
        .tty
        .then(|| stream::spawn_resizer(c.clone(), ResizeTarget::Exec(exec_id.clone()), false));
    let r = session.finish().await;
    drop(raw);
    if let Some(r) = resizer {
        r.abort();
    }
    if r? == crate::stream::Ended::Detached {
        // As the docker CLI: a detach from `exec -it` is reported and exits 1.
        eprintln!("read escape sequence");
        return Ok(1);
    }
    let inspect: Value = c
        .get_json(&format!("/exec/{exec_id}/json"), &Query::new())
        .await?;
    Ok(inspect["ExitCode"].as_i64().unwrap_or(0) as i32)
}
