//! The built-in demo model: deterministic text at a steady rate, no network.
//!
//! The text depends only on the prompt and the number of earlier turns, so a test can predict
//! it, and history visibly changes it. A first line `!demo tokens=N rate=R fail_after=K
//! reasoning=M` (each key optional) overrides the defaults for one message: `rate=0` means as
//! fast as possible, `fail_after=K` fails the message with `upstream_error` after K answer
//! tokens, `reasoning=M` makes the model "think" first: M reasoning tokens (shown apart, not
//! part of the answer) before the answer's, at the same rate.

use std::time::Duration;

use futures_util::stream;
use shared_proto::ErrorCode;
use tokio::time::Instant;

use super::{GenerationRequest, Provider, ProviderError, ProviderEvent, ProviderStream};

const WORDS: [&str; 32] = [
    "the", "stream", "flows", "through", "redis", "to", "every", "socket", "while", "tokens",
    "arrive", "in", "order", "and", "cancel", "always", "wins", "so", "no", "chunk", "is", "lost",
    "or", "repeated", "across", "replicas", "gateways", "sessions", "answers", "keep", "going",
    "steadily",
];

/// Defaults, from configuration.
#[derive(Debug, Clone, Copy)]
pub struct DemoProvider {
    pub tokens: u64,
    pub tokens_per_sec: f64,
}

/// Per-message settings after applying a `!demo` directive.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DemoPlan {
    pub tokens: u64,
    pub tokens_per_sec: f64,
    pub fail_after: Option<u64>,
    /// Reasoning tokens before the answer.
    pub reasoning: u64,
}

impl DemoProvider {
    /// The plan for one prompt: defaults, overridden by a first-line directive.
    pub fn plan(&self, prompt: &str) -> DemoPlan {
        let mut plan = DemoPlan {
            tokens: self.tokens,
            tokens_per_sec: self.tokens_per_sec,
            fail_after: None,
            reasoning: 0,
        };
        let first = prompt.lines().next().unwrap_or("");
        if let Some(rest) = first.trim().strip_prefix("!demo") {
            for pair in rest.split_whitespace() {
                let Some((key, value)) = pair.split_once('=') else {
                    continue;
                };
                match key {
                    "tokens" => {
                        if let Ok(n) = value.parse() {
                            plan.tokens = n;
                        }
                    }
                    "rate" => {
                        if let Ok(r) = value.parse::<f64>() {
                            if r.is_finite() && r >= 0.0 {
                                plan.tokens_per_sec = r;
                            }
                        }
                    }
                    "fail_after" => plan.fail_after = value.parse().ok(),
                    "reasoning" => {
                        if let Ok(n) = value.parse() {
                            plan.reasoning = n;
                        }
                    }
                    _ => {}
                }
            }
        }
        plan
    }

