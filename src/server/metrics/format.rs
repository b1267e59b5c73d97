//! The two expositions `/metrics` speaks: OpenMetrics 1.0 when the scraper asks for it (as
//! Prometheus does by default), and otherwise the Prometheus text format 0.0.4, which older
//! scrapers, `promtool check metrics` and people with curl read.
//!
//! prometheus-client only encodes OpenMetrics, so the text format is a faithful conversion of
//! its output: the two differ only in how a family is announced. An OpenMetrics counter family
//! `x` has samples `x_total` (and possibly `x_created`); in 0.0.4 the family is `x_total`
//! itself, so its `HELP` and `TYPE` lines must name `x_total`, and `_created` has no place.
//! An `info` family `x` becomes the gauge `x_info`; `unknown` is 0.0.4's `untyped`. `# UNIT`
//! and `# EOF` do not exist in 0.0.4; `HELP` does not escape `"` there; exemplars go, and
//! timestamps turn from seconds into milliseconds.

/// The media type of the OpenMetrics exposition.
pub const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// The media type of the Prometheus text exposition.
pub const TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Which exposition a scrape gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    OpenMetrics,
    Text,
}

impl Format {
    /// Chooses by the request's `Accept` header: OpenMetrics when it names
    /// `application/openmetrics-text` with a quality at least that of `text/plain`, the text
    /// format otherwise (no header, `*/*`, `text/plain`).
    pub fn negotiate(accept: Option<&str>) -> Format {
        let (mut openmetrics, mut text) = (0.0f32, 0.0f32);
        for range in accept.unwrap_or_default().split(',') {
            let mut parts = range.split(';').map(str::trim);
            let media = parts.next().unwrap_or_default().to_ascii_lowercase();
            let q = parts
                .filter_map(|p| p.strip_prefix("q="))
                .find_map(|q| q.parse::<f32>().ok())
                .unwrap_or(1.0);
            match media.as_str() {
                "application/openmetrics-text" => openmetrics = openmetrics.max(q),
                "text/plain" => text = text.max(q),
                _ => {}
            }
        }
        if openmetrics > 0.0 && openmetrics >= text {
            Format::OpenMetrics
        } else {
            Format::Text
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::OpenMetrics => OPENMETRICS,
            Format::Text => TEXT,
        }
    }
}

/// Converts an OpenMetrics exposition into the Prometheus text format 0.0.4.
pub fn to_text(openmetrics: &str) -> String {
    let mut out = String::with_capacity(openmetrics.len());
    // The HELP line waiting for its family's TYPE, which decides the family's 0.0.4 name.
    let mut help: Option<(&str, String)> = None;
    // The current family's OpenMetrics name and type.
    let mut family: (&str, &str) = ("", "");
    for line in openmetrics.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            flush_help(&mut out, help.take(), None);
            let (name, text) = rest.split_once(' ').unwrap_or((rest, ""));
            help = Some((name, unescape_help(text)));
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or((rest, "unknown"));
            let (text_name, text_kind) = match kind {
                "counter" if !name.ends_with("_total") => (format!("{name}_total"), "counter"),
                "counter" => (name.to_string(), "counter"),
                "info" => (format!("{name}_info"), "gauge"),
                "stateset" | "gauge" => (name.to_string(), "gauge"),
                "histogram" | "summary" => (name.to_string(), kind),
                _ => (name.to_string(), "untyped"),
            };
            let help = help.take().filter(|(n, _)| *n == name);
            flush_help(&mut out, help, Some(&text_name));
            out.push_str(&format!("# TYPE {text_name} {text_kind}\n"));
            family = (name, kind);
        } else if line.starts_with("# UNIT ") || line == "# EOF" {
            continue;
        } else if line.starts_with('#') || line.is_empty() {
            out.push_str(line);
            out.push('\n');
        } else {
            flush_help(&mut out, help.take(), None);
            if let Some(sample) = sample(line, family) {
                out.push_str(&sample);
                out.push('\n');
            }
        }
    }
    flush_help(&mut out, help, None);
    out
}

fn flush_help(out: &mut String, help: Option<(&str, String)>, name: Option<&str>) {
    if let Some((own, text)) = help {
        out.push_str(&format!("# HELP {} {text}\n", name.unwrap_or(own)));
    }
}

