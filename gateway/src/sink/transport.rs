//! What a sink's writer writes to: the client's WebSocket in production ([`WsTransport`]), a
//! test double in the writer's unit tests. Keeping the writer generic over this is what lets
//! its bounds (bytes, deadline, the reserved close slot, order) be tested without a socket.

use std::future::poll_fn;
use std::pin::Pin;

use actix_ws::{CloseReason, Message};
use bytes::Bytes;
use futures_util::Sink as _;
use shared_proto::CloseCode;

use super::peer_gone::PeerGone;
use super::pulled::PullSignal;

/// One WebSocket frame the writer sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    Text(String),
    Ping(Bytes),
    Pong(Bytes),
    Close(CloseCode),
}

/// The writer's side of a connection.
#[allow(async_fn_in_trait)] // Only ever used generically, never as a trait object.
pub trait Transport {
    /// Reserves room for one frame that will only ever be the close frame, so that a close
    /// gets out even when the peer has stopped reading. Called once, before anything else;
    /// false if no room could be reserved.
    async fn reserve_close(&mut self) -> bool;

    /// Writes one frame, waiting while the peer's buffers are full.
    async fn send(&mut self, frame: Frame) -> Result<(), PeerGone>;

    /// Puts the close frame into the reserved room, without waiting.
    fn close_reserved(&mut self, code: CloseCode);
}

/// The production transport: actix-ws's session. Its channel to the connection holds 32
/// frames, and `Session::text().await` would wait without limit for a peer that stopped
/// reading; the writer bounds that wait, and one slot of the channel (a cloned sender made
/// ready once) is reserved for the close frame.
///
/// With a [`PullSignal`] (a `caps=merge` client), a send also waits until actix has taken the
/// frame from that channel and handed it to the kernel, so that the next frame is taken from
/// the sink's queue, merged, only when the connection can take it (S7: lag p99 0.94 s → 0.85 s
/// at a 2 KB/s reader for the second wait, 27 s → 0.85 s for the whole change).
pub struct WsTransport {
    session: actix_ws::Session,
    reserved: Option<actix_ws::Session>,
    pulled: Option<PullSignal>,
}

impl WsTransport {
    pub fn new(session: actix_ws::Session, pulled: Option<PullSignal>) -> Self {
        WsTransport {
            session,
            reserved: None,
            pulled,
        }
    }
}

fn message(frame: Frame) -> Message {
    match frame {
        Frame::Text(t) => Message::Text(t.into()),
        Frame::Ping(b) => Message::Ping(b),
        Frame::Pong(b) => Message::Pong(b),
        Frame::Close(code) => Message::Close(Some(CloseReason {
            code: actix_ws::CloseCode::Other(code.code()),
            description: Some(code.reason().to_string()),
        })),
    }
}

impl Transport for WsTransport {
    async fn reserve_close(&mut self) -> bool {
        // The channel is empty when the connection starts, so this is immediate.
        let mut reserved = self.session.clone();
        let ok = poll_fn(|cx| Pin::new(&mut reserved).poll_ready(cx))
            .await
            .is_ok();
        self.reserved = ok.then_some(reserved);
        ok
    }

    async fn send(&mut self, frame: Frame) -> Result<(), PeerGone> {
        let before = self.pulled.as_ref().map(PullSignal::pulls);
        futures_util::SinkExt::send(&mut self.session, message(frame))
            .await
            .map_err(|_| PeerGone)?;
        match (&self.pulled, before) {
            (Some(signal), Some(before)) => {
                signal.pulled_since(before).await?;
                signal.written().await
            }
            _ => Ok(()),
        }
    }

    fn close_reserved(&mut self, code: CloseCode) {
        if let Some(reserved) = self.reserved.as_mut() {
            let _ = Pin::new(reserved).start_send(message(Frame::Close(code)));
        }
    }
}
