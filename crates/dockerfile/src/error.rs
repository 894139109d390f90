//! The parse error: a message and the 1-based line it refers to.

/// A Dockerfile syntax or instruction error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("dockerfile parse error line {line}: {message}")]
pub struct ParseError {
    /// 1-based line where the offending instruction starts (0 when unknown).
    pub line: usize,
    /// The message, as BuildKit words it (e.g. `unknown instruction: FOO`).
    pub message: String,
    /// Found while splitting the file into instructions (a line that cannot be
    /// tokenized, no instruction at all) rather than in one instruction's arguments:
    /// dockerd reports these as `failed to parse Dockerfile: <message>`.
    pub syntax: bool,
}

impl ParseError {
    pub fn new(line: usize, message: impl Into<String>) -> Self {
        ParseError {
            line,
            message: message.into(),
            syntax: false,
        }
    }

    /// An error of the file's syntax (see [`ParseError::syntax`]).
    pub fn syntax(line: usize, message: impl Into<String>) -> Self {
        ParseError { syntax: true, ..Self::new(line, message) }
    }
}

impl From<ParseError> for berth_errdefs::Error {
    fn from(e: ParseError) -> Self {
        berth_errdefs::Error::invalid(e.to_string())
    }
}
