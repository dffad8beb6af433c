//! The shape of both binaries' `main`: one runtime, one run function, exit code 2 with one
//! line on stderr when startup fails.

use std::future::Future;
use std::process::ExitCode;

/// Builds a multi-threaded runtime, runs `main`, and maps a startup error to exit code 2.
pub fn run_main<F, E>(name: &str, main: F) -> ExitCode
where
    F: Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("{name}: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(main) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{name}: {e}");
            ExitCode::from(2)
        }
    }
}
