//! skepsis-report: colormaps, heatmaps, figures and the HTML report.

pub mod colormap;
pub mod curves;
pub mod heatmap;
pub mod html;
pub mod png;

pub use colormap::Colormap;
pub use curves::{render_svg, CurveChart, CurveError, Series};
pub use heatmap::{render, Rendering};
pub use html::{escape, Figure, Page, Section, Table};
pub use png::{encode_png, grid, PngError};
