//! wgstyle: neural style transfer on any GPU, with hand-written WGSL kernels driven by wgpu.
//!
//! ```no_run
//! # fn main() -> Result<(), wgstyle::Error> {
//! let ctx = wgstyle::Context::new()?;
//! let weights = wgstyle::weights::load_transform("scream.safetensors".as_ref())?;
//! let stylizer = wgstyle::Stylizer::new(&ctx, &weights)?;
//! let photo = image::open("photo.jpg").unwrap().to_rgb8();
//! let out = stylizer.stylize(&photo)?;
//! out.save("photo.scream.jpg").unwrap();
//! # Ok(()) }
//! ```
//!
//! An embedding program can pass its own device with [`Context::from_device`].

pub mod bench;
pub mod color;
pub mod error;
pub mod fsutil;
pub mod gpu;
pub mod image_io;
pub mod image_tiling;
pub mod nets;
pub mod ops;
pub mod optimize;
pub mod output;
pub mod rng;
pub mod stylize;
mod stylize_async;
pub mod train;
pub mod video;
pub mod weights;

pub use error::{Error, Result};
pub use gpu::context::Context;
pub use gpu::tensor::Tensor;
pub use nets::transformer::TransformWeights;
pub use stylize::Stylizer;
