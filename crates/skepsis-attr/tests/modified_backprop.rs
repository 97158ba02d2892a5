//! Properties of the modified-backpropagation methods on small float64 models built here,
//! including residual (`Add`) blocks: LRP conservation, DeepLIFT summation-to-delta,
//! batched == unbatched, BatchNorm merging, and errors that name the offending node or
//! parameter.

use candle_core::{DType, Device, Tensor};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use skepsis_attr::canonizer::{Canonizer, MergeBatchNorm};
use skepsis_attr::composite::{preset, Composite, CompositeParams, Selector};
use skepsis_attr::rules::{AlphaBeta, Epsilon, Flat, Gamma, Guided, Norm, ZBox};
use skepsis_attr::{
    registry, DeepLift, DeepLiftRule, DeepLiftSettings, DeepShap, Lrp, MaxPoolRule, Method,
    Reference, Target,
};
use skepsis_nn::ops::{Conv2dSpec, Padding2d, Pool2dSpec};
use skepsis_nn::{BatchNorm2d, Conv2d, Layer, Linear, Model, Node, ValueId};

fn tensor(rng: &mut ChaCha8Rng, dims: &[usize], low: f64, high: f64) -> Tensor {
    let v: Vec<f64> = (0..dims.iter().product()).map(|_| rng.random_range(low..high)).collect();
    Tensor::from_vec(v, dims, &Device::Cpu).unwrap()
}

fn linear(rng: &mut ChaCha8Rng, o: usize, i: usize, bias: bool) -> Layer {
    let s = 1.0 / (i as f64).sqrt();
    let b = bias.then(|| tensor(rng, &[o], -0.3, 0.3));
    Layer::Linear(Linear::new(tensor(rng, &[o, i], -s, s * 1.2), b).unwrap())
}

fn conv(rng: &mut ChaCha8Rng, o: usize, c: usize, bias: bool) -> Layer {
    let s = 1.0 / ((c * 9) as f64).sqrt();
    let spec = Conv2dSpec { padding: Padding2d::symmetric(1, 1), ..Conv2dSpec::default() };
    let b = bias.then(|| tensor(rng, &[o], -0.3, 0.3));
    Layer::Conv2d(Conv2d::new(tensor(rng, &[o, c, 3, 3], -s, s * 1.2), b, spec).unwrap())
}

fn node(name: &str, layer: Layer, inputs: &[usize]) -> Node {
    Node { name: name.into(), layer, inputs: inputs.iter().map(|&v| ValueId(v)).collect() }
}

/// flatten -> fc1 -> relu1 -> fc2 -> relu2 -> res = relu1 + relu2 -> fc3.
fn residual_mlp(seed: u64, bias: bool) -> Model {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let nodes = vec![
        node("flatten", Layer::Flatten, &[0]),
        node("fc1", linear(&mut rng, 12, 16, bias), &[1]),
        node("relu1", Layer::Relu, &[2]),
        node("fc2", linear(&mut rng, 12, 12, bias), &[3]),
        node("relu2", Layer::Relu, &[4]),
        node("res", Layer::Add, &[3, 5]),
        node("fc3", linear(&mut rng, 4, 12, bias), &[6]),
    ];
    Model::new("residual-mlp", nodes, vec![1, 4, 4]).unwrap()
}

/// conv1 -> relu1 -> conv2 -> relu2 -> res = relu1 + relu2 -> pool -> flatten -> fc.
fn residual_cnn(seed: u64, bias: bool, max_pool: bool) -> Model {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let pool = if max_pool {
        Layer::MaxPool2d(Pool2dSpec::square(2))
    } else {
        Layer::AvgPool2d(Pool2dSpec::square(2))
    };
    let nodes = vec![
        node("conv1", conv(&mut rng, 4, 2, bias), &[0]),
        node("relu1", Layer::Relu, &[1]),
        node("conv2", conv(&mut rng, 4, 4, bias), &[2]),
        node("relu2", Layer::Relu, &[3]),
        node("res", Layer::Add, &[2, 4]),
        node("pool", pool, &[5]),
        node("flatten", Layer::Flatten, &[6]),
        node("fc", linear(&mut rng, 3, 36, bias), &[7]),
    ];
    Model::new("residual-cnn", nodes, vec![2, 6, 6]).unwrap()
}

fn inputs(model: &Model, n: usize, seed: u64) -> Tensor {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut dims = vec![n];
    dims.extend_from_slice(model.input_shape());
    tensor(&mut rng, &dims, 0.0, 1.0)
}

