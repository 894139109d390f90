//! Error kinds shared across berth crates, in the spirit of containerd's `errdefs`.
//!
//! Library code returns [`Error`] with a [`Kind`]; only the API layer maps a kind to an
//! HTTP status through [`Kind::http_status`].

use std::fmt;

/// What went wrong, independent of where.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Kind {
    /// The object (container, image, exec, file) does not exist: HTTP 404.
    NotFound,
    /// The request conflicts with current state (name in use, container running): HTTP 409.
    Conflict,
    /// The request is malformed or a parameter is invalid: HTTP 400.
    InvalidArgument,
    /// Nothing to do (already started / already stopped): HTTP 304.
    NotModified,
    /// The caller is not allowed to do this: HTTP 403.
    Forbidden,
    /// The operation is not supported by this daemon: HTTP 501.
    NotImplemented,
    /// A request body over what berthd reads: HTTP 413.
    TooLarge,
    /// The daemon is not in the state the request needs (dockerd's swarm endpoints
    /// on a node outside a swarm): HTTP 503.
    Unavailable,
    /// Anything else; a bug or an environment failure: HTTP 500.
    Internal,
}

impl Kind {
    /// The Docker Engine API status code for this kind.
    pub fn http_status(self) -> u16 {
        match self {
            Kind::NotFound => 404,
            Kind::Conflict => 409,
            Kind::InvalidArgument => 400,
            Kind::NotModified => 304,
            Kind::Forbidden => 403,
            Kind::NotImplemented => 501,
            Kind::TooLarge => 413,
            Kind::Unavailable => 503,
            Kind::Internal => 500,
        }
    }
}

/// A berth error: a kind and the message a Docker client prints after
/// `Error response from daemon: `.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub struct Error {
    kind: Kind,
    message: String,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl Error {
    pub fn new(kind: Kind, message: impl Into<String>) -> Self {
        Error { kind, message: message.into() }
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(Kind::NotFound, message)
    }
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(Kind::Conflict, message)
    }
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(Kind::InvalidArgument, message)
    }
    pub fn not_modified(message: impl Into<String>) -> Self {
        Self::new(Kind::NotModified, message)
    }
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(Kind::Forbidden, message)
    }
    pub fn too_large(message: impl Into<String>) -> Self {
        Self::new(Kind::TooLarge, message)
    }
    pub fn not_implemented(message: impl Into<String>) -> Self {
        Self::new(Kind::NotImplemented, message)
    }
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(Kind::Unavailable, message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(Kind::Internal, message)
    }
    pub fn kind(&self) -> Kind {
        self.kind
    }
    pub fn message(&self) -> &str {
        &self.message
    }
    /// Prefix the message with context, keeping the kind.
    pub fn context(self, what: impl fmt::Display) -> Self {
        Error { kind: self.kind, message: format!("{what}: {}", self.message) }
    }
    pub fn is_not_found(&self) -> bool {
        self.kind == Kind::NotFound
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        let kind = match e.kind() {
            std::io::ErrorKind::NotFound => Kind::NotFound,
            std::io::ErrorKind::InvalidInput | std::io::ErrorKind::InvalidData => Kind::InvalidArgument,
            std::io::ErrorKind::AlreadyExists => Kind::Conflict,
            std::io::ErrorKind::PermissionDenied => Kind::Forbidden,
            _ => Kind::Internal,
        };
        Error::new(kind, e.to_string())
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error::invalid(e.to_string())
    }
}

/// Result with a berth [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Attach context to any error convertible into [`Error`].
pub trait ResultExt<T> {
    fn ctx(self, what: impl fmt::Display) -> Result<T>;
}

impl<T, E: Into<Error>> ResultExt<T> for std::result::Result<T, E> {
    fn ctx(self, what: impl fmt::Display) -> Result<T> {
        self.map_err(|e| e.into().context(what))
    }
}

/// An OS error as Go prints it (`no such file or directory`): the docker CLI reads
/// some of dockerd's messages by these words (a start failing with "no such file or
/// directory" exits 127).
pub fn go_error(e: &std::io::Error) -> String {
    let s = e.to_string();
    let s = match s.find(" (os error") {
        Some(i) => s[..i].to_owned(),
        None => s,
    };
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_map_to_docker_statuses() {
        assert_eq!(Error::not_found("x").kind().http_status(), 404);
        assert_eq!(Error::conflict("x").kind().http_status(), 409);
        assert_eq!(Error::invalid("x").kind().http_status(), 400);
        assert_eq!(Error::internal("x").kind().http_status(), 500);
    }

    #[test]
    fn io_not_found_keeps_kind_and_context() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "gone");
        let e: Error = Err::<(), _>(io).ctx("open layer").unwrap_err();
        assert!(e.is_not_found());
        assert_eq!(e.to_string(), "open layer: gone");
    }
}
