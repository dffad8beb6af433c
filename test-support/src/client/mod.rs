//! The protocol v1 WebSocket client: the one implementation behind the e2e suites,
//! `abort-bench` and `loadgen`.
//!
//! Frames are sent by serialising [`ClientFrame`] and read by parsing [`ServerFrame`]
//! ([`incoming`]), so the wire format is defined in `shared-proto` alone. Two layers:
//!
//! - the fallible core, for programs that must survive a failing connection (`loadgen`):
//!   [`Dialer::connect`], [`WsClient::send_frame`], [`WsClient::feed_frame`],
//!   [`WsClient::try_flush`], [`WsClient::read`] (no deadline, cancel-safe);
//! - the test helpers on top, which panic with a clear message when anything fails or a
//!   frame does not arrive within [`PATIENCE`]: [`WsClient::connect`], [`WsClient::chat`],
//!   [`WsClient::frame`], [`WsClient::collect`], [`WsClient::await_cancel`], …
//!
//! The type parameter names the default token ([`Credentials`]): the e2e harness's client
//! adds its JWT, `loadgen`'s none.

mod dial;
mod error;
pub mod incoming;
mod transcript;

use std::marker::PhantomData;
use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use shared_proto::{CancelStatus, ClientFrame, ErrorCode, ServerFrame};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;
use uuid::Uuid;

pub use dial::{
    has_token, heartbeat_interval, Buffers, Credentials, Dialer, Nagle, NoCredentials,
    SourceAddress,
};
pub use error::ClientError;
pub use incoming::Incoming;
pub use transcript::{absorb, Transcript};

use crate::PATIENCE;

/// A connected client that has read its `welcome`.
pub struct WsClient<C = NoCredentials> {
    ws: WebSocketStream<TcpStream>,
    pub session_id: Uuid,
    pub resume_token: String,
    pub welcome: ServerFrame,
    credentials: PhantomData<fn() -> C>,
}

impl<C: Credentials> WsClient<C> {
    /// Connects to `url` (e.g. `ws://127.0.0.1:port/ws`) and reads `welcome`. The URL gets
    /// `C`'s token (`token=`) unless it has one.
    pub async fn connect(url: &str) -> WsClient<C> {
        Self::dial_or_panic(Dialer::new(url).expect("a ws:// URL"), None).await
    }

    /// Connects with a tiny socket receive buffer, to play a client that stops reading.
    pub async fn connect_small_buffer(url: &str, port: u16) -> WsClient<C> {
        let dialer = Dialer::new(url)
            .expect("a ws:// URL")
            .to_addr(SocketAddr::from(([127, 0, 0, 1], port)));
        Self::dial_or_panic(dialer, Some(4096)).await
    }

    /// Reconnects to a session with its resume token.
    pub async fn resume_session(base_url: &str, session_id: Uuid, token: &str) -> WsClient<C> {
        let url = format!("{base_url}?session_id={session_id}&resume_token={token}");
        Self::connect(&url).await
    }

    async fn dial_or_panic(dialer: Dialer, recv_buffer: Option<u32>) -> WsClient<C> {
        tokio::time::timeout(PATIENCE, dialer.connect::<C>(0, None, recv_buffer))
            .await
            .expect("connect timed out")
            .unwrap_or_else(|e| panic!("connect to {}: {e}", dialer.url()))
    }
}

impl<C> WsClient<C> {
    // -- The fallible core. ------------------------------------------------------------------

    /// Sends one frame.
    pub async fn send_frame(&mut self, frame: &ClientFrame) -> Result<(), ClientError> {
        let message = encode(frame)?;
        self.ws
            .send(message)
            .await
            .map_err(|e| ClientError::Send(Box::new(e)))
    }

    /// Queues one frame without flushing (for bursts; [`WsClient::try_flush`] sends them).
    pub async fn feed_frame(&mut self, frame: &ClientFrame) -> Result<(), ClientError> {
        let message = encode(frame)?;
        self.ws
            .feed(message)
            .await
            .map_err(|e| ClientError::Send(Box::new(e)))
    }

    pub async fn try_flush(&mut self) -> Result<(), ClientError> {
        self.ws
            .flush()
            .await
            .map_err(|e| ClientError::Send(Box::new(e)))
    }

    /// The next protocol frame or the end of the connection; pings are answered by
    /// tungstenite and skipped. No deadline, and cancel-safe (for `select!`).
    pub async fn read(&mut self) -> Incoming {
        loop {
            match self.ws.next().await {
                Some(Ok(m)) => {
                    if let Some(incoming) = Incoming::from_message(m) {
                        return incoming;
                    }
                }
                Some(Err(e)) => return Incoming::Close(Some((0, format!("error: {e}")))),
                None => return Incoming::Close(None),
            }
        }
    }

    /// How often this client should send a heartbeat (from its `welcome`).
    pub fn heartbeat_interval(&self) -> Duration {
        heartbeat_interval(&self.welcome)
    }

    /// Closes the connection politely (bounded: a peer that does not answer is dropped).
    pub async fn close(mut self) {
        let _ = tokio::time::timeout(Duration::from_secs(2), self.ws.close(None)).await;
    }

