//! The fast path: a transform network applied to images.

use image::RgbImage;

use crate::error::{Error, Result};
use crate::gpu::context::Context;
use crate::gpu::record::Recorder;
use crate::gpu::tensor::Tensor;
use crate::image_tiling::{halo, Patches, BYTES_PER_PIXEL, PATCH_BYTES_PER_PIXEL};
use crate::nets::transformer::{TransformNet, TransformWeights};

/// A style network on the GPU, ready to stylize images of any size.
pub struct Stylizer {
    ctx: Context,
    net: TransformNet,
    budget: Option<u64>,
}

impl Stylizer {
    /// Uploads the network's weights to `ctx`'s device.
    pub fn new(ctx: &Context, weights: &TransformWeights) -> Result<Self> {
        Ok(Stylizer {
            ctx: ctx.clone(),
            net: TransformNet::new(ctx, weights)?,
            budget: None,
        })
    }

    /// Limits the GPU memory one pass may use (bytes); larger images are stylized in patches
    /// ([`crate::image_tiling`]) with exactly the same result. Without a budget only the
    /// adapter's buffer limits apply. The budget also limits what the context's buffer pool
    /// keeps ([`Context::set_pool_limit`]).
    pub fn set_memory_budget(&mut self, bytes: Option<u64>) {
        self.budget = bytes;
        // Patches of several sizes (the image's edges) would otherwise leave free buffers of
        // many size classes in the pool, beyond the budget.
        self.ctx.set_pool_limit(bytes);
    }

