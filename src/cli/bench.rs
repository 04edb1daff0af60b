//! `wgstyle bench`

use std::path::PathBuf;

use anyhow::{Context as _, Result};
use wgstyle::bench::{report::Report, BenchOptions};
use wgstyle::gpu::context::AdapterChoice;

#[derive(clap::Args)]
pub struct Args {
    /// Short subset (small sizes, 2 repetitions), e.g. for CI.
    #[arg(long)]
    quick: bool,
    /// Timed repetitions per case.
    #[arg(long)]
    reps: Option<usize>,
    /// Only cases whose name contains this text.
    #[arg(long)]
    filter: Option<String>,
    /// Backend: vulkan, metal, dx12 or gl (default: WGPU_BACKEND, else the best available).
    #[arg(long)]
    backend: Option<String>,
    /// Adapter whose name contains this text (default: WGSTYLE_ADAPTER).
    #[arg(long)]
    adapter: Option<String>,
    /// The adapter's float32 peak in GFLOP/s, for the fraction-of-peak column.
    #[arg(long)]
    peak_gflops: Option<f64>,
    /// Write the full report (adapter, driver, limits, version, commit, cases) as JSON.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Replace an existing --json file.
    #[arg(short, long)]
    force: bool,
    /// Print the per-case time ratios B/A of two JSON reports instead of running.
    #[arg(long, num_args = 2, value_names = ["A.json", "B.json"])]
    compare: Option<Vec<PathBuf>>,
}

fn read(path: &PathBuf) -> Result<Report> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text)
        .with_context(|| format!("{} is not a wgstyle bench report", path.display()))
}

pub fn run(a: Args, gpu: super::Gpu) -> Result<()> {
    if let Some(files) = &a.compare {
        print!("{}", read(&files[0])?.compare(&read(&files[1])?));
        return Ok(());
    }
    let choice = AdapterChoice {
        backends: a
            .backend
            .as_deref()
            .map(AdapterChoice::parse_backend)
            .transpose()?,
        name: a.adapter.clone(),
    };
    // The report's file is claimed (validated) before the benchmarks run, not after.
    let policy = wgstyle::output::OutputPolicy::new(a.force);
    let mut json = match &a.json {
        Some(p) => Some(policy.claim(p)?),
        None => None,
    };
    // The suite sets the precision of each case itself (f32, and f16 cases where supported).
    let ctx = gpu.setup(
        wgstyle::Context::with_choice(&choice)?,
        wgstyle::ops::conv::ConvPrecision::F32,
    )?;
    let opts = BenchOptions {
        quick: a.quick,
        reps: a.reps.unwrap_or(if a.quick { 2 } else { 5 }),
        warmup: 1,
        peak_gflops: a.peak_gflops,
        filter: a.filter,
    };
    let report = wgstyle::bench::run(&ctx, &opts, |name| eprintln!("running {name}"))?;
    print!("{}", report.table());
    if let Some(out) = json.as_mut() {
        let text = serde_json::to_string_pretty(&report)?;
        out.write_bytes(text.as_bytes())?;
        eprintln!("wrote {}", out.path().display());
    }
    Ok(())
}
