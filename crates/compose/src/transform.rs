//! Rewriting of short syntaxes into the canonical (long) syntax, and injection of default
//! values for attributes Compose always fills in (compose-go's `transform` package).

use crate::format::{parse_port_config, parse_volume};
use crate::path::KeyPath;
use crate::value::{Map, Value};

type Func = fn(Value, &KeyPath, bool) -> Result<Value, String>;

const TRANSFORMERS: &[(&str, Func)] = &[
    ("services.*", transform_mapping_value),
    ("services.*.build.secrets.*", transform_file_mount),
    ("services.*.build.provenance", transform_string_or_x),
    ("services.*.build.sbom", transform_string_or_x),
    ("services.*.build.additional_contexts", transform_key_value),
    ("services.*.depends_on", transform_depends_on),
    ("services.*.env_file", transform_env_file),
    ("services.*.label_file", transform_string_or_list),
    ("services.*.extends", transform_extends),
    ("services.*.gpus", transform_gpus),
    ("services.*.networks", transform_string_slice_to_map),
    ("services.*.models", transform_string_slice_to_map),
    ("services.*.volumes.*", transform_volume_mount),
    ("services.*.dns", transform_string_or_list),
    ("services.*.devices.*", transform_device_mapping),
    ("services.*.secrets.*", transform_file_mount),
    ("services.*.configs.*", transform_file_mount),
    ("services.*.ports", transform_ports),
    ("services.*.build", transform_build),
    ("services.*.build.ssh", transform_ssh),
    ("services.*.ulimits.*", transform_ulimits),
    ("services.*.build.ulimits.*", transform_ulimits),
    (
        "services.*.develop.watch.*.ignore",
        transform_string_or_list,
    ),
    (
        "services.*.develop.watch.*.include",
        transform_string_or_list,
    ),
    ("volumes.*", transform_maybe_external),
    ("networks.*", transform_maybe_external),
    ("secrets.*", transform_maybe_external),
    ("configs.*", transform_maybe_external),
    ("include.*", transform_include),
];

/// Rewrites a model into canonical syntax. With `ignore_parse_error`, unparsable short
/// syntaxes are left as they are (used when interpolation is disabled).
pub fn canonical(model: Map, ignore_parse_error: bool) -> Result<Map, String> {
    match transform(Value::Map(model), &KeyPath::root(), ignore_parse_error)? {
        Value::Map(m) => Ok(m),
        _ => Ok(Map::new()),
    }
}

fn transform(data: Value, p: &KeyPath, ignore: bool) -> Result<Value, String> {
    for (pattern, f) in TRANSFORMERS {
        if p.matches(pattern) {
            return f(data, p, ignore);
        }
    }
    match data {
        Value::Map(m) => Ok(Value::Map(transform_mapping(m, p, ignore)?)),
        Value::Seq(s) => Ok(Value::Seq(transform_sequence(s, p, ignore)?)),
        other => Ok(other),
    }
}

fn transform_sequence(v: Vec<Value>, p: &KeyPath, ignore: bool) -> Result<Vec<Value>, String> {
    let next = p.next("[]");
    v.into_iter().map(|e| transform(e, &next, ignore)).collect()
}

fn transform_mapping(v: Map, p: &KeyPath, ignore: bool) -> Result<Map, String> {
    let mut out = Map::new();
    for (k, e) in v {
        let t = transform(e, &p.next(&k), ignore)?;
        out.insert(k, t);
    }
    Ok(out)
}

fn transform_mapping_value(data: Value, p: &KeyPath, ignore: bool) -> Result<Value, String> {
    match data {
        Value::Map(m) => Ok(Value::Map(transform_mapping(m, p, ignore)?)),
        other => Ok(other),
    }
}

fn transform_string_or_list(data: Value, _: &KeyPath, _: bool) -> Result<Value, String> {
    match data {
        Value::String(s) => Ok(Value::Seq(vec![Value::String(s)])),
        other => Ok(other),
    }
}

