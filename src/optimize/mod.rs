//! Optimisation style transfer (Gatys et al.): the loss of an image is computed with VGG19
//! forward and backward on the GPU, and Adam or L-BFGS update the image in place. Only the
//! loss scalars (and L-BFGS' dot products) are read back between iterations.
//!
//! Loss (as in `golden/README.md`), for the preprocessed BGR image `x`:
//! `content_weight · Σ_l mean((F_l(x) − F_l(c))²)`
//! `+ style_weight · Σ_l w_l · Σ (G_l(x) − A_l)²` with `G = FᵀF/(H·W·C)`, `A_l` the
//! (blended) style Gram matrices and `w_l = 1 / #style layers` unless given,
//! `+ tv_weight · tv(x)`.

pub mod adam;
pub mod image;
pub mod lbfgs;
pub mod linesearch;

use crate::error::{Error, Result};
use crate::gpu::context::Context;
use crate::gpu::record::Recorder;
use crate::gpu::tensor::Tensor;
use crate::nets::vgg::{layer_index, Vgg};
use crate::ops::gram::gram;
use crate::ops::loss::{
    combine, content_layer, style_layer, tv, FIRST_TERM_SLOT, SLOT_CONTENT, SLOT_STYLE, SLOT_TV,
};
use crate::ops::vecops::{axpy, scale};

/// Which layers and weights make up the loss.
#[derive(Clone, Debug)]
pub struct LossSpec {
    /// Content layers, e.g. `["relu4_2"]`.
    pub content_layers: Vec<String>,
    /// Style layers, e.g. `relu1_1 … relu5_1`.
    pub style_layers: Vec<String>,
    /// Weight of the content term.
    pub content_weight: f32,
    /// Weight of the style term.
    pub style_weight: f32,
    /// Per-style-layer weights (default: `1 / #layers` each).
    pub style_layer_weights: Option<Vec<f32>>,
    /// Weight of the total-variation term.
    pub tv_weight: f32,
}

impl Default for LossSpec {
    fn default() -> Self {
        LossSpec {
            content_layers: vec!["relu4_2".into()],
            style_layers: ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"]
                .map(String::from)
                .to_vec(),
            content_weight: 1.0,
            style_weight: 1e3,
            style_layer_weights: None,
            tv_weight: 0.0,
        }
    }
}

impl LossSpec {
    /// The deepest VGG layer (index) that the loss reads.
    pub fn deepest(&self) -> Result<usize> {
        let mut d = 0;
        for n in self.content_layers.iter().chain(&self.style_layers) {
            d = d.max(layer_index(n)?);
        }
        Ok(d)
    }
}

/// The loss of one evaluation (weights applied).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Losses {
    /// content + style + tv.
    pub total: f32,
    /// The content term.
    pub content: f32,
    /// The style term.
    pub style: f32,
    /// The TV term.
    pub tv: f32,
    /// Content terms per content layer, then style terms per style layer.
    pub terms: Vec<f32>,
}

/// The objective: targets computed once, then loss and gradient of any image.
///
/// Record on one thread at a time per [`Context`]: pooled tensors return to the pool when
/// dropped, before the recording that used them is submitted.
pub struct Objective<'a> {
    vgg: &'a Vgg,
    content: Vec<(usize, f32, Tensor)>,
    style: Vec<(usize, f32, Tensor)>,
    tv_weight: f32,
    last: usize,
}

