//! Line-level Dockerfile parser producing a node tree like BuildKit's
//! `parser.Node`: one child of the root per instruction, its arguments as
//! `next`, flags kept raw, heredoc bodies attached.

use crate::directives::{DirectiveParser, Directives};
use crate::error::ParseError;
use crate::heredoc::{heredocs_from_line, Heredoc};
use crate::line_parsers::dispatch;

/// The default escape token.
pub const DEFAULT_ESCAPE: char = '\\';

/// One node of the syntax tree.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Node {
    /// The keyword as written (for instructions) or one argument.
    pub value: String,
    /// The arguments of an instruction, in order.
    pub next: Vec<Node>,
    /// Instructions (root) or the nested instruction (ONBUILD argument).
    pub children: Vec<Node>,
    /// Heredoc bodies attached to RUN/COPY/ADD (or ONBUILD of them).
    pub heredocs: Vec<Heredoc>,
    /// The arguments were given in exec (JSON array) form.
    pub json: bool,
    /// The logical line, continuations joined.
    pub original: String,
    /// `--flag[=value]` words before the arguments.
    pub flags: Vec<String>,
    /// First and last physical line (1-based) of the instruction.
    pub start_line: usize,
    pub end_line: usize,
    /// Comment lines right above the instruction.
    pub prev_comment: Vec<String>,
}

impl Node {
    /// The argument values (`next` values; a nested ONBUILD instruction is
    /// flattened to its keyword and arguments, like BuildKit's `nodeArgs`).
    pub fn args(&self) -> Vec<String> {
        let mut out = Vec::new();
        for n in &self.next {
            if n.children.is_empty() {
                out.push(n.value.clone());
            } else if n.children.len() == 1 {
                out.push(n.children[0].value.clone());
                out.extend(n.children[0].args());
            }
        }
        out
    }

    fn can_contain_heredoc(&self) -> bool {
        let mut node = self;
        if node.value.eq_ignore_ascii_case("onbuild") {
            if let Some(n) = node.next.first() {
                if let Some(c) = n.children.first() {
                    node = c;
                }
            }
        }
        let v = node.value.to_lowercase();
        matches!(v.as_str(), "add" | "copy" | "run") && !node.json
    }
}

/// The result of parsing a Dockerfile.
#[derive(Debug, Clone)]
pub struct ParseResult {
    /// Root node; `children` are the instructions.
    pub ast: Node,
    pub escape_token: char,
    pub directives: Directives,
    /// Non-fatal findings (e.g. empty continuation lines).
    pub warnings: Vec<String>,
}

/// Parser state shared with the line parsers.
#[derive(Debug)]
pub(crate) struct State {
    pub(crate) escape: char,
    parser: DirectiveParser,
    directives: Directives,
}

impl State {
    fn new() -> Self {
        State {
            escape: DEFAULT_ESCAPE,
            parser: DirectiveParser::default(),
            directives: Directives::default(),
        }
    }

    /// Returns (line without comment, line was a directive).
    fn process_line<'a>(
        &mut self,
        token: &'a str,
        strip_left: bool,
    ) -> Result<(&'a str, bool), String> {
        let mut token = trim_newline(token);
        if strip_left {
            token = token.trim_start();
        }
        let mut is_directive = false;
        if let Some(d) = self.parser.parse_line(token)? {
            if d.name == "escape" {
                if d.value != "`" && d.value != "\\" {
                    return Err(format!(
                        "invalid escape token '{}' does not match ` or \\",
                        d.value
                    ));
                }
                self.escape = d.value.chars().next().unwrap_or(DEFAULT_ESCAPE);
            }
            self.directives.list.push(d);
            is_directive = true;
        }
        let out = if is_comment(token) { "" } else { token };
        Ok((out, is_directive))
    }
}

fn trim_newline(s: &str) -> &str {
    s.trim_end_matches(['\r', '\n'])
}

fn is_comment(line: &str) -> bool {
    line.trim_start().starts_with('#')
}

fn is_empty_continuation_line(line: &str) -> bool {
    trim_newline(line).trim_start().is_empty()
}

/// Strips a trailing line-continuation escape; returns (line, is end of line).
fn trim_continuation(line: &str, esc: char) -> (String, bool) {
    let t = line.trim_end_matches([' ', '\t']);
    if let Some(before) = t.strip_suffix(esc) {
        match before.chars().last() {
            None => return (String::new(), false),
            Some(c) if c != esc => return (before.to_string(), false),
            _ => {}
        }
    }
    (line.to_string(), true)
}

