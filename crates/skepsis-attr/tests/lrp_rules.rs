//! Every LRP rule re-implemented as plain float64 matrix algebra and compared with the rule
//! on a single Linear and a single Conv2d layer, with and without bias (as zennit's test
//! suite does). A convolution is turned into its dense matrix `A` (`[out, in]` per sample,
//! one entry per (output, input) pair, so `dense(W⁺) = dense(W)⁺`), and each rule is written
//! out with `A`, its positive and negative parts, matrix-vector products and `Aᵀ s`.

use candle_core::{DType, Device, Tensor};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use skepsis_attr::rules::{
    AlphaBeta, Epsilon, ExcitationBackprop, Flat, Gamma, Norm, Pass, WSquare, ZBox, ZPlus,
};
use skepsis_nn::ops::{Conv2dSpec, Padding2d, Pool2dSpec};
use skepsis_nn::{Conv2d, Layer, Linear, Node, Rule, Step, ValueId};

fn random(rng: &mut ChaCha8Rng, n: usize) -> Vec<f64> {
    (0..n).map(|_| rng.random_range(-1.0..1.0)).collect()
}

/// A weighted layer as a dense per-sample matrix `a` `[out, inp]` and bias `[out]`.
struct Dense {
    a: Vec<f64>,
    bias: Vec<f64>,
    out: usize,
    inp: usize,
}

impl Dense {
    fn map(&self, f: impl Fn(f64) -> f64) -> Vec<f64> {
        self.a.iter().map(|&v| f(v)).collect()
    }
}

fn matvec(a: &[f64], x: &[f64], out: usize) -> Vec<f64> {
    let inp = x.len();
    (0..out).map(|j| (0..inp).map(|i| a[j * inp + i] * x[i]).sum()).collect()
}

fn matvec_t(a: &[f64], s: &[f64], inp: usize) -> Vec<f64> {
    (0..inp).map(|i| (0..s.len()).map(|j| a[j * inp + i] * s[j]).sum()).collect()
}

fn add(a: &[f64], b: &[f64]) -> Vec<f64> {
    a.iter().zip(b).map(|(x, y)| x + y).collect()
}

fn mul(a: &[f64], b: &[f64]) -> Vec<f64> {
    a.iter().zip(b).map(|(x, y)| x * y).collect()
}

fn stab(z: f64, e: f64) -> f64 {
    if z >= 0.0 {
        z + e
    } else {
        z - e
    }
}

fn pos(v: &[f64]) -> Vec<f64> {
    v.iter().map(|x| x.max(0.0)).collect()
}

fn neg(v: &[f64]) -> Vec<f64> {
    v.iter().map(|x| x.min(0.0)).collect()
}

/// The dense matrix of a conv with weight `[o, c, k, k]` on `[c, h, w]` inputs.
fn dense_conv(
    w: &[f64],
    dims: [usize; 4],
    hw: [usize; 2],
    stride: usize,
    pad: usize,
) -> (Vec<f64>, usize, usize) {
    let [o, c, k, _] = dims;
    let [h, wd] = hw;
    let oh = (h + 2 * pad - k) / stride + 1;
    let ow = (wd + 2 * pad - k) / stride + 1;
    let (out, inp) = (o * oh * ow, c * h * wd);
    let mut a = vec![0.0; out * inp];
    for oc in 0..o {
        for i in 0..oh {
            for j in 0..ow {
                let row = (oc * oh + i) * ow + j;
                for ic in 0..c {
                    for p in 0..k {
                        for q in 0..k {
                            let (r, s) = (
                                (i * stride + p) as isize - pad as isize,
                                (j * stride + q) as isize - pad as isize,
                            );
                            if r < 0 || s < 0 || r >= h as isize || s >= wd as isize {
                                continue;
                            }
                            let col = (ic * h + r as usize) * wd + s as usize;
                            a[row * inp + col] += w[((oc * c + ic) * k + p) * k + q];
                        }
                    }
                }
            }
        }
    }
    (a, out, inp)
}

