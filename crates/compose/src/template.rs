//! Variable substitution in strings: `$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR-default}`,
//! `${VAR:?error}`, `${VAR?error}`, `${VAR:+alt}`, `${VAR+alt}`, nested templates in the
//! default/alternative part, and `$$` as an escaped `$`. The matching rules (one regular
//! expression, then cutting the match at its first balanced closing brace) follow
//! compose-go's template package so that odd inputs are handled the same way.

use std::sync::OnceLock;

use regex::Regex;

/// Why a template could not be substituted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplateError {
    /// The template has a `$` that starts no valid substitution.
    Invalid {
        /// The whole template.
        template: String,
    },
    /// A `${VAR:?err}` / `${VAR?err}` variable is missing.
    MissingRequired {
        /// The variable name.
        variable: String,
        /// The error text given in the template.
        reason: String,
    },
}

impl std::fmt::Display for TemplateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TemplateError::Invalid { template } => write!(f, "Invalid template: {template:?}"),
            TemplateError::MissingRequired { variable, reason } => {
                if reason.is_empty() {
                    write!(f, "required variable {variable} is missing a value")
                } else {
                    write!(
                        f,
                        "required variable {variable} is missing a value: {reason}"
                    )
                }
            }
        }
    }
}

fn pattern() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        // Same expression as compose-go's template.DefaultPattern.
        #[allow(clippy::expect_used)]
        Regex::new(
            r"\$(?i:(?P<escaped>\$)|(?P<named>[_a-z][_a-z0-9]*)|\{(?:(?P<braced>[_a-z][_a-z0-9]*(?::?[-+?](.*))?)\}|(?P<invalid>)))",
        )
        .expect("valid template pattern")
    })
}

