//! Networks built from [`ops`](crate::ops).

pub mod transformer;
pub mod transformer_grad;
pub mod vgg;
