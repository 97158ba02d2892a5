//! MNIST and Fashion-MNIST in the IDX format (LeCun et al., "Gradient-based learning applied to
//! document recognition", 1998; Xiao et al., Fashion-MNIST, 2017), plain or gzipped.
//!
//! An IDX file is `00 00 TT DD` (TT = element type, 0x08 = unsigned byte; DD = number of
//! dimensions), then DD big-endian u32 dimension sizes, then the elements. Image files have
//! magic `0x00000803` and dimensions `[N, H, W]`; label files `0x00000801` and `[N]`. A file must
//! hold exactly the bytes its header declares: fewer is a truncated file, more is rejected too.

use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use rayon::prelude::*;

use crate::dataset::{Dataset, Splits};
use crate::error::{Error, Result};
use crate::fileio::{first_existing, read_maybe_gz};
use crate::preprocess::Preprocessing;

/// The class names of MNIST: the digits `"0"` to `"9"`.
pub const MNIST_CLASSES: [&str; 10] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];

/// The class names of Fashion-MNIST (Xiao et al. 2017), in label order.
pub const FASHION_MNIST_CLASSES: [&str; 10] = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
];

const IMAGES_MAGIC: u32 = 0x0000_0803;
const LABELS_MAGIC: u32 = 0x0000_0801;

/// The decoded content of an IDX image file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxImages {
    /// Number of images.
    pub count: usize,
    /// Rows per image.
    pub height: usize,
    /// Columns per image.
    pub width: usize,
    /// `count * height * width` bytes, image after image, row-major.
    pub pixels: Vec<u8>,
}

/// Parses the header of an IDX file with the given magic; returns the dimensions and the
/// offset of the data, after checking that the file length matches the declared size exactly.
fn parse_idx(path: &Path, bytes: &[u8], magic: u32, ndim: usize) -> Result<(Vec<usize>, usize)> {
    let header_len = 4 + 4 * ndim;
    if bytes.len() < 4 {
        return Err(Error::WrongLength {
            path: path.to_path_buf(),
            expected: header_len as u64,
            found: bytes.len() as u64,
            detail: "shorter than an IDX header".to_string(),
        });
    }
    let found = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    if found != magic {
        return Err(Error::BadMagic {
            path: path.to_path_buf(),
            expected: format!("0x{magic:08x}"),
            found: format!("0x{found:08x}"),
        });
    }
    if bytes.len() < header_len {
        return Err(Error::WrongLength {
            path: path.to_path_buf(),
            expected: header_len as u64,
            found: bytes.len() as u64,
            detail: "truncated IDX header".to_string(),
        });
    }
    let dims: Vec<usize> = (0..ndim)
        .map(|d| {
            let o = 4 + 4 * d;
            u32::from_be_bytes([bytes[o], bytes[o + 1], bytes[o + 2], bytes[o + 3]]) as usize
        })
        .collect();
    // u32 dimensions multiply to at most 2^96; u128 cannot overflow.
    let data: u128 = dims.iter().map(|&d| d as u128).product();
    let expected = header_len as u128 + data;
    if expected != bytes.len() as u128 {
        return Err(Error::WrongLength {
            path: path.to_path_buf(),
            expected: u64::try_from(expected).unwrap_or(u64::MAX),
            found: bytes.len() as u64,
            detail: format!("header {header_len} bytes + dimensions {dims:?}"),
        });
    }
    Ok((dims, header_len))
}

/// Reads an IDX image file (`0x00000803`, `[N, H, W]` unsigned bytes), plain or gzipped.
pub fn read_idx_images(path: &Path) -> Result<IdxImages> {
    let bytes = read_maybe_gz(path)?;
    let (dims, offset) = parse_idx(path, &bytes, IMAGES_MAGIC, 3)?;
    if dims[1] == 0 || dims[2] == 0 {
        return Err(Error::corrupt(path, format!("images of size {}x{}", dims[1], dims[2])));
    }
    let mut pixels = bytes;
    pixels.drain(..offset);
    Ok(IdxImages { count: dims[0], height: dims[1], width: dims[2], pixels })
}

/// Reads an IDX label file (`0x00000801`, `[N]` unsigned bytes), plain or gzipped.
pub fn read_idx_labels(path: &Path) -> Result<Vec<u8>> {
    let bytes = read_maybe_gz(path)?;
    let (_, offset) = parse_idx(path, &bytes, LABELS_MAGIC, 1)?;
    Ok(bytes[offset..].to_vec())
}

/// Loads an IDX image file and its label file as a [`Dataset`]: counts must agree, every label
/// must be below `class_names.len()`, and each image passes through `preprocessing`.
pub fn load_idx(
    images_path: &Path,
    labels_path: &Path,
    class_names: &[&str],
    preprocessing: &Preprocessing,
) -> Result<Dataset> {
    preprocessing.validate()?;
    let images = read_idx_images(images_path)?;
    let labels = read_idx_labels(labels_path)?;
    if images.count != labels.len() {
        return Err(Error::CountMismatch {
            images_path: images_path.to_path_buf(),
            labels_path: labels_path.to_path_buf(),
            images: images.count,
            labels: labels.len(),
        });
    }
    if let Some((i, &l)) = labels.iter().enumerate().find(|(_, &l)| l as usize >= class_names.len())
    {
        return Err(Error::corrupt(
            labels_path,
            format!("label {l} of item {i} is not below the {} classes", class_names.len()),
        ));
    }
    let (h, w) = (images.height, images.width);
    let data = preprocess_all(&images.pixels, images.count, h, w, 1, preprocessing)?;
    let shape = preprocessing.output_shape(h, w);
    let tensor =
        Tensor::from_vec(data, (images.count, shape[0], shape[1], shape[2]), &Device::Cpu)?;
    let names = class_names.iter().map(|s| s.to_string()).collect();
    Dataset::new(tensor, labels.iter().map(|&l| l as usize).collect(), names)
}

/// Loads the train and test sets of MNIST or Fashion-MNIST from a directory holding the four
/// standard files (`train-images-idx3-ubyte`, `train-labels-idx1-ubyte`,
/// `t10k-images-idx3-ubyte`, `t10k-labels-idx1-ubyte`, each optionally ending in `.gz`).
pub fn load_mnist_dir(
    dir: &Path,
    class_names: &[&str],
    preprocessing: &Preprocessing,
) -> Result<Splits> {
    let find = |stem: &str| -> Result<PathBuf> {
        first_existing(&[dir.join(stem), dir.join(format!("{stem}.gz"))])
    };
    let train = load_idx(
        &find("train-images-idx3-ubyte")?,
        &find("train-labels-idx1-ubyte")?,
        class_names,
        preprocessing,
    )?;
    let test = load_idx(
        &find("t10k-images-idx3-ubyte")?,
        &find("t10k-labels-idx1-ubyte")?,
        class_names,
        preprocessing,
    )?;
    Ok(Splits { train, test })
}

/// Applies `preprocessing` to `count` interleaved 8-bit images of `h x w x c` stored one after
/// another, in parallel, and concatenates the CHW outputs.
pub(crate) fn preprocess_all(
    pixels: &[u8],
    count: usize,
    h: usize,
    w: usize,
    c: usize,
    preprocessing: &Preprocessing,
) -> Result<Vec<f32>> {
    let per = h * w * c;
    if count == 0 {
        return Ok(Vec::new());
    }
    let parts: std::result::Result<Vec<Vec<f32>>, _> =
        pixels.par_chunks_exact(per).map(|img| preprocessing.apply_u8(img, h, w, c)).collect();
    Ok(parts?.concat())
}