    /// Drops the TCP connection without a close frame.
    pub fn drop_connection(self) {
        drop(self.ws);
    }

    // -- Test helpers: they panic on failure. ------------------------------------------------

    pub async fn send_json(&mut self, value: serde_json::Value) {
        self.send_text(value.to_string()).await;
    }

    pub async fn send_text(&mut self, text: String) {
        self.ws
            .send(Message::Text(text.into()))
            .await
            .expect("send text");
    }

    pub async fn send_raw(&mut self, message: Message) {
        self.ws.send(message).await.expect("send");
    }

    /// Queues a text frame without flushing (for bursts).
    pub async fn feed_text(&mut self, text: String) {
        self.ws
            .feed(Message::Text(text.into()))
            .await
            .expect("feed");
    }

    pub async fn flush(&mut self) {
        self.try_flush().await.expect("flush");
    }

    /// Sends `frame`, panicking on failure.
    pub async fn send(&mut self, frame: ClientFrame) {
        self.send_frame(&frame)
            .await
            .unwrap_or_else(|e| panic!("send {}: {e}", frame.kind()));
    }

    /// Sends `chat` with a fresh message id and returns it.
    pub async fn chat(&mut self, content: &str) -> Uuid {
        let id = Uuid::new_v4();
        self.send(ClientFrame::Chat {
            content: content.to_string(),
            message_id: Some(id),
            traceparent: None,
        })
        .await;
        id
    }

    /// Sends `chat` with a fresh message id until the gateway acks it, and returns the id.
    /// While the answer is the retryable `store_unavailable`, the same chat is sent again, as
    /// a client does (within [`PATIENCE`]): after a Redis failover each process's clients
    /// finish their reconnection at their own moment, so the gateway may be back a moment
    /// before the ai-service. Any other frame before the ack fails the test.
    pub async fn chat_until_accepted(&mut self, content: &str) -> Uuid {
        let id = Uuid::new_v4();
        let start = std::time::Instant::now();
        loop {
            self.send(ClientFrame::Chat {
                content: content.to_string(),
                message_id: Some(id),
                traceparent: None,
            })
            .await;
            match self.frame().await {
                ServerFrame::Ack { message_id } if message_id == id => return id,
                ServerFrame::Error {
                    code: ErrorCode::StoreUnavailable,
                    message_id: Some(m),
                    ..
                } if m == id => {
                    assert!(start.elapsed() < PATIENCE, "the store stays unavailable");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                other => panic!("{content:?}: {other:?} before its ack"),
            }
        }
    }

    pub async fn cancel(&mut self, message_id: Uuid) {
        self.send(ClientFrame::Cancel { message_id }).await;
    }

    pub async fn resume(&mut self, message_id: Uuid, after_seq: u64) {
        self.send(ClientFrame::Resume {
            message_id,
            after_seq,
        })
        .await;
    }

    /// The next frame (pings are answered by tungstenite and skipped).
    pub async fn recv(&mut self) -> Incoming {
        self.recv_within(PATIENCE).await
    }

    pub async fn recv_within(&mut self, patience: Duration) -> Incoming {
        tokio::time::timeout(patience, self.read())
            .await
            .expect("no frame arrived in time")
    }

    /// The next frame, which must be a frame (not a close).
    pub async fn frame(&mut self) -> ServerFrame {
        match self.recv().await {
            Incoming::Frame(f) => f,
            other => panic!("expected a frame, got {other:?}"),
        }
    }

    /// Reads frames into `t` until it holds at least `n` chunks (frames of other messages are
    /// skipped).
    pub async fn read_chunks(&mut self, t: &mut Transcript, n: usize) {
        while t.seqs.len() < n {
            let f = self.frame().await;
            absorb(t, &f);
        }
    }

    /// Reads until `message_id`'s `done`; other frames are returned in `others`.
    pub async fn collect(&mut self, message_id: Uuid) -> (Transcript, Vec<ServerFrame>) {
        let mut t = Transcript::new(message_id);
        let mut others = Vec::new();
        loop {
            let f = self.frame().await;
            if absorb(&mut t, &f) {
                if t.done.is_some() {
                    return (t, others);
                }
            } else {
                others.push(f);
            }
        }
    }

    /// After a `cancel`: reads until a `cancel_ack` and the `done` of `t`'s message have both
    /// arrived, adding the message's frames to `t`. Returns the last ack's status and every
    /// other frame, for the caller to judge.
    pub async fn await_cancel(
        &mut self,
        t: &mut Transcript,
    ) -> (Option<CancelStatus>, Vec<ServerFrame>) {
        let mut ack = None;
        let mut others = Vec::new();
        while ack.is_none() || t.done.is_none() {
            match self.frame().await {
                ServerFrame::CancelAck { status, .. } => ack = Some(status),
                f => {
                    if !absorb(t, &f) {
                        others.push(f);
                    }
                }
            }
        }
        (ack, others)
    }
}

/// A frame as the text message that carries it.
fn encode(frame: &ClientFrame) -> Result<Message, ClientError> {
    Ok(Message::Text(serde_json::to_string(frame)?.into()))
}

/// The close code of a tungstenite close (for assertions).
pub fn code(c: CloseCode) -> u16 {
    u16::from(c)
}
