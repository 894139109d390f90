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

/// An argument of an action: a field path from dot, from a variable (`$`, `$name`),
/// or a string literal.
#[derive(Debug, Clone, PartialEq)]
enum Arg {
    Dot(Vec<String>),
    Var(String, Vec<String>),
    Str(String),
    Num(i64),
    /// `(pipeline).Field`
    Sub(Box<Pipe>, Vec<String>),
}

/// A command of a pipeline: an optional function and its arguments.
#[derive(Debug, Clone, PartialEq)]
struct Cmd {
    func: Option<String>,
    args: Vec<Arg>,
}

/// An action's pipeline: commands joined by `|`, each after the first given the one
/// before's value as its last argument.
#[derive(Debug, Clone, PartialEq)]
struct Pipe {
    cmds: Vec<Cmd>,
}

#[derive(Debug, Clone, PartialEq)]
enum Node {
    Text(String),
    Action(Pipe),
    /// `range` (with its `$k, $v :=` variables), `if` and `with`: the pipeline, the
    /// body, the `else` branch.
    Range { vars: Vec<String>, pipe: Pipe, body: Vec<Node>, alt: Vec<Node> },
    If { pipe: Pipe, body: Vec<Node>, alt: Vec<Node> },
    With { pipe: Pipe, body: Vec<Node>, alt: Vec<Node> },
}

const FUNCS: &[&str] = &[
    "json", "upper", "lower", "title", "len", "index", "join", "split", "pad", "truncate", "print", "println", "printf", "eq", "ne",
    "lt", "le", "gt", "ge", "and", "or", "not",
];

/// A parsed `--format` template, the part of Go's text/template docker users write:
/// `{{.A.B}}`, the docker CLI's functions (`json`, `upper`, `lower`, `title`, `join`,
/// `split`, `pad`, `truncate`, `println`) and Go's (`len`, `index`, `print`, `printf`,
/// `eq`, `ne`, `lt`, `le`, `gt`, `ge`, `and`, `or`, `not`), pipes (`|`), `(...)`,
/// `{{range}}` (with `$k, $v :=`), `{{if}}`,
/// `{{with}}`, `{{else}}`,
/// `{{end}}`, `$`, the `{{-`/`-}}` trims, and `\t`/`\n` escapes in text (the docker
/// CLI's). A `table` prefix makes it a table with a header row.
#[derive(Debug, Clone)]
pub struct Template {
    nodes: Vec<Node>,
    pub table: bool,
}

impl Template {
    pub fn parse(src: &str) -> anyhow::Result<Template> {
        let (table, src) = match src.strip_prefix("table") {
            Some(rest) if rest.is_empty() || rest.starts_with(char::is_whitespace) => (true, rest.trim_start()),
            _ => (false, src),
        };
        // Lex into text and actions, applying the trim markers.
        let mut tokens: Vec<(bool, String)> = Vec::new(); // (is_action, content)
        let mut rest = src;
        let mut trim_next = false;
        while let Some(start) = rest.find("{{") {
            let mut text = rest[..start].to_string();
            let after = &rest[start + 2..];
            let end = after.find("}}").ok_or_else(|| anyhow::anyhow!("template: unclosed action in {src:?}"))?;
            let raw = &after[..end];
            if trim_next {
                text = text.trim_start().to_string();
            }
            if raw.starts_with("- ") || raw == "-" {
                text = text.trim_end().to_string();
            }
            if !text.is_empty() {
                tokens.push((false, unescape(&text)));
            }
            trim_next = raw.ends_with(" -") || raw == "-";
            let action = raw.trim().trim_start_matches("- ").trim_end_matches(" -").trim();
            tokens.push((true, action.to_string()));
            rest = &after[end + 2..];
        }
        let tail = if trim_next { rest.trim_start() } else { rest };
        if !tail.is_empty() {
            tokens.push((false, unescape(tail)));
        }
        let mut it = tokens.into_iter();
        let (nodes, stop) = parse_nodes(&mut it)?;
        if let Some(s) = stop {
            anyhow::bail!("template: unexpected {{{{{s}}}}}");
        }
        Ok(Template { nodes, table })
    }

