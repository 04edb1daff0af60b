//! Frames per second of `wgstyle video` (ffmpeg decode → stylize → ffmpeg encode, H.264
//! crf 18 yuv420p) on synthetic `testsrc` clips at 640×480 and 1280×720, on the adapter wgstyle
//! picks (`WGPU_BACKEND` / `WGSTYLE_ADAPTER` select another).
//!
//! A CPU adapter (lavapipe, ~1 GFLOP/s; the network costs ~77 GFLOP per 640×480 frame) gets 2
//! frames per clip by default, a GPU 120; `WGSTYLE_BENCH_FRAMES` overrides,
//! `WGSTYLE_BENCH_SIZES=640x480,1280x720` and `WGSTYLE_BENCH_BATCH=4` choose the rest. One frame
//! of each size is stylized first (warm-up: pipeline compilation, buffer pool), then the whole
//! clip is timed end to end, and separately the network alone on one batch.
//!
//! `cargo bench --bench video` (style from `$WGSTYLE_SHARED` or `../shared`; needs ffmpeg).

mod common;

use std::process::Command;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use wgstyle::video::{self, VideoOptions};
use wgstyle::Stylizer;

fn main() {
    let style = common::shared().join("weights/styles/scream");
    if !style.is_dir() {
        eprintln!(
            "skipped: {} not found (set WGSTYLE_SHARED)",
            style.display()
        );
        return;
    }
    if Command::new("ffmpeg").arg("-version").output().is_err() {
        eprintln!("skipped: ffmpeg not on the PATH");
        return;
    }
    let ctx = common::context();
    let cpu = ctx.adapter_info().device_type == wgpu::DeviceType::Cpu;
    let frames: u32 = std::env::var("WGSTYLE_BENCH_FRAMES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if cpu { 2 } else { 120 });
    let batch: usize = std::env::var("WGSTYLE_BENCH_BATCH")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4);
    let sizes = std::env::var("WGSTYLE_BENCH_SIZES").unwrap_or_else(|_| "640x480,1280x720".into());
    let weights = wgstyle::weights::load_transform(&style).expect("weights");
    let stylizer = Stylizer::new(&ctx, &weights).expect("upload");
    let dir = tempfile::tempdir().expect("tempdir");
    let never = AtomicBool::new(false);
    for size in sizes.split(',') {
        let Some((w, h)) = size
            .split_once('x')
            .and_then(|(w, h)| Some((w.parse::<u32>().ok()?, h.parse::<u32>().ok()?)))
        else {
            eprintln!("bad size {size}");
            continue;
        };
        let clip = dir.path().join(format!("in-{size}.mp4"));
        let st = Command::new("ffmpeg")
            .args([
                "-hide_banner",
                "-loglevel",
                "error",
                "-y",
                "-f",
                "lavfi",
                "-i",
            ])
            .arg(format!("testsrc=size={size}:rate=30"))
            .args(["-f", "lavfi", "-i", "sine=frequency=440"])
            .args(["-frames:v", &frames.to_string(), "-t"])
            .arg(format!("{}", frames as f64 / 30.0))
            .args(["-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac"])
            .arg(&clip)
            .status()
            .expect("ffmpeg");
        assert!(st.success(), "making the test clip");

        // Warm-up (pipeline compilation): a small image on a CPU adapter, where a full frame
        // costs a minute; a full batch elsewhere.
        let (ww, wh) = if cpu { (64, 48) } else { (w, h) };
        let img = image::RgbImage::from_fn(ww, wh, |x, y| {
            image::Rgb([(x % 256) as u8, (y % 256) as u8, ((x + y) % 256) as u8])
        });
        let n = batch.min(frames as usize).max(1);
        let imgs = vec![img; n];
        let t = Instant::now();
        stylizer.stylize_batch(&imgs).expect("warm-up");
        let warm = t.elapsed().as_secs_f64();
        // The network alone (upload, forward, readback) on one full-size batch: not on a CPU
        // adapter (the end-to-end figure below is within a few % of it there).
        let net = (!cpu).then(|| {
            let img = image::RgbImage::from_fn(w, h, |x, y| {
                image::Rgb([(x % 256) as u8, (y % 256) as u8, ((x + y) % 256) as u8])
            });
            let imgs = vec![img; n];
            let t = Instant::now();
            stylizer.stylize_batch(&imgs).expect("batch");
            t.elapsed().as_secs_f64()
        });

        let out = dir.path().join(format!("out-{size}.mp4"));
        let opts = VideoOptions {
            batch_size: batch,
            overwrite: true,
            ..VideoOptions::default()
        };
        let t = Instant::now();
        let s = video::stylize_video(&stylizer, &clip, &out, &opts, &never, |_| {})
            .expect("stylize_video");
        let total = t.elapsed().as_secs_f64();
        let gflop = weights.arch.flops(h as usize, w as usize) / 1e9;
        let fps = s.frames as f64 / total;
        let net = net.map_or(String::new(), |net| {
            format!(
                " | network alone, batch of {n}: {:.3} frames/s ({:.2} GFLOP/s)",
                n as f64 / net,
                gflop * n as f64 / net
            )
        });
        println!(
            "video {size}: {} frames (batch {batch}) in {total:.2} s end to end (decode, stylize, \
             encode H.264 crf 18) -> {fps:.4} frames/s ({:.1} s/frame) = {:.2} GFLOP/s \
             ({gflop:.1} GFLOP/frame)\
             {net} | warm-up {warm:.2} s",
            s.frames,
            1.0 / fps,
            gflop * fps,
        );
    }
}
