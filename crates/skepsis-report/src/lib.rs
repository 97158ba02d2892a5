//! skepsis-report: colormaps, heatmaps, figures and the HTML report.

pub mod colormap;
pub mod heatmap;

pub use colormap::Colormap;
pub use heatmap::{render, Rendering};
