//! Similarity-versus-step line charts as standalone inline SVG.
//!
//! One polyline per series (mean per step), a translucent band (mean ± std) for every
//! series with a positive standard deviation, baselines drawn dashed, axes with tick labels
//! and a legend. The text is plain SVG `<text>` rendered by the browser, so no fonts or
//! plotting crates are needed. Every string is escaped and the output is deterministic.

use std::fmt::Write as _;

use crate::html::escape;

/// A fixed qualitative palette, cycled by series index: Okabe–Ito (colour-blind safe) first,
/// then Paul Tol's muted colours, so that up to 14 series stay distinct.
pub const PALETTE: [&str; 14] = [
    "#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000",
    "#882255", "#44AA99", "#999933", "#AA4499", "#332288", "#117733",
];

/// One line of a [`CurveChart`].
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    /// Legend name (escaped on rendering).
    pub name: String,
    /// Mean similarity per step; non-finite values are left out of the line.
    pub mean: Vec<f64>,
    /// Standard deviation per step (same length as `mean`, or empty for no band);
    /// non-finite or negative values count as zero.
    pub std: Vec<f64>,
    /// Whether this series is a baseline (drawn dashed).
    pub baseline: bool,
}

impl Series {
    /// A series with the given name, means and standard deviations.
    pub fn new(name: impl Into<String>, mean: Vec<f64>, std: Vec<f64>) -> Self {
        Self { name: name.into(), mean, std, baseline: false }
    }

    /// Marks the series as a baseline (drawn dashed).
    pub fn as_baseline(mut self) -> Self {
        self.baseline = true;
        self
    }
}

/// A similarity-versus-step chart.
#[derive(Clone, Debug, PartialEq)]
pub struct CurveChart {
    /// Title drawn above the plot (escaped; empty for none).
    pub title: String,
    /// Label of the y axis (escaped; empty for none).
    pub y_label: String,
    /// Names of the steps along the x axis (escaped), e.g. "original", "fc2", "conv1".
    pub x_labels: Vec<String>,
    /// The series to draw, in legend order.
    pub series: Vec<Series>,
    /// The y range `(low, high)`; values outside are clamped to it.
    pub y_range: (f64, f64),
    /// Width of the SVG in pixels (at least 320 is used).
    pub width: u32,
    /// Height of the SVG in pixels (at least 240 is used).
    pub height: u32,
}

impl CurveChart {
    /// A chart with the given steps and y range, no series, and a default 720 x 420 size.
    pub fn new<S: Into<String>>(
        x_labels: impl IntoIterator<Item = S>,
        y_range: (f64, f64),
    ) -> Self {
        Self {
            title: String::new(),
            y_label: String::new(),
            x_labels: x_labels.into_iter().map(Into::into).collect(),
            series: Vec::new(),
            y_range,
            width: 720,
            height: 420,
        }
    }

    /// Sets the title.
    pub fn with_title(mut self, title: impl Into<String>) -> Self {
        self.title = title.into();
        self
    }

    /// Sets the y-axis label.
    pub fn with_y_label(mut self, label: impl Into<String>) -> Self {
        self.y_label = label.into();
        self
    }

    /// Appends a series.
    pub fn with_series(mut self, series: Series) -> Self {
        self.series.push(series);
        self
    }

    /// Renders the chart; see [`render_svg`].
    pub fn render(&self) -> Result<String, CurveError> {
        render_svg(self)
    }
}

/// Why a [`CurveChart`] cannot be drawn.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum CurveError {
    /// The chart has no steps.
    #[error("a curve chart needs at least one step")]
    NoSteps,
    /// The y range is not finite or not increasing.
    #[error("invalid y range [{low}, {high}]: it must be finite with low < high")]
    InvalidRange {
        /// Requested lower bound.
        low: f64,
        /// Requested upper bound.
        high: f64,
    },
    /// A series does not have one mean (and one std, when given) per step.
    #[error("series {name:?} has {means} means and {stds} stds for {steps} steps")]
    LengthMismatch {
        /// The series name.
        name: String,
        /// Number of means.
        means: usize,
        /// Number of standard deviations.
        stds: usize,
        /// Number of steps.
        steps: usize,
    },
}

