//! Integrated Gradients with 64 steps on the SC MNIST CNN for 64 images (Captum's figure
//! for the same work on 2 threads: 3.71 s, issue "performance"). Reports images/s.
//!
//! `cargo bench -p skepsis-attr --bench ig` (set `RAYON_NUM_THREADS=2` to match Captum's
//! setting).

use candle_core::{DType, Device, Tensor};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use skepsis_attr::{IntegratedGradients, IntegratedGradientsSettings, Method, Target};
use skepsis_nn::zoo::{build, Architecture};

fn ig_sc_cnn(c: &mut Criterion) {
    let model = build(Architecture::ScCnn, [1, 28, 28], 10, 0).expect("SC CNN");
    let x = Tensor::rand(0f32, 1f32, (64, 1, 28, 28), &Device::Cpu).expect("inputs");
    assert_eq!(x.dtype(), DType::F32);
    let targets = Target::Classes((0..64).map(|i| i % 10).collect());
    let mut group = c.benchmark_group("integrated_gradients");
    group.sample_size(10);
    group.throughput(Throughput::Elements(64));
    for batch_size in [128, 256, 512] {
        let settings = IntegratedGradientsSettings { steps: 64, batch_size, ..Default::default() };
        let ig = IntegratedGradients::new(settings).expect("settings");
        group.bench_function(format!("sc_cnn_64_images_64_steps_batch_{batch_size}"), |b| {
            b.iter(|| ig.attribute(&model, &x, &targets).expect("attribution"))
        });
    }
    group.finish();
}

criterion_group!(benches, ig_sc_cnn);
criterion_main!(benches);
