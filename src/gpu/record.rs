//! Recording a pass: every dispatch goes into one command encoder, submitted once.

use crate::error::{Error, Result};
use crate::gpu::context::Context;
use crate::gpu::kernels::Kernel;
use crate::gpu::pool::PooledBuffer;
use crate::gpu::tensor::Tensor;
use crate::gpu::timing::{PassTimer, TimingReadback};

/// Bytes per pooled uniform buffer.
const UNIFORM_CHUNK: u64 = 64 << 10;
const MAX_BIND_GROUP_CACHE: usize = 8192;

/// Records kernel dispatches and copies into one command buffer.
///
/// Each dispatch runs in its own compute pass labelled with its kernel's name. Uniform
/// parameters are packed into pooled uniform buffers and written just before the submit.
pub struct Recorder {
    ctx: Context,
    encoder: Option<wgpu::CommandEncoder>,
    /// Recordings are tied to the thread that opened them (see `gpu::pool`).
    _not_send: std::marker::PhantomData<*const ()>,
    uniforms: Vec<(PooledBuffer, Vec<u8>)>,
    align: u64,
    labels: Vec<String>,
    timer: Option<PassTimer>,
}

/// A tensor copy that can be read on the CPU once its recorder has been submitted.
pub struct Readback {
    staging: PooledBuffer,
    bytes: u64,
    shape: [usize; 4],
}

impl Recorder {
    /// Starts recording on `ctx`.
    pub fn new(ctx: &Context, label: &str) -> Self {
        let encoder = ctx
            .device()
            .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some(label) });
        let align = ctx.limits().min_uniform_buffer_offset_alignment.max(16) as u64;
        ctx.inner.pool.begin_recording();
        Recorder {
            ctx: ctx.clone(),
            encoder: Some(encoder),
            _not_send: std::marker::PhantomData,
            uniforms: Vec::new(),
            align,
            labels: Vec::new(),
            timer: None,
        }
    }

    fn enc(&mut self) -> &mut wgpu::CommandEncoder {
        self.encoder.as_mut().expect("encoder present until submit")
    }

    /// The context this recorder submits to.
    pub fn context(&self) -> &Context {
        &self.ctx
    }

    /// Writes GPU timestamps around each of the next `capacity` passes. Returns false (and
    /// does nothing) when the device lacks `TIMESTAMP_QUERY`.
    pub fn enable_pass_timing(&mut self, capacity: u32) -> bool {
        self.timer = PassTimer::new(&self.ctx, capacity);
        self.timer.is_some()
    }

    /// Records the resolution of the pass timestamps; read them after [`Recorder::submit`].
    pub fn finish_timing(&mut self) -> Option<TimingReadback> {
        let timer = self.timer.take()?;
        let ctx = self.ctx.clone();
        Some(timer.finish(&ctx, self.enc()))
    }

    /// Number of dispatches recorded so far.
    pub fn dispatch_count(&self) -> usize {
        self.labels.len()
    }

    /// The pipeline label of every dispatch recorded so far, in order (e.g.
    /// `conv2d.direct[WG_X=64,WG_Y=1,BK=16]`): which kernel variants a recording used.
    pub fn kernel_labels(&self) -> &[String] {
        &self.labels
    }

    /// Appends `bytes` to the current uniform chunk at the next aligned offset.
    fn push_uniform(&mut self, bytes: &[u8]) -> (wgpu::Buffer, u64) {
        let chunk = UNIFORM_CHUNK.max(bytes.len() as u64);
        let offset_in_last = self
            .uniforms
            .last()
            .map(|(_, d)| (d.len() as u64).next_multiple_of(self.align));
        let fits = offset_in_last.is_some_and(|o| o + bytes.len() as u64 <= chunk);
        if !fits {
            let buf = self.ctx.inner.pool.take(
                "uniforms",
                chunk,
                wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
                false,
            );
            self.uniforms
                .push((buf, Vec::with_capacity(chunk as usize)));
        }
        let (buf, data) = self.uniforms.last_mut().unwrap();
        let offset = (data.len() as u64).next_multiple_of(self.align);
        data.resize(offset as usize, 0);
        data.extend_from_slice(bytes);
        // Uniform bindings are sized in multiples of 16 bytes.
        data.resize(data.len().next_multiple_of(16), 0);
        (buf.buffer().clone(), offset)
    }

    /// Records one dispatch of `kernel` with `params` at binding 0 and `tensors` at the
    /// given binding numbers. `groups` is the workgroup count (x, y, z).
    pub fn dispatch<P: bytemuck::Pod>(
        &mut self,
        kernel: &Kernel,
        params: &P,
        tensors: &[(u32, &Tensor)],
        groups: [u32; 3],
    ) {
        let compiled = self.ctx.inner.kernels.get(kernel);
        let (ubuf, uoff) = self.push_uniform(bytemuck::bytes_of(params));
        let usize_ = std::mem::size_of::<P>().next_multiple_of(16) as u64;
        let mut key_entries = vec![(0u32, ubuf.clone(), uoff, usize_)];
        for (b, t) in tensors {
            key_entries.push((*b, t.buffer().clone(), 0, t.bytes().max(4)));
        }
        let key = (compiled.label.clone(), key_entries);
        let bind_group = {
            let mut cache = self.ctx.inner.kernels.bind_groups.lock().unwrap();
            if let Some(bg) = cache.get(&key) {
                bg.clone()
            } else {
                let entries: Vec<wgpu::BindGroupEntry> = key
                    .1
                    .iter()
                    .map(|(b, buf, off, size)| wgpu::BindGroupEntry {
                        binding: *b,
                        resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                            buffer: buf,
                            offset: *off,
                            size: wgpu::BufferSize::new(*size),
                        }),
                    })
                    .collect();
                let bg = self
                    .ctx
                    .device()
                    .create_bind_group(&wgpu::BindGroupDescriptor {
                        label: Some(&compiled.label),
                        layout: &compiled.pipeline.get_bind_group_layout(0),
                        entries: &entries,
                    });
                if cache.len() >= MAX_BIND_GROUP_CACHE {
                    cache.clear();
                }
                cache.insert(key, bg.clone());
                bg
            }
        };
        let encoder = self.encoder.as_mut().expect("encoder present until submit");
        let timestamp_writes = self.timer.as_mut().and_then(|t| t.next(&compiled.label));
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some(&compiled.label),
            timestamp_writes,
        });
        pass.set_pipeline(&compiled.pipeline);
        pass.set_bind_group(0, &bind_group, &[]);
        pass.dispatch_workgroups(groups[0], groups[1], groups[2]);
        drop(pass);
        self.labels.push(compiled.label.clone());
    }

    /// Records a copy of `src` into `dst` (same length).
    pub fn copy(&mut self, src: &Tensor, dst: &Tensor) {
        assert_eq!(src.len(), dst.len());
        self.copy_range(src, 0, dst, 0, src.len());
    }

    /// Records a copy of `len` elements from `src` at element `src_at` into `dst` at `dst_at`.
    pub fn copy_range(
        &mut self,
        src: &Tensor,
        src_at: usize,
        dst: &Tensor,
        dst_at: usize,
        len: usize,
    ) {
        assert!(
            src_at + len <= src.len() && dst_at + len <= dst.len(),
            "copy out of range"
        );
        if len > 0 {
            self.enc().copy_buffer_to_buffer(
                src.buffer(),
                4 * src_at as u64,
                dst.buffer(),
                4 * dst_at as u64,
                Some(4 * len as u64),
            );
        }
    }

    /// Records a copy of `t` into a mappable buffer; read it after [`Recorder::submit`].
    pub fn readback(&mut self, t: &Tensor) -> Readback {
        let bytes = t.bytes().max(4);
        let staging = self.ctx.inner.pool.take(
            "readback",
            bytes,
            wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            false,
        );
        self.enc()
            .copy_buffer_to_buffer(t.buffer(), 0, staging.buffer(), 0, Some(bytes));
        Readback {
            staging,
            bytes,
            shape: t.shape(),
        }
    }

    /// Writes the uniforms and submits everything recorded, in one submission.
    pub fn submit(self) -> Result<()> {
        let ctx = self.ctx.clone();
        self.submit_unchecked();
        ctx.take_error()
    }

    /// [`Recorder::submit`] without collecting the context's pending GPU errors (for work run
    /// inside its own error scope while another recording may be open, e.g. autotuning).
    pub(crate) fn submit_unchecked(mut self) {
        let queue = self.ctx.queue();
        for (buf, data) in &self.uniforms {
            queue.write_buffer(buf.buffer(), 0, data);
        }
        let encoder = self.encoder.take().expect("encoder present until submit");
        queue.submit(Some(encoder.finish()));
        // Dropping self closes the recording: buffers freed during it, and the uniform
        // buffers, return to the shared pool; later writes are ordered after this submit.
        drop(self);
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.ctx.inner.pool.end_recording();
        self.uniforms.clear();
    }
}

