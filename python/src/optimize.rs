//! `wgstyle.optimize`: Gatys-style optimisation with the CLI's options as keyword arguments.

use std::path::PathBuf;

use numpy::PyArray3;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use wgstyle::nets::vgg::Vgg;
use wgstyle::ops::conv::ConvPrecision;
use wgstyle::ops::optim::AdamParams;
use wgstyle::ops::pool::Pooling;
use wgstyle::optimize::image::{
    deprocess_f32, original_colors, preprocess, resize_longest, to_rgb8, upload_preprocessed,
};
use wgstyle::optimize::lbfgs::LbfgsParams;
use wgstyle::optimize::{adam::adam, lbfgs::lbfgs, LossSpec, Losses, Objective};
use wgstyle::{Error, Tensor};

use crate::errors::{to_py, weights_err, InputError};
use crate::stylizer::{context, pixels, to_array};

/// The options checked before any GPU work.
struct Checked {
    pooling: Pooling,
    adam: bool,
    blend: Vec<f32>,
}

#[allow(clippy::too_many_arguments)]
fn check(
    n_styles: usize,
    iterations: usize,
    optimizer: &str,
    pooling: &str,
    init: &str,
    size: u32,
    style_scale: f32,
    style_blend_weights: Option<Vec<f32>>,
) -> PyResult<Checked> {
    let bad = |m: String| Err(InputError::new_err(m));
    let pooling = match pooling {
        "max" => Pooling::Max,
        "avg" => Pooling::Avg,
        p => return bad(format!("pooling '{p}': expected 'max' or 'avg'")),
    };
    if optimizer != "lbfgs" && optimizer != "adam" {
        return bad(format!(
            "optimizer '{optimizer}': expected 'lbfgs' or 'adam'"
        ));
    }
    if init != "content" && init != "random" {
        return bad(format!("init '{init}': expected 'content' or 'random'"));
    }
    if n_styles == 0 {
        return bad("at least one style image is needed".into());
    }
    if iterations == 0 || size < 16 {
        return bad(format!(
            "iterations must be positive and size at least 16 (got {iterations}, {size})"
        ));
    }
    if !(style_scale.is_finite() && style_scale > 0.0) {
        return bad(format!("style_scale must be positive, got {style_scale}"));
    }
    let blend = match style_blend_weights {
        None => vec![1.0; n_styles],
        Some(b) if b.len() == n_styles && b.iter().all(|w| w.is_finite() && *w >= 0.0) => b,
        Some(b) => {
            return bad(format!(
            "style_blend_weights needs one non-negative weight per style image ({} for {n_styles})",
            b.len()
        ))
        }
    };
    Ok(Checked {
        pooling,
        adam: optimizer == "adam",
        blend,
    })
}

/// Gaussian noise σ = 1e-3, as the CLI's `--init random` (same generator, same seed).
fn noise(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut u = || {
        s ^= s >> 12;
        s ^= s << 25;
        s ^= s >> 27;
        ((s.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    };
    (0..n)
        .map(|_| ((-2.0 * u().ln()).sqrt() * (std::f64::consts::TAU * u()).cos() * 1e-3) as f32)
        .collect()
}

/// Optimises an image to match `content`'s VGG19 features and `styles`' Gram matrices
/// (the CLI's `wgstyle optimize`); returns the result as an `H×W×3` `uint8` array.
#[pyfunction]
#[pyo3(signature = (content, styles, *, iterations=500, optimizer="lbfgs", learning_rate=2.0,
    lbfgs_history=10, content_weight=1.0, style_weight=1e-3, tv_weight=1e-4,
    content_layers=None, style_layers=None, style_blend_weights=None, style_scale=1.0,
    init="content", seed=0, pooling="max", original_colors=false, size=512, vgg=None,
    weights_dir=None, adapter=None, backend=None, callback=None))]
