//! Issue 16, point 3, end to end: the admin ports. `ADMIN_TOKEN` on the admin API (and
//! `/metrics` and the probes open on the admin port, gone from the public ports); the listing
//! of every running generation of the deployment on two ai-service replicas behind one Redis
//! (standalone and Cluster), whichever replica is asked; the cancels of a user's generations
//! and of a session's, each client getting its `done{cancelled}`. See `docs/PROTOCOL.md`.

use e2e_tests::auth::{test_jwt, with_token};
use e2e_tests::client::{absorb, Transcript};
use e2e_tests::handshake::code_of;
use e2e_tests::{AiService, Backend, Gateway, Stack, WsClient};
use serde_json::{json, Value};
use shared_proto::api::{BulkCancelResponse, GenerationView, GenerationsResponse};
use shared_proto::{FinalStatus, MessageState};
use uuid::Uuid;

const TOKEN: &str = "admin-token-0123456789";

/// `GET`/`POST` `url` with the admin token → (status, body).
async fn admin(method: reqwest::Method, url: &str, auth: Option<&str>) -> (u16, Value) {
    let mut req = reqwest::Client::new().request(method, url);
    if let Some(a) = auth {
        req = req.header("Authorization", a);
    }
    let r = req.send().await.expect("admin request");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn status_of(url: &str) -> u16 {
    reqwest::get(url).await.expect("request").status().as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_api_wants_its_token_and_metrics_left_the_public_ports() {
    let stack = Stack::start_with(&[("ADMIN_TOKEN", TOKEN)], &[]).await;
    let admin_url = stack.ai.admin_url();
    let sid = Uuid::new_v4();
    let routes = [
        (
            reqwest::Method::GET,
            format!("{admin_url}/admin/generations"),
        ),
        (
            reqwest::Method::GET,
            format!("{admin_url}/admin/generations?user=x"),
        ),
        (
            reqwest::Method::POST,
            format!("{admin_url}/admin/users/someone/cancel"),
        ),
        (
            reqwest::Method::POST,
            format!("{admin_url}/admin/sessions/{sid}/cancel"),
        ),
    ];
    let bearer = format!("Bearer {TOKEN}");
    for (method, url) in &routes {
        for wrong in [
            None,
            Some("Bearer wrong-token-0123456789"),
            Some(TOKEN),
            Some("Basic YWRtaW46YWRtaW4="),
        ] {
            let (status, body) = admin(method.clone(), url, wrong).await;
            assert_eq!(
                (status, code_of(&body)),
                (401, Some("unauthorized")),
                "{url}"
            );
            assert!(body["error"]["message"].is_string(), "{body}");
        }
        let (status, body) = admin(method.clone(), url, Some(&bearer)).await;
        assert_eq!(status, 200, "{url}: {body}");
    }
    let (_, body) = admin(
        reqwest::Method::GET,
        &format!("{admin_url}/admin/generations"),
        Some(&bearer),
    )
    .await;
    assert_eq!(body, json!({"generations": []}));
    let (_, body) = admin(
        reqwest::Method::POST,
        &format!("{admin_url}/admin/sessions/{sid}/cancel"),
        Some(&bearer),
    )
    .await;
    assert_eq!(body, json!({"cancelled": 0}));
    let (status, body) = admin(
        reqwest::Method::POST,
        &format!("{admin_url}/admin/sessions/not-a-uuid/cancel"),
        Some(&bearer),
    )
    .await;
    assert_eq!((status, code_of(&body)), (400, Some("invalid_message_id")));

    // The scrape and the probes need no token on the admin ports.
    let gw_admin = stack.gateway.admin_url();
    for base in [&admin_url, &gw_admin] {
        for path in ["/metrics", "/healthz", "/readyz"] {
            assert_eq!(
                status_of(&format!("{base}{path}")).await,
                200,
                "{base}{path}"
            );
        }
    }
    // The public ports serve no metrics (and no admin API); they keep their probes (the
    // gateway's /readyz is what the client library asks next to /ws).
    let ai = stack.ai.url();
    let gw = stack.gateway.base_url();
    for url in [
        format!("{ai}/metrics"),
        format!("{gw}/metrics"),
        format!("{ai}/admin/generations"),
        format!("{gw}/admin/generations"),
    ] {
        assert_eq!(status_of(&url).await, 404, "{url}");
    }
    for url in [
        format!("{gw}/healthz"),
        format!("{gw}/readyz"),
        format!("{ai}/healthz"),
        format!("{ai}/readyz"),
    ] {
        assert_eq!(status_of(&url).await, 200, "{url}");
    }
}

/// An ADMIN_TOKEN that is empty, short or not writable in a header stops the start: exit 2,
/// one line that names the setting, never the value.
#[test]
fn a_bad_admin_token_exits_2_with_one_line() {
    for bad in ["", "short", "0123456789 abcdef", "0123456789abcdéf"] {
        let out = std::process::Command::new(e2e_tests::process::bin_path("ai-service"))
            .env("ADMIN_TOKEN", bad)
            .env("AI_ADDR", "127.0.0.1:0")
            .env("ADMIN_ADDR", "127.0.0.1:0")
            .env("REDIS_URL", "redis://127.0.0.1:1")
            .output()
            .expect("run");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{bad:?}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{bad:?}: {stderr}");
        assert!(stderr.contains("ADMIN_TOKEN"), "{stderr}");
        assert!(bad.is_empty() || !stderr.contains(bad), "{stderr}");
    }
}

/// A client of `sub` on `gw` with a long answer under way (a few chunks read).
async fn streaming(ws_url: &str, sub: &str) -> (WsClient, Transcript) {
    let mut c = WsClient::connect(&with_token(ws_url, &test_jwt(sub))).await;
    let id = c.chat("!demo tokens=100000 rate=50\nendless").await;
    let mut t = Transcript::new(id);
    c.read_chunks(&mut t, 2).await;
    (c, t)
}

/// Reads until the answer's `done`; returns its status.
async fn done(c: &mut WsClient, t: &mut Transcript) -> Option<FinalStatus> {
    while t.done.is_none() {
        let f = c.frame().await;
        assert!(absorb(t, &f), "unexpected frame {f:?}");
    }
    t.assert_well_formed();
    t.status()
}

/// `GET /admin/generations{query}` on the admin port at `base`.
async fn generations(base: &str, query: &str) -> Vec<GenerationView> {
    let (status, body) = admin(
        reqwest::Method::GET,
        &format!("{base}/admin/generations{query}"),
        Some(&format!("Bearer {TOKEN}")),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let listed: GenerationsResponse = serde_json::from_value(body).expect("generations");
    listed.generations
}

/// `POST /admin/{path}/cancel` on the admin port at `base`.
async fn cancel(base: &str, path: &str) -> u64 {
    let (status, body) = admin(
        reqwest::Method::POST,
        &format!("{base}/admin/{path}/cancel"),
        Some(&format!("Bearer {TOKEN}")),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let r: BulkCancelResponse = serde_json::from_value(body).expect("cancelled");
    r.cancelled
}

/// (message id, user, owner) of each listed generation, sorted.
fn who(list: &[GenerationView]) -> Vec<(Uuid, Option<String>, String)> {
    let mut v: Vec<_> = list
        .iter()
        .map(|g| (g.message_id, g.user.clone(), g.owner.clone()))
        .collect();
    v.sort();
    v
}

async fn two_replicas_list_and_cancel_the_whole_deployment(backend: Backend) {
    let redis = backend.start_redis();
    let env = [("ADMIN_TOKEN", TOKEN)];
    let (ai1, ai2) = (
        AiService::start(&redis.url(), &env).await,
        AiService::start(&redis.url(), &env).await,
    );
    let gw1 = Gateway::start(&redis.url(), &ai1.url(), &[]).await;
    let gw2 = Gateway::start(&redis.url(), &ai2.url(), &[]).await;
    let (mut alice1, mut a1) = streaming(&gw1.ws_url(), "alice").await;
    let (mut alice2, mut a2) = streaming(&gw2.ws_url(), "alice").await;
    let (mut bob, mut b) = streaming(&gw1.ws_url(), "bob").await;
    // An anonymous generation, straight through the ai-service's API.
    let anon_sid = Uuid::new_v4();
    let anon_id = Uuid::new_v4();
    let r = reqwest::Client::new()
        .post(format!("{}/v1/sessions/{anon_sid}/messages", ai2.url()))
        .json(&json!({"message_id": anon_id, "content": "!demo tokens=100000 rate=50\nanon"}))
        .send()
        .await
        .expect("start");
    assert_eq!(r.status().as_u16(), 202);

    let alice = Some("alice".to_string());
    let expected = {
        let mut v = vec![
            (a1.message_id, alice.clone(), ai1.replica_id.clone()),
            (a2.message_id, alice.clone(), ai2.replica_id.clone()),
            (b.message_id, Some("bob".into()), ai1.replica_id.clone()),
            (anon_id, None, ai2.replica_id.clone()),
        ];
        v.sort();
        v
    };
    // Either replica lists every generation of the deployment.
    for ai in [&ai1, &ai2] {
        let list = generations(&ai.admin_url(), "").await;
        assert_eq!(who(&list), expected, "{} lists", ai.replica_id);
        for g in &list {
            assert!(matches!(
                g.state,
                MessageState::Queued | MessageState::Streaming
            ));
            assert!(g.started_at > 1_600_000_000_000, "{g:?}");
        }
        let bobs = list.iter().find(|g| g.message_id == b.message_id);
        assert_eq!(bobs.map(|g| g.session_id), Some(bob.session_id));
        assert!(bobs.is_some_and(|g| g.completion_tokens >= 2), "{bobs:?}");
    }
    let only_alice = generations(&ai2.admin_url(), "?user=alice").await;
    assert_eq!(
        who(&only_alice),
        expected
            .iter()
            .filter(|(_, u, _)| *u == alice)
            .cloned()
            .collect::<Vec<_>>()
    );
    assert!(generations(&ai1.admin_url(), "?user=nobody")
        .await
        .is_empty());

    // Alice's two generations end, on both replicas, asked on one of them.
    assert_eq!(cancel(&ai2.admin_url(), "users/alice").await, 2);
    assert_eq!(
        done(&mut alice1, &mut a1).await,
        Some(FinalStatus::Cancelled)
    );
    assert_eq!(
        done(&mut alice2, &mut a2).await,
        Some(FinalStatus::Cancelled)
    );
    // Nothing left of hers to cancel; bob streams on.
    assert_eq!(cancel(&ai1.admin_url(), "users/alice").await, 0);
    let seen = b.seqs.len();
    bob.read_chunks(&mut b, seen + 2).await;
    assert!(b.done.is_none());
    let rest = who(&generations(&ai1.admin_url(), "").await);
    assert_eq!(
        rest,
        expected
            .iter()
            .filter(|(_, u, _)| *u != alice)
            .cloned()
            .collect::<Vec<_>>()
    );

    // A session's cancel: bob's (through his gateway), and the anonymous one's (no client).
    assert_eq!(
        cancel(&ai2.admin_url(), &format!("sessions/{}", bob.session_id)).await,
        1
    );
    assert_eq!(done(&mut bob, &mut b).await, Some(FinalStatus::Cancelled));
    assert_eq!(
        cancel(&ai1.admin_url(), &format!("sessions/{anon_sid}")).await,
        1
    );
    let anon = ai2.wait_terminal(anon_sid, anon_id).await;
    assert_eq!(anon.state, MessageState::Cancelled);
    assert!(generations(&ai1.admin_url(), "").await.is_empty());
    assert!(generations(&ai2.admin_url(), "").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_list_and_cancel_the_whole_deployment_on_redis() {
    two_replicas_list_and_cancel_the_whole_deployment(Backend::Redis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_list_and_cancel_the_whole_deployment_on_a_cluster() {
    two_replicas_list_and_cancel_the_whole_deployment(Backend::RedisCluster).await;
}

/// A replica that crashed leaves its entries in the index: the listing drops them once the
/// takeover (`worker_lost`) has ended their messages.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_replicas_generations_leave_the_listing() {
    let redis = e2e_tests::RedisServer::start();
    let env = [("ADMIN_TOKEN", TOKEN)];
    let mut doomed = AiService::start(&redis.url(), &env).await;
    let survivor = AiService::start(&redis.url(), &env).await;
    let gw = Gateway::start(&redis.url(), &doomed.url(), &[]).await;
    let (mut c, mut t) = streaming(&gw.ws_url(), "carol").await;
    assert_eq!(generations(&survivor.admin_url(), "").await.len(), 1);
    doomed.proc.kill();
    // The gateway that follows the message takes it over once the lease ran out.
    assert_eq!(done(&mut c, &mut t).await, Some(FinalStatus::Failed));
    assert!(generations(&survivor.admin_url(), "").await.is_empty());
    assert_eq!(redis.cli(&["hlen", "g:{running}"]), "0");
}

/// Embedded mode (`streamline`, in-memory store): the same admin API on `AI_ADMIN_ADDR`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_mode_lists_and_cancels_a_users_generations() {
    let stack = Backend::Memory
        .start_with(&[("ADMIN_TOKEN", TOKEN)], &[])
        .await;
    let admin_url = stack.ai.admin_url();
    let ws_url = stack.gateway.ws_url();
    let (mut dave, mut d) = streaming(&ws_url, "dave").await;
    let (mut erin, mut e) = streaming(&ws_url, "erin").await;
    let listed = generations(&admin_url, "?user=dave").await;
    assert_eq!(
        who(&listed),
        vec![(
            d.message_id,
            Some("dave".into()),
            stack.ai.replica_id.clone()
        )]
    );
    assert_eq!(listed[0].session_id, dave.session_id);
    assert_eq!(generations(&admin_url, "").await.len(), 2);
    assert_eq!(cancel(&admin_url, "users/dave").await, 1);
    assert_eq!(done(&mut dave, &mut d).await, Some(FinalStatus::Cancelled));
    let seen = e.seqs.len();
    erin.read_chunks(&mut e, seen + 2).await;
    assert!(e.done.is_none());
    assert_eq!(
        cancel(&admin_url, &format!("sessions/{}", erin.session_id)).await,
        1
    );
    assert_eq!(done(&mut erin, &mut e).await, Some(FinalStatus::Cancelled));
    assert!(generations(&admin_url, "").await.is_empty());
    // Both admin ports of the one process serve its metrics; the public ports do not.
    for base in [&admin_url, &stack.gateway.admin_url()] {
        assert_eq!(status_of(&format!("{base}/metrics")).await, 200);
    }
    assert_eq!(
        status_of(&format!("{}/metrics", stack.gateway.url())).await,
        404
    );
}
