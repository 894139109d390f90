//! `.env` / `env_file` parsing with compose-go's dotenv rules: `KEY=value`, `KEY: value`,
//! `export KEY=value`, bare `KEY` (inherited from the lookup), single quotes (literal),
//! double quotes (escape sequences and interpolation), unquoted values with ` #` comments,
//! and `${VAR}` interpolation from the lookup first and then from earlier keys.

use std::collections::BTreeMap;

use crate::template::substitute;

/// Variables read from env files.
pub type EnvMap = BTreeMap<String, String>;

fn is_space(c: char) -> bool {
    matches!(
        c,
        '\t' | '\u{0b}' | '\u{0c}' | '\r' | ' ' | '\u{85}' | '\u{a0}'
    )
}

struct Parser {
    line: usize,
}

/// Parses `src`, adding the variables to `out`. `lookup` resolves inherited keys and
/// variables referenced in values (before keys already in `out`).
pub fn parse(
    src: &str,
    out: &mut EnvMap,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<(), String> {
    let src = src.strip_prefix('\u{feff}').unwrap_or(src);
    let mut p = Parser { line: 1 };
    let mut cutset: &str = src;
    loop {
        cutset = p.statement_start(cutset);
        if cutset.is_empty() {
            break;
        }
        let (key, left, inherited) = p.locate_key_name(cutset)?;
        if key.contains(' ') {
            return Err(format!("line {}: key cannot contain a space", p.line));
        }
        if inherited {
            if let Some(v) = lookup(&key) {
                out.insert(key, v);
            }
            cutset = left;
            continue;
        }
        let (value, left) = p.extract_var_value(left, out, lookup)?;
        out.insert(key, value);
        cutset = left;
    }
    Ok(())
}

impl Parser {
    fn index_of_non_space(&mut self, src: &str) -> Option<usize> {
        for (i, c) in src.char_indices() {
            if c == '\n' {
                self.line += 1;
            }
            if !c.is_whitespace() {
                return Some(i);
            }
        }
        None
    }

    fn statement_start<'a>(&mut self, src: &'a str) -> &'a str {
        let Some(pos) = self.index_of_non_space(src) else {
            return "";
        };
        let src = &src[pos..];
        if !src.starts_with('#') {
            return src;
        }
        match src.find('\n') {
            None => "",
            Some(i) => self.statement_start(&src[i..]),
        }
    }

    fn locate_key_name<'a>(&mut self, src: &'a str) -> Result<(String, &'a str, bool), String> {
        let mut src = src;
        if let Some(rest) = src.strip_prefix("export") {
            if rest.starts_with(|c: char| c.is_whitespace()) {
                src = rest.trim_start_matches(is_space);
            }
        }
        let mut key = String::new();
        let mut offset = 0;
        let mut inherited = false;
        for (i, c) in src.char_indices() {
            if is_space(c) {
                continue;
            }
            match c {
                '=' | ':' | '\n' => {
                    key = src[..i].to_string();
                    offset = i + 1;
                    inherited = c == '\n';
                    break;
                }
                '_' | '.' | '-' | '[' | ']' => {}
                c if c.is_alphanumeric() => {}
                c => {
                    let first_line = src.split('\n').next().unwrap_or("");
                    return Err(format!(
                        "line {}: unexpected character {:?} in variable name {:?}",
                        self.line,
                        c.to_string(),
                        first_line
                    ));
                }
            }
        }
        if src.is_empty() {
            return Err("zero length string".to_string());
        }
        if inherited && !key.contains(' ') {
            self.line += 1;
        }
        let key = key.trim_end().to_string();
        let cutset = src[offset..].trim_start_matches(is_space);
        Ok((key, cutset, inherited))
    }

    fn extract_var_value<'a>(
        &mut self,
        src: &'a str,
        env: &EnvMap,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<(String, &'a str), String> {
        let quote = match src.as_bytes().first() {
            Some(b'"') => Some(b'"'),
            Some(b'\'') => Some(b'\''),
            _ => None,
        };
        let Some(quote) = quote else {
            let (value, rest) = match src.split_once('\n') {
                Some((v, r)) => (v, r),
                None => (src, ""),
            };
            self.line += 1;
            let value = match value.split_once(" #") {
                Some((v, _)) => v,
                None => value,
            };
            let value = value.trim_end();
            let expanded = expand_variables(value, env, lookup)?;
            return Ok((expanded, rest));
        };
        let bytes = src.as_bytes();
        let mut prev_escape = false;
        let mut chars: Vec<u8> = Vec::new();
        let mut i = 1;
        while i < bytes.len() {
            let c = bytes[i];
            if c == b'\n' {
                self.line += 1;
            }
            if c != quote {
                if !prev_escape && c == b'\\' {
                    prev_escape = true;
                    i += 1;
                    continue;
                }
                if prev_escape {
                    prev_escape = false;
                    chars.push(b'\\');
                }
                chars.push(c);
                i += 1;
                continue;
            }
            if prev_escape {
                prev_escape = false;
                chars.push(c);
                i += 1;
                continue;
            }
            let mut value = String::from_utf8_lossy(&chars).into_owned();
            if quote == b'"' {
                value = expand_variables(&expand_escapes(&value), env, lookup)?;
            }
            return Ok((value, &src[i + 1..]));
        }
        let end = src.find('\n').unwrap_or(src.len());
        Err(format!(
            "line {}: unterminated quoted value {}",
            self.line,
            &src[..end]
        ))
    }
}