/// The rule's reference result for one sample.
fn reference(rule: &str, d: &Dense, x: &[f64], r: &[f64], structure: &Dense) -> Vec<f64> {
    let e = 1e-6;
    let (ap, an) = (d.map(|v| v.max(0.0)), d.map(|v| v.min(0.0)));
    let (bp, bn) = (pos(&d.bias), neg(&d.bias));
    let (xp, xn) = (pos(x), neg(x));
    let div = |r: &[f64], z: &[f64]| -> Vec<f64> {
        r.iter().zip(z).map(|(r, z)| r / stab(*z, e)).collect()
    };
    let t = |a: &[f64], s: &[f64]| matvec_t(a, s, d.inp);
    let f = |a: &[f64], x: &[f64]| matvec(a, x, d.out);
    match rule {
        "epsilon" => {
            let z = add(&f(&d.a, x), &d.bias);
            let s: Vec<f64> = r.iter().zip(&z).map(|(r, z)| r / stab(*z, 0.25)).collect();
            mul(x, &t(&d.a, &s))
        }
        "zplus" => {
            let s = div(r, &add(&add(&f(&ap, &xp), &f(&an, &xn)), &bp));
            add(&mul(&xp, &t(&ap, &s)), &mul(&xn, &t(&an, &s)))
        }
        "alpha-beta" => {
            let sp = div(r, &add(&add(&f(&ap, &xp), &f(&an, &xn)), &bp));
            let sn = div(r, &add(&add(&f(&an, &xp), &f(&ap, &xn)), &bn));
            let p = add(&mul(&xp, &t(&ap, &sp)), &mul(&xn, &t(&an, &sp)));
            let n = add(&mul(&xp, &t(&an, &sn)), &mul(&xn, &t(&ap, &sn)));
            p.iter().zip(&n).map(|(p, n)| 2.0 * p - n).collect()
        }
        "gamma" => {
            let g = 0.25;
            let wp: Vec<f64> = d.a.iter().map(|&v| v + g * v.max(0.0)).collect();
            let wn: Vec<f64> = d.a.iter().map(|&v| v + g * v.min(0.0)).collect();
            let bpp: Vec<f64> = d.bias.iter().map(|&v| v + g * v.max(0.0)).collect();
            let bnn: Vec<f64> = d.bias.iter().map(|&v| v + g * v.min(0.0)).collect();
            let z = add(&f(&d.a, x), &d.bias);
            let zp = add(&add(&f(&wp, &xp), &f(&wn, &xn)), &bpp);
            let zn = add(&add(&f(&wn, &xp), &f(&wp, &xn)), &bnn);
            let sp: Vec<f64> =
                (0..d.out).map(|j| if z[j] > 0.0 { r[j] / stab(zp[j], e) } else { 0.0 }).collect();
            let sn: Vec<f64> =
                (0..d.out).map(|j| if z[j] < 0.0 { r[j] / stab(zn[j], e) } else { 0.0 }).collect();
            add(
                &mul(&xp, &add(&t(&wp, &sp), &t(&wn, &sn))),
                &mul(&xn, &add(&t(&wn, &sp), &t(&wp, &sn))),
            )
        }
        "zbox" => {
            let (l, h) = (vec![-1.0; d.inp], vec![1.0; d.inp]);
            let z: Vec<f64> = f(&d.a, x)
                .iter()
                .zip(f(&ap, &l))
                .zip(f(&an, &h))
                .map(|((a, b), c)| a - b - c)
                .collect();
            let s = div(r, &z);
            let v = mul(x, &t(&d.a, &s));
            let lp = mul(&l, &t(&ap, &s));
            let hn = mul(&h, &t(&an, &s));
            (0..d.inp).map(|i| v[i] - lp[i] - hn[i]).collect()
        }
        "flat" => {
            let z = f(&structure.a, &vec![1.0; d.inp]);
            t(&structure.a, &div(r, &z))
        }
        "wsquare" => {
            let a2 = d.map(|v| v * v);
            let b2: Vec<f64> = d.bias.iter().map(|b| b * b).collect();
            let z = add(&f(&a2, &vec![1.0; d.inp]), &b2);
            t(&a2, &div(r, &z))
        }
        "excitation" => {
            let s = div(r, &f(&ap, x));
            mul(x, &t(&ap, &s))
        }
        other => panic!("no reference for {other}"),
    }
}

