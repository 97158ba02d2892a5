//! The [`Dataset`] value: images, labels, class names, and optional per-image ground truth.

use candle_core::{DType, Device, Tensor};

use crate::error::{Error, Result};
use crate::region::{Region, RegionShape};
use crate::rng;

/// A labelled image data set held in memory.
///
/// `images` is an `f32` tensor `[N, C, H, W]`; `labels[i] < class_names.len()`. Generated data
/// sets also carry ground-truth [`Region`]s per image and a bucket id per image (the generator's
/// group, e.g. a SMERF feature combination; `bucket_names[id]` describes it).
#[derive(Debug, Clone)]
pub struct Dataset {
    images: Tensor,
    labels: Vec<usize>,
    class_names: Vec<String>,
    regions: Option<Vec<Vec<Region>>>,
    buckets: Option<(Vec<String>, Vec<usize>)>,
}

/// Two parts of a data set, e.g. the generators' train and test sets or a train/validation
/// split.
#[derive(Debug, Clone)]
pub struct Splits {
    /// The part used for training.
    pub train: Dataset,
    /// The held-out part (test or validation).
    pub test: Dataset,
}

/// One batch of a [`Dataset`], see [`Dataset::batches`].
#[derive(Debug, Clone)]
pub struct Batch {
    /// Index of the batch's first image in the data set.
    pub start: usize,
    /// Images `[B, C, H, W]` (a view into the data set's tensor).
    pub images: Tensor,
    /// Labels of the images.
    pub labels: Vec<usize>,
}

impl Dataset {
    /// A data set from an `[N, C, H, W]` tensor (converted to `f32`), `N` labels and the class
    /// names; fails when the shapes disagree or a label is not a class index.
    pub fn new(images: Tensor, labels: Vec<usize>, class_names: Vec<String>) -> Result<Self> {
        let dims = images.dims().to_vec();
        if dims.len() != 4 || dims[0] != labels.len() {
            return Err(Error::ShapeMismatch {
                context: "Dataset::new: images [N, C, H, W] for N labels".to_string(),
                expected: vec![labels.len(), 0, 0, 0],
                found: dims,
            });
        }
        if class_names.is_empty() {
            return Err(Error::parameter("Dataset::new", "class_names", "at least one class"));
        }
        if let Some((i, &l)) = labels.iter().enumerate().find(|(_, &l)| l >= class_names.len()) {
            return Err(Error::parameter(
                "Dataset::new",
                "labels",
                format!("label {l} of image {i} is not below the {} classes", class_names.len()),
            ));
        }
        let images = images.to_dtype(DType::F32)?;
        Ok(Dataset { images, labels, class_names, regions: None, buckets: None })
    }

    /// Attaches ground-truth regions, one list per image (boxes inside the image, masks of the
    /// image's size).
    pub fn with_regions(mut self, regions: Vec<Vec<Region>>) -> Result<Self> {
        if regions.len() != self.len() {
            return Err(Error::ShapeMismatch {
                context: "Dataset::with_regions: one region list per image".to_string(),
                expected: vec![self.len()],
                found: vec![regions.len()],
            });
        }
        let [_, h, w] = self.image_shape();
        for (i, list) in regions.iter().enumerate() {
            for r in list {
                let ok = match &r.shape {
                    RegionShape::Box(b) => b.y0 < b.y1 && b.x0 < b.x1 && b.y1 <= h && b.x1 <= w,
                    RegionShape::Mask(m) => m.height() == h && m.width() == w,
                };
                if !ok {
                    return Err(Error::parameter(
                        "Dataset::with_regions",
                        "regions",
                        format!("region '{}' of image {i} does not fit a {h}x{w} image", r.object),
                    ));
                }
            }
        }
        self.regions = Some(regions);
        Ok(self)
    }

