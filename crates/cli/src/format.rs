//! Output formatting: docker-style tables, human sizes and durations, and a small
//! Go-template subset for `--format`.

use serde_json::Value;

/// Renders rows like Go's tabwriter(minwidth 10, tabwidth 1, padding 3): every
/// column but the last is padded to max(width+3, 10).
pub fn table(rows: &[Vec<String>]) -> String {
    table_min(rows, 10)
}

/// [`table`] with another minimum column width (`top`'s tabwriter has 20).
pub fn table_min(rows: &[Vec<String>], min_width: usize) -> String {
    let ncols = rows.iter().map(|r| r.len()).max().unwrap_or(0);
    let mut widths = vec![0usize; ncols];
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            if i + 1 < r.len() {
                widths[i] = widths[i].max((c.chars().count() + 3).max(min_width));
            }
        }
    }
    let mut out = String::new();
    for r in rows {
        let mut line = String::new();
        for (i, c) in r.iter().enumerate() {
            line.push_str(c);
            if i + 1 < r.len() {
                let pad = widths[i] - c.chars().count();
                line.push_str(&" ".repeat(pad));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

pub fn print_table(rows: &[Vec<String>]) {
    print!("{}", table(rows));
}

/// Go's `%.{prec}g` for values that are >= 0.
fn fmt_g(v: f64, prec: usize) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let exp = v.abs().log10().floor() as i64;
    if exp < -4 || exp >= prec as i64 {
        // exponent form, as Go does
        let s = format!("{:.*e}", prec.saturating_sub(1), v);
        let (mant, e) = s.split_once('e').unwrap_or((&s, "0"));
        let mant = strip_zeros(mant);
        let e: i64 = e.parse().unwrap_or(0);
        return format!("{}e{}{:02}", mant, if e < 0 { '-' } else { '+' }, e.abs());
    }
    let decimals = (prec as i64 - 1 - exp).max(0) as usize;
    strip_zeros(&format!("{:.*}", decimals, v))
}

fn strip_zeros(s: &str) -> String {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s.to_string()
    }
}

/// go-units HumanSizeWithPrecision (decimal units).
pub fn human_size_prec(size: f64, prec: usize) -> String {
    const UNITS: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
    let mut s = size;
    let mut i = 0;
    while s >= 1000.0 && i < UNITS.len() - 1 {
        s /= 1000.0;
        i += 1;
    }
    format!("{}{}", fmt_g(s, prec), UNITS[i])
}

/// go-units HumanSize (precision 4): "1.222MB".
pub fn human_size(size: i64) -> String {
    human_size_prec(size as f64, 4)
}

/// go-units BytesSize (binary units): "1.5MiB".
pub fn bytes_size(size: f64) -> String {
    const UNITS: [&str; 9] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"];
    let mut s = size;
    let mut i = 0;
    while s >= 1024.0 && i < UNITS.len() - 1 {
        s /= 1024.0;
        i += 1;
    }
    format!("{}{}", fmt_g(s, 4), UNITS[i])
}

/// go-units HumanDuration.
pub fn human_duration(d: std::time::Duration) -> String {
    let secs = d.as_secs_f64();
    let seconds = secs as i64;
    if seconds < 1 {
        return "Less than a second".into();
    } else if seconds == 1 {
        return "1 second".into();
    } else if seconds < 60 {
        return format!("{seconds} seconds");
    }
    let minutes = (secs / 60.0) as i64;
    if minutes == 1 {
        return "About a minute".into();
    } else if minutes < 60 {
        return format!("{minutes} minutes");
    }
    let hours = (secs / 3600.0 + 0.5) as i64;
    if hours == 1 {
        "About an hour".into()
    } else if hours < 48 {
        format!("{hours} hours")
    } else if hours < 24 * 7 * 2 {
        format!("{} days", hours / 24)
    } else if hours < 24 * 30 * 2 {
        format!("{} weeks", hours / 24 / 7)
    } else if hours < 24 * 365 * 2 {
        format!("{} months", hours / 24 / 30)
    } else {
        format!("{} years", (secs / 3600.0 / 24.0 / 365.0) as i64)
    }
}

/// "N minutes ago" from a unix timestamp.
pub fn ago(unix: i64) -> String {
    let now = chrono::Utc::now().timestamp();
    let d = (now - unix).max(0) as u64;
    format!("{} ago", human_duration(std::time::Duration::from_secs(d)))
}

/// Docker's Ellipsis: cut to `max` characters, the last being "…".
pub fn ellipsis(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Short 12-hex id, without the `sha256:` prefix.
pub fn short_id(id: &str) -> String {
    let id = id.strip_prefix("sha256:").unwrap_or(id);
    id.chars().take(12).collect()
}

/// Quotes like Go's strconv.Quote (enough for command lines).
pub fn go_quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

// ---------------------------------------------------------------- templates

#[derive(Debug, Clone, PartialEq)]
enum Piece {
    Text(String),
    Action {
        func: Option<String>,
        path: Vec<String>,
    },
}

/// A parsed `--format` template (subset of Go templates): `{{.A.B}}`, `{{json .X}}`,
/// `{{upper .X}}`, `{{lower .X}}`, `{{.}}`, with `\t`/`\n` escapes in text.
#[derive(Debug, Clone)]
pub struct Template {
    pieces: Vec<Piece>,
    pub table: bool,
}

impl Template {
    pub fn parse(src: &str) -> anyhow::Result<Template> {
        let (table, src) = match src.strip_prefix("table") {
            Some(rest) if rest.is_empty() || rest.starts_with(char::is_whitespace) => {
                (true, rest.trim_start())
            }
            _ => (false, src),
        };
        let mut pieces = Vec::new();
        let mut rest = src;
        while let Some(start) = rest.find("{{") {
            if start > 0 {
                pieces.push(Piece::Text(unescape(&rest[..start])));
            }
            let after = &rest[start + 2..];
            let end = after
                .find("}}")
                .ok_or_else(|| anyhow::anyhow!("template: unclosed action in {src:?}"))?;
            let action = after[..end]
                .trim()
                .trim_start_matches('-')
                .trim_end_matches('-')
                .trim();
            pieces.push(parse_action(action)?);
            rest = &after[end + 2..];
        }
        if !rest.is_empty() {
            pieces.push(Piece::Text(unescape(rest)));
        }
        Ok(Template { pieces, table })
    }

    pub fn render(&self, v: &Value) -> String {
        let mut out = String::new();
        for p in &self.pieces {
            match p {
                Piece::Text(t) => out.push_str(t),
                Piece::Action { func, path } => {
                    let val = lookup(v, path);
                    match func.as_deref() {
                        Some("json") => out.push_str(
                            &serde_json::to_string(&val.cloned().unwrap_or(Value::Null))
                                .unwrap_or_default(),
                        ),
                        Some("upper") => out.push_str(&go_value(val).to_uppercase()),
                        Some("lower") => out.push_str(&go_value(val).to_lowercase()),
                        _ => out.push_str(&go_value(val)),
                    }
                }
            }
        }
        out
    }

    /// Header row for `table` templates: each action's last path element, mapped
    /// through `headers` (e.g. "ID" -> "CONTAINER ID").
    pub fn header(&self, headers: &[(&str, &str)]) -> String {
        let mut out = String::new();
        for p in &self.pieces {
            match p {
                Piece::Text(t) => out.push_str(t),
                Piece::Action { path, .. } => {
                    let key = path.last().map(String::as_str).unwrap_or("");
                    let h = headers
                        .iter()
                        .find(|(k, _)| *k == key)
                        .map(|(_, h)| h.to_string())
                        .unwrap_or_else(|| key.to_uppercase());
                    out.push_str(&h);
                }
            }
        }
        out
    }
}

fn unescape(s: &str) -> String {
    s.replace("\\t", "\t").replace("\\n", "\n")
}

fn parse_action(a: &str) -> anyhow::Result<Piece> {
    let mut words = a.split_whitespace();
    let first = words.next().unwrap_or(".");
    let (func, arg) = if first.starts_with('.') {
        (None, first)
    } else {
        (Some(first.to_string()), words.next().unwrap_or("."))
    };
    if let Some(f) = &func {
        if !matches!(f.as_str(), "json" | "upper" | "lower" | "print" | "println") {
            anyhow::bail!("template: function {f:?} not defined");
        }
    }
    if !arg.starts_with('.') {
        anyhow::bail!("template: unsupported action {a:?}");
    }
    let path = arg
        .split('.')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    Ok(Piece::Action { func, path })
}

fn lookup<'a>(v: &'a Value, path: &[String]) -> Option<&'a Value> {
    let mut cur = v;
    for p in path {
        cur = match cur {
            Value::Object(m) => m.get(p).or_else(|| {
                // Go templates on our typed structs are case-sensitive; accept the
                // exact key first, then a case-insensitive match.
                m.iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(p))
                    .map(|(_, v)| v)
            })?,
            _ => return None,
        };
    }
    Some(cur)
}

