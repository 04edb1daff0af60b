//! 2-D convolution and transposed convolution (`shaders/conv2d.wgsl`).

use crate::error::{Error, Result};
use crate::gpu::context::Context;
use crate::gpu::kernels::Kernel;
use crate::gpu::record::Recorder;
use crate::gpu::tensor::Tensor;
use crate::ops::conv_shaders::conv2d_build;
use crate::ops::conv_shape::{ConvMode, ConvShape};
use crate::ops::crop::pad;
use crate::ops::winograd;

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

/// The kernel's uniform block: the problem shape of one dispatch.
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
    pub(crate) mode: u32,
    pub(crate) flags: u32,
    /// Row length of the kernel: `cout`, or `cout` padded to a multiple of 4 (see
    /// [`run_into`]).
    pub(crate) wcout: u32,
    pub(crate) _p: u32,
}

pub(crate) const MODE_ZERO: u32 = 0;
pub(crate) const MODE_REFLECT: u32 = 1;
pub(crate) const MODE_TRANSPOSED: u32 = 2;

/// Output pixels per invocation of the direct kernel (`DTM` in `shaders/conv2d.wgsl`).
pub const DIRECT_PIXELS: u32 = 16;

/// A configuration of the convolution kernel.
///
/// Tiled (`direct == false`): `wg_x × wg_y` invocations with a 4×4 register block each,
/// A/B tiles of depth `bk` in workgroup memory. Direct: `wg_x × wg_y` invocations computing
/// 16 pixels × 8 channels each straight from global memory (no barriers; best on CPU drivers);
/// with `subgroup`, the invocations of a subgroup share each tap's weight loads. Cooperative
/// matrix (`coop` = fragment size): 4 subgroups, each a 2×2 block of `coop`×`coop` f16×f16→f32
/// matrix products (the matrix units of GPUs that have them). Winograd (`winograd`, 3×3
/// stride-1 convolutions only, see [`Tile::applies`]): transforms and 36 batched matrix
/// products ([`crate::ops::winograd`]), whose kernel the other fields name: `direct` the
/// `rows` kernel (64 invocations, with `subgroup` sharing loads), else the `tiled` one (16×16).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Tile {
    /// Invocations along output channels.
    pub wg_x: u32,
    /// Invocations along output pixels.
    pub wg_y: u32,
    /// Depth of one K step (tiled kernel).
    pub bk: u32,
    /// Use the direct (no workgroup memory) kernel.
    pub direct: bool,
    /// Half precision: f16 tiles and products, f16 partial sums over 16 terms added into f32
    /// accumulators (global memory stays f32). Needs `SHADER_F16`.
    pub half: bool,
    /// Direct kernel only: each of 8 invocations of a subgroup loads one vec4 of a tap's
    /// weights and `subgroupShuffle` hands them to the others (one load instead of 8; see
    /// `shaders/conv2d_subgroup.wgsl`). Needs `SUBGROUP`, subgroups of at least 8
    /// invocations, and `wg_y == 1` (one output channel block per workgroup).
    pub subgroup: bool,
    /// Cooperative-matrix kernel (`shaders/conv2d_coop.wgsl`) with fragments of this size (8
    /// or 16; 0: not one). Its A and B tiles are f16 (so it is a `half` variant), its sums
    /// f32. Needs `EXPERIMENTAL_COOPERATIVE_MATRIX` with a `coop`×`coop`×`coop` f16→f32
    /// configuration, `SHADER_F16`, `SUBGROUP` and a single subgroup size. `wg_x` and `wg_y`
    /// are `coop`, `bk` is `2 * coop`.
    pub coop: u32,
    /// Winograd F(4×4, 3×3) ([`crate::ops::winograd`]); float32 only.
    pub winograd: bool,
    /// Direct kernel only: the `wide` register block, 8 pixels × 32 output channels per
    /// invocation (fewer loads per multiply-add where no sliding window applies: strided and
    /// transposed convolutions, and small layers); needs `wg_y == 1`; float32 only.
    pub wide: bool,
}

