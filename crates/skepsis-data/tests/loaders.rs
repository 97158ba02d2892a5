//! Loader round trips on small files written here, and every kind of corruption rejected with
//! the right error variant.

use std::io::Write;
use std::path::{Path, PathBuf};

use skepsis_data::{
    load_cifar10_dir, load_idx, load_image, load_image_folder, read_dataset, write_dataset,
    DatasetInfo, Error, Preprocessing, Splits, MNIST_CLASSES,
};

fn idx_bytes(magic: u32, dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut out = magic.to_be_bytes().to_vec();
    for d in dims {
        out.extend_from_slice(&d.to_be_bytes());
    }
    out.extend_from_slice(data);
    out
}

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

/// 3 images of 2x3 with pixel values i*6 + p, labels 7, 0, 9.
fn mnist_files(dir: &Path, gzip: bool) -> (PathBuf, PathBuf) {
    let pixels: Vec<u8> = (0..18).map(|v| v * 10).collect();
    let images = idx_bytes(0x803, &[3, 2, 3], &pixels);
    let labels = idx_bytes(0x801, &[3], &[7, 0, 9]);
    let (images, labels) = if gzip { (gz(&images), gz(&labels)) } else { (images, labels) };
    (write(dir, "img", &images), write(dir, "lbl", &labels))
}

#[test]
fn idx_round_trip_plain_and_gz() {
    for gzip in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let (img, lbl) = mnist_files(dir.path(), gzip);
        let p = Preprocessing { scale: 1.0, ..Preprocessing::grayscale() };
        let ds = load_idx(&img, &lbl, &MNIST_CLASSES, &p).unwrap();
        assert_eq!(ds.len(), 3);
        assert_eq!(ds.image_shape(), [1, 2, 3]);
        assert_eq!(ds.labels(), &[7, 0, 9]);
        let v: Vec<f32> = ds.images().flatten_all().unwrap().to_vec1().unwrap();
        assert_eq!(v, (0..18).map(|x| (x * 10) as f32).collect::<Vec<_>>());
    }
}

#[test]
fn idx_corruptions_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (img, lbl) = mnist_files(d, false);
    let g = Preprocessing::grayscale();
    // Wrong magic: a label file passed as images.
    assert!(matches!(load_idx(&lbl, &lbl, &MNIST_CLASSES, &g), Err(Error::BadMagic { .. })));
    // Truncated images (one byte short) and trailing garbage.
    let bytes = std::fs::read(&img).unwrap();
    let short = write(d, "short", &bytes[..bytes.len() - 1]);
    let e = load_idx(&short, &lbl, &MNIST_CLASSES, &g).unwrap_err();
    assert!(matches!(e, Error::WrongLength { expected: 34, found: 33, .. }), "{e}");
    assert!(e.to_string().contains("short"), "error names the file: {e}");
    let long = write(d, "long", &[bytes.clone(), vec![0]].concat());
    assert!(matches!(load_idx(&long, &lbl, &MNIST_CLASSES, &g), Err(Error::WrongLength { .. })));
    // Truncated header; a header declaring a huge size on a tiny file (no allocation from it).
    let hdr = write(d, "hdr", &bytes[..6]);
    assert!(matches!(load_idx(&hdr, &lbl, &MNIST_CLASSES, &g), Err(Error::WrongLength { .. })));
    let huge = write(d, "huge", &idx_bytes(0x803, &[u32::MAX, u32::MAX, u32::MAX], &[1, 2, 3]));
    assert!(matches!(load_idx(&huge, &lbl, &MNIST_CLASSES, &g), Err(Error::WrongLength { .. })));
    // Count mismatch.
    let two = write(d, "two", &idx_bytes(0x801, &[2], &[1, 2]));
    assert!(matches!(
        load_idx(&img, &two, &MNIST_CLASSES, &g),
        Err(Error::CountMismatch { images: 3, labels: 2, .. })
    ));
    // Label out of range.
    let bad = write(d, "bad", &idx_bytes(0x801, &[3], &[1, 2, 10]));
    assert!(matches!(load_idx(&img, &bad, &MNIST_CLASSES, &g), Err(Error::Corrupt { .. })));
    // Missing file.
    let missing = d.join("nope");
    assert!(matches!(load_idx(&missing, &lbl, &MNIST_CLASSES, &g), Err(Error::MissingFile { .. })));
    // Truncated gzip stream.
    let gzipped = gz(&bytes);
    let cut = write(d, "cut.gz", &gzipped[..gzipped.len() / 2]);
    assert!(matches!(load_idx(&cut, &lbl, &MNIST_CLASSES, &g), Err(Error::Corrupt { .. })));
}

fn cifar_record(label: u8, base: u8) -> Vec<u8> {
    let mut r = vec![label];
    for c in 0..3u8 {
        r.extend((0..1024).map(|p| base.wrapping_add(c * 50).wrapping_add((p % 7) as u8)));
    }
    r
}

