//! Small models and inputs shared by the method tests.
#![allow(dead_code)]

use candle_core::{DType, Device, Tensor};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use skepsis_nn::zoo::{build, Architecture};
use skepsis_nn::{Layer, Linear, Model};

/// The SC MNIST CNN architecture on small `[C, H, W]` inputs (ReLU, max-pooling, 10
/// classes), in `dtype`.
pub fn cnn(shape: [usize; 3], dtype: DType) -> Model {
    build(Architecture::ScCnn, shape, 10, 7).unwrap().to_dtype(dtype).unwrap()
}

/// `n` inputs uniform in [0, 1) of `shape`, in `dtype`.
pub fn inputs(n: usize, shape: [usize; 3], seed: u64, dtype: DType) -> Tensor {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let len = n * shape.iter().product::<usize>();
    let v: Vec<f64> = (0..len).map(|_| rng.random()).collect();
    Tensor::from_vec(v, (n, shape[0], shape[1], shape[2]), &Device::Cpu)
        .unwrap()
        .to_dtype(dtype)
        .unwrap()
}

/// `f(x) = W flatten(x) + b` with `W[k, i] = (k + 1) * (i - 2.5) / 10`, `b[k] = k`, for
/// inputs `[1, 2, 3]` (6 features) and 3 classes, in float64.
pub fn linear_model() -> (Model, Vec<Vec<f64>>) {
    let w: Vec<Vec<f64>> = (0..3)
        .map(|k| (0..6).map(|i| (k + 1) as f64 * (i as f64 - 2.5) / 10.0).collect())
        .collect();
    let wt = Tensor::from_vec(w.concat(), (3, 6), &Device::Cpu).unwrap();
    let b = Tensor::from_vec(vec![0f64, 1.0, 2.0], 3, &Device::Cpu).unwrap();
    let model = Model::sequential(
        "linear",
        vec![
            ("flatten".into(), Layer::Flatten),
            ("fc".into(), Layer::Linear(Linear::new(wt, Some(b)).unwrap())),
        ],
        vec![1, 2, 3],
    )
    .unwrap();
    (model, w)
}

pub fn host(t: &Tensor) -> Vec<f64> {
    t.flatten_all().unwrap().to_dtype(DType::F64).unwrap().to_vec1::<f64>().unwrap()
}

pub fn max_abs_diff(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.dims(), b.dims());
    host(a).iter().zip(host(b)).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max)
}
