//! `build <git url>`: the context is a git repository, cloned here by the client
//! (as the docker CLI does) with the `git` command. A URL fragment picks what to
//! build: `#<ref>` (branch, tag or commit) and `#<ref>:<subdir>`.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context as _, Result};

/// A git context as docker's CLI recognises one: `git://`, `git@`, `github.com/`,
/// or an http(s) URL whose path ends in `.git` (a `#fragment` allowed).
pub fn is_git_url(s: &str) -> bool {
    let l = s.to_ascii_lowercase();
    if l.starts_with("git://") || l.starts_with("git@") || l.starts_with("github.com/") {
        return true;
    }
    if !(l.starts_with("http://") || l.starts_with("https://")) {
        return false;
    }
    l.split('#').next().unwrap_or("").trim_end_matches('/').ends_with(".git")
}

/// The remote, the ref (empty: the default branch) and the subdirectory of a git
/// context URL.
pub fn parse(url: &str) -> (String, String, String) {
    let (remote, frag) = url.split_once('#').unwrap_or((url, ""));
    let (r, sub) = frag.split_once(':').unwrap_or((frag, ""));
    let remote = if remote.to_ascii_lowercase().starts_with("github.com/") {
        format!("https://{remote}")
    } else {
        remote.to_owned()
    };
    (remote, r.to_owned(), sub.trim_matches('/').to_owned())
}

fn git(dir: &Path, args: &[&str]) -> Result<()> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_TERMINAL_PROMPT", "0")
        .output()
        .context("run git (is it installed?)")?;
    if !out.status.success() {
        bail!(
            "git {}: {}",
            args.first().copied().unwrap_or(""),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Clone `url` into a new directory under `tmp`; returns the context directory
/// (the subdirectory the fragment names, which must exist inside the clone).
pub fn clone(url: &str, tmp: &Path) -> Result<PathBuf> {
    let (remote, r, sub) = parse(url);
    let dir = tmp.join("repo");
    std::fs::create_dir_all(&dir)?;
    git(&dir, &["init", "-q"])?;
    git(&dir, &["remote", "add", "origin", &remote])?;
    let want = if r.is_empty() { "HEAD" } else { r.as_str() };
    // A shallow fetch first; servers that cannot do one (dumb HTTP) get a full one.
    if git(&dir, &["fetch", "-q", "--depth", "1", "origin", want]).is_err() {
        git(&dir, &["fetch", "-q", "origin", want])
            .with_context(|| format!("unable to prepare context: fetch {want} from {remote}"))?;
    }
    git(&dir, &["checkout", "-q", "FETCH_HEAD"])?;
    git(
        &dir,
        &["submodule", "update", "-q", "--init", "--recursive", "--depth", "1"],
    )?;
    let ctx = if sub.is_empty() { dir.clone() } else { dir.join(&sub) };
    let real = std::fs::canonicalize(&ctx)
        .with_context(|| format!("unable to prepare context: {sub:?} not found in {remote}"))?;
    if !real.starts_with(std::fs::canonicalize(&dir)?) || !real.is_dir() {
        bail!("unable to prepare context: {sub:?} is not a directory of {remote}");
    }
    Ok(real)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn git_urls_as_docker_recognises_them() {
        for u in [
            "git://host/repo",
            "git@github.com:o/r.git",
            "github.com/o/r",
            "https://host/r.git",
            "http://127.0.0.1:8/r.git#main:sub",
        ] {
            assert!(is_git_url(u), "{u}");
        }
        for u in ["https://host/ctx.tar.gz", "http://host/Dockerfile", ".", "dir.git"] {
            assert!(!is_git_url(u), "{u}");
        }
    }

    #[test]
    fn fragments_give_ref_and_subdir() {
        assert_eq!(
            parse("https://h/r.git#v1.2:app/"),
            ("https://h/r.git".into(), "v1.2".into(), "app".into())
        );
        assert_eq!(parse("https://h/r.git"), ("https://h/r.git".into(), "".into(), "".into()));
        assert_eq!(
            parse("github.com/o/r#:sub"),
            ("https://github.com/o/r".into(), "".into(), "sub".into())
        );
    }
}
