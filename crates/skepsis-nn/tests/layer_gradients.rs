//! The gradient rule of every layer type against central finite differences in float64.
//!
//! For a layer `y = f(x)` and a random output weighting `g`, the vector-Jacobian product
//! `v = J^T g` must satisfy `<v, e_i> = (<g, f(x + h e_i)> - <g, f(x - h e_i)>) / 2h` for every
//! input element `i` (checked element by element), and likewise for every parameter.

use candle_core::{DType, Device, Tensor};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use skepsis_nn::ops::{Conv2dSpec, Padding2d, Pool2dSpec};
use skepsis_nn::{BatchNorm2d, Conv2d, Layer, Linear, Result};

fn random(dims: &[usize], rng: &mut ChaCha8Rng) -> Tensor {
    let n: usize = dims.iter().product();
    let v: Vec<f64> = (0..n).map(|_| rng.random_range(-1.0..1.0)).collect();
    Tensor::from_vec(v, dims, &Device::Cpu).unwrap()
}

fn dot(a: &Tensor, b: &Tensor) -> f64 {
    (a * b).unwrap().sum_all().unwrap().to_scalar::<f64>().unwrap()
}

fn with_element(t: &Tensor, i: usize, delta: f64) -> Tensor {
    let mut v = t.flatten_all().unwrap().to_vec1::<f64>().unwrap();
    v[i] += delta;
    Tensor::from_vec(v, t.dims(), &Device::Cpu).unwrap()
}

fn assert_close(analytic: f64, numeric: f64, what: &str) {
    let tol = 1e-6 * (1.0 + numeric.abs());
    assert!(
        (analytic - numeric).abs() <= tol,
        "{what}: analytic {analytic} vs finite difference {numeric}"
    );
}

/// Checks the input VJPs and parameter VJPs of `layer` at `inputs` element by element.
fn check_layer(layer: &Layer, inputs: &[Tensor], rng: &mut ChaCha8Rng) -> Result<()> {
    let refs: Vec<&Tensor> = inputs.iter().collect();
    let y = layer.forward(&refs)?;
    let g = random(y.dims(), rng);
    let vjps = layer.input_vjp(&refs, &y, &g)?;
    assert_eq!(vjps.len(), inputs.len());
    let h = 1e-5;
    for (k, (input, vjp)) in inputs.iter().zip(&vjps).enumerate() {
        assert_eq!(vjp.dims(), input.dims(), "{} input {k}: VJP shape", layer.kind());
        let v = vjp.flatten_all()?.to_vec1::<f64>()?;
        for (i, analytic) in v.iter().enumerate() {
            let f = |delta: f64| {
                let mut shifted = inputs.to_vec();
                shifted[k] = with_element(input, i, delta);
                let r: Vec<&Tensor> = shifted.iter().collect();
                dot(&layer.forward(&r).unwrap(), &g)
            };
            let numeric = (f(h) - f(-h)) / (2.0 * h);
            assert_close(*analytic, numeric, &format!("{} d/dinput{k}[{i}]", layer.kind()));
        }
    }
    for (suffix, grad) in layer.param_vjp(&refs, &g)? {
        let (_, param) = layer.named_tensors().into_iter().find(|(s, _)| *s == suffix).unwrap();
        assert_eq!(grad.dims(), param.dims());
        let v = grad.flatten_all()?.to_vec1::<f64>()?;
        for (i, analytic) in v.iter().enumerate() {
            let f = |delta: f64| {
                let l = layer.with_tensor(suffix, with_element(param, i, delta)).unwrap();
                dot(&l.forward(&refs).unwrap(), &g)
            };
            let numeric = (f(h) - f(-h)) / (2.0 * h);
            assert_close(*analytic, numeric, &format!("{} d/d{suffix}[{i}]", layer.kind()));
        }
    }
    Ok(())
}

fn rng() -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(7)
}

#[test]
fn linear_with_and_without_bias() -> Result<()> {
    let mut r = rng();
    for bias in [true, false] {
        let w = random(&[5, 7], &mut r);
        let b = bias.then(|| random(&[5], &mut r));
        let layer = Layer::Linear(Linear::new(w, b)?);
        check_layer(&layer, &[random(&[3, 7], &mut r)], &mut r)?;
    }
    Ok(())
}

