//! `GET /containers/{id}/stats`: resource usage read from the container's cgroup
//! (v1 hierarchies or the v2 unified tree) and its network namespace.

use std::collections::HashMap;
use std::path::PathBuf;

use serde_json::{json, Value};

/// Where a controller's files live for a container whose cgroup is `cg`
/// (`/berth/<id>`, or under its `--cgroup-parent`).
fn cgroup_dir(controller: &str, cg: &str) -> Option<PathBuf> {
    let v2 = PathBuf::from(format!("/sys/fs/cgroup{cg}"));
    if v2.join("cgroup.controllers").exists() {
        return Some(v2);
    }
    let v1 = PathBuf::from(format!("/sys/fs/cgroup/{controller}{cg}"));
    v1.exists().then_some(v1)
}

fn read_u64(p: PathBuf) -> Option<u64> {
    std::fs::read_to_string(p).ok()?.trim().parse().ok()
}

fn kv_file(p: PathBuf) -> HashMap<String, u64> {
    std::fs::read_to_string(p)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            Some((it.next()?.to_owned(), it.next()?.parse().ok()?))
        })
        .collect()
}

/// Host CPU time in nanoseconds (the `cpu` line of /proc/stat).
fn system_cpu_ns() -> u64 {
    let ticks = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK).ok().flatten().unwrap_or(100) as u64;
    std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|s| {
            s.lines().next().map(|l| l.split_whitespace().skip(1).filter_map(|v| v.parse::<u64>().ok()).sum::<u64>())
        })
        .unwrap_or(0)
        * (1_000_000_000 / ticks.max(1))
}

fn online_cpus() -> u64 {
    std::thread::available_parallelism().map(|n| n.get() as u64).unwrap_or(1)
}

fn cpu_stats(id: &str) -> Value {
    let (total, user, kernel, percpu) = if let Some(d) = cgroup_dir("cpuacct", id).filter(|d| d.join("cpuacct.usage").exists()) {
        let total = read_u64(d.join("cpuacct.usage")).unwrap_or(0);
        let st = kv_file(d.join("cpuacct.stat"));
        let ticks = 1_000_000_000 / nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK).ok().flatten().unwrap_or(100) as u64;
        let percpu: Vec<u64> = std::fs::read_to_string(d.join("cpuacct.usage_percpu"))
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|v| v.parse().ok())
            .collect();
        (total, st.get("user").copied().unwrap_or(0) * ticks, st.get("system").copied().unwrap_or(0) * ticks, percpu)
    } else if let Some(d) = cgroup_dir("cpu", id) {
        let st = kv_file(d.join("cpu.stat"));
        let us = |k: &str| st.get(k).copied().unwrap_or(0) * 1000;
        (us("usage_usec"), us("user_usec"), us("system_usec"), Vec::new())
    } else {
        (0, 0, 0, Vec::new())
    };
    json!({
        "cpu_usage": {
            "total_usage": total,
            "percpu_usage": if percpu.is_empty() { Value::Null } else { json!(percpu) },
            "usage_in_kernelmode": kernel,
            "usage_in_usermode": user,
        },
        "system_cpu_usage": system_cpu_ns(),
        "online_cpus": online_cpus(),
        "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0},
    })
}

fn memory_stats(id: &str) -> Value {
    let Some(d) = cgroup_dir("memory", id) else { return json!({}) };
    if d.join("memory.usage_in_bytes").exists() {
        let stats = kv_file(d.join("memory.stat"));
        let mut v = json!({
            "usage": read_u64(d.join("memory.usage_in_bytes")).unwrap_or(0),
            "max_usage": read_u64(d.join("memory.max_usage_in_bytes")).unwrap_or(0),
            "limit": read_u64(d.join("memory.limit_in_bytes")).unwrap_or(0).min(host_memory()),
            "stats": stats,
        });
        // `omitempty` in dockerd's types
        if let Some(n) = read_u64(d.join("memory.failcnt")).filter(|n| *n > 0) {
            v["failcnt"] = n.into();
        }
        v
    } else {
        let stats = kv_file(d.join("memory.stat"));
        let limit = std::fs::read_to_string(d.join("memory.max"))
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .unwrap_or_else(host_memory);
        json!({
            "usage": read_u64(d.join("memory.current")).unwrap_or(0),
            "limit": limit,
            "stats": stats,
        })
    }
}

