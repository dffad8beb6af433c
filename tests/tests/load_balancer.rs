//! The shipped nginx configuration (`deploy/nginx/nginx.conf`), exercised for real: nginx on
//! loopback in front of two gateways and an ai-service. A chat streams through it; the gateway
//! holding the socket gets SIGTERM; the client resumes through the balancer onto the other one
//! and its text arrives whole.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use e2e_tests::client::{absorb, Incoming, Transcript};
use e2e_tests::metrics::metric;
use e2e_tests::process::Proc;
use e2e_tests::{free_port, AiService, Gateway, RedisServer, WsClient, PATIENCE};
use shared_proto::FinalStatus;

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// Starts nginx with the shipped config, listening on `port`, balancing over `gateways`.
fn start_nginx(port: u16, gateways: &[u16]) -> (Proc, tempdir::Dir) {
    let dir = tempdir::Dir::new("nginx");
    let conf = std::fs::read_to_string(repo_root().join("deploy/nginx/nginx.conf"))
        .expect("deploy/nginx/nginx.conf");
    assert!(
        conf.contains("listen 8000;"),
        "the shipped config listens on 8000"
    );
    let conf = conf.replace("listen 8000;", &format!("listen 127.0.0.1:{port};"));
    std::fs::write(dir.path().join("nginx.conf"), conf).expect("write conf");
    let servers: String = gateways
        .iter()
        .map(|p| format!("    server 127.0.0.1:{p} max_fails=1 fail_timeout=5s;\n"))
        .collect();
    std::fs::write(
        dir.path().join("upstreams.conf"),
        format!("upstream gateways {{\n    least_conn;\n{servers}    keepalive 32;\n}}\n"),
    )
    .expect("write upstreams");
    let mut cmd = Command::new("nginx");
    cmd.arg("-p")
        .arg(dir.path())
        .arg("-c")
        .arg(dir.path().join("nginx.conf"))
        .arg("-g")
        .arg(format!(
            "daemon off; pid {};",
            dir.path().join("nginx.pid").display()
        ));
    (Proc::spawn("nginx", cmd), dir)
}

/// A scratch directory removed on drop.
mod tempdir {
    use std::path::{Path, PathBuf};

    pub struct Dir(PathBuf);

    impl Dir {
        pub fn new(tag: &str) -> Dir {
            let path = std::env::temp_dir().join(format!(
                "e2e-{tag}-{}-{}",
                std::process::id(),
                uuid::Uuid::new_v4().simple()
            ));
            std::fs::create_dir_all(&path).expect("temp dir");
            Dir(path)
        }

        pub fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

async fn open_connections(gateway: &Gateway) -> f64 {
    metric(&gateway.admin_url(), "streamline_gateway_connections")
        .await
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_resumes_through_nginx_when_its_gateway_gets_sigterm() {
    assert!(
        Command::new("nginx").arg("-v").output().is_ok(),
        "nginx is required (apt-get install nginx-light; .ci/run installs it)"
    );
    let redis = RedisServer::start();
    let ai = AiService::start(&redis.url(), &[]).await;
    let mut gateways = [
        Gateway::start(&redis.url(), &ai.url(), &[]).await,
        Gateway::start(&redis.url(), &ai.url(), &[]).await,
    ];
    let lb_port = free_port();
    let (_nginx, _dir) = start_nginx(lb_port, &[gateways[0].port, gateways[1].port]);
    e2e_tests::stack::wait_ready(&format!("http://127.0.0.1:{lb_port}/healthz")).await;
    let lb = format!("ws://127.0.0.1:{lb_port}/ws");

    let mut c = WsClient::connect(&lb).await;
    let id = c
        .chat("!demo tokens=150 rate=40\nthrough the balancer")
        .await;
    let mut t = Transcript::new(id);
    c.read_chunks(&mut t, 5).await;
    // Which gateway holds the socket?
    let start = Instant::now();
    let holder = loop {
        let a = open_connections(&gateways[0]).await;
        let b = open_connections(&gateways[1]).await;
        if a + b >= 1.0 {
            break if a >= 1.0 { 0 } else { 1 };
        }
        assert!(
            start.elapsed() < PATIENCE,
            "no gateway reports the connection"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    gateways[holder].proc.signal(15);
    let close = loop {
        match c.recv().await {
            Incoming::Frame(f) => {
                absorb(&mut t, &f);
            }
            Incoming::Close(close) => break close,
            Incoming::Garbage(g) => panic!("garbage {g:.80}"),
        }
    };
    assert_eq!(close.map(|c| c.0), Some(1001), "going away, through nginx");

    // Reconnect through the balancer: it must land on the other gateway and resume.
    let mut c2 = WsClient::resume_session(&lb, c.session_id, &c.resume_token).await;
    c2.resume(id, t.seqs.len() as u64).await;
    while t.done.is_none() {
        let f = c2.frame().await;
        assert!(absorb(&mut t, &f), "unexpected {f:?}");
    }
    t.assert_well_formed();
    assert_eq!(t.status(), Some(FinalStatus::Completed));
    let stored = ai.message(c.session_id, id).await.expect("stored");
    assert_eq!(t.text, stored.text);
    assert_eq!(
        open_connections(&gateways[1 - holder]).await,
        1.0,
        "the resumed socket is on the surviving gateway"
    );
    assert_eq!(gateways[holder].proc.wait_exit(PATIENCE), Some(0));
}
