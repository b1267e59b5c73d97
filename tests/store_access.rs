//! `App` is the only way into the store: nothing in `src/` outside `src/app/`, `src/store/` and
//! the offline tools below names `Store` or calls `.store()`. A handler, a worker or the sync
//! engine that needs something of the store asks `App` for it (`wait_durable`,
//! `store_health`, `rum_report_text`...), so the write path and its invariants stay in one
//! place.

use std::path::{Path, PathBuf};

/// Tools that open a store while no daemon runs, each for a reason that needs the store itself.
const OFFLINE_TOOLS: &[(&str, &str)] = &[
    (
        "src/cli/backup.rs",
        "`satellite restore` imports a backup into a new store before any daemon opens it",
    ),
    (
        "src/loadgen/fill.rs",
        "`satellite loadgen fill` writes a large store directly, for the scale measurements",
    ),
];

/// Directories whose files may name the store: the store itself, and `App` in front of it.
const OWNERS: &[&str] = &["src/app/", "src/store/"];

#[test]
fn only_app_and_offline_tools_name_the_store() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut found = Vec::new();
    for path in rust_files(&root.join("src")) {
        let relative = path
            .strip_prefix(root)
            .expect("under the crate")
            .to_string_lossy()
            .into_owned();
        if OWNERS.iter().any(|o| relative.starts_with(o))
            || OFFLINE_TOOLS.iter().any(|(tool, _)| relative == *tool)
        {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("read a source file");
        for (line, what) in store_uses(&code_only(&text)) {
            found.push(format!("{relative}:{line}: {what}"));
        }
    }
    assert!(
        found.is_empty(),
        "only src/app/, src/store/ and the offline tools ({}) may name the store; ask `App` \
         for what you need instead (give it a verb if it has none):\n{}",
        OFFLINE_TOOLS
            .iter()
            .map(|(tool, _)| *tool)
            .collect::<Vec<_>>()
            .join(", "),
        found.join("\n")
    );
}

/// The checker finds what it must, and only that.
#[test]
fn the_store_check_sees_uses_and_ignores_comments_strings_and_variants() {
    let uses = |text: &str| store_uses(&code_only(text)).len();
    assert_eq!(uses("use crate::store::{self, Store, tables};"), 1);
    assert_eq!(uses("let s: &crate::store::Store = x;"), 1);
    assert_eq!(uses("Store::open(dir, TABLES)"), 1);
    assert_eq!(uses("ctx.app.store().flush().await?;"), 1);
    assert_eq!(uses("fn f(s: &Store) {}"), 1);
    assert_eq!(uses("// One `Store` per data directory.\nlet a = 1;"), 0);
    assert_eq!(uses("/* the Store */ let a = 1;"), 0);
    assert_eq!(uses(r#"reg.register("x", "Store flushes", f);"#), 0);
    assert_eq!(uses("AppError::Store(s) => s.into(),"), 0);
    assert_eq!(
        uses("use crate::store::StoreError; struct RootCertStore;"),
        0
    );
    assert_eq!(uses("fn f<'a>(c: &'a char) -> char { '\"' }"), 0);
}

pub(crate) fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("list a source directory") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            out.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out.sort();
    out
}

/// The source with comments and the contents of string and character literals blanked out
/// (line breaks kept, so line numbers hold).
pub(crate) fn code_only(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let blank = |out: &mut String, c: char| out.push(if c == '\n' { '\n' } else { ' ' });
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            i += 2;
            while i < chars.len() && !(chars[i] == '*' && chars.get(i + 1) == Some(&'/')) {
                blank(&mut out, chars[i]);
                i += 1;
            }
            i += 2;
        } else if c == 'r'
            && matches!(next, Some('"' | '#'))
            && !ident(chars.get(i.wrapping_sub(1)))
        {
            // A raw string: r"…" or r#"…"#, ended by a quote and as many hashes.
            let hashes = chars[i + 1..].iter().take_while(|&&h| h == '#').count();
            i += 1 + hashes;
            if chars.get(i) != Some(&'"') {
                continue;
            }
            i += 1;
            let end: String = std::iter::once('"')
                .chain("#".repeat(hashes).chars())
                .collect();
            while i < chars.len() && !chars[i..].iter().collect::<String>().starts_with(&end) {
                blank(&mut out, chars[i]);
                i += 1;
            }
            i += end.chars().count();
        } else if c == '"' {
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' {
                    i += 1;
                }
                if let Some(&c) = chars.get(i) {
                    blank(&mut out, c);
                }
                i += 1;
            }
            i += 1;
        } else if c == '\'' && next == Some('\\') {
            // An escaped character literal: '\n', '\'', '\u{…}'.
            i += 2;
            while i < chars.len() && chars[i] != '\'' {
                i += 1;
            }
            i += 1;
        } else if c == '\'' && chars.get(i + 2) == Some(&'\'') {
            i += 3;
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

fn ident(c: Option<&char>) -> bool {
    c.is_some_and(|c| c.is_alphanumeric() || *c == '_')
}

/// Every use of the store in `code`: the type `Store` (alone or as `store::Store`, not an
/// enum variant such as `AppError::Store`) and calls of `.store()`, with their line numbers.
fn store_uses(code: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (n, line) in code.lines().enumerate() {
        let chars: Vec<char> = line.chars().collect();
        for (at, _) in line.match_indices("Store") {
            let start = line[..at].chars().count();
            let end = start + "Store".len();
            if ident(chars.get(start.wrapping_sub(1))) || ident(chars.get(end)) {
                continue;
            }
            let before: String = chars[..start].iter().collect();
            let path = before.trim_end();
            if let Some(prefix) = path.strip_suffix("::")
                && !prefix.trim_end().ends_with("store")
            {
                // `Something::Store`: a variant or an item of another module.
                continue;
            }
            out.push((n + 1, line.trim().to_owned()));
        }
        if line.contains(".store()") {
            out.push((n + 1, line.trim().to_owned()));
        }
    }
    out
}
