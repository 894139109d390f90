//! Per-instruction argument parsers of the node tree (BuildKit's
//! `line_parsers.go`): JSON or shell form, name/value pairs, word lists.

use crate::parser::{new_node_from_line, split_ws_all, split_ws_once, Node, State};

const NOT_STRING_ARRAY: &str =
    "when using JSON array syntax, arrays must be comprised of strings only";

type Parsed = Result<(Vec<Node>, bool), String>;

fn leaf(v: impl Into<String>) -> Node {
    Node {
        value: v.into(),
        ..Default::default()
    }
}

/// Dispatches on the (case-insensitive) keyword; returns (args, is JSON).
pub(crate) fn dispatch(cmd: &str, rest: &str, st: &State) -> Parsed {
    match cmd.to_lowercase().as_str() {
        "add" | "copy" | "volume" => parse_maybe_json_to_list(rest),
        "arg" => Ok((
            parse_words(rest, st.escape).into_iter().map(leaf).collect(),
            false,
        )),
        "cmd" | "entrypoint" | "run" | "shell" => parse_maybe_json(rest),
        "env" => parse_name_val(rest, "ENV", st.escape),
        "label" => parse_name_val(rest, "LABEL", st.escape),
        "expose" | "from" => Ok((parse_strings_ws(rest), false)),
        "healthcheck" => parse_health_config(rest),
        "maintainer" | "stopsignal" | "user" | "workdir" => Ok((parse_string(rest), false)),
        "onbuild" => {
            if rest.is_empty() {
                return Ok((Vec::new(), false));
            }
            let child = new_node_from_line(rest, st, Vec::new())?;
            Ok((
                vec![Node {
                    children: vec![child],
                    ..Default::default()
                }],
                false,
            ))
        }
        // Unknown instructions are kept with one empty argument; the
        // instruction layer rejects them.
        _ => Ok((vec![Node::default()], false)),
    }
}

/// Splits words the way ENV/LABEL/ARG see them, keeping quotes and escapes.
pub(crate) fn parse_words(rest: &str, esc: char) -> Vec<String> {
    #[derive(PartialEq)]
    enum Phase {
        Spaces,
        Word,
        Quote,
    }
    let chars: Vec<char> = rest.chars().collect();
    let mut words = Vec::new();
    let mut phase = Phase::Spaces;
    let mut quote = '\0';
    let mut blank_ok = false;
    let mut sb = String::new();
    let mut i = 0;
    loop {
        let at_end = i >= chars.len();
        let mut ch = if at_end { '\0' } else { chars[i] };
        if phase == Phase::Spaces {
            if at_end {
                break;
            }
            if ch.is_whitespace() {
                i += 1;
                continue;
            }
            phase = Phase::Word;
        }
        if at_end {
            if blank_ok || !sb.is_empty() {
                words.push(sb);
            }
            break;
        }
        if phase == Phase::Word {
            if ch.is_whitespace() {
                phase = Phase::Spaces;
                if blank_ok || !sb.is_empty() {
                    words.push(std::mem::take(&mut sb));
                }
                sb.clear();
                blank_ok = false;
                i += 1;
                continue;
            }
            if ch == '\'' || ch == '"' {
                quote = ch;
                blank_ok = true;
                phase = Phase::Quote;
            }
            if ch == esc {
                if i + 1 == chars.len() {
                    i += 1;
                    continue;
                }
                sb.push(ch);
                i += 1;
                ch = chars[i];
            }
            sb.push(ch);
            i += 1;
            continue;
        }
        // Phase::Quote
        if ch == quote {
            phase = Phase::Word;
        }
        if ch == esc && quote != '\'' {
            if i + 1 == chars.len() {
                phase = Phase::Word;
                i += 1;
                continue;
            }
            i += 1;
            sb.push(ch);
            ch = chars[i];
        }
        sb.push(ch);
        i += 1;
    }
    words
}

fn kv(key: &str, value: &str, sep: &str) -> [Node; 3] {
    [leaf(key), leaf(value), leaf(sep)]
}

fn parse_name_val(rest: &str, key: &str, esc: char) -> Parsed {
    let words = parse_words(rest, esc);
    if words.is_empty() {
        return Ok((Vec::new(), false));
    }
    if !words[0].contains('=') {
        let Some((k, v)) = split_ws_once(rest) else {
            return Err(format!("{key} must have two arguments"));
        };
        return Ok((kv(k, v, "").into(), false));
    }
    let mut out = Vec::new();
    for w in &words {
        let Some((k, v)) = w.split_once('=') else {
            return Err(format!(
                "Syntax error - can't find = in {}. Must be of the form: name=value",
                crate::dump::go_quote(w)
            ));
        };
        out.extend(kv(k, v, "="));
    }
    Ok((out, false))
}

fn parse_strings_ws(rest: &str) -> Vec<Node> {
    if rest.is_empty() {
        return Vec::new();
    }
    split_ws_all(rest).into_iter().map(leaf).collect()
}

fn parse_string(rest: &str) -> Vec<Node> {
    if rest.is_empty() {
        Vec::new()
    } else {
        vec![leaf(rest)]
    }
}

enum JsonErr {
    NotArray,
    NotStrings,
}

fn parse_json(rest: &str) -> Result<Vec<Node>, JsonErr> {
    let rest = rest.trim_start();
    if !rest.starts_with('[') {
        return Err(JsonErr::NotArray);
    }
    let v: Vec<serde_json::Value> = serde_json::from_str(rest).map_err(|_| JsonErr::NotArray)?;
    v.into_iter()
        .map(|e| match e {
            serde_json::Value::String(s) => Ok(leaf(s)),
            _ => Err(JsonErr::NotStrings),
        })
        .collect()
}

fn parse_maybe_json(rest: &str) -> Parsed {
    if rest.is_empty() {
        return Ok((Vec::new(), false));
    }
    match parse_json(rest) {
        Ok(n) => Ok((n, true)),
        Err(JsonErr::NotStrings) => Err(NOT_STRING_ARRAY.into()),
        Err(JsonErr::NotArray) => Ok((vec![leaf(rest)], false)),
    }
}

fn parse_maybe_json_to_list(rest: &str) -> Parsed {
    match parse_json(rest) {
        Ok(n) => Ok((n, true)),
        Err(JsonErr::NotStrings) => Err(NOT_STRING_ARRAY.into()),
        Err(JsonErr::NotArray) => Ok((parse_strings_ws(rest), false)),
    }
}

fn parse_health_config(rest: &str) -> Parsed {
    let sep = rest.find(char::is_whitespace).unwrap_or(rest.len());
    if sep == 0 {
        return Ok((Vec::new(), false));
    }
    let after = rest[sep..].trim_start();
    let (cmd, json) = parse_maybe_json(after)?;
    let mut out = vec![leaf(&rest[..sep])];
    out.extend(cmd);
    Ok((out, json))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_keep_quotes() {
        assert_eq!(
            parse_words(r#"a="b c" d=e\ f"#, '\\'),
            vec![r#"a="b c""#, r"d=e\ f"]
        );
        assert_eq!(parse_words("x='' y", '\\'), vec!["x=''", "y"]);
    }

    #[test]
    fn json_fallback() {
        let (n, json) = parse_maybe_json("[\"a\", 'b']").unwrap();
        assert!(!json);
        assert_eq!(n[0].value, "[\"a\", 'b']");
        assert!(parse_maybe_json("[\"a\", 1]").is_err());
    }
}
