//! The backward walk's fused step (a max pool and the ReLU that feeds it, both under the
//! gradient rule, and the convolution that feeds the ReLU where there is one) gives the
//! values of the separate steps, happens exactly when allowed, and leaves every other walk
//! alone.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use candle_core::{DType, Device, Tensor};
use skepsis_nn::zoo::{self, Architecture};
use skepsis_nn::{
    model_file, BackwardPass, Error, Gradient, Layer, Model, Result, Rule, RuleMap, Step, Stop,
};

fn load(name: &str) -> Model {
    let dir = match std::env::var_os("SKEPSIS_CONFORMANCE_DIR") {
        Some(d) => PathBuf::from(d).join("models"),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance/models"),
    };
    model_file::load(&dir.join(name), DType::F32, &Device::Cpu).unwrap()
}

/// The gradient, but not declared as such: the walk never fuses its steps.
#[derive(Debug)]
struct PlainVjp;

impl Rule for PlainVjp {
    fn name(&self) -> String {
        "plain-vjp".into()
    }

    fn backward(&self, step: &Step<'_>, relevance: &Tensor) -> Result<Vec<Tensor>> {
        Gradient.backward(step, relevance)
    }
}

/// Declares itself the gradient but fails when called: a ReLU walked with it must be fused.
#[derive(Debug)]
struct MustBeFused;

impl Rule for MustBeFused {
    fn name(&self) -> String {
        "must-be-fused".into()
    }

    fn backward(&self, step: &Step<'_>, _: &Tensor) -> Result<Vec<Tensor>> {
        Err(Error::InvalidInput(format!("node {} was walked on its own", step.node.name)))
    }

    fn is_gradient(&self) -> bool {
        true
    }
}

fn rules(model: &Model, rule: Arc<dyn Rule>, on: impl Fn(&Layer) -> bool) -> RuleMap {
    let mut map = RuleMap::gradient(model);
    for (i, node) in model.nodes().iter().enumerate() {
        if on(&node.layer) {
            map.set(i, Arc::clone(&rule)).unwrap();
        }
    }
    map
}

fn flat(t: &Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_vec1::<f32>().unwrap()
}

/// Asserts `|a - b| <= 1e-5 * max|b|` element-wise: the covered convolution sums its terms in
/// another order.
fn assert_close(a: &[f32], b: &[f32], what: &str) {
    assert_eq!(a.len(), b.len(), "{what}");
    let scale = b.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!((x - y).abs() <= 1e-5 * scale, "{what}: element {i}: {x} vs {y}");
    }
}

/// The convolutions that feed a ReLU feeding a max pool.
fn conv_feeding_relu(model: &Model) -> Vec<usize> {
    let nodes = model.nodes();
    relu_feeding_pool(model)
        .into_iter()
        .filter_map(|r| nodes[r].inputs[0].node())
        .filter(|&c| matches!(nodes[c].layer, Layer::Conv2d(_)))
        .collect()
}

fn relu_feeding_pool(model: &Model) -> Vec<usize> {
    let nodes = model.nodes();
    (1..nodes.len())
        .filter(|&i| matches!(nodes[i].layer, Layer::MaxPool2d(_)))
        .filter_map(|i| nodes[i].inputs[0].node())
        .filter(|&r| matches!(nodes[r].layer, Layer::Relu))
        .collect()
}

#[test]
fn fused_walks_equal_the_step_by_step_walk() -> Result<()> {
    let sc_cnn = zoo::build(Architecture::ScCnn, [1, 28, 28], 10, 5)?;
    for (name, model) in [("cnn", load("cnn")), ("sc-cnn", sc_cnn)] {
        let relus = relu_feeding_pool(&model);
        assert_eq!(relus.len(), 2, "{name}: two ReLU -> max pool pairs");
        let x = Tensor::rand(-1f32, 1f32, (4, 1, 28, 28), &Device::Cpu)?;
        let trace = model.trace(&x)?;
        let seed = Tensor::rand(-1f32, 1f32, trace.logits().dims(), &Device::Cpu)?;
        let step_by_step = rules(&model, Arc::new(PlainVjp), |_| true);
        let expected = BackwardPass::new(&model, &trace).rules(&step_by_step).run(&seed)?;
        // The ReLUs, and the convolutions before them, are never walked on their own (they
        // fail if they are).
        let convs = conv_feeding_relu(&model);
        assert_eq!(convs.len(), 2, "{name}: two convolution -> ReLU -> max pool triples");
        let fused = rules(&model, Arc::new(MustBeFused), |l| matches!(l, Layer::Relu));
        let mut fused = rules_with_fc_relu_plain(&model, fused);
        for &c in &convs {
            fused.set(c, Arc::new(MustBeFused))?;
        }
        let got = BackwardPass::new(&model, &trace).rules(&fused).run(&seed)?;
        assert_close(&flat(&got.relevance), &flat(&expected.relevance), name);
        let plain = BackwardPass::new(&model, &trace).run(&seed)?;
        assert_eq!(flat(&plain.relevance), flat(&got.relevance), "{name}");
        // Parameter gradients (training) are unchanged too.
        let with_params = BackwardPass::new(&model, &trace).parameter_gradients().run(&seed)?;
        let reference = BackwardPass::new(&model, &trace)
            .rules(&step_by_step)
            .parameter_gradients()
            .run(&seed)?;
        for ((k, a), (k2, b)) in
            with_params.parameter_gradients.iter().zip(&reference.parameter_gradients)
        {
            assert_eq!(k, k2);
            assert_eq!(flat(a), flat(b), "{name} {k}");
        }
    }
    Ok(())
}

