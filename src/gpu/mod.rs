//! The GPU engine: device context, tensors, buffer pool, kernel cache and pass recording.

pub mod context;
pub mod kernels;
pub mod pool;
pub mod record;
pub mod tensor;
pub mod timing;
pub mod wgsl;