fn expand_variables(
    value: &str,
    env: &EnvMap,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, String> {
    substitute(value, &|k| lookup(k).or_else(|| env.get(k).cloned())).map_err(|e| e.to_string())
}

fn expand_escapes(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] != '\\' || i + 1 >= chars.len() {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        let n = chars[i + 1];
        let simple = match n {
            'a' => Some('\u{07}'),
            'b' => Some('\u{08}'),
            'f' => Some('\u{0c}'),
            'n' => Some('\n'),
            'r' => Some('\r'),
            't' => Some('\t'),
            'v' => Some('\u{0b}'),
            '"' => Some('"'),
            '\\' => Some('\\'),
            _ => None,
        };
        if let Some(c) = simple {
            out.push(c);
            i += 2;
            continue;
        }
        match n {
            '$' => {
                out.push_str("$$");
                i += 2;
            }
            'c' => {
                out.push_str("\\c");
                i += 2;
            }
            '0' => {
                // \0 followed by up to 3 digits; only a full 3-digit octal is decoded.
                let mut j = i + 2;
                while j < chars.len() && j < i + 5 && chars[j].is_ascii_digit() {
                    j += 1;
                }
                let digits: String = chars[i + 2..j].iter().collect();
                let decoded =
                    if digits.len() == 3 && digits.chars().all(|c| ('0'..='7').contains(&c)) {
                        u32::from_str_radix(&digits, 8)
                            .ok()
                            .filter(|v| *v <= 0o377)
                            .and_then(char::from_u32)
                    } else {
                        None
                    };
                match decoded {
                    Some(c) => out.push(c),
                    None => {
                        out.push('\\');
                        out.push('0');
                        out.push_str(&digits);
                    }
                }
                i = j;
            }
            _ => {
                out.push('\\');
                i += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(src: &str) -> EnvMap {
        let mut out = EnvMap::new();
        parse(src, &mut out, &|k| {
            if k == "HOME" {
                Some("/home/me".into())
            } else {
                None
            }
        })
        .expect("parse");
        out
    }

    #[test]
    fn basic_forms() {
        let m =
            parse_str("# comment\nA=1\nexport B=two words # comment\nC: yaml\n  D = spaced  \n");
        assert_eq!(m["A"], "1");
        assert_eq!(m["B"], "two words");
        assert_eq!(m["C"], "yaml");
        assert_eq!(m["D"], "spaced");
    }

    #[test]
    fn quotes_and_interpolation() {
        let m = parse_str(
            "A='single $HOME'\nB=\"double $HOME\\nnext\"\nC=${A}x\nD=\"\\$HOME\"\nHOME\n",
        );
        assert_eq!(m["A"], "single $HOME");
        assert_eq!(m["B"], "double /home/me\nnext");
        assert_eq!(m["C"], "single $HOMEx");
        assert_eq!(m["D"], "$HOME");
        assert_eq!(m["HOME"], "/home/me");
    }

    #[test]
    fn errors() {
        let mut out = EnvMap::new();
        assert!(parse("A=\"unterminated\n", &mut out, &|_| None).is_err());
        assert!(parse("A B=1\n", &mut out, &|_| None).is_err());
        assert!(parse("A$=1\n", &mut out, &|_| None).is_err());
    }
}
