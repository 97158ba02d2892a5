//! Reading inputs and writing maps.

use std::path::Path;

use anyhow::{bail, Context, Result};
use candle_core::{DType, Device, Tensor};
use skepsis_nn::{ColorMode, Model, Preprocessing};
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
/// scaled to [0, 1]), or the `images` tensor of a safetensors file.
pub fn read_inputs(path: &Path, model: &Model) -> Result<Tensor> {
    let shape = model.input_shape();
    let x = match extension(path).as_str() {
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
            "{}: unsupported input type '.{other}' (use .png, .jpg or .safetensors)",
            path.display()
        ),
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
    let default = Preprocessing::unit_range(if shape[0] == 1 {
        ColorMode::Grayscale
    } else {
        ColorMode::Rgb
    });
    let pre = model.preprocessing().cloned().unwrap_or(default);
    let mut img =
        image::open(path).with_context(|| format!("{}: unreadable image", path.display()))?;
    let (h, w) = (shape[1], shape[2]);
    if (img.height() as usize, img.width() as usize) != (h, w) {
        if pre.resize.is_none() {
            bail!(
                "{}: image is {}x{} but model '{}' takes {h}x{w} (its preprocessing does not resize)",
                path.display(),
                img.width(),
                img.height(),
                model.name()
            );
        }
        img = img.resize_exact(w as u32, h as u32, image::imageops::FilterType::Triangle);
    }
    let mut data: Vec<f32> = match shape[0] {
        1 => img.to_luma8().into_raw().into_iter().map(f32::from).collect(),
        _ => {
            let rgb = img.to_rgb8();
            let mut chw = vec![0f32; 3 * h * w];
            for (i, p) in rgb.pixels().enumerate() {
                for c in 0..3 {
                    chw[c * h * w + i] = p.0[c] as f32;
                }
            }
            chw
        }
    };
    pre.normalize_chw(&mut data, shape[0]);
    Ok(Tensor::from_vec(data, (1, shape[0], h, w), &Device::Cpu)?)
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
