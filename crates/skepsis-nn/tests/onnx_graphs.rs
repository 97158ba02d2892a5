//! Hand-written ONNX graphs: a residual network with a concatenated branch (forward against
//! a plain-loop reference, gradient against central finite differences in f64), and the
//! unsupported-operator report.

mod onnx_support;

use candle_core::{DType, Device, Tensor};
use onnx_support::*;
use skepsis_nn::{input_gradient, Error, Layer, Model};

/// Plain-loop 2-D convolution of one `[c, h, w]` sample; padding `[top, left, bottom,
/// right]`, stride 1.
fn conv(
    x: &[f64],
    [c, h, w]: [usize; 3],
    weight: &[f64],
    [m, kh, kw]: [usize; 3],
    bias: Option<&[f64]>,
    [top, left, bottom, right]: [usize; 4],
) -> (Vec<f64>, [usize; 3]) {
    let oh = h + top + bottom - kh + 1;
    let ow = w + left + right - kw + 1;
    let mut y = vec![0.0; m * oh * ow];
    for o in 0..m {
        for i in 0..oh {
            for j in 0..ow {
                let mut s = bias.map_or(0.0, |b| b[o]);
                for ci in 0..c {
                    for a in 0..kh {
                        for b in 0..kw {
                            let (r, q) =
                                ((i + a) as isize - top as isize, (j + b) as isize - left as isize);
                            if r >= 0 && q >= 0 && (r as usize) < h && (q as usize) < w {
                                s += weight[((o * c + ci) * kh + a) * kw + b]
                                    * x[(ci * h + r as usize) * w + q as usize];
                            }
                        }
                    }
                }
                y[(o * oh + i) * ow + j] = s;
            }
        }
    }
    (y, [m, oh, ow])
}

struct Residual {
    w1: Vec<f64>,
    b1: Vec<f64>,
    w2: Vec<f64>,
    b2: Vec<f64>,
    w3: Vec<f64>,
    fc_w: Vec<f64>,
    fc_b: Vec<f64>,
}

impl Residual {
    fn new() -> Self {
        Residual {
            w1: values(1, 3 * 2 * 9),
            b1: values(2, 3),
            w2: values(3, 3 * 3 * 9),
            b2: values(4, 3),
            w3: values(5, 2 * 2 * 4),
            fc_w: values(6, 20 * 3),
            fc_b: values(7, 3),
        }
    }

    /// input [N,2,4,4] -> conv_a (3x3, pad 1) -> relu -> conv (auto_pad SAME_UPPER, no
    /// bias) + bias Add (fused) -> Add with the relu (residual) -> Concat with a 2x2 conv
    /// of the input (asymmetric pads) -> MaxPool 2x2 -> Flatten -> MatMul + Add (fused).
    fn onnx(&self, opset: i64) -> skepsis_nn::onnx::proto::ModelProto {
        let nodes = vec![
            node(
                "Conv",
                "/block/conv_a/Conv",
                &["input", "block.conv_a.weight", "block.conv_a.bias"],
                &["c1"],
                vec![attr_ints("pads", &[1, 1, 1, 1]), attr_ints("kernel_shape", &[3, 3])],
            ),
            node("Relu", "/block/relu/Relu", &["c1"], &["r1"], vec![]),
            node("Conv", "", &["r1", "w2"], &["c2"], vec![attr_string("auto_pad", "SAME_UPPER")]),
            node("Add", "bias_add", &["c2", "b2"], &["c2b"], vec![]),
            node("Add", "skip", &["r1", "c2b"], &["s"], vec![]),
            node(
                "Conv",
                "branch",
                &["input", "w3"],
                &["c3"],
                vec![attr_ints("pads", &[1, 0, 0, 1])],
            ),
            node("Concat", "cat", &["s", "c3"], &["cat"], vec![attr_int("axis", 1)]),
            node(
                "MaxPool",
                "pool",
                &["cat"],
                &["p"],
                vec![attr_ints("kernel_shape", &[2, 2]), attr_ints("strides", &[2, 2])],
            ),
            node("Flatten", "flat", &["p"], &["f"], vec![]),
            node("MatMul", "fc_mm", &["f", "fc_w"], &["mm"], vec![]),
            node("Add", "fc_add", &["mm", "fc_b"], &["logits"], vec![]),
        ];
        let inits = vec![
            double_tensor("block.conv_a.weight", &[3, 2, 3, 3], &self.w1),
            double_tensor("block.conv_a.bias", &[3], &self.b1),
            double_tensor("w2", &[3, 3, 3, 3], &self.w2),
            double_tensor("b2", &[3, 1, 1], &self.b2),
            double_tensor("w3", &[2, 2, 2, 2], &self.w3),
            double_tensor("fc_w", &[20, 3], &self.fc_w),
            double_tensor("fc_b", &[3], &self.fc_b),
        ];
        model(opset, nodes, inits, &[2, 4, 4], "logits")
    }

