//! Parsing a binary's command line and environment: a setting that does not parse stops the
//! process with one line on stderr and exit code 2 (clap's own report is several lines with a
//! usage hint, which log collectors split into unrelated records). The line never holds the
//! value of a secret setting (one declared with `hide_env_values`: a token, a key): clap's
//! report quotes the rejected value, and that line ends up in the logs.

use std::process::ExitCode;

use clap::error::{ContextKind, ContextValue};

/// The first line of clap's report for `cmd`, without its `error: ` prefix, and with a rejected
/// secret's value replaced by `<redacted>`.
pub fn one_line_error(cmd: &clap::Command, e: &clap::Error) -> String {
    let text = e.to_string();
    let first = text.lines().next().unwrap_or("invalid arguments").trim();
    let line = first.strip_prefix("error: ").unwrap_or(first).to_string();
    match secret_value(cmd, e) {
        Some(value) if !value.is_empty() => line.replace(value, "<redacted>"),
        _ => line,
    }
}

/// The rejected value of `e`, when the setting it was given for is a secret.
fn secret_value<'e>(cmd: &clap::Command, e: &'e clap::Error) -> Option<&'e str> {
    let (Some(ContextValue::String(arg)), Some(ContextValue::String(value))) = (
        e.get(ContextKind::InvalidArg),
        e.get(ContextKind::InvalidValue),
    ) else {
        return None;
    };
    // `arg` is how clap names the setting: `--admin-token <ADMIN_TOKEN>`.
    let secret = cmd.get_arguments().any(|a| {
        a.is_hide_env_values_set()
            && a.get_long().is_some_and(|long| {
                let flag = format!("--{long}");
                arg == &flag || arg.starts_with(&format!("{flag} "))
            })
    });
    secret.then_some(value.as_str())
}

/// Whether clap stopped to show help or the version (exit 0), not for an error.
pub fn is_info(e: &clap::Error) -> bool {
    matches!(
        e.kind(),
        clap::error::ErrorKind::DisplayHelp
            | clap::error::ErrorKind::DisplayVersion
            | clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    )
}

/// Parses `T` from the process's arguments and environment. `Err`: the exit code to stop with
/// (0 after `--help`/`--version`; 2 after `name: <one line>` for an invalid setting).
pub fn parse_args<T: clap::Parser>(name: &str) -> Result<T, ExitCode> {
    T::try_parse().map_err(|e| {
        if is_info(&e) {
            let _ = e.print();
            ExitCode::SUCCESS
        } else {
            eprintln!("{name}: {}", one_line_error(&T::command(), &e));
            ExitCode::from(2)
        }
    })
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    fn at_least_16(s: &str) -> Result<String, String> {
        if s.len() >= 16 {
            Ok(s.to_string())
        } else {
            Err("must be at least 16 characters".into())
        }
    }

    #[derive(Debug, Parser)]
    struct Cli {
        #[arg(long, hide_env_values = true, value_parser = at_least_16)]
        token: Option<String>,
        #[arg(long, value_parser = at_least_16)]
        name: Option<String>,
    }

    fn error_line(args: &[&str]) -> String {
        match Cli::try_parse_from(args) {
            Ok(_) => panic!("{args:?} parsed"),
            Err(e) => one_line_error(&<Cli as clap::CommandFactory>::command(), &e),
        }
    }

    #[test]
    fn a_rejected_secret_is_not_in_the_line() {
        let line = error_line(&["x", "--token", "hunter2"]);
        assert!(!line.contains("hunter2"), "{line}");
        assert!(
            line.contains("<redacted>") && line.contains("--token"),
            "{line}"
        );
        assert!(line.contains("must be at least 16 characters"), "{line}");
    }

    #[test]
    fn a_rejected_plain_value_is_quoted() {
        let line = error_line(&["x", "--name", "short"]);
        assert!(line.contains("short"), "{line}");
    }
}
