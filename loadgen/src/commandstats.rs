//! Redis's `INFO commandstats`, as text: the calls and the time Redis spent per command.
//!
//! Contract: [`parse`] reads the lines `cmdstat_<name>:calls=N,usec=U,…` (any other line is
//! skipped, so a whole `INFO` reply or a file with a trailing `DBSIZE` line is fine) and
//! returns one [`CommandStat`] per command, in the order of the text. bench/scale.sh saves
//! the text of every shard after `CONFIG RESETSTAT` and the measured wave, so the counts are
//! the wave's (plus its connections and teardown): they show how the work spread over shards.

use serde_json::{json, Value};

/// One command's counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandStat {
    /// Lower case, as Redis writes it (`evalsha`, `spublish`, `ssubscribe`, …).
    pub name: String,
    pub calls: u64,
    /// Microseconds Redis spent executing it (its own clock, not the process's CPU).
    pub usec: u64,
}

/// The commands of an `INFO commandstats` text.
pub fn parse(text: &str) -> Vec<CommandStat> {
    text.lines()
        .filter_map(|line| {
            let (name, fields) = line.trim().strip_prefix("cmdstat_")?.split_once(':')?;
            let field = |key: &str| -> Option<u64> {
                fields
                    .split(',')
                    .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))?
                    .parse()
                    .ok()
            };
            Some(CommandStat {
                name: name.to_string(),
                calls: field("calls")?,
                usec: field("usec")?,
            })
        })
        .collect()
}

/// `{name: {calls, usec}}`.
pub fn to_json(stats: &[CommandStat]) -> Value {
    let mut out = serde_json::Map::new();
    for s in stats {
        out.insert(s.name.clone(), json!({"calls": s.calls, "usec": s.usec}));
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_calls_and_usec_and_skips_other_lines() {
        let text = "# Commandstats\r\n\
            cmdstat_evalsha:calls=120,usec=3400,usec_per_call=28.33,rejected_calls=0,failed_calls=0\r\n\
            cmdstat_spublish:calls=7,usec=21,usec_per_call=3.00,rejected_calls=0,failed_calls=0\r\n\
            cmdstat_broken:calls=x,usec=1\r\n\
            \r\n42\r\n";
        assert_eq!(
            parse(text),
            vec![
                CommandStat {
                    name: "evalsha".into(),
                    calls: 120,
                    usec: 3400
                },
                CommandStat {
                    name: "spublish".into(),
                    calls: 7,
                    usec: 21
                },
            ]
        );
    }
}
