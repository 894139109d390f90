//! YAML decoding with the semantics of go-yaml v3 decoding into `any`: YAML 1.2 core
//! booleans/nulls, Go integer literals (including legacy `0777` octals), anchors, aliases
//! and `<<` merge keys, duplicate key detection, and the `!reset` / `!override` tags
//! compose-go uses to drop or replace inherited values.

use std::collections::HashMap;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

use crate::value::{Map, Value};

/// One YAML document of a Compose file.
#[derive(Debug, Clone)]
pub struct Document {
    /// The decoded content.
    pub value: Value,
    /// Key paths tagged `!reset` or `!override` (compose-go's ResetProcessor paths).
    pub reset_paths: Vec<Vec<String>>,
}

#[derive(Debug, Clone)]
enum Kind {
    Scalar(String, TScalarStyle),
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

#[derive(Debug, Clone)]
struct Node {
    kind: Kind,
    tag: Option<String>,
    line: usize,
}

#[derive(Default)]
struct Collector {
    events: Vec<(Event, Marker)>,
}

impl MarkedEventReceiver for Collector {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        self.events.push((ev, mark));
    }
}

fn tag_string(tag: &Option<yaml_rust2::parser::Tag>) -> Option<String> {
    tag.as_ref().map(|t| {
        if t.handle == "tag:yaml.org,2002:" || t.handle == "!!" {
            format!("!!{}", t.suffix)
        } else {
            format!("{}{}", t.handle, t.suffix)
        }
    })
}

struct Builder<'a> {
    events: &'a [(Event, Marker)],
    pos: usize,
    anchors: HashMap<usize, Node>,
}

impl Builder<'_> {
    fn node(&mut self) -> Result<Node, String> {
        let Some((ev, mark)) = self.events.get(self.pos) else {
            return Err("unexpected end of document".to_string());
        };
        let line = mark.line();
        self.pos += 1;
        match ev {
            Event::Alias(id) => self
                .anchors
                .get(id)
                .cloned()
                .ok_or_else(|| format!("line {line}: unknown anchor or recursive alias")),
            Event::Scalar(v, style, anchor, tag) => {
                let node = Node {
                    kind: Kind::Scalar(v.clone(), *style),
                    tag: tag_string(tag),
                    line,
                };
                if *anchor > 0 {
                    self.anchors.insert(*anchor, node.clone());
                }
                Ok(node)
            }
            Event::SequenceStart(anchor, tag) => {
                let (anchor, tag) = (*anchor, tag_string(tag));
                let mut items = Vec::new();
                loop {
                    match self.events.get(self.pos) {
                        Some((Event::SequenceEnd, _)) => {
                            self.pos += 1;
                            break;
                        }
                        Some(_) => items.push(self.node()?),
                        None => return Err("unterminated sequence".to_string()),
                    }
                }
                let node = Node {
                    kind: Kind::Seq(items),
                    tag,
                    line,
                };
                if anchor > 0 {
                    self.anchors.insert(anchor, node.clone());
                }
                Ok(node)
            }
            Event::MappingStart(anchor, tag) => {
                let (anchor, tag) = (*anchor, tag_string(tag));
                let mut entries = Vec::new();
                loop {
                    match self.events.get(self.pos) {
                        Some((Event::MappingEnd, _)) => {
                            self.pos += 1;
                            break;
                        }
                        Some(_) => {
                            let k = self.node()?;
                            let v = self.node()?;
                            entries.push((k, v));
                        }
                        None => return Err("unterminated mapping".to_string()),
                    }
                }
                let node = Node {
                    kind: Kind::Map(entries),
                    tag,
                    line,
                };
                if anchor > 0 {
                    self.anchors.insert(anchor, node.clone());
                }
                Ok(node)
            }
            other => Err(format!("line {line}: unexpected YAML event {other:?}")),
        }
    }
}

/// Parses every document of a YAML stream.
pub fn parse_documents(src: &str) -> Result<Vec<Document>, String> {
    let src = src.strip_prefix('\u{feff}').unwrap_or(src);
    let mut collector = Collector::default();
    let mut parser = Parser::new_from_str(src);
    parser
        .load(&mut collector, true)
        .map_err(|e| format!("yaml: line {}: {}", e.marker().line(), e.info()))?;
    let events = collector.events;
    let mut docs = Vec::new();
    let mut i = 0;
    while i < events.len() {
        if matches!(events[i].0, Event::DocumentStart) {
            let mut b = Builder {
                events: &events,
                pos: i + 1,
                anchors: HashMap::new(),
            };
            let node = b.node()?;
            i = b.pos;
            let mut reset_paths = Vec::new();
            let node = resolve_reset(node, &mut Vec::new(), &mut reset_paths)?;
            let value = match node {
                Some(n) => to_value(&n)?,
                None => Value::Null,
            };
            docs.push(Document { value, reset_paths });
        } else {
            i += 1;
        }
    }
    Ok(docs)
}

