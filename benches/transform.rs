//! Times the fast network at 256×256 and 512×512 on the adapter wgstyle picks
//! (`WGPU_BACKEND` / `WGSTYLE_ADAPTER` select another): warm-up, then the median of
//! several runs, in ms and GFLOP/s from the network's FLOP count.
//!
//! `cargo bench --bench transform` (style from `$WGSTYLE_SHARED` or `../shared`).

use std::path::PathBuf;
use std::time::Instant;

use wgstyle::{Context, Stylizer};

fn main() {
    let shared = std::env::var_os("WGSTYLE_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared"));
    let style = shared.join("weights/styles/scream");
    if !style.is_dir() {
        eprintln!(
            "skipped: {} not found (set WGSTYLE_SHARED)",
            style.display()
        );
        return;
    }
    let sizes: Vec<usize> = std::env::var("WGSTYLE_BENCH_SIZES")
        .ok()
        .map(|s| s.split(',').filter_map(|v| v.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![256, 512]);
    let reps: usize = std::env::var("WGSTYLE_BENCH_REPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let ctx = Context::new().expect("GPU adapter");
    let info = ctx.adapter_info();
    println!(
        "adapter: {} | backend {:?} | {:?} | driver {} {}",
        info.name, info.backend, info.device_type, info.driver, info.driver_info
    );
    let weights = wgstyle::weights::load_transform(&style).expect("weights");
    let stylizer = Stylizer::new(&ctx, &weights).expect("upload");
    for s in sizes {
        let img = image::RgbImage::from_fn(s as u32, s as u32, |x, y| {
            image::Rgb([(x % 256) as u8, (y % 256) as u8, ((x + y) % 256) as u8])
        });
        stylizer.stylize(&img).expect("warm-up");
        let mut times: Vec<f64> = (0..reps)
            .map(|_| {
                let t = Instant::now();
                stylizer.stylize(&img).expect("stylize");
                t.elapsed().as_secs_f64() * 1e3
            })
            .collect();
        times.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let median = times[times.len() / 2];
        let gflop = weights.arch.flops(s, s) / 1e9;
        println!(
            "transform {s}x{s}: median {median:.1} ms (min {:.1}, max {:.1}, n={reps}), {gflop:.2} GFLOP -> {:.2} GFLOP/s (end to end: upload, forward, readback)",
            times[0],
            times[times.len() - 1],
            gflop / (median / 1e3)
        );
    }
}