/// Builds an instruction node from one logical line.
pub(crate) fn new_node_from_line(
    line: &str,
    st: &State,
    comments: Vec<String>,
) -> Result<Node, String> {
    let (cmd, flags, args) = split_command(line, st.escape);
    let (next, json) = dispatch(&cmd, &args, st)?;
    Ok(Node {
        value: cmd,
        original: line.to_string(),
        flags,
        next,
        json,
        prev_comment: comments,
        ..Default::default()
    })
}

/// Splits a line into (command, flags, rest of the arguments trimmed).
fn split_command(line: &str, esc: char) -> (String, Vec<String>, String) {
    let trimmed = line.trim();
    match split_ws_once(trimmed) {
        Some((cmd, rest)) => {
            let (args, flags) = extract_builder_flags(rest, esc);
            (cmd.to_string(), flags, args.trim().to_string())
        }
        None => (trimmed.to_string(), Vec::new(), String::new()),
    }
}

/// Go's `[\t\v\f\r ]+`.
pub(crate) fn is_re_ws(c: char) -> bool {
    matches!(c, '\t' | '\u{b}' | '\u{c}' | '\r' | ' ')
}

/// `reWhitespace.Split(s, 2)` when it yields two parts.
pub(crate) fn split_ws_once(s: &str) -> Option<(&str, &str)> {
    let i = s.find(is_re_ws)?;
    let rest = s[i..].trim_start_matches(is_re_ws);
    Some((&s[..i], rest))
}

/// `reWhitespace.Split(s, -1)`.
pub(crate) fn split_ws_all(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_ws = false;
    for c in s.chars() {
        if is_re_ws(c) {
            if !in_ws {
                out.push(std::mem::take(&mut cur));
            }
            in_ws = true;
        } else {
            in_ws = false;
            cur.push(c);
        }
    }
    out.push(cur);
    out
}

/// Takes the leading `--flag` words off `line`; returns (rest, flags).
fn extract_builder_flags(line: &str, esc: char) -> (String, Vec<String>) {
    #[derive(PartialEq)]
    enum Phase {
        Spaces,
        Word,
        Quote,
    }
    let chars: Vec<(usize, char)> = line.char_indices().collect();
    let mut words = Vec::new();
    let mut phase = Phase::Spaces;
    let mut word = String::new();
    let mut quote = '\0';
    let mut blank_ok = false;
    let mut i = 0;
    loop {
        let at_end = i >= chars.len();
        let ch = if at_end { '\0' } else { chars[i].1 };
        if phase == Phase::Spaces {
            if at_end {
                break;
            }
            if ch.is_whitespace() {
                i += 1;
                continue;
            }
            if ch != '-' || chars.get(i + 1).map(|c| c.1) != Some('-') {
                return (line[chars[i].0..].to_string(), words);
            }
            phase = Phase::Word;
        }
        if at_end {
            if word != "--" && (blank_ok || !word.is_empty()) {
                words.push(word);
            }
            break;
        }
        if phase == Phase::Word {
            if ch.is_whitespace() {
                phase = Phase::Spaces;
                if word == "--" {
                    return (line[chars[i].0..].to_string(), words);
                }
                if blank_ok || !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
                word.clear();
                blank_ok = false;
                i += 1;
                continue;
            }
            if ch == '\'' || ch == '"' {
                quote = ch;
                blank_ok = true;
                phase = Phase::Quote;
                i += 1;
                continue;
            }
            let mut c = ch;
            if ch == esc {
                if i + 1 == chars.len() {
                    i += 1;
                    continue;
                }
                i += 1;
                c = chars[i].1;
            }
            word.push(c);
            i += 1;
            continue;
        }
        // Phase::Quote
        if ch == quote {
            phase = Phase::Word;
            i += 1;
            continue;
        }
        let mut c = ch;
        if ch == esc {
            if i + 1 == chars.len() {
                phase = Phase::Word;
                i += 1;
                continue;
            }
            i += 1;
            c = chars[i].1;
        }
        word.push(c);
        i += 1;
    }
    (String::new(), words)
}

/// Parses Dockerfile bytes (a UTF-8 BOM is ignored; invalid UTF-8 is replaced).
pub fn parse_bytes(data: &[u8]) -> Result<ParseResult, ParseError> {
    parse(&String::from_utf8_lossy(data))
}