fn host_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| s.lines().next().and_then(|l| l.split_whitespace().nth(1)).and_then(|v| v.parse::<u64>().ok()))
        .unwrap_or(0)
        * 1024
}

fn pids_stats(id: &str) -> Value {
    let Some(d) = cgroup_dir("pids", id) else { return json!({}) };
    let limit = std::fs::read_to_string(d.join("pids.max")).ok().and_then(|s| s.trim().parse::<u64>().ok());
    let mut v = json!({ "current": read_u64(d.join("pids.current")).unwrap_or(0) });
    // left out when unlimited (`omitempty`)
    if let Some(l) = limit.filter(|l| *l > 0) {
        v["limit"] = l.into();
    }
    v
}

/// Interface counters of the container's network namespace, from its init's view.
fn networks(pid: i32) -> Value {
    if pid <= 0 {
        return Value::Null;
    }
    let Ok(dev) = std::fs::read_to_string(format!("/proc/{pid}/net/dev")) else { return Value::Null };
    let mut out = serde_json::Map::new();
    for l in dev.lines().skip(2) {
        let Some((name, rest)) = l.split_once(':') else { continue };
        let name = name.trim();
        if name == "lo" {
            continue;
        }
        let v: Vec<u64> = rest.split_whitespace().filter_map(|x| x.parse().ok()).collect();
        if v.len() < 16 {
            continue;
        }
        out.insert(
            name.to_owned(),
            json!({
                "rx_bytes": v[0], "rx_packets": v[1], "rx_errors": v[2], "rx_dropped": v[3],
                "tx_bytes": v[8], "tx_packets": v[9], "tx_errors": v[10], "tx_dropped": v[11],
            }),
        );
    }
    Value::Object(out)
}

/// Block I/O as dockerd 20.10 reports it. cgroup v1: the blkio controller's
/// `*_recursive` files (CFQ's when present, else the throttle policy's bytes and ops),
/// each line `MAJ:MIN Op value` one entry, the `Total` lines left out; lists of the
/// files the kernel does not have are empty. v2: `io.stat`'s `rbytes`/`wbytes` as
/// `read`/`write` entries of `io_service_bytes_recursive`, the rest null.
fn blkio_stats(cg: &str) -> Value {
    const V1: [(&str, &str); 8] = [
        ("io_service_bytes_recursive", "io_service_bytes_recursive"),
        ("io_serviced_recursive", "io_serviced_recursive"),
        ("io_queue_recursive", "io_queued_recursive"),
        ("io_service_time_recursive", "io_service_time_recursive"),
        ("io_wait_time_recursive", "io_wait_time_recursive"),
        ("io_merged_recursive", "io_merged_recursive"),
        ("io_time_recursive", "time_recursive"),
        ("sectors_recursive", "sectors_recursive"),
    ];
    let Some(dir) = cgroup_dir("blkio", cg) else { return json!({}) };
    let mut out = serde_json::Map::new();
    if dir.join("cgroup.controllers").exists() {
        for (key, _) in V1 {
            out.insert(key.into(), Value::Null);
        }
        let text = std::fs::read_to_string(dir.join("io.stat")).unwrap_or_default();
        out.insert("io_service_bytes_recursive".into(), Value::Array(io_stat_entries(&text)));
        return Value::Object(out);
    }
    for (key, file) in V1 {
        let cfq = std::fs::read_to_string(dir.join(format!("blkio.{file}")));
        let text = match (cfq, key) {
            (Ok(t), _) if !t.trim().is_empty() && !t.trim().starts_with("Total") => t,
            (_, "io_service_bytes_recursive" | "io_serviced_recursive") => {
                std::fs::read_to_string(dir.join(format!("blkio.throttle.{file}"))).unwrap_or_default()
            }
            (r, _) => r.unwrap_or_default(),
        };
        out.insert(key.into(), Value::Array(blkio_entries(&text)));
    }
    Value::Object(out)
}

