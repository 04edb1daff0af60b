//! Creating a [`Context`] without blocking: the browser's path (WebGPU), usable natively too.
//!
//! [`Context::new`] enumerates adapters and waits on the device request with `pollster`, which
//! cannot work in a browser (no blocking on the main thread, no enumeration on WebGPU). These
//! functions await instead.

use crate::error::{Error, Result};
use crate::gpu::context::Context;

/// The optional device features the kernels use where the adapter has them. On the web none:
/// there the kernels are the f32, subgroup-free, non-cooperative builds whatever the browser
/// offers (browsers' subgroup and f16 support is still uneven).
fn wanted_features() -> wgpu::Features {
    if cfg!(target_arch = "wasm32") {
        wgpu::Features::empty()
    } else {
        wgpu::Features::TIMESTAMP_QUERY | wgpu::Features::SHADER_F16 | wgpu::Features::SUBGROUP
    }
}

impl Context {
    /// Asks `backends` (on the web: [`wgpu::Backends::BROWSER_WEBGPU`]) for a high-performance
    /// adapter and creates a device on it, as [`Context::from_adapter_async`] does.
    pub async fn new_async(backends: wgpu::Backends) -> Result<Self> {
        let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
        desc.backends = backends;
        let instance = wgpu::Instance::new(desc);
        let adapter = instance
            .request_adapter(&wgpu::RequestAdapterOptions {
                power_preference: wgpu::PowerPreference::HighPerformance,
                force_fallback_adapter: false,
                compatible_surface: None,
                apply_limit_buckets: false,
            })
            .await
            .map_err(|e| Error::NoAdapter {
                filter: format!(" on backends {backends:?}"),
                found: format!("none ({e})"),
            })?;
        Self::from_adapter_async(&adapter).await
    }

    /// Creates a device on `adapter` with the adapter's own limits (large images need its
    /// buffer-size limits) and the features the kernels use there (none on the web), and
    /// wraps it. Nothing here blocks.
    pub async fn from_adapter_async(adapter: &wgpu::Adapter) -> Result<Self> {
        let info = adapter.get_info();
        let desc = wgpu::DeviceDescriptor {
            label: Some("wgstyle"),
            required_features: adapter.features() & wanted_features(),
            required_limits: adapter.limits(),
            memory_hints: wgpu::MemoryHints::Performance,
            ..Default::default()
        };
        let (device, queue) =
            adapter
                .request_device(&desc)
                .await
                .map_err(|source| Error::RequestDevice {
                    adapter: info.name.clone(),
                    source,
                })?;
        Ok(Self::from_adapter_device(adapter, device, queue))
    }
}
