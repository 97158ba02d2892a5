//! Structure of an ONNX graph before any operator is converted: opset, the one input and
//! output, producers and consumers, dangling references, cycles, the nodes that reach the
//! output (in topological order), unsupported operators, and skepsis node names.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};

use super::proto::{data_type, GraphProto, ModelProto, NodeProto, ValueInfoProto};
use crate::{Error, Result};

/// Oldest and newest default-domain opsets the importer knows.
pub const OPSETS: std::ops::RangeInclusive<i64> = 11..=21;
/// Most elements of one sample of any activation (the input included).
pub const MAX_SAMPLE_ELEMENTS: usize = 1 << 26;

/// The operators of the default domain that have a skepsis mapping.
pub const SUPPORTED_OPERATORS: &[&str] = &[
    "Add",
    "AveragePool",
    "BatchNormalization",
    "Concat",
    "Constant",
    "Conv",
    "Dropout",
    "Flatten",
    "Gemm",
    "GlobalAveragePool",
    "Identity",
    "LeakyRelu",
    "MatMul",
    "MaxPool",
    "Relu",
    "Reshape",
    "Sigmoid",
    "Softmax",
    "Squeeze",
    "Tanh",
    "Unsqueeze",
];

/// What the converter needs to know about the graph.
pub struct Analysis<'a> {
    pub graph: &'a GraphProto,
    /// Version of the default-domain opset.
    pub opset: i64,
    /// Indices of the nodes that contribute to the output, in topological order (ties
    /// broken by file order).
    pub order: Vec<usize>,
    /// skepsis name of each node of `order` (index: ONNX node index).
    pub names: HashMap<usize, String>,
    /// Name of the model input and its per-sample shape; the batch size if it is fixed.
    pub input: &'a str,
    pub input_shape: Vec<usize>,
    pub batch: Option<usize>,
    /// Name of the model output.
    pub output: &'a str,
    /// Number of consuming reachable nodes per value name (the output counts one more).
    pub consumers: HashMap<&'a str, usize>,
    /// Declared shapes (`None`: symbolic or unknown dimension) from inputs, outputs and
    /// value_info.
    pub declared: HashMap<&'a str, Vec<Option<usize>>>,
}

fn graph_error(message: impl Into<String>) -> Error {
    Error::OnnxGraph(message.into())
}

/// The default-domain opset of `model`.
fn opset(model: &ModelProto) -> Result<i64> {
    let default: Vec<i64> = model
        .opset_import
        .iter()
        .filter(|o| o.domain.is_empty() || o.domain == "ai.onnx")
        .map(|o| o.version)
        .collect();
    match default[..] {
        [v] if OPSETS.contains(&v) => Ok(v),
        [v] => Err(graph_error(format!(
            "opset {v} of the default domain is not supported (supported: {} to {})",
            OPSETS.start(),
            OPSETS.end()
        ))),
        [] => Err(graph_error("the model imports no opset of the default domain")),
        _ => Err(graph_error("the model imports the default domain more than once")),
    }
}

/// Declared dimensions of a value (`None` where symbolic); `None` without a tensor shape.
fn declared_dims(v: &ValueInfoProto) -> Option<Vec<Option<usize>>> {
    let shape = v.r#type.as_ref()?.tensor_type.as_ref()?.shape.as_ref()?;
    Some(
        shape
            .dim
            .iter()
            .map(|d| {
                d.dim_value.and_then(|x| usize::try_from(x).ok()).filter(|_| d.dim_param.is_none())
            })
            .collect(),
    )
}

