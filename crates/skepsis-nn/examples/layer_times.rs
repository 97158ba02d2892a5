//! Per-layer CPU time of forward, input VJP and parameter VJP for a zoo network at batch 64.
//! Process CPU time (not wall time), so that the figures hold on a busy machine; run with
//! `RAYON_NUM_THREADS=1 cargo run --release -p skepsis-nn --example layer_times -- sc-cnn`.
//! Add `MIMALLOC_PURGE_DELAY=-1` to match the `skepsis` binary, which never hands freed memory
//! back to the OS (otherwise the figures include re-faulting the large buffers).

use std::time::Duration;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use candle_core::{Device, Tensor};
use skepsis_nn::zoo::{self, Architecture};

fn cpu_time() -> Duration {
    let mut ts = libc_timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes into the provided struct.
    unsafe { clock_gettime(2, &mut ts) }; // CLOCK_PROCESS_CPUTIME_ID
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

#[repr(C)]
struct libc_timespec {
    tv_sec: i64,
    tv_nsec: i64,
}

extern "C" {
    fn clock_gettime(clk: i32, ts: *mut libc_timespec) -> i32;
}

fn main() -> skepsis_nn::Result<()> {
    let arch = std::env::args().nth(1).unwrap_or_else(|| "sc-cnn".into());
    let arch = Architecture::parse(&arch)?;
    let shape = arch.default_input_shape();
    let model = zoo::build(arch, shape, arch.default_num_classes(), 0)?;
    let x = Tensor::rand(0f32, 1f32, (64, shape[0], shape[1], shape[2]), &Device::Cpu)?;
    let trace = model.trace(&x)?;
    let reps = 10;
    let mut total = [Duration::ZERO; 3];
    println!("{:<10} {:>10} {:>10} {:>10}", "node", "fwd ms", "vjp ms", "param ms");
    for (i, node) in model.nodes().iter().enumerate() {
        let inputs = trace.node_inputs(&model, i);
        let out = trace.output(i);
        let g = out.ones_like()?;
        let mut t = [Duration::ZERO; 3];
        let mut wall = Duration::ZERO;
        for _ in 0..reps {
            let s = cpu_time();
            let w0 = std::time::Instant::now();
            node.layer.forward(&inputs)?;
            let a = cpu_time();
            wall += w0.elapsed();
            node.layer.input_vjp(&inputs, out, &g)?;
            let b = cpu_time();
            node.layer.param_vjp(&inputs, &g)?;
            let c = cpu_time();
            t[0] += a - s;
            t[1] += b - a;
            t[2] += c - b;
        }
        let ms = |d: Duration| d.as_secs_f64() * 1e3 / reps as f64;
        println!(
            "{:<10} {:>10.2} {:>10.2} {:>10.2}   fwd wall {:.2}",
            node.name,
            ms(t[0]),
            ms(t[1]),
            ms(t[2]),
            ms(wall)
        );
        for k in 0..3 {
            total[k] += t[k];
        }
    }
    let ms = |d: Duration| d.as_secs_f64() * 1e3 / reps as f64;
    println!(
        "{:<10} {:>10.2} {:>10.2} {:>10.2}",
        "total",
        ms(total[0]),
        ms(total[1]),
        ms(total[2])
    );
    Ok(())
}
