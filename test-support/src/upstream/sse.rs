//! OpenAI's Chat Completions streaming wire format: `chat.completion.chunk` objects, each
//! sent as one `data:` event (one chunk of the chunked body), a usage chunk with
//! `"choices": []` when the request asked for it, then `data: [DONE]`.

use serde_json::{json, Value};
use tokio::net::tcp::OwnedWriteHalf;

use super::http;

/// The fields every chunk of one answer shares.
pub(crate) fn base_chunk(model: &str) -> Value {
    json!({
        "id": "chatcmpl-fake0123456789",
        "object": "chat.completion.chunk",
        "created": 1_700_000_000u64,
        "model": model,
        "system_fingerprint": "fp_fake",
    })
}

/// A `chat.completion.chunk` with one choice; with `include_usage`, OpenAI puts
/// `"usage": null` on every chunk but the last.
pub(crate) fn chunk_json(
    model: &str,
    delta: Value,
    finish_reason: Option<&str>,
    include_usage: bool,
) -> Value {
    let mut chunk = base_chunk(model);
    chunk["choices"] = json!([{
        "index": 0,
        "delta": delta,
        "logprobs": null,
        "finish_reason": finish_reason,
    }]);
    if include_usage {
        chunk["usage"] = Value::Null;
    }
    chunk
}

/// The role-only first delta of every answer.
pub(crate) fn role_chunk(model: &str, include_usage: bool) -> Value {
    chunk_json(
        model,
        json!({"role": "assistant", "content": ""}),
        None,
        include_usage,
    )
}

/// The last chunk when usage was asked for: no choices, the token counts.
pub(crate) fn usage_chunk(model: &str, prompt: u64, completion: u64) -> Value {
    let mut usage = base_chunk(model);
    usage["choices"] = json!([]);
    usage["usage"] = json!({
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    });
    usage
}

/// `data: <payload>\n\n` as one chunk of the chunked body.
pub(crate) fn data_chunk(payload: &str) -> Vec<u8> {
    http::chunk(format!("data: {payload}\n\n").as_bytes())
}

/// Writes `data: <payload>\n\n` as one chunk.
pub(crate) async fn data(wr: &mut OwnedWriteHalf, payload: &str) -> std::io::Result<()> {
    http::write(wr, &data_chunk(payload)).await
}
