//! Image commands: images, rmi, tag, import, pull, push, save, load, history,
//! commit, image inspect/prune.

use std::io::Write;

use anyhow::{bail, Context, Result};
use bollard::models::ImageSummary;
use http::Method;
use serde_json::Value;

use crate::cli::{
    CommitArgs, HistoryArgs, ImagesArgs, ImportArgs, LoadArgs, PruneArgs, PullArgs, PushArgs,
    RmiArgs, SaveArgs,
};
use crate::client::{empty, filters_json, next_chunk, reader_body, Client, LineReader, Query};
use crate::commands::auth::registry_auth_header;
use crate::commands::confirm;
use crate::format::{ago, ellipsis, human_size_prec, print_table, short_id, Template};
use crate::opts::Reference;
use crate::progress;
use crate::stream::{stderr_is_tty, stdout_is_tty};

/// Pulls `image` (`POST /images/create?fromImage=..&tag=..`) rendering progress.
pub async fn pull_image(c: &Client, image: &str, to_stderr: bool, quiet: bool) -> Result<()> {
    let r = Reference::parse(image)?;
    let tag = r
        .digest
        .clone()
        .or(r.tag.clone())
        .unwrap_or_else(|| "latest".into());
    let q = Query::new().add("fromImage", r.full_name()).add("tag", tag);
    let resp = c
        .request(
            Method::POST,
            "/images/create",
            &q,
            &[("X-Registry-Auth", registry_auth_header(image))],
            empty(),
        )
        .await?;
    let tty = if to_stderr {
        stderr_is_tty()
    } else {
        stdout_is_tty()
    };
    progress::render(LineReader::new(resp), tty, to_stderr, quiet).await?;
    Ok(())
}

pub async fn pull(c: &Client, a: PullArgs) -> Result<i32> {
    let r = Reference::parse(&a.image)?;
    if r.tag.is_none() && r.digest.is_none() && !a.all_tags {
        println!("Using default tag: latest");
    }
    pull_image(c, &a.image, false, a.quiet).await?;
    let shown = match (&r.tag, &r.digest) {
        (_, Some(d)) => format!("{}@{d}", r.full_name()),
        (Some(t), None) => format!("{}:{t}", r.full_name()),
        (None, None) => format!("{}:latest", r.full_name()),
    };
    println!("{shown}");
    Ok(0)
}

pub async fn push(c: &Client, a: PushArgs) -> Result<i32> {
    let r = Reference::parse(&a.image)?;
    if r.tag.is_none() && r.digest.is_none() {
        println!("Using default tag: latest");
    }
    let tag = r.tag.clone().unwrap_or_else(|| "latest".into());
    let resp = c
        .request(
            Method::POST,
            &format!("/images/{}/push", r.familiar_name()),
            &Query::new().add("tag", tag),
            &[("X-Registry-Auth", registry_auth_header(&a.image))],
            empty(),
        )
        .await?;
    progress::render(LineReader::new(resp), stdout_is_tty(), false, a.quiet).await?;
    if a.quiet {
        println!("{}", a.image);
    }
    Ok(0)
}

fn images_filters(a: &ImagesArgs) -> Vec<String> {
    let mut f = a.filter.clone();
    if let Some(r) = &a.repository {
        f.push(format!("reference={r}"));
    }
    f
}

