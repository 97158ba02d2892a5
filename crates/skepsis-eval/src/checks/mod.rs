//! The sanity checks of saliency methods: each takes a model, data, a list of method specs
//! and options, and returns a [`CheckReport`] of per-image records, per-step summaries and a
//! verdict per method under a stated, configurable [`PassRule`].
//!
//! | check | paper | function |
//! |---|---|---|
//! | model randomization (MPRT, s/eMPRT) | Adebayo 2018; Hedström 2023 | [`model_randomization`] |
//! | random logit | Sixt et al. 2020 | [`random_logit`] |
//! | data randomization | Adebayo et al. 2018 | [`data_randomization`] |
//! | input invariance | Kindermans et al. 2017/2019 | [`input_invariance`] |
//! | rank-1 convergence | Sixt et al. 2020 | [`rank1_convergence`] |
//!
//! Common ground:
//! - Methods are built from registry spec strings (`skepsis_attr::registry::parse`), so any
//!   registered method works. The uniform random map (`random`) and the Sobel edge detector
//!   (`sobel`) always run next to them as controls ([`RANDOM_MAP`], [`EDGE_DETECTOR`]).
//! - Similarity is computed per sample with [`compare_batch`](crate::compare_batch): every
//!   normalization is per sample, never over a batch.
//! - Every random choice derives from one seed; records carry the seed, the parameters and
//!   the crate version. With an output directory ([`RunControl`]) every finished step is
//!   written at once, existing output is never overwritten without `force`, and `resume`
//!   continues an interrupted run to exactly the records of an uninterrupted one.

mod data_randomization;
mod error;
pub mod examples;
mod input_invariance;
mod maps;
mod methods;
mod random_logit;
mod randomization;
mod rank1;
mod report;
mod store;
mod verdict;

pub use data_randomization::{
    data_randomization, default_rule as data_randomization_default_rule, DataRandomizationOptions,
    RandomLabelModel, TRAIN_REPORT_JSON,
};
pub use error::{CheckError, CheckResult};
pub use input_invariance::{
    default_rule as input_invariance_default_rule, input_invariance, shifted_model,
    InputInvarianceOptions, BLACK,
};
pub use maps::{CheckData, CheckOptions, TargetChoice};
pub use methods::{split_method_list, EDGE_DETECTOR, RANDOM_MAP};
pub use random_logit::{
    default_rule as random_logit_default_rule, random_logit, RandomLogitOptions,
};
pub use randomization::{
    default_rule as randomization_default_rule, model_randomization, LayerOrder, MprtVariant,
    RandomizationMode, RandomizationOptions, EMPRT,
};
pub use rank1::{
    default_rule as rank1_default_rule, rank1_convergence, rule_map_for_spec, Rank1Options,
    RANDOM_VECTORS,
};
pub use report::{
    summarize, verdict_table, CheckReport, MethodRecord, Outcome, Record, Summary, Verdict,
    CRATE_VERSION,
};
pub use store::{RunControl, RECORDS_CSV, REPORT_JSON, STEPS_DIR, SUMMARY_CSV, VERDICTS_CSV};
pub use verdict::{Aggregate, Direction, PassRule, StepRef};

use candle_core::{DType, Storage, Tensor};
use rayon::prelude::*;

/// Everything [`assemble`] needs.
pub(crate) struct Assembly<'a> {
    pub check: &'static str,
    pub seed: u64,
    pub parameters: serde_json::Value,
    pub methods: Vec<MethodRecord>,
    pub steps: Vec<String>,
    pub records: Vec<Record>,
    pub notes: Vec<String>,
    pub refusal: Option<String>,
    pub complete: bool,
    pub rule: &'a PassRule,
}

/// The report: summaries from the records, then the verdicts under `rule` (all "not
/// applicable" when the check refused or stopped early).
pub(crate) fn assemble(a: Assembly<'_>) -> CheckReport {
    let summaries = summarize(&a.records);
    let mut report = CheckReport {
        check: a.check.to_string(),
        crate_version: CRATE_VERSION.to_string(),
        seed: a.seed,
        parameters: a.parameters,
        methods: a.methods,
        steps: a.steps,
        records: a.records,
        summaries,
        verdicts: Vec::new(),
        rule: String::new(),
        notes: a.notes,
        refusal: a.refusal,
        complete: a.complete,
    };
    report::apply_rule(&mut report, a.rule);
    let why = match (&report.refusal, report.complete) {
        (Some(reason), _) => Some(format!("check refused: {reason}")),
        (None, false) => Some("run stopped before the last step (resume to finish)".to_string()),
        _ => None,
    };
    if let Some(why) = why {
        for v in &mut report.verdicts {
            v.outcome = Outcome::NotApplicable;
            v.value = None;
            v.reason = why.clone();
        }
    }
    report
}

/// [`digest`] of every tensor of `model`.
pub(crate) fn model_digest(model: &skepsis_nn::Model) -> CheckResult<String> {
    digest(&model.state_dict().into_iter().map(|(_, t)| t).collect::<Vec<_>>())
}

