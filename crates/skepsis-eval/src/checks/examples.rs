//! Example maps kept for figures: the maps of the first few images of every step, so that a
//! report can draw the cascade grid of Adebayo et al. (2018, Fig. 2), the side-by-side maps of
//! the data randomization test and the input-invariance pairs of Kindermans et al. (2017)
//! without recomputing anything.
//!
//! Layout inside a check's output directory: `examples/inputs.safetensors` holds `original`
//! (the explained images, `[k, C, H, W]`) and, for input invariance, `compared` (the shifted
//! images); `examples/step-NNN.safetensors` holds one f32 tensor per map set, keyed
//! `"{role}/{method label}"` where `role` is [`ORIGINAL`] (the trained model, the clean input,
//! the explained class) or [`COMPARED`] (the randomized model, the random-label model, the
//! shifted input, the random class). Maps keep the method's own shape (`[k, C, H, W]` or
//! `[k, 1, H, W]`). A step's example file is written before its record file, so a resumed run
//! never has records without examples.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};

use super::error::{CheckError, CheckResult};
use super::maps::Maps;

/// Directory of the example maps inside a check's output directory.
pub const EXAMPLES_DIR: &str = "examples";
/// Role of the maps of the unchanged setting (trained model, clean input, explained class).
pub const ORIGINAL: &str = "original";
/// Role of the maps of the changed setting (randomized model, shifted input, other class).
pub const COMPARED: &str = "compared";
/// File of the explained images.
pub const INPUTS_FILE: &str = "inputs.safetensors";

/// The example-map file of step `index`.
pub fn step_file(index: usize) -> String {
    format!("step-{index:03}.safetensors")
}

/// Writes example maps for one check run (does nothing without an output directory or with
/// `count == 0`).
#[derive(Debug, Clone)]
pub(crate) struct ExampleWriter {
    dir: Option<PathBuf>,
    count: usize,
}

impl ExampleWriter {
    /// Keeps the first `count` images of every map set under `out/examples`.
    pub(crate) fn new(out: Option<&Path>, count: usize) -> CheckResult<Self> {
        let dir = match out {
            Some(out) if count > 0 => {
                let dir = out.join(EXAMPLES_DIR);
                std::fs::create_dir_all(&dir).map_err(|e| CheckError::io(&dir, e))?;
                Some(dir)
            }
            _ => None,
        };
        Ok(ExampleWriter { dir, count })
    }

    /// Writes the first images of each named input batch (`original`, `compared`).
    pub(crate) fn inputs(&self, inputs: &[(&str, &Tensor)]) -> CheckResult<()> {
        let Some(dir) = &self.dir else { return Ok(()) };
        let mut tensors = Vec::with_capacity(inputs.len());
        for (name, x) in inputs {
            let k = self.count.min(x.dims()[0]);
            tensors.push((name.to_string(), x.narrow(0, 0, k)?.to_dtype(DType::F32)?));
        }
        save(&dir.join(INPUTS_FILE), tensors)
    }

    /// Writes the one step of a paired check: per method label, the [`ORIGINAL`] and the
    /// [`COMPARED`] maps.
    pub(crate) fn pairs<L: AsRef<str>>(&self, pairs: &[(L, Maps, Maps)]) -> CheckResult<()> {
        let sets: Vec<_> = pairs
            .iter()
            .flat_map(|(l, a, b)| [(ORIGINAL, l.as_ref(), a), (COMPARED, l.as_ref(), b)])
            .collect();
        self.step(0, &sets)
    }

    /// Writes the first images of each `(role, method label, maps)` of step `index`.
    pub(crate) fn step(&self, index: usize, maps: &[(&str, &str, &Maps)]) -> CheckResult<()> {
        let Some(dir) = &self.dir else { return Ok(()) };
        let mut tensors = Vec::with_capacity(maps.len());
        for (role, label, m) in maps {
            tensors.push((format!("{role}/{label}"), head(m, self.count)?));
        }
        save(&dir.join(step_file(index)), tensors)
    }
}

/// The first `count` maps of `m` as an f32 `[k, C, H, W]` tensor.
fn head(m: &Maps, count: usize) -> CheckResult<Tensor> {
    let k = count.min(m.n());
    let len = m.dims.len();
    let values: Vec<f32> = m.values[..k * len].iter().map(|&v| v as f32).collect();
    let shape = (k, m.dims.num_channels(), m.dims.height(), m.dims.width());
    Ok(Tensor::from_vec(values, shape, &Device::Cpu)?)
}

fn save(path: &Path, tensors: Vec<(String, Tensor)>) -> CheckResult<()> {
    let map: HashMap<String, Tensor> = tensors.into_iter().collect();
    let tmp = path.with_extension("partial");
    candle_core::safetensors::save(&map, &tmp)?;
    std::fs::rename(&tmp, path).map_err(|e| CheckError::io(path, e))
}

/// Reads the example maps of step `index` from a check's output directory: `(key, tensor)`
/// with keys `"{role}/{method label}"`; empty when the check kept no examples.
pub fn read_step_examples(out: &Path, index: usize) -> CheckResult<HashMap<String, Tensor>> {
    read(&out.join(EXAMPLES_DIR).join(step_file(index)))
}

/// Reads the explained images (`original`, and `compared` for input invariance); empty when
/// the check kept no examples.
pub fn read_example_inputs(out: &Path) -> CheckResult<HashMap<String, Tensor>> {
    read(&out.join(EXAMPLES_DIR).join(INPUTS_FILE))
}

fn read(path: &Path) -> CheckResult<HashMap<String, Tensor>> {
    if !path.exists() {
        return Ok(HashMap::new());
    }
    candle_core::safetensors::load(path, &Device::Cpu)
        .map_err(|e| CheckError::BadRecords { path: path.to_path_buf(), message: e.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MapDims;

    #[test]
    fn keeps_the_first_images_in_map_shape_and_reads_them_back() {
        let dir = tempfile::tempdir().unwrap();
        let writer = ExampleWriter::new(Some(dir.path()), 2).unwrap();
        let maps = Maps {
            values: (0..3 * 2 * 2 * 3).map(f64::from).collect(),
            dims: MapDims::channels(2, 2, 3),
            targets: vec![0, 1, 2],
        };
        writer.step(4, &[(ORIGINAL, "ig:steps=8", &maps)]).unwrap();
        let read = read_step_examples(dir.path(), 4).unwrap();
        let t = &read["original/ig:steps=8"];
        assert_eq!(t.dims(), &[2, 2, 2, 3]);
        let values = t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(values, (0..24).map(|v| v as f32).collect::<Vec<_>>());
        assert!(read_step_examples(dir.path(), 5).unwrap().is_empty());
    }

    #[test]
    fn writes_nothing_without_a_directory_or_a_count() {
        let dir = tempfile::tempdir().unwrap();
        let none = ExampleWriter::new(Some(dir.path()), 0).unwrap();
        let maps = Maps { values: vec![1.0; 4], dims: MapDims::plane(2, 2), targets: vec![0] };
        none.step(0, &[(ORIGINAL, "gradient", &maps)]).unwrap();
        assert!(!dir.path().join(EXAMPLES_DIR).exists());
        ExampleWriter::new(None, 3).unwrap().step(0, &[(ORIGINAL, "g", &maps)]).unwrap();
    }
}