pub async fn images(c: &Client, a: ImagesArgs) -> Result<i32> {
    let q = Query::new()
        .add_if(a.all, "all", 1)
        .opt("filters", filters_json(&images_filters(&a)));
    let list: Vec<ImageSummary> = c.get_json("/images/json", &q).await?;
    if a.quiet {
        let mut seen = Vec::new();
        for i in &list {
            let id = if a.no_trunc {
                i.id.clone()
            } else {
                short_id(&i.id)
            };
            if !seen.contains(&id) {
                println!("{id}");
                seen.push(id);
            }
        }
        return Ok(0);
    }
    let mut rows_data = Vec::new();
    for i in &list {
        let id = if a.no_trunc {
            i.id.clone()
        } else {
            short_id(&i.id)
        };
        let tags: Vec<(String, String)> =
            if i.repo_tags.is_empty() || i.repo_tags.iter().all(|t| t == "<none>:<none>") {
                let repo = i
                    .repo_digests
                    .first()
                    .and_then(|d| d.split_once('@').map(|(r, _)| r.to_string()))
                    .unwrap_or_else(|| "<none>".into());
                vec![(repo, "<none>".into())]
            } else {
                i.repo_tags
                    .iter()
                    .map(|t| match t.rfind(':') {
                        Some(p) if !t[p + 1..].contains('/') => {
                            (t[..p].to_string(), t[p + 1..].to_string())
                        }
                        _ => (t.clone(), "<none>".into()),
                    })
                    .collect()
            };
        for (repo, tag) in tags {
            let digest = i
                .repo_digests
                .iter()
                .find(|d| d.starts_with(&format!("{repo}@")))
                .and_then(|d| d.split_once('@').map(|(_, d)| d.to_string()))
                .unwrap_or_else(|| "<none>".into());
            rows_data.push(serde_json::json!({
                "Repository": repo,
                "Tag": tag,
                "Digest": digest,
                "ID": id,
                "CreatedSince": ago(i.created),
                "CreatedAt": chrono::DateTime::from_timestamp(i.created, 0).map(|t| t.to_string()).unwrap_or_default(),
                "Size": human_size_prec(i.size as f64, 3),
                "Containers": if i.containers < 0 { "N/A".to_string() } else { i.containers.to_string() },
            }));
        }
    }
    if let Some(f) = &a.format {
        let t = Template::parse(f)?;
        if t.table {
            println!(
                "{}",
                t.header(&[
                    ("ID", "IMAGE ID"),
                    ("CreatedSince", "CREATED"),
                    ("CreatedAt", "CREATED AT")
                ])
            );
        }
        for r in &rows_data {
            println!("{}", t.render(r));
        }
        return Ok(0);
    }
    let mut rows = vec![if a.digests {
        vec!["REPOSITORY", "TAG", "DIGEST", "IMAGE ID", "CREATED", "SIZE"]
    } else {
        vec!["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"]
    }
    .into_iter()
    .map(String::from)
    .collect::<Vec<_>>()];
    for r in &rows_data {
        let s = |k: &str| r[k].as_str().unwrap_or("").to_string();
        let mut row = vec![s("Repository"), s("Tag")];
        if a.digests {
            row.push(s("Digest"));
        }
        row.extend([s("ID"), s("CreatedSince"), s("Size")]);
        rows.push(row);
    }
    print_table(&rows);
    Ok(0)
}

pub async fn rmi(c: &Client, a: RmiArgs) -> Result<i32> {
    let mut rc = 0;
    for name in &a.images {
        let q = Query::new()
            .add_if(a.force, "force", 1)
            .add_if(a.no_prune, "noprune", 1);
        match c
            .request(Method::DELETE, &format!("/images/{name}"), &q, &[], empty())
            .await
        {
            Ok(resp) => {
                use http_body_util::BodyExt;
                let bytes = resp.into_body().collect().await?.to_bytes();
                let items: Vec<Value> = serde_json::from_slice(&bytes).unwrap_or_default();
                for it in items {
                    if let Some(u) = it.get("Untagged").and_then(Value::as_str) {
                        println!("Untagged: {u}");
                    }
                    if let Some(d) = it.get("Deleted").and_then(Value::as_str) {
                        println!("Deleted: {d}");
                    }
                }
            }
            Err(e) => {
                eprintln!(
                    "Error response from daemon: {}",
                    crate::commands::api_message(&e)
                );
                rc = 1;
            }
        }
    }
    Ok(rc)
}

