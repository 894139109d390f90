//! Normalization of a loaded model: the implicit `default` network, build defaults,
//! environment resolution from the project environment, implicit `depends_on` entries from
//! `links` / `volumes_from` / `service:` namespaces, and resource names.

use std::collections::BTreeMap;

use crate::path::clean;
use crate::value::{Map, Value};

fn dependency(restart: bool) -> Value {
    let mut m = Map::new();
    m.insert("condition".into(), Value::from("service_started"));
    m.insert("restart".into(), Value::Bool(restart));
    m.insert("required".into(), Value::Bool(true));
    Value::Map(m)
}

/// Normalizes `model` (which has its `name` set) in place.
pub fn normalize(model: &mut Map, env: &BTreeMap<String, String>) -> Result<(), String> {
    normalize_networks(model);
    let lookup = |k: &str| env.get(k).cloned();
    if let Some(Value::Map(services)) = model.get_mut("services") {
        for (name, s) in services.iter_mut() {
            let Value::Map(service) = s else {
                return Err(format!("services.{name} must be a mapping"));
            };
            if service.get("pull_policy").and_then(Value::as_str) == Some("if_not_present") {
                service.insert("pull_policy".into(), Value::from("missing"));
            }
            if let Some(Value::Map(build)) = service.get_mut("build") {
                if build.get("context").is_none_or(Value::is_null) {
                    build.insert("context".into(), Value::from("."));
                }
                if build.get("dockerfile").is_none_or(Value::is_null)
                    && build.get("dockerfile_inline").is_none_or(Value::is_null)
                {
                    build.insert("dockerfile".into(), Value::from("Dockerfile"));
                }
                if let Some(args) = build.remove("args") {
                    build.insert(
                        "args".into(),
                        resolve(args, &lookup, false).unwrap_or(Value::Null),
                    );
                }
            }
            if let Some(e) = service.remove("environment") {
                service.insert(
                    "environment".into(),
                    resolve(e, &lookup, true).unwrap_or(Value::Null),
                );
            }

            let mut depends_on = match service.get("depends_on") {
                Some(Value::Map(d)) => d.clone(),
                _ => Map::new(),
            };
            if let Some(Value::Seq(links)) = service.get("links") {
                for l in links {
                    let link = l.go_sprint();
                    let parts: Vec<&str> = link.split(':').collect();
                    let target = if parts.len() == 2 {
                        parts[0].to_string()
                    } else {
                        link.clone()
                    };
                    depends_on.entry(target).or_insert_with(|| dependency(true));
                }
            }
            for ns in ["network_mode", "ipc", "pid", "uts", "cgroup"] {
                if let Some(Value::String(r)) = service.get(ns) {
                    if let Some(shared) = r.strip_prefix("service:") {
                        depends_on
                            .entry(shared.to_string())
                            .or_insert_with(|| dependency(true));
                    }
                }
            }
            if let Some(Value::Seq(volumes)) = service.get_mut("volumes") {
                for v in volumes.iter_mut() {
                    if let Value::Map(vol) = v {
                        if let Some(Value::String(t)) = vol.get("target") {
                            let t = clean(t);
                            vol.insert("target".into(), Value::String(t));
                        }
                    }
                }
            }
            if let Some(Value::Seq(vf)) = service.get("volumes_from") {
                for v in vf {
                    let vol = v.go_sprint();
                    if !vol.starts_with("container:") {
                        let spec = vol.split(':').next().unwrap_or("").to_string();
                        depends_on.entry(spec).or_insert_with(|| dependency(false));
                    }
                }
            }
            if !depends_on.is_empty() {
                service.insert("depends_on".into(), Value::Map(depends_on));
            }
        }
    }
    set_name_from_key(model);
    Ok(())
}

