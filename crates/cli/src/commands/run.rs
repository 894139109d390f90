//! `run`, `create`, `start`, `attach`, `wait`.

use anyhow::{bail, Result};
use bollard::models::{ContainerCreateBody, ContainerCreateResponse};
use serde_json::Value;

use crate::cli::{AttachArgs, CreateArgs, NamesArgs, RunArgs, StartArgs};
use crate::client::{api_status, json_body, ApiError, Client, Query};
use crate::commands::image::pull_image;
use crate::opts::{create_body, Reference};
use crate::stream::{self, RawMode, ResizeTarget, Session};

/// Prints a daemon error the way `docker run` does (prefixed with the program name).
fn print_run_error(e: &anyhow::Error) {
    eprintln!("berth: {e:#}");
}

/// Exit status docker uses for a failed start.
pub fn start_error_code(msg: &str) -> i32 {
    let m = msg.to_ascii_lowercase();
    if m.contains("executable file not found")
        || m.contains("no such file or directory")
        || m.contains("not found in $path")
    {
        127
    } else if m.contains("permission denied") {
        126
    } else {
        125
    }
}

/// `POST /containers/create`, pulling the image once on a 404 (unless --pull=never).
pub async fn create_with_pull(
    c: &Client,
    body: &ContainerCreateBody,
    name: Option<&str>,
    o: &crate::cli::ContainerOpts,
) -> Result<String> {
    let pull = o.pull.as_str();
    let image = body.image.clone().unwrap_or_default();
    if let Some(f) = o.cidfile.as_deref() {
        if std::path::Path::new(f).exists() {
            bail!("container ID file found, make sure the other container isn't running or delete {f}");
        }
    }
    let q = Query::new().opt("name", name).opt("platform", o.platform.as_deref());
    // KernelMemory is gone from the API types after 1.41; the daemon still answers it
    // (with dockerd's deprecation warnings), so it goes in the raw body.
    let mut raw = serde_json::to_value(body)?;
    if let Some(km) = o.kernel_memory.as_deref() {
        raw["HostConfig"]["KernelMemory"] = crate::opts::parse_ram(km)?.into();
    }
    let body = &raw;
    if pull == "always" {
        pull_image(c, &image, true, false).await?;
    }
    let first = c
        .post_json::<ContainerCreateResponse>("/containers/create", &q, Some(json_body(body)?))
        .await;
    let resp = match first {
        Ok(r) => r,
        // Only a missing image is pulled (a 404 can be about a network, too).
        Err(e) if api_status(&e) == Some(404) && pull != "never" && pull != "always" && format!("{e:#}").contains("No such image") => {
            let shown = Reference::parse(&image)
                .map(|r| r.with_default_tag())
                .unwrap_or(image.clone());
            eprintln!("Unable to find image '{shown}' locally");
            pull_image(c, &image, true, false).await?;
            c.post_json::<ContainerCreateResponse>("/containers/create", &q, Some(json_body(body)?))
                .await?
        }
        Err(e) => return Err(e),
    };
    for w in &resp.warnings {
        eprintln!("WARNING: {w}");
    }
    if let Some(f) = o.cidfile.as_deref() {
        std::fs::write(f, &resp.id).map_err(|e| anyhow::anyhow!("failed to write the container ID to the file: {e}"))?;
    }
    Ok(resp.id)
}

pub async fn create(c: &Client, a: CreateArgs) -> Result<i32> {
    let console = if a.opts.tty {
        stream::term_size()
    } else {
        None
    };
    let (body, name) = create_body(&a.opts, true, console)?;
    // `create` keeps the attach flags of a foreground run (docker sets them from -a/-i)
    let mut body = body;
    body.attach_stdout = Some(true);
    body.attach_stderr = Some(true);
    body.attach_stdin = Some(a.opts.interactive);
    body.stdin_once = Some(false);
    match create_with_pull(c, &body, name.as_deref(), &a.opts).await {
        Ok(id) => {
            println!("{id}");
            Ok(0)
        }
        Err(e) => {
            print_run_error(&e);
            Ok(125)
        }
    }
}

/// The end of an attached session: the terminal back to normal, resizing and signal
/// forwarding stopped.
fn release(raw: Option<RawMode>, tasks: [Option<tokio::task::JoinHandle<()>>; 2]) {
    drop(raw);
    for t in tasks.into_iter().flatten() {
        t.abort();
    }
}

fn attach_query(stdin: bool, stdout: bool, stderr: bool, detach_keys: &str) -> Query {
    Query::new()
        .add_if(!detach_keys.is_empty(), "detachKeys", detach_keys)
        .add_if(stderr, "stderr", 1)
        .add_if(stdin, "stdin", 1)
        .add_if(stdout, "stdout", 1)
        .add("stream", 1)
}

