//! The pass rules are applied exactly as their wording states.

use skepsis_eval::checks::{summarize, Aggregate, Direction, Outcome, PassRule, Record, StepRef};

fn record(method: &str, step_index: usize, image: usize, value: f64) -> Record {
    Record {
        method: method.into(),
        step_index,
        step: ["original", "logits"][step_index].into(),
        image,
        metric: "spearman-abs".into(),
        value,
        degenerate: false,
    }
}

fn steps() -> Vec<String> {
    vec!["original".into(), "logits".into()]
}

/// Records: per method, step 0 = 1.0 and step 1 = the given values; the control `random`
/// has mean 0 and population std 0.1 over 4 images, so its upper 95% bound is
/// 0 + 1.96 * 0.1 / sqrt(4) = 0.098.
fn records(values: &[(&str, [f64; 4])]) -> Vec<Record> {
    let mut out = Vec::new();
    for (method, v) in values.iter().chain([&("random", [0.1, -0.1, 0.1, -0.1])]) {
        for (i, &value) in v.iter().enumerate() {
            out.push(record(method, 0, i, 1.0));
            out.push(record(method, 1, i, value));
        }
    }
    out
}

fn rule(threshold: Option<f64>) -> PassRule {
    PassRule {
        metric: "spearman-abs".into(),
        step: StepRef::Index(1),
        aggregate: Aggregate::Mean,
        direction: Direction::Below,
        threshold,
        baseline: Some("random".into()),
        baseline_margin: 0.0,
    }
}

#[test]
fn below_threshold_or_below_the_baseline_bound() {
    let recs =
        records(&[("a", [0.4, 0.4, 0.4, 0.4]), ("b", [0.09, 0.09, 0.09, 0.09]), ("c", [0.6; 4])]);
    let summaries = summarize(&recs);
    let r = summaries.iter().find(|s| s.method == "random" && s.step_index == 1).unwrap();
    assert!((r.upper_95() - 0.098).abs() < 1e-12);
    let with = rule(Some(0.5));
    assert_eq!(
        with.describe(&steps()),
        "passes when the mean spearman-abs at step 'logits' is below the 'random' baseline's \
         upper 95% bound, or below 0.5"
    );
    let judge = |rule: &PassRule, m: &str| rule.judge(m, false, &steps(), &summaries, &recs);
    // 0.4 < 0.5: passes by the threshold although above the baseline bound.
    assert_eq!(judge(&with, "a").outcome, Outcome::Pass);
    assert_eq!(judge(&with, "a").value, Some(0.4));
    // 0.6: fails both.
    assert_eq!(judge(&with, "c").outcome, Outcome::Fail);
    // Without the threshold only the bound counts: 0.09 < 0.098 passes, 0.4 fails.
    let bound_only = rule(None);
    assert_eq!(judge(&bound_only, "b").outcome, Outcome::Pass);
    assert_eq!(judge(&bound_only, "a").outcome, Outcome::Fail);
    // A step that was not run, or a method without values: not applicable.
    let missing = PassRule { step: StepRef::Named("fc1".into()), ..with.clone() };
    assert_eq!(judge(&missing, "a").outcome, Outcome::NotApplicable);
    assert_eq!(judge(&with, "nobody").outcome, Outcome::NotApplicable);
}

#[test]
fn max_aggregate_at_most_a_tolerance() {
    let recs = records(&[("a", [0.0, 2e-5, 1e-4, 0.0]), ("b", [0.0, 0.0, 1.1e-4, 0.0])]);
    let summaries = summarize(&recs);
    let rule = PassRule {
        metric: "spearman-abs".into(),
        step: StepRef::Last,
        aggregate: Aggregate::Max,
        direction: Direction::AtMost,
        threshold: Some(1e-4),
        baseline: None,
        baseline_margin: 0.0,
    };
    assert_eq!(
        rule.describe(&steps()),
        "passes when the largest per-image spearman-abs at step 'logits' is at most 0.0001"
    );
    let judge = |m: &str| rule.judge(m, false, &steps(), &summaries, &recs);
    assert_eq!(judge("a").outcome, Outcome::Pass);
    assert_eq!(judge("b").outcome, Outcome::Fail);
    assert_eq!(judge("b").value, Some(1.1e-4));
}

