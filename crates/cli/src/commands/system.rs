//! `version`, `info`, `events`, `system df`, `system prune`.

use anyhow::Result;
use http::Method;
use serde_json::Value;

use crate::cli::{EventsArgs, PruneArgs};
use crate::client::{empty, filters_json, Client, LineReader, Query};
use crate::commands::confirm;
use crate::format::{human_size, human_size_prec, print_table, Template};
use crate::opts::parse_timestamp;

/// `system dial-stdio`: one raw connection to the daemon, stdin copied to it and it to
/// stdout. At the end of stdin the connection's write side is shut down and the copy
/// to stdout goes on until the daemon closes; when the daemon closes first, we are
/// done (as docker's). This is what an `ssh://` client runs on the remote host.
pub async fn dial_stdio(host: Option<&str>, tls: &crate::client::TlsOptions) -> Result<i32> {
    use tokio::io::AsyncWriteExt;
    let endpoint = crate::client::Endpoint::open(host, tls).await?;
    let conn = endpoint
        .dial()
        .await
        .map_err(|e| anyhow::anyhow!("failed to open the raw stream connection: {e:#}"))?;
    let (mut from_daemon, mut to_daemon) = tokio::io::split(conn);
    let up = async move {
        let mut stdin = tokio::io::stdin();
        let r = tokio::io::copy(&mut stdin, &mut to_daemon).await;
        let s = to_daemon.shutdown().await;
        r.map_err(|e| anyhow::anyhow!("error while Copy (stdin to stream): {e}"))?;
        s.map_err(|e| anyhow::anyhow!("error while CloseWrite (stdin to stream): {e}"))?;
        anyhow::Ok(())
    };
    let down = async move {
        let mut stdout = tokio::io::stdout();
        let r = tokio::io::copy(&mut from_daemon, &mut stdout).await;
        let _ = stdout.flush().await;
        r.map_err(|e| anyhow::anyhow!("error while Copy (stream to stdout): {e}"))?;
        // Close stdout: the peer sees the end of the stream.
        let _ = nix::unistd::close(1);
        anyhow::Ok(())
    };
    tokio::pin!(up, down);
    tokio::select! {
        r = &mut up => {
            r?;
            down.await?;
        }
        r = &mut down => r?,
    }
    Ok(0)
}

/// Print `data` through a `--format` template (`{{json .}}`, `{{.Server.Version}}`):
/// the docker CLI's `version` and `info` formats, fields named as its structs name
/// them (matched to the API's keys in any case).
fn print_formatted(format: &str, data: &Value) -> Result<i32> {
    println!("{}", crate::format::Template::parse(format)?.render(data));
    Ok(0)
}

pub async fn version(c: &Client, format: Option<&str>) -> Result<i32> {
    if let Some(f) = format {
        let server: Value = c.get_json("/version", &Query::new()).await?;
        let client = serde_json::json!({
            "Version": env!("CARGO_PKG_VERSION"),
            "ApiVersion": c.version,
            "DefaultAPIVersion": format!("{}.{}", bollard::API_DEFAULT_VERSION.major_version, bollard::API_DEFAULT_VERSION.minor_version),
            "Os": std::env::consts::OS,
            "Arch": std::env::consts::ARCH,
        });
        return print_formatted(f, &serde_json::json!({"Client": client, "Server": server}));
    }
    println!("Client:");
    println!(" Version:           {}", env!("CARGO_PKG_VERSION"));
    println!(" API version:       {}", c.version);
    println!(" OS/Arch:           linux/{}", std::env::consts::ARCH);
    let v: Value = c.get_json("/version", &Query::new()).await?;
    let s = |k: &str| v[k].as_str().unwrap_or("").to_string();
    println!();
    println!(
        "Server:{}",
        v["Platform"]["Name"]
            .as_str()
            .map(|n| format!(" {n}"))
            .unwrap_or_default()
    );
    println!(" Engine:");
    println!("  Version:          {}", s("Version"));
    println!(
        "  API version:      {} (minimum version {})",
        s("ApiVersion"),
        s("MinAPIVersion")
    );
    println!("  Go version:       {}", s("GoVersion"));
    println!("  Git commit:       {}", s("GitCommit"));
    println!("  Built:            {}", s("BuildTime"));
    println!("  OS/Arch:          {}/{}", s("Os"), s("Arch"));
    println!(
        "  Experimental:     {}",
        v["Experimental"].as_bool().unwrap_or(false)
    );
    for comp in v["Components"].as_array().into_iter().flatten() {
        let name = comp["Name"].as_str().unwrap_or("");
        if name == "Engine" {
            continue;
        }
        println!(" {name}:");
        println!(
            "  Version:          {}",
            comp["Version"].as_str().unwrap_or("")
        );
    }
    Ok(0)
}

