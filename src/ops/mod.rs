//! GPU operations, one file per kernel family. Each op records dispatches into a
//! [`Recorder`](crate::gpu::record::Recorder) and returns its output tensor.

pub mod conv;
pub mod crop;
pub mod elementwise;
pub mod norm;
pub mod upsample;
