//! The trace memo: models derived from one another share the forward values of unchanged
//! nodes on the anchor input, and every pass gives exactly the values of a fresh pass.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use skepsis_nn::model_file;
use skepsis_nn::{randomize, Model, RandomizeOptions, Result, DEFAULT_TRACE_MEMO_BUDGET};

fn load(name: &str) -> Model {
    let dir = match std::env::var_os("SKEPSIS_CONFORMANCE_DIR") {
        Some(d) => PathBuf::from(d).join("models"),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance/models"),
    };
    model_file::load(&dir.join(name), DType::F32, &Device::Cpu).unwrap()
}

fn images(model: &Model, n: usize) -> Tensor {
    let mut dims = vec![n];
    dims.extend_from_slice(model.input_shape());
    Tensor::rand(0f32, 1f32, dims, &Device::Cpu).unwrap()
}

fn same_values(a: &Tensor, b: &Tensor) -> bool {
    let flat = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    a.dims() == b.dims() && flat(a) == flat(b)
}

/// Cascading randomization in both orders: every pass equals a pass of the same weights
/// without a memo, and exactly the nodes below the first randomized one come from the memo
/// (the very tensors of the previous pass), while every other node is computed again.
#[test]
fn cascading_randomization_reuses_exactly_the_unchanged_prefix() -> Result<()> {
    for name in ["cnn", "cnn_bn", "mlp"] {
        let plain = load(name);
        let x = images(&plain, 5);
        let memo = plain.clone().with_trace_memo(&x, DEFAULT_TRACE_MEMO_BUDGET);
        let layers: Vec<String> =
            plain.parametric_nodes().iter().map(|&i| plain.nodes()[i].name.clone()).collect();
        for top_down in [true, false] {
            let mut order = layers.clone();
            if top_down {
                order.reverse();
            }
            let mut previous = memo.trace(&x)?;
            let (mut current, mut reference) = (memo.clone(), plain.clone());
            for layer in &order {
                current = randomize(&current, &[layer.as_str()], 3, RandomizeOptions::default())?;
                reference =
                    randomize(&reference, &[layer.as_str()], 3, RandomizeOptions::default())?;
                let trace = current.trace(&x)?;
                let fresh = reference.trace(&x)?;
                let changed = current.node_index(layer)?;
                for i in 0..plain.nodes().len() {
                    assert!(same_values(trace.output(i), fresh.output(i)), "{name} {layer} {i}");
                    let shared = trace.output(i).id() == previous.output(i).id();
                    // Sequential models: node i depends on every node before it.
                    assert_eq!(shared, i < changed, "{name} after {layer}: node {i}");
                }
                previous = trace;
            }
        }
    }
    Ok(())
}

/// The same model traced twice on the anchor shares every value; `forward` agrees with a
/// model without a memo.
#[test]
fn repeated_passes_share_every_value() -> Result<()> {
    let plain = load("cnn");
    let x = images(&plain, 4);
    let memo = plain.clone().with_trace_memo(&x, DEFAULT_TRACE_MEMO_BUDGET);
    let first = memo.trace(&x)?;
    let second = memo.clone().trace(&x.clone())?;
    for i in 0..plain.nodes().len() {
        assert_eq!(first.output(i).id(), second.output(i).id());
    }
    assert!(same_values(&memo.forward(&x)?, &plain.forward(&x)?));
    Ok(())
}

/// No sharing for another input (even with equal values), past the memory budget, after a
/// tensor is replaced (even by itself), or once the memo is removed.
#[test]
fn memo_is_used_only_when_safe() -> Result<()> {
    let plain = load("cnn");
    let x = images(&plain, 3);
    let shares = |model: &Model, input: &Tensor| -> Result<bool> {
        let a = model.trace(input)?;
        let b = model.trace(input)?;
        Ok(a.output(0).id() == b.output(0).id())
    };
    let memo = plain.clone().with_trace_memo(&x, DEFAULT_TRACE_MEMO_BUDGET);
    assert!(shares(&memo, &x)?);
    assert!(!shares(&memo, &x.copy()?)?);
    assert!(!shares(&plain.clone().with_trace_memo(&x, 1000), &x)?);
    assert!(!shares(&memo.clone().without_trace_memo(), &x)?);
    let first = plain.nodes()[0].name.clone();
    let weight = format!("{first}.weight");
    let same = plain.state_dict().into_iter().find(|(k, _)| *k == weight).unwrap().1;
    let before = memo.trace(&x)?;
    let replaced = memo.with_tensor(&weight, same)?;
    let after = replaced.trace(&x)?;
    assert_ne!(before.output(0).id(), after.output(0).id());
    assert!(same_values(before.logits(), after.logits()));
    Ok(())
}
