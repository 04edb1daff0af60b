//! Stylization in patches (image tiling) equals the one-pass result (instance-norm
//! statistics are gathered over the whole image before any patch is normalised), and stays
//! within a memory budget.

mod common;

use wgstyle::{weights, Stylizer};

fn photo(shared: &std::path::Path, w: u32, h: u32) -> image::RgbImage {
    let img = image::open(shared.join("images/content/chicago.jpg"))
        .unwrap()
        .to_rgb8();
    image::imageops::resize(&img, w, h, image::imageops::FilterType::Triangle)
}

/// Patches equal one pass (max difference 1/255 after clipping) on odd sizes: 37x29 in
/// 16-pixel patches, and 128x97 through the normal `stylize` under a 1 MiB budget, which
/// splits it into 32-pixel patches (4x4 at full resolution, 4x4 on the quarter grid); the
/// pool's peak stays under the budget (measured 0.5 MiB; one pass needs 4.6 MiB).
#[test]
#[cfg_attr(shared_absent, ignore = "needs ../shared (or $WGSTYLE_SHARED)")]
fn patches_equal_one_pass_on_odd_sizes() {
    let shared = shared_or_skip!();
    let w = weights::load_transform(&shared.join("weights/styles/scream")).unwrap();
    let ctx = common::ctx();
    let s = Stylizer::new(ctx, &w).unwrap();
    let img = photo(&shared, 37, 29);
    let whole = s.stylize(&img).unwrap();
    let d = common::max_diff_u8(&whole, &s.stylize_in_patches(&img, 16).unwrap());
    eprintln!("37x29 in 16px patches: max diff {d}");
    assert!(d <= 1, "37x29 patch 16: max diff {d}");

    let img = photo(&shared, 128, 97);
    let whole = s.stylize(&img).unwrap();
    // A context of its own: its pool counts only this run, and the budget limits its pool.
    let own = common::new_context();
    let mut s = Stylizer::new(&own, &w).unwrap();
    let budget = 1u64 << 20;
    s.set_memory_budget(Some(budget));
    assert_eq!(s.patch_size(97, 128).unwrap(), Some(32));
    own.reset_peak_memory();
    let patched = s.stylize(&img).unwrap();
    let stats = own.pool_stats();
    let (peak, held) = (stats.peak_bytes_in_use, stats.peak_bytes_held);
    let d = common::max_diff_u8(&whole, &patched);
    eprintln!("128x97 under 1 MiB: max diff {d}, peak {peak} bytes in use, {held} held");
    assert!(d <= 1, "128x97 under 1 MiB: max diff {d}");
    assert!(peak <= budget, "peak {peak} over the budget");
    // Edge patches have other sizes than inner ones: without the pool limit, free buffers of
    // every size class seen stay held, beyond the budget.
    assert!(held <= budget, "pool held {held} bytes, over the budget");
}

#[test]
#[cfg_attr(shared_absent, ignore = "needs ../shared (or $WGSTYLE_SHARED)")]
fn a_memory_budget_chooses_patches_that_fit() {
    let shared = shared_or_skip!();
    let w = weights::load_transform(&shared.join("weights/styles/wave")).unwrap();
    let mut s = Stylizer::new(common::ctx(), &w).unwrap();
    // No budget: a 3000x2000 photo needs 768 MB tensors (32 float channels at full
    // resolution): one pass where the adapter binds that much (lavapipe: 128 MiB, so patches).
    let one_pass = s.patch_size(2000, 3000).unwrap();
    let binds = common::ctx().max_binding_bytes() >= 3000 * 2000 * 128;
    assert_eq!(one_pass.is_none(), binds, "{one_pass:?}");
    let budget = 256u64 << 20;
    s.set_memory_budget(Some(budget));
    let t = s
        .patch_size(2000, 3000)
        .unwrap()
        .expect("256 MiB forces patches at 3000x2000");
    let window = (t as u64 + 2 * wgstyle::image_tiling::HALO as u64).pow(2);
    assert!(
        window * wgstyle::image_tiling::PATCH_BYTES_PER_PIXEL <= budget,
        "patch {t} does not fit"
    );
    assert!(t >= 512, "patch {t} needlessly small");
    eprintln!("3000x2000: one pass {one_pass:?}; under 256 MiB: {t}px patches");
    // 12000x8000 under 1 GiB, as the CLI's --max-memory 1GiB asks.
    s.set_memory_budget(Some(1 << 30));
    assert!(s.patch_size(8000, 12000).unwrap().is_some());
    // Too small for even the smallest patch: a clear error, not a panic.
    s.set_memory_budget(Some(64 << 10));
    assert!(matches!(
        s.patch_size(2000, 3000),
        Err(wgstyle::Error::TooLarge { .. })
    ));
    let img = photo(&shared, 300, 200);
    assert!(matches!(
        s.stylize(&img),
        Err(wgstyle::Error::TooLarge { .. })
    ));
}
