//! Training photos: a folder's images in a deterministic shuffled order, decoded, randomly
//! cropped and resized on worker threads, a few batches ahead of the GPU.
//!
//! Sample `k` (counting across epochs) is a function of the seed and `k` only: epoch
//! `k / len` is a seeded permutation of the sorted file list, and the crop of sample `k` is
//! drawn from a generator seeded by `(seed, k)`. A run resumed at iteration `i` therefore
//! sees exactly the batches the uninterrupted run saw. An unreadable file is replaced by the
//! next readable one in sorted order (also deterministic) and reported in [`Batch::skipped`].

use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;
use std::time::{Duration, Instant};

use image::RgbImage;

use crate::error::{Error, Result};
use crate::rng::SplitMix64;

/// Image files (by extension) of a training folder, sorted by path.
pub struct Dataset {
    files: Vec<PathBuf>,
}

const EXTENSIONS: [&str; 6] = ["jpg", "jpeg", "png", "webp", "bmp", "tif"];

impl Dataset {
    /// Lists the images directly in `dir` (not recursively).
    pub fn open(dir: &Path) -> Result<Self> {
        let io = |source| Error::Io {
            path: dir.to_path_buf(),
            source,
        };
        let mut files = Vec::new();
        for e in std::fs::read_dir(dir).map_err(io)? {
            let p = e.map_err(io)?.path();
            let ext = p
                .extension()
                .map(|e| e.to_string_lossy().to_ascii_lowercase());
            if p.is_file() && ext.is_some_and(|e| EXTENSIONS.contains(&e.as_str())) {
                files.push(p);
            }
        }
        if files.is_empty() {
            return Err(Error::InvalidInput(format!(
                "{}: no training images (.jpg, .png, ...) in this folder",
                dir.display()
            )));
        }
        files.sort();
        Ok(Dataset { files })
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    /// The image files, sorted by path.
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }

    /// True when there are no images (never, for an opened dataset).
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// The seeded order of one epoch.
    fn permutation(&self, seed: u64, epoch: u64) -> Vec<usize> {
        let mut p: Vec<usize> = (0..self.files.len()).collect();
        let mut rng = SplitMix64::new(seed ^ epoch.wrapping_mul(0xA076_1D64_78BD_642F));
        for i in (1..p.len()).rev() {
            p.swap(i, rng.below(i as u64 + 1) as usize);
        }
        p
    }
}

/// How batches are made.
#[derive(Clone, Copy, Debug)]
pub struct LoaderOptions {
    /// Images per batch.
    pub batch: usize,
    /// Side of the square training crops.
    pub size: u32,
    /// Seed of the order and the crops.
    pub seed: u64,
    /// Decoding threads.
    pub workers: usize,
    /// Batches each worker prepares ahead.
    pub prefetch: usize,
}

/// One batch: `batch × size × size × 3` RGB values 0..255, row-major NHWC.
pub struct Batch {
    /// The iteration (0-based) this batch is for.
    pub iteration: u64,
    /// The pixels.
    pub pixels: Vec<f32>,
    /// Files that could not be read while making this batch, with the reason.
    pub skipped: Vec<(PathBuf, String)>,
}

/// Decodes `path` and takes a random square crop (side 80–100 % of the shorter side, at a
/// random position), resized to `size × size`.
fn sample(path: &Path, size: u32, rng: &mut SplitMix64) -> std::result::Result<RgbImage, String> {
    let img = image::open(path).map_err(|e| e.to_string())?.to_rgb8();
    let (w, h) = img.dimensions();
    let short = w.min(h);
    if short == 0 {
        return Err("empty image".into());
    }
    let side = ((short as f64 * (0.8 + 0.2 * rng.uniform())).round() as u32).clamp(1, short);
    let x = rng.below((w - side) as u64 + 1) as u32;
    let y = rng.below((h - side) as u64 + 1) as u32;
    let crop = image::imageops::crop_imm(&img, x, y, side, side).to_image();
    Ok(if side == size {
        crop
    } else {
        image::imageops::resize(&crop, size, size, image::imageops::FilterType::Triangle)
    })
}

fn make_batch(ds: &Dataset, o: LoaderOptions, iteration: u64) -> Result<Batch> {
    let n = ds.files.len() as u64;
    let px = (o.size * o.size * 3) as usize;
    let mut pixels = Vec::with_capacity(o.batch * px);
    let mut skipped = Vec::new();
    let mut perm = (u64::MAX, Vec::new());
    for j in 0..o.batch as u64 {
        let k = iteration * o.batch as u64 + j;
        if perm.0 != k / n {
            perm = (k / n, ds.permutation(o.seed, k / n));
        }
        let first = perm.1[(k % n) as usize];
        let mut rng = SplitMix64::new(o.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ k);
        let mut got = None;
        for step in 0..ds.files.len() {
            let path = &ds.files[(first + step) % ds.files.len()];
            match sample(path, o.size, &mut rng) {
                Ok(img) => {
                    got = Some(img);
                    break;
                }
                Err(e) => skipped.push((path.clone(), e)),
            }
        }
        let img = got.ok_or_else(|| {
            Error::InvalidInput("no training image in the folder can be read".into())
        })?;
        pixels.extend(img.as_raw().iter().map(|&v| v as f32));
    }
    Ok(Batch {
        iteration,
        pixels,
        skipped,
    })
}

/// Batches from worker threads, in iteration order. Dropping the loader stops the workers.
pub struct Loader {
    queues: Vec<Receiver<Result<Batch>>>,
    next: u64,
    start: u64,
    waited: Duration,
}

impl Loader {
    /// Starts the workers at `start` (the first iteration wanted).
    pub fn new(ds: Arc<Dataset>, o: LoaderOptions, start: u64) -> Self {
        let workers = o.workers.max(1);
        let queues = (0..workers as u64)
            .map(|w| {
                let (tx, rx) = sync_channel(o.prefetch.max(1));
                let ds = ds.clone();
                std::thread::spawn(move || {
                    let mut it = start + w;
                    // Stops when the loader is dropped (send fails) or after an error.
                    while let Ok(()) = tx.send(make_batch(&ds, o, it)) {
                        it += workers as u64;
                    }
                });
                rx
            })
            .collect();
        Loader {
            queues,
            next: start,
            start,
            waited: Duration::ZERO,
        }
    }

    /// The next batch (blocks while the workers are behind).
    pub fn next_batch(&mut self) -> Result<Batch> {
        let q = ((self.next - self.start) % self.queues.len() as u64) as usize;
        let t = Instant::now();
        let b = self.queues[q]
            .recv()
            .map_err(|_| Error::InvalidInput("training data loader stopped".into()))??;
        self.waited += t.elapsed();
        self.next += 1;
        Ok(b)
    }

    /// Total time [`Loader::next_batch`] spent waiting for the workers.
    pub fn waited(&self) -> Duration {
        self.waited
    }
}