pub async fn run(c: &Client, a: RunArgs) -> Result<i32> {
    let o = &a.opts;
    // As the docker CLI: only a terminal attached to our stdin needs one.
    if o.tty && o.interactive && !a.detach && !stream::stdin_is_tty() {
        eprintln!("the input device is not a TTY");
        return Ok(1);
    }
    let console = if o.tty { stream::term_size() } else { None };
    let (body, name) = match create_body(o, a.detach, console) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("berth: {e:#}");
            eprintln!("See 'berth run --help'.");
            return Ok(125);
        }
    };
    let id = match create_with_pull(c, &body, name.as_deref(), o).await {
        Ok(id) => id,
        Err(e) => {
            print_run_error(&e);
            return Ok(125);
        }
    };

    if a.detach {
        let wait = match c.wait_headers(&id, Some("next-exit")).await {
            Ok(w) => w,
            Err(e) => {
                print_run_error(&e);
                return Ok(125);
            }
        };
        if let Err(e) = c.start_container(&id).await {
            wait.abort();
            print_run_error(&e);
            return Ok(start_error_code(&e.to_string()));
        }
        wait.abort();
        println!("{id}");
        return Ok(0);
    }

    let stdin = body.attach_stdin.unwrap_or(false);
    let stdout = body.attach_stdout.unwrap_or(true);
    let stderr = body.attach_stderr.unwrap_or(true);
    let (keys, spelled) = stream::detach_keys(a.detach_keys.as_deref())?;
    // The attach and the wait go out together, the wait on the create's connection
    // as the docker CLI sends it: both are taken before the start, a round trip
    // sooner than one after the other.
    let condition = if o.rm { "removed" } else { "next-exit" };
    let attach_path = format!("/containers/{id}/attach");
    let attach_q = attach_query(stdin, stdout, stderr, &spelled);
    let (hijacked, wait) = tokio::join!(
        c.hijack(&attach_path, &attach_q, None),
        c.wait_headers(&id, Some(condition))
    );
    let (hijacked, wait) = match (hijacked, wait) {
        (Ok(h), Ok(w)) => (h, w),
        (Err(e), w) => {
            if let Ok(w) = w {
                w.abort();
            }
            print_run_error(&e);
            return Ok(125);
        }
        (Ok(_), Err(e)) => {
            print_run_error(&e);
            return Ok(125);
        }
    };
    let raw = if o.tty && stdin {
        RawMode::enable()
    } else {
        None
    };
    let session = Session::start(hijacked, o.tty, stdin, Some(keys));
    if let Err(e) = c.start_container(&id).await {
        drop(raw);
        print_run_error(&e);
        let code = start_error_code(&e.to_string());
        if o.rm {
            // the daemon removes it; wait for that like docker does, but not forever
            let _ = tokio::time::timeout(std::time::Duration::from_secs(5), wait.result()).await;
        } else {
            wait.abort();
        }
        return Ok(code);
    }
    let resizer = o.tty.then(|| {
        stream::spawn_resizer(c.clone(), ResizeTarget::Container(id.clone()), o.sig_proxy)
    });
    let proxy = (o.sig_proxy && !o.tty).then(|| stream::spawn_sig_proxy(c.clone(), id.clone()));

    let streamed = session.finish().await;
    if matches!(streamed, Ok(stream::Ended::Detached)) {
        // The container goes on; so does its `--rm`, when it exits.
        wait.abort();
        release(raw, [resizer, proxy]);
        return Ok(0);
    }
    let status = wait.result().await;
    release(raw, [resizer, proxy]);
    if let Err(e) = streamed {
        if std::env::var_os("BERTH_DEBUG").is_some() {
            eprintln!("attach stream: {e:#}");
        }
    }
    match status {
        Ok((code, None)) => Ok(code as i32),
        Ok((_, Some(msg))) => {
            eprintln!("berth: Error response from daemon: {msg}");
            Ok(125)
        }
        Err(e) => {
            print_run_error(&e);
            Ok(125)
        }
    }
}

async fn inspect_value(c: &Client, id: &str) -> Result<Value> {
    c.get_json::<Value>(&format!("/containers/{id}/json"), &Query::new())
        .await
}

