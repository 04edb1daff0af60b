//! Loss, its components and dL/dx against TensorFlow autodiff (`golden/grad/`), for max and
//! average pooling: scalars within 1e-4 relative, gradients within 1e-3 relative L2.

mod common;

use std::collections::HashMap;

use common::{ctx, read_safetensors};
use wgstyle::nets::vgg::{Vgg, VggWeights};
use wgstyle::ops::pool::Pooling;
use wgstyle::optimize::{LossSpec, Objective};
use wgstyle::Tensor;

type Golden = HashMap<String, (Vec<usize>, Vec<f32>)>;

fn rel_l2(a: &[f32], b: &[f32]) -> f64 {
    let num: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| (*x as f64 - *y as f64).powi(2))
        .sum();
    let den: f64 = b.iter().map(|y| (*y as f64).powi(2)).sum();
    (num / den).sqrt()
}

fn rel(a: f32, b: f32) -> f64 {
    (a as f64 - b as f64).abs() / (b as f64).abs().max(1e-30)
}

fn img(g: &Golden, key: &str) -> Tensor {
    Tensor::upload(ctx(), key, [1, 64, 64, 3], &g[key].1).unwrap()
}

fn check(file: &str, pooling: Pooling) {
    let shared = shared_or_skip!();
    let w: VggWeights = wgstyle::weights::load_vgg19(&shared.join("weights/vgg19-tfjs")).unwrap();
    let g = read_safetensors(&shared.join("golden/grad").join(file));
    let ctx = ctx();
    let vgg = Vgg::new(ctx, &w, 13, pooling).unwrap();
    let (x, c, s) = (img(&g, "x"), img(&g, "content"), img(&g, "style"));
    let sc = |k: &str| g[k].1[0];

    // Full loss (cw 1, sw 1e3, 0.2 per style layer).
    let spec = LossSpec::default();
    let obj = Objective::new(ctx, &vgg, &spec, &c, &[(s.clone(), 1.0)]).unwrap();
    let (l, grad) = obj.eval(ctx, &x).unwrap();
    let grad = ctx.download(&grad).unwrap();
    let mut report = vec![];
    for (name, got, want, tol) in [
        ("L", l.total, sc("scalar_L"), 1e-4),
        ("content_term", l.content, sc("scalar_content_term"), 1e-4),
        ("style_term", l.style, sc("scalar_style_term"), 1e-4),
    ] {
        report.push(format!("{name} {:.2e}", rel(got, want)));
        assert!(rel(got, want) <= tol, "{file} {name}: {got} vs {want}");
    }
    for (k, layer) in ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"]
        .iter()
        .enumerate()
    {
        let got = l.terms[1 + k] / 1e3;
        let want = sc(&format!("scalar_style_unweighted_{layer}"));
        report.push(format!("{layer} {:.2e}", rel(got, want)));
        assert!(rel(got, want) <= 1e-4, "{file} {layer}: {got} vs {want}");
    }
    let e = rel_l2(&grad, &g["grad_L"].1);
    report.push(format!("grad_L {e:.2e}"));
    assert!(e <= 1e-3, "{file} grad_L rel-L2 {e:.2e}");

    // Content alone, and TV alone (content weight 0), for the parts hidden in L.
    let content_only = LossSpec {
        style_layers: vec![],
        ..LossSpec::default()
    };
    let obj = Objective::new(ctx, &vgg, &content_only, &c, &[]).unwrap();
    let (l, grad) = obj.eval(ctx, &x).unwrap();
    let want = sc("scalar_content_unweighted");
    assert!(
        rel(l.content, want) <= 1e-4,
        "{file} content {} vs {want}",
        l.content
    );
    let e = rel_l2(
        &ctx.download(&grad).unwrap(),
        &g["grad_content_unweighted"].1,
    );
    report.push(format!("grad_content {e:.2e}"));
    assert!(e <= 1e-3, "{file} grad_content rel-L2 {e:.2e}");

    let tv_only = LossSpec {
        content_weight: 0.0,
        tv_weight: 1.0,
        ..content_only
    };
    let obj = Objective::new(ctx, &vgg, &tv_only, &c, &[]).unwrap();
    let (l, grad) = obj.eval(ctx, &x).unwrap();
    assert!(
        rel(l.tv, sc("scalar_tv")) <= 1e-4,
        "{file} tv {} vs {}",
        l.tv,
        sc("scalar_tv")
    );
    let e = rel_l2(&ctx.download(&grad).unwrap(), &g["grad_tv"].1);
    report.push(format!("grad_tv {e:.2e}"));
    assert!(e <= 1e-3, "{file} grad_tv rel-L2 {e:.2e}");
    eprintln!("{file}: {}", report.join(", "));
}

#[test]
#[cfg_attr(shared_absent, ignore = "needs ../shared (or $WGSTYLE_SHARED)")]
fn loss_and_gradient_match_tensorflow_max_pooling() {
    check("grad_maxpool_64x64.safetensors", Pooling::Max);
}

#[test]
#[cfg_attr(shared_absent, ignore = "needs ../shared (or $WGSTYLE_SHARED)")]
fn loss_and_gradient_match_tensorflow_avg_pooling() {
    check("grad_avgpool_64x64.safetensors", Pooling::Avg);
}
