//! Shell-word lexer: variable expansion, quote removal and word splitting,
//! following BuildKit's `frontend/dockerfile/shell.Lex`.

use std::collections::{BTreeMap, HashMap};

/// An error from word processing, e.g. an unterminated quote.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct LexError(pub String);

impl From<LexError> for berth_errdefs::Error {
    fn from(e: LexError) -> Self {
        berth_errdefs::Error::invalid(e.0)
    }
}

/// Source of variable values for expansion.
pub trait Env {
    fn get_var(&self, key: &str) -> Option<String>;
}

impl Env for HashMap<String, String> {
    fn get_var(&self, key: &str) -> Option<String> {
        self.get(key).cloned()
    }
}

impl Env for BTreeMap<String, String> {
    fn get_var(&self, key: &str) -> Option<String> {
        self.get(key).cloned()
    }
}

/// `(key, value)` pairs; the last definition of a key wins.
impl Env for [(String, String)] {
    fn get_var(&self, key: &str) -> Option<String> {
        self.iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
    }
}

impl Env for Vec<(String, String)> {
    fn get_var(&self, key: &str) -> Option<String> {
        self.as_slice().get_var(key)
    }
}

/// An environment built from `KEY=value` strings (like Go's `EnvsFromSlice`).
#[derive(Debug, Clone, Default)]
pub struct EnvList(HashMap<String, String>);

impl EnvList {
    pub fn from_slice<S: AsRef<str>>(items: &[S]) -> Self {
        let mut m = HashMap::new();
        for it in items {
            let (k, v) = it.as_ref().split_once('=').unwrap_or((it.as_ref(), ""));
            m.insert(k.to_string(), v.to_string());
        }
        EnvList(m)
    }
}

impl Env for EnvList {
    fn get_var(&self, key: &str) -> Option<String> {
        self.0.get(key).cloned()
    }
}

/// An environment with no variables.
#[derive(Debug, Clone, Copy, Default)]
pub struct EmptyEnv;

impl Env for EmptyEnv {
    fn get_var(&self, _key: &str) -> Option<String> {
        None
    }
}

/// The lexer. Options mirror BuildKit's `shell.Lex` fields.
#[derive(Debug, Clone)]
pub struct Lex {
    pub escape_token: char,
    /// Keep quote characters in the output.
    pub raw_quotes: bool,
    /// Keep escape characters in the output.
    pub raw_escapes: bool,
    /// Treat quotes as ordinary characters.
    pub skip_process_quotes: bool,
    /// Leave references to unset variables as written.
    pub skip_unset_env: bool,
}

impl Lex {
    pub fn new(escape_token: char) -> Self {
        Lex {
            escape_token,
            raw_quotes: false,
            raw_escapes: false,
            skip_process_quotes: false,
            skip_unset_env: false,
        }
    }

    /// Expands variables and removes quotes, keeping whitespace between words.
    pub fn process_word(&self, word: &str, env: &dyn Env) -> Result<String, LexError> {
        self.process(word, env).map(|(w, _)| w)
    }

    /// Expands variables, removes quotes and splits into words.
    pub fn process_words(&self, word: &str, env: &dyn Env) -> Result<Vec<String>, LexError> {
        self.process(word, env).map(|(_, ws)| ws)
    }

    fn process(&self, word: &str, env: &dyn Env) -> Result<(String, Vec<String>), LexError> {
        let mut sw = ShellWord {
            lex: self,
            chars: word.chars().collect(),
            pos: 0,
            env,
            raw_escapes: self.raw_escapes,
            words_buf: String::new(),
        };
        let raw = sw.raw_escapes;
        sw.process_stop_on(None, raw).map_err(|e| {
            LexError(format!(
                "failed to process {}: {}",
                crate::dump::go_quote(word),
                e
            ))
        })
    }
}

/// `ProcessWord` with the default lexer for `escape`.
pub fn process_word(word: &str, env: &dyn Env, escape: char) -> Result<String, LexError> {
    Lex::new(escape).process_word(word, env)
}

