//! The error type of skepsis-data.

use std::path::PathBuf;

use crate::preprocess::PreprocessError;

/// Everything that can go wrong while loading, generating, storing or drawing a data set.
///
/// File errors name the file and say what is wrong with it, so that the binary can print them
/// as one line.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file or directory that should exist does not.
    #[error("{}: no such file or directory", path.display())]
    MissingFile {
        /// The path that was looked for.
        path: PathBuf,
    },

    /// A file exists but could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },

    /// A binary file does not start with the magic number of its format.
    #[error("{}: wrong magic number: expected {expected}, found {found}", path.display())]
    BadMagic {
        /// The file.
        path: PathBuf,
        /// The magic number of the format, as text (hexadecimal).
        expected: String,
        /// What the file holds instead.
        found: String,
    },

    /// A file is shorter (truncated) or longer than its header or format declares.
    #[error("{}: wrong length: expected {expected} bytes, found {found} bytes{}", path.display(), detail_suffix(detail))]
    WrongLength {
        /// The file.
        path: PathBuf,
        /// The length the header or format implies.
        expected: u64,
        /// The actual length (after decompression for gzip files).
        found: u64,
        /// What the expected length is made of.
        detail: String,
    },

    /// An images file and its labels file hold different numbers of items.
    #[error(
        "{} holds {images} images but {} holds {labels} labels",
        images_path.display(),
        labels_path.display()
    )]
    CountMismatch {
        /// The images file.
        images_path: PathBuf,
        /// The labels file.
        labels_path: PathBuf,
        /// Number of images.
        images: usize,
        /// Number of labels.
        labels: usize,
    },

    /// An image file could not be decoded.
    #[error("{}: unreadable image: {message}", path.display())]
    UnreadableImage {
        /// The image file.
        path: PathBuf,
        /// The decoder's message.
        message: String,
    },

    /// A file has the right framing but invalid content (bad dimensions, label out of range,
    /// invalid JSON, an inconsistent description).
    #[error("{}: {message}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },

    /// A dataset directory already exists and overwriting was not requested.
    #[error("{}: a data set already exists here (use force to overwrite)", path.display())]
    DatasetExists {
        /// The directory.
        path: PathBuf,
    },

    /// A parameter of a loader, generator or dataset operation is out of its valid range.
    #[error("{context}: invalid parameter '{parameter}': {message}")]
    InvalidParameter {
        /// The function or type that rejected the parameter.
        context: String,
        /// The parameter's name.
        parameter: String,
        /// Why it was rejected.
        message: String,
    },

    /// Tensors, labels or regions of a data set disagree in size or shape.
    #[error("{context}: expected shape {expected:?}, found {found:?}")]
    ShapeMismatch {
        /// Where the mismatch was found.
        context: String,
        /// The required shape.
        expected: Vec<usize>,
        /// The shape found.
        found: Vec<usize>,
    },

    /// A preprocessing description is invalid or does not fit an image.
    #[error(transparent)]
    Preprocessing(#[from] PreprocessError),

    /// A tensor operation failed inside candle.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

fn detail_suffix(detail: &str) -> String {
    if detail.is_empty() {
        String::new()
    } else {
        format!(" ({detail})")
    }
}

impl Error {
    /// An [`Error::Io`], or [`Error::MissingFile`] when the operating system says the file does
    /// not exist.
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        let path = path.into();
        if source.kind() == std::io::ErrorKind::NotFound {
            Error::MissingFile { path }
        } else {
            Error::Io { path, source }
        }
    }

    /// An [`Error::InvalidParameter`].
    pub(crate) fn parameter(context: &str, parameter: &str, message: impl Into<String>) -> Self {
        Error::InvalidParameter {
            context: context.to_string(),
            parameter: parameter.to_string(),
            message: message.into(),
        }
    }

    /// An [`Error::Corrupt`].
    pub(crate) fn corrupt(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Error::Corrupt { path: path.into(), message: message.into() }
    }
}

/// The result type of skepsis-data.
pub type Result<T> = std::result::Result<T, Error>;
