//! A pass over the raw protobuf wire format that runs before decoding.
//!
//! `prost` already rejects truncated and malformed input, but a small hostile file can
//! still make it allocate a lot: every 2-byte empty submessage becomes a struct of a few
//! hundred bytes. This pass walks the same message tree that [`super::proto`] declares,
//! checks every tag, varint and length against the buffer, and counts fields and
//! submessages, so that decoding only starts on well-formed input whose decoded size is
//! bounded by a small multiple of the file size (and by [`MAX_MESSAGES`] structs).

use crate::{Error, Result};

/// Most submessages (nodes, attributes, tensors, value infos, dimensions, ...) in a file.
pub const MAX_MESSAGES: usize = 1 << 20;
/// Most fields of any kind in a file.
pub const MAX_FIELDS: usize = 1 << 24;
/// Deepest nesting of messages (the declared tree is 7 levels deep).
const MAX_DEPTH: usize = 16;

/// The message types of [`super::proto`] that hold submessages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Model,
    Graph,
    Node,
    Attribute,
    Tensor,
    ValueInfo,
    Type,
    TypeTensor,
    Shape,
    /// A message without declared submessages (opset id, key/value entry, dimension).
    Leaf,
}

/// The declared message type of field `field` of a `kind` message, if it is a message.
fn submessage(kind: Kind, field: u64) -> Option<Kind> {
    Some(match (kind, field) {
        (Kind::Model, 7) => Kind::Graph,
        (Kind::Model, 8 | 14) => Kind::Leaf,
        (Kind::Graph, 1) => Kind::Node,
        (Kind::Graph, 5) => Kind::Tensor,
        (Kind::Graph, 11..=13) => Kind::ValueInfo,
        (Kind::Node, 5) => Kind::Attribute,
        (Kind::Attribute, 5) => Kind::Tensor,
        (Kind::Tensor, 13) => Kind::Leaf,
        (Kind::ValueInfo, 2) => Kind::Type,
        (Kind::Type, 1) => Kind::TypeTensor,
        (Kind::TypeTensor, 2) => Kind::Shape,
        (Kind::Shape, 1) => Kind::Leaf,
        _ => return None,
    })
}

struct Scanner<'a> {
    buf: &'a [u8],
    fields: usize,
    messages: usize,
}

/// Checks that `buf` is a well-formed `ModelProto` within the size limits.
pub fn check(buf: &[u8]) -> Result<()> {
    let mut s = Scanner { buf, fields: 0, messages: 0 };
    s.message(0, buf.len(), Kind::Model, 0)
}

fn malformed(offset: usize, message: impl std::fmt::Display) -> Error {
    Error::OnnxDecode { message: format!("at byte {offset}: {message}") }
}

impl Scanner<'_> {
    fn varint(&self, pos: &mut usize, end: usize) -> Result<u64> {
        let start = *pos;
        let mut value = 0u64;
        for i in 0..10 {
            let Some(&b) = self.buf.get(*pos).filter(|_| *pos < end) else {
                return Err(malformed(start, "truncated varint"));
            };
            *pos += 1;
            if i == 9 && b > 1 {
                return Err(malformed(start, "varint longer than 64 bits"));
            }
            value |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(malformed(start, "varint longer than 10 bytes"))
    }

    fn message(&mut self, start: usize, end: usize, kind: Kind, depth: usize) -> Result<()> {
        if depth > MAX_DEPTH {
            return Err(malformed(start, "messages nested too deeply"));
        }
        let mut pos = start;
        while pos < end {
            let field_start = pos;
            let key = self.varint(&mut pos, end)?;
            let (field, wire) = (key >> 3, key & 7);
            if field == 0 || field > (1 << 29) - 1 {
                return Err(malformed(field_start, format!("invalid field number {field}")));
            }
            self.fields += 1;
            if self.fields > MAX_FIELDS {
                return Err(malformed(field_start, format!("more than {MAX_FIELDS} fields")));
            }
            match wire {
                0 => {
                    self.varint(&mut pos, end)?;
                }
                1 | 5 => {
                    let width = if wire == 1 { 8 } else { 4 };
                    if end - pos < width {
                        return Err(malformed(field_start, "truncated fixed-width field"));
                    }
                    pos += width;
                }
                2 => {
                    let len = self.varint(&mut pos, end)?;
                    let len =
                        usize::try_from(len).ok().filter(|&l| l <= end - pos).ok_or_else(|| {
                            malformed(
                                field_start,
                                format!(
                                    "field {field} declares {len} bytes but only {} remain",
                                    end - pos
                                ),
                            )
                        })?;
                    if let Some(child) = submessage(kind, field) {
                        self.messages += 1;
                        if self.messages > MAX_MESSAGES {
                            return Err(malformed(
                                field_start,
                                format!("more than {MAX_MESSAGES} messages"),
                            ));
                        }
                        self.message(pos, pos + len, child, depth + 1)?;
                    }
                    pos += len;
                }
                _ => {
                    return Err(malformed(
                        field_start,
                        format!("field {field} has unsupported wire type {wire}"),
                    ))
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_empty_and_rejects_truncation() {
        assert!(check(&[]).is_ok());
        // Field 7 (graph), length 5, but only 1 byte follows.
        assert!(check(&[0x3a, 0x05, 0x00]).is_err());
        // A truncated varint.
        assert!(check(&[0x08, 0x80]).is_err());
        // Wire type 3 (group start) is not used by ONNX.
        assert!(check(&[0x0b]).is_err());
    }

    #[test]
    fn counts_nested_messages() {
        // Model.graph { node {} node {} }
        let buf = [0x3a, 0x04, 0x0a, 0x00, 0x0a, 0x00];
        let mut s = Scanner { buf: &buf, fields: 0, messages: 0 };
        s.message(0, buf.len(), Kind::Model, 0).unwrap();
        assert_eq!(s.messages, 3);
        assert_eq!(s.fields, 3);
    }
}