/// Parses a Dockerfile into its node tree.
pub fn parse(src: &str) -> Result<ParseResult, ParseError> {
    let mut st = State::new();
    let mut lines = src.split_inclusive('\n');
    let mut current_line = 0usize;
    let mut root = Node::default();
    let mut has_child = false;
    let mut warnings = Vec::new();
    let mut comments: Vec<String> = Vec::new();

    while let Some(raw0) = lines.next() {
        let mut raw = raw0;
        if current_line == 0 {
            raw = raw.strip_prefix('\u{feff}').unwrap_or(raw);
        }
        check_len(raw, current_line + 1)?;
        if is_comment(raw) {
            let c = raw.trim_start()[1..].trim();
            if c.is_empty() {
                comments.clear();
            } else {
                comments.push(c.to_string());
            }
        }
        let (first, is_directive) = st
            .process_line(raw, true)
            .map_err(|e| ParseError::syntax(current_line + 1, e))?;
        if is_directive {
            comments.pop();
        }
        current_line += 1;
        let start_line = current_line;
        let (first, mut end) = trim_continuation(first, st.escape);
        if end && first.is_empty() {
            continue;
        }
        let mut buf = first;
        let mut has_empty = false;
        while !end {
            let Some(raw) = lines.next() else { break };
            check_len(raw, current_line + 1)?;
            let (b, _) = st
                .process_line(raw, false)
                .map_err(|e| ParseError::syntax(current_line + 1, e))?;
            current_line += 1;
            if is_comment(raw) {
                continue;
            }
            if is_empty_continuation_line(b) {
                has_empty = true;
                continue;
            }
            let (b, e) = trim_continuation(b, st.escape);
            buf.push_str(&b);
            end = e;
        }
        if has_empty {
            warnings.push(format!("Empty continuation line found in: {buf}"));
        }
        let mut child = new_node_from_line(&buf, &st, std::mem::take(&mut comments))
            .map_err(|e| ParseError::syntax(start_line, e))?;
        if child.can_contain_heredoc() && buf.contains("<<") {
            let docs = heredocs_from_line(&buf).map_err(|e| ParseError::syntax(start_line, e))?;
            for mut doc in docs {
                let mut content = std::mem::take(&mut doc.content);
                let mut terminated = false;
                for raw in lines.by_ref() {
                    current_line += 1;
                    let mut candidate = trim_newline(raw);
                    if doc.chomp {
                        candidate = candidate.trim_start_matches('\t');
                    }
                    if candidate == doc.name {
                        terminated = true;
                        break;
                    }
                    content.push_str(raw);
                }
                if !terminated {
                    return Err(ParseError::syntax(start_line, "unterminated heredoc"));
                }
                doc.content = content;
                child.heredocs.push(doc);
            }
        }
        child.start_line = start_line;
        child.end_line = current_line;
        if !has_child {
            root.start_line = start_line;
            has_child = true;
        }
        root.end_line = current_line;
        root.children.push(child);
        comments.clear();
    }
    if !has_child {
        return Err(ParseError::syntax(current_line, "file with no instructions"));
    }
    Ok(ParseResult {
        ast: root,
        escape_token: st.escape,
        directives: st.directives,
        warnings,
    })
}

fn check_len(raw: &str, line: usize) -> Result<(), ParseError> {
    const MAX: usize = 64 * 1024;
    if raw.len() > MAX || (raw.len() == MAX && !raw.ends_with('\n')) {
        return Err(ParseError::syntax(
            line,
            format!(
                "dockerfile line greater than max allowed size of {}",
                MAX - 1
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_extraction() {
        let (rest, flags) = extract_builder_flags("--from=a --chown=\"x y\" -- --src dst", '\\');
        assert_eq!(flags, vec!["--from=a", "--chown=x y"]);
        assert_eq!(rest.trim(), "--src dst");
        let (rest, flags) = extract_builder_flags("--mount=type=cache,target=/x echo hi", '\\');
        assert_eq!(flags, vec!["--mount=type=cache,target=/x"]);
        assert_eq!(rest, "echo hi");
    }

    #[test]
    fn continuation_regex() {
        assert_eq!(
            trim_continuation("abc \\  ", '\\'),
            ("abc ".to_string(), false)
        );
        assert_eq!(trim_continuation("\\", '\\'), (String::new(), false));
        assert_eq!(
            trim_continuation("abc\\\\", '\\'),
            ("abc\\\\".to_string(), true)
        );
        assert_eq!(trim_continuation("abc`", '`'), ("abc".to_string(), false));
    }

    #[test]
    fn line_ranges_and_heredoc() {
        let r = parse("FROM a\nRUN <<EOF\nhi\nEOF\nRUN x \\\n  y\n").unwrap();
        let c = &r.ast.children;
        assert_eq!((c[1].start_line, c[1].end_line), (2, 4));
        assert_eq!(c[1].heredocs[0].content, "hi\n");
        assert_eq!((c[2].start_line, c[2].end_line), (5, 6));
    }
}
