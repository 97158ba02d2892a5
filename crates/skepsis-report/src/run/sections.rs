//! One report section per check, with the figures the papers use: similarity-vs-layer
//! curves and the cascade grid (Adebayo et al. 2018, Figs. 2-4), side-by-side maps and bars
//! for data randomization (Fig. 5), input-invariance pairs with their difference (Kindermans
//! et al. 2017, Fig. 1), random-logit pairs (Sixt et al. 2020), rank-1 convergence curves,
//! and SMERF's primary vs secondary focus with example maps and ground-truth boxes (Kim et
//! al. 2022). Every number drawn comes from the stage's records.

use skepsis_eval::checks::examples::{read_example_inputs, read_step_examples, COMPARED, ORIGINAL};
use skepsis_eval::checks::CheckReport;
use skepsis_eval::smerf::{read_examples, SmerfReport};

use super::figures::{difference_tile, file_stem, input_tile, map_tile, FigureSink};
use super::load::LoadedStage;
use super::ReportError;
use crate::bars::{BarChart, BarSeries};
use crate::curves::{CurveChart, Series};
use crate::html::{Cell, Section, Table};
use crate::mosaic::{Mosaic, Outline, Tile};
use crate::{Colormap, Rendering};

/// Example images drawn per figure.
const EXAMPLE_IMAGES: usize = 2;
/// Display size of a map tile in pixels.
const TILE: u32 = 84;

const GRAY: Rendering = Rendering::Magnitude(Colormap::Gray);

/// The section of a check stage.
pub fn check_section(
    s: &LoadedStage,
    report: &CheckReport,
    sink: &mut FigureSink,
) -> Result<Section, ReportError> {
    let mut section = Section::new(s.stage.title.clone());
    if let Some(model) = &s.stage.model {
        section = section.paragraph(format!("Model: {model}. Seed {}.", report.seed));
    }
    for note in &report.notes {
        section = section.paragraph(note.clone());
    }
    if let Some(reason) = &report.refusal {
        section = section.paragraph(format!("The check refused to compare maps: {reason}"));
        return Ok(section.table(verdict_table(report)));
    }
    let id = file_stem(&s.stage.id);
    match report.check.as_str() {
        "model-randomization" => {
            for fig in curves(report, &id, "similarity to the trained model's map", sink)? {
                section = section.figure(fig);
            }
            for i in 0..EXAMPLE_IMAGES {
                if let Some(m) = cascade(s, report, i)? {
                    let caption = format!(
                        "Cascade of image {i}: the input, the trained model's map, then the map \
                         after each randomization step ({}). |map| summed over channels, gray, \
                         scaled per map.",
                        report.steps[1..].join(" → ")
                    );
                    section =
                        section.figure(sink.mosaic(&format!("{id}-cascade-{i}"), &m, &caption)?);
                }
            }
        }
        "rank1" => {
            for fig in curves(report, &id, "mean |cosine| between relevance vectors", sink)? {
                section = section.figure(fig);
            }
        }
        "input-invariance" => {
            if let Some(m) = pairs(s, report, PairKind::InputInvariance)? {
                let caption = "Each method on x (trained network) and on x + m (first-layer bias \
                               compensating the shift m): the two maps and |difference|, scaled by \
                               the first map's largest value (black: identical).";
                section = section.figure(sink.mosaic(&format!("{id}-pairs"), &m, caption)?);
            }
        }
        "data-randomization" | "random-logit" => {
            let kind = if report.check == "random-logit" {
                PairKind::RandomLogit
            } else {
                PairKind::DataRandomization
            };
            if let Some(m) = pairs(s, report, kind)? {
                let caption = match kind {
                    PairKind::DataRandomization => {
                        "Maps of the trained model next to the maps of the same architecture \
                         trained on permuted labels, same images and class."
                    }
                    _ => "Maps for the explained class next to maps for a random other class.",
                };
                section = section.figure(sink.mosaic(&format!("{id}-maps"), &m, caption)?);
            }
            for fig in bars(report, &id, sink)? {
                section = section.figure(fig);
            }
        }
        _ => {}
    }
    Ok(section.table(verdict_table(report)))
}

