//! Quadrature rules for path integrals over `alpha in [0, 1]` (Integrated Gradients).
//!
//! A rule turns a number of steps `n` into nodes `alpha_k` and weights `w_k`, and a path
//! integral `int_0^1 g(alpha) d alpha` is approximated by `sum_k w_k g(alpha_k)`.

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// How the interpolation points and weights of a path integral are chosen.
///
/// | rule | nodes `alpha_k` (k = 0..n-1) | weights `w_k` | sum of weights |
/// |---|---|---|---|
/// | `RiemannLeft` (also iNNvestigate / SMERF) | `k / n` | `1 / n` | 1 |
/// | `RiemannRight` | `(k + 1) / n` | `1 / n` | 1 |
/// | `RiemannMiddle` | `(k + 1/2) / n` | `1 / n` | 1 |
/// | `Trapezoid` (n >= 2) | `k / (n - 1)` | `1/(n-1)`, halved at both ends | 1 |
/// | `CaptumTrapezoid` (n >= 2) | `k / (n - 1)` | `1/n`, halved at both ends | `(n-1)/n` |
/// | `PairLinspace` | `k / (n - 1)` (`0` when n = 1) | `1 / n` | 1 |
/// | `GaussLegendre` | `(1 + t_k) / 2` | `u_k / 2` | 1 |
/// | `Explicit` | given | given | as given |
///
/// `t_k, u_k` are the n-point Gauss-Legendre nodes and weights on `[-1, 1]` (numpy's
/// `leggauss`). `CaptumTrapezoid` is captum's `riemann_trapezoid`, which is not normalized:
/// a normalized trapezoid gives exactly `n / (n - 1)` times its result. `PairLinspace` is
/// PAIR saliency's Integrated Gradients (`linspace(0, 1, n)` with both endpoints, sum of
/// gradients divided by n), used by Adebayo et al. 2018. iNNvestigate's (`k / n`, endpoint
/// excluded, divided by n) is exactly `RiemannLeft`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum QuadratureRule {
    RiemannLeft,
    RiemannRight,
    RiemannMiddle,
    #[default]
    Trapezoid,
    CaptumTrapezoid,
    PairLinspace,
    GaussLegendre,
    /// Given nodes and weights (e.g. the exact float32 values another library used).
    Explicit {
        alphas: Vec<f64>,
        weights: Vec<f64>,
    },
}

/// Spec names of the rules (`rule=` of `integrated-gradients`), with aliases.
pub const RULE_NAMES: &[&str] = &[
    "left",
    "right",
    "middle",
    "trapezoid",
    "captum-trapezoid",
    "pair",
    "gauss-legendre",
    "innvestigate",
];

impl QuadratureRule {
    /// Parses a spec name (see [`RULE_NAMES`]).
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "left" | "riemann-left" | "innvestigate" => QuadratureRule::RiemannLeft,
            "right" | "riemann-right" => QuadratureRule::RiemannRight,
            "middle" | "riemann-middle" | "midpoint" => QuadratureRule::RiemannMiddle,
            "trapezoid" => QuadratureRule::Trapezoid,
            "captum-trapezoid" => QuadratureRule::CaptumTrapezoid,
            "pair" | "pair-linspace" => QuadratureRule::PairLinspace,
            "gauss-legendre" | "gausslegendre" => QuadratureRule::GaussLegendre,
            _ => return None,
        })
    }

    /// The spec name of the rule.
    pub fn name(&self) -> &'static str {
        match self {
            QuadratureRule::RiemannLeft => "left",
            QuadratureRule::RiemannRight => "right",
            QuadratureRule::RiemannMiddle => "middle",
            QuadratureRule::Trapezoid => "trapezoid",
            QuadratureRule::CaptumTrapezoid => "captum-trapezoid",
            QuadratureRule::PairLinspace => "pair",
            QuadratureRule::GaussLegendre => "gauss-legendre",
            QuadratureRule::Explicit { .. } => "explicit",
        }
    }

    /// Nodes and weights for `steps` points. Errors name the parameter `steps` (or
    /// `alphas` / `weights` for explicit rules).
    pub fn nodes(&self, method: &str, steps: usize) -> Result<(Vec<f64>, Vec<f64>)> {
        if steps == 0 {
            return Err(Error::parameter(method, "steps", "must be at least 1"));
        }
        let n = steps as f64;
        let uniform = vec![1.0 / n; steps];
        Ok(match self {
            QuadratureRule::RiemannLeft => ((0..steps).map(|k| k as f64 / n).collect(), uniform),
            QuadratureRule::RiemannRight => {
                ((0..steps).map(|k| (k + 1) as f64 / n).collect(), uniform)
            }
            QuadratureRule::RiemannMiddle => {
                ((0..steps).map(|k| (k as f64 + 0.5) / n).collect(), uniform)
            }
            QuadratureRule::Trapezoid | QuadratureRule::CaptumTrapezoid => {
                if steps < 2 {
                    return Err(Error::parameter(
                        method,
                        "steps",
                        format!("the {} rule needs at least 2 steps", self.name()),
                    ));
                }
                let h = if *self == QuadratureRule::Trapezoid { 1.0 / (n - 1.0) } else { 1.0 / n };
                let mut w = vec![h; steps];
                w[0] /= 2.0;
                w[steps - 1] /= 2.0;
                (linspace(steps), w)
            }
            QuadratureRule::PairLinspace => (linspace(steps), uniform),
            QuadratureRule::GaussLegendre => {
                let (t, u) = gauss_legendre(steps);
                (t.iter().map(|t| (1.0 + t) / 2.0).collect(), u.iter().map(|u| u / 2.0).collect())
            }
            QuadratureRule::Explicit { alphas, weights } => {
                if alphas.len() != weights.len() || alphas.is_empty() {
                    return Err(Error::parameter(
                        method,
                        "weights",
                        format!(
                            "{} alphas but {} weights (need as many, at least one)",
                            alphas.len(),
                            weights.len()
                        ),
                    ));
                }
                if alphas.len() != steps {
                    return Err(Error::parameter(
                        method,
                        "steps",
                        format!("{steps} but {} explicit alphas are given", alphas.len()),
                    ));
                }
                if alphas.iter().chain(weights).any(|v| !v.is_finite()) {
                    return Err(Error::parameter(
                        method,
                        "alphas",
                        "alphas and weights must be finite",
                    ));
                }
                (alphas.clone(), weights.clone())
            }
        })
    }
}

