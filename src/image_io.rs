//! Image files in and out: decoding (any format the `image` crate reads, EXIF orientation
//! applied, greyscale / 16-bit / CMYK converted to 8-bit RGB, alpha kept aside), resizing, and
//! encoding (alpha written back where the format has it).

use std::io::Cursor;
use std::path::Path;

use image::imageops::FilterType;
use image::{DynamicImage, GrayImage, ImageDecoder, ImageFormat, ImageReader, RgbImage};

use crate::error::{Error, Result};

/// A decoded picture: 8-bit RGB pixels and, when the file had one, its alpha channel.
#[derive(Clone, Debug)]
pub struct Picture {
    /// The colour pixels.
    pub rgb: RgbImage,
    /// The alpha channel, same size as `rgb`, if the input had one.
    pub alpha: Option<GrayImage>,
}

impl Picture {
    /// Splits any decoded image into 8-bit RGB and (if present) alpha.
    pub fn from_dynamic(img: DynamicImage) -> Self {
        if img.color().has_alpha() {
            let rgba = img.into_rgba8();
            let (w, h) = rgba.dimensions();
            let alpha = GrayImage::from_fn(w, h, |x, y| image::Luma([rgba.get_pixel(x, y)[3]]));
            let rgb = DynamicImage::ImageRgba8(rgba).to_rgb8();
            Picture {
                rgb,
                alpha: Some(alpha),
            }
        } else {
            Picture {
                rgb: img.into_rgb8(),
                alpha: None,
            }
        }
    }

    /// Width and height.
    pub fn dimensions(&self) -> (u32, u32) {
        self.rgb.dimensions()
    }

    /// This picture resized to `w × h` (Lanczos3; alpha too). A no-op at the same size.
    pub fn resized(self, w: u32, h: u32) -> Self {
        if self.dimensions() == (w, h) {
            return self;
        }
        Picture {
            rgb: image::imageops::resize(&self.rgb, w, h, FilterType::Lanczos3),
            alpha: self
                .alpha
                .map(|a| image::imageops::resize(&a, w, h, FilterType::Lanczos3)),
        }
    }
}

/// Reads an image file, detecting the format from its content, and applies its EXIF
/// orientation (JPEG, WebP, TIFF, PNG). GIF files give their first frame.
/// A truncated file is an error (JPEG decoders otherwise fill the missing part with grey).
pub fn read(path: &Path) -> Result<Picture> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let reader = ImageReader::new(Cursor::new(&bytes))
        .with_guessed_format()
        .map_err(|e| Error::io(path, e))?;
    match reader.format() {
        None => return Err(Error::image(path, "not an image in a format wgstyle reads")),
        Some(ImageFormat::Jpeg) if !jpeg_is_complete(&bytes) => {
            return Err(Error::image(
                path,
                "truncated JPEG (no end-of-image marker)",
            ))
        }
        Some(_) => {}
    }
    let mut reader = reader;
    // The image crate's default refuses to allocate more than 512 MiB; a photo of any size
    // that this machine can hold is fine, anything larger is refused before decoding.
    let avail = host_memory_available().unwrap_or(DEFAULT_DECODE_LIMIT);
    let mut limits = image::Limits::no_limits();
    limits.max_alloc = Some(avail);
    reader.limits(limits);
    let mut decoder = reader.into_decoder().map_err(|e| match e {
        image::ImageError::Limits(_) => Error::image(
            path,
            format!(
                "too large to decode in the {} MiB of memory available",
                avail >> 20
            ),
        ),
        e => Error::image(path, e),
    })?;
    let (w, h) = decoder.dimensions();
    // Decoded pixels, plus the 8-bit RGB (and alpha) copy made from them.
    let need = decoder
        .total_bytes()
        .saturating_add(4 * u64::from(w) * u64::from(h));
    if need > avail {
        return Err(Error::image(
            path,
            format!(
                "a {w}x{h} image needs {} MiB to decode, more than the {} MiB of memory available",
                need >> 20,
                avail >> 20
            ),
        ));
    }
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut img = DynamicImage::from_decoder(decoder).map_err(|e| Error::image(path, e))?;
    img.apply_orientation(orientation);
    Ok(Picture::from_dynamic(img))
}

/// The decoding limit where the system does not say how much memory is available.
const DEFAULT_DECODE_LIMIT: u64 = 16 << 30;

/// The host memory available to this process, where the system says (Linux: `MemAvailable`
/// of `/proc/meminfo`); `None` elsewhere.
pub fn host_memory_available() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// The largest width and height a format can store (`None`: no limit below `u32::MAX` that
/// wgstyle would reach).
pub fn max_dimension(format: ImageFormat) -> Option<u32> {
    match format {
        ImageFormat::Jpeg | ImageFormat::Gif => Some(65_535),
        ImageFormat::WebP => Some(16_384),
        ImageFormat::Ico => Some(256),
        ImageFormat::Bmp | ImageFormat::Png => Some(i32::MAX as u32),
        _ => None,
    }
}