fn transform_string_or_x(data: Value, _: &KeyPath, _: bool) -> Result<Value, String> {
    match data {
        Value::String(s) => Ok(Value::String(s)),
        other => Ok(Value::String(other.go_sprint())),
    }
}

fn transform_key_value(data: Value, p: &KeyPath, ignore: bool) -> Result<Value, String> {
    match data {
        Value::Map(m) => Ok(Value::Map(m)),
        Value::Seq(items) => {
            let mut out = Map::new();
            for e in &items {
                let s = e.go_sprint();
                match s.split_once('=') {
                    Some((k, v)) => {
                        out.insert(k.to_string(), Value::from(v));
                    }
                    None => {
                        if ignore {
                            return Ok(Value::Seq(items));
                        }
                        return Err(format!("{p}: invalid value {s}, expected key=value"));
                    }
                }
            }
            Ok(Value::Map(out))
        }
        other => Err(format!("{p}: invalid type {}", other.kind())),
    }
}

fn transform_depends_on(data: Value, p: &KeyPath, _: bool) -> Result<Value, String> {
    match data {
        Value::Map(m) => {
            let mut out = Map::new();
            for (k, e) in m {
                let Value::Map(mut d) = e else {
                    return Err(format!("{p}.{k}: unsupported value {}", e.go_sprint()));
                };
                d.entry("condition".to_string())
                    .or_insert_with(|| Value::from("service_started"));
                d.entry("required".to_string()).or_insert(Value::Bool(true));
                out.insert(k, Value::Map(d));
            }
            Ok(Value::Map(out))
        }
        Value::Seq(items) => {
            let mut out = Map::new();
            for k in items {
                let mut d = Map::new();
                d.insert("condition".into(), Value::from("service_started"));
                d.insert("required".into(), Value::Bool(true));
                out.insert(k.go_sprint(), Value::Map(d));
            }
            Ok(Value::Map(out))
        }
        other => Err(format!("{p}: invalid type {} for depend_on", other.kind())),
    }
}

fn env_file_value(v: Value) -> Value {
    match v {
        Value::String(s) => {
            let mut m = Map::new();
            m.insert("path".into(), Value::String(s));
            m.insert("required".into(), Value::Bool(true));
            Value::Map(m)
        }
        Value::Map(mut m) => {
            m.entry("required".to_string()).or_insert(Value::Bool(true));
            Value::Map(m)
        }
        _ => Value::Null,
    }
}

fn transform_env_file(data: Value, p: &KeyPath, _: bool) -> Result<Value, String> {
    match data {
        Value::String(s) => Ok(Value::Seq(vec![env_file_value(Value::String(s))])),
        Value::Seq(items) => Ok(Value::Seq(items.into_iter().map(env_file_value).collect())),
        other => Err(format!("{p}: invalid type {} for env_file", other.kind())),
    }
}

fn transform_extends(data: Value, p: &KeyPath, ignore: bool) -> Result<Value, String> {
    match data {
        Value::Map(m) => Ok(Value::Map(transform_mapping(m, p, ignore)?)),
        Value::String(s) => {
            let mut m = Map::new();
            m.insert("service".into(), Value::String(s));
            Ok(Value::Map(m))
        }
        other => Err(format!("{p}: invalid type {} for extends", other.kind())),
    }
}

fn transform_gpus(data: Value, p: &KeyPath, ignore: bool) -> Result<Value, String> {
    match data {
        Value::Seq(s) => Ok(Value::Seq(transform_sequence(s, p, ignore)?)),
        Value::String(_) => {
            let mut m = Map::new();
            m.insert("count".into(), Value::from("all"));
            Ok(Value::Seq(vec![Value::Map(m)]))
        }
        other => Err(format!("{p}: invalid type {} for gpus", other.kind())),
    }
}