const MARGIN_LEFT: f64 = 70.0;
const MARGIN_TOP: f64 = 40.0;
const MARGIN_BOTTOM: f64 = 90.0;
const LEGEND_WIDTH: f64 = 180.0;
const Y_TICKS: usize = 5;

/// Formats a coordinate with two decimals, never as `-0.00`.
pub(crate) fn coord(v: f64) -> String {
    let s = format!("{v:.2}");
    if s == "-0.00" {
        "0.00".to_string()
    } else {
        s
    }
}

/// Formats a tick value with `decimals` decimals, never as a negative zero.
pub(crate) fn tick_label(v: f64, decimals: usize) -> String {
    let s = format!("{v:.decimals$}");
    if s.starts_with('-') && s[1..].chars().all(|c| c == '0' || c == '.') {
        s[1..].to_string()
    } else {
        s
    }
}

/// The fewest decimals (at most 6) that show `low + k * step` exactly.
pub(crate) fn tick_decimals(low: f64, step: f64) -> usize {
    (0..=6)
        .find(|&d| {
            let scale = 10f64.powi(d);
            [low, step].iter().all(|v| {
                let scaled = v * scale;
                (scaled - scaled.round()).abs() < 1e-6
            })
        })
        .map_or(6, |d| d as usize)
}

/// Checks a chart's shape: at least one position on the x axis, a finite increasing y range,
/// and per series `(name, values, stds)` one value per position and one std per position or
/// none. Shared by the curve and bar charts.
pub(crate) fn validate<'a>(
    positions: usize,
    (low, high): (f64, f64),
    series: impl IntoIterator<Item = (&'a str, usize, usize)>,
) -> Result<(), CurveError> {
    if positions == 0 {
        return Err(CurveError::NoSteps);
    }
    if !(low.is_finite() && high.is_finite() && low < high) {
        return Err(CurveError::InvalidRange { low, high });
    }
    for (name, means, stds) in series {
        if means != positions || !(stds == 0 || stds == positions) {
            return Err(CurveError::LengthMismatch {
                name: name.to_string(),
                means,
                stds,
                steps: positions,
            });
        }
    }
    Ok(())
}