impl Tile {
    /// The float32 configurations wgstyle knows (the last three: Winograd).
    pub const VARIANTS: [Tile; 10] = [
        Tile::tiled(8, 16),
        Tile::tiled(16, 16),
        Tile::direct(64, 1),
        Tile::direct(16, 4),
        Tile {
            subgroup: true,
            ..Tile::direct(64, 1)
        },
        Tile::WINOGRAD_ROWS_SG,
        Tile::WINOGRAD_ROWS,
        Tile::winograd(Tile::tiled(16, 16)),
        Tile::WIDE_SG,
        Tile::WIDE,
    ];

    /// The direct kernel's `wide` block with subgroup-shared weights (the default for strided
    /// and transposed convolutions of 32 or more output channels on CPU drivers with
    /// subgroups).
    pub const WIDE_SG: Tile = Tile::wide(Tile {
        subgroup: true,
        ..Tile::direct(64, 1)
    });

    /// The direct kernel's `wide` block without subgroups (for CPU drivers without them,
    /// e.g. GL).
    pub const WIDE: Tile = Tile::wide(Tile::direct(64, 1));

    /// `t` with the `wide` register block.
    const fn wide(t: Tile) -> Tile {
        Tile { wide: true, ..t }
    }

    /// The Winograd variant with the `rows` matrix-product kernel and subgroup-shared loads
    /// (the default for 3×3 stride-1 convolutions on CPU drivers with subgroups).
    pub const WINOGRAD_ROWS_SG: Tile = Tile::winograd(Tile {
        subgroup: true,
        ..Tile::direct(64, 1)
    });

    /// The Winograd variant with the `rows` matrix-product kernel without subgroups (the
    /// default for 3×3 stride-1 convolutions on CPU drivers without them, e.g. GL).
    pub const WINOGRAD_ROWS: Tile = Tile::winograd(Tile::direct(64, 1));

    /// `t` as a Winograd variant (`t` names its matrix-product kernel).
    const fn winograd(t: Tile) -> Tile {
        Tile {
            winograd: true,
            ..t
        }
    }

    /// A tiled f32 configuration of `wg_x × wg_y` invocations, K steps of 16.
    const fn tiled(wg_x: u32, wg_y: u32) -> Tile {
        Tile {
            wg_x,
            wg_y,
            bk: 16,
            direct: false,
            half: false,
            subgroup: false,
            coop: 0,
            winograd: false,
            wide: false,
        }
    }

    /// A direct f32 configuration of `wg_x × wg_y` invocations, without subgroups.
    const fn direct(wg_x: u32, wg_y: u32) -> Tile {
        Tile {
            direct: true,
            ..Tile::tiled(wg_x, wg_y)
        }
    }

    /// The half-precision variants: [`Tile::VARIANTS`] with `half` set, and the
    /// cooperative-matrix variants (8×8 and 16×16 fragments).
    pub const HALF_VARIANTS: [Tile; 7] = [
        Self::VARIANTS[0].with_half(),
        Self::VARIANTS[1].with_half(),
        Self::VARIANTS[2].with_half(),
        Self::VARIANTS[3].with_half(),
        Self::VARIANTS[4].with_half(),
        Tile::coop(8),
        Tile::coop(16),
    ];

    /// The cooperative-matrix variant with `size`×`size` fragments.
    const fn coop(size: u32) -> Tile {
        Tile {
            wg_x: size,
            wg_y: size,
            bk: 2 * size,
            direct: false,
            half: true,
            subgroup: false,
            coop: size,
            winograd: false,
            wide: false,
        }
    }

    /// Every variant, f32 then f16.
    pub fn all() -> impl Iterator<Item = Tile> {
        Self::VARIANTS.into_iter().chain(Self::HALF_VARIANTS)
    }

    /// This configuration in half precision.
    pub const fn with_half(self) -> Tile {
        Tile { half: true, ..self }
    }

