//! The syntax-tree dump (BuildKit's `parser.Node.Dump`), and Go's `strconv.Quote`.

use crate::parser::Node;

/// Quotes `s` exactly like Go's `strconv.Quote`.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if is_go_print(c) => out.push(c),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c if (c as u32) < 0x10000 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push_str(&format!("\\U{:08x}", c as u32)),
        }
    }
    out.push('"');
    out
}

/// Approximates Go's `unicode.IsPrint`: graphic characters and the ASCII
/// space; not controls, other spaces, format characters, private use or
/// noncharacters.
fn is_go_print(c: char) -> bool {
    let u = c as u32;
    if c == ' ' {
        return true;
    }
    if c.is_control() || c.is_whitespace() {
        return false;
    }
    let format = matches!(u,
        0xAD | 0x600..=0x605 | 0x61C | 0x6DD | 0x70F | 0x180E | 0x200B..=0x200F | 0x2028..=0x202E
        | 0x2060..=0x206F | 0xFEFF | 0xFFF9..=0xFFFB | 0x110BD | 0x1D173..=0x1D17A | 0xE0001..=0xE007F);
    let private = matches!(u, 0xE000..=0xF8FF | 0xF0000..=0x10FFFF);
    let nonchar = (0xFDD0..=0xFDEF).contains(&u) || (u & 0xFFFE) == 0xFFFE;
    !(format || private || nonchar)
}

/// Go's `fmt.Sprintf("%q", []string{...})`.
pub fn go_quote_list(items: &[String]) -> String {
    let parts: Vec<String> = items.iter().map(|s| go_quote(s)).collect();
    format!("[{}]", parts.join(" "))
}

impl Node {
    /// The S-expression dump of this node, as BuildKit prints it.
    pub fn dump(&self) -> String {
        let mut s = self.value.to_lowercase();
        if !self.flags.is_empty() {
            s.push(' ');
            s.push_str(&go_quote_list(&self.flags));
        }
        for c in &self.children {
            s.push('(');
            s.push_str(&c.dump());
            s.push_str(")\n");
        }
        for n in &self.next {
            s.push(' ');
            if !n.children.is_empty() {
                s.push_str(&n.dump());
            } else {
                s.push_str(&go_quote(&n.value));
            }
        }
        s.trim().to_string()
    }
}

/// Parses the Dockerfile at `path` and returns its dump followed by a newline:
/// the text of a conformance `result` file.
pub fn parse_and_dump(path: &std::path::Path) -> Result<String, String> {
    let data = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let res = crate::parser::parse_bytes(&data).map_err(|e| e.to_string())?;
    Ok(format!("{}\n", res.ast.dump()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(
            go_quote("a\"b\\c\n\t\u{0}\u{7f}é"),
            "\"a\\\"b\\\\c\\n\\t\\x00\\x7fé\""
        );
        assert_eq!(go_quote("\u{a0}\u{200b}"), "\"\\u00a0\\u200b\"");
        assert_eq!(
            go_quote_list(&["--a=b".into(), "x y".into()]),
            "[\"--a=b\" \"x y\"]"
        );
    }
}
