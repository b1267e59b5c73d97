//! The README's fenced code blocks, as the steps of one session (conventions: see the top of
//! `tests/readme.rs`).

/// A line of README.md and its number (from 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Numbered {
    pub line: usize,
    pub text: String,
}

/// One step of the README session, in README order.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// A command of a ```console block (continuation lines joined) and the lines shown after it.
    Command {
        command: Numbered,
        expected: Vec<Numbered>,
    },
    /// A ```toml satellite.toml block: lines to add to the daemon's configuration file, after
    /// which the daemon is restarted.
    Configure(Numbered),
}

/// The info string of blocks that run.
pub const RUN: &str = "console";
/// The info string of blocks whose lines are added to the configuration.
pub const CONFIGURE: &str = "toml satellite.toml";
/// Where commands of a ```console block may run: on the satellite's host (`$ `) or on a device
/// (`device$ `, for the agent; here the same machine).
const PROMPTS: [&str; 2] = ["$ ", "device$ "];

/// The README's steps, or the first README line that breaks the conventions and why.
pub fn steps(readme: &str) -> Result<Vec<Step>, String> {
    let lines: Vec<&str> = readme.lines().collect();
    let mut steps = Vec::new();
    let mut n = 0;
    while n < lines.len() {
        let Some(info) = lines[n].strip_prefix("```") else {
            n += 1;
            continue;
        };
        let info = info.trim();
        let start = n + 1;
        let end = (start..lines.len())
            .find(|i| lines[*i].trim_end() == "```")
            .ok_or_else(|| format!("README.md:{}: the code block is not closed", n + 1))?;
        let body: Vec<Numbered> = (start..end)
            .map(|i| Numbered {
                line: i + 1,
                text: lines[i].trim_end().to_string(),
            })
            .collect();
        match info {
            RUN => steps.extend(commands(n + 1, &body)?),
            CONFIGURE => steps.push(Step::Configure(Numbered {
                line: n + 1,
                text: body.iter().map(|l| format!("{}\n", l.text)).collect(),
            })),
            _ => {
                if let Some(l) = body.iter().find(|l| l.text.starts_with("$ ")) {
                    return Err(format!(
                        "README.md:{}: a ```{info} block has a `$ ` prompt: mark the block \
                         ```{RUN} to run it in this test, or drop the prompts to show it only",
                        l.line
                    ));
                }
            }
        }
        n = end + 1;
    }
    Ok(steps)
}

/// The commands of a ```console block that opens at README line `open`.
fn commands(open: usize, body: &[Numbered]) -> Result<Vec<Step>, String> {
    let mut steps: Vec<Step> = Vec::new();
    let mut continued = false;
    for l in body {
        let prompt = PROMPTS.iter().find(|p| l.text.starts_with(*p));
        match (steps.last_mut(), prompt) {
            (Some(Step::Command { command, .. }), _) if continued => {
                let text = l.text.trim();
                continued = text.ends_with('\\');
                command.text.push(' ');
                command
                    .text
                    .push_str(text.trim_end_matches('\\').trim_end());
            }
            (_, Some(prompt)) => {
                let text = &l.text[prompt.len()..];
                continued = text.ends_with('\\');
                steps.push(Step::Command {
                    command: Numbered {
                        line: l.line,
                        text: text.trim_end_matches('\\').trim_end().to_string(),
                    },
                    expected: Vec::new(),
                });
            }
            (Some(Step::Command { expected, .. }), None) => expected.push(l.clone()),
            _ => {
                return Err(format!(
                    "README.md:{}: a ```{RUN} block must start with a command (`$ ` or \
                     `device$ `), and this line is not one",
                    l.line
                ));
            }
        }
    }
    if steps.is_empty() {
        return Err(format!(
            "README.md:{open}: a ```{RUN} block without commands"
        ));
    }
    for step in &mut steps {
        if let Step::Command { expected, .. } = step {
            while expected.last().is_some_and(|l| l.text.is_empty()) {
                expected.pop();
            }
        }
    }
    Ok(steps)
}

#[test]
fn blocks_become_steps() {
    let readme = "text\n```console\n$ satellite a \\\n    --b c\nout 1\n\nout 2\n\n\
                  device$ satellite agent x\n```\n```text\nupstream$ shown only\n```\n\
                  ```toml satellite.toml\n[sync]\n```\n";
    let n = |line: usize, text: &str| Numbered {
        line,
        text: text.into(),
    };
    assert_eq!(
        steps(readme).unwrap(),
        [
            Step::Command {
                command: n(3, "satellite a --b c"),
                expected: vec![n(5, "out 1"), n(6, ""), n(7, "out 2")],
            },
            Step::Command {
                command: n(9, "satellite agent x"),
                expected: vec![],
            },
            Step::Configure(n(14, "[sync]\n")),
        ]
    );
    let err = steps("```sh\n$ satellite status\n```\n").unwrap_err();
    assert!(err.starts_with("README.md:2:"), "{err}");
    assert!(steps("```console\nout\n```\n").is_err());
    assert!(steps("```console\n$ a\n").is_err());
}
