//! Images to and from VGG's input space (BGR, 0..255 minus the Caffe mean) and the
//! original-colours transfer (luminance of the result, chroma of the content).

use image::RgbImage;

use crate::error::Result;
use crate::gpu::context::Context;
use crate::gpu::tensor::Tensor;
use crate::nets::vgg::CAFFE_MEAN_BGR;

/// RGB 8-bit image to preprocessed BGR floats, row-major `[h, w, 3]`.
pub fn preprocess(img: &RgbImage) -> Vec<f32> {
    let mut v = Vec::with_capacity(img.len());
    for p in img.pixels() {
        for (c, mean) in CAFFE_MEAN_BGR.iter().enumerate() {
            v.push(p.0[2 - c] as f32 - mean);
        }
    }
    v
}

/// Uploads `img` preprocessed ([`preprocess`]) as a `[1, h, w, 3]` tensor labelled `label`.
pub fn upload_preprocessed(ctx: &Context, label: &str, img: &RgbImage) -> Result<Tensor> {
    let (w, h) = img.dimensions();
    Tensor::upload(ctx, label, [1, h as usize, w as usize, 3], &preprocess(img))
}

/// Preprocessed BGR floats to RGB floats 0..255 (not clipped), `[h, w, 3]`.
pub fn deprocess_f32(x: &[f32]) -> Vec<f32> {
    let mut v = Vec::with_capacity(x.len());
    for px in x.chunks_exact(3) {
        for c in 0..3 {
            v.push(px[2 - c] + CAFFE_MEAN_BGR[2 - c]);
        }
    }
    v
}

/// RGB floats (0..255) to an 8-bit image, clipped and rounded.
pub fn to_rgb8(rgb: &[f32], w: u32, h: u32) -> RgbImage {
    let bytes = rgb
        .iter()
        .map(|v| v.clamp(0.0, 255.0).round() as u8)
        .collect();
    RgbImage::from_raw(w, h, bytes).expect("w * h * 3 values")
}

/// BT.601 RGB → YUV (Y 0..255, U and V centred on 0).
pub fn rgb_to_yuv(p: [f32; 3]) -> [f32; 3] {
    let y = 0.299 * p[0] + 0.587 * p[1] + 0.114 * p[2];
    [y, 0.492 * (p[2] - y), 0.877 * (p[0] - y)]
}

/// BT.601 YUV → RGB (inverse of [`rgb_to_yuv`]).
pub fn yuv_to_rgb(p: [f32; 3]) -> [f32; 3] {
    let b = p[0] + p[1] / 0.492;
    let r = p[0] + p[2] / 0.877;
    let g = (p[0] - 0.299 * r - 0.114 * b) / 0.587;
    [r, g, b]
}

/// jcjohnson's `-original_colors 1`: the luminance (Y) of `generated` with the chroma (U, V)
/// of `content`; both RGB floats 0..255 of the same size.
pub fn original_colors(generated: &[f32], content: &[f32]) -> Vec<f32> {
    let mut out = Vec::with_capacity(generated.len());
    for (g, c) in generated.chunks_exact(3).zip(content.chunks_exact(3)) {
        let yg = rgb_to_yuv([g[0], g[1], g[2]]);
        let yc = rgb_to_yuv([c[0], c[1], c[2]]);
        out.extend_from_slice(&yuv_to_rgb([yg[0], yc[1], yc[2]]));
    }
    out
}

/// Resizes so that the longest side is `size` (Catmull-Rom), keeping the aspect ratio.
pub fn resize_longest(img: &RgbImage, size: u32) -> RgbImage {
    let (w, h) = img.dimensions();
    let s = size as f64 / w.max(h) as f64;
    let (nw, nh) = (
        ((w as f64 * s).round() as u32).max(1),
        ((h as f64 * s).round() as u32).max(1),
    );
    if (nw, nh) == (w, h) {
        return img.clone();
    }
    image::imageops::resize(img, nw, nh, image::imageops::FilterType::CatmullRom)
}
