//! Geometry of convolutions and pooling windows.

use serde::{Deserialize, Serialize};

/// Zero padding added on each side of the two spatial axes (asymmetric padding is allowed,
/// as ONNX exports use it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Padding2d {
    pub top: usize,
    pub bottom: usize,
    pub left: usize,
    pub right: usize,
}

impl Padding2d {
    /// The same padding on both sides of each axis, as PyTorch's `padding=(ph, pw)`.
    pub fn symmetric(ph: usize, pw: usize) -> Self {
        Padding2d { top: ph, bottom: ph, left: pw, right: pw }
    }

    /// `Some((ph, pw))` when the padding is symmetric.
    pub fn as_symmetric(&self) -> Option<(usize, usize)> {
        (self.top == self.bottom && self.left == self.right).then_some((self.top, self.left))
    }
}

/// Output size of a sliding window along one axis (floor mode, as PyTorch).
///
/// Returns `None` when the window does not fit even once.
pub fn window_output_len(
    input: usize,
    kernel: usize,
    stride: usize,
    dilation: usize,
    pad_before: usize,
    pad_after: usize,
) -> Option<usize> {
    // Check `kernel` before computing `kernel - 1`, which would underflow for an empty kernel.
    if stride == 0 || kernel == 0 {
        return None;
    }
    let span = dilation * (kernel - 1) + 1;
    let padded = input + pad_before + pad_after;
    if padded < span {
        return None;
    }
    Some((padded - span) / stride + 1)
}

/// Stride, padding, dilation and groups of a 2-D convolution over NCHW input with an OIHW
/// weight (`[out_channels, in_channels / groups, kh, kw]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conv2dSpec {
    pub stride: [usize; 2],
    pub padding: Padding2d,
    pub dilation: [usize; 2],
    pub groups: usize,
}

impl Default for Conv2dSpec {
    fn default() -> Self {
        Conv2dSpec { stride: [1, 1], padding: Padding2d::default(), dilation: [1, 1], groups: 1 }
    }
}

impl Conv2dSpec {
    /// Spatial output size for an input of `[h, w]` and a kernel of `[kh, kw]`.
    pub fn output_hw(&self, input_hw: [usize; 2], kernel_hw: [usize; 2]) -> Option<[usize; 2]> {
        let p = self.padding;
        let oh = window_output_len(
            input_hw[0],
            kernel_hw[0],
            self.stride[0],
            self.dilation[0],
            p.top,
            p.bottom,
        )?;
        let ow = window_output_len(
            input_hw[1],
            kernel_hw[1],
            self.stride[1],
            self.dilation[1],
            p.left,
            p.right,
        )?;
        Some([oh, ow])
    }
}

/// Window, stride and padding of a 2-D pooling layer (floor mode).
///
/// Max pooling pads with negative infinity (padding never wins); average pooling pads with
/// zeros and divides by the full window size when `count_include_pad` is set (PyTorch's
/// default), otherwise by the number of in-bounds elements.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pool2dSpec {
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    pub padding: Padding2d,
    pub count_include_pad: bool,
}

impl Pool2dSpec {
    /// A pool without padding whose stride equals its kernel (the common `MaxPool2d(2)`).
    pub fn square(kernel: usize) -> Self {
        Pool2dSpec {
            kernel: [kernel, kernel],
            stride: [kernel, kernel],
            padding: Padding2d::default(),
            count_include_pad: true,
        }
    }

    /// Spatial output size for an input of `[h, w]`.
    pub fn output_hw(&self, input_hw: [usize; 2]) -> Option<[usize; 2]> {
        let p = self.padding;
        let oh =
            window_output_len(input_hw[0], self.kernel[0], self.stride[0], 1, p.top, p.bottom)?;
        let ow =
            window_output_len(input_hw[1], self.kernel[1], self.stride[1], 1, p.left, p.right)?;
        Some([oh, ow])
    }
}
