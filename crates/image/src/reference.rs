//! Docker image references: `[domain/]path[:tag][@digest]`.

use std::fmt;

use berth_errdefs::{Error, Result};

pub const DEFAULT_DOMAIN: &str = "docker.io";
pub const DEFAULT_TAG: &str = "latest";

/// A parsed, normalised image reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    pub domain: String,
    pub path: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

fn valid_component(c: &str) -> bool {
    // [a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*
    if c.is_empty() {
        return false;
    }
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

/// Is the first component of a name a registry (rather than a Docker Hub namespace)?
fn looks_like_domain(first: &str) -> bool {
    first.contains('.')
        || first.contains(':')
        || first == "localhost"
        || first.chars().any(|c| c.is_ascii_uppercase())
}

fn valid_tag(t: &str) -> bool {
    !t.is_empty()
        && t.len() <= 128
        && (t.as_bytes()[0].is_ascii_alphanumeric() || t.as_bytes()[0] == b'_')
        && t.bytes()
            .all(|x| x.is_ascii_alphanumeric() || matches!(x, b'_' | b'.' | b'-'))
}

impl Reference {
    /// Parse and normalise a reference as the docker CLI and daemon do.
    pub fn parse(s: &str) -> Result<Reference> {
        let bad = || Error::invalid(format!("invalid reference format: {s}"));
        if s.is_empty() {
            return Err(bad());
        }
        let (name_tag, digest) = match s.split_once('@') {
            Some((a, d)) => {
                let (alg, hex) = d.split_once(':').ok_or_else(bad)?;
                if alg.is_empty() || hex.len() < 32 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(bad());
                }
                (a, Some(d.to_owned()))
            }
            None => (s, None),
        };
        // A tag is after the last ':' that follows the last '/'.
        let last_slash = name_tag.rfind('/').map(|i| i + 1).unwrap_or(0);
        let (name, tag) = match name_tag[last_slash..].rfind(':') {
            Some(i) => (
                &name_tag[..last_slash + i],
                Some(&name_tag[last_slash + i + 1..]),
            ),
            None => (name_tag, None),
        };
        if let Some(t) = tag {
            if !valid_tag(t) {
                return Err(bad());
            }
        }
        if name.chars().any(|c| c.is_ascii_uppercase()) && !name.contains('/') {
            return Err(Error::invalid(format!(
                "invalid reference format: repository name ({name}) must be lowercase"
            )));
        }
        let (domain, path) = match name.split_once('/') {
            Some((first, rest)) if looks_like_domain(first) => {
                (first.to_owned(), rest.to_owned())
            }
            _ => (DEFAULT_DOMAIN.to_owned(), name.to_owned()),
        };
        let path = if domain == DEFAULT_DOMAIN && !path.contains('/') {
            format!("library/{path}")
        } else {
            path
        };
        if path.split('/').any(|c| !valid_component(c)) {
            return Err(bad());
        }
        if domain.is_empty() || domain.len() > 255 {
            return Err(bad());
        }
        Ok(Reference {
            domain,
            path,
            tag: tag.map(str::to_owned),
            digest,
        })
    }

    /// Parse, and add `:latest` when neither tag nor digest is given.
    pub fn parse_tagged(s: &str) -> Result<Reference> {
        let mut r = Reference::parse(s)?;
        if r.tag.is_none() && r.digest.is_none() {
            r.tag = Some(DEFAULT_TAG.to_owned());
        }
        Ok(r)
    }

    /// The repository in familiar form: `busybox`, `myrepo/bb`, `127.0.0.1:5000/app`.
    pub fn familiar_name(&self) -> String {
        if self.domain == DEFAULT_DOMAIN {
            // Only official images (`library/<name>`) lose the prefix, as in Docker's
            // `FamiliarName`: `docker.io/library/a/b` stays `library/a/b`, which is not
            // the repository `a/b`.
            match self.path.strip_prefix("library/") {
                Some(name) if !name.contains('/') => name.to_owned(),
                // `docker.io/localhost/x` printed as `localhost/x` would name another
                // registry (and the tag store is keyed by this form)
                _ if self.path.split_once('/').is_some_and(|(first, _)| looks_like_domain(first)) => {
                    self.full_name()
                }
                _ => self.path.clone(),
            }
        } else {
            format!("{}/{}", self.domain, self.path)
        }
    }

    /// The fully qualified repository: `docker.io/library/busybox`.
    pub fn full_name(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    /// The key a tag is stored under: `busybox:latest` (or `name@sha256:…`).
    pub fn familiar(&self) -> String {
        let mut s = self.familiar_name();
        if let Some(t) = &self.tag {
            s.push(':');
            s.push_str(t);
        }
        if let Some(d) = &self.digest {
            s.push('@');
            s.push_str(d);
        }
        s
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.familiar())
    }
}