    pub fn render(&self, v: &Value) -> String {
        let mut out = String::new();
        let mut vars = vec![("$".to_string(), v.clone())];
        render_nodes(&self.nodes, v, &mut vars, &mut out);
        out
    }

    /// Header row for `table` templates: each top-level action's last path element,
    /// mapped through `headers` (e.g. "ID" -> "CONTAINER ID").
    pub fn header(&self, headers: &[(&str, &str)]) -> String {
        let mut out = String::new();
        for n in &self.nodes {
            match n {
                Node::Text(t) => out.push_str(t),
                Node::Action(p) => {
                    let key = match p.cmds.first().and_then(|c| c.args.first()) {
                        Some(Arg::Dot(path)) | Some(Arg::Var(_, path)) => path.last().map(String::as_str).unwrap_or(""),
                        _ => "",
                    };
                    let h = headers.iter().find(|(k, _)| *k == key).map(|(_, h)| h.to_string()).unwrap_or_else(|| key.to_uppercase());
                    out.push_str(&h);
                }
                _ => {}
            }
        }
        out
    }
}

/// `items` through the `--format` template `format`: one line each, or with `table`
/// a header row (action names mapped through `headers`) and aligned columns.
pub fn render_all(format: &str, headers: &[(&str, &str)], items: &[Value]) -> anyhow::Result<String> {
    let t = Template::parse(format)?;
    let mut lines = Vec::new();
    if t.table {
        lines.push(t.header(headers));
    }
    lines.extend(items.iter().map(|x| t.render(x)));
    if t.table {
        let rows: Vec<Vec<String>> = lines.iter().map(|l| l.split('\t').map(str::to_string).collect()).collect();
        return Ok(table(&rows));
    }
    Ok(lines.iter().map(|l| format!("{l}\n")).collect())
}

fn unescape(s: &str) -> String {
    s.replace("\\t", "\t").replace("\\n", "\n")
}

/// Nodes up to an `{{else}}` or `{{end}}` (returned) or the end of the input.
fn parse_nodes(it: &mut impl Iterator<Item = (bool, String)>) -> anyhow::Result<(Vec<Node>, Option<String>)> {
    let mut nodes = Vec::new();
    while let Some((is_action, s)) = it.next() {
        if !is_action {
            nodes.push(Node::Text(s));
            continue;
        }
        let (word, rest) = s.split_once(char::is_whitespace).map(|(w, r)| (w, r.trim())).unwrap_or((s.as_str(), ""));
        match word {
            "end" | "else" => return Ok((nodes, Some(word.to_string()))),
            "range" | "if" | "with" => {
                let (vars, pipe_src) = match (word, rest.split_once(":=")) {
                    ("range", Some((vs, p))) => (vs.split(',').map(|v| v.trim().to_string()).collect::<Vec<_>>(), p.trim()),
                    _ => (Vec::new(), rest),
                };
                if vars.iter().any(|v| !v.starts_with('$') || v.len() < 2) || vars.len() > 2 {
                    anyhow::bail!("template: bad range variables in {s:?}");
                }
                let pipe = parse_pipe(pipe_src)?;
                let (body, stop) = parse_nodes(it)?;
                let alt = match stop.as_deref() {
                    Some("end") => Vec::new(),
                    Some("else") => match parse_nodes(it)? {
                        (alt, Some(e)) if e == "end" => alt,
                        _ => anyhow::bail!("template: {word} without its {{{{end}}}}"),
                    },
                    _ => anyhow::bail!("template: {word} without its {{{{end}}}}"),
                };
                nodes.push(match word {
                    "range" => Node::Range { vars, pipe, body, alt },
                    "if" => Node::If { pipe, body, alt },
                    _ => Node::With { pipe, body, alt },
                });
            }
            _ => nodes.push(Node::Action(parse_pipe(&s)?)),
        }
    }
    Ok((nodes, None))
}

