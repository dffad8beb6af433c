//! A byte stream whose reads are paced: at most `slice` bytes per `interval`, as a client on a
//! slow link takes them off its socket (S7).
//!
//! Contract: the wrapped stream is read in slices; a slice opens every `interval` and allows
//! `slice` bytes, whatever read asks for. A slice not used is not saved up: after a pause the
//! reader gets one slice at once, then the cadence again, so over any window of `w` the bytes
//! read are at most `slice × (w / interval + 1)`. Writes pass straight through (the client's
//! own frames are not what S7 slows).
//!
//! Pacing the reads, not the frames, is what makes the kernel's receive window close the way a
//! slow link's does: the bytes not read stay in the socket, the window shrinks, and the
//! gateway's unsent bytes grow until its writes wait.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// Largest slice (the copy through the stack buffer of one read).
const MAX_SLICE: usize = 4096;

pub struct Paced<S> {
    inner: S,
    slice: usize,
    interval: Duration,
    /// Bytes the current slice still allows.
    left: usize,
    /// When the next slice opens.
    next: Pin<Box<Sleep>>,
    /// Bytes read in all.
    read: u64,
}

impl<S> Paced<S> {
    /// Reads of `inner` at about `bytes_per_sec`, in slices of `interval`.
    pub fn new(inner: S, bytes_per_sec: u64, interval: Duration) -> Paced<S> {
        let slice =
            ((bytes_per_sec as f64 * interval.as_secs_f64()).round() as usize).clamp(1, MAX_SLICE);
        Paced {
            inner,
            slice,
            interval,
            left: slice,
            next: Box::pin(tokio::time::sleep(interval)),
            read: 0,
        }
    }

    /// Bytes read through the pacing so far.
    pub fn bytes_read(&self) -> u64 {
        self.read
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Paced<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.left == 0 {
            ready!(this.next.as_mut().poll(cx));
            this.left = this.slice;
            let now = Instant::now();
            let cadence = this.next.deadline() + this.interval;
            let at = if cadence > now {
                cadence
            } else {
                now + this.interval
            };
            this.next.as_mut().reset(at);
        }
        let mut tmp = [0u8; MAX_SLICE];
        let n = this.left.min(buf.remaining()).min(MAX_SLICE);
        let mut limited = ReadBuf::new(&mut tmp[..n]);
        ready!(Pin::new(&mut this.inner).poll_read(cx, &mut limited))?;
        let got = limited.filled();
        buf.put_slice(got);
        this.left -= got.len();
        this.read += got.len() as u64;
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Paced<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test(start_paused = true)]
    async fn reads_are_held_to_the_rate() {
        let (mut tx, rx) = tokio::io::duplex(1 << 16);
        tx.write_all(&[7u8; 10_000]).await.unwrap();
        // 1,000 B/s in slices of 100 ms: 100 bytes a slice.
        let mut paced = Paced::new(rx, 1000, Duration::from_millis(100));
        let start = Instant::now();
        let mut got = vec![0u8; 1000];
        paced.read_exact(&mut got).await.unwrap();
        // The first slice is open at once; the other nine follow one per interval.
        assert_eq!(start.elapsed(), Duration::from_millis(900));
        assert_eq!(paced.bytes_read(), 1000);
        let mut one = [0u8; 4096];
        let n = paced.read(&mut one).await.unwrap();
        assert_eq!(n, 100, "never more than a slice in one read");
    }
}
