//! End-to-end tests of `wgstyle` (as a subprocess) on folders: mixed sizes and formats,
//! batching, corrupt inputs, no-overwrite, atomic output.

mod common;

use std::path::Path;

use common::cli::{pattern, run, run_ok, scream_dir, stderr, temp_files, wgstyle};

fn dims(p: &Path) -> (u32, u32) {
    image::image_dimensions(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
#[cfg_attr(shared_absent, ignore = "needs ../shared (or $WGSTYLE_SHARED)")]
fn folder_run_mixed_sizes_bad_files_and_no_overwrite() {
    let shared = shared_or_skip!();
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let wd = scream_dir(&shared, root, "wd");
    let data = root.join("data");
    let input = root.join("in");
    std::fs::create_dir_all(input.join("sub")).unwrap();
    pattern(32, 24, 1).save(input.join("a.png")).unwrap();
    pattern(32, 24, 2).save(input.join("c.png")).unwrap();
    pattern(20, 28, 3).save(input.join("b.jpg")).unwrap();
    let grey = image::DynamicImage::ImageRgb8(pattern(20, 28, 4)).to_luma8();
    grey.save(input.join("grey.png")).unwrap();
    let deep = image::DynamicImage::ImageRgb8(pattern(32, 24, 5)).to_rgb16();
    deep.save(input.join("deep16.png")).unwrap();
    pattern(20, 28, 6).save(input.join("sub/d.webp")).unwrap();
    pattern(20, 28, 7).save(input.join("e.bmp")).unwrap();
    pattern(32, 24, 8).save(input.join("f.tif")).unwrap();
    pattern(20, 28, 9).save(input.join("g.gif")).unwrap();
    let jpg = std::fs::read(input.join("b.jpg")).unwrap();
    std::fs::write(input.join("broken.jpg"), &jpg[..jpg.len() / 2]).unwrap();
    std::fs::write(input.join("text.png"), b"this is not a PNG").unwrap();
    std::fs::write(input.join("notes.txt"), b"ignored: not an image name").unwrap();

    let out_dir = root.join("out");
    let mut cmd = wgstyle(&data);
    cmd.args([
        "--style",
        "scream",
        "--batch-size",
        "2",
        "--recursive",
        "--weights-dir",
    ])
    .arg(&wd)
    .arg("-o")
    .arg(&out_dir)
    .arg(&input);
    let out = run(&mut cmd);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("broken.jpg") && err.contains("text.png"),
        "{err}"
    );
    assert!(
        err.lines()
            .any(|l| l.contains("9 written, 0 skipped (exist; --force replaces them), 2 failed")),
        "{err}"
    );
    for (name, size) in [
        ("a.scream.png", (32, 24)),
        ("c.scream.png", (32, 24)),
        ("b.scream.jpg", (20, 28)),
        ("grey.scream.png", (20, 28)),
        ("deep16.scream.png", (32, 24)),
        ("sub/d.scream.webp", (20, 28)),
        ("e.scream.bmp", (20, 28)),
        ("f.scream.tif", (32, 24)),
        ("g.scream.gif", (20, 28)),
    ] {
        assert_eq!(dims(&out_dir.join(name)), size, "{name}");
    }
    assert!(!out_dir.join("broken.scream.jpg").exists());
    assert!(!out_dir.join("text.scream.png").exists());
    assert!(temp_files(root).is_empty(), "{:?}", temp_files(root));

    // The same run again skips every existing output (no GPU work), leaving them untouched;
    // only the two unreadable inputs fail again.
    let before = std::fs::read(out_dir.join("a.scream.png")).unwrap();
    let again = run(&mut cmd);
    assert_eq!(again.status.code(), Some(1));
    assert!(stderr(&again).contains("--force"), "{}", stderr(&again));
    assert!(
        stderr(&again).contains("0 written, 9 skipped (exist; --force replaces them), 2 failed"),
        "{}",
        stderr(&again)
    );
    assert_eq!(std::fs::read(out_dir.join("a.scream.png")).unwrap(), before);

    // An input is never overwritten, not even with --force.
    let a = input.join("a.png");
    let original = std::fs::read(&a).unwrap();
    let mut cmd = wgstyle(&data);
    cmd.args(["--style", "scream", "--force", "--weights-dir"])
        .arg(&wd);
    let out = run(cmd.arg("-o").arg(&a).arg(&a));
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("overwrite the input"),
        "{}",
        stderr(&out)
    );
    assert_eq!(std::fs::read(&a).unwrap(), original);

    // Default outputs go beside the inputs; not recursive; earlier outputs are not inputs.
    // With --force an existing output is replaced, here by a batch-of-one result that must
    // equal the batched one.
    let earlier = input.join("sub/d.scream.webp");
    std::fs::copy(out_dir.join("sub/d.scream.webp"), &earlier).unwrap();
    std::fs::write(input.join("c.scream.png"), b"stale").unwrap();
    let mut cmd = wgstyle(&data);
    cmd.args(["--style", "scream", "--force", "--weights-dir"])
        .arg(&wd);
    let out = run(cmd.arg(input.join("c.png")).arg(input.join("sub")));
    assert!(out.status.success());
    assert!(
        stderr(&out).contains("2 written, 0 skipped (exist; --force replaces them), 0 failed"),
        "{}",
        stderr(&out)
    );
    let single = image::open(input.join("c.scream.png")).unwrap().to_rgb8();
    let batched = image::open(out_dir.join("c.scream.png")).unwrap().to_rgb8();
    assert_eq!(single, batched, "batch of 2 and batch of 1 differ");
    assert_eq!(dims(&earlier), (20, 28));
    assert!(!input.join("sub/d.scream.scream.webp").exists());
    assert!(temp_files(root).is_empty());
}

