//! The error type of skepsis-nn.

use std::path::PathBuf;

/// Everything that can go wrong while building, loading, running or training a model.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A tensor operation failed inside candle.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),

    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// An output file exists and overwriting was not requested.
    #[error("{} already exists (pass --force to overwrite)", path.display())]
    AlreadyExists { path: PathBuf },

    /// A model description (`model.json`) is not valid JSON or does not match the schema.
    #[error("{}: {message}", path.display())]
    ModelDescription { path: PathBuf, message: String },

    /// A safetensors file is truncated, corrupt or holds an unsupported dtype.
    #[error("{}: not a valid safetensors file: {message}", path.display())]
    Safetensors { path: PathBuf, message: String },

    /// The weights file lacks a tensor that a layer needs.
    #[error("layer '{layer}': weight '{key}' is missing from {}", path.display())]
    MissingWeight { layer: String, key: String, path: PathBuf },

    /// A tensor (weight or activation) has a shape other than the one required.
    #[error("{context}: expected shape {expected:?}, found {found:?}")]
    ShapeMismatch { context: String, expected: Vec<usize>, found: Vec<usize> },

    /// A weight holds NaN or infinite values.
    #[error("layer '{layer}': weight '{key}' holds non-finite values (NaN or infinity)")]
    NonFiniteWeight { layer: String, key: String },

    /// A model description names a layer type that skepsis does not know.
    #[error("layer '{layer}': unknown layer type '{kind}' (known: {known})")]
    UnknownLayerType { layer: String, kind: String, known: String },

    /// A node name does not exist in the model.
    #[error("model '{model}' has no node named '{name}' (nodes: {available})")]
    UnknownNode { model: String, name: String, available: String },

    /// The graph is malformed: duplicate names, dangling inputs, cycles, wrong arity.
    #[error("invalid model graph: {0}")]
    InvalidGraph(String),

    /// A layer or training parameter is out of its valid range.
    #[error("{context}: invalid parameter '{parameter}': {message}")]
    InvalidParameter { context: String, parameter: String, message: String },

    /// A rule cannot handle the layer it was assigned to.
    #[error("node '{node}': rule '{rule}' does not support layer type '{layer}'")]
    UnsupportedRule { node: String, rule: String, layer: String },

    /// An error raised while running one node of a model.
    #[error("node '{node}': {source}")]
    Node {
        node: String,
        #[source]
        source: Box<Error>,
    },

    /// An input or class index is inconsistent with the model.
    #[error("{0}")]
    InvalidInput(String),

    /// An ONNX file is not well-formed protobuf, or exceeds the importer's size limits.
    #[error("not a valid ONNX file: {message}")]
    OnnxDecode { message: String },

    /// An ONNX graph is malformed or outside what skepsis imports: cycles, dangling
    /// inputs, several inputs or outputs, dynamic shapes, unsupported opsets.
    #[error("ONNX graph: {0}")]
    OnnxGraph(String),

    /// ONNX operators without a skepsis layer: every one of them, with its node name.
    #[error("{} unsupported ONNX operator(s): {}", operators.len(), operators.iter().map(|(node, op)| format!("{op} (node '{node}')")).collect::<Vec<_>>().join(", "))]
    OnnxUnsupportedOperators {
        /// `(node name, operator)` pairs in graph order; the operator is `domain::OpType`
        /// outside the default domain.
        operators: Vec<(String, String)>,
    },

    /// A supported ONNX operator whose attributes, inputs or shapes cannot be imported.
    #[error("ONNX node '{node}' ({op_type}): {message}")]
    OnnxNode { node: String, op_type: String, message: String },

    /// An ONNX tensor (initializer or constant) is inconsistent, too large or unreadable.
    #[error("ONNX tensor '{tensor}': {message}")]
    OnnxTensor { tensor: String, message: String },
}

/// Result type of skepsis-nn.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// Shorthand for [`Error::InvalidParameter`].
    pub fn parameter(
        context: impl Into<String>,
        parameter: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Error::InvalidParameter {
            context: context.into(),
            parameter: parameter.into(),
            message: message.into(),
        }
    }

    /// Shorthand for [`Error::Io`].
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }
}
