//! The error type of the SMERF runs. A model that never reaches the accuracy threshold is not
//! an error: it is recorded as such and not scored (see
//! [`TrainingStatus`](super::TrainingStatus)).

use std::path::PathBuf;

use thiserror::Error;

/// Errors of [`run_smerf`](super::run_smerf) and the functions around it.
#[derive(Debug, Error)]
pub enum SmerfError {
    /// Generating or subsetting the SMERF data failed.
    #[error(transparent)]
    Data(#[from] skepsis_data::Error),
    /// Building, training or running a model failed.
    #[error(transparent)]
    Model(#[from] skepsis_nn::Error),
    /// An attribution method failed or its spec is invalid.
    #[error("method `{method}`: {source}")]
    Method {
        /// The method's label.
        method: String,
        /// The underlying error.
        source: skepsis_attr::Error,
    },
    /// A ground-truth metric failed.
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
    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The output directory already holds SMERF records.
    #[error("{} already exists (pass --force to overwrite)", path.display())]
    OutputExists {
        /// The existing file.
        path: PathBuf,
    },
    /// Serializing the records failed.
    #[error("serializing records: {0}")]
    Serialize(String),
}

impl SmerfError {
    pub(crate) fn option(name: &'static str, reason: impl Into<String>) -> Self {
        SmerfError::InvalidOption { name, reason: reason.into() }
    }

    pub(crate) fn method(method: &str, source: skepsis_attr::Error) -> Self {
        SmerfError::Method { method: method.to_string(), source }
    }
}

/// Result alias of the SMERF module.
pub type SmerfResult<T> = std::result::Result<T, SmerfError>;
