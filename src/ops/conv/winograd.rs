//! Winograd convolution F(4×4, 3×3) (`shaders/winograd.wgsl` and `shaders/gemm.wgsl`) for
//! 3×3 stride-1 convolutions: the kernel and the input's 6×6 tiles are transformed, 36 batched
//! matrix products take the place of the direct convolution's sums (36 multiplies per 4×4
//! output tile and channel pair instead of 144), and the products are transformed back.
//!
//! It is a variant of the convolution like any other ([`ConvAlgo::Winograd`]): chosen by the
//! autotune, or by default on CPU drivers, where it runs the fast network's residual layers
//! several times faster than the direct kernel (BENCHMARKS.md). Transposed convolutions of
//! stride 1 (the input gradients of 3×3 convolutions) run as convolutions with the kernel
//! rotated by 180°. Its float32 rounding differs from a direct sum's by the transforms'
//! constants (up to 10× the direct kernel's error; tests/kernels.rs holds it to the same 1e-4
//! of the largest output as every variant).

use crate::error::Result;
use crate::gpu::context::Context;
use crate::gpu::kernels::{shader_file, Kernel, Shader};
use crate::gpu::record::{grid_1d, Recorder};
use crate::gpu::tensor::Tensor;
use crate::ops::conv::algo::ConvAlgo;
use crate::ops::conv::params::{Params, MODE_REFLECT, MODE_TRANSPOSED};
use crate::ops::conv::shape::{ConvMode, ConvShape};
use crate::ops::crop::pad;
use crate::ops::gemm::{batched_gemm, GemmKernel, GEMM_COLUMNS};

/// `shaders/winograd.wgsl`.
pub const WINOGRAD: Shader = shader_file!("winograd.wgsl");

/// Positions of a transformed tile (6×6): one matrix product each.
const POSITIONS: usize = 36;
/// Output pixels per tile side.
const TILE: usize = 4;

const FLAG_FLIP: u32 = 4;

#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct WinogradParams {
    pub(crate) n: u32,
    pub(crate) h: u32,
    pub(crate) w: u32,
    pub(crate) cin: u32,
    pub(crate) ho: u32,
    pub(crate) wo: u32,
    pub(crate) cout: u32,
    pub(crate) cinp: u32,
    pub(crate) coutp: u32,
    pub(crate) th: u32,
    pub(crate) tw: u32,
    pub(crate) tiles: u32,
    pub(crate) pad_t: i32,
    pub(crate) pad_l: i32,
    pub(crate) mode: u32,
    pub(crate) flags: u32,
    pub(crate) kd: u32,
    pub(crate) tile0: u32,
    pub(crate) _p: [u32; 2],
}

/// Sizes of one Winograd convolution: padded channel counts, tiles, and the transformed
/// tensors' lengths in floats.
struct Plan {
    /// 3×3 blocks per kernel side (1 for 3×3, 3 for 9×9).
    kd: usize,
    cinp: usize,
    coutp: usize,
    th: usize,
    tw: usize,
    tiles: usize,
}

impl Plan {
    fn of(s: &ConvShape) -> Plan {
        let (th, tw) = (
            (s.ho as usize).div_ceil(TILE),
            (s.wo as usize).div_ceil(TILE),
        );
        Plan {
            kd: s.kh as usize / 3,
            cinp: (s.cin as usize).next_multiple_of(4),
            coutp: (s.cout as usize).next_multiple_of(GEMM_COLUMNS),
            th,
            tw,
            tiles: s.n as usize * th * tw,
        }
    }

    /// The products' inner dimension: every block's input channels.
    fn k(&self) -> usize {
        self.kd * self.kd * self.cinp
    }

    /// Floats of the transformed kernel.
    fn u_len(&self) -> usize {
        POSITIONS * self.k() * self.coutp
    }

    /// The most tiles one pass transforms and multiplies on `ctx` (0 if not even one fits):
    /// their transformed input and products within the device's buffer binding and, for 9×9
    /// kernels under a memory budget, within a quarter of it beside the transformed kernel.
    /// (A 3×3 convolution's transformed tensors cost about what the direct kernel's tensors do
    /// per pixel, which the memory model of tiling counts already.)
    fn max_pass_tiles(&self, ctx: &Context) -> usize {
        let limits = ctx.limits();
        let max = limits
            .max_storage_buffer_binding_size
            .min(limits.max_buffer_size);
        let widest = (POSITIONS * 4 * self.k().max(self.coutp)) as u64;
        let mut n = max / widest;
        if let Some(limit) = ctx.pool_limit().filter(|_| self.kd > 1) {
            let free = (limit / 4).saturating_sub(4 * self.u_len() as u64);
            n = n.min(free / (POSITIONS * 4 * (self.k() + self.coutp)) as u64);
        }
        n.min(65535 * 512) as usize
    }
}

