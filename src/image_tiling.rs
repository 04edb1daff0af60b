//! Image tiling: exact stylization of images larger than the GPU (or a memory budget) allows,
//! in patches ("tile" elsewhere in the crate means a kernel's workgroup tile).
//!
//! Instance normalisation needs statistics of the whole image at every layer, so patches
//! cannot simply be run through the network independently. Instead, for each of the 16
//! normalised layers in turn, every patch of that layer's output grid is computed (through
//! the earlier layers, on a window grown by the receptive field, with the statistics
//! already known) and its Welford moments are merged (f64) into the whole-image statistics.
//! A last pass computes the output patches. Every convolution of a window uses the image's
//! own zero padding at the image border and real neighbours inside, so the result equals
//! the one-pass result up to float rounding; GPU memory is bounded by the patch size.
//!
//! Recomputing every earlier layer for every statistics pass would cost about nine
//! forward passes. Instead the quarter-resolution activations between the residual blocks
//! (conv3's output, then each block's output: `4·width` channels at 1/16 of the pixels, 32
//! bytes per input pixel for lengstrom's network) are checkpointed in host memory as soon
//! as the statistics they depend on are known, and later passes start from the newest
//! checkpoint. Two checkpoints are alive at most (the one read and the one being written);
//! the whole run costs about three one-pass forwards.
//!
//! Reflection padding (pytorch/examples' network) is split the same way: a window that touches
//! the image's border reflects at that border exactly like the whole image, and an inner
//! window holds every input it reads, so it never reflects.
use image::RgbImage;

use crate::error::{Error, Result};
use crate::gpu::record::Recorder;
use crate::gpu::tensor::Tensor;
use crate::nets::transformer::{Arch, Family, Layer, LayerKind, TransformNet, Upsample};
use crate::ops::conv::{conv2d_window_with, out_len, Window};
use crate::ops::crop::crop;
use crate::ops::elementwise::output_tanh;
use crate::ops::norm::{instance_norm_apply, instance_norm_partials, stats_tensor, Moments};
use crate::ops::upsample::upsample_nearest;

/// A half-open window `[y0, y1) × [x0, x1)` of one layer's grid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Region {
    /// First row.
    pub y0: usize,
    /// One past the last row.
    pub y1: usize,
    /// First column.
    pub x0: usize,
    /// One past the last column.
    pub x1: usize,
}

impl Region {
    fn h(&self) -> usize {
        self.y1 - self.y0
    }
    fn w(&self) -> usize {
        self.x1 - self.x0
    }
}

/// Splits `[0, n)` into pieces of at most `t`, of nearly equal length.
fn split(n: usize, t: usize) -> Vec<(usize, usize)> {
    let k = n.div_ceil(t.max(1)).max(1);
    (0..k).map(|i| (i * n / k, (i + 1) * n / k)).collect()
}

/// [`halo`] of lengstrom's network rounded up to a multiple of 16 (the derived reach is 10:
/// the output pass's conv_out 9×9, up2 and up1 back to the quarter-resolution checkpoint).
pub const HALO: usize = 16;

/// The input rows a window `[a, b)` of layer `spec`'s output reads on its input grid of
/// `n_in` rows (clipped to the grid; with reflection padding the reflected rows lie inside).
fn in_span(arch: &Arch, spec: &Layer, n_in: usize, a: usize, b: usize) -> Result<(usize, usize)> {
    let k = spec.k;
    Ok(match spec.kind {
        LayerKind::Conv { stride } => {
            let (_, p) = out_len(n_in, k, stride, arch.padding(k))?;
            let lo = (a * stride).saturating_sub(p);
            let hi = ((b - 1) * stride + k).saturating_sub(p).min(n_in);
            (lo, hi)
        }
        LayerKind::Up => match arch.upsample {
            // y[2i + t] += x[i], t = 0..k.
            Upsample::Transpose => (
                (a + 1).saturating_sub(k).div_ceil(2),
                ((b - 1) / 2 + 1).min(n_in),
            ),
            // 3×3 conv (padding 1, zero or reflected) on the 2× grid, then back to the input.
            Upsample::Nearest => (
                a.saturating_sub(k / 2) / 2,
                ((b + k / 2).min(2 * n_in)).div_ceil(2),
            ),
        },
    })
}