fn sums(t: &Tensor) -> Vec<f64> {
    t.flatten_from(1).unwrap().sum(1).unwrap().to_dtype(DType::F64).unwrap().to_vec1().unwrap()
}

fn logits(model: &Model, x: &Tensor, targets: &[usize]) -> Vec<f64> {
    let y = model.forward(x).unwrap().to_vec2::<f64>().unwrap();
    targets.iter().enumerate().map(|(i, &t)| y[i][t]).collect()
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f64 {
    (a - b)
        .unwrap()
        .abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar::<f64>()
        .unwrap()
}

/// Epsilon -> 0 on every weighted layer, the base map with a negligible stabilizer.
fn lrp_zero() -> Composite {
    Composite::new("lrp-0")
        .with(Selector::kinds(&["linear", "conv2d"]), Epsilon::new(1e-12).unwrap())
        .with_lrp_base(1e-12)
        .unwrap()
}

const TARGETS: [usize; 5] = [0, 1, 2, 0, 1];

#[test]
fn lrp_conserves_the_explained_logit_without_biases() {
    let tiny =
        CompositeParams { epsilon: Some(1e-12), stabilizer: 1e-12, ..CompositeParams::default() };
    let models =
        [residual_mlp(1, false), residual_cnn(2, false, true), residual_cnn(3, false, false)];
    for model in &models {
        let x = inputs(model, 5, 7);
        let targets = Target::Classes(TARGETS.to_vec());
        let f = logits(model, &x, &TARGETS);
        let mut methods = vec![Lrp::new("lrp-0", lrp_zero())];
        for name in ["epsilon-plus-flat", "epsilon-gamma-box", "epsilon-alpha2-beta1-flat"] {
            methods.push(Lrp::new(name, preset(name, &tiny).unwrap()));
        }
        for method in methods {
            let map = method.attribute(model, &x, &targets).unwrap().map;
            for (s, (r, f)) in sums(&map).iter().zip(&f).enumerate() {
                assert!(
                    (r - f).abs() <= 1e-8 * f.abs().max(1.0),
                    "{} on {}: sample {s} relevance sums to {r}, logit {f}",
                    method.name(),
                    model.name()
                );
            }
        }
    }
}

#[test]
fn lrp_epsilon_zero_equals_gradient_times_input_without_biases() {
    let model = residual_cnn(4, false, true);
    let x = inputs(&model, 3, 8);
    let t = Target::Classes(vec![0, 1, 2]);
    let lrp = Lrp::new("lrp-0", lrp_zero());
    // Pass on ReLU equals the gradient where relevance can be non-zero (x > 0 carries it).
    let a = lrp.attribute(&model, &x, &t).unwrap().map;
    let b = registry::parse("gradient-x-input").unwrap().attribute(&model, &x, &t).unwrap().map;
    assert!(max_abs_diff(&a, &b) < 1e-9, "{}", max_abs_diff(&a, &b));
}

fn deeplift(rule: DeepLiftRule, maxpool: MaxPoolRule, reference: Reference) -> DeepLift {
    DeepLift { settings: DeepLiftSettings { rule, maxpool, batch_size: 256 }, reference }
}

#[test]
fn deeplift_sums_to_the_output_difference_on_residual_relu_nets() {
    let cases = [
        (residual_mlp(5, true), MaxPoolRule::Gradient),
        (residual_cnn(6, true, false), MaxPoolRule::Gradient),
        (residual_cnn(7, true, true), MaxPoolRule::Delta),
    ];
    for (model, maxpool) in &cases {
        let x = inputs(model, 5, 9);
        let reference = inputs(model, 1, 10);
        let t = Target::Classes(TARGETS.to_vec());
        for rule in [DeepLiftRule::Rescale, DeepLiftRule::RevealCancel] {
            for r in [Reference::Zero, Reference::Tensor(reference.clone())] {
                let method = deeplift(rule, *maxpool, r);
                let attr = method.attribute(model, &x, &t).unwrap();
                let delta = attr.completeness_delta.unwrap();
                // The delta is reported; check it independently as well.
                let refs = match &method.reference {
                    Reference::Tensor(r) => r.broadcast_as(x.dims()).unwrap().contiguous().unwrap(),
                    _ => x.zeros_like().unwrap(),
                };
                let (fx, fr) = (logits(model, &x, &TARGETS), logits(model, &refs, &TARGETS));
                for (s, sum) in sums(&attr.map).iter().enumerate() {
                    let want = fx[s] - fr[s];
                    assert!(
                        (sum - want).abs() < 1e-10 && delta[s].abs() < 1e-10,
                        "{} on {}: sample {s} sums to {sum}, f(x) - f(x') = {want}",
                        method.name(),
                        model.name()
                    );
                }
            }
        }
    }
}

#[test]
fn reveal_cancel_differs_from_rescale_and_deepshap_sums_to_the_mean_difference() {
    let model = residual_mlp(11, true);
    let x = inputs(&model, 5, 12);
    let t = Target::Classes(TARGETS.to_vec());
    let a = deeplift(DeepLiftRule::Rescale, MaxPoolRule::Gradient, Reference::Zero)
        .attribute(&model, &x, &t)
        .unwrap();
    let b = deeplift(DeepLiftRule::RevealCancel, MaxPoolRule::Gradient, Reference::Zero)
        .attribute(&model, &x, &t)
        .unwrap();
    assert!(max_abs_diff(&a.map, &b.map) > 1e-6, "RevealCancel should differ from Rescale");
    let pool = inputs(&model, 7, 13);
    let shap = DeepShap { references: 4, pool: Some(pool), ..DeepShap::default() };
    let attr = shap.attribute(&model, &x, &t).unwrap();
    assert!(attr.completeness_delta.unwrap().iter().all(|d| d.abs() < 1e-10));
}

#[test]
fn batched_equals_unbatched() {
    let model = residual_cnn(14, true, true);
    let x = inputs(&model, 5, 15);
    let t = Target::Classes(TARGETS.to_vec());
    for spec in [
        "guided-backprop",
        "deconvnet",
        "lrp:composite=epsilon-gamma-box",
        "lrp:rule=alpha-beta,alpha=1,beta=0",
        "deep-taylor",
        "excitation-backprop",
        "deeplift:rule=reveal-cancel,maxpool=delta",
        "deepshap:references=3,seed=5",
    ] {
        let full = registry::parse(spec).unwrap().attribute(&model, &x, &t).unwrap().map;
        for batch in [1, 2] {
            let small = registry::parse(&format!("{spec},batch_size={batch}").replacen(
                ',',
                ":",
                usize::from(!spec.contains(':')),
            ))
            .unwrap()
            .attribute(&model, &x, &t)
            .unwrap()
            .map;
            assert!(max_abs_diff(&full, &small) < 1e-12, "{spec} with batch_size={batch}");
        }
        // One sample alone gives that sample's row.
        let one = registry::parse(spec)
            .unwrap()
            .attribute(&model, &x.narrow(0, 3, 1).unwrap(), &Target::Classes(vec![TARGETS[3]]))
            .unwrap()
            .map;
        assert!(max_abs_diff(&full.narrow(0, 3, 1).unwrap(), &one) < 1e-12, "{spec} on one sample");
    }
}

#[test]
fn merging_batch_norm_keeps_the_function_and_the_original_model() {
    let mut rng = ChaCha8Rng::seed_from_u64(16);
    let bn = BatchNorm2d::new(
        tensor(&mut rng, &[4], 0.5, 1.5),
        tensor(&mut rng, &[4], -0.2, 0.2),
        tensor(&mut rng, &[4], -0.2, 0.2),
        tensor(&mut rng, &[4], 0.5, 1.5),
        1e-5,
    )
    .unwrap();
    for bias in [true, false] {
        let nodes = vec![
            node("conv1", conv(&mut rng, 4, 2, bias), &[0]),
            node("bn1", Layer::BatchNorm2d(bn.clone()), &[1]),
            node("relu1", Layer::Relu, &[2]),
            node("flatten", Layer::Flatten, &[3]),
            node("fc", linear(&mut rng, 3, 144, true), &[4]),
        ];
        let model = Model::new("bn", nodes, vec![2, 6, 6]).unwrap();
        let merged = MergeBatchNorm.apply(&model).unwrap();
        assert!(matches!(merged.nodes()[1].layer, Layer::Identity));
        assert!(matches!(model.nodes()[1].layer, Layer::BatchNorm2d(_)), "original untouched");
        let x = inputs(&model, 3, 17);
        let d = max_abs_diff(&model.forward(&x).unwrap(), &merged.forward(&x).unwrap());
        assert!(d < 1e-12, "merged model differs by {d}");
    }
}

#[test]
fn invalid_rule_parameters_are_rejected() {
    assert!(Epsilon::new(0.0).is_err());
    assert!(Epsilon::new(f64::NAN).is_err());
    assert!(Gamma::new(-0.25, 1e-6).is_err());
    assert!(Flat::new(-1.0).is_err());
    assert!(ZBox::new(1.0, 0.0, 1e-6).is_err());
    assert!(Norm::new(0.0).is_err());
    let e = AlphaBeta::new(1.0, 1.0, 1e-6).unwrap_err().to_string();
    assert!(e.contains("alpha - beta must be 1"), "{e}");
    assert!(AlphaBeta::new(-1.0, -2.0, 1e-6).is_err());
    for (spec, needle) in [
        ("lrp:rule=alpha-beta,alpha=3,beta=1", "alpha"),
        ("lrp:rule=epsilon,epsilon=0", "epsilon"),
        ("lrp:rule=gamma,gamma=-1", "gamma"),
        ("lrp:rule=zbox,low=1,high=0", "low"),
        ("lrp:rule=nope", "unknown rule 'nope'"),
        ("lrp:composite=nope", "unknown composite 'nope'"),
        ("lrp:composite=epsilon-plus,rule=epsilon", "either composite or rule"),
        ("deeplift:rule=cancel", "rule"),
        ("deeplift:maxpool=avg", "maxpool"),
        ("deepshap:references=0", "references"),
        ("deep-taylor:stabilizer=0", "stabilizer"),
    ] {
        let e = registry::parse(spec)
            .err()
            .unwrap_or_else(|| panic!("'{spec}' should fail"))
            .to_string();
        assert!(e.contains(needle), "'{spec}': {e}");
    }
}

#[test]
fn unsupported_layer_rule_pairs_name_the_node() {
    let model = residual_mlp(18, true);
    let x = inputs(&model, 2, 19);
    let t = Target::Classes(vec![0, 1]);
    let cases: Vec<(Composite, &str)> = vec![
        (
            Composite::new("bad").with(Selector::Name("relu1".into()), Epsilon::new(1e-6).unwrap()),
            "node 'relu1': rule 'epsilon' does not support layer type 'relu'",
        ),
        (
            Composite::new("bad").with(Selector::kinds(&["linear"]), Guided),
            "node 'fc3': rule 'guided' does not support layer type 'linear'",
        ),
        (
            Composite::new("bad").with(Selector::Name("fc2".into()), Norm::new(1e-6).unwrap()),
            "node 'fc2': rule 'norm' does not support layer type 'linear'",
        ),
    ];
    for (composite, needle) in cases {
        let e = Lrp::new("bad", composite).attribute(&model, &x, &t).unwrap_err().to_string();
        assert!(e.contains(needle), "{e}");
    }
    let missing =
        Composite::new("bad").with(Selector::Name("conv9".into()), Flat::new(1e-6).unwrap());
    let e = Lrp::new("bad", missing).attribute(&model, &x, &t).unwrap_err().to_string();
    assert!(e.contains("conv9"), "{e}");
    // DeepLIFT has no rule for softmax.
    let mut nodes = model.nodes().to_vec();
    nodes.push(node("softmax", Layer::Softmax, &[7]));
    let with_softmax = Model::new("softmax", nodes, vec![1, 4, 4]).unwrap();
    let e = DeepLift::default().attribute(&with_softmax, &x, &t).unwrap_err().to_string();
    assert!(e.contains("softmax") && e.contains("deeplift"), "{e}");
}

#[test]
fn composites_print_their_recipe() {
    let c = preset("epsilon-gamma-box", &CompositeParams::default()).unwrap();
    let s = c.to_string();
    assert!(s.contains("first weighted layer if conv2d -> zbox(0,1)"), "{s}");
    assert!(s.contains("conv2d -> gamma(0.25)") && s.contains("linear -> epsilon(1e-6)"), "{s}");
    assert!(s.contains("add -> norm"), "{s}");
    // On a model whose first weighted layer is linear, zennit's EpsilonGammaBox puts no ZBox.
    let map = c.rule_map(&residual_mlp(20, true)).unwrap();
    assert_eq!(map.get(1).name(), "epsilon(1e-6)");
    let map = c.rule_map(&residual_cnn(21, true, true)).unwrap();
    assert_eq!(map.get(0).name(), "zbox(0,1)");
    assert_eq!(map.get(4).name(), "norm");
    assert_eq!(map.get(5).name(), "gradient", "max pooling keeps the gradient");
}