fn rules() -> Vec<(&'static str, Box<dyn Rule>)> {
    vec![
        ("epsilon", Box::new(Epsilon::new(0.25).unwrap())),
        ("zplus", Box::new(ZPlus::new(1e-6).unwrap())),
        ("alpha-beta", Box::new(AlphaBeta::new(2.0, 1.0, 1e-6).unwrap())),
        ("gamma", Box::new(Gamma::new(0.25, 1e-6).unwrap())),
        ("zbox", Box::new(ZBox::new(-1.0, 1.0, 1e-6).unwrap())),
        ("flat", Box::new(Flat::new(1e-6).unwrap())),
        ("wsquare", Box::new(WSquare::new(1e-6).unwrap())),
        ("excitation", Box::new(ExcitationBackprop::new(1e-6).unwrap())),
    ]
}

fn to_vec(t: &Tensor) -> Vec<f64> {
    t.flatten_all().unwrap().to_dtype(DType::F64).unwrap().to_vec1::<f64>().unwrap()
}

/// Runs every rule on `layer` (one batch of `n` samples) and compares with the reference.
fn check_layer(
    layer: Layer,
    dense: &Dense,
    structure: &Dense,
    x_dims: &[usize],
    rng: &mut ChaCha8Rng,
    what: &str,
) {
    let n = x_dims[0];
    let x = Tensor::from_vec(random(rng, x_dims.iter().product()), x_dims, &Device::Cpu).unwrap();
    let node = Node { name: "layer".into(), layer, inputs: vec![ValueId::INPUT] };
    let y = node.layer.forward(&[&x]).unwrap();
    let r = Tensor::from_vec(random(rng, y.elem_count()), y.dims(), &Device::Cpu).unwrap();
    let step = Step { index: 0, node: &node, inputs: vec![&x], output: &y };
    let (xv, rv) = (to_vec(&x), to_vec(&r));
    for (name, rule) in rules() {
        let got = to_vec(&rule.backward(&step, &r).unwrap()[0]);
        for s in 0..n {
            let xs = &xv[s * dense.inp..(s + 1) * dense.inp];
            let rs = &rv[s * dense.out..(s + 1) * dense.out];
            let want = reference(name, dense, xs, rs, structure);
            let scale = want.iter().fold(0.0f64, |m, v| m.max(v.abs()));
            for (i, (g, w)) in got[s * dense.inp..(s + 1) * dense.inp].iter().zip(&want).enumerate()
            {
                assert!(
                    (g - w).abs() <= 1e-10 * scale + 1e-13,
                    "{what}, rule {name}, sample {s}, element {i}: {g} vs reference {w}"
                );
            }
        }
    }
}

#[test]
fn rules_match_matrix_algebra_on_linear_layers() {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let (o, i) = (5, 7);
    for with_bias in [false, true] {
        let w = random(&mut rng, o * i);
        let b = if with_bias { random(&mut rng, o) } else { vec![0.0; o] };
        let wt = Tensor::from_vec(w.clone(), (o, i), &Device::Cpu).unwrap();
        let bt = with_bias.then(|| Tensor::from_vec(b.clone(), o, &Device::Cpu).unwrap());
        let layer = Layer::Linear(Linear::new(wt, bt).unwrap());
        let dense = Dense { a: w, bias: b, out: o, inp: i };
        let structure = Dense { a: vec![1.0; o * i], bias: vec![0.0; o], out: o, inp: i };
        check_layer(
            layer,
            &dense,
            &structure,
            &[3, i],
            &mut rng,
            &format!("linear (bias {with_bias})"),
        );
    }
}

