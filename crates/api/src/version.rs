//! API version negotiation: berthd advertises [`MAX_API_VERSION`] in `Api-Version` and
//! serves every `/vX.Y` prefix from [`MIN_API_VERSION`] up to it.

use berth_errdefs::{Error, Result};

/// The newest API version berthd serves (the fields it fills are those of 1.41).
pub const MAX_API_VERSION: &str = "1.41";
/// The oldest API version berthd accepts in a path prefix (dockerd 20.10's).
pub const MIN_API_VERSION: &str = "1.12";

/// The API version a request was made with: its `/vX.Y` prefix, or the newest when it
/// has none (as dockerd). Handlers ask it where dockerd 20.10 answers older clients in
/// older shapes (`versions.LessThan(version, "1.NN")` in moby's routers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ApiVersion(pub u32, pub u32);

impl ApiVersion {
    /// The newest: [`MAX_API_VERSION`].
    pub const NEWEST: ApiVersion = ApiVersion(1, 41);

    /// The version of a request whose path prefix is `prefix` (none: the newest).
    pub fn of(prefix: Option<&str>) -> ApiVersion {
        prefix.and_then(parse).map_or(ApiVersion::NEWEST, |(a, b)| ApiVersion(a, b))
    }

    /// Is this older than `1.minor` (dockerd's `versions.LessThan(v, "1.minor")`)?
    pub fn before(self, minor: u32) -> bool {
        self < ApiVersion(1, minor)
    }
}

impl std::fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.0, self.1)
    }
}

/// Does a client of API `v` (the path prefix; none: the newest) read errors as JSON?
/// Up to 1.23 dockerd answers errors as plain text.
pub fn json_errors(v: Option<&str>) -> bool {
    !ApiVersion::of(v).before(24)
}

/// Parse `"1.41"` into `(1, 41)`.
pub fn parse(v: &str) -> Option<(u32, u32)> {
    let (a, b) = v.split_once('.')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

/// Split an optional `/vX.Y` prefix off a request path. Returns the version (if any)
/// and the rest of the path, which always starts with `/`.
pub fn split_prefix(path: &str) -> (Option<&str>, &str) {
    if let Some(rest) = path.strip_prefix("/v") {
        let end = rest.find('/').unwrap_or(rest.len());
        let v = &rest[..end];
        if parse(v).is_some() {
            let tail = &rest[end..];
            return (Some(v), if tail.is_empty() { "/" } else { tail });
        }
    }
    (None, path)
}

/// Check a client-requested version against what berthd serves, with dockerd's messages.
pub fn check(v: &str) -> Result<()> {
    let want = parse(v).ok_or_else(|| Error::invalid(format!("invalid API version {v}")))?;
    let max = parse(MAX_API_VERSION).expect("valid");
    let min = parse(MIN_API_VERSION).expect("valid");
    if want > max {
        return Err(Error::invalid(format!(
            "client version {v} is too new. Maximum supported API version is {MAX_API_VERSION}"
        )));
    }
    if want < min {
        return Err(Error::invalid(format!(
            "client version {v} is too old. Minimum supported API version is {MIN_API_VERSION}, please upgrade your client to a newer version"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_is_optional() {
        assert_eq!(split_prefix("/v1.41/containers/json"), (Some("1.41"), "/containers/json"));
        assert_eq!(split_prefix("/containers/json"), (None, "/containers/json"));
        assert_eq!(split_prefix("/_ping"), (None, "/_ping"));
        assert_eq!(split_prefix("/volumes/v1"), (None, "/volumes/v1"));
    }

    #[test]
    fn too_new_and_too_old_are_rejected() {
        assert!(check("1.41").is_ok());
        assert!(check("1.30").is_ok());
        assert!(check("1.99").unwrap_err().to_string().contains("too new"));
        assert!(check("1.11").unwrap_err().to_string().contains("too old"));
        assert!(check("1.12").is_ok());
    }

    #[test]
    fn errors_are_json_after_api_1_23() {
        assert!(json_errors(None));
        assert!(json_errors(Some("1.24")));
        assert!(!json_errors(Some("1.23")));
        assert!(!json_errors(Some("1.12")));
    }

    #[test]
    fn a_request_without_a_prefix_is_of_the_newest_version() {
        assert_eq!(ApiVersion::of(None), ApiVersion::of(Some(MAX_API_VERSION)));
        assert_eq!(ApiVersion::of(Some("1.19")), ApiVersion(1, 19));
        assert!(ApiVersion::of(Some("1.19")).before(20));
        assert!(!ApiVersion::of(Some("1.20")).before(20));
        assert!(!ApiVersion::of(None).before(41));
        assert!(ApiVersion::of(Some("1.9")).before(12), "minor versions compare as numbers");
        assert_eq!(ApiVersion(1, 20).to_string(), "1.20");
    }
}
