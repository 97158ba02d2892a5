//! Hostile ONNX files: truncated protobuf, tensors whose dims disagree with their data,
//! absurd sizes, external data outside the model's folder, cycles, dangling inputs, and a
//! seeded mutation stress run over the conformance files (the stable-toolchain counterpart
//! of `fuzz/`). Every case must end in a typed error: no panic, no huge allocation.

mod onnx_support;

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};

use candle_core::{DType, Device, Tensor};
use onnx_support::*;
use prost::Message;
use skepsis_nn::onnx::proto::{ModelProto, StringStringEntryProto, TensorProto};
use skepsis_nn::{onnx, Error};

fn import_raw(bytes: &[u8]) -> skepsis_nn::Result<skepsis_nn::Model> {
    onnx::import_bytes(bytes, "hostile", None, DType::F32, &Device::Cpu)
}

fn conformance_bytes() -> Vec<(String, Vec<u8>)> {
    conformance_models()
        .into_iter()
        .map(|d| {
            let name = d.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(d.join("model.onnx")).unwrap())
        })
        .collect()
}

/// A Gemm model whose weight initializer is `w` (expects [3, 4] for a [N, 4] input).
fn with_weight(w: TensorProto) -> ModelProto {
    model(
        17,
        vec![node("Gemm", "fc", &["input", "fc.weight"], &["logits"], vec![attr_int("transB", 1)])],
        vec![w],
        &[4],
        "logits",
    )
}

fn expect_err(result: skepsis_nn::Result<skepsis_nn::Model>, needle: &str) -> Error {
    match result {
        Ok(_) => panic!("expected an error containing {needle:?}"),
        Err(e) => {
            assert!(e.to_string().contains(needle), "{e} lacks {needle:?}");
            e
        }
    }
}

#[test]
fn truncated_files_are_rejected() {
    for (name, bytes) in conformance_bytes() {
        let step = (bytes.len() / 300).max(1);
        let lengths = (0..bytes.len().min(1024)).chain((1024..bytes.len()).step_by(step));
        for len in lengths {
            let r = import_raw(&bytes[..len]);
            assert!(r.is_err(), "{name} truncated to {len} bytes imported");
        }
        assert!(import_raw(&bytes).is_ok(), "{name} untruncated");
    }
}

#[test]
fn tensor_sizes_must_agree_with_their_data() {
    let good = float_tensor("fc.weight", &[3, 4], &values(1, 12));
    assert!(import(&with_weight(good.clone())).is_ok());
    let mut short = good.clone();
    short.raw_data.as_mut().unwrap().truncate(44);
    let e = expect_err(import(&with_weight(short)), "need 48 bytes");
    assert!(matches!(e, Error::OnnxTensor { .. }));
    let mut typed = good.clone();
    typed.raw_data = None;
    typed.float_data = vec![0.5; 11];
    expect_err(import(&with_weight(typed)), "need 12 values");
    let mut both = good.clone();
    both.float_data = vec![0.5; 12];
    expect_err(import(&with_weight(both)), "both raw_data and typed data");
    let mut nan = good.clone();
    nan.raw_data = Some([f32::NAN; 12].iter().flat_map(|v| v.to_le_bytes()).collect());
    assert!(matches!(import(&with_weight(nan)), Err(Error::NonFiniteWeight { .. })));
    let mut f16 = good;
    f16.data_type = skepsis_nn::onnx::proto::data_type::FLOAT16;
    expect_err(import(&with_weight(f16)), "FLOAT16 is not supported");
}

