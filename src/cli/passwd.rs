//! `satellite user passwd NAME`: reads a console password without showing it, and sends it to
//! the daemon, which keeps only its argon2id hash.
//!
//! From a terminal the password is read twice with echo off (`stty -echo` on `/dev/tty`: the
//! crate forbids `unsafe`, so no termios call of its own); with `--stdin` one line is read from
//! standard input, for scripts. The password never appears in arguments, the environment or
//! any output.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};
use hyper::Method;
use serde_json::json;

use super::client::{AdminClient, segment};
use super::output::Output;
use crate::protocol::admin::{
    PASSWORD_MAX_BYTES as MAX_BYTES, PASSWORD_MIN_LENGTH as MIN_LENGTH, SetPassword,
};

/// Reads the password (terminal or stdin), checks its length here for a quick answer, and sets
/// it. The daemon checks again.
pub async fn passwd(client: &AdminClient, out: Output, user: String, stdin: bool) -> Result<()> {
    let password = if stdin {
        read_stdin()?
    } else {
        read_terminal(&user)?
    };
    if password.chars().count() < MIN_LENGTH {
        bail!("the password is too short: use at least {MIN_LENGTH} characters");
    }
    if password.len() > MAX_BYTES {
        bail!("the password is too long: use at most {MAX_BYTES} bytes");
    }
    let body = serde_json::to_vec(&SetPassword { password })?;
    let path = format!("/v1/users/{}/password", segment(&user));
    client.send_bytes(Method::POST, &path, body).await?;
    out.show(&json!({ "password_set": user }), |_| {
        println!("console password set for {user}; their console sessions were signed out")
    })
}

/// One line of standard input, without its line ending.
pub(super) fn read_stdin() -> Result<String> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("cannot read the password from standard input")?;
    Ok(trim_newline(line))
}

/// The password typed twice on the controlling terminal, with echo off.
fn read_terminal(user: &str) -> Result<String> {
    let tty = File::options()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .context("no terminal to read the password from; give it on standard input with --stdin")?;
    let first = prompt(&tty, &format!("New console password for {user}: "))?;
    let second = prompt(&tty, "Repeat it: ")?;
    if first != second {
        bail!("the two passwords differ; nothing was changed");
    }
    Ok(first)
}

pub(super) fn prompt(tty: &File, text: &str) -> Result<String> {
    let mut w = tty;
    w.write_all(text.as_bytes())?;
    w.flush()?;
    echo(tty, false)?;
    let mut line = String::new();
    let read = BufReader::new(tty).read_line(&mut line);
    // Echo comes back even if reading failed.
    echo(tty, true)?;
    w.write_all(b"\n")?;
    read.context("cannot read the password from the terminal")?;
    Ok(trim_newline(line))
}

/// Turns the terminal's echo off or on with `stty`, which acts on its standard input.
fn echo(tty: &File, on: bool) -> Result<()> {
    let status = Command::new("stty")
        .arg(if on { "echo" } else { "-echo" })
        .stdin(Stdio::from(tty.try_clone()?))
        .status()
        .context("cannot run `stty` to hide the password; use --stdin instead")?;
    if !status.success() {
        bail!("`stty` could not turn echo off; use --stdin instead");
    }
    Ok(())
}

fn trim_newline(mut s: String) -> String {
    while s.ends_with('\n') || s.ends_with('\r') {
        s.pop();
    }
    s
}
