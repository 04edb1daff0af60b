//! Times `Trainer::step` (forward, VGG loss, backward, Adam) on synthetic photos: median of
//! several steps after one warm-up step, wall clock and the CPU time of the whole process
//! (lavapipe's threads included; steadier than wall clock on a shared machine). Needs
//! `../shared` (VGG-19 weights, the wave style).
//!
//! `cargo bench --bench train_step` (`WGSTYLE_BENCH_SIZES=64:2,256:4` for size:batch pairs,
//! `WGSTYLE_BENCH_REPS`).

mod common;

use std::time::Instant;

use wgstyle::nets::vgg::Vgg;
use wgstyle::ops::pool::Pooling;
use wgstyle::optimize::image::{resize_longest, upload_preprocessed};
use wgstyle::train::{TrainOptions, Trainer};

fn main() {
    let shared = common::shared();
    if !shared.join("weights/vgg19-tfjs").exists() {
        eprintln!("no {}: skipped", shared.display());
        return;
    }
    let sizes: Vec<(usize, usize)> = common::size_batches("WGSTYLE_BENCH_SIZES", "64:2,256:4");
    let reps = common::number("WGSTYLE_BENCH_REPS", 3);
    let ctx = common::context();
    let w = wgstyle::weights::load_vgg19(&shared.join("weights/vgg19-tfjs")).unwrap();
    let vgg = Vgg::new(&ctx, &w, 13, Pooling::Max).unwrap();
    for (size, batch) in sizes {
        let img = image::open(shared.join("images/style/wave.jpg"))
            .unwrap()
            .to_rgb8();
        let s = resize_longest(&img, size as u32);
        let st = upload_preprocessed(&ctx, "style", &s).unwrap();
        let opts = TrainOptions {
            image_size: size as u32,
            batch_size: batch,
            seed: 7,
            ..TrainOptions::default()
        };
        let mut trainer = Trainer::new(&ctx, &vgg, &st, opts).unwrap();
        let mut rng = 0x9e37_79b9_u32;
        let pixels: Vec<f32> = (0..batch * size * size * 3)
            .map(|_| {
                rng ^= rng << 13;
                rng ^= rng >> 17;
                rng ^= rng << 5;
                (rng % 256) as f32
            })
            .collect();
        trainer.step(&pixels).unwrap();
        let (mut t, mut c): (Vec<f64>, Vec<f64>) = (0..reps)
            .map(|_| {
                let (t0, c0) = (Instant::now(), cpu_seconds());
                trainer.step(&pixels).unwrap();
                (t0.elapsed().as_secs_f64() * 1e3, (cpu_seconds() - c0) * 1e3)
            })
            .unzip();
        let (med, cpu) = (common::median(&mut t), common::median(&mut c));
        println!(
            "train step {batch}x{size}x{size}: {med:9.1} ms wall, {cpu:9.1} ms CPU (medians of {reps})"
        );
    }
}

/// User + system CPU time of this process (all threads), from `/proc/self/stat`; 0 elsewhere.
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f[11].parse::<f64>().unwrap_or(0.0) + f[12].parse::<f64>().unwrap_or(0.0);
    ticks / 100.0 // USER_HZ
}