/// A ReLU that does not feed a max pool (the fully connected one) keeps the plain rule.
fn rules_with_fc_relu_plain(model: &Model, mut map: RuleMap) -> RuleMap {
    let fused = relu_feeding_pool(model);
    for (i, node) in model.nodes().iter().enumerate() {
        if matches!(node.layer, Layer::Relu) && !fused.contains(&i) {
            map.set(i, Arc::new(Gradient)).unwrap();
        }
    }
    map
}

/// No fusion where the ReLU's own relevance is asked for: a walk that stops at its output
/// (GradCAM), one that keeps every value, or a ReLU whose rule is not the gradient.
#[test]
fn no_fusion_where_the_relus_relevance_is_needed() -> Result<()> {
    let model = load("cnn");
    let relu = relu_feeding_pool(&model)[1];
    let x = Tensor::rand(-1f32, 1f32, (3, 1, 28, 28), &Device::Cpu)?;
    let trace = model.trace(&x)?;
    let seed = Tensor::rand(-1f32, 1f32, trace.logits().dims(), &Device::Cpu)?;
    let must = rules_with_fc_relu_plain(
        &model,
        rules(&model, Arc::new(MustBeFused), |l| matches!(l, Layer::Relu)),
    );
    let at_relu = BackwardPass::new(&model, &trace).rules(&must).stop_at(Stop::Node(relu));
    let expected = BackwardPass::new(&model, &trace).stop_at(Stop::Node(relu)).run(&seed)?;
    // Stopping at the ReLU's output: the pool's plain step gives it, the ReLU is not walked.
    assert_eq!(flat(&at_relu.run(&seed)?.relevance), flat(&expected.relevance));
    // Keeping every value: the ReLUs are walked on their own (and fail here).
    assert!(BackwardPass::new(&model, &trace).rules(&must).keep_values().run(&seed).is_err());
    let kept = BackwardPass::new(&model, &trace).keep_values().run(&seed)?;
    let values = kept.values.expect("kept");
    let relu_out = values[relu + 1].as_ref().expect("relevance at the ReLU's output");
    assert_eq!(flat(relu_out), flat(&expected.relevance));
    Ok(())
}

/// The convolution before a fused ReLU is walked on its own where its relevance or its
/// weight gradient is asked for: a walk that stops at its output, or one that computes
/// parameter gradients (training).
#[test]
fn the_convolution_is_walked_where_its_gradient_is_needed() -> Result<()> {
    let model = load("cnn");
    let conv = conv_feeding_relu(&model)[1];
    let x = Tensor::rand(-1f32, 1f32, (3, 1, 28, 28), &Device::Cpu)?;
    let trace = model.trace(&x)?;
    let seed = Tensor::rand(-1f32, 1f32, trace.logits().dims(), &Device::Cpu)?;
    let mut must = RuleMap::gradient(&model);
    must.set(conv, Arc::new(MustBeFused))?;
    // Stopping at the convolution's output: the fused pool + ReLU step gives it.
    let at_conv = BackwardPass::new(&model, &trace).rules(&must).stop_at(Stop::Node(conv));
    let step_by_step = rules(&model, Arc::new(PlainVjp), |_| true);
    let expected = BackwardPass::new(&model, &trace).rules(&step_by_step).stop_at(Stop::Node(conv));
    assert_eq!(flat(&at_conv.run(&seed)?.relevance), flat(&expected.run(&seed)?.relevance));
    // Parameter gradients: the convolution is walked (and fails here).
    let training = BackwardPass::new(&model, &trace).rules(&must).parameter_gradients();
    assert!(training.run(&seed).is_err());
    // Without the failing rule, the input relevance still matches the step-by-step walk.
    let both = BackwardPass::new(&model, &trace).parameter_gradients().run(&seed)?;
    let reference = BackwardPass::new(&model, &trace).rules(&step_by_step).run(&seed)?;
    assert_eq!(flat(&both.relevance), flat(&reference.relevance));
    Ok(())
}

