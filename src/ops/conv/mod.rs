//! 2-D convolution and transposed convolution: the public ops, and the family's parts.
//!
//! - [`algo`]: the kernel variants ([`ConvAlgo`]), their names, limits and pipelines;
//! - [`select`]: the built-in choice per driver class ([`DriverClass`]);
//! - `dispatch`: recording one convolution of a variant; `params`: its uniform block;
//! - [`winograd`]: the Winograd variants' transforms and products;
//! - [`tune`]: the autotune (timing, cache file) and [`precision`], kept per context in
//!   [`Context::state`](crate::gpu::context::Context::state);
//! - [`shape`]: the shape of a convolution as the autotune keys it.

pub mod algo;
pub(crate) mod dispatch;
pub(crate) mod params;
pub mod precision;
pub mod select;
pub mod shaders;
pub mod shape;
pub mod tune;
pub mod winograd;

pub use algo::{ConvAlgo, CoopSize, DIRECT_PIXELS};
pub use dispatch::DirectBody;
pub use precision::ConvPrecision;
pub use select::DriverClass;
pub use shape::{ConvMode, ConvShape, MAX_PROXY_PIXELS};
pub use tune::{AutotuneStats, TuningStart, AUTO_DECIDER};

use crate::error::{Error, Result};
use crate::gpu::record::Recorder;
use crate::gpu::tensor::Tensor;
use dispatch::run;
use params::Params;

/// Padding of a convolution.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Padding {
    /// TensorFlow "SAME": output `ceil(n / stride)`, zero padding split with the odd
    /// pixel after (so 3×3 stride 2 on an even size pads 0 before and 1 after).
    Same,
    /// No padding: output `(n - k) / stride + 1`.
    Valid,
    /// Zero padding of `p` on every side: output `(n + 2p - k) / stride + 1`.
    Zero(usize),
    /// Reflection padding of `p` on every side (PyTorch `ReflectionPad2d`).
    Reflect(usize),
}

/// Parameters of [`conv2d`].
#[derive(Clone, Copy, Debug)]
pub struct Conv2d {
    /// Stride in both directions.
    pub stride: usize,
    /// Padding mode.
    pub padding: Padding,
    /// Apply ReLU to the output.
    pub relu: bool,
}

/// Output length and padding before, for one spatial dimension.
pub fn out_len(n: usize, k: usize, stride: usize, padding: Padding) -> Result<(usize, usize)> {
    let bad = || {
        Error::InvalidInput(format!(
            "convolution of size {n} with kernel {k}, stride {stride}, {padding:?} is empty"
        ))
    };
    match padding {
        Padding::Same => {
            let out = n.div_ceil(stride);
            let total = ((out.saturating_sub(1)) * stride + k).saturating_sub(n);
            Ok((out, total / 2))
        }
        Padding::Valid => {
            if n < k {
                return Err(bad());
            }
            Ok(((n - k) / stride + 1, 0))
        }
        Padding::Zero(p) | Padding::Reflect(p) => {
            if n + 2 * p < k || (matches!(padding, Padding::Reflect(_)) && p >= n) {
                return Err(bad());
            }
            Ok(((n + 2 * p - k) / stride + 1, p))
        }
    }
}

fn check_kernel(x: &Tensor, w: &Tensor) -> Result<[usize; 4]> {
    let [kh, kw, cin, cout] = w.shape();
    if cin != x.shape()[3] {
        return Err(Error::InvalidInput(format!(
            "kernel {:?} expects {cin} input channels, input {:?} has {}",
            w.shape(),
            x.shape(),
            x.shape()[3]
        )));
    }
    Ok([kh, kw, cin, cout])
}

/// `y = conv(x, w) (+ bias) (relu)`, x `[n, h, w, cin]`, w `[kh, kw, cin, cout]` (HWIO).
pub fn conv2d(
    rec: &mut Recorder,
    x: &Tensor,
    w: &Tensor,
    bias: Option<&Tensor>,
    p: Conv2d,
) -> Result<Tensor> {
    let params = conv_params(x, w, bias, p)?;
    let algo = tune::algo_for(rec.context(), &params);
    run(rec, x, w, bias, params, algo, "conv2d")
}

/// [`conv2d`] with an explicit kernel variant (one that does not
/// [apply](ConvAlgo::applies) runs as [`ConvAlgo::default_on`]).
pub fn conv2d_with(
    rec: &mut Recorder,
    x: &Tensor,
    w: &Tensor,
    bias: Option<&Tensor>,
    p: Conv2d,
    algo: ConvAlgo,
) -> Result<Tensor> {
    let params = conv_params(x, w, bias, p)?;
    run(rec, x, w, bias, params, algo, "conv2d")
}

fn conv_params(x: &Tensor, w: &Tensor, bias: Option<&Tensor>, p: Conv2d) -> Result<Params> {
    let [_, h, wd, _] = x.shape();
    let [kh, kw, _, _] = check_kernel(x, w)?;
    let (ho, pad_t) = out_len(h, kh, p.stride, p.padding)?;
    let (wo, pad_l) = out_len(wd, kw, p.stride, p.padding)?;
    let mode = if matches!(p.padding, Padding::Reflect(_)) {
        ConvMode::Reflect
    } else {
        ConvMode::Zero
    };
    let shape = shape_of(x, w, (ho, wo), p.stride, mode);
    let flags = Params::flags(bias.is_some(), p.relu);
    Ok(Params::new(shape, (pad_t as i32, pad_l as i32), flags))
}