/// Split the `repo` and `tag` query parameters as the API sends them (`repo` may itself
/// carry the tag, as `docker import f imported:1` does).
pub fn from_repo_tag(repo: &str, tag: &str) -> Result<Reference> {
    let mut r = Reference::parse(repo)?;
    if !tag.is_empty() {
        if tag.starts_with("sha256:") {
            r.digest = Some(tag.to_owned());
        } else if valid_tag(tag) {
            r.tag = Some(tag.to_owned());
        } else {
            return Err(Error::invalid(format!("invalid tag format: {tag}")));
        }
    }
    if r.tag.is_none() && r.digest.is_none() {
        r.tag = Some(DEFAULT_TAG.to_owned());
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn familiar_form_parses_back_to_the_same_repository() {
        // found by fuzzing (fuzz/fuzz_targets/image_reference.rs): the familiar form
        // of `library/a/b` was `a/b`, another repository
        let r = Reference::parse("library/bulibrary/busyboxsybox").unwrap();
        assert_eq!(r.full_name(), "docker.io/library/bulibrary/busyboxsybox");
        assert_eq!(r.familiar(), "library/bulibrary/busyboxsybox");
        assert_eq!(Reference::parse(&r.familiar()).unwrap(), r);
        let r = Reference::parse_tagged("docker.io/library/a/b:1").unwrap();
        assert_eq!(r.familiar(), "library/a/b:1");
        assert_eq!(Reference::parse_tagged("library/busybox").unwrap().familiar(), "busybox:latest");
        // the second finding: a Hub path whose first component reads as a registry
        for s in ["docker.io/lib.rary/subybol/dast", "docker.io/localhost/x"] {
            let r = Reference::parse(s).unwrap();
            assert_eq!(r.familiar(), s);
            assert_eq!(Reference::parse(&r.familiar()).unwrap(), r);
        }
    }

    #[test]
    fn normalises_like_docker() {
        let r = Reference::parse_tagged("busybox").unwrap();
        assert_eq!(r.full_name(), "docker.io/library/busybox");
        assert_eq!(r.familiar(), "busybox:latest");
        let r = Reference::parse_tagged("docker.io/library/busybox:1.36").unwrap();
        assert_eq!(r.familiar(), "busybox:1.36");
        let r = Reference::parse_tagged("docker.io/myrepo/bb").unwrap();
        assert_eq!(r.familiar(), "myrepo/bb:latest");
        let r = Reference::parse_tagged("127.0.0.1:5000/myapp:1.0").unwrap();
        assert_eq!(r.domain, "127.0.0.1:5000");
        assert_eq!(r.familiar(), "127.0.0.1:5000/myapp:1.0");
        let r = Reference::parse_tagged("localhost/app").unwrap();
        assert_eq!(r.familiar(), "localhost/app:latest");
        let d = format!("busybox@sha256:{}", "a".repeat(64));
        let r = Reference::parse_tagged(&d).unwrap();
        assert_eq!(r.tag, None);
        assert_eq!(r.familiar(), d);
    }

    #[test]
    fn rejects_bad_references() {
        for bad in ["", "Busybox", "a//b", "a:", "-a", "a:b c", "UPPER:tag"] {
            assert!(Reference::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn repo_param_may_hold_the_tag() {
        assert_eq!(
            from_repo_tag("imported:1", "").unwrap().familiar(),
            "imported:1"
        );
        assert_eq!(
            from_repo_tag("docker.io/library/committed", "1")
                .unwrap()
                .familiar(),
            "committed:1"
        );
        assert_eq!(from_repo_tag("x", "").unwrap().familiar(), "x:latest");
    }
}