impl<'a> Objective<'a> {
    /// Computes the targets: features of `content` and Gram matrices of `styles`
    /// (preprocessed images `[1, h, w, 3]`), blended with weights normalised to sum 1.
    pub fn new(
        ctx: &Context,
        vgg: &'a Vgg,
        spec: &LossSpec,
        content: &Tensor,
        styles: &[(Tensor, f32)],
    ) -> Result<Self> {
        let last = spec.deepest()?;
        if styles.is_empty() && !spec.style_layers.is_empty() {
            return Err(Error::InvalidInput(
                "style layers need a style image".into(),
            ));
        }
        let ns = spec.style_layers.len();
        let lw = spec
            .style_layer_weights
            .clone()
            .unwrap_or_else(|| vec![1.0 / ns.max(1) as f32; ns]);
        if lw.len() != ns {
            return Err(Error::InvalidInput(format!(
                "{} style layer weights for {ns} style layers",
                lw.len()
            )));
        }
        let blend_sum: f32 = styles.iter().map(|s| s.1).sum();
        let mut rec = Recorder::new(ctx, "targets");
        let acts = vgg.forward(&mut rec, content, last)?;
        let mut c = Vec::new();
        for n in &spec.content_layers {
            let i = layer_index(n)?;
            c.push((i, spec.content_weight, acts[i].clone()));
        }
        drop(acts);
        let mut grams: Vec<Option<Tensor>> = vec![None; ns];
        for (img, b) in styles {
            let acts = vgg.forward(&mut rec, img, last)?;
            for (k, n) in spec.style_layers.iter().enumerate() {
                let g = gram(&mut rec, &acts[layer_index(n)?])?;
                // (No uploads while recording: see `ops::vecops::fill`.)
                match &grams[k] {
                    Some(acc) => axpy(&mut rec, acc, b / blend_sum, &g)?,
                    None => grams[k] = Some(scale(&mut rec, &g, b / blend_sum)?),
                }
            }
        }
        let mut s = Vec::new();
        for (k, n) in spec.style_layers.iter().enumerate() {
            s.push((
                layer_index(n)?,
                spec.style_weight * lw[k],
                grams[k].take().unwrap(),
            ));
        }
        rec.submit()?;
        Ok(Objective {
            vgg,
            content: c,
            style: s,
            tv_weight: spec.tv_weight,
            last,
        })
    }

    /// The same style targets with the content targets of another image (preprocessed,
    /// `[1, h, w, 3]`), recorded into `rec`: in training every batch image is its own
    /// content target.
    pub fn with_content(&self, rec: &mut Recorder, content: &Tensor) -> Result<Objective<'a>> {
        let content_targets = match self.content.iter().map(|c| c.0).max() {
            Some(last) => {
                let acts = self.vgg.forward(rec, content, last)?;
                self.content
                    .iter()
                    .map(|(i, w, _)| (*i, *w, acts[*i].clone()))
                    .collect()
            }
            None => Vec::new(),
        };
        Ok(Objective {
            vgg: self.vgg,
            content: content_targets,
            style: self.style.clone(),
            tv_weight: self.tv_weight,
            last: self.last,
        })
    }

    /// Number of scalar slots [`Objective::record`] fills.
    pub fn n_scalars(&self) -> usize {
        FIRST_TERM_SLOT + self.content.len() + self.style.len()
    }

    /// Records loss and gradient of `x`; returns (dL/dx, scalar vector). Read the scalars
    /// with [`Objective::losses`].
    pub fn record(&self, rec: &mut Recorder, x: &Tensor) -> Result<(Tensor, Tensor)> {
        let scalars = crate::ops::reduce::scalars(rec, self.n_scalars())?;
        let acts = self.vgg.forward(rec, x, self.last)?;
        let mut grads: Vec<Option<Tensor>> = vec![None; acts.len()];
        let terms = self
            .content
            .iter()
            .map(|t| (t, true))
            .chain(self.style.iter().map(|t| (t, false)));
        for (slot, ((i, w, target), is_content)) in (FIRST_TERM_SLOT..).zip(terms) {
            let g = if is_content {
                content_layer(rec, &acts[*i], target, *w, &scalars, slot)?
            } else {
                style_layer(rec, &acts[*i], target, *w, &scalars, slot)?
            };
            grads[*i] = Some(crate::nets::vgg::add_opt(rec, grads[*i].take(), g)?);
        }
        let g = self.vgg.backward(rec, &acts, &grads)?;
        let g = tv(rec, x, self.tv_weight, &g, &scalars, SLOT_TV)?;
        combine(rec, &scalars, self.content.len(), self.style.len());
        Ok((g, scalars))
    }

    /// Decodes the scalar vector read back from the GPU.
    pub fn losses(&self, v: &[f32]) -> Losses {
        Losses {
            total: v[0],
            content: v[SLOT_CONTENT],
            style: v[SLOT_STYLE],
            tv: v[SLOT_TV],
            terms: v[FIRST_TERM_SLOT..].to_vec(),
        }
    }

    /// Loss and gradient of `x` (one submission, scalars read back).
    pub fn eval(&self, ctx: &Context, x: &Tensor) -> Result<(Losses, Tensor)> {
        let mut rec = Recorder::new(ctx, "objective");
        let (g, s) = self.record(&mut rec, x)?;
        let rb = rec.readback(&s);
        rec.submit()?;
        Ok((self.losses(&rb.read(ctx)?), g))
    }
}
