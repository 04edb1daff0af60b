//! Networks built from [`ops`](crate::ops).

pub mod transformer;