/// A cheap fingerprint of tensors (element count, sum and sum of squares in f64), so that
/// `resume` notices a different model or different images.
///
/// Each tensor is summed in blocks of [`DIGEST_BLOCK`] elements, each block over eight
/// interleaved partial sums (element `i` into partial `i % 8`, combined pairwise in a fixed
/// order); block sums add in block order, tensor sums in tensor order. The blocks run in
/// parallel and f32 tensors are read where they are, so the digest is the same on every
/// machine and for any number of threads, without the single chain of dependent additions
/// (~5 ms of one thread for the SC CNN's 3.3 million weights) or the copy out of the tensor
/// (12.8 MB for its fc1) that made it a serial step at the start of every check.
pub(crate) fn digest(tensors: &[Tensor]) -> CheckResult<String> {
    let (mut count, mut sum, mut squares) = (0usize, 0f64, 0f64);
    for t in tensors {
        let flat = t.flatten_all()?;
        let (s, q) = match t.dtype() {
            DType::F32 => {
                let (storage, layout) = flat.storage_and_layout();
                match (&*storage, layout.contiguous_offsets()) {
                    (Storage::Cpu(cpu), Some((start, end))) => {
                        block_sums(&cpu.as_slice::<f32>()?[start..end])
                    }
                    _ => block_sums(&flat.to_vec1::<f32>()?),
                }
            }
            _ => block_sums(&flat.to_dtype(DType::F64)?.to_vec1::<f64>()?),
        };
        count += t.elem_count();
        sum += s;
        squares += q;
    }
    Ok(format!("{count}:{sum:.9e}:{squares:.9e}"))
}

/// Elements per block of [`digest`]'s sums.
const DIGEST_BLOCK: usize = 1 << 16;

/// Sum and sum of squares of `values`: [`interleaved_sums`] of each block of
/// [`DIGEST_BLOCK`] elements (in parallel), added in block order.
fn block_sums<T: Copy + Into<f64> + Sync>(values: &[T]) -> (f64, f64) {
    let blocks: Vec<(f64, f64)> =
        values.par_chunks(DIGEST_BLOCK).map(|block| interleaved_sums(block)).collect();
    blocks.into_iter().fold((0.0, 0.0), |(s, q), (bs, bq)| (s + bs, q + bq))
}

/// Sum and sum of squares of `values` in f64, over eight interleaved partial sums.
fn interleaved_sums<T: Copy + Into<f64>>(values: &[T]) -> (f64, f64) {
    const LANES: usize = 8;
    let (mut s, mut q) = ([0f64; LANES], [0f64; LANES]);
    let chunks = values.chunks_exact(LANES);
    let rest = chunks.remainder();
    for chunk in chunks {
        for k in 0..LANES {
            let v: f64 = chunk[k].into();
            s[k] += v;
            q[k] += v * v;
        }
    }
    for (k, &v) in rest.iter().enumerate() {
        let v: f64 = v.into();
        s[k] += v;
        q[k] += v * v;
    }
    let combine =
        |p: [f64; LANES]| ((p[0] + p[1]) + (p[2] + p[3])) + ((p[4] + p[5]) + (p[6] + p[7]));
    (combine(s), combine(q))
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    /// The digest holds the element count and the sums of candle's `sum_all` on float64
    /// copies (up to the order of the additions), for f32 and f64 tensors.
    #[test]
    fn digest_holds_the_count_and_the_sums() {
        let a = Tensor::rand(-1f32, 1f32, (3, 7, 5), &Device::Cpu).unwrap();
        let b = Tensor::rand(-2f64, 3f64, (11, 2), &Device::Cpu).unwrap();
        let (mut count, mut sum, mut squares) = (0usize, 0f64, 0f64);
        for t in [&a, &b] {
            let t = t.to_dtype(DType::F64).unwrap();
            count += t.elem_count();
            sum += t.sum_all().unwrap().to_scalar::<f64>().unwrap();
            squares += t.sqr().unwrap().sum_all().unwrap().to_scalar::<f64>().unwrap();
        }
        let got = digest(&[a, b]).unwrap();
        let parts: Vec<&str> = got.split(':').collect();
        assert_eq!(parts[0], count.to_string());
        for (part, expected) in parts[1..].iter().zip([sum, squares]) {
            let value: f64 = part.parse().unwrap();
            assert!((value - expected).abs() <= 1e-9 * expected.abs().max(1.0), "{got}");
        }
    }

    /// Tensors of several blocks (and a transposed, non-contiguous one) give the sums within
    /// rounding, and the same digest on one thread and on three.
    #[test]
    fn digest_of_many_blocks_does_not_depend_on_threads() {
        let big = Tensor::rand(-1f32, 1f32, (3 * DIGEST_BLOCK + 77,), &Device::Cpu).unwrap();
        let wide = Tensor::rand(0f32, 2f32, (300, 700), &Device::Cpu).unwrap().t().unwrap();
        let tensors = [big, wide];
        let on = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            pool.install(|| digest(&tensors).unwrap())
        };
        let got = on(1);
        assert_eq!(got, on(3));
        let (mut sum, mut squares) = (0f64, 0f64);
        for t in &tensors {
            for v in t.flatten_all().unwrap().to_vec1::<f32>().unwrap() {
                sum += f64::from(v);
                squares += f64::from(v) * f64::from(v);
            }
        }
        let parts: Vec<f64> = got.split(':').skip(1).map(|p| p.parse().unwrap()).collect();
        assert!((parts[0] - sum).abs() <= 1e-9 * sum.abs().max(1.0), "{got} vs {sum}");
        assert!((parts[1] - squares).abs() <= 1e-9 * squares, "{got} vs {squares}");
        assert!(got.starts_with(&format!("{}:", 3 * DIGEST_BLOCK + 77 + 300 * 700)));
    }

    /// Eight partial sums, element `i` into partial `i % 8`, combined pairwise.
    #[test]
    fn interleaved_sums_add_every_element_once() {
        let values: Vec<f32> = (0..21).map(|i| i as f32 - 7.5).collect();
        let (s, q) = interleaved_sums(&values);
        let exact: f64 = values.iter().map(|&v| f64::from(v)).sum();
        let squares: f64 = values.iter().map(|&v| f64::from(v) * f64::from(v)).sum();
        // Small integers and halves: every order gives the exact sums.
        assert_eq!((s, q), (exact, squares));
        assert_eq!(interleaved_sums::<f64>(&[]), (0.0, 0.0));
    }
}
