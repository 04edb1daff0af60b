//! GPU timestamps around every compute pass of a recording (for benchmarks).

use crate::error::{Error, Result};
use crate::gpu::context::Context;

/// Timestamp queries for up to `capacity` passes of one recording.
pub(crate) struct PassTimer {
    pub(crate) query_set: wgpu::QuerySet,
    resolve: wgpu::Buffer,
    readback: wgpu::Buffer,
    pub(crate) capacity: u32,
    pub(crate) labels: Vec<String>,
}

/// The duration of one compute pass.
#[derive(Clone, Debug, PartialEq)]
pub struct PassTime {
    /// The kernel's label.
    pub label: String,
    /// GPU milliseconds between the pass's start and end timestamps.
    pub ms: f64,
}

/// Resolved timestamps, readable once the recording has been submitted.
pub struct TimingReadback {
    readback: wgpu::Buffer,
    labels: Vec<String>,
    period_ns: f64,
}

impl PassTimer {
    /// `None` when the device lacks `TIMESTAMP_QUERY`.
    pub(crate) fn new(ctx: &Context, capacity: u32) -> Option<Self> {
        if !ctx
            .device()
            .features()
            .contains(wgpu::Features::TIMESTAMP_QUERY)
            || capacity == 0
        {
            return None;
        }
        let count = 2 * capacity;
        let bytes = 8 * count as u64;
        let query_set = ctx.device().create_query_set(&wgpu::QuerySetDescriptor {
            label: Some("pass timestamps"),
            ty: wgpu::QueryType::Timestamp,
            count,
        });
        let buf = |label, usage| {
            ctx.device().create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size: bytes,
                usage,
                mapped_at_creation: false,
            })
        };
        Some(PassTimer {
            query_set,
            resolve: buf(
                "timestamps.resolve",
                wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
            ),
            readback: buf(
                "timestamps.readback",
                wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            ),
            capacity,
            labels: Vec::new(),
        })
    }

    /// The timestamp writes for the next pass, if there is room.
    pub(crate) fn next(&mut self, label: &str) -> Option<wgpu::ComputePassTimestampWrites<'_>> {
        let i = self.labels.len() as u32;
        if i >= self.capacity {
            return None;
        }
        self.labels.push(label.to_string());
        Some(wgpu::ComputePassTimestampWrites {
            query_set: &self.query_set,
            beginning_of_pass_write_index: Some(2 * i),
            end_of_pass_write_index: Some(2 * i + 1),
        })
    }

    /// Records the resolve and the copy to the mappable buffer.
    pub(crate) fn finish(
        self,
        ctx: &Context,
        encoder: &mut wgpu::CommandEncoder,
    ) -> TimingReadback {
        let n = 2 * self.labels.len() as u32;
        if n > 0 {
            encoder.resolve_query_set(&self.query_set, 0..n, &self.resolve, 0);
            encoder.copy_buffer_to_buffer(&self.resolve, 0, &self.readback, 0, Some(8 * n as u64));
        }
        TimingReadback {
            readback: self.readback,
            labels: self.labels,
            period_ns: ctx.queue().get_timestamp_period() as f64,
        }
    }
}

impl TimingReadback {
    /// Waits for the GPU and returns each pass's duration.
    pub fn read(self, ctx: &Context) -> Result<Vec<PassTime>> {
        if self.labels.is_empty() {
            return Ok(Vec::new());
        }
        let n = 2 * self.labels.len() as u64;
        let slice = self.readback.slice(0..8 * n);
        pollster::block_on(crate::gpu::map_async::map_read(ctx.device(), &slice))?;
        let ticks: Vec<u64> = {
            let view = slice
                .get_mapped_range()
                .map_err(|e| Error::Gpu(e.to_string()))?;
            bytemuck::cast_slice::<u8, u64>(&view).to_vec()
        };
        self.readback.unmap();
        Ok(self
            .labels
            .into_iter()
            .enumerate()
            .map(|(i, label)| {
                let d = ticks[2 * i + 1].saturating_sub(ticks[2 * i]);
                PassTime {
                    label,
                    ms: d as f64 * self.period_ns / 1e6,
                }
            })
            .collect())
    }
}