#[test]
#[cfg_attr(shared_absent, ignore = "needs ../shared (or $WGSTYLE_SHARED)")]
fn resize_options_and_atomic_failure() {
    let shared = shared_or_skip!();
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let wd = scream_dir(&shared, root, "wd");
    let input = root.join("big.png");
    pattern(80, 60, 7).save(&input).unwrap();
    let mut cmd = wgstyle(&root.join("data"));
    cmd.args(["--style", "scream", "--weights-dir"]).arg(&wd);
    cmd.args(["--max-size", "32", "-o"])
        .arg(root.join("small.png"));
    run_ok(cmd.arg(&input));
    assert_eq!(dims(&root.join("small.png")), (32, 24));

    let mut cmd = wgstyle(&root.join("data"));
    cmd.args(["--style", "scream", "--scale", "0.25", "--weights-dir"])
        .arg(&wd);
    // `-o` without an extension is a directory, created on demand.
    run_ok(cmd.arg("-o").arg(root.join("scaled")).arg(&input));
    assert_eq!(dims(&root.join("scaled/big.scream.png")), (20, 15));

    let mut cmd = wgstyle(&root.join("data"));
    cmd.args(["--style", "scream", "--max-size", "8", "--weights-dir"])
        .arg(&wd);
    // The output's folder is a file: the write fails and leaves nothing behind.
    std::fs::write(root.join("blocker"), b"").unwrap();
    let out = run(cmd.arg("-o").arg(root.join("blocker/x.png")).arg(&input));
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("0 written, 0 skipped (exist; --force replaces them), 1 failed"),
        "{}",
        stderr(&out)
    );
    assert!(temp_files(root).is_empty());
    let names: Vec<_> = std::fs::read_dir(root)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    let mut names = names;
    names.sort();
    assert_eq!(names, ["big.png", "blocker", "scaled", "small.png", "wd"]);
}

/// CRC-32 (ISO-HDLC) of PNG chunks.
fn crc32(bytes: &[u8]) -> u32 {
    let mut c = 0xFFFF_FFFFu32;
    for &b in bytes {
        c ^= u32::from(b);
        for _ in 0..8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
        }
    }
    !c
}

/// A PNG whose header claims `w × h` RGBA at 16 bits (8 bytes a pixel), with an empty zlib
/// stream for pixel data.
fn png_header_only(w: u32, h: u32) -> Vec<u8> {
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut chunk = |kind: &[u8], data: &[u8]| {
        png.extend((data.len() as u32).to_be_bytes());
        let mut body = kind.to_vec();
        body.extend(data);
        png.extend(&body);
        png.extend(crc32(&body).to_be_bytes());
    };
    let mut ihdr = w.to_be_bytes().to_vec();
    ihdr.extend(h.to_be_bytes());
    ihdr.extend([16, 6, 0, 0, 0]);
    chunk(b"IHDR", &ihdr);
    chunk(b"IDAT", &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01]);
    chunk(b"IEND", &[]);
    png
}

#[test]
#[cfg_attr(shared_absent, ignore = "needs ../shared (or $WGSTYLE_SHARED)")]
fn images_too_large_for_memory_or_output_format_are_refused_up_front() {
    let shared = shared_or_skip!();
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let wd = scream_dir(&shared, root, "wd");
    // 1,000,000 x 1,000,000 x 8 bytes: 8 TB, more than any machine running this test has.
    let huge = root.join("huge.png");
    std::fs::write(&huge, png_header_only(1_000_000, 1_000_000)).unwrap();
    // 16,400 px wide: a fine PNG, but WebP stores at most 16,384 pixels a side.
    let wide = root.join("wide.png");
    pattern(16_400, 2, 1).save(&wide).unwrap();

    let out = run(wgstyle(&root.join("data"))
        .args(["--style", "scream", "--weights-dir"])
        .arg(&wd)
        .arg(&huge));
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("huge.png") && err.contains("memory available") && !err.contains("panicked"),
        "{err}"
    );

    let webp = root.join("wide.webp");
    let out = run(wgstyle(&root.join("data"))
        .args(["--style", "scream", "--weights-dir"])
        .arg(&wd)
        .arg("-o")
        .arg(&webp)
        .arg(&wide));
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("16400x2 is too large for WebP"), "{err}");
    assert!(!webp.exists());
    assert!(temp_files(root).is_empty(), "{:?}", temp_files(root));
}
