//! Issue 16, points 1 and 2, end to end: login tokens of an identity provider (a local JWKS
//! endpoint publishing RSA, EC and Ed25519 keys made by the test), key rotation, unknown
//! `kid`s, the provider down, `iss`/`aud`/`exp`/`nbf` with the leeway, `alg` confusion,
//! `none`, a PEM key; the in-band refresh (`auth`) and the 4003 close at expiry, after which
//! the running answer is resumed on a new connection. See `docs/SECURITY.md`.

use std::time::Duration;

use e2e_tests::auth::{sign_claims, with_token, TEST_AUTH_SECRET, TEST_SUB};
use e2e_tests::client::{absorb, Incoming, Transcript};
use e2e_tests::handshake::{code_of, handshake};
use e2e_tests::identity::{claims, hs256_with_key, now_secs, unsigned, SigningKey};
use e2e_tests::jwks::JwksServer;
use e2e_tests::metrics::series;
use e2e_tests::process::TempDir;
use e2e_tests::stack::wait_ready;
use e2e_tests::{AiService, Gateway, RedisServer, WsClient, PATIENCE};
use futures_util::future::join_all;
use serde_json::json;
use shared_proto::{ErrorCode, FinalStatus, ServerFrame};
use tokio::time::Instant;

const ISS: &str = "https://idp.test/";
const AUD: &str = "streamline";
const RESUME_SECRET: &str = "resume-secret-0123456789";

/// Redis, an ai-service and a gateway whose only JWT keys are those of `jwks` (no
/// `AUTH_SECRET`), checking `iss` and `aud`.
struct ProviderStack {
    gateway: Gateway,
    ai: AiService,
    redis: RedisServer,
}

impl ProviderStack {
    async fn start(jwks: &JwksServer, env: &[(&str, &str)]) -> ProviderStack {
        let redis = RedisServer::start();
        let ai = AiService::start(&redis.url(), &[]).await;
        let url = jwks.url();
        let mut all = vec![
            ("JWT_JWKS_URL", url.as_str()),
            ("RESUME_SECRET", RESUME_SECRET),
            ("JWT_ISSUER", ISS),
            ("JWT_AUDIENCE", "other-api, streamline"),
        ];
        all.extend_from_slice(env);
        let gateway = Gateway::start_without(&redis.url(), &ai.url(), &all, &["AUTH_SECRET"]).await;
        ProviderStack { gateway, ai, redis }
    }

    fn url(&self, jwt: &str) -> String {
        with_token(&self.gateway.ws_url(), jwt)
    }

    /// The HTTP status of a handshake with `jwt` (101 when accepted).
    async fn status(&self, jwt: &str) -> u16 {
        status(&self.url(jwt)).await
    }
}

async fn status(url: &str) -> u16 {
    match handshake(url, &[]).await {
        Ok(_) => 101,
        Err((status, body)) => {
            assert_eq!(code_of(&body), Some("unauthorized"), "{status} {body}");
            status
        }
    }
}

/// A login token of the provider's shape (`iss`, `aud`) for `sub`, valid for `ttl` seconds.
fn login(key: &SigningKey, sub: &str, ttl: i64) -> String {
    key.sign(&claims(sub, ttl, Some(ISS), Some(AUD)))
}

/// Waits until `min_refresh` has passed since the provider's last request, so that the next
/// unknown `kid` is allowed to trigger a fetch.
async fn past_min_refresh(jwks: &JwksServer, min_refresh: Duration) {
    if let Some(last) = jwks.last_hit() {
        tokio::time::sleep_until(last + min_refresh + Duration::from_millis(50)).await;
    }
}

