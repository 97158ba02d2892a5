//! Convolution and pooling kernels at the shapes of the SC MNIST CNN (batch 64, f32):
//! conv 1->32 5x5 pad 2 on 28x28, conv 32->64 5x5 pad 2 on 14x14, max-pool 2 after each.
//!
//! Run with `RAYON_NUM_THREADS=2 cargo bench -p skepsis-nn --bench conv`.

use std::hint::black_box;
use std::time::Duration;

use candle_core::{DType, Device, Tensor};
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use criterion::{criterion_group, criterion_main, Criterion};
use skepsis_nn::ops::conv::{conv2d, conv2d_input_vjp, conv2d_weight_vjp};
use skepsis_nn::ops::pool::{max_pool2d, max_pool2d_vjp};
use skepsis_nn::ops::{Conv2dSpec, Padding2d, Pool2dSpec};

const BATCH: usize = 64;

fn randn(dims: &[usize]) -> Tensor {
    Tensor::randn(0f32, 1.0, dims, &Device::Cpu).and_then(|t| t.to_dtype(DType::F32)).unwrap()
}

fn bench_conv_layer(c: &mut Criterion, name: &str, input: [usize; 4], out_channels: usize) {
    let spec = Conv2dSpec { padding: Padding2d::symmetric(2, 2), ..Default::default() };
    let x = randn(&input);
    let w_dims = [out_channels, input[1], 5, 5];
    let w = randn(&w_dims);
    let b = randn(&[out_channels]);
    let y = conv2d(&x, &w, Some(&b), &spec).unwrap();
    let g = randn(y.dims());
    c.bench_function(&format!("{name}/forward"), |bench| {
        bench.iter(|| conv2d(black_box(&x), &w, Some(&b), &spec).unwrap())
    });
    c.bench_function(&format!("{name}/input_vjp"), |bench| {
        bench.iter(|| conv2d_input_vjp(black_box(&g), &w, &input, &spec).unwrap())
    });
    c.bench_function(&format!("{name}/weight_vjp"), |bench| {
        bench.iter(|| conv2d_weight_vjp(black_box(&x), &g, &w_dims, &spec).unwrap())
    });
}

fn bench_pool(c: &mut Criterion, name: &str, input: [usize; 4]) {
    let spec = Pool2dSpec::square(2);
    let x = randn(&input);
    let y = max_pool2d(&x, &spec).unwrap();
    let g = randn(y.dims());
    c.bench_function(&format!("{name}/forward"), |bench| {
        bench.iter(|| max_pool2d(black_box(&x), &spec).unwrap())
    });
    c.bench_function(&format!("{name}/vjp"), |bench| {
        bench.iter(|| max_pool2d_vjp(black_box(&x), &g, &spec).unwrap())
    });
}

fn kernels(c: &mut Criterion) {
    bench_conv_layer(c, "conv1_1x28x28_to_32_5x5_b64", [BATCH, 1, 28, 28], 32);
    bench_conv_layer(c, "conv2_32x14x14_to_64_5x5_b64", [BATCH, 32, 14, 14], 64);
    bench_pool(c, "maxpool2_32x28x28_b64", [BATCH, 32, 28, 28]);
    bench_pool(c, "maxpool2_64x14x14_b64", [BATCH, 64, 14, 14]);
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    targets = kernels
}
criterion_main!(benches);
