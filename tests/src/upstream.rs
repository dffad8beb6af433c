//! The fake OpenAI-compatible server of the suites: the test kit's one fake
//! ([`test_support::upstream`]), re-exported under its old path.

pub use test_support::upstream::*;
