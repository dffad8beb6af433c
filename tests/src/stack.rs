//! The two binaries, started as real processes against a test Redis.

use std::process::Command;
use std::time::{Duration, Instant};

use shared_proto::api::MessageView;
use uuid::Uuid;

use crate::process::{bin_path, free_port, Proc, RedisServer};
use crate::PATIENCE;

/// Waits until `GET url` answers 200.
pub async fn wait_ready(url: &str) {
    let http = reqwest::Client::new();
    let start = Instant::now();
    while start.elapsed() < PATIENCE {
        if let Ok(r) = http.get(url).timeout(Duration::from_secs(2)).send().await {
            if r.status().is_success() {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{url} did not become ready");
}

/// An ai-service process.
pub struct AiService {
    pub port: u16,
    /// Its admin port (`ADMIN_ADDR`): `/metrics`, the probes, `/admin/...`.
    pub admin_port: u16,
    pub replica_id: String,
    pub proc: Proc,
}

impl AiService {
    pub async fn start(redis_url: &str, env: &[(&str, &str)]) -> AiService {
        let (port, admin_port) = (free_port(), free_port());
        let replica_id = format!("ai-{port}");
        let mut cmd = Command::new(bin_path("ai-service"));
        cmd.env("AI_ADDR", format!("127.0.0.1:{port}"))
            .env("ADMIN_ADDR", format!("127.0.0.1:{admin_port}"))
            .env("REDIS_URL", redis_url)
            .env("REPLICA_ID", &replica_id)
            .env("SHUTDOWN_TIMEOUT", "5s");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let proc = Proc::spawn("ai-service", cmd);
        let ai = AiService {
            port,
            admin_port,
            replica_id,
            proc,
        };
        wait_ready(&format!("{}/readyz", ai.url())).await;
        ai
    }

    /// The HTTP API of this process.
    pub fn api(&self) -> AiApi {
        AiApi {
            port: self.port,
            admin_port: self.admin_port,
            replica_id: self.replica_id.clone(),
        }
    }

    pub fn url(&self) -> String {
        self.api().url()
    }

    /// `http://127.0.0.1:<admin port>`.
    pub fn admin_url(&self) -> String {
        self.api().admin_url()
    }

    /// `GET /v1/sessions/{sid}/messages/{mid}`.
    pub async fn message(&self, session_id: Uuid, message_id: Uuid) -> Option<MessageView> {
        self.api().message(session_id, message_id).await
    }

    /// `POST …/cancel` → (HTTP status, body).
    pub async fn cancel(&self, session_id: Uuid, message_id: Uuid) -> (u16, serde_json::Value) {
        self.api().cancel(session_id, message_id).await
    }

    /// Waits until the message reaches a terminal state; returns its view.
    pub async fn wait_terminal(&self, session_id: Uuid, message_id: Uuid) -> MessageView {
        self.api().wait_terminal(session_id, message_id).await
    }
}

/// The HTTP API of an ai-service, wherever it runs (its own process, or inside `streamline`).
#[derive(Debug, Clone)]
pub struct AiApi {
    pub port: u16,
    pub admin_port: u16,
    pub replica_id: String,
}

impl AiApi {
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The admin port: `/metrics`, the probes, `/admin/...`.
    pub fn admin_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.admin_port)
    }

    /// `GET /v1/sessions/{sid}/messages/{mid}`.
    pub async fn message(&self, session_id: Uuid, message_id: Uuid) -> Option<MessageView> {
        let url = format!(
            "{}/v1/sessions/{session_id}/messages/{message_id}",
            self.url()
        );
        let resp = reqwest::get(url).await.ok()?;
        if !resp.status().is_success() {
            return None;
        }
        resp.json().await.ok()
    }

    /// `POST …/cancel` → (HTTP status, body).
    pub async fn cancel(&self, session_id: Uuid, message_id: Uuid) -> (u16, serde_json::Value) {
        let url = format!(
            "{}/v1/sessions/{session_id}/messages/{message_id}/cancel",
            self.url()
        );
        let resp = reqwest::Client::new()
            .post(url)
            .send()
            .await
            .expect("cancel request");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(serde_json::Value::Null))
    }

    /// Waits until the message reaches a terminal state; returns its view.
    pub async fn wait_terminal(&self, session_id: Uuid, message_id: Uuid) -> MessageView {
        let start = Instant::now();
        while start.elapsed() < PATIENCE * 2 {
            let asked = Instant::now();
            if let Some(v) = self.message(session_id, message_id).await {
                if v.state.is_terminal() {
                    return v;
                }
            }
            // A long answer makes every read long: poll no more than half the time, so the
            // test does not slow the producer it waits for.
            tokio::time::sleep(asked.elapsed().max(Duration::from_millis(20))).await;
        }
        panic!("message {message_id} did not finish");
    }
}

/// A gateway process.
pub struct Gateway {
    pub port: u16,
    /// Its admin port (`ADMIN_ADDR`): `/metrics` and the probes.
    pub admin_port: u16,
    pub proc: Proc,
}

impl Gateway {
    pub async fn start(redis_url: &str, ai_url: &str, env: &[(&str, &str)]) -> Gateway {
        Self::start_without(redis_url, ai_url, env, &[]).await
    }

    /// [`Gateway::start`] without some of the harness's own settings (e.g. `AUTH_SECRET`).
    pub async fn start_without(
        redis_url: &str,
        ai_url: &str,
        env: &[(&str, &str)],
        without: &[&str],
    ) -> Gateway {
        let gw = Self::spawn(redis_url, ai_url, env, without);
        wait_ready(&format!("{}/readyz", gw.admin_url())).await;
        gw
    }

    /// Starts the process and returns at once, ready or not.
    pub fn spawn(redis_url: &str, ai_url: &str, env: &[(&str, &str)], without: &[&str]) -> Gateway {
        let (port, admin_port) = (free_port(), free_port());
        let mut cmd = Command::new(bin_path("gateway"));
        cmd.env("GATEWAY_ADDR", format!("127.0.0.1:{port}"))
            .env("ADMIN_ADDR", format!("127.0.0.1:{admin_port}"))
            .env("REDIS_URL", redis_url)
            .env("AI_SERVICE_URL", ai_url)
            .env("AUTH_SECRET", crate::auth::TEST_AUTH_SECRET)
            .env("SHUTDOWN_TIMEOUT", "5s");
        for (k, v) in env {
            cmd.env(k, v);
        }
        for k in without {
            cmd.env_remove(k);
        }
        let proc = Proc::spawn("gateway", cmd);
        Gateway {
            port,
            admin_port,
            proc,
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `http://127.0.0.1:<admin port>`: `/metrics` and the probes.
    pub fn admin_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.admin_port)
    }

    pub fn ws_url(&self) -> String {
        format!("ws://127.0.0.1:{}/ws", self.port)
    }
}

/// Redis + one ai-service + one gateway: the smallest whole stack.
pub struct Stack {
    pub gateway: Gateway,
    pub ai: AiService,
    pub redis: RedisServer,
}

impl Stack {
    pub async fn start() -> Stack {
        Self::start_with(&[], &[]).await
    }

    pub async fn start_with(ai_env: &[(&str, &str)], gw_env: &[(&str, &str)]) -> Stack {
        let redis = RedisServer::start();
        let ai = AiService::start(&redis.url(), ai_env).await;
        let gateway = Gateway::start(&redis.url(), &ai.url(), gw_env).await;
        Stack { gateway, ai, redis }
    }
}
