//! A service's `build` section as the options of one classic build (`POST /build`),
//! from the normalized project: what berth compose and `berth build` send. Keys the
//! classic builder has no equivalent for are refused with the reason, never dropped.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::error::{Error, Result};

/// Where a build secret's bytes come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    File(String),
    Env(String),
}

/// One service's build.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BuildPlan {
    /// The context directory (absolute once normalized).
    pub context: String,
    /// The Dockerfile: a path (relative paths are the context's), or none with
    /// `inline` set.
    pub dockerfile: Option<String>,
    /// `dockerfile_inline`: the Dockerfile's text.
    pub inline: Option<String>,
    pub target: Option<String>,
    /// `KEY=VALUE`, or `KEY` alone for a value from the environment.
    pub args: Vec<String>,
    pub labels: BTreeMap<String, String>,
    pub cache_from: Vec<String>,
    pub network: Option<String>,
    pub shm_size: Option<String>,
    /// More tags than the service's image name.
    pub tags: Vec<String>,
    /// `host:ip`, as `--add-host` takes them.
    pub extra_hosts: Vec<String>,
    /// `name=soft[:hard]`, as `--ulimit` takes them.
    pub ulimits: Vec<String>,
    /// Secret id → where its content is.
    pub secrets: BTreeMap<String, SecretSource>,
    pub no_cache: bool,
    pub pull: bool,
}

fn err<T>(m: impl Into<String>) -> Result<T> {
    Err(Error::Invalid(m.into()))
}

