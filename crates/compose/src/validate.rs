//! Validation of a model against the Compose Specification JSON schema, plus the extra
//! structural checks compose-go performs after merging (mutually exclusive attributes,
//! IP addresses, device requests, ...).

use std::sync::OnceLock;

use jsonschema::error::{TypeKind, ValidationErrorKind};
use jsonschema::{ValidationError, Validator};

use crate::path::KeyPath;
use crate::value::{Map, Value};

/// The Compose Specification schema this crate validates against.
pub const COMPOSE_SPEC_SCHEMA: &str = include_str!("compose-spec.json");

fn validator() -> Result<&'static Validator, String> {
    static VALIDATOR: OnceLock<Result<Validator, String>> = OnceLock::new();
    VALIDATOR
        .get_or_init(|| {
            let schema: serde_json::Value = serde_json::from_str(COMPOSE_SPEC_SCHEMA)
                .map_err(|e| format!("invalid embedded schema: {e}"))?;
            jsonschema::draft7::new(&schema).map_err(|e| format!("invalid embedded schema: {e}"))
        })
        .as_ref()
        .map_err(Clone::clone)
}

fn dotted(pointer: &str) -> String {
    pointer
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| s.replace("~1", "/").replace("~0", "~"))
        .collect::<Vec<_>>()
        .join(".")
}

fn describe(err: &ValidationError<'_>) -> (usize, String) {
    let path = dotted(err.instance_path().as_str());
    let depth = if path.is_empty() {
        0
    } else {
        path.split('.').count()
    };
    match err.kind() {
        ValidationErrorKind::AdditionalProperties { unexpected } => {
            let list: Vec<String> = unexpected.iter().map(|u| format!("'{u}'")).collect();
            (
                depth + 1,
                format!(
                    "{path} additional properties {} not allowed",
                    list.join(", ")
                ),
            )
        }
        ValidationErrorKind::Type { kind } => {
            let human = |t: String| {
                if t == "object" {
                    "mapping".to_string()
                } else {
                    t
                }
            };
            let want = match kind {
                TypeKind::Single(t) => human(t.to_string()),
                TypeKind::Multiple(set) => {
                    let mut names: Vec<String> = set.iter().map(|t| human(t.to_string())).collect();
                    names.sort();
                    match names.split_last() {
                        Some((last, rest)) if !rest.is_empty() => {
                            format!("{} or {last}", rest.join(", "))
                        }
                        _ => names.join(""),
                    }
                }
            };
            (depth, format!("{path} must be a {want}"))
        }
        _ => (depth, format!("{path} {err}")),
    }
}

fn most_specific(err: &ValidationError<'_>, best: &mut Option<(usize, String)>) {
    let nested = match err.kind() {
        ValidationErrorKind::AnyOf { context }
        | ValidationErrorKind::OneOfNotValid { context }
        | ValidationErrorKind::OneOfMultipleValid { context } => Some(context),
        _ => None,
    };
    fn consider(best: &mut Option<(usize, String)>, d: (usize, String)) {
        if best.as_ref().is_none_or(|b| d.0 > b.0) {
            *best = Some(d);
        }
    }
    match nested {
        Some(context) if context.iter().any(|c| !c.is_empty()) => {
            for branch in context {
                for e in branch {
                    most_specific(e, best);
                }
            }
            consider(best, describe(err));
        }
        _ => consider(best, describe(err)),
    }
}

/// Validates a model against the Compose Specification schema. The error names the key
/// path at fault.
pub fn validate_schema(model: &Map) -> Result<(), String> {
    let v = validator()?;
    let instance = Value::Map(model.clone()).to_json();
    let mut best: Option<(usize, String)> = None;
    for err in v.iter_errors(&instance) {
        most_specific(&err, &mut best);
    }
    match best {
        None => Ok(()),
        Some((_, msg)) => Err(msg.trim_start().to_string()),
    }
}

