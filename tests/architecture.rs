//! The architecture invariants of ARCHITECTURE.md that a reading of the sources can check:
//! which layer may name what, and how large a file or a function may grow. Each check reads the
//! sources with comments and literals blanked (`store_access::code_only`), so prose and
//! messages never count. `store_access.rs` checks the rule that only `App` reaches the store.

use std::path::{Path, PathBuf};

use crate::store_access::{code_only, rust_files};

/// A source file of the crate: its path relative to the crate and its code.
struct Source {
    path: String,
    code: String,
}

fn sources(under: &str) -> Vec<Source> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    rust_files(&root.join(under))
        .into_iter()
        .map(|path: PathBuf| Source {
            path: path
                .strip_prefix(root)
                .expect("under the crate")
                .to_string_lossy()
                .into_owned(),
            code: without_test_modules(&code_only(
                &std::fs::read_to_string(&path).expect("read a source file"),
            )),
        })
        .collect()
}

/// `code` with each `#[cfg(test)]` module blanked (line breaks kept): unit tests may use
/// anything.
fn without_test_modules(code: &str) -> String {
    let mut lines: Vec<String> = code.lines().map(str::to_owned).collect();
    let mut n = 0;
    while n < lines.len() {
        if lines[n].trim_start().starts_with("#[cfg(test)]") {
            let view: Vec<&str> = lines.iter().map(String::as_str).collect();
            if let Some(end) = block_end(&view, n + 1) {
                for line in &mut lines[n..=end] {
                    line.clear();
                }
                n = end;
            }
        }
        n += 1;
    }
    lines.join("\n")
}

/// Unit tests beside a module (`tests.rs`, `tests/…`) may be long and may use anything.
fn is_test_file(path: &str) -> bool {
    path.ends_with("/tests.rs") || path.contains("/tests/")
}

/// Lines of `code` that name `word` as a whole identifier.
fn naming(code: &str, word: &str) -> Vec<usize> {
    let ident = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
    code.lines()
        .enumerate()
        .filter(|(_, line)| {
            line.match_indices(word).any(|(at, _)| {
                !ident(line[..at].chars().next_back())
                    && !ident(line[at + word.len()..].chars().next())
            })
        })
        .map(|(n, _)| n + 1)
        .collect()
}

fn violations(files: &[Source], skip: impl Fn(&str) -> bool, words: &[&str]) -> Vec<String> {
    let mut found = Vec::new();
    for f in files.iter().filter(|f| !skip(&f.path)) {
        for word in words {
            for line in naming(&f.code, word) {
                found.push(format!("{}:{line}: names `{word}`", f.path));
            }
        }
    }
    found
}

#[test]
fn only_the_store_names_sled_and_only_the_codec_names_bincode() {
    let src = sources("src");
    let sled = violations(&src, |p| p.starts_with("src/store/"), &["sled"]);
    let bincode = violations(&src, |p| p == "src/store/codec.rs", &["bincode"]);
    assert!(
        sled.is_empty() && bincode.is_empty(),
        "sled belongs to src/store/ and bincode to src/store/codec.rs, so either can be swapped \
         by touching one place:\n{}",
        [sled, bincode].concat().join("\n")
    );
}

