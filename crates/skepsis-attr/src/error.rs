//! The error type of skepsis-attr.

/// Everything that can go wrong while configuring or running an attribution method.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The model or the backward engine failed.
    #[error(transparent)]
    Nn(#[from] skepsis_nn::Error),

    /// A tensor operation failed inside candle.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),

    /// A method parameter is out of range or inconsistent.
    #[error("{method}: invalid parameter '{parameter}': {message}")]
    InvalidParameter { method: String, parameter: String, message: String },

    /// A method specification string could not be understood.
    #[error("{0}")]
    InvalidSpec(String),

    /// The inputs, targets or baselines do not fit the model or each other.
    #[error("{0}")]
    InvalidInput(String),
}

/// Result type of skepsis-attr.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// Shorthand for [`Error::InvalidParameter`].
    pub fn parameter(
        method: impl Into<String>,
        parameter: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Error::InvalidParameter {
            method: method.into(),
            parameter: parameter.into(),
            message: message.into(),
        }
    }
}
