//! `skepsis data import-mnist` and `skepsis data subset` with the real binary on small IDX
//! files written here (the format of LeCun et al.'s MNIST distribution).

use std::path::Path;

mod common;
use common::skepsis;

/// Writes an IDX file: magic (0, 0, type 0x08 = u8, rank), big-endian dims, then the bytes.
fn idx(path: &Path, dims: &[u32], data: &[u8]) {
    let mut bytes = vec![0, 0, 0x08, dims.len() as u8];
    for d in dims {
        bytes.extend(d.to_be_bytes());
    }
    bytes.extend(data);
    std::fs::write(path, bytes).unwrap();
}

fn write_mnist(dir: &Path, train: usize, test: usize) {
    for (stem, n) in [("train", train), ("t10k", test)] {
        let pixels: Vec<u8> = (0..n * 28 * 28).map(|i| (i % 256) as u8).collect();
        let labels: Vec<u8> = (0..n).map(|i| (i % 10) as u8).collect();
        idx(&dir.join(format!("{stem}-images-idx3-ubyte")), &[n as u32, 28, 28], &pixels);
        idx(&dir.join(format!("{stem}-labels-idx1-ubyte")), &[n as u32], &labels);
    }
}

fn split_sizes(dir: &Path) -> (usize, usize) {
    let t = candle_core::safetensors::load(dir.join("data.safetensors"), &candle_core::Device::Cpu)
        .unwrap();
    let n = |prefix: &str| {
        t.iter().find(|(k, _)| k.starts_with(prefix) && k.contains("image")).unwrap().1.dims()[0]
    };
    (n("train"), n("test"))
}

#[test]
fn import_mnist_then_subset() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    std::fs::create_dir(d.join("raw")).unwrap();
    write_mnist(&d.join("raw"), 30, 12);
    let o = skepsis(d, &["data", "import-mnist", "raw", "--out", "mnist"]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(split_sizes(&d.join("mnist")), (30, 12));

    let o = skepsis(d, &["data", "subset", "mnist", "--train", "7", "--out", "small"]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(split_sizes(&d.join("small")), (7, 12));

    // More images than the split has, an existing output, a missing directory: one-line errors.
    for args in [
        &["data", "subset", "mnist", "--train", "31", "--out", "x"][..],
        &["data", "subset", "mnist", "--train", "7", "--out", "small"][..],
        &["data", "import-mnist", "nowhere", "--out", "y"][..],
    ] {
        let o = skepsis(d, args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.starts_with("skepsis: ") && err.trim_end().lines().count() == 1, "{err}");
    }
    // A truncated image file is a clear error, not a panic.
    let raw = d.join("raw/train-images-idx3-ubyte");
    let bytes = std::fs::read(&raw).unwrap();
    std::fs::write(&raw, &bytes[..bytes.len() / 2]).unwrap();
    let o = skepsis(d, &["data", "import-mnist", "raw", "--out", "z"]);
    assert_eq!(o.status.code(), Some(2));
}
