//! The model: a small DAG of named nodes, with forward and trace.

use std::sync::Arc;

use candle_core::{DType, Device, Tensor};

use crate::layer::Conv2d;
use crate::memo::{next_version, TraceMemo};
use crate::ops::Pool2dSpec;
use crate::preprocess::Preprocessing;
use crate::{Error, Layer, Result};

/// Identifies a value flowing through the graph: [`ValueId::INPUT`] is the model input,
/// `ValueId(i + 1)` the output of node `i`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ValueId(pub usize);

impl ValueId {
    /// The model input.
    pub const INPUT: ValueId = ValueId(0);

    /// The output of node `index`.
    pub fn of_node(index: usize) -> ValueId {
        ValueId(index + 1)
    }

    /// The node producing this value, or `None` for the model input.
    pub fn node(self) -> Option<usize> {
        self.0.checked_sub(1)
    }
}

/// One named operation and the values it consumes.
#[derive(Clone, Debug)]
pub struct Node {
    pub name: String,
    pub layer: Layer,
    pub inputs: Vec<ValueId>,
}

/// A network as a DAG of named nodes in topological order; the last node's output is the
/// model output (logits). Models are values: randomizing, shifting or canonizing returns
/// a new model, and weight tensors are shared (reference-counted) between copies.
#[derive(Clone, Debug)]
pub struct Model {
    name: String,
    nodes: Vec<Node>,
    /// Per node: a process-unique version, renewed whenever the node's layer or one of its
    /// tensors is replaced (what [`TraceMemo`] compares).
    versions: Vec<u64>,
    input_shape: Vec<usize>,
    class_names: Vec<String>,
    preprocessing: Option<Preprocessing>,
    /// Forward values shared with related models ([`Model::with_trace_memo`]).
    memo: Option<Arc<TraceMemo>>,
}

/// Every value of one forward pass: the input and each node's output.
#[derive(Clone, Debug)]
pub struct Trace {
    values: Vec<Tensor>,
}

impl Trace {
    /// The value `id` (the input or a node's output).
    pub fn value(&self, id: ValueId) -> &Tensor {
        &self.values[id.0]
    }

    /// The model input.
    pub fn input(&self) -> &Tensor {
        &self.values[0]
    }

    /// The output of node `index`.
    pub fn output(&self, index: usize) -> &Tensor {
        &self.values[index + 1]
    }

    /// The model output (logits).
    pub fn logits(&self) -> &Tensor {
        self.values.last().expect("a trace holds at least the input")
    }

    /// The inputs of node `index`.
    pub fn node_inputs<'a>(&'a self, model: &Model, index: usize) -> Vec<&'a Tensor> {
        model.nodes[index].inputs.iter().map(|v| &self.values[v.0]).collect()
    }
}

impl Model {
    /// Builds a model and checks the graph: unique non-empty names, inputs that refer to
    /// the model input or earlier nodes, the right number of inputs per layer, and no
    /// node whose output is unused except the last.
    pub fn new(name: impl Into<String>, nodes: Vec<Node>, input_shape: Vec<usize>) -> Result<Self> {
        let model = Model {
            name: name.into(),
            versions: nodes.iter().map(|_| next_version()).collect(),
            nodes,
            input_shape,
            class_names: Vec::new(),
            preprocessing: None,
            memo: None,
        };
        model.validate()?;
        Ok(model)
    }

    /// Builds a sequential model: each layer consumes the previous layer's output.
    pub fn sequential(
        name: impl Into<String>,
        layers: Vec<(String, Layer)>,
        input_shape: Vec<usize>,
    ) -> Result<Self> {
        let nodes = layers
            .into_iter()
            .enumerate()
            .map(|(i, (name, layer))| Node { name, layer, inputs: vec![ValueId(i)] })
            .collect();
        Model::new(name, nodes, input_shape)
    }

