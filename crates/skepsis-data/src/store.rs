//! The on-disk format of a data set, written by `skepsis data generate ... --out DIR` and read
//! back by `skepsis train` and every check.
//!
//! ```text
//! DIR/dataset.json       description (below)
//! DIR/data.safetensors   train.images  f32 [N, C, H, W]
//!                        train.labels  i64 [N]
//!                        test.images   f32 [M, C, H, W]
//!                        test.labels   i64 [M]
//!                        train.masks / test.masks  u8 [K, H, W]  (only with mask regions)
//! ```
//!
//! `dataset.json`:
//! ```json
//! {
//!   "format": "skepsis-dataset", "version": 1,
//!   "name": "smerf-3.71", "kind": "smerf", "seed": 0,
//!   "generator": { ...the generator's settings, free-form... },
//!   "class_names": ["0", "1"], "image_shape": [3, 64, 64],
//!   "preprocessing": {"color": "rgb", "scale": 0.003921569},
//!   "bucket_names": ["box1=0,text=A,box2=0", ...],
//!   "splits": {
//!     "train": {"size": 150000, "buckets": [0, 0, ...],
//!               "regions": [[{"kind": "primary", "object": "text", "box": [y0, x0, y1, x1]},
//!                            {"kind": "secondary", "object": "box1", "mask": 0}], ...]},
//!     "test": {...}
//!   }
//! }
//! ```
//! Boxes are half-open `[y0, x0, y1, x1]` (rows `y0..y1`, columns `x0..x1`); a mask region
//! names its index in `<split>.masks`. `buckets`, `regions` and `bucket_names` are omitted for
//! data sets without them. `preprocessing` states how the stored values were derived from 8-bit
//! pixels, so that models trained on them record the same preprocessing.

use std::collections::BTreeMap;
use std::path::Path;

use candle_core::{Device, Tensor};
use safetensors::tensor::{Dtype, TensorView};
use serde::{Deserialize, Serialize};

use crate::dataset::{Dataset, Splits};
use crate::error::{Error, Result};
use crate::preprocess::Preprocessing;
use crate::region::{BoundingBox, Mask, Region, RegionKind, RegionShape};

/// File name of the description.
pub const DESCRIPTION_FILE: &str = "dataset.json";
/// File name of the tensors.
pub const TENSORS_FILE: &str = "data.safetensors";
const FORMAT: &str = "skepsis-dataset";
const VERSION: u32 = 1;
const SPLITS: [&str; 2] = ["train", "test"];

/// What a stored data set is, beyond its tensors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetInfo {
    /// A short name, e.g. `"smerf-3.71"`, `"digits"`.
    pub name: String,
    /// The source: `"digits"`, `"smerf"`, `"blockmnist"`, `"mnist"`, `"cifar10"`, `"folder"`...
    pub kind: String,
    /// The generator's seed, for generated data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// The generator's settings (free-form JSON; `null` for loaded data).
    #[serde(default)]
    pub generator: serde_json::Value,
    /// How the stored values were derived from 8-bit pixels.
    pub preprocessing: Preprocessing,
}

/// A data set read back from disk.
#[derive(Debug, Clone)]
pub struct StoredDataset {
    /// The description.
    pub info: DatasetInfo,
    /// The train and test sets.
    pub splits: Splits,
}

#[derive(Serialize, Deserialize)]
struct DescriptionFile {
    format: String,
    version: u32,
    #[serde(flatten)]
    info: DatasetInfo,
    class_names: Vec<String>,
    image_shape: [usize; 3],
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    bucket_names: Vec<String>,
    splits: BTreeMap<String, SplitFile>,
}

#[derive(Serialize, Deserialize)]
struct SplitFile {
    size: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    buckets: Option<Vec<usize>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    regions: Option<Vec<Vec<RegionFile>>>,
}

#[derive(Serialize, Deserialize)]
struct RegionFile {
    kind: RegionKind,
    object: String,
    #[serde(default, rename = "box", skip_serializing_if = "Option::is_none")]
    bbox: Option<[usize; 4]>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    mask: Option<usize>,
}

