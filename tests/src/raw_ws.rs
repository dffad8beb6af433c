//! A WebSocket client on a bare TCP socket, for tests that watch the TCP connection itself.
//!
//! tungstenite hides what happens below the close handshake: once close frames have been
//! exchanged it reports the connection closed, whether or not the server ever closed TCP. The
//! close suite needs to see exactly that (does the server's FIN come) while keeping its own
//! side open, as a browser does while it waits for `onclose`. So this client speaks the few
//! parts of RFC 6455 it needs itself: the upgrade request, unmasked server frames, masked
//! client frames. Reads are never bounded here; callers bound them (see [`RawWs::next_within`]).

use std::io;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use crate::PATIENCE;

/// Frame opcodes (RFC 6455 §5.2).
pub mod opcode {
    pub const TEXT: u8 = 0x1;
    pub const CLOSE: u8 = 0x8;
    pub const PING: u8 = 0x9;
    pub const PONG: u8 = 0xA;
}

/// What the server sent next.
#[derive(Debug, PartialEq, Eq)]
pub enum RawEvent {
    /// One frame (fragments are reported one by one).
    Frame { opcode: u8, payload: Vec<u8> },
    /// The server closed its side of the TCP connection (a read returned 0).
    Eof,
    /// The connection failed (a reset, most likely).
    Error(io::ErrorKind),
}

impl RawEvent {
    /// The close code, if this is a close frame that carries one.
    pub fn close_code(&self) -> Option<u16> {
        match self {
            RawEvent::Frame {
                opcode: opcode::CLOSE,
                payload,
            } if payload.len() >= 2 => Some(u16::from_be_bytes([payload[0], payload[1]])),
            _ => None,
        }
    }
}

/// A WebSocket connection to the harness gateway on `127.0.0.1:port`.
pub struct RawWs {
    stream: TcpStream,
    /// Bytes read and not yet parsed into a frame.
    buf: Vec<u8>,
}

impl RawWs {
    /// Connects to `/ws` with the harness's default JWT and completes the upgrade.
    pub async fn connect(port: u16) -> RawWs {
        let socket = TcpSocket::new_v4().expect("socket");
        Self::connect_socket(socket, port).await
    }

    /// Like [`connect`](Self::connect), with a tiny receive buffer: a client that can stop
    /// reading and have the server notice soon.
    pub async fn connect_small_buffer(port: u16) -> RawWs {
        let socket = TcpSocket::new_v4().expect("socket");
        socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
        Self::connect_socket(socket, port).await
    }