/// `n` random inputs of `model` in [-1, 1) with one NaN.
fn images_with_a_nan(model: &Model, n: usize) -> Result<Tensor> {
    let mut dims = vec![n];
    dims.extend_from_slice(model.input_shape());
    let mut x = Tensor::rand(-1f32, 1f32, dims.as_slice(), &Device::Cpu)?
        .flatten_all()?
        .to_vec1::<f32>()?;
    x[100] = f32::NAN;
    Ok(Tensor::from_vec(x, dims, &Device::Cpu)?)
}

/// `forward`, which pools a ReLU's input directly where nothing else needs the ReLU's
/// output, gives the logits of `trace`, which keeps every value, also with NaN inputs.
#[test]
fn forward_equals_the_traced_logits() -> Result<()> {
    let sc_cnn = zoo::build(Architecture::ScCnn, [1, 28, 28], 10, 5)?;
    for (name, model) in [("cnn", load("cnn")), ("cnn_bn", load("cnn_bn")), ("sc-cnn", sc_cnn)] {
        let x = images_with_a_nan(&model, 3)?;
        let forward = model.forward(&x)?;
        let traced = model.trace(&x)?;
        let (a, b) = (flat(&forward), flat(traced.logits()));
        assert!(a.iter().zip(&b).all(|(u, v)| u == v || (u.is_nan() && v.is_nan())), "{name}");
    }
    Ok(())
}

/// `trace`, which runs a convolution, its ReLU and its max pool as one step that keeps all
/// three outputs, holds exactly the values of running the nodes one by one (NaN input
/// included).
#[test]
fn trace_holds_the_values_of_the_nodes_one_by_one() -> Result<()> {
    let sc_cnn = zoo::build(Architecture::ScCnn, [1, 28, 28], 10, 5)?;
    for (name, model) in [("cnn", load("cnn")), ("cnn_bn", load("cnn_bn")), ("sc-cnn", sc_cnn)] {
        let x = images_with_a_nan(&model, 5)?;
        let trace = model.trace(&x)?;
        let mut values = vec![x.clone()];
        for node in model.nodes() {
            let inputs: Vec<&Tensor> = node.inputs.iter().map(|v| &values[v.0]).collect();
            let y = node.layer.forward(&inputs)?;
            values.push(y);
        }
        for (i, expected) in values.iter().enumerate().skip(1) {
            let got = trace.output(i - 1);
            let bits = |t: &Tensor| -> Result<Vec<u32>> {
                Ok(t.flatten_all()?.to_vec1::<f32>()?.iter().map(|v| v.to_bits()).collect())
            };
            assert_eq!(got.dims(), expected.dims(), "{name} node {}", i - 1);
            assert_eq!(bits(got)?, bits(expected)?, "{name} node {}", i - 1);
        }
    }
    Ok(())
}

/// Where `forward` or `trace` runs a convolution, its ReLU and its max pool as one step and
/// that step fails, the error names the node that fails, as the step-by-step pass would.
#[test]
fn forward_fused_convolution_errors_name_the_failing_node() -> Result<()> {
    use skepsis_nn::layer::Conv2d;
    use skepsis_nn::ops::{Conv2dSpec, Pool2dSpec};
    let model = |in_channels: usize, window: usize| -> Result<Model> {
        let weight = Tensor::zeros((2, in_channels, 3, 3), DType::F32, &Device::Cpu)?;
        let conv = Conv2d::new(weight, None, Conv2dSpec::default())?;
        let layers = vec![
            ("conv".to_string(), Layer::Conv2d(conv)),
            ("relu".to_string(), Layer::Relu),
            ("pool".to_string(), Layer::MaxPool2d(Pool2dSpec::square(window))),
            ("flatten".to_string(), Layer::Flatten),
        ];
        Model::sequential("fused", layers, vec![1, 6, 6])
    };
    let x = Tensor::ones((2, 1, 6, 6), DType::F32, &Device::Cpu)?;
    assert_eq!(model(1, 2)?.forward(&x)?.dims(), [2, 8]);
    let node_of = |e: Error| match e {
        Error::Node { node, .. } => node,
        other => panic!("not attributed to a node: {other}"),
    };
    // A weight for two input channels on a one-channel input: the convolution fails.
    assert_eq!(node_of(model(2, 2)?.forward(&x).unwrap_err()), "conv");
    assert_eq!(node_of(model(2, 2)?.trace(&x).unwrap_err()), "conv");
    // A 5x5 window on the convolution's 4x4 output: the pool fails.
    assert_eq!(node_of(model(1, 5)?.forward(&x).unwrap_err()), "pool");
    assert_eq!(node_of(model(1, 5)?.trace(&x).unwrap_err()), "pool");
    Ok(())
}
