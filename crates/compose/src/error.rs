//! Errors returned by the loader. Messages follow Compose's wording and always name the
//! file and/or the key path at fault.

use std::path::PathBuf;

/// An error loading a Compose project.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read.
    #[error("open {}: {source}", path.display())]
    Io {
        /// The file at fault.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A file is not valid YAML, or not a mapping at its top level.
    #[error("failed to parse {file}: {message}")]
    Parse {
        /// The file at fault.
        file: String,
        /// What is wrong, with the line where known.
        message: String,
    },
    /// The merged model does not follow the Compose specification's schema.
    #[error("validating {file}: {message}")]
    Schema {
        /// The file whose content made the model invalid.
        file: String,
        /// The key path and what is wrong with it.
        message: String,
    },
    /// No Compose file was given and none was found.
    #[error("no configuration file provided: not found")]
    NoConfigFile,
    /// Any other invalid model; the message names the key path at fault.
    #[error("{0}")]
    Invalid(String),
}

impl Error {
    pub(crate) fn invalid(msg: impl Into<String>) -> Self {
        Error::Invalid(msg.into())
    }
}

/// Result alias for the loader.
pub type Result<T> = std::result::Result<T, Error>;
