//! Slash-separated path helpers with the semantics of Go's `path/filepath` and
//! moby's `pkg/archive` copy helpers, which decide what `docker cp` means by a
//! trailing `/` or `/.`.

/// Go's `filepath.Clean`.
pub fn clean(p: &str) -> String {
    if p.is_empty() {
        return ".".into();
    }
    let rooted = p.starts_with('/');
    let mut out: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                if out.last().is_some_and(|l| *l != "..") {
                    out.pop();
                } else if !rooted {
                    out.push("..");
                }
            }
            c => out.push(c),
        }
    }
    let s = out.join("/");
    if rooted {
        format!("/{s}")
    } else if s.is_empty() {
        ".".into()
    } else {
        s
    }
}

/// Go's `filepath.Base`: the last element, trailing slashes ignored; `/` for the
/// root and `.` for the empty path.
pub fn base(p: &str) -> &str {
    if p.is_empty() {
        return ".";
    }
    let t = p.trim_end_matches('/');
    if t.is_empty() {
        return "/";
    }
    match t.rfind('/') {
        Some(i) => &t[i + 1..],
        None => t,
    }
}

/// Go's `filepath.Dir`: everything but the last element, cleaned.
pub fn dir(p: &str) -> String {
    match p.rfind('/') {
        Some(i) => clean(&p[..=i]),
        None => ".".into(),
    }
}

/// Go's `filepath.Split`: the directory with its trailing slash, and the file.
pub fn split(p: &str) -> (&str, &str) {
    match p.rfind('/') {
        Some(i) => (&p[..=i], &p[i + 1..]),
        None => ("", p),
    }
}

/// Go's `filepath.Join` of two elements.
pub fn join(a: &str, b: &str) -> String {
    if a.is_empty() {
        return clean(b);
    }
    clean(&format!("{a}/{b}"))
}

/// Does the path name the current directory (`.`, `x/.`, `x/./`)?
pub fn specifies_current_dir(p: &str) -> bool {
    base(p) == "."
}

pub fn has_trailing_separator(p: &str) -> bool {
    p.ends_with('/')
}

/// moby's `PreserveTrailingDotOrSeparator`: give a cleaned path back the trailing
/// `/.` or `/` the original had, since they change what a copy means.
pub fn preserve_trailing(cleaned: &str, original: &str) -> String {
    let mut out = cleaned.to_owned();
    if !specifies_current_dir(&out) && specifies_current_dir(original) {
        if !has_trailing_separator(&out) {
            out.push('/');
        }
        out.push('.');
    }
    if !has_trailing_separator(&out) && has_trailing_separator(original) {
        out.push('/');
    }
    out
}

/// moby's `SplitPathDirEntry`: the parent and the entry a copy source or
/// destination names (`x/.` keeps `.` as its entry).
pub fn split_dir_entry(p: &str) -> (String, String) {
    let mut cleaned = clean(p);
    if specifies_current_dir(p) {
        cleaned.push_str("/.");
    }
    (dir(&cleaned), base(&cleaned).to_owned())
}

/// moby's `GetRebaseName`: when a symlink was followed, the resolved path to copy
/// and the name its archive entries must take (empty when unchanged).
pub fn rebase_name(path: &str, resolved: &str) -> (String, String) {
    let mut resolved = resolved.to_owned();
    if specifies_current_dir(path) && !specifies_current_dir(&resolved) {
        resolved.push_str("/.");
    }
    if has_trailing_separator(path) && !has_trailing_separator(&resolved) {
        resolved.push('/');
    }
    let name = if base(path) != base(&resolved) { base(path).to_owned() } else { String::new() };
    (resolved, name)
}

/// Replace the first occurrence of `old` in `name` by `new`, as moby's
/// `RebaseArchiveEntries` and `TarWithOptions` do (an `old` of `/` means the root:
/// nothing is replaced and `new` is prefixed).
pub fn rebase(name: &str, old: &str, new: &str) -> String {
    let old = if old == "/" { "" } else { old };
    match name.find(old) {
        Some(i) => format!("{}{}{}", &name[..i], new, &name[i + old.len()..]),
        None => name.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_matches_go() {
        for (i, o) in [
            ("", "."),
            ("/", "/"),
            ("//a//b/", "/a/b"),
            ("a/./b/../c", "a/c"),
            ("/../x", "/x"),
            ("../../x", "../../x"),
            ("a/..", "."),
        ] {
            assert_eq!(clean(i), o, "{i}");
        }
    }

    #[test]
    fn base_dir_split() {
        assert_eq!(base("/a/b/"), "b");
        assert_eq!(base("/"), "/");
        assert_eq!(base("/a/."), ".");
        assert_eq!(dir("/a/b"), "/a");
        assert_eq!(dir("b"), ".");
        assert_eq!(split("/a/b/"), ("/a/b/", ""));
        assert_eq!(split("/a/b"), ("/a/", "b"));
    }

    #[test]
    fn trailing_dot_and_slash_survive() {
        assert_eq!(preserve_trailing("/a", "a/."), "/a/.");
        assert_eq!(preserve_trailing("/a", "a/"), "/a/");
        assert_eq!(preserve_trailing("/", "/"), "/");
        assert_eq!(preserve_trailing("/", "."), "/.");
        assert_eq!(preserve_trailing("/a", "/a"), "/a");
    }

    #[test]
    fn dir_entries() {
        assert_eq!(split_dir_entry("/a/b/"), ("/a".into(), "b".into()));
        assert_eq!(split_dir_entry("/a/b/."), ("/a/b".into(), ".".into()));
        assert_eq!(split_dir_entry("b"), (".".into(), "b".into()));
        assert_eq!(split_dir_entry("/"), ("/".into(), "/".into()));
    }

    #[test]
    fn rebase_names() {
        assert_eq!(rebase("foo/x", "foo", "bar"), "bar/x");
        assert_eq!(rebase("./x", ".", "bar"), "bar/x");
        assert_eq!(rebase("/bin/sh", "/", "out"), "out/bin/sh");
        assert_eq!(rebase_name("/a/link/", "/a/real"), ("/a/real/".into(), "link".into()));
        assert_eq!(rebase_name("/a/link", "/a/link"), ("/a/link".into(), String::new()));
    }
}
