//! The fast streaming mode: N tokens at R tokens/s (or as fast as possible) per request, with
//! as little work per token as the wire format allows, so that a benchmark measures the
//! provider path under load and not the fake.
//!
//! Every event is rendered once, when the mode is built: the role delta, one content delta per
//! word of a small vocabulary (each a word with its leading space, as the demo model's
//! tokens are, so a client counts tokens by counting words), the `finish_reason` delta and
//! `[DONE]`, each already framed as a chunk of the chunked body, in the two variants OpenAI
//! sends (with `"usage": null` on every chunk when usage was asked for, and without). A
//! request copies those bytes; tokens that are due together leave in one write.
//!
//! A request may steer its own answer the way the demo model's prompts do: when the first line
//! of its last `user` message is `!demo tokens=N rate=R`, those values replace the defaults
//! (an unreadable value is ignored), so `loadgen`'s prompts mean the same to either provider.

use std::time::Duration;

use serde_json::json;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::time::Instant;

use super::http::{self, Connection};
use super::sse;

const VOCABULARY: [&str; 16] = [
    "lorem",
    "ipsum",
    "dolor",
    "sit",
    "amet",
    "consectetur",
    "adipiscing",
    "elit",
    "sed",
    "do",
    "eiusmod",
    "tempor",
    "incididunt",
    "ut",
    "labore",
    "magna",
];

/// Bytes gathered before a write when tokens are due faster than they can be sent.
const WRITE_BATCH: usize = 16 * 1024;

/// The events of one variant, pre-rendered and framed.
#[derive(Debug)]
struct Events {
    role: Vec<u8>,
    words: Vec<Vec<u8>>,
    finish: Vec<u8>,
}

impl Events {
    fn render(model: &str, include_usage: bool) -> Events {
        let event = |v: serde_json::Value| sse::data_chunk(&v.to_string());
        Events {
            role: event(sse::role_chunk(model, include_usage)),
            words: VOCABULARY
                .iter()
                .map(|w| {
                    event(sse::chunk_json(
                        model,
                        json!({ "content": format!(" {w}") }),
                        None,
                        include_usage,
                    ))
                })
                .collect(),
            finish: event(sse::chunk_json(
                model,
                json!({}),
                Some("stop"),
                include_usage,
            )),
        }
    }
}

/// What one request gets.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Plan {
    pub tokens: u64,
    /// Tokens per second; 0: as fast as possible.
    pub rate: f64,
}

impl Plan {
    /// This plan with what a first line `!demo tokens=N rate=R` of `prompt` says instead (the
    /// line the ai-service's demo model obeys too); a value that does not parse is ignored.
    pub fn steered(self, prompt: Option<&str>) -> Plan {
        let mut plan = self;
        let directive = prompt
            .and_then(|p| p.lines().next())
            .and_then(|l| l.trim().strip_prefix("!demo"));
        for kv in directive.into_iter().flat_map(str::split_whitespace) {
            match kv.split_once('=') {
                Some(("tokens", v)) => {
                    if let Ok(n) = v.parse() {
                        plan.tokens = n;
                    }
                }
                Some(("rate", v)) => {
                    if let Ok(r) = v.parse::<f64>() {
                        if r.is_finite() && r >= 0.0 {
                            plan.rate = r;
                        }
                    }
                }
                _ => {}
            }
        }
        plan
    }
}

/// The fast streaming mode (see the module's contract).
#[derive(Debug)]
pub struct Generate {
    /// What a request without a `!demo` line gets.
    pub default: Plan,
    model: String,
    plain: Events,
    with_usage: Events,
}

impl Generate {
    /// Pre-renders the events; `model` is what every chunk names (real servers, too, answer
    /// with the model they resolved rather than the name requested).
    pub fn new(model: &str, default: Plan) -> Generate {
        Generate {
            default,
            model: model.to_string(),
            plain: Events::render(model, false),
            with_usage: Events::render(model, true),
        }
    }

    /// The plan for a request whose last user message is `prompt`.
    pub fn plan(&self, prompt: Option<&str>) -> Plan {
        self.default.steered(prompt)
    }

    /// Streams one answer; the connection stays usable for the next request.
    pub(crate) async fn answer(
        &self,
        wr: &mut OwnedWriteHalf,
        plan: Plan,
        include_usage: bool,
        prompt_tokens: u64,
    ) -> std::io::Result<()> {
        let events = if include_usage {
            &self.with_usage
        } else {
            &self.plain
        };
        let mut buf = Vec::with_capacity(WRITE_BATCH + 512);
        buf.extend_from_slice(http::sse_head(Connection::KeepAlive));
        buf.extend_from_slice(&events.role);
        let start = Instant::now();
        for i in 0..plan.tokens {
            if plan.rate > 0.0 {
                let due = start + Duration::from_secs_f64(i as f64 / plan.rate);
                if Instant::now() < due {
                    if !buf.is_empty() {
                        http::write(wr, &buf).await?;
                        buf.clear();
                    }
                    tokio::time::sleep_until(due).await;
                }
            }
            buf.extend_from_slice(&events.words[i as usize % events.words.len()]);
            if buf.len() >= WRITE_BATCH {
                http::write(wr, &buf).await?;
                buf.clear();
            }
        }
        buf.extend_from_slice(&events.finish);
        if include_usage {
            let usage = sse::usage_chunk(&self.model, prompt_tokens, plan.tokens);
            buf.extend_from_slice(&sse::data_chunk(&usage.to_string()));
        }
        buf.extend_from_slice(&sse::data_chunk("[DONE]"));
        buf.extend_from_slice(http::LAST_CHUNK);
        http::write(wr, &buf).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_demo_line_steers_the_plan() {
        let g = Generate::new(
            "m",
            Plan {
                tokens: 60,
                rate: 0.0,
            },
        );
        assert_eq!(g.plan(None), g.default);
        assert_eq!(g.plan(Some("hello")), g.default);
        assert_eq!(
            g.plan(Some("!demo tokens=20 rate=200\nload test")),
            Plan {
                tokens: 20,
                rate: 200.0
            }
        );
        assert_eq!(
            g.plan(Some("!demo tokens=x rate=-1")),
            g.default,
            "unreadable values are ignored"
        );
        let word = String::from_utf8(g.plain.words[0].clone()).unwrap();
        assert!(word.contains(r#""delta":{"content":" lorem"}"#), "{word}");
        assert!(!word.contains("usage"), "{word}");
        let word = String::from_utf8(g.with_usage.words[0].clone()).unwrap();
        assert!(word.contains(r#""usage":null"#), "{word}");
    }
}