/// Renders `chart` as a standalone `<svg>` element (deterministic: same input, same bytes).
///
/// Errors when there are no steps, when the y range is not finite and increasing, or when a
/// series does not have one mean (and one std, unless the std list is empty) per step.
pub fn render_svg(chart: &CurveChart) -> Result<String, CurveError> {
    let steps = chart.x_labels.len();
    let lengths = chart.series.iter().map(|s| (s.name.as_str(), s.mean.len(), s.std.len()));
    validate(steps, chart.y_range, lengths)?;
    let (low, high) = chart.y_range;

    let width = f64::from(chart.width.max(320));
    let height = f64::from(chart.height.max(240));
    let plot_w = width - MARGIN_LEFT - LEGEND_WIDTH;
    let plot_h = height - MARGIN_TOP - MARGIN_BOTTOM;
    let x_of = |i: usize| {
        if steps == 1 {
            MARGIN_LEFT + plot_w / 2.0
        } else {
            MARGIN_LEFT + plot_w * i as f64 / (steps - 1) as f64
        }
    };
    let y_of = |v: f64| {
        let t = ((v - low) / (high - low)).clamp(0.0, 1.0);
        MARGIN_TOP + plot_h * (1.0 - t)
    };
    let bottom = MARGIN_TOP + plot_h;
    let right = MARGIN_LEFT + plot_w;

    let mut out = String::new();
    let _ = writeln!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" \
         viewBox=\"0 0 {w} {h}\" font-family=\"sans-serif\" font-size=\"12\">",
        w = width,
        h = height
    );
    let _ = writeln!(
        out,
        "<rect x=\"0\" y=\"0\" width=\"{width}\" height=\"{height}\" fill=\"#ffffff\"/>"
    );
    if !chart.title.is_empty() {
        let _ = writeln!(
            out,
            "<text x=\"{}\" y=\"22\" text-anchor=\"middle\" font-size=\"15\" \
             font-weight=\"bold\">{}</text>",
            coord(MARGIN_LEFT + plot_w / 2.0),
            escape(&chart.title)
        );
    }

    // Grid lines and y ticks.
    let step = (high - low) / Y_TICKS as f64;
    let decimals = tick_decimals(low, step);
    out.push_str("<g class=\"y-ticks\">\n");
    for k in 0..=Y_TICKS {
        let v = low + step * k as f64;
        let y = coord(y_of(v));
        let _ = writeln!(
            out,
            "<line x1=\"{}\" y1=\"{y}\" x2=\"{}\" y2=\"{y}\" stroke=\"#e5e5e5\"/>",
            coord(MARGIN_LEFT),
            coord(right)
        );
        let _ = writeln!(
            out,
            "<text x=\"{}\" y=\"{y}\" text-anchor=\"end\" dominant-baseline=\"middle\">{}</text>",
            coord(MARGIN_LEFT - 6.0),
            escape(&tick_label(v, decimals))
        );
    }
    out.push_str("</g>\n");

    // x ticks, rotated so that long layer names fit.
    out.push_str("<g class=\"x-ticks\">\n");
    for (i, label) in chart.x_labels.iter().enumerate() {
        let x = coord(x_of(i));
        let _ = writeln!(
            out,
            "<line x1=\"{x}\" y1=\"{b}\" x2=\"{x}\" y2=\"{b2}\" stroke=\"#333333\"/>",
            b = coord(bottom),
            b2 = coord(bottom + 5.0)
        );
        let ty = coord(bottom + 10.0);
        let _ = writeln!(
            out,
            "<text x=\"{x}\" y=\"{ty}\" text-anchor=\"end\" dominant-baseline=\"hanging\" \
             transform=\"rotate(-35 {x} {ty})\">{}</text>",
            escape(label)
        );
    }
    out.push_str("</g>\n");

    // Axes.
    let _ = writeln!(
        out,
        "<path d=\"M {l} {t} L {l} {b} L {r} {b}\" fill=\"none\" stroke=\"#333333\"/>",
        l = coord(MARGIN_LEFT),
        t = coord(MARGIN_TOP),
        b = coord(bottom),
        r = coord(right)
    );
    if !chart.y_label.is_empty() {
        let cx = coord(16.0);
        let cy = coord(MARGIN_TOP + plot_h / 2.0);
        let _ = writeln!(
            out,
            "<text x=\"{cx}\" y=\"{cy}\" text-anchor=\"middle\" \
             transform=\"rotate(-90 {cx} {cy})\">{}</text>",
            escape(&chart.y_label)
        );
    }

    // Bands first, so that every line is drawn on top of every band.
    out.push_str("<g class=\"bands\">\n");
    for (si, s) in chart.series.iter().enumerate() {
        if let Some(points) = band_points(s, &x_of, &y_of) {
            let _ = writeln!(
                out,
                "<polygon points=\"{points}\" fill=\"{}\" fill-opacity=\"0.18\" stroke=\"none\"/>",
                PALETTE[si % PALETTE.len()]
            );
        }
    }
    out.push_str("</g>\n");

    out.push_str("<g class=\"lines\">\n");
    for (si, s) in chart.series.iter().enumerate() {
        let points: Vec<String> = s
            .mean
            .iter()
            .enumerate()
            .filter(|(_, m)| m.is_finite())
            .map(|(i, m)| format!("{},{}", coord(x_of(i)), coord(y_of(*m))))
            .collect();
        let dash = if s.baseline { " stroke-dasharray=\"6 4\"" } else { "" };
        let _ = writeln!(
            out,
            "<polyline points=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"2\"{dash}>\
             <title>{}</title></polyline>",
            points.join(" "),
            PALETTE[si % PALETTE.len()],
            escape(&s.name)
        );
    }
    out.push_str("</g>\n");

    // Legend.
    out.push_str("<g class=\"legend\">\n");
    let lx = right + 16.0;
    for (si, s) in chart.series.iter().enumerate() {
        let y = MARGIN_TOP + 8.0 + 20.0 * si as f64;
        let dash = if s.baseline { " stroke-dasharray=\"6 4\"" } else { "" };
        let _ = writeln!(
            out,
            "<line x1=\"{}\" y1=\"{yc}\" x2=\"{}\" y2=\"{yc}\" stroke=\"{}\" \
             stroke-width=\"2\"{dash}/>",
            coord(lx),
            coord(lx + 24.0),
            PALETTE[si % PALETTE.len()],
            yc = coord(y)
        );
        let _ = writeln!(
            out,
            "<text x=\"{}\" y=\"{}\" dominant-baseline=\"middle\">{}</text>",
            coord(lx + 30.0),
            coord(y),
            escape(&s.name)
        );
    }
    out.push_str("</g>\n</svg>");
    Ok(out)
}

