//! Command-line numbers of the benchmark binaries (`close-bench`, `outage-bench`): `--name N`.

/// The value after `name` on the command line, or `default` when it is absent or not a number.
pub fn arg(name: &str, default: usize) -> usize {
    std::env::args()
        .skip_while(|a| a != name)
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
