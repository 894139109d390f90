//! Parser directives (`# syntax=`, `# escape=`, `# check=`), which are only
//! recognised in the comment lines at the very top of a Dockerfile.

use std::sync::OnceLock;

/// One parser directive, with its 1-based line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directive {
    /// Lower-case name: `syntax`, `escape` or `check`.
    pub name: String,
    pub value: String,
    pub line: usize,
}

/// The directives of a Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Directives {
    pub list: Vec<Directive>,
}

impl Directives {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.list
            .iter()
            .find(|d| d.name == name)
            .map(|d| d.value.as_str())
    }
    /// The `# syntax=` frontend image, if any.
    pub fn syntax(&self) -> Option<&str> {
        self.get("syntax")
    }
    /// The `# check=` value, if any.
    pub fn check(&self) -> Option<&str> {
        self.get("check")
    }
}

const VALID: [&str; 3] = ["syntax", "escape", "check"];

fn directive_re() -> &'static regex::Regex {
    static RE: OnceLock<regex::Regex> = OnceLock::new();
    RE.get_or_init(|| {
        regex::Regex::new(r"^([a-zA-Z][a-zA-Z0-9]*)[\t\n\f\r ]*=[\t\n\f\r ]*(.+?)[\t\n\f\r ]*$")
            .expect("regex")
    })
}

/// Stateful line-by-line directive recogniser (BuildKit's `DirectiveParser`).
#[derive(Debug, Default)]
pub(crate) struct DirectiveParser {
    line: usize,
    seen: Vec<String>,
    done: bool,
}

impl DirectiveParser {
    /// Feeds the next physical line; returns the directive it holds, if any.
    pub(crate) fn parse_line(&mut self, line: &str) -> Result<Option<Directive>, String> {
        self.line += 1;
        if self.done {
            return Ok(None);
        }
        let Some(rest) = line.strip_prefix('#') else {
            self.done = true;
            return Ok(None);
        };
        let rest = rest.trim_start();
        let Some(caps) = directive_re().captures(rest) else {
            self.done = true;
            return Ok(None);
        };
        let key = caps[1].to_lowercase();
        if !VALID.contains(&key.as_str()) {
            self.done = true;
            return Ok(None);
        }
        if self.seen.contains(&key) {
            return Err(format!("only one {key} parser directive can be used"));
        }
        self.seen.push(key.clone());
        Ok(Some(Directive {
            name: key,
            value: caps[2].to_string(),
            line: self.line,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_top_directives_only() {
        let mut p = DirectiveParser::default();
        assert_eq!(
            p.parse_line("# syntax = docker/dockerfile:1 ")
                .unwrap()
                .unwrap()
                .value,
            "docker/dockerfile:1"
        );
        assert_eq!(p.parse_line("#ESCAPE=`").unwrap().unwrap().name, "escape");
        assert!(p.parse_line("# escape=\\").is_err());
        assert!(p.parse_line("# just a comment").unwrap().is_none());
        assert!(p.parse_line("# check=skip=all").unwrap().is_none());
    }
}
