//! Interpolation of a whole model: every string value goes through the template
//! substitution, then values at known typed paths are cast (compose-go's
//! `interpolateTypeCastMapping`) so that `cpus: ${CPUS}` becomes a number.

use crate::path::KeyPath;
use crate::template::{substitute, TemplateError};
use crate::value::{Map, Value};

#[derive(Clone, Copy)]
enum Cast {
    Int,
    Int64,
    Float,
    Float32,
    Bool,
}

const CASTS: &[(&str, Cast)] = &[
    ("services.*.cpu_count", Cast::Int64),
    ("services.*.cpu_percent", Cast::Float),
    ("services.*.cpu_period", Cast::Int64),
    ("services.*.cpu_quota", Cast::Int64),
    ("services.*.cpu_rt_period", Cast::Int64),
    ("services.*.cpu_rt_runtime", Cast::Int64),
    ("services.*.cpus", Cast::Float32),
    ("services.*.cpu_shares", Cast::Int64),
    ("services.*.init", Cast::Bool),
    ("services.*.deploy.replicas", Cast::Int),
    ("services.*.deploy.update_config.parallelism", Cast::Int),
    (
        "services.*.deploy.update_config.max_failure_ratio",
        Cast::Float,
    ),
    ("services.*.deploy.rollback_config.parallelism", Cast::Int),
    (
        "services.*.deploy.rollback_config.max_failure_ratio",
        Cast::Float,
    ),
    ("services.*.deploy.restart_policy.max_attempts", Cast::Int),
    (
        "services.*.deploy.placement.max_replicas_per_node",
        Cast::Int,
    ),
    ("services.*.healthcheck.retries", Cast::Int),
    ("services.*.healthcheck.disable", Cast::Bool),
    ("services.*.oom_kill_disable", Cast::Bool),
    ("services.*.oom_score_adj", Cast::Int64),
    ("services.*.pids_limit", Cast::Int64),
    ("services.*.ports.[].target", Cast::Int),
    ("services.*.privileged", Cast::Bool),
    ("services.*.read_only", Cast::Bool),
    ("services.*.scale", Cast::Int),
    ("services.*.stdin_open", Cast::Bool),
    ("services.*.tty", Cast::Bool),
    ("services.*.ulimits.*", Cast::Int),
    ("services.*.ulimits.*.hard", Cast::Int),
    ("services.*.ulimits.*.soft", Cast::Int),
    ("services.*.volumes.[].read_only", Cast::Bool),
    ("services.*.volumes.[].volume.nocopy", Cast::Bool),
    ("networks.*.external", Cast::Bool),
    ("networks.*.internal", Cast::Bool),
    ("networks.*.attachable", Cast::Bool),
    ("networks.*.enable_ipv4", Cast::Bool),
    ("networks.*.enable_ipv6", Cast::Bool),
    ("volumes.*.external", Cast::Bool),
    ("secrets.*.external", Cast::Bool),
    ("configs.*.external", Cast::Bool),
];

/// Parses a boolean the way compose-go does (YAML 1.1 spellings accepted).
pub fn to_boolean(s: &str) -> Result<bool, String> {
    match s.to_ascii_lowercase().as_str() {
        "true" | "y" | "yes" | "on" => Ok(true),
        "false" | "n" | "no" | "off" => Ok(false),
        _ => Err(format!("invalid boolean: {s}")),
    }
}

/// Go's `strconv.Atoi` / `ParseInt(s, 10, 64)`.
pub fn parse_decimal(s: &str) -> Result<i64, String> {
    let body = s.strip_prefix('+').unwrap_or(s);
    if body.is_empty() || body.starts_with('+') {
        return Err(format!("strconv.ParseInt: parsing {s:?}: invalid syntax"));
    }
    body.parse::<i64>()
        .map_err(|_| format!("strconv.ParseInt: parsing {s:?}: invalid syntax"))
}

