//! Reading inputs and writing maps.

use std::path::Path;

use anyhow::{bail, Context, Result};
use candle_core::{DType, Device, Tensor};
use skepsis_nn::{Model, Preprocessing};
use skepsis_report::{render, Colormap, Rendering};

/// Refuses to replace an existing file unless `force` is set.
pub fn check_writable(path: &Path, force: bool) -> Result<()> {
    if path.exists() && !force {
        bail!("{} already exists (pass --force to overwrite)", path.display());
    }
    Ok(())
}

fn extension(path: &Path) -> String {
    path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase()
}

/// Loads the inputs for `model`: one PNG/JPEG image (preprocessed as the model records, or
/// scaled to [0, 1]), the `images` tensor of a safetensors file, or the first `count` test
/// images of a data set directory.
pub fn read_inputs(path: &Path, model: &Model, count: usize) -> Result<Tensor> {
    let shape = model.input_shape();
    let x = if path.is_dir() {
        let stored = skepsis_data::read_dataset(path)?;
        let test = &stored.splits.test;
        if test.is_empty() || count == 0 {
            bail!("{}: no test images to explain", path.display());
        }
        test.images().narrow(0, 0, count.min(test.len()))?
    } else {
        match extension(path).as_str() {
        "png" | "jpg" | "jpeg" => read_image(path, model)?,
        "safetensors" => {
            let tensors = candle_core::safetensors::load(path, &Device::Cpu)
                .with_context(|| format!("{}: not a readable safetensors file", path.display()))?;
            let images = tensors
                .get("images")
                .with_context(|| format!("{}: no tensor named 'images'", path.display()))?;
            images.to_dtype(DType::F32)?
        }
        other => bail!(
            "{}: unsupported input type '.{other}' (use .png, .jpg, .safetensors or a data set directory)",
            path.display()
        ),
        }
    };
    if x.rank() != shape.len() + 1 || x.dims()[1..] != *shape {
        bail!(
            "{}: input of shape {:?} does not fit model '{}', which takes [N, {}]",
            path.display(),
            x.dims(),
            model.name(),
            shape.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", ")
        );
    }
    Ok(x.to_dtype(model.dtype())?)
}

fn read_image(path: &Path, model: &Model) -> Result<Tensor> {
    let shape = model.input_shape();
    if shape.len() != 3 || !(shape[0] == 1 || shape[0] == 3) {
        bail!("model '{}' does not take images (input shape {:?})", model.name(), shape);
    }
    let default = if shape[0] == 1 { Preprocessing::grayscale() } else { Preprocessing::rgb() };
    let pre = model.preprocessing().cloned().unwrap_or(default);
    let (w, h) = image::image_dimensions(path)
        .with_context(|| format!("{}: unreadable image", path.display()))?;
    if pre.resize.is_none() && (h as usize, w as usize) != (shape[1], shape[2]) {
        bail!(
            "{}: image is {w}x{h} but model '{}' takes {}x{} (its preprocessing does not resize)",
            path.display(),
            model.name(),
            shape[2],
            shape[1]
        );
    }
    Ok(skepsis_data::load_image(path, &pre)?)
}

/// Writes `map` [N, C, H, W] as .png (heatmaps side by side), .npy or .safetensors.
pub fn write_map(path: &Path, map: &Tensor, signed: bool, zoom: u32, force: bool) -> Result<()> {
    check_writable(path, force)?;
    let map = map.to_dtype(DType::F32)?.to_device(&Device::Cpu)?;
    match extension(path).as_str() {
        "png" => {
            let (n, c, h, w) =
                map.dims4().context("a PNG heatmap needs a map of shape [N, C, H, W]")?;
            let rendering =
                if signed { Rendering::Signed } else { Rendering::Magnitude(Colormap::Inferno) };
            let zoom = zoom.max(1);
            let gap = zoom;
            let mut canvas = image::RgbImage::from_pixel(
                (n as u32) * (w as u32 * zoom + gap) - gap,
                h as u32 * zoom,
                image::Rgb([255, 255, 255]),
            );
            for i in 0..n {
                let data = map.get(i)?.flatten_all()?.to_vec1::<f32>()?;
                let tile = render(&data, c, h, w, rendering, zoom);
                image::imageops::replace(
                    &mut canvas,
                    &tile,
                    (i as u32 * (w as u32 * zoom + gap)) as i64,
                    0,
                );
            }
            canvas.save(path).with_context(|| format!("writing {}", path.display()))?;
        }
        "npy" => write_npy(path, &map)?,
        "safetensors" => candle_core::safetensors::save(
            &std::collections::HashMap::from([("map".to_string(), map)]),
            path,
        )
        .with_context(|| format!("writing {}", path.display()))?,
        other => bail!(
            "{}: unsupported output type '.{other}' (use .png, .npy or .safetensors)",
            path.display()
        ),
    }
    Ok(())
}

/// NumPy format 1.0: magic, version, little-endian header length, a Python dict literal
/// padded with spaces to a multiple of 64 bytes, then the raw little-endian data.
fn write_npy(path: &Path, t: &Tensor) -> Result<()> {
    let shape = t.dims().iter().map(|d| d.to_string()).collect::<Vec<_>>();
    let shape = if shape.len() == 1 {
        format!("({},)", shape[0])
    } else {
        format!("({})", shape.join(", "))
    };
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}");
    let total = 10 + header.len() + 1;
    header.push_str(&" ".repeat((64 - total % 64) % 64));
    header.push('\n');
    let mut bytes = Vec::with_capacity(10 + header.len() + t.elem_count() * 4);
    bytes.extend_from_slice(b"\x93NUMPY\x01\x00");
    bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    for v in t.flatten_all()?.to_vec1::<f32>()? {
        bytes.extend_from_slice(&v.to_le_bytes());
    }
    std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
}
