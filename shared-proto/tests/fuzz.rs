//! Property-based fuzzing of everything the stack parses from the outside: client frames
//! (`ClientFrame::parse`), the ai-service HTTP bodies (what actix's `Json` extractor and the
//! gateway's client deserialize), and the `StreamChunk`s the gateway reads back from Redis.
//!
//! Properties: parsing never panics, never overflows the stack (deep nesting), and is
//! consistent (a frame that parses re-serializes to something that parses to the same frame;
//! an error always carries a client-facing code of the "bad frame" family).
//!
//! `cargo test -p shared-proto --test fuzz` runs each property for `PROPTEST_CASES` cases
//! (default 256). The long run, for a fixed wall-clock time:
//!
//! ```sh
//! FUZZ_SECONDS=600 nice -n 19 cargo test --release -p shared-proto --test fuzz -- --ignored --nocapture
//! ```

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use shared_proto::api::{
    ApiError, CancelResponse, MessageView, StartMessageRequest, StartMessageResponse,
};
use shared_proto::{ClientFrame, ErrorCode, ServerFrame, StreamChunk};

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(256)
}

/// Arbitrary JSON values, nested a few levels.
fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::Bool),
        any::<i64>().prop_map(|n| serde_json::json!(n)),
        any::<u64>().prop_map(|n| serde_json::json!(n)),
        any::<f64>().prop_map(|f| serde_json::json!(f)),
        "\\PC{0,20}".prop_map(serde_json::Value::String),
        Just(serde_json::json!("00000000-0000-0000-0000-000000000000")),
        Just(serde_json::json!(uuid_str())),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::Array),
            proptest::collection::btree_map(field_name(), inner, 0..6)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

fn uuid_str() -> String {
    "6f1c2a4e-8b3d-4f7a-9c21-5e0d8a7b3c19".to_string()
}

fn field_name() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("type".to_string()),
        Just("content".to_string()),
        Just("message_id".to_string()),
        Just("after_seq".to_string()),
        Just("token".to_string()),
        Just("session_id".to_string()),
        Just("seq".to_string()),
        Just("kind".to_string()),
        Just("status".to_string()),
        Just("error".to_string()),
        Just("code".to_string()),
        "\\PC{0,8}",
    ]
}

/// Objects that look like client frames: a known or unknown `type` plus arbitrary fields.
fn frame_like() -> impl Strategy<Value = String> {
    let kind = prop_oneof![
        Just(serde_json::json!("chat")),
        Just(serde_json::json!("cancel")),
        Just(serde_json::json!("resume")),
        Just(serde_json::json!("heartbeat")),
        Just(serde_json::json!("auth")),
        "\\PC{0,12}".prop_map(serde_json::Value::String),
        json_value(),
    ];
    (
        kind,
        proptest::collection::btree_map(field_name(), json_value(), 0..5),
    )
        .prop_map(|(kind, fields)| {
            let mut obj: serde_json::Map<String, serde_json::Value> = fields.into_iter().collect();
            obj.insert("type".into(), kind);
            serde_json::Value::Object(obj).to_string()
        })
}

