//! Enforces `MAX_FRAME_BYTES` from frame *headers*, before any payload is buffered.
//!
//! actix-ws buffers an incoming frame until it is complete and only then compares its length
//! with the limit, so a client that declares a 1 GiB frame and trickles it in makes the gateway
//! hold 1 GiB (and one that declares it and sends nothing holds the connection until
//! `CLIENT_TIMEOUT`). [`FrameGuard`] sits between the socket's byte stream and actix-ws: it
//! follows the client's frame headers (it never changes a byte) and, as soon as a header
//! declares a data frame over the limit, a fragmented message whose fragments add up to more
//! than the limit, or a control frame over 125 bytes (RFC 6455 §5.5), ends the stream with an
//! error and records the verdict, which the read loop turns into close 1009 or 1002.

use std::pin::Pin;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use actix_web::error::PayloadError;
use bytes::Bytes;
use futures_util::Stream;

/// What the guard decided about the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Ok,
    /// A data frame declared more than `MAX_FRAME_BYTES`.
    TooBig,
    /// A control frame declared more than 125 bytes.
    ControlTooBig,
}

/// Shared view of a guard's verdict.
#[derive(Debug, Clone, Default)]
pub struct VerdictCell(Arc<AtomicU8>);

impl VerdictCell {
    pub fn get(&self) -> Verdict {
        match self.0.load(Ordering::Acquire) {
            1 => Verdict::TooBig,
            2 => Verdict::ControlTooBig,
            _ => Verdict::Ok,
        }
    }

    fn set(&self, v: Verdict) {
        let n = match v {
            Verdict::Ok => 0,
            Verdict::TooBig => 1,
            Verdict::ControlTooBig => 2,
        };
        self.0.store(n, Ordering::Release);
    }
}

/// Incremental parser of client frame headers.
#[derive(Debug)]
pub struct HeaderTracker {
    max_frame: u64,
    head: [u8; 14],
    have: usize,
    /// Payload bytes of the current frame still to skip (after its header).
    skip: u64,
    /// Bytes of the fragmented message in progress (first fragment through the current one).
    message: u64,
}

impl HeaderTracker {
    pub fn new(max_frame: usize) -> Self {
        HeaderTracker {
            max_frame: max_frame as u64,
            head: [0; 14],
            have: 0,
            skip: 0,
            message: 0,
        }
    }

    /// Bytes of header needed given what is known so far.
    fn needed(&self) -> usize {
        if self.have < 2 {
            return 2;
        }
        let ext = match self.head[1] & 0x7f {
            126 => 2,
            127 => 8,
            _ => 0,
        };
        let mask = if self.head[1] & 0x80 != 0 { 4 } else { 0 };
        2 + ext + mask
    }

    fn declared_len(&self) -> u64 {
        match self.head[1] & 0x7f {
            126 => u64::from(u16::from_be_bytes([self.head[2], self.head[3]])),
            127 => {
                let mut b = [0u8; 8];
                b.copy_from_slice(&self.head[2..10]);
                u64::from_be_bytes(b)
            }
            n => u64::from(n),
        }
    }

    /// Follows `data`; returns the first violation in it, if any.
    pub fn feed(&mut self, mut data: &[u8]) -> Verdict {
        while !data.is_empty() {
            if self.skip > 0 {
                let n = (self.skip.min(data.len() as u64)) as usize;
                self.skip -= n as u64;
                data = &data[n..];
                continue;
            }
            let need = self.needed();
            let take = (need - self.have).min(data.len());
            self.head[self.have..self.have + take].copy_from_slice(&data[..take]);
            self.have += take;
            data = &data[take..];
            if self.have < self.needed() {
                continue;
            }
            // A whole header.
            let fin = self.head[0] & 0x80 != 0;
            let opcode = self.head[0] & 0x0f;
            let len = self.declared_len();
            if opcode & 0x08 != 0 {
                if len > 125 {
                    return Verdict::ControlTooBig;
                }
            } else {
                if len > self.max_frame {
                    return Verdict::TooBig;
                }
                // Fragments of one message add up (continuation frames have opcode 0).
                self.message = if opcode == 0 {
                    self.message.saturating_add(len)
                } else {
                    len
                };
                if self.message > self.max_frame {
                    return Verdict::TooBig;
                }
                if fin {
                    self.message = 0;
                }
            }
            self.skip = len;
            self.have = 0;
        }
        Verdict::Ok
    }
}

/// The guarded byte stream.
pub struct FrameGuard<S> {
    inner: S,
    tracker: HeaderTracker,
    verdict: VerdictCell,
    ended: bool,
}

impl<S> FrameGuard<S> {
    pub fn new(inner: S, max_frame: usize, verdict: VerdictCell) -> Self {
        FrameGuard {
            inner,
            tracker: HeaderTracker::new(max_frame),
            verdict,
            ended: false,
        }
    }
}

