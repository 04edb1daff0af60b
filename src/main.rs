use std::path::PathBuf;

use anyhow::{bail, Context as _, Result};
use clap::{Parser, Subcommand};

/// Neural style transfer on any GPU.
#[derive(Parser)]
#[command(
    version,
    args_conflicts_with_subcommands = true,
    after_help = "Example:\n  wgstyle --style ../shared/weights/styles/scream -o out.png photo.jpg"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    stylize: StylizeArgs,
}

#[derive(clap::Args)]
struct StylizeArgs {
    /// Style network: a .safetensors file or a deeplearnjs checkpoint directory.
    #[arg(short, long)]
    style: Option<PathBuf>,
    /// Output image.
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// Input image.
    input: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// List the GPU adapters wgpu can see.
    #[command(after_help = "Example:\n  WGPU_BACKEND=vulkan wgstyle adapters")]
    Adapters,
    /// Convert a style network to wgstyle's safetensors format.
    #[command(
        after_help = "Example:\n  wgstyle convert ../shared/weights/styles/scream scream.safetensors"
    )]
    Convert {
        /// A deeplearnjs checkpoint directory or a .safetensors file.
        src: PathBuf,
        /// Output .safetensors file.
        dst: PathBuf,
        /// Store float16 instead of float32.
        #[arg(long)]
        f16: bool,
        /// Replace an existing output.
        #[arg(long)]
        force: bool,
    },
}

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Adapters) => {
            let adapters = wgstyle::gpu::context::enumerate_adapters(None);
            if adapters.is_empty() {
                bail!("no GPU adapters found. On Linux without a GPU: apt-get install mesa-vulkan-drivers");
            }
            for a in adapters {
                println!(
                    "{}\t{:?}\t{:?}\t{} {}",
                    a.name, a.backend, a.device_type, a.driver, a.driver_info
                );
            }
            Ok(())
        }
        Some(Command::Convert {
            src,
            dst,
            f16,
            force,
        }) => {
            let w = wgstyle::weights::load_transform(&src)?;
            let precision = if f16 {
                wgstyle::weights::safetensors::Precision::F16
            } else {
                Default::default()
            };
            let source = src.display().to_string();
            wgstyle::weights::safetensors::save_transform(
                &w,
                &dst,
                precision,
                force,
                &[("wgstyle.source", &source)],
            )?;
            eprintln!("wrote {}", dst.display());
            Ok(())
        }
        None => {
            let a = cli.stylize;
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
    }
}