#[allow(clippy::too_many_arguments)]
pub fn optimize<'py>(
    py: Python<'py>,
    content: Bound<'py, PyAny>,
    styles: Vec<Bound<'py, PyAny>>,
    iterations: usize,
    optimizer: &str,
    learning_rate: f32,
    lbfgs_history: usize,
    content_weight: f32,
    style_weight: f32,
    tv_weight: f32,
    content_layers: Option<Vec<String>>,
    style_layers: Option<Vec<String>>,
    style_blend_weights: Option<Vec<f32>>,
    style_scale: f32,
    init: &str,
    seed: u64,
    pooling: &str,
    original_colors: bool,
    size: u32,
    vgg: Option<PathBuf>,
    weights_dir: Option<PathBuf>,
    adapter: Option<String>,
    backend: Option<String>,
    callback: Option<Py<PyAny>>,
) -> PyResult<Bound<'py, PyArray3<u8>>> {
    let c = check(
        styles.len(),
        iterations,
        optimizer,
        pooling,
        init,
        size,
        style_scale,
        style_blend_weights,
    )?;
    let content = resize_longest(&pixels(&content)?.rgb, size);
    let style_size = ((size as f32 * style_scale).round() as u32).max(16);
    let style_imgs = styles
        .iter()
        .map(|s| Ok(resize_longest(&pixels(s)?.rgb, style_size)))
        .collect::<PyResult<Vec<_>>>()?;
    let spec = LossSpec {
        content_layers: content_layers.unwrap_or_else(|| vec!["relu4_2".into()]),
        style_layers: style_layers.unwrap_or_else(|| {
            ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"]
                .map(String::from)
                .to_vec()
        }),
        content_weight,
        style_weight,
        style_layer_weights: None,
        tv_weight,
    };
    let deepest = spec.deepest().map_err(to_py)?;
    let vgg_path = wgstyle::weights::vgg::find_vgg19(vgg.as_deref(), weights_dir.as_deref())
        .map_err(weights_err)?;
    let (w, h) = content.dimensions();
    let init_x = match init {
        "random" => noise((w * h * 3) as usize, seed),
        _ => preprocess(&content),
    };
    // A Python exception raised by the callback, re-raised after the run stops.
    let mut cb_err: Option<PyErr> = None;
    let result = py.detach(|| -> Result<Vec<f32>, Error> {
        let weights = wgstyle::weights::load_vgg19(&vgg_path)?;
        let ctx = context(adapter, backend.as_deref(), ConvPrecision::F32)?;
        let net = Vgg::new(&ctx, &weights, deepest + 1, c.pooling)?;
        let ct = upload_preprocessed(&ctx, "content", &content)?;
        let mut st = Vec::new();
        for (img, b) in style_imgs.iter().zip(&c.blend) {
            st.push((upload_preprocessed(&ctx, "style", img)?, *b));
        }
        let obj = Objective::new(&ctx, &net, &spec, &ct, &st)?;
        let x = Tensor::upload(&ctx, "x", [1, h as usize, w as usize, 3], &init_x)?;
        let mut step = |i: usize, l: &Losses| -> wgstyle::Result<bool> {
            let Some(cb) = callback.as_ref() else {
                return Ok(true);
            };
            Python::attach(|py| {
                let call = || -> PyResult<bool> {
                    let d = PyDict::new(py);
                    d.set_item("total", l.total)?;
                    d.set_item("content", l.content)?;
                    d.set_item("style", l.style)?;
                    d.set_item("tv", l.tv)?;
                    let r = cb.call1(py, (i, d))?;
                    // `False` stops the run; anything else (None included) goes on.
                    Ok(!r.bind(py).is(pyo3::types::PyBool::new(py, false)))
                };
                call().or_else(|e| {
                    cb_err = Some(e);
                    Ok(false)
                })
            })
        };
        if c.adam {
            let p = AdamParams {
                lr: learning_rate,
                ..AdamParams::default()
            };
            adam(&ctx, &obj, &x, p, iterations, &mut step)?;
        } else {
            let p = LbfgsParams {
                history: lbfgs_history,
                ..LbfgsParams::default()
            };
            lbfgs(&ctx, &obj, &x, p, iterations, &mut step)?;
        }
        ctx.download(&x)
    });
    if let Some(e) = cb_err {
        return Err(e);
    }
    let mut rgb = deprocess_f32(&result.map_err(to_py)?);
    if original_colors {
        rgb = original_colors_of(&rgb, &content);
    }
    to_array(py, &to_rgb8(&rgb, w, h), None)
}

fn original_colors_of(rgb: &[f32], content: &image::RgbImage) -> Vec<f32> {
    original_colors(rgb, &deprocess_f32(&preprocess(content)))
}
