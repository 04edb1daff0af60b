//! Times the fast network at 256×256 and 512×512 on the adapter wgstyle picks
//! (`WGPU_BACKEND` / `WGSTYLE_ADAPTER` select another): warm-up, then the median of
//! several runs, in ms and GFLOP/s from the network's FLOP count.
//!
//! `cargo bench --bench transform` (style from `$WGSTYLE_SHARED` or `../shared`).

mod common;

use std::time::Instant;

use wgstyle::Stylizer;

fn main() {
    let style = common::shared().join("weights/styles/scream");
    if !style.is_dir() {
        eprintln!(
            "skipped: {} not found (set WGSTYLE_SHARED)",
            style.display()
        );
        return;
    }
    let sizes = common::sizes("WGSTYLE_BENCH_SIZES", &[256, 512]);
    let reps = common::number("WGSTYLE_BENCH_REPS", 5);
    let ctx = common::context();
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
        let median = common::median(&mut times);
        let gflop = weights.arch.flops(s, s) / 1e9;
        println!(
            "transform {s}x{s}: median {median:.1} ms (min {:.1}, max {:.1}, n={reps}), {gflop:.2} GFLOP -> {:.2} GFLOP/s (end to end: upload, forward, readback)",
            times[0],
            times[times.len() - 1],
            gflop / (median / 1e3)
        );
    }
}
