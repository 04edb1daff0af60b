//! `wgstyle train --style-image STYLE --dataset DIR -o MODEL.safetensors`: trains a fast
//! style network on the GPU (lengstrom/fast-style-transfer's loss and defaults).

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context as _, Result};
use indicatif::{ProgressBar, ProgressStyle};
use wgstyle::nets::transformer::{Arch, Upsample};
use wgstyle::nets::vgg::Vgg;
use wgstyle::ops::pool::Pooling;
use wgstyle::optimize::image::{resize_longest, upload_preprocessed};
use wgstyle::output::{FileId, OutputPolicy, Reservation};
use wgstyle::train::checkpoint::Checkpoint;
use wgstyle::train::data::{Dataset, Loader, LoaderOptions};
use wgstyle::train::{TrainOptions, Trainer};
use wgstyle::weights::safetensors::{transform_bytes_with, Precision};
use wgstyle::{Context, Stylizer};

use super::floats::{non_negative, positive, positive_f64};

#[derive(clap::Args)]
pub struct Args {
    /// The style painting.
    #[arg(long)]
    style_image: PathBuf,
    /// Folder of training photos (e.g. COCO's train2014).
    #[arg(long)]
    dataset: PathBuf,
    /// The trained model (wgstyle safetensors; `--style MODEL` stylizes with it).
    #[arg(short, long)]
    output: PathBuf,
    #[arg(long, default_value_t = 7.5, value_parser = non_negative)]
    content_weight: f32,
    #[arg(long, default_value_t = 100.0, value_parser = non_negative)]
    style_weight: f32,
    #[arg(long, default_value_t = 200.0, value_parser = non_negative)]
    tv_weight: f32,
    #[arg(long, default_value = "relu4_2", value_delimiter = ',')]
    content_layers: Vec<String>,
    #[arg(
        long,
        default_value = "relu1_1,relu2_1,relu3_1,relu4_1,relu5_1",
        value_delimiter = ','
    )]
    style_layers: Vec<String>,
    /// Side of the square training crops (a multiple of 4, at most 16384).
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u32).range(4..=16384))]
    image_size: u32,
    /// Longest side of the style image (default: its own size, scaled down to what the
    /// adapter's largest GPU buffer allows; at most 65535).
    #[arg(long, value_parser = clap::value_parser!(u32).range(16..=65535))]
    style_size: Option<u32>,
    /// Photos per iteration (1 to 1024).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=1024))]
    batch_size: u32,
    /// Iterations in all (a resumed run continues up to this count).
    #[arg(long, conflicts_with = "epochs")]
    iterations: Option<u64>,
    /// Passes over the dataset (instead of --iterations; default 2, as lengstrom).
    #[arg(long, value_parser = positive_f64)]
    epochs: Option<f64>,
    #[arg(long, default_value_t = 1e-3, value_parser = positive)]
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
    /// Replace existing outputs (OUTPUT, the checkpoint, samples, --log-json); never an input.
    #[arg(short, long)]
    force: bool,
    /// VGG19: a tfjs model directory or a wgstyle .safetensors file.
    #[arg(long)]
    vgg: Option<PathBuf>,
    /// Directory searched first for vgg19.safetensors / vgg19-tfjs.
    #[arg(long)]
    weights_dir: Option<PathBuf>,
}

/// The most `--test-image` samples one run writes.
const MAX_SAMPLES: u64 = 10_000;

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
        batch_size: a.batch_size as usize,
        learning_rate: a.learning_rate,
        seed: a.seed,
        arch: Arch {
            width: a.width,
            upsample,
            ..Arch::LENGSTROM
        },
    })
}

fn sample(
    ctx: &Context,
    trainer: &Trainer,
    photo: &image::RgbImage,
    out: &mut Reservation,
) -> Result<()> {
    let s = Stylizer::new(ctx, &trainer.weights()?)?;
    let img = s.stylize(photo)?;
    let mut bytes = std::io::Cursor::new(Vec::new());
    img.write_to(&mut bytes, image::ImageFormat::Jpeg)?;
    out.write_bytes(bytes.get_ref())?;
    Ok(())
}

/// Every file the run writes, claimed before any GPU work under one policy.
struct Outputs {
    model: Reservation,
    checkpoint: Reservation,
    samples: std::collections::HashMap<u64, Reservation>,
    log: Option<wgstyle::output::TempOutput>,
}

/// The iterations at which a checkpoint (and a sample) is saved, from `first` up to `total`.
fn checkpoint_iterations(first: u64, total: u64, every: u64) -> Vec<u64> {
    let mut its: Vec<u64> = if every > 0 {
        (first.div_ceil(every).max(1) * every..=total)
            .step_by(every.min(usize::MAX as u64) as usize)
            .collect()
    } else {
        Vec::new()
    };
    if total >= first && its.last() != Some(&total) {
        its.push(total);
    }
    its
}

