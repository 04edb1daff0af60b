//! A style image larger than the adapter's largest GPU buffer allows: `train` scales it to
//! [`fitting_longest_side`]. Checked on a device created with a small storage-binding limit
//! (16 MiB, enough for VGG19's largest kernel: at most 65,536 pixels), where the style targets
//! of a 400×240 image fail and those of the image scaled to the computed size succeed.
//! Synthetic VGG19 weights.

mod common;

use wgstyle::bench::gatys::synthetic_vgg;
use wgstyle::nets::vgg::{fitting_longest_side, max_pixels};
use wgstyle::optimize::image::{resize_longest, upload_preprocessed};
use wgstyle::optimize::{LossSpec, Objective};
use wgstyle::{Context, Error};

const LIMIT: u64 = 16 << 20;

/// A context whose storage bindings hold at most [`LIMIT`] bytes.
fn small_context() -> Context {
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle());
    let adapter =
        pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions::default()))
            .unwrap();
    let desc = wgpu::DeviceDescriptor {
        required_limits: wgpu::Limits {
            max_storage_buffer_binding_size: LIMIT,
            ..adapter.limits()
        },
        ..Default::default()
    };
    let (device, queue) = pollster::block_on(adapter.request_device(&desc)).unwrap();
    Context::from_device(device, queue)
}

fn image(w: u32, h: u32) -> image::RgbImage {
    image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([
            (x * 7 % 256) as u8,
            (y * 13 % 256) as u8,
            ((x + y) % 256) as u8,
        ])
    })
}

/// The style targets of the default loss (what `train` computes first).
fn targets(ctx: &Context, img: &image::RgbImage) -> wgstyle::Result<()> {
    let vgg = synthetic_vgg(ctx)?;
    let x = upload_preprocessed(ctx, "style", img)?;
    Objective::new(ctx, &vgg, &LossSpec::default(), &x, &[(x.clone(), 1.0)])?;
    ctx.wait()
}

#[test]
fn a_style_image_too_large_for_one_buffer_is_scaled_to_fit() {
    let ctx = small_context();
    assert_eq!(max_pixels(&ctx), LIMIT / 256);
    let big = image(400, 240);
    let err = targets(&ctx, &big).unwrap_err();
    assert!(matches!(err, Error::TooLarge { .. }), "{err}");

    let side = fitting_longest_side(&ctx, 400, 240).expect("too large as it is");
    let fitted = resize_longest(&big, side);
    let px = fitted.width() as u64 * fitted.height() as u64;
    assert!(px <= max_pixels(&ctx), "{side}: {px} pixels");
    // As large as fits: one more pixel of side would not.
    let next = resize_longest(&big, side + 1);
    assert!(next.width() as u64 * next.height() as u64 > max_pixels(&ctx));
    targets(&ctx, &fitted).unwrap();

    // An image that fits is left as it is.
    assert_eq!(fitting_longest_side(&ctx, 256, 256), None);
    assert_eq!(fitting_longest_side(&ctx, 257, 256), Some(256));
}
