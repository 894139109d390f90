//! Docker's query-parameter conventions.

use std::collections::BTreeMap;

use berth_errdefs::{Error, Result};

/// Docker's boolean rule: lower-case the value; `""`, `0`, `no`, `false` and `none`
/// are false, anything else is true (docker-py sends `True`/`False`).
pub fn parse_bool(v: &str) -> bool {
    !matches!(v.to_ascii_lowercase().as_str(), "" | "0" | "no" | "false" | "none")
}

/// The `filters` parameter: each key maps to the set of accepted values.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Filters(BTreeMap<String, Vec<String>>);

impl Filters {
    /// Parse both the map form `{"label":{"a=1":true}}` (docker CLI) and the list form
    /// `{"label":["a=1"]}` (docker-py, compose). An empty string means no filters.
    pub fn parse(raw: &str) -> Result<Filters> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Ok(Filters::default());
        }
        let v: serde_json::Value = serde_json::from_str(raw)
            .map_err(|e| Error::invalid(format!("invalid filter '{raw}': {e}")))?;
        let obj = v.as_object().ok_or_else(|| Error::invalid(format!("invalid filter '{raw}'")))?;
        let mut out = BTreeMap::new();
        for (k, vals) in obj {
            let list: Vec<String> = match vals {
                serde_json::Value::Object(m) => m
                    .iter()
                    .filter(|(_, on)| on.as_bool().unwrap_or(true))
                    .map(|(s, _)| s.clone())
                    .collect(),
                serde_json::Value::Array(a) => a
                    .iter()
                    .map(|x| x.as_str().map(str::to_owned).unwrap_or_else(|| x.to_string()))
                    .collect(),
                serde_json::Value::String(s) => vec![s.clone()],
                _ => return Err(Error::invalid(format!("invalid filter '{raw}'"))),
            };
            out.insert(k.clone(), list);
        }
        Ok(Filters(out))
    }

    /// The values given for `key` (empty when the key is absent).
    pub fn get(&self, key: &str) -> &[String] {
        self.0.get(key).map(Vec::as_slice).unwrap_or(&[])
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.0.contains_key(key)
    }

    /// Reject keys outside `allowed`, with Docker's message.
    pub fn validate(&self, allowed: &[&str]) -> Result<()> {
        for k in self.0.keys() {
            if !allowed.contains(&k.as_str()) {
                return Err(Error::invalid(format!("invalid filter '{k}'")));
            }
        }
        Ok(())
    }

    /// Does a label set satisfy every `label` filter (`key` or `key=value`)?
    pub fn match_labels<'a>(
        &self,
        labels: impl Fn(&str) -> Option<&'a str>,
    ) -> bool {
        self.get("label").iter().all(|f| match f.split_once('=') {
            Some((k, v)) => labels(k) == Some(v),
            None => labels(f).is_some(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn booleans_follow_docker() {
        for t in ["1", "true", "True", "yes", "x"] {
            assert!(parse_bool(t), "{t}");
        }
        for f in ["", "0", "False", "false", "no", "none"] {
            assert!(!parse_bool(f), "{f}");
        }
    }

    #[test]
    fn both_filter_forms_parse() {
        let a = Filters::parse(r#"{"label":{"a=1":true},"status":{"running":true}}"#).unwrap();
        let b = Filters::parse(r#"{"label":["a=1"],"status":["running"]}"#).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.get("status"), ["running"]);
        assert!(a.get("name").is_empty());
        assert!(Filters::parse("").unwrap().get("x").is_empty());
        assert!(Filters::parse("[1]").is_err());
    }

    #[test]
    fn label_filters_match() {
        let f = Filters::parse(r#"{"label":["a=1","b"]}"#).unwrap();
        let labels = [("a", "1"), ("b", "2")];
        let get = |k: &str| labels.iter().find(|(x, _)| *x == k).map(|(_, v)| *v);
        assert!(f.match_labels(get));
        let f = Filters::parse(r#"{"label":["a=2"]}"#).unwrap();
        assert!(!f.match_labels(get));
    }
}
