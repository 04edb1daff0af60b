//! The non-blocking path the browser uses (`Context::new_async`, `Stylizer::stylize_async`,
//! patches through `Patches::run_async`) gives the blocking path's result, awaited natively.

mod common;

use wgstyle::{weights, Context, Stylizer};

/// One pass and a pass in patches (under a 1 MiB budget) through `stylize_async`, on a context
/// made by `Context::new_async`, equal `stylize` on the shared context (one pass: exactly; in patches: within 1/255, as tests/tiling.rs).
#[test]
#[cfg_attr(shared_absent, ignore = "needs ../shared (or $WGSTYLE_SHARED)")]
fn stylize_async_equals_stylize_in_one_pass_and_in_patches() {
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
    assert_eq!(d, 0, "async, one pass: max diff {d}");

    s.set_memory_budget(Some(1 << 20));
    assert!(
        s.patch_size(45, 61).unwrap().is_some(),
        "the budget must force patches"
    );
    let patched = pollster::block_on(s.stylize_async(&img)).unwrap();
    let d = common::max_diff_u8(&want, &patched);
    assert!(d <= 1, "async, in patches: max diff {d}");
}