/// Go's `strconv.ParseFloat(s, 64)` for the decimal forms Compose files use.
pub fn parse_float(s: &str) -> Result<f64, String> {
    let lower = s.to_ascii_lowercase();
    let ok = !s.is_empty()
        && (s
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '+' | '-'))
            || matches!(
                lower.trim_start_matches(['+', '-']),
                "inf" | "infinity" | "nan"
            ));
    if !ok {
        return Err(format!("strconv.ParseFloat: parsing {s:?}: invalid syntax"));
    }
    s.parse::<f64>()
        .map_err(|_| format!("strconv.ParseFloat: parsing {s:?}: invalid syntax"))
}

fn cast(c: Cast, s: &str) -> Result<Value, String> {
    Ok(match c {
        Cast::Int | Cast::Int64 => Value::Int(parse_decimal(s)?),
        Cast::Float => Value::Float(parse_float(s)?),
        Cast::Float32 => Value::Float(parse_float(s)? as f32 as f64),
        Cast::Bool => Value::Bool(to_boolean(s)?),
    })
}

/// Interpolates every string of a model (keys are left alone).
pub fn interpolate(model: &Map, lookup: &dyn Fn(&str) -> Option<String>) -> Result<Map, String> {
    let mut out = Map::new();
    for (k, v) in model {
        out.insert(
            k.clone(),
            interpolate_value(v, &KeyPath::root().next(k), lookup)?,
        );
    }
    Ok(out)
}

fn interpolate_value(
    v: &Value,
    path: &KeyPath,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Value, String> {
    match v {
        Value::String(s) => {
            let substituted = substitute(s, lookup).map_err(|e| match e {
                TemplateError::Invalid { template } => format!(
                    "invalid interpolation format for {path}.\nYou may need to escape any $ with another $.\n{template}"
                ),
                other => format!("error while interpolating {path}: {other}"),
            })?;
            for (pattern, c) in CASTS {
                if path.matches(pattern) {
                    return cast(*c, &substituted).map_err(|e| {
                        format!("error while interpolating {path}: failed to cast to expected type: {e}")
                    });
                }
            }
            Ok(Value::String(substituted))
        }
        Value::Map(m) => {
            let mut out = Map::new();
            for (k, e) in m {
                out.insert(k.clone(), interpolate_value(e, &path.next(k), lookup)?);
            }
            Ok(Value::Map(out))
        }
        Value::Seq(items) => Ok(Value::Seq(
            items
                .iter()
                .map(|e| interpolate_value(e, &path.next("[]"), lookup))
                .collect::<Result<_, _>>()?,
        )),
        other => Ok(other.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn casts_known_paths() {
        let mut svc = Map::new();
        svc.insert("cpus".into(), Value::from("${CPUS}"));
        svc.insert("tty".into(), Value::from("yes"));
        svc.insert("image".into(), Value::from("img:${TAG:-latest}"));
        let mut services = Map::new();
        services.insert("web".into(), Value::Map(svc));
        let mut model = Map::new();
        model.insert("services".into(), Value::Map(services));
        let lookup = |k: &str| {
            if k == "CPUS" {
                Some("0.5".to_string())
            } else {
                None
            }
        };
        let out = interpolate(&model, &lookup).expect("interpolate");
        let web = out["services"]
            .as_map()
            .and_then(|m| m.get("web"))
            .and_then(Value::as_map)
            .cloned()
            .expect("web");
        assert_eq!(web["cpus"], Value::Float(0.5));
        assert_eq!(web["tty"], Value::Bool(true));
        assert_eq!(web["image"], Value::from("img:latest"));
    }

    #[test]
    fn reports_path_of_bad_template() {
        let mut model = Map::new();
        model.insert("name".into(), Value::from("${"));
        let err = interpolate(&model, &|_| None).expect_err("must fail");
        assert!(err.contains("invalid interpolation format for name"));
    }
}
