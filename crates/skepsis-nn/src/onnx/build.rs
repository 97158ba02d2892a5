//! Converts the analysed graph node by node into skepsis [`Node`]s, tracking for every ONNX
//! value whether it is a constant or an activation (with its per-sample shape).

use std::collections::HashMap;
use std::path::Path;
use std::rc::Rc;

use candle_core::{DType, Device, Tensor};

use super::attrs::Attrs;
use super::graph::{Analysis, MAX_SAMPLE_ELEMENTS};
use super::proto::{NodeProto, TensorProto};
use super::tensor::{Const, ConstData, TensorReader};
use super::MAX_TOTAL_ELEMENTS;
use crate::{Error, Layer, Model, Node, Result, ValueId};

/// An ONNX value during conversion.
#[derive(Clone, Debug)]
pub enum Value {
    /// Known at import time.
    Const(Rc<Const>),
    /// Computed by the model: the skepsis value and its shape without the batch axis.
    Dyn { id: ValueId, shape: Vec<usize> },
}

/// What converting one ONNX node produces for its first output.
pub enum Converted {
    /// A new skepsis node.
    Layer { layer: Layer, inputs: Vec<ValueId>, shape: Vec<usize> },
    /// A constant.
    Const(Const),
    /// An existing value under a new name.
    Alias(Value),
}

pub struct Builder<'a> {
    pub analysis: &'a Analysis<'a>,
    reader: TensorReader<'a>,
    initializers: HashMap<&'a str, &'a TensorProto>,
    values: HashMap<&'a str, Value>,
    pub nodes: Vec<Node>,
    dtype: DType,
    device: Device,
}

/// One ONNX node being converted.
pub struct NodeCx<'a, 'b> {
    pub node: &'a NodeProto,
    /// Its skepsis name.
    pub name: &'a str,
    pub opset: i64,
    pub b: &'b mut Builder<'a>,
}

impl<'a> NodeCx<'a, '_> {
    pub fn error(&self, message: impl Into<String>) -> Error {
        Error::OnnxNode {
            node: self.name.to_string(),
            op_type: self.node.op_type.clone(),
            message: message.into(),
        }
    }

    /// The node's attributes, restricted to `known`.
    pub fn attrs(&self, known: &[&str]) -> Result<Attrs<'a>> {
        Attrs::new(self.node, self.name, known)
    }

    /// Checks the number of inputs (empty names count as absent trailing inputs).
    pub fn arity(&self, min: usize, max: usize) -> Result<()> {
        let n = self.node.input.len();
        if n < min || n > max || self.node.input[..min].iter().any(String::is_empty) {
            return Err(self.error(format!("takes {min} to {max} inputs, found {n}")));
        }
        Ok(())
    }

    /// Input `i`, `None` when absent (optional input left empty).
    pub fn input(&mut self, i: usize) -> Result<Option<Value>> {
        let Some(name) = self.node.input.get(i).filter(|s| !s.is_empty()) else {
            return Ok(None);
        };
        self.b.value(name).map(Some)
    }

    /// Input `i`, which must be an activation.
    pub fn dyn_input(&mut self, i: usize) -> Result<(ValueId, Vec<usize>)> {
        match self.input(i)? {
            Some(Value::Dyn { id, shape }) => Ok((id, shape)),
            Some(Value::Const(_)) => Err(self.error(format!(
                "input {i} is a constant; operators on constants are not folded (only activations are supported here)"
            ))),
            None => Err(self.error(format!("input {i} is missing"))),
        }
    }

    /// Input `i`, which must be a constant (`None` when absent).
    pub fn const_input(&mut self, i: usize) -> Result<Option<Rc<Const>>> {
        match self.input(i)? {
            Some(Value::Const(c)) => Ok(Some(c)),
            Some(Value::Dyn { .. }) => Err(self.error(format!(
                "input {i} ('{}') must be a constant (initializer or Constant node)",
                self.node.input[i]
            ))),
            None => Ok(None),
        }
    }

    /// Constant input `i` as integers (axes, shapes).
    pub fn int_input(&mut self, i: usize) -> Result<Option<Vec<i64>>> {
        let Some(c) = self.const_input(i)? else { return Ok(None) };
        match c.ints() {
            Some(v) if c.dims.len() <= 1 => Ok(Some(v.to_vec())),
            _ => Err(self.error(format!("input {i} must be a 1-D integer tensor"))),
        }
    }

    /// A weight tensor of shape `dims` from float values `data`, checked to be finite.
    pub fn tensor(&self, data: Vec<f64>, dims: &[usize], key: &str) -> Result<Tensor> {
        if !data.iter().all(|v| v.is_finite()) {
            return Err(Error::NonFiniteWeight {
                layer: self.name.to_string(),
                key: format!("{}.{key}", self.name),
            });
        }
        let t = Tensor::from_vec(data, dims, &Device::Cpu)?;
        Ok(t.to_dtype(self.b.dtype)?.to_device(&self.b.device)?)
    }

    /// The float values of a constant, checked to have shape `dims`.
    pub fn floats(&self, c: &Const, dims: &[usize], what: &str) -> Result<Vec<f64>> {
        if c.dims != dims {
            return Err(self.error(format!("{what} has shape {:?}, expected {dims:?}", c.dims)));
        }
        match &c.data {
            ConstData::Float(v) => Ok(v.clone()),
            ConstData::Int(_) => Err(self.error(format!("{what} must be a float tensor"))),
        }
    }

    /// Decodes a tensor attribute (counted against the import's element budget).
    pub fn read_tensor(&mut self, t: &TensorProto) -> Result<Const> {
        self.b.reader.read(t, self.name)
    }

    /// Whether `value`'s only use is this node (so it may be fused away).
    pub fn sole_consumer(&self, value: &str) -> bool {
        self.b.analysis.consumers.get(value).copied() == Some(1)
    }

    /// The skepsis node producing `id`, if any.
    pub fn producer_mut(&mut self, id: ValueId) -> Option<&mut Node> {
        id.node().and_then(|i| self.b.nodes.get_mut(i))
    }
}