/// Output grid (rows) of each of the 16 layers for an image of `n` rows.
fn grid_rows(n: usize) -> [usize; 16] {
    let (n2, n4) = (n.div_ceil(2), n.div_ceil(4));
    let mut g = [n4; 16];
    g[0] = n;
    g[1] = n2;
    g[13] = 2 * n4;
    g[14] = 4 * n4;
    g[15] = 4 * n4;
    g
}

/// Full-resolution pixels per pixel of layer `l`'s output grid.
fn grid_scale(l: usize) -> usize {
    match l {
        0 | 14 | 15 => 1,
        1 | 13 => 2,
        _ => 4,
    }
}

/// How far (in full-resolution pixels) any window that a [`Patches`] pass reads reaches
/// beyond its patch, derived from `arch`'s layers: every pass (a layer's statistics, a
/// checkpoint, the output) is traced back to its source (the image or the newest
/// checkpoint) for patches far from the border at every alignment, and the widest reach kept.
pub fn halo(arch: &Arch) -> usize {
    let layers = arch.layers();
    let n = 4096;
    let grids = grid_rows(n);
    let in_rows = |l: usize| if l == 0 { n } else { grids[l - 1] };
    // Source window of the activation that layer `l` reads on window [a, b) of its input.
    fn source(
        arch: &Arch,
        layers: &[Layer],
        in_rows: &dyn Fn(usize) -> usize,
        l: usize,
        a: usize,
        b: usize,
    ) -> (usize, usize, usize) {
        match l {
            0 => (a, b, 1),
            3 | 5 | 7 | 9 | 11 | 13 => (a, b, 4),
            _ => {
                let (s0, s1) =
                    in_span(arch, &layers[l - 1], in_rows(l - 1), a, b).expect("large grid");
                source(arch, layers, in_rows, l - 1, s0, s1)
            }
        }
    }
    let mut worst = 0;
    for offset in 0..8 {
        let (a, b) = (n / 8 + offset, n / 8 + offset + 8);
        let reach = |f: usize, (s0, s1, fs): (usize, usize, usize)| {
            (f * a)
                .saturating_sub(fs * s0)
                .max((fs * s1).saturating_sub(f * b))
        };
        for l in 0..16 {
            // Layer l's statistics (and, for l = 15, the output) on patch [a, b).
            let (s0, s1) = in_span(arch, &layers[l], in_rows(l), a, b).expect("large grid");
            worst = worst.max(reach(
                grid_scale(l),
                source(arch, &layers, &in_rows, l, s0, s1),
            ));
        }
        // A checkpoint: a residual block's two convolutions on the quarter grid.
        let (r0, r1) = in_span(arch, &layers[4], grids[3], a, b).expect("large grid");
        let (s0, s1) = in_span(arch, &layers[3], grids[2], r0, r1).expect("large grid");
        worst = worst.max(reach(4, (s0, s1, 4)));
    }
    worst
}

/// Estimated peak GPU bytes per pixel of a one-pass forward (a few 32-channel float tensors
/// at full resolution are alive at once; measured 364 at 200×150).
pub const BYTES_PER_PIXEL: u64 = 400;

/// Estimated peak GPU bytes per pixel of a patch's window (tensors are dropped as soon as
/// the next layer has read them; measured 192 at 200×150 in 64-pixel patches, incl. the
/// pool's size classes).
pub const PATCH_BYTES_PER_PIXEL: u64 = 256;

/// The forward pass of one image through `net`, patch by patch.
pub struct Patches<'a> {
    net: &'a TransformNet,
    img: &'a RgbImage,
    /// Output grid of each conv layer.
    grids: Vec<(usize, usize)>,
    stats: Vec<Option<Tensor>>,
    /// The newest quarter-resolution checkpoint.
    ckpt: Option<Checkpoint>,
}

/// A block's output on the whole quarter-resolution grid, in host memory (`[h4, w4, c]`).
struct Checkpoint {
    /// Which block's output: `usize::MAX` for conv3's (see [`Patches::block_out`]).
    block: usize,
    w: usize,
    c: usize,
    data: Vec<f32>,
}

impl Checkpoint {
    fn new(block: usize, (h, w): (usize, usize), c: usize) -> Result<Self> {
        let n = h * w * c;
        let mut data = Vec::new();
        data.try_reserve_exact(n).map_err(|_| Error::HostMemory {
            what: format!("a {w}x{h}x{c} activation checkpoint"),
            bytes: 4 * n as u64,
        })?;
        data.resize(n, 0.0);
        Ok(Checkpoint { block, w, c, data })
    }