fn claim_outputs(a: &Args, dataset: &Dataset, ckpt_path: &Path, its: &[u64]) -> Result<Outputs> {
    let mut inputs = OutputPolicy::new(a.force);
    inputs.add_input(&a.style_image);
    inputs.add_inputs(dataset.files().iter().map(PathBuf::as_path));
    for p in [&a.test_image, &a.vgg, &a.weights_dir]
        .into_iter()
        .flatten()
    {
        inputs.add_input(p);
    }
    let resume_id = a.resume.as_deref().and_then(FileId::of);
    // The checkpoint resumed from is updated in place: the point of --resume.
    let checkpoint = if resume_id.is_some() && FileId::of(ckpt_path) == resume_id {
        OutputPolicy::new(true).claim(ckpt_path)?
    } else {
        if let Some(r) = &a.resume {
            inputs.add_input(r);
        }
        inputs.claim(ckpt_path)?
    };
    if let Some(r) = &a.resume {
        inputs.add_input(r);
    }
    let model = inputs.claim(&a.output)?;
    let mut samples = std::collections::HashMap::new();
    if a.test_image.is_some() {
        for &i in its {
            let p = with_suffix(&a.output, &format!(".sample-{i:06}"), "jpg");
            samples.insert(i, inputs.claim(&p)?);
        }
    }
    let log = match &a.log_json {
        // A resumed run appends to its log: the old lines are copied into the new file.
        Some(p) if a.resume.is_some() && p.is_file() => {
            let mut t = OutputPolicy::new(true).claim(p)?.temp(".tmp")?;
            let old = std::fs::read(p).with_context(|| format!("reading {}", p.display()))?;
            t.file_mut()
                .write_all(&old)
                .with_context(|| format!("copying {}", p.display()))?;
            Some(t)
        }
        Some(p) => Some(inputs.claim(p)?.temp(".tmp")?),
        None => None,
    };
    Ok(Outputs {
        model,
        checkpoint,
        samples,
        log,
    })
}

pub fn run(a: Args, gpu: super::Gpu) -> Result<()> {
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
    let ckpt_path = a
        .checkpoint
        .clone()
        .unwrap_or_else(|| with_suffix(&a.output, ".ckpt", "safetensors"));
    let first = resumed.as_ref().map_or(0, |c| c.iteration) + 1;
    // Samples are claimed up front, one per checkpoint: a bounded number of them.
    let its = if a.test_image.is_some() {
        let n = (total.saturating_sub(first) + 1) / a.checkpoint_every.max(1);
        if n > MAX_SAMPLES {
            bail!(
                "--test-image with --checkpoint-every {} writes {n} samples; at most \
                 {MAX_SAMPLES} (raise --checkpoint-every)",
                a.checkpoint_every
            );
        }
        checkpoint_iterations(first, total, a.checkpoint_every)
    } else {
        Vec::new()
    };
    let mut outputs = claim_outputs(&a, &dataset, &ckpt_path, &its)?;
    let vgg_path = wgstyle::weights::vgg::find_vgg19(a.vgg.as_deref(), a.weights_dir.as_deref())
        .map_err(super::fetch::vgg_hint)?;
    let vgg_w = wgstyle::weights::load_vgg19(&vgg_path)?;
    let style_img = image::open(&a.style_image)
        .with_context(|| format!("reading {}", a.style_image.display()))?
        .to_rgb8();
    let style_img = match a.style_size {
        Some(s) => {
            let (w, h) = style_img.dimensions();
            let k = s as f64 / w.max(h) as f64;
            let (tw, th) = ((w as f64 * k).round() as u32, (h as f64 * k).round() as u32);
            wgstyle::image_io::check_resize(w, h, tw.max(1), th.max(1))
                .map_err(anyhow::Error::msg)?;
            resize_longest(&style_img, s)
        }
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
    let ctx = gpu.context(wgstyle::ops::conv::ConvPrecision::F32)?;
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
    let mut log = outputs.log.take();
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
    let bar = if std::io::stderr().is_terminal() {
        ProgressBar::new(total)
    } else {
        ProgressBar::hidden()
    };
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
            writeln!(f.file_mut(), "{line}").context("writing the JSON log")?;
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
            outputs
                .checkpoint
                .write_bytes(&trainer.checkpoint()?.to_bytes()?)?;
            if let (Some(photo), Some(out)) = (&test_photo, outputs.samples.get_mut(&st.iteration))
            {
                sample(&ctx, &trainer, photo, out)?;
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
    let model = transform_bytes_with(
        &trainer.weights()?,
        Precision::F32,
        &[
            ("wgstyle.source", "wgstyle train"),
            ("wgstyle.style_image", &style_name),
            ("wgstyle.train.iterations", &iterations),
            ("wgstyle.train.options", &options_json),
        ],
        &[],
    )?;
    outputs.model.write_bytes(&model)?;
    if let Some(log) = log {
        log.persist()?;
    }
    eprintln!(
        "wrote {} (checkpoint {})",
        a.output.display(),
        ckpt_path.display()
    );
    Ok(())
}
