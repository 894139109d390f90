//! Merging of Compose models (override files, `extends`) following the Compose
//! specification's merge rules as implemented by compose-go's `override` package, and the
//! removal of duplicated entries in sequences ("unicity").

use std::collections::HashMap;

use crate::format::parse_volume;
use crate::path::KeyPath;
use crate::value::{Map, Value};

type Merger = fn(Value, Value, &KeyPath) -> Result<Value, String>;

const MERGE_SPECIALS: &[(&str, Merger)] = &[
    ("networks.*.ipam.config", merge_ipam_config),
    ("networks.*.labels", merge_to_sequence),
    ("volumes.*.labels", merge_to_sequence),
    ("services.*.annotations", merge_to_sequence),
    ("services.*.build", merge_build),
    ("services.*.build.args", merge_to_sequence),
    ("services.*.build.additional_contexts", merge_to_sequence),
    ("services.*.build.extra_hosts", merge_extra_hosts),
    ("services.*.build.labels", merge_to_sequence),
    ("services.*.command", override_value),
    ("services.*.depends_on", merge_depends_on),
    ("services.*.deploy.labels", merge_to_sequence),
    ("services.*.dns", merge_to_sequence),
    ("services.*.dns_opt", merge_to_sequence),
    ("services.*.dns_search", merge_to_sequence),
    ("services.*.entrypoint", override_value),
    ("services.*.env_file", merge_to_sequence),
    ("services.*.label_file", merge_to_sequence),
    ("services.*.environment", merge_to_sequence),
    ("services.*.extra_hosts", merge_extra_hosts),
    ("services.*.healthcheck.test", override_value),
    ("services.*.labels", merge_to_sequence),
    ("services.*.volumes.*.volume.labels", merge_to_sequence),
    ("services.*.logging", merge_logging),
    ("services.*.models", merge_models),
    ("services.*.networks", merge_networks),
    ("services.*.sysctls", merge_to_sequence),
    ("services.*.tmpfs", merge_to_sequence),
    ("services.*.ulimits.*", merge_ulimit),
];

/// Merges `override` into `base` (both top-level models).
pub fn merge(base: Map, other: Map) -> Result<Map, String> {
    merge_mappings(base, other, &KeyPath::root())
}

/// Merges a service definition over the service it extends.
pub fn extend_service(base: Map, service: Map) -> Result<Map, String> {
    merge_mappings(base, service, &KeyPath::parse("services.x"))
}

fn merge_yaml(e: Value, o: Value, p: &KeyPath) -> Result<Value, String> {
    for (pattern, merger) in MERGE_SPECIALS {
        if p.matches(pattern) {
            return merger(e, o, p);
        }
    }
    if o.is_null() {
        return Ok(e);
    }
    match e {
        Value::Map(m) => match o {
            Value::Map(other) => Ok(Value::Map(merge_mappings(m, other, p)?)),
            _ => Err(format!("cannot override {p}")),
        },
        Value::Seq(mut s) => match o {
            Value::Seq(other) => {
                s.extend(other);
                Ok(Value::Seq(s))
            }
            _ => Err(format!("cannot override {p}")),
        },
        _ => Ok(o),
    }
}

fn merge_mappings(mut mapping: Map, other: Map, p: &KeyPath) -> Result<Map, String> {
    for (k, v) in other {
        match mapping.remove(&k) {
            None => {
                mapping.insert(k, v);
            }
            Some(e) => {
                let merged = merge_yaml(e, v, &p.next(&k))?;
                mapping.insert(k, merged);
            }
        }
    }
    Ok(mapping)
}

fn override_value(_: Value, o: Value, _: &KeyPath) -> Result<Value, String> {
    Ok(o)
}

fn merge_logging(c: Value, o: Value, p: &KeyPath) -> Result<Value, String> {
    let (Value::Map(config), Value::Map(other)) = (c, o.clone()) else {
        return Ok(o);
    };
    let d = other.get("driver");
    let od = config.get("driver");
    if d == od || d.is_none() || od.is_none() {
        return Ok(Value::Map(merge_mappings(config, other, p)?));
    }
    Ok(Value::Map(other))
}

fn to_build(v: Value) -> Map {
    match v {
        Value::String(s) => {
            let mut m = Map::new();
            m.insert("context".into(), Value::String(s));
            m
        }
        Value::Map(m) => m,
        _ => Map::new(),
    }
}

fn merge_build(c: Value, o: Value, p: &KeyPath) -> Result<Value, String> {
    Ok(Value::Map(merge_mappings(to_build(c), to_build(o), p)?))
}

