//! Gram matrices of feature maps and their backward (`shaders/gram.wgsl`, `shaders/conv2d/`).

use crate::error::{Error, Result};
use crate::gpu::kernels::{shader_file, Kernel, Shader};
use crate::gpu::record::{grid_elems, Recorder};
use crate::gpu::tensor::Tensor;
use crate::ops::conv::{conv2d, Conv2d, DriverClass, Padding};
use crate::ops::conv_grad::{conv2d_weight_grad_with, WeightGradKernel};
use crate::ops::crop::pad;
use crate::ops::gemm::{batched_gemm, batched_gemm_at, GemmKernel, GEMM_COLUMNS};
use crate::ops::vecops::scale;

/// `shaders/gram.wgsl`.
pub const GRAM: Shader = shader_file!("gram.wgsl");

#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct Params {
    pub(crate) k: u32,
    pub(crate) c: u32,
    pub(crate) scale: f32,
    pub(crate) _p: u32,
}

/// `G = FᵀF / (H·W·C)` for `f` `[1, h, w, c]`, returned as `[1, 1, c, c]`: with
/// [`gram_tiled`] on GPUs; on CPU adapters (where the tiled kernel's workgroup barriers are
/// slow) with [`gram_gemm`] where `c` is a multiple of 32, else [`gram_direct`].
pub fn gram(rec: &mut Recorder, f: &Tensor) -> Result<Tensor> {
    match DriverClass::of(rec.context()) {
        DriverClass::Cpu if gemm_applies(f) => gram_gemm(rec, f),
        DriverClass::Cpu => gram_direct(rec, f),
        DriverClass::Gpu => gram_tiled(rec, f),
    }
}

/// Whether [`gram_gemm`] and the matrix-product backward take features `f` (channels a
/// multiple of [`GEMM_COLUMNS`]).
fn gemm_applies(f: &Tensor) -> bool {
    f.shape()[3].is_multiple_of(GEMM_COLUMNS)
}

/// Pixels per chunk of [`gram_gemm`]'s split-K product (at most).
const GEMM_CHUNK: usize = 1024;

/// [`gram`] as a split-K matrix product with gemm.wgsl's `rows` kernel (no workgroup memory,
/// 8×64 outputs per invocation; the CPU drivers' choice): the pixels are cut into chunks of
/// at most 1024, each chunk's `FᵀF` is one product of the batch (A read transposed, so `F`
/// serves as both operands unchanged), and the chunks' matrices are added in order. `c` must
/// be a multiple of 32.
pub fn gram_gemm(rec: &mut Recorder, f: &Tensor) -> Result<Tensor> {
    let [_, h, w, c] = check_one(f)?;
    if !gemm_applies(f) {
        return Err(Error::InvalidInput(format!(
            "gram_gemm of {c} channels: needs a multiple of {GEMM_COLUMNS}"
        )));
    }
    let ctx = rec.context().clone();
    let pixels = h * w;
    // Chunks of a multiple of 4 pixels, as many as the partial matrices' binding allows.
    let max_splits = (ctx.max_binding_bytes() / (4 * c * c) as u64).max(1) as usize;
    let splits = pixels.div_ceil(GEMM_CHUNK).clamp(1, max_splits.min(65535));
    let chunk = pixels.div_ceil(splits).next_multiple_of(4);
    let splits = pixels.div_ceil(chunk);
    // Zero rows past the last pixel where the chunks overhang it.
    let f = pad(rec, &f.reshape([1, pixels, 1, c]), splits * chunk, 1, c)?;
    let partials = Tensor::uninit(&ctx, "gram.partials", [splits, 1, c, c])?;
    let kernel = GemmKernel::rows_on(&ctx);
    batched_gemm_at(rec, kernel, &f, &f, &partials, splits, [c, chunk, c])?;
    let g = Tensor::uninit(&ctx, "gram", [1, 1, c, c])?;
    let p = Params {
        k: splits as u32,
        c: c as u32,
        scale: (1.0 / (h as f64 * w as f64 * c as f64)) as f32,
        _p: 0,
    };
    rec.dispatch(
        &Kernel::new(GRAM, "sum_splits"),
        &p,
        &[(1, &partials), (2, &g)],
        grid_elems(c * c),
    );
    Ok(g)
}

/// [`gram`] as the weight gradient of a 1×1 convolution, `dW = Σ_p F[p]ᵀ F[p]`, by the direct
/// (no workgroup memory) weight-gradient kernel with its deterministic split-K, then scaled.
pub fn gram_direct(rec: &mut Recorder, f: &Tensor) -> Result<Tensor> {
    let [_, h, w, c] = check_one(f)?;
    let g = conv2d_weight_grad_with(
        rec,
        f,
        f,
        (1, 1),
        1,
        Padding::Valid,
        WeightGradKernel::Direct,
    )?;
    scale(rec, &g, (1.0 / (h as f64 * w as f64 * c as f64)) as f32)
}

fn check_one(f: &Tensor) -> Result<[usize; 4]> {
    if f.shape()[0] != 1 {
        return Err(Error::InvalidInput(format!(
            "gram of a batch {:?}: one image at a time",
            f.shape()
        )));
    }
    Ok(f.shape())
}

/// [`gram`] by `gram.wgsl`: 16×16 tiles of `G` per workgroup over workgroup-shared tiles of `F`.
pub fn gram_tiled(rec: &mut Recorder, f: &Tensor) -> Result<Tensor> {
    let [_, h, w, c] = check_one(f)?;
    let g = Tensor::uninit(rec.context(), "gram", [1, 1, c, c])?;
    let p = Params {
        k: (h * w) as u32,
        c: c as u32,
        scale: (1.0 / (h as f64 * w as f64 * c as f64)) as f32,
        _p: 0,
    };
    let t = c.div_ceil(16) as u32;
    rec.dispatch(
        &Kernel::new(GRAM, "forward"),
        &p,
        &[(1, f), (2, &g)],
        [t, t, 1],
    );
    Ok(g)
}

/// Backward of [`gram`] for a symmetric `dg` = dL/dG: `dF = 2 F · dG / (H·W·C)`, as a 1×1
/// convolution (implicit GEMM) with the kernel `dg` `[1, 1, c, c]` (on CPU adapters, where
/// `c` is a multiple of 32, as a product of the `rows` GEMM kernel). `dg` must already
/// include the factor `2 / (H·W·C)`; see [`crate::ops::loss::style_layer`].
pub fn gram_backward(rec: &mut Recorder, f: &Tensor, dg_scaled: &Tensor) -> Result<Tensor> {
    let cpu = DriverClass::of(rec.context()) == DriverClass::Cpu;
    let [n, h, w, c] = f.shape();
    // (The product's rows kernel takes up to 65,535 workgroups of 512 rows.)
    if cpu && gemm_applies(f) && dg_scaled.len() == c * c && n * h * w <= 65535 * 512 {
        // On CPU drivers a plain product with the `rows` kernel: 548 ms against the direct
        // convolution kernel's 636 ms for the five style layers at 256² (BENCHMARKS.md).
        let df = Tensor::uninit(rec.context(), "gram_backward", [n, h, w, c])?;
        let kernel = GemmKernel::rows_on(rec.context());
        batched_gemm(rec, kernel, f, dg_scaled, &df, 1, [n * h * w, c, c])?;
        return Ok(df);
    }
    conv2d(
        rec,
        f,
        dg_scaled,
        None,
        Conv2d {
            stride: 1,
            padding: Padding::Valid,
            relu: false,
        },
    )
}
