//! `skepsis methods` and `skepsis models`.

use anyhow::Result;
use skepsis_attr::registry::METHODS;
use skepsis_nn::zoo::Architecture;

pub fn methods() -> Result<()> {
    for m in METHODS {
        let aliases = if m.aliases.is_empty() {
            String::new()
        } else {
            format!(" (also: {})", m.aliases.join(", "))
        };
        println!("{}{aliases}\n    {}\n    paper: {}", m.name, m.summary, m.paper);
        for p in m.params {
            println!("    {}={:<10} {}", p.name, p.default, p.help);
        }
        println!();
    }
    println!("Write a method as NAME or NAME:key=value,key=value, e.g. gradient or ig:steps=64.");
    Ok(())
}

pub fn models() -> Result<()> {
    for (arch, name) in Architecture::ALL {
        let [c, h, w] = arch.default_input_shape();
        println!("{name:<16} input {c}x{h}x{w}, {} classes by default", arch.default_num_classes());
    }
    Ok(())
}