/// `k / (n - 1)` for k = 0..n-1 (`[0]` for n = 1).
fn linspace(n: usize) -> Vec<f64> {
    if n == 1 {
        return vec![0.0];
    }
    (0..n).map(|k| k as f64 / (n - 1) as f64).collect()
}

/// The n-point Gauss-Legendre rule on `[-1, 1]`, nodes ascending: Newton's iteration on
/// the Legendre polynomial `P_n` from Tricomi's initial guesses, weights
/// `2 / ((1 - t^2) P_n'(t)^2)`.
pub fn gauss_legendre(n: usize) -> (Vec<f64>, Vec<f64>) {
    let mut t = vec![0.0; n];
    let mut u = vec![0.0; n];
    for i in 0..n.div_ceil(2) {
        let mut x = (std::f64::consts::PI * (i as f64 + 0.75) / (n as f64 + 0.5)).cos();
        let mut dp = 1.0;
        for _ in 0..100 {
            let (p, d) = legendre(n, x);
            dp = d;
            let dx = p / d;
            x -= dx;
            if dx.abs() < 1e-16 {
                break;
            }
        }
        let (_, d) = legendre(n, x);
        if d.is_finite() {
            dp = d;
        }
        let w = 2.0 / ((1.0 - x * x) * dp * dp);
        // Roots come in symmetric pairs; index from the ends to keep ascending order.
        t[i] = -x;
        t[n - 1 - i] = x;
        u[i] = w;
        u[n - 1 - i] = w;
    }
    if n % 2 == 1 {
        t[n / 2] = 0.0;
    }
    (t, u)
}

/// `P_n(x)` and `P_n'(x)` by the three-term recurrence.
fn legendre(n: usize, x: f64) -> (f64, f64) {
    let (mut p0, mut p1) = (1.0, x);
    if n == 0 {
        return (1.0, 0.0);
    }
    for k in 2..=n {
        let k = k as f64;
        let p2 = ((2.0 * k - 1.0) * x * p1 - (k - 1.0) * p0) / k;
        p0 = p1;
        p1 = p2;
    }
    let d = n as f64 * (x * p1 - p0) / (x * x - 1.0);
    (p1, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn integrate(rule: &QuadratureRule, n: usize, f: impl Fn(f64) -> f64) -> f64 {
        let (a, w) = rule.nodes("ig", n).unwrap();
        a.iter().zip(&w).map(|(a, w)| w * f(*a)).sum()
    }

    #[test]
    fn gauss_legendre_matches_known_values() {
        // 2-point rule: nodes -+1/sqrt(3), weights 1.
        let (t, u) = gauss_legendre(2);
        assert!(
            (t[0] + 1.0 / 3f64.sqrt()).abs() < 1e-15 && (t[1] - 1.0 / 3f64.sqrt()).abs() < 1e-15
        );
        assert!((u[0] - 1.0).abs() < 1e-15 && (u[1] - 1.0).abs() < 1e-15);
        // 3-point rule: 0 with weight 8/9, -+sqrt(3/5) with 5/9.
        let (t, u) = gauss_legendre(3);
        assert!((t[2] - 0.6f64.sqrt()).abs() < 1e-15 && t[1] == 0.0);
        assert!((u[1] - 8.0 / 9.0).abs() < 1e-15 && (u[0] - 5.0 / 9.0).abs() < 1e-15);
        // An n-point rule integrates polynomials up to degree 2n-1 exactly.
        let v = integrate(&QuadratureRule::GaussLegendre, 32, |a| a.powi(63));
        assert!((v - 1.0 / 64.0).abs() < 1e-14, "{v}");
    }

    #[test]
    fn rules_integrate_linear_functions_exactly() {
        for rule in [
            QuadratureRule::RiemannMiddle,
            QuadratureRule::Trapezoid,
            QuadratureRule::PairLinspace,
            QuadratureRule::GaussLegendre,
        ] {
            let v = integrate(&rule, 9, |a| 3.0 * a + 1.0);
            assert!((v - 2.5).abs() < 1e-12, "{rule:?}: {v}");
        }
        // Left and right Riemann sums of a linear function err by -+ slope / (2n).
        assert!((integrate(&QuadratureRule::RiemannLeft, 10, |a| a) - 0.45).abs() < 1e-12);
        assert!((integrate(&QuadratureRule::RiemannRight, 10, |a| a) - 0.55).abs() < 1e-12);
        // Captum's trapezoid sums to (n-1)/n.
        let (_, w) = QuadratureRule::CaptumTrapezoid.nodes("ig", 16).unwrap();
        assert!((w.iter().sum::<f64>() - 15.0 / 16.0).abs() < 1e-15);
    }

    #[test]
    fn invalid_steps_name_the_parameter() {
        let e = QuadratureRule::Trapezoid.nodes("ig", 1).unwrap_err().to_string();
        assert!(e.contains("steps"), "{e}");
        let e = QuadratureRule::RiemannLeft.nodes("ig", 0).unwrap_err().to_string();
        assert!(e.contains("steps"), "{e}");
    }
}