/// Verdicts of one check with their values and reasons.
fn verdict_table(report: &CheckReport) -> Table {
    let mut t = Table::new(["method", "verdict", "value", "reason"])
        .with_caption(format!("Rule: {}", report.rule));
    for v in &report.verdicts {
        let class = match v.outcome {
            skepsis_eval::checks::Outcome::Pass => "pass",
            skepsis_eval::checks::Outcome::Fail => "fail",
            _ => "na",
        };
        let name = if v.baseline { format!("{} (control)", v.method) } else { v.method.clone() };
        t = t.row([
            Cell::from(name),
            Cell::styled(v.outcome.label(), class, v.rule.clone()),
            Cell::styled(v.value.map_or_else(String::new, |x| format!("{x:.4}")), "num", ""),
            Cell::from(v.reason.clone()),
        ]);
    }
    t
}

/// One similarity-vs-step chart per metric, baselines dashed.
fn curves(
    report: &CheckReport,
    id: &str,
    y_label: &str,
    sink: &mut FigureSink,
) -> Result<Vec<crate::Figure>, ReportError> {
    let metrics = summary_metrics(report);
    let mut figures = Vec::new();
    for metric in metrics {
        let mut series = Vec::new();
        let (mut low, mut high) = (0f64, 1f64);
        for m in &report.methods {
            let (mut mean, mut std) = (Vec::new(), Vec::new());
            for step in &report.steps {
                let s = report.summary(&m.label, step, metric);
                mean.push(s.map_or(f64::NAN, |s| s.mean));
                std.push(s.map_or(0.0, |s| s.std));
            }
            for (m, s) in mean.iter().zip(&std) {
                if m.is_finite() {
                    low = low.min(m - s);
                    high = high.max(m + s);
                }
            }
            let line = Series::new(m.label.clone(), mean, std);
            series.push(if m.baseline { line.as_baseline() } else { line });
        }
        let mut chart = CurveChart::new(report.steps.clone(), nice_range(metric, low, high))
            .with_title(format!("{metric} vs step"))
            .with_y_label(format!("{y_label} ({metric})"));
        chart.series = series;
        let caption = format!(
            "Mean over {} images of {metric} per step, band = ±1 std; dashed = control \
             baselines (a random map, an edge detector).",
            report.records.iter().map(|r| r.image).max().map_or(0, |m| m + 1)
        );
        figures.push(sink.svg(&format!("{id}-{metric}"), chart.render()?, &caption)?);
    }
    Ok(figures)
}

/// The y range of a chart of `metric`: `[0, 1]` or `[-1, 1]` for similarities bounded by 1
/// (correlations, SSIM, cosines, top-k), otherwise the data's range rounded outwards.
fn nice_range(metric: &str, low: f64, high: f64) -> (f64, f64) {
    let unbounded = ["mse", "difference", "emprt"].iter().any(|u| metric.contains(u));
    if !unbounded {
        return (if low >= -0.1 { 0.0 } else { -1.0 }, 1.0);
    }
    let (low, high) = ((low * 10.0).floor() / 10.0, (high * 10.0).ceil() / 10.0);
    if high > low {
        (low, high)
    } else {
        (low, low + 1.0)
    }
}

/// Mean per method of the first metric, with ± std whiskers; the random map's mean is the
/// reference line.
fn bars(
    report: &CheckReport,
    id: &str,
    sink: &mut FigureSink,
) -> Result<Vec<crate::Figure>, ReportError> {
    let Some(step) = report.steps.first() else { return Ok(Vec::new()) };
    let metrics = summary_metrics(report);
    let mut figures = Vec::new();
    for metric in metrics {
        let labels: Vec<String> = report.methods.iter().map(|m| m.label.clone()).collect();
        let stats: Vec<_> = labels.iter().map(|l| report.summary(l, step, metric)).collect();
        let (mut low, mut high) = (0f64, 1f64);
        for s in stats.iter().flatten() {
            low = low.min(s.mean - s.std);
            high = high.max(s.mean + s.std);
        }
        let mut chart = BarChart::new(labels, nice_range(metric, low, high));
        chart.title = format!("{metric}: trained vs {}", report.steps.join(", "));
        chart.y_label = metric.to_string();
        chart.series.push(BarSeries {
            name: metric.to_string(),
            values: stats.iter().map(|s| s.map(|s| s.mean)).collect(),
            std: stats.iter().map(|s| s.map_or(0.0, |s| s.std)).collect(),
        });
        if let Some(r) = report.summary(skepsis_eval::checks::RANDOM_MAP, step, metric) {
            chart.references.push((r.mean, "random map".into()));
        }
        let caption = format!("Mean {metric} per method (whiskers ±1 std).");
        figures.push(sink.svg(&format!("{id}-{metric}-bars"), chart.render()?, &caption)?);
    }
    Ok(figures)
}