/// Writes `splits` with `info` into `dir` (created if needed). Refuses a directory that already
/// holds a data set (either file) unless `force`; with `force` only the two files are replaced.
pub fn write_dataset(dir: &Path, info: &DatasetInfo, splits: &Splits, force: bool) -> Result<()> {
    let (json_path, st_path) = (dir.join(DESCRIPTION_FILE), dir.join(TENSORS_FILE));
    if !force && (json_path.exists() || st_path.exists()) {
        return Err(Error::DatasetExists { path: dir.to_path_buf() });
    }
    let (train, test) = (&splits.train, &splits.test);
    if train.image_shape() != test.image_shape() || train.class_names() != test.class_names() {
        return Err(Error::ShapeMismatch {
            context: "write_dataset: train and test must share image shape and classes".to_string(),
            expected: train.image_shape().to_vec(),
            found: test.image_shape().to_vec(),
        });
    }
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let mut buffers: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = Vec::new();
    let mut split_files = BTreeMap::new();
    for (name, ds) in SPLITS.iter().zip([train, test]) {
        let [c, h, w] = ds.image_shape();
        let values: Vec<f32> = ds.images().flatten_all()?.to_vec1()?;
        let bytes = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        buffers.push((format!("{name}.images"), Dtype::F32, vec![ds.len(), c, h, w], bytes));
        let labels = ds.labels().iter().flat_map(|&l| (l as i64).to_le_bytes()).collect();
        buffers.push((format!("{name}.labels"), Dtype::I64, vec![ds.len()], labels));
        let mut masks: Vec<u8> = Vec::new();
        let regions = ds.regions().map(|all| {
            all.iter()
                .map(|list| {
                    list.iter()
                        .map(|r| match &r.shape {
                            RegionShape::Box(b) => RegionFile {
                                kind: r.kind,
                                object: r.object.clone(),
                                bbox: Some([b.y0, b.x0, b.y1, b.x1]),
                                mask: None,
                            },
                            RegionShape::Mask(m) => {
                                let k = masks.len() / (h * w);
                                masks.extend(m.pixels().iter().map(|&p| u8::from(p)));
                                RegionFile {
                                    kind: r.kind,
                                    object: r.object.clone(),
                                    bbox: None,
                                    mask: Some(k),
                                }
                            }
                        })
                        .collect()
                })
                .collect()
        });
        if !masks.is_empty() {
            let k = masks.len() / (h * w);
            buffers.push((format!("{name}.masks"), Dtype::U8, vec![k, h, w], masks));
        }
        let buckets = ds.bucket_ids().map(<[usize]>::to_vec);
        split_files.insert(name.to_string(), SplitFile { size: ds.len(), buckets, regions });
    }
    let description = DescriptionFile {
        format: FORMAT.to_string(),
        version: VERSION,
        info: info.clone(),
        class_names: train.class_names().to_vec(),
        image_shape: train.image_shape(),
        bucket_names: train.bucket_names().to_vec(),
        splits: split_files,
    };
    let views = buffers
        .iter()
        .map(|(k, dt, shape, bytes)| {
            TensorView::new(*dt, shape.clone(), bytes)
                .map(|v| (k.clone(), v))
                .map_err(|e| Error::corrupt(&st_path, e.to_string()))
        })
        .collect::<Result<Vec<_>>>()?;
    // Write under temporary names, then rename, so a crash never leaves half a data set.
    let tmp_st = dir.join(format!(".{TENSORS_FILE}.tmp"));
    safetensors::serialize_to_file(views, None, &tmp_st).map_err(|e| Error::Io {
        path: tmp_st.clone(),
        source: std::io::Error::other(e.to_string()),
    })?;
    let json = serde_json::to_vec_pretty(&description)
        .map_err(|e| Error::corrupt(&json_path, e.to_string()))?;
    let tmp_json = dir.join(format!(".{DESCRIPTION_FILE}.tmp"));
    std::fs::write(&tmp_json, json).map_err(|e| Error::io(&tmp_json, e))?;
    std::fs::rename(&tmp_st, &st_path).map_err(|e| Error::io(&st_path, e))?;
    std::fs::rename(&tmp_json, &json_path).map_err(|e| Error::io(&json_path, e))?;
    Ok(())
}

