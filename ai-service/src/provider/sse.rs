//! An incremental parser for `text/event-stream` (server-sent events).
//!
//! Model servers stream their answers as SSE over a plain HTTP body, and TCP hands that body
//! over in arbitrary pieces: an event, a line, or even a multi-byte UTF-8 character may be
//! split across two reads. The parser therefore buffers raw *bytes* until a whole line is
//! there and only then decodes it, so a split inside a character can never corrupt text.
//!
//! It follows the WHATWG event-stream rules that matter for model servers:
//! - lines end with `\n`, `\r\n` or a lone `\r` (a `\r` at the end of one read followed by
//!   `\n` at the start of the next is one line ending, not two);
//! - `field: value` (one optional space after the colon is removed), `field` alone means an
//!   empty value, and lines starting with `:` are comments (servers use them as keep-alives);
//! - several `data:` lines of one event are joined with `\n`;
//! - a blank line dispatches the event; an event without any `data` line is not dispatched
//!   (so blank keep-alive lines produce nothing);
//! - a leading UTF-8 byte-order mark is ignored.
//!
//! The parser is pure (no I/O), which is what lets the unit tests below feed it every possible
//! split of a transcript.
//!
//! It runs once per token on the provider path, so a read costs no allocation beyond each
//! event's `data`: the default event name is a borrowed `"message"`, and the events of a read
//! are handed out as a drain of the parser's own queue rather than collected into a new `Vec`.

use std::borrow::Cow;
use std::collections::vec_deque::Drain;
use std::collections::VecDeque;

/// The default cap on one event's size (pending line plus accumulated data), in bytes.
///
/// A server that never sends a line ending would otherwise make us buffer without bound.
/// Real chat-completion chunks are a few hundred bytes; 1 MiB leaves room for servers that put
/// large `timings`/`logprobs` objects into every chunk.
pub const DEFAULT_MAX_EVENT_BYTES: usize = 1024 * 1024;

/// One dispatched server-sent event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` field, or `"message"` when the server gave none (the SSE default; borrowed,
    /// so the usual event costs no allocation for its name).
    pub event: Cow<'static, str>,
    /// The `data:` lines, joined with `\n`.
    pub data: String,
    /// The last `id:` field seen in the stream, if any.
    pub id: Option<String>,
}

/// Why the parser gave up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SseError {
    /// One event grew beyond the configured limit without being dispatched.
    #[error("server-sent event larger than {limit} bytes")]
    EventTooLarge { limit: usize },
}

/// Incremental SSE parser: [`push`](SseParser::push) bytes as they arrive, then call
/// [`finish`](SseParser::finish) at end of stream.
#[derive(Debug)]
pub struct SseParser {
    /// Bytes of the current, not yet terminated line.
    line: Vec<u8>,
    /// The previous byte was a `\r` that ended a line; a following `\n` belongs to it.
    after_cr: bool,
    /// Whether the start of the stream (and a possible BOM) has been handled.
    started: bool,
    /// Data lines of the event being built (already joined with `\n`).
    data: String,
    /// Whether at least one `data` field was seen for the current event.
    has_data: bool,
    event: Option<Cow<'static, str>>,
    last_id: Option<String>,
    max_event_bytes: usize,
    ready: VecDeque<SseEvent>,
}

impl Default for SseParser {
    fn default() -> Self {
        Self::new()
    }
}

impl SseParser {
    /// A parser with the [`DEFAULT_MAX_EVENT_BYTES`] limit.
    pub fn new() -> Self {
        Self::with_max_event_bytes(DEFAULT_MAX_EVENT_BYTES)
    }

    /// A parser that fails once one event exceeds `max_event_bytes`.
    pub fn with_max_event_bytes(max_event_bytes: usize) -> Self {
        SseParser {
            line: Vec::new(),
            after_cr: false,
            started: false,
            data: String::new(),
            has_data: false,
            event: None,
            last_id: None,
            max_event_bytes,
            ready: VecDeque::new(),
        }
    }

