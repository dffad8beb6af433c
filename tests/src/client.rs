//! A protocol v1 WebSocket client for tests: sends frames, receives and checks them.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use shared_proto::{CancelStatus, ErrorBody, FinalStatus, ServerFrame};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use uuid::Uuid;

use crate::PATIENCE;

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// What a read returned.
#[derive(Debug, Clone)]
pub enum Incoming {
    Frame(ServerFrame),
    /// A text frame that did not parse as a [`ServerFrame`] (always a bug).
    Garbage(String),
    Close(Option<(u16, String)>),
}

/// One message's frames, as received.
#[derive(Debug, Clone, Default)]
pub struct Transcript {
    pub message_id: Uuid,
    pub seqs: Vec<u64>,
    pub text: String,
    pub done: Option<(u64, FinalStatus, Option<ErrorBody>)>,
    /// Frames of this message after its `done` (must stay empty).
    pub after_done: Vec<ServerFrame>,
}

impl Transcript {
    /// An empty transcript of one message.
    pub fn new(message_id: Uuid) -> Self {
        Transcript {
            message_id,
            ..Default::default()
        }
    }

    /// Asserts seq 1..n without gap or repeat and exactly one `done` whose seq is n.
    pub fn assert_well_formed(&self) {
        let expected: Vec<u64> = (1..=self.seqs.len() as u64).collect();
        assert_eq!(
            self.seqs, expected,
            "seqs must be 1..n without gap or repeat"
        );
        let (seq, _, _) = self.done.as_ref().expect("a done frame");
        assert_eq!(
            *seq,
            self.seqs.len() as u64,
            "done.seq is the last chunk's seq"
        );
        assert!(
            self.after_done.is_empty(),
            "frames after done: {:?}",
            self.after_done
        );
    }

    pub fn status(&self) -> Option<FinalStatus> {
        self.done.as_ref().map(|d| d.1)
    }
}

/// A connected client that has read its `welcome`.
pub struct WsClient {
    ws: Ws,
    pub session_id: Uuid,
    pub resume_token: String,
    pub welcome: ServerFrame,
}

impl WsClient {
    /// Connects to `url` (e.g. `ws://127.0.0.1:port/ws`) and reads `welcome`. The URL gets the
    /// harness's default JWT (`token=`) unless it has one (see [`crate::auth`]).
    pub async fn connect(url: &str) -> WsClient {
        let url = crate::auth::with_default_token(url);
        let (ws, _) = tokio::time::timeout(PATIENCE, tokio_tungstenite::connect_async(url))
            .await
            .expect("connect timed out")
            .expect("websocket handshake");
        Self::after_handshake(ws).await
    }

    /// Connects with a tiny socket receive buffer, to play a client that stops reading.
    pub async fn connect_small_buffer(url: &str, port: u16) -> WsClient {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
        let stream = socket
            .connect(([127, 0, 0, 1], port).into())
            .await
            .expect("tcp connect");
        let url = crate::auth::with_default_token(url);
        let (ws, _) = tokio_tungstenite::client_async(url, MaybeTlsStream::Plain(stream))
            .await
            .expect("websocket handshake");
        Self::after_handshake(ws).await
    }

    /// Reconnects to a session with its resume token.
    pub async fn resume_session(base_url: &str, session_id: Uuid, token: &str) -> WsClient {
        let url = format!("{base_url}?session_id={session_id}&resume_token={token}");
        Self::connect(&url).await
    }

    async fn after_handshake(ws: Ws) -> WsClient {
        let mut client = WsClient {
            ws,
            session_id: Uuid::nil(),
            resume_token: String::new(),
            welcome: ServerFrame::HeartbeatAck {},
        };
        match client.recv().await {
            Incoming::Frame(w) => {
                let ServerFrame::Welcome {
                    session_id,
                    resume_token,
                    protocol,
                    ..
                } = &w
                else {
                    panic!("expected welcome, got {w:?}");
                };
                assert_eq!(*protocol, 1);
                client.session_id = *session_id;
                client.resume_token = resume_token.clone();
                client.welcome = w;
            }
            other => panic!("expected welcome, got {other:?}"),
        }
        client
    }

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
        self.ws.flush().await.expect("flush");
    }

    /// Sends `chat` with a fresh message id and returns it.
    pub async fn chat(&mut self, content: &str) -> Uuid {
        let id = Uuid::new_v4();
        self.send_json(serde_json::json!({"type":"chat","content":content,"message_id":id}))
            .await;
        id
    }

    pub async fn cancel(&mut self, message_id: Uuid) {
        self.send_json(serde_json::json!({"type":"cancel","message_id":message_id}))
            .await;
    }

    pub async fn resume(&mut self, message_id: Uuid, after_seq: u64) {
        self.send_json(
            serde_json::json!({"type":"resume","message_id":message_id,"after_seq":after_seq}),
        )
        .await;
    }

    /// The next frame (pings are answered by tungstenite and skipped).
    pub async fn recv(&mut self) -> Incoming {
        self.recv_within(PATIENCE).await
    }

    pub async fn recv_within(&mut self, patience: Duration) -> Incoming {
        loop {
            let next = tokio::time::timeout(patience, self.ws.next())
                .await
                .expect("no frame arrived in time");
            match next {
                Some(Ok(Message::Text(t))) => {
                    return match serde_json::from_str::<ServerFrame>(&t) {
                        Ok(f) => Incoming::Frame(f),
                        Err(_) => Incoming::Garbage(t.to_string()),
                    }
                }
                Some(Ok(Message::Close(c))) => {
                    return Incoming::Close(c.map(|c| (u16::from(c.code), c.reason.to_string())))
                }
                Some(Ok(Message::Binary(b))) => {
                    return Incoming::Garbage(format!("binary frame of {} bytes", b.len()))
                }
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Incoming::Close(Some((0, format!("error: {e}")))),
                None => return Incoming::Close(None),
            }
        }
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

    /// Closes the connection politely.
    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }

    /// Drops the TCP connection without a close frame.
    pub fn drop_connection(self) {
        drop(self.ws);
    }
}

/// Adds a frame to a transcript if it belongs to its message; returns whether it did.
pub fn absorb(t: &mut Transcript, f: &ServerFrame) -> bool {
    match f {
        ServerFrame::Chunk {
            message_id,
            seq,
            delta,
            ..
        } if *message_id == t.message_id => {
            if t.done.is_some() {
                t.after_done.push(f.clone());
            } else {
                t.seqs.push(*seq);
                t.text.push_str(delta);
            }
            true
        }
        ServerFrame::Done {
            message_id,
            seq,
            status,
            error,
            ..
        } if *message_id == t.message_id => {
            if t.done.is_some() {
                t.after_done.push(f.clone());
            } else {
                t.done = Some((*seq, *status, error.clone()));
            }
            true
        }
        _ => false,
    }
}

/// The close code of a tungstenite close (for assertions).
pub fn code(c: CloseCode) -> u16 {
    u16::from(c)
}