    /// Row-major values of window `r`.
    fn window(&self, r: Region) -> Vec<f32> {
        let mut v = Vec::with_capacity(r.h() * r.w() * self.c);
        for y in r.y0..r.y1 {
            let row = (y * self.w + r.x0) * self.c;
            v.extend_from_slice(&self.data[row..row + r.w() * self.c]);
        }
        v
    }

    /// Stores window `r`'s values `v`.
    fn put(&mut self, r: Region, v: &[f32]) {
        let n = r.w() * self.c;
        for (i, y) in (r.y0..r.y1).enumerate() {
            let row = (y * self.w + r.x0) * self.c;
            self.data[row..row + n].copy_from_slice(&v[i * n..(i + 1) * n]);
        }
    }
}

impl<'a> Patches<'a> {
    /// Prepares to stylize `img`.
    pub fn new(net: &'a TransformNet, img: &'a RgbImage) -> Self {
        let (h, w) = (img.height() as usize, img.width() as usize);
        let (h2, w2) = (h.div_ceil(2), w.div_ceil(2));
        let (h4, w4) = (h2.div_ceil(2), w2.div_ceil(2));
        let mut grids = vec![(h, w), (h2, w2)];
        grids.extend(std::iter::repeat_n((h4, w4), 11));
        grids.extend([(2 * h4, 2 * w4), (4 * h4, 4 * w4), (4 * h4, 4 * w4)]);
        Patches {
            net,
            img,
            grids,
            stats: vec![None; 16],
            ckpt: None,
        }
    }

    fn in_grid(&self, l: usize) -> (usize, usize) {
        if l == 0 {
            (self.img.height() as usize, self.img.width() as usize)
        } else {
            self.grids[l - 1]
        }
    }

    /// The window of conv `l`'s input that output window `r` reads.
    fn in_region(&self, l: usize, r: Region) -> Result<Region> {
        let (spec, ..) = self.net.layer_weights(l);
        let (ih, iw) = self.in_grid(l);
        let arch = self.net.arch();
        let (y0, y1) = in_span(&arch, spec, ih, r.y0, r.y1)?;
        let (x0, x1) = in_span(&arch, spec, iw, r.x0, r.x1)?;
        Ok(Region { y0, y1, x0, x1 })
    }

    /// Raw (pre-norm) output of conv `l` on window `r`, given its input `x` on window `s`.
    fn conv_local(
        &self,
        rec: &mut Recorder,
        l: usize,
        x: &Tensor,
        s: Region,
        r: Region,
    ) -> Result<Tensor> {
        let (spec, kernel, ..) = self.net.layer_weights(l);
        let (ih, iw) = self.in_grid(l);
        let k = spec.k as i32;
        let arch = self.net.arch();
        let reflect = arch.family == Family::PytorchExamples;
        let bias = self.net.layer_bias(l);
        let g = match spec.kind {
            LayerKind::Conv { stride } => {
                let (_, pt) = out_len(ih, spec.k, stride, arch.padding(spec.k))?;
                let (_, pl) = out_len(iw, spec.k, stride, arch.padding(spec.k))?;
                Window {
                    stride,
                    pad_t: pt as i32 + s.y0 as i32 - (r.y0 * stride) as i32,
                    pad_l: pl as i32 + s.x0 as i32 - (r.x0 * stride) as i32,
                    out_hw: (r.h(), r.w()),
                    transposed: false,
                }
            }
            LayerKind::Up if self.net.arch().upsample == Upsample::Transpose => Window {
                stride: 2,
                pad_t: r.y0 as i32 - 2 * s.y0 as i32,
                pad_l: r.x0 as i32 - 2 * s.x0 as i32,
                out_hw: (r.h(), r.w()),
                transposed: true,
            },
            LayerKind::Up => {
                // Nearest ×2 of the window covers 2× grid rows from 2*s.y0; pad k/2.
                let u = upsample_nearest(rec, x, 2)?;
                let g = Window {
                    stride: 1,
                    pad_t: k / 2 + 2 * s.y0 as i32 - r.y0 as i32,
                    pad_l: k / 2 + 2 * s.x0 as i32 - r.x0 as i32,
                    out_hw: (r.h(), r.w()),
                    transposed: false,
                };
                return conv2d_window_with(rec, &u, kernel, bias, g, reflect);
            }
        };
        conv2d_window_with(rec, x, kernel, bias, g, reflect && !g.transposed)
    }

