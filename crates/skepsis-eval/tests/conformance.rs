//! Conformance: every similarity metric against the float64 fixtures computed by scipy,
//! scikit-image and Quantus (shared/conformance/metrics, see its README).
//!
//! Fixture directory: `$SKEPSIS_CONFORMANCE_DIR`, default `../../../shared/conformance`
//! relative to this crate. The test fails if the fixtures are missing or no case ran.

use std::collections::HashMap;
use std::path::PathBuf;

use safetensors::{Dtype, SafeTensors};
use serde_json::Value;
use skepsis_eval::similarity::{
    discrete_entropy, hog, hog_similarity, pearson, spearman, ssim, HogOptions, SsimOptions,
    ENTROPY_BINS,
};
use skepsis_eval::MapDims;

fn conformance_dir() -> PathBuf {
    match std::env::var_os("SKEPSIS_CONFORMANCE_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance"),
    }
}

/// A float64 tensor: flat values and shape.
struct Tensor {
    values: Vec<f64>,
    shape: Vec<usize>,
}

fn load(path: &PathBuf) -> HashMap<String, Tensor> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let file = SafeTensors::deserialize(&bytes).expect("valid safetensors");
    let mut out = HashMap::new();
    for (name, view) in file.tensors() {
        assert_eq!(view.dtype(), Dtype::F64, "{name} must be float64");
        let values = view
            .data()
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")))
            .collect();
        out.insert(name, Tensor { values, shape: view.shape().to_vec() });
    }
    out
}

/// `(rtol, atol)` of a key from metrics.json (key-specific or the global default).
fn tolerance(spec: &Value, key: &str) -> (f64, f64) {
    let tol = &spec["tolerance"];
    let pick = |v: &Value| (v["rtol"].as_f64().expect("rtol"), v["atol"].as_f64().expect("atol"));
    match tol.get(key) {
        Some(specific) => pick(specific),
        None => pick(tol),
    }
}

#[derive(Default)]
struct Tally {
    checked: usize,
    failures: Vec<String>,
    worst: HashMap<&'static str, f64>,
}

impl Tally {
    fn check(
        &mut self,
        what: &'static str,
        case: &str,
        actual: f64,
        expected: f64,
        tol: (f64, f64),
    ) {
        self.checked += 1;
        let err = (actual - expected).abs();
        let allowed = tol.1 + tol.0 * expected.abs();
        let ratio = err / allowed;
        let worst = self.worst.entry(what).or_insert(0.0);
        *worst = worst.max(ratio);
        if err.is_nan() || err > allowed {
            self.failures.push(format!(
                "{what} {case}: actual {actual:.12e} expected {expected:.12e} (|diff| {err:.3e} > {allowed:.3e})"
            ));
        }
    }
}

#[test]
fn metrics_match_conformance_fixtures() {
    let dir = conformance_dir().join("metrics");
    let spec_text = std::fs::read_to_string(dir.join("metrics.json"))
        .unwrap_or_else(|e| panic!("reading {}/metrics.json: {e}", dir.display()));
    let spec: Value = serde_json::from_str(&spec_text).expect("metrics.json is JSON");
    let files = spec["files"].as_array().expect("files list");
    let mut tally = Tally::default();
    let mut pairs = 0;

    for file in files {
        let name = file["file"].as_str().expect("file name");
        let tensors = load(&dir.join(name));
        let get = |key: &str| tensors.get(key).unwrap_or_else(|| panic!("{name} lacks {key}"));
        let (a, b) = (get("a"), get("b"));
        let (n, h, w) = (a.shape[0], a.shape[1], a.shape[2]);
        let dims = MapDims::plane(h, w);
        let features = get("hog_a").shape[1];
        assert_eq!(file["hog_features"].as_u64(), Some(features as u64));
        let hog_options = HogOptions::default();

        for i in 0..n {
            pairs += 1;
            let case = format!("{name}[{i}]");
            let ma = &a.values[i * h * w..(i + 1) * h * w];
            let mb = &b.values[i * h * w..(i + 1) * h * w];
            let scalar = |key: &str| get(key).values[i];

            let s = spearman(ma, mb).expect("spearman");
            tally.check(
                "spearman",
                &case,
                s.value,
                scalar("spearman"),
                tolerance(&spec, "spearman"),
            );
            let p = pearson(ma, mb).expect("pearson");
            tally.check("pearson", &case, p.value, scalar("pearson"), tolerance(&spec, "pearson"));
            let q = ssim(ma, mb, dims, &SsimOptions::default()).expect("ssim");
            tally.check("ssim", &case, q.value, scalar("ssim"), tolerance(&spec, "ssim"));

            for (key, map) in [("hog_a", ma), ("hog_b", mb)] {
                let ours = hog(map, dims, &hog_options).expect("hog");
                let expected = &get(key).values[i * features..(i + 1) * features];
                assert_eq!(ours.len(), features, "{key} length for {case}");
                let tol = tolerance(&spec, key);
                for (o, e) in ours.iter().zip(expected) {
                    tally.check(if key == "hog_a" { "hog_a" } else { "hog_b" }, &case, *o, *e, tol);
                }
            }
            let hs = hog_similarity(ma, mb, dims, &hog_options).expect("hog similarity");
            tally.check(
                "hog_spearman",
                &case,
                hs.value,
                scalar("hog_spearman"),
                tolerance(&spec, "hog_spearman"),
            );

            for (key, map) in [("entropy_a", ma), ("entropy_b", mb)] {
                let h = discrete_entropy(map, ENTROPY_BINS).expect("entropy");
                let what = if key == "entropy_a" { "entropy_a" } else { "entropy_b" };
                tally.check(what, &case, h, scalar(key), tolerance(&spec, key));
            }
        }
    }

    let mut worst: Vec<_> = tally.worst.iter().collect();
    worst.sort_by(|x, y| x.0.cmp(y.0));
    let worst: Vec<String> = worst.iter().map(|(k, v)| format!("{k} {v:.1e}")).collect();
    println!(
        "conformance metrics: {pairs} map pairs, {} values checked, {} failures; worst |diff|/allowed: {}",
        tally.checked,
        tally.failures.len(),
        worst.join(", ")
    );
    assert!(pairs > 0 && tally.checked > 0, "no conformance case ran");
    assert!(
        tally.failures.is_empty(),
        "{} mismatches:\n{}",
        tally.failures.len(),
        tally.failures.join("\n")
    );
}