fn model_input(v: &ValueInfoProto) -> Result<(Vec<usize>, Option<usize>)> {
    let bad = |m: String| graph_error(format!("model input '{}': {m}", v.name));
    let tensor = v
        .r#type
        .as_ref()
        .and_then(|t| t.tensor_type.as_ref())
        .ok_or_else(|| bad("not a tensor".into()))?;
    if !matches!(tensor.elem_type, data_type::FLOAT | data_type::DOUBLE) {
        return Err(bad(format!(
            "element type {} is not supported (FLOAT or DOUBLE)",
            tensor.elem_type
        )));
    }
    let dims = &tensor.shape.as_ref().ok_or_else(|| bad("has no declared shape".into()))?.dim;
    if dims.len() < 2 {
        return Err(bad(format!(
            "has {} dimension(s); expected a batch axis and at least one more",
            dims.len()
        )));
    }
    let batch = dims[0].dim_value.and_then(|b| usize::try_from(b).ok()).filter(|&b| b > 0);
    let mut shape = Vec::with_capacity(dims.len() - 1);
    let mut count: usize = 1;
    for (i, d) in dims.iter().enumerate().skip(1) {
        let size =
            d.dim_value.filter(|_| d.dim_param.is_none()).and_then(|x| usize::try_from(x).ok());
        let size = size.filter(|&s| s > 0).ok_or_else(|| {
            bad(format!(
                "dimension {i} is {}; only the batch axis may be dynamic",
                d.dim_param.clone().unwrap_or_else(|| format!("{:?}", d.dim_value))
            ))
        })?;
        count = count
            .checked_mul(size)
            .filter(|&c| c <= MAX_SAMPLE_ELEMENTS)
            .ok_or_else(|| bad(format!("one sample exceeds {MAX_SAMPLE_ELEMENTS} elements")))?;
        shape.push(size);
    }
    Ok((shape, batch))
}

/// Checks the structure of `model`'s graph.
pub fn analyze(model: &ModelProto) -> Result<Analysis<'_>> {
    let opset = opset(model)?;
    let graph = model.graph.as_ref().ok_or_else(|| graph_error("the model has no graph"))?;
    if !graph.sparse_initializer.is_empty() {
        return Err(graph_error("sparse initializers are not supported"));
    }
    let mut constants: HashSet<&str> = HashSet::new();
    for t in &graph.initializer {
        if t.name.is_empty() || !constants.insert(&t.name) {
            return Err(graph_error(format!("initializer name '{}' is empty or repeated", t.name)));
        }
    }
    let inputs: Vec<&ValueInfoProto> =
        graph.input.iter().filter(|v| !constants.contains(v.name.as_str())).collect();
    let [input] = inputs[..] else {
        return Err(graph_error(format!(
            "the model has {} inputs ({}); skepsis models take exactly one",
            inputs.len(),
            inputs.iter().map(|v| v.name.as_str()).collect::<Vec<_>>().join(", ")
        )));
    };
    let (input_shape, batch) = model_input(input)?;
    let [output] = &graph.output[..] else {
        return Err(graph_error(format!(
            "the model has {} outputs; skepsis models have exactly one",
            graph.output.len()
        )));
    };

    // Producers (each value is written once, and never over an input or initializer).
    let mut producer: HashMap<&str, usize> = HashMap::new();
    for (i, node) in graph.node.iter().enumerate() {
        for out in node.output.iter().filter(|o| !o.is_empty()) {
            if out == &input.name
                || constants.contains(out.as_str())
                || producer.insert(out, i).is_some()
            {
                return Err(graph_error(format!(
                    "value '{out}' is produced more than once (node {i} '{}')",
                    node.name
                )));
            }
        }
    }
    for (i, node) in graph.node.iter().enumerate() {
        for inp in node.input.iter().filter(|s| !s.is_empty()) {
            let known = inp == &input.name
                || constants.contains(inp.as_str())
                || producer.contains_key(inp.as_str());
            if !known {
                return Err(graph_error(format!(
                    "input '{inp}' of node {i} '{}' ({}) is not produced by any node, initializer or graph input",
                    node.name, node.op_type
                )));
            }
        }
    }
    if !(producer.contains_key(output.name.as_str())) {
        return Err(graph_error(format!(
            "the output '{}' is not computed by any node",
            output.name
        )));
    }

    let topo = topological_order(&graph.node, &producer)?;
    // Nodes that the output depends on.
    let mut needed = vec![false; graph.node.len()];
    let mut stack = vec![output.name.as_str()];
    while let Some(v) = stack.pop() {
        if let Some(&p) = producer.get(v) {
            if !needed[p] {
                needed[p] = true;
                stack.extend(
                    graph.node[p].input.iter().filter(|s| !s.is_empty()).map(String::as_str),
                );
            }
        }
    }
    let order: Vec<usize> = topo.into_iter().filter(|&i| needed[i]).collect();

    // Unnamed nodes are listed as `#<index in the file>`.
    let unsupported: Vec<(String, String)> = order
        .iter()
        .map(|&i| (i, &graph.node[i]))
        .filter(|(_, n)| {
            !is_default_domain(&n.domain) || !SUPPORTED_OPERATORS.contains(&n.op_type.as_str())
        })
        .map(|(i, n)| {
            let op = if is_default_domain(&n.domain) {
                n.op_type.clone()
            } else {
                format!("{}::{}", n.domain, n.op_type)
            };
            let name = if n.name.is_empty() { format!("#{i}") } else { n.name.clone() };
            (name, op)
        })
        .collect();
    if !unsupported.is_empty() {
        return Err(Error::OnnxUnsupportedOperators { operators: unsupported });
    }

    let mut consumers: HashMap<&str, usize> = HashMap::new();
    for &i in &order {
        for inp in graph.node[i].input.iter().filter(|s| !s.is_empty()) {
            *consumers.entry(inp).or_default() += 1;
        }
    }
    *consumers.entry(&output.name).or_default() += 1;

    let declared = graph
        .input
        .iter()
        .chain(&graph.output)
        .chain(&graph.value_info)
        .filter_map(|v| Some((v.name.as_str(), declared_dims(v)?)))
        .collect();
    let names = super::names::assign(graph, &order, &constants);
    Ok(Analysis {
        graph,
        opset,
        order,
        names,
        input: &input.name,
        input_shape,
        batch,
        output: &output.name,
        consumers,
        declared,
    })
}