/// How Go's text/template prints a value.
pub fn go_value(v: Option<&Value>) -> String {
    match v {
        None => "<no value>".into(),
        Some(Value::Null) => "<nil>".into(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Bool(b)) => b.to_string(),
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::Array(a)) => format!(
            "[{}]",
            a.iter()
                .map(|x| go_value(Some(x)))
                .collect::<Vec<_>>()
                .join(" ")
        ),
        Some(Value::Object(m)) => {
            let mut keys: Vec<_> = m.keys().collect();
            keys.sort();
            format!(
                "map[{}]",
                keys.iter()
                    .map(|k| format!("{}:{}", k, go_value(m.get(*k))))
                    .collect::<Vec<_>>()
                    .join(" ")
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sizes() {
        assert_eq!(human_size(1_222_000), "1.222MB");
        assert_eq!(human_size_prec(1_222_000.0, 3), "1.22MB");
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(999), "999B");
        assert_eq!(human_size(4096), "4.096kB");
        assert_eq!(human_size_prec(1_500_000_000.0, 3), "1.5GB");
        assert_eq!(bytes_size(1536.0), "1.5KiB");
    }

    #[test]
    fn durations() {
        use std::time::Duration as D;
        assert_eq!(human_duration(D::from_millis(300)), "Less than a second");
        assert_eq!(human_duration(D::from_secs(1)), "1 second");
        assert_eq!(human_duration(D::from_secs(4)), "4 seconds");
        assert_eq!(human_duration(D::from_secs(90)), "About a minute");
        assert_eq!(human_duration(D::from_secs(600)), "10 minutes");
        assert_eq!(human_duration(D::from_secs(3600)), "About an hour");
        assert_eq!(human_duration(D::from_secs(5 * 3600)), "5 hours");
        assert_eq!(human_duration(D::from_secs(3 * 86400)), "3 days");
        assert_eq!(human_duration(D::from_secs(20 * 86400)), "2 weeks");
    }

    #[test]
    fn tables() {
        let t = table(&[
            vec!["CONTAINER ID".into(), "IMAGE".into(), "NAMES".into()],
            vec!["abc".into(), "busybox".into(), "web".into()],
        ]);
        assert_eq!(
            t,
            "CONTAINER ID   IMAGE     NAMES\nabc            busybox   web\n"
        );
    }

    #[test]
    fn ellipsis_and_quote() {
        assert_eq!(ellipsis("sleep 1000", 20), "sleep 1000");
        assert_eq!(
            ellipsis("sh -c 'echo hello world; sleep 5'", 20),
            "sh -c 'echo hello w…"
        );
        assert_eq!(go_quote("a \"b\""), "\"a \\\"b\\\"\"");
    }

    #[test]
    fn templates() {
        let v = json!({"ID":"abc","State":{"ExitCode":3,"Running":false},"Config":{"Env":["A=1"]},"N":null});
        assert_eq!(Template::parse("{{.ID}}").unwrap().render(&v), "abc");
        assert_eq!(
            Template::parse("{{.State.ExitCode}}").unwrap().render(&v),
            "3"
        );
        assert_eq!(
            Template::parse("{{ .State.Running }}").unwrap().render(&v),
            "false"
        );
        assert_eq!(
            Template::parse("{{json .Config}}").unwrap().render(&v),
            r#"{"Env":["A=1"]}"#
        );
        assert_eq!(
            Template::parse("{{.Config.Env}}").unwrap().render(&v),
            "[A=1]"
        );
        assert_eq!(
            Template::parse("id={{.ID}}\\t{{.Missing}}")
                .unwrap()
                .render(&v),
            "id=abc\t<no value>"
        );
        assert_eq!(Template::parse("{{.N}}").unwrap().render(&v), "<nil>");
        assert_eq!(
            Template::parse("{{json .}}")
                .unwrap()
                .render(&json!({"a":1})),
            r#"{"a":1}"#
        );
        let t = Template::parse("table {{.ID}}\t{{.Names}}").unwrap();
        assert!(t.table);
        assert_eq!(t.header(&[("ID", "CONTAINER ID")]), "CONTAINER ID\tNAMES");
        assert!(Template::parse("{{nosuch .X}}").is_err());
    }
}