/// `ProcessWords` with the default lexer for `escape`.
pub fn process_words(word: &str, env: &dyn Env, escape: char) -> Result<Vec<String>, LexError> {
    Lex::new(escape).process_words(word, env)
}

struct ShellWord<'a> {
    lex: &'a Lex,
    chars: Vec<char>,
    pos: usize,
    env: &'a dyn Env,
    raw_escapes: bool,
    // Shared between nested calls, as in BuildKit (a nested `${x:-w}` resets it).
    words_buf: String,
}

struct Words {
    words: Vec<String>,
    in_word: bool,
}

impl ShellWord<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }
    fn next(&mut self) -> Option<char> {
        let c = self.chars.get(self.pos).copied();
        if c.is_some() {
            self.pos += 1;
        }
        c
    }

    fn add_char(&mut self, w: &mut Words, ch: char) {
        if ch.is_whitespace() && w.in_word {
            if !self.words_buf.is_empty() {
                w.words.push(std::mem::take(&mut self.words_buf));
                w.in_word = false;
            }
        } else if !ch.is_whitespace() {
            self.add_raw_char(w, ch);
        }
    }
    fn add_raw_char(&mut self, w: &mut Words, ch: char) {
        self.words_buf.push(ch);
        w.in_word = true;
    }
    fn get_words(&mut self, mut w: Words) -> Vec<String> {
        if !self.words_buf.is_empty() {
            w.words.push(std::mem::take(&mut self.words_buf));
        }
        w.words
    }

    fn process_stop_on(
        &mut self,
        stop: Option<char>,
        raw_escapes: bool,
    ) -> Result<(String, Vec<String>), String> {
        let saved = self.raw_escapes;
        self.raw_escapes = raw_escapes;
        let r = self.process_stop_on_inner(stop);
        self.raw_escapes = saved;
        r
    }

    fn process_stop_on_inner(
        &mut self,
        stop: Option<char>,
    ) -> Result<(String, Vec<String>), String> {
        let mut result = String::new();
        self.words_buf.clear();
        let mut words = Words {
            words: Vec::new(),
            in_word: false,
        };
        let quotes = !self.lex.skip_process_quotes;
        while let Some(ch) = self.peek() {
            if stop == Some(ch) {
                self.next();
                let ws = self.get_words(words);
                return Ok((result, ws));
            }
            let special = match ch {
                '$' => Some(self.process_dollar()?),
                '<' => Some(self.process_possible_heredoc()),
                '\'' if quotes => Some(self.process_single_quote()?),
                '"' if quotes => Some(self.process_double_quote()?),
                _ => None,
            };
            if let Some(tmp) = special {
                result.push_str(&tmp);
                if ch == '$' {
                    for c in tmp.chars() {
                        self.add_char(&mut words, c);
                    }
                } else {
                    self.words_buf.push_str(&tmp);
                    words.in_word = true;
                }
                continue;
            }
            let mut ch = self.next().unwrap_or_default();
            if ch == self.lex.escape_token {
                if self.raw_escapes {
                    self.add_raw_char(&mut words, ch);
                    result.push(ch);
                }
                match self.next() {
                    None => break,
                    Some(c) => ch = c,
                }
                self.add_raw_char(&mut words, ch);
            } else {
                self.add_char(&mut words, ch);
            }
            result.push(ch);
        }
        if let Some(s) = stop {
            return Err(format!(
                "unexpected end of statement while looking for matching {s}"
            ));
        }
        let ws = self.get_words(words);
        Ok((result, ws))
    }

    fn process_single_quote(&mut self) -> Result<String, String> {
        let mut result = String::new();
        let ch = self.next().unwrap_or_default();
        if self.lex.raw_quotes {
            result.push(ch);
        }
        loop {
            match self.next() {
                None => {
                    return Err(
                        "unexpected end of statement while looking for matching single-quote"
                            .into(),
                    )
                }
                Some('\'') => {
                    if self.lex.raw_quotes {
                        result.push('\'');
                    }
                    return Ok(result);
                }
                Some(c) => result.push(c),
            }
        }
    }

    fn process_double_quote(&mut self) -> Result<String, String> {
        let mut result = String::new();
        let ch = self.next().unwrap_or_default();
        if self.lex.raw_quotes {
            result.push(ch);
        }
        loop {
            match self.peek() {
                None => {
                    return Err(
                        "unexpected end of statement while looking for matching double-quote"
                            .into(),
                    )
                }
                Some('"') => {
                    self.next();
                    if self.lex.raw_quotes {
                        result.push('"');
                    }
                    return Ok(result);
                }
                Some('$') => {
                    let v = self.process_dollar()?;
                    result.push_str(&v);
                }
                Some(_) => {
                    let mut ch = self.next().unwrap_or_default();
                    if ch == self.lex.escape_token {
                        if self.raw_escapes {
                            result.push(ch);
                        }
                        match self.peek() {
                            None => continue,
                            Some(c) if c == '"' || c == '$' || c == self.lex.escape_token => {
                                ch = self.next().unwrap_or_default();
                            }
                            _ => {}
                        }
                    }
                    result.push(ch);
                }
            }
        }
    }

    fn get_env(&self, name: &str) -> Option<String> {
        self.env.get_var(name)
    }

    fn process_dollar(&mut self) -> Result<String, String> {
        self.next();
        if self.peek() != Some('{') {
            let name = self.process_name();
            if name.is_empty() {
                return Ok("$".into());
            }
            return Ok(match self.get_env(&name) {
                Some(v) => v,
                None if self.lex.skip_unset_env => format!("${name}"),
                None => String::new(),
            });
        }
        self.next();
        match self.peek() {
            None => return Err("syntax error: missing '}'".into()),
            Some('{') | Some('}') | Some(':') => {
                return Err("syntax error: bad substitution".into())
            }
            _ => {}
        }
        let name = self.process_name();
        let mut ch = self.next();
        let mut chs: String = ch.map(String::from).unwrap_or_else(|| "\u{FFFD}".into());
        let mut null_is_unset = false;
        match ch {
            Some('}') => Ok(match self.get_env(&name) {
                Some(v) => v,
                None if self.lex.skip_unset_env => format!("${{{name}}}"),
                None => String::new(),
            }),
            Some(':') | Some('+') | Some('-') | Some('?') | Some('#') | Some('%') => {
                if ch == Some(':') {
                    null_is_unset = true;
                    ch = self.next();
                    chs.push(ch.unwrap_or('\u{FFFD}'));
                }
                let raw = matches!(ch, Some('#') | Some('%'));
                if null_is_unset && raw {
                    return Err(format!("unsupported modifier ({chs}) in substitution"));
                }
                let word = match self.process_stop_on(Some('}'), raw) {
                    Ok((w, _)) => w,
                    Err(e) => {
                        if self.peek().is_none() {
                            return Err("syntax error: missing '}'".into());
                        }
                        return Err(e);
                    }
                };
                let val = self.get_env(&name);
                if self.lex.skip_unset_env && val.is_none() {
                    return Ok(format!("${{{name}{chs}{word}}}"));
                }
                let set = val.is_some();
                let value = val.unwrap_or_default();
                match ch {
                    Some('-') => {
                        if !set || (null_is_unset && value.is_empty()) {
                            Ok(word)
                        } else {
                            Ok(value)
                        }
                    }
                    Some('+') => {
                        if !set || (null_is_unset && value.is_empty()) {
                            Ok(String::new())
                        } else {
                            Ok(word)
                        }
                    }
                    Some('?') => {
                        if !set {
                            let m = if word.is_empty() {
                                "is not allowed to be unset".to_string()
                            } else {
                                word
                            };
                            return Err(format!("{name}: {m}"));
                        }
                        if null_is_unset && value.is_empty() {
                            let m = if word.is_empty() {
                                "is not allowed to be empty".to_string()
                            } else {
                                word
                            };
                            return Err(format!("{name}: {m}"));
                        }
                        Ok(value)
                    }
                    Some(c @ ('%' | '#')) => {
                        let mut word = word;
                        let greedy = word.starts_with(c);
                        if greedy {
                            word.remove(0);
                        }
                        if c == '%' {
                            trim_suffix(&word, &value, greedy)
                        } else {
                            trim_prefix(&word, &value, greedy)
                        }
                    }
                    _ => Err(format!("unsupported modifier ({chs}) in substitution")),
                }
            }
            Some('/') => {
                let replace_all = self.peek() == Some('/');
                if replace_all {
                    self.next();
                }
                let pattern = match self.process_stop_on(Some('/'), true) {
                    Ok((w, _)) => w,
                    Err(e) => {
                        if self.peek().is_none() {
                            return Err("syntax error: missing '/' in ${}".into());
                        }
                        return Err(e);
                    }
                };
                let replacement = match self.process_stop_on(Some('}'), true) {
                    Ok((w, _)) => w,
                    Err(e) => {
                        if self.peek().is_none() {
                            return Err("syntax error: missing '}'".into());
                        }
                        return Err(e);
                    }
                };
                let Some(value) = self.get_env(&name) else {
                    if self.lex.skip_unset_env {
                        return Ok(format!("${{{name}/{pattern}/{replacement}}}"));
                    }
                    return Ok(String::new());
                };
                let re = shell_pattern_to_regex(&pattern, true, false)
                    .map_err(|e| format!("invalid pattern ({pattern}) in substitution: {e}"))?;
                if replace_all {
                    Ok(re
                        .replace_all(&value, regex::NoExpand(&replacement))
                        .into_owned())
                } else if let Some(m) = re.find(&value) {
                    Ok(format!(
                        "{}{}{}",
                        &value[..m.start()],
                        replacement,
                        &value[m.end()..]
                    ))
                } else {
                    Ok(value)
                }
            }
            _ => Err(format!("unsupported modifier ({chs}) in substitution")),
        }
    }

    fn process_name(&mut self) -> String {
        let mut name = String::new();
        while let Some(ch) = self.peek() {
            if name.is_empty() && is_digit(ch) {
                while let Some(c) = self.peek() {
                    if !is_digit(c) {
                        break;
                    }
                    name.push(c);
                    self.next();
                }
                return name;
            }
            if name.is_empty() && is_special_param(ch) {
                self.next();
                return ch.to_string();
            }
            if !ch.is_alphabetic() && !is_digit(ch) && ch != '_' {
                break;
            }
            name.push(ch);
            self.next();
        }
        name
    }

    fn process_possible_heredoc(&mut self) -> String {
        self.next();
        if self.peek() != Some('<') {
            return "<".into();
        }
        self.next();
        let mut result = String::from("<<");
        while let Some(c @ ('\t' | '\r' | ' ')) = self.peek() {
            result.push(c);
            self.next();
        }
        result
    }
}

