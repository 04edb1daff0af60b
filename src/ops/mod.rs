//! GPU operations, one file per kernel family. Each op records dispatches into a
//! [`Recorder`](crate::gpu::record::Recorder) and returns its output tensor.

pub mod conv;
pub mod conv_grad;
pub mod crop;
pub mod elementwise;
pub mod gemm;
pub mod gram;
#[cfg(test)]
mod layout_test;
pub mod loss;
pub mod norm;
pub mod norm_grad;
pub mod optim;
pub mod pool;
pub mod reduce;
pub mod upsample;
pub mod vecops;

use crate::gpu::kernels::Shader;

/// The one-file shaders of the op modules (each is its file of `shaders/` as it is).
const SHADER_FILES: [Shader; 13] = [
    conv_grad::CONV2D_GRAD,
    crop::CROP,
    elementwise::ELEMENTWISE,
    gram::GRAM,
    loss::LOSS,
    norm::INSTANCE_NORM,
    norm_grad::INSTANCE_NORM_GRAD,
    optim::OPTIM,
    pool::POOL,
    reduce::REDUCE,
    upsample::UPSAMPLE,
    vecops::VECOPS,
    conv::winograd::WINOGRAD,
];

/// Every shader build of every op module: the one-file shaders and the convolution's
/// preprocessed builds. The naga test validates each.
pub fn shaders() -> Vec<Shader> {
    let mut all = SHADER_FILES.to_vec();
    all.extend(conv::shaders::builds());
    all
}

/// The paths under `shaders/` that the builds of [`shaders`] read.
pub fn shader_files() -> Vec<&'static str> {
    let mut files: Vec<&str> = SHADER_FILES.iter().map(|s| s.name).collect();
    files.extend(conv::shaders::FILES);
    files
}

#[cfg(test)]
mod shader_tests;
