//! Decoding: raw RGB24 frames from an `ffmpeg` subprocess.

use std::io::Read;
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};

use image::RgbImage;

use super::{ffmpeg_err, probe, spawn, tail};
use crate::error::Result;

/// Reads raw RGB24 frames from an `ffmpeg` subprocess.
pub struct Decoder {
    pub(super) child: Option<Child>,
    pub(super) stdout: ChildStdout,
    pub(super) stderr: std::thread::JoinHandle<Vec<u8>>,
    width: u32,
    height: u32,
}

pub(super) fn collect_stderr(child: &mut Child) -> std::thread::JoinHandle<Vec<u8>> {
    let mut err = child.stderr.take().expect("piped");
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = err.read_to_end(&mut buf);
        buf
    })
}

impl Decoder {
    /// Decodes `path` at its own size.
    pub fn open(path: &Path) -> Result<Self> {
        let info = probe(path)?;
        Self::open_with(path, info.width, info.height, info.width, info.height, None)
    }

    /// Decodes `path` (of size `in_w × in_h`) to `width × height` frames: cropped (top left)
    /// when only a row or column less, scaled otherwise; `rate` forces a constant frame rate.
    pub fn open_with(
        path: &Path,
        in_w: u32,
        in_h: u32,
        width: u32,
        height: u32,
        rate: Option<&str>,
    ) -> Result<Self> {
        let mut cmd = Command::new("ffmpeg");
        cmd.args(["-hide_banner", "-nostdin", "-loglevel", "error", "-i"])
            .arg(path)
            .args(["-map", "0:v:0", "-an", "-sn", "-dn"]);
        if (width, height) != (in_w, in_h) {
            let filter =
                if width <= in_w && height <= in_h && in_w - width <= 1 && in_h - height <= 1 {
                    format!("crop={width}:{height}:0:0")
                } else {
                    format!("scale={width}:{height}:flags=area")
                };
            cmd.args(["-vf", &filter]);
        }
        if let Some(r) = rate {
            cmd.args(["-r", r]);
        }
        cmd.args(["-f", "rawvideo", "-pix_fmt", "rgb24", "-"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = spawn(&mut cmd, "ffmpeg")?;
        let stdout = child.stdout.take().expect("piped");
        let stderr = collect_stderr(&mut child);
        Ok(Decoder {
            child: Some(child),
            stdout,
            stderr,
            width,
            height,
        })
    }

    /// The next frame, or `None` at the end of the stream.
    pub fn read_frame(&mut self) -> Result<Option<RgbImage>> {
        let mut buf = vec![0u8; self.width as usize * self.height as usize * 3];
        let mut got = 0;
        while got < buf.len() {
            match self.stdout.read(&mut buf[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(ffmpeg_err("ffmpeg (decoder)", e.to_string())),
            }
        }
        if got == 0 {
            return Ok(None);
        }
        if got < buf.len() {
            return Err(ffmpeg_err(
                "ffmpeg (decoder)",
                format!("truncated frame: {got} of {} bytes", buf.len()),
            ));
        }
        Ok(Some(
            RgbImage::from_raw(self.width, self.height, buf).expect("size"),
        ))
    }

    /// Waits for ffmpeg to exit; an error if it failed.
    pub fn finish(self) -> Result<()> {
        let status = match self.child {
            Some(mut c) => Some(
                c.wait()
                    .map_err(|e| ffmpeg_err("ffmpeg (decoder)", e.to_string()))?,
            ),
            None => None,
        };
        let err = self.stderr.join().unwrap_or_default();
        if let Some(status) = status.filter(|s| !s.success()) {
            return Err(ffmpeg_err(
                "ffmpeg (decoder)",
                format!("{status}: {}", tail(&err)),
            ));
        }
        Ok(())
    }
}

/// All frames of a (small) video at its own size.
pub fn decode_all(path: &Path) -> Result<Vec<RgbImage>> {
    let mut d = Decoder::open(path)?;
    let mut frames = Vec::new();
    while let Some(f) = d.read_frame()? {
        frames.push(f);
    }
    d.finish()?;
    Ok(frames)
}
