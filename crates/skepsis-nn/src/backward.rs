//! The backward engine: a reverse walk over the layer graph in which the [`Rule`] assigned
//! to each node maps relevance at the node's output to relevance at its inputs.
//!
//! With the [`Gradient`] rule everywhere the walk is ordinary backpropagation of a
//! vector-Jacobian product; Guided Backprop, DeconvNet, LRP, DeepLIFT and their relatives
//! replace the rule at some nodes (crate `skepsis-attr`). The walk can start at any node
//! (the seed is the relevance at that node's output) and stop at any node (GradCAM reads
//! the gradient at a convolutional layer's output).

use std::fmt;
use std::sync::Arc;

use candle_core::Tensor;

use crate::model::{at_node, Node, ValueId};
use crate::ops::{conv, pool};
use crate::{Error, Layer, Model, Result, Trace};

/// What a rule sees of the node it is applied to.
pub struct Step<'a> {
    /// Position of the node in the model.
    pub index: usize,
    pub node: &'a Node,
    /// The node's inputs as recorded by the forward trace.
    pub inputs: Vec<&'a Tensor>,
    /// The node's output as recorded by the forward trace.
    pub output: &'a Tensor,
}

/// One layer's backward step: maps relevance at the output to relevance at each input.
///
/// Implementations are small structs whose parameters are validated in their constructor.
/// A rule that cannot handle a layer type returns [`Error::UnsupportedRule`].
pub trait Rule: Send + Sync + fmt::Debug {
    /// The rule's name, with its parameters (e.g. `epsilon(0.25)`).
    fn name(&self) -> String;

    /// Relevance at each input of `step.node`, given `relevance` at its output.
    fn backward(&self, step: &Step<'_>, relevance: &Tensor) -> Result<Vec<Tensor>>;

    /// Whether this rule is the exact gradient on every layer ([`Gradient`]): the walk may
    /// then fuse its steps with a neighbour's (a max pool's with the ReLU before it).
    fn is_gradient(&self) -> bool {
        false
    }
}

/// The gradient rule: the layer's exact vector-Jacobian product (Rumelhart et al., 1986).
#[derive(Clone, Copy, Debug, Default)]
pub struct Gradient;

impl Rule for Gradient {
    fn name(&self) -> String {
        "gradient".into()
    }

    fn backward(&self, step: &Step<'_>, relevance: &Tensor) -> Result<Vec<Tensor>> {
        step.node.layer.input_vjp(&step.inputs, step.output, relevance)
    }

    fn is_gradient(&self) -> bool {
        true
    }
}

/// The rule of every node of a model; nodes not assigned otherwise use [`Gradient`].
#[derive(Clone, Debug)]
pub struct RuleMap {
    rules: Vec<Arc<dyn Rule>>,
}

impl RuleMap {
    /// The gradient rule on every node of `model`.
    pub fn gradient(model: &Model) -> Self {
        let gradient: Arc<dyn Rule> = Arc::new(Gradient);
        RuleMap { rules: (0..model.nodes().len()).map(|_| Arc::clone(&gradient)).collect() }
    }

    /// Assigns `rule` to node `index`.
    pub fn set(&mut self, index: usize, rule: Arc<dyn Rule>) -> Result<()> {
        let n = self.rules.len();
        let slot = self.rules.get_mut(index).ok_or_else(|| {
            Error::InvalidInput(format!("rule assigned to node {index} of a {n}-node model"))
        })?;
        *slot = rule;
        Ok(())
    }

    /// The rule of node `index`.
    pub fn get(&self, index: usize) -> &Arc<dyn Rule> {
        &self.rules[index]
    }

    /// Number of nodes covered.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// Whether the map covers no node.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}

/// Where a backward walk ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// Relevance at the model input (the usual attribution map).
    Input,
    /// Relevance at the output of node `index` (e.g. GradCAM's feature maps).
    Node(usize),
}

/// The result of a backward walk.
#[derive(Debug)]
pub struct BackwardOutput {
    /// Relevance at the stop value.
    pub relevance: Tensor,
    /// Relevance at every value reached (index = value id), when requested.
    pub values: Option<Vec<Option<Tensor>>>,
    /// `(key, dL/dθ)` for every trainable tensor reached, when requested.
    pub parameter_gradients: Vec<(String, Tensor)>,
}

/// A configured backward walk over one model and one forward trace.
///
/// ```text
/// BackwardPass::new(&model, &trace).rules(&rules).start_at(out).stop_at(Stop::Input).run(&seed)
/// ```
pub struct BackwardPass<'a> {
    model: &'a Model,
    trace: &'a Trace,
    rules: Option<&'a RuleMap>,
    start: usize,
    stop: Stop,
    keep_values: bool,
    parameter_gradients: bool,
    input_relevance: bool,
}

