//! Capturing a guest's stdout, stderr and log lines into one bounded buffer.
//!
//! wasmtime's `MemoryOutputPipe` traps the guest once it is full; an extension that prints
//! too much must instead keep running with its output cut, so this module has its own
//! stream: writes past the cap are counted and dropped, and the final text carries a marker
//! saying how much was lost.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use bytes::Bytes;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

/// How many bytes the guest may write per `check-write` permit; it only bounds the size of
/// one `write` call, not the total.
const WRITE_PERMIT_BYTES: usize = 64 * 1024;

/// How much of stderr is kept apart, for a command's exit message and a panic's text.
pub(crate) const STDERR_TAIL_BYTES: usize = 8 * 1024;

/// A bounded, shared byte buffer that WASI streams and host log calls append to.
#[derive(Clone, Debug)]
pub(crate) struct Capture {
    inner: Arc<Mutex<Buffer>>,
}

#[derive(Debug)]
struct Buffer {
    bytes: Vec<u8>,
    limit: usize,
    dropped: u64,
    /// The last bytes written through a stream marked as stderr, whatever the cap did.
    stderr_tail: VecDeque<u8>,
}

/// What a capture held at the end of a call.
#[derive(Debug, Clone, Default)]
pub(crate) struct Captured {
    /// Everything kept, in the order it was written.
    pub bytes: Vec<u8>,
    /// Bytes written past the cap and dropped.
    pub dropped: u64,
    /// The end of what went to stderr (also inside `bytes` when it fit).
    pub stderr_tail: Vec<u8>,
}

impl Capture {
    /// A capture that keeps at most `limit` bytes.
    pub(crate) fn new(limit: usize) -> Self {
        Capture {
            inner: Arc::new(Mutex::new(Buffer {
                bytes: Vec::new(),
                limit,
                dropped: 0,
                stderr_tail: VecDeque::new(),
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Buffer> {
        // A poisoned lock only means another writer panicked mid-append; the bytes are
        // still a valid prefix, so keep going rather than lose the run's output.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Appends bytes, keeping what fits under the cap.
    pub(crate) fn append(&self, data: &[u8]) {
        self.lock().append(data);
    }

    /// A WASI stream that writes into this capture; `stderr` also feeds the stderr tail.
    pub(crate) fn stream(&self, stderr: bool) -> CaptureStream {
        CaptureStream {
            capture: self.clone(),
            stderr,
        }
    }

    /// Takes what was captured, leaving the capture empty.
    pub(crate) fn take(&self) -> Captured {
        let mut buffer = self.lock();
        Captured {
            bytes: std::mem::take(&mut buffer.bytes),
            dropped: std::mem::take(&mut buffer.dropped),
            stderr_tail: std::mem::take(&mut buffer.stderr_tail).into(),
        }
    }
}

impl Buffer {
    fn append(&mut self, data: &[u8]) {
        let room = self.limit.saturating_sub(self.bytes.len());
        let kept = room.min(data.len());
        self.bytes.extend_from_slice(&data[..kept]);
        self.dropped += (data.len() - kept) as u64;
    }

    fn remember_stderr(&mut self, data: &[u8]) {
        let data = &data[data.len().saturating_sub(STDERR_TAIL_BYTES)..];
        let overflow = (self.stderr_tail.len() + data.len()).saturating_sub(STDERR_TAIL_BYTES);
        self.stderr_tail.drain(..overflow);
        self.stderr_tail.extend(data);
    }
}

/// One guest-facing handle on a [`Capture`]: what WASI's stdout or stderr writes to.
#[derive(Clone, Debug)]
pub(crate) struct CaptureStream {
    capture: Capture,
    stderr: bool,
}

impl CaptureStream {
    fn write_bytes(&self, data: &[u8]) {
        let mut buffer = self.capture.lock();
        buffer.append(data);
        if self.stderr {
            buffer.remember_stderr(data);
        }
    }
}

impl IsTerminal for CaptureStream {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for CaptureStream {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl OutputStream for CaptureStream {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.write_bytes(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        // Never closed and never full: past the cap, writes are dropped, not refused.
        Ok(WRITE_PERMIT_BYTES)
    }
}

#[async_trait::async_trait]
impl Pollable for CaptureStream {
    async fn ready(&mut self) {}
}

impl tokio::io::AsyncWrite for CaptureStream {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.write_bytes(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_up_to_the_limit_and_counts_the_rest() {
        let capture = Capture::new(10);
        capture.append(b"0123456");
        capture.append(b"789abcdef");
        let captured = capture.take();
        assert_eq!(captured.bytes, b"0123456789");
        assert_eq!(captured.dropped, 6);
    }

    #[test]
    fn stderr_tail_keeps_the_last_bytes_even_past_the_cap() {
        let capture = Capture::new(4);
        let stderr = capture.stream(true);
        stderr.write_bytes(&vec![b'x'; STDERR_TAIL_BYTES]);
        stderr.write_bytes(b"the end");
        let captured = capture.take();
        assert_eq!(captured.bytes, b"xxxx");
        assert_eq!(captured.stderr_tail.len(), STDERR_TAIL_BYTES);
        assert!(captured.stderr_tail.ends_with(b"the end"));
    }
}