#[test]
fn absurd_dimensions_fail_before_allocating() {
    for dims in [vec![1i64 << 40, 1 << 40], vec![i64::MAX, 2], vec![-3, 4], vec![1 << 29]] {
        let mut t = float_tensor("fc.weight", &[1], &[1.0]);
        t.dims = dims.clone();
        let e = import(&with_weight(t)).expect_err("absurd dims");
        assert!(matches!(e, Error::OnnxTensor { .. }), "{dims:?}: {e}");
    }
    let mut t = float_tensor("fc.weight", &[1], &[1.0]);
    t.dims = vec![1; 17];
    expect_err(import(&with_weight(t)), "dimensions");
    // A huge model input.
    let relu = vec![node("Relu", "r", &["input"], &["logits"], vec![])];
    expect_err(import(&model(17, relu, vec![], &[1 << 20, 1 << 20], "logits")), "exceeds");
    // A small input whose activations would be huge: a 1x1 conv to 4096 channels.
    let conv = vec![node("Conv", "c", &["input", "w"], &["logits"], vec![])];
    let w = float_tensor("w", &[4096, 1, 1, 1], &vec![1.0; 4096]);
    expect_err(import(&model(17, conv, vec![w], &[1, 4096, 4096], "logits")), "exceeds");
}

#[test]
fn too_many_messages_are_rejected_by_the_wire_check() {
    // ModelProto.graph holding 2^20 + 1 empty NodeProtos: 2 bytes each on the wire,
    // hundreds of bytes each once decoded.
    let n = (1 << 20) + 1;
    let mut graph = Vec::with_capacity(2 * n);
    for _ in 0..n {
        graph.extend_from_slice(&[0x0a, 0x00]);
    }
    let mut bytes = vec![0x3a];
    prost::encoding::encode_varint(graph.len() as u64, &mut bytes);
    bytes.extend_from_slice(&graph);
    expect_err(import_raw(&bytes), "more than 1048576 messages");
    // Invalid UTF-8 in a string field is a decode error.
    let m =
        model(17, vec![node("Relu", "r", &["input"], &["logits"], vec![])], vec![], &[2], "logits");
    let mut bytes = m.encode_to_vec();
    let pos = bytes.windows(5).position(|w| w == b"skeps").unwrap();
    bytes[pos] = 0xff;
    assert!(matches!(import_raw(&bytes), Err(Error::OnnxDecode { .. })));
}

#[test]
fn graph_structure_errors() {
    let dangling = vec![node("Add", "a", &["input", "ghost"], &["logits"], vec![])];
    expect_err(import(&model(17, dangling, vec![], &[2], "logits")), "'ghost' of node 0 'a'");
    let twice = vec![
        node("Relu", "a", &["input"], &["x"], vec![]),
        node("Relu", "b", &["input"], &["x"], vec![]),
        node("Add", "c", &["x", "x"], &["logits"], vec![]),
    ];
    expect_err(import(&model(17, twice, vec![], &[2], "logits")), "produced more than once");
    let cycle = vec![
        node("Relu", "a", &["input", "z"], &["y"], vec![]),
        node("Relu", "b", &["y"], &["z"], vec![]),
        node("Relu", "c", &["z"], &["logits"], vec![]),
    ];
    expect_err(import(&model(17, cycle, vec![], &[2], "logits")), "cycle");
    let missing_output = vec![node("Relu", "a", &["input"], &["y"], vec![])];
    expect_err(import(&model(17, missing_output, vec![], &[2], "logits")), "not computed");
    // A subgraph attribute stays opaque (never decoded); the operator is reported.
    let mut iff = node("If", "branchy", &["input"], &["logits"], vec![]);
    iff.attribute.push(skepsis_nn::onnx::proto::AttributeProto {
        name: "then_branch".into(),
        g: Some(vec![0xff; 64]),
        ..Default::default()
    });
    expect_err(import(&model(17, vec![iff], vec![], &[2], "logits")), "If (node 'branchy')");
}

fn external(location: &str, offset: Option<u64>, length: Option<u64>) -> TensorProto {
    let mut entries =
        vec![StringStringEntryProto { key: "location".into(), value: location.into() }];
    if let Some(o) = offset {
        entries.push(StringStringEntryProto { key: "offset".into(), value: o.to_string() });
    }
    if let Some(l) = length {
        entries.push(StringStringEntryProto { key: "length".into(), value: l.to_string() });
    }
    TensorProto {
        name: "fc.weight".into(),
        dims: vec![3, 4],
        data_type: skepsis_nn::onnx::proto::data_type::FLOAT,
        external_data: entries,
        data_location: skepsis_nn::onnx::proto::DATA_LOCATION_EXTERNAL,
        ..Default::default()
    }
}