#[test]
fn cifar_round_trip_and_corruptions() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for i in 1..=5u8 {
        write(
            d,
            &format!("data_batch_{i}.bin"),
            &[cifar_record(i, i), cifar_record(0, 100)].concat(),
        );
    }
    write(d, "test_batch.bin", &cifar_record(9, 7));
    let p = Preprocessing { scale: 1.0, ..Preprocessing::rgb() };
    let s = load_cifar10_dir(d, &p).unwrap();
    assert_eq!(s.train.len(), 10);
    assert_eq!(s.test.labels(), &[9]);
    assert_eq!(s.train.labels()[..4], [1, 0, 2, 0]);
    let v: Vec<f32> = s.test.images().flatten_all().unwrap().to_vec1().unwrap();
    // Planar R, G, B preserved: pixel 3 of green = 7 + 50 + 3.
    assert_eq!(v[1024 + 3], 60.0);
    assert_eq!(s.train.class_names()[0], "airplane");

    // Truncated batch (one byte short).
    let rec = cifar_record(1, 1);
    write(d, "data_batch_3.bin", &rec[..rec.len() - 1]);
    let e = load_cifar10_dir(d, &p).unwrap_err();
    assert!(
        matches!(e, Error::WrongLength { .. }) && e.to_string().contains("data_batch_3"),
        "{e}"
    );
    // Bad label byte.
    write(d, "data_batch_3.bin", &cifar_record(12, 1));
    assert!(matches!(load_cifar10_dir(d, &p), Err(Error::Corrupt { .. })));
    // Missing batch.
    std::fs::remove_file(d.join("data_batch_3.bin")).unwrap();
    assert!(matches!(load_cifar10_dir(d, &p), Err(Error::MissingFile { .. })));
}

#[test]
fn image_folder_round_trip_and_unreadable_image() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for (class, value) in [("cat", 10u8), ("ant", 200u8)] {
        std::fs::create_dir(d.join(class)).unwrap();
        for k in 0..2u8 {
            let img = image::RgbImage::from_pixel(5, 4, image::Rgb([value, value + k, 0]));
            img.save(d.join(class).join(format!("{k}.png"))).unwrap();
        }
        std::fs::write(d.join(class).join("notes.txt"), "ignored").unwrap();
    }
    let p = Preprocessing { scale: 1.0, ..Preprocessing::rgb() };
    let ds = load_image_folder(d, &p).unwrap();
    assert_eq!(ds.class_names(), &["ant".to_string(), "cat".to_string()]);
    assert_eq!(ds.labels(), &[0, 0, 1, 1]);
    assert_eq!(ds.image_shape(), [3, 4, 5]);
    let v: Vec<f32> = ds.images().flatten_all().unwrap().to_vec1().unwrap();
    assert_eq!(v[0], 200.0);
    let one = load_image(
        &d.join("cat").join("1.png"),
        &Preprocessing { resize: Some([8, 8]), ..p.clone() },
    )
    .unwrap();
    assert_eq!(one.dims(), &[1, 3, 8, 8]);

    // A mismatched size without resize, then an unreadable image.
    image::RgbImage::new(3, 3).save(d.join("cat").join("2.png")).unwrap();
    assert!(matches!(load_image_folder(d, &p), Err(Error::ShapeMismatch { .. })));
    std::fs::remove_file(d.join("cat").join("2.png")).unwrap();
    std::fs::write(d.join("cat").join("broken.png"), b"\x89PNG not really").unwrap();
    let e = load_image_folder(d, &p).unwrap_err();
    assert!(
        matches!(e, Error::UnreadableImage { .. }) && e.to_string().contains("broken.png"),
        "{e}"
    );
    assert!(matches!(load_image_folder(&d.join("none"), &p), Err(Error::MissingFile { .. })));
}

#[test]
fn store_round_trip_refuses_overwrite_and_rejects_corruption() {
    let splits = skepsis_data::generate_smerf(&skepsis_data::SmerfConfig {
        scale: 0.001,
        ..skepsis_data::SmerfConfig::new(skepsis_data::SmerfSetup::ComplexFr)
    })
    .unwrap();
    let info = DatasetInfo {
        name: "smerf-1.2".into(),
        kind: "smerf".into(),
        seed: Some(0),
        generator: serde_json::json!({"setup": "1.2"}),
        preprocessing: Preprocessing::rgb(),
    };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ds");
    write_dataset(&out, &info, &splits, false).unwrap();
    let back = read_dataset(&out).unwrap();
    assert_eq!(back.info, info);
    check_same(&splits, &back.splits);

    assert!(matches!(write_dataset(&out, &info, &splits, false), Err(Error::DatasetExists { .. })));
    write_dataset(&out, &info, &splits, true).unwrap();

    // Corrupt tensors file, truncated tensors file, bad JSON, missing files.
    let st = out.join("data.safetensors");
    let bytes = std::fs::read(&st).unwrap();
    std::fs::write(&st, &bytes[..bytes.len() - 10]).unwrap();
    assert!(matches!(read_dataset(&out), Err(Error::Corrupt { .. })));
    std::fs::write(&st, b"garbage").unwrap();
    assert!(matches!(read_dataset(&out), Err(Error::Corrupt { .. })));
    std::fs::remove_file(&st).unwrap();
    assert!(matches!(read_dataset(&out), Err(Error::MissingFile { .. })));
    std::fs::write(out.join("dataset.json"), b"{").unwrap();
    assert!(matches!(read_dataset(&out), Err(Error::Corrupt { .. })));
    assert!(matches!(read_dataset(&dir.path().join("nothing")), Err(Error::MissingFile { .. })));
}

fn check_same(a: &Splits, b: &Splits) {
    for (x, y) in [(&a.train, &b.train), (&a.test, &b.test)] {
        assert_eq!(x.labels(), y.labels());
        assert_eq!(x.class_names(), y.class_names());
        assert_eq!(x.regions(), y.regions());
        assert_eq!(x.bucket_ids(), y.bucket_ids());
        assert_eq!(x.bucket_names(), y.bucket_names());
        let vx: Vec<f32> = x.images().flatten_all().unwrap().to_vec1().unwrap();
        let vy: Vec<f32> = y.images().flatten_all().unwrap().to_vec1().unwrap();
        assert_eq!(vx, vy);
    }
}