/// Checks, before any work is done, that a `w × h` image can be written in `format`.
pub fn check_encodable(format: ImageFormat, w: u32, h: u32) -> std::result::Result<(), String> {
    match max_dimension(format) {
        Some(max) if w > max || h > max => Err(format!(
            "{w}x{h} is too large for {format:?} (at most {max} pixels a side); choose another \
             output format (e.g. PNG) or a smaller size"
        )),
        _ => Ok(()),
    }
}

/// Checks, before any work is done, that wgstyle can write its images in `format`: a 2×2
/// picture (with and without alpha) is encoded in memory.
pub fn check_format_writes(format: ImageFormat) -> std::result::Result<(), String> {
    if !format.writing_enabled() {
        return Err(format!("wgstyle cannot write {format:?} images"));
    }
    let rgb = RgbImage::from_pixel(2, 2, image::Rgb([10, 200, 30]));
    let plain = Picture {
        rgb: rgb.clone(),
        alpha: None,
    };
    let with_alpha = Picture {
        rgb,
        alpha: Some(GrayImage::from_pixel(2, 2, image::Luma([128]))),
    };
    for pic in [plain, with_alpha] {
        write(&pic, format, &mut Cursor::new(Vec::new()))
            .map_err(|e| format!("cannot write {format:?} images: {e}"))?;
    }
    Ok(())
}

/// Checks that resizing a `w × h` image to `tw × th` (and stylizing it) fits in host
/// memory, before anything is allocated: a stylized copy, the resize's float intermediate
/// and the encoder's copy.
pub fn check_resize(w: u32, h: u32, tw: u32, th: u32) -> std::result::Result<(), String> {
    let avail = host_memory_available().unwrap_or(DEFAULT_DECODE_LIMIT);
    let (w, h, tw, th) = (w as u128, h as u128, tw as u128, th as u128);
    let need = tw * th * 3 * 4 + tw * h.max(th) * 3 * 4;
    if tw > u32::MAX as u128 / 4 || th > u32::MAX as u128 / 4 || need > avail as u128 {
        return Err(format!(
            "a {tw}x{th} result (from {w}x{h}) needs about {} MiB of memory, more than the {} \
             MiB available; choose a smaller scale or size",
            need >> 20,
            avail >> 20
        ));
    }
    Ok(())
}

/// Whether a JPEG stream has an end-of-image marker (`FF D9`) after its last start-of-scan
/// (`FF DA`); entropy-coded data cannot contain `FF D9`, so a truncated file has none.
fn jpeg_is_complete(bytes: &[u8]) -> bool {
    let last_sos = bytes.windows(2).rposition(|w| w == [0xFF, 0xDA]);
    match last_sos {
        Some(i) => bytes[i..].windows(2).any(|w| w == [0xFF, 0xD9]),
        None => false,
    }
}

/// The size an image of `w × h` is stylized at: scaled by `scale` (if any), then shrunk so
/// that its longest side is at most `max_size` (if any), keeping the aspect ratio. Sides are
/// at least 1 pixel.
pub fn target_size(w: u32, h: u32, max_size: Option<u32>, scale: Option<f32>) -> (u32, u32) {
    let (mut fw, mut fh) = (w as f64, h as f64);
    if let Some(s) = scale {
        fw *= s as f64;
        fh *= s as f64;
    }
    if let Some(m) = max_size {
        let longest = fw.max(fh);
        if longest > m as f64 {
            let k = m as f64 / longest;
            fw *= k;
            fh *= k;
        }
    }
    // Saturating: an absurd scale gives u32::MAX, which `check_resize` refuses.
    let side = |v: f64| (v.round().min(u32::MAX as f64) as u32).max(1);
    (side(fw), side(fh))
}

/// Whether wgstyle writes an alpha channel in this format.
pub fn keeps_alpha(format: ImageFormat) -> bool {
    matches!(
        format,
        ImageFormat::Png | ImageFormat::WebP | ImageFormat::Tiff
    )
}

/// The format to write for an output path (from its extension), if the `image` crate can
/// write it.
pub fn output_format(path: &Path) -> Option<ImageFormat> {
    ImageFormat::from_path(path)
        .ok()
        .filter(|f| f.writing_enabled())
}

/// Encodes a picture in `format` (JPEG at quality 95; alpha kept where [`keeps_alpha`]).
/// `path` only names the file in errors.
pub fn encode(pic: &Picture, format: ImageFormat, path: &Path) -> Result<Vec<u8>> {
    let mut out = Cursor::new(Vec::new());
    write(pic, format, &mut out).map_err(|e| Error::image(path, e))?;
    Ok(out.into_inner())
}