pub async fn start(c: &Client, a: StartArgs) -> Result<i32> {
    if a.attach || a.interactive {
        if a.containers.len() > 1 {
            bail!("you cannot start and attach multiple containers at once");
        }
        let name = &a.containers[0];
        let info = inspect_value(c, name).await?;
        let id = info["Id"].as_str().unwrap_or(name).to_string();
        let tty = info["Config"]["Tty"].as_bool().unwrap_or(false);
        let open_stdin = info["Config"]["OpenStdin"].as_bool().unwrap_or(false);
        let stdin = a.interactive && open_stdin;
        let (keys, spelled) = stream::detach_keys(a.detach_keys.as_deref())?;
        let h = c
            .hijack(
                &format!("/containers/{id}/attach"),
                &attach_query(stdin, true, true, &spelled),
                None,
            )
            .await?;
        let raw = if tty && stdin {
            RawMode::enable()
        } else {
            None
        };
        let session = Session::start(h, tty, stdin, Some(keys));
        let wait = c.wait_headers(&id, Some("next-exit")).await?;
        if let Err(e) = c.start_container(&id).await {
            drop(raw);
            wait.abort();
            eprintln!("{e:#}");
            return Ok(1);
        }
        let resizer = tty
            .then(|| stream::spawn_resizer(c.clone(), ResizeTarget::Container(id.clone()), true));
        let proxy = (!tty).then(|| stream::spawn_sig_proxy(c.clone(), id.clone()));
        let ended = session.finish().await;
        if matches!(ended, Ok(stream::Ended::Detached)) {
            wait.abort();
            release(raw, [resizer, proxy]);
            return Ok(0);
        }
        let status = wait.result().await;
        release(raw, [resizer, proxy]);
        let (code, err) = status?;
        if let Some(m) = err {
            bail!(ApiError {
                status: 500,
                message: m
            });
        }
        return Ok(code as i32);
    }
    let mut failed = false;
    for name in &a.containers {
        match c.start_container(name).await {
            Ok(()) => println!("{name}"),
            Err(e) => {
                eprintln!("{e:#}");
                failed = true;
            }
        }
    }
    if failed {
        eprintln!(
            "Error: failed to start containers: {}",
            a.containers.join(", ")
        );
    }
    Ok(if failed { 1 } else { 0 })
}

pub async fn attach(c: &Client, a: AttachArgs) -> Result<i32> {
    let info = inspect_value(c, &a.container).await?;
    let id = info["Id"].as_str().unwrap_or(&a.container).to_string();
    if !info["State"]["Running"].as_bool().unwrap_or(false) {
        bail!("You cannot attach to a stopped container, start it first");
    }
    if info["State"]["Paused"].as_bool().unwrap_or(false) {
        bail!("You cannot attach to a paused container, unpause it first");
    }
    let wait = c.wait_headers(&id, None).await?;
    let tty = info["Config"]["Tty"].as_bool().unwrap_or(false);
    let stdin = !a.no_stdin && info["Config"]["OpenStdin"].as_bool().unwrap_or(false);
    let (keys, spelled) = stream::detach_keys(a.detach_keys.as_deref())?;
    let h = c
        .hijack(
            &format!("/containers/{id}/attach"),
            &attach_query(stdin, true, true, &spelled),
            None,
        )
        .await?;
    let raw = if tty && stdin {
        RawMode::enable()
    } else {
        None
    };
    let session = Session::start(h, tty, stdin, Some(keys));
    let resizer = tty.then(|| {
        stream::spawn_resizer(c.clone(), ResizeTarget::Container(id.clone()), a.sig_proxy)
    });
    let proxy = (a.sig_proxy && !tty).then(|| stream::spawn_sig_proxy(c.clone(), id.clone()));
    let ended = session.finish().await;
    if matches!(ended, Ok(stream::Ended::Detached)) {
        // The docker CLI's `attach` reports a detach as an error.
        wait.abort();
        release(raw, [resizer, proxy]);
        eprintln!("read escape sequence");
        return Ok(1);
    }
    let status = wait.result().await;
    release(raw, [resizer, proxy]);
    let (code, _) = status?;
    Ok(code as i32)
}

pub async fn wait(c: &Client, a: NamesArgs) -> Result<i32> {
    let mut rc = 0;
    for name in &a.containers {
        let r = async {
            let w = c.wait_headers(name, None).await?;
            w.result().await
        }
        .await;
        match r {
            Ok((code, _)) => println!("{code}"),
            Err(e) => {
                eprintln!("{e:#}");
                rc = 1;
            }
        }
    }
    Ok(rc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_failure_codes() {
        assert_eq!(
            start_error_code("exec: \"nosuch\": executable file not found in $PATH: unknown"),
            127
        );
        assert_eq!(start_error_code("open /x: no such file or directory"), 127);
        assert_eq!(start_error_code("exec /etc/passwd: permission denied"), 126);
        assert_eq!(start_error_code("something else"), 125);
    }

    #[test]
    fn attach_queries() {
        assert_eq!(
            attach_query(false, true, true, "").encode(),
            "stderr=1&stdout=1&stream=1"
        );
        // The docker CLI sends its detach keys first.
        assert_eq!(
            attach_query(true, true, true, "ctrl-p,ctrl-q").encode(),
            "detachKeys=ctrl-p%2Cctrl-q&stderr=1&stdin=1&stdout=1&stream=1"
        );
    }
}