pub async fn info(c: &Client, format: Option<&str>) -> Result<i32> {
    let v: Value = c.get_json("/info", &Query::new()).await?;
    if let Some(f) = format {
        return print_formatted(f, &v);
    }
    let s = |k: &str| match &v[k] {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    };
    println!("Client:");
    println!(" Version:    {}", env!("CARGO_PKG_VERSION"));
    println!();
    println!("Server:");
    println!(" Containers: {}", v["Containers"].as_i64().unwrap_or(0));
    println!(
        "  Running: {}",
        v["ContainersRunning"].as_i64().unwrap_or(0)
    );
    println!("  Paused: {}", v["ContainersPaused"].as_i64().unwrap_or(0));
    println!(
        "  Stopped: {}",
        v["ContainersStopped"].as_i64().unwrap_or(0)
    );
    println!(" Images: {}", v["Images"].as_i64().unwrap_or(0));
    println!(" Server Version: {}", s("ServerVersion"));
    println!(" Storage Driver: {}", s("Driver"));
    println!(" Logging Driver: {}", s("LoggingDriver"));
    println!(" Cgroup Driver: {}", s("CgroupDriver"));
    println!(" Cgroup Version: {}", s("CgroupVersion"));
    println!(" Kernel Version: {}", s("KernelVersion"));
    println!(" Operating System: {}", s("OperatingSystem"));
    println!(" OSType: {}", s("OSType"));
    println!(" Architecture: {}", s("Architecture"));
    println!(" CPUs: {}", v["NCPU"].as_i64().unwrap_or(0));
    println!(
        " Total Memory: {}",
        crate::format::bytes_size(v["MemTotal"].as_f64().unwrap_or(0.0))
    );
    println!(" Name: {}", s("Name"));
    println!(" ID: {}", s("ID"));
    println!(" Docker Root Dir: {}", s("DockerRootDir"));
    println!(" Debug Mode: {}", v["Debug"].as_bool().unwrap_or(false));
    // The rest as the docker CLI prints it: labels, registries, live restore.
    let list = |key: &Value| -> Vec<String> { key.as_array().into_iter().flatten().filter_map(|x| x.as_str().map(str::to_owned)).collect() };
    let labels = list(&v["Labels"]);
    if !labels.is_empty() {
        println!(" Labels:");
        for l in labels {
            println!("  {l}");
        }
    }
    println!(" Experimental: {}", v["ExperimentalBuild"].as_bool().unwrap_or(false));
    let insecure: Vec<String> = v["RegistryConfig"]["IndexConfigs"]
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(_, i)| i["Secure"] == false)
        .map(|(k, _)| k.clone())
        .chain(list(&v["RegistryConfig"]["InsecureRegistryCIDRs"]))
        .collect();
    if !insecure.is_empty() {
        println!(" Insecure Registries:");
        for r in insecure {
            println!("  {r}");
        }
    }
    let mirrors = list(&v["RegistryConfig"]["Mirrors"]);
    if !mirrors.is_empty() {
        println!(" Registry Mirrors:");
        for m in mirrors {
            println!("  {m}");
        }
    }
    println!(" Live Restore Enabled: {}", v["LiveRestoreEnabled"].as_bool().unwrap_or(false));
    for w in v["Warnings"].as_array().into_iter().flatten() {
        eprintln!("{}", w.as_str().unwrap_or(""));
    }
    Ok(0)
}

/// "2026-11-23T16:34:28.222432227Z container start <id> (a=b, name=x)"
pub fn format_event(e: &Value) -> String {
    let nanos = e["timeNano"]
        .as_i64()
        .unwrap_or_else(|| e["time"].as_i64().unwrap_or(0) * 1_000_000_000);
    let t = chrono::DateTime::from_timestamp(nanos / 1_000_000_000, (nanos % 1_000_000_000) as u32)
        .map(|t| {
            t.with_timezone(&chrono::Local)
                .to_rfc3339_opts(chrono::SecondsFormat::Nanos, false)
        })
        .unwrap_or_default();
    let mut attrs: Vec<(String, String)> = e["Actor"]["Attributes"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                .collect()
        })
        .unwrap_or_default();
    attrs.sort();
    let attrs = attrs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ");
    let mut s = format!(
        "{t} {} {} {}",
        e["Type"].as_str().unwrap_or(""),
        e["Action"].as_str().unwrap_or(""),
        e["Actor"]["ID"].as_str().unwrap_or("")
    );
    if !attrs.is_empty() {
        s.push_str(&format!(" ({attrs})"));
    }
    s
}

