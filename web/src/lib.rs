//! wgstyle in the browser: the library's WGSL kernels on the browser's WebGPU, for `app.js`.
//!
//! JavaScript API (built with `wasm-bindgen --target web`, see `web/README.md`):
//! - `await WebContext.create()`: the WebGPU device (rejects with a message without WebGPU);
//!   `ctx.adapter` names the adapter.
//! - `ctx.loadStyle(bytes, name)`: a style network from `.safetensors` bytes (throws a message
//!   for a file that is not one).
//! - `await stylizer.stylize(pixels, width, height, channels, maxSize)`: RGBA (4) or RGB (3)
//!   bytes, row-major; scaled down (Lanczos3, as the CLI's `--max-size`) so that its longest
//!   side is at most `maxSize` (0: no limit); resolves to `{width, height, rgba}`.

#[cfg(target_arch = "wasm32")]
mod bindings;
pub mod pixels;

#[cfg(target_arch = "wasm32")]
pub use bindings::*;