/// Whether the Winograd variants compute the convolution `s` on `ctx`: a 3×3 kernel (also
/// transposed) or a 9×9 one (as 3×3 blocks of 3×3; not transposed), stride 1, output
/// channels a multiple of 4, the transformed kernel within the device's buffer limits and,
/// under a memory budget ([`Context::set_pool_limit`]), within a quarter of it (it takes
/// `36·k²/9·cin·cout` floats whatever the image size), and room for passes of at least 256
/// tiles (or all of one image's): larger outputs are done in several passes of as many tiles
/// as fit (transformed input and products take `36·k²/9·cin` and `36·cout` floats per 4×4
/// tile). The answer does not depend on the batch `s.n`, so that a batch runs each image
/// exactly as a single run does.
pub fn applies(ctx: &Context, s: &ConvShape) -> bool {
    let k_ok = match (s.kh, s.kw) {
        (3, 3) => true,
        (9, 9) => s.mode != ConvMode::Transposed,
        _ => false,
    };
    if !k_ok || s.stride != 1 || !s.cout.is_multiple_of(4) || s.ho == 0 || s.wo == 0 {
        return false;
    }
    let plan = Plan::of(s);
    let u_bytes = 4 * plan.u_len() as u64;
    u_bytes <= ctx.max_binding_bytes()
        && ctx.pool_limit().is_none_or(|limit| 4 * u_bytes <= limit)
        && plan.max_pass_tiles(ctx) >= (plan.th * plan.tw).min(256)
}

/// The matrix-product kernel of a Winograd variant (the `rows` kernel for any other).
fn gemm_kernel(algo: ConvAlgo) -> GemmKernel {
    algo.gemm().unwrap_or(GemmKernel::Rows { subgroup: false })
}

/// The pipeline of a Winograd variant's matrix products (the step that takes its time), in
/// its build for 32 columns (the label without constants names the variant).
pub(crate) fn kernel(algo: ConvAlgo) -> Kernel {
    gemm_kernel(algo).kernel(GEMM_COLUMNS)
}

/// Records the convolution `p` (see [`applies`]) as Winograd variant `algo` into `y`.
pub(crate) fn run_into(
    rec: &mut Recorder,
    x: &Tensor,
    w: &Tensor,
    bias: Option<&Tensor>,
    p: Params,
    algo: ConvAlgo,
    y: &Tensor,
) -> Result<()> {
    let shape = ConvShape::of(&p);
    let plan = Plan::of(&shape);
    let cout = p.cout as usize;
    let [n, h, wd, _] = x.shape();
    let x = pad(rec, x, h, wd, plan.cinp)?;
    let w = pad(rec, w, 3 * plan.kd, plan.cinp, plan.coutp)?;
    // A stride-1 transposed convolution is the convolution with the kernel rotated by 180°
    // and the padding k - 1 - pad.
    let transposed = shape.mode == ConvMode::Transposed;
    debug_assert!(!transposed || plan.kd == 1);
    let (pad_t, pad_l, mode) = if transposed {
        (2 - p.pad_t, 2 - p.pad_l, 0)
    } else {
        (p.pad_t, p.pad_l, p.mode)
    };
    debug_assert!(p.mode != MODE_TRANSPOSED || p.stride == 1);
    let wp = WinogradParams {
        n: n as u32,
        h: h as u32,
        w: wd as u32,
        cin: plan.cinp as u32,
        ho: p.ho,
        wo: p.wo,
        cout: cout as u32,
        cinp: plan.cinp as u32,
        coutp: plan.coutp as u32,
        th: plan.th as u32,
        tw: plan.tw as u32,
        tiles: plan.tiles as u32,
        pad_t,
        pad_l,
        mode: if mode == MODE_REFLECT {
            MODE_REFLECT
        } else {
            0
        },
        flags: (p.flags & 3) | if transposed { FLAG_FLIP } else { 0 },
        kd: plan.kd as u32,
        tile0: 0,
        _p: [0; 2],
    };
    let ctx = rec.context().clone();
    let u = Tensor::uninit(&ctx, "winograd.u", [POSITIONS, 1, plan.k(), plan.coutp])?;
    debug_assert_eq!(u.len(), plan.u_len());
    rec.dispatch(
        &Kernel::new(WINOGRAD, "weights"),
        &wp,
        &[(1, &w), (4, &u)],
        groups(plan.k() * plan.coutp / 4),
    );
    // Passes of as many tiles as fit (one for all but very large outputs); a pass's tensors
    // go back to the pool for the next one.
    let per_pass = plan.max_pass_tiles(&ctx).clamp(1, plan.tiles);
    for tile0 in (0..plan.tiles).step_by(per_pass) {
        let len = per_pass.min(plan.tiles - tile0);
        let wp = WinogradParams {
            tiles: len as u32,
            tile0: tile0 as u32,
            ..wp
        };
        let v = Tensor::uninit(&ctx, "winograd.v", [POSITIONS, 1, len, plan.k()])?;
        rec.dispatch(
            &Kernel::new(WINOGRAD, "input"),
            &wp,
            &[(1, &x), (4, &v)],
            groups(len * plan.k() / 4),
        );
        let m = Tensor::uninit(&ctx, "winograd.m", [POSITIONS, 1, len, plan.coutp])?;
        batched_gemm(
            rec,
            gemm_kernel(algo),
            &v,
            &u,
            &m,
            POSITIONS,
            [len, plan.k(), plan.coutp],
        )?;
        rec.dispatch(
            &Kernel::new(WINOGRAD, "output"),
            &wp,
            &[(1, &m), (3, bias.unwrap_or(&m)), (4, y)],
            groups(len * cout / 4),
        );
    }
    Ok(())
}

/// Workgroups of 64 invocations for `n` invocations.
fn groups(n: usize) -> [u32; 3] {
    grid_1d(n.div_ceil(64) as u32)
}
