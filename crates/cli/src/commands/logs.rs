//! `logs`.

use anyhow::Result;
use http::Method;
use hyper::body::Incoming;
use serde_json::Value;
use tokio::io::AsyncWriteExt;

use crate::cli::LogsArgs;
use crate::client::{empty, next_chunk, Client, Query};
use crate::opts::parse_timestamp;
use crate::stream::copy_output;

/// Copies a (multiplexed or raw) body to stdout/stderr.
pub async fn copy_body(mut body: Incoming, tty: bool) -> Result<()> {
    let (mut w, r) = tokio::io::duplex(64 * 1024);
    let feeder = tokio::spawn(async move {
        while let Some(chunk) = next_chunk(&mut body).await? {
            w.write_all(&chunk).await?;
        }
        w.shutdown().await?;
        anyhow::Ok(())
    });
    let out = copy_output(r, tty).await;
    feeder.await??;
    out
}

pub async fn logs(c: &Client, a: LogsArgs) -> Result<i32> {
    let info: Value = c
        .get_json(&format!("/containers/{}/json", a.container), &Query::new())
        .await?;
    let id = info["Id"].as_str().unwrap_or(&a.container).to_string();
    let tty = info["Config"]["Tty"].as_bool().unwrap_or(false);
    let now = chrono::Utc::now().timestamp();
    let since = a
        .since
        .as_deref()
        .map(|s| parse_timestamp(s, now))
        .transpose()?;
    let until = a
        .until
        .as_deref()
        .map(|s| parse_timestamp(s, now))
        .transpose()?;
    let q = Query::new()
        .add_if(a.details, "details", 1)
        .add_if(a.follow, "follow", 1)
        .opt("since", since)
        .add("stderr", 1)
        .add("stdout", 1)
        .add("tail", &a.tail)
        .add_if(a.timestamps, "timestamps", 1)
        .opt("until", until);
    let resp = c
        .request(
            Method::GET,
            &format!("/containers/{id}/logs"),
            &q,
            &[],
            empty(),
        )
        .await?;
    copy_body(resp.into_body(), tty).await?;
    Ok(0)
}
