//! What the load generator reads about the server process, and about itself, from `/proc`
//! (Linux only): resident memory and CPU time. Both are optional extras of a report; a server
//! on another machine, or a pid that went away, simply leaves them out.
//!
//! CPU time over a phase's wall time is how busy each side's cores were: a server core below
//! 85% busy while the generator's is full means the run measured the generator (SPEC §10).

use std::time::Duration;

/// Ticks per second of the `utime`/`stime` fields of `/proc/PID/stat`. Linux exports them in
/// `USER_HZ`, which is 100 on every architecture it supports regardless of the kernel's own
/// tick rate (`getconf CLK_TCK`).
const USER_HZ: u64 = 100;

/// Memory of a process, in KiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Memory {
    /// `VmRSS`: resident now.
    pub rss_kib: u64,
    /// `VmHWM`: the most that was ever resident.
    pub peak_kib: u64,
}

/// Reads `VmRSS` and `VmHWM` from `/proc/PID/status`.
pub fn memory(pid: u32) -> Option<Memory> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_status(&status)
}

fn parse_status(status: &str) -> Option<Memory> {
    let field = |name: &str| {
        status.lines().find_map(|l| {
            let rest = l.strip_prefix(name)?.strip_prefix(':')?;
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
    };
    Some(Memory {
        rss_kib: field("VmRSS")?,
        peak_kib: field("VmHWM")?,
    })
}

/// User plus system CPU time the process has used so far, all threads included.
pub fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&stat)
}

fn parse_stat(stat: &str) -> Option<Duration> {
    // The command name (field 2) is in parentheses and may hold spaces or parentheses itself:
    // fields are counted from the last `)`. utime and stime are fields 14 and 15.
    let after = &stat[stat.rfind(')')? + 1..];
    let mut fields = after.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(Duration::from_millis((utime + stime) * 1000 / USER_HZ))
}

/// CPU time used during one timed phase by the server (when its pid is known) and by this
/// generator process.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CpuTimes {
    pub server: Option<Duration>,
    pub generator: Option<Duration>,
}

/// Both processes' CPU time at the start of a phase.
pub struct CpuClock {
    server_pid: Option<u32>,
    start: CpuTimes,
}

impl CpuClock {
    pub fn start(server_pid: Option<u32>) -> CpuClock {
        CpuClock {
            server_pid,
            start: CpuTimes {
                server: server_pid.and_then(cpu_time),
                generator: cpu_time(std::process::id()),
            },
        }
    }

    /// The CPU time each side used since [`CpuClock::start`].
    pub fn stop(self) -> CpuTimes {
        let since = |now: Option<Duration>, then: Option<Duration>| now?.checked_sub(then?);
        CpuTimes {
            server: since(self.server_pid.and_then(cpu_time), self.start.server),
            generator: since(cpu_time(std::process::id()), self.start.generator),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_memory_from_status() {
        let status = "Name:\tsatellite\nVmHWM:\t   52000 kB\nVmRSS:\t   41234 kB\nThreads:\t4\n";
        assert_eq!(
            parse_status(status),
            Some(Memory {
                rss_kib: 41234,
                peak_kib: 52000
            })
        );
        assert_eq!(parse_status("Name:\tkthreadd\n"), None);
    }

    #[test]
    fn reads_cpu_time_after_an_awkward_command_name() {
        let stat = "4242 (a (weird) name) S 1 4242 4242 0 -1 4194560 1 0 0 0 150 25 0 0 20 0 4 0";
        assert_eq!(parse_stat(stat), Some(Duration::from_millis(1750)));
    }

    #[test]
    fn reads_this_process() {
        let me = std::process::id();
        assert!(memory(me).is_some_and(|m| m.rss_kib > 0));
        assert!(cpu_time(me).is_some());
    }

    #[test]
    fn a_clock_without_a_server_measures_only_the_generator() {
        let clock = CpuClock::start(None);
        let mut x = 0u64;
        for i in 0..1_000_000u64 {
            x = std::hint::black_box(x.wrapping_add(i));
        }
        let used = clock.stop();
        assert_eq!(used.server, None);
        assert!(used.generator.is_some());
    }
}
