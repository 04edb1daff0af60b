//! Gradients of the convolutions of [`conv`](crate::ops::conv) (`shaders/conv2d_grad.wgsl`).
//!
//! Weight gradients are an implicit GEMM with split-K partial sums, added up by a second
//! kernel in a fixed order (deterministic). The partial sums come from one of two kernels
//! ([`WeightGradKernel`]): workgroup-shared tiles (GPUs) or a direct kernel without
//! workgroup memory (CPU drivers). Input gradients reuse the
//! forward convolution kernel through [`conv2d_window`] with the kernel's channel axes
//! exchanged ([`swap_io`]):
//! - a convolution's input gradient is a transposed convolution of `dy` with the same
//!   stride and top/left padding (so TensorFlow's asymmetric "SAME" split is exact);
//! - a transposed convolution's input gradient is a strided convolution of `dy`.

use crate::error::{Error, Result};
use crate::gpu::kernels::{shader_file, Kernel, Shader};
use crate::gpu::record::{grid_elems, Recorder};
use crate::gpu::tensor::Tensor;
use crate::ops::conv::{conv2d_window, out_len, DriverClass, Padding, Window};

/// `shaders/conv2d_grad.wgsl`.
pub const CONV2D_GRAD: Shader = shader_file!("conv2d_grad.wgsl");

/// Rows (kernel taps × input channels) and columns (output channels) of a GEMM tile.
const TILE: usize = 64;
/// Pixels per reduction step; split chunks are multiples of it.
const BK: usize = 16;
/// Fewest pixels a split is given (shorter reductions are not split further).
const MIN_CHUNK: usize = 256;
/// Most splits of one reduction.
const MAX_SPLITS: usize = 64;

#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct Params {
    pub(crate) n: u32,
    pub(crate) h: u32,
    pub(crate) w: u32,
    pub(crate) cin: u32,
    pub(crate) ho: u32,
    pub(crate) wo: u32,
    pub(crate) cout: u32,
    pub(crate) kh: u32,
    pub(crate) kw: u32,
    pub(crate) stride: u32,
    pub(crate) pad_t: i32,
    pub(crate) pad_l: i32,
    pub(crate) chunk: u32,
    pub(crate) splits: u32,
    pub(crate) flags: u32,
    pub(crate) _p: u32,
}

const FLAG_SWAP: u32 = 1;

/// Rows (kernel taps × input channels) per workgroup of the direct kernel (`DWG * DRM`).
const DIRECT_ROWS: usize = 256;
/// Output channels per workgroup of the direct kernel (`DRN`).
const DIRECT_COLS: usize = 8;

/// The kernel that computes a weight gradient's split-K partial sums.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WeightGradKernel {
    /// 64×64 tiles staged in workgroup memory, a 4×4 block per invocation (GPUs).
    Tiled,
    /// No workgroup memory and no barriers: each invocation accumulates 4 rows (tap, input
    /// channel) × 8 output channels in registers straight from global memory, with the
    /// output-gradient loads shared by the whole workgroup (CPU drivers such as lavapipe).
    Direct,
}

impl WeightGradKernel {
    /// Every variant.
    pub const VARIANTS: [WeightGradKernel; 2] = [WeightGradKernel::Tiled, WeightGradKernel::Direct];

    /// The entry point in `shaders/conv2d_grad.wgsl`.
    pub fn entry(self) -> &'static str {
        match self {
            WeightGradKernel::Tiled => "weight_partial",
            WeightGradKernel::Direct => "weight_partial_direct",
        }
    }

    /// The default for an adapter of this class: direct on CPU drivers, tiled on GPUs (as
    /// [`ConvAlgo::default_for`](crate::ops::conv::ConvAlgo::default_for)).
    pub fn default_for(class: DriverClass) -> WeightGradKernel {
        match class {
            DriverClass::Cpu => WeightGradKernel::Direct,
            DriverClass::Gpu => WeightGradKernel::Tiled,
        }
    }

    pub(crate) fn default_on(rec: &Recorder) -> WeightGradKernel {
        Self::default_for(DriverClass::of(rec.context()))
    }

    /// Workgroups of the partial-sum kernel for `rows × cols` with `splits` splits.
    fn groups(self, rows: usize, cols: usize, splits: usize) -> [u32; 3] {
        match self {
            // x = channel tiles, y = row tiles; direct: the other way round.
            WeightGradKernel::Tiled => [
                cols.div_ceil(TILE) as u32,
                rows.div_ceil(TILE) as u32,
                splits as u32,
            ],
            WeightGradKernel::Direct => [
                rows.div_ceil(DIRECT_ROWS) as u32,
                cols.div_ceil(DIRECT_COLS) as u32,
                splits as u32,
            ],
        }
    }
}

fn padding_of(n: usize, k: usize, stride: usize, padding: Padding) -> Result<(usize, usize)> {
    if let Padding::Reflect(_) = padding {
        return Err(Error::InvalidInput(
            "gradients of reflection-padded convolutions are not implemented".into(),
        ));
    }
    out_len(n, k, stride, padding)
}

