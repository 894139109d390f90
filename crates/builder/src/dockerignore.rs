//! `.dockerignore` matching, shared by the builder (server side) and the berth CLI (client side): Go `filepath.Match` semantics per path segment, `**`
//! for any number of segments, `!` exceptions, last matching pattern wins, and a
//! pattern that matches a parent directory also matches everything beneath it.

#[derive(Debug, Clone)]
struct Pattern {
    segments: Vec<String>,
    exclusion: bool,
}

#[derive(Debug, Clone, Default)]
pub struct Matcher {
    patterns: Vec<Pattern>,
}

/// Cleans a path like Go's filepath.Clean for relative paths (no leading '/').
fn clean(p: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for seg in p.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            s => out.push(s),
        }
    }
    out.join("/")
}

impl Matcher {
    /// Parses the content of a .dockerignore file.
    pub fn parse(content: &str) -> Matcher {
        let mut patterns = Vec::new();
        for line in content.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (exclusion, pat) = match line.strip_prefix('!') {
                Some(rest) => (true, rest.trim()),
                None => (false, line),
            };
            let pat = clean(pat);
            if pat.is_empty() {
                continue;
            }
            patterns.push(Pattern {
                segments: pat.split('/').map(str::to_string).collect(),
                exclusion,
            });
        }
        Matcher { patterns }
    }

    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    pub fn has_exclusions(&self) -> bool {
        self.patterns.iter().any(|p| p.exclusion)
    }

    /// Whether `path` (relative to the context, '/'-separated) is ignored.
    pub fn matches(&self, path: &str) -> bool {
        let path = clean(path);
        let segs: Vec<&str> = path.split('/').collect();
        let mut matched = false;
        for p in &self.patterns {
            // the path itself or any of its parents
            let hit = (1..=segs.len()).any(|n| match_segments(&p.segments, &segs[..n]));
            if hit {
                matched = !p.exclusion;
            }
        }
        matched
    }
}

fn match_segments(pat: &[String], path: &[&str]) -> bool {
    match pat.first() {
        None => path.is_empty(),
        Some(p) if p == "**" => {
            // zero or more whole segments
            (0..=path.len()).any(|skip| match_segments(&pat[1..], &path[skip..]))
        }
        Some(p) => match path.first() {
            Some(s) => glob_match(p, s) && match_segments(&pat[1..], &path[1..]),
            None => false,
        },
    }
}

/// Go's filepath.Match for one segment (no separators involved): `*`, `?`,
/// `[...]` classes with ranges and `^`/`!` negation, and `\` escapes.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    glob_at(&p, &n)
}

fn glob_at(p: &[char], n: &[char]) -> bool {
    let (mut pi, mut ni) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() {
            match p[pi] {
                '*' => {
                    // collapse consecutive stars ("**" inside a segment acts like "*")
                    while pi < p.len() && p[pi] == '*' {
                        pi += 1;
                    }
                    star = Some((pi, ni));
                    continue;
                }
                '?' => {
                    pi += 1;
                    ni += 1;
                    continue;
                }
                '[' => {
                    if let Some((ok, next)) = class_match(p, pi, n[ni]) {
                        if ok {
                            pi = next;
                            ni += 1;
                            continue;
                        }
                    } else {
                        return false; // malformed class: Go returns ErrBadPattern
                    }
                }
                '\\' if pi + 1 < p.len() => {
                    if p[pi + 1] == n[ni] {
                        pi += 2;
                        ni += 1;
                        continue;
                    }
                }
                c => {
                    if c == n[ni] {
                        pi += 1;
                        ni += 1;
                        continue;
                    }
                }
            }
        }
        match star {
            Some((sp, sn)) => {
                pi = sp;
                ni = sn + 1;
                star = Some((sp, sn + 1));
            }
            None => return false,
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

/// Matches `c` against the class starting at p[start] == '['. Returns (matched, index after ']').
fn class_match(p: &[char], start: usize, c: char) -> Option<(bool, usize)> {
    let mut i = start + 1;
    let negate = i < p.len() && (p[i] == '^' || p[i] == '!');
    if negate {
        i += 1;
    }
    let mut matched = false;
    let mut first = true;
    loop {
        if i >= p.len() {
            return None;
        }
        if p[i] == ']' && !first {
            i += 1;
            break;
        }
        first = false;
        let mut lo = p[i];
        if lo == '\\' {
            i += 1;
            lo = *p.get(i)?;
        }
        i += 1;
        let mut hi = lo;
        if i + 1 < p.len() && p[i] == '-' && p[i + 1] != ']' {
            hi = p[i + 1];
            if hi == '\\' {
                hi = *p.get(i + 2)?;
                i += 1;
            }
            i += 2;
        }
        if lo <= c && c <= hi {
            matched = true;
        }
    }
    Some((matched != negate, i))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_filepath_match() {
        assert!(glob_match("*.txt", "a.txt"));
        assert!(!glob_match("*.txt", "a.txt.bak"));
        assert!(glob_match("a?c", "abc"));
        assert!(!glob_match("a?c", "ac"));
        assert!(glob_match("[a-c]x", "bx"));
        assert!(!glob_match("[^a-c]x", "bx"));
        assert!(glob_match("[!a-c]x", "dx"));
        assert!(glob_match("\\*", "*"));
        assert!(!glob_match("\\*", "a"));
        assert!(glob_match("*", ""));
        assert!(glob_match("a*b*c", "axxbyyc"));
        assert!(!glob_match("[a-", "a"));
    }

    #[test]
    fn basic_patterns() {
        let m = Matcher::parse("# comment\nsecret.txt\n*.log\n/build\n");
        assert!(m.matches("secret.txt"));
        assert!(!m.matches("dir/secret.txt"));
        assert!(m.matches("x.log"));
        assert!(!m.matches("dir/x.log"));
        assert!(m.matches("build"));
        assert!(
            m.matches("build/out/a.o"),
            "children of an ignored dir are ignored"
        );
        assert!(!m.matches("Dockerfile"));
    }

    #[test]
    fn double_star() {
        let m = Matcher::parse("**/*.go\n");
        assert!(m.matches("a.go"));
        assert!(m.matches("x/y/z.go"));
        assert!(!m.matches("x/y/z.rs"));
        let m = Matcher::parse("docs/**\n");
        assert!(m.matches("docs/a/b"));
        assert!(m.matches("docs"));
        let m = Matcher::parse("a/**/b\n");
        assert!(m.matches("a/b"));
        assert!(m.matches("a/x/y/b"));
        assert!(!m.matches("a/x/c"));
    }

    #[test]
    fn exceptions_last_match_wins() {
        let m = Matcher::parse("*.md\n!README.md\n");
        assert!(m.matches("CHANGES.md"));
        assert!(!m.matches("README.md"));
        assert!(m.has_exclusions());
        let m = Matcher::parse("!README.md\n*.md\n");
        assert!(m.matches("README.md"));
        let m = Matcher::parse("dir\n!dir/keep\n");
        assert!(m.matches("dir/other"));
        assert!(!m.matches("dir/keep"));
        assert!(!m.matches("dir/keep/deeper"));
    }

    #[test]
    fn cleaning() {
        let m = Matcher::parse("./a/../b/\n  spaced.txt  \n");
        assert!(m.matches("b"));
        assert!(m.matches("spaced.txt"));
        assert!(Matcher::parse("\n# x\n").is_empty());
    }
}
