//! GPU operations, one file per kernel family. Each op records dispatches into a
//! [`Recorder`](crate::gpu::record::Recorder) and returns its output tensor.

pub mod conv;
pub mod conv_grad;
pub mod crop;
pub mod elementwise;
pub mod gemm;
pub mod gram;
pub mod loss;
pub mod norm;
pub mod norm_grad;
pub mod optim;
pub mod pool;
pub mod reduce;
pub mod upsample;
pub mod vecops;
