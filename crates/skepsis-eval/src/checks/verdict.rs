//! Pass rules: each check states the rule it applies, in words, and keeps it a parameter so a
//! reader who disagrees can re-judge the same numbers.

use serde::{Deserialize, Serialize};

use super::report::{Outcome, Record, Summary, Verdict};

/// Which step a rule looks at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StepRef {
    /// The step at this position (model randomization: 1 = the first randomized model).
    Index(usize),
    /// The last step (the fully randomized model, the lowest rank-1 layer).
    Last,
    /// The step with this name.
    Named(String),
    /// Every step from this position to the last, averaged: the area under the similarity
    /// curve (model randomization: 1 = every randomized model).
    From(usize),
}

/// How the per-image values of the chosen step are reduced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Aggregate {
    /// Mean over images.
    Mean,
    /// Largest value over images (input invariance: every image must agree).
    Max,
}

/// Which side of the threshold passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Direction {
    /// Passes when the value is strictly below the threshold (similarities that must drop).
    Below,
    /// Passes when the value is strictly above the threshold (eMPRT's entropy rise).
    Above,
    /// Passes when the value is at most the threshold (tolerances).
    AtMost,
}

/// A pass rule: `aggregate(metric at step)` compared with a fixed threshold and, optionally,
/// with a baseline method's 95% confidence bound. The method passes when either comparison
/// passes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PassRule {
    /// Metric name as in the records.
    pub metric: String,
    /// The step judged.
    pub step: StepRef,
    /// Reduction over images.
    pub aggregate: Aggregate,
    /// Which side passes.
    pub direction: Direction,
    /// Fixed threshold (`None`: only the baseline comparison).
    pub threshold: Option<f64>,
    /// Label of a baseline method: passing also when the value is beyond its 95% bound
    /// (`Below`: under `mean + 1.96 std / sqrt(n) + margin`; `Above`: over
    /// `mean - 1.96 std / sqrt(n) - margin`).
    pub baseline: Option<String>,
    /// Added to the baseline's bound (0 for the randomization checks).
    pub baseline_margin: f64,
}

impl PassRule {
    /// The judged steps as a range of positions (`None` when absent).
    fn step_range(&self, steps: &[String]) -> Option<std::ops::Range<usize>> {
        let one = |i: usize| i..i + 1;
        match &self.step {
            StepRef::Index(i) => (*i < steps.len()).then(|| one(*i)),
            StepRef::Last => steps.len().checked_sub(1).map(one),
            StepRef::Named(name) => steps.iter().position(|s| s == name).map(one),
            StepRef::From(i) => (*i < steps.len()).then_some(*i..steps.len()),
        }
    }

    fn step_words(&self, steps: &[String]) -> String {
        match self.step_range(steps) {
            Some(r) if r.len() == 1 => format!("step '{}'", steps[r.start]),
            Some(r) => format!(
                "steps '{}' to '{}' (averaged over the steps)",
                steps[r.start],
                steps[r.end - 1]
            ),
            None => format!("step {:?} (absent)", self.step),
        }
    }

    /// The rule in words, e.g. "passes when the mean spearman-abs at step 'logits' is below
    /// the random baseline's upper 95% bound, or below 0.5".
    pub fn describe(&self, steps: &[String]) -> String {
        let agg = match self.aggregate {
            Aggregate::Mean => "mean",
            Aggregate::Max => "largest per-image",
        };
        let (side, bound) = match self.direction {
            Direction::Below => ("below", "upper"),
            Direction::Above => ("above", "lower"),
            Direction::AtMost => ("at most", "upper"),
        };
        let mut parts = Vec::new();
        if let Some(b) = &self.baseline {
            let margin = if self.baseline_margin != 0.0 {
                format!(" plus a margin of {}", self.baseline_margin)
            } else {
                String::new()
            };
            parts.push(format!("{side} the '{b}' baseline's {bound} 95% bound{margin}"));
        }
        if let Some(t) = self.threshold {
            parts.push(format!("{side} {t}"));
        }
        format!(
            "passes when the {agg} {} at {} is {}",
            self.metric,
            self.step_words(steps),
            parts.join(", or ")
        )
    }

    /// The verdict on `method` from the summaries (and records, for `Max`).
    pub fn judge(
        &self,
        method: &str,
        baseline: bool,
        steps: &[String],
        summaries: &[Summary],
        records: &[Record],
    ) -> Verdict {
        let rule = self.describe(steps);
        let verdict = |outcome, value, reason: String| Verdict {
            method: method.to_string(),
            baseline,
            outcome,
            value,
            rule: rule.clone(),
            reason,
        };
        let Some(range) = self.step_range(steps) else {
            return verdict(Outcome::NotApplicable, None, "the rule's step was not run".into());
        };
        // A method's summaries at every judged step (None when one is missing).
        let find = |m: &str| -> Option<Vec<&Summary>> {
            range
                .clone()
                .map(|step| {
                    summaries
                        .iter()
                        .find(|s| s.method == m && s.step_index == step && s.metric == self.metric)
                })
                .collect()
        };
        let Some(own) = find(method) else {
            return verdict(
                Outcome::NotApplicable,
                None,
                format!("no {} values at {}", self.metric, self.step_words(steps)),
            );
        };
        let mean_of = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
        let value = match self.aggregate {
            Aggregate::Mean => mean_of(&own.iter().map(|s| s.mean).collect::<Vec<_>>()),
            Aggregate::Max => records
                .iter()
                .filter(|r| {
                    r.method == method && range.contains(&r.step_index) && r.metric == self.metric
                })
                .map(|r| r.value)
                .fold(f64::NEG_INFINITY, f64::max),
        };
        let beats = |limit: f64| match self.direction {
            Direction::Below => value < limit,
            Direction::Above => value > limit,
            Direction::AtMost => value <= limit,
        };
        let mut reasons = Vec::new();
        let mut pass = false;
        if let Some(t) = self.threshold {
            pass |= beats(t);
            reasons.push(format!("{value:.4} vs threshold {t}"));
        }
        if let Some(b) = &self.baseline {
            match find(b) {
                Some(base) => {
                    let bounds: Vec<f64> = base
                        .iter()
                        .map(|s| match self.direction {
                            Direction::Above => s.lower_95() - self.baseline_margin,
                            _ => s.upper_95() + self.baseline_margin,
                        })
                        .collect();
                    let bound = mean_of(&bounds);
                    pass |= beats(bound);
                    reasons.push(format!("{value:.4} vs '{b}' bound {bound:.4}"));
                }
                None => reasons.push(format!("baseline '{b}' has no values")),
            }
        }
        if self.threshold.is_none() && reasons.iter().all(|r| r.contains("no values")) {
            return verdict(Outcome::NotApplicable, Some(value), reasons.join("; "));
        }
        let outcome = if pass { Outcome::Pass } else { Outcome::Fail };
        verdict(outcome, Some(value), reasons.join("; "))
    }
}
