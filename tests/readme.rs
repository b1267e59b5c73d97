//! README.md cannot drift: its console blocks run, in order, as one session against one fresh
//! daemon (the real binary), and every command must print what the README shows after it.
//!
//! Conventions for whoever edits README.md:
//!
//! - A ```console block runs. A line starting with `$ ` (the satellite's host) or `device$ ` (a
//!   device: the agent, on the same machine here) is a command; a command line ending in `\`
//!   continues on the next line; the lines up to the next command are what it prints on stdout
//!   (stderr, where hints go, is not compared; blank lines at the end do not count). A line of
//!   just `...` stands for any number of lines, for long outputs such as `/metrics`. Every
//!   command must succeed.
//! - A ```toml satellite.toml block is added to the daemon's configuration file, and the daemon
//!   is restarted (as the README tells the operator to do).
//! - Every other block (```text, ```sh, ```toml …) is shown only. It may not contain `$ `
//!   prompts, so a walkthrough cannot silently leave the test: show a command without a prompt,
//!   or with another host's prompt (`upstream$ `).
//! - Commands run as an operator who followed the quick start: in an empty working directory
//!   that holds the daemon's data directory `satellite-data/`, without `--config`, with an
//!   empty environment but `PATH` and `HOME`. Only `satellite` and `curl` run. The test binds
//!   port 0, so `127.0.0.1:8443` (devices) and `127.0.0.1:8444` (admin API) in a command mean
//!   the run's listeners, and the run's addresses are written as those in outputs.
//! - Values that differ per run are masked (`readme/masks.rs`): UUIDs, `srt_…`/`sat_…`
//!   secrets, RFC 3339 times, dates, `uid=N`, reservation codes (which the README may cut
//!   short with `...`) and fingerprints of 16 or more hex digits. A README value matches any
//!   run value of the same shape; an id, secret, code or fingerprint shown twice must be the
//!   same run value twice, and in a later command it is replaced by the run's value (the
//!   README exports the secret `token create` printed, and the run uses its own).
//! - The shell is minimal (`readme/shell.rs`): words, quotes, `#` comments, `$VAR`, a
//!   `VAR=value` prefix, `export VAR=value`. No pipes, redirections or substitutions.
//!
//! A failure names the README line of the command and of the first line that differs, both
//! lines, and the run's whole output to paste back (keeping the README's placeholders).

mod markdown;
mod masks;
mod shell;

use std::path::Path;
use std::process::{Command, Stdio};

use markdown::{Numbered, Step};
use masks::{Bindings, Pairs};

use crate::util::{BIN, Daemon};

/// The README's stand-ins for the addresses the run's listeners got.
const DEVICE_ADDR: &str = "127.0.0.1:8443";
const ADMIN_ADDR: &str = "127.0.0.1:8444";
/// An output line that stands for any number of lines.
const ELLIPSIS: &str = "...";

/// One operator's session: the daemon, the working directory and what the README set so far.
struct Session {
    /// Declared first, so it stops before its data directory goes.
    daemon: Daemon,
    work: tempfile::TempDir,
    exported: Vec<(String, String)>,
    bindings: Bindings,
}

/// Where a command's output and the README part ways.
struct Mismatch {
    line: usize,
    why: String,
    readme: String,
    run: String,
}

#[test]
fn readme_console_blocks_print_what_the_readme_shows() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/README.md");
    let readme = std::fs::read_to_string(path).expect("read README.md");
    let steps = markdown::steps(&readme).unwrap_or_else(|e| panic!("{e}"));
    let mut session = Session::start();
    for step in &steps {
        match step {
            Step::Command { command, expected } => session.run(command, expected),
            Step::Configure(block) => session.configure(block),
        }
    }
}

impl Session {
    fn start() -> Session {
        let work = tempfile::tempdir().expect("a working directory");
        let daemon = Daemon::start_custom(&work.path().join("satellite-data"), &[]);
        Session {
            work,
            daemon,
            exported: Vec::new(),
            bindings: Bindings::default(),
        }
    }

    /// Runs one README command and compares its output with the lines shown after it.
    fn run(&mut self, command: &Numbered, expected: &[Numbered]) {
        let at = format!("README.md:{}: `{}`", command.line, command.text);
        let text = self
            .bindings
            .substitute(&self.run_addresses(&command.text))
            .unwrap_or_else(|e| panic!("{at}: {e}"));
        let exported = &self.exported;
        let var = |name: &str| {
            exported
                .iter()
                .rev()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
        };
        let line = shell::parse(&text, &var).unwrap_or_else(|e| panic!("{at}: {e}"));
        let (env, program, args) = match line {
            shell::Line::Run { env, program, args } => (env, program, args),
            shell::Line::Nothing | shell::Line::Export(_) if !expected.is_empty() => {
                panic!("{at}: prints nothing, but README.md shows output after it")
            }
            shell::Line::Nothing => return,
            shell::Line::Export(vars) => {
                self.exported.extend(vars);
                return;
            }
        };
        let stdout = self.spawn(&at, &env, &program, &args);
        let actual: Vec<String> = self
            .readme_addresses(&stdout)
            .lines()
            .map(|l| l.trim_end().to_string())
            .collect();
        let end = expected.last().map_or(command.line, |l| l.line + 1);
        match match_output(&self.bindings, expected, trim_blank_end(&actual), end) {
            Ok(pairs) => self.bindings.bind(pairs),
            Err(m) => panic!(
                "{at} printed something else than README.md shows.\n\
                 README.md:{}: {}\n  README.md: {}\n  the run:   {}\n\
                 The run's whole output (paste it into README.md, keeping the README's \
                 placeholder values):\n{}",
                m.line,
                m.why,
                shown(&m.readme),
                shown(&m.run),
                actual.join("\n")
            ),
        }
    }

