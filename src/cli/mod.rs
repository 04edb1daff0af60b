//! Subcommands of the `wgstyle` binary, one file each.

mod adapters;
mod convert;
mod optimize;
mod stylize;

use anyhow::Result;
use clap::{Parser, Subcommand};

/// Neural style transfer on any GPU.
#[derive(Parser)]
#[command(
    version,
    args_conflicts_with_subcommands = true,
    after_help = "Example:\n  wgstyle --style ../shared/weights/styles/scream -o out.png photo.jpg"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    stylize: stylize::Args,
}

#[derive(Subcommand)]
enum Command {
    /// Stylize images with a fast style network (the default command).
    #[command(
        after_help = "Example:\n  wgstyle stylize --style ../shared/weights/styles/scream -o out.png photo.jpg"
    )]
    Stylize(stylize::Args),
    /// List the GPU adapters wgpu can see.
    #[command(after_help = "Example:\n  WGPU_BACKEND=vulkan wgstyle adapters")]
    Adapters,
    /// Convert a style network to wgstyle's safetensors format.
    #[command(
        after_help = "Example:\n  wgstyle convert ../shared/weights/styles/scream scream.safetensors"
    )]
    Convert(convert::Args),
    /// Optimisation style transfer (Gatys et al.): VGG19 losses, L-BFGS or Adam on the GPU.
    #[command(
        after_help = "Example:\n  wgstyle optimize photo.jpg --style-image starry_night.jpg -o out.png --vgg ../shared/weights/vgg19-tfjs"
    )]
    Optimize(Box<optimize::Args>),
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Some(Command::Stylize(a)) => stylize::run(a),
        Some(Command::Adapters) => adapters::run(),
        Some(Command::Convert(a)) => convert::run(a),
        Some(Command::Optimize(a)) => optimize::run(*a),
        None => stylize::run(cli.stylize),
    }
}
