//! `wgstyle train --style-image STYLE --dataset DIR -o MODEL.safetensors`: trains a fast
//! style network on the GPU (lengstrom/fast-style-transfer's loss and defaults).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context as _, Result};
use indicatif::{ProgressBar, ProgressStyle};
use wgstyle::nets::transformer::{Arch, Upsample};
use wgstyle::nets::vgg::Vgg;
use wgstyle::ops::pool::Pooling;
use wgstyle::optimize::image::{resize_longest, upload_preprocessed};
use wgstyle::train::checkpoint::Checkpoint;
use wgstyle::train::data::{Dataset, Loader, LoaderOptions};
use wgstyle::train::{TrainOptions, Trainer};
use wgstyle::weights::safetensors::{save_transform, Precision};
use wgstyle::{Context, Stylizer};

#[derive(clap::Args)]
pub struct Args {
    /// The style painting.
    #[arg(long)]
    style_image: PathBuf,
    /// Folder of training photos (e.g. ../shared/train256 or COCO).
    #[arg(long)]
    dataset: PathBuf,
    /// The trained model (wgstyle safetensors; `--style MODEL` stylizes with it).
    #[arg(short, long)]
    output: PathBuf,
    #[arg(long, default_value_t = 7.5)]
    content_weight: f32,
    #[arg(long, default_value_t = 100.0)]
    style_weight: f32,
    #[arg(long, default_value_t = 200.0)]
    tv_weight: f32,
    #[arg(long, default_value = "relu4_2", value_delimiter = ',')]
    content_layers: Vec<String>,
    #[arg(
        long,
        default_value = "relu1_1,relu2_1,relu3_1,relu4_1,relu5_1",
        value_delimiter = ','
    )]
    style_layers: Vec<String>,
    /// Side of the square training crops (a multiple of 4).
    #[arg(long, default_value_t = 256)]
    image_size: u32,
    /// Longest side of the style image (default: its own size, scaled down to what the
    /// adapter's largest GPU buffer allows).
    #[arg(long)]
    style_size: Option<u32>,
    #[arg(long, default_value_t = 4)]
    batch_size: usize,
    /// Iterations in all (a resumed run continues up to this count).
    #[arg(long, conflicts_with = "epochs")]
    iterations: Option<u64>,
    /// Passes over the dataset (instead of --iterations; default 2, as lengstrom).
    #[arg(long)]
    epochs: Option<f64>,
    #[arg(long, default_value_t = 1e-3)]
    learning_rate: f32,
    /// Save a checkpoint (and a --test-image sample) every N iterations.
    #[arg(long, default_value_t = 1000)]
    checkpoint_every: u64,
    /// Where checkpoints go (default: OUTPUT with `.ckpt` before the extension).
    #[arg(long)]
    checkpoint: Option<PathBuf>,
    /// Continue a run from its checkpoint: same settings, data order and optimizer state.
    #[arg(long)]
    resume: Option<PathBuf>,
    /// Stylize this photo at every checkpoint (OUTPUT's stem + `.sample-ITER.jpg`).
    #[arg(long)]
    test_image: Option<PathBuf>,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Write one JSON object per iteration (losses, images/s, GPU-busy fraction).
    #[arg(long)]
    log_json: Option<PathBuf>,
    /// `transpose` (lengstrom) or `nearest` (nearest-neighbour ×2 + conv: no checkerboard).
    #[arg(long, default_value = "transpose")]
    upsample: String,
    /// Channels of the first layer: 32 (lengstrom) or 16 (the half-width variant).
    #[arg(long, default_value_t = 32)]
    width: usize,
    /// Threads decoding and cropping photos (default: the CPU count).
    #[arg(long)]
    workers: Option<usize>,
    /// Replace an existing OUTPUT.
    #[arg(long)]
    force: bool,
    /// VGG19: a tfjs model directory or a wgstyle .safetensors file.
    #[arg(long)]
    vgg: Option<PathBuf>,
    /// Directory searched first for vgg19.safetensors / vgg19-tfjs.
    #[arg(long)]
    weights_dir: Option<PathBuf>,
}

