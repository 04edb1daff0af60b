//! Times each distinct convolution of the fast network (at 256×256 by default) with every
//! kernel variant the adapter runs (f32, f16 and cooperative-matrix ones): wall clock around
//! submit-and-wait, median of several runs.
//!
//! `cargo bench --bench conv` (`WGSTYLE_BENCH_SIZE=512` for another size;
//! `WGSTYLE_BENCH_NET=vgg` for VGG19's convolutions at the sizes they run at when the
//! content image is `WGSTYLE_BENCH_SIZE` pixels, down to conv5_1 at 1/16 of it;
//! `WGSTYLE_BENCH_VARIANTS=w32,winograd` for only the variants whose names contain one of
//! the comma-separated words).

mod common;

use wgstyle::gpu::record::Recorder;
use wgstyle::ops::conv::{conv2d_with, Conv2d, ConvAlgo, Padding};
use wgstyle::Tensor;

/// Whether `WGSTYLE_BENCH_VARIANTS` (comma-separated words) selects the variant `name`.
fn wanted(name: &str) -> bool {
    std::env::var("WGSTYLE_BENCH_VARIANTS")
        .map(|v| v.split(',').any(|w| name.contains(w.trim())))
        .unwrap_or(true)
}

fn main() {
    let s = common::number("WGSTYLE_BENCH_SIZE", 256);
    let reps = common::number("WGSTYLE_BENCH_REPS", 3);
    let ctx = common::context();
    // (name, input size, k, stride, cin, cout)
    let cases = if std::env::var("WGSTYLE_BENCH_NET").as_deref() == Ok("vgg") {
        vec![
            ("vgg conv1_2 64->64", s, 3, 1, 64, 64),
            ("vgg conv2_2 128->128", s / 2, 3, 1, 128, 128),
            ("vgg conv3_2 256->256", s / 4, 3, 1, 256, 256),
            ("vgg conv4_1 256->512", s / 8, 3, 1, 256, 512),
            ("vgg conv4_2 512->512", s / 8, 3, 1, 512, 512),
            ("vgg conv5_1 512->512", s / 16, 3, 1, 512, 512),
        ]
    } else {
        vec![
            ("conv1 9x9 3->32", s, 9, 1, 3, 32),
            ("conv2 3x3/2 32->64", s, 3, 2, 32, 64),
            ("conv3 3x3/2 64->128", s / 2, 3, 2, 64, 128),
            ("res 3x3 128->128", s / 4, 3, 1, 128, 128),
            ("conv_out 9x9 32->3", s, 9, 1, 32, 3),
        ]
    };
    for (name, hw, k, stride, cin, cout) in cases {
        let x = Tensor::upload(&ctx, "x", [1, hw, hw, cin], &vec![0.5; hw * hw * cin]).unwrap();
        let w = Tensor::upload(
            &ctx,
            "w",
            [k, k, cin, cout],
            &vec![0.01; k * k * cin * cout],
        )
        .unwrap();
        let out = hw.div_ceil(stride);
        let flop = 2.0 * (out * out * k * k * cin * cout) as f64;
        for tile in ConvAlgo::all() {
            if !tile.usable(&ctx) || !wanted(&tile.to_string()) {
                continue;
            }
            let p = Conv2d {
                stride,
                padding: Padding::Same,
                relu: false,
            };
            let run = || {
                let mut rec = Recorder::new(&ctx, "bench");
                let y = conv2d_with(&mut rec, &x, &w, None, p, tile).unwrap();
                rec.submit().unwrap();
                ctx.wait().unwrap();
                drop(y);
            };
            run();
            let med = common::median_ms(reps, run);
            println!(
                "{name:<22} {hw}x{hw} {:<20} {med:8.1} ms  {:6.2} GFLOP/s",
                tile.to_string(),
                flop / med / 1e6
            );
        }
    }
}