pub async fn tag(c: &Client, source: &str, target: &str) -> Result<i32> {
    let r = Reference::parse(target)?;
    if r.digest.is_some() {
        bail!("refusing to create a tag with a digest reference");
    }
    let q = Query::new()
        .add("repo", r.full_name())
        .add("tag", r.tag.clone().unwrap_or_else(|| "latest".into()));
    c.request(
        Method::POST,
        &format!("/images/{source}/tag"),
        &q,
        &[],
        empty(),
    )
    .await?;
    Ok(0)
}

/// `import`: streams the tarball to `POST /images/create?fromSrc=-` (the tag stays inside `repo`).
pub async fn import(c: &Client, a: ImportArgs) -> Result<i32> {
    let mut q = Query::new();
    for ch in &a.change {
        q = q.add("changes", ch);
    }
    let is_url = a.file.starts_with("http://") || a.file.starts_with("https://");
    q = q.add("fromSrc", if is_url { a.file.as_str() } else { "-" });
    q = q.opt("message", a.message.as_deref());
    if let Some(r) = &a.reference {
        Reference::parse(r)?;
        q = q.add("repo", r);
    }
    let body = if is_url {
        empty()
    } else {
        reader_body(&a.file)?
    };
    let resp = c
        .request(
            Method::POST,
            "/images/create",
            &q,
            &[("Content-Type", "text/plain".into())],
            body,
        )
        .await?;
    let mut reader = LineReader::new(resp);
    while let Some(msg) = reader.next_json::<Value>().await? {
        if let Some(e) = progress::stream_error(&msg) {
            return Err(e.into());
        }
        if let Some(s) = msg.get("status").and_then(Value::as_str) {
            if msg.get("id").is_none()
                && msg
                    .get("progressDetail")
                    .and_then(|d| d.get("current"))
                    .is_none()
            {
                println!("{s}");
            }
        }
    }
    Ok(0)
}

pub async fn save(c: &Client, a: SaveArgs) -> Result<i32> {
    if a.output.is_none() && stdout_is_tty() {
        bail!("cowardly refusing to save to a terminal. Use the -o flag or redirect");
    }
    let mut q = Query::new();
    for n in &a.images {
        q = q.add("names", n);
    }
    let resp = c
        .request(Method::GET, "/images/get", &q, &[], empty())
        .await?;
    let mut body = resp.into_body();
    let mut out: Box<dyn Write> = match &a.output {
        Some(p) => Box::new(
            std::fs::File::create(p).with_context(|| format!("failed to save image: open {p}"))?,
        ),
        None => Box::new(std::io::stdout().lock()),
    };
    while let Some(chunk) = next_chunk(&mut body).await? {
        out.write_all(&chunk)?;
    }
    out.flush()?;
    Ok(0)
}

pub async fn load(c: &Client, a: LoadArgs) -> Result<i32> {
    let src = a.input.clone().unwrap_or_else(|| "-".into());
    if src == "-" && crate::stream::stdin_is_tty() {
        bail!("requested load from stdin, but stdin is empty");
    }
    let quiet = a.quiet || !stdout_is_tty();
    let resp = c
        .request(
            Method::POST,
            "/images/load",
            &Query::new().add("quiet", if quiet { 1 } else { 0 }),
            &[("Content-Type", "application/x-tar".into())],
            reader_body(&src)?,
        )
        .await?;
    progress::render(LineReader::new(resp), stdout_is_tty(), false, false).await?;
    Ok(0)
}