/// Words of an action, keeping quoted strings whole.
fn words(s: &str) -> anyhow::Result<Vec<String>> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c == '"' || c == '`' {
            chars.next();
            let mut w = String::from(c);
            let mut closed = false;
            while let Some(x) = chars.next() {
                if x == '\\' && c == '"' {
                    if let Some(e) = chars.next() {
                        w.push(match e {
                            'n' => '\n',
                            't' => '\t',
                            o => o,
                        });
                    }
                    continue;
                }
                if x == c {
                    closed = true;
                    break;
                }
                w.push(x);
            }
            if !closed {
                anyhow::bail!("template: unterminated quoted string in {s:?}");
            }
            out.push(w);
        } else {
            // a word; a parenthesized pipeline is one, with what follows its `)`
            let mut w = String::new();
            let mut depth = 0usize;
            while let Some(&x) = chars.peek() {
                if x.is_whitespace() && depth == 0 {
                    break;
                }
                match x {
                    '(' => depth += 1,
                    ')' if depth > 0 => depth -= 1,
                    '|' if depth == 0 => break,
                    _ => {}
                }
                w.push(x);
                chars.next();
            }
            if w.is_empty() {
                // a `|` of its own
                chars.next();
                out.push("|".to_string());
                continue;
            }
            if depth != 0 {
                anyhow::bail!("template: unclosed left paren in {s:?}");
            }
            out.push(w);
        }
    }
    Ok(out)
}

fn parse_arg(w: &str) -> anyhow::Result<Arg> {
    let path = |p: &str| p.split('.').filter(|s| !s.is_empty()).map(str::to_string).collect::<Vec<_>>();
    if let Some(q) = w.strip_prefix('"').or_else(|| w.strip_prefix('`')) {
        return Ok(Arg::Str(q.to_string()));
    }
    if w.starts_with('.') {
        return Ok(Arg::Dot(path(w)));
    }
    if w.starts_with('$') {
        let (name, p) = w.split_once('.').map(|(n, p)| (n, path(p))).unwrap_or((w, Vec::new()));
        return Ok(Arg::Var(name.to_string(), p));
    }
    if let Some(inner) = w.strip_prefix('(') {
        let close = inner.rfind(')').ok_or_else(|| anyhow::anyhow!("template: unclosed left paren in {w:?}"))?;
        return Ok(Arg::Sub(Box::new(parse_pipe(&inner[..close])?), path(&inner[close + 1..])));
    }
    if let Ok(n) = w.parse::<i64>() {
        return Ok(Arg::Num(n));
    }
    anyhow::bail!("template: unsupported argument {w:?}")
}

fn parse_pipe(a: &str) -> anyhow::Result<Pipe> {
    let ws = words(a)?;
    let mut cmds = Vec::new();
    for (i, part) in ws.split(|w| w == "|").enumerate() {
        let Some(first) = part.first() else {
            if ws.is_empty() {
                return Ok(Pipe { cmds: vec![Cmd { func: None, args: vec![Arg::Dot(Vec::new())] }] });
            }
            anyhow::bail!("template: missing command in {a:?}");
        };
        let is_arg = |w: &str| w.starts_with(['.', '$', '"', '`', '(']) || w.parse::<i64>().is_ok();
        if is_arg(first) {
            if part.len() > 1 || i > 0 {
                anyhow::bail!("template: unsupported action {a:?}");
            }
            cmds.push(Cmd { func: None, args: vec![parse_arg(first)?] });
            continue;
        }
        if !FUNCS.contains(&first.as_str()) {
            anyhow::bail!("template: function {first:?} not defined");
        }
        let args = part[1..].iter().map(|w| parse_arg(w)).collect::<anyhow::Result<Vec<_>>>()?;
        // A lone function of one argument takes dot (`{{json}}` is `{{json .}}`).
        let args = if args.is_empty() && i == 0 && !matches!(first.as_str(), "print" | "println") { vec![Arg::Dot(Vec::new())] } else { args };
        cmds.push(Cmd { func: Some(first.clone()), args });
    }
    Ok(Pipe { cmds })
}

fn lookup<'a>(v: &'a Value, path: &[String]) -> Option<&'a Value> {
    let mut cur = v;
    for p in path {
        cur = match cur {
            Value::Object(m) => m.get(p).or_else(|| {
                // Go templates on our typed structs are case-sensitive; accept the
                // exact key first, then a case-insensitive match.
                m.iter().find(|(k, _)| k.eq_ignore_ascii_case(p)).map(|(_, v)| v)
            })?,
            _ => return None,
        };
    }
    Some(cur)
}

