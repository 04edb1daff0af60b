//! Hands wgstyle a wgpu device that the program created itself, as an application that
//! already renders with wgpu would: wgstyle then records its work on that device and queue.
//!
//! ```sh
//! cargo run --release --example own_device -- scream photo.jpg photo.scream.png
//! ```
//!
//! STYLE is a `.safetensors` file, a checkpoint directory or a style name (see the `stylize`
//! example). OUT must not exist yet.

use std::path::PathBuf;

use anyhow::{bail, Context as _};
use wgstyle::weights::catalog::Catalog;
use wgstyle::weights::search::{resolve, SearchPath};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [style, input, output] = args.as_slice() else {
        bail!("usage: cargo run --example own_device -- STYLE IN OUT");
    };
    let output = PathBuf::from(output);
    let format = wgstyle::image_io::output_format(&output)
        .with_context(|| format!("{}: not an image extension", output.display()))?;
    if output.exists() {
        bail!("{} exists; not replacing it", output.display());
    }
    let style = resolve(style, &SearchPath::from_env(None), &Catalog::builtin())?;
    let weights = wgstyle::weights::load_transform(&style.path)?;
    let mut picture = wgstyle::image_io::read(input.as_ref())?;

    // The application's own instance, adapter and device.
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle());
    let adapter = pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions {
        power_preference: wgpu::PowerPreference::HighPerformance,
        ..Default::default()
    }))
    .context("no GPU adapter (without a GPU: install Mesa's lavapipe, mesa-vulkan-drivers)")?;
    // wgstyle uses the device's limits as they are: ask for the adapter's own buffer sizes
    // so that large images run in one pass. SUBGROUP and SHADER_F16, where the adapter has
    // them, let wgstyle pick its faster kernel builds; neither is required.
    let features = adapter.features() & (wgpu::Features::SUBGROUP | wgpu::Features::SHADER_F16);
    let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
        label: Some("my application"),
        required_features: features,
        required_limits: adapter.limits(),
        ..Default::default()
    }))
    .context("creating the device")?;

    // Hand it over: wgstyle keeps clones of the device and queue, so the application can
    // go on using its own handles for its rendering.
    let ctx = wgstyle::Context::from_adapter_device(&adapter, device.clone(), queue.clone());
    let stylizer = wgstyle::Stylizer::new(&ctx, &weights)?;
    picture.rgb = stylizer.stylize(&picture.rgb)?;
    let bytes = wgstyle::image_io::encode(&picture, format, &output)?;
    wgstyle::fsutil::write_bytes_atomic(&output, false, &bytes)?;
    println!(
        "{} -> {} on the application's device ({})",
        input,
        output.display(),
        adapter.get_info().name
    );
    Ok(())
}