    /// Attaches a bucket id per image and the buckets' names.
    pub fn with_buckets(mut self, names: Vec<String>, ids: Vec<usize>) -> Result<Self> {
        if ids.len() != self.len() {
            return Err(Error::ShapeMismatch {
                context: "Dataset::with_buckets: one bucket id per image".to_string(),
                expected: vec![self.len()],
                found: vec![ids.len()],
            });
        }
        if let Some(&b) = ids.iter().find(|&&b| b >= names.len()) {
            return Err(Error::parameter(
                "Dataset::with_buckets",
                "ids",
                format!("bucket {b} is not below the {} bucket names", names.len()),
            ));
        }
        self.buckets = Some((names, ids));
        Ok(self)
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether the data set holds no image.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The images, `f32` `[N, C, H, W]`.
    pub fn images(&self) -> &Tensor {
        &self.images
    }

    /// The labels.
    pub fn labels(&self) -> &[usize] {
        &self.labels
    }

    /// The labels as a `u32` tensor `[N]` on `device` (the index type candle's losses accept).
    pub fn labels_tensor(&self, device: &Device) -> Result<Tensor> {
        let l: Vec<u32> = self.labels.iter().map(|&l| l as u32).collect();
        Ok(Tensor::from_vec(l, self.len(), device)?)
    }

    /// The class names; label `k` means `class_names()[k]`.
    pub fn class_names(&self) -> &[String] {
        &self.class_names
    }

    /// Number of classes.
    pub fn num_classes(&self) -> usize {
        self.class_names.len()
    }

    /// `[C, H, W]` of every image.
    pub fn image_shape(&self) -> [usize; 3] {
        let d = self.images.dims();
        [d[1], d[2], d[3]]
    }

    /// Ground-truth regions per image, if the data set has them.
    pub fn regions(&self) -> Option<&[Vec<Region>]> {
        self.regions.as_deref()
    }

    /// The bucket id of every image, if the data set has buckets.
    pub fn bucket_ids(&self) -> Option<&[usize]> {
        self.buckets.as_ref().map(|(_, ids)| ids.as_slice())
    }

    /// The bucket names (empty without buckets).
    pub fn bucket_names(&self) -> &[String] {
        self.buckets.as_ref().map(|(n, _)| n.as_slice()).unwrap_or(&[])
    }

    /// The same data set on another device.
    pub fn to_device(&self, device: &Device) -> Result<Self> {
        Ok(Dataset { images: self.images.to_device(device)?, ..self.clone() })
    }

    /// The images at `indices`, in that order (repetitions allowed), with their labels, regions
    /// and buckets.
    pub fn subset(&self, indices: &[usize]) -> Result<Self> {
        if let Some(&i) = indices.iter().find(|&&i| i >= self.len()) {
            return Err(Error::parameter(
                "Dataset::subset",
                "indices",
                format!("index {i} is out of range for {} images", self.len()),
            ));
        }
        let idx: Vec<u32> = indices.iter().map(|&i| i as u32).collect();
        let idx = Tensor::from_vec(idx, indices.len(), self.images.device())?;
        let images = self.images.index_select(&idx, 0)?;
        Ok(Dataset {
            images,
            labels: indices.iter().map(|&i| self.labels[i]).collect(),
            class_names: self.class_names.clone(),
            regions: self.regions.as_ref().map(|r| indices.iter().map(|&i| r[i].clone()).collect()),
            buckets: self
                .buckets
                .as_ref()
                .map(|(n, ids)| (n.clone(), indices.iter().map(|&i| ids[i]).collect())),
        })
    }

    /// Consecutive batches of at most `batch_size` images, in order.
    pub fn batches(&self, batch_size: usize) -> Result<Batches<'_>> {
        if batch_size == 0 {
            return Err(Error::parameter("Dataset::batches", "batch_size", "must be positive"));
        }
        Ok(Batches { dataset: self, batch_size, next: 0 })
    }

