//! Typed access to the attributes of one ONNX node.

use super::proto::{AttributeProto, AttributeType, NodeProto, TensorProto};
use crate::{Error, Result};

/// The attributes of `node`, checked against the names an operator accepts.
pub struct Attrs<'a> {
    node: &'a NodeProto,
    name: &'a str,
}

impl<'a> Attrs<'a> {
    /// Wraps the attributes of `node` (called `name` in skepsis) and rejects any attribute
    /// outside `known`, so that an attribute skepsis does not implement never changes the
    /// computation silently.
    pub fn new(node: &'a NodeProto, name: &'a str, known: &[&str]) -> Result<Self> {
        let attrs = Attrs { node, name };
        for (i, a) in node.attribute.iter().enumerate() {
            if !known.contains(&a.name.as_str()) {
                return Err(attrs.error(format!("attribute '{}' is not supported", a.name)));
            }
            if !a.ref_attr_name.is_empty() {
                return Err(
                    attrs.error(format!("attribute '{}' refers to a function attribute", a.name))
                );
            }
            if node.attribute[..i].iter().any(|b| b.name == a.name) {
                return Err(attrs.error(format!("attribute '{}' is given twice", a.name)));
            }
        }
        Ok(attrs)
    }

    /// An error about this node.
    pub fn error(&self, message: impl Into<String>) -> Error {
        Error::OnnxNode {
            node: self.name.to_string(),
            op_type: self.node.op_type.clone(),
            message: message.into(),
        }
    }

    fn get(&self, name: &str, expected: AttributeType) -> Result<Option<&'a AttributeProto>> {
        let Some(a) = self.node.attribute.iter().find(|a| a.name == name) else {
            return Ok(None);
        };
        // Writers before IR version 2 left `type` unset; trust the field then.
        if a.r#type != AttributeType::Undefined as i32 && a.r#type != expected as i32 {
            return Err(self.error(format!(
                "attribute '{name}' has type {} where {expected:?} is expected",
                AttributeType::try_from(a.r#type)
                    .map_or_else(|_| a.r#type.to_string(), |t| format!("{t:?}"))
            )));
        }
        Ok(Some(a))
    }

    /// Whether the attribute is present.
    pub fn has(&self, name: &str) -> bool {
        self.node.attribute.iter().any(|a| a.name == name)
    }

    pub fn int(&self, name: &str, default: i64) -> Result<i64> {
        Ok(self.get(name, AttributeType::Int)?.map_or(default, |a| a.i))
    }

    /// A float attribute, widened to f64 through its shortest decimal form: ONNX stores
    /// `epsilon = 1e-5` as the f32 nearest to 1e-5, and this returns 1e-5 again (as
    /// `model.json` and PyTorch hold it) rather than 9.99999974e-6.
    pub fn float(&self, name: &str, default: f32) -> Result<f64> {
        let v = self.get(name, AttributeType::Float)?.map_or(default, |a| a.f);
        if v.is_finite() {
            Ok(widen(v))
        } else {
            Err(self.error(format!("attribute '{name}' is not finite")))
        }
    }

    pub fn ints(&self, name: &str) -> Result<Option<Vec<i64>>> {
        Ok(self.get(name, AttributeType::Ints)?.map(|a| a.ints.clone()))
    }

    pub fn floats(&self, name: &str) -> Result<Option<Vec<f32>>> {
        Ok(self.get(name, AttributeType::Floats)?.map(|a| a.floats.clone()))
    }

    pub fn string(&self, name: &str, default: &str) -> Result<String> {
        match self.get(name, AttributeType::String)? {
            None => Ok(default.to_string()),
            Some(a) => String::from_utf8(a.s.clone())
                .map_err(|_| self.error(format!("attribute '{name}' is not UTF-8"))),
        }
    }

    pub fn tensor(&self, name: &str) -> Result<Option<&'a TensorProto>> {
        match self.get(name, AttributeType::Tensor)? {
            None => Ok(None),
            Some(a) => {
                a.t.as_ref()
                    .map(Some)
                    .ok_or_else(|| self.error(format!("attribute '{name}' holds no tensor")))
            }
        }
    }

    /// A list of non-negative sizes (kernel, strides, dilations) with `len` entries.
    pub fn sizes(&self, name: &str, len: usize) -> Result<Option<Vec<usize>>> {
        let Some(v) = self.ints(name)? else { return Ok(None) };
        if v.len() != len {
            return Err(self.error(format!(
                "attribute '{name}' has {} entries, expected {len} (only 2-D operators are supported)",
                v.len()
            )));
        }
        v.iter()
            .map(|&x| {
                usize::try_from(x)
                    .ok()
                    .filter(|&x| x <= u32::MAX as usize)
                    .ok_or_else(|| self.error(format!("attribute '{name}' holds {x}")))
            })
            .collect::<Result<Vec<_>>>()
            .map(Some)
    }
}

/// `v` as the f64 closest to its shortest round-tripping decimal representation.
pub fn widen(v: f32) -> f64 {
    v.to_string().parse::<f64>().unwrap_or(f64::from(v))
}
