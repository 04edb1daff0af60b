//! Networks built from [`ops`](crate::ops).

pub mod transformer;
pub mod vgg;