    fn validate(&self) -> Result<()> {
        if self.nodes.is_empty() {
            return Err(Error::InvalidGraph(format!("model '{}' has no layers", self.name)));
        }
        if self.input_shape.is_empty() || self.input_shape.contains(&0) {
            return Err(Error::InvalidGraph(format!(
                "model '{}': input shape {:?} must be non-empty with positive sizes",
                self.name, self.input_shape
            )));
        }
        let mut used = vec![false; self.nodes.len() + 1];
        for (i, node) in self.nodes.iter().enumerate() {
            if node.name.is_empty() || node.name == "input" {
                return Err(Error::InvalidGraph(format!(
                    "node {i}: the name '{}' is not allowed",
                    node.name
                )));
            }
            if self.nodes[..i].iter().any(|n| n.name == node.name) {
                return Err(Error::InvalidGraph(format!("duplicate node name '{}'", node.name)));
            }
            let arity_ok = match node.layer.arity() {
                Some(k) => node.inputs.len() == k,
                None => node.inputs.len() >= 2,
            };
            if !arity_ok {
                return Err(Error::InvalidGraph(format!(
                    "node '{}' ({}) has {} inputs",
                    node.name,
                    node.layer.kind(),
                    node.inputs.len()
                )));
            }
            for v in &node.inputs {
                if v.0 > i {
                    return Err(Error::InvalidGraph(format!(
                        "node '{}' consumes a value produced later in the graph (nodes must be in topological order)",
                        node.name
                    )));
                }
                used[v.0] = true;
            }
        }
        if let Some(i) = (1..self.nodes.len()).find(|&v| !used[v]) {
            return Err(Error::InvalidGraph(format!(
                "the output of node '{}' is never used (only the last node may be an output)",
                self.nodes[i - 1].name
            )));
        }
        Ok(())
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// Per-sample input shape, e.g. `[1, 28, 28]`.
    pub fn input_shape(&self) -> &[usize] {
        &self.input_shape
    }

    pub fn class_names(&self) -> &[String] {
        &self.class_names
    }

    pub fn preprocessing(&self) -> Option<&Preprocessing> {
        self.preprocessing.as_ref()
    }

    /// Sets the class names (their number is checked against the output size on use).
    pub fn with_class_names(mut self, names: Vec<String>) -> Self {
        self.class_names = names;
        self
    }

    /// Records the preprocessing the model was trained with.
    pub fn with_preprocessing(mut self, preprocessing: Option<Preprocessing>) -> Self {
        self.preprocessing = preprocessing;
        self
    }

    /// Attaches a [`TraceMemo`] for passes on `anchor` (that tensor or a clone of it): this
    /// model and every model derived from it (randomized, with a tensor replaced) take the
    /// values of unchanged nodes from the last pass on `anchor` instead of recomputing them.
    /// A pass whose values take more than `budget_bytes` is not kept.
    pub fn with_trace_memo(mut self, anchor: &Tensor, budget_bytes: usize) -> Self {
        self.memo = Some(Arc::new(TraceMemo::new(anchor, budget_bytes)));
        self
    }

    /// The model without its trace memo (copies made after this share nothing).
    pub fn without_trace_memo(mut self) -> Self {
        self.memo = None;
        self
    }

    /// Renames the model.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Index of the node called `name`.
    pub fn node_index(&self, name: &str) -> Result<usize> {
        self.nodes.iter().position(|n| n.name == name).ok_or_else(|| Error::UnknownNode {
            model: self.name.clone(),
            name: name.to_string(),
            available: self.nodes.iter().map(|n| n.name.as_str()).collect::<Vec<_>>().join(", "),
        })
    }

    /// Index of the last node (the output).
    pub fn output_node(&self) -> usize {
        self.nodes.len() - 1
    }

    /// Nodes holding a Linear or Conv2d layer, in graph order.
    pub fn affine_nodes(&self) -> Vec<usize> {
        (0..self.nodes.len()).filter(|&i| self.nodes[i].layer.is_affine()).collect()
    }

    /// Nodes holding trainable parameters, in graph order.
    pub fn parametric_nodes(&self) -> Vec<usize> {
        (0..self.nodes.len()).filter(|&i| self.nodes[i].layer.has_parameters()).collect()
    }

    /// The nodes consuming each value (index = value id).
    pub fn consumers(&self) -> Vec<Vec<usize>> {
        let mut out = vec![Vec::new(); self.nodes.len() + 1];
        for (i, node) in self.nodes.iter().enumerate() {
            for v in &node.inputs {
                out[v.0].push(i);
            }
        }
        out
    }

    /// Returns a copy with node `index`'s layer replaced (its output shape must be
    /// compatible with the rest of the graph; checked when the model runs).
    pub fn replace_layer(&mut self, index: usize, layer: Layer) -> Result<()> {
        let node = self
            .nodes
            .get_mut(index)
            .ok_or_else(|| Error::InvalidGraph(format!("node index {index} out of range")))?;
        if node.layer.kind() != layer.kind() {
            return Err(Error::InvalidGraph(format!(
                "node '{}': cannot replace a {} layer by a {} layer",
                node.name,
                node.layer.kind(),
                layer.kind()
            )));
        }
        node.layer = layer;
        self.versions[index] = next_version();
        Ok(())
    }

    /// Every tensor with its PyTorch key (`<node>.<suffix>`), in graph order.
    pub fn state_dict(&self) -> Vec<(String, Tensor)> {
        self.nodes
            .iter()
            .flat_map(|n| {
                n.layer
                    .named_tensors()
                    .into_iter()
                    .map(move |(s, t)| (format!("{}.{s}", n.name), t.clone()))
            })
            .collect()
    }

    /// The trainable tensors with their keys, in graph order.
    pub fn trainable_parameters(&self) -> Vec<(String, Tensor)> {
        self.nodes
            .iter()
            .flat_map(|n| {
                n.layer
                    .trainable_tensors()
                    .into_iter()
                    .map(move |(s, t)| (format!("{}.{s}", n.name), t.clone()))
            })
            .collect()
    }

    /// A copy with the tensor `key` (`<node>.<suffix>`) replaced.
    pub fn with_tensor(&self, key: &str, tensor: Tensor) -> Result<Model> {
        let mut out = self.clone();
        out.set_tensor(key, tensor)?;
        Ok(out)
    }

    pub(crate) fn set_tensor(&mut self, key: &str, tensor: Tensor) -> Result<()> {
        let (node, suffix) = key.rsplit_once('.').ok_or_else(|| {
            Error::InvalidInput(format!("'{key}' is not a tensor key of the form <node>.<name>"))
        })?;
        let index = self.node_index(node)?;
        let layer =
            self.nodes[index].layer.with_tensor(suffix, tensor).map_err(|e| at_node(node, e))?;
        self.nodes[index].layer = layer;
        self.versions[index] = next_version();
        Ok(())
    }

    /// Data type of the weights (F32 unless converted).
    pub fn dtype(&self) -> DType {
        self.state_dict().first().map_or(DType::F32, |(_, t)| t.dtype())
    }

    /// Device of the weights.
    pub fn device(&self) -> Device {
        self.state_dict().first().map_or(Device::Cpu, |(_, t)| t.device().clone())
    }

    /// A copy with every tensor converted to `dtype` (F32 or F64).
    pub fn to_dtype(&self, dtype: DType) -> Result<Model> {
        self.map_tensors(|t| Ok(t.to_dtype(dtype)?))
    }

    /// A copy with every tensor moved to `device`.
    pub fn to_device(&self, device: &Device) -> Result<Model> {
        self.map_tensors(|t| Ok(t.to_device(device)?))
    }

    fn map_tensors(&self, f: impl Fn(&Tensor) -> Result<Tensor>) -> Result<Model> {
        let mut out = self.clone();
        for (key, t) in self.state_dict() {
            out.set_tensor(&key, f(&t)?)?;
        }
        Ok(out)
    }

    fn check_input(&self, x: &Tensor) -> Result<()> {
        if x.rank() != self.input_shape.len() + 1 || x.dims()[1..] != self.input_shape[..] {
            let mut expected = vec![x.dims().first().copied().unwrap_or(0)];
            expected.extend_from_slice(&self.input_shape);
            return Err(Error::ShapeMismatch {
                context: format!("input of model '{}' [N, {:?}]", self.name, self.input_shape),
                expected,
                found: x.dims().to_vec(),
            });
        }
        if x.dtype() != self.dtype() {
            return Err(Error::InvalidInput(format!(
                "input is {:?} but the weights of model '{}' are {:?}",
                x.dtype(),
                self.name,
                self.dtype()
            )));
        }
        Ok(())
    }

    /// The model output (logits) for a batch `x` of shape `[N, ...input_shape]`.
    /// Intermediate values are dropped as soon as no later node needs them, and values that
    /// only one next node reads are not stored at all where a fused kernel computes the pair
    /// or triple at once (a ReLU feeding a max pool, a convolution feeding both; see
    /// [`conv2d_relu_max_pool2d`](crate::ops::conv::conv2d_relu_max_pool2d)).
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        if self.memo.as_ref().is_some_and(|m| m.is_anchor(x)) {
            return Ok(self.trace(x)?.logits().clone());
        }
        self.check_input(x)?;
        let consumers = self.consumers();
        let last_use: Vec<usize> =
            consumers.iter().map(|c| c.iter().copied().max().unwrap_or(usize::MAX)).collect();
        let mut values: Vec<Option<Tensor>> = vec![None; self.nodes.len() + 1];
        values[0] = Some(x.clone());
        let mut i = 0;
        while i < self.nodes.len() {
            let node = &self.nodes[i];
            let inputs: Vec<&Tensor> = node
                .inputs
                .iter()
                .map(|v| values[v.0].as_ref().expect("topological order"))
                .collect();
            // Nodes `i..=last` run as one step; only `last`'s output is kept.
            let (last, y) = match self.fusion_at(i, &consumers) {
                Fusion::ConvReluMaxPool { conv, pool, spec } => {
                    let fused = crate::ops::conv::conv2d_relu_max_pool2d(
                        inputs[0],
                        &conv.weight,
                        conv.bias.as_ref(),
                        &conv.spec,
                        spec,
                    );
                    // On failure the nodes run one by one, so that the error names the one
                    // that fails.
                    let y = match fused {
                        Ok(y) => y,
                        Err(_) => self.run_chain(inputs[0], i..=pool)?,
                    };
                    (pool, y)
                }
                Fusion::ReluMaxPool { pool, spec } => {
                    let y = crate::ops::pool::max_pool2d_of_relu(inputs[0], spec)
                        .map_err(|e| at_node(&self.nodes[pool].name, e))?;
                    (pool, y)
                }
                Fusion::None => {
                    (i, node.layer.forward(&inputs).map_err(|e| at_node(&node.name, e))?)
                }
            };
            values[last + 1] = Some(y);
            for v in &node.inputs {
                if (i..=last).contains(&last_use[v.0]) {
                    values[v.0] = None;
                }
            }
            i = last + 1;
        }
        Ok(values.pop().flatten().expect("the last node's output is kept"))
    }