    /// The same network as plain loops over one sample.
    fn forward(&self, x: &[f64]) -> Vec<f64> {
        let (c1, s1) = conv(x, [2, 4, 4], &self.w1, [3, 3, 3], Some(&self.b1), [1, 1, 1, 1]);
        let r1: Vec<f64> = c1.iter().map(|v| v.max(0.0)).collect();
        let (c2, _) = conv(&r1, s1, &self.w2, [3, 3, 3], Some(&self.b2), [1, 1, 1, 1]);
        let s: Vec<f64> = r1.iter().zip(&c2).map(|(a, b)| a + b).collect();
        let (c3, s3) = conv(x, [2, 4, 4], &self.w3, [2, 2, 2], None, [1, 0, 0, 1]);
        assert_eq!(s3, [2, 4, 4]);
        let cat: Vec<f64> = s.iter().chain(&c3).copied().collect(); // [5, 4, 4]
        let mut pooled = [f64::NEG_INFINITY; 5 * 2 * 2];
        for c in 0..5 {
            for i in 0..4 {
                for j in 0..4 {
                    let p = &mut pooled[(c * 2 + i / 2) * 2 + j / 2];
                    *p = p.max(cat[(c * 4 + i) * 4 + j]);
                }
            }
        }
        (0..3)
            .map(|o| self.fc_b[o] + (0..20).map(|k| pooled[k] * self.fc_w[k * 3 + o]).sum::<f64>())
            .collect()
    }
}

fn input(n: usize, seed: u64) -> Tensor {
    Tensor::from_vec(values(seed, n * 32), (n, 2, 4, 4), &Device::Cpu).unwrap()
}

#[test]
fn residual_network_imports_and_matches_a_plain_loop_forward() {
    let net = Residual::new();
    for opset in [11, 13, 17, 21] {
        let model = import(&net.onnx(opset)).unwrap();
        let names: Vec<(&str, &str)> =
            model.nodes().iter().map(|n| (n.name.as_str(), n.layer.kind())).collect();
        assert_eq!(
            names,
            [
                ("block.conv_a", "conv2d"),
                ("block.relu", "relu"),
                ("conv_2", "conv2d"),
                ("skip", "add"),
                ("branch", "conv2d"),
                ("cat", "concat"),
                ("pool", "maxpool2d"),
                ("flat", "flatten"),
                ("fc_mm", "linear"),
            ]
        );
        let x = input(3, 11);
        let y = model.forward(&x).unwrap().to_vec2::<f64>().unwrap();
        let xs = x.flatten_all().unwrap().to_vec1::<f64>().unwrap();
        for (n, row) in y.iter().enumerate() {
            let expected = net.forward(&xs[n * 32..(n + 1) * 32]);
            for (a, e) in row.iter().zip(&expected) {
                assert!((a - e).abs() < 1e-12, "opset {opset}: {a} vs {e}");
            }
        }
    }
}

