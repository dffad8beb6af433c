//! The JSON body of a chat-completions request.
//!
//! Contract: the body asks for a streamed answer with a final usage chunk, and lists the
//! messages in conversation order (system prompt, then the history oldest first, then the new
//! user message). It is encoded once per generation and reused unchanged by every retry, so a
//! retry asks exactly the same question.

use bytes::Bytes;
use serde::Serialize;

use super::OpenAiConfig;
use crate::provider::{GenerationRequest, Role};

#[derive(Serialize)]
struct ChatRequest<'a> {
    model: &'a str,
    messages: Vec<ChatMessage<'a>>,
    stream: bool,
    stream_options: StreamOptions,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f32>,
}

#[derive(Serialize)]
struct ChatMessage<'a> {
    role: Role,
    content: &'a str,
}

#[derive(Serialize)]
struct StreamOptions {
    /// Asks for a final chunk with token counts (OpenAI, vLLM, Ollama and llama-server
    /// understand it; servers that do not simply ignore it).
    include_usage: bool,
}

/// The JSON body: system prompt, then the history in order, then the new user message.
pub(super) fn request_body(
    cfg: &OpenAiConfig,
    request: &GenerationRequest,
) -> serde_json::Result<Bytes> {
    let mut messages = Vec::with_capacity(request.history.len() + 2);
    if let Some(system) = &cfg.system_prompt {
        messages.push(ChatMessage {
            role: Role::System,
            content: system,
        });
    }
    messages.extend(request.history.iter().map(|turn| ChatMessage {
        role: turn.role,
        content: &turn.content,
    }));
    messages.push(ChatMessage {
        role: Role::User,
        content: &request.content,
    });
    let body = ChatRequest {
        model: &cfg.model,
        messages,
        stream: true,
        stream_options: StreamOptions {
            include_usage: true,
        },
        max_tokens: cfg.max_tokens,
        temperature: cfg.temperature,
    };
    serde_json::to_vec(&body).map(Bytes::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::Turn;
    use serde_json::Value;
    use uuid::Uuid;

    use crate::provider::openai::test_config as cfg;

    #[test]
    fn body_has_messages_in_order() {
        let mut c = cfg();
        c.system_prompt = Some("be brief".into());
        c.max_tokens = Some(64);
        let req = GenerationRequest {
            session_id: Uuid::new_v4(),
            message_id: Uuid::new_v4(),
            content: "now".into(),
            history: vec![
                Turn {
                    role: Role::User,
                    content: "hi".into(),
                },
                Turn {
                    role: Role::Assistant,
                    content: "hello".into(),
                },
            ],
            origin: crate::origin::Origin::detached(),
        };
        let body: Value = serde_json::from_slice(&request_body(&c, &req).unwrap()).unwrap();
        assert_eq!(
            body,
            serde_json::json!({
                "model": "llama3.2",
                "messages": [
                    {"role": "system", "content": "be brief"},
                    {"role": "user", "content": "hi"},
                    {"role": "assistant", "content": "hello"},
                    {"role": "user", "content": "now"},
                ],
                "stream": true,
                "stream_options": {"include_usage": true},
                "max_tokens": 64,
            })
        );
    }
}