#[test]
fn external_data_inside_the_folder_only() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("model");
    std::fs::create_dir(&dir).unwrap();
    let w = values(3, 12);
    let mut blob = vec![7u8; 16]; // 16 bytes of padding before the tensor
    blob.extend(w.iter().flat_map(|&v| (v as f32).to_le_bytes()));
    std::fs::write(dir.join("weights.bin"), &blob).unwrap();
    std::fs::write(root.path().join("outside.bin"), &blob).unwrap();
    let load = |t: TensorProto| {
        let path = dir.join("net.onnx");
        std::fs::write(&path, with_weight(t).encode_to_vec()).unwrap();
        onnx::import(&path, DType::F32, &Device::Cpu)
    };
    let external_model = load(external("weights.bin", Some(16), Some(48))).unwrap();
    let inline = with_weight(float_tensor("fc.weight", &[3, 4], &w)).encode_to_vec();
    let inline = import_raw(&inline).unwrap();
    let x = Tensor::ones((1, 4), DType::F32, &Device::Cpu).unwrap();
    let a = external_model.forward(&x).unwrap().to_vec2::<f32>().unwrap();
    let b = inline.forward(&x).unwrap().to_vec2::<f32>().unwrap();
    assert_eq!(a, b);
    assert_eq!(external_model.name(), "net");

    expect_err(load(external("../outside.bin", Some(16), None)), "inside the model's folder");
    let abs = root.path().join("outside.bin");
    expect_err(load(external(abs.to_str().unwrap(), Some(16), None)), "inside the model's folder");
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(root.path().join("outside.bin"), dir.join("link.bin")).unwrap();
        expect_err(load(external("link.bin", Some(16), None)), "leaves the model's folder");
    }
    expect_err(load(external("weights.bin", Some(40), None)), "needed at offset 40");
    expect_err(load(external("weights.bin", Some(u64::MAX), None)), "needed at offset");
    expect_err(load(external("weights.bin", Some(16), Some(47))), "differs");
    expect_err(load(external("missing.bin", None, None)), "missing.bin");
    // Without a folder (bytes in memory) external data cannot be resolved.
    let bytes = with_weight(external("weights.bin", Some(16), None)).encode_to_vec();
    expect_err(import_raw(&bytes), "without the model's folder");
}

/// Offsets of every length prefix of a length-delimited field that parses as a message,
/// recursively (a heuristic map of the file's structure).
fn length_fields(
    buf: &[u8],
    base: usize,
    out: &mut Vec<(usize, usize, u64)>,
    depth: usize,
) -> bool {
    let mut pos = 0;
    while pos < buf.len() {
        let Ok(key) = prost::encoding::decode_varint(&mut &buf[pos..]) else { return false };
        pos += prost::encoding::encoded_len_varint(key);
        match key & 7 {
            0 => match prost::encoding::decode_varint(&mut &buf[pos..]) {
                Ok(v) => pos += prost::encoding::encoded_len_varint(v),
                Err(_) => return false,
            },
            1 => pos += 8,
            5 => pos += 4,
            2 => {
                let Ok(len) = prost::encoding::decode_varint(&mut &buf[pos..]) else {
                    return false;
                };
                let width = prost::encoding::encoded_len_varint(len);
                let start = pos + width;
                let Some(end) = start.checked_add(len as usize).filter(|&e| e <= buf.len()) else {
                    return false;
                };
                out.push((base + pos, width, len));
                if depth < 8 {
                    let mut inner = Vec::new();
                    if length_fields(&buf[start..end], base + start, &mut inner, depth + 1) {
                        out.extend(inner);
                    }
                }
                pos = end;
            }
            _ => return false,
        }
        if pos > buf.len() {
            return false;
        }
    }
    true
}