/// Valid frames with bytes flipped, cut or duplicated.
fn mutated_frame() -> impl Strategy<Value = Vec<u8>> {
    let valid = prop_oneof![
        Just(r#"{"type":"chat","content":"hello"}"#.to_string()),
        Just(format!(
            r#"{{"type":"chat","content":"hi","message_id":"{}"}}"#,
            uuid_str()
        )),
        Just(format!(
            r#"{{"type":"cancel","message_id":"{}"}}"#,
            uuid_str()
        )),
        Just(format!(
            r#"{{"type":"resume","message_id":"{}","after_seq":7}}"#,
            uuid_str()
        )),
        Just(r#"{"type":"heartbeat"}"#.to_string()),
        Just(r#"{"type":"auth","token":"eyJhbGciOiJIUzI1NiJ9.e30.c2ln"}"#.to_string()),
    ];
    (
        valid,
        proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..4), 0..8),
    )
        .prop_map(|(s, edits)| {
            let mut b = s.into_bytes();
            for (at, byte, op) in edits {
                if b.is_empty() {
                    break;
                }
                let i = at.index(b.len());
                match op {
                    0 => b[i] = byte,
                    1 => {
                        b.remove(i);
                    }
                    2 => b.insert(i, byte),
                    _ => b.truncate(i),
                }
            }
            b
        })
}

/// Deep or wide nesting, inside or outside a frame.
fn nesting() -> impl Strategy<Value = String> {
    (1usize..20_000, any::<bool>(), any::<bool>(), 0u8..3).prop_map(
        |(depth, inside, balanced, bracket)| {
            let (open, close) = match bracket {
                0 => ("[", "]"),
                1 => ("{\"a\":", "}"),
                _ => ("[{\"a\":", "}]"),
            };
            let mut body = open.repeat(depth);
            body.push('1');
            if balanced {
                body.push_str(&close.repeat(depth));
            }
            if inside {
                format!(r#"{{"type":"chat","content":"x","extra":{body}}}"#)
            } else {
                body
            }
        },
    )
}

const FRAME_ERROR_CODES: [ErrorCode; 4] = [
    ErrorCode::InvalidJson,
    ErrorCode::UnknownType,
    ErrorCode::InvalidFrame,
    ErrorCode::InvalidMessageId,
];

/// The property of `ClientFrame::parse`.
fn check_frame(text: &str) -> Result<(), TestCaseError> {
    match ClientFrame::parse(text) {
        Ok(frame) => {
            // Consistent: what parsed re-serializes to something that parses the same.
            let again =
                serde_json::to_string(&frame).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let back = ClientFrame::parse(&again)
                .map_err(|e| TestCaseError::fail(format!("re-parse of {again}: {e:?}")))?;
            prop_assert_eq!(back, frame);
        }
        Err(e) => {
            prop_assert!(
                FRAME_ERROR_CODES.contains(&e.code),
                "unexpected code {:?}",
                e.code
            );
            // The message is bounded (it may quote the type, cut at 40 characters).
            prop_assert!(e.message.len() < 4096 + text.len().min(400));
        }
    }
    Ok(())
}

/// The property of every body the stack deserializes: no panic (the result is irrelevant).
fn check_bodies(bytes: &[u8]) -> Result<(), TestCaseError> {
    let _ = serde_json::from_slice::<StartMessageRequest>(bytes);
    let _ = serde_json::from_slice::<StartMessageResponse>(bytes);
    let _ = serde_json::from_slice::<CancelResponse>(bytes);
    let _ = serde_json::from_slice::<MessageView>(bytes);
    let _ = serde_json::from_slice::<ApiError>(bytes);
    let _ = serde_json::from_slice::<ServerFrame>(bytes);
    if let Ok(chunk) = serde_json::from_slice::<StreamChunk>(bytes) {
        // What the gateway does with a chunk from Redis must not panic either.
        let _ = chunk.log_index();
        let _ = chunk.into_frame().to_json();
    }
    if let Ok(text) = std::str::from_utf8(bytes) {
        check_frame(text)?;
    }
    Ok(())
}

fn runner(cases: u32) -> TestRunner {
    TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    })
}

type Target = (&'static str, fn(&mut TestRunner) -> Result<(), String>);

fn run<S: Strategy>(
    r: &mut TestRunner,
    s: S,
    f: impl Fn(S::Value) -> Result<(), TestCaseError>,
) -> Result<(), String> {
    r.run(&s, f).map_err(|e| e.to_string())
}

/// Every fuzz target, by name.
fn targets() -> Vec<Target> {
    vec![
        ("arbitrary_text", |r| {
            run(r, "\\PC{0,200}", |s| check_frame(&s))
        }),
        ("arbitrary_bytes", |r| {
            run(r, proptest::collection::vec(any::<u8>(), 0..512), |b| {
                check_bodies(&b)
            })
        }),
        ("frame_like_json", |r| {
            run(r, frame_like(), |s| {
                check_frame(&s)?;
                check_bodies(s.as_bytes())
            })
        }),
        ("mutated_frames", |r| {
            run(r, mutated_frame(), |b| check_bodies(&b))
        }),
        ("nesting", |r| run(r, nesting(), |s| check_frame(&s))),
        ("json_bodies", |r| {
            run(r, json_value(), |v| check_bodies(v.to_string().as_bytes()))
        }),
    ]
}

#[test]
fn fuzz_targets_hold_for_the_configured_cases() {
    for (name, target) in targets() {
        let mut r = runner(cases());
        if let Err(e) = target(&mut r) {
            panic!("fuzz target {name}: {e}");
        }
    }
}

/// Runs every target round-robin with fresh random seeds until `FUZZ_SECONDS` (default 60)
/// have passed; prints how many cases ran.
#[test]
#[ignore = "long-running fuzz: FUZZ_SECONDS=600 cargo test --release -p shared-proto --test fuzz -- --ignored"]
fn fuzz_for_a_while() {
    let seconds: u64 = std::env::var("FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(seconds);
    let started = std::time::Instant::now();
    let mut total: u64 = 0;
    let mut rounds: u64 = 0;
    while std::time::Instant::now() < deadline {
        for (name, target) in targets() {
            let mut r = runner(2_000);
            if let Err(e) = target(&mut r) {
                panic!("fuzz target {name} failed after {total} cases: {e}");
            }
            total += 2_000;
        }
        rounds += 1;
    }
    println!(
        "fuzz: {total} cases in {rounds} rounds over {:.0}s, no finding",
        started.elapsed().as_secs_f64()
    );
}