/// Records `!reset` / `!override` paths, drops `!reset` nodes and rejects duplicate keys.
fn resolve_reset(
    node: Node,
    path: &mut Vec<String>,
    resets: &mut Vec<Vec<String>>,
) -> Result<Option<Node>, String> {
    match node.tag.as_deref() {
        Some("!reset") => {
            resets.push(path.clone());
            return Ok(None);
        }
        Some("!override") => {
            resets.push(path.clone());
            return Ok(Some(node));
        }
        _ => {}
    }
    let Node { kind, tag, line } = node;
    let kind = match kind {
        Kind::Seq(items) => {
            let mut out = Vec::new();
            for (idx, item) in items.into_iter().enumerate() {
                path.push(idx.to_string());
                let r = resolve_reset(item, path, resets);
                path.pop();
                if let Some(n) = r? {
                    out.push(n);
                }
            }
            Kind::Seq(out)
        }
        Kind::Map(entries) => {
            let mut seen: HashMap<String, usize> = HashMap::new();
            let mut out = Vec::new();
            for (k, v) in entries {
                let key = match &k.kind {
                    Kind::Scalar(s, _) => s.clone(),
                    _ => String::new(),
                };
                if let Some(prev) = seen.get(&key) {
                    return Err(format!(
                        "line {}: mapping key {:?} already defined at line {}",
                        k.line, key, prev
                    ));
                }
                seen.insert(key.clone(), k.line);
                let is_merge = key == "<<" && !path.is_empty();
                if !is_merge {
                    path.push(key);
                }
                let r = resolve_reset(v, path, resets);
                if !is_merge {
                    path.pop();
                }
                if let Some(n) = r? {
                    out.push((k, n));
                }
            }
            Kind::Map(out)
        }
        other => other,
    };
    Ok(Some(Node { kind, tag, line }))
}

/// Go's `strconv.ParseInt(s, 0, 64)`.
pub fn parse_go_int(s: &str) -> Option<i64> {
    let (neg, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if body.is_empty() {
        return None;
    }
    let lower = body.to_ascii_lowercase();
    let (radix, digits) = if let Some(d) = lower.strip_prefix("0x") {
        (16, d.to_string())
    } else if let Some(d) = lower.strip_prefix("0b") {
        (2, d.to_string())
    } else if let Some(d) = lower.strip_prefix("0o") {
        (8, d.to_string())
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, lower[1..].to_string())
    } else {
        (10, lower)
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let mag = i128::from_str_radix(&digits, radix).ok()?;
    let v = if neg { -mag } else { mag };
    i64::try_from(v).ok()
}

fn is_yaml_float(s: &str) -> bool {
    // ^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$
    let b = s.as_bytes();
    let mut i = 0;
    if i < b.len() && (b[i] == b'-' || b[i] == b'+') {
        i += 1;
    }
    let start = i;
    if i < b.len() && b[i] == b'.' {
        i += 1;
        let d = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == d {
            return false;
        }
    } else {
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return false;
        }
        if i < b.len() && b[i] == b'.' {
            i += 1;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
        }
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if i < b.len() && (b[i] == b'-' || b[i] == b'+') {
            i += 1;
        }
        let d = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == d {
            return false;
        }
    }
    i == b.len()
}

/// Resolves a plain (unquoted, untagged) scalar like go-yaml v3 does.
pub fn resolve_plain(s: &str) -> Value {
    match s {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        ".nan" | ".NaN" | ".NAN" => return Value::Float(f64::NAN),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Value::Float(f64::INFINITY)
        }
        "-.inf" | "-.Inf" | "-.INF" => return Value::Float(f64::NEG_INFINITY),
        _ => {}
    }
    let first = s.as_bytes()[0];
    if first.is_ascii_digit() || first == b'+' || first == b'-' {
        let plain = s.replace('_', "");
        if let Some(i) = parse_go_int(&plain) {
            return Value::Int(i);
        }
        if is_yaml_float(&plain) {
            if let Ok(f) = plain.parse::<f64>() {
                return Value::Float(f);
            }
        }
        return Value::String(s.to_string());
    }
    if first == b'.' && is_yaml_float(s) {
        if let Ok(f) = s.parse::<f64>() {
            return Value::Float(f);
        }
    }
    Value::String(s.to_string())
}

