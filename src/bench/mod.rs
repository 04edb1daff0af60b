//! `wgstyle bench`: a fixed, versioned suite of the project's GPU workloads, timed the same
//! way on every adapter so that reports from different machines compare case by case.
//!
//! Each case records its dispatches into one submission; with `TIMESTAMP_QUERY` the time is
//! the sum of the GPU durations of its passes (timestamps around every pass), otherwise the
//! wall clock around submit-and-wait. Warm-up first, then repetitions: median and spread.

pub mod backward;
pub mod cases;
pub mod gatys;
pub mod report;

use std::time::Instant;

use crate::error::Result;
use crate::gpu::context::Context;
use crate::gpu::record::Recorder;
use crate::ops::conv::{ConvAlgo, ConvPrecision};
use cases::Case;
use report::{CaseResult, Report};

/// Version of the suite: bump when cases change, so that reports compare like with like.
pub const SUITE_VERSION: u32 = 2;

/// How to run the suite.
#[derive(Clone, Debug)]
pub struct BenchOptions {
    /// Short subset (CI): smallest sizes only, few repetitions.
    pub quick: bool,
    /// Timed repetitions per case.
    pub reps: usize,
    /// Untimed warm-up runs per case.
    pub warmup: usize,
    /// The adapter's float32 peak in GFLOP/s, if known, for the fraction-of-peak column.
    pub peak_gflops: Option<f64>,
    /// Only cases whose name contains this.
    pub filter: Option<String>,
}

impl Default for BenchOptions {
    fn default() -> Self {
        BenchOptions {
            quick: false,
            reps: 5,
            warmup: 1,
            peak_gflops: None,
            filter: None,
        }
    }
}

/// Runs the suite on `ctx`, calling `progress(case name)` before each case.
pub fn run(ctx: &Context, opts: &BenchOptions, mut progress: impl FnMut(&str)) -> Result<Report> {
    let timestamps = ctx
        .device()
        .features()
        .contains(wgpu::Features::TIMESTAMP_QUERY);
    let mut results = Vec::new();
    let wanted = |name: &str| {
        opts.filter
            .as_ref()
            .is_none_or(|f| name.contains(f.as_str()))
    };
    let need_vgg = gatys::sizes(opts.quick)
        .iter()
        .any(|&s| wanted(&gatys::name(s)));
    let vgg = need_vgg.then(|| gatys::synthetic_vgg(ctx)).transpose()?;
    let context_precision = ctx.precision();
    let context_variant = ctx.conv_variant();
    // The cooperative-matrix variant with the largest fragments the device runs.
    let coop = ConvAlgo::F16
        .into_iter()
        .filter(|a| a.usable(ctx))
        .filter_map(|a| Some((a.coop_size()?, a)))
        .max_by_key(|(size, _)| *size)
        .map(|(_, a)| a);
    for case in cases::suite(ctx, opts.quick, vgg.as_ref(), wanted)? {
        let mut runs = vec![(case.name.clone(), context_precision, context_variant)];
        if ctx.supports_f16() && cases::has_f16_copy(&case) {
            runs.push((format!("{} f16", case.name), ConvPrecision::F16, None));
        }
        if let Some(t) = coop.filter(|_| cases::has_coop_copy(&case)) {
            runs.push((format!("{} coop", case.name), ConvPrecision::F16, Some(t)));
        }
        if cases::has_direct_copy(ctx, &case) {
            let direct = ConvAlgo::default_on(ctx, 128);
            runs.push((
                format!("{} direct", case.name),
                context_precision,
                Some(direct),
            ));
        }
        for (name, precision, variant) in runs {
            if !wanted(&name) {
                continue;
            }
            progress(&name);
            ctx.set_precision(precision)?;
            ctx.set_conv_variant(variant)?;
            let r = time_case(ctx, &case, opts, timestamps);
            ctx.set_precision(context_precision)?;
            ctx.set_conv_variant(context_variant)?;
            results.push(CaseResult { name, ..r? });
        }
    }
    Ok(Report::new(ctx, opts, timestamps, results))
}

fn time_case(
    ctx: &Context,
    case: &Case,
    opts: &BenchOptions,
    timestamps: bool,
) -> Result<CaseResult> {
    let mut gpu = Vec::new();
    let mut wall = Vec::new();
    let mut passes = 0;
    let mut variants = std::collections::BTreeMap::new();
    for i in 0..opts.warmup + opts.reps.max(1) {
        let mut rec = Recorder::new(ctx, &case.name);
        if timestamps {
            rec.enable_pass_timing(1024);
        }
        let keep = (case.record)(&mut rec)?;
        let timing = rec.finish_timing();
        passes = rec.dispatch_count();
        variants.clear();
        let labels = rec.kernel_labels();
        for (i, tile) in labels
            .iter()
            .enumerate()
            .filter_map(|(i, l)| Some((i, ConvAlgo::from_kernel_label(l)?)))
        {
            // The matrix-product kernels also compute Gram matrices: a Winograd convolution's
            // products follow its input transform.
            if tile.gemm().is_some() && (i == 0 || !labels[i - 1].starts_with("winograd.input")) {
                continue;
            }
            *variants.entry(tile.to_string()).or_insert(0) += 1;
        }
        let t0 = Instant::now();
        rec.submit()?;
        ctx.wait()?;
        let w = t0.elapsed().as_secs_f64() * 1e3;
        drop(keep);
        let g = match timing {
            Some(t) => Some(t.read(ctx)?.iter().map(|p| p.ms).sum::<f64>()),
            None => None,
        };
        if i >= opts.warmup {
            wall.push(w);
            gpu.extend(g);
        }
    }
    let mut r = CaseResult::new(case, passes, &gpu, &wall, opts.peak_gflops);
    r.conv_variants = variants;
    Ok(r)
}