fn transform_string_slice_to_map(data: Value, _: &KeyPath, _: bool) -> Result<Value, String> {
    match data {
        Value::Seq(items) => {
            let mut m = Map::new();
            for item in items {
                m.insert(item.go_sprint(), Value::Null);
            }
            Ok(Value::Map(m))
        }
        other => Ok(other),
    }
}

fn clean_target(t: &str) -> String {
    if t.is_empty() {
        String::new()
    } else {
        crate::path::clean(t)
    }
}

fn transform_volume_mount(data: Value, p: &KeyPath, ignore: bool) -> Result<Value, String> {
    match data {
        Value::Map(m) => Ok(Value::Map(m)),
        Value::String(s) => match parse_volume(&s) {
            Ok(mut v) => {
                v.target = clean_target(&v.target);
                Ok(Value::Map(v.to_map()))
            }
            Err(e) => {
                if ignore {
                    Ok(Value::String(s))
                } else {
                    Err(e)
                }
            }
        },
        other => Err(format!(
            "{p}: invalid type {} for service volume mount",
            other.kind()
        )),
    }
}

fn transform_device_mapping(data: Value, p: &KeyPath, ignore: bool) -> Result<Value, String> {
    match data {
        Value::Map(m) => Ok(Value::Map(m)),
        Value::String(s) => {
            let parts: Vec<&str> = s.split(':').collect();
            let (mut src, mut dst, mut perms) = (String::new(), String::new(), "rwm".to_string());
            match parts.len() {
                3 => {
                    perms = parts[2].to_string();
                    dst = parts[1].to_string();
                    src = parts[0].to_string();
                }
                2 => {
                    dst = parts[1].to_string();
                    src = parts[0].to_string();
                }
                1 => src = parts[0].to_string(),
                _ => {
                    if !ignore {
                        return Err(format!(
                            "confusing device mapping, please use long syntax: {s}"
                        ));
                    }
                }
            }
            if dst.is_empty() {
                dst = src.clone();
            }
            let mut m = Map::new();
            m.insert("source".into(), Value::String(src));
            m.insert("target".into(), Value::String(dst));
            m.insert("permissions".into(), Value::String(perms));
            Ok(Value::Map(m))
        }
        other => Err(format!(
            "{p}: invalid type {} for service volume mount",
            other.kind()
        )),
    }
}

fn transform_file_mount(data: Value, p: &KeyPath, _: bool) -> Result<Value, String> {
    match data {
        Value::Map(m) => Ok(Value::Map(m)),
        Value::String(s) => {
            let mut m = Map::new();
            m.insert("source".into(), Value::String(s));
            Ok(Value::Map(m))
        }
        other => Err(format!("{p}: unsupported type {}", other.kind())),
    }
}

fn transform_ports(data: Value, p: &KeyPath, ignore: bool) -> Result<Value, String> {
    let Value::Seq(entries) = data else {
        return Err(format!("{p}: invalid type {} for port", data.kind()));
    };
    let mut ports = Vec::new();
    for entry in &entries {
        match entry {
            Value::Int(i) => {
                for spec in parse_port_config(&i.to_string())? {
                    ports.push(Value::Map(spec.to_map()));
                }
            }
            Value::String(s) => match parse_port_config(s) {
                Ok(specs) => {
                    for spec in specs {
                        ports.push(Value::Map(spec.to_map()));
                    }
                }
                Err(e) => {
                    if ignore {
                        return Ok(Value::Seq(entries));
                    }
                    return Err(e);
                }
            },
            Value::Map(m) => ports.push(Value::Map(m.clone())),
            other => return Err(format!("{p}: invalid type {} for port", other.kind())),
        }
    }
    Ok(Value::Seq(ports))
}

fn transform_build(data: Value, p: &KeyPath, ignore: bool) -> Result<Value, String> {
    match data {
        Value::Map(m) => Ok(Value::Map(transform_mapping(m, p, ignore)?)),
        Value::String(s) => {
            let mut m = Map::new();
            m.insert("context".into(), Value::String(s));
            Ok(Value::Map(m))
        }
        other => Err(format!("{p}: invalid type {} for build", other.kind())),
    }
}