    async fn connect_socket(socket: TcpSocket, port: u16) -> RawWs {
        let mut stream =
            tokio::time::timeout(PATIENCE, socket.connect(([127, 0, 0, 1], port).into()))
                .await
                .expect("tcp connect in time")
                .expect("tcp connect");
        let path = crate::auth::with_default_token("/ws");
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
             Sec-WebSocket-Version: 13\r\n\r\n"
        );
        stream
            .write_all(request.as_bytes())
            .await
            .expect("write upgrade request");
        let mut buf = Vec::new();
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let mut chunk = [0u8; 1024];
            let n = tokio::time::timeout(PATIENCE, stream.read(&mut chunk))
                .await
                .expect("upgrade response in time")
                .expect("read upgrade response");
            assert!(n > 0, "the server closed the connection during the upgrade");
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
        assert!(
            head.starts_with("HTTP/1.1 101"),
            "expected 101 Switching Protocols, got: {head}"
        );
        buf.drain(..head_end);
        RawWs { stream, buf }
    }

    /// Sends one masked frame with FIN set.
    pub async fn send(&mut self, opcode: u8, payload: &[u8]) {
        let mask: [u8; 4] = uuid::Uuid::new_v4().as_bytes()[..4]
            .try_into()
            .expect("4 bytes");
        let mut frame = vec![0x80 | opcode];
        match payload.len() {
            n if n < 126 => frame.push(0x80 | n as u8),
            n if n <= u16::MAX as usize => {
                frame.push(0x80 | 126);
                frame.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                frame.push(0x80 | 127);
                frame.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        frame.extend_from_slice(&mask);
        frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        self.stream.write_all(&frame).await.expect("write frame");
    }

    /// Sends a close frame with `code` and no reason.
    pub async fn send_close(&mut self, code: u16) {
        self.send(opcode::CLOSE, &code.to_be_bytes()).await;
    }

    /// Sends a text frame.
    pub async fn send_text(&mut self, text: &str) {
        self.send(opcode::TEXT, text.as_bytes()).await;
    }

    /// The next frame, the end of the stream or an error; waits as long as it takes.
    pub async fn next(&mut self) -> RawEvent {
        loop {
            if let Some((opcode, payload, used)) = parse_frame(&self.buf) {
                self.buf.drain(..used);
                return RawEvent::Frame { opcode, payload };
            }
            let mut chunk = [0u8; 8192];
            match self.stream.read(&mut chunk).await {
                Ok(0) if self.buf.is_empty() => return RawEvent::Eof,
                Ok(0) => return RawEvent::Error(io::ErrorKind::UnexpectedEof),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) => return RawEvent::Error(e.kind()),
            }
        }
    }

    /// [`next`](Self::next), or `None` if nothing came within `patience`.
    pub async fn next_within(&mut self, patience: Duration) -> Option<RawEvent> {
        tokio::time::timeout(patience, self.next()).await.ok()
    }

    /// Reads until a close frame (skipping text frames and pings) and returns its code;
    /// panics on EOF or an error first, or after [`PATIENCE`].
    pub async fn until_close(&mut self) -> Option<u16> {
        loop {
            let event = self
                .next_within(PATIENCE)
                .await
                .expect("no close frame arrived in time");
            match event {
                RawEvent::Frame {
                    opcode: opcode::CLOSE,
                    ..
                } => return event.close_code(),
                RawEvent::Frame { .. } => continue,
                other => panic!("expected a close frame, got {other:?}"),
            }
        }
    }
}

/// One complete server frame at the start of `buf`: opcode, payload, bytes used.
fn parse_frame(buf: &[u8]) -> Option<(u8, Vec<u8>, usize)> {
    let (&b0, rest) = buf.split_first()?;
    let (&b1, rest) = rest.split_first()?;
    let masked = b1 & 0x80 != 0;
    let (len, rest) = match b1 & 0x7F {
        126 => (
            u16::from_be_bytes(rest.get(..2)?.try_into().ok()?) as usize,
            &rest[2..],
        ),
        127 => (
            u64::from_be_bytes(rest.get(..8)?.try_into().ok()?) as usize,
            &rest[8..],
        ),
        n => (n as usize, rest),
    };
    let (mask, rest) = if masked {
        (Some(rest.get(..4)?), &rest[4..])
    } else {
        (None, rest)
    };
    let body = rest.get(..len)?;
    let payload = match mask {
        Some(m) => body.iter().enumerate().map(|(i, b)| b ^ m[i % 4]).collect(),
        None => body.to_vec(),
    };
    let used = buf.len() - rest.len() + len;
    Some((b0 & 0x0F, payload, used))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_short_extended_and_partial_frames() {
        assert_eq!(
            parse_frame(&[0x88, 2, 0x03, 0xE8, 0xFF]),
            Some((opcode::CLOSE, vec![0x03, 0xE8], 4))
        );
        let mut long = vec![0x81, 126, 0, 200];
        long.extend(std::iter::repeat_n(b'a', 200));
        assert_eq!(
            parse_frame(&long).map(|(o, p, u)| (o, p.len(), u)),
            Some((1, 200, 204))
        );
        assert_eq!(parse_frame(&long[..100]), None);
        assert_eq!(parse_frame(&[0x81]), None);
    }
}
