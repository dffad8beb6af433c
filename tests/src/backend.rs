//! The store a suite runs against, so one test definition covers every deployment shape:
//!
//! - [`Backend::Redis`]: a private `redis-server`, an `ai-service` process and a `gateway`
//!   process (production's shape);
//! - [`Backend::Memory`]: the root `streamline` binary in embedded mode, one process with both
//!   services on the in-memory store (the tests still use the ai-service's HTTP API on its
//!   `AI_ADDR`);
//! - [`Backend::RedisCluster`]: like `Redis`, on a private 3-master Redis Cluster.

use std::process::Command;

use crate::process::{bin_path, free_port, Proc, RedisCluster, RedisServer};
use crate::stack::{wait_ready, AiApi, AiService, Gateway};

/// Which store (and so which process layout) a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Redis,
    Memory,
    RedisCluster,
}

/// A Redis deployment of a test (standalone or cluster).
pub enum RedisDeployment {
    Standalone(RedisServer),
    Cluster(RedisCluster),
}

impl RedisDeployment {
    /// The `REDIS_URL` the binaries get.
    pub fn url(&self) -> String {
        match self {
            RedisDeployment::Standalone(r) => r.url(),
            RedisDeployment::Cluster(c) => c.url(),
        }
    }

    /// Runs a redis-cli command (on a cluster, following redirections).
    pub fn cli(&self, args: &[&str]) -> String {
        match self {
            RedisDeployment::Standalone(r) => r.cli(args),
            RedisDeployment::Cluster(c) => c.cli(args),
        }
    }
}

impl Backend {
    /// Starts this backend's Redis, for tests that start processes themselves (several
    /// replicas). Panics for [`Backend::Memory`], which has no store outside its process.
    pub fn start_redis(self) -> RedisDeployment {
        match self {
            Backend::Redis => RedisDeployment::Standalone(RedisServer::start()),
            Backend::RedisCluster => RedisDeployment::Cluster(RedisCluster::start()),
            Backend::Memory => panic!("the memory backend has no store outside its process"),
        }
    }

    /// The smallest whole stack on this backend.
    pub async fn start(self) -> Deployment {
        self.start_with(&[], &[]).await
    }

    /// The stack with extra environment for the ai-service and for the gateway (in embedded
    /// mode both go to the one process).
    pub async fn start_with(self, ai_env: &[(&str, &str)], gw_env: &[(&str, &str)]) -> Deployment {
        match self {
            Backend::Redis | Backend::RedisCluster => {
                let redis = self.start_redis();
                let ai = AiService::start(&redis.url(), ai_env).await;
                let gateway = Gateway::start(&redis.url(), &ai.url(), gw_env).await;
                Deployment {
                    backend: self,
                    gateway: GatewayApi {
                        port: gateway.port,
                        admin_port: gateway.admin_port,
                    },
                    ai: ai.api(),
                    procs: vec![gateway.proc, ai.proc],
                    redis: Some(redis),
                }
            }
            Backend::Memory => {
                let (ai_port, gw_port) = (free_port(), free_port());
                let (ai_admin, gw_admin) = (free_port(), free_port());
                let replica_id = format!("ai-{ai_port}");
                let mut cmd = Command::new(bin_path("streamline"));
                cmd.env_remove("REDIS_URL")
                    .env_remove("AI_SERVICE_URL")
                    .env("AI_ADDR", format!("127.0.0.1:{ai_port}"))
                    .env("GATEWAY_ADDR", format!("127.0.0.1:{gw_port}"))
                    .env("AI_ADMIN_ADDR", format!("127.0.0.1:{ai_admin}"))
                    .env("GATEWAY_ADMIN_ADDR", format!("127.0.0.1:{gw_admin}"))
                    .env("REPLICA_ID", &replica_id)
                    .env("AUTH_SECRET", "test-secret-0123456789")
                    .env("SHUTDOWN_TIMEOUT", "5s");
                for (k, v) in ai_env.iter().chain(gw_env) {
                    cmd.env(k, v);
                }
                let proc = Proc::spawn("streamline", cmd);
                let ai = AiApi {
                    port: ai_port,
                    admin_port: ai_admin,
                    replica_id,
                };
                let gateway = GatewayApi {
                    port: gw_port,
                    admin_port: gw_admin,
                };
                wait_ready(&format!("{}/readyz", ai.admin_url())).await;
                wait_ready(&format!("{}/readyz", gateway.admin_url())).await;
                Deployment {
                    backend: self,
                    gateway,
                    ai,
                    procs: vec![proc],
                    redis: None,
                }
            }
        }
    }
}

/// Where the gateway of a [`Deployment`] listens.
#[derive(Debug, Clone)]
pub struct GatewayApi {
    pub port: u16,
    pub admin_port: u16,
}

impl GatewayApi {
    /// The admin port: `/metrics` and the probes.
    pub fn admin_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.admin_port)
    }

    pub fn ws_url(&self) -> String {
        format!("ws://127.0.0.1:{}/ws", self.port)
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

/// One gateway and one ai-service on a [`Backend`]; every process dies with it.
pub struct Deployment {
    pub backend: Backend,
    pub gateway: GatewayApi,
    pub ai: AiApi,
    pub procs: Vec<Proc>,
    /// The Redis behind it (none in embedded mode).
    pub redis: Option<RedisDeployment>,
}
