//! Times the weight gradient of each distinct convolution of the fast network with both
//! partial-sum kernels ([`WeightGradKernel`]): wall clock around submit-and-wait, median of
//! several runs (the split-K reduce included; one warm-up run at the first size only).
//!
//! `cargo bench --bench conv_grad` (`WGSTYLE_BENCH_SIZES=64:2,256:4` for size:batch pairs,
//! `WGSTYLE_BENCH_REPS`, `WGSTYLE_BENCH_KERNELS=direct` or `tiled` for one kernel).

mod common;

use wgstyle::gpu::record::Recorder;
use wgstyle::ops::conv::Padding;
use wgstyle::ops::conv_grad::{
    conv2d_transpose_weight_grad_with, conv2d_weight_grad_with, WeightGradKernel,
};
use wgstyle::Tensor;

fn main() {
    let sizes: Vec<(usize, usize)> = common::size_batches("WGSTYLE_BENCH_SIZES", "64:2,256:4");
    let reps = common::number("WGSTYLE_BENCH_REPS", 3);
    let only = std::env::var("WGSTYLE_BENCH_KERNELS").unwrap_or_default();
    let kernels: Vec<WeightGradKernel> = WeightGradKernel::VARIANTS
        .into_iter()
        .filter(|k| only.is_empty() || format!("{k:?}").eq_ignore_ascii_case(&only))
        .collect();
    let ctx = common::context();
    // Pipelines are compiled once per kernel: only the first size needs a warm-up run.
    for (i, (s, n)) in sizes.into_iter().enumerate() {
        // (name, input size, k, stride, cin, cout, transposed)
        let cases = [
            ("conv1 9x9 3->32", s, 9, 1, 3, 32, false),
            ("conv2 3x3/2 32->64", s, 3, 2, 32, 64, false),
            ("conv3 3x3/2 64->128", s / 2, 3, 2, 64, 128, false),
            ("res 3x3 128->128", s / 4, 3, 1, 128, 128, false),
            ("up1 3x3/2T 128->64", s / 4, 3, 2, 128, 64, true),
            ("up2 3x3/2T 64->32", s / 2, 3, 2, 64, 32, true),
            ("conv_out 9x9 32->3", s, 9, 1, 32, 3, false),
        ];
        for (name, hw, k, stride, cin, cout, transposed) in cases {
            let out = if transposed {
                hw * stride
            } else {
                hw.div_ceil(stride)
            };
            let x =
                Tensor::upload(&ctx, "x", [n, hw, hw, cin], &vec![0.5; n * hw * hw * cin]).unwrap();
            let dy = Tensor::upload(
                &ctx,
                "dy",
                [n, out, out, cout],
                &vec![0.01; n * out * out * cout],
            )
            .unwrap();
            // Multiply-adds of the GEMM: one per (pixel of the smaller side, tap, ci, co).
            let px = if transposed { hw * hw } else { out * out };
            let flop = 2.0 * (n * px * k * k * cin * cout) as f64;
            for &kernel in &kernels {
                let run = || {
                    let mut rec = Recorder::new(&ctx, "bench");
                    let dw = if transposed {
                        conv2d_transpose_weight_grad_with(&mut rec, &x, &dy, (k, k), stride, kernel)
                    } else {
                        let pad = Padding::Same;
                        conv2d_weight_grad_with(&mut rec, &x, &dy, (k, k), stride, pad, kernel)
                    }
                    .unwrap();
                    rec.submit().unwrap();
                    ctx.wait().unwrap();
                    drop(dw);
                };
                if i == 0 {
                    run();
                }
                let med = common::median_ms(reps, run);
                println!(
                    "{name:<20} {n}x{hw}x{hw} {kernel:<6?}: {med:9.1} ms  {:6.2} GFLOP/s",
                    flop / med / 1e6
                );
            }
        }
    }
}
