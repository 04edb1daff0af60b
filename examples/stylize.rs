//! Stylizes one photo with a fast style network, using wgstyle as a library.
//!
//! ```sh
//! cargo run --release --example stylize -- scream photo.jpg photo.scream.jpg
//! ```
//!
//! STYLE is a `.safetensors` file, a checkpoint directory, or a style name looked up as
//! `wgstyle --style` does (`--weights-dir` aside): `$WGSTYLE_WEIGHTS`, `./weights`, then the
//! user data directory, where `wgstyle fetch NAME` puts styles. OUT must not exist yet: it is
//! written to a temporary file beside it and renamed once complete.

use std::path::PathBuf;

use anyhow::{bail, Context as _};
use wgstyle::weights::catalog::Catalog;
use wgstyle::weights::search::{resolve, SearchPath};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [style, input, output] = args.as_slice() else {
        bail!("usage: cargo run --example stylize -- STYLE IN OUT");
    };
    let output = PathBuf::from(output);
    // Everything that can be checked is checked before any GPU work.
    let format = wgstyle::image_io::output_format(&output)
        .with_context(|| format!("{}: not an image extension", output.display()))?;
    if output.exists() {
        bail!("{} exists; not replacing it", output.display());
    }
    let style = resolve(style, &SearchPath::from_env(None), &Catalog::builtin())?;
    let weights = wgstyle::weights::load_transform(&style.path)?;
    let mut picture = wgstyle::image_io::read(input.as_ref())?;

    let ctx = wgstyle::Context::new()?;
    let stylizer = wgstyle::Stylizer::new(&ctx, &weights)?;
    picture.rgb = stylizer.stylize(&picture.rgb)?; // any size; same size out
    let bytes = wgstyle::image_io::encode(&picture, format, &output)?;
    wgstyle::fsutil::write_bytes_atomic(&output, false, &bytes)?;
    println!(
        "{} -> {} ({}, on {})",
        input,
        output.display(),
        style.name,
        ctx.adapter_info().name
    );
    Ok(())
}
