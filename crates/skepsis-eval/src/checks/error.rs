//! The error type of the checks: failures of the model, method, data or metric layers, bad
//! options, and output-directory problems. A check that *refuses* to conclude (a random-label
//! model that did not memorize, a first layer whose shift cannot be compensated) is not an
//! error: it returns a report whose [`refusal`](super::CheckReport::refusal) says why.

use std::path::PathBuf;

use thiserror::Error;

/// Errors of the sanity checks.
#[derive(Debug, Error)]
pub enum CheckError {
    /// The model or the backward engine failed.
    #[error(transparent)]
    Model(#[from] skepsis_nn::Error),
    /// An attribution method failed (or its spec is invalid).
    #[error(transparent)]
    Method(#[from] skepsis_attr::Error),
    /// A data set operation failed.
    #[error(transparent)]
    Data(#[from] skepsis_data::Error),
    /// A similarity metric failed.
    #[error(transparent)]
    Metric(#[from] crate::EvalError),
    /// A tensor operation failed.
    #[error("tensor operation: {0}")]
    Tensor(#[from] candle_core::Error),
    /// An option is outside its valid range.
    #[error("invalid option `{name}`: {reason}")]
    InvalidOption {
        /// The option.
        name: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// Reading or writing the output directory failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The output directory already holds check output.
    #[error(
        "{} already holds check output (pass --force to overwrite or --resume to continue)",
        path.display()
    )]
    OutputExists {
        /// The existing file.
        path: PathBuf,
    },
    /// `resume` found step records written with different parameters.
    #[error(
        "{}: written by a run with different parameters; cannot resume (pass --force to start \
         over)",
        path.display()
    )]
    ResumeMismatch {
        /// The step file that does not match.
        path: PathBuf,
    },
    /// A records file could not be parsed.
    #[error("{}: unreadable records: {message}", path.display())]
    BadRecords {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
}

impl CheckError {
    pub(crate) fn option(name: &'static str, reason: impl Into<String>) -> Self {
        CheckError::InvalidOption { name, reason: reason.into() }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        CheckError::Io { path: path.into(), source }
    }
}

/// Result alias of the checks.
pub type CheckResult<T> = std::result::Result<T, CheckError>;