    /// The nodes from `index` on that [`forward`](Self::forward) runs as one fused step:
    /// a ReLU feeding only a max pool, or a convolution feeding only such a ReLU (the
    /// outputs in between are used by nothing else, so they need never be stored).
    fn fusion_at(&self, index: usize, consumers: &[Vec<usize>]) -> Fusion<'_> {
        let layer = |i: usize| self.nodes.get(i).map(|n| &n.layer);
        // Value `v` (node `v - 1`'s output) is read by node `v` alone.
        let only_next = |v: usize| consumers.get(v).is_some_and(|c| c == &[v]);
        let relu_pool = |relu: usize| match (layer(relu), layer(relu + 1)) {
            (Some(Layer::Relu), Some(Layer::MaxPool2d(spec))) if only_next(relu + 1) => {
                Some((relu + 1, spec))
            }
            _ => None,
        };
        match layer(index) {
            Some(Layer::Conv2d(conv)) if only_next(index + 1) => match relu_pool(index + 1) {
                Some((pool, spec)) => Fusion::ConvReluMaxPool { conv, pool, spec },
                None => Fusion::None,
            },
            _ => match relu_pool(index) {
                Some((pool, spec)) => Fusion::ReluMaxPool { pool, spec },
                None => Fusion::None,
            },
        }
    }

    /// The convolution at `index` and the max pool's spec where nodes `index..index + 3` are a
    /// convolution, a ReLU reading only its output and a max pool reading only the ReLU's
    /// ([`Model::trace`] keeps all three outputs, so other readers do not matter).
    fn traced_chain_at(&self, index: usize) -> Option<(&Conv2d, &Pool2dSpec)> {
        let reads_previous =
            |i: usize| self.nodes.get(i).is_some_and(|n| n.inputs.len() == 1 && n.inputs[0].0 == i);
        match (self.nodes.get(index), self.nodes.get(index + 1), self.nodes.get(index + 2)) {
            (Some(c), Some(r), Some(p))
                if reads_previous(index + 1) && reads_previous(index + 2) =>
            {
                match (&c.layer, &r.layer, &p.layer) {
                    (Layer::Conv2d(conv), Layer::Relu, Layer::MaxPool2d(spec)) => {
                        Some((conv, spec))
                    }
                    _ => None,
                }
            }
            _ => None,
        }
    }

    /// Runs the chain of single-input nodes `range` on `x`, node by node.
    fn run_chain(&self, x: &Tensor, range: std::ops::RangeInclusive<usize>) -> Result<Tensor> {
        let mut y = x.clone();
        for node in &self.nodes[range] {
            y = node.layer.forward(&[&y]).map_err(|e| at_node(&node.name, e))?;
        }
        Ok(y)
    }

    /// Runs the model and keeps every value (input and each node's output).
    ///
    /// With a [`TraceMemo`] whose anchor is `x`, a node whose version and inputs are those
    /// of the memo's last pass is taken from it, and this pass becomes the memo's last.
    pub fn trace(&self, x: &Tensor) -> Result<Trace> {
        self.check_input(x)?;
        let memo = self.memo.as_deref().filter(|m| m.is_anchor(x));
        let last = memo.and_then(TraceMemo::last);
        let mut values = Vec::with_capacity(self.nodes.len() + 1);
        let mut memoized = Vec::with_capacity(self.nodes.len() + 1);
        values.push(x.clone());
        memoized.push(true);
        let mut i = 0;
        while i < self.nodes.len() {
            let node = &self.nodes[i];
            let kept = last.as_ref().filter(|m| {
                m.versions.get(i) == Some(&self.versions[i])
                    && node.inputs.iter().all(|v| memoized[v.0])
            });
            if let Some(m) = kept {
                values.push(m.values[i + 1].clone());
                memoized.push(true);
                i += 1;
                continue;
            }
            let inputs: Vec<&Tensor> = node.inputs.iter().map(|v| &values[v.0]).collect();
            // A convolution whose output only a ReLU reads, whose output a max pool reads
            // next, runs as one step that keeps all three outputs (none of them is in the
            // memo: the ReLU's and the pool's inputs are not).
            if let Some((conv, spec)) = self.traced_chain_at(i) {
                let fused = crate::ops::conv::conv2d_relu_max_pool2d_traced(
                    inputs[0],
                    &conv.weight,
                    conv.bias.as_ref(),
                    &conv.spec,
                    spec,
                );
                // On failure the nodes run one by one, so that the error names the one
                // that fails.
                if let Ok(outputs) = fused {
                    values.extend(outputs);
                    memoized.extend([false; 3]);
                    i += 3;
                    continue;
                }
            }
            values.push(node.layer.forward(&inputs).map_err(|e| at_node(&node.name, e))?);
            memoized.push(false);
            i += 1;
        }
        if let Some(m) = memo {
            m.keep(&self.versions, &values);
        }
        Ok(Trace { values })
    }

    /// Number of output classes (size of the last axis of the output for one sample).
    pub fn num_classes(&self) -> Result<usize> {
        let x = Tensor::zeros(
            [1].iter().chain(&self.input_shape).copied().collect::<Vec<_>>(),
            self.dtype(),
            &self.device(),
        )?;
        let y = self.forward(&x)?;
        Ok(y.dims()[1..].iter().product())
    }
}

/// A step of [`Model::forward`] that runs several nodes at once (see `Model::fusion_at`).
enum Fusion<'a> {
    /// Convolution, ReLU and max pool: [`conv2d_relu_max_pool2d`](crate::ops::conv::conv2d_relu_max_pool2d).
    ConvReluMaxPool {
        conv: &'a Conv2d,
        pool: usize,
        spec: &'a Pool2dSpec,
    },
    /// ReLU and max pool: [`max_pool2d_of_relu`](crate::ops::pool::max_pool2d_of_relu).
    ReluMaxPool {
        pool: usize,
        spec: &'a Pool2dSpec,
    },
    None,
}

/// Wraps an error with the node it happened at.
pub(crate) fn at_node(node: &str, e: Error) -> Error {
    match e {
        // Already names its node.
        Error::Node { .. } | Error::UnsupportedRule { .. } => e,
        other => Error::Node { node: node.to_string(), source: Box::new(other) },
    }
}
