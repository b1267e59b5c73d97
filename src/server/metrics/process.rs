//! The standard process metrics (`process_*`, as every Prometheus client library names them),
//! read from `/proc/self` at scrape time: resident and virtual memory, open and allowed file
//! descriptors, CPU seconds and the start time. On a system without `/proc` the figures are
//! simply absent.

/// Ticks per second of the times in `/proc/*/stat`: `USER_HZ`, 100 on every architecture
/// Linux supports whatever the kernel's own tick rate.
const USER_HZ: f64 = 100.0;

/// What `/proc/self` says about the daemon; each field is `None` when unreadable.
#[derive(Debug, Default, PartialEq)]
pub struct Process {
    pub resident_bytes: Option<u64>,
    pub virtual_bytes: Option<u64>,
    pub open_fds: Option<u64>,
    pub max_fds: Option<u64>,
    pub cpu_seconds: Option<f64>,
    /// Seconds since the Unix epoch.
    pub start_time: Option<f64>,
}

impl Process {
    pub fn read() -> Process {
        let text = |path: &str| std::fs::read_to_string(path).ok();
        let status = text("/proc/self/status");
        let stat = text("/proc/self/stat").and_then(|s| parse_stat(&s));
        let boot = text("/proc/stat").and_then(|s| boot_time(&s));
        Process {
            resident_bytes: status
                .as_deref()
                .and_then(|s| status_kib(s, "VmRSS"))
                .map(|k| k * 1024),
            virtual_bytes: status
                .as_deref()
                .and_then(|s| status_kib(s, "VmSize"))
                .map(|k| k * 1024),
            open_fds: std::fs::read_dir("/proc/self/fd")
                .ok()
                .map(|d| d.count() as u64),
            max_fds: text("/proc/self/limits").and_then(|s| max_open_files(&s)),
            cpu_seconds: stat.map(|(cpu_ticks, _)| cpu_ticks as f64 / USER_HZ),
            start_time: stat
                .zip(boot)
                .map(|((_, start_ticks), boot)| boot as f64 + start_ticks as f64 / USER_HZ),
        }
    }
}

/// A `Name:   N kB` line of `/proc/self/status`.
fn status_kib(status: &str, name: &str) -> Option<u64> {
    status.lines().find_map(|l| {
        let rest = l.strip_prefix(name)?.strip_prefix(':')?;
        rest.trim().trim_end_matches("kB").trim().parse().ok()
    })
}

/// (utime + stime, starttime) in ticks from `/proc/self/stat`. The command name (field 2) is
/// in parentheses and may hold spaces or parentheses itself, so fields are counted from the
/// last `)`: utime and stime are fields 14 and 15, starttime field 22.
fn parse_stat(stat: &str) -> Option<(u64, u64)> {
    let after = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    let field = |n: usize| fields.get(n - 3)?.parse::<u64>().ok();
    Some((field(14)? + field(15)?, field(22)?))
}

/// The `btime` line of `/proc/stat`: when the system booted, in seconds since the epoch.
fn boot_time(stat: &str) -> Option<u64> {
    stat.lines()
        .find_map(|l| l.strip_prefix("btime ")?.trim().parse().ok())
}

/// The soft limit on open files from `/proc/self/limits`.
fn max_open_files(limits: &str) -> Option<u64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_proc_files() {
        let stat = "4242 (a (weird) name) S 1 4242 4242 0 -1 4194560 1 0 0 0 150 25 0 0 20 0 4 0 \
                    123456 1000 10";
        assert_eq!(parse_stat(stat), Some((175, 123456)));
        assert_eq!(
            boot_time("cpu 1 2 3\nbtime 1700000000\nprocesses 9\n"),
            Some(1_700_000_000)
        );
        let limits = "Limit                     Soft Limit           Hard Limit           Units\n\
                      Max open files            1024                 524288               files\n";
        assert_eq!(max_open_files(limits), Some(1024));
        assert_eq!(
            status_kib("VmSize:\t  2048 kB\nVmRSS:\t   512 kB\n", "VmRSS"),
            Some(512)
        );
    }

    #[test]
    fn reads_this_process() {
        let p = Process::read();
        assert!(p.resident_bytes.unwrap() > 0, "{p:?}");
        assert!(p.open_fds.unwrap() >= 3, "{p:?}");
        assert!(p.start_time.unwrap() > 1.6e9, "{p:?}");
    }
}
