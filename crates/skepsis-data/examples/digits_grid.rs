//! Writes a grid of synthetic digits to `digits.png` (for eyeballing the generator).
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let splits = skepsis_data::generate_digits(&skepsis_data::DigitsConfig {
        train: 100,
        test: 10,
        seed: 1,
    })?;
    let idx: Vec<usize> = (0..100).collect();
    let img = skepsis_data::sample_grid(
        &splits.train,
        &idx,
        &skepsis_data::GridOptions { columns: 10, scale: 2, regions: true },
    )?;
    img.save("/tmp/digits.png")?;
    Ok(())
}
