//! Subcommands of the `wgstyle` binary, one file each.

mod adapters;
mod convert;
mod stylize;
mod video;

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
    /// Stylize a video (decoded and encoded by ffmpeg, audio kept).
    #[command(
        after_help = "Example:\n  wgstyle video clip.mp4 --style ../shared/weights/styles/scream -o clip.scream.mp4"
    )]
    Video(video::Args),
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Some(Command::Stylize(a)) => stylize::run(a),
        Some(Command::Adapters) => adapters::run(),
        Some(Command::Convert(a)) => convert::run(a),
        Some(Command::Video(a)) => video::run(a),
        None => stylize::run(cli.stylize),
    }
}
