//! The wasm-bindgen surface that `app.js` calls (see the crate documentation).

use std::rc::Rc;

use js_sys::Promise;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;
use wgstyle::{Context, Stylizer};

use crate::pixels::{picture_from, rgba_of};

/// Panics (bugs) reach the browser console with their message instead of "unreachable".
#[wasm_bindgen(start)]
pub fn start() {
    std::panic::set_hook(Box::new(|info| {
        web_sys::console::error_1(&JsValue::from_str(&format!("wgstyle panicked: {info}")));
    }));
}

fn js_error(msg: impl std::fmt::Display) -> JsValue {
    JsError::new(&msg.to_string()).into()
}

/// Whether this browser exposes WebGPU (`navigator.gpu`).
fn has_webgpu() -> bool {
    let global = js_sys::global();
    js_sys::Reflect::get(&global, &"navigator".into())
        .ok()
        .filter(|n| !n.is_undefined())
        .and_then(|n| js_sys::Reflect::get(&n, &"gpu".into()).ok())
        .is_some_and(|g| !g.is_undefined() && !g.is_null())
}

/// The browser's WebGPU device, with wgstyle's buffer pool and kernel cache.
#[wasm_bindgen]
pub struct WebContext {
    ctx: Context,
}

#[wasm_bindgen]
impl WebContext {
    /// Requests a WebGPU adapter and device; rejects with a message where there is none.
    pub async fn create() -> Result<WebContext, JsValue> {
        if !has_webgpu() {
            return Err(js_error(
                "this browser has no WebGPU (navigator.gpu is missing): use a recent Chrome, \
                 Edge or Firefox, or enable WebGPU in its settings",
            ));
        }
        let ctx = Context::new_async(wgpu::Backends::BROWSER_WEBGPU)
            .await
            .map_err(|e| js_error(format!("no WebGPU adapter: {e}")))?;
        Ok(WebContext { ctx })
    }

    /// The adapter's description as the browser reports it (may be empty).
    #[wasm_bindgen(getter)]
    pub fn adapter(&self) -> String {
        let info = self.ctx.adapter_info();
        let kind = match info.device_type {
            wgpu::DeviceType::Cpu => " (CPU fallback)",
            _ => "",
        };
        let name = if info.name.is_empty() {
            "WebGPU adapter"
        } else {
            info.name.as_str()
        };
        format!("{name}{kind}")
    }

    /// The largest buffer binding the device allows, in bytes (larger images are tiled).
    #[wasm_bindgen(getter, js_name = maxBindingBytes)]
    pub fn max_binding_bytes(&self) -> f64 {
        self.ctx.max_binding_bytes() as f64
    }

    /// Makes every convolution use the kernel variant `name` (as `wgstyle bench` names them,
    /// e.g. `tiled 16x16`); an empty name goes back to the library's choice.
    #[wasm_bindgen(js_name = setConvVariant)]
    pub fn set_conv_variant(&self, name: &str) -> Result<(), JsValue> {
        let tile = if name.is_empty() {
            None
        } else {
            Some(
                name.parse::<wgstyle::ops::conv::ConvAlgo>()
                    .map_err(js_error)?,
            )
        };
        self.ctx.set_conv_variant(tile).map_err(js_error)
    }

    /// A style network from the bytes of a `.safetensors` file written by `wgstyle convert`
    /// (`name` only names it in messages).
    #[wasm_bindgen(js_name = loadStyle)]
    pub fn load_style(&self, bytes: &[u8], name: &str) -> Result<WebStylizer, JsValue> {
        let path = std::path::Path::new(name);
        let (st, meta) = wgstyle::weights::safetensors::parse(path, bytes).map_err(js_error)?;
        let weights =
            wgstyle::weights::safetensors::transform_from(path, &st, &meta).map_err(js_error)?;
        let stylizer = Stylizer::new(&self.ctx, &weights).map_err(js_error)?;
        Ok(WebStylizer {
            inner: Rc::new(stylizer),
        })
    }
}

/// A style network on the device.
#[wasm_bindgen]
pub struct WebStylizer {
    inner: Rc<Stylizer>,
}

/// A stylized image: `width × height` RGBA bytes.
#[wasm_bindgen(getter_with_clone)]
pub struct Styled {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// RGBA bytes, row-major.
    pub rgba: Vec<u8>,
}

#[wasm_bindgen]
impl WebStylizer {
    /// Stylizes `width × height` pixels of `channels` (3 or 4) bytes, scaled down first so that
    /// the longest side is at most `maxSize` (0: no limit). Resolves to a `Styled`.
    pub fn stylize(
        &self,
        pixels: Vec<u8>,
        width: u32,
        height: u32,
        channels: u32,
        max_size: u32,
    ) -> Promise {
        let stylizer = self.inner.clone();
        future_to_promise(async move {
            let pic = picture_from(&pixels, width, height, channels, max_size).map_err(js_error)?;
            drop(pixels);
            let out = stylizer.stylize_async(&pic.rgb).await.map_err(js_error)?;
            Ok(Styled {
                width: out.width(),
                height: out.height(),
                rgba: rgba_of(&out, pic.alpha.as_ref()),
            }
            .into())
        })
    }
}
