//! `wgstyle convert SRC DST.safetensors`

use std::path::PathBuf;

use anyhow::Result;
use wgstyle::weights::safetensors::{save_transform, Precision};

#[derive(clap::Args)]
pub struct Args {
    /// A deeplearnjs checkpoint directory, a .safetensors file, a PyTorch .pth or an .onnx file
    /// of pytorch/examples' TransformerNet, or VGG19's tfjs model directory.
    src: PathBuf,
    /// Output .safetensors file.
    dst: PathBuf,
    /// Store float16 instead of float32.
    #[arg(long)]
    f16: bool,
    /// Replace an existing output.
    #[arg(long)]
    force: bool,
}

pub fn run(a: Args) -> Result<()> {
    if a.src.join("model.json").is_file() {
        // A TensorFlow.js layers model: VGG19 for `wgstyle optimize`.
        let w = wgstyle::weights::load_vgg19(&a.src)?;
        let source = a.src.display().to_string();
        wgstyle::weights::vgg::save_vgg19(&w, &a.dst, a.force, &[("wgstyle.source", &source)])?;
        eprintln!("wrote {}", a.dst.display());
        return Ok(());
    }
    let w = wgstyle::weights::load_transform(&a.src)?;
    let precision = if a.f16 {
        Precision::F16
    } else {
        Precision::F32
    };
    let source = a.src.display().to_string();
    save_transform(
        &w,
        &a.dst,
        precision,
        a.force,
        &[
            ("wgstyle.source", &source),
            (
                "wgstyle.source_format",
                wgstyle::weights::source_format(&a.src),
            ),
        ],
    )?;
    eprintln!(
        "wrote {} ({} network)",
        a.dst.display(),
        w.arch.family.name()
    );
    Ok(())
}
