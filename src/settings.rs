//! The settings of the `streamline` binary: both services' settings, composed from their own
//! definitions (the same names, defaults, parsers and checks), with what they share declared
//! once ([`service_kit::CommonArgs`]) and each service's addresses under their own names
//! (`--ai-addr`/`AI_ADDR`, `--gateway-addr`/`GATEWAY_ADDR`, and the admin ports
//! `--ai-admin-addr`/`AI_ADMIN_ADDR`, `--gateway-admin-addr`/`GATEWAY_ADMIN_ADDR`: each binary's
//! `ADMIN_ADDR`, with its default).
//!
//! `REDIS_URL` and `AI_SERVICE_URL` have no effective default here: unset, they choose the mode
//! (in-memory store; ai-service in this process).

use std::net::SocketAddr;

use clap::parser::ValueSource;
use clap::{ArgMatches, Command, CommandFactory, FromArgMatches, Parser};
use service_kit::CommonArgs;

/// How the process runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// No `REDIS_URL`: gateway + ai-service in this process on the in-memory store.
    Embedded,
    /// `REDIS_URL`, no `AI_SERVICE_URL`: gateway + ai-service in this process on Redis.
    Redis,
    /// `REDIS_URL` and `AI_SERVICE_URL`: only the gateway, on Redis, in front of that ai-service.
    GatewayOnly,
}

/// The command line.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "streamline",
    version,
    about = "The whole stack in one process: the WebSocket gateway (with the web client) and the \
             ai-service.\n\
             Without REDIS_URL: in-memory store (embedded mode). With REDIS_URL: both services on \
             Redis; with REDIS_URL and AI_SERVICE_URL: only the gateway."
)]
pub struct Cli {
    /// Address of the ai-service's HTTP API (the gateway reaches it there).
    #[arg(long, env = "AI_ADDR", default_value = "127.0.0.1:8081", help_heading = AI)]
    pub ai_addr: SocketAddr,

    /// Address of the gateway: HTTP, WebSocket and the web client.
    #[arg(long, env = "GATEWAY_ADDR", default_value = "127.0.0.1:8080", help_heading = GATEWAY)]
    pub gateway_addr: SocketAddr,

    /// The ai-service's admin port: `/metrics`, the probes and the admin API (`/admin/...`,
    /// see ADMIN_TOKEN). Internal: never expose it publicly.
    #[arg(long, env = "AI_ADMIN_ADDR", default_value = "127.0.0.1:9091", help_heading = AI)]
    pub ai_admin_addr: SocketAddr,

    /// The gateway's admin port: `/metrics` and the probes. Internal: never expose it publicly.
    #[arg(long, env = "GATEWAY_ADMIN_ADDR", default_value = "127.0.0.1:9090", help_heading = GATEWAY)]
    pub gateway_admin_addr: SocketAddr,

    #[command(flatten, next_help_heading = SHARED)]
    pub common: CommonArgs,

    #[command(flatten, next_help_heading = AI)]
    pub ai: ai_service::config::Config,

    #[command(flatten, next_help_heading = GATEWAY)]
    pub gateway: gateway::config::Config,
}

/// Everything parsed from the command line and the environment.
#[derive(Debug, Clone)]
pub struct Settings {
    pub mode: Mode,
    pub cli: Cli,
}

const AI: &str = "ai-service";
const GATEWAY: &str = "gateway";
const SHARED: &str = "Both services";

/// The command line, with the help of the two mode-choosing settings.
pub fn command() -> Command {
    Cli::command()
        .mut_arg("url", |a| {
            a.hide_default_value(true).help(
                "Redis URL (`redis://`, `rediss://` (TLS), `redis-cluster://host:port?node=…`, \
                 `redis-sentinel://host:port?sentinelServiceName=NAME&node=…`). Unset: the in-memory store, both services in this process [default: unset]",
            )
        })
        .mut_arg("ai_service_url", |a| {
            a.hide_default_value(true).help(
                "An ai-service elsewhere (needs REDIS_URL): only the gateway runs here. \
                 Unset: the ai-service runs in this process, reached on AI_ADDR [default: unset]",
            )
        })
}

