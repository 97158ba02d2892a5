//! Fuzz target: arbitrary bytes through the ONNX importer. Import must return `Ok` or a
//! typed error, never panic or allocate without bound; a model that imports must also run
//! a forward pass on a zero input without panicking.
#![no_main]

use candle_core::{DType, Device, Tensor};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(model) = skepsis_nn::onnx::import_bytes(data, "fuzz", None, DType::F32, &Device::Cpu)
    else {
        return;
    };
    let mut dims = vec![1];
    dims.extend_from_slice(model.input_shape());
    if dims.iter().product::<usize>() <= 1 << 16 {
        if let Ok(x) = Tensor::zeros(dims, DType::F32, &Device::Cpu) {
            let _ = model.forward(&x);
        }
    }
});
