//! Instance normalisation (`shaders/instance_norm.wgsl`).

use crate::error::{Error, Result};
use crate::gpu::kernels::{shader_file, Kernel, Shader};
use crate::gpu::record::{grid_1d, grid_elems, Recorder};
use crate::gpu::tensor::Tensor;

/// `shaders/instance_norm.wgsl`.
pub const INSTANCE_NORM: Shader = shader_file!("instance_norm.wgsl");

/// Pixels per partial-statistics chunk.
const CHUNK: usize = 1024;
/// Pixels per invocation of `apply4` (`APPLY_PIXELS` in the shader).
const APPLY_PIXELS: usize = 4;

#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct Params {
    pub(crate) n: u32,
    pub(crate) hw: u32,
    pub(crate) c: u32,
    pub(crate) chunks: u32,
    pub(crate) chunk_len: u32,
    pub(crate) flags: u32,
    pub(crate) eps: f32,
    pub(crate) total: u32,
}

const FLAG_RELU: u32 = 1;
const FLAG_RESIDUAL: u32 = 2;

fn params(x: &Tensor, eps: f32, flags: u32) -> Params {
    let [n, h, w, c] = x.shape();
    let hw = h * w;
    Params {
        n: n as u32,
        hw: hw as u32,
        c: c as u32,
        chunks: hw.div_ceil(CHUNK).max(1) as u32,
        chunk_len: CHUNK as u32,
        flags,
        eps,
        total: x.len() as u32,
    }
}

/// Per image, pixel chunk and channel: Welford moments `(count, mean, M2, 0)` over the
/// chunk's pixels, as a tensor `[n, chunks, c, 4]` (1024 pixels per chunk).
pub fn instance_norm_partials(rec: &mut Recorder, x: &Tensor) -> Result<Tensor> {
    let p = params(x, 0.0, 0);
    let shape = [p.n as usize, p.chunks as usize, p.c as usize, 4];
    let partials = Tensor::uninit(rec.context(), "instance_norm.partials", shape)?;
    if p.c.is_multiple_of(4) {
        // 4 channels per invocation, one invocation per chunk (vec4 loads).
        let count = p.n * p.chunks * (p.c / 4);
        rec.dispatch(
            &Kernel::new(INSTANCE_NORM, "stats_partial4"),
            &p,
            &[(1, x), (2, &partials)],
            grid_1d(count.div_ceil(64)),
        );
    } else {
        rec.dispatch(
            &Kernel::new(INSTANCE_NORM, "stats_partial"),
            &p,
            &[(1, x), (2, &partials)],
            [p.c.div_ceil(32), p.chunks, p.n],
        );
    }
    Ok(partials)
}

/// Per image and channel: `(mean, 1 / sqrt(var + eps))` over H×W, biased variance,
/// as a tensor `[n, 1, c, 2]`. Welford within chunks, Chan's merge across them.
pub fn instance_norm_stats(rec: &mut Recorder, x: &Tensor, eps: f32) -> Result<Tensor> {
    let p = params(x, eps, 0);
    let partials = instance_norm_partials(rec, x)?;
    let stats = Tensor::uninit(
        rec.context(),
        "instance_norm.stats",
        [p.n as usize, 1, p.c as usize, 2],
    )?;
    rec.dispatch(
        &Kernel::new(INSTANCE_NORM, "stats_finalize"),
        &p,
        &[(2, &partials), (3, &stats)],
        [(p.n * p.c).div_ceil(64), 1, 1],
    );
    Ok(stats)
}

/// Running moments of one channel (count, mean, sum of squared deviations), in f64.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Moments {
    /// Number of values.
    pub count: f64,
    /// Their mean.
    pub mean: f64,
    /// Sum of squared deviations from the mean.
    pub m2: f64,
}

