//! How a merging client's writer learns that actix has taken what it sent, and written it.
//!
//! actix-ws hands frames to the connection through a channel of 32, and actix-http pulls them
//! into its write buffer whenever that buffer is below `h1_write_buffer_size`. A frame in
//! either place can no longer be merged: a client that falls behind would have 32 one-chunk
//! frames waiting there before the sink's queue saw any backlog. The response body is wrapped
//! in [`Pulled`], which counts each time actix polls it and each time a poll takes bytes (the
//! body drains the whole channel when polled, so after a pull the channel is empty). The writer
//! of a `caps=merge` client, after each frame, waits for the pull that took it
//! ([`PullSignal::pulled_since`]) and then for the next poll ([`PullSignal::written`]): the
//! public server sets `h1_write_buffer_size` to 1 byte (server.rs), so actix polls the body
//! again only once its write buffer is empty, that is once the frame is in the kernel. Only
//! then does the writer take the next frame from the queue, where the chunks that arrived
//! meanwhile have merged.
//!
//! Contract: both waits resolve once their poll has happened, or with [`PeerGone`] once the
//! body is dropped (the connection is over). A merging client has at most one frame between
//! its queue and the kernel.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use actix_web::body::{BodySize, BoxBody, MessageBody};
use bytes::Bytes;
use tokio::sync::Notify;

use super::peer_gone::PeerGone;

#[derive(Default)]
struct Shared {
    /// Polls of the body that returned bytes.
    pulls: AtomicU64,
    /// Every poll of the body.
    polls: AtomicU64,
    /// The poll count at the latest pull.
    polls_at_pull: AtomicU64,
    gone: AtomicBool,
    /// Notified at every poll (and when the body is dropped), while somebody waits.
    polled: Notify,
}

/// The writer's side: how many times the body was pulled, and a way to wait for the next.
#[derive(Clone, Default)]
pub struct PullSignal(Arc<Shared>);

impl PullSignal {
    /// A signal and the response body that feeds it.
    pub fn wrap(body: BoxBody) -> (PullSignal, Pulled) {
        let signal = PullSignal::default();
        let pulled = Pulled {
            inner: body,
            shared: signal.0.clone(),
        };
        (signal, pulled)
    }

    /// Pulls so far.
    pub fn pulls(&self) -> u64 {
        self.0.pulls.load(Ordering::Acquire)
    }

    /// Resolves once the body was pulled more than `before` times, or the body is gone.
    pub async fn pulled_since(&self, before: u64) -> Result<(), PeerGone> {
        self.wait(|s| s.pulls.load(Ordering::Acquire) > before)
            .await
    }

    /// Resolves once what the latest pull took is in the kernel: the body was polled again
    /// after it. actix polls a response body only while its write buffer holds less than
    /// `h1_write_buffer_size`, which the public server sets to 1 byte: only once the buffer
    /// is empty.
    pub async fn written(&self) -> Result<(), PeerGone> {
        let at_pull = self.0.polls_at_pull.load(Ordering::Acquire);
        self.wait(|s| s.polls.load(Ordering::Acquire) > at_pull)
            .await
    }

    /// Resolves once `done` holds, or with [`PeerGone`] once the body is dropped.
    async fn wait(&self, done: impl Fn(&Shared) -> bool) -> Result<(), PeerGone> {
        loop {
            let polled = self.0.polled.notified();
            tokio::pin!(polled);
            polled.as_mut().enable();
            if done(&self.0) {
                return Ok(());
            }
            if self.0.gone.load(Ordering::Acquire) {
                return Err(PeerGone);
            }
            polled.await;
        }
    }
}

impl Shared {
    /// Counts one poll of the body, and whether it returned bytes.
    fn record_poll(&self, pulled: bool) {
        let polls = self.polls.fetch_add(1, Ordering::AcqRel) + 1;
        if pulled {
            self.polls_at_pull.store(polls, Ordering::Release);
            self.pulls.fetch_add(1, Ordering::AcqRel);
        }
        self.polled.notify_waiters();
    }
}

/// The WebSocket response body, counting the pulls that return bytes.
pub struct Pulled {
    inner: BoxBody,
    shared: Arc<Shared>,
}

impl MessageBody for Pulled {
    type Error = <BoxBody as MessageBody>::Error;

    fn size(&self) -> BodySize {
        self.inner.size()
    }

    fn poll_next(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_next(cx);
        self.shared
            .record_poll(matches!(&polled, Poll::Ready(Some(Ok(_)))));
        polled
    }
}

impl Drop for Pulled {
    fn drop(&mut self) {
        self.shared.gone.store(true, Ordering::Release);
        self.shared.polled.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::{stream, FutureExt};

    fn body(chunks: usize) -> BoxBody {
        let items = (0..chunks).map(|i| Ok::<_, std::io::Error>(Bytes::from(vec![b'x'; i + 1])));
        BoxBody::new(actix_web::body::BodyStream::new(stream::iter(items)))
    }

    #[tokio::test]
    async fn a_wait_ends_at_the_next_pull_or_when_the_body_is_dropped() {
        let (signal, mut pulled) = PullSignal::wrap(body(2));
        let before = signal.pulls();
        let wait = signal.pulled_since(before);
        tokio::pin!(wait);
        assert!(wait.as_mut().now_or_never().is_none(), "nothing pulled yet");
        let first = std::future::poll_fn(|cx| Pin::new(&mut pulled).poll_next(cx)).await;
        assert!(matches!(first, Some(Ok(b)) if b.len() == 1));
        assert_eq!(wait.await, Ok(()));
        assert_eq!(signal.pulls(), 1);
        // An earlier count is already passed; a later one waits until the body is gone.
        assert_eq!(signal.pulled_since(0).await, Ok(()));
        let wait = signal.pulled_since(1);
        tokio::pin!(wait);
        assert!(wait.as_mut().now_or_never().is_none());
        drop(pulled);
        assert_eq!(wait.await, Err(PeerGone));
    }

    #[tokio::test]
    async fn written_waits_for_a_poll_after_the_latest_pull() {
        let (signal, mut pulled) = PullSignal::wrap(body(1));
        let mut cx = Context::from_waker(std::task::Waker::noop());
        let mut poll = || Pin::new(&mut pulled).poll_next(&mut cx);
        assert!(matches!(poll(), Poll::Ready(Some(Ok(_)))), "the pull");
        let written = signal.written();
        tokio::pin!(written);
        assert!(
            written.as_mut().now_or_never().is_none(),
            "no poll after it yet"
        );
        // actix polls again once its write buffer is empty: the body has nothing more.
        assert!(matches!(poll(), Poll::Ready(None)));
        assert_eq!(written.await, Ok(()));
    }
}