/// A short answer on `c`, read to its end.
async fn short_chat(c: &mut WsClient) {
    let id = c.chat("!demo tokens=3 rate=0\nhello").await;
    let (t, _) = c.collect(id).await;
    t.assert_well_formed();
    assert_eq!(t.status(), Some(FinalStatus::Completed));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_keys_verify_and_a_rotated_key_is_taken_within_min_refresh() {
    let (r1, e1, d1) = (
        SigningKey::rsa("r1"),
        SigningKey::ec("e1"),
        SigningKey::ed25519("d1"),
    );
    let jwks = JwksServer::start(&[&r1, &e1, &d1]).await;
    let min_refresh = Duration::from_secs(1);
    let stack = ProviderStack::start(&jwks, &[("JWT_JWKS_MIN_REFRESH", "1s")]).await;
    assert_eq!(jwks.hits(), 1, "fetched once at start");
    // RS256, ES256 and EdDSA tokens, each found by its kid; and a token without kid.
    for key in [&r1, &e1, &d1] {
        let mut c = WsClient::connect(&stack.url(&login(key, "alice", 600))).await;
        short_chat(&mut c).await;
    }
    let kidless = r1.sign_as(None, &claims("alice", 600, Some(ISS), Some(AUD)));
    assert_eq!(stack.status(&kidless).await, 101);
    // The session belongs to its sub, whichever key signed the token.
    let c = WsClient::connect(&stack.url(&login(&r1, "alice", 600))).await;
    let resume = |jwt: &str| {
        format!(
            "{}?session_id={}&resume_token={}&token={jwt}",
            stack.gateway.ws_url(),
            c.session_id,
            c.resume_token
        )
    };
    assert_eq!(status(&resume(&login(&e1, "alice", 600))).await, 101);
    // Bob with alice's session: refused like an unknown session.
    let stolen = handshake(&resume(&login(&e1, "bob", 600)), &[]).await;
    assert!(matches!(stolen, Err((401, _))), "{stolen:?}");
    assert_eq!(jwks.hits(), 1, "known kids never ask the provider");

    // Rotation: r2 replaces r1.
    let r2 = SigningKey::rsa("r2");
    jwks.set_keys(&[&r2, &e1, &d1]);
    past_min_refresh(&jwks, min_refresh).await;
    let hits = jwks.hits();
    let mut c = WsClient::connect(&stack.url(&login(&r2, "alice", 600))).await;
    short_chat(&mut c).await;
    assert_eq!(
        jwks.hits(),
        hits + 1,
        "the new kid caused exactly one fetch"
    );
    // The withdrawn key: its kid is unknown now, and asking again so soon is not allowed.
    assert_eq!(stack.status(&login(&r1, "alice", 600)).await, 401);
    assert_eq!(
        jwks.hits(),
        hits + 1,
        "no fetch within JWT_JWKS_MIN_REFRESH"
    );
    let base = stack.gateway.admin_url();
    assert!(
        series(
            &base,
            "streamline_gateway_auth_failures_total{reason=\"unknown_key\"}"
        )
        .await
            >= 1.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_unknown_kids_costs_the_provider_one_fetch_per_min_refresh() {
    let r1 = SigningKey::rsa("r1");
    let jwks = JwksServer::start(&[&r1]).await;
    let min_refresh = Duration::from_secs(1);
    let stack = ProviderStack::start(&jwks, &[("JWT_JWKS_MIN_REFRESH", "1s")]).await;
    past_min_refresh(&jwks, min_refresh).await;
    let before = jwks.hits();
    let started = Instant::now();
    let mut refused = 0;
    for batch in 0..10 {
        let urls: Vec<String> = (0..20)
            .map(|i| {
                let jwt = r1.sign_as(
                    Some(&format!("bogus-{batch}-{i}")),
                    &claims("mallory", 600, Some(ISS), Some(AUD)),
                );
                stack.url(&jwt)
            })
            .collect();
        let statuses = join_all(urls.iter().map(|u| status(u))).await;
        refused += statuses.iter().filter(|s| **s == 401).count();
        // A real user gets in during the flood.
        assert_eq!(stack.status(&login(&r1, "alice", 600)).await, 101);
    }
    let elapsed = started.elapsed();
    let fetched = jwks.hits() - before;
    assert_eq!(refused, 200);
    assert!(fetched >= 1, "the first unknown kid asked the provider");
    let bound = (elapsed.as_secs_f64() / min_refresh.as_secs_f64()).floor() as usize + 1;
    assert!(
        fetched <= bound,
        "{fetched} fetches in {elapsed:?} (at most {bound} allowed)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_the_provider_is_down_the_cached_keys_stay_in_force() {
    let r1 = SigningKey::rsa("r1");
    let jwks = JwksServer::start(&[&r1]).await;
    // The answer's max-age (1 s) makes the gateway refresh every second, not every 5 minutes.
    jwks.set_cache_control(Some("public, max-age=1"));
    let stack = ProviderStack::start(
        &jwks,
        &[("JWT_JWKS_MIN_REFRESH", "1s"), ("JWT_JWKS_REFRESH", "5m")],
    )
    .await;
    jwks.wait_hits(3).await;
    jwks.fail();
    let down_from = jwks.hits();
    jwks.wait_hits(down_from + 2).await;
    // Two refreshes failed: r1 still verifies, the gateway stays ready.
    let mut c = WsClient::connect(&stack.url(&login(&r1, "alice", 600))).await;
    short_chat(&mut c).await;
    wait_ready(&format!("{}/readyz", stack.gateway.admin_url())).await;
    // A key the gateway never saw cannot come in while the provider is down.
    let r3 = SigningKey::rsa("r3");
    assert_eq!(stack.status(&login(&r3, "alice", 600)).await, 401);
    // Back up with r3 published: taken at the next fetch.
    jwks.set_keys(&[&r1, &r3]);
    jwks.serve();
    let deadline = Instant::now() + PATIENCE;
    while stack.status(&login(&r3, "alice", 600)).await != 101 {
        assert!(Instant::now() < deadline, "r3 never accepted");
        let seen = jwks.hits();
        jwks.wait_hits(seen + 1).await;
    }
    let base = stack.gateway.admin_url();
    assert!(
        series(
            &base,
            "streamline_gateway_jwks_fetches_total{result=\"error\"}"
        )
        .await
            >= 2.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_any_key_yet_every_token_is_refused_and_the_gateway_is_not_ready() {
    let r1 = SigningKey::rsa("r1");
    let jwks = JwksServer::start(&[&r1]).await;
    jwks.fail();
    let redis = RedisServer::start();
    let ai = AiService::start(&redis.url(), &[]).await;
    let url = jwks.url();
    let gw = Gateway::spawn(
        &redis.url(),
        &ai.url(),
        &[
            ("JWT_JWKS_URL", url.as_str()),
            ("RESUME_SECRET", RESUME_SECRET),
            ("JWT_JWKS_MIN_REFRESH", "1s"),
        ],
        &["AUTH_SECRET"],
    );
    let readyz = format!("{}/readyz", gw.admin_url());
    let http = reqwest::Client::new();
    let deadline = Instant::now() + PATIENCE;
    let why = loop {
        if let Ok(r) = http.get(&readyz).send().await {
            assert_eq!(r.status().as_u16(), 503, "ready without a key");
            break r.text().await.unwrap_or_default();
        }
        assert!(Instant::now() < deadline, "the gateway did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(why.contains("no JWT verification key"), "{why}");
    let jwt = r1.sign(&claims("alice", 600, None, None));
    assert_eq!(status(&with_token(&gw.ws_url(), &jwt)).await, 401);
    // The provider comes back: the retry (every JWT_JWKS_MIN_REFRESH) brings the keys.
    jwks.serve();
    wait_ready(&readyz).await;
    let mut c = WsClient::connect(&with_token(&gw.ws_url(), &jwt)).await;
    short_chat(&mut c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn iss_aud_exp_and_nbf_are_checked_with_the_leeway() {
    let r1 = SigningKey::rsa("r1");
    let jwks = JwksServer::start(&[&r1]).await;
    let stack = ProviderStack::start(&jwks, &[("JWT_LEEWAY", "30s")]).await;
    let now = now_secs();
    let with = |extra: serde_json::Value| {
        let mut c = claims("alice", 600, Some(ISS), Some(AUD));
        for (k, v) in extra.as_object().expect("object") {
            if v.is_null() {
                c.as_object_mut().expect("claims").remove(k);
            } else {
                c[k] = v.clone();
            }
        }
        r1.sign(&c)
    };
    for (extra, want) in [
        (json!({}), 101),
        (json!({"aud": ["elsewhere", AUD]}), 101),
        (json!({"aud": "other-api"}), 101),
        (json!({"iss": "https://evil.test/"}), 401),
        (json!({"iss": "https://idp.test"}), 401),
        (json!({"iss": null}), 401),
        (json!({"aud": "elsewhere"}), 401),
        (json!({"aud": null}), 401),
        // Within the leeway (30 s) of exp and nbf: accepted; beyond it: refused.
        (json!({"exp": now - 10}), 101),
        (json!({"exp": now - 60}), 401),
        (json!({"nbf": now + 10}), 101),
        (json!({"nbf": now + 60}), 401),
        (json!({"exp": null}), 401),
        (json!({"sub": ""}), 401),
    ] {
        assert_eq!(stack.status(&with(extra.clone())).await, want, "{extra}");
    }
    let base = stack.gateway.admin_url();
    for reason in [
        "bad_issuer",
        "bad_audience",
        "expired",
        "not_yet_valid",
        "malformed",
        "bad_subject",
    ] {
        let line = format!("streamline_gateway_auth_failures_total{{reason=\"{reason}\"}}");
        assert!(series(&base, &line).await >= 1.0, "{reason}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alg_confusion_and_none_are_refused_and_a_pem_key_verifies() {
    let r1 = SigningKey::rsa("r1");
    let jwks = JwksServer::start(&[&r1]).await;
    let c = claims("mallory", 600, Some(ISS), Some(AUD));
    // HS256 "signed" with the RSA public key's bytes, with and without its kid; `none`.
    let forged = [
        hs256_with_key(r1.public_pem().as_bytes(), Some("r1"), &c),
        hs256_with_key(r1.public_pem().as_bytes(), None, &c),
        unsigned(&c, Some("r1")),
        unsigned(&c, None),
    ];
    // Only the provider's keys: HS256 has no key at all.
    let stack = ProviderStack::start(&jwks, &[]).await;
    for jwt in &forged {
        assert_eq!(stack.status(jwt).await, 401, "{jwt}");
    }
    assert_eq!(stack.status(&login(&r1, "alice", 600)).await, 101);
    let base = stack.gateway.admin_url();
    assert!(
        series(
            &base,
            "streamline_gateway_auth_failures_total{reason=\"unsupported_alg\"}"
        )
        .await
            >= 4.0
    );

    // With AUTH_SECRET as well: HS256 means AUTH_SECRET, never a public key.
    let url = jwks.url();
    let gw = Gateway::start(
        &stack.redis.url(),
        &stack.ai.url(),
        &[("JWT_JWKS_URL", url.as_str())],
    )
    .await;
    for jwt in &forged {
        assert_eq!(status(&with_token(&gw.ws_url(), jwt)).await, 401, "{jwt}");
    }
    let hs = sign_claims(TEST_AUTH_SECRET, &claims("alice", 600, None, None));
    assert_eq!(status(&with_token(&gw.ws_url(), &hs)).await, 101);
    let rs = r1.sign(&claims("alice", 600, None, None));
    assert_eq!(status(&with_token(&gw.ws_url(), &rs)).await, 101);

    // JWT_PUBLIC_KEY_FILE: an EC key; its tokens verify whatever their kid, nothing else does.
    let e1 = SigningKey::ec("e1");
    let dir = TempDir::new("identity-pem");
    let pem = dir.file("ec.pem");
    std::fs::write(&pem, e1.public_pem()).expect("write pem");
    let gw = Gateway::start_without(
        &stack.redis.url(),
        &stack.ai.url(),
        &[
            ("JWT_PUBLIC_KEY_FILE", pem.as_str()),
            ("RESUME_SECRET", RESUME_SECRET),
        ],
        &["AUTH_SECRET"],
    )
    .await;
    let at = |jwt: &str| with_token(&gw.ws_url(), jwt);
    let mut client = WsClient::connect(&at(&e1.sign(&claims("alice", 600, None, None)))).await;
    short_chat(&mut client).await;
    assert_eq!(
        status(&at(&e1.sign_as(None, &claims("alice", 600, None, None)))).await,
        101
    );
    let pem_hs = hs256_with_key(e1.public_pem().as_bytes(), None, &c);
    for jwt in [pem_hs, rs, hs, unsigned(&c, None)] {
        assert_eq!(status(&at(&jwt)).await, 401, "{jwt}");
    }
}

/// Reads frames until one that `pick` takes (other frames of running answers are skipped).
async fn until<T>(c: &mut WsClient, mut pick: impl FnMut(&ServerFrame) -> Option<T>) -> T {
    loop {
        let f = c.frame().await;
        if let Some(t) = pick(&f) {
            return t;
        }
        assert!(
            matches!(f, ServerFrame::Ack { .. } | ServerFrame::Chunk { .. }),
            "unexpected {f:?}"
        );
    }
}

async fn auth(c: &mut WsClient, jwt: &str) -> Result<u64, ErrorCode> {
    c.send_json(json!({"type": "auth", "token": jwt})).await;
    until(c, |f| match f {
        ServerFrame::AuthAck { exp } => Some(Ok(*exp)),
        ServerFrame::Error {
            code,
            message_id: None,
            ..
        } => Some(Err(*code)),
        _ => None,
    })
    .await
}

/// Reads until the connection closes; returns the close and the frames before it.
async fn until_closed(c: &mut WsClient) -> (Option<(u16, String)>, Vec<ServerFrame>) {
    let mut frames = Vec::new();
    loop {
        match c.recv().await {
            Incoming::Frame(f) => frames.push(f),
            Incoming::Close(close) => return (close, frames),
            Incoming::Garbage(g) => panic!("garbage: {g}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_replaces_the_token_of_an_open_connection() {
    let (r1, e1) = (SigningKey::rsa("r1"), SigningKey::ec("e1"));
    let jwks = JwksServer::start(&[&r1, &e1]).await;
    let stack = ProviderStack::start(&jwks, &[("JWT_LEEWAY", "1s")]).await;
    let mut c = WsClient::connect(&stack.url(&login(&r1, "alice", 60))).await;
    // Another key of the provider, the same sub: accepted, the ack says until when.
    let fresh = claims("alice", 120, Some(ISS), Some(AUD));
    assert_eq!(
        auth(&mut c, &e1.sign(&fresh)).await,
        Ok(fresh["exp"].as_u64().expect("exp"))
    );
    // Refused, the connection stays: another sub, an expired token, junk, `none`.
    for jwt in [
        login(&r1, "bob", 120),
        login(&r1, "alice", -60),
        "junk".to_string(),
        unsigned(&fresh, Some("r1")),
    ] {
        assert_eq!(
            auth(&mut c, &jwt).await,
            Err(ErrorCode::Unauthorized),
            "{jwt}"
        );
    }
    short_chat(&mut c).await;

    // A refresh moves the expiry; a refused one leaves it where it was. Both connections'
    // tokens expire in 3 s; only `kept` gets a new one.
    let short = || login(&r1, "alice", 3);
    let mut kept = WsClient::connect(&stack.url(&short())).await;
    let mut lapsed = WsClient::connect(&stack.url(&short())).await;
    assert!(auth(&mut kept, &login(&e1, "alice", 600)).await.is_ok());
    assert_eq!(
        auth(&mut lapsed, &login(&e1, "bob", 600)).await,
        Err(ErrorCode::Unauthorized)
    );
    let (close, _) = until_closed(&mut lapsed).await;
    assert_eq!(close, Some((4003, "token expired".to_string())));
    // Past the old expiry: `kept` answers.
    kept.send_json(json!({"type": "heartbeat"})).await;
    until(&mut kept, |f| {
        matches!(f, ServerFrame::HeartbeatAck {}).then_some(())
    })
    .await;
    let base = stack.gateway.admin_url();
    assert!(
        series(
            &base,
            "streamline_gateway_token_refreshes_total{result=\"accepted\"}"
        )
        .await
            >= 2.0
    );
    assert!(
        series(
            &base,
            "streamline_gateway_token_refreshes_total{result=\"refused\"}"
        )
        .await
            >= 5.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_anonymous_mode_auth_is_refused_and_auth_draws_from_the_requests_bucket() {
    let redis = RedisServer::start();
    let ai = AiService::start(&redis.url(), &[]).await;
    let gw = Gateway::start_without(
        &redis.url(),
        &ai.url(),
        &[("RATE_LIMIT_PER_SEC", "0.01"), ("RATE_LIMIT_BURST", "2")],
        &["AUTH_SECRET"],
    )
    .await;
    let mut c = WsClient::connect(&gw.ws_url()).await;
    let jwt = sign_claims(TEST_AUTH_SECRET, &claims("alice", 600, None, None));
    for _ in 0..5 {
        c.send_json(json!({"type": "auth", "token": jwt})).await;
    }
    let (mut unauthorized, mut limited) = (0, 0);
    while unauthorized + limited < 5 {
        match c.frame().await {
            ServerFrame::Error {
                code: ErrorCode::Unauthorized,
                ..
            } => unauthorized += 1,
            ServerFrame::Error {
                code: ErrorCode::RateLimited,
                ..
            } => limited += 1,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!((unauthorized, limited), (2, 3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_connection_closes_with_4003_after_its_frames_and_its_answer_goes_on() {
    let redis = RedisServer::start();
    let ai = AiService::start(&redis.url(), &[]).await;
    let gw = Gateway::start(&redis.url(), &ai.url(), &[("JWT_LEEWAY", "1s")]).await;
    let exp = now_secs() + 3;
    let token = sign_claims(TEST_AUTH_SECRET, &json!({"sub": TEST_SUB, "exp": exp}));
    let url = with_token(&gw.ws_url(), &token);
    // `reader` stops reading mid-answer, so that frames wait for it at the gateway; `witness`
    // holds a token of the same expiry and tells when it passed.
    let mut reader = WsClient::connect_small_buffer(&url, gw.port).await;
    let mut witness = WsClient::connect(&url).await;
    let id = reader
        .chat("!demo tokens=400 rate=50\noutlive the token")
        .await;
    let mut t = Transcript::new(id);
    reader.read_chunks(&mut t, 3).await;

    let (close, frames) = until_closed(&mut witness).await;
    let closed_at_ms = shared_proto::now_ms();
    assert_eq!(
        close,
        Some((4003, "token expired".to_string())),
        "{frames:?}"
    );
    let due_ms = (exp + 1) * 1000;
    assert!(
        closed_at_ms + 50 >= due_ms,
        "closed {} ms before exp + leeway",
        due_ms - closed_at_ms
    );
    assert!(
        closed_at_ms < due_ms + 5_000,
        "closed {} ms after exp + leeway",
        closed_at_ms - due_ms
    );

    // Everything queued for the reader comes before its close, in order.
    let (close, frames) = until_closed(&mut reader).await;
    assert_eq!(close, Some((4003, "token expired".to_string())));
    for f in &frames {
        assert!(absorb(&mut t, f), "unexpected {f:?}");
    }
    assert!(t.done.is_none(), "the answer was still running at expiry");
    let expected: Vec<u64> = (1..=t.seqs.len() as u64).collect();
    assert_eq!(t.seqs, expected, "no gap before the close");

    // Expiry is not a cancel: resume on a new connection with a fresh token, to the end.
    let fresh = sign_claims(TEST_AUTH_SECRET, &claims(TEST_SUB, 600, None, None));
    let mut again = WsClient::connect(&format!(
        "{}?session_id={}&resume_token={}&token={fresh}",
        gw.ws_url(),
        reader.session_id,
        reader.resume_token
    ))
    .await;
    assert_eq!(again.session_id, reader.session_id);
    again.resume(id, t.seqs.len() as u64).await;
    while t.done.is_none() {
        let f = again.frame().await;
        assert!(absorb(&mut t, &f), "unexpected {f:?}");
    }
    t.assert_well_formed();
    assert_eq!(t.status(), Some(FinalStatus::Completed));
    let stored = ai.wait_terminal(reader.session_id, id).await;
    assert_eq!(t.text, stored.text);
    assert!(
        series(
            &gw.admin_url(),
            "streamline_gateway_token_expired_closes_total"
        )
        .await
            >= 2.0
    );
}
