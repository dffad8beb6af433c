//! S2: steady streaming. One wave of chats at a modest rate; the target is the token latency.

use std::sync::Arc;

use serde_json::{json, Value};

use super::wave::{wave, WaveSpec};
use super::Ctx;

pub async fn s2_steady(ctx: Arc<Ctx>, spec: WaveSpec) -> Value {
    let (mut v, _, _, _) = wave(&ctx, spec).await;
    v["target"] = json!({"p99_ms_max": 20.0});
    v
}