/// xorshift64*: a seeded generator for the mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn mutate(rng: &mut Rng, bytes: &[u8], fields: &[(usize, usize, u64)]) -> (&'static str, Vec<u8>) {
    let mut b = bytes.to_vec();
    match rng.below(5) {
        0 => {
            b.truncate(rng.below(bytes.len()));
            ("truncate", b)
        }
        1 => {
            for _ in 0..1 + rng.below(8) {
                let i = rng.below(b.len());
                b[i] ^= 1 << rng.below(8);
            }
            ("bit flips", b)
        }
        2 => {
            for _ in 0..1 + rng.below(4) {
                let i = rng.below(b.len());
                b[i] = rng.next() as u8;
            }
            ("byte overwrite", b)
        }
        3 => {
            let (pos, width, len) = fields[rng.below(fields.len())];
            let new_len = match rng.below(5) {
                0 => 0,
                1 => len.saturating_sub(1 + rng.below(8) as u64),
                2 => len + 1 + rng.below(8) as u64,
                3 => u64::from(u32::MAX) << rng.below(30),
                _ => rng.next() >> rng.below(64),
            };
            let mut enc = Vec::new();
            prost::encoding::encode_varint(new_len, &mut enc);
            b.splice(pos..pos + width, enc);
            ("length edit", b)
        }
        _ => {
            let i = rng.below(b.len());
            let n = 1 + rng.below(16);
            let junk: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
            b.splice(i..i, junk);
            ("insertion", b)
        }
    }
}

#[test]
fn seeded_mutations_never_panic() {
    let files = conformance_bytes();
    let runs: usize =
        std::env::var("SKEPSIS_ONNX_MUTATIONS").ok().and_then(|v| v.parse().ok()).unwrap_or(4000);
    let mut rng = Rng(0x5eed_0000_0000_0001);
    let mut outcomes: BTreeMap<String, usize> = BTreeMap::new();
    let mut panics = Vec::new();
    let structure: Vec<Vec<(usize, usize, u64)>> = files
        .iter()
        .map(|(_, b)| {
            let mut f = Vec::new();
            length_fields(b, 0, &mut f, 0);
            f
        })
        .collect();
    for run in 0..runs {
        let k = run % files.len();
        let (kind, bytes) = mutate(&mut rng, &files[k].1, &structure[k]);
        let result = catch_unwind(AssertUnwindSafe(|| match import_raw(&bytes) {
            Ok(model) => {
                let mut dims = vec![2];
                dims.extend_from_slice(model.input_shape());
                let x = Tensor::zeros(dims, DType::F32, &Device::Cpu).unwrap();
                match model.forward(&x) {
                    Ok(_) => "imported, forward ok".to_string(),
                    Err(_) => "imported, forward error".to_string(),
                }
            }
            Err(e) => format!("error {}", variant(&e)),
        }));
        match result {
            Ok(outcome) => *outcomes.entry(format!("{kind}: {outcome}")).or_default() += 1,
            Err(_) => panics.push(format!("run {run}: {kind} of {}", files[k].0)),
        }
    }
    println!("{runs} seeded mutations of {} conformance files:", files.len());
    for (k, v) in &outcomes {
        println!("  {v:5}  {k}");
    }
    assert!(panics.is_empty(), "panics: {panics:?}");
}

fn variant(e: &Error) -> &'static str {
    match e {
        Error::OnnxDecode { .. } => "OnnxDecode",
        Error::OnnxGraph(_) => "OnnxGraph",
        Error::OnnxUnsupportedOperators { .. } => "OnnxUnsupportedOperators",
        Error::OnnxNode { .. } => "OnnxNode",
        Error::OnnxTensor { .. } => "OnnxTensor",
        Error::NonFiniteWeight { .. } => "NonFiniteWeight",
        _ => "other",
    }
}