fn with_suffix(p: &Path, suffix: &str, ext: &str) -> PathBuf {
    let stem = p.file_stem().unwrap_or_default().to_string_lossy();
    p.with_file_name(format!("{stem}{suffix}.{ext}"))
}

fn options(a: &Args) -> Result<TrainOptions> {
    let upsample = match a.upsample.as_str() {
        "transpose" => Upsample::Transpose,
        "nearest" => Upsample::Nearest,
        u => bail!("--upsample {u}: expected transpose or nearest"),
    };
    if a.width == 0 {
        bail!("--width must be at least 1");
    }
    Ok(TrainOptions {
        content_weight: a.content_weight,
        style_weight: a.style_weight,
        tv_weight: a.tv_weight,
        content_layers: a.content_layers.clone(),
        style_layers: a.style_layers.clone(),
        image_size: a.image_size,
        batch_size: a.batch_size,
        learning_rate: a.learning_rate,
        seed: a.seed,
        arch: Arch {
            width: a.width,
            upsample,
            ..Arch::LENGSTROM
        },
    })
}

fn sample(ctx: &Context, trainer: &Trainer, photo: &image::RgbImage, out: &Path) -> Result<()> {
    let s = Stylizer::new(ctx, &trainer.weights()?)?;
    let img = s.stylize(photo)?;
    let mut bytes = std::io::Cursor::new(Vec::new());
    img.write_to(&mut bytes, image::ImageFormat::Jpeg)?;
    wgstyle::fsutil::write_bytes_atomic(out, true, bytes.get_ref())?;
    Ok(())
}