    fn norm(
        &self,
        rec: &mut Recorder,
        l: usize,
        x: &Tensor,
        residual: Option<&Tensor>,
        relu: bool,
    ) -> Result<Tensor> {
        let (_, _, shift, scale) = self.net.layer_weights(l);
        let stats = self.stats[l]
            .as_ref()
            .ok_or_else(|| Error::Gpu(format!("layer {l} statistics not computed")))?;
        instance_norm_apply(rec, x, stats, shift, scale, residual, relu)
    }

    fn image_window(&self, r: Region) -> Result<Tensor> {
        let mut v = Vec::with_capacity(r.h() * r.w() * 3);
        for y in r.y0..r.y1 {
            for x in r.x0..r.x1 {
                v.extend(
                    self.img
                        .get_pixel(x as u32, y as u32)
                        .0
                        .iter()
                        .map(|&c| c as f32),
                );
            }
        }
        Tensor::upload(self.net_ctx(), "patch.input", [1, r.h(), r.w(), 3], &v)
    }

    fn net_ctx(&self) -> &crate::Context {
        self.net.context()
    }

    /// Output of residual block `b` (0..5) on window `r`; `b == usize::MAX` is conv3's output.
    fn block_out(&self, rec: &mut Recorder, b: usize, r: Region) -> Result<Tensor> {
        if let Some(ck) = self.ckpt.as_ref().filter(|ck| ck.block == b) {
            let shape = [1, r.h(), r.w(), ck.c];
            return Tensor::upload(self.net_ctx(), "patch.checkpoint", shape, &ck.window(r));
        }
        if b == usize::MAX {
            let x = self.raw(rec, 2, r)?;
            return self.norm(rec, 2, &x, None, true);
        }
        let (la, lb) = (3 + 2 * b, 4 + 2 * b);
        let r1 = self.in_region(lb, r)?;
        let s = self.in_region(la, r1)?;
        let h = self.block_out(rec, b.wrapping_sub(1), s)?;
        let a = self.conv_local(rec, la, &h, s, r1)?;
        let a = self.norm(rec, la, &a, None, true)?;
        let c = self.conv_local(rec, lb, &a, r1, r)?;
        let res = crop(rec, &h, r.y0 - s.y0, r.x0 - s.x0, r.h(), r.w())?;
        self.norm(rec, lb, &c, Some(&res), false)
    }

    /// The activation that conv `l` reads, on window `s` of its input grid.
    fn act_in(&self, rec: &mut Recorder, l: usize, s: Region) -> Result<Tensor> {
        match l {
            0 => self.image_window(s),
            3 | 5 | 7 | 9 | 11 => self.block_out(rec, ((l - 3) / 2).wrapping_sub(1), s),
            13 => self.block_out(rec, 4, s),
            _ => {
                let x = self.raw(rec, l - 1, s)?;
                self.norm(rec, l - 1, &x, None, true)
            }
        }
    }

    /// Raw output of conv `l` on window `r`.
    fn raw(&self, rec: &mut Recorder, l: usize, r: Region) -> Result<Tensor> {
        let s = self.in_region(l, r)?;
        let x = self.act_in(rec, l, s)?;
        self.conv_local(rec, l, &x, s, r)
    }

    /// Computes block `b`'s output (`usize::MAX`: conv3's) over the whole quarter grid in
    /// patches, from the current checkpoint, and makes it the new checkpoint.
    async fn checkpoint(&mut self, b: usize, patch: usize) -> Result<()> {
        let ctx = self.net_ctx().clone();
        let grid = self.grids[2];
        let mut ck = Checkpoint::new(b, grid, self.net.layer_weights(2).0.cout)?;
        for r in self.patches(grid, self.patch_for(grid, patch)) {
            let mut rec = Recorder::new(&ctx, "image_tiling.checkpoint");
            let y = self.block_out(&mut rec, b, r)?;
            let rb = rec.readback(&y);
            rec.submit()?;
            ck.put(r, &rb.read_async(&ctx).await?);
        }
        self.ckpt = Some(ck);
        Ok(())
    }