pub async fn events(c: &Client, a: EventsArgs) -> Result<i32> {
    let now = chrono::Utc::now().timestamp();
    let q = Query::new()
        .opt("filters", filters_json(&a.filter))
        .opt(
            "since",
            a.since
                .as_deref()
                .map(|s| parse_timestamp(s, now))
                .transpose()?,
        )
        .opt(
            "until",
            a.until
                .as_deref()
                .map(|s| parse_timestamp(s, now))
                .transpose()?,
        );
    let tmpl = a.format.as_deref().map(Template::parse).transpose()?;
    let resp = c.request(Method::GET, "/events", &q, &[], empty()).await?;
    let mut r = LineReader::new(resp);
    while let Some(e) = r.next_json::<Value>().await? {
        match &tmpl {
            Some(t) => println!("{}", t.render(&e)),
            None => println!("{}", format_event(&e)),
        }
    }
    Ok(0)
}

pub async fn df(c: &Client, verbose: bool) -> Result<i32> {
    let v: Value = c.get_json("/system/df", &Query::new()).await?;
    let images = v["Images"].as_array().cloned().unwrap_or_default();
    let containers = v["Containers"].as_array().cloned().unwrap_or_default();
    let volumes = v["Volumes"].as_array().cloned().unwrap_or_default();
    let layers = v["LayersSize"].as_i64().unwrap_or(0);
    let active_images = images
        .iter()
        .filter(|i| i["Containers"].as_i64().unwrap_or(0) > 0)
        .count();
    // As docker's CLI: all the layers less what the images in use hold alone (their
    // size less what they share with other images).
    let used_img: i64 = images
        .iter()
        .filter(|i| i["Containers"].as_i64().unwrap_or(0) != 0)
        .map(|i| (i["Size"].as_i64().unwrap_or(-1), i["SharedSize"].as_i64().unwrap_or(-1)))
        .filter(|&(size, shared)| size != -1 && shared != -1)
        .map(|(size, shared)| size - shared)
        .sum();
    let reclaim_img = layers - used_img;
    let ctr_size: i64 = containers
        .iter()
        .map(|c| c["SizeRw"].as_i64().unwrap_or(0))
        .sum();
    let active_ctr = containers
        .iter()
        .filter(|c| c["State"].as_str() == Some("running"))
        .count();
    let reclaim_ctr: i64 = containers
        .iter()
        .filter(|c| c["State"].as_str() != Some("running"))
        .map(|c| c["SizeRw"].as_i64().unwrap_or(0))
        .sum();
    let vol_size: i64 = volumes
        .iter()
        .map(|x| x["UsageData"]["Size"].as_i64().unwrap_or(0).max(0))
        .sum();
    let active_vol = volumes
        .iter()
        .filter(|x| x["UsageData"]["RefCount"].as_i64().unwrap_or(0) > 0)
        .count();
    let reclaim_vol: i64 = volumes
        .iter()
        .filter(|x| x["UsageData"]["RefCount"].as_i64().unwrap_or(0) == 0)
        .map(|x| x["UsageData"]["Size"].as_i64().unwrap_or(0).max(0))
        .sum();
    // As docker's CLI: shared records (their data is also an image's) do not count.
    let cache: Vec<Value> = v["BuildCache"].as_array().cloned().unwrap_or_default();
    let own = |r: &&Value| !r["Shared"].as_bool().unwrap_or(false);
    let cache_size: i64 = cache
        .iter()
        .filter(own)
        .map(|r| r["Size"].as_i64().unwrap_or(0))
        .sum();
    let cache_in_use: i64 = cache
        .iter()
        .filter(own)
        .filter(|r| r["InUse"].as_bool().unwrap_or(false))
        .map(|r| r["Size"].as_i64().unwrap_or(0))
        .sum();
    let pct = |r: i64, t: i64| {
        if t > 0 {
            format!("{} ({}%)", human_size(r), r * 100 / t)
        } else {
            human_size(r)
        }
    };
    let rows = vec![
        vec![
            "TYPE".into(),
            "TOTAL".into(),
            "ACTIVE".into(),
            "SIZE".into(),
            "RECLAIMABLE".into(),
        ],
        vec![
            "Images".into(),
            images.len().to_string(),
            active_images.to_string(),
            human_size(layers),
            pct(reclaim_img, layers),
        ],
        vec![
            "Containers".into(),
            containers.len().to_string(),
            active_ctr.to_string(),
            human_size(ctr_size),
            pct(reclaim_ctr, ctr_size),
        ],
        vec![
            "Local Volumes".into(),
            volumes.len().to_string(),
            active_vol.to_string(),
            human_size(vol_size),
            pct(reclaim_vol, vol_size),
        ],
        vec![
            "Build Cache".into(),
            cache.len().to_string(),
            cache
                .iter()
                .filter(|r| r["InUse"].as_bool().unwrap_or(false))
                .count()
                .to_string(),
            human_size(cache_size),
            human_size(cache_size - cache_in_use),
        ],
    ];
    print_table(&rows);
    if verbose {
        println!("\nImages space usage:\n");
        let mut r = vec![vec![
            "REPOSITORY".to_string(),
            "TAG".into(),
            "IMAGE ID".into(),
            "SIZE".into(),
            "CONTAINERS".into(),
        ]];
        for i in &images {
            let tag = i["RepoTags"]
                .as_array()
                .and_then(|t| t.first())
                .and_then(Value::as_str)
                .unwrap_or("<none>:<none>");
            let (repo, t) = tag.rsplit_once(':').unwrap_or((tag, "<none>"));
            r.push(vec![
                repo.into(),
                t.into(),
                crate::format::short_id(i["Id"].as_str().unwrap_or("")),
                human_size_prec(i["Size"].as_f64().unwrap_or(0.0), 3),
                i["Containers"].as_i64().unwrap_or(0).to_string(),
            ]);
        }
        print_table(&r);
    }
    Ok(0)
}

