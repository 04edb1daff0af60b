//! `wgstyle [stylize] --style STYLE [options] INPUT...`

use std::path::PathBuf;

use anyhow::{bail, Result};
use wgstyle::weights::catalog::Catalog;
use wgstyle::weights::search::{resolve, SearchPath};

use super::{plan, process};

#[derive(clap::Args)]
pub struct Args {
    /// Style: a name (looked up in --weights-dir, $WGSTYLE_WEIGHTS, ./weights, the user data
    /// directory), a .safetensors file, or a deeplearnjs checkpoint directory.
    #[arg(short, long, value_name = "STYLE")]
    style: Option<String>,
    /// Output file (one input file, PATH with an image extension) or directory (created if
    /// missing). Default: beside each input, as STEM.STYLE.EXT.
    #[arg(short, long, value_name = "PATH")]
    output: Option<PathBuf>,
    /// Descend into sub-folders of folder inputs.
    #[arg(short, long)]
    recursive: bool,
    /// Replace existing outputs (an input is never overwritten).
    #[arg(short, long)]
    force: bool,
    /// Look style names up in DIR first.
    #[arg(long, value_name = "DIR")]
    weights_dir: Option<PathBuf>,
    /// Stylize up to N images of the same size in one GPU pass.
    #[arg(long, value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..))]
    batch_size: u32,
    /// Shrink images so that their longest side is at most N pixels.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    max_size: Option<u32>,
    /// Scale images by F before stylizing (e.g. 0.5).
    #[arg(long, value_name = "F")]
    scale: Option<f32>,
    /// Keep the input's colours: stylized luminance, original chroma (YCbCr).
    #[arg(long)]
    preserve_colors: bool,
    /// How much style, 0..1: a blend of the stylized image (1) and the input (0).
    #[arg(long, value_name = "S", default_value_t = 1.0)]
    strength: f32,
    /// GPU memory budget for one pass, e.g. 1GiB or 512MiB: larger images are stylized in
    /// tiles, with the same result (the network's 6.7 MB of weights come on top).
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    max_memory: Option<u64>,
    /// No progress bar and no per-file messages (errors are still reported).
    #[arg(short, long)]
    quiet: bool,
    /// Print per-image stylize (upload, GPU, readback) and end-to-end milliseconds, after a
    /// warm-up run.
    #[arg(long)]
    timing: bool,
    /// Input images and folders.
    #[arg(value_name = "INPUT")]
    inputs: Vec<PathBuf>,
}

pub fn run(a: Args, gpu: super::Gpu) -> Result<()> {
    let Some(style) = a.style.as_deref() else {
        bail!("no style given: wgstyle --style NAME INPUT... (see wgstyle --help)");
    };
    if a.inputs.is_empty() {
        bail!("no input images: wgstyle --style {style} INPUT... (see wgstyle --help)");
    }
    if !(0.0..=1.0).contains(&a.strength) {
        bail!("--strength must be between 0 and 1, got {}", a.strength);
    }
    if let Some(s) = a.scale {
        if !(s.is_finite() && s > 0.0) {
            bail!("--scale must be a positive number, got {s}");
        }
    }
    let search = SearchPath::from_env(a.weights_dir.as_deref());
    let style = resolve(style, &search, &Catalog::builtin())?;
    let plan = plan::plan(
        &a.inputs,
        a.output.as_deref(),
        a.recursive,
        &style.name,
        a.force,
    )?;
    for (path, why) in &plan.failures {
        eprintln!("error: {}: {why}", path.display());
    }
    if plan.jobs.is_empty() && plan.failures.is_empty() {
        bail!("no images found in the inputs (folders: --recursive to descend)");
    }
    let refused = plan.failures.len();
    let outcome = if plan.jobs.is_empty() {
        process::Outcome::default()
    } else {
        let weights = wgstyle::weights::load_transform(&style.path)?;
        let ctx = gpu.context(wgstyle::ops::precision::ConvPrecision::Auto)?;
        let mut stylizer = wgstyle::Stylizer::new(&ctx, &weights)?;
        stylizer.set_memory_budget(a.max_memory);
        let opts = process::Options {
            max_size: a.max_size,
            scale: a.scale,
            preserve_colors: a.preserve_colors,
            strength: a.strength,
            batch_size: a.batch_size as usize,
            force: a.force,
            quiet: a.quiet,
            timing: a.timing,
        };
        process::run(&stylizer, plan.jobs, &opts)
    };
    let failed = refused + outcome.failed;
    let summary = format!("{} written, {failed} failed", outcome.written);
    if failed > 0 {
        bail!(summary);
    }
    if !a.quiet {
        eprintln!("{summary}");
    }
    Ok(())
}

/// Parses `1GiB`, `512MiB`, `800M`, `2G`, `1048576` (binary units; `B` optional).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("'{s}' is not a size such as 1GiB or 512MiB"))?;
    let mul = match unit
        .trim()
        .to_ascii_lowercase()
        .trim_end_matches('b')
        .trim_end_matches('i')
    {
        "" => 1u64,
        "k" => 1 << 10,
        "m" => 1 << 20,
        "g" => 1 << 30,
        "t" => 1 << 40,
        _ => return Err(format!("unknown unit in '{s}' (use KiB, MiB, GiB)")),
    };
    if !(n.is_finite() && n > 0.0) {
        return Err(format!("'{s}' must be positive"));
    }
    Ok((n * mul as f64) as u64)
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes_parse_in_binary_units() {
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("512MiB"), Ok(512 << 20));
        assert_eq!(parse_size("2g"), Ok(2 << 30));
        assert_eq!(parse_size("1.5 GiB"), Ok(3 << 29));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert!(parse_size("lots").is_err());
        assert!(parse_size("-1GiB").is_err());
        assert!(parse_size("3 parsecs").is_err());
    }
}
