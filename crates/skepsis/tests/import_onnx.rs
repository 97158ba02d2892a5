//! `skepsis import onnx` and `--model FILE.onnx`, with the real binary.

use std::path::Path;

mod common;
use common::{conformance_model, skepsis, stderr};

fn write_png(path: &Path, size: u32) {
    let img =
        image::GrayImage::from_fn(size, size, |x, y| image::Luma([((x * 5 + y * 11) % 256) as u8]));
    img.save(path).unwrap();
}

#[test]
fn import_writes_a_model_directory_and_refuses_to_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let onnx = conformance_model("cnn").join("model.onnx");
    let args = ["import", "onnx", onnx.to_str().unwrap(), "--out", "imported"];
    let o = skepsis(dir.path(), &args);
    assert!(o.status.success(), "{}", stderr(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("relu2 (relu)"), "{stdout}");
    for f in ["model.json", "model.safetensors"] {
        assert!(dir.path().join("imported").join(f).is_file(), "{f}");
    }
    let o = skepsis(dir.path(), &args);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--force"), "{}", stderr(&o));
    let mut forced = args.to_vec();
    forced.push("--force");
    let o = skepsis(dir.path(), &forced);
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn model_flag_accepts_an_onnx_file() {
    let dir = tempfile::tempdir().unwrap();
    write_png(&dir.path().join("x.png"), 28);
    let model = conformance_model("cnn");
    let onnx = model.join("model.onnx");
    for (m, out) in [(model.to_str().unwrap(), "a.npy"), (onnx.to_str().unwrap(), "b.npy")] {
        let o = skepsis(
            dir.path(),
            &[
                "attribute",
                "--model",
                m,
                "--input",
                "x.png",
                "--method",
                "gradient",
                "--target",
                "3",
                "--out",
                out,
            ],
        );
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let a = std::fs::read(dir.path().join("a.npy")).unwrap();
    let b = std::fs::read(dir.path().join("b.npy")).unwrap();
    assert_eq!(a, b, "the same map from model.json and from model.onnx");
}

#[test]
fn a_file_that_is_not_onnx_gives_a_one_line_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bad.onnx"), b"\x0a\xff\xff\xff\x7f").unwrap();
    let o = skepsis(dir.path(), &["import", "onnx", "bad.onnx", "--out", "m"]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.starts_with("skepsis: ") && err.trim_end().lines().count() == 1, "{err:?}");
    assert!(err.contains("not a valid ONNX file"), "{err}");
    assert!(!dir.path().join("m").exists());
}