fn is_set(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
        Value::String(s) => !s.is_empty(),
        Value::Number(_) => true,
    }
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The build of `service` (which has a `build` section) in project `p`.
/// `host_platform` is the daemon's (`linux/amd64`): `platforms` may name only it.
pub fn build_plan(p: &Value, service: &str, host_platform: &str) -> Result<BuildPlan> {
    let b = &p["services"][service]["build"];
    for (key, why) in [
        ("ssh", "SSH forwarding needs BuildKit"),
        ("cache_to", "exporting the cache needs BuildKit"),
        ("additional_contexts", "named contexts need BuildKit"),
        ("entitlements", "entitlements need BuildKit"),
        ("privileged", "privileged builds need BuildKit"),
    ] {
        if is_set(&b[key]) {
            return err(format!("service {service}: build.{key} is not supported by berth's classic builder: {why}"));
        }
    }
    if let Some(i) = b["isolation"].as_str().filter(|i| !i.is_empty() && *i != "default") {
        return err(format!("service {service}: build.isolation {i:?} is not supported on Linux"));
    }
    for pf in b["platforms"].as_array().into_iter().flatten() {
        let pf = pf.as_str().unwrap_or_default();
        if !pf.eq_ignore_ascii_case(host_platform) && !host_platform.starts_with(&format!("{pf}/")) {
            return err(format!(
                "service {service}: build.platforms {pf:?}: berth builds for the host platform ({host_platform}) only"
            ));
        }
    }
    let mut plan = BuildPlan {
        context: b["context"].as_str().unwrap_or(".").to_owned(),
        dockerfile: b["dockerfile"].as_str().filter(|f| !f.is_empty()).map(str::to_owned),
        inline: b["dockerfile_inline"].as_str().map(str::to_owned),
        target: b["target"].as_str().filter(|t| !t.is_empty()).map(str::to_owned),
        network: b["network"].as_str().filter(|n| !n.is_empty()).map(str::to_owned),
        shm_size: text(&b["shm_size"]),
        no_cache: b["no_cache"].as_bool().unwrap_or(false),
        pull: b["pull"].as_bool().unwrap_or(false),
        ..Default::default()
    };
    if plan.inline.is_some() {
        // compose-go's default "Dockerfile" does not apply to an inline one
        plan.dockerfile = None;
    }
    for (k, v) in b["args"].as_object().into_iter().flatten() {
        plan.args.push(match text(v) {
            Some(s) => format!("{k}={s}"),
            None if v.is_null() => k.clone(),
            None => format!("{k}={v}"),
        });
    }
    for (k, v) in b["labels"].as_object().into_iter().flatten() {
        plan.labels.insert(k.clone(), text(v).unwrap_or_default());
    }
    plan.cache_from = b["cache_from"].as_array().into_iter().flatten().filter_map(text).collect();
    plan.tags = b["tags"].as_array().into_iter().flatten().filter_map(text).collect();
    match &b["extra_hosts"] {
        Value::Object(m) => {
            for (host, ips) in m {
                let ips = match ips {
                    Value::Array(a) => a.iter().filter_map(text).collect(),
                    other => text(other).into_iter().collect::<Vec<_>>(),
                };
                plan.extra_hosts.extend(ips.into_iter().map(|ip| format!("{host}:{ip}")));
            }
        }
        Value::Array(a) => plan.extra_hosts = a.iter().filter_map(text).map(|h| h.replacen('=', ":", 1)).collect(),
        _ => {}
    }
    for (name, v) in b["ulimits"].as_object().into_iter().flatten() {
        plan.ulimits.push(match v.as_i64() {
            Some(n) => format!("{name}={n}"),
            None => format!("{name}={}:{}", v["soft"], v["hard"]),
        });
    }
    for r in b["secrets"].as_array().into_iter().flatten() {
        let source = match r {
            Value::String(s) => s.clone(),
            other => other["source"].as_str().unwrap_or_default().to_owned(),
        };
        if r["target"].as_str().is_some_and(|t| !t.is_empty() && t != source) {
            return err(format!(
                "service {service}: build secret {source}: a target other than the id needs BuildKit; use the id in RUN --mount=type=secret,id={source}"
            ));
        }
        let def = &p["secrets"][&source];
        let from = if let Some(f) = def["file"].as_str() {
            SecretSource::File(f.to_owned())
        } else if let Some(e) = def["environment"].as_str() {
            SecretSource::Env(e.to_owned())
        } else if def.is_null() {
            return err(format!("service {service} refers to undefined build secret {source}: invalid compose project"));
        } else {
            return err(format!("service {service}: build secret {source} must come from a file or the environment"));
        };
        plan.secrets.insert(source, from);
    }
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_key_becomes_an_option_or_an_error() {
        let p = json!({
            "services": {"app": {"build": {
                "context": "/src", "dockerfile_inline": "FROM busybox\n", "dockerfile": "Dockerfile",
                "args": {"A": "1", "B": null}, "labels": {"l": "v"}, "target": "t",
                "extra_hosts": {"db": ["10.0.0.2"]}, "ulimits": {"nofile": {"soft": 10, "hard": 20}, "nproc": 5},
                "secrets": ["tok", {"source": "pw"}], "tags": ["x:1"], "platforms": ["linux/amd64"],
            }}},
            "secrets": {"tok": {"environment": "TOKEN"}, "pw": {"file": "/abs/pw"}},
        });
        let b = build_plan(&p, "app", "linux/amd64").unwrap();
        assert_eq!(b.inline.as_deref(), Some("FROM busybox\n"));
        assert_eq!(b.dockerfile, None);
        assert_eq!(b.args, ["A=1", "B"]);
        assert_eq!(b.extra_hosts, ["db:10.0.0.2"]);
        assert_eq!(b.ulimits, ["nofile=10:20", "nproc=5"]);
        assert_eq!(b.secrets["tok"], SecretSource::Env("TOKEN".into()));
        assert_eq!(b.secrets["pw"], SecretSource::File("/abs/pw".into()));
        assert_eq!(b.tags, ["x:1"]);

        for (key, v) in [("ssh", json!(["default"])), ("cache_to", json!(["type=local"])), ("privileged", json!(true))] {
            let mut q = p.clone();
            q["services"]["app"]["build"][key] = v;
            let e = build_plan(&q, "app", "linux/amd64").unwrap_err().to_string();
            assert!(e.contains(&format!("build.{key} is not supported")), "{e}");
        }
        let mut q = p.clone();
        q["services"]["app"]["build"]["platforms"] = json!(["linux/arm64"]);
        assert!(build_plan(&q, "app", "linux/amd64").unwrap_err().to_string().contains("host platform"));
        let mut q = p.clone();
        q["services"]["app"]["build"]["secrets"] = json!(["nope"]);
        assert!(build_plan(&q, "app", "linux/amd64").unwrap_err().to_string().contains("undefined build secret"));
    }
}
