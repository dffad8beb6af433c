//! Process metrics, read from `/proc/self` when `/metrics` is rendered (a scrape), so they
//! cost nothing between scrapes: resident memory, CPU seconds, open and allowed file
//! descriptors, threads. File descriptors matter most: a gateway holds one per socket, and at
//! 20 000 sockets `ulimit -n` is the limit it meets first.
//!
//! Not on Linux (no `/proc`): the series stay at zero.

use std::sync::OnceLock;

/// The gauges, resolved once (after the recorder is installed).
struct Gauges {
    rss: metrics::Gauge,
    cpu: metrics::Gauge,
    open_fds: metrics::Gauge,
    max_fds: metrics::Gauge,
    threads: metrics::Gauge,
    start_time: metrics::Gauge,
}

fn gauges() -> &'static Gauges {
    static GAUGES: OnceLock<Gauges> = OnceLock::new();
    GAUGES.get_or_init(|| Gauges {
        rss: metrics::gauge!("streamline_process_resident_memory_bytes"),
        cpu: metrics::gauge!("streamline_process_cpu_seconds_total"),
        open_fds: metrics::gauge!("streamline_process_open_fds"),
        max_fds: metrics::gauge!("streamline_process_max_fds"),
        threads: metrics::gauge!("streamline_process_threads"),
        start_time: metrics::gauge!("streamline_process_start_time_seconds"),
    })
}

/// What one read of `/proc/self` found.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Sample {
    pub rss_bytes: f64,
    pub cpu_seconds: f64,
    pub open_fds: f64,
    pub max_fds: f64,
    pub threads: f64,
    pub start_time_seconds: f64,
}

/// Registers the series (at zero) and sets them from `/proc` now.
pub fn refresh() {
    let g = gauges();
    let Some(s) = sample() else { return };
    g.rss.set(s.rss_bytes);
    g.cpu.set(s.cpu_seconds);
    g.open_fds.set(s.open_fds);
    g.max_fds.set(s.max_fds);
    g.threads.set(s.threads);
    g.start_time.set(s.start_time_seconds);
}

/// Reads `/proc/self`; `None` where there is none.
pub fn sample() -> Option<Sample> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let fields = stat_fields(&stat)?;
    let ticks = clock_ticks_per_second();
    let page = page_size();
    let num = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // Fields after the command name, counted from `state` (field 3 of proc(5)) as index 0.
    let (utime, stime, threads, starttime, rss_pages) =
        (num(11), num(12), num(17), num(19), num(21));
    let open_fds = std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count() as f64)
        .unwrap_or(0.0);
    let max_fds = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|l| soft_limit(&l, "Max open files"))
        .unwrap_or(0.0);
    let boot = std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|s| btime(&s))
        .unwrap_or(0.0);
    Some(Sample {
        rss_bytes: rss_pages * page,
        cpu_seconds: (utime + stime) / ticks,
        open_fds,
        max_fds,
        threads,
        start_time_seconds: boot + starttime / ticks,
    })
}

/// The fields of `/proc/self/stat` after `(comm)` (which may hold spaces and parentheses).
fn stat_fields(stat: &str) -> Option<Vec<&str>> {
    let after = &stat[stat.rfind(')')? + 1..];
    Some(after.split_whitespace().collect())
}

/// The soft limit of one row of `/proc/self/limits` (`unlimited`: none → 0).
fn soft_limit(limits: &str, row: &str) -> Option<f64> {
    let line = limits.lines().find(|l| l.starts_with(row))?;
    line[row.len()..].split_whitespace().next()?.parse().ok()
}

/// The boot time (`btime`) of `/proc/stat`, in seconds since the epoch.
fn btime(stat: &str) -> Option<f64> {
    stat.lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}

fn clock_ticks_per_second() -> f64 {
    // SAFETY: sysconf has no preconditions; it returns -1 for an unknown name.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

fn page_size() -> f64 {
    // SAFETY: as above.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if p > 0 {
        p as f64
    } else {
        4096.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_command_name_with_spaces_and_parentheses() {
        let stat = "42 (a (weird) name) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 7 0 1234 1000 300";
        let f = stat_fields(stat).unwrap();
        assert_eq!(f[0], "S");
        assert_eq!(f[11], "250");
        assert_eq!(f[12], "50");
        assert_eq!(f[17], "7");
        assert_eq!(f[19], "1234");
        assert_eq!(f[21], "300");
    }

    #[test]
    fn reads_limits_and_boot_time() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units\nMax open files            1024                 524288               files\n";
        assert_eq!(soft_limit(limits, "Max open files"), Some(1024.0));
        assert_eq!(
            btime("cpu 1 2 3\nbtime 1700000000\n"),
            Some(1_700_000_000.0)
        );
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn this_process_has_memory_threads_and_descriptors() {
        let s = sample().expect("/proc/self");
        assert!(
            s.rss_bytes > 0.0 && s.threads >= 1.0 && s.open_fds >= 1.0,
            "{s:?}"
        );
        assert!(s.max_fds >= s.open_fds, "{s:?}");
        assert!(s.start_time_seconds > 1_000_000_000.0, "{s:?}");
    }
}