fn arg_value(a: &Arg, dot: &Value, vars: &[(String, Value)]) -> Option<Value> {
    match a {
        Arg::Dot(p) => lookup(dot, p).cloned(),
        Arg::Var(name, p) => vars.iter().rev().find(|(n, _)| n == name).and_then(|(_, v)| lookup(v, p).cloned()),
        Arg::Str(s) => Some(Value::String(s.clone())),
        Arg::Num(n) => Some(Value::from(*n)),
        Arg::Sub(p, path) => eval(p, dot, vars).and_then(|v| lookup(&v, path).cloned()),
    }
}

/// A pipeline's value (None: a missing key, printed `<no value>`).
fn eval(p: &Pipe, dot: &Value, vars: &[(String, Value)]) -> Option<Value> {
    let mut prev: Option<Option<Value>> = None;
    for c in &p.cmds {
        let mut args: Vec<Option<Value>> = c.args.iter().map(|a| arg_value(a, dot, vars)).collect();
        args.extend(prev.take());
        prev = Some(apply(c.func.as_deref(), &args));
    }
    prev.flatten()
}

/// A function applied to its arguments (no function: the first argument).
fn apply(func: Option<&str>, args: &[Option<Value>]) -> Option<Value> {
    let first = args.first().cloned().flatten();
    let text = |v: &Option<Value>| go_value(v.as_ref());
    Some(match func {
        None => return first,
        Some("json") => Value::String(serde_json::to_string(&first.unwrap_or(Value::Null)).unwrap_or_default()),
        Some("upper") => Value::String(text(&first).to_uppercase()),
        Some("lower") => Value::String(text(&first).to_lowercase()),
        Some("title") => Value::String(
            text(&first)
                .split(' ')
                .map(|w| {
                    let mut c = w.chars();
                    c.next().map(|f| f.to_uppercase().chain(c).collect()).unwrap_or_default()
                })
                .collect::<Vec<String>>()
                .join(" "),
        ),
        Some("len") => Value::from(match &first {
            Some(Value::Array(a)) => a.len(),
            Some(Value::Object(m)) => m.len(),
            Some(Value::String(s)) => s.len(),
            _ => 0,
        }),
        Some("index") => {
            let mut cur = first?;
            for k in &args[1..] {
                cur = match (&cur, k) {
                    // a key not in the map: its elements' zero value (docker's maps
                    // hold strings: labels, options)
                    (Value::Object(m), Some(Value::String(k))) => m.get(k).cloned().unwrap_or_else(|| Value::String(String::new())),
                    (Value::Array(a), Some(Value::Number(n))) => a.get(n.as_u64()? as usize).cloned()?,
                    (Value::Array(a), Some(Value::String(s))) => a.get(s.parse::<usize>().ok()?).cloned()?,
                    _ => return None,
                };
            }
            cur
        }
        Some("join") => {
            let sep = args.get(1).cloned().flatten().map(|s| go_value(Some(&s))).unwrap_or_default();
            match &first {
                Some(Value::Array(a)) => Value::String(a.iter().map(|x| go_value(Some(x))).collect::<Vec<_>>().join(&sep)),
                other => Value::String(text(other)),
            }
        }
        Some("split") => {
            let sep = args.get(1).map(text).unwrap_or_default();
            Value::Array(text(&first).split(sep.as_str()).map(|p| Value::String(p.to_string())).collect())
        }
        Some("pad") => {
            let n = |i: usize| args.get(i).cloned().flatten().and_then(|v| v.as_u64()).unwrap_or(0) as usize;
            Value::String(format!("{}{}{}", " ".repeat(n(1)), text(&first), " ".repeat(n(2))))
        }
        Some("truncate") => {
            let n = args.get(1).cloned().flatten().and_then(|v| v.as_u64()).unwrap_or(u64::MAX) as usize;
            Value::String(text(&first).chars().take(n).collect())
        }
        Some("eq") => Value::Bool(args[1..].iter().any(|b| same(&first, b))),
        Some("ne") => Value::Bool(!same(&first, args.get(1).unwrap_or(&None))),
        Some(op @ ("lt" | "le" | "gt" | "ge")) => {
            let b = args.get(1).cloned().flatten();
            let ord = match (&first, &b) {
                (Some(Value::Number(x)), Some(Value::Number(y))) => x.as_f64().partial_cmp(&y.as_f64()),
                (Some(Value::String(x)), Some(Value::String(y))) => Some(x.cmp(y)),
                _ => None,
            }?;
            Value::Bool(match op {
                "lt" => ord.is_lt(),
                "le" => ord.is_le(),
                "gt" => ord.is_gt(),
                _ => ord.is_ge(),
            })
        }
        // Go's: the first false argument (and), the first true one (or), else the last.
        Some("and") => return args.iter().find(|a| !truthy(a)).or(args.last()).cloned().flatten(),
        Some("or") => return args.iter().find(|a| truthy(a)).or(args.last()).cloned().flatten(),
        Some("not") => Value::Bool(!truthy(&first)),
        Some("print") => Value::String(args.iter().map(text).collect::<Vec<_>>().concat()),
        Some("printf") => Value::String(go_printf(&text(&first), &args[1..])),
        Some(_) => Value::String(args.iter().map(text).collect::<Vec<_>>().join(" ") + "\n"),
    })
}