pub fn run(a: Args, gpu: super::Gpu) -> Result<()> {
    if a.output.exists() && !a.force {
        bail!("{} exists (use --force to replace it)", a.output.display());
    }
    let resumed = match &a.resume {
        Some(p) => Some(Checkpoint::load(p)?),
        None => None,
    };
    let opts = match &resumed {
        Some(ck) => ck.options.clone(),
        None => options(&a)?,
    };
    let dataset = Arc::new(Dataset::open(&a.dataset)?);
    let per_epoch = (dataset.len() as u64)
        .div_ceil(opts.batch_size as u64)
        .max(1);
    let total = match (a.iterations, a.epochs) {
        (Some(n), _) => n,
        (None, e) => (e.unwrap_or(2.0) * per_epoch as f64).ceil() as u64,
    };
    let vgg_path = wgstyle::weights::vgg::find_vgg19(a.vgg.as_deref(), a.weights_dir.as_deref())
        .map_err(super::fetch::vgg_hint)?;
    let vgg_w = wgstyle::weights::load_vgg19(&vgg_path)?;
    let style_img = image::open(&a.style_image)
        .with_context(|| format!("reading {}", a.style_image.display()))?
        .to_rgb8();
    let style_img = match a.style_size {
        Some(s) => resize_longest(&style_img, s),
        None => style_img,
    };
    let test_photo = match &a.test_image {
        Some(p) => Some(
            image::open(p)
                .with_context(|| format!("reading {}", p.display()))?
                .to_rgb8(),
        ),
        None => None,
    };
    let ctx = gpu.context(wgstyle::ops::precision::ConvPrecision::F32)?;
    // The style image as large as this adapter's buffers allow (checked before any GPU work).
    let (sw, sh) = style_img.dimensions();
    let style_img = match wgstyle::nets::vgg::fitting_longest_side(&ctx, sw, sh) {
        None => style_img,
        Some(side) if a.style_size.is_some() => bail!(
            "--style-size {}: a {sw}x{sh} style image is too large for VGG19 on {} \
             (at most {} pixels in one GPU buffer); use --style-size {side} or less",
            a.style_size.unwrap_or_default(),
            ctx.adapter_info().name,
            wgstyle::nets::vgg::max_pixels(&ctx),
        ),
        Some(side) => {
            let img = resize_longest(&style_img, side);
            eprintln!(
                "style image {sw}x{sh} scaled to {}x{} to fit this adapter's largest GPU buffer \
                 (--style-size sets it)",
                img.width(),
                img.height()
            );
            img
        }
    };
    let deepest = opts.loss_spec()?.deepest()?;
    let vgg = Vgg::new(&ctx, &vgg_w, deepest + 1, Pooling::Max)?;
    let style = upload_preprocessed(&ctx, "style", &style_img)?;
    let mut trainer = match &resumed {
        Some(ck) => Trainer::resume(&ctx, &vgg, &style, ck)?,
        None => Trainer::new(&ctx, &vgg, &style, opts.clone())?,
    };
    let ckpt_path = a
        .checkpoint
        .clone()
        .unwrap_or_else(|| with_suffix(&a.output, ".ckpt", "safetensors"));
    let workers = a
        .workers
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    let mut loader = Loader::new(
        dataset.clone(),
        LoaderOptions {
            batch: opts.batch_size,
            size: opts.image_size,
            seed: opts.seed,
            workers,
            prefetch: 2,
        },
        trainer.iteration(),
    );
    let mut log = match &a.log_json {
        Some(p) => Some(
            std::fs::OpenOptions::new()
                .create(true)
                .append(a.resume.is_some())
                .write(true)
                .truncate(a.resume.is_none())
                .open(p)
                .with_context(|| format!("opening {}", p.display()))?,
        ),
        None => None,
    };
    eprintln!(
        "training on {} photos ({} per iteration, {}x{} crops), {} on {}; iterations {}..{total}",
        dataset.len(),
        opts.batch_size,
        opts.image_size,
        opts.image_size,
        if resumed.is_some() {
            "resumed"
        } else {
            "new network"
        },
        ctx.adapter_info().name,
        trainer.iteration() + 1,
    );
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} {elapsed}<{eta} {wide_msg}")
            .expect("valid template"),
    );
    bar.set_position(trainer.iteration());
    let mut reported = std::collections::HashSet::new();
    while trainer.iteration() < total {
        let t0 = Instant::now();
        let waited0 = loader.waited();
        let batch = loader.next_batch()?;
        for (p, why) in batch.skipped {
            if reported.insert(p.clone()) {
                bar.suspend(|| eprintln!("skipping unreadable {}: {why}", p.display()));
            }
        }
        let st = trainer.step(&batch.pixels)?;
        let secs = t0.elapsed().as_secs_f64();
        let wait = (loader.waited() - waited0).as_secs_f64();
        let l = &st.losses;
        let ips = opts.batch_size as f64 / secs;
        if let Some(f) = log.as_mut() {
            let line = serde_json::json!({
                "iteration": st.iteration, "content": l.content, "style": l.style, "tv": l.tv,
                "total": l.total, "images_per_s": ips, "seconds": secs,
                "data_wait_s": wait, "gpu_busy": st.gpu_seconds / secs,
            });
            writeln!(f, "{line}").context("writing the JSON log")?;
        }
        bar.set_position(st.iteration);
        bar.set_message(format!(
            "loss {:.4e} (content {:.3e} style {:.3e} tv {:.3e}) {ips:.2} img/s",
            l.total, l.content, l.style, l.tv
        ));
        if !l.total.is_finite() {
            bail!(
                "the loss is {} at iteration {}: lower --learning-rate",
                l.total,
                st.iteration
            );
        }
        let at_checkpoint =
            a.checkpoint_every > 0 && st.iteration.is_multiple_of(a.checkpoint_every);
        if at_checkpoint || st.iteration == total {
            trainer.checkpoint()?.save(&ckpt_path)?;
            if let Some(photo) = &test_photo {
                let p = with_suffix(&a.output, &format!(".sample-{:06}", st.iteration), "jpg");
                sample(&ctx, &trainer, photo, &p)?;
            }
        }
    }
    bar.finish();
    let style_name = a
        .style_image
        .file_name()
        .unwrap_or_default()
        .to_string_lossy();
    let iterations = trainer.iteration().to_string();
    let options_json = serde_json::to_string(trainer.options())?;
    save_transform(
        &trainer.weights()?,
        &a.output,
        Precision::F32,
        a.force,
        &[
            ("wgstyle.source", "wgstyle train"),
            ("wgstyle.style_image", &style_name),
            ("wgstyle.train.iterations", &iterations),
            ("wgstyle.train.options", &options_json),
        ],
    )?;
    eprintln!(
        "wrote {} (checkpoint {})",
        a.output.display(),
        ckpt_path.display()
    );
    Ok(())
}