/// compose-go's `validation.Validate`: structural checks the schema cannot express.
pub fn validate_model(model: &Map) -> Result<(), String> {
    for (k, v) in model {
        check(v, &KeyPath::root().next(k))?;
    }
    Ok(())
}

fn check(v: &Value, p: &KeyPath) -> Result<(), String> {
    if p.matches("volumes.*") {
        return check_volume(v, p);
    }
    if p.matches("configs.*") {
        return check_file_object(v, p, &["file", "environment", "content"]);
    }
    if p.matches("secrets.*") {
        return check_file_object(v, p, &["file", "environment"]);
    }
    if p.matches("services.*.ports.*") {
        return check_ip_address(v, p);
    }
    if p.matches("services.*.develop.watch.*.path") {
        if v.as_str() == Some("") {
            return Err(format!("{p}: value can't be blank"));
        }
        return Ok(());
    }
    if p.matches("services.*.deploy.resources.reservations.devices.*")
        || p.matches("services.*.gpus.*")
    {
        if let Value::Map(m) = v {
            if m.contains_key("count") && m.contains_key("device_ids") {
                return Err(format!(
                    "{p}: \"count\" and \"device_ids\" attributes are exclusive"
                ));
            }
        }
        return Ok(());
    }
    match v {
        Value::Map(m) => {
            for (k, e) in m {
                check(e, &p.next(k))?;
            }
        }
        Value::Seq(items) => {
            let next = p.next("[]");
            for e in items {
                check(e, &next)?;
            }
        }
        _ => {}
    }
    Ok(())
}

fn check_volume(v: &Value, p: &KeyPath) -> Result<(), String> {
    let m = match v {
        Value::Null => return Ok(()),
        Value::Map(m) => m,
        other => return Err(format!("expected volume, got {}", other.go_sprint())),
    };
    if m.get("external") != Some(&Value::Bool(true)) {
        return Ok(());
    }
    for k in m.keys() {
        if k == "name" || k == "external" || k.starts_with("x-") || k == "#extensions" {
            continue;
        }
        return Err(format!(
            "{p}: conflicting parameters \"external\" and {k:?} specified"
        ));
    }
    Ok(())
}

fn check_file_object(v: &Value, p: &KeyPath, keys: &[&str]) -> Result<(), String> {
    let Value::Map(m) = v else {
        return Ok(());
    };
    let count = keys.iter().filter(|k| m.contains_key(**k)).count();
    if count > 1 {
        return Err(format!(
            "{p}: {} attributes are mutually exclusive",
            keys.join("|")
        ));
    }
    if count == 0 && !m.contains_key("driver") && !m.contains_key("external") {
        return Err(format!("{p}: one of {} must be set", keys.join("|")));
    }
    Ok(())
}

fn check_ip_address(v: &Value, p: &KeyPath) -> Result<(), String> {
    if let Value::Map(m) = v {
        if let Some(ip) = m.get("host_ip") {
            let s = ip.go_sprint();
            if s.parse::<std::net::IpAddr>().is_err() {
                return Err(format!("{p}: invalid ip address: {s}"));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml::parse_documents;

    fn model(src: &str) -> Map {
        match parse_documents(src).expect("yaml").remove(0).value {
            Value::Map(m) => m,
            _ => Map::new(),
        }
    }

    #[test]
    fn schema_accepts_valid_and_names_bad_key() {
        assert!(validate_schema(&model("services:\n  web:\n    image: nginx\n")).is_ok());
        let err = validate_schema(&model(
            "services:\n  web:\n    image: nginx\n    wrongField: 1\n",
        ))
        .expect_err("must fail");
        assert!(err.contains("services.web"), "{err}");
        assert!(err.contains("wrongField"), "{err}");
    }

    #[test]
    fn file_objects_need_a_source() {
        let err = validate_model(&model("secrets:\n  s: {}\n")).expect_err("must fail");
        assert!(err.contains("secrets.s"));
    }
}
