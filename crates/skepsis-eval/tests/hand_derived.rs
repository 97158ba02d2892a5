//! Hand-derived cases for the similarity metrics and normalizations: each expected number is
//! derived in a comment next to it.

use skepsis_eval::similarity::{
    average_ranks, cosine, discrete_entropy, entropy_rise, hog_similarity, mse, pearson, spearman,
    ssim, top_k_intersection, HogOptions, SsimOptions, TopK,
};
use skepsis_eval::{
    compare, compare_batch, normalize, CompareOptions, Degeneracy, EvalError, MapDims, Metric,
    Normalization,
};

const TOL: f64 = 1e-12;

/// A smooth, non-symmetric 16x16 test map with distinct values.
fn smooth_map(height: usize, width: usize) -> Vec<f64> {
    (0..height * width)
        .map(|i| {
            let (r, c) = ((i / width) as f64, (i % width) as f64);
            (0.3 * r).sin() + (0.2 * c).cos() * 0.7 + 0.01 * r * c
        })
        .collect()
}

fn assert_close(actual: f64, expected: f64, what: &str) {
    assert!((actual - expected).abs() <= TOL, "{what}: {actual} vs {expected}");
}

#[test]
fn identical_maps_are_perfectly_similar_under_every_metric() {
    let dims = MapDims::plane(16, 16);
    let a = smooth_map(16, 16);
    for metric in Metric::ALL {
        let s = compare(metric, &a, &a, dims).unwrap();
        let expected = if metric == Metric::Mse { 0.0 } else { 1.0 };
        assert_close(s.value, expected, metric.name());
        assert_eq!(s.degeneracy, None, "{metric}");
    }
}

#[test]
fn exactly_anti_correlated_maps_give_minus_one() {
    let a = smooth_map(16, 16);
    let b: Vec<f64> = a.iter().map(|v| -2.0 * v + 3.0).collect(); // decreasing affine map
    assert_close(spearman(&a, &b).unwrap().value, -1.0, "spearman");
    assert_close(pearson(&a, &b).unwrap().value, -1.0, "pearson");
    let neg: Vec<f64> = a.iter().map(|v| -v).collect();
    assert_close(cosine(&a, &neg).unwrap().value, -1.0, "cosine");
    let dims = MapDims::plane(16, 16);
    // signed 2-D normalization x / max|x| keeps the sign flip: -1; the absolute one removes it.
    assert_close(compare(Metric::SpearmanSigned, &a, &neg, dims).unwrap().value, -1.0, "signed");
    assert_close(compare(Metric::SpearmanAbs, &a, &neg, dims).unwrap().value, 1.0, "abs");
}

#[test]
fn constant_maps_are_reported_never_nan() {
    let dims = MapDims::plane(16, 16);
    let a = smooth_map(16, 16);
    let flat = vec![0.25; 256];
    for metric in Metric::ALL {
        let one = compare(metric, &a, &flat, dims).unwrap();
        assert!(one.value.is_finite(), "{metric}: {}", one.value);
        assert_eq!(one.degeneracy, Some(Degeneracy::SecondConstant), "{metric}");
        let both = compare(metric, &flat, &flat, dims).unwrap();
        assert!(both.value.is_finite(), "{metric}");
        assert_eq!(both.degeneracy, Some(Degeneracy::BothConstant), "{metric}");
    }
    // Fallbacks: undefined correlation -> 0, two equal constant maps -> 1.
    assert_eq!(spearman(&flat, &a).unwrap().value, 0.0);
    assert_eq!(spearman(&flat, &a).unwrap().degeneracy, Some(Degeneracy::FirstConstant));
    assert_eq!(pearson(&flat, &flat).unwrap().value, 1.0);
    assert_eq!(pearson(&flat, &vec![0.5; 256]).unwrap().value, 0.0);
    assert_eq!(cosine(&[0.0; 3], &[1.0, 2.0, 3.0]).unwrap().value, 0.0);
    // all-zero map under the 2-D Adebayo normalization (0 / 0) stays zero, flagged
    let zero = vec![0.0; 256];
    let s = compare(Metric::SpearmanAbs, &a, &zero, dims).unwrap();
    assert_eq!((s.value, s.degeneracy), (0.0, Some(Degeneracy::SecondConstant)));
}

