//! Container commands: ps, stop/restart, kill, rm, inspect, top, pause/unpause,
//! rename, port, stats, prune.

use anyhow::Result;
use http::Method;
use serde_json::{json, Value};

use crate::cli::{InspectArgs, KillArgs, PruneArgs, PsArgs, RmArgs, StatsArgs, StopArgs, TopArgs};
use crate::client::{api_status, empty, filters_json, Client, Query};
use crate::commands::{api_message, confirm, print_inspect};
use crate::format::{ago, bytes_size, ellipsis, go_quote, human_size, human_size_prec, print_table, short_id, table};

fn names_of(c: &Value) -> Vec<String> {
    c["Names"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(|n| n.trim_start_matches('/'))
                .filter(|n| !n.contains('/'))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// "0.0.0.0:8080->80/tcp, 443/tcp" from a ps entry's Ports.
pub fn format_ports(ports: &Value) -> String {
    let mut list: Vec<&Value> = ports
        .as_array()
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    list.sort_by_key(|p| {
        (
            p["PrivatePort"].as_i64().unwrap_or(0),
            p["PublicPort"].as_i64().unwrap_or(0),
        )
    });
    let mut out: Vec<String> = Vec::new();
    for p in list {
        let private = p["PrivatePort"].as_i64().unwrap_or(0);
        let typ = p["Type"].as_str().unwrap_or("tcp");
        let s = match p["PublicPort"].as_i64() {
            Some(public) if public != 0 => {
                let ip = p["IP"].as_str().unwrap_or("");
                let ip = if ip.contains(':') {
                    format!("[{ip}]")
                } else {
                    ip.to_string()
                };
                format!("{ip}:{public}->{private}/{typ}")
            }
            _ => format!("{private}/{typ}"),
        };
        if !out.contains(&s) {
            out.push(s);
        }
    }
    out.join(", ")
}

fn ps_context(c: &Value, no_trunc: bool) -> Value {
    let id = c["Id"].as_str().unwrap_or("");
    let mut image = c["Image"].as_str().unwrap_or("").to_string();
    if image.starts_with("sha256:") && !no_trunc {
        image = short_id(&image);
    }
    let command = c["Command"].as_str().unwrap_or("");
    let command = if no_trunc {
        command.to_string()
    } else {
        ellipsis(command, 20)
    };
    let created = c["Created"].as_i64().unwrap_or(0);
    // Zero sizes are left out of the list (Go's omitempty).
    let (rw, root) = (c["SizeRw"].as_i64().unwrap_or(0), c["SizeRootFs"].as_i64().unwrap_or(0));
    let size = if root > 0 {
        format!("{} (virtual {})", human_size_prec(rw as f64, 3), human_size_prec(root as f64, 3))
    } else {
        human_size_prec(rw as f64, 3)
    };
    let labels = c["Labels"]
        .as_object()
        .map(|m| {
            let mut v: Vec<String> = m
                .iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                .collect();
            v.sort();
            v.join(",")
        })
        .unwrap_or_default();
    let networks = c["NetworkSettings"]["Networks"]
        .as_object()
        .map(|m| m.keys().cloned().collect::<Vec<_>>().join(","))
        .unwrap_or_default();
    let mounts = c["Mounts"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|m| {
                    m["Name"]
                        .as_str()
                        .filter(|s| !s.is_empty())
                        .or(m["Source"].as_str())
                        .unwrap_or("")
                        .to_string()
                })
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();
    json!({
        "ID": if no_trunc { id.to_string() } else { short_id(id) },
        "Image": image,
        "Command": go_quote(&command),
        "CreatedAt": chrono::DateTime::from_timestamp(created, 0).map(|t| t.format("%Y-%m-%d %H:%M:%S +0000 UTC").to_string()).unwrap_or_default(),
        "RunningFor": ago(created),
        "Ports": format_ports(&c["Ports"]),
        "State": c["State"].as_str().unwrap_or(""),
        "Status": c["Status"].as_str().unwrap_or(""),
        "Size": size,
        "Names": names_of(c).join(","),
        "Labels": labels,
        "Mounts": mounts,
        "Networks": networks,
    })
}

pub async fn ps(c: &Client, a: PsArgs) -> Result<i32> {
    let limit = if a.latest {
        Some(1)
    } else {
        a.last.filter(|n| *n > 0)
    };
    let q = Query::new()
        .add_if(a.all || limit.is_some(), "all", 1)
        .opt("filters", filters_json(&a.filter))
        .opt("limit", limit)
        .add_if(a.size, "size", 1);
    let list: Vec<Value> = c.get_json("/containers/json", &q).await?;
    if a.quiet {
        for it in &list {
            let id = it["Id"].as_str().unwrap_or("");
            println!(
                "{}",
                if a.no_trunc {
                    id.to_string()
                } else {
                    short_id(id)
                }
            );
        }
        return Ok(0);
    }
    let ctxs: Vec<Value> = list.iter().map(|it| ps_context(it, a.no_trunc)).collect();
    if let Some(f) = &a.format {
        print!("{}", crate::format::render_all(f, &[("ID", "CONTAINER ID"), ("RunningFor", "CREATED"), ("CreatedAt", "CREATED AT")], &ctxs)?);
        return Ok(0);
    }
    let mut header = vec![
        "CONTAINER ID",
        "IMAGE",
        "COMMAND",
        "CREATED",
        "STATUS",
        "PORTS",
        "NAMES",
    ];
    if a.size {
        header.push("SIZE");
    }
    let mut rows = vec![header.into_iter().map(String::from).collect::<Vec<_>>()];
    for x in &ctxs {
        let s = |k: &str| x[k].as_str().unwrap_or("").to_string();
        let mut row = vec![
            s("ID"),
            s("Image"),
            s("Command"),
            s("RunningFor"),
            s("Status"),
            s("Ports"),
            s("Names"),
        ];
        if a.size {
            row.push(s("Size"));
        }
        rows.push(row);
    }
    print_table(&rows);
    Ok(0)
}

/// Requests `each` keeps in flight (the docker CLI's `defaultParallel`).
const PARALLEL: usize = 50;

/// Runs one request per container, printing the name on success (docker's style).
async fn each(
    c: &Client,
    names: &[String],
    method: Method,
    path: impl Fn(&str) -> String,
    q: Query,
) -> Result<i32> {
    each_tolerating(c, names, method, path, q, |_| false).await
}

/// [`each`], where an error whose status `tolerated` accepts is printed and does not
/// fail the command.
async fn each_tolerating(
    c: &Client,
    names: &[String],
    method: Method,
    path: impl Fn(&str) -> String,
    q: Query,
    tolerated: impl Fn(u16) -> bool,
) -> Result<i32> {
    // Fifty at once, as the docker CLI's parallelOperation: a finished operation frees
    // its slot whatever its place (the others keep theirs), and results are printed in
    // the order given.
    use futures_util::StreamExt;
    let mut results = futures_util::stream::iter(names.iter().enumerate())
        .map(|(i, n)| {
            let (m, p, q) = (method.clone(), path(n), &q);
            async move { (i, c.request(m, &p, q, &[], empty()).await) }
        })
        .buffer_unordered(PARALLEL);
    let mut done = std::collections::BTreeMap::new();
    let mut next = 0;
    let mut rc = 0;
    while let Some((i, r)) = results.next().await {
        done.insert(i, r);
        while let Some(r) = done.remove(&next) {
            match r {
                Ok(_) => println!("{}", names[next]),
                Err(e) => {
                    eprintln!("Error response from daemon: {}", api_message(&e));
                    if !api_status(&e).is_some_and(&tolerated) {
                        rc = 1;
                    }
                }
            }
            next += 1;
        }
    }
    Ok(rc)
}

pub async fn stop(c: &Client, a: StopArgs, restart: bool) -> Result<i32> {
    let q = Query::new()
        .opt("signal", a.signal.as_deref())
        .opt("t", a.time);
    let verb = if restart { "restart" } else { "stop" };
    each(
        c,
        &a.containers,
        Method::POST,
        |n| format!("/containers/{n}/{verb}"),
        q,
    )
    .await
}

pub async fn kill(c: &Client, a: KillArgs) -> Result<i32> {
    let sig = a
        .signal
        .as_deref()
        .map(|s| s.strip_prefix("SIG").unwrap_or(s).to_string());
    let q = Query::new().opt("signal", sig);
    each(
        c,
        &a.containers,
        Method::POST,
        |n| format!("/containers/{n}/kill"),
        q,
    )
    .await
}

pub async fn rm(c: &Client, a: RmArgs) -> Result<i32> {
    let q = Query::new()
        .add_if(a.force, "force", 1)
        .add_if(a.link, "link", 1)
        .add_if(a.volumes, "v", 1);
    // `-f`: a container that is not there is reported and is no failure (the docker
    // CLI's: what was to be removed is gone).
    each_tolerating(
        c,
        &a.containers,
        Method::DELETE,
        |n| format!("/containers/{n}"),
        q,
        |status| a.force && status == 404,
    )
    .await
}

pub async fn simple(c: &Client, verb: &str, names: Vec<String>) -> Result<i32> {
    each(
        c,
        &names,
        Method::POST,
        |n| format!("/containers/{n}/{verb}"),
        Query::new(),
    )
    .await
}

pub async fn rename(c: &Client, from: &str, to: &str) -> Result<i32> {
    c.request(
        Method::POST,
        &format!("/containers/{from}/rename"),
        &Query::new().add("name", to),
        &[],
        empty(),
    )
    .await?;
    Ok(0)
}

pub async fn top(c: &Client, a: TopArgs) -> Result<i32> {
    let q = if a.ps_args.is_empty() {
        Query::new()
    } else {
        Query::new().add("ps_args", a.ps_args.join(" "))
    };
    let v: Value = c
        .get_json(&format!("/containers/{}/top", a.container), &q)
        .await?;
    let mut rows = vec![v["Titles"]
        .as_array()
        .map(|t| {
            t.iter()
                .map(|x| x.as_str().unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default()];
    for p in v["Processes"].as_array().into_iter().flatten() {
        rows.push(
            p.as_array()
                .map(|r| {
                    r.iter()
                        .map(|x| x.as_str().unwrap_or("").to_string())
                        .collect()
                })
                .unwrap_or_default(),
        );
    }
    // The docker CLI's `top` table has columns of at least 20.
    print!("{}", crate::format::table_min(&rows, 20));
    Ok(0)
}

pub async fn port(c: &Client, name: &str, private: Option<&str>) -> Result<i32> {
    let v: Value = c
        .get_json(&format!("/containers/{name}/json"), &Query::new())
        .await?;
    let ports = v["NetworkSettings"]["Ports"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let mut keys: Vec<&String> = ports.keys().collect();
    keys.sort_by_key(|k| {
        let (p, proto) = k.split_once('/').unwrap_or((k, ""));
        (p.parse::<u32>().unwrap_or(0), proto.to_string())
    });
    let want = private.map(|p| {
        if p.contains('/') {
            p.to_string()
        } else {
            format!("{p}/tcp")
        }
    });
    let mut found = false;
    for k in keys {
        if want.as_deref().is_some_and(|w| w != k) {
            continue;
        }
        for b in ports[k].as_array().into_iter().flatten() {
            let ip = b["HostIp"].as_str().unwrap_or("");
            let ip = if ip.contains(':') {
                format!("[{ip}]")
            } else {
                ip.to_string()
            };
            let hp = b["HostPort"].as_str().unwrap_or("");
            found = true;
            if want.is_some() {
                println!("{ip}:{hp}");
            } else {
                println!("{k} -> {ip}:{hp}");
            }
        }
    }
    if let (Some(w), false) = (want, found) {
        anyhow::bail!("Error: No public port '{w}' published for {name}");
    }
    Ok(0)
}

pub async fn inspect_containers(
    c: &Client,
    names: &[String],
    format: Option<&str>,
    size: bool,
) -> Result<i32> {
    super::inspect_each(
        c,
        names,
        format,
        |n| (format!("/containers/{n}/json"), Query::new().add_if(size, "size", 1)),
        |n, e| {
            if api_status(e) == Some(404) {
                eprintln!("Error: No such container: {n}");
            } else {
                eprintln!("{e:#}");
            }
        },
    )
    .await
}

/// `inspect`: containers, then images, networks, volumes.
pub async fn inspect_any(c: &Client, a: InspectArgs) -> Result<i32> {
    match a.kind.as_deref() {
        Some("container") => {
            return inspect_containers(c, &a.names, a.format.as_deref(), a.size).await
        }
        Some("image") => {
            return crate::commands::image::inspect(c, &a.names, a.format.as_deref()).await
        }
        _ => {}
    }
    let mut out = Vec::new();
    let mut rc = 0;
    for n in &a.names {
        let mut found = None;
        for path in [
            format!("/containers/{n}/json"),
            format!("/images/{n}/json"),
            format!("/networks/{n}"),
            format!("/volumes/{n}"),
        ] {
            let q = if path.starts_with("/containers") {
                Query::new().add_if(a.size, "size", 1)
            } else {
                Query::new()
            };
            match c.get_json::<Value>(&path, &q).await {
                Ok(v) => {
                    found = Some(v);
                    break;
                }
                Err(e) if api_status(&e) == Some(404) => continue,
                Err(e) => return Err(e),
            }
        }
        match found {
            Some(v) => out.push(v),
            None => {
                eprintln!("Error: No such object: {n}");
                rc = 1;
            }
        }
    }
    print_inspect(&out, a.format.as_deref())?;
    Ok(rc)
}

pub async fn prune(c: &Client, a: PruneArgs) -> Result<i32> {
    if !a.force && !confirm("WARNING! This will remove all stopped containers.")? {
        return Ok(0);
    }
    let v: Value = c
        .post_json(
            "/containers/prune",
            &Query::new().opt("filters", filters_json(&a.filter)),
            None,
        )
        .await?;
    if let Some(list) = v["ContainersDeleted"].as_array().filter(|l| !l.is_empty()) {
        println!("Deleted Containers:");
        for id in list {
            println!("{}", id.as_str().unwrap_or(""));
        }
        println!();
    }
    println!(
        "Total reclaimed space: {}",
        human_size(v["SpaceReclaimed"].as_i64().unwrap_or(0))
    );
    Ok(0)
}

/// One stats row from a `stats?stream=0` sample.
pub fn stats_row(s: &Value, id: &str, no_trunc: bool) -> Vec<String> {
    let cpu = &s["cpu_stats"];
    let pre = &s["precpu_stats"];
    let cpu_delta = cpu["cpu_usage"]["total_usage"].as_f64().unwrap_or(0.0)
        - pre["cpu_usage"]["total_usage"].as_f64().unwrap_or(0.0);
    let sys_delta = cpu["system_cpu_usage"].as_f64().unwrap_or(0.0)
        - pre["system_cpu_usage"].as_f64().unwrap_or(0.0);
    let online = cpu["online_cpus"]
        .as_f64()
        .filter(|n| *n > 0.0)
        .or_else(|| {
            cpu["cpu_usage"]["percpu_usage"]
                .as_array()
                .map(|a| a.len() as f64)
        })
        .unwrap_or(1.0);
    let cpu_pct = if sys_delta > 0.0 && cpu_delta > 0.0 {
        cpu_delta / sys_delta * online * 100.0
    } else {
        0.0
    };
    let mem = &s["memory_stats"];
    let usage = mem["usage"].as_f64().unwrap_or(0.0);
    let cache = mem["stats"]["total_inactive_file"]
        .as_f64()
        .or_else(|| mem["stats"]["inactive_file"].as_f64())
        .unwrap_or(0.0);
    let used = if cache < usage { usage - cache } else { usage };
    let limit = mem["limit"].as_f64().unwrap_or(0.0);
    let mem_pct = if limit > 0.0 {
        used / limit * 100.0
    } else {
        0.0
    };
    let (mut rx, mut tx) = (0.0, 0.0);
    for n in s["networks"]
        .as_object()
        .into_iter()
        .flat_map(|m| m.values())
    {
        rx += n["rx_bytes"].as_f64().unwrap_or(0.0);
        tx += n["tx_bytes"].as_f64().unwrap_or(0.0);
    }
    let (mut br, mut bw) = (0.0, 0.0);
    for e in s["blkio_stats"]["io_service_bytes_recursive"]
        .as_array()
        .into_iter()
        .flatten()
    {
        match e["op"].as_str().unwrap_or("").to_ascii_lowercase().as_str() {
            "read" => br += e["value"].as_f64().unwrap_or(0.0),
            "write" => bw += e["value"].as_f64().unwrap_or(0.0),
            _ => {}
        }
    }
    let name = s["name"]
        .as_str()
        .unwrap_or("")
        .trim_start_matches('/')
        .to_string();
    vec![
        if no_trunc {
            id.to_string()
        } else {
            short_id(id)
        },
        name,
        format!("{cpu_pct:.2}%"),
        format!("{} / {}", bytes_size(used), bytes_size(limit)),
        format!("{mem_pct:.2}%"),
        format!("{} / {}", human_size_prec(rx, 3), human_size_prec(tx, 3)),
        format!("{} / {}", human_size_prec(br, 3), human_size_prec(bw, 3)),
        s["pids_stats"]["current"].as_i64().unwrap_or(0).to_string(),
    ]
}

pub async fn stats(c: &Client, a: StatsArgs) -> Result<i32> {
    let header: Vec<String> = [
        "CONTAINER ID",
        "NAME",
        "CPU %",
        "MEM USAGE / LIMIT",
        "MEM %",
        "NET I/O",
        "BLOCK I/O",
        "PIDS",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    loop {
        let ids: Vec<String> = if a.containers.is_empty() {
            let list: Vec<Value> = c
                .get_json("/containers/json", &Query::new().add_if(a.all, "all", 1))
                .await?;
            list.iter()
                .filter_map(|x| x["Id"].as_str().map(str::to_string))
                .collect()
        } else {
            a.containers.clone()
        };
        let mut rows = vec![header.clone()];
        let mut samples_seen: Vec<(String, Vec<String>)> = Vec::new();
        let mut rc = 0;
        // one sample per container, all at once (each is two readings apart)
        let q = Query::new().add("stream", 0);
        let paths: Vec<String> = ids.iter().map(|id| format!("/containers/{id}/stats")).collect();
        let samples = futures_util::future::join_all(paths.iter().map(|p| c.get_json::<Value>(p, &q))).await;
        for (id, r) in ids.iter().zip(samples) {
            match r {
                Ok(s) => {
                    let full = s["id"].as_str().unwrap_or(id).to_string();
                    let row = stats_row(&s, &full, a.no_trunc);
                    samples_seen.push((id.clone(), row.clone()));
                    rows.push(row);
                }
                Err(e) => {
                    eprintln!("Error response from daemon: {}", api_message(&e));
                    rc = 1;
                }
            }
        }
        let shown = match &a.format {
            Some(f) => stats_formatted(f, &samples_seen)?,
            None => table(&rows),
        };
        if a.no_stream {
            print!("{shown}");
            return Ok(rc);
        }
        print!("\x1b[2J\x1b[H{shown}");
        use std::io::Write;
        std::io::stdout().flush()?;
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}

/// `stats --format`: each sample (the name or id it was asked by, its row) through the
/// template, with the docker CLI's fields (`.Container` is the name or id given).
fn stats_formatted(format: &str, samples: &[(String, Vec<String>)]) -> Result<String> {
    let items: Vec<Value> = samples
        .iter()
        .map(|(asked, row)| {
            serde_json::json!({
                "Container": asked, "ID": row[0], "Name": row[1], "CPUPerc": row[2], "MemUsage": row[3],
                "MemPerc": row[4], "NetIO": row[5], "BlockIO": row[6], "PIDs": row[7],
            })
        })
        .collect();
    let headers =
        [("ID", "CONTAINER ID"), ("CPUPerc", "CPU %"), ("MemUsage", "MEM USAGE / LIMIT"), ("MemPerc", "MEM %"), ("NetIO", "NET I/O"), ("BlockIO", "BLOCK I/O")];
    crate::format::render_all(format, &headers, &items)
}

/// `diff CONTAINER`: `C`, `A` or `D` and the path, as the docker CLI prints them.
pub async fn diff(c: &Client, name: &str) -> Result<i32> {
    let changes: Vec<Value> = c.get_json(&format!("/containers/{name}/changes"), &Query::new()).await?;
    let mut out = String::new();
    for ch in &changes {
        let kind = match ch["Kind"].as_i64() {
            Some(0) => "C",
            Some(1) => "A",
            Some(2) => "D",
            _ => "?",
        };
        out.push_str(&format!("{kind} {}\n", ch["Path"].as_str().unwrap_or("")));
    }
    print!("{out}");
    Ok(0)
}

/// `export [-o FILE] CONTAINER`: the container's filesystem as a tar.
pub async fn export(c: &Client, a: crate::cli::ExportArgs) -> Result<i32> {
    use std::io::Write;
    if a.output.is_none() && crate::stream::stdout_is_tty() {
        anyhow::bail!("cowardly refusing to save to a terminal. Use the -o flag or redirect");
    }
    let resp = c.request(Method::GET, &format!("/containers/{}/export", a.container), &Query::new(), &[], empty()).await?;
    let mut body = resp.into_body();
    let mut out: Box<dyn Write> = match &a.output {
        Some(p) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(p).map_err(|e| anyhow::anyhow!("failed to export container: open {p}: {e}"))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    while let Some(chunk) = crate::client::next_chunk(&mut body).await? {
        out.write_all(&chunk)?;
    }
    out.flush()?;
    Ok(0)
}

/// `update [OPTIONS] CONTAINER...`: new limits and restart policy.
pub async fn update(c: &Client, a: crate::cli::UpdateArgs) -> Result<i32> {
    use crate::opts::parse_ram;
    let mut body = serde_json::Map::new();
    let mut put = |k: &str, v: Value| {
        body.insert(k.to_owned(), v);
    };
    if let Some(v) = a.blkio_weight {
        put("BlkioWeight", json!(v));
    }
    if let Some(v) = a.cpu_period {
        put("CpuPeriod", json!(v));
    }
    if let Some(v) = a.cpu_quota {
        put("CpuQuota", json!(v));
    }
    if let Some(v) = a.cpu_rt_period {
        put("CpuRealtimePeriod", json!(v));
    }
    if let Some(v) = a.cpu_rt_runtime {
        put("CpuRealtimeRuntime", json!(v));
    }
    if let Some(v) = a.cpu_shares {
        put("CpuShares", json!(v));
    }
    if let Some(v) = a.cpus {
        put("NanoCpus", json!((v * 1e9) as i64));
    }
    if let Some(v) = &a.cpuset_cpus {
        put("CpusetCpus", json!(v));
    }
    if let Some(v) = &a.cpuset_mems {
        put("CpusetMems", json!(v));
    }
    if let Some(v) = &a.kernel_memory {
        put("KernelMemory", json!(parse_ram(v)?));
    }
    if let Some(v) = &a.memory {
        put("Memory", json!(parse_ram(v)?));
    }
    if let Some(v) = &a.memory_reservation {
        put("MemoryReservation", json!(parse_ram(v)?));
    }
    if let Some(v) = &a.memory_swap {
        put("MemorySwap", json!(if v == "-1" { -1 } else { parse_ram(v)? }));
    }
    if let Some(v) = a.pids_limit {
        put("PidsLimit", json!(v));
    }
    if let Some(r) = &a.restart {
        put("RestartPolicy", serde_json::to_value(crate::opts::parse_restart(r)?)?);
    }
    if body.is_empty() {
        anyhow::bail!("you must provide one or more flags when using this command");
    }
    let body = Value::Object(body);
    let mut failed = false;
    for name in &a.containers {
        match c.post_json::<Value>(&format!("/containers/{name}/update"), &Query::new(), Some(crate::client::json_body(&body)?)).await {
            Ok(resp) => {
                for w in resp["Warnings"].as_array().into_iter().flatten() {
                    eprintln!("{}", w.as_str().unwrap_or_default());
                }
                println!("{name}");
            }
            Err(e) => {
                eprintln!("{}", api_message(&e));
                failed = true;
            }
        }
    }
    Ok(if failed { 1 } else { 0 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_column() {
        let p = json!([
            {"IP":"0.0.0.0","PrivatePort":80,"PublicPort":8080,"Type":"tcp"},
            {"PrivatePort":443,"Type":"tcp"},
            {"IP":"::","PrivatePort":80,"PublicPort":8080,"Type":"tcp"}
        ]);
        assert_eq!(
            format_ports(&p),
            "0.0.0.0:8080->80/tcp, [::]:8080->80/tcp, 443/tcp"
        );
        assert_eq!(format_ports(&Value::Null), "");
    }

    #[test]
    fn ps_row_context() {
        let c = json!({"Id":"0123456789abcdef0123","Names":["/web"],"Image":"busybox","Command":"sleep 1000",
            "Created":0,"State":"running","Status":"Up 4 seconds","Ports":[]});
        let x = ps_context(&c, false);
        assert_eq!(x["ID"], "0123456789ab");
        assert_eq!(x["Command"], "\"sleep 1000\"");
        assert_eq!(x["Names"], "web");
        assert_eq!(x["Status"], "Up 4 seconds");
    }

    #[test]
    fn stats_math() {
        let s = json!({"name":"/web","cpu_stats":{"cpu_usage":{"total_usage":200},"system_cpu_usage":1000,"online_cpus":2},
            "precpu_stats":{"cpu_usage":{"total_usage":100},"system_cpu_usage":500},
            "memory_stats":{"usage":2097152,"limit":4194304,"stats":{"total_inactive_file":1048576}},
            "pids_stats":{"current":3},"networks":{"eth0":{"rx_bytes":1200,"tx_bytes":0}}});
        let r = stats_row(&s, "0123456789abcdef", false);
        assert_eq!(r[1], "web");
        assert_eq!(r[2], "40.00%");
        assert_eq!(r[3], "1MiB / 4MiB");
        assert_eq!(r[4], "25.00%");
        assert_eq!(r[5], "1.2kB / 0B");
        assert_eq!(r[7], "3");
    }
}
