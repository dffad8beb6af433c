//! `streamline_build_info{version,commit} 1`: which build a process runs, to join with any other
//! series (`* on(instance) group_left(version) streamline_build_info`).
//!
//! `version` is the workspace's package version. `commit` comes from the `STREAMLINE_COMMIT`
//! environment variable *at build time* (`option_env!`; the Dockerfiles pass it as a build
//! argument, e.g. `--build-arg STREAMLINE_COMMIT=$(git rev-parse HEAD)`), and is `unknown`
//! when it was not set. Not a build script running `git rev-parse`: that would change a
//! dependency of every crate on every commit and rebuild the workspace each time, and a Docker
//! build context has no `.git` to ask anyway.

/// The package version of this build.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The commit of this build, or `unknown`.
pub fn commit() -> &'static str {
    match option_env!("STREAMLINE_COMMIT") {
        Some(c) if !c.trim().is_empty() => c,
        _ => "unknown",
    }
}

/// Sets the series (idempotent).
pub fn register() {
    metrics::gauge!("streamline_build_info", "version" => VERSION, "commit" => commit()).set(1.0);
}
