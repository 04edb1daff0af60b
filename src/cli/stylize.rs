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
    /// Replace existing outputs (without it they are skipped; an input is never overwritten).
    #[arg(short, long)]
    force: bool,
    /// Look style names up in DIR first.
    #[arg(long, value_name = "DIR")]
    weights_dir: Option<PathBuf>,
    /// Stylize up to N images of the same size in one GPU pass (1 to 1024).
    #[arg(long, value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..=1024))]
    batch_size: u32,
    /// Shrink images so that their longest side is at most N pixels.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    max_size: Option<u32>,
    /// Scale images by F before stylizing (e.g. 0.5).
    #[arg(long, value_name = "F", value_parser = super::floats::positive)]
    scale: Option<f32>,
    /// Keep the input's colours: stylized luminance, original chroma (YCbCr).
    #[arg(long)]
    preserve_colors: bool,
    /// How much style, 0..1: a blend of the stylized image (1) and the input (0).
    #[arg(long, value_name = "S", default_value_t = 1.0, value_parser = super::floats::unit)]
    strength: f32,
    /// GPU memory budget for one pass, e.g. 1GiB or 512MiB (at least 1MiB): larger images are
    /// stylized in tiles, with the same result (the network's 6.7 MB of weights come on top).
    #[arg(long, value_name = "SIZE", value_parser = parse_budget)]
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
    if !a.quiet {
        for (input, output) in &plan.skipped {
            eprintln!("skipped {}: {} exists", input.display(), output.display());
        }
    }
    let skipped = plan.skipped.len();
    if plan.jobs.is_empty() && plan.failures.is_empty() && skipped == 0 {
        bail!("no images found in the inputs (folders: --recursive to descend)");
    }
    let refused = plan.failures.len();
    let outcome = if plan.jobs.is_empty() {
        process::Outcome::default()
    } else {
        let weights = wgstyle::weights::load_transform(&style.path)?;
        let ctx = gpu.context(wgstyle::ops::conv::ConvPrecision::Auto)?;
        let mut stylizer = wgstyle::Stylizer::new(&ctx, &weights)?;
        stylizer.set_memory_budget(a.max_memory);
        let opts = process::Options {
            max_size: a.max_size,
            scale: a.scale,
            preserve_colors: a.preserve_colors,
            strength: a.strength,
            batch_size: a.batch_size as usize,
            quiet: a.quiet,
            timing: a.timing,
        };
        process::run(&stylizer, plan.jobs, &opts)
    };
    let failed = refused + outcome.failed;
    let summary = format!(
        "{} written, {skipped} skipped (exist; --force replaces them), {failed} failed",
        outcome.written
    );
    if failed > 0 {
        bail!(summary);
    }
    if !a.quiet {
        eprintln!("{summary}");
    }
    Ok(())
}

/// The smallest `--max-memory`: one 16-pixel patch with its halo.
const MIN_BUDGET: u64 = (16 + 2 * wgstyle::image_tiling::HALO as u64).pow(2)
    * wgstyle::image_tiling::PATCH_BYTES_PER_PIXEL;

/// [`parse_size`], at least [`MIN_BUDGET`] (rounded up to 1 MiB in the message).
fn parse_budget(s: &str) -> Result<u64, String> {
    let n = parse_size(s)?;
    if n < MIN_BUDGET {
        return Err(format!(
            "'{s}' is {n} bytes; the smallest budget is 1MiB (one tile needs {} KiB)",
            MIN_BUDGET.div_ceil(1024)
        ));
    }
    Ok(n)
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
    let bytes = n * mul as f64;
    if bytes < 1.0 || bytes >= u64::MAX as f64 {
        return Err(format!("'{s}' is not a usable size in bytes"));
    }
    Ok(bytes as u64)
}

#[cfg(test)]
mod tests {
    use super::{parse_budget, parse_size};

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
        assert!(parse_size("0.5").is_err());
        assert!(parse_budget("0.5MiB").is_err());
        assert!(parse_budget("1MiB").is_ok());
    }
}