fn depends_on_default() -> Value {
    let mut m = Map::new();
    m.insert("condition".into(), Value::from("service_started"));
    m.insert("required".into(), Value::Bool(true));
    Value::Map(m)
}

fn convert_into_mapping(v: Value, default: Option<&Value>) -> Map {
    match v {
        Value::Map(m) => m,
        Value::Seq(items) => {
            let mut out = Map::new();
            for s in items {
                let key = match s {
                    Value::String(s) => s,
                    other => other.go_sprint(),
                };
                out.insert(key, default.cloned().unwrap_or(Value::Null));
            }
            out
        }
        _ => Map::new(),
    }
}

fn merge_depends_on(c: Value, o: Value, p: &KeyPath) -> Result<Value, String> {
    let d = depends_on_default();
    let right = convert_into_mapping(c, Some(&d));
    let left = convert_into_mapping(o, Some(&d));
    Ok(Value::Map(merge_mappings(right, left, p)?))
}

fn merge_models(c: Value, o: Value, p: &KeyPath) -> Result<Value, String> {
    Ok(Value::Map(merge_mappings(
        convert_into_mapping(c, None),
        convert_into_mapping(o, None),
        p,
    )?))
}

fn merge_networks(c: Value, o: Value, p: &KeyPath) -> Result<Value, String> {
    Ok(Value::Map(merge_mappings(
        convert_into_mapping(c, None),
        convert_into_mapping(o, None),
        p,
    )?))
}

fn merge_extra_hosts(c: Value, o: Value, _: &KeyPath) -> Result<Value, String> {
    let mut right = convert_into_sequence(c);
    let left = convert_into_sequence(o);
    let mut extra = Vec::new();
    for v in left {
        if !right.contains(&v) {
            extra.push(v);
        }
    }
    right.extend(extra);
    Ok(Value::Seq(right))
}

fn merge_to_sequence(c: Value, o: Value, _: &KeyPath) -> Result<Value, String> {
    let mut right = convert_into_sequence(c);
    right.extend(convert_into_sequence(o));
    Ok(Value::Seq(right))
}

/// Converts a mapping into a sorted `key=value` sequence (used when merging mappings
/// that may also be written as lists).
pub fn convert_into_sequence(v: Value) -> Vec<Value> {
    match v {
        Value::Map(m) => {
            let mut seq: Vec<String> = Vec::new();
            for (k, val) in m {
                match val {
                    Value::Null => seq.push(k),
                    Value::Seq(items) => {
                        for item in items {
                            seq.push(format!("{k}={}", item.go_sprint()));
                        }
                    }
                    other => seq.push(format!("{k}={}", other.go_sprint())),
                }
            }
            seq.sort();
            seq.into_iter().map(Value::String).collect()
        }
        Value::Seq(s) => s,
        Value::String(s) => vec![Value::String(s)],
        _ => Vec::new(),
    }
}

fn merge_ulimit(_: Value, o: Value, _: &KeyPath) -> Result<Value, String> {
    Ok(o)
}

fn merge_ipam_config(c: Value, o: Value, p: &KeyPath) -> Result<Value, String> {
    let Value::Seq(configs) = c else {
        return Err(format!("{p}: unexpected type {}", c.kind()));
    };
    let Value::Seq(overrides) = o else {
        return Err(format!("{p}: unexpected type {}", o.kind()));
    };
    let mut ipam: Vec<Map> = Vec::new();
    for original in configs {
        let right = convert_into_mapping(original, None);
        for ov in &overrides {
            let left = convert_into_mapping(ov.clone(), None);
            if left.get("subnet") != right.get("subnet")
                && !ipam.iter().any(|a| a.get("subnet") == left.get("subnet"))
            {
                ipam.push(left);
                continue;
            }
            let merged = merge_mappings(right.clone(), left, p)?;
            match ipam
                .iter()
                .position(|a| a.get("subnet") == merged.get("subnet"))
            {
                Some(i) => ipam[i] = merged,
                None => ipam.push(merged),
            }
        }
    }
    Ok(Value::Seq(ipam.into_iter().map(Value::Map).collect()))
}

// ---------------------------------------------------------------------------------------
// unicity

type Indexer = fn(&Value, &KeyPath) -> Result<String, String>;

