//! The preprocessing description lives in skepsis-nn, because `model.json` records it;
//! re-exported here for loaders and generators.

pub use skepsis_nn::preprocess::{ColorMode, PreprocessError, Preprocessing};