/// Why parsing stopped.
pub enum ParseError {
    /// `--help` or `--version`: print this and exit 0.
    Info(clap::Error),
    /// Invalid: one line, exit 2.
    Invalid(String),
}

fn from_default(m: &ArgMatches, id: &str) -> bool {
    matches!(m.value_source(id), None | Some(ValueSource::DefaultValue))
}

impl Settings {
    /// Parses `args` (the program name first) and the environment.
    pub fn parse_from<I, T>(args: I) -> Result<Settings, ParseError>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let clap_err = |e: clap::Error| {
            if service_kit::is_info(&e) {
                ParseError::Info(e)
            } else {
                ParseError::Invalid(service_kit::one_line_error(&command(), &e))
            }
        };
        let matches = command().try_get_matches_from(args).map_err(clap_err)?;
        let cli = Cli::from_arg_matches(&matches).map_err(clap_err)?;
        let mode = match (
            from_default(&matches, "url"),
            from_default(&matches, "ai_service_url"),
        ) {
            (true, true) => Mode::Embedded,
            (true, false) => {
                return Err(ParseError::Invalid(
                    "AI_SERVICE_URL needs REDIS_URL: an ai-service in another process cannot \
                     share this process's in-memory store"
                        .into(),
                ))
            }
            (false, true) => Mode::Redis,
            (false, false) => Mode::GatewayOnly,
        };
        Ok(Settings { mode, cli })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_is_valid() {
        command().debug_assert();
    }

    fn parse(args: &[&str]) -> Settings {
        let mut all = vec!["streamline"];
        all.extend_from_slice(args);
        match Settings::parse_from(all) {
            Ok(s) => s,
            Err(ParseError::Invalid(e)) => panic!("{e}"),
            Err(ParseError::Info(e)) => panic!("{e}"),
        }
    }

    #[test]
    fn each_service_gets_its_own_address_and_the_shared_settings() {
        let s = parse(&[
            "--ai-addr",
            "127.0.0.1:1",
            "--gateway-addr",
            "127.0.0.1:2",
            "--ai-admin-addr",
            "127.0.0.1:3",
            "--gateway-admin-addr",
            "127.0.0.1:4",
            "--shutdown-timeout",
            "3s",
            "--redis-url",
            "redis://h:1",
            "--demo-tokens",
            "7",
            "--send-queue-bytes",
            "4096",
        ]);
        assert_eq!(s.mode, Mode::Redis);
        assert_eq!(s.cli.ai_addr.port(), 1);
        assert_eq!(s.cli.gateway_addr.port(), 2);
        assert_eq!(s.cli.ai_admin_addr.port(), 3);
        assert_eq!(s.cli.gateway_admin_addr.port(), 4);
        assert_eq!(
            s.cli.common.shutdown_timeout,
            std::time::Duration::from_secs(3)
        );
        assert_eq!(s.cli.common.redis.url, "redis://h:1");
        assert_eq!(s.cli.ai.demo_tokens, 7);
        assert_eq!(s.cli.gateway.send_queue_bytes, 4096);
    }

    #[test]
    fn modes() {
        assert_eq!(
            parse(&[
                "--redis-url",
                "redis://h:1",
                "--ai-service-url",
                "http://x:1"
            ])
            .mode,
            Mode::GatewayOnly
        );
        assert!(matches!(
            Settings::parse_from(["streamline", "--ai-service-url", "http://x:1"]),
            Err(ParseError::Invalid(_))
        ));
        assert!(matches!(
            Settings::parse_from(["streamline", "--stream-ttl", "forever"]),
            Err(ParseError::Invalid(e)) if !e.contains('\n')
        ));
        assert!(matches!(
            Settings::parse_from(["streamline", "--addr", "127.0.0.1:1"]),
            Err(ParseError::Invalid(_))
        ));
    }
}