/// `8:0 Read 4096` (or `8:0 4096` for sectors and time) lines as dockerd's entries.
fn blkio_entries(text: &str) -> Vec<Value> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let (dev, op, val) = match f.as_slice() {
                [dev, op, val] => (*dev, *op, *val),
                [dev, val] if dev.contains(':') => (*dev, "", *val),
                _ => return None,
            };
            let (maj, min) = dev.split_once(':')?;
            Some(json!({"major": maj.parse::<u64>().ok()?, "minor": min.parse::<u64>().ok()?, "op": op, "value": val.parse::<u64>().ok()?}))
        })
        .collect()
}

/// cgroup v2 `io.stat` lines (`8:0 rbytes=.. wbytes=.. rios=..`) as read/write byte entries.
fn io_stat_entries(text: &str) -> Vec<Value> {
    let mut out = Vec::new();
    for l in text.lines() {
        let mut f = l.split_whitespace();
        let Some((maj, min)) = f.next().and_then(|d| d.split_once(':')) else { continue };
        let (Ok(maj), Ok(min)) = (maj.parse::<u64>(), min.parse::<u64>()) else { continue };
        for kv in f {
            let op = match kv.split_once('=') {
                Some(("rbytes", v)) => ("read", v),
                Some(("wbytes", v)) => ("write", v),
                _ => continue,
            };
            if let Ok(v) = op.1.parse::<u64>() {
                out.push(json!({"major": maj, "minor": min, "op": op.0, "value": v}));
            }
        }
    }
    out
}

/// One stats sample. `pre` is the previous sample's `cpu_stats` and time.
pub fn sample(id: &str, cg: &str, name: &str, pid: i32, pre: Option<(&Value, &str)>) -> Value {
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
    let empty_cpu = json!({"cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0}, "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0}});
    let (precpu, preread) = match pre {
        Some((c, t)) => (c.clone(), t.to_owned()),
        None => (empty_cpu, super::ZERO_TIME.to_owned()),
    };
    let mut v = json!({
        "read": now,
        "preread": preread,
        "id": id,
        "name": format!("/{name}"),
        "pids_stats": pids_stats(cg),
        "blkio_stats": blkio_stats(cg),
        "num_procs": 0,
        "storage_stats": {},
        "cpu_stats": cpu_stats(cg),
        "precpu_stats": precpu,
        "memory_stats": memory_stats(cg),
    });
    // none without interfaces other than loopback (dockerd's `omitempty`)
    let nets = networks(pid);
    if nets.as_object().is_some_and(|o| !o.is_empty()) {
        v["networks"] = nets;
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blkio_lines_become_dockerds_entries() {
        let v1 = "8:0 Read 4096\n8:0 Write 8192\n8:0 Sync 0\nTotal 12288\n";
        let e = blkio_entries(v1);
        assert_eq!(e.len(), 3);
        assert_eq!(e[1], json!({"major": 8, "minor": 0, "op": "Write", "value": 8192}));
        assert_eq!(blkio_entries("8:16 512\n"), vec![json!({"major": 8, "minor": 16, "op": "", "value": 512})]);
        let v2 = "253:0 rbytes=1024 wbytes=2048 rios=1 wios=2 dbytes=0 dios=0\n";
        assert_eq!(
            io_stat_entries(v2),
            vec![json!({"major": 253, "minor": 0, "op": "read", "value": 1024}), json!({"major": 253, "minor": 0, "op": "write", "value": 2048})]
        );
    }
}
