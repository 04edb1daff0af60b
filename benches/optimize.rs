//! Times one optimisation iteration (VGG19 forward to relu5_1, backward, Adam step; the
//! default loss: content relu4_2, style relu1_1..relu5_1, TV) at 256² and 512² on the
//! adapter wgstyle picks, and reports iterations per second and peak pooled GPU memory.
//! Anchor: Johnson et al. report 500 iterations at 512² in 54.85 s on a Titan X (Maxwell),
//! i.e. 9.1 it/s.
//!
//! `cargo bench --bench optimize` (VGG19 from `$WGSTYLE_SHARED` or `../shared`;
//! `WGSTYLE_BENCH_SIZES=256,512`, `WGSTYLE_BENCH_REPS=3`).

mod common;

use std::time::Instant;

use wgstyle::gpu::record::Recorder;
use wgstyle::nets::vgg::Vgg;
use wgstyle::ops::optim::{adam_step, AdamParams};
use wgstyle::ops::pool::Pooling;
use wgstyle::optimize::{LossSpec, Objective};
use wgstyle::Tensor;

fn main() {
    let shared = common::shared();
    let vgg_dir = shared.join("weights/vgg19-tfjs");
    if !vgg_dir.is_dir() {
        eprintln!(
            "skipped: {} not found (set WGSTYLE_SHARED)",
            vgg_dir.display()
        );
        return;
    }
    let sizes = common::sizes("WGSTYLE_BENCH_SIZES", &[256, 512]);
    let reps = common::number("WGSTYLE_BENCH_REPS", 3);
    let ctx = common::context();
    let w = wgstyle::weights::load_vgg19(&vgg_dir).expect("vgg19");
    let spec = LossSpec {
        tv_weight: 1e-4,
        ..LossSpec::default()
    };
    let vgg = Vgg::new(&ctx, &w, spec.deepest().unwrap() + 1, Pooling::Max).expect("upload");
    for s in sizes {
        let shape = [1, s, s, 3];
        let n = s * s * 3;
        let img: Vec<f32> = (0..n).map(|i| ((i * 7919) % 255) as f32 - 120.0).collect();
        let content = Tensor::upload(&ctx, "content", shape, &img).unwrap();
        let style = Tensor::upload(
            &ctx,
            "style",
            shape,
            &img.iter().rev().cloned().collect::<Vec<_>>(),
        )
        .unwrap();
        let obj = Objective::new(&ctx, &vgg, &spec, &content, &[(style, 1.0)]).expect("targets");
        let x = Tensor::upload(&ctx, "x", shape, &img).unwrap();
        let zeros = vec![0.0; n];
        let m = Tensor::upload(&ctx, "m", shape, &zeros).unwrap();
        let v = Tensor::upload(&ctx, "v", shape, &zeros).unwrap();
        ctx.reset_peak_memory();
        let mut times = Vec::new();
        for t in 0..=reps {
            let t0 = Instant::now();
            let mut rec = Recorder::new(&ctx, "bench");
            let (g, sc) = obj.record(&mut rec, &x).unwrap();
            adam_step(
                &mut rec,
                &x,
                &g,
                &m,
                &v,
                AdamParams::default(),
                t as u32 + 1,
            )
            .unwrap();
            let rb = rec.readback(&sc);
            rec.submit().unwrap();
            let l = rb.read(&ctx).unwrap();
            if t > 0 {
                times.push(t0.elapsed().as_secs_f64());
            }
            assert!(l[0].is_finite());
        }
        times.sort_by(f64::total_cmp);
        let med = times[times.len() / 2];
        let peak = ctx.pool_stats().peak_bytes_in_use;
        println!(
            "{s}x{s}: {:.1} ms/iteration (median of {reps}), {:.3} it/s, 500 iterations ≈ {:.0} s, peak pooled GPU memory {:.1} MiB",
            med * 1e3,
            1.0 / med,
            500.0 * med,
            peak as f64 / (1 << 20) as f64
        );
    }
}