/// Encodes a picture in `format` into `out` (JPEG at quality 95; alpha kept where
/// [`keeps_alpha`]), without copying the pixels when there is no alpha to merge.
pub fn write(
    pic: &Picture,
    format: ImageFormat,
    out: &mut (impl std::io::Write + std::io::Seek),
) -> image::ImageResult<()> {
    use image::{ExtendedColorType, ImageEncoder};
    let (w, h) = pic.dimensions();
    let rgba;
    let (bytes, color) = match (&pic.alpha, keeps_alpha(format)) {
        (Some(alpha), true) => {
            rgba = image::RgbaImage::from_fn(w, h, |x, y| {
                let [r, g, b] = pic.rgb.get_pixel(x, y).0;
                image::Rgba([r, g, b, alpha.get_pixel(x, y)[0]])
            });
            (rgba.as_raw().as_slice(), ExtendedColorType::Rgba8)
        }
        _ => (pic.rgb.as_raw().as_slice(), ExtendedColorType::Rgb8),
    };
    use ImageFormat::*;
    match format {
        Jpeg => image::codecs::jpeg::JpegEncoder::new_with_quality(out, 95)
            .write_image(bytes, w, h, color),
        // Formats that take 8-bit RGB(A) as it is.
        Png | WebP | Bmp | Tiff | Tga | Pnm | Qoi => {
            image::write_buffer_with_format(out, bytes, w, h, color, format)
        }
        // The others convert through a `DynamicImage` copy, in the pixel type the encoder
        // takes (OpenEXR and Radiance HDR store floats, Farbfeld 16-bit RGBA).
        _ => {
            let img = match color {
                ExtendedColorType::Rgba8 => DynamicImage::ImageRgba8(
                    image::RgbaImage::from_raw(w, h, bytes.to_vec()).expect("sizes match"),
                ),
                _ => DynamicImage::ImageRgb8(pic.rgb.clone()),
            };
            let img = match format {
                OpenExr if color == ExtendedColorType::Rgba8 => {
                    DynamicImage::ImageRgba32F(img.to_rgba32f())
                }
                OpenExr | Hdr => DynamicImage::ImageRgb32F(img.to_rgb32f()),
                Farbfeld => DynamicImage::ImageRgba16(img.to_rgba16()),
                _ => img,
            };
            img.write_to(out, format)
        }
    }
}

/// Whether a directory entry looks like an image wgstyle can read (by extension).
pub fn is_image_path(path: &Path) -> bool {
    ImageFormat::from_path(path)
        .map(|f| f.reading_enabled())
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_sizes() {
        assert_eq!(target_size(640, 480, None, None), (640, 480));
        assert_eq!(target_size(640, 480, Some(320), None), (320, 240));
        assert_eq!(target_size(480, 640, Some(1000), None), (480, 640));
        assert_eq!(target_size(640, 480, None, Some(0.5)), (320, 240));
        assert_eq!(target_size(640, 480, Some(100), Some(2.0)), (100, 75));
        assert_eq!(target_size(3, 1000, Some(10), None), (1, 10));
    }

    #[test]
    fn every_writable_output_format_encodes() {
        for f in [
            "a.png", "a.jpg", "a.exr", "a.hdr", "a.ff", "a.webp", "a.tif", "a.bmp",
        ] {
            let format = output_format(Path::new(f)).unwrap();
            assert_eq!(check_format_writes(format), Ok(()), "{f}");
        }
        assert!(check_resize(100, 100, 100_000_000, 100_000_000).is_err());
        assert!(check_resize(100, 100, 200, 200).is_ok());
    }

    #[test]
    fn truncated_jpeg_is_detected() {
        let img = RgbImage::from_fn(16, 16, |x, y| image::Rgb([x as u8 * 9, y as u8 * 9, 3]));
        let pic = Picture::from_dynamic(DynamicImage::ImageRgb8(img));
        let jpg = encode(&pic, ImageFormat::Jpeg, Path::new("x.jpg")).unwrap();
        assert!(jpeg_is_complete(&jpg));
        assert!(!jpeg_is_complete(&jpg[..jpg.len() - 10]));
    }

    #[test]
    fn alpha_round_trip_png() {
        let img = image::RgbaImage::from_fn(5, 4, |x, y| image::Rgba([x as u8, y as u8, 7, 40]));
        let pic = Picture::from_dynamic(DynamicImage::ImageRgba8(img.clone()));
        let bytes = encode(&pic, ImageFormat::Png, Path::new("x.png")).unwrap();
        let back = image::load_from_memory(&bytes).unwrap().to_rgba8();
        assert_eq!(back, img);
        let jpg = encode(&pic, ImageFormat::Jpeg, Path::new("x.jpg")).unwrap();
        assert!(!image::load_from_memory(&jpg).unwrap().color().has_alpha());
    }
}
