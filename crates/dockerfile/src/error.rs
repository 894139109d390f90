//! The parse error: a message and the 1-based line it refers to.

/// A Dockerfile syntax or instruction error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("dockerfile parse error on line {line}: {message}")]
pub struct ParseError {
    /// 1-based line where the offending instruction starts (0 when unknown).
    pub line: usize,
    /// The message, as BuildKit words it (e.g. `unknown instruction: FOO`).
    pub message: String,
}

impl ParseError {
    pub fn new(line: usize, message: impl Into<String>) -> Self {
        ParseError {
            line,
            message: message.into(),
        }
    }
}

impl From<ParseError> for berth_errdefs::Error {
    fn from(e: ParseError) -> Self {
        berth_errdefs::Error::invalid(e.to_string())
    }
}