/// Substitutes variables in `template`, looking names up with `lookup`.
pub fn substitute(
    template: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, TemplateError> {
    let re = pattern();
    let mut out = String::with_capacity(template.len());
    let mut last = 0;
    let mut first_err: Option<TemplateError> = None;
    for m in re.find_iter(template) {
        out.push_str(&template[last..m.start()]);
        last = m.end();
        match replacement(m.as_str(), lookup) {
            Ok(s) => out.push_str(&s),
            Err(e) => {
                if first_err.is_none() {
                    first_err = Some(match e {
                        TemplateError::Invalid { template: t } if t.is_empty() => {
                            TemplateError::Invalid {
                                template: template.to_string(),
                            }
                        }
                        other => other,
                    });
                }
            }
        }
    }
    out.push_str(&template[last..]);
    match first_err {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

type SubstFn = fn(&str, &dyn Fn(&str) -> Option<String>) -> Result<Option<String>, TemplateError>;

fn substitution_function(template: &str) -> SubstFn {
    let candidates: [(&str, SubstFn); 6] = [
        (":?", required_when_empty_or_unset),
        ("?", required_when_unset),
        (":-", default_when_empty_or_unset),
        ("-", default_when_unset),
        (":+", alt_when_not_empty),
        ("+", alt_when_set),
    ];
    let mut best: Option<(usize, SubstFn)> = None;
    for (sep, f) in candidates {
        if let Some(idx) = template.find(sep) {
            if best.map(|(b, _)| idx < b).unwrap_or(true) {
                best = Some((idx, f));
            }
        }
    }
    best.map(|(_, f)| f).unwrap_or(required_when_empty_or_unset)
}

fn first_brace_closing_index(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut open = 0i32;
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'}' {
            open -= 1;
            if open == 0 {
                return Some(i);
            }
        }
        if b[i] == b'{' {
            open += 1;
            i += 1;
        }
        i += 1;
    }
    None
}

fn replacement(
    substring: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, TemplateError> {
    let subs_fn = substitution_function(substring);
    let (substring, rest) = match first_brace_closing_index(substring) {
        Some(i) => (&substring[..=i], &substring[i + 1..]),
        None => (substring, ""),
    };
    let Some(caps) = pattern().captures(substring) else {
        return Err(TemplateError::Invalid {
            template: String::new(),
        });
    };
    if let Some(esc) = caps.name("escaped") {
        if !esc.as_str().is_empty() {
            return Ok(esc.as_str().to_string());
        }
    }
    let named = caps.name("named").map(|m| m.as_str()).unwrap_or("");
    let (substitution, braced) = if named.is_empty() {
        (caps.name("braced").map(|m| m.as_str()).unwrap_or(""), true)
    } else {
        (named, false)
    };
    if substitution.is_empty() {
        return Err(TemplateError::Invalid {
            template: String::new(),
        });
    }
    if braced {
        if let Some(value) = subs_fn(substitution, lookup)? {
            let nested = substitute(rest, lookup)?;
            return Ok(value + &nested);
        }
    }
    Ok(lookup(substitution).unwrap_or_default())
}

fn partition<'a>(s: &'a str, sep: &str) -> (&'a str, &'a str) {
    match s.split_once(sep) {
        Some((a, b)) => (a, b),
        None => (s, ""),
    }
}

fn default_when_empty_or_unset(
    s: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<String>, TemplateError> {
    with_default_when_absence(s, lookup, true)
}

fn default_when_unset(
    s: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<String>, TemplateError> {
    with_default_when_absence(s, lookup, false)
}

fn alt_when_not_empty(
    s: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<String>, TemplateError> {
    with_default_when_presence(s, lookup, true)
}

fn alt_when_set(
    s: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<String>, TemplateError> {
    with_default_when_presence(s, lookup, false)
}

fn required_when_empty_or_unset(
    s: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<String>, TemplateError> {
    with_required(s, lookup, ":?", |v| !v.is_empty())
}

fn required_when_unset(
    s: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<String>, TemplateError> {
    with_required(s, lookup, "?", |_| true)
}

fn with_default_when_presence(
    s: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    not_empty: bool,
) -> Result<Option<String>, TemplateError> {
    let sep = if not_empty { ":+" } else { "+" };
    if !s.contains(sep) {
        return Ok(None);
    }
    let (name, alt) = partition(s, sep);
    let alt = substitute(alt, lookup)?;
    match lookup(name) {
        Some(v) if !not_empty || !v.is_empty() => Ok(Some(alt)),
        Some(v) => Ok(Some(v)),
        None => Ok(Some(String::new())),
    }
}

fn with_default_when_absence(
    s: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    empty_or_unset: bool,
) -> Result<Option<String>, TemplateError> {
    let sep = if empty_or_unset { ":-" } else { "-" };
    if !s.contains(sep) {
        return Ok(None);
    }
    let (name, default) = partition(s, sep);
    let default = substitute(default, lookup)?;
    match lookup(name) {
        None => Ok(Some(default)),
        Some(v) if empty_or_unset && v.is_empty() => Ok(Some(default)),
        Some(v) => Ok(Some(v)),
    }
}

fn with_required(
    s: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    sep: &str,
    valid: fn(&str) -> bool,
) -> Result<Option<String>, TemplateError> {
    if !s.contains(sep) {
        return Ok(None);
    }
    let (name, message) = partition(s, sep);
    let message = substitute(message, lookup)?;
    match lookup(name) {
        Some(v) if valid(&v) => Ok(Some(v)),
        _ => Err(TemplateError::MissingRequired {
            variable: name.to_string(),
            reason: message,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "FOO" => Some("foo".into()),
            "EMPTY" => Some(String::new()),
            "BAR" => Some("bar".into()),
            _ => None,
        }
    }

    fn sub(s: &str) -> Result<String, TemplateError> {
        substitute(s, &env)
    }

    #[test]
    fn plain_and_braced() {
        assert_eq!(sub("$FOO-${BAR}").as_deref(), Ok("foo-bar"));
        assert_eq!(sub("x${UNSET}y").as_deref(), Ok("xy"));
        assert_eq!(sub("$$FOO").as_deref(), Ok("$FOO"));
        assert_eq!(sub("$${FOO}").as_deref(), Ok("${FOO}"));
        assert_eq!(sub("cost: $ 5").as_deref(), Ok("cost: $ 5"));
    }

    #[test]
    fn defaults() {
        assert_eq!(sub("${UNSET:-d}").as_deref(), Ok("d"));
        assert_eq!(sub("${EMPTY:-d}").as_deref(), Ok("d"));
        assert_eq!(sub("${EMPTY-d}").as_deref(), Ok(""));
        assert_eq!(sub("${UNSET-d}").as_deref(), Ok("d"));
        assert_eq!(sub("${FOO:-d}").as_deref(), Ok("foo"));
        assert_eq!(sub("${UNSET:-${FOO}}").as_deref(), Ok("foo"));
        assert_eq!(sub("${UNSET:-${NOPE:-deep}}/x").as_deref(), Ok("deep/x"));
        assert_eq!(sub("${UNSET:-a} and ${BAR}").as_deref(), Ok("a and bar"));
    }

    #[test]
    fn alternatives() {
        assert_eq!(sub("${FOO:+alt}").as_deref(), Ok("alt"));
        assert_eq!(sub("${EMPTY:+alt}").as_deref(), Ok(""));
        assert_eq!(sub("${EMPTY+alt}").as_deref(), Ok("alt"));
        assert_eq!(sub("${UNSET+alt}").as_deref(), Ok(""));
    }

    #[test]
    fn required() {
        assert_eq!(sub("${FOO:?boom}").as_deref(), Ok("foo"));
        assert!(matches!(
            sub("${EMPTY:?boom}"),
            Err(TemplateError::MissingRequired { .. })
        ));
        assert_eq!(sub("${EMPTY?boom}").as_deref(), Ok(""));
        assert_eq!(
            sub("${UNSET?boom}"),
            Err(TemplateError::MissingRequired {
                variable: "UNSET".into(),
                reason: "boom".into()
            })
        );
    }

    #[test]
    fn invalid() {
        assert!(matches!(sub("${"), Err(TemplateError::Invalid { .. })));
        assert!(matches!(sub("${1abc}"), Err(TemplateError::Invalid { .. })));
        assert!(matches!(sub("${FOO"), Err(TemplateError::Invalid { .. })));
    }
}