    /// Output pixels per workgroup (tiled: `4 * wg_y`; direct: `16 * wg_x`, `wide`: `8 * wg_x`; cooperative
    /// matrix: 4 fragments).
    pub fn pixels(self) -> u32 {
        if self.coop != 0 {
            4 * self.coop
        } else if self.wide {
            8 * self.wg_x
        } else if self.direct {
            DIRECT_PIXELS * self.wg_x
        } else {
            4 * self.wg_y
        }
    }

    /// Output channels per workgroup (tiled: `4 * wg_x`; direct: `8 * wg_y`; cooperative
    /// matrix: 4 fragments).
    pub fn channels(self) -> u32 {
        if self.coop != 0 {
            4 * self.coop
        } else if self.wide {
            32 * self.wg_y
        } else if self.direct {
            8 * self.wg_y
        } else {
            4 * self.wg_x
        }
    }

    /// The entry point of this variant.
    pub fn entry(self) -> &'static str {
        if self.winograd {
            winograd::kernel(self).entry
        } else if self.coop != 0 {
            "coop"
        } else if self.wide {
            "wide"
        } else if self.direct {
            "direct"
        } else {
            "main"
        }
    }

    /// The default configuration for `cout` output channels on an adapter of this type:
    /// direct kernels on CPU drivers, tiled kernels on GPUs; narrow ones for narrow outputs.
    /// (See [`Tile::default_on`] for the choice that also knows the device's features.)
    pub fn default_for(device_type: wgpu::DeviceType, cout: usize) -> Tile {
        let cpu = device_type == wgpu::DeviceType::Cpu;
        match (cpu, cout) {
            (true, _) => Self::VARIANTS[2],
            (false, 0..=32) => Self::VARIANTS[0],
            (false, _) => Self::VARIANTS[1],
        }
    }

    /// [`Tile::default_for`] on `ctx`'s device: a direct default shares its weight loads
    /// across subgroups where the device allows it (on lavapipe 1.3x faster on the fast
    /// network's stride-1 layers, BENCHMARKS.md).
    pub fn default_on(ctx: &Context, cout: usize) -> Tile {
        let t = Self::default_for(ctx.adapter_info().device_type, cout);
        let shared = Tile {
            subgroup: true,
            ..t
        };
        if t.direct && shared.usable(ctx) {
            shared
        } else {
            t
        }
    }

    /// A short name, e.g. `direct 64x1`, `tiled 16x16` or `coop 16x16 f16` (as in autotune
    /// caches and reports).
    pub fn name(self) -> String {
        if self.coop != 0 {
            return format!("coop {0}x{0} f16", self.coop);
        }
        if self.winograd {
            let sg = if self.subgroup { " sg" } else { "" };
            let gemm = if self.direct {
                "rows 8x8"
            } else {
                "tiled 16x16"
            };
            return format!("winograd {gemm}{sg}");
        }
        let kind = if self.direct { "direct" } else { "tiled" };
        let bk = if self.direct || self.bk == 16 {
            String::new()
        } else {
            format!(" bk{}", self.bk)
        };
        let wide = if self.wide { " w32" } else { "" };
        let sg = if self.subgroup { " sg" } else { "" };
        let half = if self.half { " f16" } else { "" };
        format!("{kind} {}x{}{bk}{wide}{sg}{half}", self.wg_x, self.wg_y)
    }

    /// The variant of [`Tile::all`] with this [`Tile::name`].
    pub fn from_name(name: &str) -> Option<Tile> {
        Self::all().find(|t| t.name() == name)
    }

    /// The variant of [`Tile::all`] whose pipeline has this label (see
    /// [`Recorder::kernel_labels`]), or `None` for any other kernel.
    pub fn from_kernel_label(label: &str) -> Option<Tile> {
        Self::all().find(|t| {
            if t.winograd {
                // With or without the products' 64-column constant.
                return label.split('[').next() == Some(&winograd::kernel(*t).label());
            }
            if t.coop != 0 {
                // Its constant (the subgroup size) depends on the adapter.
                let k = t.kernel(DirectBody::ALL[0], 0);
                let stem = k.shader.name.trim_end_matches(".wgsl");
                return label.split('[').next() == Some(&format!("{stem}.{}", k.entry));
            }
            DirectBody::ALL
                .iter()
                .any(|&b| t.kernel(b, 0).label() == label)
        })
    }

    /// Whether this variant runs on `ctx`'s device: [`Tile::fits`] its limits; for
    /// half-precision variants, it has `SHADER_F16`; for subgroup variants, `SUBGROUP` with
    /// subgroups of 8 invocations or more; for cooperative-matrix variants, the fragment size
    /// among [`Context::coop_fragment_sizes`]. (Checked before every convolution: it reads the
    /// context's cached limits and adapter info.)
    pub fn usable(self, ctx: &Context) -> bool {
        let features = ctx.device().features();
        self.fits(ctx.limits())
            && (!self.half || features.contains(wgpu::Features::SHADER_F16))
            && (!self.subgroup || ctx.has_subgroups_of_8())
            && (self.coop == 0 || ctx.coop_fragment_sizes().contains(&self.coop))
    }

    /// [`Tile::usable`] as a result: [`Error::Unsupported`] naming the variant where not.
    pub fn check_usable(self, ctx: &Context) -> Result<()> {
        if self.usable(ctx) {
            return Ok(());
        }
        Err(Error::Unsupported {
            adapter: ctx.adapter_info().name.clone(),
            what: format!("the convolution kernel variant '{}'", self.name()),
        })
    }

    /// Whether this variant computes convolutions of `shape` on `ctx` (the Winograd variants:
    /// see [`winograd::applies`]; every other variant: all of them). [`conv2d_tiled`] and the
    /// like run a variant that does not apply as [`Tile::default_on`] instead.
    pub fn applies(self, ctx: &Context, shape: &ConvShape) -> bool {
        !self.winograd || winograd::applies(ctx, shape)
    }

    /// The default variant for convolutions of `shape` on `ctx` (with autotune off, and the
    /// first the autotune times). GPUs: [`Tile::default_on`]. CPU drivers (lavapipe, where
    /// loads cost per instruction and SIMD lane; figures in BENCHMARKS.md):
    /// - 3×3 stride-1 convolutions (and stride-1 transposed ones) of at least 16 output
    ///   tiles (4×4 pixels) per image, unless small (below):
    ///   Winograd ([`Tile::WINOGRAD_ROWS_SG`], or its plain build without subgroups),
    ///   2–4× faster than the direct kernel on the fast network's residual layers and VGG19;
    /// - with output channels in multiples of 32: strided and transposed convolutions, and
    ///   small ones (at most 16² output pixels per image with subgroups, 8² without, e.g.
    ///   VGG19's conv4 and conv5 layers of a 64² or 128² image): the `wide` block
    ///   ([`Tile::WIDE_SG`], or [`Tile::WIDE`] without subgroups), about 1.2–2.5× faster on
    ///   the first (the direct kernel's sliding window does not apply to them) and 1.7–3× on
    ///   8² and 4² layers of 256–512 channels (one pixel per invocation leaves the direct
    ///   kernel without weight reuse);
    /// - anything else: [`Tile::default_on`].
    pub fn default_for_shape(ctx: &Context, shape: &ConvShape) -> Tile {
        let fallback = Self::default_on(ctx, shape.cout as usize);
        if ctx.adapter_info().device_type != wgpu::DeviceType::Cpu {
            return fallback;
        }
        // Output tiles per image: the choice must not depend on the batch.
        let pixels = (shape.ho as u64) * (shape.wo as u64);
        let tiles = (shape.ho as u64).div_ceil(4) * (shape.wo as u64).div_ceil(4);
        let wide = [Tile::WIDE_SG, Tile::WIDE]
            .into_iter()
            .find(|t| t.usable(ctx))
            .filter(|_| shape.cout.is_multiple_of(32));
        // Without subgroups the `wide` block loses to Winograd at 16² (GL: 100 against 48 ms).
        let small = |w: &Tile| pixels <= if w.subgroup { 256 } else { 64 };
        if let Some(w) = wide.filter(small) {
            return w;
        }
        let winograd = [Tile::WINOGRAD_ROWS_SG, Tile::WINOGRAD_ROWS]
            .into_iter()
            .find(|t| t.usable(ctx));
        if let Some(w) = winograd.filter(|w| tiles >= 16 && w.applies(ctx, shape)) {
            return w;
        }
        let strided = shape.stride > 1 || shape.mode == ConvMode::Transposed;
        match wide {
            Some(w) if strided => w,
            _ => fallback,
        }
    }

    /// Whether the device's compute limits allow this variant (workgroup size, invocations,
    /// workgroup memory).
    pub fn fits(self, limits: &wgpu::Limits) -> bool {
        if self.coop != 0 {
            // A and B tiles (f16), the output tile (f32) and 4 fragments of pixel origins
            // (16 bytes each); the workgroup size (4 subgroups) is checked by the context.
            let (m, k) = (4 * self.coop, 2 * self.coop);
            return 2 * (m * k + k * m) + 4 * m * m + 16 * m
                <= limits.max_compute_workgroup_storage_size;
        }
        let shared = if self.direct {
            0
        } else {
            // A and B tiles plus the four per-pixel arrays of the tiled kernel.
            4 * (self.bk * 4 * (self.wg_x + self.wg_y) + 4 * 4 * self.wg_y)
        };
        // The subgroup build (it shares weights between the invocations of one output channel
        // block) and the `wide` block: one output channel block per workgroup.
        (!(self.subgroup || self.wide) || (self.direct && self.wg_y == 1))
            && self.wg_x <= limits.max_compute_workgroup_size_x
            && self.wg_y <= limits.max_compute_workgroup_size_y
            && self.wg_x * self.wg_y <= limits.max_compute_invocations_per_workgroup
            && shared <= limits.max_compute_workgroup_storage_size
    }

    /// This variant's pipeline for a shape whose direct kernel body is `body` (see
    /// [`DirectBody::of`]; the tiled variants have one body), on an adapter with subgroups of
    /// `subgroup_size` invocations (used by the cooperative-matrix variants only).
    pub(crate) fn kernel(self, body: DirectBody, subgroup_size: u32) -> Kernel {
        if self.winograd {
            return winograd::kernel(self);
        }
        if self.coop != 0 {
            return Kernel {
                shader: conv2d_build(true, false, self.coop),
                entry: self.entry(),
                constants: vec![("SG", subgroup_size as f64)],
            };
        }
        let mut constants = vec![
            ("WG_X", self.wg_x as f64),
            ("WG_Y", self.wg_y as f64),
            ("BK", self.bk as f64),
        ];
        if self.half {
            constants.push(("FLUSH", 1.0));
        }
        if self.direct && !self.wide && body.rows {
            constants.push(("ROWS", 1.0));
        }
        if self.direct && !self.wide && body.narrow {
            constants.push(("NARROW", 1.0));
        }
        Kernel {
            shader: conv2d_build(self.half, self.subgroup, 0),
            entry: self.entry(),
            constants,
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
    let params = conv_params(x, w, bias, p)?;
    let tile = crate::ops::conv_tune::tile_for(rec.context(), &params);
    run(rec, x, w, bias, params, tile, "conv2d")
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
    let params = conv_params(x, w, bias, p)?;
    run(rec, x, w, bias, params, tile, "conv2d")
}

fn conv_params(x: &Tensor, w: &Tensor, bias: Option<&Tensor>, p: Conv2d) -> Result<Params> {
    let [n, h, wd, _] = x.shape();
    let [kh, kw, cin, cout] = check_kernel(x, w)?;
    let (ho, pad_t) = out_len(h, kh, p.stride, p.padding)?;
    let (wo, pad_l) = out_len(wd, kw, p.stride, p.padding)?;
    let mode = if matches!(p.padding, Padding::Reflect(_)) {
        MODE_REFLECT
    } else {
        MODE_ZERO
    };
    Ok(Params {
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
        wcout: cout as u32,
        _p: 0,
    })
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
    let tile = crate::ops::conv_tune::tile_for(rec.context(), &params);
    run(rec, x, w, None, params, tile, "conv2d_transpose")
}

/// [`conv2d_transpose`] with an explicit kernel configuration.
pub fn conv2d_transpose_tiled(
    rec: &mut Recorder,
    x: &Tensor,
    w: &Tensor,
    stride: usize,
    out_hw: (usize, usize),
    relu: bool,
    tile: Tile,
) -> Result<Tensor> {
    let params = transpose_params(x, w, stride, out_hw, relu)?;
    run(rec, x, w, None, params, tile, "conv2d_transpose")
}

fn transpose_params(
    x: &Tensor,
    w: &Tensor,
    stride: usize,
    out_hw: (usize, usize),
    relu: bool,
) -> Result<Params> {
    let [n, h, wd, _] = x.shape();
    let [kh, kw, cin, cout] = check_kernel(x, w)?;
    let pad = |n_in: usize, k: usize, out: usize| {
        (((n_in.saturating_sub(1)) * stride + k).saturating_sub(out)) / 2
    };
    Ok(Params {
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
        wcout: cout as u32,
        _p: 0,
    })
}

/// Records one dispatch of `tile` for the problem `p` and returns its output.
pub(crate) fn run(
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
    run_into(rec, x, w, bias, p, tile, &y)?;
    Ok(y)
}

/// [`run`] writing into `y` (`[n, ho, wo, cout]`).
///
/// The direct kernel pads channel counts that are not multiples of 4 (the input's and the
/// kernel's input channels, and the kernel's output channels: its rows are then `wcout`
/// long, the output keeps `cout`) so that every shape runs a vec4 body: on lavapipe, where
/// loads cost per instruction and lane, conv1 (3 input channels) and conv_out (3 output
/// channels) of the fast network gain more from vec4 loads than padding costs.
pub(crate) fn run_into(
    rec: &mut Recorder,
    x: &Tensor,
    w: &Tensor,
    bias: Option<&Tensor>,
    p: Params,
    tile: Tile,
    y: &Tensor,
) -> Result<()> {
    tile.check_usable(rec.context())?;
    if tile.winograd {
        if tile.applies(rec.context(), &ConvShape::of(&p)) {
            return winograd::run_into(rec, x, w, bias, p, tile, y);
        }
        let t = Tile::default_on(rec.context(), p.cout as usize);
        return run_into(rec, x, w, bias, p, t, y);
    }
    let mut p = p;
    let padded;
    // The kernel's rows: a multiple of 4 (vec4 bodies), of 32 for the `wide` block.
    let row = if tile.wide { 32 } else { 4 };
    let (x, w) = if tile.direct && (!p.cin.is_multiple_of(4) || !p.cout.is_multiple_of(row)) {
        let [_, h, wd, _] = x.shape();
        let [_, kw, _, _] = w.shape();
        let (cin4, cout4) = (p.cin.next_multiple_of(4), p.cout.next_multiple_of(row));
        padded = (
            pad(rec, x, h, wd, cin4 as usize)?,
            pad(rec, w, kw, cin4 as usize, cout4 as usize)?,
        );
        (p.cin, p.wcout) = (cin4, cout4);
        (&padded.0, &padded.1)
    } else {
        (x, w)
    };
    let body = if tile.wide {
        DirectBody::ALL[0]
    } else {
        DirectBody::of(&p)
    };
    debug_assert!(!tile.direct || (p.cin.is_multiple_of(4) && p.wcout.is_multiple_of(row)));
    let m = if tile.direct {
        direct_slots(&p, body, tile)
    } else {
        p.n as u64 * p.ho as u64 * p.wo as u64
    };
    let tiles_m = m.div_ceil(tile.pixels() as u64) as u32;
    let tiles_n = p.cout.div_ceil(tile.channels());
    let (gm, gz) = if tiles_m <= 65535 {
        (tiles_m, 1)
    } else {
        (65535, tiles_m.div_ceil(65535))
    };
    // Tiled: x = channel tiles, y (and z) = pixel tiles. Direct: the other way round.
    let groups = if tile.direct {
        [gm, tiles_n, gz]
    } else {
        [tiles_n, gm, gz]
    };
    let bias = bias.unwrap_or(w);
    rec.dispatch(
        &tile.kernel(body, rec.context().adapter_info().subgroup_max_size),
        &p,
        &[(1, x), (2, w), (3, bias), (4, y)],
        groups,
    );
    Ok(())
}

/// Which specialisation of the direct kernel (`direct` in `shaders/conv2d.wgsl`) a shape uses,
/// through its pipeline constants `ROWS` and `NARROW`. Every one takes channel counts that are
/// multiples of 4 ([`run_into`] pads the others).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DirectBody {
    /// Each invocation's pixels lie in one output row and slide one window of input columns
    /// along each kernel row (`ROWS`; stride 1, not transposed); else vec4 loads per tap (any
    /// stride, transposed too).
    pub rows: bool,
    /// At most 4 output channels (after padding): only the first of the invocation's two
    /// 4-channel blocks is computed (`NARROW`; on lavapipe the fast network's last layer,
    /// 32→3, runs 1.5× faster than with the block of zeros).
    pub narrow: bool,
}

