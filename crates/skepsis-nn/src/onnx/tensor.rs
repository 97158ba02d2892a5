//! ONNX `TensorProto` -> constant values, with every size checked before allocating.
//!
//! Supported element types: FLOAT and DOUBLE (weights, read as f64), INT64, INT32 and BOOL
//! (shapes, axes, flags; BOOL is stored like INT32 in `int32_data` or one byte per value). Data may sit in the typed fields (`float_data`, ...), in `raw_data`
//! (little-endian) or in an external file next to the model (`data_location = EXTERNAL`,
//! keys `location`, `offset`, `length`). External locations must be relative paths that stay
//! inside the model's folder after resolving symbolic links; anything else is rejected.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Component, Path};

use super::proto::{data_type, TensorProto, DATA_LOCATION_EXTERNAL};
use crate::{Error, Result};

/// Most elements of one tensor (1 GiB of f32).
pub const MAX_TENSOR_ELEMENTS: usize = 1 << 28;
/// Most dimensions of one tensor.
pub const MAX_TENSOR_RANK: usize = 16;

/// The values of a constant tensor.
#[derive(Clone, Debug, PartialEq)]
pub enum ConstData {
    Float(Vec<f64>),
    Int(Vec<i64>),
}

/// A constant tensor: dimensions and row-major values.
#[derive(Clone, Debug, PartialEq)]
pub struct Const {
    pub dims: Vec<usize>,
    pub data: ConstData,
}

impl Const {
    /// The values as integers (integer tensors only).
    pub fn ints(&self) -> Option<&[i64]> {
        match &self.data {
            ConstData::Int(v) => Some(v),
            ConstData::Float(_) => None,
        }
    }

    /// The values as floats (float tensors only).
    pub fn floats(&self) -> Option<&[f64]> {
        match &self.data {
            ConstData::Float(v) => Some(v),
            ConstData::Int(_) => None,
        }
    }
}

/// Reads tensors and keeps count of the elements decoded so far.
pub struct TensorReader<'a> {
    /// Folder that external-data locations are relative to (`None`: external data rejected).
    pub base_dir: Option<&'a Path>,
    /// Elements decoded so far, across all tensors.
    pub decoded: usize,
    /// Most elements decoded in one import.
    pub budget: usize,
}

/// Byte width of an element type in `raw_data`.
fn element_width(dt: i32) -> Option<usize> {
    match dt {
        data_type::BOOL => Some(1),
        data_type::FLOAT | data_type::INT32 => Some(4),
        data_type::DOUBLE | data_type::INT64 => Some(8),
        _ => None,
    }
}

fn type_name(dt: i32) -> String {
    let name = match dt {
        data_type::UNDEFINED => "UNDEFINED",
        data_type::FLOAT => "FLOAT",
        data_type::UINT8 => "UINT8",
        data_type::INT8 => "INT8",
        data_type::UINT16 => "UINT16",
        data_type::INT16 => "INT16",
        data_type::INT32 => "INT32",
        data_type::INT64 => "INT64",
        data_type::STRING => "STRING",
        data_type::BOOL => "BOOL",
        data_type::FLOAT16 => "FLOAT16",
        data_type::DOUBLE => "DOUBLE",
        data_type::UINT32 => "UINT32",
        data_type::UINT64 => "UINT64",
        data_type::BFLOAT16 => "BFLOAT16",
        other => return format!("data type {other}"),
    };
    name.to_string()
}

