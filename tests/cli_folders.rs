//! End-to-end tests of `wgstyle` (as a subprocess) on folders: mixed sizes and formats,
//! batching, corrupt inputs, no-overwrite, atomic output.

mod common;

use std::path::Path;

use common::cli::{pattern, run, run_ok, scream_dir, stderr, temp_files, wgstyle};

fn dims(p: &Path) -> (u32, u32) {
    image::image_dimensions(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
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
        err.lines().any(|l| l.contains("9 written, 2 failed")),
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

    // The same run again refuses every output (no GPU work), leaving them untouched.
    let before = std::fs::read(out_dir.join("a.scream.png")).unwrap();
    let again = run(&mut cmd);
    assert_eq!(again.status.code(), Some(1));
    assert!(stderr(&again).contains("--force"), "{}", stderr(&again));
    assert!(
        stderr(&again).contains("0 written, 11 failed"),
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
        stderr(&out).contains("2 written, 0 failed"),
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
        stderr(&out).contains("0 written, 1 failed"),
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