#[test]
fn conv2d_geometries() -> Result<()> {
    let mut r = rng();
    /// (in, out, kernel, stride, padding, dilation, groups, bias)
    type Case = (usize, usize, [usize; 2], [usize; 2], Padding2d, [usize; 2], usize, bool);
    let cases: &[Case] = &[
        (2, 3, [3, 3], [1, 1], Padding2d::symmetric(1, 1), [1, 1], 1, true),
        (2, 3, [3, 2], [2, 1], Padding2d::symmetric(0, 1), [1, 1], 1, false),
        (4, 4, [3, 3], [1, 1], Padding2d { top: 1, bottom: 0, left: 2, right: 1 }, [1, 1], 2, true),
        (3, 2, [2, 2], [1, 2], Padding2d::symmetric(2, 2), [2, 2], 1, true),
        (4, 4, [3, 3], [2, 2], Padding2d::symmetric(1, 1), [1, 1], 4, true),
    ];
    for &(cin, cout, k, stride, padding, dilation, groups, bias) in cases {
        let spec = Conv2dSpec { stride, padding, dilation, groups };
        let w = random(&[cout, cin / groups, k[0], k[1]], &mut r);
        let b = bias.then(|| random(&[cout], &mut r));
        let layer = Layer::Conv2d(Conv2d::new(w, b, spec)?);
        check_layer(&layer, &[random(&[2, cin, 6, 5], &mut r)], &mut r)?;
    }
    Ok(())
}

#[test]
fn activations() -> Result<()> {
    let mut r = rng();
    // Inputs away from the kinks at 0 so that finite differences are valid.
    let x = random(&[2, 3, 4, 4], &mut r);
    let x = (x.sign()?.affine(0.1, 0.0)? + &x)?;
    for layer in [
        Layer::Relu,
        Layer::LeakyRelu { negative_slope: 0.2 },
        Layer::Tanh,
        Layer::Sigmoid,
        Layer::Softmax,
        Layer::Identity,
        Layer::Dropout { p: 0.5 },
        Layer::Flatten,
        Layer::Reshape { shape: vec![6, 8] },
    ] {
        check_layer(&layer, std::slice::from_ref(&x), &mut r)?;
    }
    Ok(())
}

#[test]
fn pooling() -> Result<()> {
    let mut r = rng();
    // Distinct values: no ties, so max pooling is differentiable.
    let x = random(&[2, 3, 7, 6], &mut r);
    let overlapping = Pool2dSpec {
        kernel: [3, 3],
        stride: [2, 2],
        padding: Padding2d::symmetric(1, 1),
        count_include_pad: false,
    };
    for layer in [
        Layer::MaxPool2d(Pool2dSpec::square(2)),
        Layer::MaxPool2d(overlapping),
        Layer::AvgPool2d(Pool2dSpec::square(2)),
        Layer::AvgPool2d(overlapping),
        Layer::AvgPool2d(Pool2dSpec { count_include_pad: true, ..overlapping }),
        Layer::AdaptiveAvgPool2d { output_size: [3, 4] },
        Layer::AdaptiveAvgPool2d { output_size: [1, 1] },
    ] {
        check_layer(&layer, std::slice::from_ref(&x), &mut r)?;
    }
    Ok(())
}

#[test]
fn max_pool_ties_go_to_the_first_maximum() -> Result<()> {
    // A 2x2 window of equal values: the whole gradient goes to the top-left element.
    let x = Tensor::zeros((1, 1, 2, 2), DType::F64, &Device::Cpu)?;
    let layer = Layer::MaxPool2d(Pool2dSpec::square(2));
    let y = layer.forward(&[&x])?;
    let g = Tensor::ones(y.dims(), DType::F64, &Device::Cpu)?;
    let vjp = layer.input_vjp(&[&x], &y, &g)?.remove(0);
    assert_eq!(vjp.flatten_all()?.to_vec1::<f64>()?, vec![1.0, 0.0, 0.0, 0.0]);
    Ok(())
}

#[test]
fn batchnorm_eval() -> Result<()> {
    let mut r = rng();
    let c = 3;
    let var = random(&[c], &mut r).abs()?.affine(1.0, 0.5)?;
    let bn = BatchNorm2d::new(
        random(&[c], &mut r),
        random(&[c], &mut r),
        random(&[c], &mut r),
        var,
        1e-5,
    )?;
    check_layer(&Layer::BatchNorm2d(bn), &[random(&[2, c, 3, 3], &mut r)], &mut r)
}

#[test]
fn add_and_concat() -> Result<()> {
    let mut r = rng();
    let a = random(&[2, 3, 2, 2], &mut r);
    let b = random(&[2, 3, 2, 2], &mut r);
    let c = random(&[2, 1, 2, 2], &mut r);
    check_layer(&Layer::Add, &[a.clone(), b.clone()], &mut r)?;
    check_layer(&Layer::Concat { axis: 1 }, &[a, c.clone(), b], &mut r)?;
    check_layer(&Layer::Concat { axis: 3 }, &[c.clone(), c], &mut r)
}