#[test]
fn rules_match_matrix_algebra_on_conv_layers() {
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let dims = [3, 2, 3, 3];
    let hw = [6, 5];
    for (with_bias, stride, pad) in [(false, 1, 1), (true, 1, 1), (true, 2, 0), (false, 2, 1)] {
        let w = random(&mut rng, dims.iter().product());
        let (a, out, inp) = dense_conv(&w, dims, hw, stride, pad);
        let (ones, _, _) = dense_conv(&vec![1.0; w.len()], dims, hw, stride, pad);
        let per_channel = if with_bias { random(&mut rng, dims[0]) } else { vec![0.0; dims[0]] };
        let positions = out / dims[0];
        let bias: Vec<f64> = (0..out).map(|j| per_channel[j / positions]).collect();
        let spec = Conv2dSpec {
            stride: [stride, stride],
            padding: Padding2d::symmetric(pad, pad),
            ..Conv2dSpec::default()
        };
        let wt = Tensor::from_vec(w, dims.to_vec(), &Device::Cpu).unwrap();
        let bt = with_bias
            .then(|| Tensor::from_vec(per_channel.clone(), dims[0], &Device::Cpu).unwrap());
        let layer = Layer::Conv2d(Conv2d::new(wt, bt, spec).unwrap());
        let dense = Dense { a, bias, out, inp };
        let structure = Dense { a: ones, bias: vec![0.0; out], out, inp };
        let what = format!("conv (bias {with_bias}, stride {stride}, padding {pad})");
        check_layer(layer, &dense, &structure, &[2, dims[1], hw[0], hw[1]], &mut rng, &what);
    }
}

#[test]
fn norm_rule_splits_average_pool_and_sum_proportionally() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let x = Tensor::from_vec(random(&mut rng, 16), (1, 1, 4, 4), &Device::Cpu).unwrap();
    let pool = Node {
        name: "pool".into(),
        layer: Layer::AvgPool2d(Pool2dSpec::square(2)),
        inputs: vec![ValueId::INPUT],
    };
    let y = pool.layer.forward(&[&x]).unwrap();
    let r = Tensor::from_vec(random(&mut rng, 4), (1, 1, 2, 2), &Device::Cpu).unwrap();
    let got = to_vec(
        &Norm::new(1e-6)
            .unwrap()
            .backward(&Step { index: 0, node: &pool, inputs: vec![&x], output: &y }, &r)
            .unwrap()[0],
    );
    let (xv, yv, rv) = (to_vec(&x), to_vec(&y), to_vec(&r));
    for h in 0..4 {
        for w in 0..4 {
            let j = (h / 2) * 2 + w / 2;
            // y_j = mean of its window: R_i = x_i / 4 * R_j / stab(y_j).
            let want = xv[h * 4 + w] / 4.0 * rv[j] / stab(yv[j], 1e-6);
            assert!(
                (got[h * 4 + w] - want).abs() < 1e-12,
                "avgpool ({h}, {w}): {} vs {want}",
                got[h * 4 + w]
            );
        }
    }
    // Residual sum: R_k = x_k R / stab(x_1 + x_2).
    let a = Tensor::from_vec(random(&mut rng, 6), (2, 3), &Device::Cpu).unwrap();
    let b = Tensor::from_vec(random(&mut rng, 6), (2, 3), &Device::Cpu).unwrap();
    let sum = Node { name: "res".into(), layer: Layer::Add, inputs: vec![ValueId(1), ValueId(2)] };
    let y = (&a + &b).unwrap();
    let r = Tensor::from_vec(random(&mut rng, 6), (2, 3), &Device::Cpu).unwrap();
    let parts = Norm::new(1e-6)
        .unwrap()
        .backward(&Step { index: 2, node: &sum, inputs: vec![&a, &b], output: &y }, &r)
        .unwrap();
    let (av, bv, yv, rv) = (to_vec(&a), to_vec(&b), to_vec(&y), to_vec(&r));
    let (ga, gb) = (to_vec(&parts[0]), to_vec(&parts[1]));
    for i in 0..6 {
        assert!((ga[i] - av[i] * rv[i] / stab(yv[i], 1e-6)).abs() < 1e-12);
        assert!((gb[i] - bv[i] * rv[i] / stab(yv[i], 1e-6)).abs() < 1e-12);
    }
    // Pass: identity on shape-preserving one-input layers.
    let relu = Node { name: "relu".into(), layer: Layer::Relu, inputs: vec![ValueId::INPUT] };
    let y = relu.layer.forward(&[&a]).unwrap();
    let passed =
        Pass.backward(&Step { index: 0, node: &relu, inputs: vec![&a], output: &y }, &r).unwrap();
    assert_eq!(to_vec(&passed[0]), rv);
}
