//! TLS to Redis with real processes: a `redis-server` that only speaks TLS (`--port 0`), with
//! a CA and certificates made by the test, and the real binaries.
//!
//! - a chat streams over `rediss://` with the test CA, over mutual TLS, and over
//!   `rediss-sentinel://` before and after a failover;
//! - a `rediss://` URL never ends in plaintext: against a plaintext server, with an unknown
//!   CA, with a certificate for another host name, or without the client certificate a server
//!   requires, the service stays not-ready (`/readyz` 503, while a control instance on a good
//!   URL becomes ready) and logs the cause exactly once however often it retries;
//! - bad TLS settings (unreadable or invalid PEM, a certificate without its key, TLS files
//!   with a plaintext URL) exit 2 with one line.

use std::process::Command;
use std::time::{Duration, Instant};

use e2e_tests::metrics::metric;
use e2e_tests::process::{bin_path, exits_2_with_one_line};
use e2e_tests::{
    free_port, AiService, ClientCerts, Gateway, Proc, RedisSentinels, RedisServer, TestPki,
    WsClient, PATIENCE,
};
use shared_proto::FinalStatus;

/// One chat on a fresh connection, to its end (re-sent while the store is reported
/// unavailable: after a failover each process reconnects at its own moment).
async fn chat_completes(gateway: &Gateway) {
    let mut c = WsClient::connect(&gateway.ws_url()).await;
    let id = c
        .chat_until_accepted("!demo tokens=20 rate=0\nhello over TLS")
        .await;
    let (t, _) = c.collect(id).await;
    t.assert_well_formed();
    assert_eq!(t.status(), Some(FinalStatus::Completed));
    assert!(!t.text.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chat_streams_over_tls_with_the_test_ca() {
    let pki = TestPki::new();
    let cert = pki.server_cert("server", &["localhost", "127.0.0.1"]);
    let redis = RedisServer::start_tls(&pki, &cert, ClientCerts::NotAsked);
    let env = [("REDIS_TLS_CA_FILE", pki.ca_cert.as_str())];
    let ai = AiService::start(&redis.url(), &env).await;
    let gateway = Gateway::start(&redis.url(), &ai.url(), &env).await;
    chat_completes(&gateway).await;
    // The server has no plaintext port at all: these connections can only be TLS.
    assert!(redis
        .cli(&["info", "clients"])
        .contains("connected_clients:"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chat_streams_over_mutual_tls() {
    let pki = TestPki::new();
    let cert = pki.server_cert("server", &["127.0.0.1"]);
    let redis = RedisServer::start_tls(&pki, &cert, ClientCerts::Required);
    let env = [
        ("REDIS_TLS_CA_FILE", pki.ca_cert.as_str()),
        ("REDIS_TLS_CERT_FILE", pki.client_cert.as_str()),
        ("REDIS_TLS_KEY_FILE", pki.client_key.as_str()),
    ];
    let ai = AiService::start(&redis.url(), &env).await;
    let gateway = Gateway::start(&redis.url(), &ai.url(), &env).await;
    chat_completes(&gateway).await;
}

/// `rediss-sentinel://`: TLS to the Sentinels and to the master they name, before and after a
/// failover (the promoted replica is verified like the first master).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinel_over_tls_streams_and_follows_a_failover() {
    let pki = TestPki::new();
    let cert = pki.server_cert("server", &["127.0.0.1"]);
    let mut sentinels = RedisSentinels::start_tls(&pki, &cert);
    assert!(sentinels.url().starts_with("rediss-sentinel://"));
    let env = [("REDIS_TLS_CA_FILE", pki.ca_cert.as_str())];
    let ai = AiService::start(&sentinels.url(), &env).await;
    let gateway = Gateway::start(&sentinels.url(), &ai.url(), &env).await;
    chat_completes(&gateway).await;
    sentinels.kill_master_and_wait_failover();
    chat_completes(&gateway).await;
}

/// `bin` (`ai-service` or `gateway`) on `redis_url`, which may never become ready; stderr
/// captured, no `REDIS_TLS_*` but those in `env`. Returns it and the base URL of its admin
/// port (`/readyz`, `/metrics`).
fn spawn_service(bin: &str, redis_url: &str, env: &[(&str, &str)]) -> (Proc, String) {
    let (port, admin_port) = (free_port(), free_port());
    let mut cmd = Command::new(bin_path(bin));
    cmd.env("AI_ADDR", format!("127.0.0.1:{port}"))
        .env("GATEWAY_ADDR", format!("127.0.0.1:{port}"))
        .env("ADMIN_ADDR", format!("127.0.0.1:{admin_port}"))
        .env("AI_SERVICE_URL", "http://127.0.0.1:9")
        .env("REDIS_URL", redis_url)
        .env("RUST_LOG", "info")
        .env_remove("REDIS_TLS_CA_FILE")
        .env_remove("REDIS_TLS_CERT_FILE")
        .env_remove("REDIS_TLS_KEY_FILE");
    for (k, v) in env {
        cmd.env(k, v);
    }
    (
        Proc::spawn_capturing(bin, cmd),
        format!("http://127.0.0.1:{admin_port}"),
    )
}

fn spawn_ai(redis_url: &str, env: &[(&str, &str)]) -> (Proc, String) {
    spawn_service("ai-service", redis_url, env)
}

/// `GET base/readyz` → status (None: not listening yet).
async fn readyz(base: &str) -> Option<u16> {
    let r = reqwest::Client::new()
        .get(format!("{base}/readyz"))
        .timeout(Duration::from_secs(3))
        .send()
        .await
        .ok()?;
    Some(r.status().as_u16())
}

/// A service that must stay not-ready for `cause`.
struct Refused {
    what: &'static str,
    proc: Proc,
    base: String,
    /// Text the one cause line must contain.
    cause: &'static str,
}

impl Refused {
    /// Waits until the cause was logged and the client retried at least 5 times since (its
    /// failure counter, read from `/metrics`), then checks the line is there exactly once and
    /// `/readyz` answers 503.
    async fn check(&self) {
        let start = Instant::now();
        loop {
            let failures = metric(&self.base, "streamline_store_redis_connect_failures_total")
                .await
                .unwrap_or(0.0);
            if failures >= 5.0 && self.proc.stderr().contains(self.cause) {
                break;
            }
            assert!(
                start.elapsed() < PATIENCE,
                "{}: no {:?} line after {failures} failures; stderr:\n{}",
                self.what,
                self.cause,
                self.proc.stderr()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let log = self.proc.stderr();
        let lines: Vec<&str> = log.lines().filter(|l| l.contains("redis: TLS")).collect();
        assert_eq!(
            lines.len(),
            1,
            "{}: expected one cause line, got:\n{log}",
            self.what
        );
        assert!(lines[0].contains(self.cause), "{}: {}", self.what, lines[0]);
        assert_eq!(readyz(&self.base).await, Some(503), "{}", self.what);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_handshake_keeps_the_service_not_ready_with_one_line_naming_the_cause() {
    let pki = TestPki::new();
    let good = pki.server_cert("server", &["127.0.0.1"]);
    let other_host = pki.server_cert("other", &["redis.invalid"]);
    let plaintext = RedisServer::start();
    let tls = RedisServer::start_tls(&pki, &good, ClientCerts::NotAsked);
    let wrong_name = RedisServer::start_tls(&pki, &other_host, ClientCerts::NotAsked);
    let mutual = RedisServer::start_tls(&pki, &good, ClientCerts::Required);
    let ca = [("REDIS_TLS_CA_FILE", pki.ca_cert.as_str())];
    let plaintext_as_tls = format!("rediss://127.0.0.1:{}", plaintext.port);

    let mut refused = Vec::new();
    let mut add = |what, (proc, base): (Proc, String), cause| {
        refused.push(Refused {
            what,
            proc,
            base,
            cause,
        })
    };
    add(
        "ai-service, rediss:// to a plaintext server",
        spawn_ai(&plaintext_as_tls, &ca),
        "the server did not answer TLS within the connection timeout",
    );
    add(
        "gateway, rediss:// to a plaintext server",
        spawn_service("gateway", &plaintext_as_tls, &ca),
        "the server did not answer TLS within the connection timeout",
    );
    add(
        "ai-service, unknown CA (system roots only)",
        spawn_ai(&tls.url(), &[]),
        "not signed by a trusted CA",
    );
    add(
        "ai-service, certificate for another host name",
        spawn_ai(&wrong_name.url(), &ca),
        "not valid for the host name",
    );
    add(
        "ai-service, mutual TLS without a client certificate",
        spawn_ai(&mutual.url(), &ca),
        "wants a client certificate",
    );

    // The control: the same binary, the same CA, a good URL, becomes ready.
    let (_control, control_base) = spawn_ai(&tls.url(), &ca);
    let start = Instant::now();
    while readyz(&control_base).await != Some(200) {
        assert!(start.elapsed() < PATIENCE, "the control never became ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for r in &refused {
        assert_eq!(
            readyz(&r.base).await,
            Some(503),
            "{} is ready (or down) while its TLS cannot work",
            r.what
        );
    }
    for r in &refused {
        r.check().await;
    }
}

#[test]
fn bad_tls_settings_exit_2_with_one_line() {
    let pki = TestPki::new();
    let garbage = pki.dir.file("garbage.pem");
    std::fs::write(&garbage, "not a certificate\n").unwrap();
    let broken = pki.dir.file("broken.pem");
    std::fs::write(
        &broken,
        "-----BEGIN CERTIFICATE-----\n@@@@\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let tls_url = "rediss://127.0.0.1:1";
    for bin in ["ai-service", "gateway", "streamline"] {
        exits_2_with_one_line(
            bin,
            &[
                ("REDIS_URL", tls_url),
                ("REDIS_TLS_CA_FILE", "/nonexistent/ca.pem"),
            ],
            "REDIS_TLS_CA_FILE: cannot read /nonexistent/ca.pem",
        );
        exits_2_with_one_line(
            bin,
            &[("REDIS_URL", tls_url), ("REDIS_TLS_CA_FILE", &garbage)],
            "holds no PEM certificate",
        );
        exits_2_with_one_line(
            bin,
            &[("REDIS_URL", tls_url), ("REDIS_TLS_CA_FILE", &broken)],
            "is not valid PEM",
        );
        exits_2_with_one_line(
            bin,
            &[
                ("REDIS_URL", tls_url),
                ("REDIS_TLS_CERT_FILE", &pki.client_cert),
            ],
            "set both or neither",
        );
        exits_2_with_one_line(
            bin,
            &[
                ("REDIS_URL", tls_url),
                ("REDIS_TLS_CERT_FILE", &pki.client_cert),
                ("REDIS_TLS_KEY_FILE", &pki.ca_cert),
            ],
            "REDIS_TLS_KEY_FILE",
        );
        // Asking for TLS must get TLS: TLS files with a plaintext URL are refused.
        exits_2_with_one_line(
            bin,
            &[
                ("REDIS_URL", "redis://127.0.0.1:1"),
                ("REDIS_TLS_CA_FILE", &pki.ca_cert),
            ],
            "is plaintext",
        );
        exits_2_with_one_line(
            bin,
            &[("REDIS_URL", "http://127.0.0.1:1")],
            "unknown scheme",
        );
    }
}
