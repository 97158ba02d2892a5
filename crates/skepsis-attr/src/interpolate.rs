//! Bilinear resizing of feature maps, as `torch.nn.functional.interpolate(x, size,
//! mode="bilinear", align_corners=False)`.
//!
//! Output row `i` of `H` reads the source coordinate `u = max((i + 1/2) h / H - 1/2, 0)`
//! of the `h` input rows: rows `i0 = min(floor(u), h - 1)` and `i1 = min(i0 + 1, h - 1)`
//! with weights `1 - (u - i0)` and `u - i0`; columns likewise. The two passes are
//! products with these sparse interpolation matrices, so the resize runs on any device
//! and in the input's dtype.

use candle_core::Tensor;

use crate::{Error, Result};

/// The `[out, inp]` row-interpolation matrix (row-major) of the rule above.
pub fn bilinear_weights(inp: usize, out: usize) -> Vec<f64> {
    let mut m = vec![0.0; out * inp];
    let scale = inp as f64 / out as f64;
    for i in 0..out {
        let u = ((i as f64 + 0.5) * scale - 0.5).max(0.0);
        let i0 = (u.floor() as usize).min(inp - 1);
        let i1 = (i0 + 1).min(inp - 1);
        let l = u - i0 as f64;
        m[i * inp + i0] += 1.0 - l;
        m[i * inp + i1] += l;
    }
    m
}

/// Resizes `x` `[N, C, h, w]` to `[N, C, H, W]` bilinearly (align_corners = false).
pub fn bilinear(x: &Tensor, size: [usize; 2]) -> Result<Tensor> {
    let [out_h, out_w] = size;
    let (h, w) = match *x.dims() {
        [_, _, h, w] if h > 0 && w > 0 => (h, w),
        _ => {
            return Err(Error::InvalidInput(format!(
                "bilinear resize needs [N, C, h, w], got {:?}",
                x.dims()
            )))
        }
    };
    if out_h == 0 || out_w == 0 {
        return Err(Error::InvalidInput(format!("bilinear resize to an empty size {size:?}")));
    }
    let matrix = |inp: usize, out: usize| -> Result<Tensor> {
        // Transposed: [inp, out], so that `x @ m` interpolates the last axis.
        let t = Tensor::from_vec(bilinear_weights(inp, out), (out, inp), x.device())?;
        Ok(t.t()?.contiguous()?.to_dtype(x.dtype())?)
    };
    let cols = x.contiguous()?.broadcast_matmul(&matrix(w, out_w)?)?; // [N, C, h, W]
    let rows = cols.transpose(2, 3)?.contiguous()?.broadcast_matmul(&matrix(h, out_h)?)?; // [N, C, W, H]
    Ok(rows.transpose(2, 3)?.contiguous()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};

    #[test]
    fn upsampling_by_two_matches_torch() {
        // torch: interpolate([[0, 1, 2]], size=6, bilinear, align_corners=False)
        //   = [0, 0.25, 0.75, 1.25, 1.75, 2]  (u = max(i/2 - 1/4, 0)).
        let x = Tensor::from_vec(vec![0f64, 1.0, 2.0], (1, 1, 1, 3), &Device::Cpu).unwrap();
        let y = bilinear(&x, [1, 6]).unwrap().flatten_all().unwrap().to_vec1::<f64>().unwrap();
        assert_eq!(y, vec![0.0, 0.25, 0.75, 1.25, 1.75, 2.0]);
        // Rows and columns together: a constant map stays constant.
        let c = Tensor::ones((2, 1, 3, 5), DType::F32, &Device::Cpu).unwrap();
        let y = bilinear(&c, [7, 4]).unwrap();
        assert_eq!(y.dims(), &[2, 1, 7, 4]);
        let v = y.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert!(v.iter().all(|v| (v - 1.0).abs() < 1e-6));
    }

    #[test]
    fn weights_rows_sum_to_one() {
        for (i, o) in [(14, 28), (7, 28), (5, 3), (1, 4)] {
            let m = bilinear_weights(i, o);
            for r in m.chunks(i) {
                assert!((r.iter().sum::<f64>() - 1.0).abs() < 1e-12);
            }
        }
    }
}