#[test]
fn from_averages_the_steps_and_the_baseline_bounds() {
    // Steps 0 (original, 1.0) and 1 (the given values): From(0) averages both.
    let recs = records(&[("a", [0.2, 0.2, 0.2, 0.2]), ("b", [0.6; 4])]);
    let summaries = summarize(&recs);
    let averaged = PassRule { step: StepRef::From(0), ..rule(Some(0.7)) };
    assert_eq!(
        averaged.describe(&steps()),
        "passes when the mean spearman-abs at steps 'original' to 'logits' (averaged over the \
         steps) is below the 'random' baseline's upper 95% bound, or below 0.7"
    );
    let judge = |m: &str| averaged.judge(m, false, &steps(), &summaries, &recs);
    // a: (1.0 + 0.2) / 2 = 0.6 < 0.7 passes; b: (1.0 + 0.6) / 2 = 0.8 fails.
    assert_eq!((judge("a").outcome, judge("a").value), (Outcome::Pass, Some(0.6)));
    assert_eq!(judge("b").outcome, Outcome::Fail);
    // The baseline's bound is averaged the same way: random's step 0 is constant 1.0
    // (bound 1.0) and step 1 has bound 0.098, so the averaged bound is 0.549.
    let bound_only = PassRule { threshold: None, ..averaged.clone() };
    let a = bound_only.judge("a", false, &steps(), &summaries, &recs);
    assert!(a.reason.contains("bound 0.5490"), "{}", a.reason);
    assert_eq!(a.outcome, Outcome::Fail);
    // From(1) over two steps is the single last step.
    let last = PassRule { step: StepRef::From(1), ..rule(Some(0.5)) };
    assert!(last.describe(&steps()).contains("at step 'logits'"));
    assert_eq!(last.judge("a", false, &steps(), &summaries, &recs).value, Some(0.2));
    // Beyond the last step: not applicable.
    let absent = PassRule { step: StepRef::From(2), ..rule(Some(0.5)) };
    assert_eq!(
        absent.judge("a", false, &steps(), &summaries, &recs).outcome,
        Outcome::NotApplicable
    );
}

/// The default model-randomization rule on Adebayo et al.'s reference numbers (cascading,
/// MNIST CNN, Spearman on |map|, reference-protocols.md section 1) gives the paper's headline:
/// Gradient, SmoothGrad and the GradCAMs pass; Guided Backprop, IG and Gradient x Input fail.
#[test]
fn default_randomization_rule_on_the_papers_numbers() {
    let steps: Vec<String> =
        ["original", "logits", "fc1", "conv2", "conv1"].iter().map(|s| s.to_string()).collect();
    let table: [(&str, [f64; 4]); 8] = [
        ("Gradient", [0.601, 0.396, 0.106, 0.082]),
        ("SmoothGrad", [0.536, 0.330, 0.180, 0.213]),
        ("Guided Backprop", [0.888, 0.773, 0.628, 0.444]),
        ("GradCAM", [0.556, 0.344, 0.290, 0.299]),
        ("Guided GradCAM", [0.555, 0.359, 0.329, 0.282]),
        ("Integrated Gradients", [0.994, 0.993, 0.993, 0.992]),
        ("Gradient x Input", [0.993, 0.993, 0.993, 0.992]),
        ("random", [0.0, 0.0, 0.0, 0.0]),
    ];
    let mut recs = Vec::new();
    for (method, values) in &table {
        for (k, step) in steps.iter().enumerate() {
            let v = if k == 0 { 1.0 } else { values[k - 1] };
            for image in 0..10 {
                let jitter = if image % 2 == 0 { 0.01 } else { -0.01 };
                recs.push(Record {
                    method: method.to_string(),
                    step_index: k,
                    step: step.clone(),
                    image,
                    metric: "spearman-abs".into(),
                    value: v + jitter,
                    degenerate: false,
                });
            }
        }
    }
    let summaries = summarize(&recs);
    let rule = skepsis_eval::checks::randomization_default_rule(&Default::default());
    let outcome = |m: &str| rule.judge(m, false, &steps, &summaries, &recs).outcome;
    for m in ["Gradient", "SmoothGrad", "GradCAM", "Guided GradCAM"] {
        assert_eq!(outcome(m), Outcome::Pass, "{m}");
    }
    for m in ["Guided Backprop", "Integrated Gradients", "Gradient x Input"] {
        assert_eq!(outcome(m), Outcome::Fail, "{m}");
    }
}