impl<S> Stream for FrameGuard<S>
where
    S: Stream<Item = Result<Bytes, PayloadError>> + Unpin,
{
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.ended {
            return Poll::Ready(None);
        }
        match Pin::new(&mut this.inner).poll_next(cx) {
            Poll::Ready(Some(Ok(bytes))) => match this.tracker.feed(&bytes) {
                Verdict::Ok => Poll::Ready(Some(Ok(bytes))),
                v => {
                    this.verdict.set(v);
                    this.ended = true;
                    Poll::Ready(Some(Err(PayloadError::Overflow)))
                }
            },
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn frame(opcode: u8, len: u64, payload_bytes: usize) -> Vec<u8> {
        frame_fin(true, opcode, len, payload_bytes)
    }

    fn frame_fin(fin: bool, opcode: u8, len: u64, payload_bytes: usize) -> Vec<u8> {
        let mut f = vec![if fin { 0x80 } else { 0 } | opcode];
        if len < 126 {
            f.push(0x80 | len as u8);
        } else if len <= u16::MAX as u64 {
            f.push(0x80 | 126);
            f.extend_from_slice(&(len as u16).to_be_bytes());
        } else {
            f.push(0x80 | 127);
            f.extend_from_slice(&len.to_be_bytes());
        }
        f.extend_from_slice(&[1, 2, 3, 4]);
        f.extend(std::iter::repeat_n(b'x', payload_bytes));
        f
    }

    #[test]
    fn follows_frames_and_flags_oversized_headers() {
        let mut t = HeaderTracker::new(1000);
        let mut stream = frame(1, 10, 10);
        stream.extend(frame(9, 125, 125));
        stream.extend(frame(2, 1000, 1000));
        stream.extend(frame(1, 300, 300));
        assert_eq!(t.feed(&stream), Verdict::Ok);
        assert_eq!(t.feed(&frame(1, 1001, 0)), Verdict::TooBig);
        let mut t = HeaderTracker::new(1000);
        assert_eq!(t.feed(&frame(1, u64::MAX, 0)), Verdict::TooBig);
        let mut t = HeaderTracker::new(1000);
        assert_eq!(t.feed(&frame(9, 126, 0)), Verdict::ControlTooBig);
        let mut t = HeaderTracker::new(1000);
        assert_eq!(t.feed(&frame(8, 200, 0)), Verdict::ControlTooBig);
    }

    #[test]
    fn fragments_add_up() {
        let mut t = HeaderTracker::new(1000);
        let mut ok = frame_fin(false, 1, 600, 600);
        ok.extend(frame(9, 5, 5)); // a ping between fragments does not count
        ok.extend(frame_fin(true, 0, 400, 400));
        ok.extend(frame_fin(false, 2, 999, 999));
        ok.extend(frame_fin(true, 0, 1, 1));
        assert_eq!(t.feed(&ok), Verdict::Ok);
        let mut bad = frame_fin(false, 1, 600, 600);
        bad.extend(frame_fin(false, 0, 300, 300));
        bad.extend(frame_fin(true, 0, 101, 0));
        assert_eq!(t.feed(&bad), Verdict::TooBig);
    }

    proptest! {
        /// Any split of a stream into chunks gives the same verdict as the whole.
        #[test]
        fn chunking_does_not_matter(
            frames in proptest::collection::vec((prop_oneof![Just(0u8), Just(1), Just(2), Just(8), Just(9), Just(10)], 0u64..3000), 1..8),
            cuts in proptest::collection::vec(1usize..50, 1..40),
        ) {
            let mut stream = Vec::new();
            for (op, len) in &frames {
                let len = if op & 8 != 0 { len % 200 } else { *len };
                stream.extend(frame(*op, len, len as usize));
            }
            let whole = HeaderTracker::new(2000).feed(&stream);
            let mut t = HeaderTracker::new(2000);
            let mut rest: &[u8] = &stream;
            let mut verdict = Verdict::Ok;
            for c in cuts.iter().cycle() {
                if rest.is_empty() || verdict != Verdict::Ok { break; }
                let n = (*c).min(rest.len());
                verdict = t.feed(&rest[..n]);
                rest = &rest[n..];
            }
            prop_assert_eq!(verdict, whole);
            let expect = frames.iter().find_map(|(op, len)| {
                if op & 8 != 0 { (len % 200 > 125).then_some(Verdict::ControlTooBig) }
                else { (*len > 2000).then_some(Verdict::TooBig) }
            }).unwrap_or(Verdict::Ok);
            prop_assert_eq!(whole, expect);
        }

        /// Arbitrary bytes never panic.
        #[test]
        fn arbitrary_bytes(chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 0..16)) {
            let mut t = HeaderTracker::new(4096);
            for c in chunks {
                if t.feed(&c) != Verdict::Ok { break; }
            }
        }
    }
}