/// The band polygon (mean + std forwards, then mean - std backwards) over the steps with a
/// finite mean, or `None` when the series has no positive finite std there.
fn band_points(
    s: &Series,
    x_of: &impl Fn(usize) -> f64,
    y_of: &impl Fn(f64) -> f64,
) -> Option<String> {
    let sd = |i: usize| s.std.get(i).copied().filter(|v| v.is_finite() && *v > 0.0).unwrap_or(0.0);
    let idx: Vec<usize> = (0..s.mean.len()).filter(|&i| s.mean[i].is_finite()).collect();
    if !idx.iter().any(|&i| sd(i) > 0.0) {
        return None;
    }
    let upper =
        idx.iter().map(|&i| format!("{},{}", coord(x_of(i)), coord(y_of(s.mean[i] + sd(i)))));
    let lower =
        idx.iter().rev().map(|&i| format!("{},{}", coord(x_of(i)), coord(y_of(s.mean[i] - sd(i)))));
    Some(upper.chain(lower).collect::<Vec<_>>().join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVIL: &str = "<script>alert(\"x\" + 'y')</script>";

    fn chart() -> CurveChart {
        CurveChart::new(["original", "fc2", "conv2", "conv1"], (0.0, 1.0))
            .with_title("Spearman rank correlation")
            .with_y_label("similarity")
            .with_series(Series::new(
                "gradient",
                vec![1.0, 0.6, 0.3, 0.1],
                vec![0.0, 0.1, 0.05, 0.02],
            ))
            .with_series(Series::new("guided backprop", vec![1.0, 0.95, 0.9, 0.92], vec![]))
            .with_series(Series::new("random baseline", vec![0.02; 4], vec![0.01; 4]).as_baseline())
    }

    /// Checks that every tag is closed in order (the text is escaped, so every `<` opens a
    /// tag) and returns the number of elements.
    fn check_balanced(svg: &str) -> usize {
        let mut stack: Vec<String> = Vec::new();
        let mut elements = 0;
        let mut rest = svg;
        while let Some(start) = rest.find('<') {
            let end = rest[start..].find('>').expect("unterminated tag") + start;
            let tag = &rest[start + 1..end];
            if let Some(name) = tag.strip_prefix('/') {
                assert_eq!(stack.pop().as_deref(), Some(name), "mismatched </{name}>");
            } else {
                elements += 1;
                let name = tag.split_whitespace().next().unwrap_or("").trim_end_matches('/');
                if !tag.ends_with('/') {
                    stack.push(name.to_string());
                }
            }
            rest = &rest[end + 1..];
        }
        assert!(stack.is_empty(), "unclosed: {stack:?}");
        elements
    }

    #[test]
    fn well_formed_with_one_polyline_per_series() {
        let svg = render_svg(&chart()).unwrap();
        assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
        assert!(svg.ends_with("</svg>"));
        assert!(check_balanced(&svg) > 20);
        assert_eq!(svg.matches("<polyline ").count(), 3);
        // "guided backprop" has no std: two bands only.
        assert_eq!(svg.matches("<polygon ").count(), 2);
        // The baseline is dashed, both in the plot and in the legend.
        assert_eq!(svg.matches("stroke-dasharray").count(), 2);
        for step in ["original", "fc2", "conv2", "conv1"] {
            assert!(svg.contains(&format!(">{step}</text>")));
        }
        assert!(svg.contains(">0.0</text>") && svg.contains(">1.0</text>"));
        // The first series starts at the top-left corner of the plot.
        assert!(svg.contains("<polyline points=\"70.00,40.00 "));
    }

    #[test]
    fn deterministic() {
        assert_eq!(render_svg(&chart()).unwrap(), render_svg(&chart()).unwrap());
    }

    #[test]
    fn all_text_is_escaped() {
        let mut c = CurveChart::new([EVIL, "b"], (0.0, 1.0))
            .with_title(EVIL)
            .with_y_label(EVIL)
            .with_series(Series::new(EVIL, vec![0.5, 0.5], vec![0.1, 0.1]));
        c.series.push(Series::new("ok", vec![0.1, 0.2], vec![]).as_baseline());
        let svg = render_svg(&c).unwrap();
        assert!(!svg.contains("<script"), "{svg}");
        assert!(!svg.contains("\"x\"") && !svg.contains("'y'"));
        let escaped = escape(EVIL);
        // title, y label, x label, polyline <title>, legend
        assert_eq!(svg.matches(&escaped).count(), 5);
        check_balanced(&svg);
    }

    #[test]
    fn non_finite_values_and_clamping() {
        let c = CurveChart::new(["a", "b", "c"], (-1.0, 1.5)).with_series(Series::new(
            "s",
            vec![f64::NAN, 5.0, -0.5],
            vec![f64::INFINITY, -1.0, f64::NAN],
        ));
        let svg = render_svg(&c).unwrap();
        // NaN mean left out; 5.0 clamped to the top; no positive finite std, so no band.
        assert_eq!(svg.matches("<polygon ").count(), 0);
        let line = svg.split("<polyline points=\"").nth(1).unwrap();
        let points = line.split('"').next().unwrap();
        assert_eq!(points.split(' ').count(), 2);
        assert!(points.contains(",40.00"));
        assert!(!svg.contains("NaN") && !svg.contains("inf"));
        assert!(svg.contains(">0.0</text>") && !svg.contains("-0.0<"));
        check_balanced(&svg);
    }

    #[test]
    fn single_step_is_centered() {
        let c = CurveChart::new(["only"], (0.0, 1.0)).with_series(Series::new(
            "s",
            vec![0.5],
            vec![0.1],
        ));
        let svg = c.render().unwrap();
        assert_eq!(svg.matches("<polyline ").count(), 1);
        assert_eq!(svg.matches("<polygon ").count(), 1);
        check_balanced(&svg);
    }

    #[test]
    fn invalid_inputs_are_errors() {
        assert_eq!(
            render_svg(&CurveChart::new(Vec::<String>::new(), (0.0, 1.0))),
            Err(CurveError::NoSteps)
        );
        for range in [(1.0, 1.0), (1.0, 0.0), (f64::NAN, 1.0), (0.0, f64::INFINITY)] {
            assert!(matches!(
                render_svg(&CurveChart::new(["a"], range)),
                Err(CurveError::InvalidRange { .. })
            ));
        }
        let bad_mean = CurveChart::new(["a", "b"], (0.0, 1.0)).with_series(Series::new(
            "s",
            vec![0.1],
            vec![],
        ));
        assert!(matches!(
            render_svg(&bad_mean),
            Err(CurveError::LengthMismatch { means: 1, stds: 0, steps: 2, .. })
        ));
        let bad_std = CurveChart::new(["a", "b"], (0.0, 1.0)).with_series(Series::new(
            "s",
            vec![0.1, 0.2],
            vec![0.1],
        ));
        assert!(render_svg(&bad_std).is_err());
    }
}
