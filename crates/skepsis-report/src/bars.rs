//! Grouped bar charts as standalone SVG: the data-randomization similarity per method
//! (Adebayo et al. 2018, Fig. 5 right) and SMERF's primary vs secondary attribution focus per
//! method (Kim et al. 2022, Fig. 4). Bars carry optional ± std whiskers; a dashed reference
//! line marks a threshold (the 0.5 correctness line, a baseline's level).

use std::fmt::Write as _;

use crate::curves::{coord, tick_decimals, tick_label, validate, CurveError, PALETTE};
use crate::html::escape;

/// One bar series (e.g. "primary AFL"), one value per category.
#[derive(Clone, Debug, PartialEq)]
pub struct BarSeries {
    /// Legend name.
    pub name: String,
    /// Value per category; `None` draws no bar (and the category is labelled "n/a").
    pub values: Vec<Option<f64>>,
    /// Standard deviation per category (empty: no whiskers).
    pub std: Vec<f64>,
}

/// A grouped bar chart.
#[derive(Clone, Debug, PartialEq)]
pub struct BarChart {
    /// Title (empty for none).
    pub title: String,
    /// Label of the y axis.
    pub y_label: String,
    /// Category names along the x axis (e.g. methods).
    pub categories: Vec<String>,
    /// The series; each category shows one bar per series side by side.
    pub series: Vec<BarSeries>,
    /// The y range `(low, high)`; bars are clamped to it.
    pub y_range: (f64, f64),
    /// Dashed horizontal reference lines `(value, label)`.
    pub references: Vec<(f64, String)>,
}

const MARGIN_LEFT: f64 = 64.0;
const MARGIN_TOP: f64 = 40.0;
const MARGIN_BOTTOM: f64 = 110.0;
const LEGEND_WIDTH: f64 = 170.0;
const Y_TICKS: usize = 5;

impl BarChart {
    /// An empty chart over `categories` with the y range `(low, high)`.
    pub fn new<S: Into<String>>(
        categories: impl IntoIterator<Item = S>,
        y_range: (f64, f64),
    ) -> Self {
        BarChart {
            title: String::new(),
            y_label: String::new(),
            categories: categories.into_iter().map(Into::into).collect(),
            series: Vec::new(),
            y_range,
            references: Vec::new(),
        }
    }

