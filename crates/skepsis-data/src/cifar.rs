//! CIFAR-10 in its binary format (Krizhevsky, "Learning multiple layers of features from tiny
//! images", 2009): files `data_batch_1.bin` .. `data_batch_5.bin` and `test_batch.bin`, each a
//! sequence of 3073-byte records (one label byte 0..9, then 1024 red, 1024 green and 1024 blue
//! bytes of a 32x32 image, row-major). A file whose length is not a positive multiple of 3073 is
//! truncated or corrupt and is rejected.

use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};

use crate::dataset::{Dataset, Splits};
use crate::error::{Error, Result};
use crate::fileio::read_maybe_gz;
use crate::idx::preprocess_all;
use crate::preprocess::Preprocessing;

/// The CIFAR-10 class names in label order (as in `batches.meta.txt`).
pub const CIFAR10_CLASSES: [&str; 10] =
    ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"];

const SIDE: usize = 32;
const PLANE: usize = SIDE * SIDE;
const RECORD: usize = 1 + 3 * PLANE;

/// Reads one CIFAR-10 binary batch; returns the images as interleaved 8-bit RGB (HWC, image
/// after image) and the labels.
pub fn read_cifar10_batch(path: &Path) -> Result<(Vec<u8>, Vec<u8>)> {
    let bytes = read_maybe_gz(path)?;
    if bytes.is_empty() || bytes.len() % RECORD != 0 {
        let whole = (bytes.len() / RECORD).max(1) * RECORD;
        let expected = if bytes.len() > whole { whole + RECORD } else { whole };
        return Err(Error::WrongLength {
            path: path.to_path_buf(),
            expected: expected as u64,
            found: bytes.len() as u64,
            detail: format!("a positive multiple of the {RECORD}-byte record"),
        });
    }
    let n = bytes.len() / RECORD;
    let mut labels = Vec::with_capacity(n);
    let mut pixels = vec![0u8; n * 3 * PLANE];
    for (i, record) in bytes.chunks_exact(RECORD).enumerate() {
        if record[0] >= 10 {
            return Err(Error::corrupt(
                path,
                format!("record {i} has label {}, CIFAR-10 labels are 0..9", record[0]),
            ));
        }
        labels.push(record[0]);
        let out = &mut pixels[i * 3 * PLANE..(i + 1) * 3 * PLANE];
        for c in 0..3 {
            let plane = &record[1 + c * PLANE..1 + (c + 1) * PLANE];
            for (p, &v) in plane.iter().enumerate() {
                out[p * 3 + c] = v;
            }
        }
    }
    Ok((pixels, labels))
}

/// Loads CIFAR-10 batch files, in the order given, as one [`Dataset`].
pub fn load_cifar10_files(paths: &[PathBuf], preprocessing: &Preprocessing) -> Result<Dataset> {
    preprocessing.validate()?;
    if paths.is_empty() {
        return Err(Error::parameter("load_cifar10_files", "paths", "needs at least one file"));
    }
    let mut pixels = Vec::new();
    let mut labels = Vec::new();
    for p in paths {
        let (px, lb) = read_cifar10_batch(p)?;
        pixels.extend_from_slice(&px);
        labels.extend(lb.iter().map(|&l| l as usize));
    }
    let n = labels.len();
    let data = preprocess_all(&pixels, n, SIDE, SIDE, 3, preprocessing)?;
    let [c, h, w] = preprocessing.output_shape(SIDE, SIDE);
    let tensor = Tensor::from_vec(data, (n, c, h, w), &Device::Cpu)?;
    Dataset::new(tensor, labels, CIFAR10_CLASSES.iter().map(|s| s.to_string()).collect())
}

/// Loads the CIFAR-10 train set (`data_batch_1.bin` .. `data_batch_5.bin`) and test set
/// (`test_batch.bin`) from `dir` or from `dir/cifar-10-batches-bin`.
pub fn load_cifar10_dir(dir: &Path, preprocessing: &Preprocessing) -> Result<Splits> {
    let nested = dir.join("cifar-10-batches-bin");
    let dir = if nested.is_dir() { nested } else { dir.to_path_buf() };
    if !dir.is_dir() {
        return Err(Error::MissingFile { path: dir });
    }
    let train: Vec<PathBuf> = (1..=5).map(|i| dir.join(format!("data_batch_{i}.bin"))).collect();
    let train = load_cifar10_files(&train, preprocessing)?;
    let test = load_cifar10_files(&[dir.join("test_batch.bin")], preprocessing)?;
    Ok(Splits { train, test })
}