impl TensorReader<'_> {
    /// Decodes `t`; `name` is used in error messages.
    pub fn read(&mut self, t: &TensorProto, name: &str) -> Result<Const> {
        let bad = |message: String| Error::OnnxTensor { tensor: name.to_string(), message };
        if t.dims.len() > MAX_TENSOR_RANK {
            return Err(bad(format!("{} dimensions (at most {MAX_TENSOR_RANK})", t.dims.len())));
        }
        let mut dims = Vec::with_capacity(t.dims.len());
        let mut count: usize = 1;
        for &d in &t.dims {
            let d = usize::try_from(d).map_err(|_| bad(format!("negative dimension {d}")))?;
            count =
                count.checked_mul(d).filter(|&c| c <= MAX_TENSOR_ELEMENTS).ok_or_else(|| {
                    bad(format!("dims {:?} exceed {MAX_TENSOR_ELEMENTS} elements", t.dims))
                })?;
            dims.push(d);
        }
        if self.decoded + count > self.budget {
            return Err(bad(format!(
                "the model's tensors exceed {} elements in total",
                self.budget
            )));
        }
        if t.segment.is_some() {
            return Err(bad("segmented tensors are not supported".into()));
        }
        let width = element_width(t.data_type).ok_or_else(|| {
            bad(format!(
                "element type {} is not supported (FLOAT, DOUBLE, INT32, INT64, BOOL)",
                type_name(t.data_type)
            ))
        })?;
        let external;
        let raw: Option<&[u8]> = if t.data_location == DATA_LOCATION_EXTERNAL {
            external = self.external(t, count * width).map_err(bad)?;
            Some(&external)
        } else {
            if !t.external_data.is_empty() {
                return Err(bad("external_data given but data_location is not EXTERNAL".into()));
            }
            t.raw_data.as_deref()
        };
        let typed = match t.data_type {
            data_type::FLOAT => t.float_data.len(),
            data_type::DOUBLE => t.double_data.len(),
            data_type::INT32 | data_type::BOOL => t.int32_data.len(),
            _ => t.int64_data.len(),
        };
        let data = match raw {
            Some(bytes) => {
                if typed != 0 {
                    return Err(bad("holds both raw_data and typed data".into()));
                }
                if bytes.len() != count * width {
                    return Err(bad(format!(
                        "dims {:?} need {} bytes of {} but {} are stored",
                        dims,
                        count * width,
                        type_name(t.data_type),
                        bytes.len()
                    )));
                }
                decode_raw(bytes, t.data_type)
            }
            None => {
                if typed != count {
                    return Err(bad(format!(
                        "dims {dims:?} need {count} values but {typed} are stored"
                    )));
                }
                match t.data_type {
                    data_type::FLOAT => {
                        ConstData::Float(t.float_data.iter().map(|&v| f64::from(v)).collect())
                    }
                    data_type::DOUBLE => ConstData::Float(t.double_data.clone()),
                    data_type::INT32 | data_type::BOOL => {
                        ConstData::Int(t.int32_data.iter().map(|&v| i64::from(v)).collect())
                    }
                    _ => ConstData::Int(t.int64_data.clone()),
                }
            }
        };
        self.decoded += count;
        Ok(Const { dims, data })
    }

    /// Reads the external data of `t`: exactly `expected` bytes.
    fn external(&self, t: &TensorProto, expected: usize) -> std::result::Result<Vec<u8>, String> {
        let base = self.base_dir.ok_or(
            "external data cannot be resolved without the model's folder (import from a file)",
        )?;
        let mut location = None;
        let mut offset = 0u64;
        let mut length = None;
        for e in &t.external_data {
            let number = || {
                e.value
                    .parse::<u64>()
                    .map_err(|_| format!("external data {} '{}' is not a number", e.key, e.value))
            };
            match e.key.as_str() {
                "location" => location = Some(e.value.as_str()),
                "offset" => offset = number()?,
                "length" => length = Some(number()?),
                "checksum" => {}
                other => return Err(format!("unknown external data key '{other}'")),
            }
        }
        let location = location.ok_or("external data without a location")?;
        let relative = Path::new(location);
        if location.is_empty() || !relative.components().all(|c| matches!(c, Component::Normal(_)))
        {
            return Err(format!(
                "external data location '{location}' must be a relative path inside the model's folder"
            ));
        }
        let io = |e: std::io::Error| format!("external data '{location}': {e}");
        let base = base.canonicalize().map_err(io)?;
        let path = base.join(relative).canonicalize().map_err(io)?;
        if !path.starts_with(&base) {
            return Err(format!("external data location '{location}' leaves the model's folder"));
        }
        if let Some(l) = length {
            if l != expected as u64 {
                return Err(format!(
                    "external data length {l} differs from the {expected} bytes the dims need"
                ));
            }
        }
        let mut file = std::fs::File::open(&path).map_err(io)?;
        let size = file.metadata().map_err(io)?.len();
        if offset.checked_add(expected as u64).is_none_or(|end| end > size) {
            return Err(format!(
                "external data '{location}' holds {size} bytes; {expected} needed at offset {offset}"
            ));
        }
        file.seek(SeekFrom::Start(offset)).map_err(io)?;
        let mut bytes = vec![0u8; expected];
        file.read_exact(&mut bytes).map_err(io)?;
        Ok(bytes)
    }
}

fn decode_raw(bytes: &[u8], dt: i32) -> ConstData {
    match dt {
        data_type::FLOAT => ConstData::Float(
            bytes
                .chunks_exact(4)
                .map(|c| f64::from(f32::from_le_bytes([c[0], c[1], c[2], c[3]])))
                .collect(),
        ),
        data_type::DOUBLE => {
            ConstData::Float(bytes.chunks_exact(8).map(|c| f64::from_le_bytes(eight(c))).collect())
        }
        data_type::BOOL => ConstData::Int(bytes.iter().map(|&b| i64::from(b)).collect()),
        data_type::INT32 => ConstData::Int(
            bytes
                .chunks_exact(4)
                .map(|c| i64::from(i32::from_le_bytes([c[0], c[1], c[2], c[3]])))
                .collect(),
        ),
        _ => ConstData::Int(bytes.chunks_exact(8).map(|c| i64::from_le_bytes(eight(c))).collect()),
    }
}

fn eight(c: &[u8]) -> [u8; 8] {
    let mut a = [0u8; 8];
    a.copy_from_slice(c);
    a
}
