//! [`Stylizer`]'s non-blocking path, for the browser: the same network, the same tiling, every
//! GPU readback awaited instead of waited for.

use image::RgbImage;

use crate::error::{Error, Result};
use crate::gpu::record::Recorder;
use crate::gpu::tensor::Tensor;
use crate::image_tiling::Patches;
use crate::stylize::{crop, to_u8, Stylizer};

impl Stylizer {
    /// [`Stylizer::stylize_raw`] without blocking waits.
    pub async fn stylize_raw_async(
        &self,
        input: &[f32],
        n: usize,
        h: usize,
        w: usize,
    ) -> Result<Vec<f32>> {
        if n == 0 || h == 0 || w == 0 {
            return Err(Error::InvalidInput(format!(
                "empty input: {n} images of {w}x{h}"
            )));
        }
        let ctx = self.context();
        let x = Tensor::upload(ctx, "input", [n, h, w, 3], input)?;
        let mut rec = Recorder::new(ctx, "stylize");
        let y = self.net().forward(&mut rec, &x)?;
        let rb = rec.readback(&y);
        rec.submit()?;
        let [_, ho, wo, _] = rb.shape();
        let full = rb.read_async(ctx).await?;
        Ok(crop(&full, n, ho, wo, h, w))
    }

    /// [`Stylizer::stylize`] without blocking waits (no threads, no file system): the
    /// browser's path. An image too large for one pass (adapter limits or the memory budget)
    /// goes through the same exact patches.
    pub async fn stylize_async(&self, img: &RgbImage) -> Result<RgbImage> {
        let (w, h) = (img.width() as usize, img.height() as usize);
        if w == 0 || h == 0 {
            return Err(Error::InvalidInput("empty image".into()));
        }
        if let Some(t) = self.patch_size(h, w)? {
            return Patches::new(self.net(), img).run_async(t).await;
        }
        let input: Vec<f32> = img.as_raw().iter().map(|&v| v as f32).collect();
        let raw = self.stylize_raw_async(&input, 1, h, w).await?;
        Ok(RgbImage::from_raw(w as u32, h as u32, to_u8(&raw)).expect("sizes match"))
    }
}