/// Go's `fmt.Sprintf` for the verbs templates use: `%s`, `%v`, `%d`, `%q` with flags
/// `-` and `0` and a width, and `%%`.
fn go_printf(f: &str, args: &[Option<Value>]) -> String {
    let mut out = String::new();
    let mut it = f.chars().peekable();
    let mut next = args.iter();
    while let Some(c) = it.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let (mut left, mut zero, mut width) = (false, false, String::new());
        while let Some(&x) = it.peek() {
            match x {
                '-' => left = true,
                '0' if width.is_empty() => zero = true,
                d if d.is_ascii_digit() => width.push(d),
                _ => break,
            }
            it.next();
        }
        let Some(verb) = it.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(arg) = next.next() else {
            out.push_str(&format!("%!{verb}(MISSING)"));
            continue;
        };
        let body = match (verb, arg) {
            ('s' | 'v', a) => go_value(a.as_ref()),
            ('d', Some(Value::Number(n))) if n.is_i64() || n.is_u64() => n.to_string(),
            ('q', Some(Value::String(s))) => go_quote(s),
            (v, a) => format!("%!{v}({})", go_value(a.as_ref())),
        };
        let w: usize = width.parse().unwrap_or(0);
        let pad = w.saturating_sub(body.chars().count());
        if left {
            out.push_str(&body);
            out.push_str(&" ".repeat(pad));
        } else {
            out.push_str(&(if zero { "0" } else { " " }).repeat(pad));
            out.push_str(&body);
        }
    }
    out
}

