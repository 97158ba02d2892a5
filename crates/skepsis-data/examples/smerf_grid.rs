//! Writes a grid of SMERF 3.71 scenes with their ground-truth boxes to `/tmp/smerf.png`.
use skepsis_data::{generate_smerf, sample_grid, Background, GridOptions, SmerfConfig, SmerfSetup};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut config = SmerfConfig::new(SmerfSetup::ComplexCr1);
    config.scale = 0.0003;
    config.background = Background::Texture;
    let splits = generate_smerf(&config)?;
    let idx: Vec<usize> =
        (0..splits.train.len()).step_by((splits.train.len() / 20).max(1)).collect();
    let img =
        sample_grid(&splits.train, &idx, &GridOptions { columns: 5, scale: 2, regions: true })?;
    img.save("/tmp/smerf.png")?;
    Ok(())
}
