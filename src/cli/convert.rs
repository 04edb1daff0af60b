//! `wgstyle convert SRC DST.safetensors`

use std::path::PathBuf;

use anyhow::Result;
use wgstyle::output::OutputPolicy;
use wgstyle::weights::safetensors::{transform_bytes_with, Precision};

#[derive(clap::Args)]
pub struct Args {
    /// A deeplearnjs checkpoint directory, a .safetensors file, a PyTorch .pth or an .onnx file
    /// of pytorch/examples' TransformerNet, or VGG19's tfjs model directory.
    src: PathBuf,
    /// Output .safetensors file (an existing file is refused unless --force).
    dst: PathBuf,
    /// Store float16 instead of float32.
    #[arg(long)]
    f16: bool,
    /// Replace an existing output (never the source or one of its files).
    #[arg(short, long)]
    force: bool,
}

pub fn run(a: Args) -> Result<()> {
    // The output is claimed (validated) before anything is read.
    let mut policy = OutputPolicy::new(a.force);
    policy.add_input(&a.src);
    if a.src.is_dir() {
        for e in std::fs::read_dir(&a.src)?.flatten() {
            policy.add_input(&e.path());
        }
    }
    let mut out = policy.claim(&a.dst)?;
    let source = a.src.display().to_string();
    let extra = [("wgstyle.source", source.as_str())];
    let (bytes, what) = if a.src.join("model.json").is_file() {
        // A TensorFlow.js layers model: VGG19 for `wgstyle optimize`.
        let w = wgstyle::weights::load_vgg19(&a.src)?;
        (wgstyle::weights::vgg::vgg19_bytes(&w, &extra)?, "VGG19")
    } else {
        let w = wgstyle::weights::load_transform(&a.src)?;
        let precision = if a.f16 {
            Precision::F16
        } else {
            Precision::F32
        };
        let extra = [
            ("wgstyle.source", source.as_str()),
            (
                "wgstyle.source_format",
                wgstyle::weights::source_format(&a.src),
            ),
        ];
        let bytes = transform_bytes_with(&w, precision, &extra, &[])?;
        (bytes, w.arch.family.name())
    };
    out.write_bytes(&bytes)?;
    eprintln!("wrote {} ({what} network)", a.dst.display());
    Ok(())
}
