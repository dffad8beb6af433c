//! The binary's command line: settings are listed, invalid ones fail fast with exit code 2.

use std::process::Command;

fn ai_service() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ai-service"))
}

#[test]
fn help_lists_every_setting_with_its_env_var() {
    let out = ai_service().arg("--help").output().expect("run");
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for var in [
        "AI_ADDR",
        "REDIS_URL",
        "CANCEL_GRACE",
        "STREAM_TTL",
        "DEMO_TOKENS",
        "DEMO_TOKENS_PER_SEC",
        "CHUNK_LINGER",
        "PROVIDER",
        "OPENAI_BASE_URL",
        "OPENAI_API_KEY",
        "OPENAI_MODEL",
        "SHUTDOWN_TIMEOUT",
    ] {
        assert!(help.contains(var), "--help does not mention {var}");
    }
}

#[test]
fn invalid_settings_exit_with_code_2() {
    for (var, value) in [
        ("CANCEL_GRACE", "10"),
        ("STREAM_TTL", "forever"),
        ("DEMO_TOKENS", "-1"),
        ("PROVIDER", "magic"),
        ("REDIS_URL", "http://x"),
        ("CHUNK_LINGER", "2s"),
        ("CHUNK_LINGER", "soon"),
    ] {
        let out = ai_service().env(var, value).output().expect("run");
        assert_eq!(out.status.code(), Some(2), "{var}={value}");
    }
    let out = ai_service()
        .env("CANCEL_GRACE", "20m")
        .env("STREAM_TTL", "10m")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2), "grace longer than the ttl");
}
