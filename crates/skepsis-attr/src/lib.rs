//! skepsis-attr: attribution methods as walks over the skepsis-nn layer graph.
//!
//! Every method implements [`Method`]: given a model, a batch of inputs and a [`Target`],
//! it returns an [`Attribution`]. Methods that modify backpropagation (Guided Backprop,
//! LRP, DeepLIFT, ...) do so by assigning [`skepsis_nn::Rule`]s to nodes; wrappers
//! (Integrated Gradients, SmoothGrad, ...) fold steps and samples into the batch.

pub mod engine;
mod error;
pub mod gradient;
mod method;
pub mod registry;

pub use error::{Error, Result};
pub use gradient::{Gradient, GradientSettings, GradientXInput};
pub use method::{Attribution, Method, Target};