#[test]
fn spearman_with_ties_uses_average_ranks() {
    // a = [1, 2, 2, 3] -> ranks [1, 2.5, 2.5, 4]; b = [10, 30, 20, 40] -> ranks [1, 3, 2, 4].
    // Deviations from the mean rank 2.5: da = [-1.5, 0, 0, 1.5], db = [-1.5, 0.5, -0.5, 1.5].
    // sum da db = 4.5, sum da^2 = 4.5, sum db^2 = 5 -> r = 4.5 / sqrt(22.5) = sqrt(0.9).
    let a = [1.0, 2.0, 2.0, 3.0];
    let b = [10.0, 30.0, 20.0, 40.0];
    assert_eq!(average_ranks(&a).unwrap(), vec![1.0, 2.5, 2.5, 4.0]);
    assert_close(spearman(&a, &b).unwrap().value, 0.9f64.sqrt(), "spearman ties");
    // Monotone transforms do not change Spearman (ranks are equal).
    let b_exp: Vec<f64> = b.iter().map(|v: &f64| v.exp().min(1e300)).collect();
    assert_close(spearman(&a, &b_exp).unwrap().value, 0.9f64.sqrt(), "monotone");
}

#[test]
fn pearson_and_mse_by_hand() {
    // a = [1, 2, 3], b = [1, 3, 2]: deviations [-1, 0, 1] and [-1, 1, 0];
    // sum = 1, norms sqrt(2) each -> r = 1/2. MSE = (0 + 1 + 1) / 3 = 2/3.
    assert_close(pearson(&[1.0, 2.0, 3.0], &[1.0, 3.0, 2.0]).unwrap().value, 0.5, "pearson");
    assert_close(mse(&[1.0, 2.0, 3.0], &[1.0, 3.0, 2.0]).unwrap().value, 2.0 / 3.0, "mse");
    // cosine([1, 0], [1, 1]) = 1 / sqrt(2)
    assert_close(cosine(&[1.0, 0.0], &[1.0, 1.0]).unwrap().value, 0.5f64.sqrt(), "cosine");
}

#[test]
fn top_k_intersection_by_hand() {
    // |a| = [5, 9, 1, 0, 3, 7]: top 3 at indices {1, 5, 0}
    // |b| = [0, 8, 6, 1, 7, 2]: top 3 at indices {1, 4, 2}; shared {1} -> 1/3
    let a = [5.0, -9.0, 1.0, 0.0, 3.0, 7.0];
    let b = [0.0, 8.0, 6.0, 1.0, -7.0, 2.0];
    assert_close(top_k_intersection(&a, &b, TopK::Count(3)).unwrap().value, 1.0 / 3.0, "k=3");
    // k = 6 keeps everything -> 1; fraction 0.5 of 6 -> k = 3
    assert_close(top_k_intersection(&a, &b, TopK::Count(6)).unwrap().value, 1.0, "k=6");
    assert_close(top_k_intersection(&a, &b, TopK::Fraction(0.5)).unwrap().value, 1.0 / 3.0, "f");
    // Ties broken by the lower index: top 2 of [1, 1, 1, 0] is {0, 1}, of [0, 1, 1, 1] {1, 2}.
    let tie = top_k_intersection(&[1.0, 1.0, 1.0, 0.0], &[0.0, 1.0, 1.0, 1.0], TopK::Count(2));
    assert_close(tie.unwrap().value, 0.5, "ties");
    assert!(top_k_intersection(&a, &b, TopK::Count(0)).is_err());
    assert!(top_k_intersection(&a, &b, TopK::Count(7)).is_err());
    assert!(top_k_intersection(&a, &b, TopK::Fraction(1.5)).is_err());
}

