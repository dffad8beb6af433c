//! Parsing a binary's command line and environment: a setting that does not parse stops the
//! process with one line on stderr and exit code 2 (clap's own report is several lines with a
//! usage hint, which log collectors split into unrelated records).

use std::process::ExitCode;

/// The first line of clap's report, without its `error: ` prefix.
pub fn one_line_error(e: &clap::Error) -> String {
    let text = e.to_string();
    let first = text.lines().next().unwrap_or("invalid arguments").trim();
    first.strip_prefix("error: ").unwrap_or(first).to_string()
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
            eprintln!("{name}: {}", one_line_error(&e));
            ExitCode::from(2)
        }
    })
}