/// Go's `eq` on the values templates see: numbers by value, the rest as they are.
fn same(a: &Option<Value>, b: &Option<Value>) -> bool {
    match (a, b) {
        (Some(Value::Number(x)), Some(Value::Number(y))) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

/// Go's truth: false, 0, nil, and empty strings, lists and maps are false.
fn truthy(v: &Option<Value>) -> bool {
    match v {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_f64() != Some(0.0),
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::Object(m)) => !m.is_empty(),
    }
}

fn render_nodes(nodes: &[Node], dot: &Value, vars: &mut Vec<(String, Value)>, out: &mut String) {
    for n in nodes {
        match n {
            Node::Text(t) => out.push_str(t),
            Node::Action(p) => out.push_str(&go_value(eval(p, dot, vars).as_ref())),
            Node::If { pipe, body, alt } => {
                let branch = if truthy(&eval(pipe, dot, vars)) { body } else { alt };
                render_nodes(branch, dot, vars, out);
            }
            Node::With { pipe, body, alt } => match eval(pipe, dot, vars) {
                v @ Some(_) if truthy(&v) => render_nodes(body, v.as_ref().unwrap_or(dot), vars, out),
                _ => render_nodes(alt, dot, vars, out),
            },
            Node::Range { vars: names, pipe, body, alt } => {
                // Maps in key order, as Go ranges them.
                let items: Vec<(Value, Value)> = match eval(pipe, dot, vars) {
                    Some(Value::Array(a)) => a.into_iter().enumerate().map(|(i, x)| (Value::from(i), x)).collect(),
                    Some(Value::Object(m)) => {
                        let mut kv: Vec<(String, Value)> = m.into_iter().collect();
                        kv.sort_by(|a, b| a.0.cmp(&b.0));
                        kv.into_iter().map(|(k, x)| (Value::String(k), x)).collect()
                    }
                    _ => Vec::new(),
                };
                if items.is_empty() {
                    render_nodes(alt, dot, vars, out);
                }
                for (k, x) in items {
                    let mark = vars.len();
                    match names.as_slice() {
                        [v] => vars.push((v.clone(), x.clone())),
                        [kn, vn] => {
                            vars.push((kn.clone(), k));
                            vars.push((vn.clone(), x.clone()));
                        }
                        _ => {}
                    }
                    render_nodes(body, &x, vars, out);
                    vars.truncate(mark);
                }
            }
        }
    }
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

    #[test]
    fn template_control_structures() {
        let v = json!({
            "Name": "web",
            "Networks": {"b": {"IPAddress": "10.0.0.3"}, "a": {"IPAddress": "10.0.0.2"}},
            "Ports": {"80/tcp": [{"HostPort": "8080"}], "53/udp": null},
            "Args": ["-c", "x y"],
            "Labels": {"com.example": "v"},
            "Running": false,
            "Empty": [],
        });
        let r = |t: &str| Template::parse(t).unwrap().render(&v);
        // maps in key order, dot the element
        assert_eq!(r("{{range .Networks}}{{.IPAddress}} {{end}}"), "10.0.0.2 10.0.0.3 ");
        assert_eq!(r("{{range $k, $v := .Networks}}{{$k}}={{$v.IPAddress}};{{end}}"), "a=10.0.0.2;b=10.0.0.3;");
        assert_eq!(r("{{range $p, $conf := .Ports}}{{$p}}:{{if $conf}}{{(index $conf 0).HostPort}}{{end}} {{end}}"), "53/udp: 80/tcp:8080 ");
        assert_eq!(r("{{range $i, $a := .Args}}{{$i}}{{$a}},{{end}}"), "0-c,1x y,");
        assert_eq!(r("{{range .Empty}}x{{else}}none{{end}}"), "none");
        assert_eq!(r("{{if .Running}}up{{else}}down{{end}}"), "down");
        assert_eq!(r("{{with .Labels}}{{index . \"com.example\"}}{{end}}"), "v");
        assert_eq!(r("{{index .Labels \"com.example\"}}"), "v");
        assert_eq!(r("[{{index .Labels \"nosuch\"}}]"), "[]");
        assert_eq!(r("{{join .Args \",\"}} {{len .Args}} {{upper .Name}} {{title .Name}}"), "-c,x y 2 WEB Web");
        assert_eq!(r("{{range .Networks}}{{$.Name}}{{end}}"), "webweb");
        assert_eq!(r("a {{- .Name -}} b"), "awebb");
        assert_eq!(r("{{println .Name}}"), "web\n");
        assert!(Template::parse("{{range .Args}}").is_err());
        assert!(Template::parse("{{end}}").is_err());
        assert_eq!(r("{{.Name | upper}} {{.Args | len}} {{printf \"%-5s|%3d|%q%%\" .Name 7 .Name}}"), "WEB 2 web  |  7|\"web\"%");
        assert_eq!(r("{{.Name | printf \"<%s>\"}}"), "<web>");
        assert!(Template::parse("{{.Name | .Args}}").is_err());
        assert_eq!(r("{{if eq .Name \"web\"}}yes{{end}} {{if ne (len .Args) 2}}no{{else}}two{{end}} {{if and .Name (not .Running)}}ok{{end}}"), "yes two ok");
        assert_eq!(r("{{if gt (len .Args) 1}}many{{end}} {{or .Running .Name}}"), "many web");
        assert_eq!(r("{{range split \"a,b\" \",\"}}[{{.}}]{{end}} {{truncate .Name 2}} {{pad .Name 1 2}}|"), "[a][b] we  web  |");
    }
}
