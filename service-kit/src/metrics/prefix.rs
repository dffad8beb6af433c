//! One prefix for every series: the recorder that `/metrics` renders gives each series the
//! [`PREFIX`] that it does not already carry.
//!
//! Every call site names its series with the prefix (`streamline_gateway_…`,
//! `streamline_ai_…`, `streamline_store_…`), and the docs table lists them so. This wrapper is
//! the guarantee behind that: a series registered without it (a new call site that forgot, or
//! code that still uses a name from before the rename) still comes out under the one prefix
//! instead of as a stray series that no dashboard, alert or documented name matches. It costs one
//! `starts_with` per registration; handles resolved once (the hot paths) pay nothing per use.

use metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit};

/// The prefix of every series of this project.
pub const PREFIX: &str = "streamline_";

/// A recorder that prefixes what it registers, around `inner`.
pub struct Prefixed<R> {
    inner: R,
}

impl<R> Prefixed<R> {
    pub fn new(inner: R) -> Self {
        Prefixed { inner }
    }
}

/// `name` with the prefix (as is when it has it).
pub fn prefixed_name(name: &str) -> std::borrow::Cow<'_, str> {
    if name.starts_with(PREFIX) {
        std::borrow::Cow::Borrowed(name)
    } else {
        std::borrow::Cow::Owned(format!("{PREFIX}{name}"))
    }
}

fn key_name(name: KeyName) -> KeyName {
    match prefixed_name(name.as_str()) {
        std::borrow::Cow::Borrowed(_) => name,
        std::borrow::Cow::Owned(s) => KeyName::from(s),
    }
}

/// The key under the prefix; `None` when it already has it (the common case: no copy).
fn fix(key: &Key) -> Option<Key> {
    match prefixed_name(key.name()) {
        std::borrow::Cow::Borrowed(_) => None,
        std::borrow::Cow::Owned(name) => Some(Key::from_parts(
            name,
            key.labels().cloned().collect::<Vec<_>>(),
        )),
    }
}

impl<R: Recorder> Recorder for Prefixed<R> {
    fn describe_counter(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.inner
            .describe_counter(key_name(key), unit, description)
    }

    fn describe_gauge(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.inner.describe_gauge(key_name(key), unit, description)
    }

    fn describe_histogram(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.inner
            .describe_histogram(key_name(key), unit, description)
    }

    fn register_counter(&self, key: &Key, metadata: &Metadata<'_>) -> Counter {
        match fix(key) {
            Some(k) => self.inner.register_counter(&k, metadata),
            None => self.inner.register_counter(key, metadata),
        }
    }

    fn register_gauge(&self, key: &Key, metadata: &Metadata<'_>) -> Gauge {
        match fix(key) {
            Some(k) => self.inner.register_gauge(&k, metadata),
            None => self.inner.register_gauge(key, metadata),
        }
    }

    fn register_histogram(&self, key: &Key, metadata: &Metadata<'_>) -> Histogram {
        match fix(key) {
            Some(k) => self.inner.register_histogram(&k, metadata),
            None => self.inner.register_histogram(key, metadata),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_get_the_prefix_once() {
        assert_eq!(
            prefixed_name("ai_generations_total"),
            "streamline_ai_generations_total"
        );
        assert_eq!(
            prefixed_name("streamline_ai_generations_total"),
            "streamline_ai_generations_total"
        );
        let key = Key::from_parts("gateway_x", vec![metrics::Label::new("a", "b")]);
        let fixed = fix(&key).expect("renamed");
        assert_eq!(fixed.name(), "streamline_gateway_x");
        assert_eq!(fixed.labels().count(), 1);
        assert!(fix(&fixed).is_none());
    }
}