fn normalize_networks(model: &mut Map) {
    let mut networks = match model.get("networks") {
        Some(Value::Map(n)) => n.clone(),
        _ => Map::new(),
    };
    let mut uses_default = false;
    if let Some(Value::Map(services)) = model.get_mut("services") {
        for s in services.values_mut() {
            let Value::Map(service) = s else { continue };
            if service.contains_key("provider") || service.contains_key("network_mode") {
                continue;
            }
            match service.get("networks") {
                None => {
                    let mut m = Map::new();
                    m.insert("default".into(), Value::Null);
                    service.insert("networks".into(), Value::Map(m));
                    uses_default = true;
                }
                Some(Value::Map(net)) => {
                    if net.is_empty() {
                        let mut m = Map::new();
                        m.insert("default".into(), Value::Null);
                        service.insert("networks".into(), Value::Map(m));
                        uses_default = true;
                    } else if net.contains_key("default") {
                        uses_default = true;
                    }
                }
                Some(_) => {}
            }
        }
    }
    if !networks.contains_key("default") && uses_default {
        networks.insert("default".into(), Value::Null);
    }
    if !networks.is_empty() {
        model.insert("networks".into(), Value::Map(networks));
    }
}

/// Resolves unset values of an environment (or build args) from the project environment.
/// With `keep_empty`, variables that cannot be resolved are kept without a value;
/// otherwise they are dropped.
pub fn resolve(
    v: Value,
    lookup: &dyn Fn(&str) -> Option<String>,
    keep_empty: bool,
) -> Option<Value> {
    match v {
        Value::Seq(items) => {
            let resolved: Vec<Value> = items
                .into_iter()
                .filter_map(|e| resolve(e, lookup, keep_empty))
                .collect();
            Some(Value::Seq(resolved))
        }
        Value::Map(m) => {
            let mut out = Map::new();
            for (k, val) in m {
                if !val.is_null() {
                    out.insert(k, val);
                    continue;
                }
                if let Some(s) = lookup(&k) {
                    out.insert(k, Value::String(s));
                } else if keep_empty {
                    out.insert(k, Value::Null);
                }
            }
            Some(Value::Map(out))
        }
        Value::String(s) => {
            if !s.contains('=') {
                if let Some(val) = lookup(&s) {
                    return Some(Value::String(format!("{s}={val}")));
                }
                if keep_empty {
                    return Some(Value::String(s));
                }
                return None;
            }
            Some(Value::String(s))
        }
        _ => None,
    }
}

fn set_name_from_key(model: &mut Map) {
    let project = model.get("name").map(Value::go_sprint).unwrap_or_default();
    for kind in ["networks", "volumes", "configs", "secrets"] {
        let Some(Value::Map(top)) = model.get_mut(kind) else {
            continue;
        };
        for (key, r) in top.iter_mut() {
            let mut resource = match r {
                Value::Map(m) => m.clone(),
                _ => Map::new(),
            };
            if resource.get("name").is_none_or(Value::is_null) {
                let external = resource
                    .get("external")
                    .map(|x| {
                        matches!(
                            x.go_sprint().as_str(),
                            "true" | "1" | "t" | "T" | "TRUE" | "True"
                        )
                    })
                    .unwrap_or(false);
                let name = if external {
                    key.clone()
                } else {
                    format!("{project}_{key}")
                };
                resource.insert("name".into(), Value::String(name));
            }
            *r = Value::Map(resource);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_network_and_names() {
        let mut svc = Map::new();
        svc.insert("image".into(), Value::from("nginx"));
        svc.insert("links".into(), Value::Seq(vec![Value::from("db:database")]));
        svc.insert(
            "environment".into(),
            Value::Seq(vec![Value::from("HOME"), Value::from("UNSET")]),
        );
        let mut services = Map::new();
        services.insert("web".into(), Value::Map(svc));
        let mut model = Map::new();
        model.insert("name".into(), Value::from("proj"));
        model.insert("services".into(), Value::Map(services));
        let mut env = BTreeMap::new();
        env.insert("HOME".to_string(), "/root".to_string());
        normalize(&mut model, &env).expect("normalize");
        let j = Value::Map(model).to_json();
        assert_eq!(j["networks"]["default"]["name"], "proj_default");
        assert!(j["services"]["web"]["networks"]["default"].is_null());
        assert_eq!(j["services"]["web"]["depends_on"]["db"]["restart"], true);
        assert_eq!(j["services"]["web"]["environment"][0], "HOME=/root");
        assert_eq!(j["services"]["web"]["environment"][1], "UNSET");
    }
}
