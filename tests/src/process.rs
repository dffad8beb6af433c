//! Child processes: redis-server and the workspace binaries.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    // Bind to port 0 and let the kernel choose; the listener is dropped right away.
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free port on loopback")
}

/// The path of a workspace binary (built by `cargo test --workspace`, or `cargo build`).
pub fn bin_path(name: &str) -> PathBuf {
    if let Ok(dir) = std::env::var("STACK_BIN_DIR") {
        return PathBuf::from(dir).join(name);
    }
    // target/<profile>/deps/<test binary> → target/<profile>/<name>
    let exe = std::env::current_exe().expect("current_exe");
    // Test binaries live in target/<profile>/deps, bench binaries in target/<profile>.
    let dir = exe.parent().expect("the executable has a directory");
    let profile_dir = if dir.ends_with("deps") {
        dir.parent().expect("target/<profile>")
    } else {
        dir
    };
    let path = profile_dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: build the workspace binaries first (cargo build --workspace --bins)",
        path.display()
    );
    path
}

/// A child process killed on drop.
pub struct Proc {
    pub name: String,
    child: Option<Child>,
}

impl Proc {
    pub fn spawn(name: &str, mut cmd: Command) -> Proc {
        let quiet = std::env::var("E2E_LOGS").is_err();
        if quiet {
            cmd.stdout(Stdio::null()).stderr(Stdio::null());
        }
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Proc {
            name: name.to_string(),
            child: Some(child),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// SIGKILL, and reap.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends a signal (e.g. SIGTERM = 15) without waiting.
    pub fn signal(&self, sig: i32) {
        if let Some(child) = &self.child {
            let _ = Command::new("kill")
                .arg(format!("-{sig}"))
                .arg(child.id().to_string())
                .status();
        }
    }

    /// Waits for the process to exit on its own; returns its exit code.
    pub fn wait_exit(&mut self, deadline: Duration) -> Option<i32> {
        let start = Instant::now();
        while start.elapsed() < deadline {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    self.child = None;
                    return status.code();
                }
            } else {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A private `redis-server` on a free port, without persistence.
pub struct RedisServer {
    pub port: u16,
    proc: Proc,
}

impl RedisServer {
    pub fn start() -> RedisServer {
        let port = free_port();
        let proc = Self::spawn(port);
        let server = RedisServer { port, proc };
        server.wait_up();
        server
    }

    fn spawn(port: u16) -> Proc {
        let mut cmd = Command::new("redis-server");
        cmd.args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ]);
        Proc::spawn("redis-server", cmd)
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn wait_up(&self) {
        let start = Instant::now();
        while start.elapsed() < crate::PATIENCE {
            let out = Command::new("redis-cli")
                .args(["-p", &self.port.to_string(), "ping"])
                .output();
            if matches!(out, Ok(o) if String::from_utf8_lossy(&o.stdout).trim() == "PONG") {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("redis-server on {} did not come up", self.port);
    }

    /// Kills the server (SIGKILL): every key is lost, as with a crash without persistence.
    pub fn kill(&mut self) {
        self.proc.kill();
    }

    /// Starts it again on the same port.
    pub fn restart(&mut self) {
        self.proc.kill();
        self.proc = Self::spawn(self.port);
        self.wait_up();
    }

    /// Runs a redis-cli command and returns its output.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .arg("-p")
            .arg(self.port.to_string())
            .args(args)
            .output()
            .expect("redis-cli");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

/// A private 3-master Redis Cluster on free ports (no replicas, no persistence), its node
/// files in a temporary directory removed on drop.
pub struct RedisCluster {
    pub ports: Vec<u16>,
    dir: PathBuf,
    procs: Vec<Proc>,
}

impl RedisCluster {
    pub fn start() -> RedisCluster {
        let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let dir =
            std::env::temp_dir().join(format!("e2e-cluster-{}-{}", std::process::id(), ports[0]));
        std::fs::create_dir_all(&dir).expect("cluster temp dir");
        let procs = ports
            .iter()
            .map(|port| {
                let mut cmd = Command::new("redis-server");
                // The cluster bus port defaults to port + 10000, which may be taken or above
                // 65535 for an ephemeral port: give it a free one.
                cmd.current_dir(&dir).args([
                    "--port",
                    &port.to_string(),
                    "--cluster-port",
                    &free_port().to_string(),
                    "--bind",
                    "127.0.0.1",
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    &format!("nodes-{port}.conf"),
                    "--dir",
                    &dir.display().to_string(),
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                ]);
                Proc::spawn("redis-server (cluster)", cmd)
            })
            .collect();
        let cluster = RedisCluster { ports, dir, procs };
        for port in &cluster.ports {
            wait_pong(*port);
        }
        let nodes: Vec<String> = cluster
            .ports
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect();
        let out = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&nodes)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .output()
            .expect("redis-cli --cluster create");
        assert!(
            out.status.success(),
            "cluster create failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        cluster.wait_ok();
        cluster
    }

    /// Waits until every node reports `cluster_state:ok` and knows all three masters.
    fn wait_ok(&self) {
        let start = Instant::now();
        'outer: while start.elapsed() < crate::PATIENCE {
            for port in &self.ports {
                let info = cli(*port, &["cluster", "info"]);
                if !info.contains("cluster_state:ok") || !info.contains("cluster_known_nodes:3") {
                    std::thread::sleep(Duration::from_millis(50));
                    continue 'outer;
                }
            }
            return;
        }
        panic!("the cluster on {:?} did not become ok", self.ports);
    }

    /// `redis-cluster://127.0.0.1:P1?node=127.0.0.1:P2&node=127.0.0.1:P3` (fred's syntax).
    pub fn url(&self) -> String {
        format!(
            "redis-cluster://127.0.0.1:{}?node=127.0.0.1:{}&node=127.0.0.1:{}",
            self.ports[0], self.ports[1], self.ports[2]
        )
    }

    /// Runs a redis-cli command in cluster mode (`-c`: follows redirections) on the first node.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .args(["-c", "-p", &self.ports[0].to_string()])
            .args(args)
            .output()
            .expect("redis-cli");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for p in &mut self.procs {
            p.kill();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn cli(port: u16, args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .arg("-p")
        .arg(port.to_string())
        .args(args)
        .output();
    match out {
        Ok(o) => String::from_utf8_lossy(&o.stdout).trim().to_string(),
        Err(_) => String::new(),
    }
}

fn wait_pong(port: u16) {
    let start = Instant::now();
    while start.elapsed() < crate::PATIENCE {
        if cli(port, &["ping"]) == "PONG" {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("redis-server on {port} did not come up");
}
