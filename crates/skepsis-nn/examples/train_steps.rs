//! Time per training step, epoch by epoch: Adam, batch 50, the SC MNIST CNN on random images
//! with fixed labels. Run with
//! `MIMALLOC_PURGE_DELAY=-1 cargo run --release -p skepsis-nn --example train_steps -- 5000 8`
//! (images, epochs). A step time that grows from epoch to epoch while the work stays the same
//! points at the data, not the code: this is how subnormal optimizer moments (x86 microcode
//! assists) were found, see `train::optim`.

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use candle_core::{Device, Tensor};
use skepsis_nn::train::{self, LabelledData, OptimizerConfig, Silent, TrainConfig};
use skepsis_nn::zoo::{self, Architecture};

const BATCH: usize = 50;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let arg = |i: usize, default: usize| -> Result<usize, Box<dyn std::error::Error>> {
        Ok(std::env::args().nth(i).map(|s| s.parse()).transpose()?.unwrap_or(default))
    };
    let (images, epochs) = (arg(1, 5000)?.max(BATCH), arg(2, 4)?.max(1));
    let arch = Architecture::parse("sc-cnn")?;
    let shape = arch.default_input_shape();
    let model = zoo::build(arch, shape, arch.default_num_classes(), 0)?;
    let x = Tensor::rand(0f32, 1f32, (images, shape[0], shape[1], shape[2]), &Device::Cpu)?;
    let labels: Vec<usize> = (0..images).map(|i| (i * 7) % arch.default_num_classes()).collect();
    let config = TrainConfig {
        optimizer: OptimizerConfig::adam(1e-3),
        batch_size: BATCH,
        max_epochs: epochs,
        target_accuracy: None,
        seed: 0,
    };
    let data = LabelledData { images: &x, labels: &labels };
    let (_, report) = train::train(&model, data, None, &config, &mut Silent)?;
    let steps = images.div_ceil(BATCH) as f64;
    for e in &report.epochs {
        println!(
            "epoch {}: {:.2} s, {:.2} ms/step, loss {:.4}",
            e.epoch,
            e.seconds,
            e.seconds * 1e3 / steps,
            e.train_loss
        );
    }
    Ok(())
}
