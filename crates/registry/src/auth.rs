//! HTTP Basic authentication against an htpasswd file of bcrypt entries
//! (as `htpasswd -B` writes them).

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Mutex;

use base64::Engine as _;
use berth_errdefs::{Error, Result, ResultExt};
use sha2::Digest as _;

/// The users of an htpasswd file.
#[derive(Debug, Default)]
pub struct Htpasswd {
    users: HashMap<String, String>,
    /// sha256 of `user:password` pairs that already verified, so bcrypt runs once.
    verified: Mutex<HashSet<[u8; 32]>>,
}

impl Htpasswd {
    pub fn load(path: &Path) -> Result<Self> {
        let text =
            std::fs::read_to_string(path).ctx(format!("reading htpasswd {}", path.display()))?;
        Self::parse(&text)
    }

    pub fn parse(text: &str) -> Result<Self> {
        let mut users = HashMap::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (user, hash) = line
                .split_once(':')
                .ok_or_else(|| Error::invalid(format!("htpasswd line {}: missing ':'", i + 1)))?;
            if !(hash.starts_with("$2y$") || hash.starts_with("$2a$") || hash.starts_with("$2b$")) {
                return Err(Error::invalid(format!(
                    "htpasswd line {}: only bcrypt entries are supported (htpasswd -B)",
                    i + 1
                )));
            }
            users.insert(user.to_string(), hash.to_string());
        }
        Ok(Htpasswd {
            users,
            verified: Mutex::new(HashSet::new()),
        })
    }

    /// Check an `Authorization` header value (blocking: bcrypt is slow on purpose).
    pub fn check(&self, authorization: Option<&str>) -> bool {
        let Some((user, pass)) = authorization.and_then(parse_basic) else {
            return false;
        };
        let Some(hash) = self.users.get(&user) else {
            return false;
        };
        let key: [u8; 32] = sha2::Sha256::digest(format!("{user}:{pass}").as_bytes()).into();
        if self.verified.lock().expect("auth cache").contains(&key) {
            return true;
        }
        let ok = bcrypt::verify(&pass, hash).unwrap_or(false);
        if ok {
            self.verified.lock().expect("auth cache").insert(key);
        }
        ok
    }
}

fn parse_basic(h: &str) -> Option<(String, String)> {
    let (scheme, rest) = h.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .ok()?;
    let s = String::from_utf8(raw).ok()?;
    let (u, p) = s.split_once(':')?;
    Some((u.to_string(), p.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(u: &str, p: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
        )
    }

    #[test]
    fn verifies_bcrypt() {
        let hash = bcrypt::hash("s3cret", 4)
            .unwrap()
            .replacen("$2b$", "$2y$", 1);
        let h = Htpasswd::parse(&format!("# comment\nalice:{hash}\n")).unwrap();
        assert!(h.check(Some(&basic("alice", "s3cret"))));
        assert!(h.check(Some(&basic("alice", "s3cret"))));
        assert!(!h.check(Some(&basic("alice", "wrong"))));
        assert!(!h.check(Some(&basic("bob", "s3cret"))));
        assert!(!h.check(None));
        assert!(!h.check(Some("Bearer x")));
        assert!(Htpasswd::parse("bob:{SHA}abc").is_err());
    }
}