pub async fn history(c: &Client, a: HistoryArgs) -> Result<i32> {
    let items: Vec<Value> = c
        .get_json(&format!("/images/{}/history", a.image), &Query::new())
        .await?;
    if a.quiet {
        for it in &items {
            let id = it["Id"].as_str().unwrap_or("");
            if id != "<missing>" {
                println!(
                    "{}",
                    if a.no_trunc {
                        id.to_string()
                    } else {
                        short_id(id)
                    }
                );
            }
        }
        return Ok(0);
    }
    let mut ctxs = Vec::new();
    let mut rows = vec![vec!["IMAGE", if a.human { "CREATED" } else { "CREATED AT" }, "CREATED BY", "SIZE", "COMMENT"]
        .into_iter()
        .map(String::from)
        .collect::<Vec<_>>()];
    for it in &items {
        let id = it["Id"].as_str().unwrap_or("<missing>");
        let id = if id == "<missing>" || a.no_trunc {
            id.to_string()
        } else {
            short_id(id)
        };
        // Go's time.RFC3339 ("Z" for UTC)
        let created_at = chrono::DateTime::from_timestamp(it["Created"].as_i64().unwrap_or(0), 0)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            .unwrap_or_default();
        let created = if a.human { ago(it["Created"].as_i64().unwrap_or(0)) } else { created_at.clone() };
        let by = it["CreatedBy"].as_str().unwrap_or("").replace('\t', " ");
        let by = if a.no_trunc { by } else { ellipsis(&by, 45) };
        let size = it["Size"].as_i64().unwrap_or(0);
        let size = if a.human {
            human_size_prec(size as f64, 3)
        } else {
            size.to_string()
        };
        let comment = it["Comment"].as_str().unwrap_or("").to_string();
        ctxs.push(serde_json::json!({
            "ID": id, "CreatedSince": created, "CreatedAt": created_at, "CreatedBy": by, "Size": size, "Comment": comment,
        }));
        rows.push(vec![id, created, by, size, comment]);
    }
    if let Some(f) = &a.format {
        // The docker CLI's fields and headers.
        let headers = [("ID", "IMAGE"), ("CreatedSince", "CREATED"), ("CreatedAt", "CREATED AT"), ("CreatedBy", "CREATED BY")];
        print!("{}", crate::format::render_all(f, &headers, &ctxs)?);
        return Ok(0);
    }
    print_table(&rows);
    Ok(0)
}

pub async fn commit(c: &Client, a: CommitArgs) -> Result<i32> {
    let mut q = Query::new().opt("author", a.author.as_deref());
    for ch in &a.change {
        q = q.add("changes", ch);
    }
    q = q
        .opt("comment", a.message.as_deref())
        .add("container", &a.container);
    if !a.pause {
        q = q.add("pause", 0);
    }
    if let Some(r) = &a.reference {
        let r = Reference::parse(r)?;
        q = q
            .add("repo", r.full_name())
            .add("tag", r.tag.clone().unwrap_or_else(|| "latest".into()));
    }
    let v: Value = c.post_json("/commit", &q, None).await?;
    println!("{}", v["Id"].as_str().unwrap_or(""));
    Ok(0)
}

pub async fn inspect(c: &Client, names: &[String], format: Option<&str>) -> Result<i32> {
    super::inspect_each(
        c,
        names,
        format,
        |n| (format!("/images/{n}/json"), Query::new()),
        |n, e| {
            eprintln!("Error: No such image: {n}");
            if crate::client::api_status(e) != Some(404) {
                eprintln!("{e:#}");
            }
        },
    )
    .await
}

pub async fn prune(c: &Client, a: PruneArgs) -> Result<i32> {
    let warning = if a.all {
        "WARNING! This will remove all images without at least one container associated to them."
    } else {
        "WARNING! This will remove all dangling images."
    };
    if !a.force && !confirm(warning)? {
        return Ok(0);
    }
    let mut f = a.filter.clone();
    f.push(format!("dangling={}", if a.all { "false" } else { "true" }));
    let v: Value = c
        .post_json(
            "/images/prune",
            &Query::new().opt("filters", filters_json(&f)),
            None,
        )
        .await?;
    if let Some(list) = v["ImagesDeleted"].as_array().filter(|l| !l.is_empty()) {
        println!("Deleted Images:");
        for it in list {
            if let Some(u) = it["Untagged"].as_str() {
                println!("untagged: {u}");
            }
            if let Some(d) = it["Deleted"].as_str() {
                println!("deleted: {d}");
            }
        }
        println!();
    }
    println!(
        "Total reclaimed space: {}",
        crate::format::human_size(v["SpaceReclaimed"].as_i64().unwrap_or(0))
    );
    Ok(0)
}
