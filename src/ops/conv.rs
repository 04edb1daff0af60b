//! 2-D convolution and transposed convolution (`shaders/conv2d.wgsl`).

use crate::error::{Error, Result};
use crate::gpu::kernels::{Kernel, CONV2D};
use crate::gpu::record::Recorder;
use crate::gpu::tensor::Tensor;

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

#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    n: u32,
    h: u32,
    w: u32,
    cin: u32,
    ho: u32,
    wo: u32,
    cout: u32,
    kh: u32,
    kw: u32,
    stride: u32,
    pad_t: i32,
    pad_l: i32,
    mode: u32,
    flags: u32,
    _p: [u32; 2],
}

const MODE_ZERO: u32 = 0;
const MODE_REFLECT: u32 = 1;
const MODE_TRANSPOSED: u32 = 2;

/// A tile configuration of the convolution kernel: `WG_X × WG_Y` invocations with a 4×4
/// register block each, K steps of `bk`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tile {
    /// Invocations along output channels (tile width `4 * wg_x`).
    pub wg_x: u32,
    /// Invocations along output pixels (tile height `4 * wg_y`).
    pub wg_y: u32,
    /// Depth of one K step.
    pub bk: u32,
}

impl Tile {
    /// The tile configurations wgstyle uses.
    pub const VARIANTS: [Tile; 3] = [
        Tile {
            wg_x: 1,
            wg_y: 64,
            bk: 16,
        },
        Tile {
            wg_x: 8,
            wg_y: 16,
            bk: 16,
        },
        Tile {
            wg_x: 16,
            wg_y: 16,
            bk: 16,
        },
    ];

    /// The default tile for `cout` output channels: narrow tiles for narrow outputs.
    pub fn for_cout(cout: usize) -> Tile {
        match cout {
            0..=4 => Self::VARIANTS[0],
            5..=32 => Self::VARIANTS[1],
            _ => Self::VARIANTS[2],
        }
    }

    fn kernel(self) -> Kernel {
        Kernel {
            shader: CONV2D,
            entry: "main",
            constants: vec![
                ("WG_X", self.wg_x as f64),
                ("WG_Y", self.wg_y as f64),
                ("BK", self.bk as f64),
            ],
        }
    }
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
    conv2d_tiled(rec, x, w, bias, p, Tile::for_cout(w.shape()[3]))
}

/// [`conv2d`] with an explicit tile configuration.
pub fn conv2d_tiled(
    rec: &mut Recorder,
    x: &Tensor,
    w: &Tensor,
    bias: Option<&Tensor>,
    p: Conv2d,
    tile: Tile,
) -> Result<Tensor> {
    let [n, h, wd, _] = x.shape();
    let [kh, kw, cin, cout] = check_kernel(x, w)?;
    let (ho, pad_t) = out_len(h, kh, p.stride, p.padding)?;
    let (wo, pad_l) = out_len(wd, kw, p.stride, p.padding)?;
    let mode = if matches!(p.padding, Padding::Reflect(_)) {
        MODE_REFLECT
    } else {
        MODE_ZERO
    };
    let params = Params {
        n: n as u32,
        h: h as u32,
        w: wd as u32,
        cin: cin as u32,
        ho: ho as u32,
        wo: wo as u32,
        cout: cout as u32,
        kh: kh as u32,
        kw: kw as u32,
        stride: p.stride as u32,
        pad_t: pad_t as i32,
        pad_l: pad_l as i32,
        mode,
        flags: bias.is_some() as u32 | ((p.relu as u32) << 1),
        _p: [0; 2],
    };
    run(rec, x, w, bias, params, tile, "conv2d")
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
    let [n, h, wd, _] = x.shape();
    let [kh, kw, cin, cout] = check_kernel(x, w)?;
    let pad = |n_in: usize, k: usize, out: usize| {
        (((n_in.saturating_sub(1)) * stride + k).saturating_sub(out)) / 2
    };
    let params = Params {
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
        pad_t: pad(h, kh, out_hw.0) as i32,
        pad_l: pad(wd, kw, out_hw.1) as i32,
        mode: MODE_TRANSPOSED,
        flags: (relu as u32) << 1,
        _p: [0; 2],
    };
    run(
        rec,
        x,
        w,
        None,
        params,
        Tile::for_cout(cout),
        "conv2d_transpose",
    )
}

fn run(
    rec: &mut Recorder,
    x: &Tensor,
    w: &Tensor,
    bias: Option<&Tensor>,
    p: Params,
    tile: Tile,
    label: &str,
) -> Result<Tensor> {
    let y = Tensor::uninit(
        rec.context(),
        label,
        [p.n as usize, p.ho as usize, p.wo as usize, p.cout as usize],
    )?;
    let m = p.n as u64 * p.ho as u64 * p.wo as u64;
    let tiles_m = m.div_ceil(4 * tile.wg_y as u64) as u32;
    let tiles_n = (p.cout).div_ceil(4 * tile.wg_x);
    let (gy, gz) = if tiles_m <= 65535 {
        (tiles_m, 1)
    } else {
        (65535, tiles_m.div_ceil(65535))
    };
    let bias = bias.unwrap_or(w);
    rec.dispatch(
        &tile.kernel(),
        &p,
        &[(1, x), (2, w), (3, bias), (4, &y)],
        [tiles_n, gy, gz],
    );
    Ok(y)
}