#[test]
fn adebayo_normalizations_of_2d_maps() {
    // [[-2, 1], [0, 4]]: max|x| = 4. Absolute: |x| / 4; signed: x / 4.
    let map = [-2.0, 1.0, 0.0, 4.0];
    let dims = MapDims::plane(2, 2);
    let abs = normalize(&map, dims, Normalization::AdebayoAbs).unwrap();
    assert_eq!(abs.values, vec![0.5, 0.25, 0.0, 1.0]);
    let signed = normalize(&map, dims, Normalization::AdebayoSigned).unwrap();
    assert_eq!(signed.values, vec![-0.5, 0.25, 0.0, 1.0]);
    assert!(!abs.zero_scale && !signed.zero_scale);
}

#[test]
fn adebayo_absolute_normalization_of_3d_maps() {
    // channel 0 = [1, -2, 0, 3], channel 1 = [-1, 0, 0, 5] -> s = sum |x| = [2, 2, 0, 8].
    // numpy p99 of sorted [0, 2, 2, 8]: h = 3 * 0.99 = 2.97 -> 8 - (8 - 2) * 0.03 = 7.82.
    // min = 0 -> clip(s / 7.82, 0, 1) = [2/7.82, 2/7.82, 0, 1].
    let map = [1.0, -2.0, 0.0, 3.0, -1.0, 0.0, 0.0, 5.0];
    let out = normalize(&map, MapDims::channels(2, 2, 2), Normalization::AdebayoAbs).unwrap();
    assert_eq!(out.dims, MapDims::plane(2, 2));
    let expected = [2.0 / 7.82, 2.0 / 7.82, 0.0, 1.0];
    for (o, e) in out.values.iter().zip(expected) {
        assert_close(*o, e, "adebayo abs 3-D");
    }
}

#[test]
fn adebayo_signed_normalization_of_3d_maps() {
    // One channel [-30, 1, 2, 3]: p99 of sorted [-30, 1, 2, 3] = 3 - 1 * 0.03 = 2.97 = span.
    // (s + 2.97) / 5.94 = [-4.55 -> clipped to -1 (PAIR clips to [-1, 1]), 3.97/5.94,
    //  4.97/5.94, 5.97/5.94 -> 1].
    let map = [-30.0, 1.0, 2.0, 3.0];
    let out = normalize(&map, MapDims::channels(1, 2, 2), Normalization::AdebayoSigned).unwrap();
    let expected = [-1.0, 3.97 / 5.94, 4.97 / 5.94, 1.0];
    for (o, e) in out.values.iter().zip(expected) {
        assert_close(*o, e, "adebayo signed 3-D");
    }
    // Two channels sum first: [1, 2] + [-1, -4] = [0, -2]; p99 of [-2, 0] = 0 - 2 * 0.01 = -0.02
    // -> span 0.02; (0 + 0.02) / 0.04 = 0.5, (-2 + 0.02) / 0.04 = -49.5 -> -1.
    let out = normalize(
        &[1.0, 2.0, -1.0, -4.0],
        MapDims::channels(2, 1, 2),
        Normalization::AdebayoSigned,
    )
    .unwrap();
    assert_close(out.values[0], 0.5, "sum then span");
    assert_close(out.values[1], -1.0, "clipped at -1");
}

#[test]
fn adebayo_absolute_with_p99_at_the_minimum_becomes_binary() {
    // 200 pixels, one non-zero: sorted index 197 and 198 are 0, so p99 (h = 199 * 0.99 = 197.01)
    // is 0 = min: zero scale. Limit rule: pixels above the minimum -> 1, the rest 0.
    let mut map = vec![0.0; 200];
    map[17] = -3.0;
    let out = normalize(&map, MapDims::channels(1, 10, 20), Normalization::AdebayoAbs).unwrap();
    assert!(out.zero_scale);
    assert_eq!(out.values.iter().sum::<f64>(), 1.0);
    assert_eq!(out.values[17], 1.0);
}