impl DirectBody {
    /// Every body.
    pub const ALL: [DirectBody; 4] = [
        DirectBody {
            rows: false,
            narrow: false,
        },
        DirectBody {
            rows: true,
            narrow: false,
        },
        DirectBody {
            rows: false,
            narrow: true,
        },
        DirectBody {
            rows: true,
            narrow: true,
        },
    ];

    /// The body for the problem `p` (channels padded to multiples of 4).
    pub(crate) fn of(p: &Params) -> DirectBody {
        DirectBody {
            rows: p.stride == 1 && p.mode != MODE_TRANSPOSED,
            narrow: p.wcout == 4,
        }
    }
}

/// Output slots of the direct kernel `tile`: one per output pixel, except for transposed
/// convolutions, which it visits by parity class (`stride²` sub-grids of `⌈ho/s⌉ × ⌈wo/s⌉`
/// pixels, each padded to a multiple of 16 slots, or with `subgroup` of a workgroup's
/// `16 * wg_x`), and for the `Rows` body, which pads every output row to a multiple of 16
/// slots; as `direct_slots`, `class_unit` and `row_len` in `shaders/conv2d.wgsl`.
fn direct_slots(p: &Params, body: DirectBody, tile: Tile) -> u64 {
    let (n, ho, wo, s) = (p.n as u64, p.ho as u64, p.wo as u64, p.stride as u64);
    let px = DIRECT_PIXELS as u64;
    let class_unit = if tile.subgroup {
        px * tile.wg_x as u64
    } else {
        px
    };
    if p.mode == MODE_TRANSPOSED {
        n * s * s * (ho.div_ceil(s) * wo.div_ceil(s)).next_multiple_of(class_unit)
    } else if body.rows {
        n * ho * wo.next_multiple_of(px)
    } else {
        n * ho * wo
    }
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
    let [n, h, wd, _] = x.shape();
    let [kh, kw, cin, cout] = check_kernel(x, w)?;
    let params = Params {
        n: n as u32,
        h: h as u32,
        w: wd as u32,
        cin: cin as u32,
        ho: g.out_hw.0 as u32,
        wo: g.out_hw.1 as u32,
        cout: cout as u32,
        kh: kh as u32,
        kw: kw as u32,
        stride: g.stride as u32,
        pad_t: g.pad_t,
        pad_l: g.pad_l,
        mode: if g.transposed {
            MODE_TRANSPOSED
        } else if reflect {
            MODE_REFLECT
        } else {
            MODE_ZERO
        },
        flags: bias.is_some() as u32,
        wcout: cout as u32,
        _p: 0,
    };
    let tile = crate::ops::conv_tune::tile_for(rec.context(), &params);
    run(rec, x, w, bias, params, tile, "conv2d_window")
}