impl<'a> BackwardPass<'a> {
    /// A gradient walk from the model output to the model input.
    pub fn new(model: &'a Model, trace: &'a Trace) -> Self {
        BackwardPass {
            model,
            trace,
            rules: None,
            start: model.output_node(),
            stop: Stop::Input,
            keep_values: false,
            parameter_gradients: false,
            input_relevance: true,
        }
    }

    /// Uses `rules` instead of the gradient everywhere.
    pub fn rules(mut self, rules: &'a RuleMap) -> Self {
        self.rules = Some(rules);
        self
    }

    /// Starts at node `index`: the seed is relevance at that node's output.
    pub fn start_at(mut self, index: usize) -> Self {
        self.start = index;
        self
    }

    /// Ends the walk at `stop`.
    pub fn stop_at(mut self, stop: Stop) -> Self {
        self.stop = stop;
        self
    }

    /// Keeps the relevance at every value (rank-1 convergence test, debugging).
    pub fn keep_values(mut self) -> Self {
        self.keep_values = true;
        self
    }

    /// Also computes the gradients of all trainable tensors (training). The rule map must
    /// be the gradient for these to be gradients.
    pub fn parameter_gradients(mut self) -> Self {
        self.parameter_gradients = true;
        self
    }

    /// Skips the vector-Jacobian products whose only result would be the relevance at the
    /// model input (training needs parameter gradients only: this saves the first layer's
    /// input VJP). The returned `relevance` is then zero.
    pub fn without_input_relevance(mut self) -> Self {
        self.input_relevance = false;
        self
    }

    /// Runs the walk with `seed` as the relevance at the start node's output.
    pub fn run(self, seed: &Tensor) -> Result<BackwardOutput> {
        let model = self.model;
        let n = model.nodes().len();
        if self.start >= n {
            return Err(Error::InvalidInput(format!("start node {} out of range", self.start)));
        }
        let stop_value = match self.stop {
            Stop::Input => ValueId::INPUT,
            Stop::Node(k) if k <= self.start => ValueId::of_node(k),
            Stop::Node(k) => {
                return Err(Error::InvalidInput(format!(
                    "cannot stop at node {k}: it comes after the start node {}",
                    self.start
                )))
            }
        };
        let start_value = self.trace.output(self.start);
        if seed.dims() != start_value.dims() {
            return Err(Error::ShapeMismatch {
                context: format!("seed relevance at node '{}'", model.nodes()[self.start].name),
                expected: start_value.dims().to_vec(),
                found: seed.dims().to_vec(),
            });
        }
        let default_rules;
        let rules = match self.rules {
            Some(r) if r.len() == n => r,
            Some(r) => {
                return Err(Error::InvalidInput(format!(
                    "rule map covers {} nodes, the model has {n}",
                    r.len()
                )))
            }
            None => {
                default_rules = RuleMap::gradient(model);
                &default_rules
            }
        };

        let mut relevance: Vec<Option<Tensor>> = vec![None; n + 1];
        relevance[self.start + 1] = Some(seed.clone());
        let mut parameter_gradients = Vec::new();
        let stop_node = stop_value.node();
        let consumers = model.consumers();
        for index in (0..=self.start).rev() {
            if Some(index) == stop_node {
                break;
            }
            let node = &model.nodes()[index];
            let Some(r_out) = relevance[index + 1].clone() else { continue };
            if !self.keep_values && ValueId::of_node(index) != stop_value {
                relevance[index + 1] = None;
            }
            if let Some((reached, r_in)) =
                self.pool_after_relu(index, rules, &consumers, stop_value, &r_out)?
            {
                // The ReLU's relevance (and the convolution's, when the step covers it) is
                // never formed, so the walk skips its node.
                accumulate(&mut relevance, reached, r_in)?;
                continue;
            }
            let step = Step {
                index,
                node,
                inputs: self.trace.node_inputs(model, index),
                output: self.trace.output(index),
            };
            if self.parameter_gradients && node.layer.has_parameters() {
                for (suffix, g) in node
                    .layer
                    .param_vjp(&step.inputs, &r_out)
                    .map_err(|e| at_node(&node.name, e))?
                {
                    parameter_gradients.push((format!("{}.{suffix}", node.name), g));
                }
            }
            let only_input = node.inputs.iter().all(|v| *v == ValueId::INPUT);
            if only_input && !self.input_relevance {
                continue;
            }
            let r_in =
                rules.get(index).backward(&step, &r_out).map_err(|e| at_node(&node.name, e))?;
            if r_in.len() != node.inputs.len() {
                return Err(at_node(
                    &node.name,
                    Error::InvalidInput(format!(
                        "rule '{}' returned {} relevances for {} inputs",
                        rules.get(index).name(),
                        r_in.len(),
                        node.inputs.len()
                    )),
                ));
            }
            for (v, r) in node.inputs.iter().zip(r_in) {
                accumulate(&mut relevance, *v, r)?;
            }
        }
        let at_stop = match &relevance[stop_value.0] {
            Some(r) => r.clone(),
            // Nothing reached the stop value: it does not influence the start node.
            None => self.trace.value(stop_value).zeros_like()?,
        };
        Ok(BackwardOutput {
            relevance: at_stop,
            values: self.keep_values.then_some(relevance),
            parameter_gradients,
        })
    }
}