/// OpenMetrics escapes `\`, newline and `"` in HELP; 0.0.4 only `\` and newline.
fn unescape_help(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match (c, chars.clone().next()) {
            ('\\', Some('"')) => {
                out.push('"');
                chars.next();
            }
            ('\\', Some(next)) => {
                out.push('\\');
                out.push(next);
                chars.next();
            }
            _ => out.push(c),
        }
    }
    out
}

/// One sample line in 0.0.4: without an exemplar, with its timestamp in milliseconds; `None`
/// for a counter's `_created` sample.
fn sample(line: &str, (family, kind): (&str, &str)) -> Option<String> {
    let end_of_name = line.find(['{', ' ']).unwrap_or(line.len());
    let name = &line[..end_of_name];
    if kind == "counter" && name.strip_suffix("_created") == Some(family) {
        return None;
    }
    let end_of_labels = if line[end_of_name..].starts_with('{') {
        end_of_name + closing_brace(&line[end_of_name..])? + 1
    } else {
        end_of_name
    };
    let series = &line[..end_of_labels];
    let rest = line[end_of_labels..].trim();
    let rest = rest.split_once(" # ").map_or(rest, |(before, _)| before);
    let mut fields = rest.split_whitespace();
    let value = fields.next()?;
    Some(match fields.next().and_then(|t| t.parse::<f64>().ok()) {
        Some(seconds) => format!("{series} {value} {}", (seconds * 1000.0).round() as i64),
        None => format!("{series} {value}"),
    })
}

/// The offset of the `}` closing the label set that `labels` starts with, skipping quoted
/// values (which may hold braces, escaped quotes and spaces).
fn closing_brace(labels: &str) -> Option<usize> {
    let (mut quoted, mut escaped) = (false, false);
    for (i, c) in labels.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '}' if !quoted => return Some(i),
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_asks_for_openmetrics_and_gets_it() {
        let prometheus = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;\
                          version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert_eq!(Format::negotiate(Some(prometheus)), Format::OpenMetrics);
        assert_eq!(
            Format::negotiate(Some("application/openmetrics-text")),
            Format::OpenMetrics
        );
    }

    #[test]
    fn everyone_else_gets_the_text_format() {
        for accept in [
            None,
            Some("*/*"),
            Some("text/plain;version=0.0.4"),
            Some("text/plain;version=0.0.4,application/openmetrics-text;q=0.5"),
            Some("application/openmetrics-text;q=0"),
        ] {
            assert_eq!(Format::negotiate(accept), Format::Text, "{accept:?}");
        }
    }

    #[test]
    fn counters_are_announced_under_their_total_name() {
        let om = "# HELP x_requests Requests \\\"served\\\"\\\\now.\n# TYPE x_requests counter\n\
                  x_requests_total{route=\"/a {b}\",q=\"\\\"}\"} 3 # {trace_id=\"1\"} 1.0\n\
                  x_requests_created{route=\"/a\"} 1700000000.5\n\
                  # HELP x_up Up.\n# TYPE x_up gauge\n# UNIT x_up seconds\nx_up 1 1700000000.5\n\
                  # TYPE x_build info\nx_build_info{version=\"1\"} 1\n\
                  # TYPE x_odd unknown\nx_odd 2\n# EOF\n";
        assert_eq!(
            to_text(om),
            "# HELP x_requests_total Requests \"served\"\\\\now.\n# TYPE x_requests_total counter\n\
             x_requests_total{route=\"/a {b}\",q=\"\\\"}\"} 3\n\
             # HELP x_up Up.\n# TYPE x_up gauge\nx_up 1 1700000000500\n\
             # TYPE x_build_info gauge\nx_build_info{version=\"1\"} 1\n\
             # TYPE x_odd untyped\nx_odd 2\n"
        );
    }

    #[test]
    fn histograms_pass_unchanged() {
        let om = "# HELP h Latency.\n# TYPE h histogram\nh_sum 0.5\nh_count 1\n\
                  h_bucket{le=\"+Inf\"} 1\n# EOF\n";
        assert_eq!(
            to_text(om),
            "# HELP h Latency.\n# TYPE h histogram\nh_sum 0.5\nh_count 1\nh_bucket{le=\"+Inf\"} 1\n"
        );
    }
}
