//! Suite case: one Gatys iteration (VGG19 forward to relu5_1, backward to the image, content,
//! style and TV losses, Adam update) on VGG19 weights of the real shapes (pseudo-random, so no
//! download is needed).

use super::cases::{pseudo_random, Case};
use crate::error::Result;
use crate::gpu::context::Context;
use crate::gpu::tensor::Tensor;
use crate::nets::vgg::{Vgg, VggConv, VggWeights, VGG19_CONVS};
use crate::ops::optim::{adam_step, AdamParams};
use crate::ops::pool::Pooling;
use crate::optimize::{LossSpec, Objective};

/// VGG19 with pseudo-random weights (fan-in scaled) up to the default loss's deepest layer.
pub fn synthetic_vgg(ctx: &Context) -> Result<Vgg> {
    let convs = VGG19_CONVS
        .iter()
        .enumerate()
        .map(|(i, &(name, cin, cout))| VggConv {
            name: name.to_string(),
            cin,
            cout,
            kernel: pseudo_random(
                9 * cin * cout,
                200 + i as u64,
                (2.0 / (9 * cin) as f32).sqrt(),
            ),
            bias: pseudo_random(cout, 300 + i as u64, 0.1),
        })
        .collect();
    let last = LossSpec::default().deepest()?;
    Vgg::new(ctx, &VggWeights { convs }, last + 1, Pooling::Max)
}

/// Convolution FLOPs of one iteration at `s × s`: every layer up to the deepest one forward,
/// and again for its input gradient (2 per multiply-add).
pub fn iteration_flops(s: usize) -> f64 {
    let last = LossSpec::default()
        .deepest()
        .expect("default layers are valid");
    let mut hw = s;
    let mut total = 0.0;
    for (i, &(_, cin, cout)) in VGG19_CONVS.iter().enumerate().take(last + 1) {
        if matches!(i, 2 | 4 | 8 | 12) {
            hw /= 2;
        }
        total += 2.0 * 2.0 * (hw * hw * 9 * cin * cout) as f64;
    }
    total
}

/// The case's name at `s × s`.
pub fn name(s: usize) -> String {
    format!("network/gatys iteration @{s}x{s}")
}

/// The sizes of the Gatys cases.
pub fn sizes(quick: bool) -> &'static [usize] {
    if quick {
        &[64]
    } else {
        &[256, 512]
    }
}

/// One Adam iteration of the default Gatys objective at `s × s`.
pub fn iteration<'a>(ctx: &Context, vgg: &'a Vgg, s: usize) -> Result<Case<'a>> {
    let shape = [1, s, s, 3];
    let n = s * s * 3;
    let content = Tensor::upload(ctx, "bench.content", shape, &pseudo_random(n, 51, 120.0))?;
    let style = Tensor::upload(ctx, "bench.style", shape, &pseudo_random(n, 52, 120.0))?;
    let obj = Objective::new(ctx, vgg, &LossSpec::default(), &content, &[(style, 1.0)])?;
    let x = Tensor::persistent(ctx, "bench.x", shape, &pseudo_random(n, 53, 120.0))?;
    let m = Tensor::persistent(ctx, "bench.adam_m", shape, &vec![0.0; n])?;
    let v = Tensor::persistent(ctx, "bench.adam_v", shape, &vec![0.0; n])?;
    Ok(Case {
        name: name(s),
        kind: "network",
        flops: iteration_flops(s),
        // The image, its gradient and Adam's moments, read and written.
        bytes: 4.0 * 8.0 * n as f64,
        record: Box::new(move |rec| {
            let (g, scalars) = obj.record(rec, &x)?;
            adam_step(rec, &x, &g, &m, &v, AdamParams::default(), 1)?;
            Ok(vec![g, scalars])
        }),
    })
}