impl BackwardPass<'_> {
    /// The fused gradient step of a max pool (node `index`) and the ReLU that feeds it:
    /// relevance at the ReLU's input, when both nodes take the gradient rule, the ReLU feeds
    /// nothing else and nobody asked for the relevance at its output; `None` otherwise.
    /// Same values as the two steps ([`pool::max_pool2d_relu_vjp`]), one pass less.
    ///
    /// When a convolution feeds that ReLU alone, also takes the gradient rule, its relevance
    /// is not asked for either and its input's is (no parameter gradients wanted), the step
    /// covers the convolution too and returns relevance at the convolution's input
    /// ([`conv::conv2d_relu_max_pool2d_input_vjp`], which multiplies only the gradients the
    /// pool routes with the weight).
    fn pool_after_relu(
        &self,
        index: usize,
        rules: &RuleMap,
        consumers: &[Vec<usize>],
        stop_value: ValueId,
        r_out: &Tensor,
    ) -> Result<Option<(ValueId, Tensor)>> {
        let nodes = self.model.nodes();
        let Layer::MaxPool2d(spec) = &nodes[index].layer else { return Ok(None) };
        let [between] = nodes[index].inputs[..] else { return Ok(None) };
        let Some(relu) = between.node() else { return Ok(None) };
        let [relu_input] = nodes[relu].inputs[..] else { return Ok(None) };
        // Whether the walk may skip node `k` (whose output is `value`, read by `reader`
        // alone) under the gradient rule.
        let skippable = |k: usize, value: ValueId, reader: usize| {
            rules.get(k).is_gradient()
                && consumers[value.0] == [reader]
                && !self.keep_values
                && stop_value != value
        };
        let fusable = matches!(nodes[relu].layer, Layer::Relu)
            && rules.get(index).is_gradient()
            && skippable(relu, between, index)
            && (self.input_relevance || relu_input != ValueId::INPUT);
        if !fusable {
            return Ok(None);
        }
        let x = self.trace.value(between);
        if let Some(conv) = relu_input.node() {
            if let (Layer::Conv2d(c), [conv_input]) = (&nodes[conv].layer, &nodes[conv].inputs[..])
            {
                let covered = skippable(conv, relu_input, relu)
                    && !self.parameter_gradients
                    && (self.input_relevance || *conv_input != ValueId::INPUT);
                if covered {
                    let input_dims = self.trace.value(*conv_input).dims();
                    let r_in = conv::conv2d_relu_max_pool2d_input_vjp(
                        x, r_out, &c.weight, input_dims, &c.spec, spec,
                    )
                    .map_err(|e| at_node(&nodes[conv].name, e))?;
                    return Ok(Some((*conv_input, r_in)));
                }
            }
        }
        let r_in = pool::max_pool2d_relu_vjp(x, r_out, spec)
            .map_err(|e| at_node(&nodes[index].name, e))?;
        Ok(Some((relu_input, r_in)))
    }
}

/// Adds `r` to the relevance gathered at value `v`.
fn accumulate(relevance: &mut [Option<Tensor>], v: ValueId, r: Tensor) -> Result<()> {
    relevance[v.0] = Some(match relevance[v.0].take() {
        Some(acc) => (acc + r)?,
        None => r,
    });
    Ok(())
}

/// The gradient of `sum_n seed[n] · output[n]` with respect to the input: the plain
/// vector-Jacobian product of the whole model.
pub fn input_gradient(model: &Model, x: &Tensor, seed: &Tensor) -> Result<(Trace, Tensor)> {
    let trace = model.trace(x)?;
    let out = BackwardPass::new(model, &trace).run(seed)?;
    Ok((trace, out.relevance))
}
