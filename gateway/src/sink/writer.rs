//! The writer loop of one connection: takes frames from the sink's queue in order and writes
//! them, one at a time, each within `SEND_TIMEOUT`; closes after the queued frames, or at once
//! (4008, through the reserved room) when the queue overflowed or a write blocked too long.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use shared_proto::CloseCode;

use super::transport::{Frame, Transport};
use super::{frame_metrics, Outgoing, Shared};

enum Next {
    Frame(Outgoing),
    Close(CloseCode),
    Abort,
    Wait,
}

/// How the loop ended.
enum Exit {
    Closed(CloseCode),
    Slow(&'static str),
    PeerGone,
}

pub(super) async fn write_loop<T: Transport>(mut transport: T, shared: Arc<Shared>) {
    let reserved = transport.reserve_close().await;
    let exit = loop {
        let notified = shared.wake.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let next = {
            let mut q = shared.lock();
            if q.abort {
                Next::Abort
            } else if let Some(frame) = q.frames.pop_front() {
                Next::Frame(frame)
            } else if let Some(code) = q.close {
                Next::Close(code)
            } else {
                Next::Wait
            }
        };
        let frame = match next {
            Next::Wait => {
                notified.await;
                continue;
            }
            Next::Abort => break Exit::Slow("send queue over SEND_QUEUE_BYTES"),
            Next::Close(code) => break Exit::Closed(code),
            Next::Frame(frame) => frame,
        };
        let cost = frame.cost();
        let (frame, produced_at) = match frame {
            Outgoing::Text(t, ts) => (Frame::Text(t), ts),
            Outgoing::Chunk(c) => {
                let ts = c.ts;
                (Frame::Text(c.into_json()), ts)
            }
            Outgoing::Ping(b) => (Frame::Ping(b), None),
            Outgoing::Pong(b) => (Frame::Pong(b), None),
        };
        let write = tokio::time::timeout(shared.limits.send_timeout, transport.send(frame));
        tokio::pin!(write);
        // While the write waits, an overflow of the queue (abort) ends it at once.
        let result = loop {
            let notified = shared.wake.notified();
            tokio::select! {
                r = &mut write => break Some(r),
                _ = notified => {
                    if shared.lock().abort {
                        break None;
                    }
                }
            }
        };
        match result {
            None => break Exit::Slow("send queue over SEND_QUEUE_BYTES"),
            Some(Err(_elapsed)) => break Exit::Slow("a write blocked longer than SEND_TIMEOUT"),
            Some(Ok(Err(_gone))) => break Exit::PeerGone,
            Some(Ok(Ok(()))) => {
                {
                    let mut q = shared.lock();
                    q.bytes = q.bytes.saturating_sub(cost);
                }
                if shared.drain_waiters.load(Ordering::Acquire) > 0 {
                    shared.drained.notify_waiters();
                }
                if let Some(ts) = produced_at {
                    let ms = shared_proto::now_ms().saturating_sub(ts);
                    frame_metrics().delivery_lag.record(ms as f64 / 1000.0);
                }
            }
        }
    };

    {
        let mut q = shared.lock();
        q.finished = true;
        q.frames.clear();
        q.bytes = 0;
    }
    match exit {
        Exit::Closed(code) => {
            let sent = tokio::time::timeout(
                shared.limits.send_timeout,
                transport.send(Frame::Close(code)),
            )
            .await;
            if !matches!(sent, Ok(Ok(()))) && reserved {
                transport.close_reserved(code);
            }
        }
        Exit::Slow(why) => {
            tracing::warn!(session_id = %shared.session_id, why, "closing slow consumer");
            metrics::counter!("streamline_gateway_slow_consumer_closes_total").increment(1);
            if reserved {
                transport.close_reserved(CloseCode::SlowConsumer);
            }
        }
        Exit::PeerGone => {}
    }
    // Dropping the transport ends the response body once actix has flushed what it holds.
    drop(transport);
    shared.done.cancel();
}