fn is_digit(c: char) -> bool {
    c.is_ascii_digit() || (!c.is_ascii() && c.is_numeric())
}

fn is_special_param(c: char) -> bool {
    matches!(c, '@' | '*' | '#' | '?' | '-' | '$' | '!' | '0')
}

/// Converts a shell wildcard pattern (`?`, `*`, `\` escapes) to a regex.
fn shell_pattern_to_regex(
    pattern: &str,
    greedy: bool,
    anchored: bool,
) -> Result<regex::Regex, String> {
    let mut out = String::with_capacity(pattern.len() + 4);
    if anchored {
        out.push('^');
    }
    let star = if greedy { ".*" } else { ".*?" };
    let chars: Vec<char> = pattern.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let mut tok = chars[i];
        i += 1;
        match tok {
            '*' => {
                out.push_str(star);
                continue;
            }
            '?' => {
                out.push('.');
                continue;
            }
            '\\' => {
                if matches!(chars.get(i), Some('}') | Some('/')) {
                    continue;
                }
                out.push('\\');
                let next = chars.get(i).copied();
                i += 1;
                match next {
                    Some(c @ ('*' | '?' | '\\')) => tok = c,
                    Some(c) => return Err(format!("invalid escape '\\{c}'")),
                    None => return Err("invalid escape '\\'".into()),
                }
            }
            '[' | ']' | '{' | '}' | '.' | '+' | '(' | ')' | '|' | '^' | '$' => out.push('\\'),
            _ => {}
        }
        out.push(tok);
    }
    // `(?s)` is not set: like Go, `.` does not match a newline.
    regex::Regex::new(&out).map_err(|e| e.to_string())
}

