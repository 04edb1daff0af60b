//! Post-processing of a stylized image against its content image: colour preservation
//! (stylized luminance, original chroma) and strength (a blend of the two).

use image::RgbImage;

use crate::error::{Error, Result};

/// RGB (0..255) to full-range YCbCr (ITU-R BT.601, as in JPEG).
pub fn rgb_to_ycbcr([r, g, b]: [f32; 3]) -> [f32; 3] {
    let y = 0.299 * r + 0.587 * g + 0.114 * b;
    let cb = 128.0 - 0.168_736 * r - 0.331_264 * g + 0.5 * b;
    let cr = 128.0 + 0.5 * r - 0.418_688 * g - 0.081_312 * b;
    [y, cb, cr]
}

/// Full-range YCbCr (BT.601) to RGB, not clipped.
pub fn ycbcr_to_rgb([y, cb, cr]: [f32; 3]) -> [f32; 3] {
    let (cb, cr) = (cb - 128.0, cr - 128.0);
    [
        y + 1.402 * cr,
        y - 0.344_136 * cb - 0.714_136 * cr,
        y + 1.772 * cb,
    ]
}

fn check_sizes(a: &RgbImage, b: &RgbImage) -> Result<()> {
    if a.dimensions() != b.dimensions() {
        return Err(Error::InvalidInput(format!(
            "stylized image is {:?} but the original is {:?}",
            a.dimensions(),
            b.dimensions()
        )));
    }
    Ok(())
}

fn to_u8(v: f32) -> u8 {
    v.round().clamp(0.0, 255.0) as u8
}

/// Keeps the original's colours: the luminance (Y) of `stylized` with the chroma (Cb, Cr) of
/// `original`, in YCbCr. Pixels whose result falls outside the RGB cube are clipped.
pub fn preserve_colors(stylized: &RgbImage, original: &RgbImage) -> Result<RgbImage> {
    check_sizes(stylized, original)?;
    let mut out = stylized.clone();
    for (o, p) in out.pixels_mut().zip(original.pixels()) {
        let s = o.0.map(f32::from);
        let y = rgb_to_ycbcr(s)[0];
        let [_, cb, cr] = rgb_to_ycbcr(p.0.map(f32::from));
        o.0 = ycbcr_to_rgb([y, cb, cr]).map(to_u8);
    }
    Ok(out)
}

/// `strength · stylized + (1 − strength) · original`, rounded; `strength` in 0..=1
/// (0 gives the original back, 1 the stylized image).
pub fn blend(stylized: &RgbImage, original: &RgbImage, strength: f32) -> Result<RgbImage> {
    check_sizes(stylized, original)?;
    if !(0.0..=1.0).contains(&strength) {
        return Err(Error::InvalidInput(format!(
            "strength must be in 0..1, got {strength}"
        )));
    }
    let mut out = stylized.clone();
    for (o, p) in out.pixels_mut().zip(original.pixels()) {
        for c in 0..3 {
            let v = strength * o.0[c] as f32 + (1.0 - strength) * p.0[c] as f32;
            o.0[c] = to_u8(v);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ycbcr_round_trip() {
        for rgb in [[0.0, 0.0, 0.0], [255.0, 10.0, 99.0], [12.0, 200.0, 255.0]] {
            let back = ycbcr_to_rgb(rgb_to_ycbcr(rgb));
            for c in 0..3 {
                assert!((back[c] - rgb[c]).abs() < 0.01, "{rgb:?} -> {back:?}");
            }
        }
    }

    #[test]
    fn preserve_and_blend() {
        let a = RgbImage::from_pixel(2, 2, image::Rgb([200, 100, 50]));
        let b = RgbImage::from_pixel(2, 2, image::Rgb([90, 120, 140]));
        let p = preserve_colors(&a, &b).unwrap();
        let (yp, ya) = (
            rgb_to_ycbcr(p.get_pixel(0, 0).0.map(f32::from)),
            rgb_to_ycbcr(a.get_pixel(0, 0).0.map(f32::from)),
        );
        let yb = rgb_to_ycbcr(b.get_pixel(0, 0).0.map(f32::from));
        assert!((yp[0] - ya[0]).abs() < 1.0 && (yp[1] - yb[1]).abs() < 1.5);
        assert_eq!(blend(&a, &b, 0.0).unwrap(), b);
        assert_eq!(blend(&a, &b, 1.0).unwrap(), a);
        assert_eq!(
            blend(&a, &b, 0.5).unwrap().get_pixel(1, 1).0,
            [145, 110, 95]
        );
        assert!(blend(&a, &b, 1.5).is_err());
    }
}