fn check_dy(what: &str, dy: &Tensor, want: [usize; 4]) -> Result<()> {
    if dy.shape() != want {
        return Err(Error::InvalidInput(format!(
            "{what}: gradient {:?} does not match the output shape {want:?}",
            dy.shape()
        )));
    }
    Ok(())
}

/// Gradient of the kernel of `conv2d(x, w)` (stride `stride`, zero `padding`, no bias) given
/// the output gradient `dy`: `dW[ky, kx, ci, co] = Σ x[n, iy, ix, ci] · dy[n, oy, ox, co]`
/// with `iy = oy·stride − pad_t + ky`. `k` is the kernel's (rows, columns); the result is
/// `[kh, kw, cin, cout]` like the kernel.
pub fn conv2d_weight_grad(
    rec: &mut Recorder,
    x: &Tensor,
    dy: &Tensor,
    k: (usize, usize),
    stride: usize,
    padding: Padding,
) -> Result<Tensor> {
    let kernel = WeightGradKernel::default_on(rec);
    conv2d_weight_grad_with(rec, x, dy, k, stride, padding, kernel)
}

/// [`conv2d_weight_grad`] with an explicit partial-sum kernel.
pub fn conv2d_weight_grad_with(
    rec: &mut Recorder,
    x: &Tensor,
    dy: &Tensor,
    k: (usize, usize),
    stride: usize,
    padding: Padding,
    kernel: WeightGradKernel,
) -> Result<Tensor> {
    let [n, h, w, _] = x.shape();
    let (ho, pad_t) = padding_of(h, k.0, stride, padding)?;
    let (wo, pad_l) = padding_of(w, k.1, stride, padding)?;
    check_dy("conv2d_weight_grad", dy, [n, ho, wo, dy.shape()[3]])?;
    let pad = (pad_t as i32, pad_l as i32);
    weight_grad(rec, x, dy, k, stride, pad, false, kernel)
}

/// Gradient of the kernel of `conv2d_transpose(x, w, stride, out_hw)` (see
/// [`conv2d_transpose`](crate::ops::conv::conv2d_transpose)) given `dy` `[n, out_h, out_w,
/// cout]`: `dW[ky, kx, ci, co] = Σ x[n, i, j, ci] · dy[n, s·i + ky − pad_t, s·j + kx − pad_l,
/// co]`. The result is `[kh, kw, cin, cout]` like the kernel.
pub fn conv2d_transpose_weight_grad(
    rec: &mut Recorder,
    x: &Tensor,
    dy: &Tensor,
    k: (usize, usize),
    stride: usize,
) -> Result<Tensor> {
    let kernel = WeightGradKernel::default_on(rec);
    conv2d_transpose_weight_grad_with(rec, x, dy, k, stride, kernel)
}

/// [`conv2d_transpose_weight_grad`] with an explicit partial-sum kernel.
pub fn conv2d_transpose_weight_grad_with(
    rec: &mut Recorder,
    x: &Tensor,
    dy: &Tensor,
    k: (usize, usize),
    stride: usize,
    kernel: WeightGradKernel,
) -> Result<Tensor> {
    let [n, h, w, _] = x.shape();
    let [dn, oh, ow, _] = dy.shape();
    if dn != n {
        return Err(Error::InvalidInput(format!(
            "conv2d_transpose_weight_grad: batch of {:?} and {:?} differ",
            x.shape(),
            dy.shape()
        )));
    }
    let (pad_t, pad_l) = (
        transpose_pad(h, k.0, stride, oh),
        transpose_pad(w, k.1, stride, ow),
    );
    // dW[ky, kx, ci, co] is the weight gradient of the strided convolution that reads dy at
    // (s·i − pad_t + ky) for each pixel i of x: x plays that convolution's output gradient.
    weight_grad(rec, dy, x, k, stride, (pad_t, pad_l), true, kernel)
}

/// Top (or left) padding of a transposed convolution from `n` to `out` pixels, as
/// [`conv2d_transpose`](crate::ops::conv::conv2d_transpose) computes it.
fn transpose_pad(n: usize, k: usize, stride: usize, out: usize) -> i32 {
    ((n.saturating_sub(1) * stride + k).saturating_sub(out) / 2) as i32
}

