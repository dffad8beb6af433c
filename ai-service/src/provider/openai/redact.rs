//! What we say about the upstream in our own error messages, made safe to say.
//!
//! Contract: every piece of upstream text (an error body, an `error` event, a reqwest error
//! and its causes) that ends up in a `ProviderError` passes through here first, and leaves
//! without the API key (some servers echo the key they rejected), without control characters
//! (it is logged and shown to users) and at most [`MAX_UPSTREAM_MESSAGE_CHARS`] characters
//! long (plus an ellipsis). reqwest errors also lose their URL, which may carry credentials.

use serde_json::Value;

use super::OpenAiConfig;

/// How long an upstream message may be inside our error messages.
const MAX_UPSTREAM_MESSAGE_CHARS: usize = 300;

/// The human part of an error body: `{"error":{"message":..}}` (OpenAI, vLLM, llama-server),
/// `{"error":".."}` (Ollama), `{"message":..}`, or the raw text. Scrubbed and truncated.
pub(super) fn upstream_message(body: &[u8], cfg: &OpenAiConfig) -> String {
    let text = match serde_json::from_slice::<Value>(body) {
        Ok(value) => match value.get("error").filter(|e| !e.is_null()) {
            Some(error) => return error_text(error, cfg),
            None => match value.get("message").and_then(Value::as_str) {
                Some(m) => m.to_owned(),
                None => value.to_string(),
            },
        },
        Err(_) => String::from_utf8_lossy(body).trim().to_owned(),
    };
    sanitize(&text, cfg)
}

/// The message of an `error` value, which servers send as an object or a bare string.
pub(super) fn error_text(error: &Value, cfg: &OpenAiConfig) -> String {
    let text = match error {
        Value::String(s) => s.clone(),
        other => match other.get("message").and_then(Value::as_str) {
            Some(m) => m.to_owned(),
            None => other.to_string(),
        },
    };
    sanitize(&text, cfg)
}

/// Removes the API key, collapses control characters and truncates.
fn sanitize(text: &str, cfg: &OpenAiConfig) -> String {
    let mut text = text.to_owned();
    if let Some(key) = cfg.api_key.as_deref().filter(|k| !k.is_empty()) {
        text = text.replace(key, "[redacted]");
    }
    let mut out: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_UPSTREAM_MESSAGE_CHARS)
        .collect();
    if text.chars().nth(MAX_UPSTREAM_MESSAGE_CHARS).is_some() {
        out.push('…');
    }
    out
}

/// A reqwest error with its causes ("error sending request: ... Connection refused"), without
/// the URL and without the key.
pub(super) fn describe_reqwest(error: reqwest::Error, cfg: &OpenAiConfig) -> String {
    let error = error.without_url();
    let mut text = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    sanitize(&text, cfg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::openai::test_config as cfg;

    #[test]
    fn error_messages_are_scrubbed_and_truncated() {
        let mut c = cfg();
        c.api_key = Some("sk-abc123".into());
        let body = br#"{"error":{"message":"Incorrect API key provided: sk-abc123","type":"invalid_request_error"}}"#;
        assert_eq!(
            upstream_message(body, &c),
            "Incorrect API key provided: [redacted]"
        );
        assert_eq!(
            upstream_message(br#"{"error":"model not found"}"#, &c),
            "model not found"
        );
        assert_eq!(upstream_message(b"  Bad Gateway\n", &c), "Bad Gateway");
        let long = "x".repeat(1000);
        let msg = upstream_message(long.as_bytes(), &c);
        assert_eq!(msg.chars().count(), MAX_UPSTREAM_MESSAGE_CHARS + 1);
    }
}
