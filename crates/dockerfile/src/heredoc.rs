//! Heredocs (`<<EOF`, `<<-EOF`, `<<"EOF"`) in RUN, COPY and ADD.

use std::sync::OnceLock;

use crate::shell::{EmptyEnv, Lex};

/// One heredoc attached to an instruction.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Heredoc {
    /// The terminator word, quotes removed.
    pub name: String,
    /// `3<<EOF` gives 3; 0 when not given.
    pub file_descriptor: u32,
    /// False when any part of the terminator was quoted: no expansion.
    pub expand: bool,
    /// `<<-`: leading tabs are stripped from the content.
    pub chomp: bool,
    /// The raw body, each line with its newline, terminator excluded.
    pub content: String,
}

fn heredoc_re() -> &'static regex::Regex {
    static RE: OnceLock<regex::Regex> = OnceLock::new();
    RE.get_or_init(|| regex::Regex::new(r"^([0-9]*)<<(-?)[\t\n\f\r ]*([^<]*)$").expect("regex"))
}

/// Parses a heredoc word such as `<<-'EOF'`; `Ok(None)` if it is not one.
pub fn parse_heredoc(src: &str) -> Result<Option<Heredoc>, String> {
    let Some(caps) = heredoc_re().captures(src) else {
        return Ok(None);
    };
    let fd: u32 = caps[1].parse().unwrap_or(0);
    let chomp = &caps[2] == "-";
    let rest = &caps[3];
    if rest.is_empty() {
        return Ok(None);
    }
    let mut lex = Lex::new('\\');
    lex.skip_unset_env = true;
    let words = lex.process_words(rest, &EmptyEnv).map_err(|e| e.0)?;
    if words.len() != 1 {
        return Ok(None);
    }
    lex.raw_quotes = true;
    let raw = lex.process_words(rest, &EmptyEnv).map_err(|e| e.0)?;
    if raw.len() != words.len() {
        return Err(format!(
            "internal lexing of heredoc produced inconsistent results: {rest}"
        ));
    }
    let quotes = |s: &str| s.matches(['\'', '"']).count();
    let expand = quotes(&words[0]) == quotes(&raw[0]);
    Ok(Some(Heredoc {
        name: words[0].clone(),
        file_descriptor: fd,
        expand,
        chomp,
        content: String::new(),
    }))
}

/// The heredocs named on an instruction line, in order.
pub fn heredocs_from_line(line: &str) -> Result<Vec<Heredoc>, String> {
    let mut lex = Lex::new('\\');
    lex.raw_quotes = true;
    lex.raw_escapes = true;
    lex.skip_unset_env = true;
    let words = lex.process_words(line, &EmptyEnv).unwrap_or_default();
    let mut docs = Vec::new();
    for w in words {
        if let Some(d) = parse_heredoc(&w)? {
            docs.push(d);
        }
    }
    Ok(docs)
}

/// Removes leading tabs from every line (for `<<-`).
pub fn chomp_heredoc_content(src: &str) -> String {
    src.split_inclusive('\n')
        .map(|l| l.trim_start_matches('\t'))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helpers() {
        for s in [
            "<<EOF",
            "<<'EOF'",
            "<<\"EOF\"",
            "<<-EOF",
            "<<-'EOF'",
            "<<EO\"F\"",
            "<< EOF",
            "<<- EOF",
        ] {
            assert_eq!(parse_heredoc(s).unwrap().unwrap().name, "EOF", "{s}");
        }
        for s in ["<<'EOF", "<<\"EOF", "<<EOF'", "<<EOF\""] {
            assert!(parse_heredoc(s).is_err(), "{s}");
        }
        for s in ["", "EOF", "<<", "<<-", "<EOF", "<<<EOF", "<<EOF sh"] {
            assert!(parse_heredoc(s).unwrap().is_none(), "{s}");
        }
        assert!(!parse_heredoc("<<eo'f'").unwrap().unwrap().expand);
        assert_eq!(parse_heredoc("3<<X").unwrap().unwrap().file_descriptor, 3);
        let names: Vec<String> = heredocs_from_line("RUN <<EOF <<-'EOF2' '<<NO'")
            .unwrap()
            .into_iter()
            .map(|d| d.name)
            .collect();
        assert_eq!(names, vec!["EOF", "EOF2"]);
        assert_eq!(heredocs_from_line("RUN << -EOF").unwrap()[0].name, "-EOF");
        assert_eq!(
            chomp_heredoc_content("\thello\n\t\tworld\n"),
            "hello\nworld\n"
        );
    }
}
