//! Forward and forward + input gradient of the reference networks at batch 64 (issue "Core
//! engine"): the LeNet-sized CNN (PyTorch 2.13 on 2 threads: 27 ms / 52 ms) and the Sanity
//! Checks MNIST CNN (PyTorch 2.14: 16.6 ms / 48 ms). Run with
//! `RAYON_NUM_THREADS=2 cargo bench -p skepsis-nn --bench engine`.

use candle_core::{DType, Device, Tensor};
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use criterion::{criterion_group, criterion_main, Criterion};
use skepsis_nn::zoo::{self, Architecture};
use skepsis_nn::{input_gradient, Model};

fn inputs(n: usize) -> Tensor {
    Tensor::rand(0f32, 1f32, (n, 1, 28, 28), &Device::Cpu).expect("random inputs")
}

fn one_hot(n: usize) -> Tensor {
    let mut v = vec![0f32; n * 10];
    for i in 0..n {
        v[i * 10 + i % 10] = 1.0;
    }
    Tensor::from_vec(v, (n, 10), &Device::Cpu).expect("seed")
}

fn bench_model(c: &mut Criterion, name: &str, model: &Model) {
    let x = inputs(64);
    let seed = one_hot(64);
    let mut group = c.benchmark_group(name);
    group.sample_size(20);
    group.bench_function("forward_b64", |b| b.iter(|| model.forward(&x).expect("forward")));
    group.bench_function("forward_input_gradient_b64", |b| {
        b.iter(|| input_gradient(model, &x, &seed).expect("gradient"))
    });
    group.finish();
}

fn engine(c: &mut Criterion) {
    let lenet = zoo::build(Architecture::Lenet, [1, 28, 28], 10, 0).expect("lenet");
    let sc = zoo::build(Architecture::ScCnn, [1, 28, 28], 10, 0).expect("sc-cnn");
    assert_eq!(sc.dtype(), DType::F32);
    bench_model(c, "lenet", &lenet);
    bench_model(c, "sc_cnn", &sc);
}

criterion_group!(benches, engine);
criterion_main!(benches);
