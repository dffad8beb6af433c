//! `loadgen floor-server`: the least any gateway must do per token, to measure S3's floor.
//!
//! Contract: it speaks just enough of protocol v1 for the wave clients of S2/S3 (`welcome`,
//! `ack`, `chunk`, `done`). On a `chat` whose content starts with `!demo tokens=N rate=R` (read
//! as fake-openai reads it, [`Plan::steered`]) it writes N `chunk` frames, R per second (rate 0:
//! as fast as the socket takes them), each serialised by shared-proto with `ts` = now,
//! then `done{completed}`. There is no Redis, no producer, no log, no cursor, no check: what is
//! left is the socket work of the last hop (WebSocket framing and one write per frame), on a
//! tokio runtime with as many workers as the gateway has actix workers. So S3's search run
//! against it (`bench/run.sh` does, after S3 itself), with the same client measuring, is an
//! upper bound for any gateway on the machine: the real stack adds Redis, the ai-service and
//! the gateway's routing to these costs.
//!
//! Not a test double for the gateway and never part of a test: a measuring instrument.

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use shared_proto::{ClientFrame, FinalStatus, ServerFrame};
use test_support::upstream::Plan;
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;

/// What a chat without a `!demo` line gets (so a stray client still gets an answer).
const DEFAULT_PLAN: Plan = Plan {
    tokens: 20,
    rate: 50.0,
};

/// Words of about the demo model's length (its tokens average 6–7 bytes with the space).
const WORDS: [&str; 8] = [
    " stream", " token", " redis", " cancel", " socket", " answer", " model", " frame",
];

/// Serves until the process is killed. `workers`: runtime threads.
pub fn serve(addr: SocketAddr, workers: usize) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers.max(1))
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    rt.block_on(async move {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
        eprintln!("loadgen floor-server: listening on {addr}");
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    tokio::spawn(connection(stream));
                }
                Err(e) => eprintln!("loadgen floor-server: accept: {e}"),
            }
        }
    })
}

async fn connection(stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else {
        return;
    };
    let welcome = ServerFrame::Welcome {
        session_id: Uuid::new_v4(),
        resume_token: String::new(),
        protocol: shared_proto::PROTOCOL_VERSION,
        heartbeat_interval_ms: 30_000,
        active: Vec::new(),
    };
    if ws.send(Message::text(welcome.to_json())).await.is_err() {
        return;
    }
    while let Some(Ok(message)) = ws.next().await {
        let Message::Text(text) = message else {
            if matches!(message, Message::Close(_)) {
                return;
            }
            continue;
        };
        let Ok(ClientFrame::Chat {
            content,
            message_id,
            ..
        }) = serde_json::from_str::<ClientFrame>(&text)
        else {
            continue;
        };
        let message_id = message_id.unwrap_or_else(Uuid::new_v4);
        let plan = DEFAULT_PLAN.steered(Some(&content));
        if ws
            .send(Message::text(ServerFrame::Ack { message_id }.to_json()))
            .await
            .is_err()
        {
            return;
        }
        // Bounded so that the period is neither zero (interval panics) nor beyond Duration.
        let mut tick = (plan.rate > 0.0).then(|| {
            tokio::time::interval(Duration::from_secs_f64(1.0 / plan.rate.clamp(1e-3, 1e6)))
        });
        for seq in 1..=plan.tokens {
            if let Some(tick) = tick.as_mut() {
                tick.tick().await;
            }
            let chunk = ServerFrame::Chunk {
                message_id,
                seq,
                first_seq: None,
                delta: WORDS[(seq % WORDS.len() as u64) as usize].to_string(),
                kind: Default::default(),
                ts: Some(shared_proto::now_ms()),
            };
            if ws.send(Message::text(chunk.to_json())).await.is_err() {
                return;
            }
        }
        let done = ServerFrame::Done {
            message_id,
            seq: plan.tokens,
            status: FinalStatus::Completed,
            error: None,
            usage: None,
        };
        if ws.send(Message::text(done.to_json())).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_demo_directive_of_a_chat() {
        assert_eq!(
            DEFAULT_PLAN.steered(Some("!demo tokens=400 rate=50\nload test")),
            Plan {
                tokens: 400,
                rate: 50.0
            }
        );
        assert_eq!(DEFAULT_PLAN.steered(Some("hello")), DEFAULT_PLAN);
    }
}