impl Readback {
    /// The shape of the tensor that was copied.
    pub fn shape(&self) -> [usize; 4] {
        self.shape
    }

    /// Waits for the GPU and returns the values (maps only the bytes of the tensor).
    pub fn read(self, ctx: &Context) -> Result<Vec<f32>> {
        pollster::block_on(self.read_async(ctx))
    }

    /// [`Readback::read`] without blocking: awaits the mapping (the only way on the web,
    /// where the browser maps buffers asynchronously).
    pub async fn read_async(self, ctx: &Context) -> Result<Vec<f32>> {
        let slice = self.staging.buffer().slice(0..self.bytes);
        if let Err(e) = crate::gpu::map_async::map_read(ctx.device(), &slice).await {
            // The reason is usually an earlier error (e.g. a shader the browser refused).
            ctx.take_error()?;
            return Err(e);
        }
        let out: Vec<f32> = {
            let view = slice
                .get_mapped_range()
                .map_err(|e| Error::Gpu(format!("reading mapped buffer: {e}")))?;
            let n = self.shape.iter().product::<usize>();
            bytemuck::cast_slice::<u8, f32>(&view)[..n].to_vec()
        };
        self.staging.buffer().unmap();
        ctx.take_error()?;
        Ok(out)
    }
}

impl Context {
    /// Copies a tensor back to the CPU (one submission, waits for it).
    pub fn download(&self, t: &Tensor) -> Result<Vec<f32>> {
        let mut rec = Recorder::new(self, "download");
        let rb = rec.readback(t);
        rec.submit()?;
        rb.read(self)
    }
}

/// Splits `n` workgroups into an (x, y) grid within the 65535-per-dimension limit.
pub fn grid_1d(n: u32) -> [u32; 3] {
    const MAX: u32 = 65535;
    if n <= MAX {
        [n.max(1), 1, 1]
    } else {
        [MAX, n.div_ceil(MAX), 1]
    }
}

/// Workgroups for `len` elements at 256 per workgroup, as [`grid_1d`] lays them out.
pub fn grid_elems(len: usize) -> [u32; 3] {
    grid_1d((len as u64).div_ceil(256) as u32)
}
