//! Window copy (`shaders/crop.wgsl`), used to cut tiles out of larger tensors, to pad
//! channels for the convolution's vec4 kernels, and batch items in and out of batches.

use crate::error::{Error, Result};
use crate::gpu::kernels::{shader_file, Kernel, Shader};
use crate::gpu::record::{grid_elems, Recorder};
use crate::gpu::tensor::Tensor;

/// `shaders/crop.wgsl`.
pub const CROP: Shader = shader_file!("crop.wgsl");

#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct Params {
    pub(crate) n: u32,
    pub(crate) src_h: u32,
    pub(crate) src_w: u32,
    pub(crate) c: u32,
    pub(crate) y0: u32,
    pub(crate) x0: u32,
    pub(crate) h: u32,
    pub(crate) w: u32,
    pub(crate) total: u32,
    pub(crate) src_c: u32,
    pub(crate) _p: [u32; 2],
}

/// `y = x[:, y0..y0+h, x0..x0+w, :]`.
pub fn crop(
    rec: &mut Recorder,
    x: &Tensor,
    y0: usize,
    x0: usize,
    h: usize,
    w: usize,
) -> Result<Tensor> {
    let [_, sh, sw, c] = x.shape();
    if y0 + h > sh || x0 + w > sw {
        return Err(Error::InvalidInput(format!(
            "crop {h}x{w} at ({y0}, {x0}) outside {:?}",
            x.shape()
        )));
    }
    if (y0, x0, h, w) == (0, 0, sh, sw) {
        return Ok(x.clone());
    }
    window(rec, x, (y0, x0), [h, w, c], "crop")
}

/// `x` `[n, h, w, c]` zero-padded at the end of its last three dimensions to
/// `[n, h2, w2, c2]` (e.g. channels up to a multiple of 4).
pub fn pad(rec: &mut Recorder, x: &Tensor, h2: usize, w2: usize, c2: usize) -> Result<Tensor> {
    let [_, h, w, c] = x.shape();
    if h2 < h || w2 < w || c2 < c {
        return Err(Error::InvalidInput(format!(
            "padding {:?} to {h2}x{w2}x{c2}",
            x.shape()
        )));
    }
    if (h2, w2, c2) == (h, w, c) {
        return Ok(x.clone());
    }
    window(rec, x, (0, 0), [h2, w2, c2], "pad")
}

/// `y[n, i, j, c] = x[n, y0 + i, x0 + j, c]` of shape `[n, h, w, c]`, zero outside `x`.
fn window(
    rec: &mut Recorder,
    x: &Tensor,
    (y0, x0): (usize, usize),
    [h, w, c]: [usize; 3],
    label: &str,
) -> Result<Tensor> {
    let [n, src_h, src_w, src_c] = x.shape();
    let y = Tensor::uninit(rec.context(), label, [n, h, w, c])?;
    let p = Params {
        n: n as u32,
        src_h: src_h as u32,
        src_w: src_w as u32,
        c: c as u32,
        y0: y0 as u32,
        x0: x0 as u32,
        h: h as u32,
        w: w as u32,
        total: y.len() as u32,
        src_c: src_c as u32,
        _p: [0; 2],
    };
    rec.dispatch(
        &Kernel::new(CROP, "crop"),
        &p,
        &[(1, x), (2, &y)],
        grid_elems(y.len()),
    );
    Ok(y)
}

/// Image `i` of a batch, `[1, h, w, c]` (a buffer copy).
pub fn batch_item(rec: &mut Recorder, x: &Tensor, i: usize) -> Result<Tensor> {
    let [n, h, w, c] = x.shape();
    if i >= n {
        return Err(Error::InvalidInput(format!(
            "image {i} of a batch {:?}",
            x.shape()
        )));
    }
    let y = Tensor::uninit(rec.context(), "batch_item", [1, h, w, c])?;
    rec.copy_range(x, i * y.len(), &y, 0, y.len());
    Ok(y)
}

/// Writes `item` `[1, h, w, c]` into image `i` of the batch `x` (a buffer copy).
pub fn set_batch_item(rec: &mut Recorder, x: &Tensor, i: usize, item: &Tensor) -> Result<()> {
    let [n, h, w, c] = x.shape();
    if i >= n || item.shape() != [1, h, w, c] {
        return Err(Error::InvalidInput(format!(
            "image {i} {:?} into a batch {:?}",
            item.shape(),
            x.shape()
        )));
    }
    rec.copy_range(item, 0, x, i * item.len(), item.len());
    Ok(())
}