const UNIQUE: &[(&str, Indexer)] = &[
    ("networks.*.labels", key_value_indexer),
    ("networks.*.ipam.options", key_value_indexer),
    ("services.*.annotations", key_value_indexer),
    ("services.*.build.args", key_value_indexer),
    ("services.*.build.additional_contexts", key_value_indexer),
    ("services.*.build.platform", key_value_indexer),
    ("services.*.build.tags", key_value_indexer),
    ("services.*.build.labels", key_value_indexer),
    ("services.*.cap_add", key_value_indexer),
    ("services.*.cap_drop", key_value_indexer),
    ("services.*.devices", device_mapping_indexer),
    ("services.*.configs", config_indexer),
    ("services.*.deploy.labels", key_value_indexer),
    ("services.*.dns", key_value_indexer),
    ("services.*.dns_opt", key_value_indexer),
    ("services.*.dns_search", key_value_indexer),
    ("services.*.environment", key_value_indexer),
    ("services.*.env_file", env_file_indexer),
    ("services.*.expose", expose_indexer),
    ("services.*.labels", key_value_indexer),
    ("services.*.links", key_value_indexer),
    ("services.*.networks.*.aliases", key_value_indexer),
    ("services.*.networks.*.link_local_ips", key_value_indexer),
    ("services.*.ports", port_indexer),
    ("services.*.profiles", key_value_indexer),
    ("services.*.secrets", secret_indexer),
    ("services.*.sysctls", key_value_indexer),
    ("services.*.tmpfs", key_value_indexer),
    ("services.*.volumes", volume_indexer),
];

/// Removes redefinitions of elements declared in sequences: a later entry with the same
/// key replaces the earlier one, at the earlier one's position.
pub fn enforce_unicity(model: Map) -> Result<Map, String> {
    match unicity(Value::Map(model), &KeyPath::root())? {
        Value::Map(m) => Ok(m),
        _ => Ok(Map::new()),
    }
}

fn unicity(v: Value, p: &KeyPath) -> Result<Value, String> {
    match v {
        Value::Map(m) => {
            let mut out = Map::new();
            for (k, e) in m {
                let u = unicity(e, &p.next(&k))?;
                out.insert(k, u);
            }
            Ok(Value::Map(out))
        }
        Value::Seq(items) => {
            for (pattern, indexer) in UNIQUE {
                if p.matches(pattern) {
                    let mut seq: Vec<Value> = Vec::new();
                    let mut keys: HashMap<String, usize> = HashMap::new();
                    for (i, entry) in items.into_iter().enumerate() {
                        let key = indexer(&entry, &p.next(&format!("[{i}]")))?;
                        match keys.get(&key) {
                            Some(j) => seq[*j] = entry,
                            None => {
                                seq.push(entry);
                                keys.insert(key, seq.len() - 1);
                            }
                        }
                    }
                    return Ok(Value::Seq(seq));
                }
            }
            Ok(Value::Seq(items))
        }
        other => Ok(other),
    }
}

fn key_value_indexer(v: &Value, p: &KeyPath) -> Result<String, String> {
    match v {
        Value::String(s) => Ok(match s.split_once('=') {
            Some((k, _)) => k.to_string(),
            None => s.clone(),
        }),
        other => Err(format!("{p}: unexpected type {}", other.kind())),
    }
}

fn volume_indexer(v: &Value, p: &KeyPath) -> Result<String, String> {
    match v {
        Value::Map(m) => match m.get("target") {
            Some(Value::String(t)) => Ok(t.clone()),
            _ => Err(format!("service volume {p} is missing a mount target")),
        },
        Value::String(s) => Ok(parse_volume(s)?.target),
        _ => Ok(String::new()),
    }
}

fn device_mapping_indexer(v: &Value, p: &KeyPath) -> Result<String, String> {
    match v {
        Value::Map(m) => match m.get("target") {
            Some(Value::String(t)) => Ok(t.clone()),
            _ => Err(format!("service device {p} is missing a mount target")),
        },
        Value::String(s) => {
            let parts: Vec<&str> = s.split(':').collect();
            Ok(if parts.len() == 1 {
                parts[0].to_string()
            } else {
                parts[1].to_string()
            })
        }
        _ => Ok(String::new()),
    }
}

fn expose_indexer(v: &Value, p: &KeyPath) -> Result<String, String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Int(i) => Ok(i.to_string()),
        other => Err(format!(
            "{p}: unsupported expose value {}",
            other.go_sprint()
        )),
    }
}