    /// Feeds the next piece of the body and returns the events it completed, in order (a
    /// drain of the parser's queue: what is not taken is dropped).
    pub fn push(&mut self, mut bytes: &[u8]) -> Result<Drain<'_, SseEvent>, SseError> {
        if !self.started {
            // The BOM may itself be split across reads: wait until we can tell.
            self.line.extend_from_slice(bytes);
            const BOM: &[u8] = b"\xEF\xBB\xBF";
            if self.line.len() < BOM.len() && BOM.starts_with(&self.line) {
                return Ok(self.ready.drain(..));
            }
            self.started = true;
            let pending = std::mem::take(&mut self.line);
            let rest = pending.strip_prefix(BOM).unwrap_or(&pending);
            self.feed(rest)?;
            return Ok(self.ready.drain(..));
        }
        if self.after_cr && !bytes.is_empty() {
            self.after_cr = false;
            if let Some(rest) = bytes.strip_prefix(b"\n") {
                bytes = rest;
            }
        }
        self.feed(bytes)?;
        Ok(self.ready.drain(..))
    }

    /// Ends the stream: a final line without a line ending is processed, and an event that was
    /// not followed by a blank line is dispatched too.
    ///
    /// The SSE specification would discard such an event, but some servers close the body
    /// right after `data: [DONE]` without the blank line, and dropping it would turn a complete
    /// answer into a truncated one.
    pub fn finish(&mut self) -> Drain<'_, SseEvent> {
        if !self.line.is_empty() {
            let line = std::mem::take(&mut self.line);
            // Cannot fail: limits are only checked while more input may follow.
            self.process_line(&line);
        }
        self.dispatch();
        self.ready.drain(..)
    }

    fn feed(&mut self, bytes: &[u8]) -> Result<(), SseError> {
        let mut rest = bytes;
        while let Some(pos) = rest.iter().position(|b| *b == b'\n' || *b == b'\r') {
            let (head, tail) = rest.split_at(pos);
            let is_cr = tail[0] == b'\r';
            rest = &tail[1..];
            if is_cr {
                match rest.first() {
                    Some(b'\n') => rest = &rest[1..],
                    Some(_) => {}
                    // The `\n` of a `\r\n` may come with the next read.
                    None => self.after_cr = true,
                }
            }
            if self.line.is_empty() {
                self.process_line(head);
            } else {
                self.line.extend_from_slice(head);
                let line = std::mem::take(&mut self.line);
                self.process_line(&line);
            }
            self.check_size()?;
        }
        self.line.extend_from_slice(rest);
        self.check_size()
    }

    fn check_size(&self) -> Result<(), SseError> {
        if self.line.len() + self.data.len() > self.max_event_bytes {
            return Err(SseError::EventTooLarge {
                limit: self.max_event_bytes,
            });
        }
        Ok(())
    }

    fn process_line(&mut self, line: &[u8]) {
        if line.is_empty() {
            self.dispatch();
            return;
        }
        if line[0] == b':' {
            return; // comment / keep-alive
        }
        let (name, value) = match line.iter().position(|b| *b == b':') {
            Some(i) => {
                let value = &line[i + 1..];
                (&line[..i], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &b""[..]),
        };
        match name {
            b"data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.has_data = true;
                self.data.push_str(&String::from_utf8_lossy(value));
            }
            b"event" => self.event = Some(String::from_utf8_lossy(value).into_owned().into()),
            // Per spec, an id containing NUL is ignored.
            b"id" if !value.contains(&0) => {
                self.last_id = Some(String::from_utf8_lossy(value).into_owned());
            }
            // `retry` only matters to reconnecting EventSource clients; unknown fields are
            // ignored by the spec.
            _ => {}
        }
    }

    fn dispatch(&mut self) {
        let event = self.event.take();
        if !self.has_data {
            return;
        }
        self.has_data = false;
        self.ready.push_back(SseEvent {
            event: event.unwrap_or(Cow::Borrowed("message")),
            data: std::mem::take(&mut self.data),
            id: self.last_id.clone(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(data: &str) -> SseEvent {
        SseEvent {
            event: "message".into(),
            data: data.into(),
            id: None,
        }
    }

    fn parse_all(chunks: &[&[u8]]) -> Vec<SseEvent> {
        let mut p = SseParser::new();
        let mut out = Vec::new();
        for c in chunks {
            out.extend(p.push(c).unwrap());
        }
        out.extend(p.finish());
        out
    }

    /// A transcript with every feature: BOM, comments, keep-alive blank lines, CRLF, lone CR,
    /// multi-line data, named events, ids, multi-byte characters (2, 3 and 4 bytes).
    const TRANSCRIPT: &[u8] = "\u{feff}: keep-alive\r\n\r\n\
        data: {\"c\":\"héllo\"}\r\n\r\n\
        :ping\n\n\n\
        data:first\ndata: second\n\ndata:  two spaces\r\r\
        event: error\nid: 7\ndata: {\"e\":\"日本語 🦀\"}\n\n\
        retry: 100\nunknown: x\ndata\n\n\
        data: [DONE]\n\n"
        .as_bytes();

    fn expected() -> Vec<SseEvent> {
        vec![
            ev("{\"c\":\"héllo\"}"),
            ev("first\nsecond"),
            ev(" two spaces"),
            SseEvent {
                event: "error".into(),
                data: "{\"e\":\"日本語 🦀\"}".into(),
                id: Some("7".into()),
            },
            SseEvent {
                event: "message".into(),
                data: String::new(),
                id: Some("7".into()),
            },
            SseEvent {
                event: "message".into(),
                data: "[DONE]".into(),
                id: Some("7".into()),
            },
        ]
    }

    #[test]
    fn parses_whole_transcript() {
        assert_eq!(parse_all(&[TRANSCRIPT]), expected());
    }

    #[test]
    fn byte_by_byte() {
        let chunks: Vec<&[u8]> = TRANSCRIPT.chunks(1).collect();
        assert_eq!(parse_all(&chunks), expected());
    }

    #[test]
    fn every_two_and_three_way_split() {
        let n = TRANSCRIPT.len();
        for i in 0..=n {
            let (a, b) = TRANSCRIPT.split_at(i);
            assert_eq!(parse_all(&[a, b]), expected(), "split at {i}");
        }
        for i in (0..=n).step_by(3) {
            for j in i..=n {
                let (a, rest) = TRANSCRIPT.split_at(i);
                let (b, c) = rest.split_at(j - i);
                assert_eq!(parse_all(&[a, b, c]), expected(), "split at {i},{j}");
            }
        }
    }

    #[test]
    fn crlf_split_between_reads_is_one_line_ending() {
        // If the `\n` after a `\r` at the end of a read were taken as a second line ending,
        // "a" would be dispatched before "b" joined it.
        let got = parse_all(&[b"data: a\r", b"\ndata: b\r", b"\n\r", b"\n"]);
        assert_eq!(got, vec![ev("a\nb")]);
        // An empty read between the `\r` and the `\n` changes nothing.
        let got = parse_all(&[b"data: a\r", b"", b"\n\r\n"]);
        assert_eq!(got, vec![ev("a")]);
    }

    #[test]
    fn keep_alives_alone_produce_nothing() {
        assert!(parse_all(&[b"\n\n\r\n: ping\n\n:\n\n"]).is_empty());
        // An event with only an `event:` field is not dispatched, and its name does not leak
        // into the next event.
        assert_eq!(parse_all(&[b"event: ping\n\ndata: x\n\n"]), vec![ev("x")]);
    }

    #[test]
    fn finish_flushes_unterminated_event() {
        assert_eq!(parse_all(&[b"data: [DONE]"]), vec![ev("[DONE]")]);
        assert_eq!(parse_all(&[b"data: [DONE]\n"]), vec![ev("[DONE]")]);
        assert!(parse_all(&[b": only a comment"]).is_empty());
    }

    #[test]
    fn invalid_utf8_is_replaced_not_fatal() {
        assert_eq!(parse_all(&[b"data: a\xffb\n\n"]), vec![ev("a\u{fffd}b")]);
    }

    #[test]
    fn bom_only_at_start() {
        assert_eq!(
            parse_all(&[b"\xEF", b"\xBB", b"\xBFdata: x\n\n"]),
            vec![ev("x")]
        );
        // A stream shorter than a BOM still works.
        assert!(parse_all(&[b"\n"]).is_empty());
        assert_eq!(parse_all(&[b"d", b"ata: y\n\n"]), vec![ev("y")]);
    }

    #[test]
    fn oversized_event_is_an_error() {
        let mut p = SseParser::with_max_event_bytes(16);
        assert!(p.push(b"data: 0123456789\n").is_ok());
        assert_eq!(
            p.push(b"data: 0123456789\n").err(),
            Some(SseError::EventTooLarge { limit: 16 })
        );
        let mut p = SseParser::with_max_event_bytes(16);
        assert!(p.push(&[b'x'; 17]).is_err());
    }
}
