//! The HTTP/1.1 the fake server speaks by hand: reading a request (head and `Content-Length`
//! body) while noticing the end of the connection, and writing response heads and chunks.
//! By hand, so a test controls exactly what goes on the wire and when the connection ends.

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::time::Instant;

use super::Recorded;

/// The read side of a connection, with the bytes read but not consumed yet.
pub(crate) struct Reader {
    pub(crate) rd: OwnedReadHalf,
    pub(crate) buf: Vec<u8>,
}

impl Reader {
    /// Reads one request (head + `Content-Length` body); `None` at the end of the connection.
    pub(crate) async fn request(&mut self) -> Option<Recorded> {
        let head_end = loop {
            if let Some(pos) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break pos;
            }
            if !self.fill().await {
                return None;
            }
        };
        let head = String::from_utf8_lossy(&self.buf[..head_end]).into_owned();
        let mut lines = head.split("\r\n");
        let mut request_line = lines.next()?.split(' ');
        let method = request_line.next()?.to_owned();
        let path = request_line.next()?.to_owned();
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
            .collect();
        let len: usize = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        while self.buf.len() < head_end + 4 + len {
            if !self.fill().await {
                return None;
            }
        }
        let body: Vec<u8> = self
            .buf
            .drain(..head_end + 4 + len)
            .skip(head_end + 4)
            .collect();
        Some(Recorded {
            index: 0,
            connection: 0,
            method,
            path,
            headers,
            body: serde_json::from_slice(&body).unwrap_or(Value::Null),
            at: Instant::now(),
        })
    }

    /// Reads more bytes into the buffer; false at the end of the connection.
    async fn fill(&mut self) -> bool {
        let mut tmp = [0u8; 8192];
        match self.rd.read(&mut tmp).await {
            Ok(0) | Err(_) => false,
            Ok(n) => {
                self.buf.extend_from_slice(&tmp[..n]);
                true
            }
        }
    }

    /// Resolves when the client closes the connection. Cancel-safe: bytes that arrive in the
    /// meantime (a next request) stay buffered.
    pub(crate) async fn eof(&mut self) {
        while self.fill().await {}
    }
}

/// The reason phrase of the statuses the scripts use.
pub(crate) fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

/// Whether the server keeps a connection open after a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Connection {
    KeepAlive,
    /// The head says `Connection: close`, and the server closes after the body.
    Close,
}

/// A complete response with a `Content-Length` body.
pub(crate) fn full_response(
    status_line: &str,
    headers: &[(&str, &str)],
    body: &str,
    connection: Connection,
) -> String {
    let mut head = format!(
        "HTTP/1.1 {status_line}\r\nContent-Length: {}\r\n",
        body.len()
    );
    if connection == Connection::Close {
        head.push_str("Connection: close\r\n");
    }
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    head.push_str(body);
    head
}

/// The head of a `200` with a chunked `text/event-stream` body.
pub(crate) fn sse_head(connection: Connection) -> &'static [u8] {
    match connection {
        Connection::KeepAlive => {
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\n\
              Cache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n\r\n"
        }
        Connection::Close => {
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n\
              Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        }
    }
}

/// The head of a `200` `text/event-stream` body without length, which ends when the server
/// closes the connection.
pub(crate) const CLOSE_DELIMITED_SSE_HEAD: &[u8] =
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n";

/// The end of a chunked body.
pub(crate) const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

/// Appends `bytes` as one chunk of a chunked body.
pub(crate) fn push_chunk(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(format!("{:x}\r\n", bytes.len()).as_bytes());
    out.extend_from_slice(bytes);
    out.extend_from_slice(b"\r\n");
}

/// `bytes` as one chunk of a chunked body.
pub(crate) fn chunk(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + 12);
    push_chunk(&mut out, bytes);
    out
}

pub(crate) async fn write(wr: &mut OwnedWriteHalf, bytes: &[u8]) -> std::io::Result<()> {
    wr.write_all(bytes).await?;
    wr.flush().await
}