    /// The i-th token (0-based) of the answer to `prompt` after `turns` earlier turns.
    pub fn token(prompt: &str, turns: usize, i: u64) -> String {
        let seed = fnv1a(prompt.as_bytes()) ^ (turns as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let h = splitmix(seed.wrapping_add(i));
        let word = WORDS[(h % WORDS.len() as u64) as usize];
        if i == 0 {
            format!("{}{}", word[..1].to_uppercase(), &word[1..])
        } else {
            format!(" {word}")
        }
    }

    /// The i-th reasoning token (0-based) for `prompt`: other words than the answer's.
    pub fn thought(prompt: &str, i: u64) -> String {
        let h = splitmix((fnv1a(prompt.as_bytes()) ^ 0x5EED_5EED).wrapping_add(i));
        let word = WORDS[(h % WORDS.len() as u64) as usize];
        if i == 0 {
            format!("Hmm, {word}")
        } else {
            format!(" {word}")
        }
    }

    /// The whole answer, as the stream would produce it (for tests).
    pub fn answer(&self, prompt: &str, turns: usize) -> String {
        let plan = self.plan(prompt);
        let n = plan.fail_after.map_or(plan.tokens, |k| k.min(plan.tokens));
        (0..n).map(|i| Self::token(prompt, turns, i)).collect()
    }
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

struct DemoState {
    prompt: String,
    turns: usize,
    plan: DemoPlan,
    next: u64,
    start: Option<Instant>,
}

impl Provider for DemoProvider {
    fn stream(&self, request: GenerationRequest) -> ProviderStream {
        let state = DemoState {
            plan: self.plan(&request.content),
            turns: request.history.len(),
            prompt: request.content,
            next: 0,
            start: None,
        };
        Box::pin(stream::unfold(state, |mut st| async move {
            // Event i: reasoning while i < reasoning, then answer token i - reasoning.
            let i = st.next;
            let answer_i = i.checked_sub(st.plan.reasoning);
            if let (Some(k), Some(a)) = (st.plan.fail_after, answer_i) {
                if a >= k {
                    if a == k {
                        st.next += 1;
                        let err = ProviderError::new(
                            ErrorCode::UpstreamError,
                            format!("demo provider failed after {k} tokens (fail_after)"),
                        );
                        return Some((Err(err), st));
                    }
                    return None;
                }
            }
            if answer_i.is_some_and(|a| a >= st.plan.tokens) {
                return None;
            }
            let start = *st.start.get_or_insert_with(Instant::now);
            if st.plan.tokens_per_sec > 0.0 {
                // Token i is due (i+1)/rate after the start, like a model that takes one
                // interval per token (the first included). Scheduling from the start, not from
                // the last token, keeps the rate from drifting.
                let due = start + Duration::from_secs_f64((i + 1) as f64 / st.plan.tokens_per_sec);
                tokio::time::sleep_until(due).await;
            } else if i % 64 == 63 {
                // As fast as possible, but let the rest of the runtime breathe.
                tokio::task::yield_now().await;
            }
            st.next += 1;
            let event = match answer_i {
                Some(a) => ProviderEvent::Token(DemoProvider::token(&st.prompt, st.turns, a)),
                None => ProviderEvent::Reasoning(DemoProvider::thought(&st.prompt, i)),
            };
            Some((Ok(event), st))
        }))
    }

    fn name(&self) -> &'static str {
        "demo"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;
    use uuid::Uuid;

    fn request(content: &str) -> GenerationRequest {
        GenerationRequest {
            session_id: Uuid::new_v4(),
            message_id: Uuid::new_v4(),
            content: content.into(),
            history: vec![],
        }
    }

    #[test]
    fn directive_overrides_defaults() {
        let p = DemoProvider {
            tokens: 60,
            tokens_per_sec: 30.0,
        };
        assert_eq!(
            p.plan("!demo tokens=5 rate=0 fail_after=2\nhello"),
            DemoPlan {
                tokens: 5,
                tokens_per_sec: 0.0,
                fail_after: Some(2),
                reasoning: 0,
            }
        );
        assert_eq!(
            p.plan("hello"),
            DemoPlan {
                tokens: 60,
                tokens_per_sec: 30.0,
                fail_after: None,
                reasoning: 0,
            }
        );
        assert_eq!(p.plan("!demo rate=-1 tokens=x").tokens_per_sec, 30.0);
    }

    #[tokio::test]
    async fn deterministic_and_fails_on_demand() {
        let p = DemoProvider {
            tokens: 60,
            tokens_per_sec: 30.0,
        };
        let prompt = "!demo tokens=10 rate=0\nhi";
        let got: Vec<_> = p.stream(request(prompt)).collect().await;
        let text: String = got
            .into_iter()
            .map(|e| match e {
                Ok(ProviderEvent::Token(t)) => t,
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        assert_eq!(text, p.answer(prompt, 0));
        assert_eq!(text.split(' ').count(), 10);

        let got: Vec<_> = p
            .stream(request("!demo tokens=10 rate=0 fail_after=3"))
            .collect()
            .await;
        assert_eq!(got.len(), 4);
        assert!(matches!(&got[3], Err(e) if e.code == ErrorCode::UpstreamError));

        // Reasoning first, then the same answer as without it.
        let prompt = "!demo tokens=10 rate=0 reasoning=3\nhi";
        let got: Vec<_> = p.stream(request(prompt)).collect().await;
        assert_eq!(got.len(), 13);
        assert!(got[..3]
            .iter()
            .all(|e| matches!(e, Ok(ProviderEvent::Reasoning(_)))));
        let text: String = got[3..]
            .iter()
            .map(|e| match e {
                Ok(ProviderEvent::Token(t)) => t.clone(),
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        assert_eq!(text, p.answer(prompt, 0));
    }
}
