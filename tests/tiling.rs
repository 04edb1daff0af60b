//! Tiled stylization equals the untiled result (instance-norm statistics are gathered over
//! the whole image before any tile is normalised), and stays within a memory budget.

mod common;

use wgstyle::{weights, Stylizer};

fn max_diff(a: &image::RgbImage, b: &image::RgbImage) -> i32 {
    assert_eq!(a.dimensions(), b.dimensions());
    a.as_raw()
        .iter()
        .zip(b.as_raw())
        .map(|(p, q)| (*p as i32 - *q as i32).abs())
        .max()
        .unwrap()
}

fn photo(shared: &std::path::Path, w: u32, h: u32) -> image::RgbImage {
    let img = image::open(shared.join("images/content/chicago.jpg"))
        .unwrap()
        .to_rgb8();
    image::imageops::resize(&img, w, h, image::imageops::FilterType::Triangle)
}

#[test]
fn tiles_equal_untiled_on_odd_sizes() {
    let shared = shared_or_skip!();
    let w = weights::load_transform(&shared.join("weights/styles/scream")).unwrap();
    let s = Stylizer::new(common::ctx(), &w).unwrap();
    // 37x29 in 16-px tiles: 3x2 tiles at full resolution; 128x97 in 48-px tiles: 3x3.
    for (iw, ih, tile) in [(37, 29, 16), (128, 97, 48)] {
        let img = photo(&shared, iw, ih);
        let whole = s.stylize(&img).unwrap();
        let tiled = s.stylize_tiled(&img, tile).unwrap();
        let d = max_diff(&whole, &tiled);
        eprintln!("{iw}x{ih} in {tile}px tiles: max diff {d}");
        assert!(d <= 1, "{iw}x{ih} tile {tile}: max diff {d}");
    }
}

#[test]
fn a_memory_budget_chooses_tiles_that_fit() {
    let shared = shared_or_skip!();
    let w = weights::load_transform(&shared.join("weights/styles/wave")).unwrap();
    let mut s = Stylizer::new(common::ctx(), &w).unwrap();
    // No budget: a 3000x2000 photo needs 768 MB tensors (32 float channels at full
    // resolution): one pass where the adapter binds that much (lavapipe: 128 MiB, so tiles).
    let one_pass = s.tile_size(2000, 3000).unwrap();
    let binds = common::ctx().max_binding_bytes() >= 3000 * 2000 * 128;
    assert_eq!(one_pass.is_none(), binds, "{one_pass:?}");
    let budget = 256u64 << 20;
    s.set_memory_budget(Some(budget));
    let t = s
        .tile_size(2000, 3000)
        .unwrap()
        .expect("256 MiB forces tiles at 3000x2000");
    let window = (t as u64 + 2 * wgstyle::tiled::HALO as u64).pow(2);
    assert!(
        window * wgstyle::tiled::BYTES_PER_PIXEL <= budget,
        "tile {t} does not fit"
    );
    assert!(t >= 128, "tile {t} needlessly small");
    eprintln!("3000x2000: untiled {one_pass:?}; under 256 MiB: {t}px tiles");
    // 12000x8000 under 1 GiB, as the CLI's --max-memory 1GiB asks.
    s.set_memory_budget(Some(1 << 30));
    assert!(s.tile_size(8000, 12000).unwrap().is_some());
    // Too small for even the smallest tile: a clear error, not a panic.
    s.set_memory_budget(Some(1 << 20));
    assert!(matches!(
        s.tile_size(2000, 3000),
        Err(wgstyle::Error::TooLarge { .. })
    ));
    let img = photo(&shared, 300, 200);
    assert!(matches!(
        s.stylize(&img),
        Err(wgstyle::Error::TooLarge { .. })
    ));
}
