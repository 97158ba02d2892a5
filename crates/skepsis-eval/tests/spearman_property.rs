//! Property test: the O(n log n) Spearman equals a naive O(n^2) rank implementation.

use proptest::prelude::*;
use skepsis_eval::similarity::{average_ranks, spearman};

/// Naive average rank: 1 + #{smaller} + (#{equal} - 1) / 2.
fn naive_ranks(values: &[f64]) -> Vec<f64> {
    values
        .iter()
        .map(|&v| {
            let smaller = values.iter().filter(|&&u| u < v).count() as f64;
            let equal = values.iter().filter(|&&u| u == v).count() as f64;
            1.0 + smaller + (equal - 1.0) / 2.0
        })
        .collect()
}

/// Textbook Pearson correlation.
fn naive_pearson(x: &[f64], y: &[f64]) -> f64 {
    let n = x.len() as f64;
    let (mx, my) = (x.iter().sum::<f64>() / n, y.iter().sum::<f64>() / n);
    let cov: f64 = x.iter().zip(y).map(|(a, b)| (a - mx) * (b - my)).sum();
    let vx: f64 = x.iter().map(|a| (a - mx) * (a - mx)).sum();
    let vy: f64 = y.iter().map(|b| (b - my) * (b - my)).sum();
    cov / (vx * vy).sqrt()
}

/// Pairs of equal-length vectors drawn from few distinct values (many ties), some negative.
fn tied_pairs() -> impl Strategy<Value = (Vec<f64>, Vec<f64>)> {
    (2usize..80).prop_flat_map(|n| {
        let value = (-4i32..5).prop_map(|k| k as f64 * 0.5);
        (prop::collection::vec(value.clone(), n), prop::collection::vec(value, n))
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn ranks_match_naive(values in prop::collection::vec(-3i32..4, 1..100)) {
        let values: Vec<f64> = values.into_iter().map(f64::from).collect();
        prop_assert_eq!(average_ranks(&values).unwrap(), naive_ranks(&values));
    }

    #[test]
    fn spearman_matches_naive((a, b) in tied_pairs()) {
        let ours = spearman(&a, &b).unwrap();
        let constant = |v: &[f64]| v.iter().all(|&x| x == v[0]);
        if constant(&a) || constant(&b) {
            prop_assert!(ours.is_degenerate());
            prop_assert!(ours.value == 0.0 || ours.value == 1.0);
        } else {
            let naive = naive_pearson(&naive_ranks(&a), &naive_ranks(&b));
            prop_assert!(ours.degeneracy.is_none());
            prop_assert!((ours.value - naive).abs() < 1e-12, "{} vs {}", ours.value, naive);
        }
    }

    #[test]
    fn spearman_matches_naive_on_continuous_values(
        a in prop::collection::vec(-1e3f64..1e3, 3..60),
        seed in 0u64..1000,
    ) {
        // b: a scrambled, partly monotone transform of a, so values are mostly distinct.
        let b: Vec<f64> = a.iter().enumerate()
            .map(|(i, v)| if (i as u64 + seed) % 3 == 0 { -v } else { v * v })
            .collect();
        let ours = spearman(&a, &b).unwrap();
        if !ours.is_degenerate() {
            let naive = naive_pearson(&naive_ranks(&a), &naive_ranks(&b));
            prop_assert!((ours.value - naive).abs() < 1e-12);
        }
    }
}