    /// The patch size (output pixels per side) that [`Stylizer::stylize`] uses for an
    /// `h × w` image: `None` when the image is processed in one pass.
    pub fn patch_size(&self, h: usize, w: usize) -> Result<Option<usize>> {
        let (hq, wq) = (h.div_ceil(4) * 4, w.div_ceil(4) * 4);
        let px = (hq * wq) as u64;
        let arch = self.net.arch();
        // The widest tensor: `width` (or 2·width) float channels at full resolution.
        let widest = px * 4 * arch.widest_channels() as u64;
        let budget = self.budget.unwrap_or(u64::MAX);
        let bpp = BYTES_PER_PIXEL * arch.memory_percent() / 100;
        let patch_bpp = PATCH_BYTES_PER_PIXEL * arch.memory_percent() / 100;
        if widest <= self.ctx.max_binding_bytes() && px * bpp <= budget {
            return Ok(None);
        }
        // A patch's window: the patch plus the halo, clipped to the image. It must fit the
        // budget, and its widest tensor one buffer binding.
        // The halo derived from the architecture, rounded up to a multiple of 16 (the
        // patches' windows also grow by rounding at each grid).
        let halo = halo(&self.net.arch()).next_multiple_of(16) as u64;
        let window = |t: u64| (t + 2 * halo).min(hq as u64) * (t + 2 * halo).min(wq as u64);
        let channel_bytes = 4 * arch.widest_channels() as u64;
        let fits = |t: u64| {
            window(t) * patch_bpp <= budget
                && window(t) * channel_bytes <= self.ctx.max_binding_bytes()
        };
        const MIN_PATCH: u64 = 16;
        if !fits(MIN_PATCH) {
            let limit = budget.min(self.ctx.max_binding_bytes());
            return Err(Error::TooLarge {
                what: format!("a {w}x{h} image even in {MIN_PATCH}-pixel tiles"),
                bytes: window(MIN_PATCH) * patch_bpp,
                limit,
            });
        }
        // The largest multiple of 16 that fits (patches are then balanced by [`Patches`]).
        let (mut lo, mut hi) = (1, hq.max(wq).div_ceil(16) as u64);
        while lo < hi {
            let mid = (lo + hi).div_ceil(2);
            if fits(16 * mid) {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        Ok(Some(16 * lo as usize))
    }

    /// How many `h × w` images one pass can take within the memory budget and the adapter's
    /// buffer-binding limit (at least 1: a single image too large goes in patches instead).
    pub fn images_per_pass(&self, h: usize, w: usize) -> usize {
        let px = (h.div_ceil(4) * 4 * w.div_ceil(4) * 4).max(1) as u64;
        let arch = self.net.arch();
        let widest = px * 4 * arch.widest_channels() as u64;
        let bpp = BYTES_PER_PIXEL * arch.memory_percent() / 100;
        let by_budget = self.budget.unwrap_or(u64::MAX) / (px * bpp);
        let by_binding = self.ctx.max_binding_bytes() / widest;
        by_budget.min(by_binding).clamp(1, usize::MAX as u64) as usize
    }

    /// Stylizes one image in patches of at most `patch × patch` output pixels (see
    /// [`crate::image_tiling`]); equal to the one-pass result up to float rounding.
    pub fn stylize_in_patches(&self, img: &RgbImage, patch: usize) -> Result<RgbImage> {
        if img.width() == 0 || img.height() == 0 {
            return Err(Error::InvalidInput("empty image".into()));
        }
        Patches::new(&self.net, img).run(patch)
    }

    /// The context this stylizer runs on.
    pub fn context(&self) -> &Context {
        &self.ctx
    }

    /// The network.
    pub fn net(&self) -> &TransformNet {
        &self.net
    }

    /// Runs the network on `n` images of `h × w` RGB pixels (0..255 floats, `[n, h, w, 3]`
    /// row-major) in one GPU submission and returns the raw output (`tanh(·)·150 + 127.5`, or
    /// the last convolution of pytorch/examples' network) before clipping, cropped to
    /// `[n, h, w, 3]`.
    pub fn stylize_raw(&self, input: &[f32], n: usize, h: usize, w: usize) -> Result<Vec<f32>> {
        if n == 0 || h == 0 || w == 0 {
            return Err(Error::InvalidInput(format!(
                "empty input: {n} images of {w}x{h}"
            )));
        }
        let x = Tensor::upload(&self.ctx, "input", [n, h, w, 3], input)?;
        let mut rec = Recorder::new(&self.ctx, "stylize");
        let y = self.net.forward(&mut rec, &x)?;
        let rb = rec.readback(&y);
        rec.submit()?;
        let [_, ho, wo, _] = rb.shape();
        let full = rb.read(&self.ctx)?;
        Ok(crop(&full, n, ho, wo, h, w))
    }

    /// Stylizes one image; the output has the input's size. Images too large for one pass
    /// (adapter limits or [`Stylizer::set_memory_budget`]) are done in patches.
    pub fn stylize(&self, img: &RgbImage) -> Result<RgbImage> {
        Ok(self.stylize_batch(std::slice::from_ref(img))?.remove(0))
    }

    /// Stylizes same-sized images in one GPU pass (or, when that would exceed the adapter's
    /// limits or the memory budget, one by one, in patches where needed).
    pub fn stylize_batch(&self, imgs: &[RgbImage]) -> Result<Vec<RgbImage>> {
        let Some(first) = imgs.first() else {
            return Ok(Vec::new());
        };
        let (w, h) = first.dimensions();
        if let Some(bad) = imgs.iter().find(|i| i.dimensions() != (w, h)) {
            return Err(Error::InvalidInput(format!(
                "a batch needs images of one size: {}x{} and {}x{}",
                w,
                h,
                bad.width(),
                bad.height()
            )));
        }
        let (w, h) = (w as usize, h as usize);
        // Too large for one pass (memory budget, or the widest tensor beyond one buffer
        // binding): in groups that fit; an image too large on its own goes in patches.
        let per_pass = self.images_per_pass(h, w);
        if imgs.len() > per_pass {
            let mut out = Vec::with_capacity(imgs.len());
            for group in imgs.chunks(per_pass) {
                out.extend(self.stylize_batch(group)?);
            }
            return Ok(out);
        }
        if let Some(t) = self.patch_size(h, w)? {
            return imgs.iter().map(|i| self.stylize_in_patches(i, t)).collect();
        }
        let mut input = Vec::with_capacity(imgs.len() * h * w * 3);
        for img in imgs {
            input.extend(img.as_raw().iter().map(|&v| v as f32));
        }
        let raw = self.stylize_raw(&input, imgs.len(), h, w)?;
        Ok(raw
            .chunks_exact(h * w * 3)
            .map(|c| RgbImage::from_raw(w as u32, h as u32, to_u8(c)).expect("sizes match"))
            .collect())
    }
}

/// Clips to 0..255 and truncates, as lengstrom's `save_img` does.
pub fn to_u8(v: &[f32]) -> Vec<u8> {
    v.iter().map(|&x| x.clamp(0.0, 255.0) as u8).collect()
}

/// The top-left `h × w` of each `[ho, wo, 3]` image.
pub(crate) fn crop(full: &[f32], n: usize, ho: usize, wo: usize, h: usize, w: usize) -> Vec<f32> {
    if ho == h && wo == w {
        return full.to_vec();
    }
    let mut out = Vec::with_capacity(n * h * w * 3);
    for i in 0..n {
        for y in 0..h {
            let row = (i * ho + y) * wo * 3;
            out.extend_from_slice(&full[row..row + w * 3]);
        }
    }
    out
}
