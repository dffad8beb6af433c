//! The security settings are listed in `--help` and invalid values fail at start (exit 2).

use std::process::Command;

fn gateway() -> Command {
    Command::new(env!("CARGO_BIN_EXE_gateway"))
}

#[test]
fn help_lists_the_security_settings() {
    let out = gateway().arg("--help").output().expect("run");
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for var in [
        "AUTH_SECRET",
        "ALLOWED_ORIGINS",
        "AI_SERVICE_TOKEN",
        "RATE_LIMIT_PER_SEC",
        "RATE_LIMIT_BURST",
        "MAX_GENERATIONS_PER_SESSION",
        "MAX_CONNECTIONS",
        "MAX_CONNECTIONS_PER_IP",
        "TRUSTED_PROXIES",
        "MAX_FRAME_BYTES",
        "MAX_CONTENT_BYTES",
    ] {
        assert!(help.contains(var), "--help does not mention {var}");
    }
}

#[test]
fn invalid_security_settings_exit_with_code_2() {
    for (var, value) in [
        ("ALLOWED_ORIGINS", "chat.example.com"),
        ("ALLOWED_ORIGINS", "https://chat.example.com/path"),
        ("TRUSTED_PROXIES", "10.0.0.0/99"),
        ("TRUSTED_PROXIES", "proxy.local"),
        ("RATE_LIMIT_PER_SEC", "-1"),
        ("RATE_LIMIT_PER_SEC", "NaN"),
        ("RATE_LIMIT_BURST", "0"),
        ("MAX_GENERATIONS_PER_SESSION", "0"),
        ("MAX_CONNECTIONS", "0"),
        ("AI_SERVICE_TOKEN", "short"),
        ("AUTH_SECRET", "short"),
    ] {
        let out = gateway()
            .env(var, value)
            .env("GATEWAY_ADDR", "127.0.0.1:0")
            .output()
            .expect("run");
        assert_eq!(out.status.code(), Some(2), "{var}={value}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.trim().is_empty(), "{var}={value}: no message");
    }
}
