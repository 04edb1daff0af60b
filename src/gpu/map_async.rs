//! Awaiting a buffer mapping without blocking: the one readback path for native and the web.
//!
//! `map_async` reports through a callback. On native backends the callback runs inside
//! `device.poll`, which blocks until the GPU is done; on WebGPU (the browser) `poll` does
//! nothing and the callback runs when the browser's promise resolves, so the caller must
//! yield to the event loop instead of waiting. [`map_read`] returns a future that works in
//! both cases: native callers wrap it in `pollster::block_on`, the web awaits it.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context as TaskContext, Poll, Waker};

use crate::error::{Error, Result};

/// The state shared by the mapping callback and the future.
#[derive(Default)]
struct Slot {
    result: Option<std::result::Result<(), wgpu::BufferAsyncError>>,
    waker: Option<Waker>,
}

/// Resolves once the mapping callback has run.
struct Mapped(Arc<Mutex<Slot>>);

impl Future for Mapped {
    type Output = std::result::Result<(), wgpu::BufferAsyncError>;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let mut slot = self.0.lock().unwrap();
        match slot.result.take() {
            Some(r) => Poll::Ready(r),
            None => {
                slot.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

/// Maps `slice` for reading and waits for it: on native by polling the device until the GPU
/// is done, on the web by yielding until the browser reports the mapping.
pub(crate) async fn map_read(device: &wgpu::Device, slice: &wgpu::BufferSlice<'_>) -> Result<()> {
    let slot = Arc::new(Mutex::new(Slot::default()));
    let sink = slot.clone();
    slice.map_async(wgpu::MapMode::Read, move |r| {
        let mut s = sink.lock().unwrap();
        s.result = Some(r);
        if let Some(w) = s.waker.take() {
            w.wake();
        }
    });
    // Native: run the callback now. The web: a no-op, the browser runs it later.
    #[cfg(not(target_arch = "wasm32"))]
    device
        .poll(wgpu::PollType::wait_indefinitely())
        .map_err(|e| Error::Gpu(format!("waiting for readback: {e}")))?;
    #[cfg(target_arch = "wasm32")]
    let _ = device.poll(wgpu::PollType::Poll);
    Mapped(slot)
        .await
        .map_err(|e| Error::Gpu(format!("mapping readback buffer: {e}")))
}
