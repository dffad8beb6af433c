//! What one read from the gateway returned, and how a text frame becomes a [`ServerFrame`].
//!
//! `chunk` frames (nearly all frames under load) take a direct path: serde reads an internally
//! tagged enum by first buffering every field into an intermediate tree, and the load
//! generator shares the machine's cores with the system it measures. Anything the direct path
//! does not take goes through the full `ServerFrame` parse, so both read the same frames.

use std::borrow::Cow;

use shared_proto::ServerFrame;
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;

/// What a read returned.
#[derive(Debug, Clone)]
pub enum Incoming {
    Frame(ServerFrame),
    /// A text frame that did not parse as a [`ServerFrame`], or a binary frame (always a bug).
    Garbage(String),
    /// The connection ended: with the close frame's code and reason, `(0, "error: …")` after a
    /// transport error, or `None` when it ended without a close frame.
    Close(Option<(u16, String)>),
}

impl Incoming {
    /// The close code of a [`Incoming::Close`]; `None` for another kind of read, a transport
    /// error (code 0, which no close frame can carry) or an end without a close frame.
    pub fn close_code(&self) -> Option<u16> {
        match self {
            Incoming::Close(Some((code, _))) if *code != 0 => Some(*code),
            _ => None,
        }
    }

    /// What a WebSocket message means to a protocol client; `None` for control frames
    /// (pings are answered by tungstenite).
    pub(crate) fn from_message(message: Message) -> Option<Incoming> {
        match message {
            Message::Text(t) => Some(parse_frame(&t)),
            Message::Close(c) => Some(Incoming::Close(
                c.map(|c| (u16::from(c.code), c.reason.to_string())),
            )),
            Message::Binary(b) => Some(Incoming::Garbage(format!(
                "binary frame of {} bytes",
                b.len()
            ))),
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => None,
        }
    }
}

/// A `chunk` frame's fields, borrowed from the text.
#[derive(serde::Deserialize)]
struct ChunkFields<'a> {
    message_id: Uuid,
    seq: u64,
    #[serde(default)]
    first_seq: Option<u64>,
    #[serde(borrow)]
    delta: Cow<'a, str>,
    #[serde(default)]
    kind: shared_proto::DeltaKind,
    #[serde(default)]
    ts: Option<u64>,
}

/// Parses one text frame from the gateway.
pub fn parse_frame(text: &str) -> Incoming {
    if text.starts_with(r#"{"type":"chunk","#) {
        if let Ok(c) = serde_json::from_str::<ChunkFields<'_>>(text) {
            return Incoming::Frame(ServerFrame::Chunk {
                message_id: c.message_id,
                seq: c.seq,
                first_seq: c.first_seq,
                delta: c.delta.into_owned(),
                kind: c.kind,
                ts: c.ts,
            });
        }
    }
    match serde_json::from_str::<ServerFrame>(text) {
        Ok(f) => Incoming::Frame(f),
        Err(_) => Incoming::Garbage(text.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chunk_fast_path_reads_what_the_full_parse_reads() {
        for kind in [
            shared_proto::DeltaKind::Text,
            shared_proto::DeltaKind::Reasoning,
        ] {
            let frame = ServerFrame::Chunk {
                message_id: Uuid::new_v4(),
                seq: 7,
                first_seq: None,
                delta: " a \"quoted\" word".into(),
                kind,
                ts: Some(123),
            };
            let text = frame.to_json();
            assert!(text.starts_with(r#"{"type":"chunk","#), "{text}");
            match parse_frame(&text) {
                Incoming::Frame(f) => assert_eq!(f, frame),
                other => panic!("not parsed: {text}: {other:?}"),
            }
        }
        // Other frames, and chunks with fields in another order, take the full parse.
        let reordered = r#"{"message_id":"00000000-0000-0000-0000-000000000001","seq":1,"delta":"x","type":"chunk"}"#;
        assert!(matches!(
            parse_frame(reordered),
            Incoming::Frame(ServerFrame::Chunk { seq: 1, .. })
        ));
        let done = ServerFrame::Done {
            message_id: Uuid::new_v4(),
            seq: 3,
            status: shared_proto::FinalStatus::Completed,
            error: None,
            usage: None,
        };
        assert!(matches!(parse_frame(&done.to_json()), Incoming::Frame(f) if f == done));
        assert!(matches!(parse_frame("{"), Incoming::Garbage(g) if g == "{"));
    }

    #[test]
    fn close_codes() {
        assert_eq!(
            Incoming::Close(Some((4008, "slow".into()))).close_code(),
            Some(4008)
        );
        assert_eq!(
            Incoming::Close(Some((0, "error: reset".into()))).close_code(),
            None
        );
        assert_eq!(Incoming::Close(None).close_code(), None);
    }
}
