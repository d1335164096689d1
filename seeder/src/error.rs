//! The seeder's one error type: what failed, on which path, and why.

use std::fmt;
use std::path::PathBuf;

#[derive(Debug)]
pub enum Error {
    /// The configuration cannot be written (e.g. more sales than ids).
    Config(String),
    /// A file-system step failed: creating, replacing or measuring a file.
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    /// SQLite refused a step while writing the temporary database.
    Sqlite {
        action: &'static str,
        path: PathBuf,
        source: rusqlite::Error,
    },
    /// The progress callback asked to stop; nothing was written.
    Cancelled,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Config(message) => write!(f, "invalid configuration: {message}"),
            Error::Io {
                action,
                path,
                source,
            } => write!(f, "cannot {action} {}: {source}", path.display()),
            Error::Sqlite {
                action,
                path,
                source,
            } => write!(f, "cannot {action} in {}: {source}", path.display()),
            Error::Cancelled => write!(f, "cancelled; no database was written"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            Error::Sqlite { source, .. } => Some(source),
            Error::Config(_) | Error::Cancelled => None,
        }
    }
}