    /// Lower-resolution grids get proportionally smaller patches.
    fn patch_for(&self, grid: (usize, usize), patch: usize) -> usize {
        (patch * grid.0).div_ceil(self.grids[15].0.max(1)).max(4)
    }

    fn patches(&self, grid: (usize, usize), t: usize) -> Vec<Region> {
        let mut v = Vec::new();
        for (y0, y1) in split(grid.0, t) {
            for (x0, x1) in split(grid.1, t) {
                v.push(Region { y0, y1, x0, x1 });
            }
        }
        v
    }

    /// Runs every pass with output patches of at most `patch × patch` pixels (full resolution;
    /// lower-resolution layers use proportionally smaller patches) and returns the stylized
    /// image (clipped and truncated to 8 bits), of the input's size.
    pub fn run(self, patch: usize) -> Result<RgbImage> {
        pollster::block_on(self.run_async(patch))
    }

    /// [`Patches::run`] without blocking waits (the web's path: readbacks are awaited).
    pub async fn run_async(mut self, patch: usize) -> Result<RgbImage> {
        let ctx = self.net_ctx().clone();
        let arch = self.net.arch();
        let eps = arch.eps;
        for l in (0..16).filter(|&l| arch.has_norm(l)) {
            let (h, w) = self.grids[l];
            let t = self.patch_for((h, w), patch);
            let mut acc = vec![Moments::default(); self.net.layer_weights(l).0.cout];
            for r in self.patches((h, w), t) {
                let mut rec = Recorder::new(&ctx, "image_tiling.stats");
                let raw = self.raw(&mut rec, l, r)?;
                let partials = instance_norm_partials(&mut rec, &raw)?;
                drop(raw);
                let rb = rec.readback(&partials);
                rec.submit()?;
                Moments::accumulate(&mut acc, &rb.read_async(&ctx).await?);
            }
            self.stats[l] = Some(stats_tensor(&ctx, &acc, eps)?);
            // conv3's output needs stats 0..=2; block b's output needs stats up to 4 + 2b.
            match l {
                2 => self.checkpoint(usize::MAX, patch).await?,
                4 | 6 | 8 | 10 | 12 => self.checkpoint((l - 4) / 2, patch).await?,
                _ => {}
            }
        }
        let (h, w) = (self.img.height() as usize, self.img.width() as usize);
        let mut out = RgbImage::new(w as u32, h as u32);
        for r in self.patches((h, w), patch) {
            let mut rec = Recorder::new(&ctx, "image_tiling.output");
            let x = self.raw(&mut rec, 15, r)?;
            let y = match arch.family {
                Family::Johnson => {
                    let x = self.norm(&mut rec, 15, &x, None, false)?;
                    output_tanh(&mut rec, &x, 150.0, 127.5)?
                }
                Family::PytorchExamples => x,
            };
            let rb = rec.readback(&y);
            rec.submit()?;
            let v = rb.read_async(&ctx).await?;
            for (i, px) in v.chunks_exact(3).enumerate() {
                let (yy, xx) = (r.y0 + i / r.w(), r.x0 + i % r.w());
                let p = [px[0], px[1], px[2]].map(|c| c.clamp(0.0, 255.0) as u8);
                out.put_pixel(xx as u32, yy as u32, image::Rgb(p));
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The derived halo of both networks: 10 full-resolution pixels. By hand for the output
    /// pass: conv_out reads 4 rows beyond its patch; up2's 3×3 on the 2× grid 1 more, i.e.
    /// ⌈5/2⌉ = 3 half-resolution rows (6 px); up1 likewise ⌈4/2⌉ = 2 quarter rows, plus a
    /// row lost to alignment: 10 px. lengstrom's old constant rounds it up.
    #[test]
    fn halo_is_derived_from_the_layers() {
        let j = halo(&Arch::LENGSTROM);
        let p = halo(&Arch::PYTORCH_EXAMPLES);
        eprintln!("halo: johnson {j}, pytorch-examples {p}");
        assert_eq!((j, p), (10, 10));
        assert!(j <= HALO);
        // Channels do not change how far the windows reach.
        let mut narrow = Arch::PYTORCH_EXAMPLES;
        narrow.width = 4;
        assert_eq!(halo(&narrow), p);
    }
}
