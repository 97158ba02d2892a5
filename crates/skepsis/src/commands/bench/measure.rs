//! How `skepsis bench` measures: wall-clock medians after a warm-up, the peak resident set
//! size of each workload, the attainable fp32 rate (a 2048^3 sgemm with the `gemm` crate the
//! convolutions use), and a seeded generator for the inputs.

use std::time::Instant;

use anyhow::{bail, Context, Result};
use serde::Serialize;

/// The median of `values` (mean of the two middle values for an even count; 0 when empty).
pub fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// Resets this process' peak resident set size (`VmHWM`) to the current one by writing `5`
/// to `/proc/self/clear_refs` (Linux >= 4.0). Returns false where that is not possible
/// (other systems): the peak is then the process' peak so far.
pub fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// This process' peak resident set size in bytes (`VmHWM` of `/proc/self/status`), `None`
/// where the file does not exist.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 =
        line.trim_start_matches("VmHWM:").trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kib * 1024)
}

/// Wall-clock times of the timed runs of one workload, with the peak resident set size seen
/// from the start of its warm-up to the end of its last run.
#[derive(Debug, Clone, Serialize)]
pub struct Timing {
    /// Seconds of every timed run, in order.
    pub runs_s: Vec<f64>,
    /// Median of `runs_s`.
    pub median_s: f64,
    /// Seconds of the warm-up run (not part of the median).
    pub warmup_s: f64,
    /// Peak resident set size in bytes, `None` where it cannot be read.
    pub peak_rss_bytes: Option<u64>,
    /// Whether the peak was reset before the warm-up (else it is the process' peak so far).
    pub peak_rss_reset: bool,
}

/// Runs `warmup` once, then `run` `repeats` times, and returns the warm-up's value with the
/// timing. `run` returns the seconds to count for that run: `None` counts its wall-clock time,
/// `Some(s)` counts `s` (a workload that times an inner part itself, e.g. one training epoch
/// without its final evaluation pass).
pub fn time<T>(
    repeats: usize,
    mut warmup: impl FnMut() -> Result<T>,
    mut run: impl FnMut() -> Result<Option<f64>>,
) -> Result<(T, Timing)> {
    let reset = reset_peak_rss();
    let started = Instant::now();
    let value = warmup().context("warm-up run")?;
    let warmup_s = started.elapsed().as_secs_f64();
    let mut runs_s = Vec::with_capacity(repeats);
    for i in 0..repeats {
        let started = Instant::now();
        let counted = run().with_context(|| format!("timed run {}", i + 1))?;
        runs_s.push(counted.unwrap_or_else(|| started.elapsed().as_secs_f64()));
    }
    let timing = Timing {
        median_s: median(&runs_s),
        runs_s,
        warmup_s,
        peak_rss_bytes: peak_rss_bytes(),
        peak_rss_reset: reset,
    };
    Ok((value, timing))
}

/// The attainable fp32 rate: `C = A B` for `n x n` row-major matrices with the `gemm` crate
/// (the kernels skepsis' convolutions and linear layers call), parallel over the rayon pool.
#[derive(Debug, Clone, Serialize)]
pub struct SgemmRate {
    pub n: usize,
    /// Seconds of every timed product.
    pub runs_s: Vec<f64>,
    pub median_s: f64,
    /// `2 n^3 / median_s / 1e9`.
    pub gflops: f64,
}

/// Times `repeats` products `n x n` by `n x n` (after one warm-up product).
pub fn sgemm_rate(n: usize, repeats: usize) -> Result<SgemmRate> {
    if n == 0 || repeats == 0 {
        bail!("sgemm needs n >= 1 and at least one run");
    }
    // Values in [-1, 1) from a fixed generator: the rate does not depend on them, but
    // denormals or all-zero matrices could.
    let mut rng = SplitMix64::new(0x5eed);
    let a: Vec<f32> = (0..n * n).map(|_| rng.uniform_f32() * 2.0 - 1.0).collect();
    let b: Vec<f32> = (0..n * n).map(|_| rng.uniform_f32() * 2.0 - 1.0).collect();
    let mut c = vec![0f32; n * n];
    let product = |c: &mut [f32]| {
        // SAFETY: `a`, `b` and `c` each hold exactly n * n elements, row-major (row stride n,
        // column stride 1), so every index gemm touches is in bounds; `c` is borrowed
        // mutably and aliases neither `a` nor `b`. gemm computes c = alpha c + beta a b and
        // does not read `c` since `read_dst` is false.
        unsafe {
            gemm::gemm(
                n,
                n,
                n,
                c.as_mut_ptr(),
                1,
                n as isize,
                false,
                a.as_ptr(),
                1,
                n as isize,
                b.as_ptr(),
                1,
                n as isize,
                0.0f32,
                1.0f32,
                false,
                false,
                false,
                gemm::Parallelism::Rayon(rayon::current_num_threads()),
            );
        }
    };
    product(&mut c);
    let mut runs_s = Vec::with_capacity(repeats);
    for _ in 0..repeats {
        let started = Instant::now();
        product(&mut c);
        runs_s.push(started.elapsed().as_secs_f64());
    }
    // Keeps the products observable (and checks them cheaply): a finite result.
    if !c[n * n / 2].is_finite() {
        bail!("sgemm produced a non-finite value");
    }
    let median_s = median(&runs_s);
    let gflops = 2.0 * (n as f64).powi(3) / median_s / 1e9;
    Ok(SgemmRate { n, runs_s, median_s, gflops })
}

/// SplitMix64 (Steele, Lea & Flood, "Fast splittable pseudorandom number generators",
/// OOPSLA 2014): the seeded source of the benchmark's images, classes and noise. Tiny and
/// fully specified, so the peer could re-draw the same numbers; it reads them from
/// `inputs.safetensors` instead.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)` with 24 random bits (every value exactly representable in f32).
    pub fn uniform_f32(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }

    /// Uniform in `[0, 1)` with 53 random bits.
    pub fn uniform_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `0..n` (`n >= 1`; the modulo bias is below 2^-50 for the small `n` used).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// A standard normal value (Box-Muller, one of the pair).
    pub fn normal(&mut self) -> f64 {
        // 1 - u is in (0, 1], so the logarithm is finite.
        let u1 = 1.0 - self.uniform_f64();
        let u2 = self.uniform_f64();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(&[]), 0.0);
    }

    #[test]
    fn generator_is_seeded_and_in_range() {
        let (mut a, mut b) = (SplitMix64::new(7), SplitMix64::new(7));
        for _ in 0..1000 {
            let u = a.uniform_f32();
            assert!((0.0..1.0).contains(&u));
            assert_eq!(u, b.uniform_f32());
            assert!(a.below(10) < 10);
            assert!(a.normal().is_finite());
            b.below(10);
            b.normal();
        }
    }

    #[test]
    fn peak_rss_is_readable_on_linux() {
        if cfg!(target_os = "linux") {
            assert!(peak_rss_bytes().unwrap_or(0) > 0);
        }
    }
}
