//! Subcommands of the `wgstyle` binary, one file each.

mod adapters;
mod bench;
mod convert;
mod fetch;
mod floats;
pub mod log;
mod optimize;
mod plan;
mod process;
mod styles;
mod stylize;
mod train;
mod video;

use anyhow::Result;
use clap::{Parser, Subcommand};
use wgstyle::ops::conv::ConvPrecision;

/// Neural style transfer on any GPU.
///
/// `wgstyle --style NAME INPUT...` stylizes image files and folders; outputs go beside each
/// input as STEM.NAME.EXT unless -o says otherwise, and nothing is overwritten without --force.
#[derive(Parser)]
#[command(
    version,
    args_conflicts_with_subcommands = true,
    after_help = "Examples:
  wgstyle --style scream photo.jpg                  # -> photo.scream.jpg
  wgstyle --style udnie --max-size 512 -o out/ holidays/ --recursive
  wgstyle --style ./mine.safetensors --preserve-colors --strength 0.7 photo.png
  wgstyle styles                                     # the styles it can see or fetch
  wgstyle fetch scream                               # download a catalog style

Styles are looked up by name in --weights-dir, $WGSTYLE_WEIGHTS (colon-separated), ./weights
and the user data directory ($WGSTYLE_DATA_DIR, default ~/.local/share/wgstyle on Linux)."
)]
pub struct Cli {
    /// Use the built-in convolution kernel choice instead of timing the kernel variants the
    /// first time a shape is met (goes after the subcommand: `wgstyle bench --no-autotune`).
    /// By default wgstyle tunes on GPUs and not on CPU drivers such as lavapipe, where the
    /// built-in choice is what tuning picks. Choices are cached in
    /// $WGSTYLE_CACHE_DIR/autotune.json (default ~/.cache/wgstyle/autotune.json on Linux).
    #[arg(long, global = true, conflicts_with = "autotune")]
    no_autotune: bool,
    /// Time the convolution kernel variants even on a CPU driver (see --no-autotune).
    #[arg(long, global = true)]
    autotune: bool,
    /// Convolution precision of the fast style networks (stylize, video): f32; f16 (products
    /// in half precision, sums in f32; adapters with SHADER_F16); auto (default: f16 if the
    /// autotune measures it 10 % faster on one representative convolution, once per adapter,
    /// else f32; f32 without SHADER_F16 or without the autotune, as on CPU drivers unless
    /// --autotune). f16 stays within 2/255 of f32 on the shipped styles. optimize and train
    /// run in f32.
    #[arg(long, global = true, value_parser = ["auto", "f16", "f32"])]
    precision: Option<String>,
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    stylize: stylize::Args,
}

#[derive(Subcommand)]
enum Command {
    /// Stylize images and folders with a fast style network (the default command).
    #[command(
        after_help = "Example:\n  wgstyle stylize --style scream -o out/ photo.jpg holidays/"
    )]
    Stylize(stylize::Args),
    /// List the styles wgstyle can see (and where) or fetch.
    #[command(
        after_help = "Examples:\n  wgstyle styles\n  wgstyle styles --license bsd          # only what a product may use under BSD terms"
    )]
    Styles(styles::Args),
    /// Download catalog styles, verify their checksums, convert them to safetensors.
    #[command(after_help = "Examples:\n  wgstyle fetch scream wave\n  \
        WGSTYLE_MIRROR=http://mirror.example/style-transfer/ wgstyle fetch udnie")]
    Fetch(fetch::Args),
    /// List the GPU adapters wgpu can see.
    #[command(after_help = "Example:\n  WGPU_BACKEND=vulkan wgstyle adapters")]
    Adapters,
    /// Benchmark the GPU kernels and networks on an adapter (per-kernel and end-to-end).
    #[command(
        after_help = "Examples:\n  wgstyle bench --json lavapipe.json\n  wgstyle bench --compare lavapipe.json h200.json"
    )]
    Bench(bench::Args),
    /// Convert a style network to wgstyle's safetensors format.
    #[command(after_help = "Example:\n  wgstyle convert transformer_net.pth mosaic.safetensors")]
    Convert(convert::Args),
    /// Optimisation style transfer (Gatys et al.): VGG19 losses, L-BFGS or Adam on the GPU.
    #[command(
        after_help = "Example:\n  wgstyle fetch vgg19 && wgstyle optimize photo.jpg --style-image starry_night.jpg -o out.png"
    )]
    Optimize(Box<optimize::Args>),
    /// Stylize a video (decoded and encoded by ffmpeg, audio kept).
    #[command(after_help = "Example:\n  wgstyle video clip.mp4 --style scream -o clip.scream.mp4")]
    Video(video::Args),
    /// Train a fast style network for a style image on a folder of photos.
    #[command(
        after_help = "Example:\n  wgstyle train --style-image wave.jpg --dataset photos/ -o wave.safetensors --test-image photo.jpg"
    )]
    Train(Box<train::Args>),
}

