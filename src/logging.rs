//! How the daemon logs (SPEC §9, "Observability"): the filter directive it runs with and whether
//! its output is coloured. `main.rs` installs the subscriber with these decisions; they live
//! here so they can be tested without a process.
//!
//! **Filter.** `[log] level` or `RUST_LOG` is a tracing `EnvFilter` directive. A bare `debug` or
//! `trace` would also switch on the internals of the libraries under the satellite (HTTP/2
//! frames, hyper's connection state, sled's page cache, rustls handshakes): thousands of lines
//! a minute that bury the satellite's own. So when the directive's default level is `debug` or
//! `trace`, each of those libraries is held at `info` unless the directive names it itself:
//! `debug` runs as `debug,h2=info,hyper=info,rustls=info,sled=info,tokio_rustls=info`, and
//! `debug,h2=trace` gets HTTP/2 frames back. Directives match targets by prefix, so `hyper`
//! covers `hyper_util` and `rustls` covers `rustls_platform_verifier`; a more specific
//! directive (`hyper_util=debug`) still wins over the added one.
//!
//! **Access log.** One line per request under the target [`ACCESS_TARGET`] at `info`
//! (`server::metrics::track`); `info,satellite::access=off` silences it and
//! `warn,satellite::access=info` keeps only it among the `info` lines.
//!
//! **Colour.** ANSI colours only when stderr is a terminal and `NO_COLOR` is unset or empty
//! (<https://no-color.org>): journald and log files get plain text.

use std::io::IsTerminal;

/// The tracing target of the access log: one line per request.
pub const ACCESS_TARGET: &str = "satellite::access";

/// Libraries whose `debug` and `trace` output describes their own internals rather than the
/// satellite's work; held at `info` under a bare `debug` or `trace` (see the module docs).
pub const QUIET_LIBRARIES: &[&str] = &["h2", "hyper", "rustls", "sled", "tokio_rustls"];

/// The directive the daemon runs with for the configured (or `RUST_LOG`) directive `given`.
pub fn directive(given: &str) -> String {
    let parts: Vec<&str> = given
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    // The default level is the last directive that names no target (EnvFilter's own rule).
    let default = parts
        .iter()
        .rev()
        .find(|p| !p.contains('=') && !p.contains("::") && is_level(p))
        .map(|p| p.to_ascii_lowercase());
    if !matches!(default.as_deref(), Some("debug" | "trace")) {
        return given.to_string();
    }
    let named = |library: &str| {
        parts.iter().any(|p| {
            let target = p.split(['=', '[']).next().unwrap_or_default();
            target == library
        })
    };
    let mut out = parts.join(",");
    for library in QUIET_LIBRARIES {
        if !named(library) {
            out.push_str(&format!(",{library}=info"));
        }
    }
    out
}

fn is_level(s: &str) -> bool {
    matches!(
        s.to_ascii_lowercase().as_str(),
        "trace" | "debug" | "info" | "warn" | "error" | "off"
    )
}

/// Whether log lines on stderr carry ANSI colours: only on a terminal, and never under
/// `NO_COLOR`.
pub fn colour_stderr() -> bool {
    colour(
        std::io::stderr().is_terminal(),
        std::env::var_os("NO_COLOR").as_deref(),
    )
}

fn colour(terminal: bool, no_colour: Option<&std::ffi::OsStr>) -> bool {
    terminal && no_colour.is_none_or(|v| v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_debug_level_quiets_the_libraries_underneath() {
        assert_eq!(
            directive("debug"),
            "debug,h2=info,hyper=info,rustls=info,sled=info,tokio_rustls=info"
        );
        assert_eq!(
            directive("TRACE,satellite::store=debug"),
            "TRACE,satellite::store=debug,h2=info,hyper=info,rustls=info,sled=info,tokio_rustls=info"
        );
    }

    #[test]
    fn a_library_the_directive_names_keeps_its_level() {
        assert_eq!(
            directive("debug,h2=trace,sled[x]=debug"),
            "debug,h2=trace,sled[x]=debug,hyper=info,rustls=info,tokio_rustls=info"
        );
    }

    #[test]
    fn other_levels_are_left_alone() {
        for given in [
            "info",
            "warn",
            "info,satellite::access=off",
            "satellite=debug",
            "",
        ] {
            assert_eq!(directive(given), given);
        }
        // The last default wins, as in EnvFilter.
        assert_eq!(directive("debug,info"), "debug,info");
    }

    #[test]
    fn the_expanded_directive_parses() {
        tracing_subscriber::EnvFilter::builder()
            .parse(directive("debug,satellite::access=off"))
            .expect("a valid directive");
    }

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        use std::ffi::OsStr;
        assert!(colour(true, None));
        assert!(colour(true, Some(OsStr::new(""))));
        assert!(!colour(true, Some(OsStr::new("1"))));
        assert!(!colour(false, None));
    }
}
