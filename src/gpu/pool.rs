//! A pool of GPU buffers that recycles freed buffers by size class and usage,
//! so that repeated passes at the same size allocate nothing new.
//!
//! Reuse must never let one submission's data be clobbered by another's. While a
//! [`Recorder`](crate::gpu::record::Recorder) is recording on a thread, buffers freed on that
//! thread may still be referenced by its unsubmitted commands: they go to the recording's own
//! free list, where only kernel outputs of the same recording (written in command order) may
//! reuse them, never `queue.write_buffer` uploads (which run before the whole submission).
//! They join the shared free lists when the recording is submitted or dropped.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Counters of a [`BufferPool`], for tests and memory reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Buffers created since the pool was made.
    pub buffers_created: u64,
    /// Bytes held by the pool now (in use or free).
    pub bytes_held: u64,
    /// Bytes in use by live tensors now.
    pub bytes_in_use: u64,
    /// Highest `bytes_in_use` seen.
    pub peak_bytes_in_use: u64,
    /// Highest `bytes_held` seen: the pool's real GPU footprint.
    pub peak_bytes_held: u64,
}

type Key = (u64, wgpu::BufferUsages);

/// Per thread: a stack of open recordings, each with the pool it draws from and its
/// deferred free buffers.
struct Frame {
    pool: usize,
    free: Vec<(Key, wgpu::Buffer)>,
}

thread_local! {
    static FRAMES: RefCell<Vec<Frame>> = const { RefCell::new(Vec::new()) };
}

/// Recycles buffers: [`BufferPool::take`] reuses a free buffer of the same size class and usage.
pub struct BufferPool {
    device: wgpu::Device,
    free: Mutex<HashMap<Key, Vec<wgpu::Buffer>>>,
    created: AtomicU64,
    held: AtomicU64,
    in_use: AtomicU64,
    peak: AtomicU64,
    peak_held: AtomicU64,
    /// Free buffers are dropped before a new buffer would take `held` beyond this.
    limit: AtomicU64,
}

/// Rounds a request up to its size class: powers of two up to 16 MiB, then multiples of 4 MiB.
pub fn size_class(bytes: u64) -> u64 {
    let b = bytes.max(256);
    if b <= 16 << 20 {
        b.next_power_of_two()
    } else {
        b.div_ceil(4 << 20) * (4 << 20)
    }
}

impl BufferPool {
    pub(crate) fn new(device: wgpu::Device) -> Self {
        BufferPool {
            device,
            free: Mutex::new(HashMap::new()),
            created: AtomicU64::new(0),
            held: AtomicU64::new(0),
            in_use: AtomicU64::new(0),
            peak: AtomicU64::new(0),
            peak_held: AtomicU64::new(0),
            limit: AtomicU64::new(u64::MAX),
        }
    }

    /// Counters of this pool.
    pub fn stats(&self) -> PoolStats {
        PoolStats {
            buffers_created: self.created.load(Ordering::Relaxed),
            bytes_held: self.held.load(Ordering::Relaxed),
            bytes_in_use: self.in_use.load(Ordering::Relaxed),
            peak_bytes_in_use: self.peak.load(Ordering::Relaxed),
            peak_bytes_held: self.peak_held.load(Ordering::Relaxed),
        }
    }

    fn id(&self) -> usize {
        self as *const Self as usize
    }

    /// Opens a recording on this thread (see the module documentation).
    pub(crate) fn begin_recording(&self) {
        FRAMES.with(|f| {
            f.borrow_mut().push(Frame {
                pool: self.id(),
                free: Vec::new(),
            })
        });
    }

    /// Closes this thread's innermost recording on this pool: its deferred buffers go to the
    /// next enclosing recording on the same pool, or to the shared free lists.
    pub(crate) fn end_recording(&self) {
        let id = self.id();
        let freed = FRAMES.with(|f| {
            let mut frames = f.borrow_mut();
            let i = frames.iter().rposition(|fr| fr.pool == id)?;
            let fr = frames.remove(i);
            match frames.iter_mut().rev().find(|fr| fr.pool == id) {
                Some(outer) => {
                    outer.free.extend(fr.free);
                    None
                }
                None => Some(fr.free),
            }
        });
        if let Some(freed) = freed {
            let mut free = self.free.lock().unwrap();
            for (key, b) in freed {
                free.entry(key).or_default().push(b);
            }
        }
    }