/// The split-K GEMM: `G[ky, kx, cg, cb] = Σ g[n, oy·s − pt + ky, ox·s − pl + kx, cg] ·
/// b[n, oy, ox, cb]`, written as `[kh, kw, cg, cb]`, or `[kh, kw, cb, cg]` when `swap`.
#[allow(clippy::too_many_arguments)]
fn weight_grad(
    rec: &mut Recorder,
    g: &Tensor,
    b: &Tensor,
    k: (usize, usize),
    stride: usize,
    pad: (i32, i32),
    swap: bool,
    kernel: WeightGradKernel,
) -> Result<Tensor> {
    let [n, h, w, cg] = g.shape();
    let [bn, ho, wo, cb] = b.shape();
    if bn != n || stride == 0 {
        return Err(Error::InvalidInput(format!(
            "weight gradient of {:?} and {:?} with stride {stride}",
            g.shape(),
            b.shape()
        )));
    }
    let rows = k.0 * k.1 * cg;
    let r_count = n * ho * wo;
    let mut splits = r_count.div_ceil(MIN_CHUNK).clamp(1, MAX_SPLITS);
    // Keep the scratch within one binding.
    let max_splits = (rec.context().max_binding_bytes() / (4 * (rows * cb).max(1)) as u64) as usize;
    splits = splits.min(max_splits.max(1));
    let chunk = r_count.div_ceil(splits).next_multiple_of(BK).max(BK);
    let splits = r_count.div_ceil(chunk).max(1);
    let p = Params {
        n: n as u32,
        h: h as u32,
        w: w as u32,
        cin: cg as u32,
        ho: ho as u32,
        wo: wo as u32,
        cout: cb as u32,
        kh: k.0 as u32,
        kw: k.1 as u32,
        stride: stride as u32,
        pad_t: pad.0,
        pad_l: pad.1,
        chunk: chunk as u32,
        splits: splits as u32,
        flags: if swap { FLAG_SWAP } else { 0 },
        _p: 0,
    };
    let ctx = rec.context().clone();
    let partials = Tensor::uninit(&ctx, "conv2d_grad.partials", [splits, 1, rows, cb])?;
    let out_shape = if swap {
        [k.0, k.1, cb, cg]
    } else {
        [k.0, k.1, cg, cb]
    };
    let dw = Tensor::uninit(&ctx, "conv2d_grad.dw", out_shape)?;
    rec.dispatch(
        &Kernel::new(CONV2D_GRAD, kernel.entry()),
        &p,
        &[(1, g), (2, b), (3, &partials)],
        kernel.groups(rows, cb, splits),
    );
    rec.dispatch(
        &Kernel::new(CONV2D_GRAD, "weight_reduce"),
        &p,
        &[(3, &partials), (4, &dw)],
        grid_elems(rows * cb),
    );
    Ok(dw)
}

/// The kernel with its channel axes exchanged: `[kh, kw, cin, cout]` → `[kh, kw, cout, cin]`.
pub fn swap_io(rec: &mut Recorder, w: &Tensor) -> Result<Tensor> {
    let [kh, kw, cin, cout] = w.shape();
    let p = Params {
        cin: cin as u32,
        cout: cout as u32,
        kh: kh as u32,
        kw: kw as u32,
        ..bytemuck::Zeroable::zeroed()
    };
    let y = Tensor::uninit(rec.context(), "conv2d_grad.swap_io", [kh, kw, cout, cin])?;
    rec.dispatch(
        &Kernel::new(CONV2D_GRAD, "swap_io"),
        &p,
        &[(1, w), (4, &y)],
        grid_elems(w.len()),
    );
    Ok(y)
}

/// Gradient of the input of `conv2d(x, w)` (stride, zero `padding`, no bias) given `dy`;
/// `x_hw` is the input's (rows, columns). Returns `[n, x_h, x_w, cin]`.
pub fn conv2d_input_grad(
    rec: &mut Recorder,
    dy: &Tensor,
    w: &Tensor,
    x_hw: (usize, usize),
    stride: usize,
    padding: Padding,
) -> Result<Tensor> {
    let [kh, kw, _, cout] = w.shape();
    let (ho, pad_t) = padding_of(x_hw.0, kh, stride, padding)?;
    let (wo, pad_l) = padding_of(x_hw.1, kw, stride, padding)?;
    check_dy("conv2d_input_grad", dy, [dy.shape()[0], ho, wo, cout])?;
    let wt = swap_io(rec, w)?;
    // dx[iy] = Σ dy[oy] · w[ky] over oy·s − pad_t + ky = iy: a transposed convolution.
    conv2d_window(
        rec,
        dy,
        &wt,
        Window {
            stride,
            pad_t: pad_t as i32,
            pad_l: pad_l as i32,
            out_hw: x_hw,
            transposed: true,
        },
    )
}

/// Gradient of the input of `conv2d_transpose(x, w, stride, out_hw)` given `dy` `[n, out_h,
/// out_w, cout]`; `x_hw` is the input's (rows, columns). Returns `[n, x_h, x_w, cin]`.
pub fn conv2d_transpose_input_grad(
    rec: &mut Recorder,
    dy: &Tensor,
    w: &Tensor,
    x_hw: (usize, usize),
    stride: usize,
) -> Result<Tensor> {
    let [kh, kw, _, cout] = w.shape();
    let [_, oh, ow, dc] = dy.shape();
    if dc != cout {
        return Err(Error::InvalidInput(format!(
            "conv2d_transpose_input_grad: gradient {:?} for kernel {:?}",
            dy.shape(),
            w.shape()
        )));
    }
    let wt = swap_io(rec, w)?;
    // dx[i] = Σ dy[s·i + ky − pad_t] · w[ky]: a strided convolution.
    conv2d_window(
        rec,
        dy,
        &wt,
        Window {
            stride,
            pad_t: transpose_pad(x_hw.0, kh, stride, oh),
            pad_l: transpose_pad(x_hw.1, kw, stride, ow),
            out_hw: x_hw,
            transposed: false,
        },
    )
}