fn transform_ssh(data: Value, p: &KeyPath, _: bool) -> Result<Value, String> {
    match data {
        Value::Map(m) => Ok(Value::Map(m)),
        Value::Seq(items) => {
            let mut out = Map::new();
            for e in items {
                let Value::String(s) = e else {
                    return Err(format!("invalid ssh key type {}", e.kind()));
                };
                match s.split_once('=') {
                    Some((id, path)) => {
                        out.insert(id.to_string(), Value::from(path));
                    }
                    None => {
                        if s != "default" {
                            return Err(format!("invalid ssh key {s:?}"));
                        }
                        out.insert(s, Value::Null);
                    }
                }
            }
            Ok(Value::Map(out))
        }
        other => Err(format!("{p}: invalid type {} for ssh", other.kind())),
    }
}

fn transform_ulimits(data: Value, p: &KeyPath, _: bool) -> Result<Value, String> {
    match data {
        Value::Map(m) => Ok(Value::Map(m)),
        Value::Int(i) => Ok(Value::Int(i)),
        other => Err(format!("{p}: invalid type {} for external", other.kind())),
    }
}

fn transform_maybe_external(data: Value, p: &KeyPath, ignore: bool) -> Result<Value, String> {
    let resource = match data {
        Value::Null => return Ok(Value::Null),
        Value::Map(m) => transform_mapping(m, p, ignore)?,
        other => return Err(format!("{p}: invalid type {}", other.kind())),
    };
    let mut resource = resource;
    if let Some(Value::Map(external)) = resource.get("external").cloned() {
        resource.insert("external".into(), Value::Bool(true));
        if let Some(extname) = external.get("name") {
            match resource.get("name") {
                Some(name) if name != extname => {
                    return Err(format!(
                        "{p}: name and external.name conflict; only use name"
                    ));
                }
                Some(_) => {}
                None => {
                    resource.insert("name".into(), extname.clone());
                }
            }
        }
    }
    Ok(Value::Map(resource))
}

fn transform_include(data: Value, p: &KeyPath, _: bool) -> Result<Value, String> {
    match data {
        Value::Map(m) => Ok(Value::Map(m)),
        Value::String(s) => {
            let mut m = Map::new();
            m.insert("path".into(), Value::String(s));
            Ok(Value::Map(m))
        }
        other => Err(format!("{p}: invalid type {} for external", other.kind())),
    }
}

// ---------------------------------------------------------------------------------------
// default values

const DEFAULTS: &[(&str, Func)] = &[
    ("services.*.build", default_build_context),
    ("services.*.secrets.*", default_secret_mount),
    ("services.*.ports.*", port_defaults),
    (
        "services.*.deploy.resources.reservations.devices.*",
        device_request_defaults,
    ),
    ("services.*.gpus.*", device_request_defaults),
];

/// Sets the default values of attributes Compose always fills in.
pub fn set_default_values(model: Map) -> Result<Map, String> {
    match set_defaults(Value::Map(model), &KeyPath::root())? {
        Value::Map(m) => Ok(m),
        _ => Ok(Map::new()),
    }
}

fn set_defaults(data: Value, p: &KeyPath) -> Result<Value, String> {
    for (pattern, f) in DEFAULTS {
        if p.matches(pattern) {
            return f(data, p, false);
        }
    }
    match data {
        Value::Map(m) => {
            let mut out = Map::new();
            for (k, e) in m {
                let v = set_defaults(e, &p.next(&k))?;
                out.insert(k, v);
            }
            Ok(Value::Map(out))
        }
        Value::Seq(items) => {
            let next = p.next("[]");
            Ok(Value::Seq(
                items
                    .into_iter()
                    .map(|e| set_defaults(e, &next))
                    .collect::<Result<_, _>>()?,
            ))
        }
        other => Ok(other),
    }
}

