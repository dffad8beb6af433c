//! Protocol v1 client connections with small buffers, spread over loopback source addresses.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt, StreamExt};
use shared_proto::ServerFrame;
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;
use uuid::Uuid;

pub type Ws = WebSocketStream<TcpStream>;

/// Where and how to connect.
#[derive(Debug, Clone)]
pub struct Target {
    /// `ws://127.0.0.1:PORT/ws`
    pub url: String,
    pub addr: SocketAddr,
    /// Connections per loopback source address (127.0.0.1, .2, …) before moving to the next.
    pub conns_per_ip: usize,
    /// tungstenite read buffer (bytes).
    pub read_buffer: usize,
    /// A JWT sent as the `token` query parameter (when the gateway requires one).
    pub token: Option<String>,
}

impl Target {
    pub fn parse(url: &str, conns_per_ip: usize, read_buffer: usize) -> Result<Target, String> {
        let rest = url
            .strip_prefix("ws://")
            .ok_or_else(|| format!("gateway url must start with ws://: {url}"))?;
        let hostport = rest.split('/').next().unwrap_or(rest);
        let addr: SocketAddr = hostport
            .parse()
            .map_err(|e| format!("gateway url needs an IP:port ({hostport}): {e}"))?;
        Ok(Target {
            url: url.to_string(),
            addr,
            conns_per_ip: conns_per_ip.max(1),
            read_buffer,
            token: None,
        })
    }

    fn config(&self) -> WebSocketConfig {
        WebSocketConfig::default()
            .read_buffer_size(self.read_buffer)
            // Write straight through: frames are small and sent one at a time.
            .write_buffer_size(0)
            .max_write_buffer_size(64 * 1024)
            .max_message_size(Some(1 << 20))
            .max_frame_size(Some(1 << 20))
    }

    /// Source address of connection number `idx`: 127.0.0.(1 + idx / conns_per_ip).
    pub fn source_ip(&self, idx: usize) -> Ipv4Addr {
        let n = 1 + idx / self.conns_per_ip;
        Ipv4Addr::new(127, 0, ((n >> 8) & 0xff) as u8, (n & 0xff) as u8)
    }
}

/// Wall clock in µs since the epoch (the producer's `ts` is ms since the epoch).
pub fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// One connected client that has read its `welcome`.
pub struct Conn {
    pub ws: Ws,
    pub session_id: Uuid,
    pub resume_token: String,
    pub heartbeat_interval: Duration,
}

/// What a read returned.
pub enum In {
    Frame(ServerFrame),
    Garbage,
    Closed(Option<u16>),
}