    /// The same images with the label vector shuffled globally (Fisher-Yates, seeded): the
    /// "data randomization" test of Adebayo et al. (NeurIPS 2018) retrains on such labels.
    /// Regions and buckets stay attached to their images (they describe pixels, not labels).
    pub fn permute_labels(&self, seed: u64) -> Self {
        let mut labels = self.labels.clone();
        let mut r = rng::stream(seed, &[0x7065_726d]); // "perm"
        rng::shuffle(&mut r, &mut labels);
        Dataset { labels, ..self.clone() }
    }

    /// A seeded random split: `validation_fraction` of the images (rounded to the nearest
    /// count, at least one of each part) go to `test`, the rest to `train`; both keep the
    /// original order of their images.
    pub fn split(&self, validation_fraction: f64, seed: u64) -> Result<Splits> {
        if !(validation_fraction > 0.0 && validation_fraction < 1.0) {
            return Err(Error::parameter(
                "Dataset::split",
                "validation_fraction",
                format!("must lie strictly between 0 and 1, got {validation_fraction}"),
            ));
        }
        let n = self.len();
        let n_val = ((n as f64) * validation_fraction).round() as usize;
        if n_val == 0 || n_val >= n {
            return Err(Error::parameter(
                "Dataset::split",
                "validation_fraction",
                format!("{validation_fraction} of {n} images leaves one part empty"),
            ));
        }
        let mut order: Vec<usize> = (0..n).collect();
        let mut r = rng::stream(seed, &[0x7370_6c69]); // "spli"
        rng::shuffle(&mut r, &mut order);
        let mut val: Vec<usize> = order[..n_val].to_vec();
        let mut train: Vec<usize> = order[n_val..].to_vec();
        val.sort_unstable();
        train.sort_unstable();
        Ok(Splits { train: self.subset(&train)?, test: self.subset(&val)? })
    }

    /// The data sets one after another; they must agree in image shape and class names, and
    /// either all or none carry regions (buckets likewise, with equal bucket names).
    pub fn concat(parts: &[&Dataset]) -> Result<Self> {
        let first = parts
            .first()
            .ok_or_else(|| Error::parameter("Dataset::concat", "parts", "needs a data set"))?;
        for p in parts {
            if p.image_shape() != first.image_shape() || p.class_names != first.class_names {
                return Err(Error::ShapeMismatch {
                    context: "Dataset::concat: image shapes and classes must agree".to_string(),
                    expected: first.image_shape().to_vec(),
                    found: p.image_shape().to_vec(),
                });
            }
        }
        let tensors: Vec<&Tensor> = parts.iter().map(|p| &p.images).collect();
        let images = Tensor::cat(&tensors, 0)?;
        let labels = parts.iter().flat_map(|p| p.labels.iter().copied()).collect();
        let mut out = Dataset::new(images, labels, first.class_names.clone())?;
        if parts.iter().all(|p| p.regions.is_some()) {
            out.regions =
                Some(parts.iter().flat_map(|p| p.regions.clone().unwrap_or_default()).collect());
        }
        if let Some((names, _)) = &first.buckets {
            if parts.iter().all(|p| p.buckets.as_ref().is_some_and(|(n, _)| n == names)) {
                let ids = parts
                    .iter()
                    .flat_map(|p| p.bucket_ids().unwrap_or(&[]).iter().copied())
                    .collect();
                out.buckets = Some((names.clone(), ids));
            }
        }
        Ok(out)
    }
}

/// Iterator over the batches of a data set, see [`Dataset::batches`].
#[derive(Debug)]
pub struct Batches<'a> {
    dataset: &'a Dataset,
    batch_size: usize,
    next: usize,
}

impl Iterator for Batches<'_> {
    type Item = Result<Batch>;

    fn next(&mut self) -> Option<Self::Item> {
        let n = self.dataset.len();
        if self.next >= n {
            return None;
        }
        let start = self.next;
        let len = self.batch_size.min(n - start);
        self.next += len;
        Some(
            self.dataset
                .images
                .narrow(0, start, len)
                .map(|images| Batch {
                    start,
                    images,
                    labels: self.dataset.labels[start..start + len].to_vec(),
                })
                .map_err(Error::from),
        )
    }
}
