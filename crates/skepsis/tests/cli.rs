//! The real binary in a temporary directory.

use std::path::Path;
use std::process::Output;

mod common;
use common::{conformance_model, skepsis, stderr};

/// Errors are one line starting with `skepsis:` and exit with status 2.
fn assert_one_line_error(o: &Output, needle: &str) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.starts_with("skepsis: ") && err.trim_end().lines().count() == 1, "{err:?}");
    assert!(err.contains(needle), "{err:?} lacks {needle:?}");
}

fn write_png(path: &Path, size: u32) {
    let img =
        image::GrayImage::from_fn(size, size, |x, y| image::Luma([((x * 7 + y * 13) % 256) as u8]));
    img.save(path).unwrap();
}

#[test]
fn attribute_writes_png_npy_and_safetensors() {
    let dir = tempfile::tempdir().unwrap();
    write_png(&dir.path().join("x.png"), 28);
    let model = conformance_model("cnn");
    for out in ["map.png", "map.npy", "map.safetensors"] {
        let o = skepsis(
            dir.path(),
            &[
                "attribute",
                "--model",
                model.to_str().unwrap(),
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
        assert!(dir.path().join(out).metadata().unwrap().len() > 0);
    }
    let png = image::open(dir.path().join("map.png")).unwrap();
    assert_eq!((png.width(), png.height()), (28 * 8, 28 * 8));
    let npy = std::fs::read(dir.path().join("map.npy")).unwrap();
    assert!(npy.starts_with(b"\x93NUMPY\x01\x00"));
    assert_eq!(npy.len(), 128 + 28 * 28 * 4);
}

#[test]
fn existing_output_is_not_overwritten_without_force() {
    let dir = tempfile::tempdir().unwrap();
    write_png(&dir.path().join("x.png"), 28);
    std::fs::write(dir.path().join("map.npy"), b"mine").unwrap();
    let model = conformance_model("cnn");
    let args =
        ["attribute", "--model", model.to_str().unwrap(), "--input", "x.png", "--out", "map.npy"];
    let o = skepsis(dir.path(), &args);
    assert_one_line_error(&o, "already exists");
    assert_eq!(std::fs::read(dir.path().join("map.npy")).unwrap(), b"mine");
    let mut forced = args.to_vec();
    forced.push("--force");
    assert!(skepsis(dir.path(), &forced).status.success());
}

#[test]
fn bad_inputs_give_one_line_errors() {
    let dir = tempfile::tempdir().unwrap();
    write_png(&dir.path().join("x.png"), 20);
    let model = conformance_model("cnn");
    let m = model.to_str().unwrap();
    assert_one_line_error(
        &skepsis(dir.path(), &["attribute", "--model", m, "--input", "x.png", "--out", "o.npy"]),
        "takes 28x28",
    );
    assert_one_line_error(
        &skepsis(
            dir.path(),
            &["attribute", "--model", m, "--input", "x.png", "--method", "nope", "--out", "o.npy"],
        ),
        "unknown method 'nope'",
    );
    assert_one_line_error(
        &skepsis(
            dir.path(),
            &["attribute", "--model", "missing-dir", "--input", "x.png", "--out", "o.npy"],
        ),
        "missing-dir",
    );
    std::fs::write(dir.path().join("broken.png"), b"not a png").unwrap();
    assert_one_line_error(
        &skepsis(
            dir.path(),
            &["attribute", "--model", m, "--input", "broken.png", "--out", "o.npy"],
        ),
        "broken.png",
    );
    // A model whose weights file lacks a layer's tensor: the error names layer and file.
    let bad = dir.path().join("bad-model");
    std::fs::create_dir(&bad).unwrap();
    std::fs::copy(model.join("model.json"), bad.join("model.json")).unwrap();
    std::fs::write(bad.join("model.safetensors"), b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ")
        .unwrap();
    assert_one_line_error(
        &skepsis(
            dir.path(),
            &["attribute", "--model", "bad-model", "--input", "x.png", "--out", "o.npy"],
        ),
        "conv1",
    );
}

#[test]
fn train_writes_a_loadable_model() {
    let dir = tempfile::tempdir().unwrap();
    // 40 images of 1x8x8: class = whether the left half is brighter than the right half.
    let n = 40;
    let mut images = Vec::with_capacity(n * 64);
    let mut labels = Vec::with_capacity(n);
    for i in 0..n {
        let label = i % 2;
        for p in 0..64 {
            let left = p % 8 < 4;
            images.push(if left == (label == 1) { 0.9f32 } else { 0.1 } + (p as f32 * 0.001));
        }
        labels.push(label as i64);
    }
    let images =
        candle_core::Tensor::from_vec(images, (n, 1, 8, 8), &candle_core::Device::Cpu).unwrap();
    let labels = candle_core::Tensor::from_vec(labels, n, &candle_core::Device::Cpu).unwrap();
    let tensors = std::collections::HashMap::from([
        ("images".to_string(), images),
        ("labels".to_string(), labels),
    ]);
    candle_core::safetensors::save(&tensors, dir.path().join("train.safetensors")).unwrap();
    let o = skepsis(
        dir.path(),
        &[
            "train",
            "--arch",
            "kindermans-mlp",
            "--data",
            "train.safetensors",
            "--out",
            "m",
            "--epochs",
            "3",
            "--lr",
            "0.001",
            "--batch-size",
            "10",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    for f in ["model.json", "model.safetensors", "train_report.json"] {
        assert!(dir.path().join("m").join(f).exists(), "{f}");
    }
    let report: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("m/train_report.json")).unwrap(),
    )
    .unwrap();
    assert!(report["final_train_accuracy"].as_f64().unwrap() > 0.9, "{report}");
    // Training again into the same directory needs --force.
    let again = skepsis(
        dir.path(),
        &["train", "--arch", "kindermans-mlp", "--data", "train.safetensors", "--out", "m"],
    );
    assert_one_line_error(&again, "already exists");
    assert_one_line_error(
        &skepsis(
            dir.path(),
            &["train", "--arch", "resnet", "--data", "train.safetensors", "--out", "m2"],
        ),
        "unknown architecture 'resnet'",
    );
}
