//! The `streamline` binary's command line: every setting of both services is listed, invalid
//! ones fail fast (one line on stderr, exit code 2, nothing started), and with no settings at
//! all it serves the web client and prints the one line with the URL.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn streamline() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_streamline"));
    // The admin ports on ports of their own (their defaults would collide between tests).
    cmd.env_remove("REDIS_URL")
        .env_remove("AI_SERVICE_URL")
        .env("AI_ADMIN_ADDR", "127.0.0.1:0")
        .env("GATEWAY_ADMIN_ADDR", "127.0.0.1:0");
    cmd
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

#[test]
fn help_lists_every_setting_of_both_services_with_its_env_var() {
    let out = streamline().arg("--help").output().expect("run");
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for var in [
        // ai-service
        "AI_ADDR",
        "CANCEL_GRACE",
        "STREAM_TTL",
        "HISTORY_TURNS",
        "SESSION_TTL",
        "LEASE_TTL",
        "PROVIDER",
        "DEMO_TOKENS",
        "DEMO_TOKENS_PER_SEC",
        "OPENAI_BASE_URL",
        "OPENAI_API_KEY",
        "OPENAI_MODEL",
        "REPLICA_ID",
        // gateway
        "GATEWAY_ADDR",
        "AI_SERVICE_URL",
        "CLIENT_TIMEOUT",
        "HEARTBEAT_INTERVAL",
        "SEND_QUEUE_BYTES",
        "SEND_TIMEOUT",
        "AUTH_SECRET",
        "RESUME_SECRET",
        "JWT_JWKS_URL",
        "JWT_PUBLIC_KEY_FILE",
        "JWT_ISSUER",
        "JWT_AUDIENCE",
        "JWT_LEEWAY",
        "MAX_FRAME_BYTES",
        "MAX_CONTENT_BYTES",
        // both
        "REDIS_URL",
        "SHUTDOWN_TIMEOUT",
        "REDIS_COMMAND_TIMEOUT",
        "LOG_FORMAT",
    ] {
        assert!(help.contains(var), "--help does not mention {var}");
    }
    for flag in ["--ai-addr", "--gateway-addr", "--redis-url", "--log-format"] {
        assert!(help.contains(flag), "--help does not mention {flag}");
    }
    assert!(help.contains("[default: 127.0.0.1:8080]"));
}

#[test]
fn invalid_settings_exit_with_code_2_and_one_line() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[("CANCEL_GRACE", "10")], "cancel"),
        (&[("STREAM_TTL", "forever")], "stream-ttl"),
        (&[("PROVIDER", "magic")], "provider"),
        (&[("GATEWAY_ADDR", "nowhere")], "gateway-addr"),
        (&[("LOG_FORMAT", "xml")], "log-format"),
        (&[("REDIS_URL", "http://x")], "REDIS_URL"),
        (&[("AI_SERVICE_URL", "http://127.0.0.1:1")], "REDIS_URL"),
        (
            &[("CANCEL_GRACE", "20m"), ("STREAM_TTL", "10m")],
            "CANCEL_GRACE",
        ),
        (
            &[("CLIENT_TIMEOUT", "1s"), ("HEARTBEAT_INTERVAL", "5s")],
            "CLIENT_TIMEOUT",
        ),
        (&[("DISCONNECT_TIMEOUT", "soon")], "disconnect-timeout"),
        (&[("DISCONNECT_TIMEOUT", "2h")], "DISCONNECT_TIMEOUT"),
        (
            &[("JWT_JWKS_URL", "http://idp.example.com/jwks")],
            "jwt-jwks-url",
        ),
        (
            &[("JWT_JWKS_URL", "https://idp.example.com/jwks")],
            "RESUME_SECRET",
        ),
    ];
    for (env, needle) in cases {
        let mut cmd = streamline();
        cmd.env("AI_ADDR", "127.0.0.1:0")
            .env("GATEWAY_ADDR", "127.0.0.1:0");
        for (k, v) in *env {
            cmd.env(k, v);
        }
        let out = cmd.output().expect("run");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{env:?}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{env:?}: {stderr}");
        assert!(
            stderr.to_lowercase().contains(&needle.to_lowercase()),
            "{env:?}: {stderr}"
        );
        assert!(out.stdout.is_empty(), "nothing started: {env:?}");
    }
    let out = streamline().arg("--no-such-flag").output().expect("run");
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn a_port_in_use_fails_before_anything_starts() {
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().unwrap().port();
    for (ai, gw) in [
        (format!("127.0.0.1:{port}"), "127.0.0.1:0".to_string()),
        ("127.0.0.1:0".to_string(), format!("127.0.0.1:{port}")),
    ] {
        let out = streamline()
            .env("AI_ADDR", &ai)
            .env("GATEWAY_ADDR", &gw)
            .output()
            .expect("run");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains("cannot listen"), "{stderr}");
        assert!(out.stdout.is_empty(), "no URL printed");
    }
}

#[test]
fn embedded_mode_serves_the_web_client_and_prints_one_url_line() {
    let (ai_port, gw_port) = (free_port(), free_port());
    let (ai_admin, gw_admin) = (free_port(), free_port());
    let mut child = streamline()
        .env("AI_ADDR", format!("127.0.0.1:{ai_port}"))
        .env("GATEWAY_ADDR", format!("127.0.0.1:{gw_port}"))
        .env("AI_ADMIN_ADDR", format!("127.0.0.1:{ai_admin}"))
        .env("GATEWAY_ADMIN_ADDR", format!("127.0.0.1:{gw_admin}"))
        .env("LOG_FORMAT", "json")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .expect("read the URL line");
    assert!(
        line.starts_with(&format!("streamline: open http://127.0.0.1:{gw_port}/ ")),
        "{line}"
    );
    assert!(
        line.contains("embedded mode: in-memory store, demo model"),
        "{line}"
    );
    // The web client and both services answer.
    let start = Instant::now();
    let get = |port: u16, path: &str| -> String {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        write!(s, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").unwrap();
        let mut body = String::new();
        let _ = s.read_to_string(&mut body);
        body
    };
    assert!(get(gw_port, "/").contains("200 OK"));
    loop {
        if get(ai_admin, "/readyz").contains("200 OK")
            && get(gw_admin, "/readyz").contains("200 OK")
        {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "never ready");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Each admin port serves its service's metrics; the public ports do not.
    assert!(get(ai_admin, "/metrics").contains("streamline_ai_"));
    assert!(get(gw_admin, "/metrics").contains("streamline_gateway_"));
    assert!(get(ai_port, "/metrics").contains("404"));
    assert!(get(gw_port, "/metrics").contains("404"));
    // SIGTERM: a clean exit.
    Command::new("kill")
        .arg("-15")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    let status = child.wait().expect("wait");
    assert!(status.success(), "{status:?}");
    let mut logs = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut logs).unwrap();
    let starting: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains("streamline starting"))
        .collect();
    assert_eq!(starting.len(), 1, "{logs}");
    assert!(starting[0].contains("\"mode\":\"embedded\""), "{logs}");
    for l in logs.lines() {
        assert!(l.starts_with('{'), "--log-format json: {l}");
    }
}
