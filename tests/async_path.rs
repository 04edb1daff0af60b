//! The non-blocking path the browser uses (`Context::new_async`, `Stylizer::stylize_async`,
//! tiles through `Tiler::run_async`) gives the blocking path's result, awaited natively.

mod common;

use wgstyle::{weights, Context, Stylizer};

/// One pass and a tiled pass (under a 1 MiB budget) through `stylize_async`, on a context
/// made by `Context::new_async`, equal `stylize` on the shared context within 1/255.
#[test]
#[cfg_attr(shared_absent, ignore = "needs ../shared (or $WGSTYLE_SHARED)")]
fn stylize_async_equals_stylize_untiled_and_tiled() {
    let shared = shared_or_skip!();
    let w = weights::load_transform(&shared.join("weights/styles/scream")).unwrap();
    let img = image::open(shared.join("images/content/chicago.jpg"))
        .unwrap()
        .to_rgb8();
    let img = image::imageops::resize(&img, 61, 45, image::imageops::FilterType::Triangle);
    let want = Stylizer::new(common::ctx(), &w)
        .unwrap()
        .stylize(&img)
        .unwrap();

    let backends = wgpu::Backends::from_env().unwrap_or(wgpu::Backends::PRIMARY);
    let ctx = pollster::block_on(Context::new_async(backends)).unwrap();
    let mut s = Stylizer::new(&ctx, &w).unwrap();
    let got = pollster::block_on(s.stylize_async(&img)).unwrap();
    let d = common::max_diff_u8(&want, &got);
    assert!(d <= 1, "async untiled: max diff {d}");

    s.set_memory_budget(Some(1 << 20));
    assert!(
        s.tile_size(45, 61).unwrap().is_some(),
        "the budget must force tiles"
    );
    let tiled = pollster::block_on(s.stylize_async(&img)).unwrap();
    let d = common::max_diff_u8(&want, &tiled);
    assert!(d <= 1, "async tiled: max diff {d}");
}