/// The domain is the ground floor: no IO, no clock, no randomness, no other layer.
#[test]
fn the_domain_does_no_io_reads_no_clock_and_draws_no_random_numbers() {
    let domain = sources("src/domain");
    let mut found = violations(
        &domain,
        |_| false,
        &[
            "fs",
            "net",
            "tokio",
            "reqwest",
            "hyper",
            "axum",
            "sled",
            "SystemTime",
            "Instant",
            "now_utc",
            "new_v4",
            "getrandom",
            "thread_rng",
        ],
    );
    for f in &domain {
        for (n, line) in f.code.lines().enumerate() {
            for (at, _) in line.match_indices("crate::") {
                let rest = &line[at + "crate::".len()..];
                if !rest.starts_with("domain") && !rest.starts_with("for_each_record_kind") {
                    found.push(format!("{}:{}: reaches outside the domain", f.path, n + 1));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "the domain takes time and ids as parameters and does no IO (ARCHITECTURE.md):\n{}",
        found.join("\n")
    );
}

/// The catalog imports only the modules it is made of, never an operation module that uses it.
#[test]
fn the_catalog_imports_no_operation_module() {
    const PARTS: &[&str] = &["catalog", "events", "ids", "model", "records"];
    let mut found = Vec::new();
    for f in sources("src/domain")
        .iter()
        .filter(|f| f.path == "src/domain/catalog.rs" || f.path.starts_with("src/domain/catalog/"))
        .filter(|f| !is_test_file(&f.path))
    {
        for (n, line) in f.code.lines().enumerate() {
            for module in modules_named(line) {
                if !PARTS.contains(&module.as_str()) {
                    found.push(format!("{}:{}: uses `{module}`", f.path, n + 1));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "catalog.rs and its areas may use only {PARTS:?}; an operation module imports the \
         catalog, not the other way round:\n{}",
        found.join("\n")
    );
}

/// The domain modules a line names through `super::` or `crate::domain::`, also inside a
/// brace group (`super::{ids::X, model::Y}`); items (`super::Catalog`) and calls are not
/// modules.
fn modules_named(line: &str) -> Vec<String> {
    let lead = |text: &str| -> String {
        text.trim_start()
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect()
    };
    let mut out = Vec::new();
    for prefix in ["super::", "crate::domain::"] {
        for (at, _) in line.match_indices(prefix) {
            if line[..at].ends_with("super::") {
                continue; // The rest of a `super::super::…` chain already read.
            }
            let rest = line[at..]
                .trim_start_matches("crate::domain::")
                .trim_start_matches("super::");
            let items: Vec<&str> = match rest.strip_prefix('{') {
                Some(group) => group.split('}').next().unwrap_or("").split(',').collect(),
                None => vec![rest],
            };
            for item in items {
                let module = lead(item);
                let after = item.trim_start()[module.len()..].trim_start();
                if module.chars().next().is_some_and(char::is_lowercase)
                    && !after.starts_with('(')
                    && module != "self"
                {
                    out.push(module);
                }
            }
        }
    }
    out
}

#[test]
fn the_module_reader_sees_paths_groups_and_skips_items() {
    assert_eq!(modules_named("use super::ids::{VaId, UserId};"), ["ids"]);
    assert_eq!(
        modules_named("use super::{model::A, sync::B, Catalog};"),
        ["model", "sync"]
    );
    assert_eq!(modules_named("use crate::domain::sync::Outbox;"), ["sync"]);
    assert_eq!(
        modules_named("use super::super::compliance::Pool;"),
        ["compliance"]
    );
    assert!(modules_named("let c = super::Catalog::new(); super::contact_key(t);").is_empty());
}

/// Dependencies between the runtime layers run one way: server → workers → sync → app.
#[test]
fn workers_and_sync_do_not_import_the_layers_above_them() {
    let mut found = Vec::new();
    for f in sources("src/sync") {
        for word in ["crate::workers", "crate::server"] {
            if f.code.contains(word) {
                found.push(format!("{}: names `{word}`", f.path));
            }
        }
    }
    for f in sources("src/workers") {
        if f.code.contains("crate::server") {
            found.push(format!("{}: names `crate::server`", f.path));
        }
    }
    assert!(found.is_empty(), "{}", found.join("\n"));
}

/// Every file is written through `fsutil` (no symbolic link followed, no half-written file).
#[test]
fn only_fsutil_opens_files_for_writing() {
    let found = violations(
        &sources("src"),
        |p| p == "src/fsutil.rs" || is_test_file(p),
        &["OpenOptions"],
    );
    let mut found = found;
    for f in sources("src")
        .iter()
        .filter(|f| f.path != "src/fsutil.rs" && !is_test_file(&f.path))
    {
        for (n, line) in f.code.lines().enumerate() {
            if line.contains("File::create") && !line.contains("NewFile::create") {
                found.push(format!("{}:{}: File::create", f.path, n + 1));
            }
            if line.contains("fs::write(") {
                found.push(format!("{}:{}: fs::write", f.path, n + 1));
            }
        }
    }
    assert!(
        found.is_empty(),
        "write files through `fsutil` (write_atomically, NewFile):\n{}",
        found.join("\n")
    );
}

/// Files a reader can hold in mind: no source file over 600 lines (unit tests apart).
#[test]
fn no_source_file_is_longer_than_600_lines() {
    let long: Vec<String> = sources("src")
        .iter()
        .filter(|f| !is_test_file(&f.path))
        .map(|f| (f.path.clone(), f.code.lines().count()))
        .filter(|(_, n)| *n > 600)
        .map(|(p, n)| format!("{p}: {n} lines"))
        .collect();
    assert!(
        long.is_empty(),
        "split these by concern:\n{}",
        long.join("\n")
    );
}

/// The functions of `code` (outside `#[cfg(test)]` modules) and their lengths in lines, with
/// whether the lines just above say `Long by design`.
fn functions(code: &str, original: &str) -> Vec<(usize, usize, bool)> {
    let lines: Vec<&str> = code.lines().collect();
    let source: Vec<&str> = original.lines().collect();
    let mut out = Vec::new();
    let mut n = 0;
    while n < lines.len() {
        let line = lines[n].trim_start();
        if line.starts_with("#[cfg(test)]") {
            // Skip the test module's block.
            if let Some(end) = block_end(&lines, n + 1) {
                n = end + 1;
                continue;
            }
        }
        let is_fn = line.split_whitespace().take_while(|w| *w != "fn").all(|w| {
            matches!(w, "pub" | "async" | "const" | "unsafe" | "extern") || w.starts_with("pub(")
        }) && line.split_whitespace().any(|w| w == "fn");
        if is_fn && let Some(end) = block_end(&lines, n) {
            let reason = source[n.saturating_sub(8)..n]
                .iter()
                .any(|l| l.contains("Long by design"));
            out.push((n + 1, end - n + 1, reason));
        }
        n += 1;
    }
    out
}

/// The line where the block opened at or after `start` closes; `None` when a `;` ends the
/// item before any `{` (a declaration without a body).
fn block_end(lines: &[&str], start: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut opened = false;
    for (n, line) in lines.iter().enumerate().skip(start) {
        for c in line.chars() {
            match c {
                '{' => {
                    depth += 1;
                    opened = true;
                }
                '}' => {
                    depth = depth.saturating_sub(1);
                    if opened && depth == 0 {
                        return Some(n);
                    }
                }
                ';' if !opened => return None,
                _ => {}
            }
        }
    }
    None
}

/// No function over 80 lines, unless a comment just above says why (`Long by design: …`).
#[test]
fn no_function_is_longer_than_80_lines_without_a_reason() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut long = Vec::new();
    for f in sources("src").iter().filter(|f| !is_test_file(&f.path)) {
        let original = std::fs::read_to_string(root.join(&f.path)).expect("read a source file");
        for (line, length, reason) in functions(&f.code, &original) {
            if length > 80 && !reason {
                long.push(format!("{}:{line}: {length} lines", f.path));
            }
        }
    }
    assert!(
        long.is_empty(),
        "split these into named steps, or say why one function reads best with \
         `// Long by design: …` just above it:\n{}",
        long.join("\n")
    );
}

/// The function finder sees bodies and skips declarations and test modules.
#[test]
fn the_function_finder_measures_bodies() {
    let code = "pub fn a() {\n    let x = 1;\n}\nfn decl();\n#[cfg(test)]\nmod tests {\n    fn t() {\n    }\n}\npub(crate) async fn b(\n    y: u8,\n) -> u8 {\n    if y > 0 { 1 } else { 2 }\n}\n";
    assert_eq!(functions(code, code), vec![(1, 3, false), (10, 5, false)]);
    let reasoned = "// Long by design: one table.\nfn c() {\n}\n";
    assert_eq!(functions(reasoned, reasoned), vec![(2, 2, true)]);
}
