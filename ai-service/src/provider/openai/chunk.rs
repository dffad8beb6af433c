//! The fields of one `chat.completion.chunk` that the decoder reads, and the two ways to get
//! them from an event's JSON.
//!
//! Contract: [`Chunk::parse`] reads an event's text into a [`Chunk`] that borrows its strings
//! from that text wherever they hold no escapes, and builds nothing for the fields it does not
//! read (`id`, `model`, `logprobs`, `system_fingerprint`, …: serde skips them). That is the
//! per-token path, and it must stay cheap: a tree of `serde_json::Value`s per token (a map per
//! object, a `String` per key and value) was the provider path's largest cost under S8.
//!
//! The typed reading is strict about types (a `finish_reason` that is a number fails it),
//! and dialects differ, so a text it cannot read falls back to [`Chunk::from_value`] over a
//! `Value`, which reads exactly what the old `Value`-only decoder read: the same pointers,
//! `as_str`/`as_u64` that ignore a field of another type. Only objects are read the typed way
//! (serde's derived structs would also take an array's elements as fields). A text that is
//! not JSON at all is [`NotJson`].

use std::borrow::Cow;

use serde::{Deserialize, Deserializer};
use serde_json::Value;
use shared_proto::Usage;

/// What the decoder reads of one chunk.
#[derive(Debug, Default, Deserialize)]
pub(super) struct Chunk<'a> {
    /// A non-null `error` (some servers report failures mid-stream this way); kept as a
    /// `Value` for `redact::error_text`, built only when present.
    #[serde(default, deserialize_with = "non_null_value")]
    pub(super) error: Option<Value>,
    #[serde(default)]
    pub(super) usage: Option<RawUsage>,
    #[serde(default, borrow)]
    pub(super) choices: Option<Vec<Choice<'a>>>,
}

/// One element of `choices`.
#[derive(Debug, Default, Deserialize)]
pub(super) struct Choice<'a> {
    /// Missing means 0 (servers that never send `n > 1` may leave it out).
    #[serde(default)]
    pub(super) index: Option<u64>,
    #[serde(default, borrow)]
    pub(super) delta: Option<Delta<'a>>,
    #[serde(default, borrow, deserialize_with = "opt_cow")]
    pub(super) finish_reason: Option<Cow<'a, str>>,
}

/// `choices[i].delta`.
#[derive(Debug, Default, Deserialize)]
pub(super) struct Delta<'a> {
    #[serde(default, borrow, deserialize_with = "opt_cow")]
    pub(super) content: Option<Cow<'a, str>>,
    /// vLLM, DeepSeek, llama.cpp.
    #[serde(default, borrow, deserialize_with = "opt_cow")]
    pub(super) reasoning_content: Option<Cow<'a, str>>,
    /// gpt-oss, OpenRouter.
    #[serde(default, borrow, deserialize_with = "opt_cow")]
    pub(super) reasoning: Option<Cow<'a, str>>,
}

/// `usage`: each count read if it is a non-negative integer.
#[derive(Debug, Default, Deserialize)]
pub(super) struct RawUsage {
    #[serde(default)]
    prompt_tokens: Option<u64>,
    #[serde(default)]
    completion_tokens: Option<u64>,
    #[serde(default)]
    total_tokens: Option<u64>,
}

/// The event's text is not JSON (a proxy's ping, a vendor extension).
#[derive(Debug, thiserror::Error)]
#[error("not JSON: {0}")]
pub(super) struct NotJson(#[from] serde_json::Error);

impl<'a> Chunk<'a> {
    /// Reads `data` (one event's text): the borrowing typed reading first, the lenient one
    /// over a `Value` when the typed one fails.
    pub(super) fn parse(data: &'a str) -> Result<Chunk<'a>, NotJson> {
        // Only an object goes the typed way: serde's derived structs also accept an array
        // (fields by position), which the `Value` decoder never read as a chunk.
        if data.starts_with('{') {
            if let Ok(chunk) = serde_json::from_str::<Chunk<'a>>(data) {
                return Ok(chunk);
            }
        }
        let value: Value = serde_json::from_str(data)?;
        Ok(Chunk::from_value(&value).into_owned())
    }

    /// The lenient reading: what the `Value`-only decoder read, field by field.
    pub(super) fn from_value(value: &'a Value) -> Chunk<'a> {
        let text = |v: &'a Value, p: &str| v.pointer(p).and_then(Value::as_str).map(Cow::Borrowed);
        let choices = value.get("choices").and_then(Value::as_array).map(|cs| {
            cs.iter()
                .map(|c| Choice {
                    index: Some(c.get("index").and_then(Value::as_u64).unwrap_or(0)),
                    delta: Some(Delta {
                        content: text(c, "/delta/content"),
                        reasoning_content: text(c, "/delta/reasoning_content"),
                        reasoning: text(c, "/delta/reasoning"),
                    }),
                    finish_reason: text(c, "/finish_reason"),
                })
                .collect()
        });
        Chunk {
            error: value.get("error").filter(|e| !e.is_null()).cloned(),
            usage: value.get("usage").and_then(RawUsage::from_value),
            choices,
        }
    }

    /// The same chunk owning its strings (the fallback's `Value` does not outlive
    /// [`Chunk::parse`]).
    fn into_owned(self) -> Chunk<'static> {
        let own = |s: Option<Cow<'_, str>>| s.map(|s| Cow::Owned(s.into_owned()));
        Chunk {
            error: self.error,
            usage: self.usage,
            choices: self.choices.map(|cs| {
                cs.into_iter()
                    .map(|c| Choice {
                        index: c.index,
                        delta: c.delta.map(|d| Delta {
                            content: own(d.content),
                            reasoning_content: own(d.reasoning_content),
                            reasoning: own(d.reasoning),
                        }),
                        finish_reason: own(c.finish_reason),
                    })
                    .collect()
            }),
        }
    }
}

impl RawUsage {
    /// The lenient reading of a `usage` value (`None` unless it is an object).
    pub(super) fn from_value(value: &Value) -> Option<RawUsage> {
        let obj = value.as_object()?;
        let get = |k: &str| obj.get(k).and_then(Value::as_u64);
        Some(RawUsage {
            prompt_tokens: get("prompt_tokens"),
            completion_tokens: get("completion_tokens"),
            total_tokens: get("total_tokens"),
        })
    }

    /// The counts, if the server gave at least the prompt or the completion count (a missing
    /// one is 0; a missing total is their sum).
    pub(super) fn to_usage(&self) -> Option<Usage> {
        if self.prompt_tokens.is_none() && self.completion_tokens.is_none() {
            return None;
        }
        let prompt = self.prompt_tokens.unwrap_or(0);
        let completion = self.completion_tokens.unwrap_or(0);
        Some(Usage::reported(
            prompt,
            completion,
            self.total_tokens
                .unwrap_or_else(|| prompt.saturating_add(completion)),
        ))
    }
}

/// `Option<Cow<str>>` that borrows: serde's own `Option<Cow<str>>` always copies.
fn opt_cow<'de: 'a, 'a, D: Deserializer<'de>>(d: D) -> Result<Option<Cow<'a, str>>, D::Error> {
    #[derive(Deserialize)]
    struct Borrowed<'a>(#[serde(borrow)] Cow<'a, str>);
    Ok(Option::<Borrowed<'a>>::deserialize(d)?.map(|b| b.0))
}