/// The cascade grid of image `i`: rows = methods, columns = input, original, each step.
fn cascade(s: &LoadedStage, report: &CheckReport, i: usize) -> Result<Option<Mosaic>, ReportError> {
    let inputs = read_example_inputs(&s.dir)?;
    if inputs.get(ORIGINAL).is_none_or(|t| t.dims()[0] <= i) {
        return Ok(None);
    }
    let steps: Vec<_> =
        (0..report.steps.len()).map(|k| read_step_examples(&s.dir, k)).collect::<Result<_, _>>()?;
    let mut columns = vec!["input".to_string()];
    columns.extend(report.steps.iter().cloned());
    let mut rows = Vec::new();
    for m in &report.methods {
        let mut tiles = vec![input_tile(inputs.get(ORIGINAL), i)];
        for (k, step) in steps.iter().enumerate() {
            let role = if k == 0 { ORIGINAL } else { COMPARED };
            tiles.push(map_tile(step.get(&format!("{role}/{}", m.label)), i, GRAY));
        }
        rows.push((m.label.clone(), tiles));
    }
    Ok(Some(Mosaic {
        title: format!("{} — image {i}", s.stage.title),
        columns,
        rows,
        tile_size: TILE,
    }))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum PairKind {
    DataRandomization,
    RandomLogit,
    InputInvariance,
}

/// Side-by-side maps of the one-step checks for the first example images.
fn pairs(
    s: &LoadedStage,
    report: &CheckReport,
    kind: PairKind,
) -> Result<Option<Mosaic>, ReportError> {
    let inputs = read_example_inputs(&s.dir)?;
    let step = read_step_examples(&s.dir, 0)?;
    let Some(first) = inputs.get(ORIGINAL) else { return Ok(None) };
    let images = first.dims()[0].min(EXAMPLE_IMAGES);
    let (a, b) = match kind {
        PairKind::DataRandomization => ("trained", "random labels"),
        PairKind::RandomLogit => ("explained class", "random class"),
        PairKind::InputInvariance => ("map(x)", "map(x + m)"),
    };
    let mut columns = Vec::new();
    for i in 0..images {
        columns.push(format!("input {i}"));
        if kind == PairKind::InputInvariance {
            columns.push(format!("x + m {i}"));
        }
        columns.push(a.to_string());
        columns.push(b.to_string());
        if kind == PairKind::InputInvariance {
            columns.push("|difference|".to_string());
        }
    }
    let rendering = if kind == PairKind::InputInvariance { Rendering::Signed } else { GRAY };
    let mut rows = Vec::new();
    for m in &report.methods {
        let ma = step.get(&format!("{ORIGINAL}/{}", m.label));
        let mb = step.get(&format!("{COMPARED}/{}", m.label));
        let mut tiles = Vec::new();
        for i in 0..images {
            tiles.push(input_tile(Some(first), i));
            if kind == PairKind::InputInvariance {
                tiles.push(input_tile(inputs.get(COMPARED), i));
            }
            tiles.push(map_tile(ma, i, rendering));
            tiles.push(map_tile(mb, i, rendering));
            if kind == PairKind::InputInvariance {
                tiles.push(difference_tile(ma, mb, i));
            }
        }
        rows.push((m.label.clone(), tiles));
    }
    Ok(Some(Mosaic { title: s.stage.title.clone(), columns, rows, tile_size: TILE }))
}

/// The SMERF section: training and accuracy, primary vs secondary AFL per method and group,
/// per-setup verdicts, and example maps with their ground-truth boxes.
pub fn smerf_section(
    s: &LoadedStage,
    report: &SmerfReport,
    sink: &mut FigureSink,
) -> Result<Section, ReportError> {
    let mut section = Section::new(s.stage.title.clone())
        .paragraph(format!("{}. Pass rule: {}", report.citation, report.pass_rule));
    let mut acc =
        Table::new(["setup", "name", "group", "model", "train acc.", "test acc.", "scored"])
            .with_caption("Models (retrained until the accuracy threshold)");
    for setup in &report.setups {
        let best = setup.training.attempts.iter().max_by(|a, b| {
            a.test_accuracy.partial_cmp(&b.test_accuracy).unwrap_or(std::cmp::Ordering::Equal)
        });
        acc = acc.row([
            Cell::from(setup.setup.clone()),
            Cell::from(setup.name.clone()),
            Cell::from(setup.complexity.clone()),
            Cell::from(setup.training.architecture.clone()),
            Cell::styled(
                best.map_or("-".into(), |a| format!("{:.3}", a.train_accuracy)),
                "num",
                "",
            ),
            Cell::styled(best.map_or("-".into(), |a| format!("{:.3}", a.test_accuracy)), "num", ""),
            Cell::from(if setup.scores.is_some() { "yes" } else { "no (threshold missed)" }),
        ]);
    }
    section = section.table(acc);
    let id = file_stem(&s.stage.id);
    for group in ["simple", "complex"] {
        let rows: Vec<_> =
            report.groups.iter().filter(|g| g.group == group && g.scored > 0).collect();
        if rows.is_empty() {
            continue;
        }
        let mut chart = BarChart::new(rows.iter().map(|g| g.method.clone()), (0.0, 1.0));
        chart.title = format!("SMERF {group} setups: attribution focus");
        chart.y_label = "AFL (mean over scored setups)".into();
        chart.series.push(BarSeries {
            name: "primary (must use)".into(),
            values: rows.iter().map(|g| g.mean_primary_afl).collect(),
            std: Vec::new(),
        });
        chart.series.push(BarSeries {
            name: "secondary (must not)".into(),
            values: rows.iter().map(|g| g.mean_secondary_afl).collect(),
            std: Vec::new(),
        });
        chart.references.push((0.5, "correct (0.5)".into()));
        let caption = format!(
            "Primary vs secondary attribution focus level per method on the {group} setups \
             (Kim et al. 2022, Fig. 4)."
        );
        section =
            section.figure(sink.svg(&format!("{id}-{group}-afl"), chart.render()?, &caption)?);
    }
    for setup in &report.setups {
        let Some(scores) = &setup.scores else { continue };
        if scores.examples.is_empty() {
            continue;
        }
        let pixels = read_examples(&s.dir, &setup.setup)?;
        let mut columns = Vec::new();
        let mut image_row = Vec::new();
        for (i, ex) in scores.examples.iter().enumerate() {
            columns.push(format!("{} ({})", ex.bucket_name, ex.label));
            let outlines = outlines(ex);
            image_row.push(input_tile(pixels.get("image"), i).map(|t| Tile { outlines, ..t }));
        }
        let mut rows = vec![("input".to_string(), image_row)];
        for m in &scores.methods {
            let maps = pixels.get(&format!("map/{}", m.method));
            let tiles = (0..scores.examples.len())
                .map(|i| {
                    let mut t = map_tile(maps, i, GRAY)?;
                    t.outlines = outlines(&scores.examples[i]);
                    Some(t)
                })
                .collect();
            rows.push((format!("{} ({})", m.method, m.verdict.status.word()), tiles));
        }
        let mosaic = Mosaic {
            title: format!("SMERF {} {}", setup.setup, setup.name),
            columns,
            rows,
            tile_size: TILE,
        };
        let caption = "Example maps (max |.| over channels, scaled per map) with the ground-truth \
                       regions: green = primary (the model must use it), red = secondary (it must \
                       not).";
        section = section.figure(sink.mosaic(
            &format!("{id}-{}-examples", setup.setup),
            &mosaic,
            caption,
        )?);
    }
    Ok(section)
}

/// The ground-truth boxes of a SMERF example: green primary, red secondary.
fn outlines(example: &skepsis_eval::smerf::SmerfExample) -> Vec<Outline> {
    example
        .boxes
        .iter()
        .map(|b| Outline {
            y0: b.y0,
            x0: b.x0,
            y1: b.y1,
            x1: b.x1,
            color: if b.kind == "primary" { "#00c000" } else { "#e00000" },
        })
        .collect()
}

/// The metrics of `report`'s summaries, each once, in order of first appearance.
fn summary_metrics(report: &CheckReport) -> Vec<&str> {
    let mut metrics: Vec<&str> = Vec::new();
    for s in &report.summaries {
        if !metrics.contains(&s.metric.as_str()) {
            metrics.push(&s.metric);
        }
    }
    metrics
}
