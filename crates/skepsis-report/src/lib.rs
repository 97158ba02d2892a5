//! skepsis-report: colormaps, heatmaps, figures (cascade grids, similarity curves, bar
//! charts, SMERF examples) and the self-contained HTML report of a `skepsis run`.

pub mod bars;
pub mod colormap;
pub mod curves;
pub mod heatmap;
pub mod html;
pub mod mosaic;
pub mod png;
pub mod raster;
pub mod run;

pub use bars::{BarChart, BarSeries};
pub use colormap::Colormap;
pub use curves::{render_svg, CurveChart, CurveError, Series};
pub use heatmap::{render, Rendering};
pub use html::{escape, Cell, Figure, Page, Section, Table};
pub use png::{encode_png, grid, PngError};
pub use raster::{svg_to_png, RasterError};
