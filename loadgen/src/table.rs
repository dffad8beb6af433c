//! The pieces of the results' Markdown: numbers as people read them (`num`, `group`), a
//! target's verdict, and the metric | measured | target | verdict table every scenario's
//! section is made of (`loadgen report`, `loadgen soak-report`).

use std::fmt::Write as _;

use serde_json::Value;

pub(crate) fn num(v: &Value) -> String {
    match v {
        Value::Null => "–".into(),
        Value::Number(n) => {
            if let Some(i) = n.as_u64() {
                group(i)
            } else {
                let f = n.as_f64().unwrap_or(0.0);
                if f.abs() >= 1000.0 {
                    group(f.round() as u64)
                } else if f.abs() >= 100.0 {
                    format!("{f:.1}")
                } else {
                    format!("{f:.2}")
                }
            }
        }
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A parameter as written in a prompt (`tokens=1000 rate=10`), without grouping or padding.
pub(crate) fn raw(v: &Value) -> String {
    match v.as_f64() {
        Some(f) if f.fract() == 0.0 => format!("{}", f as i64),
        Some(f) => format!("{f}"),
        None => num(v),
    }
}

pub(crate) fn group(i: u64) -> String {
    let s = i.to_string();
    let mut out = String::new();
    for (n, c) in s.chars().enumerate() {
        if n > 0 && (s.len() - n).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

pub(crate) fn verdict(ok: Option<bool>) -> &'static str {
    match ok {
        Some(true) => "✅ met",
        Some(false) => "❌ missed",
        None => "–",
    }
}

pub(crate) struct Table(pub(crate) String);

impl Table {
    pub(crate) fn new() -> Table {
        Table("| metric | measured | target | verdict |\n|---|---|---|---|\n".into())
    }
    pub(crate) fn row(&mut self, metric: &str, measured: String, target: &str, ok: Option<bool>) {
        let _ = writeln!(
            self.0,
            "| {metric} | {measured} | {target} | {}",
            verdict(ok).to_string() + " |"
        );
    }
    pub(crate) fn info(&mut self, metric: &str, measured: String) {
        let _ = writeln!(self.0, "| {metric} | {measured} | | |");
    }
}
