//! Child processes: redis-server (standalone, with TLS, with AOF, Sentinel, Cluster with or
//! without replicas) and the workspace binaries. Everything listens on loopback on free ports,
//! keeps its files in a temporary directory, and is killed (SIGKILL) when its handle drops.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    // Ports this test process handed out already: the kernel may hand the same free port out
    // again once its listener is dropped, and a cluster takes a dozen at once.
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    loop {
        // Bind to port 0 and let the kernel choose; the listener is dropped right away.
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("no free port on loopback");
        let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
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
    /// Where its stderr goes, when captured ([`Proc::spawn_capturing`]).
    stderr: Option<PathBuf>,
}

impl Proc {
    /// Starts `cmd` with its stderr written to a fresh file (stdout discarded), for tests that
    /// read what a process logged ([`Proc::stderr`]). The file is removed on drop.
    pub fn spawn_capturing(name: &str, mut cmd: Command) -> Proc {
        let path = std::env::temp_dir().join(format!(
            "e2e-{}-{}-{}.stderr",
            name.replace(' ', "-"),
            std::process::id(),
            free_port()
        ));
        let file = std::fs::File::create(&path).expect("stderr capture file");
        cmd.stdout(Stdio::null()).stderr(Stdio::from(file));
        Self::launch(name, cmd, Some(path))
    }

    /// What the process wrote to stderr so far (empty unless started with
    /// [`Proc::spawn_capturing`]).
    pub fn stderr(&self) -> String {
        self.stderr
            .as_ref()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .unwrap_or_default()
    }

    pub fn spawn(name: &str, mut cmd: Command) -> Proc {
        let quiet = std::env::var("E2E_LOGS").is_err();
        if quiet {
            cmd.stdout(Stdio::null()).stderr(Stdio::null());
        }
        Self::launch(name, cmd, None)
    }

