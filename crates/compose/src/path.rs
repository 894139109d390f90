//! Key paths in the model (compose-go's `tree.Path`) and Go-compatible file path helpers.

/// A path of keys in the model. List items are the segment `[]` (or `[N]` / `N` where
/// compose-go uses those).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyPath(pub Vec<String>);

impl KeyPath {
    /// The empty (root) path.
    pub fn root() -> Self {
        KeyPath(Vec::new())
    }

    /// Builds a path from a dotted pattern-like string.
    pub fn parse(s: &str) -> Self {
        if s.is_empty() {
            return KeyPath::root();
        }
        KeyPath(s.split('.').map(str::to_string).collect())
    }

    /// This path extended by one segment.
    pub fn next(&self, part: &str) -> Self {
        let mut v = self.0.clone();
        v.push(part.to_string());
        KeyPath(v)
    }

    /// Whether the path matches a dotted pattern where `*` matches any one segment.
    pub fn matches(&self, pattern: &str) -> bool {
        let parts: Vec<&str> = if pattern.is_empty() {
            Vec::new()
        } else {
            pattern.split('.').collect()
        };
        if parts.len() != self.0.len() {
            return false;
        }
        parts
            .iter()
            .zip(self.0.iter())
            .all(|(p, s)| *p == "*" || p == s)
    }

    /// Whether the path matches another path used as a pattern.
    pub fn matches_path(&self, pattern: &KeyPath) -> bool {
        if pattern.0.len() != self.0.len() {
            return false;
        }
        pattern
            .0
            .iter()
            .zip(self.0.iter())
            .all(|(p, s)| p == "*" || p == s)
    }
}

impl std::fmt::Display for KeyPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.join("."))
    }
}

/// Go's `path.Clean` for slash-separated paths.
pub fn clean(p: &str) -> String {
    if p.is_empty() {
        return ".".to_string();
    }
    let rooted = p.starts_with('/');
    let mut out: Vec<&str> = Vec::new();
    for part in p.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if let Some(last) = out.last() {
                    if *last != ".." {
                        out.pop();
                        continue;
                    }
                }
                if !rooted {
                    out.push("..");
                }
            }
            other => out.push(other),
        }
    }
    let joined = out.join("/");
    if rooted {
        format!("/{joined}")
    } else if joined.is_empty() {
        ".".to_string()
    } else {
        joined
    }
}

/// Go's `filepath.Join` (empty elements are ignored, the result is cleaned).
pub fn join(a: &str, b: &str) -> String {
    let parts: Vec<&str> = [a, b].into_iter().filter(|s| !s.is_empty()).collect();
    if parts.is_empty() {
        return String::new();
    }
    clean(&parts.join("/"))
}

/// Go's `filepath.IsAbs` on Unix.
pub fn is_abs(p: &str) -> bool {
    p.starts_with('/')
}

/// Go's `filepath.Abs`, with `cwd` as the process working directory.
pub fn abs(cwd: &str, p: &str) -> String {
    if is_abs(p) {
        clean(p)
    } else {
        join(cwd, p)
    }
}

/// Go's `filepath.Dir`.
pub fn dir(p: &str) -> String {
    match p.rfind('/') {
        Some(0) => "/".to_string(),
        Some(i) => clean(&p[..i]),
        None => ".".to_string(),
    }
}

/// Go's `filepath.Base`.
pub fn base(p: &str) -> String {
    if p.is_empty() {
        return ".".to_string();
    }
    let trimmed = p.trim_end_matches('/');
    if trimmed.is_empty() {
        return "/".to_string();
    }
    match trimmed.rfind('/') {
        Some(i) => trimmed[i + 1..].to_string(),
        None => trimmed.to_string(),
    }
}

/// Go's `filepath.Rel` for two absolute or two relative cleaned paths.
pub fn rel(basepath: &str, targpath: &str) -> Option<String> {
    let base = clean(basepath);
    let targ = clean(targpath);
    if targ == base {
        return Some(".".to_string());
    }
    if is_abs(&base) != is_abs(&targ) {
        return None;
    }
    let bparts: Vec<&str> = if base == "." {
        Vec::new()
    } else {
        base.split('/').filter(|s| !s.is_empty()).collect()
    };
    let tparts: Vec<&str> = if targ == "." {
        Vec::new()
    } else {
        targ.split('/').filter(|s| !s.is_empty()).collect()
    };
    let mut i = 0;
    while i < bparts.len() && i < tparts.len() && bparts[i] == tparts[i] {
        i += 1;
    }
    if bparts[i..].contains(&"..") {
        return None;
    }
    let mut out: Vec<&str> = vec![".."; bparts.len() - i];
    out.extend_from_slice(&tparts[i..]);
    Some(if out.is_empty() {
        ".".to_string()
    } else {
        out.join("/")
    })
}

/// Whether `p` is a Windows absolute path (`C:\...`, `C:/...` or `\\server`).
pub fn is_windows_abs(p: &str) -> bool {
    let b = p.as_bytes();
    if b.len() >= 3 && b[0].is_ascii_alphabetic() && b[1] == b':' && (b[2] == b'\\' || b[2] == b'/')
    {
        return true;
    }
    p.starts_with("\\\\")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_and_join() {
        assert_eq!(clean("a/./b/../c"), "a/c");
        assert_eq!(clean("/../a"), "/a");
        assert_eq!(clean("../a/.."), "..");
        assert_eq!(join(".", "."), ".");
        assert_eq!(join("dir", "."), "dir");
        assert_eq!(join("/a/b", "../c"), "/a/c");
        assert_eq!(join("", "x"), "x");
        assert_eq!(dir("/a/b"), "/a");
        assert_eq!(dir("b"), ".");
        assert_eq!(base("/a/b/"), "b");
    }

    #[test]
    fn relative() {
        assert_eq!(rel("/a/b", "/a/b/c").as_deref(), Some("c"));
        assert_eq!(rel("/a/b", "/a/d").as_deref(), Some("../d"));
        assert_eq!(rel("/a", "/a").as_deref(), Some("."));
    }

    #[test]
    fn key_path_patterns() {
        let p = KeyPath::parse("services.web.volumes.[]");
        assert!(p.matches("services.*.volumes.*"));
        assert!(!p.matches("services.*.volumes"));
    }
}