fn is_default_domain(domain: &str) -> bool {
    domain.is_empty() || domain == "ai.onnx"
}

/// Kahn's algorithm over all nodes, earliest file position first; a cycle is an error
/// naming the nodes on or behind it.
fn topological_order(nodes: &[NodeProto], producer: &HashMap<&str, usize>) -> Result<Vec<usize>> {
    let mut indegree = vec![0usize; nodes.len()];
    let mut successors: Vec<Vec<usize>> = vec![Vec::new(); nodes.len()];
    for (i, node) in nodes.iter().enumerate() {
        for inp in node.input.iter().filter(|s| !s.is_empty()) {
            if let Some(&p) = producer.get(inp.as_str()) {
                indegree[i] += 1;
                successors[p].push(i);
            }
        }
    }
    let mut ready: BinaryHeap<Reverse<usize>> =
        (0..nodes.len()).filter(|&i| indegree[i] == 0).map(Reverse).collect();
    let mut order = Vec::with_capacity(nodes.len());
    while let Some(Reverse(i)) = ready.pop() {
        order.push(i);
        for &s in &successors[i] {
            indegree[s] -= 1;
            if indegree[s] == 0 {
                ready.push(Reverse(s));
            }
        }
    }
    if order.len() != nodes.len() {
        let stuck: Vec<String> = (0..nodes.len())
            .filter(|&i| indegree[i] > 0)
            .take(20)
            .map(|i| format!("'{}' ({})", nodes[i].name, nodes[i].op_type))
            .collect();
        return Err(graph_error(format!(
            "the graph has a cycle through or behind nodes {}",
            stuck.join(", ")
        )));
    }
    Ok(order)
}