#[test]
fn min_max_and_second_moment_normalizations() {
    // [2, 4, 6]: min 2, max 6 -> [0, 0.5, 1]
    let out = normalize(&[2.0, 4.0, 6.0], MapDims::plane(1, 3), Normalization::MinMax).unwrap();
    assert_eq!(out.values, vec![0.0, 0.5, 1.0]);
    // [3, -4]: mean of squares (9 + 16) / 2 = 12.5 -> [3, -4] / sqrt(12.5)
    let out = normalize(&[3.0, -4.0], MapDims::plane(1, 2), Normalization::SecondMoment).unwrap();
    assert_close(out.values[0], 3.0 / 12.5f64.sqrt(), "second moment");
    assert_close(out.values[1], -4.0 / 12.5f64.sqrt(), "second moment");
    let zero = normalize(&[0.0, 0.0], MapDims::plane(1, 2), Normalization::SecondMoment).unwrap();
    assert!(zero.zero_scale && zero.values == vec![0.0, 0.0]);
}

#[test]
fn ssim_of_constant_maps_and_the_sc_exact_option() {
    // Constant maps x = 0, y = 1: local means 0 and 1, all (co)variances 0, so
    // S = (2*0*1 + C1)(0 + C2) / ((0 + 1 + C1)(0 + C2)) = C1 / (1 + C1) everywhere.
    // data_range 1: C1 = 1e-4; data_range 2 (sc-exact): C1 = 4e-4 (covariance factor is moot).
    let dims = MapDims::plane(12, 12);
    let (zeros, ones) = (vec![0.0; 144], vec![1.0; 144]);
    let s = ssim(&zeros, &ones, dims, &SsimOptions::default()).unwrap();
    assert!((s.value - 1e-4 / (1.0 + 1e-4)).abs() < 1e-15);
    assert_eq!(s.degeneracy, Some(Degeneracy::BothConstant));
    let s = ssim(&zeros, &ones, dims, &SsimOptions::sanity_checks_exact()).unwrap();
    assert!((s.value - 4e-4 / (1.0 + 4e-4)).abs() < 1e-15);
    // On structured maps the two settings give different values.
    let dims = MapDims::plane(16, 16);
    let a = smooth_map(16, 16);
    let b: Vec<f64> =
        a.iter().enumerate().map(|(i, v)| v + ((i * 7919) % 13) as f64 * 0.05).collect();
    let default = compare(Metric::Ssim, &a, &b, dims).unwrap().value;
    let exact = compare(Metric::SsimScExact, &a, &b, dims).unwrap().value;
    assert!((default - exact).abs() > 1e-4, "{default} vs {exact}");
    // Multi-channel: the mean over channels; two copies of the same channel pair give the
    // single-channel value.
    let mut a2 = a.clone();
    a2.extend_from_slice(&a);
    let mut b2 = b.clone();
    b2.extend_from_slice(&b);
    let single = ssim(&a, &b, dims, &SsimOptions::default()).unwrap().value;
    let double =
        ssim(&a2, &b2, MapDims::channels(2, 16, 16), &SsimOptions::default()).unwrap().value;
    assert_close(double, single, "channel mean");
    // Too small for the 11x11 window: a typed error, as in skimage.
    assert!(matches!(
        ssim(&[0.0; 100], &[0.0; 100], MapDims::plane(10, 10), &SsimOptions::default()),
        Err(EvalError::MapTooSmall { .. })
    ));
}

#[test]
fn hog_similarity_is_spearman_of_the_features() {
    let dims = MapDims::plane(16, 16);
    let a = smooth_map(16, 16);
    let opts = HogOptions::default();
    assert_close(hog_similarity(&a, &a, dims, &opts).unwrap().value, 1.0, "hog identical");
    // 16x16 with 16x16 cells and 3x3 blocks does not fit: typed error.
    assert!(hog_similarity(&a, &a, dims, &HogOptions::sanity_checks()).is_err());
    assert_eq!(opts.feature_len(28, 28).unwrap(), 144);
    assert_eq!(opts.feature_len(32, 32).unwrap(), 324);
}

