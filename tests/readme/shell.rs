//! The little shell the README's commands may use: words, quotes, comments, `$VAR`, a leading
//! `VAR=value` for one command and `export VAR=value` for the rest of the session. Anything
//! more (pipes, redirections, substitutions, `;`) is refused, so the README stays something an
//! operator can type and this test can run without a real shell.

/// What one command line of the README asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    /// Only a comment.
    Nothing,
    /// `export A=1 B=2`: variables for every later command.
    Export(Vec<(String, String)>),
    /// A program to run, with variables for this command only.
    Run {
        env: Vec<(String, String)>,
        program: String,
        args: Vec<String>,
    },
}

/// Splits `text` into words, expanding `$NAME` and `${NAME}` (unquoted or in double quotes)
/// with `var`.
fn words(text: &str, var: &dyn Fn(&str) -> Option<String>) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' => words.extend(word.take()),
            '#' if word.is_none() => break,
            '\'' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => w.push(c),
                        None => return Err("a single quote is not closed".into()),
                    }
                }
            }
            '"' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('$') => w.push_str(&expand(&mut chars, var)?),
                        Some('\\') if chars.peek().is_some_and(|c| "\"\\$".contains(*c)) => {
                            w.push(chars.next().expect("peeked"))
                        }
                        Some(c) => w.push(c),
                        None => return Err("a double quote is not closed".into()),
                    }
                }
            }
            '\\' => match chars.next() {
                Some(c) => word.get_or_insert_with(String::new).push(c),
                None => return Err("a line ends with `\\` and nothing follows".into()),
            },
            '$' if chars.peek() == Some(&'(') => {
                return Err("command substitution `$(...)` is not supported".into());
            }
            '$' => {
                let value = expand(&mut chars, var)?;
                word.get_or_insert_with(String::new).push_str(&value);
            }
            '|' | '&' | ';' | '<' | '>' | '`' | '(' | ')' => {
                return Err(format!(
                    "the shell feature `{c}` is not supported: the README test runs one program \
                     per command (see the top of tests/readme.rs)"
                ));
            }
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    words.extend(word);
    Ok(words)
}

/// Expands the variable whose name follows a `$`.
fn expand(
    chars: &mut std::iter::Peekable<std::str::Chars<'_>>,
    var: &dyn Fn(&str) -> Option<String>,
) -> Result<String, String> {
    let braced = chars.peek() == Some(&'{');
    if braced {
        chars.next();
    }
    let mut name = String::new();
    while let Some(c) = chars.peek().copied() {
        if !(c.is_ascii_alphanumeric() || c == '_') {
            break;
        }
        name.push(c);
        chars.next();
    }
    if braced && chars.next() != Some('}') {
        return Err("`${` is not closed by `}`".into());
    }
    if name.is_empty() {
        return Err("a `$` is not followed by a variable name".into());
    }
    var(&name).ok_or_else(|| format!("`${name}` is not set: export it in an earlier command"))
}

/// `NAME=value`, if `word` is an assignment.
fn assignment(word: &str) -> Option<(String, String)> {
    let (name, value) = word.split_once('=')?;
    let valid = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    valid.then(|| (name.to_string(), value.to_string()))
}

/// Parses one command line (continuations already joined).
pub fn parse(text: &str, var: &dyn Fn(&str) -> Option<String>) -> Result<Line, String> {
    let words = words(text, var)?;
    let Some(first) = words.first() else {
        return Ok(Line::Nothing);
    };
    if first == "export" {
        let assignments = words[1..]
            .iter()
            .map(|w| assignment(w).ok_or_else(|| format!("`export {w}`: expected NAME=value")))
            .collect::<Result<Vec<_>, _>>()?;
        return Ok(Line::Export(assignments));
    }
    let mut env = Vec::new();
    let mut rest = words.into_iter().peekable();
    while let Some(a) = rest.peek().and_then(|w| assignment(w)) {
        env.push(a);
        rest.next();
    }
    let program = rest
        .next()
        .ok_or("only variable assignments: use `export` to set them for later commands")?;
    Ok(Line::Run {
        env,
        program,
        args: rest.collect(),
    })
}

#[test]
fn commands_are_split_like_a_shell_splits_them() {
    let var = |name: &str| (name == "TOKEN").then(|| "sat_1".to_string());
    let run = |env: &[(&str, &str)], program: &str, args: &[&str]| Line::Run {
        env: env
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect(),
        program: program.into(),
        args: args.iter().map(|a| a.to_string()).collect(),
    };
    assert_eq!(
        parse(
            r#"satellite token create --description "paris switches"  # a comment"#,
            &var
        ),
        Ok(run(
            &[],
            "satellite",
            &["token", "create", "--description", "paris switches"]
        ))
    );
    assert_eq!(
        parse(
            r#"A=1 curl -H "Authorization: Bearer $TOKEN" 'x$TOKEN' ${TOKEN}"#,
            &var
        ),
        Ok(run(
            &[("A", "1")],
            "curl",
            &["-H", "Authorization: Bearer sat_1", "x$TOKEN", "sat_1"]
        ))
    );
    assert_eq!(
        parse("export SATELLITE_TOKEN=sat_2 B=c", &var),
        Ok(Line::Export(vec![
            ("SATELLITE_TOKEN".into(), "sat_2".into()),
            ("B".into(), "c".into())
        ]))
    );
    assert_eq!(parse("   # only a comment", &var), Ok(Line::Nothing));
    assert!(parse("satellite status | grep x", &var).is_err());
    assert!(parse("echo $UNSET", &var).is_err());
    assert!(parse("echo \"open", &var).is_err());
}
