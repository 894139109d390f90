//! Node tree → typed instructions and stages (BuildKit's `instructions/parse.go`).

use std::collections::BTreeMap;
use std::time::Duration;

use crate::error::ParseError;
use crate::heredoc::{chomp_heredoc_content, parse_heredoc};
use crate::instructions::*;
use crate::mount::{check_mount_from, parse_mount};
use crate::parser::Node;

#[cfg(test)]
const INSTRUCTIONS: [&str; 18] = [
    "ADD",
    "ARG",
    "CMD",
    "COPY",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "FROM",
    "HEALTHCHECK",
    "LABEL",
    "MAINTAINER",
    "ONBUILD",
    "RUN",
    "SHELL",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
];

fn levenshtein(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for i in 1..=a.len() {
        let mut cur = vec![i; b.len() + 1];
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            cur[j] = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Appends ` (did you mean X?)` when an option is within edit distance 2
/// (BuildKit's `suggest.WrapError`).
pub(crate) fn suggest(msg: String, val: &str, options: &[&str], case_sensitive: bool) -> String {
    let v = if case_sensitive {
        val.to_string()
    } else {
        val.to_lowercase()
    };
    let mut best: Option<String> = None;
    let mut min = 3;
    for opt in options {
        let o = if case_sensitive {
            opt.to_string()
        } else {
            opt.to_lowercase()
        };
        if o == v {
            return msg;
        }
        let d = levenshtein(&v, &o);
        if d < min {
            min = d;
            best = Some(if case_sensitive {
                o
            } else if val == val.to_lowercase() {
                o.to_lowercase()
            } else if val == val.to_uppercase() {
                o.to_uppercase()
            } else {
                o
            });
        }
    }
    match best {
        Some(b) => format!("{msg} (did you mean {b}?)"),
        None => msg,
    }
}

#[derive(Clone, Copy, PartialEq)]
enum FlagKind {
    Bool,
    Str,
    Strings,
}

/// BuildKit's `BFlags`: declared flags, then `parse` the raw `--x=y` words.
struct Flags<'a> {
    raw: &'a [String],
    decl: Vec<(&'static str, FlagKind)>,
    values: BTreeMap<&'static str, Vec<String>>,
}

impl<'a> Flags<'a> {
    fn new(raw: &'a [String]) -> Self {
        Flags {
            raw,
            decl: Vec::new(),
            values: BTreeMap::new(),
        }
    }
    fn add(mut self, name: &'static str, kind: FlagKind) -> Self {
        self.decl.push((name, kind));
        self
    }
    fn parse(mut self) -> Result<Self, String> {
        for a in self.raw {
            if a == "--" {
                break;
            }
            let Some(stripped) = a.strip_prefix("--") else {
                return Err(format!("arg should start with -- : {a}"));
            };
            let (name, value) = match stripped.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (stripped, None),
            };
            let flag_name = format!("--{name}");
            let Some(&(key, kind)) = self.decl.iter().find(|(n, _)| *n == name) else {
                let names: Vec<&str> = self.decl.iter().map(|(n, _)| *n).collect();
                return Err(suggest(
                    format!("unknown flag: {flag_name}"),
                    name,
                    &names,
                    true,
                ));
            };
            if self.values.contains_key(key) && kind != FlagKind::Strings {
                return Err(format!("duplicate flag specified: {flag_name}"));
            }
            let v = match kind {
                FlagKind::Bool => {
                    if value == Some("") {
                        return Err(format!("missing a value on flag: {flag_name}"));
                    }
                    match value.unwrap_or("").to_lowercase().as_str() {
                        "true" | "" => "true".to_string(),
                        "false" => "false".to_string(),
                        _ => {
                            return Err(format!(
                                "expecting boolean value for flag {flag_name}, not: {}",
                                value.unwrap_or("")
                            ))
                        }
                    }
                }
                FlagKind::Str | FlagKind::Strings => value
                    .ok_or_else(|| format!("missing a value on flag: {flag_name}"))?
                    .to_string(),
            };
            self.values.entry(key).or_default().push(v);
        }
        Ok(self)
    }
    fn string(&self, name: &str) -> String {
        self.values
            .get(name)
            .and_then(|v| v.last().cloned())
            .unwrap_or_default()
    }
    fn opt_string(&self, name: &str) -> Option<String> {
        self.values.get(name).and_then(|v| v.last().cloned())
    }
    fn bool(&self, name: &str) -> bool {
        self.string(name) == "true"
    }
    fn opt_bool(&self, name: &str) -> Option<bool> {
        self.opt_string(name).map(|v| v == "true")
    }
    fn strings(&self, name: &str) -> Vec<String> {
        self.values.get(name).cloned().unwrap_or_default()
    }
}

fn at_least_one(cmd: &str) -> String {
    format!("{cmd} requires at least one argument")
}
fn exactly_one(cmd: &str) -> String {
    format!("{cmd} requires exactly one argument")
}

fn kvps(args: &[String], cmd: &str) -> Result<Vec<KeyValue>, String> {
    if args.is_empty() {
        return Err(at_least_one(cmd));
    }
    if !args.chunks_exact(3).remainder().is_empty() {
        return Err(format!("Bad input to {cmd}, too many arguments"));
    }
    args.chunks(3)
        .map(|c| {
            if c[0].is_empty() {
                return Err(format!("{cmd} names can not be blank"));
            }
            Ok(KeyValue {
                key: c[0].clone(),
                value: c[1].clone(),
                no_delim: c[2].is_empty(),
            })
        })
        .collect()
}

fn command_line(args: &[String], json: bool) -> CommandLine {
    if args.is_empty() || json {
        CommandLine {
            args: args.to_vec(),
            prepend_shell: !json,
        }
    } else {
        CommandLine {
            args: vec![args.join(" ")],
            prepend_shell: true,
        }
    }
}

struct SourcesDest {
    sources: Vec<String>,
    contents: Vec<SourceContent>,
    dest: String,
}

fn sources_and_dest(node: &Node, args: &[String], cmd: &str) -> Result<SourcesDest, String> {
    let (srcs, dest) = args.split_at(args.len() - 1);
    let dest = dest[0].clone();
    if parse_heredoc(&dest).ok().flatten().is_some() {
        return Err(format!("{cmd} cannot accept a heredoc as a destination"));
    }
    let mut sources = Vec::new();
    let mut contents = Vec::new();
    for s in srcs {
        match parse_heredoc(s).ok().flatten() {
            Some(h) => {
                let mut data = node
                    .heredocs
                    .iter()
                    .rev()
                    .find(|d| d.name == h.name)
                    .map(|d| d.content.clone())
                    .unwrap_or_default();
                if h.chomp {
                    data = chomp_heredoc_content(&data);
                }
                contents.push(SourceContent {
                    path: h.name,
                    data,
                    expand: h.expand,
                });
            }
            None => sources.push(s.clone()),
        }
    }
    Ok(SourcesDest {
        sources,
        contents,
        dest,
    })
}

/// Go's `time.ParseDuration`, in nanoseconds.
pub(crate) fn parse_go_duration(s: &str) -> Result<i128, String> {
    let err = || format!("time: invalid duration {}", crate::dump::go_quote(s));
    let (neg, mut rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(err());
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let num = &rest[..num_end];
        if num.is_empty() || num == "." {
            return Err(err());
        }
        let v: f64 = num.parse().map_err(|_| err())?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = &rest[..unit_end];
        rest = &rest[unit_end..];
        let mul = match unit {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            "" => {
                return Err(format!(
                    "time: missing unit in duration {}",
                    crate::dump::go_quote(s)
                ))
            }
            _ => {
                return Err(format!(
                    "time: unknown unit {} in duration {}",
                    crate::dump::go_quote(unit),
                    crate::dump::go_quote(s)
                ))
            }
        };
        total += v * mul;
    }
    let n = total.round() as i128;
    Ok(if neg { -n } else { n })
}

fn opt_interval(flags: &Flags<'_>, name: &str) -> Result<Duration, String> {
    let v = flags.string(name);
    if v.is_empty() {
        return Ok(Duration::ZERO);
    }
    let ns = parse_go_duration(&v)?;
    if ns == 0 {
        return Ok(Duration::ZERO);
    }
    if ns < 1_000_000 {
        return Err(format!("Interval \"{name}\" cannot be less than 1ms"));
    }
    Ok(Duration::from_nanos(ns as u64))
}

fn parse_healthcheck(node: &Node, args: &[String]) -> Result<Healthcheck, String> {
    if args.is_empty() {
        return Err(at_least_one("HEALTHCHECK"));
    }
    let typ = args[0].to_uppercase();
    let rest = &args[1..];
    if typ == "NONE" {
        if !rest.is_empty() {
            return Err("HEALTHCHECK NONE takes no arguments".into());
        }
        return Ok(Healthcheck::None);
    }
    let flags = Flags::new(&node.flags)
        .add("interval", FlagKind::Str)
        .add("timeout", FlagKind::Str)
        .add("start-period", FlagKind::Str)
        .add("start-interval", FlagKind::Str)
        .add("retries", FlagKind::Str)
        .parse()?;
    if typ != "CMD" {
        return Err(format!(
            "Unknown type {} in HEALTHCHECK (try CMD)",
            crate::dump::go_quote(&typ)
        ));
    }
    let cmd = command_line(rest, node.json);
    if cmd.args.is_empty() {
        return Err("Missing command after HEALTHCHECK CMD".into());
    }
    let mut test = vec![if node.json {
        "CMD".to_string()
    } else {
        "CMD-SHELL".to_string()
    }];
    test.extend(cmd.args);
    let interval = opt_interval(&flags, "interval")?;
    let timeout = opt_interval(&flags, "timeout")?;
    let start_period = opt_interval(&flags, "start-period")?;
    let start_interval = opt_interval(&flags, "start-interval")?;
    let retries = match flags.opt_string("retries") {
        None => 0,
        Some(v) => {
            let n: i64 = v
                .parse()
                .ok()
                .filter(|n: &i64| i32::try_from(*n).is_ok())
                .ok_or_else(|| {
                    format!(
                        "strconv.ParseInt: parsing {}: invalid syntax",
                        crate::dump::go_quote(&v)
                    )
                })?;
            if n < 0 {
                return Err(format!("--retries cannot be negative ({n})"));
            }
            n as u32
        }
    };
    Ok(Healthcheck::Check {
        test,
        interval,
        timeout,
        start_period,
        start_interval,
        retries,
    })
}

fn valid_stage_name(s: &str) -> bool {
    let mut cs = s.chars();
    matches!(cs.next(), Some('a'..='z'))
        && cs.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.'))
}

/// Converts one instruction node into a typed instruction.
pub fn parse_instruction(node: &Node) -> Result<Instruction, String> {
    let args = node.args();
    let no_flags = || Flags::new(&node.flags).parse().map(|_| ());
    let cmd = node.value.to_lowercase();
    Ok(match cmd.as_str() {
        "env" => {
            no_flags()?;
            Instruction::Env(kvps(&args, "ENV")?)
        }
        "label" => {
            no_flags()?;
            Instruction::Label(kvps(&args, "LABEL")?)
        }
        "maintainer" => {
            if args.len() != 1 {
                return Err(exactly_one("MAINTAINER"));
            }
            no_flags()?;
            Instruction::Maintainer(args[0].clone())
        }
        "add" => {
            if args.len() < 2 {
                return Err(no_dest("ADD"));
            }
            let f = Flags::new(&node.flags)
                .add("chown", FlagKind::Str)
                .add("chmod", FlagKind::Str)
                .add("link", FlagKind::Bool)
                .add("keep-git-dir", FlagKind::Bool)
                .add("checksum", FlagKind::Str)
                .add("unpack", FlagKind::Bool)
                .add("exclude", FlagKind::Strings)
                .parse()?;
            let sd = sources_and_dest(node, &args, "ADD")?;
            Instruction::Add(Add {
                sources: sd.sources,
                contents: sd.contents,
                dest: sd.dest,
                chown: f.string("chown"),
                chmod: f.string("chmod"),
                link: f.bool("link"),
                keep_git_dir: f.opt_bool("keep-git-dir"),
                checksum: f.string("checksum"),
                unpack: f.opt_bool("unpack"),
                excludes: f.strings("exclude"),
            })
        }
        "copy" => {
            if args.len() < 2 {
                return Err(no_dest("COPY"));
            }
            let f = Flags::new(&node.flags)
                .add("chown", FlagKind::Str)
                .add("from", FlagKind::Str)
                .add("chmod", FlagKind::Str)
                .add("link", FlagKind::Bool)
                .add("exclude", FlagKind::Strings)
                .add("parents", FlagKind::Bool)
                .parse()?;
            let sd = sources_and_dest(node, &args, "COPY")?;
            Instruction::Copy(Copy {
                sources: sd.sources,
                contents: sd.contents,
                dest: sd.dest,
                from: f.string("from"),
                chown: f.string("chown"),
                chmod: f.string("chmod"),
                link: f.bool("link"),
                parents: f.bool("parents"),
                excludes: f.strings("exclude"),
            })
        }
        "from" => {
            let name = match args.len() {
                3 if args[1].eq_ignore_ascii_case("as") => {
                    let n = args[2].to_lowercase();
                    if !valid_stage_name(&n) {
                        return Err(format!(
                            "invalid name for build stage: {}, name can't start with a number or contain symbols",
                            crate::dump::go_quote(&args[2])
                        ));
                    }
                    Some(n)
                }
                1 => None,
                _ => return Err("FROM requires either one or three arguments".into()),
            };
            let f = Flags::new(&node.flags)
                .add("platform", FlagKind::Str)
                .parse()?;
            Instruction::From {
                base: args[0].clone(),
                name,
                platform: f.opt_string("platform").filter(|p| !p.is_empty()),
            }
        }
        "onbuild" => {
            if args.is_empty() {
                return Err(at_least_one("ONBUILD"));
            }
            no_flags()?;
            let trigger = args[0].trim().to_uppercase();
            match trigger.as_str() {
                "ONBUILD" => {
                    return Err("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed".into())
                }
                "MAINTAINER" | "FROM" => {
                    return Err(format!("{trigger} isn't allowed as an ONBUILD trigger"))
                }
                _ => {}
            }
            let mut expression = strip_onbuild(&node.original);
            for h in &node.heredocs {
                expression.push('\n');
                expression.push_str(&h.content);
                expression.push_str(&h.name);
            }
            Instruction::Onbuild { expression }
        }
        "workdir" => {
            if args.len() != 1 {
                return Err(exactly_one("WORKDIR"));
            }
            no_flags()?;
            Instruction::Workdir(args[0].clone())
        }
        "run" => {
            let f = Flags::new(&node.flags)
                .add("mount", FlagKind::Strings)
                .add("network", FlagKind::Str)
                .add("security", FlagKind::Str)
                .parse()?;
            let mount_specs = f.strings("mount");
            for m in &mount_specs {
                check_mount_from(m)?;
            }
            let mounts = mount_specs
                .iter()
                .map(|m| parse_mount(m, &mut |v| Ok(v.to_string())))
                .collect::<Result<_, _>>()?;
            let network = f.opt_string("network").unwrap_or_else(|| "default".into());
            if !matches!(network.as_str(), "default" | "none" | "host") {
                return Err(format!(
                    "invalid network mode {}",
                    crate::dump::go_quote(&network)
                ));
            }
            let security = f.opt_string("security").unwrap_or_else(|| "sandbox".into());
            if !matches!(security.as_str(), "sandbox" | "insecure") {
                return Err(format!(
                    "security {} is not valid",
                    crate::dump::go_quote(&security)
                ));
            }
            let files = node
                .heredocs
                .iter()
                .map(|h| InlineFile {
                    name: h.name.clone(),
                    data: h.content.clone(),
                    chomp: h.chomp,
                })
                .collect();
            Instruction::Run(Run {
                cmd: command_line(&args, node.json),
                files,
                mount_specs,
                mounts,
                network,
                security,
                flags_used: f.values.keys().map(|k| k.to_string()).collect(),
            })
        }
        "cmd" => {
            no_flags()?;
            Instruction::Cmd(command_line(&args, node.json))
        }
        "entrypoint" => {
            no_flags()?;
            Instruction::Entrypoint(command_line(&args, node.json))
        }
        "healthcheck" => Instruction::Healthcheck(parse_healthcheck(node, &args)?),
        "expose" => {
            if args.is_empty() {
                return Err(at_least_one("EXPOSE"));
            }
            no_flags()?;
            let mut ports = args.clone();
            ports.sort();
            Instruction::Expose(ports)
        }
        "user" => {
            if args.len() != 1 {
                return Err(exactly_one("USER"));
            }
            no_flags()?;
            Instruction::User(args[0].clone())
        }
        "volume" => {
            if args.is_empty() {
                return Err(at_least_one("VOLUME"));
            }
            no_flags()?;
            let mut vols = Vec::new();
            for v in &args {
                let v = v.trim();
                if v.is_empty() {
                    return Err("VOLUME specified can not be an empty string".into());
                }
                vols.push(v.to_string());
            }
            Instruction::Volume(vols)
        }
        "stopsignal" => {
            if args.len() != 1 {
                return Err(exactly_one("STOPSIGNAL"));
            }
            Instruction::StopSignal(args[0].clone())
        }
        "arg" => {
            if args.is_empty() {
                return Err(at_least_one("ARG"));
            }
            let mut defs = Vec::new();
            for a in &args {
                match a.split_once('=') {
                    Some(("", _)) => return Err("ARG names can not be blank".into()),
                    Some((k, v)) => defs.push(ArgDef {
                        key: k.into(),
                        value: Some(v.into()),
                    }),
                    None => defs.push(ArgDef {
                        key: a.clone(),
                        value: None,
                    }),
                }
            }
            Instruction::Arg(defs)
        }
        "shell" => {
            no_flags()?;
            let c = command_line(&args, node.json);
            if c.args.is_empty() {
                return Err(at_least_one("SHELL"));
            }
            if !node.json {
                return Err("SHELL requires the arguments to be in JSON form".into());
            }
            Instruction::Shell(c.args)
        }
        _ => {
            // dockerd's wording, without BuildKit's later "(did you mean ...?)".
            return Err(format!("unknown instruction: {}", node.value.to_uppercase()))
        }
    })
}

fn no_dest(cmd: &str) -> String {
    format!("{cmd} requires at least two arguments, but only one was provided. Destination could not be determined")
}

fn strip_onbuild(original: &str) -> String {
    let t = original.trim_start();
    if t.len() >= 7 && t[..7].eq_ignore_ascii_case("onbuild") {
        t[7..].trim_start().to_string()
    } else {
        original.to_string()
    }
}

/// Parses a Dockerfile into directives, meta ARGs and stages.
pub fn parse_stages(src: &str) -> Result<Dockerfile, ParseError> {
    let res = crate::parser::parse(src)?;
    let mut df = Dockerfile {
        directives: res.directives,
        escape_token: res.escape_token,
        meta_args: Vec::new(),
        stages: Vec::new(),
    };
    for n in &res.ast.children {
        let lines = LineRange {
            start: n.start_line,
            end: n.end_line,
        };
        let ins = parse_instruction(n).map_err(|e| ParseError::new(n.start_line, e))?;
        match ins {
            Instruction::Arg(defs) if df.stages.is_empty() => df.meta_args.extend(defs),
            Instruction::From {
                base,
                name,
                platform,
            } => df.stages.push(Stage {
                name,
                base,
                platform,
                line: lines,
                instructions: Vec::new(),
            }),
            other => match df.stages.last_mut() {
                Some(st) => st.instructions.push((other, lines)),
                None => {
                    return Err(ParseError::new(
                        n.start_line,
                        "no build stage in current context",
                    ))
                }
            },
        }
    }
    Ok(df)
}

/// Parses an ONBUILD trigger expression into its instruction.
pub fn parse_onbuild_trigger(expression: &str, escape: char) -> Result<Instruction, ParseError> {
    let src = if escape == '`' {
        format!("# escape=`\n{expression}\n")
    } else {
        format!("{expression}\n")
    };
    let res = crate::parser::parse(&src)?;
    let n = &res.ast.children[0];
    parse_instruction(n).map_err(|e| ParseError::new(n.start_line, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_go_duration("1m30s").unwrap(), 90_000_000_000);
        assert_eq!(parse_go_duration("1.5h").unwrap(), 5_400_000_000_000);
        assert_eq!(parse_go_duration("300ms").unwrap(), 300_000_000);
        assert!(parse_go_duration("5").is_err());
        assert!(parse_go_duration("abc").is_err());
    }

    #[test]
    fn suggestions() {
        assert_eq!(
            suggest(
                "unknown instruction: FORM".into(),
                "FORM",
                &INSTRUCTIONS,
                false
            ),
            "unknown instruction: FORM (did you mean FROM?)"
        );
        assert_eq!(suggest("x".into(), "zzzzzz", &INSTRUCTIONS, false), "x");
    }
}
