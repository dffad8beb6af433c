//! The binary's command line: settings are listed, invalid ones fail fast with exit code 2.

use std::process::Command;

fn gateway() -> Command {
    Command::new(env!("CARGO_BIN_EXE_gateway"))
}

#[test]
fn help_lists_every_setting_with_its_env_var() {
    let out = gateway().arg("--help").output().expect("run");
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for var in [
        "GATEWAY_ADDR",
        "REDIS_URL",
        "AI_SERVICE_URL",
        "CLIENT_TIMEOUT",
        "HEARTBEAT_INTERVAL",
        "SEND_QUEUE_BYTES",
        "SEND_TIMEOUT",
        "AUTH_SECRET",
        "SHUTDOWN_TIMEOUT",
        "LOG_FORMAT",
    ] {
        assert!(help.contains(var), "--help does not mention {var}");
    }
}

#[test]
fn invalid_settings_exit_with_code_2_and_one_line() {
    for (var, value) in [
        ("CLIENT_TIMEOUT", "soon"),
        ("SEND_TIMEOUT", "10"),
        ("AI_SERVICE_URL", "ftp://x"),
        ("GATEWAY_ADDR", "nowhere"),
    ] {
        let out = gateway().env(var, value).output().expect("run");
        assert_eq!(out.status.code(), Some(2), "{var}={value}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.trim().is_empty(), "{var}={value}: no message");
    }
}

#[test]
fn a_port_in_use_fails_at_start_with_code_2() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr");
    let out = gateway()
        .env("GATEWAY_ADDR", addr.to_string())
        .env("REDIS_URL", "redis://127.0.0.1:1")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot listen"));
}