fn mount_indexer(default_path: &str, v: &Value, p: &KeyPath) -> Result<String, String> {
    match v {
        Value::String(s) => Ok(format!("{default_path}/{s}")),
        Value::Map(m) => match m.get("target") {
            Some(t) => Ok(t.go_sprint()),
            None => Ok(format!(
                "{default_path}/{}",
                m.get("source")
                    .map(Value::go_sprint)
                    .unwrap_or_else(|| "%!s(<nil>)".into())
            )),
        },
        other => Err(format!(
            "{p}: unsupported expose value {}",
            other.go_sprint()
        )),
    }
}

fn config_indexer(v: &Value, p: &KeyPath) -> Result<String, String> {
    mount_indexer("", v, p)
}

fn secret_indexer(v: &Value, p: &KeyPath) -> Result<String, String> {
    mount_indexer("/run/secrets", v, p)
}

fn port_indexer(v: &Value, p: &KeyPath) -> Result<String, String> {
    match v {
        Value::Int(i) => Ok(i.to_string()),
        Value::Map(m) => {
            let Some(target) = m.get("target") else {
                return Err(format!("service ports {p} is missing a target port"));
            };
            let published = m
                .get("published")
                .map(Value::go_sprint)
                .unwrap_or_else(|| "%!s(<nil>)".into());
            let host = m
                .get("host_ip")
                .map(Value::go_sprint)
                .unwrap_or_else(|| "0.0.0.0".into());
            let protocol = m
                .get("protocol")
                .map(Value::go_sprint)
                .unwrap_or_else(|| "tcp".into());
            Ok(format!(
                "{host}:{published}:{}/{protocol}",
                target.go_sprint()
            ))
        }
        Value::String(s) => Ok(s.clone()),
        _ => Ok(String::new()),
    }
}

fn env_file_indexer(v: &Value, p: &KeyPath) -> Result<String, String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Map(m) => match m.get("path") {
            Some(path) => Ok(path.go_sprint()),
            None => Err(format!("environment path attribute {p} is missing")),
        },
        _ => Ok(String::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(entries: &[(&str, Value)]) -> Map {
        entries
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    fn svc(entries: &[(&str, Value)]) -> Map {
        map(&[(
            "services",
            Value::Map(map(&[("web", Value::Map(map(entries)))])),
        )])
    }

    fn web(m: &Map) -> Map {
        m["services"]
            .as_map()
            .and_then(|s| s.get("web"))
            .and_then(Value::as_map)
            .cloned()
            .unwrap_or_default()
    }

    #[test]
    fn scalars_override_and_sequences_append() {
        let base = svc(&[
            ("image", "a".into()),
            ("cap_add", Value::Seq(vec!["X".into()])),
        ]);
        let over = svc(&[
            ("image", "b".into()),
            ("cap_add", Value::Seq(vec!["Y".into()])),
        ]);
        let merged = web(&merge(base, over).expect("merge"));
        assert_eq!(merged["image"], Value::from("b"));
        assert_eq!(merged["cap_add"], Value::Seq(vec!["X".into(), "Y".into()]));
    }

    #[test]
    fn command_is_replaced_and_environment_merged_as_sequence() {
        let base = svc(&[
            ("command", Value::Seq(vec!["a".into(), "b".into()])),
            (
                "environment",
                Value::Map(map(&[("A", "1".into()), ("B", Value::Null)])),
            ),
        ]);
        let over = svc(&[
            ("command", Value::Seq(vec!["c".into()])),
            ("environment", Value::Seq(vec!["A=2".into()])),
        ]);
        let merged = enforce_unicity(merge(base, over).expect("merge")).expect("unicity");
        let w = web(&merged);
        assert_eq!(w["command"], Value::Seq(vec!["c".into()]));
        assert_eq!(w["environment"], Value::Seq(vec!["A=2".into(), "B".into()]));
    }

    #[test]
    fn depends_on_list_and_map_merge() {
        let base = svc(&[("depends_on", Value::Seq(vec!["db".into()]))]);
        let over = svc(&[(
            "depends_on",
            Value::Map(map(&[(
                "cache",
                Value::Map(map(&[("condition", "service_healthy".into())])),
            )])),
        )]);
        let w = web(&merge(base, over).expect("merge"));
        let deps = w["depends_on"].as_map().cloned().expect("map");
        assert_eq!(deps["db"], depends_on_default());
        assert!(deps.contains_key("cache"));
    }

    #[test]
    fn unicity_keeps_first_position_last_value() {
        let m = svc(&[(
            "ports",
            Value::Seq(vec!["80:80".into(), "81:81".into(), "80:80".into()]),
        )]);
        let w = web(&enforce_unicity(m).expect("unicity"));
        assert_eq!(w["ports"], Value::Seq(vec!["80:80".into(), "81:81".into()]));
    }
}
