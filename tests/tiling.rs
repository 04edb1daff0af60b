//! Tiled stylization equals the untiled result (instance-norm statistics are gathered over
//! the whole image before any tile is normalised).

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
    for (iw, ih, tile) in [(37, 29, 16), (61, 50, 24), (128, 97, 48)] {
        let img = photo(&shared, iw, ih);
        let whole = s.stylize(&img).unwrap();
        let tiled = s.stylize_tiled(&img, tile).unwrap();
        let d = max_diff(&whole, &tiled);
        eprintln!("{iw}x{ih} in {tile}px tiles: max diff {d}");
        assert!(d <= 1, "{iw}x{ih} tile {tile}: max diff {d}");
    }
}