/// The shape of a convolution of `x` with `w` (checked by [`check_kernel`]) into `out_hw`.
fn shape_of(
    x: &Tensor,
    w: &Tensor,
    out_hw: (usize, usize),
    stride: usize,
    mode: ConvMode,
) -> ConvShape {
    let [n, h, wd, cin] = x.shape();
    let [kh, kw, _, cout] = w.shape();
    ConvShape {
        n: n as u32,
        h: h as u32,
        w: wd as u32,
        cin: cin as u32,
        ho: out_hw.0 as u32,
        wo: out_hw.1 as u32,
        cout: cout as u32,
        kh: kh as u32,
        kw: kw as u32,
        stride: stride as u32,
        mode,
    }
}

/// TensorFlow `conv2d_transpose` with "SAME" padding and output size `(ho, wo)`:
/// `y[s*i + a - pad, s*j + b - pad, co] += x[i, j, ci] * w[a, b, ci, co]`.
/// `w` is `[kh, kw, cin, cout]` (note: TensorFlow stores it as `[kh, kw, cout, cin]`).
pub fn conv2d_transpose(
    rec: &mut Recorder,
    x: &Tensor,
    w: &Tensor,
    stride: usize,
    out_hw: (usize, usize),
    relu: bool,
) -> Result<Tensor> {
    let params = transpose_params(x, w, stride, out_hw, relu)?;
    let algo = tune::algo_for(rec.context(), &params);
    run(rec, x, w, None, params, algo, "conv2d_transpose")
}

/// [`conv2d_transpose`] with an explicit kernel variant.
pub fn conv2d_transpose_with(
    rec: &mut Recorder,
    x: &Tensor,
    w: &Tensor,
    stride: usize,
    out_hw: (usize, usize),
    relu: bool,
    algo: ConvAlgo,
) -> Result<Tensor> {
    let params = transpose_params(x, w, stride, out_hw, relu)?;
    run(rec, x, w, None, params, algo, "conv2d_transpose")
}

fn transpose_params(
    x: &Tensor,
    w: &Tensor,
    stride: usize,
    out_hw: (usize, usize),
    relu: bool,
) -> Result<Params> {
    let [_, h, wd, _] = x.shape();
    let [kh, kw, _, _] = check_kernel(x, w)?;
    let pad = |n_in: usize, k: usize, out: usize| {
        (((n_in.saturating_sub(1)) * stride + k).saturating_sub(out)) / 2
    };
    let shape = shape_of(x, w, out_hw, stride, ConvMode::Transposed);
    let pads = (pad(h, kh, out_hw.0) as i32, pad(wd, kw, out_hw.1) as i32);
    Ok(Params::new(shape, pads, Params::flags(false, relu)))
}

/// Explicit geometry of a zero-padded convolution, for computing a window of a larger
/// output from a window of its input (tiling): output `out_hw`, input row of output row `oy`
/// and tap `ky` is `oy * stride - pad_t + ky` (or, `transposed`, the row `i` with
/// `i * stride = oy + pad_t - ky`). Input outside the given tensor reads as zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    /// Stride.
    pub stride: usize,
    /// Top padding (may be negative: the window starts inside the input).
    pub pad_t: i32,
    /// Left padding.
    pub pad_l: i32,
    /// Output (rows, columns).
    pub out_hw: (usize, usize),
    /// Transposed convolution.
    pub transposed: bool,
}

/// A convolution with explicit [`Window`] geometry (no bias, no ReLU).
pub fn conv2d_window(rec: &mut Recorder, x: &Tensor, w: &Tensor, g: Window) -> Result<Tensor> {
    conv2d_window_with(rec, x, w, None, g, false)
}

/// [`conv2d_window`] with a `bias`, and with `reflect`, input outside the given tensor
/// reflected (PyTorch `ReflectionPad2d`) instead of zero: a window that touches the image's
/// border reflects exactly like the whole image (tiling of reflect-padded networks).
pub fn conv2d_window_with(
    rec: &mut Recorder,
    x: &Tensor,
    w: &Tensor,
    bias: Option<&Tensor>,
    g: Window,
    reflect: bool,
) -> Result<Tensor> {
    if reflect && g.transposed {
        return Err(Error::InvalidInput(
            "a transposed convolution has no reflection padding".into(),
        ));
    }
    check_kernel(x, w)?;
    let mode = if g.transposed {
        ConvMode::Transposed
    } else if reflect {
        ConvMode::Reflect
    } else {
        ConvMode::Zero
    };
    let shape = shape_of(x, w, g.out_hw, g.stride, mode);
    let params = Params::new(
        shape,
        (g.pad_t, g.pad_l),
        Params::flags(bias.is_some(), false),
    );
    let algo = tune::algo_for(rec.context(), &params);
    run(rec, x, w, bias, params, algo, "conv2d_window")
}
