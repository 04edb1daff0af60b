//! End-to-end numeric tests of `wgstyle` (as a subprocess): --preserve-colors, --strength,
//! RGBA inputs and EXIF-rotated inputs.

mod common;

use std::path::Path;

use common::cli::{photo, run_ok, scream_dir, wgstyle, ycbcr};
use image::RgbImage;

fn stylize(shared: &Path, root: &Path, input: &Path, output: &Path, extra: &[&str]) {
    let wd = root.join("wd");
    if !wd.exists() {
        scream_dir(shared, root, "wd");
    }
    let mut cmd = wgstyle(&root.join("data"));
    cmd.args(["--style", "scream", "--weights-dir"])
        .arg(&wd)
        .args(extra);
    run_ok(cmd.arg("-o").arg(output).arg(input));
}

fn rgb(p: &Path) -> RgbImage {
    image::open(p).unwrap().to_rgb8()
}

#[test]
#[cfg_attr(shared_absent, ignore = "needs ../shared (or $WGSTYLE_SHARED)")]
fn preserve_colors_and_strength_numerically() {
    let shared = shared_or_skip!();
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let input = root.join("in.png");
    let original = photo(&shared, 32, 24);
    original.save(&input).unwrap();
    let out = |n: &str| root.join(n);
    stylize(&shared, root, &input, &out("plain.png"), &[]);
    stylize(
        &shared,
        root,
        &input,
        &out("pc.png"),
        &["--preserve-colors"],
    );
    stylize(&shared, root, &input, &out("s0.png"), &["--strength", "0"]);
    stylize(
        &shared,
        root,
        &input,
        &out("s05.png"),
        &["--strength", "0.5"],
    );
    let (plain, pc) = (rgb(&out("plain.png")), rgb(&out("pc.png")));
    assert_ne!(plain, original);

    // Preserve colours: chroma of the input, luminance of the plain stylized output, where
    // the result is inside the RGB cube (clipped pixels cannot keep both).
    let mut checked = 0;
    for ((o, p), s) in original.pixels().zip(pc.pixels()).zip(plain.pixels()) {
        if p.0.iter().any(|&v| v == 0 || v == 255) {
            continue;
        }
        checked += 1;
        let (yo, yp, ys) = (ycbcr(o.0), ycbcr(p.0), ycbcr(s.0));
        assert!((yp[1] - yo[1]).abs() <= 2.0, "Cb {yp:?} vs input {yo:?}");
        assert!((yp[2] - yo[2]).abs() <= 2.0, "Cr {yp:?} vs input {yo:?}");
        assert!((yp[0] - ys[0]).abs() <= 2.0, "Y {yp:?} vs stylized {ys:?}");
    }
    assert!(
        checked >= 32 * 24 * 8 / 10,
        "only {checked} unclipped pixels"
    );

    // Strength 0 gives the input back; 0.5 the midpoint of stylized and input.
    assert_eq!(rgb(&out("s0.png")), original);
    let half = rgb(&out("s05.png"));
    for ((h, s), o) in half.pixels().zip(plain.pixels()).zip(original.pixels()) {
        for c in 0..3 {
            let mid = (s.0[c] as f32 + o.0[c] as f32) / 2.0;
            assert!((h.0[c] as f32 - mid).abs() <= 1.0, "{h:?} vs {s:?}/{o:?}");
        }
    }
}

/// A JPEG with an EXIF APP1 segment saying "orientation 6" (display rotated 90° clockwise).
fn jpeg_with_orientation_6(img: &RgbImage) -> Vec<u8> {
    let mut jpg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpg, 95)
        .encode_image(img)
        .unwrap();
    let mut tiff = b"MM\0\x2a\0\0\0\x08\0\x01".to_vec(); // big-endian, IFD at 8, 1 entry
    tiff.extend_from_slice(&[0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, 6, 0, 0]); // Orientation = 6
    tiff.extend_from_slice(&[0, 0, 0, 0]); // no next IFD
    let mut app1 = b"Exif\0\0".to_vec();
    app1.extend_from_slice(&tiff);
    let len = (app1.len() + 2) as u16;
    let mut out = jpg[..2].to_vec(); // SOI
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&app1);
    out.extend_from_slice(&jpg[2..]);
    out
}

#[test]
#[cfg_attr(shared_absent, ignore = "needs ../shared (or $WGSTYLE_SHARED)")]
fn rgba_keeps_alpha_and_exif_rotation_is_applied() {
    let shared = shared_or_skip!();
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();

    // RGBA: the alpha channel comes back exactly.
    let base = photo(&shared, 20, 28);
    let rgba = image::RgbaImage::from_fn(20, 28, |x, y| {
        let [r, g, b] = base.get_pixel(x, y).0;
        image::Rgba([r, g, b, ((x * 13 + y * 7) % 256) as u8])
    });
    rgba.save(root.join("rgba.png")).unwrap();
    stylize(
        &shared,
        root,
        &root.join("rgba.png"),
        &root.join("rgba.out.png"),
        &[],
    );
    let out = image::open(root.join("rgba.out.png")).unwrap();
    assert!(out.color().has_alpha());
    let out = out.to_rgba8();
    for (o, i) in out.pixels().zip(rgba.pixels()) {
        assert_eq!(o.0[3], i.0[3], "alpha changed");
    }

    // EXIF orientation 6: the output is the stylized upright image (sides swapped).
    let stored = photo(&shared, 32, 24);
    std::fs::write(root.join("rot.jpg"), jpeg_with_orientation_6(&stored)).unwrap();
    let decoded = image::ImageReader::open(root.join("rot.jpg"))
        .unwrap()
        .decode()
        .unwrap()
        .to_rgb8();
    assert_eq!(decoded.dimensions(), (32, 24), "decoder ignores EXIF here");
    let upright = image::imageops::rotate90(&decoded);
    upright.save(root.join("upright.png")).unwrap();
    stylize(
        &shared,
        root,
        &root.join("rot.jpg"),
        &root.join("rot.out.png"),
        &[],
    );
    stylize(
        &shared,
        root,
        &root.join("upright.png"),
        &root.join("up.out.png"),
        &[],
    );
    let (rot, up) = (
        rgb(&root.join("rot.out.png")),
        rgb(&root.join("up.out.png")),
    );
    assert_eq!(rot.dimensions(), (24, 32));
    assert_eq!(rot, up);
}
