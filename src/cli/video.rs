//! `wgstyle video INPUT --style STYLE [-o OUT]`: stylize a video through ffmpeg.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use wgstyle::video::{self, VideoOptions};

#[derive(clap::Args)]
pub struct Args {
    /// Input video (anything ffmpeg reads).
    input: PathBuf,
    /// Style: a name (looked up like `wgstyle --style`), a .safetensors file, or a
    /// deeplearnjs checkpoint directory.
    #[arg(short, long)]
    style: String,
    /// Look style names up in DIR first.
    #[arg(long, value_name = "DIR")]
    weights_dir: Option<PathBuf>,
    /// Output video; the extension chooses the container (default: INPUT's stem + style name
    /// + .mp4, beside the input).
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// Frames stylized per GPU pass (1 to 1024).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=1024))]
    batch_size: u32,
    /// ffmpeg video encoder (-c:v), e.g. libx264, libx265, libvpx-vp9, libx264rgb.
    #[arg(long, default_value = "libx264")]
    codec: String,
    /// Constant rate factor (-crf): lower is better quality (0 = lossless with libx264).
    #[arg(long, default_value_t = 18, value_parser = clap::value_parser!(u32).range(0..=63))]
    crf: u32,
    /// Output pixel format (-pix_fmt); yuv420p plays everywhere, and makes odd sizes even by
    /// cropping the last row/column.
    #[arg(long, default_value = "yuv420p")]
    pix_fmt: String,
    /// ffmpeg audio encoder (-c:a); default: copy the input's audio where the container
    /// accepts it, else AAC (MP4/MOV) or Opus (WebM).
    #[arg(long)]
    audio_codec: Option<String>,
    /// Scale frames down (before stylizing) so that the longer side is at most this many pixels.
    #[arg(long, value_parser = clap::value_parser!(u32).range(2..=65_536))]
    max_size: Option<u32>,
    /// Replace an existing output file (never the input).
    #[arg(short, long)]
    force: bool,
    /// No progress bar or summary.
    #[arg(short, long)]
    quiet: bool,
}

pub fn run(a: Args, gpu: super::Gpu) -> Result<()> {
    // ffmpeg first: without it nothing else matters.
    let info = video::probe(&a.input)?;
    // The output is checked (policy: never the input, never an existing file without
    // --force, a directory that exists or can be made) before any GPU work.
    let mut policy = wgstyle::output::OutputPolicy::new(a.force);
    policy.add_input(&a.input);
    let check = |output: &PathBuf| -> Result<()> {
        policy.claim(output)?;
        if output.extension().is_none_or(|e| e.is_empty()) {
            anyhow::bail!(
                "output {} needs an extension (e.g. .mp4, .mkv, .webm) to choose the container",
                output.display()
            );
        }
        Ok(())
    };
    if let Some(o) = &a.output {
        check(o)?;
    }
    let search = wgstyle::weights::search::SearchPath::from_env(a.weights_dir.as_deref());
    let catalog = wgstyle::weights::catalog::Catalog::builtin();
    let style = wgstyle::weights::search::resolve(&a.style, &search, &catalog)?;
    let output = a.output.clone().unwrap_or_else(|| {
        let stem = a.input.file_stem().unwrap_or_default().to_string_lossy();
        a.input.with_file_name(format!("{stem}.{}.mp4", style.name))
    });
    if a.output.is_none() {
        check(&output)?;
    }
    let weights = wgstyle::weights::load_transform(&style.path)?;
    let ctx = gpu.context(wgstyle::ops::conv::ConvPrecision::Auto)?;
    let stylizer = wgstyle::Stylizer::new(&ctx, &weights)?;
    let opts = VideoOptions {
        batch_size: a.batch_size as usize,
        codec: a.codec,
        crf: Some(a.crf),
        pix_fmt: a.pix_fmt,
        audio_codec: a.audio_codec,
        max_size: a.max_size,
        overwrite: a.force,
    };
    let (w, h) = video::output_size(info.width, info.height, opts.max_size, &opts.pix_fmt);
    if !a.quiet && (w, h) != (info.width, info.height) {
        eprintln!(
            "note: {}x{} -> {w}x{h} ({})",
            info.width,
            info.height,
            if opts
                .max_size
                .is_some_and(|m| info.width.max(info.height) > m)
            {
                "--max-size"
            } else {
                "cropped to even dimensions for the pixel format"
            }
        );
    }

    let show = !a.quiet && std::io::stderr().is_terminal();
    let bar = match info.frames {
        Some(n) => ProgressBar::new(n),
        None => ProgressBar::new_spinner(),
    };
    bar.set_draw_target(if show {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    });
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} frames, {msg}, ETA {eta}",
        )
        .expect("template"),
    );
    bar.set_message("- fps");
    bar.enable_steady_tick(Duration::from_millis(200));

    // SIGINT, SIGTERM and SIGHUP set the interrupt flag; the run stops, kills ffmpeg and
    // removes its temporary file, and this function reports it and exits.
    let _cooperate = wgstyle::output::Cooperate::begin();
    let cancel = wgstyle::output::interrupt_flag();
    let result = video::stylize_video(&stylizer, &a.input, &output, &opts, cancel, |p| {
        bar.set_position(p.frames);
        if let Some(t) = p.total {
            bar.set_length(t.max(p.frames));
        }
        let fps = p.frames as f64 / p.elapsed.as_secs_f64().max(1e-9);
        bar.set_message(format!("{fps:.2} fps"));
    });
    bar.finish_and_clear();
    match result {
        Ok(s) => {
            if !a.quiet {
                eprintln!(
                    "wrote {}: {} frames, {}x{} at {} fps{}, in {:.1} s ({:.2} frames/s)",
                    output.display(),
                    s.frames,
                    s.width,
                    s.height,
                    s.rate,
                    if s.audio { ", with audio" } else { "" },
                    s.elapsed.as_secs_f64(),
                    s.frames as f64 / s.elapsed.as_secs_f64().max(1e-9)
                );
            }
            Ok(())
        }
        Err(wgstyle::Error::Cancelled) => {
            eprintln!("interrupted: no output written");
            let sig = wgstyle::output::interrupted().unwrap_or(libc::SIGINT);
            std::process::exit(128 + sig);
        }
        Err(e) => Err(e.into()),
    }
}