pub async fn prune(c: &Client, a: PruneArgs) -> Result<i32> {
    let warning = "WARNING! This will remove:\n  - all stopped containers\n  - all networks not used by at least one container\n  - all dangling images\n  - unused build cache\n";
    if !a.force && !confirm(warning)? {
        return Ok(0);
    }
    let f = filters_json(&a.filter);
    let mut total = 0;
    let cv: Value = c
        .post_json(
            "/containers/prune",
            &Query::new().opt("filters", f.clone()),
            None,
        )
        .await?;
    if let Some(l) = cv["ContainersDeleted"].as_array().filter(|l| !l.is_empty()) {
        println!("Deleted Containers:");
        l.iter()
            .for_each(|x| println!("{}", x.as_str().unwrap_or("")));
        println!();
    }
    total += cv["SpaceReclaimed"].as_i64().unwrap_or(0);
    let nv: Value = c
        .post_json(
            "/networks/prune",
            &Query::new().opt("filters", f.clone()),
            None,
        )
        .await?;
    if let Some(l) = nv["NetworksDeleted"].as_array().filter(|l| !l.is_empty()) {
        println!("Deleted Networks:");
        l.iter()
            .for_each(|x| println!("{}", x.as_str().unwrap_or("")));
        println!();
    }
    let mut imgf = a.filter.clone();
    imgf.push(format!("dangling={}", if a.all { "false" } else { "true" }));
    let iv: Value = c
        .post_json(
            "/images/prune",
            &Query::new().opt("filters", filters_json(&imgf)),
            None,
        )
        .await?;
    if let Some(l) = iv["ImagesDeleted"].as_array().filter(|l| !l.is_empty()) {
        println!("Deleted Images:");
        for it in l {
            if let Some(u) = it["Untagged"].as_str() {
                println!("untagged: {u}");
            }
            if let Some(d) = it["Deleted"].as_str() {
                println!("deleted: {d}");
            }
        }
        println!();
    }
    total += iv["SpaceReclaimed"].as_i64().unwrap_or(0);
    if let Ok(bv) = c
        .post_json::<Value>(
            "/build/prune",
            &Query::new().add("filters", f.unwrap_or_default()),
            None,
        )
        .await
    {
        total += bv["SpaceReclaimed"].as_i64().unwrap_or(0);
    }
    println!("Total reclaimed space: {}", human_size(total));
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_line() {
        let e = serde_json::json!({"Type":"container","Action":"start","Actor":{"ID":"abc","Attributes":{"name":"x","image":"busybox"}},"time":1,"timeNano":1000000000});
        let s = format_event(&e);
        assert!(
            s.ends_with(" container start abc (image=busybox, name=x)"),
            "{s}"
        );
    }
}
