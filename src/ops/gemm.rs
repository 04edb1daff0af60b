//! Batched matrix products (`shaders/gemm.wgsl`): `C[b] = A[b] B[b]`, the middle step of
//! the Winograd convolution ([`crate::ops::conv::winograd`]), and on CPU drivers the Gram matrices
//! and their backward ([`crate::ops::gram`]).

use crate::error::{Error, Result};
use crate::gpu::context::Context;
use crate::gpu::kernels::Kernel;
use crate::gpu::record::Recorder;
use crate::gpu::tensor::Tensor;
use crate::ops::conv::shaders::gemm_build;

/// Columns of C per invocation of the `rows` kernel and per workgroup of both kernels'
/// column blocks: `n` must be a multiple of this.
pub const GEMM_COLUMNS: usize = 32;

/// The kernel of a batched product.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GemmKernel {
    /// No workgroup memory: 8 rows × 32 columns per invocation (CPU drivers). With
    /// `subgroup`, the invocations of a subgroup share each step's loads of B (needs
    /// `SUBGROUP`, subgroups of 8 or more).
    Rows {
        /// Share B's loads through `subgroupShuffle`.
        subgroup: bool,
    },
    /// 64×64 tiles of C per workgroup, A and B staged in workgroup memory (GPUs).
    Tiled,
}

impl GemmKernel {
    /// The `rows` kernel, with subgroups where `ctx` has them
    /// ([`Context::has_subgroups_of_8`]).
    pub fn rows_on(ctx: &Context) -> GemmKernel {
        GemmKernel::Rows {
            subgroup: ctx.has_subgroups_of_8(),
        }
    }

    /// The pipeline of this kernel (for the `rows` kernel with `n` a multiple of 64: the
    /// build with 64 columns per invocation, `N16`).
    pub(crate) fn kernel(self, n: usize) -> Kernel {
        self.kernel_with(n, false)
    }

    /// [`GemmKernel::kernel`], reading A transposed where `trans_a` (`rows` only).
    fn kernel_with(self, n: usize, trans_a: bool) -> Kernel {
        match self {
            GemmKernel::Rows { subgroup } => {
                let mut k = Kernel::new(gemm_build(subgroup), "rows");
                if n.is_multiple_of(64) {
                    k.constants.push(("N16", 1.0));
                }
                if trans_a {
                    k.constants.push(("TRANS_A", 1.0));
                }
                k
            }
            GemmKernel::Tiled => Kernel::new(gemm_build(false), "tiled"),
        }
    }

    /// Rows of C per workgroup.
    fn rows_per_group(self) -> usize {
        match self {
            GemmKernel::Rows { .. } => 512,
            GemmKernel::Tiled => 64,
        }
    }

    /// Columns of C per workgroup, for `n` columns.
    fn columns_per_group(self, n: usize) -> usize {
        match self {
            GemmKernel::Rows { .. } if n.is_multiple_of(64) => 64,
            GemmKernel::Rows { .. } => GEMM_COLUMNS,
            GemmKernel::Tiled => 64,
        }
    }
}

#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct Params {
    pub(crate) m: u32,
    pub(crate) k4: u32,
    pub(crate) n4: u32,
    pub(crate) _p0: u32,
    pub(crate) a_batch: u32,
    pub(crate) b_batch: u32,
    pub(crate) c_batch: u32,
    pub(crate) _p1: u32,
}

/// Records `c[i] = a[i] · b[i]` for `i < batch`, with `a` holding `batch` row-major `m × k`
/// matrices, `b` `batch` `k × n` ones and `c` `batch` `m × n` ones, back to back (the tensors'
/// shapes are not read, only their lengths). `k` must be a multiple of 4 and `n` of
/// [`GEMM_COLUMNS`].
pub fn batched_gemm(
    rec: &mut Recorder,
    kernel: GemmKernel,
    a: &Tensor,
    b: &Tensor,
    c: &Tensor,
    batch: usize,
    mkn: [usize; 3],
) -> Result<()> {
    gemm(rec, kernel, [a, b, c], batch, mkn, false)
}

/// [`batched_gemm`] with `a` holding the transposes: `batch` row-major `k × m` matrices
/// (`c[i] = a[i]ᵀ · b[i]`). `kernel` must be [`GemmKernel::Rows`] and `m` a multiple of 8.
pub fn batched_gemm_at(
    rec: &mut Recorder,
    kernel: GemmKernel,
    a: &Tensor,
    b: &Tensor,
    c: &Tensor,
    batch: usize,
    mkn: [usize; 3],
) -> Result<()> {
    if kernel == GemmKernel::Tiled || !mkn[0].is_multiple_of(8) {
        return Err(Error::InvalidInput(format!(
            "transposed product with {kernel:?} and m = {}: needs the rows kernel and m a multiple of 8",
            mkn[0]
        )));
    }
    gemm(rec, kernel, [a, b, c], batch, mkn, true)
}

fn gemm(
    rec: &mut Recorder,
    kernel: GemmKernel,
    [a, b, c]: [&Tensor; 3],
    batch: usize,
    [m, k, n]: [usize; 3],
    trans_a: bool,
) -> Result<()> {
    if !k.is_multiple_of(4) || !n.is_multiple_of(GEMM_COLUMNS) || m == 0 || batch == 0 {
        return Err(Error::InvalidInput(format!(
            "batched product of {batch} × ({m}×{k})·({k}×{n}): k must be a multiple of 4, n of {GEMM_COLUMNS}"
        )));
    }
    if a.len() < batch * m * k || b.len() < batch * k * n || c.len() < batch * m * n {
        return Err(Error::InvalidInput(format!(
            "batched product of {batch} × ({m}×{k})·({k}×{n}) on tensors {:?}, {:?}, {:?}",
            a.shape(),
            b.shape(),
            c.shape()
        )));
    }
    let row_groups = m.div_ceil(kernel.rows_per_group());
    if row_groups > 65535 || batch > 65535 {
        return Err(Error::InvalidInput(format!(
            "batched product of {batch} × {m} rows: too many workgroups"
        )));
    }
    let p = Params {
        m: m as u32,
        k4: (k / 4) as u32,
        n4: (n / 4) as u32,
        _p0: 0,
        a_batch: (m * k / 4) as u32,
        b_batch: (k * n / 4) as u32,
        c_batch: (m * n / 4) as u32,
        _p1: 0,
    };
    let groups = [
        row_groups as u32,
        n.div_ceil(kernel.columns_per_group(n)) as u32,
        batch as u32,
    ];
    rec.dispatch(
        &kernel.kernel_with(n, trans_a),
        &p,
        &[(1, a), (2, b), (4, c)],
        groups,
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::GemmKernel;
    use crate::gpu::kernels::naga_check::{validate, with_constants};

    #[test]
    fn gemm_variants_validate_with_their_constants() {
        let kernels = [
            GemmKernel::Rows { subgroup: false },
            GemmKernel::Rows { subgroup: true },
            GemmKernel::Tiled,
        ];
        for kernel in kernels {
            for n in [super::GEMM_COLUMNS, 64] {
                for trans_a in [false, true] {
                    let k = kernel.kernel_with(n, trans_a && kernel != GemmKernel::Tiled);
                    let (module, info) = validate(&k.shader);
                    with_constants(&module, &info, &k)
                        .unwrap_or_else(|e| panic!("{kernel:?} n={n} trans_a={trans_a}: {e}"));
                }
            }
        }
    }
}