/// Reads a data set written by [`write_dataset`], checking every size against the description.
pub fn read_dataset(dir: &Path) -> Result<StoredDataset> {
    let (json_path, st_path) = (dir.join(DESCRIPTION_FILE), dir.join(TENSORS_FILE));
    let text = std::fs::read(&json_path).map_err(|e| Error::io(&json_path, e))?;
    let desc: DescriptionFile = serde_json::from_slice(&text)
        .map_err(|e| Error::corrupt(&json_path, format!("not a valid description: {e}")))?;
    if desc.format != FORMAT || desc.version != VERSION {
        return Err(Error::corrupt(
            &json_path,
            format!(
                "format '{}' version {} (expected '{FORMAT}' version {VERSION})",
                desc.format, desc.version
            ),
        ));
    }
    let bytes = std::fs::read(&st_path).map_err(|e| Error::io(&st_path, e))?;
    let st = safetensors::SafeTensors::deserialize(&bytes)
        .map_err(|e| Error::corrupt(&st_path, format!("not a valid safetensors file: {e}")))?;
    let [c, h, w] = desc.image_shape;
    let mut parts = Vec::new();
    for name in SPLITS {
        let sf = desc
            .splits
            .get(name)
            .ok_or_else(|| Error::corrupt(&json_path, format!("no '{name}' split")))?;
        let n = sf.size;
        let images =
            tensor_bytes(&st, &st_path, &format!("{name}.images"), Dtype::F32, &[n, c, h, w])?;
        let images: Vec<f32> =
            images.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
        let labels = tensor_bytes(&st, &st_path, &format!("{name}.labels"), Dtype::I64, &[n])?;
        let labels = labels
            .chunks_exact(8)
            .map(|b| {
                let v = i64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]);
                usize::try_from(v)
                    .map_err(|_| Error::corrupt(&st_path, format!("{name}.labels holds {v}")))
            })
            .collect::<Result<Vec<usize>>>()?;
        let tensor = Tensor::from_vec(images, (n, c, h, w), &Device::Cpu)?;
        let mut ds = Dataset::new(tensor, labels, desc.class_names.clone())
            .map_err(|e| Error::corrupt(&st_path, e.to_string()))?;
        if let Some(regions) = &sf.regions {
            let masks = st.tensor(&format!("{name}.masks")).ok();
            let mask_data = match &masks {
                Some(m)
                    if m.dtype() == Dtype::U8
                        && m.shape().len() == 3
                        && m.shape()[1..] == [h, w] =>
                {
                    Some((m.data(), m.shape()[0]))
                }
                Some(_) => {
                    return Err(Error::corrupt(
                        &st_path,
                        format!("{name}.masks is not u8 [K, {h}, {w}]"),
                    ))
                }
                None => None,
            };
            let mut out = Vec::with_capacity(regions.len());
            for list in regions {
                let mut converted = Vec::with_capacity(list.len());
                for r in list {
                    let shape = match (r.bbox, r.mask) {
                        (Some([y0, x0, y1, x1]), None) => {
                            RegionShape::Box(BoundingBox { y0, x0, y1, x1 })
                        }
                        (None, Some(k)) => {
                            let (data, count) = mask_data.ok_or_else(|| {
                                Error::corrupt(&st_path, format!("{name}.masks is missing"))
                            })?;
                            if k >= count {
                                return Err(Error::corrupt(
                                    &json_path,
                                    format!("mask {k} of {count}"),
                                ));
                            }
                            let px =
                                data[k * h * w..(k + 1) * h * w].iter().map(|&b| b != 0).collect();
                            RegionShape::Mask(
                                Mask::new(h, w, px)
                                    .ok_or_else(|| Error::corrupt(&st_path, "mask size"))?,
                            )
                        }
                        _ => {
                            return Err(Error::corrupt(
                                &json_path,
                                "a region needs exactly one of 'box' and 'mask'",
                            ))
                        }
                    };
                    converted.push(Region { kind: r.kind, object: r.object.clone(), shape });
                }
                out.push(converted);
            }
            ds = ds.with_regions(out).map_err(|e| Error::corrupt(&json_path, e.to_string()))?;
        }
        if let Some(ids) = &sf.buckets {
            ds = ds
                .with_buckets(desc.bucket_names.clone(), ids.clone())
                .map_err(|e| Error::corrupt(&json_path, e.to_string()))?;
        }
        parts.push(ds);
    }
    let test = parts.pop().ok_or_else(|| Error::corrupt(&json_path, "no test split"))?;
    let train = parts.pop().ok_or_else(|| Error::corrupt(&json_path, "no train split"))?;
    Ok(StoredDataset { info: desc.info, splits: Splits { train, test } })
}

/// The bytes of tensor `key`, checked for dtype and shape.
fn tensor_bytes<'a>(
    st: &'a safetensors::SafeTensors<'a>,
    path: &Path,
    key: &str,
    dtype: Dtype,
    shape: &[usize],
) -> Result<&'a [u8]> {
    let t =
        st.tensor(key).map_err(|_| Error::corrupt(path, format!("tensor '{key}' is missing")))?;
    if t.dtype() != dtype || t.shape() != shape {
        return Err(Error::corrupt(
            path,
            format!(
                "tensor '{key}' is {:?} {:?}, expected {dtype:?} {shape:?}",
                t.dtype(),
                t.shape()
            ),
        ));
    }
    Ok(t.data())
}