fn trim_prefix(pattern: &str, value: &str, greedy: bool) -> Result<String, String> {
    let re = shell_pattern_to_regex(pattern, greedy, true)
        .map_err(|e| format!("invalid pattern ({pattern}) in substitution: {e}"))?;
    Ok(match re.find(value) {
        Some(m) => value[m.end()..].to_string(),
        None => value.to_string(),
    })
}

fn reverse_pattern(pattern: &str) -> String {
    let p: Vec<char> = pattern.chars().collect();
    let n = p.len();
    let mut out = vec!['\0'; n];
    let mut i = 0;
    while i < n {
        let tok = p[i];
        let o = n - 1 - i;
        if tok == '\\' && i != n - 1 {
            out[o - 1] = tok;
            out[o] = p[i + 1];
            i += 2;
        } else {
            out[o] = tok;
            i += 1;
        }
    }
    out.into_iter().collect()
}

fn trim_suffix(pattern: &str, value: &str, greedy: bool) -> Result<String, String> {
    let rp = reverse_pattern(pattern);
    let rv: String = value.chars().rev().collect();
    let s = trim_prefix(&rp, &rv, greedy)?;
    Ok(s.chars().rev().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> EnvList {
        EnvList::from_slice(&["PWD=/home", "X=a.b.c", "NULL="])
    }

    #[test]
    fn basic_expansion() {
        let l = Lex::new('\\');
        assert_eq!(l.process_word("he$PWD", &env()).unwrap(), "he/home");
        assert_eq!(l.process_word("${NULL:-x}", &env()).unwrap(), "x");
        assert_eq!(l.process_word("${NULL-x}", &env()).unwrap(), "");
        assert!(l
            .process_word("${NULL:?boom}", &env())
            .unwrap_err()
            .0
            .contains("NULL: boom"));
    }

    #[test]
    fn pattern_ops() {
        let l = Lex::new('\\');
        assert_eq!(l.process_word("${X#*.}", &env()).unwrap(), "b.c");
        assert_eq!(l.process_word("${X##*.}", &env()).unwrap(), "c");
        assert_eq!(l.process_word("${X%.*}", &env()).unwrap(), "a.b");
        assert_eq!(l.process_word("${X%%.*}", &env()).unwrap(), "a");
        assert_eq!(l.process_word("${X/./-}", &env()).unwrap(), "a-b.c");
        assert_eq!(l.process_word("${X//./-}", &env()).unwrap(), "a-b-c");
        assert!(l.process_word("${X:#a}", &env()).is_err());
    }

    #[test]
    fn reverse() {
        assert_eq!(reverse_pattern("a\\*c"), "c\\*a");
        assert_eq!(reverse_pattern("ab\\"), "\\ba");
    }

    #[test]
    fn skip_unset_and_backtick() {
        let mut l = Lex::new('`');
        l.skip_unset_env = true;
        assert_eq!(
            l.process_word("$NOPE ${NOPE:-x} a`$b", &env()).unwrap(),
            "$NOPE ${NOPE:-x} a$b"
        );
    }
}