impl<'a> Builder<'a> {
    fn value(&mut self, name: &str) -> Result<Value> {
        if let Some(v) = self.values.get(name) {
            return Ok(v.clone());
        }
        let Some(&t) = self.initializers.get(name) else {
            // The analysis checked every reference; an unconverted producer would be a bug.
            return Err(Error::OnnxGraph(format!("value '{name}' is used before it is computed")));
        };
        let c = Value::Const(Rc::new(self.reader.read(t, name)?));
        self.values.insert(&t.name, c.clone());
        Ok(c)
    }

    fn check_declared(&self, value: &str, shape: &[usize], node: &str) -> Result<()> {
        let Some(declared) = self.analysis.declared.get(value) else { return Ok(()) };
        let matches = declared.len() == shape.len() + 1
            && declared[1..].iter().zip(shape).all(|(d, s)| d.is_none_or(|d| d == *s));
        if matches {
            Ok(())
        } else {
            let show: Vec<String> =
                declared.iter().map(|d| d.map_or("?".to_string(), |d| d.to_string())).collect();
            Err(Error::OnnxGraph(format!(
                "node '{node}': value '{value}' has the inferred shape [N, {}] but the file declares [{}]",
                shape.iter().map(|s| s.to_string()).collect::<Vec<_>>().join(", "),
                show.join(", ")
            )))
        }
    }
}

/// Builds the model of `analysis`.
pub fn build(
    analysis: &Analysis<'_>,
    name: &str,
    base_dir: Option<&Path>,
    dtype: DType,
    device: &Device,
) -> Result<Model> {
    let mut b = Builder {
        analysis,
        reader: TensorReader { base_dir, decoded: 0, budget: MAX_TOTAL_ELEMENTS },
        initializers: analysis.graph.initializer.iter().map(|t| (t.name.as_str(), t)).collect(),
        values: HashMap::new(),
        nodes: Vec::new(),
        dtype,
        device: device.clone(),
    };
    b.values.insert(
        analysis.input,
        Value::Dyn { id: ValueId::INPUT, shape: analysis.input_shape.clone() },
    );
    let graph = analysis.graph;
    for &i in &analysis.order {
        let node = &graph.node[i];
        let name = analysis.names[&i].as_str();
        let node_error = |message: String| Error::OnnxNode {
            node: name.to_string(),
            op_type: node.op_type.clone(),
            message,
        };
        let Some(out) = node.output.first().filter(|o| !o.is_empty()) else {
            return Err(node_error("has no output".into()));
        };
        if let Some((k, used)) = node
            .output
            .iter()
            .enumerate()
            .skip(1)
            .find(|(_, o)| !o.is_empty() && analysis.consumers.contains_key(o.as_str()))
        {
            return Err(node_error(format!(
                "output {k} ('{used}') is used; skepsis supports only the first output"
            )));
        }
        let mut cx = NodeCx { node, name, opset: analysis.opset, b: &mut b };
        let value = match super::ops::convert(&mut cx)? {
            Converted::Layer { layer, inputs, shape } => {
                check_sample(&shape).map_err(node_error)?;
                b.nodes.push(Node { name: name.to_string(), layer, inputs });
                Value::Dyn { id: ValueId::of_node(b.nodes.len() - 1), shape }
            }
            Converted::Const(c) => Value::Const(Rc::new(c)),
            Converted::Alias(v) => v,
        };
        if let Value::Dyn { shape, .. } = &value {
            b.check_declared(out, shape, name)?;
        }
        b.values.insert(out.as_str(), value);
    }
    match b.values.get(analysis.output) {
        Some(Value::Dyn { id, .. }) if id.node() == Some(b.nodes.len().wrapping_sub(1)) => {}
        Some(Value::Dyn { .. }) => {
            return Err(Error::OnnxGraph(format!(
                "the output '{}' is not computed by the last layer",
                analysis.output
            )))
        }
        _ => {
            return Err(Error::OnnxGraph(format!(
                "the output '{}' does not depend on the input",
                analysis.output
            )))
        }
    }
    Model::new(name, b.nodes, analysis.input_shape.clone())
}

fn check_sample(shape: &[usize]) -> std::result::Result<(), String> {
    let mut n: usize = 1;
    for &d in shape {
        n = n.checked_mul(d).filter(|&n| n <= MAX_SAMPLE_ELEMENTS).ok_or_else(|| {
            format!("output shape {shape:?} exceeds {MAX_SAMPLE_ELEMENTS} elements per sample")
        })?;
    }
    if n == 0 {
        return Err(format!("output shape {shape:?} is empty"));
    }
    Ok(())
}