    /// A buffer of at least `bytes` bytes with `usage`, reused when one is free.
    /// `same_recording`: the buffer is only written by commands of the current recording
    /// (a kernel output), so a buffer freed earlier in that recording may be reused.
    pub fn take(
        self: &Arc<Self>,
        label: &str,
        bytes: u64,
        usage: wgpu::BufferUsages,
        same_recording: bool,
    ) -> PooledBuffer {
        let class = size_class(bytes);
        let key = (class, usage);
        let id = self.id();
        let local = if same_recording {
            FRAMES.with(|f| {
                let mut frames = f.borrow_mut();
                let fr = frames.iter_mut().rev().find(|fr| fr.pool == id)?;
                let i = fr.free.iter().rposition(|(k, _)| *k == key)?;
                Some(fr.free.swap_remove(i).1)
            })
        } else {
            None
        };
        let reused = local.or_else(|| {
            self.free
                .lock()
                .unwrap()
                .get_mut(&key)
                .and_then(|v| v.pop())
        });
        let buffer = reused.unwrap_or_else(|| {
            if self.held.load(Ordering::Relaxed) + class > self.limit.load(Ordering::Relaxed) {
                // Free buffers of other size classes would only add to the footprint.
                self.trim();
            }
            self.created.fetch_add(1, Ordering::Relaxed);
            let held = self.held.fetch_add(class, Ordering::Relaxed) + class;
            self.peak_held.fetch_max(held, Ordering::Relaxed);
            self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size: class,
                usage,
                mapped_at_creation: false,
            })
        });
        let now = self.in_use.fetch_add(class, Ordering::Relaxed) + class;
        self.peak.fetch_max(now, Ordering::Relaxed);
        PooledBuffer {
            buffer: Some(buffer),
            key,
            pool: self.clone(),
        }
    }

    /// Drops every free buffer (memory goes back to the driver).
    pub fn trim(&self) {
        let mut free = self.free.lock().unwrap();
        for ((class, _), v) in free.drain() {
            self.held
                .fetch_sub(class * v.len() as u64, Ordering::Relaxed);
        }
    }

    /// Resets the peak counters to the current use and holding.
    pub fn reset_peak(&self) {
        self.peak
            .store(self.in_use.load(Ordering::Relaxed), Ordering::Relaxed);
        self.peak_held
            .store(self.held.load(Ordering::Relaxed), Ordering::Relaxed);
    }

    /// Keeps the bytes held (in use and free) under `bytes` where possible: before a new
    /// buffer would exceed it, the free buffers are dropped. `None`: no limit.
    pub fn set_limit(&self, bytes: Option<u64>) {
        self.limit
            .store(bytes.unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    /// The limit set with [`BufferPool::set_limit`], if any.
    pub fn limit(&self) -> Option<u64> {
        Some(self.limit.load(Ordering::Relaxed)).filter(|&l| l != u64::MAX)
    }

    fn give_back(&self, key: Key, buffer: wgpu::Buffer) {
        self.in_use.fetch_sub(key.0, Ordering::Relaxed);
        // Freed while this thread records on this pool: the recording may still use it.
        let id = self.id();
        let mut buffer = Some(buffer);
        // (During thread teardown FRAMES may be gone: then no recording is open either.)
        let _ = FRAMES.try_with(|f| {
            let mut frames = f.borrow_mut();
            if let Some(fr) = frames.iter_mut().rev().find(|fr| fr.pool == id) {
                fr.free.extend(buffer.take().map(|b| (key, b)));
            }
        });
        let Some(buffer) = buffer else { return };
        self.free
            .lock()
            .unwrap()
            .entry(key)
            .or_default()
            .push(buffer);
    }
}

/// A buffer on loan from a [`BufferPool`]; it goes back to the pool when dropped.
pub struct PooledBuffer {
    buffer: Option<wgpu::Buffer>,
    key: Key,
    pool: Arc<BufferPool>,
}

impl PooledBuffer {
    /// The wgpu buffer.
    pub fn buffer(&self) -> &wgpu::Buffer {
        self.buffer.as_ref().expect("buffer present until drop")
    }
}

impl Drop for PooledBuffer {
    fn drop(&mut self) {
        if let Some(b) = self.buffer.take() {
            self.pool.give_back(self.key, b);
        }
    }
}
