//! Pixels between the page (canvas RGBA bytes) and the library (RGB image, alpha aside).

use image::{GrayImage, RgbImage};
use wgstyle::image_io::{target_size, Picture};

/// Why a pixel buffer was refused.
#[derive(Debug, PartialEq, Eq)]
pub struct PixelError(pub String);

impl std::fmt::Display for PixelError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PixelError {}

/// Largest side accepted from the page: beyond this the canvas itself fails in most browsers.
pub const MAX_SIDE: u32 = 16384;

/// `width × height` pixels of `channels` (3: RGB, 4: RGBA, the canvas's layout) bytes each,
/// as a picture (alpha kept aside where there is one that is not fully opaque), scaled down
/// so that its longest side is at most `max_size` (0: no limit), as the CLI's `--max-size`.
pub fn picture_from(
    bytes: &[u8],
    width: u32,
    height: u32,
    channels: u32,
    max_size: u32,
) -> Result<Picture, PixelError> {
    if width == 0 || height == 0 {
        return Err(PixelError(format!("empty image ({width}x{height})")));
    }
    if width > MAX_SIDE || height > MAX_SIDE {
        return Err(PixelError(format!(
            "image of {width}x{height} is larger than {MAX_SIDE} pixels per side"
        )));
    }
    if channels != 3 && channels != 4 {
        return Err(PixelError(format!(
            "{channels} channels per pixel (expected 3 or 4)"
        )));
    }
    let expected = width as usize * height as usize * channels as usize;
    if bytes.len() != expected {
        return Err(PixelError(format!(
            "{} bytes for {width}x{height} pixels of {channels} channels (expected {expected})",
            bytes.len()
        )));
    }
    let c = channels as usize;
    let rgb: Vec<u8> = bytes
        .chunks_exact(c)
        .flat_map(|p| [p[0], p[1], p[2]])
        .collect();
    let alpha = (c == 4 && bytes.chunks_exact(4).any(|p| p[3] != 255)).then(|| {
        let a: Vec<u8> = bytes.chunks_exact(4).map(|p| p[3]).collect();
        GrayImage::from_raw(width, height, a).expect("sizes match")
    });
    let pic = Picture {
        rgb: RgbImage::from_raw(width, height, rgb).expect("sizes match"),
        alpha,
    };
    let limit = (max_size > 0).then_some(max_size);
    let (tw, th) = target_size(width, height, limit, None);
    Ok(pic.resized(tw, th))
}

/// RGBA bytes of a stylized image, with the input's alpha (opaque where it had none).
pub fn rgba_of(rgb: &RgbImage, alpha: Option<&GrayImage>) -> Vec<u8> {
    let mut out = Vec::with_capacity(rgb.as_raw().len() / 3 * 4);
    for (i, p) in rgb.as_raw().chunks_exact(3).enumerate() {
        let a = alpha.map_or(255, |a| a.as_raw()[i]);
        out.extend_from_slice(&[p[0], p[1], p[2], a]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rgba_round_trips_without_resizing() {
        let bytes: Vec<u8> = (0..6 * 4 * 4).map(|i| (i * 7 % 256) as u8).collect();
        let pic = picture_from(&bytes, 6, 4, 4, 0).unwrap();
        assert_eq!(pic.dimensions(), (6, 4));
        assert_eq!(rgba_of(&pic.rgb, pic.alpha.as_ref()), bytes);
    }

    #[test]
    fn opaque_rgba_has_no_alpha_and_rgb_is_taken_as_is() {
        let rgba: Vec<u8> = (0..4 * 3).flat_map(|i| [i as u8, 2, 3, 255]).collect();
        let pic = picture_from(&rgba, 4, 3, 4, 0).unwrap();
        assert!(pic.alpha.is_none());
        let rgb: Vec<u8> = (0..4 * 3).flat_map(|i| [i as u8, 2, 3]).collect();
        assert_eq!(picture_from(&rgb, 4, 3, 3, 0).unwrap().rgb, pic.rgb);
    }

    #[test]
    fn max_size_scales_the_longest_side_as_the_cli_does() {
        let rgb = vec![128u8; 200 * 100 * 3];
        let pic = picture_from(&rgb, 200, 100, 3, 50).unwrap();
        assert_eq!(pic.dimensions(), (50, 25));
        assert_eq!(
            picture_from(&rgb, 200, 100, 3, 500).unwrap().dimensions(),
            (200, 100)
        );
    }

    #[test]
    fn bad_buffers_are_refused_with_a_reason() {
        let e = picture_from(&[0; 10], 2, 2, 3, 0).unwrap_err();
        assert!(e.0.contains("10 bytes"), "{e}");
        assert!(picture_from(&[], 0, 2, 3, 0)
            .unwrap_err()
            .0
            .contains("empty"));
        assert!(picture_from(&[0; 8], 2, 2, 2, 0)
            .unwrap_err()
            .0
            .contains("channels"));
    }
}
