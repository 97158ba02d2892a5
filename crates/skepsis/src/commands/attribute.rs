//! `skepsis attribute`: one method on one model and input.

use anyhow::{bail, Context, Result};
use skepsis_attr::{registry, Target};

use crate::cli::AttributeArgs;
use crate::io;

pub fn run(args: AttributeArgs) -> Result<()> {
    // Validate everything that needs no I/O first.
    let method = registry::parse(&args.method)?;
    let target_class =
        match args.target.as_str() {
            "predicted" => None,
            t => Some(t.parse::<usize>().with_context(|| {
                format!("--target '{t}' is neither a class index nor 'predicted'")
            })?),
        };
    io::check_writable(&args.out, args.force)?;

    let model = super::load_model(&args.model)?;
    let x = io::read_inputs(&args.input, &model, args.count)?;
    let n = x.dims()[0];
    let target = match target_class {
        None => Target::Predicted,
        Some(c) => {
            let classes = model.num_classes()?;
            if c >= classes {
                bail!(
                    "--target {c}: model '{}' has {classes} classes (0 to {})",
                    model.name(),
                    classes - 1
                );
            }
            Target::Classes(vec![c; n])
        }
    };
    let attribution = method.attribute(&model, &x, &target)?;
    io::write_map(&args.out, &attribution.map, args.rendering == "signed", args.zoom, args.force)?;
    let names = model.class_names();
    let explained: Vec<String> = attribution
        .targets
        .iter()
        .map(|&t| names.get(t).map_or(t.to_string(), |name| format!("{t} ({name})")))
        .collect();
    eprintln!(
        "{}: {} map(s) of shape {:?} explaining class {} written to {}",
        method.name(),
        n,
        attribution.map.dims(),
        explained.join(", "),
        args.out.display()
    );
    Ok(())
}