    fn launch(name: &str, mut cmd: Command, stderr: Option<PathBuf>) -> Proc {
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Proc {
            name: name.to_string(),
            child: Some(child),
            stderr,
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
        if let Some(p) = &self.stderr {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// A temporary directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(what: &str) -> TempDir {
        let dir =
            std::env::temp_dir().join(format!("e2e-{what}-{}-{}", std::process::id(), free_port()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// `name` inside the directory, as a string for command lines.
    pub fn file(&self, name: &str) -> String {
        self.0.join(name).display().to_string()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A private `redis-server` on a free port: without persistence ([`RedisServer::start`]),
/// with AOF ([`RedisServer::start_with_aof`]) or TLS only ([`RedisServer::start_tls`]).
pub struct RedisServer {
    pub port: u16,
    proc: Proc,
    /// Every argument but `--port`/`--tls-port`.
    args: Vec<String>,
    tls: Option<TlsListener>,
    /// The AOF directory, kept across restarts.
    _dir: Option<TempDir>,
}

/// The TLS side of a [`RedisServer`]: which certificates, and how redis-cli reaches it.
#[derive(Clone)]
struct TlsListener {
    cli_args: Vec<String>,
}

/// `--tls-auth-clients`: whether the server asks for a client certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientCerts {
    /// `no`: plain server-authenticated TLS.
    NotAsked,
    /// `yes`: mutual TLS, a client without a certificate is refused.
    Required,
}

fn no_persistence() -> Vec<String> {
    ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

impl RedisServer {
    pub fn start() -> RedisServer {
        Self::launch(no_persistence(), None, None)
    }

    /// With the append-only file on (`appendfsync everysec`) in a temporary directory, so a
    /// [`RedisServer::restart`] keeps the data (all but the last second after a SIGKILL).
    pub fn start_with_aof() -> RedisServer {
        let dir = TempDir::new("redis-aof");
        let args = [
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "yes",
            "--appendfsync",
            "everysec",
            "--dir",
            &dir.path().display().to_string(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        Self::launch(args, None, Some(dir))
    }

    /// TLS only (`--port 0 --tls-port P`), presenting `server` (a certificate of `pki`).
    pub fn start_tls(pki: &TestPki, server: &ServerCert, clients: ClientCerts) -> RedisServer {
        let mut args = no_persistence();
        args.extend(pki.server_args(server, clients));
        let cli_args = pki.cli_args();
        Self::launch(args, Some(TlsListener { cli_args }), None)
    }

    fn launch(args: Vec<String>, tls: Option<TlsListener>, dir: Option<TempDir>) -> RedisServer {
        let port = free_port();
        let proc = Self::spawn(port, &args, tls.is_some());
        let server = RedisServer {
            port,
            proc,
            args,
            tls,
            _dir: dir,
        };
        server.wait_up();
        server
    }

    fn spawn(port: u16, args: &[String], tls: bool) -> Proc {
        let mut cmd = Command::new("redis-server");
        if tls {
            cmd.args(["--port", "0", "--tls-port", &port.to_string()]);
        } else {
            cmd.args(["--port", &port.to_string()]);
        }
        cmd.args(args);
        Proc::spawn("redis-server", cmd)
    }

    /// `redis://127.0.0.1:P`, or `rediss://127.0.0.1:P` for a TLS server.
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() {
            "rediss"
        } else {
            "redis"
        };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    fn wait_up(&self) {
        let start = Instant::now();
        while start.elapsed() < crate::PATIENCE {
            if self.cli(&["ping"]) == "PONG" {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("redis-server on {} did not come up", self.port);
    }

    /// Kills the server (SIGKILL): without AOF every key is lost, as with a crash.
    pub fn kill(&mut self) {
        self.proc.kill();
    }

    /// Sends a signal (SIGSTOP = 19 freezes it, SIGCONT = 18 thaws it).
    pub fn signal(&self, sig: i32) {
        self.proc.signal(sig);
    }

    /// Starts it again on the same port, with the same settings (and AOF directory).
    pub fn restart(&mut self) {
        self.proc.kill();
        self.proc = Self::spawn(self.port, &self.args, self.tls.is_some());
        self.wait_up();
    }

    /// Runs a redis-cli command and returns its output.
    pub fn cli(&self, args: &[&str]) -> String {
        let tls = self
            .tls
            .as_ref()
            .map(|t| t.cli_args.as_slice())
            .unwrap_or(&[]);
        cli_with(tls, self.port, args)
    }
}

/// A certificate authority made for one test, with a client certificate, in a temporary
/// directory (PEM files): nothing is committed, nothing outlives the test.
pub struct TestPki {
    pub dir: TempDir,
    /// The CA certificate (what `REDIS_TLS_CA_FILE` points at).
    pub ca_cert: String,
    /// A client certificate and key signed by the CA (mutual TLS).
    pub client_cert: String,
    pub client_key: String,
    ca: rcgen::Issuer<'static, rcgen::KeyPair>,
}

/// A server certificate of a [`TestPki`].
pub struct ServerCert {
    pub cert: String,
    pub key: String,
}

impl TestPki {
    pub fn new() -> TestPki {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair, KeyUsagePurpose};
        let dir = TempDir::new("pki");
        let key = KeyPair::generate().expect("CA key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "streamline test CA");
        let cert = params.self_signed(&key).expect("CA certificate");
        let ca_cert = dir.file("ca.pem");
        std::fs::write(&ca_cert, cert.pem()).expect("write CA");
        let ca = rcgen::Issuer::new(params, key);
        let mut pki = TestPki {
            ca_cert,
            client_cert: dir.file("client.pem"),
            client_key: dir.file("client.key"),
            dir,
            ca,
        };
        let client = pki.issue("client", &["streamline-client"]);
        pki.client_cert = client.cert;
        pki.client_key = client.key;
        pki
    }

    /// redis-server arguments presenting `server` and trusting this CA for clients.
    fn server_args(&self, server: &ServerCert, clients: ClientCerts) -> Vec<String> {
        [
            "--tls-cert-file",
            &server.cert,
            "--tls-key-file",
            &server.key,
            "--tls-ca-cert-file",
            &self.ca_cert,
            "--tls-auth-clients",
            match clients {
                ClientCerts::NotAsked => "no",
                ClientCerts::Required => "yes",
            },
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }

    /// redis-cli arguments for a server of this CA.
    fn cli_args(&self) -> Vec<String> {
        [
            "--tls",
            "--cacert",
            &self.ca_cert,
            "--cert",
            &self.client_cert,
            "--key",
            &self.client_key,
            // redis-cli checks the name too; the harness only needs to know the port answers.
            "--insecure",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }

    /// A server certificate for these names (DNS names or IP addresses).
    pub fn server_cert(&self, name: &str, names: &[&str]) -> ServerCert {
        self.issue(name, names)
    }

    fn issue(&self, name: &str, names: &[&str]) -> ServerCert {
        let key = rcgen::KeyPair::generate().expect("key");
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let params = rcgen::CertificateParams::new(names).expect("params");
        let cert = params.signed_by(&key, &self.ca).expect("certificate");
        let (cert_path, key_path) = (
            self.dir.file(&format!("{name}.pem")),
            self.dir.file(&format!("{name}.key")),
        );
        std::fs::write(&cert_path, cert.pem()).expect("write certificate");
        std::fs::write(&key_path, key.serialize_pem()).expect("write key");
        ServerCert {
            cert: cert_path,
            key: key_path,
        }
    }
}

impl Default for TestPki {
    fn default() -> Self {
        Self::new()
    }
}

/// A private 3-master Redis Cluster on free ports (no persistence), without replicas
/// ([`RedisCluster::start`]) or with one replica per master
/// ([`RedisCluster::start_with_replicas`]); its node files in a temporary directory removed on
/// drop.
pub struct RedisCluster {
    pub ports: Vec<u16>,
    dir: PathBuf,
    procs: Vec<Proc>,
}

impl RedisCluster {
    pub fn start() -> RedisCluster {
        Self::launch(0)
    }

    /// Three masters with one replica each, and a short `cluster-node-timeout` (1 s) so that a
    /// killed master's replica takes over in seconds ([`RedisCluster::kill_master_of`]).
    pub fn start_with_replicas() -> RedisCluster {
        Self::launch(1)
    }

    fn launch(replicas: usize) -> RedisCluster {
        let ports: Vec<u16> = (0..3 * (1 + replicas)).map(|_| free_port()).collect();
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
                if replicas > 0 {
                    cmd.args(["--cluster-node-timeout", "1000"]);
                }
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
            .args(["--cluster-replicas", &replicas.to_string(), "--cluster-yes"])
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

    /// The ports of the nodes still running.
    pub fn running_ports(&self) -> Vec<u16> {
        self.alive()
    }

    fn alive(&self) -> Vec<u16> {
        self.ports
            .iter()
            .zip(&self.procs)
            .filter(|(_, p)| p.pid() != 0)
            .map(|(port, _)| *port)
            .collect()
    }

    /// Waits until every running node reports `cluster_state:ok` and knows every node, and
    /// (with replicas) every replica's link to its master is up.
    fn wait_ok(&self) {
        let start = Instant::now();
        let total = self.ports.len();
        'outer: while start.elapsed() < crate::PATIENCE {
            for port in self.alive() {
                let info = cli(port, &["cluster", "info"]);
                if !info.contains("cluster_state:ok")
                    || !info.contains(&format!("cluster_known_nodes:{total}"))
                {
                    std::thread::sleep(Duration::from_millis(50));
                    continue 'outer;
                }
                let replication = cli(port, &["info", "replication"]);
                if replication.contains("role:slave")
                    && !replication.contains("master_link_status:up")
                {
                    std::thread::sleep(Duration::from_millis(50));
                    continue 'outer;
                }
            }
            return;
        }
        panic!("the cluster on {:?} did not become ok", self.ports);
    }

    /// The port of the master that serves `key`'s slot now (asked of a running node).
    pub fn master_of(&self, key: &str) -> u16 {
        self.healthy_master_of(key)
            .unwrap_or_else(|| panic!("no healthy master serves {key}'s slot"))
    }

    /// The master serving `key`'s slot, unless it is failing (or none is known yet).
    fn healthy_master_of(&self, key: &str) -> Option<u16> {
        let alive = self.alive();
        let slot: u16 = cli(alive[0], &["cluster", "keyslot", key])
            .parse()
            .expect("CLUSTER KEYSLOT");
        let nodes = cli(alive[0], &["cluster", "nodes"]);
        for line in nodes.lines() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.len() < 9 || !fields[2].contains("master") || fields[2].contains("fail") {
                continue;
            }
            let serves = fields[8..].iter().any(|range| {
                let mut bounds = range.split('-').map(|b| b.parse::<u16>());
                match (bounds.next(), bounds.next()) {
                    (Some(Ok(a)), Some(Ok(b))) => a <= slot && slot <= b,
                    (Some(Ok(a)), None) => a == slot,
                    _ => false,
                }
            });
            if serves {
                let addr = fields[1].split('@').next().unwrap_or("");
                return addr.rsplit(':').next().and_then(|p| p.parse().ok());
            }
        }
        None
    }

    /// SIGKILLs the master of `key`'s slot and waits until its replica has taken over and the
    /// cluster is ok again. Returns (killed port, new master's port).
    pub fn kill_master_of(&mut self, key: &str) -> (u16, u16) {
        let old = self.master_of(key);
        let i = self.ports.iter().position(|p| *p == old).expect("a node");
        self.procs[i].kill();
        let start = Instant::now();
        loop {
            match self.healthy_master_of(key) {
                Some(now) if now != old => {
                    self.wait_ok_without(old);
                    return (old, now);
                }
                _ => {}
            }
            assert!(
                start.elapsed() < crate::PATIENCE,
                "no failover of {key}'s slot"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// [`RedisCluster::wait_ok`] while one node is dead (it is still known, as failed).
    fn wait_ok_without(&self, dead: u16) {
        let start = Instant::now();
        'outer: while start.elapsed() < crate::PATIENCE {
            for port in self.alive().into_iter().filter(|p| *p != dead) {
                if !cli(port, &["cluster", "info"]).contains("cluster_state:ok") {
                    std::thread::sleep(Duration::from_millis(50));
                    continue 'outer;
                }
            }
            return;
        }
        panic!("the cluster did not become ok after the failover");
    }

    /// Runs a command on the node at `port` (no redirections).
    pub fn cli_at(&self, port: u16, args: &[&str]) -> String {
        cli(port, args)
    }

    /// `redis-cluster://127.0.0.1:P1?node=127.0.0.1:P2&node=127.0.0.1:P3` (fred's syntax).
    pub fn url(&self) -> String {
        format!(
            "redis-cluster://127.0.0.1:{}?node=127.0.0.1:{}&node=127.0.0.1:{}",
            self.ports[0], self.ports[1], self.ports[2]
        )
    }

    /// Runs a redis-cli command in cluster mode (`-c`: follows redirections) on the first
    /// running node.
    pub fn cli(&self, args: &[&str]) -> String {
        let first = self.alive().first().copied().unwrap_or(self.ports[0]);
        let out = Command::new("redis-cli")
            .args(["-c", "-p", &first.to_string()])
            .args(args)
            .output()
            .expect("redis-cli");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

/// A master, one replica and three Sentinels (quorum 2, `down-after-milliseconds` 1000,
/// `failover-timeout` 3000) on free ports, their files in a temporary directory.
pub struct RedisSentinels {
    /// The service name the Sentinels monitor.
    pub service: String,
    /// The Redis servers (master first, until a failover), by port.
    servers: Vec<(u16, Proc)>,
    pub sentinel_ports: Vec<u16>,
    _sentinels: Vec<Proc>,
    /// redis-cli's TLS arguments (empty: plaintext).
    tls_cli: Vec<String>,
    _dir: TempDir,
}

impl RedisSentinels {
    pub fn start() -> RedisSentinels {
        Self::launch(None)
    }

    /// Every server and Sentinel TLS only (`port 0`, `tls-replication yes`), presenting
    /// `server` of `pki` (it must name 127.0.0.1: Sentinels announce addresses).
    pub fn start_tls(pki: &TestPki, server: &ServerCert) -> RedisSentinels {
        Self::launch(Some((pki, server)))
    }

    fn launch(tls: Option<(&TestPki, &ServerCert)>) -> RedisSentinels {
        let dir = TempDir::new("sentinel");
        let service = "streamline".to_string();
        let tls_server: Vec<String> = match tls {
            Some((pki, cert)) => {
                let mut a = pki.server_args(cert, ClientCerts::NotAsked);
                a.extend(["--tls-replication".to_string(), "yes".to_string()]);
                a
            }
            None => Vec::new(),
        };
        let tls_cli = tls.map(|(pki, _)| pki.cli_args()).unwrap_or_default();
        let server = |port: u16, replica_of: Option<u16>| {
            let mut cmd = Command::new("redis-server");
            if tls.is_some() {
                cmd.args(["--port", "0", "--tls-port", &port.to_string()]);
            } else {
                cmd.args(["--port", &port.to_string()]);
            }
            cmd.args(no_persistence()).args(&tls_server);
            if let Some(master) = replica_of {
                cmd.args(["--replicaof", "127.0.0.1", &master.to_string()]);
            }
            (port, Proc::spawn("redis-server (sentinel-managed)", cmd))
        };
        let (master, replica) = (free_port(), free_port());
        let servers = vec![server(master, None), server(replica, Some(master))];
        wait_pong_with(&tls_cli, master);
        wait_pong_with(&tls_cli, replica);
        let sentinel_ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let sentinels = sentinel_ports
            .iter()
            .map(|port| {
                // Sentinel rewrites its configuration file: one writable file per sentinel.
                let conf = dir.file(&format!("sentinel-{port}.conf"));
                // The TLS settings as config lines (`--tls-x y` → `tls-x y`).
                let listen = if tls.is_some() {
                    let lines: Vec<String> = tls_server
                        .chunks(2)
                        .map(|kv| format!("{} {}", kv[0].trim_start_matches("--"), kv[1]))
                        .collect();
                    format!("port 0\ntls-port {port}\n{}\n", lines.join("\n"))
                } else {
                    format!("port {port}\n")
                };
                std::fs::write(
                    &conf,
                    format!(
                        "{listen}bind 127.0.0.1\ndir {dir}\n\
                         sentinel monitor {service} 127.0.0.1 {master} 2\n\
                         sentinel down-after-milliseconds {service} 1000\n\
                         sentinel failover-timeout {service} 3000\n\
                         sentinel parallel-syncs {service} 1\n",
                        dir = dir.path().display()
                    ),
                )
                .expect("sentinel config");
                let mut cmd = Command::new("redis-server");
                cmd.arg(&conf).arg("--sentinel");
                Proc::spawn("redis-sentinel", cmd)
            })
            .collect();
        let set = RedisSentinels {
            service,
            servers,
            sentinel_ports,
            _sentinels: sentinels,
            tls_cli,
            _dir: dir,
        };
        set.wait_settled(master);
        set
    }

    /// Waits until every Sentinel names `master`, sees its replica, and knows the two other
    /// Sentinels (needed to authorise a failover), and the replica's link is up.
    fn wait_settled(&self, master: u16) {
        let start = Instant::now();
        'outer: while start.elapsed() < crate::PATIENCE {
            for port in &self.sentinel_ports {
                let ok = self.reported_master(*port) == Some(master)
                    && self
                        .cli_at(*port, &["sentinel", "replicas", &self.service])
                        .contains("127.0.0.1")
                    && self
                        .cli_at(*port, &["sentinel", "sentinels", &self.service])
                        .matches("runid")
                        .count()
                        == 2;
                if !ok {
                    std::thread::sleep(Duration::from_millis(100));
                    continue 'outer;
                }
            }
            let replicas: Vec<u16> = self
                .servers
                .iter()
                .map(|(p, _)| *p)
                .filter(|p| *p != master)
                .collect();
            if replicas.iter().all(|p| {
                self.cli_at(*p, &["info", "replication"])
                    .contains("master_link_status:up")
            }) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("the sentinels did not settle on master {master}");
    }

    /// The master's port as `sentinel` reports it.
    fn reported_master(&self, sentinel: u16) -> Option<u16> {
        let out = self.cli_at(
            sentinel,
            &["sentinel", "get-master-addr-by-name", &self.service],
        );
        out.lines().nth(1).and_then(|p| p.trim().parse().ok())
    }

    /// The current master's port (as the first Sentinel reports it).
    pub fn master(&self) -> u16 {
        self.reported_master(self.sentinel_ports[0])
            .expect("the sentinels name a master")
    }

    /// SIGKILLs the current master and waits until every Sentinel reports the replica as the
    /// new master and the new master answers as one. Returns the new master's port.
    pub fn kill_master_and_wait_failover(&mut self) -> u16 {
        let old = self.master();
        if let Some((_, p)) = self.servers.iter_mut().find(|(port, _)| *port == old) {
            p.kill();
        }
        let start = Instant::now();
        loop {
            let reported: Vec<Option<u16>> = self
                .sentinel_ports
                .iter()
                .map(|s| self.reported_master(*s))
                .collect();
            if let Some(Some(new)) = reported.first() {
                if *new != old
                    && reported.iter().all(|r| *r == Some(*new))
                    && self
                        .cli_at(*new, &["info", "replication"])
                        .contains("role:master")
                {
                    return *new;
                }
            }
            assert!(
                start.elapsed() < crate::PATIENCE,
                "no failover: the sentinels report {reported:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `redis-sentinel://127.0.0.1:S1?sentinelServiceName=…&node=127.0.0.1:S2&node=…` (fred's
    /// syntax; every `node` is a Sentinel).
    pub fn url(&self) -> String {
        let scheme = if self.tls_cli.is_empty() {
            "redis-sentinel"
        } else {
            "rediss-sentinel"
        };
        format!(
            "{scheme}://127.0.0.1:{}?sentinelServiceName={}&node=127.0.0.1:{}&node=127.0.0.1:{}",
            self.sentinel_ports[0], self.service, self.sentinel_ports[1], self.sentinel_ports[2]
        )
    }

    /// Runs a command on the server or Sentinel at `port`.
    pub fn cli_at(&self, port: u16, args: &[&str]) -> String {
        cli_with(&self.tls_cli, port, args)
    }

    /// Runs a command on the current master.
    pub fn cli(&self, args: &[&str]) -> String {
        self.cli_at(self.master(), args)
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
    cli_with(&[], port, args)
}

/// redis-cli with `tls` arguments first (empty: plaintext).
fn cli_with(tls: &[String], port: u16, args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .args(tls)
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
    wait_pong_with(&[], port)
}

fn wait_pong_with(tls: &[String], port: u16) {
    let start = Instant::now();
    while start.elapsed() < crate::PATIENCE {
        if cli_with(tls, port, &["ping"]) == "PONG" {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("redis-server on {port} did not come up");
}

/// Runs `bin` with `env` and expects exit code 2 with one line on stderr containing `needle`.
pub fn exits_2_with_one_line(bin: &str, env: &[(&str, &str)], needle: &str) {
    let mut cmd = Command::new(bin_path(bin));
    cmd.env("AI_ADDR", format!("127.0.0.1:{}", free_port()))
        .env("GATEWAY_ADDR", format!("127.0.0.1:{}", free_port()))
        .env("ADMIN_ADDR", format!("127.0.0.1:{}", free_port()))
        .env_remove("REDIS_URL")
        .env_remove("AI_SERVICE_URL");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run the binary");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{bin} {env:?}: {stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{bin}: {stderr}");
    assert!(stderr.contains(needle), "{bin}: {stderr}");
}
