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
        "RESUME_SECRET",
        "JWT_JWKS_URL",
        "JWT_PUBLIC_KEY_FILE",
        "JWT_ISSUER",
        "JWT_AUDIENCE",
        "JWT_LEEWAY",
        "JWT_JWKS_REFRESH",
        "JWT_JWKS_MIN_REFRESH",
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
        ("RESUME_SECRET", "short"),
        ("JWT_JWKS_URL", "http://idp.example.com/jwks"),
        ("JWT_JWKS_URL", "jwks.json"),
        ("JWT_PUBLIC_KEY_FILE", "/nonexistent/key.pem"),
        ("JWT_PUBLIC_KEY_FILE", "/etc/hostname"),
        ("JWT_AUDIENCE", " , "),
        ("JWT_ISSUER", " "),
        ("JWT_LEEWAY", "10m"),
        ("JWT_LEEWAY", "5"),
        ("JWT_JWKS_REFRESH", "0s"),
        ("JWT_JWKS_MIN_REFRESH", "soon"),
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

/// Settings that are valid alone but not together: exit 2, one line naming them.
#[test]
fn identity_settings_that_do_not_fit_together_exit_with_code_2() {
    let jwks = (
        "JWT_JWKS_URL",
        "https://idp.example.com/.well-known/jwks.json",
    );
    for (env, names) in [
        // Resume tokens need a key when JWTs are verified with a JWKS only.
        (vec![jwks], "RESUME_SECRET"),
        // An iss/aud check with no key at all would never run.
        (
            vec![("JWT_ISSUER", "https://idp.example.com/")],
            "JWT_ISSUER",
        ),
        (vec![("JWT_AUDIENCE", "api")], "JWT_AUDIENCE"),
        (
            vec![
                jwks,
                ("RESUME_SECRET", "0123456789abcdef"),
                ("JWT_JWKS_REFRESH", "5s"),
            ],
            "JWT_JWKS_MIN_REFRESH",
        ),
    ] {
        let mut cmd = gateway();
        cmd.env("GATEWAY_ADDR", "127.0.0.1:0")
            .env("REDIS_URL", "redis://127.0.0.1:1");
        for (k, v) in &env {
            cmd.env(k, v);
        }
        let out = cmd.output().expect("run");
        assert_eq!(out.status.code(), Some(2), "{env:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(names), "{env:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{env:?}: {err}");
    }
}
