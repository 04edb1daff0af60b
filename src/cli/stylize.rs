//! `wgstyle [stylize] --style STYLE [-o OUT] INPUT`

use std::path::PathBuf;

use anyhow::{bail, Context as _, Result};

#[derive(clap::Args)]
pub struct Args {
    /// Style network: a .safetensors file or a deeplearnjs checkpoint directory.
    #[arg(short, long)]
    style: Option<PathBuf>,
    /// Output image (default: INPUT's stem + style name, beside the input).
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// Input image.
    input: Option<PathBuf>,
}

pub fn run(a: Args) -> Result<()> {
    let (Some(style), Some(input)) = (a.style, a.input) else {
        bail!("usage: wgstyle --style STYLE [-o OUT] INPUT (see --help)");
    };
    let output = a.output.unwrap_or_else(|| {
        let stem = input
            .file_stem()
            .unwrap_or_default()
            .to_string_lossy()
            .to_string();
        let ext = input
            .extension()
            .unwrap_or_default()
            .to_string_lossy()
            .to_string();
        let sname = style
            .file_stem()
            .unwrap_or_default()
            .to_string_lossy()
            .to_string();
        input.with_file_name(format!("{stem}.{sname}.{ext}"))
    });
    if output == input {
        bail!("output {} would overwrite the input", output.display());
    }
    let img = image::open(&input)
        .with_context(|| format!("reading {}", input.display()))?
        .to_rgb8();
    let weights = wgstyle::weights::load_transform(&style)?;
    let ctx = wgstyle::Context::new()?;
    let out = wgstyle::Stylizer::new(&ctx, &weights)?.stylize(&img)?;
    let format = image::ImageFormat::from_path(&output)
        .with_context(|| format!("unknown image format for {}", output.display()))?;
    let mut bytes = std::io::Cursor::new(Vec::new());
    out.write_to(&mut bytes, format)?;
    wgstyle::fsutil::write_bytes_atomic(&output, false, bytes.get_ref())?;
    eprintln!("wrote {}", output.display());
    Ok(())
}