#[test]
fn entropy_and_emprt_by_hand() {
    // [0, 1, 0, 1] over 100 bins: 0 in the first bin, 1 in the last (closed) bin -> ln 2.
    // [0, 1, 2, 3]: edges 0, 0.03, ...; 1 -> bin 33, 2 -> bin 66, 3 -> bin 99 -> ln 4.
    // eMPRT rise = (ln 4 - ln 2) / ln 2 = 1.
    let original = [0.0, 1.0, 0.0, 1.0];
    let randomized = [0.0, 1.0, 2.0, 3.0];
    assert_close(discrete_entropy(&original, 100).unwrap(), 2f64.ln(), "H original");
    assert_close(discrete_entropy(&randomized, 100).unwrap(), 4f64.ln(), "H randomized");
    assert_close(entropy_rise(&original, &randomized).unwrap().value, 1.0, "rise");
    let flat = entropy_rise(&[2.0; 4], &randomized).unwrap();
    assert_eq!((flat.value, flat.degeneracy), (0.0, Some(Degeneracy::FirstConstant)));
}

#[test]
fn malformed_inputs_are_typed_errors() {
    assert_eq!(spearman(&[], &[]).unwrap_err(), EvalError::Empty { name: "a" });
    assert_eq!(
        pearson(&[1.0, 2.0], &[1.0]).unwrap_err(),
        EvalError::LengthMismatch { left: 2, right: 1 }
    );
    assert!(matches!(
        spearman(&[1.0, f64::NAN], &[1.0, 2.0]),
        Err(EvalError::NonFinite { index: 1, .. })
    ));
    assert!(matches!(
        compare(Metric::Spearman, &[1.0; 5], &[1.0; 5], MapDims::plane(2, 2)),
        Err(EvalError::ShapeMismatch { expected: 4, actual: 5, .. })
    ));
    assert!(matches!(Metric::parse("spearmann"), Err(EvalError::UnknownMetric { .. })));
}

#[test]
fn metric_names_round_trip() {
    for metric in Metric::ALL {
        assert_eq!(Metric::parse(metric.name()).unwrap(), metric);
        let json = serde_json::to_string(&metric).unwrap();
        assert_eq!(json, format!("\"{}\"", metric.name()));
    }
    assert_eq!(Metric::parse(" ssim-sc-exact ").unwrap(), Metric::SsimScExact);
}

#[test]
fn batch_compares_each_sample_on_its_own() {
    // Sample 1 is sample 0 scaled by 1000: per-sample normalization makes the two results
    // identical (a batch-wide max, Quantus' defect, would not).
    let dims = MapDims::plane(16, 16);
    let a0 = smooth_map(16, 16);
    let b0: Vec<f64> = a0.iter().map(|v| v * v).collect();
    let a: Vec<f64> = a0
        .iter()
        .chain(a0.iter().map(|v| v * 1000.0).collect::<Vec<_>>().iter())
        .copied()
        .collect();
    let b: Vec<f64> = b0.iter().chain(b0.iter()).copied().collect();
    for metric in [Metric::SpearmanAbs, Metric::Ssim, Metric::Hog, Metric::Mse] {
        let out = compare_batch(metric, &a, &b, dims, &CompareOptions::default()).unwrap();
        assert_eq!(out.len(), 2);
        assert!((out[0].value - out[1].value).abs() < 1e-9, "{metric}: {out:?}");
        assert_eq!(out[0], compare(metric, &a0, &b0, dims).unwrap());
    }
    assert!(compare_batch(Metric::Ssim, &a[..300], &b[..300], dims, &CompareOptions::default())
        .is_err());
}