    /// Renders the chart as a standalone `<svg>` (deterministic). Errors on an empty
    /// category list, a bad y range, or a series without one value per category.
    pub fn render(&self) -> Result<String, CurveError> {
        let n = self.categories.len();
        let lengths = self.series.iter().map(|s| (s.name.as_str(), s.values.len(), s.std.len()));
        validate(n, self.y_range, lengths)?;
        let (low, high) = self.y_range;
        let group_w = 28.0 + 16.0 * self.series.len().max(1) as f64;
        let width = (MARGIN_LEFT + LEGEND_WIDTH + group_w * n as f64).max(420.0);
        let height = 380.0;
        let plot_w = width - MARGIN_LEFT - LEGEND_WIDTH;
        let plot_h = height - MARGIN_TOP - MARGIN_BOTTOM;
        let y_of = |v: f64| {
            let t = ((v - low) / (high - low)).clamp(0.0, 1.0);
            MARGIN_TOP + plot_h * (1.0 - t)
        };
        let zero = y_of(low.max(0.0).min(high));
        let right = MARGIN_LEFT + plot_w;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" \
             viewBox=\"0 0 {w} {h}\" font-family=\"sans-serif\" font-size=\"12\">",
            w = coord(width),
            h = coord(height)
        );
        let _ = writeln!(out, "<rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>");
        if !self.title.is_empty() {
            let _ = writeln!(
                out,
                "<text x=\"{}\" y=\"22\" text-anchor=\"middle\" font-size=\"15\" \
                 font-weight=\"bold\">{}</text>",
                coord(MARGIN_LEFT + plot_w / 2.0),
                escape(&self.title)
            );
        }
        let step = (high - low) / Y_TICKS as f64;
        let decimals = tick_decimals(low, step);
        for k in 0..=Y_TICKS {
            let v = low + step * k as f64;
            let y = coord(y_of(v));
            let _ = writeln!(
                out,
                "<line x1=\"{}\" y1=\"{y}\" x2=\"{}\" y2=\"{y}\" stroke=\"#e5e5e5\"/>\
                 <text x=\"{}\" y=\"{y}\" text-anchor=\"end\" dominant-baseline=\"middle\">{}</text>",
                coord(MARGIN_LEFT),
                coord(right),
                coord(MARGIN_LEFT - 6.0),
                escape(&tick_label(v, decimals))
            );
        }
        let bar_w = (group_w - 20.0) / self.series.len().max(1) as f64;
        let group_of = |c: usize| MARGIN_LEFT + plot_w * c as f64 / n as f64;
        let slot = plot_w / n as f64;
        for (c, name) in self.categories.iter().enumerate() {
            let x0 = group_of(c) + (slot - bar_w * self.series.len() as f64) / 2.0;
            for (s, series) in self.series.iter().enumerate() {
                let x = x0 + bar_w * s as f64;
                let Some(v) = series.values[c].filter(|v| v.is_finite()) else { continue };
                let y = y_of(v);
                let (top, h) = if y < zero { (y, zero - y) } else { (zero, y - zero) };
                let _ = writeln!(
                    out,
                    "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{}\"><title>{}: {}</title></rect>",
                    coord(x),
                    coord(top),
                    coord(bar_w - 2.0),
                    coord(h),
                    PALETTE[s % PALETTE.len()],
                    escape(&format!("{} / {}", name, series.name)),
                    escape(&format!("{v:.3}"))
                );
                let std = series.std.get(c).copied().unwrap_or(0.0);
                if std.is_finite() && std > 0.0 {
                    let xm = coord(x + (bar_w - 2.0) / 2.0);
                    let _ = writeln!(
                        out,
                        "<line x1=\"{xm}\" y1=\"{}\" x2=\"{xm}\" y2=\"{}\" stroke=\"#333\"/>",
                        coord(y_of(v - std)),
                        coord(y_of(v + std))
                    );
                }
            }
            let xc = coord(group_of(c) + slot / 2.0);
            let yl = coord(MARGIN_TOP + plot_h + 10.0);
            let _ = writeln!(
                out,
                "<text x=\"{xc}\" y=\"{yl}\" text-anchor=\"end\" \
                 transform=\"rotate(-35 {xc} {yl})\">{}</text>",
                escape(name)
            );
        }
        for (v, label) in &self.references {
            let y = coord(y_of(*v));
            let _ = writeln!(
                out,
                "<line x1=\"{}\" y1=\"{y}\" x2=\"{}\" y2=\"{y}\" stroke=\"#555\" \
                 stroke-dasharray=\"6 4\"/><text x=\"{}\" y=\"{y}\" dominant-baseline=\"middle\" \
                 font-size=\"11\" fill=\"#555\">{}</text>",
                coord(MARGIN_LEFT),
                coord(right),
                coord(right + 4.0),
                escape(label)
            );
        }
        let _ = writeln!(
            out,
            "<line x1=\"{l}\" y1=\"{t}\" x2=\"{l}\" y2=\"{b}\" stroke=\"#333\"/>\
             <line x1=\"{l}\" y1=\"{z}\" x2=\"{r}\" y2=\"{z}\" stroke=\"#333\"/>",
            l = coord(MARGIN_LEFT),
            t = coord(MARGIN_TOP),
            b = coord(MARGIN_TOP + plot_h),
            z = coord(zero),
            r = coord(right)
        );
        if !self.y_label.is_empty() {
            let (x, y) = (coord(16.0), coord(MARGIN_TOP + plot_h / 2.0));
            let _ = writeln!(
                out,
                "<text x=\"{x}\" y=\"{y}\" text-anchor=\"middle\" \
                 transform=\"rotate(-90 {x} {y})\">{}</text>",
                escape(&self.y_label)
            );
        }
        for (s, series) in self.series.iter().enumerate() {
            let y = MARGIN_TOP + 24.0 + 20.0 * s as f64;
            let x = right + 60.0;
            let _ = writeln!(
                out,
                "<rect x=\"{}\" y=\"{}\" width=\"12\" height=\"12\" fill=\"{}\"/>\
                 <text x=\"{}\" y=\"{}\" dominant-baseline=\"middle\">{}</text>",
                coord(x),
                coord(y - 6.0),
                PALETTE[s % PALETTE.len()],
                coord(x + 18.0),
                coord(y),
                escape(&series.name)
            );
        }
        out.push_str("</svg>\n");
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chart() -> BarChart {
        let mut c = BarChart::new(["<b>Grad</b>", "GBP"], (0.0, 1.0));
        c.series.push(BarSeries {
            name: "primary".into(),
            values: vec![Some(0.8), None],
            std: vec![0.1, 0.0],
        });
        c.references.push((0.5, "correct".into()));
        c
    }

    #[test]
    fn one_bar_per_present_value_with_escaped_labels() {
        let svg = chart().render().unwrap();
        assert_eq!(svg.matches("<title>").count(), 1);
        assert!(svg.contains("&lt;b&gt;Grad&lt;/b&gt;"));
        assert!(!svg.contains("<b>"));
        assert!(svg.contains("stroke-dasharray"));
        assert_eq!(svg, chart().render().unwrap());
        crate::raster::svg_to_png(&svg, 1.0).unwrap();
    }

    #[test]
    fn shape_errors() {
        let mut c = chart();
        c.series[0].values.pop();
        assert!(matches!(c.render(), Err(CurveError::LengthMismatch { .. })));
        assert!(BarChart::new(Vec::<String>::new(), (0.0, 1.0)).render().is_err());
        assert!(BarChart::new(["a"], (1.0, 1.0)).render().is_err());
    }
}
