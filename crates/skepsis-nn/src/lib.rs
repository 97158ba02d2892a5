//! skepsis-nn: the layer graph that every skepsis attribution method walks.
//!
//! A [`Model`] is a small DAG of named nodes, each holding one [`Layer`]. [`Model::trace`]
//! records every node's output; [`BackwardPass`] walks the graph in reverse and asks the
//! [`Rule`] assigned to each node to map relevance at the node's output to relevance at its
//! inputs. The plain gradient is one rule among many; LRP, DeepLIFT, Guided Backprop and
//! their relatives (crate `skepsis-attr`) are others.

pub mod backward;
mod error;
pub mod init;
pub mod layer;
pub mod memo;
pub mod model;
pub mod model_file;
pub mod onnx;
pub mod ops;
pub mod preprocess;
pub mod train;
mod ziggurat;
pub mod zoo;

pub use backward::{
    input_gradient, BackwardOutput, BackwardPass, Gradient, Rule, RuleMap, Step, Stop,
};
pub use error::{Error, Result};
pub use init::{randomize, Initializer, RandomizeOptions};
pub use layer::{BatchNorm2d, Conv2d, Layer, Linear};
pub use memo::{TraceMemo, DEFAULT_TRACE_MEMO_BUDGET};
pub use model::{Model, Node, Trace, ValueId};
pub use preprocess::{ColorMode, Preprocessing};

pub use candle_core::{DType, Device, Tensor};
