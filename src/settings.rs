//! The settings of the `streamline` binary: every setting of the ai-service and of the gateway,
//! as a flag and an environment variable, parsed with their own definitions.
//!
//! Both `Config` structs are reused as they are (same names, defaults, parsers and checks): the
//! command line is the union of their arguments. Where they clash:
//! - `--addr` exists in both: here it is `--ai-addr` (`AI_ADDR`) and `--gateway-addr`
//!   (`GATEWAY_ADDR`);
//! - `--redis-url`, `--shutdown-timeout`, `--redis-command-timeout`, `--log-format` mean the
//!   same thing for both services: one flag, given to both;
//! - `REDIS_URL` and `AI_SERVICE_URL` have no effective default: unset, they choose the mode
//!   (in-memory store; ai-service in this process).
//!
//! The line is parsed twice, once with `addr` bound to `--ai-addr` (the ai-service's `Config`)
//! and once bound to `--gateway-addr` (the gateway's), so each `Config` is filled by clap itself.

use clap::parser::ValueSource;
use clap::{Arg, ArgMatches, Command, CommandFactory, FromArgMatches};

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

/// Everything parsed from the command line and the environment.
#[derive(Debug, Clone)]
pub struct Settings {
    pub mode: Mode,
    pub ai: ai_service::config::Config,
    pub gateway: gateway::config::Config,
}

const AI: &str = "ai-service";
const GATEWAY: &str = "gateway";
const SHARED: &str = "Both services";

/// The command line; `ai_owns_addr` decides which of the two addresses has the id `addr`.
pub fn command(ai_owns_addr: bool) -> Command {
    let ai = ai_service::config::Config::command();
    let gw = gateway::config::Config::command();
    let ai_ids: Vec<String> = ai.get_arguments().map(|a| a.get_id().to_string()).collect();
    let gw_ids: Vec<String> = gw.get_arguments().map(|a| a.get_id().to_string()).collect();
    let mut cmd = Command::new("streamline")
        .version(env!("CARGO_PKG_VERSION"))
        .about(
            "The whole stack in one process: the WebSocket gateway (with the web client) and the \
             ai-service.\n\
             Without REDIS_URL: in-memory store (embedded mode). With REDIS_URL: both services on \
             Redis; with REDIS_URL and AI_SERVICE_URL: only the gateway.",
        );
    for arg in ai.get_arguments().filter(|a| !builtin(a)) {
        let id = arg.get_id().as_str();
        let mut arg = arg.clone();
        if id == "addr" {
            arg = arg
                .id(if ai_owns_addr { "addr" } else { "ai_addr" })
                .long("ai-addr")
                .help("Address of the ai-service's HTTP API (the gateway reaches it there).");
        }
        let heading = if gw_ids.iter().any(|g| g == id) && id != "addr" {
            SHARED
        } else {
            AI
        };
        cmd = cmd.arg(arg.help_heading(heading));
    }
    for arg in gw.get_arguments().filter(|a| !builtin(a)) {
        let id = arg.get_id().as_str();
        if id != "addr" && ai_ids.iter().any(|a| a == id) {
            continue; // shared: already there
        }
        let mut arg = arg.clone();
        if id == "addr" {
            arg = arg
                .id(if ai_owns_addr { "gateway_addr" } else { "addr" })
                .long("gateway-addr")
                .help("Address of the gateway: HTTP, WebSocket and the web client.");
        }
        cmd = cmd.arg(arg.help_heading(GATEWAY));
    }
    cmd.mut_arg("redis_url", |a| {
        a.hide_default_value(true).help(
            "Redis URL (`redis://`, `rediss://` (TLS), `redis-cluster://host:port?node=…`, \
             `redis-sentinel://host:port?sentinelServiceName=NAME&node=…`). \
             Unset: the in-memory store, both services in this process [default: unset]",
        )
    })
    .mut_arg("ai_service_url", |a| {
        a.hide_default_value(true).help(
            "An ai-service elsewhere (needs REDIS_URL): only the gateway runs here. \
             Unset: the ai-service runs in this process, reached on AI_ADDR [default: unset]",
        )
    })
    .mut_arg("shutdown_timeout", |a| {
        a.help(
            "After SIGTERM: how long generations in flight may finish, and how long to wait \
             for sockets to close",
        )
    })
}

fn builtin(a: &Arg) -> bool {
    matches!(a.get_id().as_str(), "help" | "version")
}

/// Why parsing stopped.
pub enum ParseError {
    /// `--help` or `--version`: print this and exit 0.
    Info(clap::Error),
    /// Invalid: one line, exit 2.
    Invalid(String),
}

fn one_line(e: &clap::Error) -> String {
    let text = e.to_string();
    let first = text.lines().next().unwrap_or("invalid arguments").trim();
    first.strip_prefix("error: ").unwrap_or(first).to_string()
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
        let args: Vec<std::ffi::OsString> = args.into_iter().map(Into::into).collect();
        let clap_err = |e: clap::Error| match e.kind() {
            clap::error::ErrorKind::DisplayHelp
            | clap::error::ErrorKind::DisplayVersion
            | clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
                ParseError::Info(e)
            }
            _ => ParseError::Invalid(one_line(&e)),
        };
        let ai_matches = command(true)
            .try_get_matches_from(args.clone())
            .map_err(clap_err)?;
        let gw_matches = command(false)
            .try_get_matches_from(args)
            .map_err(clap_err)?;
        let ai = ai_service::config::Config::from_arg_matches(&ai_matches).map_err(clap_err)?;
        let gateway = gateway::config::Config::from_arg_matches(&gw_matches).map_err(clap_err)?;
        let mode = match (
            from_default(&ai_matches, "redis_url"),
            from_default(&gw_matches, "ai_service_url"),
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
        Ok(Settings { mode, ai, gateway })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_commands_are_valid() {
        command(true).debug_assert();
        command(false).debug_assert();
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
        assert_eq!(s.ai.addr.port(), 1);
        assert_eq!(s.gateway.addr.port(), 2);
        assert_eq!(s.ai.shutdown_timeout, std::time::Duration::from_secs(3));
        assert_eq!(
            s.gateway.shutdown_timeout,
            std::time::Duration::from_secs(3)
        );
        assert_eq!(s.gateway.redis_url, "redis://h:1");
        assert_eq!(s.ai.demo_tokens, 7);
        assert_eq!(s.gateway.send_queue_bytes, 4096);
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