/// Settings of the GPU context shared by every command that uses one.
#[derive(Clone, Copy, Debug)]
pub struct Gpu {
    /// Convolution autotune: forced on (`--autotune`) or off (`--no-autotune`); `None`: on
    /// except on CPU drivers.
    pub autotune: Option<bool>,
    /// Convolution precision (`--precision`; the command's default when absent).
    pub precision: Option<ConvPrecision>,
}

impl Gpu {
    /// Applies the settings to a new context, with `default` precision unless `--precision`
    /// said otherwise.
    pub fn setup(self, ctx: wgstyle::Context, default: ConvPrecision) -> Result<wgstyle::Context> {
        let on = self.autotune.unwrap_or(!ctx.is_cpu_driver());
        ctx.set_autotune(on);
        if on {
            ctx.on_tuning_start(|t| {
                let kept = match &t.cache_file {
                    Some(p) => format!("kept in {}", p.display()),
                    None => "not kept".into(),
                };
                eprintln!(
                    "tuning kernels for this adapter, once, ~{:.0} s ({kept}; --no-autotune skips it)",
                    t.estimate_s
                );
            });
        }
        ctx.set_precision(self.precision.unwrap_or(default))?;
        Ok(ctx)
    }

    /// A context on the adapter chosen by `WGPU_BACKEND` / `WGSTYLE_ADAPTER`.
    pub fn context(self, default: ConvPrecision) -> Result<wgstyle::Context> {
        self.setup(wgstyle::Context::new()?, default)
    }

    /// Refuses `--precision` other than f32 for a command that computes gradients.
    pub fn f32_only(self, command: &str) -> Result<Self> {
        match self.precision {
            Some(p) if p != ConvPrecision::F32 => anyhow::bail!(
                "--precision {p}: {command} runs in f32 (it computes gradients); \
                 --precision applies to stylize, video and bench"
            ),
            _ => Ok(self),
        }
    }
}

/// The subcommands, for "did you mean".
const COMMANDS: [&str; 9] = [
    "stylize", "styles", "fetch", "adapters", "bench", "convert", "optimize", "video", "train",
];

/// "did you mean" for a misspelt subcommand: the first argument is no subcommand and no
/// existing path, has no extension or separator, and is close to a subcommand name.
pub fn misspelt_command(args: &[std::ffi::OsString]) -> Option<String> {
    let word = args.get(1)?.to_str()?;
    if word.starts_with('-')
        || COMMANDS.contains(&word)
        || word == "help"
        || std::path::Path::new(word).exists()
        || word.contains(['.', '/', '\\'])
    {
        return None;
    }
    let best = wgstyle::weights::search::did_you_mean(word, COMMANDS.iter().copied())?;
    Some(format!(
        "unknown command '{word}': did you mean `wgstyle {best}`? (see wgstyle --help)"
    ))
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    let gpu = Gpu {
        autotune: match (cli.autotune, cli.no_autotune) {
            (true, _) => Some(true),
            (_, true) => Some(false),
            _ => None,
        },
        precision: cli.precision.as_deref().map(str::parse).transpose()?,
    };
    match cli.command {
        Some(Command::Stylize(a)) => stylize::run(a, gpu),
        Some(Command::Styles(a)) => styles::run(a),
        Some(Command::Fetch(a)) => fetch::run(a),
        Some(Command::Adapters) => adapters::run(),
        Some(Command::Bench(a)) => bench::run(a, gpu),
        Some(Command::Convert(a)) => convert::run(a),
        Some(Command::Optimize(a)) => optimize::run(*a, gpu.f32_only("optimize")?),
        Some(Command::Video(a)) => video::run(a, gpu),
        Some(Command::Train(a)) => train::run(*a, gpu.f32_only("train")?),
        None => stylize::run(cli.stylize, gpu),
    }
}

#[cfg(test)]
mod tests {
    use super::misspelt_command;

    #[test]
    fn misspelt_commands_get_a_suggestion() {
        let args = |w: &str| vec!["wgstyle".into(), w.into(), "photo.jpg".into()];
        let m = misspelt_command(&args("stylise")).unwrap();
        assert!(m.contains("`wgstyle stylize`"), "{m}");
        assert!(misspelt_command(&args("optimise"))
            .unwrap()
            .contains("optimize"));
        assert!(misspelt_command(&args("vdieo")).unwrap().contains("video"));
        for fine in ["stylize", "--style", "photo.jpg", "holidays", "x"] {
            assert_eq!(misspelt_command(&args(fine)), None, "{fine}");
        }
    }
}
