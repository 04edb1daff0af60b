//! Tensors: a GPU buffer with an NHWC shape.
//!
//! Layout: float32, `[n, h, w, c]` row-major with channels fastest (TensorFlow's NHWC).
//! Kernels are stored as `[kh, kw, cin, cout]` (HWIO). Vectors use shape `[1, 1, 1, len]`.

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::gpu::context::Context;
use crate::gpu::pool::PooledBuffer;

/// Buffer usages of every tensor.
pub(crate) const TENSOR_USAGE: wgpu::BufferUsages = wgpu::BufferUsages::STORAGE
    .union(wgpu::BufferUsages::COPY_DST)
    .union(wgpu::BufferUsages::COPY_SRC);

enum Storage {
    Pooled(PooledBuffer),
    Owned(wgpu::Buffer),
}

/// A float32 tensor on the GPU, shape `[n, h, w, c]`. Clones share the buffer.
#[derive(Clone)]
pub struct Tensor {
    storage: Arc<Storage>,
    shape: [usize; 4],
}

impl std::fmt::Debug for Tensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tensor{:?}", self.shape)
    }
}

impl Tensor {
    /// A pooled tensor with undefined contents, to be written by GPU commands (a kernel
    /// output). Fails if it exceeds the adapter's limits.
    pub fn uninit(ctx: &Context, label: &str, shape: [usize; 4]) -> Result<Self> {
        Self::pooled(ctx, label, shape, true)
    }

    fn pooled(ctx: &Context, label: &str, shape: [usize; 4], same_recording: bool) -> Result<Self> {
        let bytes = check_size(ctx, label, shape)?;
        let buf = ctx
            .inner
            .pool
            .take(label, bytes, TENSOR_USAGE, same_recording);
        Ok(Tensor {
            storage: Arc::new(Storage::Pooled(buf)),
            shape,
        })
    }

    /// Uploads `data` (row-major in `shape`) into a pooled tensor.
    pub fn upload(ctx: &Context, label: &str, shape: [usize; 4], data: &[f32]) -> Result<Self> {
        if data.len() != shape.iter().product::<usize>() {
            return Err(Error::InvalidInput(format!(
                "{label}: {} values for shape {shape:?}",
                data.len()
            )));
        }
        // Written by queue.write_buffer, which runs before the whole next submission: the
        // buffer must not be one that an open recording may still use.
        let t = Self::pooled(ctx, label, shape, false)?;
        if !data.is_empty() {
            ctx.queue()
                .write_buffer(t.buffer(), 0, bytemuck::cast_slice(data));
        }
        Ok(t)
    }

    /// A tensor in its own (not pooled) buffer, for weights that live as long as a model.
    pub fn persistent(ctx: &Context, label: &str, shape: [usize; 4], data: &[f32]) -> Result<Self> {
        let bytes = check_size(ctx, label, shape)?;
        if data.len() != shape.iter().product::<usize>() {
            return Err(Error::InvalidInput(format!(
                "{label}: {} values for shape {shape:?}",
                data.len()
            )));
        }
        let buffer = ctx.device().create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: bytes.max(16),
            usage: TENSOR_USAGE,
            mapped_at_creation: false,
        });
        ctx.queue()
            .write_buffer(&buffer, 0, bytemuck::cast_slice(data));
        Ok(Tensor {
            storage: Arc::new(Storage::Owned(buffer)),
            shape,
        })
    }

    /// The shape `[n, h, w, c]`.
    pub fn shape(&self) -> [usize; 4] {
        self.shape
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// True when the tensor has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes of data (the buffer may be larger).
    pub fn bytes(&self) -> u64 {
        (self.len() * 4) as u64
    }

    /// The same buffer seen with another shape of the same length.
    pub fn reshape(&self, shape: [usize; 4]) -> Self {
        assert_eq!(
            shape.iter().product::<usize>(),
            self.len(),
            "reshape must keep the length"
        );
        Tensor {
            storage: self.storage.clone(),
            shape,
        }
    }

    /// The underlying wgpu buffer.
    pub fn buffer(&self) -> &wgpu::Buffer {
        match &*self.storage {
            Storage::Pooled(p) => p.buffer(),
            Storage::Owned(b) => b,
        }
    }
}

fn check_size(ctx: &Context, label: &str, shape: [usize; 4]) -> Result<u64> {
    let elems = shape
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d as u64))
        .ok_or_else(|| Error::InvalidInput(format!("{label}: shape {shape:?} overflows")))?;
    let bytes = elems * 4;
    let limit = ctx.max_binding_bytes();
    if bytes > limit {
        return Err(Error::TooLarge {
            what: format!("tensor '{label}' {shape:?}"),
            bytes,
            limit,
        });
    }
    Ok(bytes.max(4))
}