    /// Runs `program` as the operator would, in the working directory; panics naming the
    /// command if it fails. Returns its stdout.
    fn spawn(&self, at: &str, env: &[(String, String)], program: &str, args: &[String]) -> String {
        let binary = match program {
            "satellite" => BIN,
            "curl" => "curl",
            other => panic!("{at}: the README test runs `satellite` and `curl`, not `{other}`"),
        };
        let out = Command::new(binary)
            .args(args)
            .current_dir(self.work.path())
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            // Not the tester's home: no `~/.curlrc` or the like changes what a command does.
            .env("HOME", self.work.path())
            .envs(self.exported.iter().cloned())
            .envs(env.iter().cloned())
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("{at}: cannot run `{binary}`: {e}"));
        assert!(
            out.status.success(),
            "{at} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8(out.stdout).unwrap_or_else(|e| panic!("{at}: output is not UTF-8: {e}"))
    }

    /// Adds a ```toml satellite.toml block to the daemon's configuration and restarts it.
    fn configure(&mut self, block: &Numbered) {
        let at = format!("README.md:{}", block.line);
        let text = self
            .bindings
            .substitute(&block.text)
            .unwrap_or_else(|e| panic!("{at}: {e}"));
        append(&self.daemon.config_path, &text);
        self.daemon.restart();
    }

    /// `text` with the README's listener addresses replaced by the run's.
    fn run_addresses(&self, text: &str) -> String {
        text.replace(DEVICE_ADDR, &self.daemon.device_addr.to_string())
            .replace(ADMIN_ADDR, &self.daemon.admin_addr.to_string())
    }

    /// `text` with the run's listener addresses written as the README's.
    fn readme_addresses(&self, text: &str) -> String {
        text.replace(&self.daemon.device_addr.to_string(), DEVICE_ADDR)
            .replace(&self.daemon.admin_addr.to_string(), ADMIN_ADDR)
    }
}

/// A line for a failure message, where an empty line would be easy to miss.
fn shown(line: &str) -> &str {
    if line.is_empty() {
        "(an empty line)"
    } else {
        line
    }
}

fn append(path: &Path, text: &str) {
    let mut config = std::fs::read_to_string(path).expect("read the daemon's configuration");
    config.push('\n');
    config.push_str(text);
    std::fs::write(path, config).expect("write the daemon's configuration");
}

fn trim_blank_end(lines: &[String]) -> &[String] {
    let n = lines
        .iter()
        .rposition(|l| !l.is_empty())
        .map_or(0, |i| i + 1);
    &lines[..n]
}

/// Matches a command's output against the README lines shown after it (`end` is the README
/// line after them, or the command's if there are none). Returns the values to bind, or the first place where they part ways.
fn match_output(
    b: &Bindings,
    expected: &[Numbered],
    actual: &[String],
    end: usize,
) -> Result<Pairs, Mismatch> {
    let mut pairs = Pairs::new();
    let (mut i, mut j) = (0, 0);
    while let Some(e) = expected.get(i) {
        if e.text == ELLIPSIS {
            i += 1;
            let Some(next) = expected.get(i) else {
                j = actual.len();
                continue;
            };
            // The first later line the next README line matches; the loop then matches it.
            j = (j..actual.len())
                .find(|k| {
                    b.match_line(&next.text, &actual[*k], &mut pairs.clone())
                        .is_ok()
                })
                .ok_or_else(|| Mismatch {
                    line: next.line,
                    why: "no line of the run after the `...` matches this one".into(),
                    readme: next.text.clone(),
                    run: "(none; the whole output is below)".into(),
                })?;
            continue;
        }
        let Some(a) = actual.get(j) else {
            return Err(Mismatch {
                line: e.line,
                why: "the run's output ends before this line".into(),
                readme: e.text.clone(),
                run: "(end of output)".into(),
            });
        };
        b.match_line(&e.text, a, &mut pairs)
            .map_err(|why| Mismatch {
                line: e.line,
                why,
                readme: e.text.clone(),
                run: a.clone(),
            })?;
        i += 1;
        j += 1;
    }
    match actual.get(j) {
        Some(extra) => Err(Mismatch {
            line: end,
            why: "the run prints more lines than README.md shows".into(),
            readme: "(end of output)".into(),
            run: extra.clone(),
        }),
        None => Ok(pairs),
    }
}

#[test]
fn an_ellipsis_skips_lines_and_a_missing_line_is_named() {
    let n = |line: usize, text: &str| Numbered {
        line,
        text: text.into(),
    };
    let actual: Vec<String> = ["# HELP a", "a 1", "b 2", "# EOF"].map(String::from).into();
    let b = Bindings::default();
    let shown = [n(10, "# HELP a"), n(11, "..."), n(12, "b 2"), n(13, "...")];
    assert!(match_output(&b, &shown, &actual, 14).is_ok());
    let shown = [n(10, "..."), n(11, "c 3"), n(12, "...")];
    assert_eq!(
        match_output(&b, &shown, &actual, 13).err().unwrap().line,
        11
    );
    let shown = [n(10, "# HELP a"), n(11, "a 1")];
    let extra = match_output(&b, &shown, &actual, 12).err().unwrap();
    assert_eq!((extra.line, extra.run.as_str()), (12, "b 2"));
    let shown = [n(10, "# HELP a"), n(11, "a 2")];
    assert_eq!(
        match_output(&b, &shown, &actual, 12).err().unwrap().line,
        11
    );
}