impl Moments {
    /// Chan et al.'s parallel merge.
    pub fn merge(self, o: Moments) -> Moments {
        let n = self.count + o.count;
        if n == 0.0 {
            return self;
        }
        let d = o.mean - self.mean;
        Moments {
            count: n,
            mean: self.mean + d * o.count / n,
            m2: self.m2 + o.m2 + d * d * self.count * o.count / n,
        }
    }

    /// Adds the chunks of a downloaded [`instance_norm_partials`] tensor (one image) into
    /// `acc` (one entry per channel).
    pub fn accumulate(acc: &mut [Moments], partials: &[f32]) {
        let c = acc.len();
        for chunk in partials.chunks_exact(4 * c) {
            for (ch, m) in acc.iter_mut().enumerate() {
                let q = &chunk[4 * ch..4 * ch + 4];
                *m = m.merge(Moments {
                    count: q[0] as f64,
                    mean: q[1] as f64,
                    m2: q[2] as f64,
                });
            }
        }
    }
}

/// Uploads `(mean, 1 / sqrt(var + eps))` per channel of one image as a stats tensor
/// `[1, 1, c, 2]` for [`instance_norm_apply`].
pub fn stats_tensor(ctx: &crate::Context, moments: &[Moments], eps: f32) -> Result<Tensor> {
    let v: Vec<f32> = moments
        .iter()
        .flat_map(|m| {
            [
                m.mean as f32,
                (1.0 / (m.m2 / m.count.max(1.0) + eps as f64).sqrt()) as f32,
            ]
        })
        .collect();
    Tensor::persistent(ctx, "instance_norm.stats", [1, 1, moments.len(), 2], &v)
}

/// `y = scale * (x - mean) * inv_std + shift (+ residual) (relu)` with `stats` from
/// [`instance_norm_stats`].
pub fn instance_norm_apply(
    rec: &mut Recorder,
    x: &Tensor,
    stats: &Tensor,
    shift: &Tensor,
    scale: &Tensor,
    residual: Option<&Tensor>,
    relu: bool,
) -> Result<Tensor> {
    let c = x.shape()[3];
    if shift.len() != c || scale.len() != c {
        return Err(Error::InvalidInput(format!(
            "instance norm of {c} channels given shift {:?} and scale {:?}",
            shift.shape(),
            scale.shape()
        )));
    }
    if let Some(r) = residual {
        if r.shape() != x.shape() {
            return Err(Error::InvalidInput(format!(
                "residual {:?} does not match {:?}",
                r.shape(),
                x.shape()
            )));
        }
    }
    let flags = (relu as u32 * FLAG_RELU) | (residual.is_some() as u32 * FLAG_RESIDUAL);
    let p = params(x, 0.0, flags);
    let y = Tensor::uninit(rec.context(), "instance_norm", x.shape())?;
    // 4 channels and 4 pixels per invocation where the channels allow (vec4 loads, and the
    // statistics loaded once for 4 pixels).
    let (entry, groups) = if c.is_multiple_of(4) {
        let [n, h, w, _] = x.shape();
        let count = n * (h * w).div_ceil(APPLY_PIXELS) * (c / 4);
        ("apply4", grid_1d(count.div_ceil(64) as u32))
    } else {
        ("apply", grid_elems(x.len()))
    };
    rec.dispatch(
        &Kernel::new(INSTANCE_NORM, entry),
        &p,
        &[
            (1, x),
            (4, stats),
            (5, shift),
            (6, scale),
            (7, residual.unwrap_or(x)),
            (8, &y),
        ],
        groups,
    );
    Ok(y)
}

/// Instance normalisation with affine `scale`/`shift`, optional residual add and ReLU.
pub fn instance_norm(
    rec: &mut Recorder,
    x: &Tensor,
    shift: &Tensor,
    scale: &Tensor,
    residual: Option<&Tensor>,
    eps: f32,
    relu: bool,
) -> Result<Tensor> {
    let stats = instance_norm_stats(rec, x, eps)?;
    instance_norm_apply(rec, x, &stats, shift, scale, residual, relu)
}