/// An `error` field: `null` is no error.
fn non_null_value<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Ok(Option::<Value>::deserialize(d)?.filter(|v| !v.is_null()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHUNK: &str = r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,
        "model":"m","system_fingerprint":"fp","choices":[{"index":0,
        "delta":{"content":" lorem"},"logprobs":null,"finish_reason":null}],"usage":null}"#;

    #[test]
    fn the_typed_reading_borrows_plain_text_and_unescapes_the_rest() {
        let c = Chunk::parse(CHUNK).unwrap();
        let choice = &c.choices.as_ref().unwrap()[0];
        let content = choice.delta.as_ref().unwrap().content.as_ref().unwrap();
        assert!(matches!(content, Cow::Borrowed(" lorem")), "{content:?}");
        assert!(c.error.is_none() && c.usage.is_none());
        let c = Chunk::parse(r#"{"choices":[{"delta":{"content":"a\n\"b\""}}]}"#).unwrap();
        let choice = &c.choices.as_ref().unwrap()[0];
        assert_eq!(
            choice.delta.as_ref().unwrap().content.as_deref(),
            Some("a\n\"b\"")
        );
        assert_eq!(choice.index, None);
    }

    #[test]
    fn a_field_of_another_type_falls_back_to_the_lenient_reading() {
        // `finish_reason` as a number: the typed reading fails; the lenient one ignores the
        // field and still finds the text, as the `Value` decoder did.
        let c = Chunk::parse(
            r#"{"choices":[{"index":"0","delta":{"content":"x"},"finish_reason":1}]}"#,
        )
        .unwrap();
        let choice = &c.choices.as_ref().unwrap()[0];
        assert_eq!(choice.index, Some(0));
        assert_eq!(choice.delta.as_ref().unwrap().content.as_deref(), Some("x"));
        assert!(choice.finish_reason.is_none());
        // `usage` that is not an object is no usage; `choices` that is not an array, none.
        let c = Chunk::parse(r#"{"usage":5,"choices":{}}"#).unwrap();
        assert!(c.usage.is_none() && c.choices.is_none());
        assert!(Chunk::parse("ping").is_err());
        // An array is no chunk (the typed reading would take its elements as fields).
        let c = Chunk::parse(r#"[{"message":"x"},null,null]"#).unwrap();
        assert!(c.error.is_none() && c.choices.is_none());
    }

    #[test]
    fn usage_counts() {
        let u = |s: &str| Chunk::parse(s).unwrap().usage.and_then(|u| u.to_usage());
        assert_eq!(
            u(r#"{"usage":{"prompt_tokens":3,"completion_tokens":4}}"#),
            Some(Usage::reported(3, 4, 7))
        );
        assert_eq!(u(r#"{"usage":{}}"#), None);
        assert_eq!(u(r#"{"usage":null}"#), None);
        // A negative count is not a count (lenient reading, as before).
        assert_eq!(
            u(r#"{"usage":{"prompt_tokens":-1,"completion_tokens":2}}"#),
            Some(Usage::reported(0, 2, 2))
        );
    }

    #[test]
    fn a_null_error_is_no_error() {
        assert!(Chunk::parse(r#"{"error":null}"#).unwrap().error.is_none());
        let c = Chunk::parse(r#"{"error":{"message":"boom"}}"#).unwrap();
        assert_eq!(c.error.unwrap()["message"], "boom");
    }
}
