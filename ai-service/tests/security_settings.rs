//! `AI_SERVICE_TOKEN` is listed in `--help`, and a short one fails at start (exit 2).

use std::process::Command;

#[test]
fn the_ops_token_is_a_setting() {
    let bin = env!("CARGO_BIN_EXE_ai-service");
    let out = Command::new(bin).arg("--help").output().expect("run");
    assert!(String::from_utf8_lossy(&out.stdout).contains("AI_SERVICE_TOKEN"));
    let out = Command::new(bin)
        .env("AI_SERVICE_TOKEN", "short")
        .env("AI_ADDR", "127.0.0.1:0")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
}
