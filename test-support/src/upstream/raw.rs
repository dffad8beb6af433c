//! Byte-level scripting of one connection, for tests of the provider's parser and failure
//! handling: the exact bytes, their framing (chunked or close-delimited) and the moment the
//! connection ends are the script's. Also the transcript helpers those tests replay
//! (events split at their blank lines, a noisy variant with CRLF, comments and keep-alives).

use std::sync::Arc;

use tokio::net::tcp::OwnedWriteHalf;

use super::http::{self, Connection};
use super::{Disconnect, Shared};

/// One connection handed to a [`super::Script`], after its request was read and recorded.
/// Every response head it writes says `Connection: close`: the server closes the connection
/// when the script returns.
pub struct RawConn {
    pub(crate) wr: OwnedWriteHalf,
    /// 0 for the first request the server received, 1 for the second, ...
    pub index: usize,
    pub(crate) shared: Arc<Shared>,
}

impl RawConn {
    pub async fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        http::write(&mut self.wr, bytes).await
    }

    /// Response head for a chunked SSE body.
    pub async fn sse_head(&mut self) -> std::io::Result<()> {
        self.write(http::sse_head(Connection::Close)).await
    }

    /// Response head for an SSE body that ends when the connection closes.
    pub async fn close_delimited_head(&mut self) -> std::io::Result<()> {
        self.write(http::CLOSE_DELIMITED_SSE_HEAD).await
    }

    /// One chunk of a chunked body.
    pub async fn chunk(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.write(&http::chunk(bytes)).await
    }

    pub async fn end_chunked(&mut self) -> std::io::Result<()> {
        self.write(http::LAST_CHUNK).await
    }

    /// A complete non-streaming response (`status` is the status line's tail: `429 Too Many
    /// Requests`).
    pub async fn respond(&mut self, status: &str, headers: &[(&str, &str)], body: &str) {
        let response = http::full_response(status, headers, body, Connection::Close);
        let _ = self.write(response.as_bytes()).await;
    }

    /// Replays a transcript as a chunked body, one chunk per event.
    pub async fn replay_chunked(&mut self, transcript: &[u8]) {
        let _ = self.sse_head().await;
        let _ = write_events(&mut self.wr, transcript).await;
        let _ = self.end_chunked().await;
    }

    /// Resolves once the client has closed the connection (the server saw a read return 0 or
    /// fail). The server also drops the script at that moment, so this is the natural last
    /// step of a script that waits for the client to give up.
    pub async fn disconnected(&self) -> Disconnect {
        let index = self.index;
        self.shared
            .wait(|s| s.disconnects.get(&index).copied())
            .await
    }
}

/// Writes each event of `transcript` as its own chunk (one write each, so they leave as
/// separate segments, as a real server's tokens do).
pub(crate) async fn write_events(
    wr: &mut OwnedWriteHalf,
    transcript: &[u8],
) -> std::io::Result<()> {
    for event in split_events(transcript) {
        http::write(wr, &http::chunk(event)).await?;
    }
    Ok(())
}

/// The events of a transcript, each with its blank line.
pub fn split_events(transcript: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i + 1 < transcript.len() {
        if &transcript[i..i + 2] == b"\n\n" {
            out.push(&transcript[start..i + 2]);
            start = i + 2;
            i += 2;
        } else {
            i += 1;
        }
    }
    if start < transcript.len() {
        out.push(&transcript[start..]);
    }
    out
}

/// The transcript with CRLF line endings, comments and blank keep-alive lines between events
/// (what proxies and some servers add).
pub fn noisy(transcript: &[u8]) -> Vec<u8> {
    let mut out = b": connected\r\n\r\n\r\n".to_vec();
    for event in split_events(transcript) {
        let text = String::from_utf8_lossy(event).replace('\n', "\r\n");
        out.extend_from_slice(text.as_bytes());
        out.extend_from_slice(b": keep-alive\r\n\r\n\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_keep_their_blank_line() {
        assert_eq!(
            split_events(b"data: a\n\ndata: b\n\ndata: [DONE]"),
            vec![&b"data: a\n\n"[..], b"data: b\n\n", b"data: [DONE]"]
        );
        assert_eq!(
            noisy(b"data: a\n\n"),
            b": connected\r\n\r\n\r\ndata: a\r\n\r\n: keep-alive\r\n\r\n\r\n".to_vec()
        );
    }
}
