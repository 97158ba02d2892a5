//! Images from files: a folder with one sub-folder per class (torchvision's `ImageFolder`
//! layout), and single images. PNG and JPEG are decoded by the `image` crate.

use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use rayon::prelude::*;

use crate::dataset::Dataset;
use crate::error::{Error, Result};
use crate::preprocess::Preprocessing;

/// Whether `path` has a PNG or JPEG extension (case-insensitive).
pub(crate) fn is_image_file(path: &Path) -> bool {
    path.is_file()
        && path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "png" | "jpg" | "jpeg"))
}

/// The entries of a directory, sorted by name.
pub(crate) fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>> {
    if !dir.exists() {
        return Err(Error::MissingFile { path: dir.to_path_buf() });
    }
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        out.push(entry.map_err(|e| Error::io(dir, e))?.path());
    }
    out.sort();
    Ok(out)
}

/// Decodes an image file.
pub(crate) fn decode(path: &Path) -> Result<image::DynamicImage> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    image::load_from_memory(&bytes)
        .map_err(|e| Error::UnreadableImage { path: path.to_path_buf(), message: e.to_string() })
}

/// Loads one image file as a `[1, C, H, W]` tensor.
pub fn load_image(path: &Path, preprocessing: &Preprocessing) -> Result<Tensor> {
    preprocessing.validate()?;
    let img = decode(path)?;
    let [c, h, w] = preprocessing.output_shape(img.height() as usize, img.width() as usize);
    let data = preprocessing.apply_image(&img)?;
    Ok(Tensor::from_vec(data, (1, c, h, w), &Device::Cpu)?)
}

/// Loads an image folder: every sub-directory of `root` is a class (class names = directory
/// names, sorted), and every PNG/JPEG file in it (sorted by name, other files ignored) an image
/// of that class. All images must have the same size after preprocessing (set
/// `preprocessing.resize` for folders of mixed sizes).
pub fn load_image_folder(root: &Path, preprocessing: &Preprocessing) -> Result<Dataset> {
    preprocessing.validate()?;
    let class_dirs: Vec<PathBuf> =
        sorted_entries(root)?.into_iter().filter(|p| p.is_dir()).collect();
    if class_dirs.is_empty() {
        return Err(Error::corrupt(root, "no class sub-directories"));
    }
    let mut files = Vec::new();
    let mut class_names = Vec::new();
    for (k, dir) in class_dirs.iter().enumerate() {
        class_names
            .push(dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default());
        files.extend(sorted_entries(dir)?.into_iter().filter(|p| is_image_file(p)).map(|p| (p, k)));
    }
    if files.is_empty() {
        return Err(Error::corrupt(root, "no PNG or JPEG images in the class sub-directories"));
    }
    let decoded: Vec<(Vec<f32>, [usize; 3])> = files
        .par_iter()
        .map(|(path, _)| {
            let img = decode(path)?;
            let shape = preprocessing.output_shape(img.height() as usize, img.width() as usize);
            Ok((preprocessing.apply_image(&img)?, shape))
        })
        .collect::<Result<_>>()?;
    let shape = decoded[0].1;
    let mut data = Vec::with_capacity(decoded.len() * shape.iter().product::<usize>());
    for ((values, s), (path, _)) in decoded.into_iter().zip(&files) {
        if s != shape {
            return Err(Error::ShapeMismatch {
                context: format!(
                    "{}: image size differs from {} (set a resize)",
                    path.display(),
                    files[0].0.display()
                ),
                expected: shape.to_vec(),
                found: s.to_vec(),
            });
        }
        data.extend_from_slice(&values);
    }
    let n = files.len();
    let tensor = Tensor::from_vec(data, (n, shape[0], shape[1], shape[2]), &Device::Cpu)?;
    Dataset::new(tensor, files.iter().map(|(_, k)| *k).collect(), class_names)
}
