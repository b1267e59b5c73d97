//! How every command prints its answer: JSON for scripts with `--json`, else a rendering for
//! people. Its own file because every command file uses it, so that none of them depends on
//! another command's file.

use anyhow::Result;
use serde::Serialize;

/// How to print answers.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    pub json: bool,
}

impl Output {
    /// Prints `value` as JSON, or runs `human` to print it for people.
    pub fn show<T: Serialize>(self, value: &T, human: impl FnOnce(&T)) -> Result<()> {
        if self.json {
            println!("{}", serde_json::to_string_pretty(value)?);
        } else {
            human(value);
        }
        Ok(())
    }
}
