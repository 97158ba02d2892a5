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
