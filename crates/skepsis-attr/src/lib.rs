//! skepsis-attr: attribution methods as walks over the skepsis-nn layer graph.
//!
//! Every method implements [`Method`]: given a model, a batch of inputs and a [`Target`],
//! it returns an [`Attribution`]. Methods that modify backpropagation (Guided Backprop,
//! LRP, DeepLIFT, ...) do so by assigning [`skepsis_nn::Rule`]s to nodes; wrappers
//! (Integrated Gradients, SmoothGrad, ...) fold steps and samples into the batch.

pub mod baselines;
pub mod canonizer;
pub mod cgi;
pub mod composite;
pub mod deeplift;
pub mod engine;
mod error;
pub mod expected_gradients;
pub mod gradcam;
pub mod gradient;
pub mod guided_gradcam;
pub mod ig_baseline;
pub mod integrated_gradients;
pub mod interpolate;
mod method;
pub mod modified;
pub mod modified_specs;
pub mod noise_tunnel;
pub mod occlusion;
pub mod quadrature;
pub mod registry;
pub mod rise;
mod rows;
pub mod rules;
mod specs;

pub use baselines::{RandomMap, RandomMapSettings, SobelEdges, SobelSettings};
pub use cgi::{Cgi, CgiBase, CgiComparison, CgiSettings};
pub use deeplift::{DeepLift, DeepLiftRule, DeepLiftSettings, DeepShap, MaxPoolRule, Reference};
pub use error::{Error, Result};
pub use expected_gradients::{ExpectedGradients, ExpectedGradientsSettings, ReferenceSet};
pub use gradcam::{CamNormalization, CamWeighting, GradCam, GradCamSettings};
pub use gradient::{Gradient, GradientSettings, GradientXInput};
pub use guided_gradcam::GuidedGradCam;
pub use ig_baseline::Baseline;
pub use integrated_gradients::{IntegratedGradients, IntegratedGradientsSettings};
pub use method::{Attribution, Method, Target};
pub use modified::{DeconvNet, GuidedBackprop, Lrp, LrpSettings, OutputSeed};
pub use noise_tunnel::{NoiseReduction, NoiseScale, NoiseTunnel, NoiseTunnelSettings};
pub use occlusion::{Occlusion, OcclusionSettings};
pub use quadrature::QuadratureRule;
pub use rise::{Rise, RiseSettings};