fn scalar_value(s: &str, style: TScalarStyle, tag: Option<&str>) -> Result<Value, String> {
    match tag {
        None => {
            if style == TScalarStyle::Plain {
                Ok(resolve_plain(s))
            } else {
                Ok(Value::String(s.to_string()))
            }
        }
        Some("!!str") | Some("!") => Ok(Value::String(s.to_string())),
        Some("!!null") => Ok(Value::Null),
        Some("!!bool") => match resolve_plain(s) {
            Value::Bool(b) => Ok(Value::Bool(b)),
            _ => Err(format!("cannot decode {s:?} as a !!bool")),
        },
        Some("!!int") => match resolve_plain(s) {
            Value::Int(i) => Ok(Value::Int(i)),
            _ => Err(format!("cannot decode {s:?} as an !!int")),
        },
        Some("!!float") => match resolve_plain(s) {
            Value::Int(i) => Ok(Value::Float(i as f64)),
            Value::Float(f) => Ok(Value::Float(f)),
            _ => Err(format!("cannot decode {s:?} as a !!float")),
        },
        Some(_) => Ok(Value::String(s.to_string())),
    }
}

fn is_merge_key(n: &Node) -> bool {
    match &n.kind {
        Kind::Scalar(s, style) => {
            (*style == TScalarStyle::Plain && s == "<<" && n.tag.is_none())
                || n.tag.as_deref() == Some("!!merge")
        }
        _ => false,
    }
}

fn to_value(n: &Node) -> Result<Value, String> {
    match &n.kind {
        Kind::Scalar(s, style) => scalar_value(s, *style, n.tag.as_deref()),
        Kind::Seq(items) => Ok(Value::Seq(
            items.iter().map(to_value).collect::<Result<_, _>>()?,
        )),
        Kind::Map(entries) => {
            let mut explicit = Map::new();
            let mut merges: Vec<&Node> = Vec::new();
            for (k, v) in entries {
                if is_merge_key(k) {
                    merges.push(v);
                    continue;
                }
                let key = match &k.kind {
                    Kind::Scalar(s, style) => match scalar_value(s, *style, k.tag.as_deref())? {
                        Value::String(s) => s,
                        other => {
                            return Err(format!(
                                "line {}: non-string key {}",
                                k.line,
                                other.go_sprint()
                            ))
                        }
                    },
                    _ => return Err(format!("line {}: invalid map key", k.line)),
                };
                explicit.insert(key, to_value(v)?);
            }
            for m in merges {
                let sources: Vec<&Node> = match &m.kind {
                    Kind::Map(_) => vec![m],
                    Kind::Seq(items) => items.iter().collect(),
                    _ => {
                        return Err(format!(
                            "line {}: map merge requires map or sequence of maps as the value",
                            m.line
                        ))
                    }
                };
                for src in sources {
                    let Value::Map(merged) = to_value(src)? else {
                        return Err(format!(
                            "line {}: map merge requires map or sequence of maps as the value",
                            src.line
                        ));
                    };
                    for (k, v) in merged {
                        explicit.entry(k).or_insert(v);
                    }
                }
            }
            Ok(Value::Map(explicit))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(src: &str) -> Value {
        let docs = parse_documents(src).expect("parse");
        docs.into_iter().next().expect("doc").value
    }

    #[test]
    fn scalars_resolve_like_go_yaml_v3() {
        assert_eq!(resolve_plain("yes"), Value::from("yes"));
        assert_eq!(resolve_plain("0755"), Value::Int(493));
        assert_eq!(resolve_plain("1_000"), Value::Int(1000));
        assert_eq!(resolve_plain("0.5"), Value::Float(0.5));
        assert_eq!(resolve_plain("8080:80"), Value::from("8080:80"));
        assert_eq!(resolve_plain("~"), Value::Null);
    }

    #[test]
    fn anchors_and_merge_keys() {
        let v = one("base: &b\n  a: 1\n  b: 2\nchild:\n  <<: *b\n  b: 3\n");
        let child = v.as_map().and_then(|m| m.get("child")).cloned();
        let mut expect = Map::new();
        expect.insert("a".into(), Value::Int(1));
        expect.insert("b".into(), Value::Int(3));
        assert_eq!(child, Some(Value::Map(expect)));
    }

    #[test]
    fn reset_tags_are_recorded() {
        let docs = parse_documents(
            "services:\n  a:\n    command: !reset\n    ports: !override [\"80\"]\n",
        )
        .expect("parse");
        assert_eq!(docs[0].reset_paths.len(), 2);
        let svc = docs[0]
            .value
            .as_map()
            .and_then(|m| m.get("services"))
            .and_then(Value::as_map)
            .and_then(|m| m.get("a"))
            .and_then(Value::as_map)
            .cloned()
            .expect("service");
        assert!(!svc.contains_key("command"));
        assert!(svc.contains_key("ports"));
    }

    #[test]
    fn duplicate_keys_are_rejected() {
        assert!(parse_documents("a: 1\na: 2\n").is_err());
    }
}