fn default_build_context(data: Value, _: &KeyPath, _: bool) -> Result<Value, String> {
    match data {
        Value::Map(mut m) => {
            m.entry("context".to_string())
                .or_insert_with(|| Value::from("."));
            Ok(Value::Map(m))
        }
        other => Ok(other),
    }
}

fn default_secret_mount(data: Value, p: &KeyPath, _: bool) -> Result<Value, String> {
    match data {
        Value::Map(mut m) => {
            if !m.contains_key("target") {
                let source = m
                    .get("source")
                    .map(Value::go_sprint)
                    .unwrap_or_else(|| "%!s(<nil>)".into());
                m.insert(
                    "target".into(),
                    Value::String(format!("/run/secrets/{source}")),
                );
            }
            Ok(Value::Map(m))
        }
        other => Err(format!("{p}: unsupported type {}", other.kind())),
    }
}

fn port_defaults(data: Value, _: &KeyPath, _: bool) -> Result<Value, String> {
    match data {
        Value::Map(mut m) => {
            m.entry("protocol".to_string())
                .or_insert_with(|| Value::from("tcp"));
            m.entry("mode".to_string())
                .or_insert_with(|| Value::from("ingress"));
            Ok(Value::Map(m))
        }
        other => Ok(other),
    }
}

fn device_request_defaults(data: Value, p: &KeyPath, _: bool) -> Result<Value, String> {
    match data {
        Value::Map(mut m) => {
            if !m.contains_key("count") && !m.contains_key("device_ids") {
                m.insert("count".into(), Value::from("all"));
            }
            Ok(Value::Map(m))
        }
        other => Err(format!(
            "{p}: invalid type {} for device request",
            other.kind()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(service: &[(&str, Value)]) -> Map {
        let svc: Map = service
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        let mut services = Map::new();
        services.insert("web".into(), Value::Map(svc));
        let mut m = Map::new();
        m.insert("services".into(), Value::Map(services));
        m
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
    fn short_syntaxes_become_long() {
        let m = model(&[
            ("build", Value::from(".")),
            ("ports", Value::Seq(vec![Value::from("8080:80")])),
            ("volumes", Value::Seq(vec![Value::from("./a:/b/")])),
            ("depends_on", Value::Seq(vec![Value::from("db")])),
            ("networks", Value::Seq(vec![Value::from("front")])),
            ("env_file", Value::from(".env")),
        ]);
        let w = web(&canonical(m, false).expect("canonical"));
        assert_eq!(
            w["build"].as_map().map(|b| b["context"].clone()),
            Some(Value::from("."))
        );
        let port = w["ports"]
            .as_seq()
            .and_then(|s| s.first())
            .and_then(Value::as_map)
            .cloned()
            .expect("port");
        assert_eq!(port["published"], Value::from("8080"));
        assert_eq!(port["target"], Value::Int(80));
        let vol = w["volumes"]
            .as_seq()
            .and_then(|s| s.first())
            .and_then(Value::as_map)
            .cloned()
            .expect("volume");
        assert_eq!(vol["type"], Value::from("bind"));
        assert_eq!(vol["target"], Value::from("/b"));
        assert!(w["depends_on"]
            .as_map()
            .is_some_and(|d| d.contains_key("db")));
        assert_eq!(
            w["networks"].as_map().map(|n| n.get("front").cloned()),
            Some(Some(Value::Null))
        );
        assert!(w["env_file"].as_seq().is_some_and(|s| s.len() == 1));
    }

    #[test]
    fn defaults_are_injected() {
        let mut secret = Map::new();
        secret.insert("source".into(), Value::from("token"));
        let m = model(&[("secrets", Value::Seq(vec![Value::Map(secret)]))]);
        let w = web(&set_default_values(m).expect("defaults"));
        let s = w["secrets"]
            .as_seq()
            .and_then(|s| s.first())
            .and_then(Value::as_map)
            .cloned()
            .expect("secret");
        assert_eq!(s["target"], Value::from("/run/secrets/token"));
    }
}