pub async fn tcp_connect(
    target: &Target,
    idx: usize,
    rcvbuf: Option<u32>,
) -> std::io::Result<TcpStream> {
    let src = target.source_ip(idx);
    let socket = TcpSocket::new_v4()?;
    if let Some(size) = rcvbuf {
        socket.set_recv_buffer_size(size)?;
    }
    if src != Ipv4Addr::LOCALHOST {
        socket.bind(SocketAddr::new(IpAddr::V4(src), 0))?;
    }
    let stream = socket.connect(target.addr).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

impl Conn {
    /// Connects (`query` appended to the URL, e.g. for resume) and reads `welcome`.
    pub async fn connect(
        target: &Target,
        idx: usize,
        query: Option<&str>,
        rcvbuf: Option<u32>,
    ) -> Result<Conn, String> {
        let stream = tcp_connect(target, idx, rcvbuf)
            .await
            .map_err(|e| format!("tcp connect from {}: {e}", target.source_ip(idx)))?;
        let mut params: Vec<String> = query.map(str::to_string).into_iter().collect();
        if let Some(t) = &target.token {
            params.push(format!("token={t}"));
        }
        let url = if params.is_empty() {
            target.url.clone()
        } else {
            format!("{}?{}", target.url, params.join("&"))
        };
        let (ws, _) =
            tokio_tungstenite::client_async_with_config(url, stream, Some(target.config()))
                .await
                .map_err(|e| format!("handshake: {e}"))?;
        let mut conn = Conn {
            ws,
            session_id: Uuid::nil(),
            resume_token: String::new(),
            heartbeat_interval: Duration::from_secs(20),
        };
        match tokio::time::timeout(Duration::from_secs(30), conn.recv()).await {
            Ok(In::Frame(ServerFrame::Welcome {
                session_id,
                resume_token,
                heartbeat_interval_ms,
                ..
            })) => {
                conn.session_id = session_id;
                conn.resume_token = resume_token;
                conn.heartbeat_interval = Duration::from_millis(heartbeat_interval_ms.max(100));
                Ok(conn)
            }
            Ok(_) => Err("first frame was not welcome".into()),
            Err(_) => Err("no welcome within 30s".into()),
        }
    }

    pub async fn send(&mut self, value: serde_json::Value) -> Result<(), String> {
        self.ws
            .send(Message::Text(value.to_string().into()))
            .await
            .map_err(|e| format!("send: {e}"))
    }

    pub async fn chat(&mut self, message_id: Uuid, content: &str) -> Result<(), String> {
        self.send(serde_json::json!({"type":"chat","content":content,"message_id":message_id}))
            .await
    }

    /// Queues a cancel without flushing (for a burst of duplicates).
    pub async fn feed_cancel(&mut self, message_id: Uuid) -> Result<(), String> {
        let text = serde_json::json!({"type":"cancel","message_id":message_id}).to_string();
        self.ws
            .feed(Message::Text(text.into()))
            .await
            .map_err(|e| format!("feed: {e}"))
    }

    pub async fn flush(&mut self) -> Result<(), String> {
        self.ws.flush().await.map_err(|e| format!("flush: {e}"))
    }

    pub async fn heartbeat(&mut self) -> Result<(), String> {
        self.send(serde_json::json!({"type":"heartbeat"})).await
    }

    pub async fn resume(&mut self, message_id: Uuid, after_seq: u64) -> Result<(), String> {
        self.send(
            serde_json::json!({"type":"resume","message_id":message_id,"after_seq":after_seq}),
        )
        .await
    }

    /// The next protocol frame (pings are answered by tungstenite and skipped). Cancel-safe.
    pub async fn recv(&mut self) -> In {
        loop {
            match self.ws.next().await {
                Some(Ok(Message::Text(t))) => return parse_frame(&t),
                Some(Ok(Message::Close(c))) => return In::Closed(c.map(|c| u16::from(c.code))),
                Some(Ok(Message::Binary(_))) => return In::Garbage,
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return In::Closed(None),
            }
        }
    }

    pub async fn close(mut self) {
        let _ = tokio::time::timeout(Duration::from_secs(2), self.ws.close(None)).await;
    }
}

/// A `chunk` frame's fields, borrowed from the text.
#[derive(serde::Deserialize)]
struct ChunkFields<'a> {
    message_id: Uuid,
    seq: u64,
    #[serde(borrow)]
    delta: std::borrow::Cow<'a, str>,
    #[serde(default)]
    ts: Option<u64>,
}

/// Parses a server frame. `chunk` frames (nearly all of them under load) take a direct path:
/// serde reads an internally tagged enum by first buffering every field into an intermediate
/// tree, and the loadgen shares the 2 cores with the system it measures.
fn parse_frame(text: &str) -> In {
    if text.starts_with(r#"{"type":"chunk","#) {
        if let Ok(c) = serde_json::from_str::<ChunkFields<'_>>(text) {
            return In::Frame(ServerFrame::Chunk {
                message_id: c.message_id,
                seq: c.seq,
                delta: c.delta.into_owned(),
                kind: shared_proto::DeltaKind::Text,
                ts: c.ts,
            });
        }
    }
    match serde_json::from_str::<ServerFrame>(text) {
        Ok(f) => In::Frame(f),
        Err(_) => In::Garbage,
    }
}

/// Tokens in a demo delta: the demo model's tokens are words (" word").
pub fn tokens_in(delta: &str) -> u64 {
    delta.split_whitespace().count() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chunk_fast_path_reads_what_the_full_parse_reads() {
        let frame = ServerFrame::Chunk {
            message_id: Uuid::new_v4(),
            seq: 7,
            delta: " a \"quoted\" word".into(),
            kind: shared_proto::DeltaKind::Text,
            ts: Some(123),
        };
        let text = frame.to_json();
        assert!(text.starts_with(r#"{"type":"chunk","#), "{text}");
        match parse_frame(&text) {
            In::Frame(f) => assert_eq!(f, frame),
            _ => panic!("not parsed: {text}"),
        }
        // Other frames, and chunks with fields in another order, take the full parse.
        let done = r#"{"message_id":"00000000-0000-0000-0000-000000000001","seq":1,"delta":"x","type":"chunk"}"#;
        assert!(matches!(
            parse_frame(done),
            In::Frame(ServerFrame::Chunk { seq: 1, .. })
        ));
        assert!(matches!(parse_frame("{"), In::Garbage));
    }
}
