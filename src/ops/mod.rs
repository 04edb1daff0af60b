//! GPU operations, one file per kernel family. Each op records dispatches into a
//! [`Recorder`](crate::gpu::record::Recorder) and returns its output tensor.

pub mod conv;
pub mod conv_grad;
pub(crate) mod conv_measure;
pub mod conv_shape;
pub mod conv_tune;
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
pub mod precision;
pub mod reduce;
pub mod tune_cache;
pub mod upsample;
pub mod vecops;
pub mod winograd;
