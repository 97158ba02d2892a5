//! skepsis node names for ONNX nodes, deterministic and unique.
//!
//! In order of preference, a node is named
//! 1. after its weight: a Conv, Gemm, MatMul or BatchNormalization whose second input is an
//!    initializer called `<prefix>.weight` is named `<prefix>` (PyTorch's module path), so
//!    the imported state dict has PyTorch's keys (`conv1.weight`, `bn1.running_mean`, ...);
//! 2. after its ONNX name: a TorchScript-style name `/scope/.../OpType` becomes the module
//!    path of its scope (`/layer1/layer1.0/relu/Relu` -> `layer1.0.relu`, `/relu2/Relu` ->
//!    `relu2`; a scope segment that prefixes the next one with a dot is dropped), a root
//!    level name `/Relu_1` becomes `Relu_1`, any other name is kept;
//! 3. `<op_type in lower case>_<ONNX node index>` when the ONNX name is empty.
//!
//! Characters other than ASCII letters, digits, `_`, `.` and `-` become `_`; the reserved
//! name `input` becomes `input_node`. Weight-derived names are claimed first (in graph
//! order), then the others; a name already taken gets the first free suffix `_2`, `_3`, ...

use std::collections::{HashMap, HashSet};

use super::proto::GraphProto;

fn sanitize(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') { c } else { '_' })
        .collect();
    if s == "input" {
        "input_node".to_string()
    } else {
        s
    }
}

/// The module path of a TorchScript-style node name `/a/b/OpType`.
fn scope_name(name: &str) -> Option<String> {
    let rest = name.strip_prefix('/')?;
    let segments: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    let (last, scope) = segments.split_last()?;
    if scope.is_empty() {
        return Some(last.to_string());
    }
    let mut kept: Vec<&str> = Vec::new();
    for (i, s) in scope.iter().enumerate() {
        let prefixes_next = scope
            .get(i + 1)
            .is_some_and(|next| next.strip_prefix(s).is_some_and(|r| r.starts_with('.')));
        if !prefixes_next {
            kept.push(s);
        }
    }
    Some(kept.join("."))
}

fn weight_name(graph: &GraphProto, index: usize, constants: &HashSet<&str>) -> Option<String> {
    let node = &graph.node[index];
    if !matches!(node.op_type.as_str(), "Conv" | "Gemm" | "MatMul" | "BatchNormalization") {
        return None;
    }
    let w = node.input.get(1)?;
    let prefix = w.strip_suffix(".weight").filter(|p| !p.is_empty())?;
    constants.contains(w.as_str()).then(|| prefix.to_string())
}

/// Names for the nodes `order` (ONNX node indices) of `graph`.
pub fn assign(
    graph: &GraphProto,
    order: &[usize],
    constants: &HashSet<&str>,
) -> HashMap<usize, String> {
    let mut taken: HashSet<String> = HashSet::new();
    let mut names = HashMap::new();
    let claim = |base: String, taken: &mut HashSet<String>| -> String {
        let base = if base.is_empty() { "node".to_string() } else { base };
        let mut candidate = base.clone();
        let mut k = 2;
        while taken.contains(&candidate) {
            candidate = format!("{base}_{k}");
            k += 1;
        }
        taken.insert(candidate.clone());
        candidate
    };
    for &i in order {
        if let Some(w) = weight_name(graph, i, constants) {
            names.insert(i, claim(sanitize(&w), &mut taken));
        }
    }
    for &i in order {
        if names.contains_key(&i) {
            continue;
        }
        let node = &graph.node[i];
        let base = if node.name.is_empty() {
            format!("{}_{i}", node.op_type.to_ascii_lowercase())
        } else {
            scope_name(&node.name).unwrap_or_else(|| node.name.clone())
        };
        names.insert(i, claim(sanitize(&base), &mut taken));
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn torchscript_scopes() {
        assert_eq!(scope_name("/relu2/Relu").as_deref(), Some("relu2"));
        assert_eq!(scope_name("/Relu_1").as_deref(), Some("Relu_1"));
        assert_eq!(scope_name("/layer1/layer1.0/relu/Relu").as_deref(), Some("layer1.0.relu"));
        assert_eq!(scope_name("/layer1/0/relu/Relu").as_deref(), Some("layer1.0.relu"));
        assert_eq!(scope_name("relu"), None);
        assert_eq!(sanitize("onnx::Conv 3"), "onnx__Conv_3");
        assert_eq!(sanitize("input"), "input_node");
    }
}