/// Central finite differences of `sum(seed * model(x))` in f64.
fn finite_difference(model: &Model, x: &Tensor, seed: &Tensor) -> Vec<f64> {
    let xs = x.flatten_all().unwrap().to_vec1::<f64>().unwrap();
    let h = 1e-6;
    let f = |v: &[f64]| -> f64 {
        let t = Tensor::from_vec(v.to_vec(), x.dims(), &Device::Cpu).unwrap();
        (model.forward(&t).unwrap() * seed).unwrap().sum_all().unwrap().to_scalar::<f64>().unwrap()
    };
    (0..xs.len())
        .map(|i| {
            let (mut up, mut down) = (xs.clone(), xs.clone());
            up[i] += h;
            down[i] -= h;
            (f(&up) - f(&down)) / (2.0 * h)
        })
        .collect()
}

#[test]
fn residual_network_gradient_matches_finite_differences() {
    let model = import(&Residual::new().onnx(17)).unwrap();
    assert_eq!(model.dtype(), DType::F64);
    let x = input(2, 21);
    let seed = Tensor::from_vec(values(22, 6), (2, 3), &Device::Cpu).unwrap();
    let (_, grad) = input_gradient(&model, &x, &seed).unwrap();
    let grad = grad.flatten_all().unwrap().to_vec1::<f64>().unwrap();
    let fd = finite_difference(&model, &x, &seed);
    let scale = fd.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    assert!(scale > 0.1, "the gradient is not trivially zero");
    for (i, (g, d)) in grad.iter().zip(&fd).enumerate() {
        assert!(
            (g - d).abs() <= 1e-6 * scale,
            "element {i}: backward {g} vs finite difference {d}"
        );
    }
}

#[test]
fn unsupported_operators_are_all_listed_with_their_nodes() {
    let mut nodes = vec![
        node("Pad", "pad1", &["input"], &["a"], vec![]),
        node("Relu", "relu", &["a"], &["b"], vec![]),
        node("Resize", "", &["b"], &["c"], vec![]),
        node("FusedConv", "fused", &["c"], &["d"], vec![]),
        node("Flatten", "flat", &["d"], &["logits"], vec![]),
    ];
    nodes[3].domain = "com.microsoft".into();
    let err = import(&model(17, nodes, vec![], &[1, 4, 4], "logits")).unwrap_err();
    match &err {
        Error::OnnxUnsupportedOperators { operators } => assert_eq!(
            operators,
            &[
                ("pad1".to_string(), "Pad".to_string()),
                ("#2".to_string(), "Resize".to_string()),
                ("fused".to_string(), "com.microsoft::FusedConv".to_string()),
            ]
        ),
        other => panic!("unexpected error {other}"),
    }
    let text = err.to_string();
    for needle in
        ["3 unsupported", "Pad (node 'pad1')", "Resize (node '#2')", "com.microsoft::FusedConv"]
    {
        assert!(text.contains(needle), "{text}");
    }
}

#[test]
fn nodes_that_do_not_reach_the_output_are_ignored() {
    let nodes = vec![
        node("Relu", "relu", &["input"], &["a"], vec![]),
        node("NonMaxSuppression", "dead", &["input"], &["unused"], vec![]),
        node("Flatten", "flat", &["a"], &["logits"], vec![]),
    ];
    let m = import(&model(17, nodes, vec![], &[1, 2, 2], "logits")).unwrap();
    assert_eq!(m.nodes().len(), 2);
}

#[test]
fn layer_sizes_come_from_shape_inference() {
    let net = Residual::new();
    let m = import(&net.onnx(17)).unwrap();
    let Layer::Linear(l) = &m.nodes()[8].layer else { panic!("linear") };
    assert_eq!((l.in_features(), l.out_features()), (20, 3));
    assert!(l.bias.is_some(), "the Add was fused as the bias");
    assert_eq!(m.num_classes().unwrap(), 3);
}
